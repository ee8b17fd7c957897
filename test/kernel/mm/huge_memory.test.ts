import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { MADV, PROT_READ } from '../../../src/kernel/mm/mman.ts';
import { FOLL_WRITE, pinUserPagesFast, unpinUserPages } from '../../../src/kernel/mm/gup.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { HPAGE, PAGE, RW, mapOk, pattern, readOk, setup, teardown, writeOk } from './mm_helpers.ts';

/** A THP-backed 2MiB region filled with a pattern; returns its address. */
function thpRegion(sys: System, p: Process): number {
  const a = mapOk(sys, p, 2 * HPAGE);
  assert.equal(a % HPAGE, 0, 'PMD-multiple anonymous mappings are PMD aligned');
  writeOk(sys, p, a, pattern(7, HPAGE));
  const e = sys.pagemap(p, a, 512);
  assert.ok(
    e.every((x) => x.thp && x.present),
    'the first write allocated a PMD-mapped THP',
  );
  assert.equal(e[511].pfn, e[0].pfn + 511);
  return a;
}

function pmdMapped(sys: System, p: Process, a: number): boolean {
  const pmd = p.mm!.pgt.upperAt(a, 1);
  const i = Math.floor(a / HPAGE) % 512;
  return pmd !== null && pmd.children[i] === null && pmd.words[2 * i] !== 0;
}

