/**
 * The `read`, `write` and `lseek` steps: the file position of an open file, shared by dup() and
 * held under the file's f_pos_lock across a call, so two threads writing through one open file
 * never write at the same position.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exploreClean, RAM_FULL_WITH_MEMFD, runClean } from './helpers.ts';

describe('the read, write and lseek ops', () => {
  it('move the position of the open file, shared by dup and not by a second open', () => {
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
steps:
  - { op: memfd_create, save: m }
  - { op: write, fd: m, data: { fill: 3 }, length: 6KiB, expect: { ret: 6144 } }
  - { op: lseek, fd: m, whence: cur, expect: { ret: 6144 } }
  - { op: dup, fd: m, save: d }
  - { op: lseek, fd: d, offset: 4KiB, whence: set, expect: { ret: 4096 } }
  - { op: read, fd: m, length: 4KiB, expect: { ret: 2048, data: { fill: 3 } } }
  - { op: open, proc: p, fd: m, flags: [rdwr, append], save: a }
  - { op: lseek, fd: a, whence: cur, expect: { ret: 0 } }
  - { op: write, fd: a, data: { fill: 4 }, length: 2KiB, expect: { ret: 2048 } }
  - { op: lseek, fd: d, whence: cur, expect: { ret: 6144 } }
  - { op: lseek, fd: m, offset: -2048, whence: end, expect: { ret: 6144 } }
  - { op: read, fd: d, length: 1MiB, expect: { ret: 2048, data: { fill: 4 } } }
  - { op: fallocate, fd: m, offset: 8KiB, length: 4KiB }
  - { op: lseek, fd: m, offset: 8KiB, whence: data, expect: { errno: ENXIO } }
  - { op: lseek, fd: m, offset: 100, whence: hole, expect: { ret: 8192 } }
  - { op: close, fd: a }
  - { op: close, fd: d }
  - { op: close, fd: m }
`);
    assert.equal(report.steps.filter((s) => s.op === 'lseek').length, 7);
  });

  it("a device file seeks as its driver's llseek says: dmirror's default_llseek, none for iommufd", () => {
    runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
devices: { gpu0: { type: dmirror, memory: private } }
steps:
  - { op: dmirror_open, device: gpu0, proc: p, save: d }
  # default_llseek over a character device, whose size is 0.
  - { op: lseek, fd: d, offset: 100, whence: set, expect: { ret: 100 } }
  - { op: lseek, fd: d, offset: 5, whence: cur, expect: { ret: 105 } }
  - { op: lseek, fd: d, offset: -1, whence: set, expect: { errno: EINVAL } }
  - { op: lseek, fd: d, offset: 0, whence: data, expect: { errno: ENXIO } }
  - { op: lseek, fd: d, offset: -1, whence: hole, expect: { ret: 0 } }
  - { op: read, fd: d, length: 8, expect: { errno: EINVAL } }
  - { op: write, fd: d, data: { fill: 1 }, length: 8, expect: { errno: EINVAL } }
  - { op: dmirror_close, fd: d }
  - { op: iommufd_open, proc: p, save: i }
  - { op: lseek, fd: i, whence: set, expect: { errno: ESPIPE } }
  - { op: lseek, fd: i, whence: 5, expect: { errno: EINVAL } }
  - { op: close, fd: i }
`);
  });

  it("xe's noop_llseek leaves the position wherever it is asked to go", () => {
    runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
devices: { gpu0: { type: xe, config: { vram: 4MiB } } }
steps:
  - { op: device_open, device: gpu0, proc: p, save: x }
  - { op: lseek, fd: x, offset: 4096, whence: set, expect: { ret: 0 } }
  - { op: lseek, fd: x, offset: -1, whence: end, expect: { ret: 0 } }
  - { op: close, fd: x }
`);
  });

  it('two threads writing through one open file write one after the other, in every interleaving', () => {
    exploreClean(
      `${RAM_FULL_WITH_MEMFD}  - { op: dup, fd: mfd, save: d }
threads:
  a:
    - { op: write, fd: mfd, length: 256KiB, data: { fill: 5 }, expect: { ret: 262144 } }
  b:
    - { op: write, fd: d, length: 256KiB, data: { fill: 6 }, expect: { ret: 262144 } }
final:
  - { op: lseek, fd: mfd, whence: end, expect: { ret: 524288 } }
  - { op: lseek, fd: d, whence: cur, expect: { ret: 524288 } }
  - { op: check }
`,
      2000,
      1,
    );
  });
});
