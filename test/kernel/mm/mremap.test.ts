import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { VM } from '../../../src/kernel/mm/mm_types.ts';
import {
  MADV,
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_NORESERVE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
} from '../../../src/kernel/mm/mman.ts';
import { TASK_SIZE } from '../../../src/lib/units.ts';
import {
  ANON_PRIVATE,
  ANON_SHARED,
  HPAGE,
  PAGE,
  RW,
  expectedTags,
  mapOk,
  readOk,
  readTags,
  setup,
  tagPages,
  teardown,
  vmas,
  writeOk,
  failsCleanly,
} from './mm_helpers.ts';

describe('mremap(2) errors, as check_mremap_params() and check_prep_vma() return them', () => {
  it('rejects bad flag combinations and ranges, changing nothing', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    tagPages(sys, p, a, 4, 1);
    const far = 0x40_0000_0000;
    const M = MREMAP_MAYMOVE;
    const cases: [string, number, () => number][] = [
      ['unknown flag', Errno.EINVAL, () => sys.mremap(p, a, PAGE, PAGE, 8)],
      ['FIXED without MAYMOVE', Errno.EINVAL, () => sys.mremap(p, a, PAGE, PAGE, MREMAP_FIXED, far)],
      ['DONTUNMAP without MAYMOVE', Errno.EINVAL, () => sys.mremap(p, a, PAGE, PAGE, MREMAP_DONTUNMAP)],
      ['DONTUNMAP resizing', Errno.EINVAL, () => sys.mremap(p, a, PAGE, 2 * PAGE, M | MREMAP_DONTUNMAP)],
      ['unaligned old address', Errno.EINVAL, () => sys.mremap(p, a + 1, PAGE, PAGE, 0)],
      ['new length 0', Errno.EINVAL, () => sys.mremap(p, a, PAGE, 0, M)],
      ['new length past TASK_SIZE', Errno.EINVAL, () => sys.mremap(p, a, PAGE, TASK_SIZE + PAGE, M)],
      ['unaligned new address', Errno.EINVAL, () => sys.mremap(p, a, PAGE, PAGE, M | MREMAP_FIXED, far + 1)],
      [
        'new range overlaps old',
        Errno.EINVAL,
        () => sys.mremap(p, a, 2 * PAGE, 2 * PAGE, M | MREMAP_FIXED, a + PAGE),
      ],
      [
        'new range past TASK_SIZE',
        Errno.EINVAL,
        () => sys.mremap(p, a, PAGE, PAGE, M | MREMAP_FIXED, TASK_SIZE),
      ],
      ['nothing mapped at addr', Errno.EFAULT, () => sys.mremap(p, far, PAGE, PAGE, M)],
      [
        'old range crosses the VMA end (growing)',
        Errno.EFAULT,
        () => sys.mremap(p, a + 2 * PAGE, 3 * PAGE, 4 * PAGE, M),
      ],
      ['old length 0 on a private mapping', Errno.EINVAL, () => sys.mremap(p, a, 0, PAGE, M)],
    ];
    for (const [what, errno, call] of cases) failsCleanly(sys, p, what, errno, call);
    teardown(sys);
  });

  it('a fixed target below mmap_min_addr is EPERM, after the shrink (checked as an ordinary user)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.mremap(p, a, 4 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, 0), -Errno.EPERM);
    assert.deepEqual(
      vmas(p).map(([s, e]) => [s, e]),
      [[a, a + 2 * PAGE]],
      'the tail was unmapped before the target was refused',
    );
    teardown(sys);
  });

  it('growing in place into a neighbour without MAYMOVE is ENOMEM', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.munmap(p, a + 2 * PAGE, PAGE), 0);
    tagPages(sys, p, a, 2, 5);
    failsCleanly(sys, p, 'grow into neighbour', Errno.ENOMEM, () => sys.mremap(p, a, 2 * PAGE, 4 * PAGE, 0));
    teardown(sys);
  });

  it('hugetlb mappings cannot grow and need huge-aligned addresses (EINVAL)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    writeOk(sys, p, a, Uint8Array.of(1));
    failsCleanly(sys, p, 'grow hugetlb', Errno.EINVAL, () =>
      sys.mremap(p, a, 2 * HPAGE, 4 * HPAGE, MREMAP_MAYMOVE),
    );
    failsCleanly(sys, p, 'unaligned addr', Errno.EINVAL, () =>
      sys.mremap(p, a + PAGE, PAGE, PAGE, MREMAP_MAYMOVE),
    );
    // Lengths are rounded up to the huge page: shrinking by a few bytes is no change at all.
    assert.equal(sys.mremap(p, a, 2 * HPAGE, 2 * HPAGE - 100, 0), a);
    assert.equal(vmas(p)[0][1] - vmas(p)[0][0], 2 * HPAGE);
    assert.equal(sys.mremap(p, a, 2 * HPAGE, HPAGE, 0), a);
    assert.equal(readOk(sys, p, a, 1)[0], 1);
    teardown(sys);
  });
});

