/**
 * Hostile driver modules through the command line: each is refused with one line naming the
 * module and the member (exit 2), and a callback that never returns is stopped by a bound.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BIN, hetmem, ROOT } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'hetmem-drv-'));
writeFileSync(
  join(dir, 'bad.mjs'),
  [
    'export const empty = {};',
    'export const notObject = 42;',
    'export const misspelt = { *rangeFault() {}, invalidte() {} };',
    'export const wrongType = { rangeFault: 5 };',
    'export const spins = { *rangeFault() { for (;;) {} } };',
    "export const yieldsForever = { *rangeFault() { for (;;) yield { kind: 'step', label: 'spin' }; } };",
    // Each turn one long call into a builtin: V8 takes an interrupt only every many turns.
    'const buf = new Uint8Array(1 << 27);',
    'export const fills = { *rangeFault() { for (;;) { buf.fill(1); buf.fill(2); } } };',
  ].join('\n'),
);
writeFileSync(join(dir, 'throws.mjs'), "throw new Error('driver init failed');\n");

/** examples/races/no-read-retry.yaml with its driver replaced by `module`'s `exp`. */
function scenario(module: string, exp: string): string {
  const text = readFileSync(`${ROOT}examples/races/no-read-retry.yaml`, 'utf8').replace(
    /driver: \{[^}]*\}/,
    `driver: { module: ${module}, export: ${exp} }`,
  );
  const file = join(dir, `${module.replace(/\W/g, '_')}-${exp}.yaml`);
  writeFileSync(file, text);
  return file;
}

