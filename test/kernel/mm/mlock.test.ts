/*
 * mlock(2), mlock2(2), munlock(2), mlockall(2), munlockall(2) and what locking changes elsewhere
 * (mmap, mremap, mprotect, fork, madvise, reclaim). The expected values are what Linux 6.18 does:
 * each case was run on a live 6.18 kernel, as an ordinary user (no CAP_IPC_LOCK) with the
 * RLIMIT_MEMLOCK the test gives the model, unless its comment names the kernel source instead.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { VM } from '../../../src/kernel/mm/mm_types.ts';
import { setCapIpcLock } from '../../../src/kernel/mm/mlock.ts';
import {
  MADV,
  MAP_FIXED_NOREPLACE,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_NORESERVE,
  MCL_CURRENT,
  MCL_FUTURE,
  MCL_ONFAULT,
  MLOCK_ONFAULT,
  MREMAP_DONTUNMAP,
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
  setup,
  teardown,
  vmas,
  writeOk,
} from './mm_helpers.ts';

const W = 0x6000_0000_0000;
/** The limit the tests run under: 16 pages. */
const LIMIT = 64 * 1024;

function mapAt(sys: System, p: Process, addr: number, len: number, prot = RW, flags = ANON_PRIVATE): number {
  return sys.mmap(p, addr, len, prot, flags | MAP_FIXED_NOREPLACE);
}

/** Per page: p present, x mapped exclusively, - nothing. */
function pages(sys: System, p: Process, addr: number, n: number): string {
  return sys
    .pagemap(p, addr, n)
    .map((e) => (e.present ? 'p' : '-') + (e.present && e.exclusive ? 'x' : ''))
    .join(',');
}

function lockedOf(p: Process): number {
  return p.mm!.lockedVm;
}

/** The [start, end, locked] of each VMA. */
function lockState(p: Process): [number, number, boolean][] {
  return vmas(p).map(([s, e, f]) => [s, e, (f & VM.LOCKED) !== 0]);
}

