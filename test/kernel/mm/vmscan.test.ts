import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MADV, MAP_NORESERVE, MAP_SHARED } from '../../../src/kernel/mm/mman.ts';
import {
  MmuNotifier,
  mmuNotifierRegister,
  mmuNotifierUnregister,
} from '../../../src/kernel/mm/mmu_notifier.ts';
import { assertOracles } from '../../../src/oracles/index.ts';
import {
  ANON_PRIVATE,
  ANON_SHARED,
  MiB,
  PAGE,
  RW,
  expectedTags,
  mapOk,
  pattern,
  readOk,
  readTags,
  setup,
  tagPages,
  teardown,
  writeOk,
} from './mm_helpers.ts';

describe('swap-out and swap-in', () => {
  it('MADV_PAGEOUT swaps private pages out; pagemap says swap; a read brings the data back', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, pattern(1, 4 * PAGE));
    const used = sys.stats().used;
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.PAGEOUT), 0);
    assert.equal(sys.stats().used, used - 4 * PAGE);
    assert.equal(sys.swap.used, 4);
    assert.equal(sys.stats(p).swap_ents, 4 * PAGE);
    assert.equal(sys.stats(p).rss_anon, 0);
    const e = sys.pagemap(p, a, 4);
    assert.ok(e.every((x) => x.swap && !x.present && x.kind === 'swap'));
    assertOracles(sys);
    assert.deepEqual(readOk(sys, p, a, 4 * PAGE), pattern(1, 4 * PAGE));
    assert.equal(sys.swap.used, 0);
    assert.ok(sys.pagemap(p, a, 4).every((x) => x.present && !x.swap));
    assert.equal(sys.stats(p).rss_anon, 4 * PAGE);
    teardown(sys);
  });

  it('shared pages swapped out after fork come back identical in both processes and stay COW', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    tagPages(sys, p, a, 2, 7);
    const { child } = sys.fork(p, 'c');
    // PAGEOUT skips pages mapped more than once; memory pressure reclaims them anyway.
    sys.reclaim();
    assert.ok(sys.pagemap(p, a, 2).every((x) => x.swap));
    assert.ok(sys.pagemap(child!, a, 2).every((x) => x.swap));
    assert.equal(sys.swap.used, 2, 'one slot per page, shared by both');
    assertOracles(sys);
    writeOk(sys, child!, a, Uint8Array.of(99));
    assert.deepEqual(readTags(sys, p, a, 2), expectedTags(2, 7));
    assert.deepEqual(readTags(sys, child!, a, 2), [99, 8]);
    teardown(sys);
  });

  it('shmem pages swap out of the page cache and back, seen by mapping and pread alike', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(2, 2 * PAGE), 0), 2 * PAGE);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, RW, fd);
    readOk(sys, p, a, 1);
    assert.equal(sys.madvise(p, a, 2 * PAGE, MADV.PAGEOUT), 0);
    sys.reclaim();
    assert.equal(sys.swap.used, 2);
    assert.deepEqual(sys.pread(fd, 2 * PAGE, 0).data, pattern(2, 2 * PAGE));
    assert.deepEqual(readOk(sys, p, a, 2 * PAGE), pattern(2, 2 * PAGE));
    teardown(sys);
  });

  it('a machine with little RAM swaps under memory pressure and every byte survives', () => {
    const { sys, p } = setup({ ram: 8 * MiB, swap: 32 * MiB });
    const n = 3000; // ~12MiB of anonymous memory in 8MiB of RAM
    const a = mapOk(sys, p, n * PAGE);
    for (let i = 0; i < n; i++) writeOk(sys, p, a + i * PAGE, Uint8Array.of(i & 0xff, (i >> 8) + 1));
    assert.ok(sys.swap.used > 0, 'something was swapped');
    assertOracles(sys);
    for (let i = 0; i < n; i += 1) {
      const d = readOk(sys, p, a + i * PAGE, 2);
      assert.deepEqual([d[0], d[1]], [i & 0xff, (i >> 8) + 1], `page ${i}`);
    }
    teardown(sys);
  });

  it('with no swap, anonymous memory beyond RAM fails the write with ENOMEM and stays consistent', () => {
    const { sys, p } = setup({ ram: 8 * MiB, swap: 0 });
    // More than RAM + swap: heuristic overcommit refuses the commit charge unless MAP_NORESERVE.
    assert.equal(sys.mmap(p, 0, 3000 * PAGE, RW, ANON_PRIVATE, -1, 0), -12);
    const a = mapOk(sys, p, 3000 * PAGE, ANON_PRIVATE | MAP_NORESERVE);
    let failed = -1;
    for (let i = 0; i < 3000; i++) {
      const r = sys.write(p, a + i * PAGE, Uint8Array.of(1));
      if (r < 0) {
        assert.equal(r, -12);
        failed = i;
        break;
      }
    }
    assert.ok(failed > 0, 'RAM ran out');
    assertOracles(sys);
    assert.equal(sys.stats(p).rss_anon, failed * PAGE);
    assert.equal(sys.munmap(p, a, 3000 * PAGE), 0);
    writeOk(sys, p, mapOk(sys, p, PAGE), Uint8Array.of(1));
    teardown(sys);
  });
});

