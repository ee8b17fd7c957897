/**
 * The package as its users get it (run by `npm run test:package` and CI, not by `npm test`):
 *
 *  - `npm pack`, then the tarball installed into a fresh project: plain Node imports 'hetmem'
 *    with no loader, a strict `tsc --noEmit` type-checks a TypeScript consumer against the
 *    shipped declarations, and the installed `hetmem` command runs;
 *  - two installs of hetmem in one process are refused with both paths;
 *  - examples/races/ copied outside the project, with `npm install <project>` there: every
 *    scenario, its TypeScript driver loaded from outside the package, comes out of
 *    `npx hetmem explore FILE --json` as declared.
 *
 * Installs use --prefer-offline: the npm cache `npm ci` filled serves the dependencies.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command the way a user's shell would: no hetmem-source condition, no colour. */
function run(cmd: string, args: readonly string[], cwd: string): Run {
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').replace(/--conditions[= ]hetmem-source/g, '').trim();
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: nodeOptions, NO_COLOR: '1' },
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Run, what: string): Run {
  assert.equal(r.status, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

const npmInstall = (cwd: string, specs: readonly string[]): Run =>
  ok(
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...specs], cwd),
    `npm install ${specs.join(' ')}`,
  );

function project(dir: string, name: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }, null, 2));
  return dir;
}

let tmp = '';
let app = '';

describe('the packed tarball, installed into a fresh project', () => {
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'hetmem-pkg-')));
    ok(run('npm', ['pack', '--pack-destination', tmp, '--loglevel=error'], ROOT), 'npm pack');
    const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    assert.equal(tarball, `hetmem-${PKG.version}.tgz`);
    app = project(join(tmp, 'app'), 'app');
    npmInstall(app, [join(tmp, tarball), `@types/node@${PKG.devDependencies['@types/node']}`]);
  });
  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('ships dist/ and bin/, not the sources or the tests', () => {
    const files = readdirSync(join(app, 'node_modules/hetmem'));
    assert.ok(files.includes('dist') && files.includes('bin'), files.join(' '));
    for (const absent of ['src', 'test', 'bench', 'examples', 'tsconfig.json'])
      assert.ok(!files.includes(absent), `${absent} is in the package`);
  });

  it("plain Node imports 'hetmem' with no loader and runs the README's example", () => {
    writeFileSync(
      join(app, 'a.mjs'),
      `import { System, mman, VERSION_STRING } from 'hetmem';
const sys = new System({ ram: 256 * 2 ** 20 });
const p = sys.createProcess('p');
const buf = sys.mmap(p, 0, 1 << 20, mman.PROT_READ | mman.PROT_WRITE, mman.MAP_PRIVATE | mman.MAP_ANONYMOUS);
sys.write(p, buf, new Uint8Array([1, 2, 3, 4]));
const { child } = sys.fork(p, 'child');
sys.write(child, buf, new Uint8Array([9]));
console.log(VERSION_STRING, sys.read(p, buf, 1).data[0], sys.read(child, buf, 1).data[0]);
`,
    );
    const r = ok(run(process.execPath, ['a.mjs'], app), 'node a.mjs');
    assert.equal(r.stdout.trim(), `hetmem ${PKG.version} (models Linux 6.18) 1 9`);
  });

  it("CommonJS require('hetmem') gets the same ES module (Node's require of ES modules)", () => {
    writeFileSync(
      join(app, 'b.cjs'),
      "const { System, VERSION_STRING } = require('hetmem');\nconsole.log(typeof System, VERSION_STRING);\n",
    );
    const r = ok(run(process.execPath, ['b.cjs'], app), 'node b.cjs');
    assert.equal(r.stdout.trim(), `function hetmem ${PKG.version} (models Linux 6.18)`);
  });

  it('a strict tsc --noEmit passes on a TypeScript consumer, and catches a type error', () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        include: ['consumer.ts'],
      }),
    );
    const consumer = `import { System, mman, Errno, KernelError, type SystemConfig } from 'hetmem';
const config: SystemConfig = { ram: 64 * 2 ** 20 };
const sys = new System(config);
const p = sys.createProcess('p');
const addr: number = sys.mmap(p, 0, 4096, mman.PROT_READ, mman.MAP_PRIVATE | mman.MAP_ANONYMOUS);
const e: number = Errno.EINVAL;
export const out: [number, number, boolean] = [addr, e, new KernelError(Errno.EFAULT) instanceof Error];
`;
    writeFileSync(join(app, 'consumer.ts'), consumer);
    ok(run(process.execPath, [TSC, '-p', 'tsconfig.json'], app), 'tsc --noEmit');
    writeFileSync(
      join(app, 'consumer.ts'),
      `${consumer}export const wrong: string = sys.createProcess('q');\n`,
    );
    const bad = run(process.execPath, [TSC, '-p', 'tsconfig.json'], app);
    assert.equal(bad.status, 2, bad.stdout);
    assert.match(bad.stdout, /consumer\.ts\(8,14\): error TS2322/);
  });

  it('the installed hetmem command prints its version and runs the demo', () => {
    const v = ok(run(process.execPath, ['node_modules/.bin/hetmem', '--version'], app), 'hetmem --version');
    assert.equal(v.stdout.trim(), `hetmem ${PKG.version} (models Linux 6.18)`);
    const demo = ok(run(process.execPath, ['node_modules/.bin/hetmem', 'run', '--json'], app), 'hetmem run');
    assert.equal((JSON.parse(demo.stdout) as { ok: boolean }).ok, true);
  });

  it('a project of "type": "commonjs" (npm init\'s default) loads a TypeScript driver module', () => {
    const cjs = join(tmp, 'cjs');
    mkdirSync(join(cjs, 'drivers'), { recursive: true });
    writeFileSync(
      join(cjs, 'package.json'),
      JSON.stringify({ name: 'cjs', version: '1.0.0', main: 'index.js', type: 'commonjs' }, null, 2),
    );
    const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'))!;
    npmInstall(cjs, [join(tmp, tarball)]);
    cpSync(
      join(ROOT, 'examples/races/drivers/prefetch_worker_driver.ts'),
      join(cjs, 'drivers/prefetch_worker_driver.ts'),
    );
    for (const [f, oracle] of [
      ['prefetch-after-release.yaml', 'use-after-free'],
      ['prefetch-cancel-on-release.yaml', null],
    ] as const) {
      cpSync(join(ROOT, 'examples/races', f), join(cjs, f));
      const r = run(process.execPath, ['node_modules/.bin/hetmem', 'explore', f, '--json'], cjs);
      assert.equal(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
      const out = JSON.parse(r.stdout) as { violation: { oracle: string } | null; matched: boolean };
      assert.equal(out.violation?.oracle ?? null, oracle, r.stdout);
      assert.equal(out.matched, true);
    }
  });

  it('a second install of hetmem in the same process is refused, naming both paths', () => {
    const drv = project(join(app, 'node_modules/drv'), 'drv');
    writeFileSync(join(drv, 'index.js'), "export { System } from 'hetmem';\n");
    cpSync(join(app, 'node_modules/hetmem'), join(drv, 'node_modules/hetmem'), { recursive: true });
    writeFileSync(join(app, 'two.mjs'), "import 'hetmem';\nawait import('drv');\n");
    const r = run(process.execPath, ['two.mjs'], app);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /DuplicateInstanceError: two copies of hetmem in one process/);
    assert.ok(r.stderr.includes(join(app, 'node_modules/hetmem/dist/lib/instance.js')), r.stderr);
    assert.ok(r.stderr.includes(join(drv, 'node_modules/hetmem/dist/lib/instance.js')), r.stderr);
  });
});

