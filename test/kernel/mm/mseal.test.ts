/*
 * mseal(2) and what a seal refuses (munmap, mmap over it, mremap, mprotect, discarding advice).
 * The expected values are what Linux 6.18 does: each case was run on a live 6.18 kernel.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { VM } from '../../../src/kernel/mm/mm_types.ts';
import {
  MADV,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import {
  ANON_PRIVATE,
  ANON_SHARED,
  PAGE,
  RW,
  failsCleanly,
  readOk,
  setup,
  teardown,
  writeOk,
} from './mm_helpers.ts';

const W = 0x6000_0000_0000;

function mapAt(sys: System, p: Process, addr: number, len: number, prot = RW, flags = ANON_PRIVATE): number {
  return sys.mmap(p, addr, len, prot, flags | MAP_FIXED_NOREPLACE);
}

/** The VMAs of [from, to) as `start-end perms sealed?`, page offsets from W. */
function layout(p: Process, from = W, to = W + 256 * PAGE): string[] {
  return p
    .mm!.vmasIn(from, to)
    .map(
      (v) =>
        `${(v.start - W) / PAGE}-${(v.end - W) / PAGE} ${(v.flags & VM.WRITE) !== 0 ? 'rw' : (v.flags & VM.READ) !== 0 ? 'r' : 'none'}${(v.flags & VM.SEALED) !== 0 ? ' sealed' : ''}`,
    );
}

