/*
 * Transparent huge pages through their life: the huge zero page and a write to it, folio splits
 * that map zero-filled pages to the zero page and carry a dirty entry to every page, MADV_DONTNEED
 * freeing the PTE tables it empties (CONFIG_PT_RECLAIM), a THP reused in place once a fork child
 * is gone, pagemap's exclusive bit for a PMD, MADV_PAGEOUT of a lazily-freeable THP, and mprotect
 * carrying accessed and dirty bits across a folio's batch of PTEs, and what MADV_COLLAPSE refuses.
 * Every value is what Linux 6.18
 * (6.18.44, THP `madvise`, CONFIG_PT_RECLAIM, CONFIG_MM_ID; no swap, but for the swap test, which
 * ran with a swap file on a rotational disk) gave for the same sequence.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import { FOLL_LONGTERM, FOLL_PIN, getUserPagesLocked } from '../../../src/kernel/mm/gup.ts';
import { System, type Process } from '../../../src/kernel/system.ts';
import { RW } from './mm_helpers.ts';

const KB = 1024;
const MB = 1024 * KB;
const H = 2 * MB;

function world(): { sys: System; p: Process } {
  const sys = new System({ ram: 64 * MB, swap: 0, thp: 'madvise' });
  return { sys, p: sys.createProcess('p') };
}

/** Four huge pages' worth of private memory, 2 MiB aligned, with MADV_HUGEPAGE; nothing faulted. */
function region(sys: System, p: Process): number {
  const raw = sys.mmap(p, 0, 5 * H, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  const a = Math.ceil(raw / H) * H;
  assert.equal(sys.madvise(p, a, 4 * H, MADV.HUGEPAGE), 0);
  return a;
}

function fill(sys: System, p: Process, a: number, len: number, byte: number): void {
  assert.equal(sys.write(p, a, new Uint8Array(len).fill(byte)), len);
}

/** Rss, AnonHugePages, Private_Dirty, Private_Clean and LazyFree in kB of the VMA holding `a`. */
function smaps(sys: System, p: Process, a: number): number[] {
  const r = sys.smaps(p, a, a + 1);
  assert.ok(typeof r !== 'number' && r.length === 1);
  const e = r[0];
  return [e.rss, e.anonHugePages, e.privateDirty, e.privateClean, e.lazyFree].map((b) => b / KB);
}

/** pagemap's present, file and exclusive bits of the page at `a`, as 0/1 digits. */
function bits(sys: System, p: Process, a: number): string {
  const e = sys.pagemap(p, a, 1)[0];
  return [e.present, e.file, e.exclusive].map((b) => (b ? '1' : '0')).join('');
}

describe('THPs: the huge zero page', () => {
  it('reads as present and PM_FILE, and a write to it maps a THP of its own', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    sys.read(p, a + 10, 1);
    assert.equal(bits(sys, p, a + H / 2), '110');
    assert.deepEqual(smaps(sys, p, a), [0, 0, 0, 0, 0]);
    fill(sys, p, a + 5, 1, 1);
    assert.deepEqual(smaps(sys, p, a), [2048, 2048, 2048, 0, 0]);
    assert.equal(bits(sys, p, a + H / 2), '101');
  });

  it('split under PROT_NONE, its entries stay inaccessible', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    sys.read(p, a + H + 10, 1);
    assert.equal(sys.mprotect(p, a + H / 2, 2 * H, 0), 0);
    assert.equal(sys.munmap(p, a + H + H / 2, 4 * KB), 0);
    assert.equal(sys.read(p, a + H + 8 * KB, 8).ret, -14);
  });
});