describe('mremap(2) success paths preserve data', () => {
  it('shrinks in place and frees the tail pages', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    tagPages(sys, p, a, 4, 10);
    const used = sys.stats().used;
    assert.equal(sys.mremap(p, a, 4 * PAGE, 2 * PAGE, 0), a);
    assert.equal(sys.stats().used, used - 2 * PAGE);
    assert.deepEqual(readTags(sys, p, a, 2), expectedTags(2, 10));
    assert.equal(sys.read(p, a + 2 * PAGE, 1).ret, -Errno.EFAULT);
    assert.equal(sys.stats(p).total_vm, 2 * PAGE);
    teardown(sys);
  });

  it('grows in place when the space after is free; the new part reads as zeros', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    tagPages(sys, p, a, 2, 20);
    assert.equal(sys.munmap(p, a + 2 * PAGE, 16 * PAGE), 0);
    assert.equal(sys.mremap(p, a, 2 * PAGE, 6 * PAGE, 0), a);
    assert.deepEqual(readTags(sys, p, a, 2), expectedTags(2, 20));
    assert.deepEqual(readOk(sys, p, a + 2 * PAGE, 4 * PAGE), new Uint8Array(4 * PAGE));
    assert.equal(sys.stats(p).total_vm, 6 * PAGE);
    teardown(sys);
  });

  it('moves when it must grow and may move; the old range is gone, the pages are the same frames', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 3 * PAGE);
    // A neighbour right after `a` forces the grow to move.
    assert.equal(sys.mmap(p, a + 3 * PAGE, PAGE, 3, ANON_PRIVATE | 0x10), a + 3 * PAGE);
    tagPages(sys, p, a, 3, 30);
    const pfns = sys.pagemap(p, a, 3).map((e) => e.pfn);
    const used = sys.stats().used;
    const b = sys.mremap(p, a, 3 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
    assert.ok(b > 0 && b !== a);
    assert.deepEqual(readTags(sys, p, b, 3), expectedTags(3, 30));
    assert.deepEqual(
      sys.pagemap(p, b, 3).map((e) => e.pfn),
      pfns,
    );
    assert.equal(sys.stats().used, used, 'a move copies no page');
    assert.equal(sys.read(p, a, 1).ret, -Errno.EFAULT);
    assert.deepEqual(readOk(sys, p, b + 3 * PAGE, 5 * PAGE), new Uint8Array(5 * PAGE));
    teardown(sys);
  });

  it('MREMAP_FIXED moves to the given address, replacing what was there', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    const target = mapOk(sys, p, 4 * PAGE);
    tagPages(sys, p, a, 2, 40);
    tagPages(sys, p, target, 4, 90);
    assert.equal(
      sys.mremap(p, a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target + PAGE),
      target + PAGE,
    );
    assert.deepEqual(readTags(sys, p, target, 4), [90, 40, 41, 93]);
    assert.equal(sys.read(p, a, 1).ret, -Errno.EFAULT);
    teardown(sys);
  });

  it('MREMAP_DONTUNMAP moves the pages and leaves the old range mapped but empty', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    tagPages(sys, p, a, 2, 50);
    const b = sys.mremap(p, a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    assert.ok(b > 0 && b !== a);
    assert.deepEqual(readTags(sys, p, b, 2), expectedTags(2, 50));
    assert.deepEqual(readOk(sys, p, a, 2 * PAGE), new Uint8Array(2 * PAGE));
    assert.equal(sys.stats(p).total_vm, 4 * PAGE);
    teardown(sys);
  });

  it('moving a shared mapping keeps it shared with the other process', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_SHARED);
    tagPages(sys, p, a, 2, 60);
    const { child } = sys.fork(p, 'c');
    const b = sys.mremap(p, a, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE);
    assert.ok(b > 0);
    writeOk(sys, p, b, Uint8Array.of(77));
    assert.equal(readOk(sys, child!, a, 1)[0], 77);
    teardown(sys);
  });

  it('a PMD-aligned move of a THP keeps it PMD-mapped', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = mapOk(sys, p, 2 * HPAGE);
    assert.equal(a % HPAGE, 0);
    writeOk(sys, p, a + 5 * PAGE, Uint8Array.of(5));
    assert.ok(sys.pagemap(p, a, 1)[0].thp);
    const b = sys.mremap(p, a, HPAGE, HPAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + 4 * HPAGE);
    assert.equal(b, a + 4 * HPAGE);
    const e = sys.pagemap(p, b + 5 * PAGE, 1)[0];
    assert.ok(e.present && e.thp);
    assert.equal(readOk(sys, p, b + 5 * PAGE, 1)[0], 5);
    teardown(sys);
  });

  it('a fixed move of an unchanged length spans several VMAs and keeps the gaps (6.17 remap_move)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 6 * PAGE);
    tagPages(sys, p, a, 6, 3);
    assert.equal(sys.munmap(p, a + PAGE, PAGE), 0);
    assert.equal(sys.munmap(p, a + 4 * PAGE, PAGE), 0);
    const t = mapOk(sys, p, 6 * PAGE);
    assert.equal(sys.munmap(p, t, 6 * PAGE), 0);
    assert.equal(sys.mremap(p, a, 6 * PAGE, 6 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, t), t);
    const want = expectedTags(6, 3);
    for (const i of [0, 2, 3, 5]) assert.equal(readTags(sys, p, t + i * PAGE, 1)[0], want[i], `page ${i}`);
    for (const i of [1, 4]) assert.equal(sys.read(p, t + i * PAGE, 1).ret, -Errno.EFAULT, `gap ${i}`);
    assert.equal(sys.read(p, a, 1).ret, -Errno.EFAULT);
    teardown(sys);
  });

  it('a multi-VMA move refuses a gap at the start of the range (EFAULT), moving nothing', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.munmap(p, a, PAGE), 0);
    const t = 0x40_0000_0000;
    failsCleanly(sys, p, 'gap at the start', Errno.EFAULT, () =>
      sys.mremap(p, a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, t),
    );
    teardown(sys);
  });

  it('growing in place merges with the next VMA it reaches (vma_merge_extend)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 3 * PAGE);
    assert.equal(sys.munmap(p, a + PAGE, PAGE), 0);
    assert.equal(sys.mremap(p, a, PAGE, 2 * PAGE, 0), a);
    assert.deepEqual(
      vmas(p)
        .filter(([s]) => s >= a && s < a + 3 * PAGE)
        .map(([s, e]) => [s - a, e - a]),
      [[0, 3 * PAGE]],
    );
    teardown(sys);
  });

  it('a never-faulted VMA moved next to a compatible one merges with it (copy_vma)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.munmap(p, a + PAGE, 3 * PAGE), 0);
    const b = 0x40_0000_0000;
    assert.equal(sys.mmap(p, b, PAGE, RW, ANON_PRIVATE | MAP_FIXED), b);
    assert.equal(sys.mremap(p, b, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + PAGE), a + PAGE);
    assert.deepEqual(
      vmas(p)
        .filter(([s]) => s >= a && s < a + 4 * PAGE)
        .map(([s, e]) => [s - a, e - a]),
      [[0, 2 * PAGE]],
    );
    teardown(sys);
  });
});

