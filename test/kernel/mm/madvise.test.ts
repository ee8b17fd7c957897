import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { VM } from '../../../src/kernel/mm/mm_types.ts';
import {
  MADV,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import { type Process, System } from '../../../src/kernel/system.ts';
import {
  ANON_PRIVATE,
  ANON_SHARED,
  HPAGE,
  MiB,
  PAGE,
  RW,
  mapOk,
  pattern,
  readOk,
  referenced,
  setup,
  teardown,
  vmas,
  writeOk,
  failsCleanly,
} from './mm_helpers.ts';

describe('madvise(2) errors, as do_madvise() returns them', () => {
  it('rejects unknown advice and bad ranges with EINVAL, changing nothing', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, pattern(1, 2 * PAGE));
    const cases: [string, number, () => number][] = [
      ['unknown advice', Errno.EINVAL, () => sys.madvise(p, a, PAGE, 999)],
      ['advice 5 (unassigned)', Errno.EINVAL, () => sys.madvise(p, a, PAGE, 5)],
      ['unaligned start', Errno.EINVAL, () => sys.madvise(p, a + 1, PAGE, MADV.DONTNEED)],
      ['range wraps', Errno.EINVAL, () => sys.madvise(p, a, 2 ** 64 - a + PAGE, MADV.DONTNEED)],
      ['unmapped range', Errno.ENOMEM, () => sys.madvise(p, 0x30_0000_0000, PAGE, MADV.DONTNEED)],
      [
        'WIPEONFORK on shared anonymous',
        Errno.EINVAL,
        () => sys.madvise(p, mapShared(), PAGE, MADV.WIPEONFORK),
      ],
    ];
    function mapShared(): number {
      return sharedAddr;
    }
    const sharedAddr = mapOk(sys, p, PAGE, ANON_SHARED);
    for (const [what, errno, call] of cases) failsCleanly(sys, p, what, errno, call);
    // Length 0 is a successful no-op, even on an unmapped address.
    assert.equal(sys.madvise(p, 0x30_0000_0000, 0, MADV.DONTNEED), 0);
    teardown(sys);
  });

  it('applies advice to the mapped parts of a range with holes and then returns ENOMEM', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, Uint8Array.of(1));
    writeOk(sys, p, a + 3 * PAGE, Uint8Array.of(2));
    assert.equal(sys.munmap(p, a + PAGE, PAGE), 0);
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.DONTNEED), -Errno.ENOMEM);
    assert.equal(readOk(sys, p, a, 1)[0], 0);
    assert.equal(readOk(sys, p, a + 3 * PAGE, 1)[0], 0);
    assert.equal(sys.stats(p).rss_anon, 0);
    teardown(sys);
  });

  it('refuses DONTNEED on VM_LOCKED memory but allows DONTNEED_LOCKED', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_PRIVATE | MAP_LOCKED);
    writeOk(sys, p, a, Uint8Array.of(3));
    failsCleanly(sys, p, 'DONTNEED locked', Errno.EINVAL, () => sys.madvise(p, a, PAGE, MADV.DONTNEED));
    assert.equal(sys.madvise(p, a, PAGE, MADV.DONTNEED_LOCKED), 0);
    assert.equal(readOk(sys, p, a, 1)[0], 0);
    teardown(sys);
  });

  it('MADV_FREE and MADV_WIPEONFORK are anonymous-private only (EINVAL on shmem)', () => {
    const { sys, p } = setup();
    const s = mapOk(sys, p, PAGE, ANON_SHARED);
    writeOk(sys, p, s, Uint8Array.of(4));
    failsCleanly(sys, p, 'FREE shared', Errno.EINVAL, () => sys.madvise(p, s, PAGE, MADV.FREE));
    failsCleanly(sys, p, 'WIPEONFORK shared', Errno.EINVAL, () => sys.madvise(p, s, PAGE, MADV.WIPEONFORK));
    const fd = sys.memfdCreate('f');
    assert.equal(sys.ftruncate(fd, PAGE), 0);
    const f = mapOk(sys, p, PAGE, MAP_PRIVATE, RW, fd);
    failsCleanly(sys, p, 'WIPEONFORK private file', Errno.EINVAL, () =>
      sys.madvise(p, f, PAGE, MADV.WIPEONFORK),
    );
    teardown(sys);
  });

  it('MADV_REMOVE: EINVAL without a file, EACCES on a private file mapping, hole punch on a shared one', () => {
    const { sys, p } = setup();
    const anon = mapOk(sys, p, PAGE);
    failsCleanly(sys, p, 'REMOVE anon', Errno.EINVAL, () => sys.madvise(p, anon, PAGE, MADV.REMOVE));
    const fd = sys.memfdCreate('f');
    assert.equal(sys.pwrite(fd, pattern(6, 2 * PAGE), 0), 2 * PAGE);
    const priv = mapOk(sys, p, 2 * PAGE, MAP_PRIVATE, RW, fd);
    readOk(sys, p, priv, 1);
    failsCleanly(sys, p, 'REMOVE private file', Errno.EACCES, () => sys.madvise(p, priv, PAGE, MADV.REMOVE));
    const shared = mapOk(sys, p, 2 * PAGE, MAP_SHARED, RW, fd);
    assert.equal(sys.madvise(p, shared, PAGE, MADV.REMOVE), 0);
    assert.deepEqual(readOk(sys, p, shared, 8), new Uint8Array(8));
    assert.deepEqual(sys.pread(fd, 8, 0).data, new Uint8Array(8));
    assert.deepEqual(readOk(sys, p, shared + PAGE, 8), pattern(6, 2 * PAGE).subarray(PAGE, PAGE + 8));
    teardown(sys);
  });

  it('MADV_REMOVE also frees the swapped-out pages of the hole', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('f');
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, RW, fd);
    writeOk(sys, p, a, pattern(1, 2 * PAGE));
    assert.equal(sys.madvise(p, a, 2 * PAGE, MADV.PAGEOUT), 0);
    assert.equal(sys.swap.used, 2);
    assert.equal(sys.madvise(p, a, PAGE, MADV.REMOVE), 0);
    assert.equal(sys.swap.used, 1);
    assert.deepEqual(sys.pread(fd, 4, 0).data, new Uint8Array(4));
    assert.deepEqual(readOk(sys, p, a + PAGE, 4), pattern(1, 2 * PAGE).subarray(PAGE, PAGE + 4));
    teardown(sys);
  });

  it('MADV_POPULATE_*: EINVAL for missing permissions, ENOMEM for holes, EFAULT past the end of a file', () => {
    const { sys, p } = setup();
    const ro = mapOk(sys, p, PAGE, ANON_PRIVATE, PROT_READ);
    const none = mapOk(sys, p, PAGE, ANON_PRIVATE, PROT_NONE);
    failsCleanly(sys, p, 'POPULATE_WRITE on RO', Errno.EINVAL, () =>
      sys.madvise(p, ro, PAGE, MADV.POPULATE_WRITE),
    );
    failsCleanly(sys, p, 'POPULATE_READ on NONE', Errno.EINVAL, () =>
      sys.madvise(p, none, PAGE, MADV.POPULATE_READ),
    );
    failsCleanly(sys, p, 'POPULATE in a hole', Errno.ENOMEM, () =>
      sys.madvise(p, 0x30_0000_0000, PAGE, MADV.POPULATE_READ),
    );
    const fd = sys.memfdCreate('f');
    assert.equal(sys.ftruncate(fd, PAGE), 0);
    const f = mapOk(sys, p, 2 * PAGE, MAP_SHARED, RW, fd);
    assert.equal(sys.madvise(p, f, 2 * PAGE, MADV.POPULATE_WRITE), -Errno.EFAULT);
    assert.equal(sys.madvise(p, ro, PAGE, MADV.POPULATE_READ), 0);
    assert.equal(sys.pagemap(p, ro, 1)[0].kind, 'zero');
    const rw = mapOk(sys, p, 3 * PAGE);
    assert.equal(sys.madvise(p, rw, 3 * PAGE, MADV.POPULATE_WRITE), 0);
    assert.equal(sys.stats(p).rss_anon, 3 * PAGE);
    teardown(sys);
  });

  it('MADV_POPULATE_* faults in address order: a hole ends it with ENOMEM before anything past it', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.munmap(p, a + PAGE, PAGE), 0);
    assert.equal(sys.mprotect(p, a + 3 * PAGE, PAGE, PROT_READ), 0);
    // Page 0 is populated, the hole at page 1 ends the call: page 2 is not populated, and the
    // read-only page 3 is never looked at (it would be EINVAL).
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.POPULATE_WRITE), -Errno.ENOMEM);
    assert.deepEqual(
      sys.pagemap(p, a, 4).map((e) => e.present),
      [true, false, false, false],
    );
    teardown(sys);
  });

  it('hugetlb: DONTNEED needs an aligned start and rounds the end down to a huge page', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    writeOk(sys, p, a, Uint8Array.of(1));
    writeOk(sys, p, a + HPAGE, Uint8Array.of(2));
    failsCleanly(sys, p, 'unaligned start', Errno.EINVAL, () =>
      sys.madvise(p, a + PAGE, PAGE, MADV.DONTNEED),
    );
    // [a, a + HPAGE + PAGE) drops only the first huge page.
    assert.equal(sys.madvise(p, a, HPAGE + PAGE, MADV.DONTNEED), 0);
    assert.equal(readOk(sys, p, a, 1)[0], 0);
    assert.equal(readOk(sys, p, a + HPAGE, 1)[0], 2);
    // Flag advice may not split a hugetlb VMA off a huge-page boundary.
    failsCleanly(sys, p, 'DONTFORK half', Errno.EINVAL, () => sys.madvise(p, a, PAGE, MADV.DONTFORK));
    // Advice that changes no flag splits nothing (madvise_update_vma()), so it is no error.
    assert.equal(sys.madvise(p, a, PAGE, MADV.DOFORK), 0);
    assert.equal(vmas(p).length, 1);
    teardown(sys);
  });
});