/**
 * The outcome of each corpus scenario under `hetmem explore` (pct, 1000 schedules): its
 * `explore: { expect }` declaration, or for a scenario without one the outcome test/races asserts.
 */
const UNDECLARED: Record<string, 'found' | 'clean'> = {
  'legacy-mirror': 'found',
  'migrate-self-invalidate': 'found',
  'no-read-retry': 'found',
  'oom-reap-sleeping-driver': 'found',
  'set-seq-unlocked': 'found',
  'interval-mirror': 'clean',
  'deferred-insert': 'clean',
  'read-munmap': 'clean',
  'iommufd-map-attach': 'clean',
  'iommufd-unmap-access': 'clean',
};

describe('examples/races outside the project, with `npm install <project>`', () => {
  let races = '';
  before(() => {
    races = project(join(realpathSync(mkdtempSync(join(tmpdir(), 'hetmem-races-'))), 'corpus'), 'corpus');
    cpSync(join(ROOT, 'examples/races'), races, { recursive: true });
    npmInstall(races, [ROOT]);
  });
  after(() => {
    rmSync(join(races, '..'), { recursive: true, force: true });
  });

  it('every scenario gives its declared outcome', () => {
    const files = readdirSync(races).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 10, files.join(' '));
    for (const f of files) {
      const doc = parse(readFileSync(join(races, f), 'utf8')) as { explore?: { expect?: string } };
      const expected = doc.explore?.expect ?? UNDECLARED[f.replace(/\.yaml$/, '')];
      assert.ok(expected === 'found' || expected === 'clean', `${f} declares no outcome`);
      const r = run('npx', ['--no-install', 'hetmem', 'explore', f, '--json'], races);
      assert.ok(r.status === 0 || r.status === 1, `${f}: exit ${r.status}: ${r.stderr}`);
      const out = JSON.parse(r.stdout) as { violation: unknown };
      assert.equal(out.violation === null ? 'clean' : 'found', expected, `${f}: ${r.stdout}`);
      if (doc.explore !== undefined)
        assert.equal(r.status, 0, `${f}: exit ${r.status} despite the declaration`);
    }
  });
});