describe('THPs: splitting a folio', () => {
  it('maps the pages that hold only zeros to the zero page', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a + H / 2, 4 * KB, 7);
    fill(sys, p, a + H - 4 * KB, 1, 9);
    assert.deepEqual(smaps(sys, p, a), [2048, 2048, 2048, 0, 0]);
    // MADV_COLD over part of it splits it.
    assert.equal(sys.madvise(p, a, H / 4, MADV.COLD), 0);
    assert.deepEqual(smaps(sys, p, a), [8, 0, 8, 0, 0]);
    assert.equal(bits(sys, p, a + 8 * KB), '100');
    assert.equal(bits(sys, p, a + H / 2), '101');
    assert.equal(sys.read(p, a + H / 2, 1).data[0], 7);
  });

  it('marks every page dirty when one entry was', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, H, 1);
    assert.equal(sys.madvise(p, a, H, MADV.FREE), 0);
    // mprotect of a page and back splits the PMD: the clean folio is mapped by PTEs.
    assert.equal(sys.mprotect(p, a + H / 2, 4 * KB, PROT_READ), 0);
    assert.equal(sys.mprotect(p, a + H / 2, 4 * KB, RW), 0);
    fill(sys, p, a + (3 * H) / 4, 1, 2);
    assert.deepEqual(smaps(sys, p, a), [2048, 0, 4, 2044, 2044]);
    // MADV_FREE of one page splits the folio: all of it turns dirty, that page is clean again.
    assert.equal(sys.madvise(p, a, 4 * KB, MADV.FREE), 0);
    assert.deepEqual(smaps(sys, p, a), [2048, 0, 2044, 4, 4]);
    assert.equal(sys.madvise(p, a, H, MADV.PAGEOUT), 0);
    assert.deepEqual(smaps(sys, p, a), [2044, 0, 2044, 0, 0]);
  });
});

describe('THPs: MADV_DONTNEED frees the PTE tables it empties', () => {
  it('a table covered whole goes, so the next fault maps a THP; one covered in part stays', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, H, 1);
    assert.equal(sys.madvise(p, a + 4 * KB, H - 4 * KB, MADV.DONTNEED), 0);
    assert.deepEqual(smaps(sys, p, a), [4, 0, 4, 0, 0]);
    fill(sys, p, a + 8 * KB, 1, 1);
    assert.deepEqual(smaps(sys, p, a), [8, 0, 8, 0, 0]);
    assert.equal(sys.madvise(p, a, H, MADV.DONTNEED), 0);
    assert.deepEqual(smaps(sys, p, a), [0, 0, 0, 0, 0]);
    fill(sys, p, a + 8 * KB, 1, 1);
    assert.deepEqual(smaps(sys, p, a), [2048, 2048, 2048, 0, 0]);
  });
});