describe('mlock(2) and mlock2(2)', () => {
  it('locks and populates a range; MLOCK_ONFAULT splits off a part without populating it', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    assert.equal(sys.mlock(p, W, 4 * PAGE, MLOCK_ONFAULT), 0);
    assert.deepEqual(
      vmas(p).map(([s, e, f]) => [s, e, f & (VM.LOCKED | VM.LOCKONFAULT)]),
      [
        [W, W + 4 * PAGE, VM.LOCKED | VM.LOCKONFAULT],
        [W + 4 * PAGE, W + 8 * PAGE, 0],
      ],
    );
    assert.equal(pages(sys, p, W, 8), '-,-,-,-,-,-,-,-');
    assert.equal(lockedOf(p), 4);
    // mlock() without the flag: the two parts merge again, and every page is faulted in for
    // writing (a private writable mapping), as the pagemap of the live kernel shows.
    assert.equal(sys.mlock(p, W, 8 * PAGE), 0);
    assert.deepEqual(lockState(p), [[W, W + 8 * PAGE, true]]);
    assert.equal(pages(sys, p, W, 8), 'px,px,px,px,px,px,px,px');
    assert.equal(lockedOf(p), 8);
    const smaps = sys.smaps(p);
    assert.ok(Array.isArray(smaps));
    assert.equal(smaps[0].locked, 8 * PAGE);
    assert.equal(sys.munlock(p, W + 2 * PAGE, 2 * PAGE), 0);
    assert.deepEqual(lockState(p), [
      [W, W + 2 * PAGE, true],
      [W + 2 * PAGE, W + 4 * PAGE, false],
      [W + 4 * PAGE, W + 8 * PAGE, true],
    ]);
    assert.equal(lockedOf(p), 6);
    teardown(sys);
  });

  it('returns ENOMEM for a range that starts in a hole or has one, EINVAL for a bad flag', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 8 * PAGE, PROT_NONE), W);
    assert.equal(mapAt(sys, p, W + 16 * PAGE, 8 * PAGE), W + 16 * PAGE);
    failsCleanly(sys, p, 'start in a hole', Errno.ENOMEM, () => sys.mlock(p, W + 8 * PAGE, 10 * PAGE));
    failsCleanly(sys, p, 'in a hole', Errno.ENOMEM, () => sys.mlock(p, W + 14 * PAGE, 4 * PAGE));
    failsCleanly(sys, p, 'one byte in a hole', Errno.ENOMEM, () => sys.mlock(p, W + 100 * PAGE, 1));
    failsCleanly(sys, p, 'flag 2', Errno.EINVAL, () => sys.mlock(p, W + 16 * PAGE, PAGE, 2));
    assert.equal(sys.mlock(p, W + 100 * PAGE, 0), 0);
    // A range with a hole: the VMAs before it are locked all the same.
    assert.equal(sys.mlock(p, W + 16 * PAGE, 9 * PAGE), -Errno.ENOMEM);
    assert.deepEqual(lockState(p), [
      [W, W + 8 * PAGE, false],
      [W + 16 * PAGE, W + 24 * PAGE, true],
    ]);
    teardown(sys);
  });

  it('locks a PROT_NONE mapping but cannot populate it: ENOMEM, nothing faulted in', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 8 * PAGE, PROT_NONE), W);
    assert.equal(sys.mlock(p, W, 8 * PAGE), -Errno.ENOMEM);
    assert.equal(pages(sys, p, W, 8), '-,-,-,-,-,-,-,-');
    // populate_vma_page_range()'s -EFAULT comes after apply_vma_lock_flags(): the VMA is locked.
    assert.deepEqual(lockState(p), [[W, W + 8 * PAGE, true]]);
    assert.equal(sys.munlock(p, W, 8 * PAGE), 0);
    assert.equal(lockedOf(p), 0);
    teardown(sys);
  });

  it('widens the range to whole pages modulo 2^64', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    // Aligned start: 2^64 - 1 page-aligns to 0, so nothing is locked and the call succeeds.
    assert.equal(sys.mlock(p, W, 2n ** 64n - 1n), 0);
    assert.equal(lockedOf(p), 0);
    // A start 4095 bytes into its page: 2^64 - 1 + 4095 wraps to 4094, one page.
    assert.equal(sys.mlock(p, W + PAGE - 1, 2n ** 64n - 1n), 0);
    assert.deepEqual(lockState(p), [
      [W, W + PAGE, true],
      [W + PAGE, W + 8 * PAGE, false],
    ]);
    assert.equal(sys.munlock(p, W + PAGE - 1, 2n ** 64n - 1n), 0);
    assert.equal(lockedOf(p), 0);
    // More pages than any limit: -ENOMEM before anything is looked at.
    failsCleanly(sys, p, 'huge length', Errno.ENOMEM, () => sys.mlock(p, W, 2n ** 64n - 4096n));
    teardown(sys);
  });

  it('at the limit, a wrapped length over a page already locked is discounted', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 16 * PAGE, RW, ANON_PRIVATE | MAP_LOCKED), W);
    assert.equal(mapAt(sys, p, W + 16 * PAGE, PAGE), W + 16 * PAGE);
    assert.equal(lockedOf(p), 16);
    // One page, locked already: 17 pages minus the one counted, within the limit.
    assert.equal(sys.mlock(p, W + PAGE - 1, 2n ** 64n - 1n), 0);
    // One page not locked yet: past it.
    failsCleanly(sys, p, 'a new page', Errno.ENOMEM, () => sys.mlock(p, W + 17 * PAGE - 1, 2n ** 64n - 1n));
    teardown(sys);
  });
});

