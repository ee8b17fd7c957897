import { type LeafTable, type UpperTable, indexAt } from '../../lib/pgtable_store.ts';
import { sideTable } from '../../lib/snapshot.ts';
import { PAGE_SIZE, PMD_SIZE, alignUp, pageAlignUp } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { mmapWriteLockKillable } from './mmap_lock.ts';
import type { Process } from '../system.ts';
import { FOLL_TOUCH, FOLL_WRITE, followPage } from './gup.ts';
import { COLLAPSE_SCAN_FAIL, collapseHugePage } from './huge_memory.ts';
import { FAULT_FLAG_WRITE, collapseSwapin, handleMmFault, vmFaultToErrno } from './memory.ts';
import { MM_SWAPENTS, type MmStruct, VM, VM_SPECIAL, type Vma } from './mm_types.ts';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, MADV } from './mman.ts';
import {
  fdput,
  fget,
  hugetlbSplitCheck,
  mergeAnonNeighbours,
  splitRange,
  zapPageRangeSingle,
} from './mmap.ts';
import { canMadviseModify } from './mseal.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from './mmu_notifier.ts';
import { PG, type PhysMem } from './page_alloc.ts';
import { anonVmaPrepare, folioMapcount, folioMaybeMappedShared } from './rmap.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SOFT_DIRTY,
  PTE_SPECIAL,
  SwpType,
  isGuardMarker,
  isSwapEntry,
  pteNone,
  ptePresent,
  swpLo,
} from './pgtable.ts';
import { clearPte, pmdTableOf, pteSlot, setPte } from './pte.ts';
import { vfsFallocate } from './shmem.ts';
import { pageoutPage, reclaimLazyfreeFolio, splitForReclaim } from './vmscan.ts';

const KNOWN = new Set<number>(Object.values(MADV));

/** Advice that changes VMA flags, and so takes the mmap lock for writing (madvise_need_mmap_write). */
function needsWrite(advice: number): boolean {
  return ![
    MADV.REMOVE,
    MADV.WILLNEED,
    MADV.DONTNEED,
    MADV.DONTNEED_LOCKED,
    MADV.COLD,
    MADV.PAGEOUT,
    MADV.FREE,
    MADV.POPULATE_READ,
    MADV.POPULATE_WRITE,
    MADV.COLLAPSE,
    MADV.GUARD_INSTALL,
    MADV.GUARD_REMOVE,
  ].includes(advice as never);
}

/** Calls `fn` with the PTE table, slot and address of each page of [start, end) that has a PTE table. */
function forEachPte(
  mm: MmStruct,
  start: number,
  end: number,
  fn: (t: LeafTable, s: number, addr: number) => void,
): void {
  for (let a = start; a < end; a += PAGE_SIZE) {
    const t = mm.pgt.pteTable(a);
    if (t === null) {
      a = alignUp(a + 1, PMD_SIZE) - PAGE_SIZE;
      continue;
    }
    fn(t, pteSlot(a), a);
  }
}

/** Models folio_mark_lazyfree(): a swap-backed anonymous folio becomes lazily freeable. */
function markLazyfree(phys: PhysMem, h: number): void {
  if ((phys.flags[h] & PG.swapbacked) !== 0) phys.flags[h] &= ~(PG.swapbacked | PG.active | PG.referenced);
}

/** PTE bits a batch of PTEs mapping one folio may differ in (folio_pte_batch() ignores them). */
const BATCH_IGNORED = PTE_DIRTY | PTE_ACCESSED | PTE_SOFT_DIRTY;

/**
 * Models madvise_folio_pte_batch(): how many PTEs from slot `s` (address `a`) on, below `end` and
 * within one page table, map consecutive pages of the folio at `h` from `pfn` with the same bits.
 */
function folioPteBatch(phys: PhysMem, t: LeafTable, s: number, a: number, end: number, h: number): number {
  const pfn = t.words[s + 1];
  const last = h + (1 << phys.order[h]);
  const bits = t.words[s] & ~BATCH_IGNORED;
  let nr = 1;
  for (let b = a + PAGE_SIZE; b < end && b % PMD_SIZE !== 0 && pfn + nr < last; b += PAGE_SIZE, nr++) {
    const k = s + 2 * nr;
    if (t.words[k + 1] !== pfn + nr || (t.words[k] & ~BATCH_IGNORED) !== bits) break;
  }
  return nr;
}