describe('THPs after fork', () => {
  it('a THP the child no longer maps is written in place, PMD and all', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, H, 1);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(sys.exit(child), 0);
    fill(sys, p, a + H / 2, 1, 2);
    assert.deepEqual(smaps(sys, p, a), [2048, 2048, 2048, 0, 0]);
  });

  it('a PTE-mapped THP the child no longer maps is written in place', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, 1, 1);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(sys.madvise(p, a, 4 * KB, MADV.DONTNEED), 0);
    assert.equal(sys.exit(child), 0);
    const before = sys.pagemap(p, a + H / 2, 1)[0];
    assert.equal(bits(sys, p, a + H / 2), '101');
    fill(sys, p, a + H / 2, 1, 5);
    const after = sys.pagemap(p, a + H / 2, 1)[0];
    assert.equal(bits(sys, p, a + H / 2), '101');
    assert.equal(after.pfn, before.pfn);
  });

  it('a THP parent and child map different pages of is shared: not split until the child goes', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, 1, 1);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(sys.madvise(child, a, H / 2, MADV.DONTNEED), 0);
    assert.equal(sys.munmap(p, a + H / 2, H / 2), 0);
    assert.deepEqual(smaps(sys, p, a), [1024, 0, 1024, 0, 0]);
    assert.equal(sys.madvise(p, a, 4 * KB, MADV.COLD), 0);
    assert.deepEqual(smaps(sys, p, a), [1024, 0, 1024, 0, 0]);
    assert.equal(sys.exit(child), 0);
    assert.equal(sys.madvise(p, a, 4 * KB, MADV.COLD), 0);
    assert.deepEqual(smaps(sys, p, a), [4, 0, 4, 0, 0]);
  });

  it("a child's PROT_NONE entries map the pages too", () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a + H / 2, 1, 1);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(sys.mprotect(child, a, H / 2, 0), 0);
    assert.equal(sys.madvise(child, a + H / 2, H / 2, MADV.DONTNEED), 0);
    assert.equal(sys.munmap(p, a, H / 2), 0);
    assert.equal(sys.madvise(p, a + H / 2, 4 * KB, MADV.COLD), 0);
    assert.deepEqual(smaps(sys, p, a + H / 2), [1024, 0, 1024, 0, 0]);
  });

  it('the child gets every PTE table the parent has, empty ones too', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    // A guard marker installed and removed leaves an empty PTE table (and VM_MAYBE_GUARD, which
    // makes fork copy the page tables).
    assert.equal(sys.madvise(p, a + H, 4 * KB, MADV.GUARD_INSTALL), 0);
    assert.equal(sys.madvise(p, a + H, 4 * KB, MADV.GUARD_REMOVE), 0);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    fill(sys, child, a + H + H / 2, 1, 1);
    fill(sys, child, a + 3 * H, 1, 1);
    assert.deepEqual(smaps(sys, child, a), [2052, 2048, 2052, 0, 0]);
  });

  it("pagemap's exclusive bit of a PMD is that of the THP's first page", () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, H, 1);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    // The child's write splits its PMD and copies one page: the parent's PMD still maps the
    // first page, which the child maps too.
    fill(sys, child, a + H / 2, 1, 3);
    assert.equal(bits(sys, p, a + H / 2), '100');
    assert.equal(bits(sys, p, a + H / 4), '100');
    // Once the child unmaps the first page, every page of the parent's PMD reads as exclusive,
    // the ones the child still maps too.
    assert.equal(sys.munmap(child, a, 4 * KB), 0);
    assert.equal(bits(sys, p, a + H / 2), '101');
    assert.equal(bits(sys, p, a + H / 4), '101');
  });
});

describe('THPs: MADV_PAGEOUT of a lazily-freeable THP', () => {
  it('a clean one goes and leaves its PTE table; a written one stays, PTE-mapped', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, H, 1);
    assert.equal(sys.madvise(p, a, H, MADV.FREE), 0);
    assert.equal(sys.madvise(p, a, H, MADV.PAGEOUT), 0);
    assert.deepEqual(smaps(sys, p, a), [0, 0, 0, 0, 0]);
    fill(sys, p, a + 8 * KB, 1, 1);
    assert.deepEqual(smaps(sys, p, a), [4, 0, 4, 0, 0]);
    // Half of it written: a split would map the other half to the zero page; the folio stays whole.
    fill(sys, p, a + H, H / 2, 1);
    assert.equal(sys.madvise(p, a + H, H, MADV.FREE), 0);
    fill(sys, p, a + H + 5, 1, 2);
    assert.equal(sys.madvise(p, a + H, H, MADV.PAGEOUT), 0);
    assert.deepEqual(smaps(sys, p, a + H), [2052, 0, 2052, 0, 0]);
  });
});

describe('THPs: swap', () => {
  it('MADV_PAGEOUT splits a THP and swaps out only its written pages', () => {
    // Live, with a swap file on a rotational disk: thp_swpout stayed 0, thp_swpout_fallback rose.
    const sys = new System({ ram: 64 * MB, swap: 64 * MB, thp: 'madvise' });
    const p = sys.createProcess('p');
    const a = region(sys, p);
    fill(sys, p, a + 620 * KB, 4 * KB, 65);
    assert.equal(sys.madvise(p, a, H, MADV.PAGEOUT), 0);
    const e = (sys.smaps(p, a, a + 1) as { rss: number; anonHugePages: number; swap: number }[])[0];
    assert.deepEqual(
      [e.rss, e.anonHugePages, e.swap].map((b) => b / KB),
      [0, 0, 4],
    );
    assert.equal(sys.read(p, a + 620 * KB, 1).data[0], 65);
  });
});