describe('RLIMIT_MEMLOCK and locked_vm', () => {
  it('counts locked pages once and refuses what goes past the limit', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    assert.equal(sys.mlock(p, W, 8 * PAGE), 0);
    assert.equal(mapAt(sys, p, W + 16 * PAGE, 8 * PAGE), W + 16 * PAGE);
    assert.equal(sys.mlock(p, W + 16 * PAGE, 8 * PAGE), 0);
    assert.equal(lockedOf(p), 16);
    // Locking pages already locked again adds nothing (count_mm_mlocked_page_nr()).
    assert.equal(sys.mlock(p, W + 16 * PAGE, 7 * PAGE), 0);
    // Half new: 4 more pages than the limit.
    assert.equal(mapAt(sys, p, W + 8 * PAGE, 8 * PAGE), W + 8 * PAGE);
    failsCleanly(sys, p, 'past the limit', Errno.ENOMEM, () => sys.mlock(p, W + 4 * PAGE, 8 * PAGE));
    // MAP_LOCKED and the growth of a locked mapping are -EAGAIN (mlock_future_ok()).
    assert.equal(mapAt(sys, p, W + 64 * PAGE, PAGE, RW, ANON_PRIVATE | MAP_LOCKED), -Errno.EAGAIN);
    assert.equal(sys.mremap(p, W + 16 * PAGE, 8 * PAGE, 9 * PAGE, 0), -Errno.EAGAIN);
    // munmap gives the pages back: a grown locked mapping counts its new pages.
    assert.equal(sys.munmap(p, W + 16 * PAGE, 8 * PAGE), 0);
    assert.equal(sys.munmap(p, W, PAGE), 0);
    assert.equal(lockedOf(p), 7);
    assert.equal(sys.munmap(p, W + 8 * PAGE, 8 * PAGE), 0);
    assert.equal(sys.mremap(p, W + PAGE, 7 * PAGE, 9 * PAGE, 0), W + PAGE);
    assert.equal(lockedOf(p), 9);
    assert.equal(pages(sys, p, W + 8 * PAGE, 2), 'px,px');
    teardown(sys);
  });

  it('needs a non-zero limit or CAP_IPC_LOCK; CAP_IPC_LOCK lifts the limit', () => {
    const { sys, p } = setup({ rlimitMemlock: 0 });
    assert.equal(mapAt(sys, p, W, 32 * PAGE), W);
    failsCleanly(sys, p, 'no limit, no capability', Errno.EPERM, () => sys.mlock(p, W, PAGE));
    assert.equal(mapAt(sys, p, W + 64 * PAGE, PAGE, RW, ANON_PRIVATE | MAP_LOCKED), -Errno.EPERM);
    assert.equal(sys.mlockall(p, MCL_FUTURE), -Errno.EPERM);
    assert.equal(sys.munlock(p, W, PAGE), 0);
    setCapIpcLock(p, true);
    assert.equal(sys.mlock(p, W, 32 * PAGE), 0);
    assert.equal(lockedOf(p), 32);
    teardown(sys);
  });

  it('MLOCK_ONFAULT locks a range larger than memory: nothing is faulted in', () => {
    // With CAP_IPC_LOCK nothing limits it, and populate_vma_page_range() leaves a VM_LOCKONFAULT
    // VMA alone. (Locking it all at once would fill RAM and swap; the model then fails the
    // populate with -EAGAIN, where the kernel would OOM-kill the task.)
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    setCapIpcLock(p, true);
    const len = 256 * 1024 * 1024;
    assert.equal(mapAt(sys, p, W, len, RW, ANON_PRIVATE | MAP_NORESERVE), W);
    assert.equal(sys.mlock(p, W, len, MLOCK_ONFAULT), 0);
    assert.equal(lockedOf(p), len / PAGE);
    assert.equal(pages(sys, p, W, 4), '-,-,-,-');
    teardown(sys);
  });

  it('MREMAP_DONTUNMAP unlocks the old range but leaves it counted', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 8 * PAGE, RW, ANON_PRIVATE | MAP_LOCKED), W);
    assert.equal(lockedOf(p), 8);
    const flags = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
    assert.equal(sys.mremap(p, W, 8 * PAGE, 8 * PAGE, flags, W + 64 * PAGE), W + 64 * PAGE);
    assert.deepEqual(lockState(p), [
      [W, W + 8 * PAGE, false],
      [W + 64 * PAGE, W + 72 * PAGE, true],
    ]);
    // "Because we won't unmap we don't need to touch locked_vm": 16 pages counted, none free.
    assert.equal(lockedOf(p), 16);
    assert.equal(mapAt(sys, p, W + 32 * PAGE, PAGE), W + 32 * PAGE);
    assert.equal(sys.mlock(p, W + 32 * PAGE, PAGE), -Errno.ENOMEM);
    assert.equal(sys.munlock(p, W + 64 * PAGE, 8 * PAGE), 0);
    assert.equal(sys.mlock(p, W + 32 * PAGE, PAGE), 0);
    teardown(sys);
  });

  it('leaves a MAP_LOCKED hugetlb mapping unlocked and uncounted, but populated', () => {
    // From __mmap_complete() (nothing to check it against on a machine without huge pages). The
    // limit is checked all the same (do_mmap()'s mlock_future_ok()): 512 pages need room.
    const { sys, p } = setup({ rlimitMemlock: 4 * 1024 * 1024, hugetlbPages: 2 });
    const a = mapAt(sys, p, W, 2 * 1024 * 1024, RW, ANON_PRIVATE | MAP_HUGETLB | MAP_LOCKED);
    assert.equal(a, W);
    assert.deepEqual(lockState(p), [[W, W + 2 * 1024 * 1024, false]]);
    assert.equal(lockedOf(p), 0);
    assert.equal(sys.pagemap(p, W, 1)[0].present, true);
    assert.equal(sys.madvise(p, W, 2 * 1024 * 1024, MADV.DONTNEED), 0);
    teardown(sys);
  });
});