/**
 * The folios mapped by PMD in [start, end), with the PMD table, index and 2 MiB base of each: not
 * the huge zero page, nor a migration or device entry. Read before each one is used.
 */
function* pmdThps(
  mm: MmStruct,
  start: number,
  end: number,
): Generator<{ pmd: UpperTable; i: number; base: number; h: number }> {
  for (let base = start - (start % PMD_SIZE); base < end; base += PMD_SIZE) {
    const pmd = mm.pgt.upperAt(base, 1);
    if (pmd === null) continue;
    const i = indexAt(base, 1);
    const lo = pmd.words[2 * i];
    const h = pmd.words[2 * i + 1];
    if (pmd.children[i] !== null || (lo & (PTE_PRESENT | PTE_PROTNONE)) === 0 || mm.sys.phys.isZeroPfn(h))
      continue;
    yield { pmd, i, base, h };
  }
}

/**
 * The entries from slot `s` (address `a`) that map the folio at `h` in one run, for the walks of
 * MADV_FREE, MADV_COLD and MADV_PAGEOUT, with the page-table lock held: `whole` when they map all
 * of it (always, for a small folio). A large anonymous folio they map only part of is split, if it
 * may be (no other process may map it, nothing but its mappings holds it): `nr` is then 0, and the
 * caller looks at the same entry again. Otherwise `nr` entries are to be passed over.
 */
function* folioRun(
  mm: MmStruct,
  t: LeafTable,
  s: number,
  a: number,
  end: number,
  h: number,
): KGen<{ nr: number; whole: boolean }> {
  const phys = mm.sys.phys;
  if (phys.order[h] === 0) return { nr: 1, whole: true };
  const nr = folioPteBatch(phys, t, s, a, end, h);
  if (nr === 1 << phys.order[h]) return { nr, whole: true };
  if ((phys.flags[h] & PG.anon) === 0 || folioMaybeMappedShared(phys, h)) return { nr, whole: false };
  yield* mm.ptl.unlock();
  const split = yield* splitForReclaim(mm.sys, h);
  yield* mm.ptl.lock();
  return { nr: split ? 0 : nr, whole: false };
}

/**
 * Models madvise_free_single_vma() with madvise_free_huge_pmd() and madvise_free_pte_range(): the
 * range's swap entries are dropped (a swap-in would cost more than a new zeroed page), and each
 * folio mapped there loses its entries' young and dirty bits and becomes lazily freeable
 * (PG_swapbacked cleared), shared with another process or not. A dirty folio is made clean only
 * where this mapping is all its mappings, and left as it is otherwise.
 *
 * Large folios: a THP mapped by PMD whose 2 MiB the range covers stays whole and PMD-mapped; one
 * the range covers in part is split (its pages are then freed one by one), unless another process
 * may map it, or something beyond its mappings holds it, where it is left alone. The same goes for
 * a large folio mapped by PTEs: one whose pages the range maps in one run is freed whole, one it
 * covers in part is split first. The huge zero page is left mapped by its PMD.
 */
function* madviseFree(vma: Vma, start: number, end: number): KGen<number> {
  if (!vma.isAnon() || (vma.flags & VM.SHARED) !== 0) return -Errno.EINVAL;
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, start, end);
  yield* mmuNotifierInvalidateRangeStart(range);
  for (const { pmd, i, base, h } of pmdThps(mm, start, end)) {
    if (folioMaybeMappedShared(sys.phys, h)) continue;
    if (base >= start && base + PMD_SIZE <= end) {
      yield* mm.ptl.lock();
      phys.flags[h] &= ~PG.dirty;
      pmd.words[2 * i] = (pmd.words[2 * i] & ~(PTE_DIRTY | PTE_ACCESSED)) >>> 0;
      markLazyfree(phys, h);
      yield* mm.ptl.unlock();
    } else yield* splitForReclaim(sys, h);
  }
  yield* mm.ptl.lock();
  for (let a = start; a < end;) {
    const t = mm.pgt.pteTable(a);
    if (t === null) {
      a += PAGE_SIZE;
      continue;
    }
    const s = pteSlot(a);
    const lo = t.words[s];
    const pfn = t.words[s + 1];
    if (isSwapEntry(lo)) {
      sys.swap.free(pfn);
      mm.rss[MM_SWAPENTS]--;
      setPte(t, s, 0, 0);
      a += PAGE_SIZE;
      continue;
    }
    // pte_present(): a PROT_NONE entry (a PROT_NONE VMA, a NUMA hinting entry) maps its page too.
    if (!ptePresent(lo) || (lo & PTE_SPECIAL) !== 0 || phys.isZeroPfn(pfn) || !phys.isRam(pfn)) {
      a += PAGE_SIZE;
      continue;
    }
    const h = phys.head(pfn);
    if ((phys.flags[h] & PG.anon) === 0) {
      a += PAGE_SIZE;
      continue;
    }
    const run = yield* folioRun(mm, t, s, a, end, h);
    if (!run.whole) {
      a += run.nr * PAGE_SIZE;
      continue;
    }
    const nr = run.nr;
    // A dirty folio is cleaned only where every mapping of it is one of these entries.
    if ((phys.flags[h] & PG.dirty) !== 0) {
      if (folioMapcount(phys, h) !== nr) {
        a += nr * PAGE_SIZE;
        continue;
      }
      phys.flags[h] &= ~PG.dirty;
    }
    for (let k = 0; k < nr; k++)
      t.words[s + 2 * k] = (t.words[s + 2 * k] & ~(PTE_DIRTY | PTE_ACCESSED)) >>> 0;
    // folio_mark_lazyfree(): a folio already lazily freeable is left on its list.
    markLazyfree(phys, h);
    a += nr * PAGE_SIZE;
  }
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, start, end);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  return 0;
}

