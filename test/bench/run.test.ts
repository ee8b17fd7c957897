/**
 * Runs the benchmark suite in --smoke mode (as CI does) and checks the JSON shape of every
 * figure. It asserts nothing about speed: performance is judged by the benchmarks themselves.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = fileURLToPath(new URL('../..', import.meta.url));

const KEYS = new Set(['name', 'value', 'unit', 'anchor', 'ratio', 'goal', 'pass', 'reason']);

test('bench --smoke --json prints well-formed, finite figures', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--json'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { figures: Record<string, unknown>[] };
  assert.deepEqual(Object.keys(doc), ['figures']);
  assert.ok(Array.isArray(doc.figures) && doc.figures.length > 0, 'no figures');
  const names = new Set<string>();
  for (const f of doc.figures) {
    const name = f.name as string;
    assert.equal(typeof name, 'string');
    assert.ok(!names.has(name), `duplicate figure ${name}`);
    names.add(name);
    for (const k of Object.keys(f)) assert.ok(KEYS.has(k), `${name}: unexpected key ${k}`);
    assert.equal(typeof f.value, 'number', `${name}: value`);
    assert.ok(Number.isFinite(f.value), `${name}: value ${String(f.value)} is not finite`);
    assert.equal(typeof f.unit, 'string', `${name}: unit`);
    assert.equal(typeof f.goal, 'string', `${name}: goal`);
    assert.equal(typeof f.pass, 'boolean', `${name}: pass`);
    for (const k of ['anchor', 'ratio'] as const) {
      if (f[k] === undefined) continue;
      assert.ok(
        typeof f[k] === 'number' && Number.isFinite(f[k]),
        `${name}: ${k} ${JSON.stringify(f[k])} is not finite`,
      );
    }
    if (f.anchor !== undefined) assert.notEqual(f.ratio, undefined, `${name}: an anchor without a ratio`);
  }
  // GPU faults through each driver model, at 4 KiB and 2 MiB granularity.
  for (const name of ['gpu.xe_faults.4k', 'gpu.xe_faults.2m', 'gpu.uvm_faults.4k', 'gpu.uvm_faults.2m'])
    assert.ok(names.has(name), `no ${name} figure`);
  for (const prefix of ['faults.', 'notifier.', 'hmm.', 'iommufd.', 'explore.', 'memory.', 'gpu.', 'sim.']) {
    assert.ok(
      [...names].some((n) => n.startsWith(prefix)),
      `no ${prefix}* figure`,
    );
  }
});

test('bench --filter runs only the matching suite', { timeout: 60_000 }, () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/run.ts', '--smoke', '--json', '--filter', 'explore'],
    { cwd: root, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { figures: { name: string }[] };
  assert.ok(doc.figures.length > 0);
  for (const f of doc.figures) assert.ok(f.name.startsWith('explore.'), f.name);
});