describe('madvise(2) success paths', () => {
  it('DONTNEED on private anonymous memory drops the pages: reads give zeros, RSS falls', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, pattern(2, 4 * PAGE));
    const used = sys.stats().used;
    assert.equal(sys.madvise(p, a + PAGE, 2 * PAGE, MADV.DONTNEED), 0);
    assert.equal(sys.stats().used, used - 2 * PAGE);
    assert.equal(sys.stats(p).rss_anon, 2 * PAGE);
    assert.deepEqual(readOk(sys, p, a + PAGE, 2 * PAGE), new Uint8Array(2 * PAGE));
    assert.deepEqual(readOk(sys, p, a, PAGE), pattern(2, 4 * PAGE).subarray(0, PAGE));
    assert.equal(vmas(p).length, 1, 'DONTNEED must not split the VMA');
    teardown(sys);
  });

  it('DONTNEED on shared memory only unmaps: the data stays in the shmem object', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_SHARED);
    writeOk(sys, p, a, pattern(3, 2 * PAGE));
    assert.equal(sys.madvise(p, a, 2 * PAGE, MADV.DONTNEED), 0);
    assert.equal(sys.stats(p).rss_shmem, 0);
    assert.deepEqual(readOk(sys, p, a, 2 * PAGE), pattern(3, 2 * PAGE));
    teardown(sys);
  });

  it('flag advice splits the VMA to the range and sets or clears the flag', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.madvise(p, a + PAGE, PAGE, MADV.DONTFORK), 0);
    assert.equal(sys.madvise(p, a + 2 * PAGE, PAGE, MADV.WIPEONFORK), 0);
    assert.equal(sys.madvise(p, a + 3 * PAGE, PAGE, MADV.HUGEPAGE), 0);
    const v = vmas(p).map(([s, e, f]) => [s - a, e - a, f & (VM.DONTCOPY | VM.WIPEONFORK | VM.HUGEPAGE)]);
    assert.deepEqual(v, [
      [0, PAGE, 0],
      [PAGE, 2 * PAGE, VM.DONTCOPY],
      [2 * PAGE, 3 * PAGE, VM.WIPEONFORK],
      [3 * PAGE, 4 * PAGE, VM.HUGEPAGE],
    ]);
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.DOFORK), 0);
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.KEEPONFORK), 0);
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.NOHUGEPAGE), 0);
    for (const [, , f] of vmas(p)) {
      assert.equal(f & (VM.DONTCOPY | VM.WIPEONFORK | VM.HUGEPAGE), 0);
      assert.notEqual(f & VM.NOHUGEPAGE, 0);
    }
    teardown(sys);
  });

  it('read-ahead advice sets VM_RAND_READ / VM_SEQ_READ: the VMA splits, and MADV_NORMAL merges it back', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.madvise(p, a + PAGE, PAGE, MADV.RANDOM), 0);
    assert.equal(sys.madvise(p, a + 2 * PAGE, PAGE, MADV.SEQUENTIAL), 0);
    const bits = VM.RAND_READ | VM.SEQ_READ;
    assert.deepEqual(
      vmas(p).map(([s, e, f]) => [s - a, e - a, f & bits]),
      [
        [0, PAGE, 0],
        [PAGE, 2 * PAGE, VM.RAND_READ],
        [2 * PAGE, 3 * PAGE, VM.SEQ_READ],
        [3 * PAGE, 4 * PAGE, 0],
      ],
    );
    // mremap() that grows a range must find it in one VMA.
    assert.equal(sys.mremap(p, a, 2 * PAGE, 3 * PAGE, 0), -Errno.EFAULT);
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.NORMAL), 0);
    assert.equal(vmas(p).length, 1);
    teardown(sys);
  });

  it('DONTFORK leaves the range out of the child; WIPEONFORK gives the child zeros', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 3 * PAGE);
    tag(sys, p, a, 3);
    assert.equal(sys.madvise(p, a, PAGE, MADV.DONTFORK), 0);
    assert.equal(sys.madvise(p, a + PAGE, PAGE, MADV.WIPEONFORK), 0);
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.read(child!, a, 1).ret, -Errno.EFAULT);
    assert.equal(readOk(sys, child!, a + PAGE, 1)[0], 0);
    assert.equal(readOk(sys, child!, a + 2 * PAGE, 1)[0], 3);
    assert.equal(readOk(sys, p, a + PAGE, 1)[0], 2);
    teardown(sys);
  });

  it('MADV_FREE: clean lazily-freed pages are dropped by reclaim, rewritten ones are kept', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    tag(sys, p, a, 2);
    assert.equal(sys.madvise(p, a, 2 * PAGE, MADV.FREE), 0);
    writeOk(sys, p, a + PAGE, Uint8Array.of(42));
    sys.reclaim();
    assert.equal(sys.swap.used, 1, 'the dirty page is swapped, the clean one dropped');
    assert.deepEqual(
      sys.pagemap(p, a, 2).map((e) => e.kind),
      ['none', 'swap'],
    );
    assert.equal(readOk(sys, p, a, 1)[0], 0);
    assert.equal(readOk(sys, p, a + PAGE, 1)[0], 42);
    teardown(sys);
  });

  function tag(sys: System, p: Process, a: number, n: number): void {
    for (let i = 0; i < n; i++) writeOk(sys, p, a + i * PAGE, Uint8Array.of(i + 1));
  }
});