/**
 * Models madvise_cold_or_pageout_pte_range(): folios mapped only here are deactivated (their
 * young bits cleared, for MADV_COLD), or reclaimed now (MADV_PAGEOUT). A folio another process
 * may map is left alone. A THP or other large folio that the range covers in part is split first;
 * one it covers whole stays whole for MADV_COLD, and for MADV_PAGEOUT is split and its pages
 * reclaimed one by one, which ends as the kernel's reclaim of the whole folio does (swapped out,
 * dropped when lazily freeable, or split and kept when there is no swap).
 */
function* madviseColdOrPageout(vma: Vma, start: number, end: number, pageout: boolean): KGen<number> {
  if ((vma.flags & (VM.LOCKED | VM_SPECIAL | VM.HUGETLB)) !== 0) return -Errno.EINVAL;
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  // Lazily-freeable THPs reclaimed (and kept) by the PMD walk, which the PTE walk passes by.
  const handled = new Set<number>();
  for (const { pmd, i, base, h } of pmdThps(mm, start, end)) {
    if ((phys.flags[h] & PG.anon) === 0 || folioMaybeMappedShared(sys.phys, h)) continue;
    const whole = base >= start && base + PMD_SIZE <= end;
    if (!pageout && whole) {
      yield* mm.ptl.lock();
      pmd.words[2 * i] = (pmd.words[2 * i] & ~PTE_ACCESSED) >>> 0;
      phys.flags[h] &= ~(PG.active | PG.referenced);
      yield* mm.ptl.unlock();
    } else if (whole && (phys.flags[h] & PG.swapbacked) === 0) {
      // Reclaimed here, once: a folio kept has its PMD split, and the walk below passes it by.
      phys.flags[h] &= ~(PG.active | PG.referenced);
      if (!(yield* reclaimLazyfreeFolio(sys, h))) handled.add(h);
    } else {
      // Covered in part, or a whole swap-backed THP under MADV_PAGEOUT: split, its zero-filled
      // pages becoming zero-page mappings (splitForReclaim()). The model's swap device takes no
      // THP whole, as a rotational one does not on 6.18 (thp_swpout_fallback), so the walk below
      // hands its other pages to reclaim one by one.
      yield* splitForReclaim(sys, h);
    }
  }
  const reclaim: number[] = [];
  yield* mm.ptl.lock();
  for (let a = start; a < end;) {
    const t = mm.pgt.pteTable(a);
    const s = t === null ? 0 : pteSlot(a);
    const pfn = t === null ? 0 : t.words[s + 1];
    if (
      t === null ||
      !ptePresent(t.words[s]) ||
      (t.words[s] & PTE_SPECIAL) !== 0 ||
      phys.isZeroPfn(pfn) ||
      !phys.isRam(pfn)
    ) {
      a += PAGE_SIZE;
      continue;
    }
    const h = phys.head(pfn);
    if (handled.has(h)) {
      a += PAGE_SIZE;
      continue;
    }
    const run = yield* folioRun(mm, t, s, a, end, h);
    if (!run.whole) {
      a += run.nr * PAGE_SIZE;
      continue;
    }
    const nr = run.nr;
    // Only a folio these entries are every mapping of.
    if (folioMapcount(phys, h) === nr) {
      if (!pageout)
        for (let k = 0; k < nr; k++) t.words[s + 2 * k] = (t.words[s + 2 * k] & ~PTE_ACCESSED) >>> 0;
      phys.flags[h] &= ~(PG.active | PG.referenced);
      if (pageout) reclaim.push(h);
    }
    a += nr * PAGE_SIZE;
  }
  yield* mm.ptl.unlock();
  for (const h of reclaim) {
    // A large anonymous folio is reclaimed by its pages (see above), unless lazily freeable.
    const n = 1 << phys.order[h];
    if (n > 1 && (phys.flags[h] & (PG.anon | PG.swapbacked)) === PG.anon) {
      yield* reclaimLazyfreeFolio(sys, h);
      continue;
    }
    if (n > 1 && ((phys.flags[h] & PG.anon) === 0 || !(yield* splitForReclaim(sys, h)))) continue;
    for (let k = 0; k < n; k++) yield* pageoutPage(sys, h + k, true);
  }
  return 0;
}