describe('what reclaim scans', () => {
  /** A process whose mm a secondary MMU watches, counting the accessed-bit queries reclaim makes. */
  function watched(swap: number) {
    const { sys, p } = setup({ ram: 8 * MiB, swap });
    let asked = 0;
    const mn = new MmuNotifier({
      *clearFlushYoung() {
        asked++;
        return false;
      },
    });
    assert.equal(sys.run('reg', mmuNotifierRegister(mn, p.mm!)), 0);
    const done = (): void => {
      sys.run('unreg', mmuNotifierUnregister(mn, p.mm!));
      teardown(sys);
    };
    return { sys, p, asked: () => asked, done };
  }

  it('with no swap, swap-backed pages are neither aged nor reclaimed; a clean MADV_FREE page still goes', () => {
    const { sys, p, asked, done } = watched(0);
    const a = mapOk(sys, p, 8 * PAGE);
    writeOk(sys, p, a, pattern(3, 8 * PAGE));
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(4, 2 * PAGE), 0), 2 * PAGE);
    const free = mapOk(sys, p, 2 * PAGE);
    writeOk(sys, p, free, pattern(5, 2 * PAGE));
    assert.equal(sys.madvise(p, free, 2 * PAGE, MADV.FREE), 0);
    sys.reclaim();
    // get_scan_count() scans only the file lists: the two lazily-freed pages, each asked once.
    assert.equal(asked(), 2);
    assert.equal(sys.trace.counters.get('reclaim.scanned'), 2);
    assert.equal(sys.trace.counters.get('reclaim.lazyfree'), 2);
    assert.equal(sys.stats(p).rss_anon, 8 * PAGE);
    assert.deepEqual(readOk(sys, p, a, 8 * PAGE), pattern(3, 8 * PAGE));
    assert.deepEqual(sys.pread(fd, 2 * PAGE, 0).data, pattern(4, 2 * PAGE));
    done();
  });

  it('with swap, the same reclaim ages and swaps the anonymous pages out', () => {
    const { sys, p, asked, done } = watched(8 * MiB);
    const a = mapOk(sys, p, 8 * PAGE);
    writeOk(sys, p, a, pattern(3, 8 * PAGE));
    sys.reclaim();
    assert.ok(asked() >= 8, `accessed bits asked ${asked()} times`);
    assert.equal(sys.stats(p).rss_anon, 0);
    assert.deepEqual(readOk(sys, p, a, 8 * PAGE), pattern(3, 8 * PAGE));
    done();
  });

  it('a full swap device stops the scan of anonymous pages as no swap does', () => {
    const { sys, p, asked, done } = watched(64 * PAGE);
    const a = mapOk(sys, p, 80 * PAGE);
    writeOk(sys, p, a, pattern(6, 80 * PAGE));
    sys.reclaim();
    assert.equal(sys.swap.used, 63, 'every slot but the header');
    const before = asked();
    sys.reclaim();
    assert.equal(asked(), before);
    assert.deepEqual(readOk(sys, p, a, 80 * PAGE), pattern(6, 80 * PAGE));
    done();
  });
});

