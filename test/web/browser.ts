/**
 * Browser tests' harness: the studio served by `hetmem studio` (the production build), and
 * Debian's chromium driven by playwright-core with a fresh profile. Every page records console
 * errors and warnings and page errors; tests assert there are none.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from '../cli/helpers.ts';

export const CHROMIUM = process.env.HETMEM_CHROMIUM ?? '/usr/bin/chromium';

export interface Studio {
  url: string;
  stop(): Promise<void>;
}

/** Builds web/dist if it is missing (npm test and npm run test:web build it first). */
export function ensureBuilt(): void {
  if (existsSync(join(ROOT, 'web/dist/index.html'))) return;
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) throw new Error('vite build failed');
}

/** Starts `hetmem studio [FILE] --port 0 --no-open` and waits for the URL it prints. */
export function startStudio(args: readonly string[] = []): Promise<Studio> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(ROOT, 'bin/hetmem.js'), 'studio', ...args, '--port', '0', '--no-open'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`hetmem studio printed no URL: ${out}${err}`));
    }, 60_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          stop: () =>
            new Promise<void>((done) => {
              child.once('exit', () => {
                done();
              });
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hetmem studio exited with ${code}: ${err}`));
    });
  });
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set HETMEM_CHROMIUM)`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'hetmem-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A page that keeps every console error or warning and every uncaught error. */
export interface WatchedPage {
  page: Page;
  problems: string[];
}

export async function openPage(b: Browser, url: string): Promise<WatchedPage> {
  const page = await b.context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(url);
  return { page, problems };
}

/** In-page: the worker is busy. (In-page code is a string: this program has no DOM types.) */
const BUSY = `(document.querySelector('[data-testid="status"]')?.textContent === 'working…')`;

/** Waits until the studio shows a scenario (its step total is known). */
export async function ready(page: Page): Promise<void> {
  await page.waitForFunction(
    `(() => { const t = document.querySelector('[data-testid="step-total"]'); return t !== null && /[/] [1-9]/.test(t.textContent) && !${BUSY}; })()`,
  );
}

/** The step the page shows. */
export async function shownStep(page: Page): Promise<number> {
  return Number(await page.getByTestId('step-input').inputValue());
}

/** Waits until the page shows step n and is idle. */
export async function atStep(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    `(() => { const i = document.querySelector('[data-testid="step-input"]'); return i !== null && Number(i.value) === ${n} && !${BUSY}; })()`,
  );
}

/** One studio and one browser that the tests of a describe block share. */
export interface StudioSuite {
  /** The studio's base URL (known once the block's `before` hook has run). */
  readonly url: string;
  /** Opens a page at the studio's URL plus `query`; waits until it shows a scenario unless `wait` is false. */
  readonly open: (query?: string, o?: { wait?: boolean }) => Promise<WatchedPage>;
  /** Asserts the page logged no console error or warning, then closes it. */
  readonly done: (w: WatchedPage) => Promise<void>;
}

/**
 * Call inside describe(): builds the studio if needed, starts `hetmem studio ARGS` and chromium
 * before the block's tests, and closes every page, the browser and the studio after them.
 */
export function useStudio(args: readonly string[]): StudioSuite {
  let studio: Studio | undefined;
  let browser: Browser | undefined;
  const pages: WatchedPage[] = [];
  const started = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('the studio suite is used before its before() hook ran');
    return x;
  };
  before(async () => {
    ensureBuilt();
    studio = await startStudio(args);
    browser = await launchBrowser();
  });
  after(async () => {
    for (const w of pages) if (!w.page.isClosed()) await w.page.close();
    await browser?.close();
    await studio?.stop();
  });
  return {
    get url() {
      return started(studio).url;
    },
    open: async (query = '', o = {}) => {
      const w = await openPage(started(browser), `${started(studio).url}${query}`);
      pages.push(w);
      if (o.wait !== false) await ready(w.page);
      return w;
    },
    done: async (w) => {
      assert.deepEqual(w.problems, [], 'no console errors or warnings');
      await w.page.close();
    },
  };
}