/** Models madvise_collapse(). */
function* madviseCollapse(vma: Vma, start: number, end: number): KGen<number> {
  if ((vma.flags & (VM.NOHUGEPAGE | VM_SPECIAL | VM.HUGETLB)) !== 0 || !vma.isAnon()) return -Errno.EINVAL;
  // Outside a fault, thp_vma_allowable_order() also wants a VMA that can hold a huge page (its
  // last aligned 2MiB inside it: thp_vma_suitable_order() of vm_end - 2MiB) and that already has
  // an anon_vma (a VMA nothing was ever faulted into has none; live, MADV_COLLAPSE of such a VMA
  // is -EINVAL until a write anywhere in it).
  const last = vma.end - PMD_SIZE;
  if (last < vma.start || last - (last % PMD_SIZE) < vma.start || vma.anonVma === null) return -Errno.EINVAL;
  // MADV_COLLAPSE ignores the sysfs THP mode (thp_vma_allowable_order without TVA_ENFORCE_SYSFS):
  // it collapses even with 'never'; only VM_NOHUGEPAGE and unsuitable VMAs refuse it.
  // Each aligned 2MiB in turn; the result is 0 only if each is PMD-mapped at the end, else the
  // errno of the last failure. Some failures end the walk at once: an empty PMD entry
  // (check_pmd_state()'s SCAN_PMD_NONE, -EINVAL) and a failed huge page allocation
  // (SCAN_ALLOC_HUGE_PAGE_FAIL, -ENOMEM) and a swap-in that failed (SCAN_FAIL, -EINVAL); no PMD
  // table at all (SCAN_PMD_NULL) is passed over.
  // The result counts the huge pages collapsed against (hend - hstart) / 2MiB, an unsigned
  // difference: a range in one 2MiB that reaches neither of its boundaries (hstart past hend)
  // can never match it and fails with the errno of no scan at all, -EINVAL.
  const hstart = alignUp(start, PMD_SIZE);
  if (end - (end % PMD_SIZE) < hstart) return -Errno.EINVAL;
  let ret = 0;
  for (let base = hstart; base + PMD_SIZE <= end; base += PMD_SIZE) {
    const pmd = pmdTableOf(vma.mm, base);
    const i = indexAt(base, 1);
    if (pmd !== null && pmd.children[i] === null && pmd.words[2 * i] === 0 && pmd.words[2 * i + 1] === 0)
      return -Errno.EINVAL;
    const r = yield* collapseHugePage(vma, base, collapseSwapin);
    if (r === -Errno.ENOMEM) return r;
    if (r === COLLAPSE_SCAN_FAIL) return -Errno.EINVAL;
    if (r < 0) ret = r;
  }
  return ret;
}

/**
 * Models madvise_populate(): unlike the other advice, it does not walk the VMAs first. It faults
 * the range in address order (faultin_page_range()), so a hole ends it there with -ENOMEM, after
 * the pages before the hole and before any VMA past it is looked at.
 */
function* populateRange(mm: MmStruct, start: number, end: number, write: boolean): KGen<number> {
  for (let cursor = start; cursor < end;) {
    const vma = mm.vmaLookup(cursor);
    if (vma === null) return -Errno.ENOMEM;
    const e = Math.min(end, vma.end);
    const r = yield* madvisePopulate(vma, cursor, e, write);
    if (r < 0) return r;
    cursor = e;
  }
  return 0;
}