describe('THPs: mprotect', () => {
  it("carries a dirty entry's bit to the whole batch of a folio's PTEs", () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, H, 1);
    assert.equal(sys.madvise(p, a, H, MADV.FREE), 0);
    assert.equal(sys.munmap(p, a, 4 * KB), 0);
    fill(sys, p, a + H / 2, 1, 2);
    assert.equal(sys.mprotect(p, a + H / 4, (3 * H) / 4, PROT_READ), 0);
    assert.deepEqual(smaps(sys, p, a + 4 * KB), [508, 0, 0, 508, 508]);
    assert.deepEqual(smaps(sys, p, a + H / 4), [1536, 0, 1536, 0, 0]);
  });
});

/*
 * A read-only long-term pin (FAULT_FLAG_UNSHARE) takes do_huge_pmd_wp_page() as a write does.
 * From the 6.18 source: the live kernel has no read-only long-term pin an unprivileged program can
 * ask for (io_uring pins for writing, and gup_test is not loaded), so these values are not live.
 */
describe('THPs: read-only long-term pins', () => {
  /** pin_user_pages(FOLL_LONGTERM) of `n` pages from `a`, read-only; the pages pinned. */
  function pinRo(sys: System, p: Process, a: number, n: number): number[] {
    const mm = p.mm!;
    const out: number[] = [];
    const r = sys.run(
      'pin',
      (function* () {
        yield* mm.mmapLock.downRead();
        const got = yield* getUserPagesLocked(mm, a, n, FOLL_LONGTERM | FOLL_PIN, out);
        yield* mm.mmapLock.upRead();
        return got;
      })(),
    );
    assert.equal(r, n);
    return out;
  }

  it('of a THP only its PMD maps: it stays PMD-mapped, now exclusive', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    fill(sys, p, a, H, 1);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(sys.exit(child), 0);
    const before = sys.pagemap(p, a, 1)[0].pfn;
    assert.deepEqual(pinRo(sys, p, a, 4), [before, before + 1, before + 2, before + 3]);
    assert.deepEqual(smaps(sys, p, a), [2048, 2048, 2048, 0, 0]);
  });

  it('of the huge zero page: a THP of its own', () => {
    const { sys, p } = world();
    const a = region(sys, p);
    sys.read(p, a, 1);
    assert.equal(bits(sys, p, a), '110');
    pinRo(sys, p, a, 1);
    assert.deepEqual(smaps(sys, p, a), [2048, 2048, 2048, 0, 0]);
    assert.equal(bits(sys, p, a), '101');
  });
});

