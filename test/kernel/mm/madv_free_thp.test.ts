/*
 * MADV_FREE over transparent huge pages (madvise_free_huge_pmd() and the large-folio part of
 * madvise_free_pte_range()), then MADV_PAGEOUT without swap, which drops what is still lazily
 * freeable and clean; and MADV_COLD and MADV_PAGEOUT over THPs
 * (madvise_cold_or_pageout_pte_range()). Every value is what Linux 6.18 (6.18.44, THP
 * `madvise`, no swap) gave for the same sequence, but LazyFree after a split, where the kernel
 * had 16 or 32 KiB less: those pages were still in its per-CPU batch of folios on their way to
 * the lazy-free list.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MADV, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ } from '../../../src/kernel/mm/mman.ts';
import { System, type Process } from '../../../src/kernel/system.ts';
import { RW } from './mm_helpers.ts';

const MB = 1024 * 1024;

function world(): { sys: System; p: Process } {
  const sys = new System({ ram: 64 * MB, swap: 0, thp: 'madvise' });
  return { sys, p: sys.createProcess('p') };
}

/** A written THP, PMD-mapped: 2 MiB aligned in a larger private mapping, MADV_HUGEPAGE. */
function thp(sys: System, p: Process): number {
  const raw = sys.mmap(p, 0, 4 * MB, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  const a = Math.ceil(raw / (2 * MB)) * 2 * MB;
  assert.equal(sys.madvise(p, a, 2 * MB, MADV.HUGEPAGE), 0);
  assert.equal(sys.write(p, a, new Uint8Array(2 * MB).fill(1)), 2 * MB);
  return a;
}

/** A written THP mapped by PTEs: mprotect of one page and back splits the PMD, the folio stays large. */
function pteMappedThp(sys: System, p: Process): number {
  const x = thp(sys, p);
  assert.equal(sys.mprotect(p, x + MB, 4096, PROT_READ), 0);
  assert.equal(sys.mprotect(p, x + MB, 4096, RW), 0);
  return x;
}

/** Rss, AnonHugePages and LazyFree in kB of the VMA holding `a`, and Referenced with `referenced`. */
function counts(sys: System, p: Process, a: number, referenced = false): number[] {
  const r = sys.smaps(p, a, a + 1);
  assert.ok(typeof r !== 'number' && r.length === 1);
  const e = r[0];
  return [e.rss, e.anonHugePages, e.lazyFree, ...(referenced ? [e.referenced] : [])].map((b) => b / 1024);
}

/** Whether the pages at `a` and `a + 1 MiB` are present (pagemap). */
function present(sys: System, p: Process, a: number): string {
  return [0, MB].map((o) => (sys.pagemap(p, a + o, 1)[0].present ? '1' : '0')).join('');
}

describe('MADV_FREE over THPs', () => {
  it('a whole PMD stays mapped and is freed whole; part of one splits it', () => {
    const { sys, p } = world();
    const a = thp(sys, p);
    const b = thp(sys, p);
    assert.equal(sys.madvise(p, a, 2 * MB, MADV.FREE), 0);
    assert.deepEqual(counts(sys, p, a), [2048, 2048, 2048]);
    assert.equal(sys.madvise(p, b, MB, MADV.FREE), 0);
    assert.deepEqual(counts(sys, p, b), [2048, 0, 1024]);
    assert.equal(sys.madvise(p, a, 2 * MB, MADV.PAGEOUT), 0);
    assert.equal(sys.madvise(p, b, 2 * MB, MADV.PAGEOUT), 0);
    assert.equal(present(sys, p, a), '00');
    assert.equal(present(sys, p, b), '01');
    assert.equal(sys.read(p, a, 1).data[0], 0);
    assert.equal(sys.read(p, b + MB, 1).data[0], 1);
  });

  it('a THP a fork child shares is left alone, whole or in part', () => {
    const { sys, p } = world();
    const a = thp(sys, p);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(sys.madvise(p, a, 2 * MB, MADV.FREE), 0);
    assert.deepEqual(counts(sys, p, a), [2048, 2048, 0]);
    assert.equal(sys.madvise(p, a, MB, MADV.FREE), 0);
    assert.deepEqual(counts(sys, p, a), [2048, 2048, 0]);
    assert.equal(sys.exit(child), 0);
    // MADV_PAGEOUT without swap splits it (add_to_swap() fails) and keeps every page.
    assert.equal(sys.madvise(p, a, 2 * MB, MADV.PAGEOUT), 0);
    assert.deepEqual(counts(sys, p, a), [2048, 0, 0]);
    assert.equal(present(sys, p, a), '11');
  });

  it('a THP mapped by PTEs is freed whole when the range maps all of it, split when part', () => {
    const { sys, p } = world();
    const b = pteMappedThp(sys, p);
    const c = pteMappedThp(sys, p);
    assert.deepEqual(counts(sys, p, b), [2048, 0, 0]);
    assert.equal(sys.madvise(p, b, 2 * MB, MADV.FREE), 0);
    assert.deepEqual(counts(sys, p, b), [2048, 0, 2048]);
    assert.equal(sys.madvise(p, c, MB / 2, MADV.FREE), 0);
    assert.deepEqual(counts(sys, p, c), [2048, 0, 512]);
    assert.equal(sys.madvise(p, b, 2 * MB, MADV.PAGEOUT), 0);
    assert.equal(sys.madvise(p, c, 2 * MB, MADV.PAGEOUT), 0);
    assert.deepEqual(counts(sys, p, b), [0, 0, 0]);
    assert.deepEqual(counts(sys, p, c), [1536, 0, 0]);
    assert.equal(present(sys, p, c), '01');
  });

  it('a THP mapped by PTEs that a fork child shares is neither split nor freed', () => {
    const { sys, p } = world();
    const b = pteMappedThp(sys, p);
    const c = pteMappedThp(sys, p);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    // In part: a folio maybe mapped shared is not split. Whole: the folio, dirty since its PMD was
    // split, is not cleaned while other mappings have it, so it is not freed either.
    assert.equal(sys.madvise(p, c, MB / 2, MADV.FREE), 0);
    assert.equal(sys.madvise(p, b, 2 * MB, MADV.FREE), 0);
    assert.deepEqual(counts(sys, p, c), [2048, 0, 0]);
    assert.deepEqual(counts(sys, p, b), [2048, 0, 0]);
    assert.equal(sys.exit(child), 0);
    assert.equal(sys.madvise(p, b, 2 * MB, MADV.PAGEOUT), 0);
    assert.equal(sys.madvise(p, c, 2 * MB, MADV.PAGEOUT), 0);
    assert.deepEqual(counts(sys, p, b), [2048, 0, 0]);
    assert.deepEqual(counts(sys, p, c), [2048, 0, 0]);
  });

  it('a write after MADV_FREE keeps the THP from being dropped', () => {
    const { sys, p } = world();
    const d = thp(sys, p);
    assert.equal(sys.madvise(p, d, 2 * MB, MADV.FREE), 0);
    assert.equal(sys.write(p, d + 5, new Uint8Array([7])), 1);
    assert.deepEqual(counts(sys, p, d), [2048, 2048, 0]);
    assert.equal(sys.madvise(p, d, 2 * MB, MADV.PAGEOUT), 0);
    assert.deepEqual(counts(sys, p, d), [2048, 0, 0]);
    assert.equal(present(sys, p, d), '11');
    assert.equal(sys.read(p, d + 5, 1).data[0], 7);
    assert.equal(sys.read(p, d + MB, 1).data[0], 1);
  });
});

describe('MADV_COLD and MADV_PAGEOUT over THPs', () => {
  it('MADV_COLD keeps a whole THP PMD-mapped and splits one it covers in part', () => {
    const { sys, p } = world();
    const a = thp(sys, p);
    const b = thp(sys, p);
    assert.equal(sys.madvise(p, a, 2 * MB, MADV.COLD), 0);
    assert.deepEqual(counts(sys, p, a, true), [2048, 2048, 0, 0]);
    assert.equal(sys.madvise(p, b, MB, MADV.COLD), 0);
    assert.deepEqual(counts(sys, p, b, true), [2048, 0, 0, 1024]);
  });

  it('a THP a fork child shares is neither split nor aged', () => {
    const { sys, p } = world();
    const c = thp(sys, p);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(sys.madvise(p, c, 2 * MB, MADV.PAGEOUT), 0);
    assert.deepEqual(counts(sys, p, c, true), [2048, 2048, 0, 2048]);
    assert.equal(sys.madvise(p, c, MB, MADV.PAGEOUT), 0);
    assert.equal(sys.madvise(p, c, MB, MADV.COLD), 0);
    assert.deepEqual(counts(sys, p, c, true), [2048, 2048, 0, 2048]);
  });
});