/** Populates [start, end) of one VMA: faultin_page_range()'s checks and faults there. */
function* madvisePopulate(vma: Vma, start: number, end: number, write: boolean): KGen<number> {
  if ((vma.flags & (VM.IO | VM.PFNMAP)) !== 0) return -Errno.EINVAL;
  // faultin_page_range() reports permission problems as -EINVAL, not -EFAULT (check_vma_flags under
  // FOLL_MADV_POPULATE); -EFAULT is kept for faults that would have raised SIGBUS / SIGSEGV.
  // check_vma_flags() without FOLL_FORCE: a read needs VM_READ (PROT_WRITE alone is not enough).
  if (write ? (vma.flags & VM.WRITE) === 0 : (vma.flags & VM.READ) === 0) return -Errno.EINVAL;
  // __get_user_pages() with FOLL_TOUCH: a page already mapped as the access needs is not faulted
  // again; a write through its clean entry marks the folio dirty and leaves the entry clean.
  const gupFlags = FOLL_TOUCH | (write ? FOLL_WRITE : 0);
  for (let a = start; a < end; a += PAGE_SIZE) {
    if (followPage(vma.mm.sys, vma, a, gupFlags) >= 0) continue;
    const r = vmFaultToErrno(yield* handleMmFault(vma, a, write ? FAULT_FLAG_WRITE : 0));
    if (r < 0) return r;
  }
  return 0;
}

/**
 * Models is_valid_guard_vma(): guard regions need page tables only the core mm manages (no
 * VM_SPECIAL, no hugetlb); installing them, which zaps, is refused on a locked VMA as well.
 */
function isValidGuardVma(vma: Vma, allowLocked: boolean): boolean {
  const disallowed = VM_SPECIAL | VM.HUGETLB | (allowLocked ? 0 : VM.LOCKED);
  return (vma.flags & disallowed) === 0;
}

/** Whether [start, end) of `vma` holds nothing but empty entries and guard markers. */
function onlyGuardsOrNone(mm: MmStruct, start: number, end: number): boolean {
  for (let base = start - (start % PMD_SIZE); base < end; base += PMD_SIZE) {
    const pmd = mm.pgt.upperAt(base, 1);
    if (pmd === null) continue;
    const i = indexAt(base, 1);
    const t = pmd.children[i];
    // A huge PMD (a THP, or a migration or device entry for one) is zapped first.
    if (t === null) {
      if (pmd.words[2 * i] !== 0 || pmd.words[2 * i + 1] !== 0) return false;
      continue;
    }
    const from = Math.max(start, base);
    const to = Math.min(end, base + PMD_SIZE);
    for (let a = from; a < to; a += PAGE_SIZE) {
      const sl = pteSlot(a);
      if (!pteNone(t.words[sl], t.words[sl + 1]) && !isGuardMarker(t.words[sl])) return false;
    }
  }
  return true;
}

/**
 * Models madvise_guard_install(): every page of [start, end) gets a guard marker, which faults
 * with SIGSEGV on any access. Whatever is mapped there is zapped first (guard markers already
 * there stay). The kernel
 * retries the walk after each zap and, after three, restarts the syscall; a restart is
 * transparent to the caller, so the model simply goes on until the range is clear.
 */
function* madviseGuardInstall(vma: Vma, start: number, end: number): KGen<number> {
  if (!isValidGuardVma(vma, false)) return -Errno.EINVAL;
  const mm = vma.mm;
  // The whole VMA is marked VM_MAYBE_GUARD (no split), so that fork copies its page tables and
  // with them the markers; an anonymous VMA gets its anon_vma for the markers' tables.
  vma.flags |= VM.MAYBE_GUARD;
  if (vma.isAnon()) anonVmaPrepare(mm.sys, vma);
  while (!onlyGuardsOrNone(mm, start, end)) yield* zapPageRangeSingle(vma, start, end);
  for (let a = start; a < end; a += PAGE_SIZE) {
    const t = mm.pgt.pteTableAlloc(a);
    const sl = pteSlot(a);
    if (pteNone(t.words[sl], t.words[sl + 1])) setPte(t, sl, swpLo(SwpType.GUARD_MARKER), 0);
  }
  mm.sys.trace.count('guard_install');
  return 0;
}

/**
 * Models madvise_guard_remove(): the guard markers of [start, end) are cleared, nothing else (a
 * huge PMD cannot hold any). Allowed on a locked VMA.
 */