describe('mlockall(2) and munlockall(2)', () => {
  it('refuses flags without MCL_CURRENT or MCL_FUTURE', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    for (const flags of [0, MCL_ONFAULT, 8])
      assert.equal(sys.mlockall(p, flags), -Errno.EINVAL, `flags ${flags}`);
    teardown(sys);
  });

  it('MCL_FUTURE locks what is mapped later; MCL_ONFAULT defers the faults; munlockall undoes both', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(sys.mlockall(p, MCL_FUTURE), 0);
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    assert.equal(pages(sys, p, W, 4), 'px,px,px,px');
    assert.equal(sys.mlockall(p, MCL_FUTURE | MCL_ONFAULT), 0);
    assert.equal(mapAt(sys, p, W + 8 * PAGE, 4 * PAGE), W + 8 * PAGE);
    assert.equal(pages(sys, p, W + 8 * PAGE, 4), '-,-,-,-');
    writeOk(sys, p, W + 8 * PAGE, Uint8Array.of(7));
    const before = sys.smaps(p);
    assert.ok(Array.isArray(before));
    assert.deepEqual(
      before.map((e) => e.locked),
      [4 * PAGE, PAGE],
    );
    // The limit holds for mappings locked by default: 12 more pages are too many.
    assert.equal(mapAt(sys, p, W + 32 * PAGE, 12 * PAGE, PROT_NONE), -Errno.EAGAIN);
    assert.equal(sys.munlockall(p), 0);
    assert.equal(lockedOf(p), 0);
    assert.equal(mapAt(sys, p, W + 16 * PAGE, 4 * PAGE), W + 16 * PAGE);
    assert.equal(pages(sys, p, W + 16 * PAGE, 4), '-,-,-,-');
    assert.deepEqual(
      lockState(p).map(([, , l]) => l),
      [false, false, false],
    );
    teardown(sys);
  });

  it('MCL_CURRENT locks and populates every mapping, within the limit on the whole address space', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    assert.equal(mapAt(sys, p, W + 8 * PAGE, 4 * PAGE, PROT_NONE), W + 8 * PAGE);
    assert.equal(sys.mlockall(p, MCL_CURRENT), 0);
    assert.equal(pages(sys, p, W, 4), 'px,px,px,px');
    assert.equal(lockedOf(p), 8);
    assert.equal(mapAt(sys, p, W + 16 * PAGE, 16 * PAGE), W + 16 * PAGE);
    // total_vm is 24 pages now, past the limit of 16 (do_mlockall() checks all of it).
    assert.equal(sys.mlockall(p, MCL_CURRENT), -Errno.ENOMEM);
    teardown(sys);
  });
});