describe('mseal(2)', () => {
  it('checks its arguments as do_mseal() does', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    assert.equal(sys.mseal(p, W + 1, PAGE), -Errno.EINVAL, 'unaligned start');
    assert.equal(sys.mseal(p, W, PAGE, 1), -Errno.EINVAL, 'a flag');
    assert.equal(sys.mseal(p, W, 0), 0, 'an empty range');
    assert.equal(sys.mseal(p, 0, 0), 0, 'an empty range at 0');
    assert.equal(sys.mseal(p, W, 9 * PAGE), -Errno.ENOMEM, 'past the mapping');
    assert.equal(sys.mseal(p, W + 7 * PAGE, 3 * PAGE), -Errno.ENOMEM, 'starting in it, ending past it');
    assert.deepEqual(layout(p), ['0-8 rw'], 'a failed mseal seals nothing');
    // The u64 checks: a length that PAGE_ALIGN() wraps to 0, an end past 2^64, a range above TASK_SIZE.
    assert.equal(sys.mseal(p, W, 2n ** 64n - 1n), -Errno.EINVAL);
    assert.equal(sys.mseal(p, W, 2n ** 64n - 2n * BigInt(PAGE)), -Errno.EINVAL);
    assert.equal(sys.mseal(p, 2n ** 60n, PAGE), -Errno.ENOMEM);
    assert.equal(sys.mseal(p, W, PAGE, 2n ** 63n), -Errno.EINVAL);
    teardown(sys);
  });

  it('seals part of a VMA as a VMA of its own; sealed neighbours merge', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 2 * PAGE), W);
    assert.equal(mapAt(sys, p, W + 2 * PAGE, 2 * PAGE), W + 2 * PAGE);
    assert.equal(sys.mseal(p, W, PAGE), 0);
    assert.equal(sys.mseal(p, W + 2 * PAGE, 2 * PAGE), 0);
    assert.deepEqual(layout(p), ['0-1 rw sealed', '1-2 rw', '2-4 rw sealed']);
    assert.equal(sys.mseal(p, W + PAGE, PAGE), 0);
    assert.deepEqual(layout(p), ['0-4 rw sealed']);
    assert.equal(sys.mseal(p, W, 4 * PAGE), 0, 'sealing again is no error');
    teardown(sys);
  });

  it('munmap of a sealed VMA fails and unmaps nothing; the split before it stays', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    writeOk(sys, p, W, new Uint8Array(8 * PAGE).fill(1));
    assert.equal(sys.mseal(p, W + 2 * PAGE, 2 * PAGE), 0);
    assert.deepEqual(layout(p), ['0-2 rw', '2-4 rw sealed', '4-8 rw']);
    assert.equal(sys.munmap(p, W + PAGE, 2 * PAGE), -Errno.EPERM);
    assert.deepEqual(layout(p), ['0-1 rw', '1-2 rw', '2-4 rw sealed', '4-8 rw']);
    assert.equal(sys.munmap(p, W + PAGE, 6 * PAGE), -Errno.EPERM);
    assert.deepEqual(readOk(sys, p, W, 8 * PAGE), new Uint8Array(8 * PAGE).fill(1), 'nothing was unmapped');
    assert.equal(sys.munmap(p, W + 4 * PAGE, 4 * PAGE), 0, 'unsealed VMAs still unmap');
    teardown(sys);
  });

  it('mprotect changes the VMAs before a sealed one, then fails', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    assert.equal(sys.mseal(p, W + 2 * PAGE, 2 * PAGE), 0);
    assert.equal(sys.mprotect(p, W, 8 * PAGE, PROT_READ), -Errno.EPERM);
    assert.deepEqual(layout(p), ['0-2 r', '2-4 rw sealed', '4-8 rw']);
    assert.equal(sys.mprotect(p, W + 4 * PAGE, 4 * PAGE, PROT_READ), 0);
    // mprotect_fixup() asks for the seal before it sees that nothing would change.
    assert.equal(sys.mprotect(p, W + 2 * PAGE, PAGE, RW), -Errno.EPERM);
    teardown(sys);
  });

  it('mmap(MAP_FIXED) over a sealed VMA fails, leaving the split it made at its start', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    assert.equal(mapAt(sys, p, W + 4 * PAGE, 4 * PAGE, PROT_READ), W + 4 * PAGE);
    assert.equal(sys.mseal(p, W + 4 * PAGE, 4 * PAGE), 0);
    assert.equal(sys.mmap(p, W + 2 * PAGE, 4 * PAGE, RW, ANON_PRIVATE | MAP_FIXED), -Errno.EPERM);
    assert.deepEqual(layout(p), ['0-2 rw', '2-4 rw', '4-8 r sealed']);
    teardown(sys);
  });

  it('mremap of a sealed VMA, or onto one, fails', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    assert.equal(mapAt(sys, p, W + 16 * PAGE, 4 * PAGE), W + 16 * PAGE);
    assert.equal(sys.mseal(p, W, 4 * PAGE), 0);
    assert.equal(sys.mremap(p, W, PAGE, PAGE, 0, 0), -Errno.EPERM, 'even a remap that changes nothing');
    assert.equal(sys.mremap(p, W, 4 * PAGE, 2 * PAGE, 0, 0), -Errno.EPERM, 'shrink');
    assert.equal(sys.mremap(p, W, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE, 0), -Errno.EPERM, 'grow');
    failsCleanly(sys, p, 'a move onto a sealed VMA', Errno.EPERM, () =>
      sys.mremap(p, W + 16 * PAGE, 2 * PAGE, 2 * PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, W + 2 * PAGE),
    );
    teardown(sys);
  });

  it('refuses advice that discards a sealed read-only private anonymous mapping', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 4 * PAGE, PROT_READ), W);
    assert.equal(sys.mseal(p, W, 4 * PAGE), 0);
    for (const advice of [MADV.DONTNEED, MADV.FREE, MADV.DONTFORK, MADV.WIPEONFORK, MADV.DONTNEED_LOCKED])
      assert.equal(sys.madvise(p, W, PAGE, advice), -Errno.EPERM, `advice ${advice}`);
    for (const advice of [MADV.WILLNEED, MADV.NORMAL, MADV.PAGEOUT, MADV.COLD])
      assert.equal(sys.madvise(p, W, PAGE, advice), 0, `advice ${advice}`);
    // PROT_NONE is not writable either.
    assert.equal(mapAt(sys, p, W + 8 * PAGE, 2 * PAGE, PROT_NONE), W + 8 * PAGE);
    assert.equal(sys.mseal(p, W + 8 * PAGE, 2 * PAGE), 0);
    assert.equal(sys.madvise(p, W + 8 * PAGE, PAGE, MADV.DONTNEED), -Errno.EPERM);
    // Shared anonymous memory is a file mapping: discarding it is allowed.
    assert.equal(mapAt(sys, p, W + 16 * PAGE, 4 * PAGE, PROT_READ, ANON_SHARED), W + 16 * PAGE);
    assert.equal(sys.mseal(p, W + 16 * PAGE, 4 * PAGE), 0);
    assert.equal(sys.madvise(p, W + 16 * PAGE, PAGE, MADV.DONTNEED), 0);
    assert.equal(sys.madvise(p, W + 16 * PAGE, PAGE, MADV.REMOVE), 0);
    teardown(sys);
  });

  it('discards a writable sealed mapping, and the VMAs before a refused one', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    assert.equal(mapAt(sys, p, W + 4 * PAGE, 4 * PAGE, PROT_READ), W + 4 * PAGE);
    writeOk(sys, p, W, new Uint8Array(4 * PAGE).fill(7));
    assert.equal(sys.mseal(p, W, 4 * PAGE), 0);
    assert.equal(sys.madvise(p, W, PAGE, MADV.DONTNEED), 0, 'writable: allowed');
    assert.equal(sys.mseal(p, W + 4 * PAGE, 4 * PAGE), 0);
    assert.equal(sys.madvise(p, W, 8 * PAGE, MADV.DONTNEED), -Errno.EPERM);
    assert.deepEqual(
      readOk(sys, p, W, 4 * PAGE),
      new Uint8Array(4 * PAGE),
      'the writable part was discarded',
    );
    teardown(sys);
  });

  it('mlock works on sealed memory, and a forked child keeps the seal', () => {
    const { sys, p } = setup({ rlimitMemlock: 1 << 20 });
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    assert.equal(sys.mseal(p, W, 2 * PAGE), 0);
    assert.equal(sys.mlock(p, W, PAGE), 0);
    assert.equal(sys.munlock(p, W, PAGE), 0);
    const { child } = sys.fork(p, 'c');
    assert.ok(child !== null);
    assert.equal(sys.munmap(child, W, PAGE), -Errno.EPERM);
    assert.equal(sys.mprotect(child, W + 2 * PAGE, PAGE, PROT_READ), 0);
    assert.equal(sys.mprotect(child, W, PAGE, PROT_READ), -Errno.EPERM);
    teardown(sys);
  });
});