function madviseGuardRemove(vma: Vma, start: number, end: number): number {
  if (!isValidGuardVma(vma, true)) return -Errno.EINVAL;
  forEachPte(vma.mm, start, end, (t, sl) => {
    if (isGuardMarker(t.words[sl])) clearPte(t, sl);
  });
  return 0;
}

/** Applies one advice to [start, end) of one VMA (madvise_vma_behavior). */
function* adviseVma(mm: MmStruct, vma: Vma, start: number, end: number, advice: number): KGen<number> {
  switch (advice) {
    case MADV.WILLNEED:
      return 0;
    case MADV.DONTNEED:
    case MADV.DONTNEED_LOCKED:
      if ((vma.flags & (VM.PFNMAP | (advice === MADV.DONTNEED ? VM.LOCKED : 0))) !== 0) return -Errno.EINVAL;
      if ((vma.flags & VM.HUGETLB) !== 0) {
        // madvise_dontneed_free_valid_vma(): the start must be huge-page aligned; the end is rounded
        // down to a huge page so that no data past the asked-for range is lost.
        if (start % PMD_SIZE !== 0) return -Errno.EINVAL;
        end -= end % PMD_SIZE;
        if (end <= start) return 0;
      }
      yield* zapPageRangeSingle(vma, start, end, true, true);
      return 0;
    case MADV.FREE:
      // madvise_dontneed_free_valid_vma(): not a locked, PFN-mapped or hugetlb VMA.
      if ((vma.flags & (VM.PFNMAP | VM.LOCKED | VM.HUGETLB)) !== 0) return -Errno.EINVAL;
      return yield* madviseFree(vma, start, end);
    case MADV.COLD:
      return yield* madviseColdOrPageout(vma, start, end, false);
    case MADV.PAGEOUT:
      return yield* madviseColdOrPageout(vma, start, end, true);
    case MADV.COLLAPSE:
      return yield* madviseCollapse(vma, start, end);
    case MADV.GUARD_INSTALL:
      return yield* madviseGuardInstall(vma, start, end);
    case MADV.GUARD_REMOVE:
      return madviseGuardRemove(vma, start, end);
    case MADV.REMOVE: {
      // madvise_remove(): no file is -EINVAL; a file mapping that is not shared-writable is -EACCES.
      // Private huge pages count as a file mapping (their hugetlbfs file, which the model leaves out).
      if ((vma.flags & VM.LOCKED) !== 0 || (vma.file === null && (vma.flags & VM.HUGETLB) === 0))
        return -Errno.EINVAL;
      if (vma.file === null || (vma.flags & (VM.SHARED | VM.MAYWRITE)) !== (VM.SHARED | VM.MAYWRITE))
        return -Errno.EACCES;
      // vfs_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) over the file range. The punch
      // takes the inode lock, which a write holds while it faults: the mmap lock is dropped
      // around it, with a reference on the file (the VMA may go meanwhile), and the walk looks
      // the next VMA up again (madviseDoBehavior()).
      const offset = vma.pageIndex(start) * PAGE_SIZE;
      const file = fget(vma.file);
      yield* mm.mmapLock.upRead();
      const r = yield* vfsFallocate(
        mm.sys,
        file,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        offset,
        end - start,
      );
      yield* fdput(mm.sys, file);
      yield* mm.mmapLock.downRead();
      return r;
    }
    default:
      break;
  }
  // Flag changes: split the VMA to the range, then set or clear the bits.
  const bits = FLAG_ADVICE_BITS.get(advice);
  if (bits === undefined) return -Errno.EINVAL;
  switch (advice) {
    case MADV.HUGEPAGE:
      if ((vma.flags & VM_SPECIAL) !== 0) return 0;
      break;
    case MADV.DOFORK:
      if ((vma.flags & VM.IO) !== 0) return -Errno.EINVAL;
      break;
    case MADV.WIPEONFORK:
      if (!vma.isAnon() || (vma.flags & VM.SHARED) !== 0) return -Errno.EINVAL;
      break;
    case MADV.KEEPONFORK:
      // A droppable mapping's pages never survive a fork, nor go into a core dump.
      if ((vma.flags & VM.DROPPABLE) !== 0) return -Errno.EINVAL;
      break;
    case MADV.DODUMP:
      if (
        ((vma.flags & VM.HUGETLB) === 0 && (vma.flags & VM_SPECIAL) !== 0) ||
        (vma.flags & VM.DROPPABLE) !== 0
      )
        return -Errno.EINVAL;
      break;
  }
  const [set, clear] = bits;
  // madvise_update_vma(): a VMA whose flags stay the same is left whole (no split, no merge).
  if (((vma.flags | set) & ~clear) === vma.flags) return 0;
  const splitErr = hugetlbSplitCheck(mm, start, end);
  if (splitErr < 0) return splitErr;
  const pieces = yield* splitRange(mm, start, end);
  for (const v of pieces) v.flags = (v.flags | set) & ~clear;
  for (const v of pieces) if (v.node !== null) mergeAnonNeighbours(mm, v);
  return 0;
}

