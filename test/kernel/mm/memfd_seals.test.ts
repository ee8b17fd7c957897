/*
 * File seals on memfds: fcntl(F_ADD_SEALS / F_GET_SEALS), memfd_create()'s MFD_ALLOW_SEALING,
 * MFD_NOEXEC_SEAL and MFD_EXEC, and what each seal refuses. The expected values are what Linux
 * 6.18 does: each case was run on a live 6.18 kernel as an ordinary user (vm.memfd_noexec 0),
 * except where a case says it comes from the source.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  F_ADD_SEALS,
  F_GET_SEALS,
  F_SEAL_EXEC,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MADV,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_EXEC,
  MFD_HUGETLB,
  MFD_NOEXEC_SEAL,
  O_PATH,
  O_RDONLY,
  PROT_EXEC,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import { GUP_PIN_COUNTING_BIAS } from '../../../src/kernel/mm/page_alloc.ts';
import type { System } from '../../../src/kernel/system.ts';
import { assertOracles } from '../../../src/oracles/index.ts';
import { MiB, PAGE, RW, mapOk, setup } from './mm_helpers.ts';

const BUF = new Uint8Array(8192).fill(0x61);

function memfd(sys: System, flags: number, size = 0): number {
  const fd = sys.memfdCreate('t', flags);
  assert.ok(fd >= 0, `memfd_create: ${fd}`);
  if (size > 0) assert.equal(sys.ftruncate(fd, size), 0);
  return fd;
}

const seals = (sys: System, fd: number): number => sys.fcntl(fd, F_GET_SEALS);

describe('memfd seals', () => {
  it('a memfd starts sealed against seals unless it allows sealing; MFD_NOEXEC_SEAL starts with F_SEAL_EXEC', () => {
    const { sys } = setup();
    const plain = memfd(sys, 0);
    assert.equal(seals(sys, plain), F_SEAL_SEAL);
    assert.equal(sys.fcntl(plain, F_ADD_SEALS, F_SEAL_GROW), -Errno.EPERM);
    assert.equal(seals(sys, memfd(sys, MFD_ALLOW_SEALING)), 0);
    const noexec = memfd(sys, MFD_NOEXEC_SEAL);
    assert.equal(seals(sys, noexec), F_SEAL_EXEC);
    assert.equal(sys.fcntl(noexec, F_ADD_SEALS, F_SEAL_GROW), 0);
    assert.equal(seals(sys, noexec), F_SEAL_EXEC | F_SEAL_GROW);
    assert.equal(seals(sys, memfd(sys, MFD_EXEC)), F_SEAL_SEAL);
    assert.equal(seals(sys, memfd(sys, MFD_EXEC | MFD_ALLOW_SEALING)), 0);
    assert.equal(sys.memfdCreate('t', MFD_EXEC | MFD_NOEXEC_SEAL), -Errno.EINVAL);
    assert.equal(sys.memfdCreate('t', 0x40), -Errno.EINVAL);
  });

  it('F_SEAL_EXEC on a memfd with exec bits brings the write, grow and shrink seals, and needs no shared writable mapping', () => {
    const { sys, p } = setup();
    const fd = memfd(sys, MFD_ALLOW_SEALING);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_EXEC), 0);
    assert.equal(seals(sys, fd), 0x3e);
    const busy = memfd(sys, MFD_ALLOW_SEALING, PAGE);
    const m = mapOk(sys, p, PAGE, MAP_SHARED, RW, busy);
    assert.equal(sys.fcntl(busy, F_ADD_SEALS, F_SEAL_EXEC), -Errno.EBUSY);
    assert.equal(seals(sys, busy), 0);
    assert.equal(sys.munmap(p, m, PAGE), 0);
    assert.equal(sys.fcntl(busy, F_ADD_SEALS, F_SEAL_EXEC), 0);
    assert.equal(seals(sys, busy), 0x3e);
    // MFD_NOEXEC_SEAL took the exec bits off: F_SEAL_EXEC brings nothing, and a shared
    // executable mapping is still allowed (6.18 checks no exec seal in mmap).
    const noexec = memfd(sys, MFD_NOEXEC_SEAL, PAGE);
    assert.equal(sys.fcntl(noexec, F_ADD_SEALS, F_SEAL_EXEC), 0);
    assert.equal(seals(sys, noexec), F_SEAL_EXEC);
    assert.ok(sys.mmap(p, 0, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, noexec, 0) > 0);
  });

  it('refuses unknown seals and commands, takes the low 32 bits of the argument, and nothing after F_SEAL_SEAL', () => {
    const { sys } = setup();
    const fd = memfd(sys, MFD_ALLOW_SEALING);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, 0x40), -Errno.EINVAL);
    // From the source (do_fcntl() passes an unsigned int): the high bits of any u64 are dropped.
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, (1n << 60n) | BigInt(F_SEAL_GROW)), 0);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, 2 ** 62), 0);
    assert.equal(seals(sys, fd), F_SEAL_GROW);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, 2 ** 64), -Errno.EINVAL);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, 0x1_0000_0001), 0);
    assert.equal(seals(sys, fd), F_SEAL_SEAL | F_SEAL_GROW);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, 0), -Errno.EPERM);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL), -Errno.EPERM);
    assert.equal(sys.fcntl(999, F_GET_SEALS), -Errno.EBADF);
    // From the source: a command the model does not have, and -1 as the argument (0xffffffff).
    assert.equal(sys.fcntl(memfd(sys, MFD_ALLOW_SEALING), 1, 0), -Errno.EINVAL);
    assert.equal(sys.fcntl(memfd(sys, MFD_ALLOW_SEALING), F_ADD_SEALS, -1), -Errno.EINVAL);
  });

  it('F_SEAL_WRITE: busy while a shared mapping may write, then refuses shared writable mappings, writes and holes', () => {
    const { sys, p } = setup();
    const fd = memfd(sys, MFD_ALLOW_SEALING, 2 * PAGE);
    // A read-only shared mapping of a file open for writing may still be made writable.
    let m = mapOk(sys, p, PAGE, MAP_SHARED, PROT_READ, fd);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -Errno.EBUSY);
    assert.equal(sys.munmap(p, m, PAGE), 0);
    m = mapOk(sys, p, PAGE, MAP_PRIVATE, RW, fd);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
    assert.equal(seals(sys, fd), F_SEAL_WRITE);
    assert.equal(sys.mprotect(p, m, PAGE, RW), 0);
    assert.equal(sys.write(p, m, new Uint8Array([1])), 1);
    assert.equal(sys.munmap(p, m, PAGE), 0);
    assert.equal(sys.mmap(p, 0, PAGE, RW, MAP_SHARED, fd, 0), -Errno.EPERM);
    m = mapOk(sys, p, PAGE, MAP_SHARED, PROT_READ, fd);
    const sm = sys.smaps(p, m, m + PAGE);
    assert.ok(typeof sm !== 'number');
    assert.equal(sm[0].vmFlags, 'rd sh mr me ms');
    assert.equal(sys.mprotect(p, m, PAGE, RW), -Errno.EACCES);
    assert.equal(sys.pwrite(fd, BUF.subarray(0, 10), 0), -Errno.EPERM);
    assert.equal(sys.pwrite(fd, BUF.subarray(0, 0), 0), 0);
    assert.equal(sys.ftruncate(fd, PAGE), 0);
    assert.equal(sys.ftruncate(fd, 4 * PAGE), 0);
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    assert.equal(sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE), -Errno.EPERM);
    assert.equal(sys.fallocate(fd, 0, 0, PAGE), 0);
    assert.equal(sys.fallocate(fd, 0, 0, 4 * PAGE), 0);
    // MADV_REMOVE needs a shared mapping that may write, which this one no longer is.
    assert.equal(sys.madvise(p, m, PAGE, MADV.REMOVE), -Errno.EACCES);
    assertOracles(sys);
  });

  it('F_SEAL_FUTURE_WRITE: a writable mapping made before stays writable; no new one, no write(); F_SEAL_WRITE waits for it to go', () => {
    const { sys, p } = setup();
    const fd = memfd(sys, MFD_ALLOW_SEALING, 2 * PAGE);
    const w = mapOk(sys, p, PAGE, MAP_SHARED, RW, fd);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), 0);
    assert.equal(sys.write(p, w, new Uint8Array([5])), 1);
    assert.equal(sys.read(p, w, 1).data[0], 5);
    assert.equal(sys.mprotect(p, w, PAGE, PROT_READ), 0);
    assert.equal(sys.mprotect(p, w, PAGE, RW), 0);
    assert.equal(sys.mmap(p, 0, PAGE, RW, MAP_SHARED, fd, 0), -Errno.EPERM);
    assert.equal(sys.pwrite(fd, BUF.subarray(0, 10), 0), -Errno.EPERM);
    // The old mapping may still ask for a hole through MADV_REMOVE, which the seal refuses.
    assert.equal(sys.madvise(p, w, PAGE, MADV.REMOVE), -Errno.EPERM);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -Errno.EBUSY);
    assert.equal(sys.munmap(p, w, PAGE), 0);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
    assert.equal(seals(sys, fd), F_SEAL_WRITE | F_SEAL_FUTURE_WRITE);
  });

  it('F_SEAL_GROW and F_SEAL_SHRINK: size changes refused, writes stop short at the end, allocation past it refused', () => {
    const { sys } = setup();
    const fd = memfd(sys, MFD_ALLOW_SEALING, PAGE);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK), 0);
    assert.equal(sys.ftruncate(fd, PAGE), 0);
    assert.equal(sys.ftruncate(fd, PAGE - 1), -Errno.EPERM);
    assert.equal(sys.ftruncate(fd, PAGE + 1), -Errno.EPERM);
    assert.equal(sys.pwrite(fd, BUF, 0), PAGE);
    assert.equal(sys.pwrite(fd, BUF.subarray(0, 100), PAGE - 6), 6);
    assert.equal(sys.pwrite(fd, BUF.subarray(0, 100), 5000), -Errno.EPERM);
    assert.equal(sys.pwrite(fd, BUF.subarray(0, 100), PAGE), -Errno.EPERM);
    assert.equal(sys.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 2 * PAGE), -Errno.EPERM);
    assert.equal(sys.fallocate(fd, 0, 0, PAGE), 0);
    assert.equal(sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE), 0);
    assert.equal(sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 256 * PAGE), 0);
    const grow = memfd(sys, MFD_ALLOW_SEALING);
    assert.equal(sys.fcntl(grow, F_ADD_SEALS, F_SEAL_GROW), 0);
    assert.equal(sys.pwrite(grow, BUF.subarray(0, 1), 0), -Errno.EPERM);
    assert.equal(sys.ftruncate(grow, 0), 0);
  });

  it('a hugetlb memfd takes seals too', () => {
    const { sys } = setup({ hugetlbPages: 2 });
    const fd = memfd(sys, MFD_ALLOW_SEALING | MFD_HUGETLB);
    assert.equal(seals(sys, fd), 0);
    assert.equal(sys.ftruncate(fd, 2 * MiB), 0);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    assert.equal(sys.ftruncate(fd, 0), -Errno.EPERM);
  });

  it('F_SEAL_WRITE waits for a pinned page and gives up with EBUSY when the pin stays (from the source)', () => {
    const { sys } = setup();
    const fd = memfd(sys, MFD_ALLOW_SEALING, PAGE);
    assert.equal(sys.pwrite(fd, BUF.subarray(0, 1), 0), 1);
    const pfn = sys.fileOf(fd)!.inode.pages.load(0)!;
    // A long-term pin, as a DMA mapping of the page holds it.
    sys.phys.refcount[pfn] += GUP_PIN_COUNTING_BIAS;
    const t0 = sys.sched.clock.now;
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -Errno.EBUSY);
    // Four sleeps: 10 + 20 + 40 + 80 ms.
    assert.equal(sys.sched.clock.now - t0, 150_000_000);
    assert.equal(seals(sys, fd), 0);
    sys.phys.refcount[pfn] -= GUP_PIN_COUNTING_BIAS;
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
    assert.equal(sys.pwrite(fd, BUF.subarray(0, 1), 0), -Errno.EPERM);
  });

  it('fchmod(): F_SEAL_EXEC freezes the exec bits on tmpfs, and on hugetlbfs it does not', () => {
    const { sys, p } = setup({ hugetlbPages: 2 });
    const mode = (fd: number): number => sys.fileOf(fd)!.inode.mode;
    for (const huge of [false, true]) {
      const hf = huge ? MFD_HUGETLB : 0;
      const a = memfd(sys, hf | MFD_ALLOW_SEALING);
      assert.equal(mode(a), 0o777);
      assert.equal(sys.fchmod(a, 0o644), 0);
      assert.equal(sys.fcntl(a, F_ADD_SEALS, F_SEAL_EXEC), 0);
      // No exec bits when sealed: F_SEAL_EXEC alone.
      assert.equal(seals(sys, a), F_SEAL_EXEC);
      assert.equal(sys.fchmod(a, 0o600), 0);
      assert.equal(sys.fchmod(a, 0o700), huge ? 0 : -Errno.EPERM);
      assert.equal(sys.fchmod(a, 0o100), huge ? 0 : -Errno.EPERM);
      assert.equal(sys.fchmod(a, 0o666), 0);
      assert.equal(mode(a), 0o666);

      const b = memfd(sys, hf | MFD_ALLOW_SEALING);
      assert.equal(sys.fchmod(b, 0o700), 0);
      assert.equal(sys.fcntl(b, F_ADD_SEALS, F_SEAL_EXEC), 0);
      assert.equal(
        seals(sys, b),
        F_SEAL_EXEC | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE,
      );
      for (const m of [0o711, 0o600, 0o755]) assert.equal(sys.fchmod(b, m), huge ? 0 : -Errno.EPERM);

      const n = memfd(sys, hf | MFD_NOEXEC_SEAL);
      assert.equal(mode(n), 0o666);
      assert.equal(sys.fchmod(n, 0o777), huge ? 0 : -Errno.EPERM);
      assert.equal(sys.fchmod(n, 0o600), 0);

      // The permission bits only; a read-only open file may change them, an O_PATH one may not.
      const c = memfd(sys, hf);
      assert.equal(sys.fchmod(c, 0o7777), 0);
      assert.equal(mode(c), 0o7777);
      assert.equal(sys.fchmod(c, 0o170777), 0);
      assert.equal(mode(c), 0o777);
      const ro = sys.open(p, `/proc/self/fd/${c}`, O_RDONLY);
      assert.equal(sys.fchmod(ro, 0o644), 0);
      assert.equal(mode(c), 0o644);
      assert.equal(sys.fchmod(sys.open(p, `/proc/self/fd/${c}`, O_PATH), 0o600), -Errno.EBADF);
      assert.equal(sys.fchmod(99, 0o600), -Errno.EBADF);
    }
  });
});
