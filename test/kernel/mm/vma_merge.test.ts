import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createDmirrorDevice, dmirrorOpen } from '../../../src/kernel/drivers/test_hmm.ts';
import {
  MADV,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import {
  ANON_PRIVATE,
  PAGE,
  RW,
  mapOk,
  pattern,
  readOk,
  setup,
  teardown,
  vmas,
  writeOk,
} from './mm_helpers.ts';

describe('vma_merge for anonymous memory', () => {
  test('mprotect splits a VMA in three and restoring the protection merges it back', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 8 * PAGE);
    writeOk(sys, p, a, pattern(1, 8 * PAGE));
    assert.equal(sys.mprotect(p, a + 2 * PAGE, 2 * PAGE, PROT_READ), 0);
    assert.equal(sys.stats(p).vmas, 3);
    assert.equal(sys.mprotect(p, a + 2 * PAGE, 2 * PAGE, RW), 0);
    assert.equal(sys.stats(p).vmas, 1);
    assert.deepEqual(vmas(p)[0].slice(0, 2), [a, a + 8 * PAGE]);
    assert.deepEqual(readOk(sys, p, a, 8 * PAGE), pattern(1, 8 * PAGE));
    teardown(sys);
  });

  test('a merged VMA keeps every page reachable by rmap: fork COW and reclaim still work', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, pattern(2, 4 * PAGE));
    // A second mapping right after the first, written separately, merges into it.
    const b = sys.mmap(p, a + 4 * PAGE, 4 * PAGE, RW, ANON_PRIVATE | MAP_FIXED);
    assert.equal(b, a + 4 * PAGE);
    writeOk(sys, p, b, pattern(3, 4 * PAGE));
    assert.equal(sys.stats(p).vmas, 1);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    writeOk(sys, child, b, pattern(4, PAGE));
    assert.deepEqual(
      readOk(sys, p, b, PAGE),
      pattern(3, PAGE),
      'the parent keeps its data after the child COW',
    );
    // Reclaim walks rmap from every page to every mapping, in both processes.
    assert.equal(sys.madvise(p, a, 8 * PAGE, MADV.PAGEOUT), 0);
    sys.reclaim();
    assert.deepEqual(readOk(sys, p, a, 4 * PAGE), pattern(2, 4 * PAGE));
    assert.deepEqual(readOk(sys, child, b + PAGE, PAGE), pattern(3, 2 * PAGE).subarray(PAGE));
    sys.exit(child);
    sys.exit(p);
    teardown(sys);
  });

  test('neighbours whose anon_vmas differ after fork stay apart', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, pattern(5, 4 * PAGE));
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    // In the child, the pieces of the inherited VMA share its anon_vma chain.
    assert.equal(sys.mprotect(child, a, 2 * PAGE, PROT_READ), 0);
    assert.equal(sys.mprotect(child, a, 2 * PAGE, RW), 0);
    assert.equal(sys.stats(child).vmas, 1, 'split pieces of one VMA share their anon_vmas and merge');
    assert.deepEqual(readOk(sys, child, a, 4 * PAGE), pattern(5, 4 * PAGE));
    // A new mapping has no anon_vma, and the inherited VMA chains its parent's: they stay apart
    // (vma_had_uncowed_parents()), in either order.
    assert.equal(sys.mmap(child, a + 4 * PAGE, 2 * PAGE, RW, ANON_PRIVATE | MAP_FIXED), a + 4 * PAGE);
    assert.equal(sys.mmap(child, a - 2 * PAGE, 2 * PAGE, RW, ANON_PRIVATE | MAP_FIXED), a - 2 * PAGE);
    assert.equal(sys.stats(child).vmas, 3);
    // In the parent, whose anon_vma chain is its own, the same mappings merge.
    assert.equal(sys.mmap(p, a + 4 * PAGE, 2 * PAGE, RW, ANON_PRIVATE | MAP_FIXED), a + 4 * PAGE);
    assert.equal(sys.stats(p).vmas, 1);
    sys.exit(child);
    sys.exit(p);
    teardown(sys);
  });

  test('an inherited VMA that mremap() moves next to an unfaulted one merges with it (copy_vma())', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, pattern(6, 4 * PAGE));
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    // Away, an unfaulted mapping in front of its old place, and back: its page offsets line up.
    const far = a + 64 * PAGE;
    assert.equal(sys.mremap(child, a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, far), far);
    const b = a - 4 * PAGE;
    assert.equal(sys.mmap(child, b, 4 * PAGE, RW, ANON_PRIVATE | MAP_FIXED), b);
    // The moved VMA is not the middle of a merge: in 6.18 only its neighbour's chain is asked
    // (mainline refuses this merge since 3b617fd3d317, which 6.18-stable did not take).
    assert.equal(sys.mremap(child, far, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a), a);
    assert.deepEqual(
      vmas(child)
        .filter((v) => v[0] <= a && v[1] > a)
        .map((v) => v.slice(0, 2)),
      [[b, a + 4 * PAGE]],
    );
    assert.deepEqual(readOk(sys, child, a, 4 * PAGE), pattern(6, 4 * PAGE));
    sys.exit(child);
    sys.exit(p);
    teardown(sys);
  });
});