/**
 * The VMA flags each flag advice sets and clears. The read-ahead hints are VMA flags only
 * (nothing the model reads them for), but the VMA splits.
 */
const FLAG_ADVICE_BITS = new Map<number, readonly [set: number, clear: number]>([
  [MADV.NORMAL, [0, VM.SEQ_READ | VM.RAND_READ]],
  [MADV.SEQUENTIAL, [VM.SEQ_READ, VM.RAND_READ]],
  [MADV.RANDOM, [VM.RAND_READ, VM.SEQ_READ]],
  [MADV.HUGEPAGE, [VM.HUGEPAGE, VM.NOHUGEPAGE]],
  [MADV.NOHUGEPAGE, [VM.NOHUGEPAGE, VM.HUGEPAGE]],
  [MADV.DONTFORK, [VM.DONTCOPY, 0]],
  [MADV.DOFORK, [0, VM.DONTCOPY]],
  [MADV.WIPEONFORK, [VM.WIPEONFORK, 0]],
  [MADV.KEEPONFORK, [0, VM.WIPEONFORK]],
  [MADV.DONTDUMP, [VM.DONTDUMP, 0]],
  [MADV.DODUMP, [0, VM.DONTDUMP]],
]);

/** Models madvise_behavior_valid(): the advice values the model knows (KSM is not modelled). */
export function madviseBehaviorValid(advice: number): boolean {
  return KNOWN.has(advice) && advice !== MADV.MERGEABLE && advice !== MADV.UNMERGEABLE;
}

/** Models check_input_range(): 0, or -EINVAL for an unaligned start or a range that wraps. */
function checkInputRange(start: number, lenIn: number): number {
  if (start % PAGE_SIZE !== 0) return -Errno.EINVAL;
  const len = pageAlignUp(lenIn);
  if (lenIn !== 0 && len === 0) return -Errno.EINVAL;
  // start + len wraps in 64-bit arithmetic exactly when the double sum reaches 2^64.
  const end = start + len;
  return end < start || end >= 2 ** 64 ? -Errno.EINVAL : 0;
}

/** madvise_lock(): the write lock is taken killable (-EINTR), the read lock is not. */
function* madviseLock(mm: MmStruct, advice: number): KGen<number> {
  if (!needsWrite(advice)) {
    yield* mm.mmapLock.downRead();
    return 0;
  }
  return (yield* mmapWriteLockKillable(mm)) !== 0 ? -Errno.EINTR : 0;
}

function* madviseUnlock(mm: MmStruct, advice: number): KGen {
  if (needsWrite(advice)) yield* mm.mmapLock.upWrite();
  else yield* mm.mmapLock.upRead();
}

/**
 * Models madvise_do_behavior() for [start, start + PAGE_ALIGN(lenIn)) of `mm`, locked by the
 * caller: advice is applied to the mapped parts of the range and -ENOMEM is returned afterwards
 * if the range had holes (the first VMA that fails ends the walk with its error); the populate
 * advice faults the range in address order instead.
 */
function* madviseDoBehavior(mm: MmStruct, start: number, lenIn: number, advice: number): KGen<number> {
  const end = start + pageAlignUp(lenIn);
  if (advice === MADV.POPULATE_READ || advice === MADV.POPULATE_WRITE)
    return yield* populateRange(mm, start, end, advice === MADV.POPULATE_WRITE);
  let unmapped = false;
  let cursor = start;
  if (advice === MADV.REMOVE) {
    // Each VMA's punch drops the mmap lock (see adviseVma()): the next one is looked up again
    // after it, from where the last one ended, as madvise_walk_vmas() does once the lock went.
    for (let vma = mm.findVma(cursor); vma !== null && vma.start < end; vma = mm.findVma(cursor)) {
      if (vma.start > cursor) unmapped = true;
      const s = Math.max(cursor, vma.start);
      const e = Math.min(end, vma.end);
      cursor = e;
      const r = canMadviseModify(vma, advice) ? yield* adviseVma(mm, vma, s, e, advice) : -Errno.EPERM;
      if (r < 0) return r;
      if (cursor >= end) break;
    }
    return unmapped || cursor < end ? -Errno.ENOMEM : 0;
  }
  for (const vma of mm.vmasIn(start, end)) {
    if (vma.start > cursor) unmapped = true;
    const s = Math.max(start, vma.start);
    const e = Math.min(end, vma.end);
    cursor = e;
    const r = canMadviseModify(vma, advice) ? yield* adviseVma(mm, vma, s, e, advice) : -Errno.EPERM;
    if (r < 0) return r;
  }
  if (cursor < end) unmapped = true;
  return unmapped ? -Errno.ENOMEM : 0;
}