describe('THPs: MADV_COLLAPSE', () => {
  /** 8 MiB of private memory at a 2 MiB boundary, without MADV_HUGEPAGE; nothing faulted. */
  function plain(sys: System, p: Process): number {
    const raw = sys.mmap(p, 0, 5 * H, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    const a = Math.ceil(raw / H) * H;
    if (a > raw) assert.equal(sys.munmap(p, raw, a - raw), 0);
    assert.equal(sys.munmap(p, a + 4 * H, raw + 5 * H - (a + 4 * H)), 0);
    return a;
  }
  const collapse = (sys: System, p: Process, a: number, len: number): number =>
    sys.madvise(p, a, len, MADV.COLLAPSE);

  it('needs an anon_vma, and a range that reaches a 2 MiB boundary', () => {
    const { sys, p } = world();
    const a = plain(sys, p);
    // Nothing was ever faulted into the VMA: it has no anon_vma.
    assert.equal(collapse(sys, p, a + H, 4 * KB), -22);
    assert.equal(collapse(sys, p, a + H, 438 * 4 * KB), -22);
    fill(sys, p, a + 3 * H, 4 * KB, 1);
    // From a boundary to short of the next: no huge page asked for, none failed.
    assert.equal(collapse(sys, p, a + H, 4 * KB), 0);
    fill(sys, p, a + H, 4 * KB, 1);
    assert.equal(collapse(sys, p, a + H, 4 * KB), 0);
    // Inside one 2 MiB, touching neither of its boundaries.
    assert.equal(collapse(sys, p, a + H + 4 * KB, 4 * KB), -22);
  });

  it('the huge zero page gives the VMA an anon_vma; the small zero page does not', () => {
    const { sys, p } = world();
    const a = plain(sys, p);
    assert.equal(sys.madvise(p, a, 2 * H, MADV.HUGEPAGE), 0);
    sys.read(p, a, 1);
    assert.equal(bits(sys, p, a), '110');
    // Already PMD-mapped (SCAN_PMD_MAPPED): counted as collapsed.
    assert.equal(collapse(sys, p, a, H), 0);
    sys.read(p, a + 3 * H, 1);
    assert.equal(collapse(sys, p, a + 2 * H, 4 * KB), -22);
  });

  it('in a PROT_NONE VMA maps the huge page PROT_NONE', () => {
    const { sys, p } = world();
    const a = plain(sys, p);
    fill(sys, p, a + H, H, 5);
    assert.equal(sys.mprotect(p, a + H, H, 0), 0);
    assert.equal(collapse(sys, p, a + H, H), 0);
    assert.equal(sys.read(p, a + H + 8 * KB, 8).ret, -14);
    assert.equal(bits(sys, p, a + H + 4 * KB), '101');
    assert.deepEqual(smaps(sys, p, a + H), [2048, 2048, 2048, 0, 0]);
    assert.equal(sys.mprotect(p, a + H, H, PROT_READ), 0);
    assert.deepEqual(sys.read(p, a + H + 8 * KB, 8).data, new Uint8Array(8).fill(5));
  });

  it("after fork, of pages the child shares (every PTE read-only): the parent's are collapsed", () => {
    const { sys, p } = world();
    const a = plain(sys, p);
    fill(sys, p, a + H, H, 5);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(collapse(sys, p, a + H, H), 0);
    assert.deepEqual(smaps(sys, p, a), [2048, 2048, 2048, 0, 0]);
    assert.deepEqual(smaps(sys, child, a), [2048, 0, 2048, 0, 0]);
  });

  it('a guard marker ends it: the huge pages after it are not collapsed', () => {
    const { sys, p } = world();
    const a = plain(sys, p);
    fill(sys, p, a + 7299072, 4 * KB, 107);
    assert.equal(sys.madvise(p, a + 2809856, H, MADV.GUARD_INSTALL), 0);
    // The guards in [4 MiB, 6 MiB) count as entries to fault in; faulting one in fails (SCAN_FAIL).
    assert.equal(collapse(sys, p, a + 2 * H, 2 * H), -22);
    assert.deepEqual(smaps(sys, p, a), [4, 0, 4, 0, 0]);
    assert.equal(collapse(sys, p, a + 3 * H, H), 0);
    assert.deepEqual(smaps(sys, p, a), [2048, 2048, 2048, 0, 0]);
  });

  it('needs a VMA that can hold a huge page; an empty PMD entry ends it', () => {
    const { sys, p } = world();
    const a = plain(sys, p);
    fill(sys, p, a, 4 * KB, 1);
    assert.equal(sys.mprotect(p, a, MB, PROT_READ), 0);
    assert.equal(collapse(sys, p, a, MB), -22);
    assert.equal(collapse(sys, p, a + MB, MB), 0);
    assert.equal(collapse(sys, p, a, H), -22);
    assert.equal(collapse(sys, p, a + MB, 2 * H), -22);
    fill(sys, p, a + 2 * H, H, 3);
    assert.equal(collapse(sys, p, a + 2 * H + 4 * KB, 2 * H), -22);
    assert.equal(collapse(sys, p, a + 2 * H - 4 * KB, 2 * H), 0);
    assert.deepEqual(smaps(sys, p, a + MB), [2048, 2048, 2048, 0, 0]);
  });
});

describe('THPs: mremap', () => {
  const flags = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
  /** 8 MiB of private memory at a 2 MiB boundary, and nothing mapped for 16 MiB above it. */
  function spacious(sys: System, p: Process): number {
    const raw = sys.mmap(p, 0, 13 * H, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    const a = Math.ceil(raw / H) * H;
    assert.equal(sys.munmap(p, raw, 13 * H), 0);
    assert.equal(sys.mmap(p, a, 4 * H, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED), a);
    return a;
  }

  it('MREMAP_DONTUNMAP leaves an emptied PTE table behind off the 2 MiB grid, and moves it whole on it', () => {
    const { sys, p } = world();
    const a = spacious(sys, p);
    assert.equal(sys.madvise(p, a, 4 * H, MADV.HUGEPAGE), 0);
    fill(sys, p, a + 5624205, 8, 176);
    // To an address off the grid: the THP is split and its entries move one by one.
    assert.equal(sys.mremap(p, a + 2 * H, 2 * H, 2 * H, flags, a + 14934016), a + 14934016);
    assert.deepEqual(sys.read(p, a + 14934016 + 1429901, 8).data, new Uint8Array(8).fill(176));
    // The emptied table stays: a read fault there maps the small zero page, and no more.
    assert.equal(sys.read(p, a + 5445841, 4096).ret, 4096);
    assert.equal(bits(sys, p, a + 5128192), '000');
    assert.equal(bits(sys, p, a + 5443584), '100');
    // A write of the whole 2 MiB there maps small pages into it.
    fill(sys, p, a + 2 * H, H, 5);
    assert.equal(sys.mprotect(p, a + 2 * H, 4 * KB, PROT_READ), 0);
    assert.equal(sys.mprotect(p, a + 2 * H, 4 * KB, RW), 0);
    assert.equal(bits(sys, p, a + 2 * H), '101');
    // To an address on the grid: the table itself moves, and the PMD entry left is empty again.
    assert.equal(sys.mremap(p, a + 2 * H, 2 * H, 2 * H, flags, a + 9 * H), a + 9 * H);
    assert.deepEqual(sys.read(p, a + 9 * H + 8 * KB, 8).data, new Uint8Array(8).fill(5));
    assert.equal(sys.read(p, a + 2 * H + 8 * KB, 8).ret, 8);
    assert.equal(bits(sys, p, a + 2 * H), '110');
  });

  it('a move from the start of a VMA realigns to the 2 MiB boundary below when nothing is mapped there', () => {
    const { sys, p } = world();
    const a = spacious(sys, p);
    assert.equal(sys.munmap(p, a, MB), 0);
    fill(sys, p, a + MB, 8 * KB, 7);
    assert.equal(sys.mremap(p, a + MB, H, H, flags, a + 9 * H + MB), a + 9 * H + MB);
    // The PTE table went with the move: mapped again and advised, the 2 MiB can take a THP.
    assert.equal(sys.mmap(p, a, MB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED), a);
    assert.equal(sys.madvise(p, a, H, MADV.HUGEPAGE), 0);
    assert.equal(sys.read(p, a + 8 * KB, 8).ret, 8);
    assert.equal(bits(sys, p, a), '110');
  });

  it('and does not when a VMA lies below it: the table stays', () => {
    const { sys, p } = world();
    const a = spacious(sys, p);
    assert.equal(sys.mprotect(p, a, MB, PROT_READ), 0);
    fill(sys, p, a + MB, 8 * KB, 7);
    assert.equal(sys.mremap(p, a + MB, H, H, flags, a + 9 * H + MB), a + 9 * H + MB);
    assert.equal(sys.mprotect(p, a, MB, RW), 0);
    assert.equal(sys.madvise(p, a, H, MADV.HUGEPAGE), 0);
    assert.equal(sys.read(p, a + 8 * KB, 8).ret, 8);
    assert.equal(bits(sys, p, a), '000');
    assert.equal(bits(sys, p, a + 8 * KB), '100');
  });
});