function oneLineError(args: string[], code = 2): string {
  const r = hetmem(args);
  assert.equal(r.status, code, r.stdout + r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  return lines[0];
}

describe('driver modules: refused with one line', () => {
  const cases: [string, string, RegExp][] = [
    ['./missing.mjs', 'drv', /:9:19: driver module \.\/missing\.mjs: no such file$/],
    ['./throws.mjs', 'drv', /:9:19: driver module \.\/throws\.mjs: loading it threw: driver init failed$/],
    ['./bad.mjs', 'nope', /:9:\d+: driver module \.\/bad\.mjs: no export 'nope'; it exports empty, /],
    ['./bad.mjs', 'notObject', /export 'notObject' is a number, not a driver object$/],
    ['./bad.mjs', 'empty', /export 'empty' has no members; a driver sets some of invalidate, rangeFault/],
    ['./bad.mjs', 'misspelt', /'misspelt\.invalidte' is not a driver member \(did you mean 'invalidate'\?\)/],
    ['./bad.mjs', 'wrongType', /'wrongType\.rangeFault' is a number, expected a function$/],
  ];
  for (const [module, exp, message] of cases) {
    it(`${module} ${exp}`, () => {
      assert.match(oneLineError(['explore', scenario(module, exp)]), message);
    });
  }

  it('run refuses them the same way', () => {
    assert.match(oneLineError(['run', scenario('./bad.mjs', 'misspelt')]), /'misspelt\.invalidte'/);
  });
});

describe('driver callbacks that never return', () => {
  it('one that never yields is stopped by the time bound (run and explore)', () => {
    const file = scenario('./bad.mjs', 'spins');
    for (const cmd of ['run', 'explore']) {
      assert.match(
        oneLineError([cmd, file, '--callback-timeout', '300ms']),
        /driver module \.\/bad\.mjs: callback 'spins\.rangeFault' \(thread \w+\) ran 300 ms without yielding/,
      );
    }
  });

  it('one that never yields in an explore worker thread is stopped the same way', () => {
    const line = oneLineError([
      'explore',
      scenario('./bad.mjs', 'spins'),
      '--workers',
      '2',
      '--callback-timeout',
      '300ms',
    ]);
    assert.match(
      line,
      /driver module \.\/bad\.mjs: callback 'spins\.rangeFault' \(thread gpu\) ran 300 ms without yielding/,
    );
  });

  it('explore honours --budget while such a callback runs', () => {
    const line = oneLineError([
      'explore',
      scenario('./bad.mjs', 'spins'),
      '--budget',
      '300ms',
      '--callback-timeout',
      '5m',
    ]);
    assert.match(
      line,
      /the time budget ran out while driver callback 'spins\.rangeFault' of thread gpu was inside one step/,
    );
  });

  it('one that does not stop when asked is killed after the grace, with the line written for it', () => {
    const file = scenario('./bad.mjs', 'fills');
    const cases: [string[], RegExp][] = [
      [
        ['run', file, '--callback-timeout', '300ms'],
        /callback 'fills\.rangeFault' \(thread scenario\) ran 300 ms without yielding \(a loop that never ends\?\)/,
      ],
      [
        ['explore', file, '--workers', '2', '--callback-timeout', '300ms'],
        /callback 'fills\.rangeFault' \(thread gpu\) ran 300 ms without yielding \(a loop that never ends\?\)/,
      ],
      [
        ['explore', file, '--budget', '300ms', '--callback-timeout', '5m'],
        /the time budget ran out while driver callback 'fills\.rangeFault' of thread gpu was inside one step that did not return/,
      ],
    ];
    for (const [args, message] of cases) {
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      const ms = Date.now() - t0;
      assert.equal(r.signal, 'SIGKILL', `${args.join(' ')}: ${r.status} ${r.stderr}`);
      // Not the test's own timeout: the watchdog's kill, 5 s after it asked.
      assert.ok(ms < 50_000, `${ms} ms`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^\S+\.yaml: /);
      assert.match(lines[0], message);
      assert.match(
        lines[0],
        /; it did not stop within 5000 ms of being asked to \(.*\), so the process was killed$/,
      );
    }
  });

  it('one that yields for ever: run stops it at the yield bound, explore reports a livelock', () => {
    const file = scenario('./bad.mjs', 'yieldsForever');
    assert.match(
      oneLineError(['run', file]),
      /callback 'yieldsForever\.rangeFault' yielded 1000001 times without returning/,
    );
    const r = hetmem(['explore', file, '--json']);
    assert.equal(r.status, 1, r.stderr);
    const doc = JSON.parse(r.stdout) as { violation: { oracle: string; message: string } };
    assert.equal(doc.violation.oracle, 'livelock');
    assert.match(doc.violation.message, /still not finished: gpu in HMM_DMIRROR_READ \(line \d+\) at spin/);
  });
});

describe('driver work items that never return (a driver on the SDK)', () => {
  const fixture = (loop: string): string => join(ROOT, `test/fixtures/spin-work-${loop}.yaml`);
  const stopped = /driver module drivers\/spin_driver\.ts: callback 'spinDriver\.work gpu0\.spin'/;

  it('one that yields for ever: run stops it at the yield bound, naming the step it was queued in', () => {
    const line = oneLineError(['run', fixture('yields')]);
    assert.match(line, /spin-work-yields\.yaml:14:7: /);
    assert.match(line, stopped);
    assert.match(line, /yielded 1000001 times without returning .*during user step 1 \(GPU_SPIN, line 14\)$/);
  });

  it('one that yields for ever: explore reports it as the driver error, not a livelock (1 and 2 workers)', () => {
    for (const workers of ['1', '2']) {
      const line = oneLineError(['explore', fixture('yields'), '--workers', workers]);
      assert.match(line, stopped);
      assert.match(line, /yielded \d+ times without returning .*after user step 1 \(GPU_SPIN, line 14\)$/);
    }
  });

  it('one that never yields: the watchdog stops it in run and in explore --workers 2', () => {
    for (const cmd of [['run'], ['explore', '--workers', '2']]) {
      const line = oneLineError([...cmd, fixture('spins'), '--callback-timeout', '300ms']);
      assert.match(line, stopped);
      assert.match(
        line,
        /\(thread kworker:gpu0\.spin\) ran 300 ms without yielding .*user step 1 \(GPU_SPIN, line 14\)$/,
      );
    }
  });

  it('explore honours --budget while it runs', () => {
    const line = oneLineError(['explore', fixture('spins'), '--budget', '300ms', '--callback-timeout', '5m']);
    assert.match(
      line,
      /the time budget ran out while driver callback 'spinDriver\.work gpu0\.spin' of thread kworker:gpu0\.spin was inside one step/,
    );
  });
});