describe('mremap(2) as Linux 6.18 does it (found by difftest)', () => {
  it('old_len 0 on a shared mapping maps the same pages again (MAYMOVE, with or without FIXED)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 8 * PAGE, ANON_SHARED);
    tagPages(sys, p, a, 8, 3);
    const far = 0x40_0000_0000;
    assert.equal(sys.mremap(p, a + PAGE, 0, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, far), far);
    assert.deepEqual(readTags(sys, p, far, 2), expectedTags(8, 3).slice(1, 3));
    writeOk(sys, p, far, new Uint8Array([0xee]));
    assert.equal(readOk(sys, p, a + PAGE, 1)[0], 0xee, 'the duplicate shares the pages');
    assert.deepEqual(readTags(sys, p, a + 2 * PAGE, 6), expectedTags(8, 3).slice(2), 'the source stays');
    const b = sys.mremap(p, a, 0, PAGE, MREMAP_MAYMOVE);
    assert.ok(b > 0 && b !== a, `a second duplicate at ${b}`);
    assert.equal(readOk(sys, p, b, 1)[0], readOk(sys, p, a, 1)[0]);
    assert.equal(sys.mremap(p, a, 0, PAGE, 0), -Errno.ENOMEM, 'without MAYMOVE it cannot move');
    teardown(sys);
  });

  it('a FIXED move of equal lengths moves every VMA in the range and keeps the gaps', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 8 * PAGE, ANON_SHARED);
    tagPages(sys, p, a, 8, 5);
    assert.equal(sys.munmap(p, a + 3 * PAGE, 2 * PAGE), 0);
    const far = 0x40_0000_0000;
    // [a+PAGE, a+7*PAGE): 2 pages of the first VMA, a 2-page hole, 2 pages of the second.
    assert.equal(sys.mremap(p, a + PAGE, 6 * PAGE, 6 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, far), far);
    const tags = expectedTags(8, 5);
    assert.deepEqual(readTags(sys, p, far, 2), tags.slice(1, 3));
    assert.deepEqual(readTags(sys, p, far + 4 * PAGE, 2), tags.slice(5, 7));
    assert.equal(sys.read(p, far + 2 * PAGE, 1).ret, -Errno.EFAULT, 'the hole stays a hole');
    assert.deepEqual(
      vmas(p).map(([s, e]) => [s, e]),
      [
        [far, far + 2 * PAGE],
        [far + 4 * PAGE, far + 6 * PAGE],
        [a, a + PAGE],
        [a + 7 * PAGE, a + 8 * PAGE],
      ].sort((x, y) => x[0] - y[0]),
    );
    teardown(sys);
  });

  it('a FIXED move of equal lengths may run past the last VMA, but must start in one (EFAULT)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    tagPages(sys, p, a, 4, 7);
    const far = 0x40_0000_0000;
    failsCleanly(sys, p, 'starts in a hole', Errno.EFAULT, () =>
      sys.mremap(p, a - 2 * PAGE, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, far),
    );
    assert.equal(sys.mremap(p, a + 2 * PAGE, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, far), far);
    assert.deepEqual(readTags(sys, p, far, 2), expectedTags(4, 7).slice(2));
    assert.equal(sys.read(p, far + 2 * PAGE, 1).ret, -Errno.EFAULT);
    teardown(sys);
  });

  it('a FIXED move that resizes still needs the range inside one VMA (EFAULT)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    failsCleanly(sys, p, 'grows across the VMA end', Errno.EFAULT, () =>
      sys.mremap(p, a + 2 * PAGE, 4 * PAGE, 6 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, 0x40_0000_0000),
    );
    teardown(sys);
  });

  it('MREMAP_DONTUNMAP of part of a VMA splits nothing: the source stays one VMA, empty over the range', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 8 * PAGE);
    tagPages(sys, p, a + 2 * PAGE, 1, 70);
    const to = 0x40_0000_0000;
    assert.equal(
      sys.mremap(p, a + 2 * PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to),
      to,
    );
    assert.deepEqual(
      vmas(p).map((v) => v.slice(0, 2)),
      [
        [to, to + PAGE],
        [a, a + 8 * PAGE],
      ],
    );
    assert.deepEqual(readTags(sys, p, to, 1), expectedTags(1, 70));
    assert.deepEqual(readOk(sys, p, a + 2 * PAGE, PAGE), new Uint8Array(PAGE));
    // Growing a range that does not end the VMA needs a move: -ENOMEM without MAYMOVE (a split
    // source would make the range cross a VMA end, -EFAULT).
    failsCleanly(sys, p, 'grow inside the VMA', Errno.ENOMEM, () =>
      sys.mremap(p, a + PAGE, 3 * PAGE, 8 * PAGE, 0),
    );
    teardown(sys);
  });

  it('MREMAP_DONTUNMAP clears VM_LOCKED on the source only', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE, ANON_PRIVATE | MAP_LOCKED);
    const to = 0x40_0000_0000;
    assert.equal(sys.mremap(p, a, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to), to);
    const [moved, src] = vmas(p);
    assert.deepEqual([src[0], src[1], src[2] & VM.LOCKED], [a, a + 4 * PAGE, 0]);
    assert.deepEqual([moved[0], moved[2] & VM.LOCKED], [to, VM.LOCKED]);
    teardown(sys);
  });

  it('a source moved whole with MREMAP_DONTUNMAP faults into a new anon_vma that rmap reaches', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    tagPages(sys, p, a, 2, 80);
    const to = 0x40_0000_0000;
    assert.equal(
      sys.mremap(p, a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to),
      to,
    );
    // New pages in the emptied source: reclaim must find them through the anon_vma to swap them out.
    tagPages(sys, p, a, 2, 90);
    assert.equal(sys.madvise(p, a, 2 * PAGE, MADV.PAGEOUT), 0);
    assert.deepEqual(
      [0, 1].map((i) => sys.pagemap(p, a + i * PAGE, 1)[0].kind),
      ['swap', 'swap'],
    );
    assert.deepEqual(readTags(sys, p, a, 2), expectedTags(2, 90));
    assert.deepEqual(readTags(sys, p, to, 2), expectedTags(2, 80));
    teardown(sys);
  });
});

