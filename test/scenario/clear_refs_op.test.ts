/** The `clear_refs` step: the values /proc/PID/clear_refs takes, and one it refuses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runClean } from './helpers.ts';

describe('the clear_refs op', () => {
  it('takes 1 to 5 and refuses 6 with EINVAL', () => {
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
steps:
  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [private, anonymous], save: a }
  - { op: cpu_write, proc: p, addr: a, data: { fill: 1 }, length: 8KiB }
  - { op: clear_refs, proc: p, value: 1 }
  - { op: clear_refs, proc: p, value: 2 }
  - { op: clear_refs, proc: p, value: 3 }
  - { op: clear_refs, proc: p, value: 4 }
  - { op: clear_refs, proc: p, value: 5 }
  - { op: clear_refs, proc: p, value: 6, expect: { errno: EINVAL } }
`);
    assert.deepEqual(
      report.steps.filter((s) => s.op === 'clear_refs').map((s) => s.ret),
      [0, 0, 0, 0, 0, -22],
    );
  });
});