describe('pagemap and soft-dirty', () => {
  it('reports none, zero, ram, swap and exclusivity per page', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    readOk(sys, p, a + PAGE, 1);
    writeOk(sys, p, a + 2 * PAGE, Uint8Array.of(1));
    writeOk(sys, p, a + 3 * PAGE, Uint8Array.of(1));
    assert.equal(sys.madvise(p, a + 3 * PAGE, PAGE, MADV.PAGEOUT), 0);
    assert.deepEqual(
      sys.pagemap(p, a, 4).map((e) => [e.kind, e.present, e.swap]),
      [
        ['none', false, false],
        ['zero', true, false],
        ['ram', true, false],
        ['swap', false, true],
      ],
    );
    assert.ok(sys.pagemap(p, a + 2 * PAGE, 1)[0].exclusive);
    const s = mapOk(sys, p, PAGE, ANON_SHARED);
    writeOk(sys, p, s, Uint8Array.of(1));
    const { child } = sys.fork(p, 'c');
    assert.ok(!sys.pagemap(p, a + 2 * PAGE, 1)[0].exclusive);
    assert.ok(!sys.pagemap(child!, s, 1)[0].exclusive);
    teardown(sys);
  });

  it('new mappings are soft-dirty; clear_refs clears it and only written pages become dirty again', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.ok(
      sys.pagemap(p, a, 4).every((e) => e.softDirty),
      'a new VMA is VM_SOFTDIRTY',
    );
    writeOk(sys, p, a, pattern(1, 3 * PAGE));
    assert.equal(sys.clearSoftDirty(p), 0);
    assert.ok(sys.pagemap(p, a, 4).every((e) => !e.softDirty));
    writeOk(sys, p, a + PAGE, Uint8Array.of(5));
    readOk(sys, p, a + 2 * PAGE, 1);
    assert.deepEqual(
      sys.pagemap(p, a, 4).map((e) => e.softDirty),
      [false, true, false, false],
    );
    // The write after clear_refs reused the same page: soft-dirty tracking costs no copy.
    assert.equal(sys.stats(p).rss_anon, 3 * PAGE);
    assert.deepEqual(readOk(sys, p, a + PAGE, 1), Uint8Array.of(5));
    teardown(sys);
  });

  it('soft-dirty survives swap-out and swap-in', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    writeOk(sys, p, a, pattern(1, 2 * PAGE));
    assert.equal(sys.clearSoftDirty(p), 0);
    writeOk(sys, p, a + PAGE, Uint8Array.of(1));
    assert.equal(sys.madvise(p, a, 2 * PAGE, MADV.PAGEOUT), 0);
    assert.deepEqual(
      sys.pagemap(p, a, 2).map((e) => [e.swap, e.softDirty]),
      [
        [true, false],
        [true, true],
      ],
    );
    readOk(sys, p, a, 2 * PAGE);
    assert.deepEqual(
      sys.pagemap(p, a, 2).map((e) => [e.present, e.softDirty]),
      [
        [true, false],
        [true, true],
      ],
    );
    teardown(sys);
  });

  it('soft-dirty on shared memory: clear_refs then a write marks only that page', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_SHARED);
    writeOk(sys, p, a, pattern(2, 2 * PAGE));
    assert.equal(sys.clearSoftDirty(p), 0);
    writeOk(sys, p, a + PAGE, Uint8Array.of(1));
    assert.deepEqual(
      sys.pagemap(p, a, 2).map((e) => e.softDirty),
      [false, true],
    );
    teardown(sys);
  });
});