describe('vma_merge at mmap time for file mappings', () => {
  const A = 0x600000000000;

  test('mappings of one shmem file at contiguous offsets become one VMA; a gap in offsets keeps them apart', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('x');
    assert.equal(sys.ftruncate(fd, 16 * PAGE), 0);
    for (const [i, off] of [
      [0, 0],
      [2, 2],
      [4, 8],
    ] as const) {
      assert.equal(
        sys.mmap(p, A + i * PAGE, 2 * PAGE, RW, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, off * PAGE),
        A + i * PAGE,
      );
    }
    assert.deepEqual(
      vmas(p).map((v) => v.slice(0, 2)),
      [
        [A, A + 4 * PAGE],
        [A + 4 * PAGE, A + 6 * PAGE],
      ],
    );
    teardown(sys);
  });

  test('mappings of a driver file stay apart (the driver mmap hook makes them VM_MIXEDMAP)', () => {
    const { sys, p } = setup();
    createDmirrorDevice(sys, 'gpu0', 'private');
    const fd = sys.run('open', dmirrorOpen(sys, 'gpu0', p));
    assert.ok(fd >= 0);
    assert.equal(sys.mmap(p, A, 2 * PAGE, RW, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0), A);
    assert.equal(
      sys.mmap(p, A + 2 * PAGE, 2 * PAGE, RW, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 2 * PAGE),
      A + 2 * PAGE,
    );
    assert.equal(sys.stats(p).vmas, 2);
    teardown(sys);
  });
});

describe('vma_merge as mprotect and madvise change VMA after VMA (vma_modify_flags())', () => {
  test('mprotect: changed VMAs that join each other also join the next VMA, which already had the protection', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 6 * PAGE);
    // [a+2, a+6) PROT_NONE (its charge dropped: nothing was written), then [a, a+1) read-only:
    // three VMAs, rw- in the middle.
    assert.equal(sys.mprotect(p, a + 2 * PAGE, 4 * PAGE, PROT_NONE), 0);
    assert.equal(sys.mprotect(p, a, PAGE, PROT_READ), 0);
    assert.equal(vmas(p).length, 3);
    // PROT_NONE over [a, a+3): the first two change and merge, and the run then joins the third.
    assert.equal(sys.mprotect(p, a, 3 * PAGE, PROT_NONE), 0);
    assert.deepEqual(
      vmas(p).map((v) => v.slice(0, 2)),
      [[a, a + 6 * PAGE]],
    );
    teardown(sys);
  });

  test('madvise: MADV_NORMAL on two read-ahead VMAs joins them and the plain VMA after them', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 3 * PAGE);
    assert.equal(sys.madvise(p, a, PAGE, MADV.RANDOM), 0);
    assert.equal(sys.madvise(p, a + PAGE, PAGE, MADV.SEQUENTIAL), 0);
    assert.equal(vmas(p).length, 3);
    assert.equal(sys.madvise(p, a, 2 * PAGE, MADV.NORMAL), 0);
    assert.deepEqual(
      vmas(p).map((v) => v.slice(0, 2)),
      [[a, a + 3 * PAGE]],
    );
    teardown(sys);
  });
});

const MAP_PRIVATE_ANON_FIXED = ANON_PRIVATE | MAP_FIXED_NOREPLACE;

describe('anon_vma_prepare() reuses a neighbour anon_vma (find_mergeable_anon_vma())', () => {
  test('a VMA first faulted beside one that differs only in protection joins it once the protection matches', () => {
    const { sys, p } = setup();
    const A = 0x600000000000;
    assert.equal(sys.mmap(p, A, 8 * PAGE, RW, MAP_PRIVATE_ANON_FIXED, -1, 0), A);
    writeOk(sys, p, A + 4 * PAGE, pattern(1, 1));
    assert.equal(sys.mprotect(p, A + 7 * PAGE, PAGE, PROT_READ), 0);
    // The new VMA's first fault takes the anon_vma of the read-only VMA before it.
    assert.equal(sys.mmap(p, A + 8 * PAGE, 7 * PAGE, RW, MAP_PRIVATE_ANON_FIXED, -1, 0), A + 8 * PAGE);
    writeOk(sys, p, A + 8 * PAGE, pattern(2, 1));
    assert.equal(vmas(p).length, 3);
    assert.equal(sys.mprotect(p, A + 4 * PAGE, 8 * PAGE, RW), 0);
    assert.deepEqual(
      vmas(p).map((v) => v.slice(0, 2)),
      [[A, A + 15 * PAGE]],
    );
    teardown(sys);
  });
});
