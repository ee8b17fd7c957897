/** The `open` step: a second open file of a memfd through /proc/self/fd/N, and of a dmirror node. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runClean } from './helpers.ts';

describe('the open op', () => {
  it('opens a memfd again read-only (no seals, no shared writable mapping) and truncates with trunc', () => {
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
steps:
  - { op: memfd_create, flags: [allow_sealing], save: m }
  - { op: ftruncate, fd: m, length: 8KiB }
  - { op: open, proc: p, fd: m, flags: [rdonly], save: ro }
  - { op: fcntl, fd: ro, cmd: add_seals, seals: [shrink], expect: { errno: EPERM } }
  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [shared], fd: ro, expect: { errno: EACCES } }
  - { op: open, proc: p, fd: ro, flags: [path], save: pa }
  - { op: fcntl, fd: pa, cmd: get_seals, expect: { errno: EBADF } }
  - { op: open, proc: p, fd: pa, flags: [rdwr, trunc], save: rw }
  - { op: pread, fd: ro, length: 16, expect: { ret: 0 } }
  - { op: fcntl, fd: rw, cmd: add_seals, seals: [grow], expect: { ret: 0 } }
  - { op: fcntl, fd: m, cmd: get_seals, expect: { ret: 4 } }
  - { op: open, proc: p, fd: m, flags: [rdwr, creat, excl], expect: { errno: EEXIST } }
  - { op: close, fd: m }
  - { op: close, fd: rw }
  - { op: pwrite, fd: ro, data: { fill: 1 }, length: 4, expect: { errno: EBADF } }
  - { op: close, fd: ro }
  - { op: close, fd: pa }
`);
    assert.deepEqual(
      report.steps.filter((s) => s.op === 'open').map((s) => s.ret >= 0),
      [true, true, true, false],
    );
  });

  it('opens a dmirror node again: a second mirror file of the device', () => {
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
devices: { gpu0: { type: dmirror, memory: private } }
steps:
  - { op: dmirror_open, device: gpu0, proc: p, save: d }
  - { op: open, proc: p, fd: d, flags: [rdwr], save: d2 }
  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [private, anonymous], save: a }
  - { op: cpu_write, proc: p, addr: a, data: { fill: 7 }, length: 8KiB }
  - { op: HMM_DMIRROR_READ, fd: d2, addr: a, npages: 2, expect: { cpages: 2, data: { fill: 7 } } }
  - { op: dmirror_close, fd: d2 }
  - { op: dmirror_close, fd: d }
`);
    assert.equal(report.steps.find((s) => s.op === 'open')!.ret >= 0, true);
  });
});