/** Models do_madvise(). */
export function* sysMadviseImpl(p: Process, start: number, lenIn: number, advice: number): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  if (!madviseBehaviorValid(advice)) return -Errno.EINVAL;
  const bad = checkInputRange(start, lenIn);
  if (bad < 0) return bad;
  if (lenIn === 0) return 0;
  const locked = yield* madviseLock(mm, advice);
  if (locked < 0) return locked;
  let ret: number;
  try {
    ret = yield* madviseDoBehavior(mm, start, lenIn, advice);
  } finally {
    yield* madviseUnlock(mm, advice);
  }
  mm.sys.trace.count('madvise');
  return ret;
}

/** Models process_madvise_remote_valid(): the advice one process may give another's memory. */
function processMadviseRemoteValid(advice: number): boolean {
  return (
    advice === MADV.COLD || advice === MADV.PAGEOUT || advice === MADV.WILLNEED || advice === MADV.COLLAPSE
  );
}

const capSysNice = sideTable<Process, boolean>();

/** capable(CAP_SYS_NICE), which advising another process needs; processes lack it unless granted. */
export function setCapSysNice(p: Process, v: boolean): void {
  capSysNice.set(p, v);
}

/**
 * One segment of a process_madvise() vector, as import_iovec() left it: its base and a length
 * below 2^31. `err` is the failure a base of 2^53 or more meets (checked at the syscall entry).
 */
export interface MadviseIovec {
  readonly base: number;
  readonly len: number;
  readonly err?: number;
}

/**
 * Models process_madvise(2) after import_iovec() (src/kernel/syscalls.ts checks the vector) and
 * pidfd_get_task(): `target`'s memory must be reachable (-ESRCH once it exited; another user's
 * process is -EACCES, mm_access()); the advice must be valid (-EINVAL), and for another process
 * one of COLD, PAGEOUT, WILLNEED and COLLAPSE (-EINVAL), with CAP_SYS_NICE (-EPERM). Then
 * vector_madvise(): under one lock, each segment is checked and advised in turn while bytes are
 * left (a zero length is skipped); the first failure ends the walk. Returns the bytes of the segments done, or the
 * failure if none was.
 */
export function* processMadviseImpl(
  p: Process,
  target: Process,
  iov: readonly MadviseIovec[],
  advice: number,
): KGen<number> {
  if (p.mm === null || p.exited) return -Errno.ESRCH;
  const mm = target.mm;
  if (mm === null || target.exited) return -Errno.ESRCH;
  if (mm !== p.mm && target.user !== p.user) return -Errno.EACCES;
  if (!madviseBehaviorValid(advice)) return -Errno.EINVAL;
  if (mm !== p.mm && !processMadviseRemoteValid(advice)) return -Errno.EINVAL;
  if (mm !== p.mm && !(capSysNice.get(p) ?? false)) return -Errno.EPERM;
  const locked = yield* madviseLock(mm, advice);
  if (locked < 0) return locked;
  let done = 0;
  let ret = 0;
  // The walk goes on while bytes are left: zero-length segments after the last one with bytes
  // are never looked at (an unaligned one there is no error).
  let left = 0;
  for (const s of iov) left += s.len;
  try {
    for (const { base, len, err } of iov) {
      if (left === 0) break;
      left -= len;
      ret = err ?? checkInputRange(base, len);
      if (ret === 0 && len !== 0) ret = yield* madviseDoBehavior(mm, base, len, advice);
      if (ret < 0) break;
      done += len;
    }
  } finally {
    yield* madviseUnlock(mm, advice);
  }
  mm.sys.trace.count('process_madvise');
  return done > 0 ? done : ret;
}
