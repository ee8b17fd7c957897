/**
 * How fast the command starts: `node bin/hetmem.js --version`, spawned as a user's shell does,
 * against the compiled CLI in dist/ (no TypeScript loader). The anchor is a bare `node -e ''`
 * spawned in the same run, so the ratio shows what hetmem adds to Node's own start.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BenchContext, type Figure, type Suite, median, nowNs, round } from './figure.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/hetmem.js', import.meta.url));
const COMPILED_CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

/** The environment of a user's shell: no hetmem-source condition (the test runner sets it). */
function userEnv(): NodeJS.ProcessEnv {
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').replace(/--conditions[= ]hetmem-source/g, '').trim();
  return { ...process.env, NODE_OPTIONS: nodeOptions };
}

/** Median wall-clock milliseconds of `runs` spawns of `node ...args` (after one untimed spawn). */
function spawnMs(args: readonly string[], runs: number, expect: (stdout: string) => boolean): number {
  const times: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const t0 = nowNs();
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env: userEnv() });
    const ms = (nowNs() - t0) / 1e6;
    if (r.status !== 0 || !expect(r.stdout)) throw new Error(`node ${args.join(' ')}: ${r.stderr}`);
    if (i > 0) times.push(ms);
  }
  return median(times);
}

export const cliSuite: Suite = {
  name: 'cli',
  run(ctx: BenchContext): Promise<Figure[]> {
    const name = 'cli.version_start';
    if (!existsSync(COMPILED_CLI)) {
      ctx.missing(name, 'dist/ is not built (npm run build)');
      return Promise.resolve([]);
    }
    ctx.progress(name);
    const runs = ctx.smoke ? 3 : 11;
    const version = (
      JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
        version: string;
      }
    ).version;
    const value = spawnMs([BIN, '--version'], runs, (out) => out.startsWith(`hetmem ${version} `));
    const anchor = spawnMs(['-e', ''], runs, () => true);
    return Promise.resolve([
      {
        name,
        value: round(value),
        unit: 'ms',
        anchor: round(anchor),
        ratio: round(value / anchor),
        goal: `median of ${runs} spawns of \`node bin/hetmem.js --version\` <= 200 ms (anchor: \`node -e ''\`)`,
        pass: value <= 200,
      },
    ]);
  },
};
