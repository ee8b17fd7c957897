/**
 * `hetmem studio [FILE]`: serves the studio's production build (web/dist) and the scenario, on
 * 127.0.0.1 by default. Everything is served from this package: no CDN, works offline. The model
 * runs in the browser; this server only hands out files.
 *
 * The build is made by `npm ci` (the package's prepare script) and, if it is missing, by the
 * first run of this command when Vite is installed.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { basename, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScenarioFile } from '../scenario/parse.ts';
import { EXIT, InternalError, UsageError } from './errors.ts';

export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
export const DIST = join(WEB_ROOT, 'dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
};

export interface StudioOpts {
  port?: string;
  host?: string;
  /** commander sets it false for --no-open. */
  open?: boolean;
}

/** Builds web/dist with Vite (a development dependency). */
export async function buildStudio(): Promise<void> {
  let vite: { build(o: { configFile: string; logLevel: 'warn' }): Promise<unknown> };
  try {
    vite = await import('vite');
  } catch {
    throw new InternalError(
      'the studio is not built and Vite is not installed: run `npm ci` in the hetmem checkout',
    );
  }
  await vite.build({ configFile: join(WEB_ROOT, 'vite.config.ts'), logLevel: 'warn' });
}

function portOption(v: string | undefined): number {
  if (v === undefined) return 7173;
  if (!/^\d+$/.test(v) || Number(v) > 65535)
    throw new UsageError(`--port takes an integer 0..65535, got '${v}'`);
  return Number(v);
}

function hostOption(v: string | undefined): string {
  const h = v ?? '127.0.0.1';
  if (!/^[A-Za-z0-9.:-]+$/.test(h)) throw new UsageError(`--host takes a host name or address, got '${h}'`);
  return h;
}

/** The file under DIST that a request path names, or null (outside it, or missing). */
function staticFile(urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel.endsWith('/')) rel += 'index.html';
  const path = normalize(join(DIST, rel));
  if (!path.startsWith(DIST + sep) && path !== DIST) return null;
  try {
    return statSync(path).isFile() ? path : null;
  } catch {
    return null;
  }
}

function openBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {
      process.stderr.write(`hetmem: could not open a browser; open ${url}\n`);
    });
    child.unref();
  } catch {
    process.stderr.write(`hetmem: could not open a browser; open ${url}\n`);
  }
}

export async function cmdStudio(file: string | undefined, o: StudioOpts): Promise<number> {
  const port = portOption(o.port);
  const host = hostOption(o.host);
  // A bad scenario is reported now, with its line and column, not later in the browser.
  const scenario =
    file === undefined
      ? null
      : JSON.stringify({ name: basename(file), text: (parseScenarioFile(file), readFileSync(file, 'utf8')) });
  if (!existsSync(join(DIST, 'index.html'))) {
    process.stderr.write('hetmem: building the studio (once)…\n');
    await buildStudio();
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/scenario.json') {
      // Without a FILE there is nothing to serve, which is no error: 204 keeps the page's console clean.
      if (scenario === null) res.writeHead(204, { 'Cache-Control': 'no-store' }).end();
      else res.writeHead(200, { 'Content-Type': TYPES['.json'], 'Cache-Control': 'no-store' }).end(scenario);
      return;
    }
    const f = staticFile(path);
    if (f === null) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(f)] ?? 'application/octet-stream',
      'Cache-Control': f.endsWith('index.html') ? 'no-cache' : 'max-age=31536000, immutable',
    });
    res.end(req.method === 'HEAD' ? undefined : readFileSync(f));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE'
          ? new UsageError(`port ${port} is in use: pick another with --port`)
          : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND'
            ? new UsageError(`cannot listen on ${host}`)
            : e,
      );
    });
    server.listen(port, host, () => {
      resolve();
    });
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr !== null ? addr.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${actual}/`;
  process.stdout.write(`hetmem studio: ${url}${file !== undefined ? ` (${file})` : ''}\n`);
  process.stdout.write('press Ctrl+C to stop\n');
  if (o.open !== false) openBrowser(url);

  return new Promise<number>((resolve) => {
    const stop = (): void => {
      server.close(() => {
        resolve(EXIT.ok);
      });
      server.closeAllConnections();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