describe('MADV_PAGEOUT without swap (shrink_folio_list() on the pages it is given)', () => {
  it('drops clean MADV_FREE pages, unmaps shmem pages into the page cache, keeps private anon pages', () => {
    const { sys, p } = setup({ swap: 0 });
    const lazy = mapOk(sys, p, 2 * PAGE);
    writeOk(sys, p, lazy, pattern(1, 2 * PAGE));
    assert.equal(sys.madvise(p, lazy, 2 * PAGE, MADV.FREE), 0);
    assert.equal(sys.madvise(p, lazy, 2 * PAGE, MADV.PAGEOUT), 0);
    assert.deepEqual(
      sys.pagemap(p, lazy, 2).map((e) => e.present),
      [false, false],
    );
    assert.deepEqual(readOk(sys, p, lazy, 2 * PAGE), new Uint8Array(2 * PAGE), 'dropped: reads as zeros');

    const shm = mapOk(sys, p, 2 * PAGE, ANON_SHARED);
    const data = pattern(2, 2 * PAGE);
    writeOk(sys, p, shm, data);
    const used = sys.stats().used;
    assert.equal(sys.madvise(p, shm, 2 * PAGE, MADV.PAGEOUT), 0);
    assert.deepEqual(
      sys.pagemap(p, shm, 2).map((e) => e.present || e.swap),
      [false, false],
    );
    assert.equal(sys.stats().used, used, 'the pages stay in the page cache');
    assert.deepEqual(readOk(sys, p, shm, 2 * PAGE), data);

    const anon = mapOk(sys, p, PAGE);
    writeOk(sys, p, anon, pattern(3, PAGE));
    assert.equal(sys.madvise(p, anon, PAGE, MADV.PAGEOUT), 0);
    assert.equal(sys.pagemap(p, anon, 1)[0].present, true, 'no swap slot: add_to_swap() fails first');
    teardown(sys);
  });
});

