import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { hetmem, tempFile } from './helpers.ts';

describe('hetmem sim (command line)', () => {
  it('--json prints the counters and the modelled time', () => {
    const r = hetmem([
      'sim',
      '--workload',
      'stream',
      '--footprint',
      '8MiB',
      '--policy',
      'ondemand',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as Record<string, number>;
    for (const k of ['faults', 'batches', 'time_us', 'evictions', 'migrated_bytes'])
      assert.equal(typeof j[k], 'number', k);
    assert.ok(j.us_per_fault > 46.5 && j.us_per_fault < 47.5);
  });

  it('a sim file with a sweep prints one table', () => {
    const f = tempFile('s.yaml', 'version: 1\nfootprint: 4MiB\nsweep:\n  policy: [ondemand, tree]\n');
    const r = hetmem(['sim', f]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /policy\s+faults\s+far_faults\s+batches/);
  });

  it('a trace replays; a bad trace line is FILE:LINE:COL and exit 2', () => {
    assert.equal(hetmem(['sim', '--trace-in', 'examples/sim/traces/kfd.txt', '--format', 'kfd']).status, 0);
    const bad = tempFile('t.log', 'f,7f00,1,0,1\nf,7f00,1,0,7\n');
    const r = hetmem(['sim', '--trace-in', bad, '--format', 'uvm-eval']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `${bad}:2:12: unknown access type '7'\n`);
  });

  it('a binary UVM tools event trace replays; a truncated record is FILE:OFFSET and exit 2', () => {
    const ok = hetmem([
      'sim',
      '--trace-in',
      'examples/sim/traces/nvuvm-v2.bin',
      '--format',
      'nvuvm-v2',
      '--json',
    ]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as Record<string, number>).cpu_faults, 1);
    const bad = tempFile('t.bin', '');
    writeFileSync(bad, readFileSync('examples/sim/traces/nvuvm-v1.bin').subarray(0, 100));
    const r = hetmem(['sim', '--trace-in', bad, '--format', 'nvuvm-v1']);
    assert.equal(r.status, 2);
    assert.equal(
      r.stderr,
      `${bad}:64: truncated UvmEventEntry_V1: 36 of 64 bytes (a file of UvmEventEntry_V1 records is a multiple of 64 bytes)\n`,
    );
  });

  it('bad flags and files are one line and exit 2', () => {
    for (const args of [
      ['--policy', 'best'],
      ['--footprint', '64MB'],
      ['--set', 'nonsense'],
      ['--set', 'batch_size=x'],
      ['--format', 'kfd'],
      ['--trace-in', '/nonexistent', '--format', 'kfd'],
    ]) {
      const r = hetmem(['sim', ...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    const f = tempFile('s.yaml', 'version: 1\nwarps: -1\n');
    const r = hetmem(['sim', f]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `${f}:2:8: warps takes an integer >= 1\n`);
  });
});
