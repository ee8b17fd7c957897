/** Every example in examples/ runs with exit 0 (examples/races/ are explored, not run). */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hetmem, ROOT, tempFile } from './helpers.ts';

const examples = readdirSync(join(ROOT, 'examples'))
  .filter((f) => /\.(ya?ml|json)$/.test(f))
  .sort();

describe('examples', () => {
  it('there are examples to learn from', () => {
    assert.ok(examples.length >= 12, `only ${examples.length} examples`);
  });
  for (const f of examples) {
    it(`${f} runs and every expectation holds`, () => {
      const r = hetmem(['run', `examples/${f}`]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /ok: \d+ steps, every expectation held/);
    });
  }

  it('the built-in demo runs', () => {
    const r = hetmem(['run']);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /fork/);
    assert.match(r.stdout, /HMM_DMIRROR_READ/);
    assert.match(r.stdout, /HMM_DMIRROR_MIGRATE_TO_DEV/);
    assert.match(r.stdout, /HMM_DMIRROR_MIGRATE_TO_SYS/);
    assert.match(r.stdout, /stats/);
  });

  it('run --json prints one document with ok, steps and stats', () => {
    const r = hetmem(['run', `examples/${examples[0]}`, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { ok: boolean; steps: { op: string; ret: unknown }[]; stats: object };
    assert.equal(doc.ok, true);
    assert.ok(doc.steps.length > 0);
    assert.equal(typeof doc.stats, 'object');
    const mmap = doc.steps.find((s) => s.op === 'mmap');
    assert.ok(mmap !== undefined);
    assert.match(String(mmap.ret), /^0x[0-9a-f]+$/, '64-bit addresses are hex strings');
  });

  it('a failed expectation exits 1', () => {
    const file = tempFile(
      'fail.yaml',
      [
        'version: 1',
        'processes: [p]',
        'steps:',
        '  - { op: mmap, proc: p, length: 4KiB, prot: [read], flags: [private, anonymous], save: buf }',
        '  - { op: cpu_write, proc: p, addr: buf, length: 4, data: { fill: 1 } }',
        '',
      ].join('\n'),
    );
    const r = hetmem(['run', file]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /failed with -EFAULT/);
  });

  it('--trace writes Chrome Trace Event JSON', () => {
    const out = tempFile('trace.json', '');
    const r = hetmem(['run', `examples/${examples[0]}`, '--trace', out]);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: Record<string, unknown>[] };
    assert.ok(Array.isArray(doc.traceEvents));
    assert.ok(doc.traceEvents.length > 0);
    for (const e of doc.traceEvents) {
      assert.equal(typeof e.name, 'string');
      assert.match(String(e.ph), /^[BEiXM]$/);
      assert.equal(typeof e.ts, 'number');
      assert.equal(typeof e.pid, 'number');
      assert.equal(typeof e.tid, 'number');
    }
    assert.ok(doc.traceEvents.some((e) => e.ph === 'M' && e.name === 'thread_name'));
    assert.ok(doc.traceEvents.some((e) => e.ph === 'B'));
    // Spans nest properly per track.
    const depth = new Map<string, number>();
    for (const e of doc.traceEvents) {
      const key = `${String(e.pid)}/${String(e.tid)}`;
      if (e.ph === 'B') depth.set(key, (depth.get(key) ?? 0) + 1);
      if (e.ph === 'E') {
        assert.ok((depth.get(key) ?? 0) > 0, 'E without B');
        depth.set(key, depth.get(key)! - 1);
      }
    }
  });

  it('explore --workers 2 loads the scenario target in worker threads', () => {
    const file = tempFile(
      'threads.yaml',
      [
        'version: 1',
        'devices: { gpu0: { type: dmirror, memory: private } }',
        'processes: [p]',
        'setup:',
        '  - { op: mmap, proc: p, length: 16KiB, prot: [read, write], flags: [private, anonymous], save: buf }',
        '  - { op: cpu_write, proc: p, addr: buf, length: 16KiB, data: { pattern: index32 } }',
        '  - { op: dmirror_open, device: gpu0, proc: p, save: gpu }',
        'threads:',
        '  dev: [ { op: HMM_DMIRROR_READ, fd: gpu, addr: buf, npages: 4, expect: { data: { pattern: index32 } } } ]',
        '  cpu: [ { op: cpu_write, proc: p, addr: buf, length: 4KiB, data: { pattern: index32 } } ]',
        'final:',
        '  - { op: check }',
        '',
      ].join('\n'),
    );
    const r = hetmem(['explore', file, '--workers', '2', '--budget', '20', '--json']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout) as { violation: unknown; schedules: number };
    assert.equal(doc.violation, null);
    assert.ok(doc.schedules >= 1);
  });

  it('schema prints a JSON Schema naming every op', () => {
    const r = hetmem(['schema']);
    assert.equal(r.status, 0);
    const s = JSON.stringify(JSON.parse(r.stdout));
    for (const op of ['mmap', 'HMM_DMIRROR_SNAPSHOT', 'IOMMU_IOAS_MAP', 'expect_stats'])
      assert.ok(s.includes(`"${op}"`), op);
  });
});
