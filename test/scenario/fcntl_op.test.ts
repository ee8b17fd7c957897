/** The `fcntl` and `fchmod` steps: seals on a memfd by name and by number, and what they refuse. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runClean } from './helpers.ts';

describe('the fcntl op', () => {
  it('adds seals by name, reads them back as a number, and a write seal refuses shared writable mappings and writes', () => {
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
steps:
  - { op: memfd_create, flags: [allow_sealing], save: m }
  - { op: ftruncate, fd: m, length: 8KiB }
  - { op: fcntl, fd: m, cmd: get_seals, expect: { ret: 0 } }
  - { op: mmap, proc: p, length: 8KiB, prot: [read], flags: [shared], fd: m, save: ro }
  - { op: fcntl, fd: m, cmd: add_seals, seals: [write], expect: { errno: EBUSY } }
  - { op: munmap, proc: p, addr: ro, length: 8KiB }
  - { op: fcntl, fd: m, cmd: add_seals, seals: [write, grow], expect: { ret: 0 } }
  - { op: fcntl, fd: m, cmd: get_seals, expect: { ret: 12 } }
  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [shared], fd: m, expect: { errno: EPERM } }
  - { op: pwrite, fd: m, data: { fill: 1 }, length: 4, expect: { errno: EPERM } }
  - { op: ftruncate, fd: m, length: 12KiB, expect: { errno: EPERM } }
  - { op: fcntl, fd: m, cmd: add_seals, seals: 4294967297, expect: { ret: 0 } }
  - { op: fcntl, fd: m, cmd: add_seals, seals: [shrink], expect: { errno: EPERM } }
  - { op: dup, fd: m, save: d }
  - { op: fcntl, fd: d, cmd: get_seals, expect: { ret: 13 } }
  - { op: memfd_create, flags: [noexec_seal], save: n }
  - { op: fcntl, fd: n, cmd: get_seals, expect: { ret: 32 } }
`);
    assert.deepEqual(
      report.steps.filter((s) => s.op === 'fcntl').map((s) => s.ret),
      [0, -16, 0, 12, 0, -1, 13, 32],
    );
  });

  it('fchmod takes the mode as a number; F_SEAL_EXEC then refuses a change of the exec bits', () => {
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
steps:
  - { op: memfd_create, flags: [allow_sealing], save: m }
  - { op: fchmod, fd: m, mode: 0o644, expect: { ret: 0 } }
  - { op: fcntl, fd: m, cmd: add_seals, seals: [exec], expect: { ret: 0 } }
  - { op: fcntl, fd: m, cmd: get_seals, expect: { ret: 32 } }
  - { op: fchmod, fd: m, mode: 0o600, expect: { ret: 0 } }
  - { op: fchmod, fd: m, mode: 0o755, expect: { errno: EPERM } }
`);
    assert.deepEqual(
      report.steps.filter((s) => s.op === 'fchmod').map((s) => s.ret),
      [0, 0, -1],
    );
  });

  it('fchmod takes the low 16 bits of any u64 mode, as the umode_t of the syscall does', () => {
    // On a live 6.18 kernel, fchmod() through syscall() with ~0 set the mode to 07777, with
    // 2^53 + 0644 to 0644, and with 0x10755 to 03525.
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
steps:
  - { op: memfd_create, flags: [allow_sealing], save: m }
  - { op: fchmod, fd: m, mode: 18446744073709551615, expect: { ret: 0 } }
  - { op: fcntl, fd: m, cmd: add_seals, seals: [exec], expect: { ret: 0 } }
  - { op: fchmod, fd: m, mode: 9007199254745087, expect: { ret: 0 } }
  - { op: fchmod, fd: m, mode: 0x10755, expect: { errno: EPERM } }
`);
    assert.deepEqual(
      report.steps.filter((s) => s.op === 'fchmod').map((s) => s.ret),
      [0, 0, -1],
    );
  });
});