describe('transparent huge pages', () => {
  it('a read of untouched memory maps the huge zero page; a write then gets a real page', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = mapOk(sys, p, HPAGE);
    const used = sys.stats().used;
    assert.deepEqual(readOk(sys, p, a + 100 * PAGE, 4), new Uint8Array(4));
    assert.equal(sys.pagemap(p, a, 1)[0].kind, 'zero');
    assert.equal(sys.stats().used, used);
    writeOk(sys, p, a + 100 * PAGE, Uint8Array.of(1));
    assert.equal(sys.pagemap(p, a + 100 * PAGE, 1)[0].kind, 'ram');
    assert.equal(readOk(sys, p, a + 101 * PAGE, 1)[0], 0);
    teardown(sys);
  });

  it('thp=never and MADV_NOHUGEPAGE fault 4k pages only', () => {
    for (const [thp, advise] of [
      ['never', false],
      ['always', true],
    ] as const) {
      const { sys, p } = setup({ thp });
      const a = mapOk(sys, p, HPAGE);
      if (advise) assert.equal(sys.madvise(p, a, HPAGE, MADV.NOHUGEPAGE), 0);
      writeOk(sys, p, a, Uint8Array.of(1));
      assert.equal(sys.pagemap(p, a, 1)[0].thp, false, thp);
      assert.equal(sys.stats(p).rss_anon, PAGE);
      teardown(sys);
    }
  });

  it('partial munmap splits the PMD, frees nothing of the rest and keeps the data', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = thpRegion(sys, p);
    assert.equal(sys.munmap(p, a + 10 * PAGE, 2 * PAGE), 0);
    assert.ok(!pmdMapped(sys, p, a), 'PMD split into a PTE table');
    const e = sys.pagemap(p, a, 512);
    assert.equal(e[10].present, false);
    assert.equal(e[11].present, false);
    assert.ok(e[9].present && e[12].present);
    assert.equal(e[12].pfn, e[0].pfn + 12, 'the rest still maps the same folio');
    const d = pattern(7, HPAGE);
    assert.deepEqual(readOk(sys, p, a, 10 * PAGE), d.subarray(0, 10 * PAGE));
    assert.deepEqual(readOk(sys, p, a + 12 * PAGE, HPAGE - 12 * PAGE), d.subarray(12 * PAGE));
    assert.equal(sys.stats(p).rss_anon, HPAGE - 2 * PAGE);
    teardown(sys);
  });

  it('mprotect of part of a THP splits the PMD and protects only that part', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = thpRegion(sys, p);
    assert.equal(sys.mprotect(p, a + PAGE, PAGE, PROT_READ), 0);
    assert.ok(!pmdMapped(sys, p, a));
    assert.equal(sys.write(p, a + PAGE, Uint8Array.of(1)), -Errno.EFAULT);
    writeOk(sys, p, a, Uint8Array.of(1));
    writeOk(sys, p, a + 2 * PAGE, Uint8Array.of(2));
    assert.equal(readOk(sys, p, a + PAGE, 1)[0], pattern(7, HPAGE)[PAGE]);
    assert.equal(sys.mprotect(p, a, HPAGE, RW), 0);
    writeOk(sys, p, a + PAGE, Uint8Array.of(3));
    teardown(sys);
  });

  it('mprotect of a whole aligned THP keeps it PMD-mapped', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = thpRegion(sys, p);
    assert.equal(sys.mprotect(p, a, HPAGE, PROT_READ), 0);
    assert.ok(pmdMapped(sys, p, a));
    assert.equal(sys.write(p, a, Uint8Array.of(1)), -Errno.EFAULT);
    assert.equal(sys.mprotect(p, a, HPAGE, RW), 0);
    writeOk(sys, p, a, Uint8Array.of(1));
    assert.ok(pmdMapped(sys, p, a), 'the exclusive THP became writable again without a split');
    teardown(sys);
  });

  it('MADV_DONTNEED of part of a THP splits it and zeros exactly that part', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = thpRegion(sys, p);
    assert.equal(sys.madvise(p, a + 4 * PAGE, 4 * PAGE, MADV.DONTNEED), 0);
    assert.ok(!pmdMapped(sys, p, a));
    const e = sys.pagemap(p, a, 9);
    assert.deepEqual(
      e.map((x) => x.present),
      [true, true, true, true, false, false, false, false, true],
    );
    assert.ok(e[0].thp, 'the remaining PTEs still map the (now PTE-mapped) THP');
    assert.deepEqual(readOk(sys, p, a + 4 * PAGE, 4 * PAGE), new Uint8Array(4 * PAGE));
    assert.equal(readOk(sys, p, a + 8 * PAGE, 1)[0], pattern(7, HPAGE)[8 * PAGE]);
    teardown(sys);
  });

  it('MADV_DONTNEED of a whole THP frees all 512 pages at once', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = thpRegion(sys, p);
    const used = sys.stats().used;
    assert.equal(sys.madvise(p, a, HPAGE, MADV.DONTNEED), 0);
    assert.equal(sys.stats().used, used - HPAGE);
    assert.equal(sys.stats(p).rss_anon, 0);
    teardown(sys);
  });

  it('MADV_COLLAPSE turns 4k pages into one PMD-mapped THP with the same data, even with thp=never', () => {
    const { sys, p } = setup({ thp: 'never' });
    const a = mapOk(sys, p, 2 * HPAGE);
    for (let i = 0; i < 512; i += 3) writeOk(sys, p, a + i * PAGE, Uint8Array.of((i % 250) + 1));
    assert.ok(!pmdMapped(sys, p, a));
    assert.equal(sys.madvise(p, a, HPAGE, MADV.COLLAPSE), 0);
    assert.ok(pmdMapped(sys, p, a));
    for (let i = 0; i < 512; i++)
      assert.equal(readOk(sys, p, a + i * PAGE, 1)[0], i % 3 === 0 ? (i % 250) + 1 : 0);
    assert.equal(sys.stats(p).rss_anon, HPAGE);
    writeOk(sys, p, a + PAGE, Uint8Array.of(9));
    assert.ok(pmdMapped(sys, p, a), 'the collapsed THP is writable');
    teardown(sys);
  });

  it('MADV_COLLAPSE refuses VM_NOHUGEPAGE (EINVAL) and pinned pages (EAGAIN)', () => {
    const { sys, p } = setup({ thp: 'madvise' });
    const a = mapOk(sys, p, 2 * HPAGE);
    writeOk(sys, p, a, Uint8Array.of(1));
    assert.equal(sys.madvise(p, a + HPAGE, HPAGE, MADV.NOHUGEPAGE), 0);
    assert.equal(sys.madvise(p, a + HPAGE, HPAGE, MADV.COLLAPSE), -Errno.EINVAL);
    const pfns: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_WRITE, pfns)), 1);
    assert.equal(sys.madvise(p, a, HPAGE, MADV.COLLAPSE), -Errno.EAGAIN);
    assert.ok(!pmdMapped(sys, p, a));
    unpinUserPages(sys, pfns, 1, false);
    assert.equal(sys.madvise(p, a, HPAGE, MADV.COLLAPSE), 0);
    assert.equal(readOk(sys, p, a, 1)[0], 1);
    teardown(sys);
  });

  it('MADV_COLLAPSE ends at an empty PMD entry (EINVAL) and allocates nothing there', () => {
    const { sys, p } = setup({ thp: 'never' });
    const a = mapOk(sys, p, 4 * HPAGE);
    writeOk(sys, p, a + 2 * HPAGE, Uint8Array.of(5));
    const used = sys.stats().used;
    assert.equal(sys.madvise(p, a, 2 * HPAGE, MADV.COLLAPSE), -Errno.EINVAL);
    assert.equal(sys.stats().used, used);
    assert.ok(!pmdMapped(sys, p, a) && !pmdMapped(sys, p, a + HPAGE));
    // The walk stops at the first empty 2MiB: the populated one after it is not reached.
    assert.equal(sys.madvise(p, a, 4 * HPAGE, MADV.COLLAPSE), -Errno.EINVAL);
    assert.ok(!pmdMapped(sys, p, a + 2 * HPAGE));
    // From the populated one on: it collapses, then the empty one after it fails the call.
    assert.equal(sys.madvise(p, a + 2 * HPAGE, 2 * HPAGE, MADV.COLLAPSE), -Errno.EINVAL);
    assert.ok(pmdMapped(sys, p, a + 2 * HPAGE));
    assert.equal(readOk(sys, p, a + 2 * HPAGE, 1)[0], 5);
    teardown(sys);
  });

  it('MADV_COLLAPSE counts a PMD mapping of the huge zero page as collapsed (0) and leaves it', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = mapOk(sys, p, HPAGE);
    assert.deepEqual(readOk(sys, p, a, 4), new Uint8Array(4));
    assert.equal(sys.pagemap(p, a, 1)[0].kind, 'zero');
    const used = sys.stats().used;
    assert.equal(sys.madvise(p, a, HPAGE, MADV.COLLAPSE), 0);
    assert.equal(sys.pagemap(p, a, 1)[0].kind, 'zero');
    assert.equal(sys.stats().used, used);
    teardown(sys);
  });

  it('MADV_COLLAPSE whose huge page allocation swaps out the pages it collapses: EINVAL, data kept', () => {
    // 1024 written pages in 8 MiB of RAM: the order-9 allocation reclaims, and the clock hand
    // swaps out the very pages the scan found present.
    const { sys, p } = setup({ ram: 8 * 1024 * 1024, swap: 8 * 1024 * 1024, thp: 'never' });
    const a = mapOk(sys, p, 2 * HPAGE);
    writeOk(sys, p, a, pattern(7, 2 * HPAGE));
    assert.equal(sys.madvise(p, a + HPAGE, HPAGE, MADV.COLLAPSE), -Errno.EINVAL);
    assert.ok(!pmdMapped(sys, p, a + HPAGE));
    assert.ok(
      sys.pagemap(p, a + HPAGE, 512).some((e) => e.swap),
      'reclaim swapped some of them out',
    );
    assert.deepEqual(readOk(sys, p, a, 2 * HPAGE), pattern(7, 2 * HPAGE));
    teardown(sys);
  });

  it('MADV_COLLAPSE swaps in the pages it finds swapped out, then collapses', () => {
    const { sys, p } = setup({ thp: 'never' });
    const a = mapOk(sys, p, 2 * HPAGE);
    writeOk(sys, p, a, pattern(3, HPAGE));
    assert.equal(sys.madvise(p, a + 8 * PAGE, 3 * PAGE, MADV.PAGEOUT), 0);
    assert.equal(sys.pagemap(p, a, 512).filter((e) => e.swap).length, 3);
    assert.equal(sys.madvise(p, a, HPAGE, MADV.COLLAPSE), 0);
    assert.ok(pmdMapped(sys, p, a));
    assert.equal(
      sys.swap.count.reduce((n, c) => n + (c > 0 ? 1 : 0), 0),
      0,
      'every swap slot freed',
    );
    assert.deepEqual(readOk(sys, p, a, HPAGE), pattern(3, HPAGE));
    teardown(sys);
  });

  it('MADV_COLLAPSE whose swap-in fails ends its walk (SCAN_FAIL, EINVAL) and frees its huge page', () => {
    const { sys, p } = setup({ thp: 'never' });
    const a = mapOk(sys, p, 2 * HPAGE);
    writeOk(sys, p, a, pattern(4, 2 * HPAGE));
    assert.equal(sys.madvise(p, a, PAGE, MADV.PAGEOUT), 0);
    const used = sys.stats().used;
    sys.inject.failSite('swapin');
    assert.equal(sys.madvise(p, a, 2 * HPAGE, MADV.COLLAPSE), -Errno.EINVAL);
    assert.equal(sys.stats().used, used, 'the huge page went back');
    assert.ok(!pmdMapped(sys, p, a) && !pmdMapped(sys, p, a + HPAGE), 'the second 2MiB was not tried');
    assert.ok(sys.pagemap(p, a, 1)[0].swap);
    assert.equal(sys.madvise(p, a, 2 * HPAGE, MADV.COLLAPSE), 0);
    assert.deepEqual(readOk(sys, p, a, 2 * HPAGE), pattern(4, 2 * HPAGE));
    teardown(sys);
  });

  it('MADV_COLLAPSE stops at the first huge page it cannot allocate (ENOMEM)', () => {
    const { sys, p } = setup({ thp: 'never' });
    const a = mapOk(sys, p, 2 * HPAGE);
    writeOk(sys, p, a, Uint8Array.of(1));
    writeOk(sys, p, a + HPAGE, Uint8Array.of(2));
    sys.inject.failSite('collapse_alloc');
    assert.equal(sys.madvise(p, a, 2 * HPAGE, MADV.COLLAPSE), -Errno.ENOMEM);
    assert.ok(!pmdMapped(sys, p, a) && !pmdMapped(sys, p, a + HPAGE), 'the second 2MiB was not tried');
    assert.equal(sys.madvise(p, a, 2 * HPAGE, MADV.COLLAPSE), 0);
    assert.ok(pmdMapped(sys, p, a) && pmdMapped(sys, p, a + HPAGE));
    teardown(sys);
  });

  it('a THP does not fit a VMA smaller than 2MiB: the fault falls back to 4k', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = mapOk(sys, p, HPAGE - PAGE);
    writeOk(sys, p, a, Uint8Array.of(1));
    assert.equal(sys.pagemap(p, a, 1)[0].thp, false);
    teardown(sys);
  });
});