// What smaps showed on Linux 6.18.44 (no MGLRU) for the same sequence: MADV_POPULATE_* walks with
// FOLL_TOUCH, and folio_mark_accessed() of a page already mapped sets PG_referenced the first time
// and activates the folio (clearing it) the second.
describe('MADV_POPULATE_READ/WRITE mark the pages they find accessed (FOLL_TOUCH)', () => {
  for (const [name, flags, file] of [
    ['a shared tmpfs mapping', MAP_SHARED, true],
    ['private anonymous memory', ANON_PRIVATE, false],
  ] as const) {
    it(`${name}: referenced after one populate, activated (not referenced) after two`, () => {
      const { sys, p } = setup();
      let fd = -1;
      if (file) {
        fd = sys.memfdCreate('m');
        assert.equal(sys.ftruncate(fd, 4 * PAGE), 0);
      }
      const a = mapOk(sys, p, 4 * PAGE, flags, RW, fd);
      writeOk(sys, p, a, pattern(3, 4 * PAGE));
      assert.equal(sys.clearRefs(p, 1), 0);
      assert.equal(referenced(sys, p, a), 0);
      assert.equal(sys.madvise(p, a, PAGE, MADV.POPULATE_READ), 0);
      assert.equal(referenced(sys, p, a), PAGE);
      assert.equal(sys.madvise(p, a, PAGE, MADV.POPULATE_READ), 0);
      assert.equal(referenced(sys, p, a), 0);
      assert.equal(sys.clearRefs(p, 1), 0);
      assert.equal(sys.madvise(p, a + PAGE, PAGE, MADV.POPULATE_WRITE), 0);
      assert.equal(referenced(sys, p, a), PAGE);
      teardown(sys);
    });
  }

  it('a PMD-mapped THP: touch_pmd() makes the entry young for a write only (x86)', () => {
    const sys = new System({ ram: 64 * MiB, swap: 0, thp: 'madvise' });
    const p = sys.createProcess('p');
    const raw = mapOk(sys, p, 2 * HPAGE);
    const a = Math.ceil(raw / HPAGE) * HPAGE;
    assert.equal(sys.madvise(p, a, HPAGE, MADV.HUGEPAGE), 0);
    writeOk(sys, p, a, pattern(5, HPAGE));
    assert.equal(referenced(sys, p, a), HPAGE);
    assert.equal(sys.clearRefs(p, 1), 0);
    assert.equal(sys.madvise(p, a, HPAGE, MADV.POPULATE_READ), 0);
    assert.equal(referenced(sys, p, a), 0);
    assert.equal(sys.madvise(p, a, HPAGE, MADV.POPULATE_WRITE), 0);
    assert.equal(referenced(sys, p, a), HPAGE);
    teardown(sys);
  });
});