describe('locked mappings elsewhere in mm', () => {
  it('fork: the child does not inherit the lock; its mlock() breaks COW', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 4 * PAGE, RW, ANON_PRIVATE | MAP_LOCKED), W);
    const { child } = sys.fork(p, 'c');
    assert.ok(child !== null);
    assert.deepEqual(lockState(child), [[W, W + 4 * PAGE, false]]);
    assert.equal(lockedOf(child), 0);
    // Shared with the parent: neither maps the pages exclusively.
    assert.equal(pages(sys, child, W, 4), 'p,p,p,p');
    assert.equal(sys.mlock(child, W, 4 * PAGE), 0);
    assert.equal(pages(sys, child, W, 4), 'px,px,px,px');
    assert.equal(pages(sys, p, W, 4), 'px,px,px,px');
    teardown(sys);
  });

  it('mprotect: a locked private mapping made writable is faulted for writing at once', () => {
    // mprotect_fixup(); with the zero page mapped for the read-only populate, the write
    // populate replaces it with pages of the process's own.
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 4 * PAGE, PROT_READ, ANON_PRIVATE | MAP_LOCKED), W);
    assert.deepEqual(
      sys.pagemap(p, W, 4).map((e) => e.kind),
      ['zero', 'zero', 'zero', 'zero'],
    );
    assert.equal(sys.mprotect(p, W, 4 * PAGE, RW), 0);
    assert.deepEqual(
      sys.pagemap(p, W, 4).map((e) => e.kind),
      ['ram', 'ram', 'ram', 'ram'],
    );
    teardown(sys);
  });

  it('madvise: MADV_FREE and MADV_DONTNEED refuse a locked mapping, MADV_DONTNEED_LOCKED does not', () => {
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 4 * PAGE, RW, ANON_PRIVATE | MAP_LOCKED), W);
    failsCleanly(sys, p, 'MADV_FREE', Errno.EINVAL, () => sys.madvise(p, W, 4 * PAGE, MADV.FREE));
    failsCleanly(sys, p, 'MADV_DONTNEED', Errno.EINVAL, () => sys.madvise(p, W, 4 * PAGE, MADV.DONTNEED));
    assert.equal(sys.madvise(p, W, 4 * PAGE, MADV.DONTNEED_LOCKED), 0);
    teardown(sys);
  });

  it('reclaim never takes a page a locked mapping maps, and takes it once unlocked', () => {
    // folio_referenced_one() and try_to_unmap_one() stop at a VM_LOCKED mapping.
    const { sys, p } = setup({ rlimitMemlock: LIMIT });
    assert.equal(mapAt(sys, p, W, 4 * PAGE, RW, ANON_SHARED | MAP_LOCKED), W);
    const { child } = sys.fork(p, 'c');
    assert.ok(child !== null);
    // The child's mapping of the same shmem pages is not locked; the parent's still is.
    sys.reclaim(0);
    assert.equal(pages(sys, p, W, 4).replace(/x/g, ''), 'p,p,p,p');
    assert.equal(sys.munlock(p, W, 4 * PAGE), 0);
    sys.reclaim(0);
    sys.reclaim(0);
    assert.equal(pages(sys, p, W, 4), '-,-,-,-');
    teardown(sys);
  });
});
