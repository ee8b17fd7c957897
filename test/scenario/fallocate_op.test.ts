/** The `fallocate` step: allocation, a punched hole seen through a mapping, and the mode checks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runClean } from './helpers.ts';

describe('the fallocate op', () => {
  it('allocates a memfd range, punches a hole a shared mapping sees, and refuses a hole without keep_size', () => {
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0, hugetlb_pages: 4 }
processes: [p]
steps:
  - { op: memfd_create, save: m }
  - { op: fallocate, fd: m, length: 8KiB, expect: { ret: 0 } }
  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [shared], fd: m, save: a }
  - { op: cpu_write, proc: p, addr: a, length: 8KiB, data: { fill: 0x5a } }
  - { op: fallocate, fd: m, mode: [punch_hole, keep_size], offset: 4KiB, length: 4KiB, expect: { ret: 0 } }
  - { op: cpu_read, proc: p, addr: a, length: 4, expect: { data: { fill: 0x5a } } }
  - { op: cpu_read, proc: p, addr: a+4096, length: 4, expect: { data: { fill: 0 } } }
  - { op: fallocate, fd: m, mode: [punch_hole], length: 4KiB, expect: { errno: EOPNOTSUPP } }
  - { op: fallocate, fd: m, mode: [zero_range], length: 4KiB, expect: { errno: EOPNOTSUPP } }
  - { op: memfd_create, flags: [hugetlb], save: h }
  - { op: fallocate, fd: h, length: 6MiB, expect: { ret: 0 } }
  - { op: fallocate, fd: h, offset: 6MiB, length: 4MiB, expect: { errno: ENOSPC } }
`);
    assert.deepEqual(
      report.steps.filter((s) => s.op === 'fallocate').map((s) => s.ret),
      [0, 0, -95, -95, 0, -28],
    );
  });
});
