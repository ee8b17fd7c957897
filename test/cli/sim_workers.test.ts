import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hetmem, tempFile } from './helpers.ts';

const SWEEP =
  'version: 1\ngpu_memory: 4MiB\nsweep:\n  footprint: [2MiB, 6MiB]\n  policy: [ondemand, random4k, tree]\n';

type Run = Record<string, unknown>;

/** The runs of a sweep's --json output, without the host's wall time. */
function runs(stdout: string): Run[] {
  return (JSON.parse(stdout) as { runs: Run[] }).runs.map(({ wall_ms: _, ...r }) => r);
}

describe('hetmem sim sweeps on worker threads', () => {
  const f = tempFile('s.yaml', SWEEP);

  it('prints the same results in grid order with one worker or several', () => {
    const one = hetmem(['sim', f, '--json', '--workers', '1']);
    const two = hetmem(['sim', f, '--json', '--workers', '2']);
    const many = hetmem(['sim', f, '--json', '--workers', '64']);
    for (const r of [one, two, many]) assert.equal(r.status, 0, r.stderr);
    const a = runs(one.stdout);
    assert.deepEqual(
      a.map((r) => [r.footprint, r.policy]),
      [
        ['2MiB', 'ondemand'],
        ['2MiB', 'random4k'],
        ['2MiB', 'tree'],
        ['6MiB', 'ondemand'],
        ['6MiB', 'random4k'],
        ['6MiB', 'tree'],
      ],
    );
    assert.ok(a.some((r) => (r.evictions as number) > 0));
    assert.deepEqual(runs(two.stdout), a);
    assert.deepEqual(runs(many.stdout), a);
  });

  it('the table is the same too (it has no host time)', () => {
    const one = hetmem(['sim', f, '--workers', '1']);
    const two = hetmem(['sim', f, '--workers', '2']);
    assert.equal(one.status, 0, one.stderr);
    assert.equal(two.stdout, one.stdout);
    assert.equal(one.stdout.trim().split('\n').length, 7);
  });

  it('a bad --workers and a point the simulator refuses are one line, exit 2', () => {
    for (const w of ['0', 'two', '-1']) {
      const r = hetmem(['sim', f, '--workers', w]);
      assert.equal(r.status, 2, w);
      assert.match(r.stderr, /^hetmem: --workers takes an integer/);
    }
    const big = tempFile('big.yaml', 'version: 1\nsweep:\n  footprint: [1MiB, 1TiB]\n');
    const r = hetmem(['sim', big, '--workers', '2']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'hetmem: footprint x processes must stay below 16GiB of modelled RAM\n');
  });
});