describe('mremap(2) growth: commit charge and mlock populate', () => {
  const MiB = 1024 * 1024;

  it('a VM_ACCOUNT mapping growing past RAM + swap is -ENOMEM and left as it was; MAP_NORESERVE grows', () => {
    const { sys, p } = setup({ ram: 64 * MiB, swap: 0 });
    const a = mapOk(sys, p, PAGE);
    failsCleanly(sys, p, 'in place', Errno.ENOMEM, () => sys.mremap(p, a, PAGE, 128 * MiB, 0));
    failsCleanly(sys, p, 'by a move', Errno.ENOMEM, () => sys.mremap(p, a, PAGE, 128 * MiB, MREMAP_MAYMOVE));
    const b = mapOk(sys, p, PAGE, ANON_PRIVATE | MAP_NORESERVE);
    assert.ok(sys.mremap(p, b, PAGE, 128 * MiB, MREMAP_MAYMOVE) > 0);
    teardown(sys);
  });

  it('MREMAP_DONTUNMAP charges the whole new length', () => {
    const { sys, p } = setup({ ram: 64 * MiB, swap: 0 });
    // Two mappings that merge into one larger than RAM: each was within the limit on its own.
    const a = mapOk(sys, p, 40 * MiB);
    assert.equal(sys.mmap(p, a + 40 * MiB, 40 * MiB, RW, ANON_PRIVATE | MAP_FIXED), a + 40 * MiB);
    assert.equal(vmas(p).length, 1);
    failsCleanly(sys, p, 'dontunmap', Errno.ENOMEM, () =>
      sys.mremap(p, a, 80 * MiB, 80 * MiB, MREMAP_MAYMOVE | MREMAP_DONTUNMAP),
    );
    teardown(sys);
  });

  it('a locked mapping that grows has its new part populated; the trace shows the call and the faults', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_PRIVATE | MAP_LOCKED);
    sys.trace.enabled = true;
    assert.equal(sys.mremap(p, a, 2 * PAGE, 4 * PAGE, 0), a);
    assert.deepEqual(
      sys.pagemap(p, a, 4).map((e) => e.present),
      [true, true, true, true],
    );
    const calls = sys.trace.events.filter((e) => e.cat === 'syscall');
    assert.deepEqual(
      calls.map((e) => [e.name, e.ph, e.args]),
      [['mremap', 'i', { oldAddr: a, oldLen: 2 * PAGE, newLen: 4 * PAGE, flags: 0, newAddr: 0 }]],
    );
    const faults = sys.trace.events.filter((e) => e.cat === 'fault' && e.ph === 'B');
    assert.equal(faults.length, 2, 'one write fault per new page');
    assert.ok(faults.every((e) => e.ts >= calls[0].ts));
    teardown(sys);
  });

  it('an unlocked mapping that grows leaves its new part unpopulated', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    writeOk(sys, p, a, new Uint8Array(2 * PAGE).fill(1));
    assert.equal(sys.mremap(p, a, 2 * PAGE, 4 * PAGE, 0), a);
    assert.deepEqual(
      sys.pagemap(p, a, 4).map((e) => e.present),
      [true, true, false, false],
    );
    teardown(sys);
  });
});
