import { type LeafTable, indexAt } from '../../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE, TASK_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';

import { MM_ANONPAGES, type MmStruct, VM, VM_FAULT, type Vma, type VmFault } from './mm_types.ts';
import { folioTrylock, folioUnlock, folioWaitLocked } from './filemap.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from './mmu_notifier.ts';
import { PG } from './page_alloc.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SOFT_DIRTY,
  PTE_SPECIAL,
  PTE_WRITE,
  type SwpTypeValue,
  isDevicePrivateEntry,
  isMigrationEntry,
  pteNone,
  ptePresent,
  swpLo,
  swpType,
} from './pgtable.ts';
import { pmdPresentHuge, pmdTableOf } from './pte.ts';
import {
  addNewAnonRmap,
  anonVmaPrepare,
  folioAddLargeMapcount,
  folioMapcount,
  folioSubLargeMapcount,
  removeRmapPmd,
  removeRmapPte,
} from './rmap.ts';
import { allocPageReclaim } from './vmscan.ts';

/** FAULT_FLAG_WRITE, repeated here to keep this file below memory.ts. */
const FAULT_WRITE = 1;

/**
 * Models mm_pgtables_bytes(), VmPTE of /proc/PID/status: the page tables below the PGD, and the
 * PTE table deposited with each PMD entry of an anonymous VMA (a THP, the huge zero page, or
 * their migration and device-private entries): a THP fault, fork and collapse deposit one there,
 * for a split to take back (pgtable_trans_huge_deposit()), and a zap frees it. hugetlb entries
 * have none.
 */
export function mmPgtablesBytes(mm: MmStruct): number {
  let deposited = 0;
  mm.pgt.walk(
    0,
    TASK_SIZE,
    () => {},
    (_pmd, _i, base) => {
      if (((mm.vmaLookup(base)?.flags ?? VM.HUGETLB) & VM.HUGETLB) === 0) deposited++;
    },
  );
  return (mm.pgt.tables + deposited) * PAGE_SIZE;
}

/** Models the THP "enabled" policy (thp_vma_allowable_order) for an anonymous VMA. */
export function thpAllowed(vma: Vma): boolean {
  const mode = vma.mm.sys.config.thp;
  if (mode === 'never') return false;
  if (!vma.isAnon() || (vma.flags & VM.SHARED) !== 0) return false;
  if ((vma.flags & (VM.NOHUGEPAGE | VM.HUGETLB)) !== 0) return false;
  return mode === 'always' || (vma.flags & VM.HUGEPAGE) !== 0;
}

/** Whether a fault at `addr` may be served by a PMD-sized page: the aligned 2MiB lies inside the VMA. */
export function thpFaultEligible(vma: Vma, addr: number): boolean {
  if (!thpAllowed(vma)) return false;
  const base = addr - (addr % PMD_SIZE);
  return base >= vma.start && base + PMD_SIZE <= vma.end;
}

/**
 * The low word of a non-present PMD leaf (a PMD migration entry or a device-private THP entry):
 * a swap-type entry that keeps PTE_HUGE, so it still reads as a leaf of the PMD level.
 */
export function swpPmdLo(t: SwpTypeValue, keep = 0): number {
  return (swpLo(t, keep) | PTE_HUGE) >>> 0;
}

/** Whether a PMD leaf's low word is a device-private THP entry (is_pmd_device_private_entry). */
export function isPmdDevicePrivate(lo: number): boolean {
  return (lo & PTE_HUGE) !== 0 && isDevicePrivateEntry(lo);
}

/** Whether a PMD leaf's low word is a PMD migration entry (is_pmd_migration_entry). */
export function isPmdMigrationEntry(lo: number): boolean {
  return (lo & PTE_HUGE) !== 0 && isMigrationEntry(lo);
}

function pmdWords(vma: Vma, addr: number): { words: Uint32Array; i: number } | null {
  const pmd = pmdTableOf(vma.mm, addr);
  if (pmd === null) return null;
  return { words: pmd.words, i: 2 * indexAt(addr, 1) };
}

/**
 * The PMD entry of a new anonymous THP (mk_huge_pmd() with the VMA's protection, young and dirty,
 * then maybe_pmd_mkwrite()): writable in a writable VMA, PROT_NONE in an inaccessible one (a
 * collapse can make one there).
 */
function mkHugePmd(vma: Vma): number {
  let lo = PTE_PRESENT | PTE_HUGE | PTE_ACCESSED | PTE_DIRTY | PTE_SOFT_DIRTY;
  if ((vma.flags & VM.WRITE) !== 0) lo |= PTE_WRITE;
  if ((vma.flags & (VM.READ | VM.WRITE | VM.EXEC)) === 0) lo = (lo & ~PTE_PRESENT) | PTE_PROTNONE;
  return lo;
}

/** Models do_huge_pmd_anonymous_page(). Returns VM_FAULT_FALLBACK when a PMD page cannot be used. */
export function* doHugePmdAnonymousPage(vma: Vma, addr: number, flags: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const base = addr - (addr % PMD_SIZE);
  const write = (flags & FAULT_WRITE) !== 0;
  if (mm.unstable) return VM_FAULT.SIGBUS;
  sys.trace.faultKind('pmd_anon');
  // vmf_anon_prepare() comes before the huge zero page, so a read fault that maps it gives the
  // VMA an anon_vma too (do_anonymous_page() maps the small zero page without one).
  anonVmaPrepare(sys, vma);
  if (!write && sys.config.zeroPage) {
    yield* mm.ptl.lock();
    const pmd = mm.pgt.pmdTableAlloc(base);
    const i = indexAt(base, 1);
    if (pmd.children[i] === null && pmd.words[2 * i] === 0) {
      mm.pgt.setUpperWords(pmd, i, PTE_PRESENT | PTE_HUGE | PTE_ACCESSED, sys.phys.hugeZeroPfn);
      sys.trace.count('thp.zero_page');
    }
    yield* mm.ptl.unlock();
    return 0;
  }
  const pfn = yield* allocPageReclaim(sys, 9, 'thp_fault_alloc');
  if (pfn < 0) {
    sys.trace.count('thp.fault_fallback');
    return VM_FAULT.FALLBACK;
  }
  yield* mm.ptl.lock();
  const pmd = mm.pgt.pmdTableAlloc(base);
  const i = indexAt(base, 1);
  if (pmd.children[i] !== null || pmd.words[2 * i] !== 0) {
    yield* mm.ptl.unlock();
    sys.phys.put(pfn);
    return VM_FAULT.FALLBACK;
  }
  addNewAnonRmap(sys, vma, pfn, base, true);
  mm.pgt.setUpperWords(pmd, i, mkHugePmd(vma), pfn);
  yield* mm.ptl.unlock();
  sys.trace.count('thp.fault_alloc');
  return 0;
}

/** A fault on an address whose PMD is a leaf. */
export function* hugePmdFault(vma: Vma, addr: number, flags: number): KGen<number> {
  const w = pmdWords(vma, addr)!;
  const lo = w.words[w.i];
  const sys = vma.mm.sys;
  if (isPmdMigrationEntry(lo)) {
    // Models pmd_migration_entry_wait(): sleep until the THP migration is done, then retry.
    const mm = vma.mm;
    sys.trace.faultKind('pmd_migration_wait');
    yield* mm.sys.migrationWq.waitEvent(() => {
      const cur = pmdWords(vma, addr);
      return cur === null || !isPmdMigrationEntry(cur.words[cur.i]);
    }, 'pmd_migration_entry_wait');
    return 0;
  }
  if (isPmdDevicePrivate(lo)) {
    sys.trace.faultKind('pmd_device_private');
    return yield* doHugePmdDevicePrivate(vma, addr, flags, w.words[w.i + 1]);
  }
  if ((lo & (PTE_PRESENT | PTE_PROTNONE)) === 0) return VM_FAULT.SIGBUS;
  if ((lo & PTE_PROTNONE) !== 0) return VM_FAULT.SIGSEGV;
  // FAULT_FLAG_UNSHARE (1 << 10): a read-only long-term pin of a THP that is not this mapping's
  // own takes the write path, which leaves the entry read-only.
  const unshare = (flags & (1 << 10)) !== 0 && (flags & FAULT_WRITE) === 0;
  if (((flags & FAULT_WRITE) !== 0 || unshare) && (lo & PTE_WRITE) === 0) {
    sys.trace.faultKind('pmd_wp');
    return yield* doHugePmdWpPage(vma, addr, unshare);
  }
  sys.trace.faultKind('spurious');
  w.words[w.i] = (lo | PTE_ACCESSED | ((flags & FAULT_WRITE) !== 0 ? PTE_DIRTY | PTE_SOFT_DIRTY : 0)) >>> 0;
  return 0;
}

/**
 * Models do_huge_pmd_device_private(): a CPU access to a THP that lives in device-private memory.
 * The folio is referenced and locked and the owner's migrate_to_ram() brings the whole folio (or,
 * if the driver falls back, its pages) back; a folio locked by someone else (a migration of it in
 * progress) is waited for and the fault retried.
 */
function* doHugePmdDevicePrivate(vma: Vma, addr: number, flags: number, head: number): KGen<number> {
  const sys = vma.mm.sys;
  const phys = sys.phys;
  const pm = phys.pagemapOf(head);
  if (pm?.hooks.migrateToRam === undefined) return VM_FAULT.SIGBUS;
  if (phys.refcount[head] === 0) return 0;
  phys.get(head);
  if (!folioTrylock(sys, head)) {
    phys.put(head);
    yield* folioWaitLocked(sys, head);
    return 0;
  }
  const vmf: VmFault = { vma, address: addr, flags, page: head };
  const r = yield* pm.hooks.migrateToRam(vmf);
  folioUnlock(sys, head);
  phys.put(head);
  sys.trace.count('fault.device_private_thp');
  return r;
}

/**
 * Models do_huge_zero_wp_pmd(): a write to the huge zero page maps a fresh THP in its place, under
 * an MMU_NOTIFY_CLEAR invalidation of the whole PMD. Returns VM_FAULT_FALLBACK when no huge page
 * can be had (the caller then splits the PMD and the PTE path maps a small page).
 */
function* doHugeZeroWpPmd(vma: Vma, addr: number, head: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const base = addr - (addr % PMD_SIZE);
  anonVmaPrepare(sys, vma);
  const pfn = yield* allocPageReclaim(sys, 9, 'thp_fault_alloc');
  if (pfn < 0) {
    sys.trace.count('thp.fault_fallback');
    return VM_FAULT.FALLBACK;
  }
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, base, base + PMD_SIZE);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  const w = pmdWords(vma, addr);
  let ret = 0;
  if (w === null || w.words[w.i + 1] !== head || (w.words[w.i] & PTE_HUGE) === 0) {
    sys.phys.put(pfn);
  } else if (mm.unstable) {
    sys.phys.put(pfn);
    ret = VM_FAULT.SIGBUS;
  } else {
    addNewAnonRmap(sys, vma, pfn, base, true);
    w.words[w.i] = mkHugePmd(vma) >>> 0;
    w.words[w.i + 1] = pfn;
    yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, base, base + PMD_SIZE);
    sys.trace.count('thp.fault_alloc');
  }
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  return ret;
}

/**
 * Models do_huge_pmd_wp_page(): a write (or, with `unshare`, a read-only long-term pin) to the
 * huge zero page maps a THP of its own, an exclusive THP is reused (an unshare only records it as
 * exclusive, the entry stays read-only), and otherwise the PMD is split and the PTE path copies.
 */
export function* doHugePmdWpPage(vma: Vma, addr: number, unshare = false): KGen<number> {
  const sys = vma.mm.sys;
  const base = addr - (addr % PMD_SIZE);
  const w = pmdWords(vma, addr)!;
  const head = w.words[w.i + 1];
  if (sys.phys.isZeroPfn(head)) {
    const r = yield* doHugeZeroWpPmd(vma, addr, head);
    if ((r & VM_FAULT.FALLBACK) === 0) return r;
    yield* splitHugePmd(vma, base);
    return VM_FAULT.FALLBACK;
  }
  const phys = sys.phys;
  // A folio nothing else references (a fork child that mapped it has unmapped it since) becomes
  // this mapping's own again, as do_huge_pmd_wp_page() takes it when folio_ref_count() is 1.
  if (
    (phys.flags[head] & (PG.anon | PG.anonExclusive)) === PG.anon &&
    phys.refcount[head] === 1 &&
    phys.pinCount(head) === 0
  )
    phys.flags[head] |= PG.anonExclusive;
  if (unshare && (phys.flags[head] & PG.anonExclusive) !== 0) return 0;
  if ((phys.flags[head] & PG.anonExclusive) !== 0 && (vma.flags & VM.WRITE) !== 0) {
    w.words[w.i] = (w.words[w.i] | PTE_WRITE | PTE_DIRTY | PTE_SOFT_DIRTY | PTE_ACCESSED) >>> 0;
    return 0;
  }
  yield* splitHugePmd(vma, base);
  return VM_FAULT.FALLBACK;
}

/**
 * Models __split_huge_pmd(): replaces a PMD mapping by a PTE table mapping the same 512 pages.
 * The folio stays large (PTE-mapped THP); each PTE now holds a folio reference.
 */
export function* splitHugePmd(vma: Vma, base: number): KGen {
  const mm = vma.mm;
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, base, base + PMD_SIZE);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  splitHugePmdLocked(vma, base);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
}

/** The PTE-table rewrite of a PMD split, done inside one step with the page-table lock held. */
export function splitHugePmdLocked(vma: Vma, base: number): void {
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  const pmd = pmdTableOf(mm, base);
  if (pmd === null) return;
  const i = indexAt(base, 1);
  if (pmd.children[i] !== null) return;
  const lo = pmd.words[2 * i];
  const hi = pmd.words[2 * i + 1];
  if (lo === 0 && hi === 0) return;
  const leaf: LeafTable = { words: new Uint32Array(HPAGE_PMD_NR * 2), used: 0 };
  const keep = lo & (PTE_PRESENT | PTE_WRITE | PTE_ACCESSED | PTE_DIRTY | PTE_SOFT_DIRTY | PTE_PROTNONE);
  if ((lo & (PTE_PRESENT | PTE_PROTNONE)) === 0) {
    // A PMD migration entry becomes one PTE migration entry per subpage (no rmap, no references:
    // the migration owns the folio); a device-private THP entry becomes device-private PTEs,
    // each one a mapping of its subpage like the PTEs of a split present THP. The folio stays
    // large (PTE-mapped) either way; a device folio is split later, when one page of it moves.
    const type = swpType(lo) as SwpTypeValue;
    const swpKeep = lo & (PTE_SOFT_DIRTY | PTE_ACCESSED | PTE_DIRTY);
    const devPrivate = isDevicePrivateEntry(lo);
    const anon = (phys.flags[hi] & PG.anon) !== 0;
    const excl = phys.flags[hi] & PG.anonExclusive;
    for (let k = 0; k < HPAGE_PMD_NR; k++) {
      leaf.words[2 * k] = swpLo(type, swpKeep);
      leaf.words[2 * k + 1] = hi + k;
      if (devPrivate) {
        phys.mapcount[hi + k]++;
        if (anon) phys.flags[hi + k] = (phys.flags[hi + k] & ~PG.anonExclusive) | excl;
      }
    }
    if (devPrivate) {
      const em = (phys.entireMapcount.get(hi) ?? 1) - 1;
      if (em <= 0) phys.entireMapcount.delete(hi);
      else phys.entireMapcount.set(hi, em);
      phys.refcount[hi] += HPAGE_PMD_NR - 1;
      // The PTEs' mappings are added before the PMD's goes, all this MM's.
      folioAddLargeMapcount(phys, hi, mm, HPAGE_PMD_NR);
      folioSubLargeMapcount(phys, hi, mm, 1);
    }
  } else if (phys.isZeroPfn(hi)) {
    // __split_huge_zero_page_pmd(): zero-page entries with the VMA's protection (vm_page_prot), so
    // a PROT_NONE VMA's stay inaccessible.
    const access = (vma.flags & (VM.READ | VM.WRITE | VM.EXEC)) !== 0 ? PTE_PRESENT : PTE_PROTNONE;
    for (let k = 0; k < HPAGE_PMD_NR; k++) {
      leaf.words[2 * k] = access | PTE_SPECIAL | PTE_ACCESSED;
      leaf.words[2 * k + 1] = phys.zeroPfn;
    }
  } else {
    // While PMD-mapped, PageAnonExclusive lives on the head page only (fork clears just that one);
    // the split hands the head's state to every subpage, as __split_huge_pmd_locked() does.
    // Otherwise stale subpage bits would let a write after fork reuse a page the child shares.
    const anon = (phys.flags[hi] & PG.anon) !== 0;
    const excl = phys.flags[hi] & PG.anonExclusive;
    // A dirty PMD leaves its folio dirty (folio_set_dirty()), whatever its PTEs say later.
    if ((lo & PTE_DIRTY) !== 0) phys.flags[hi] |= PG.dirty;
    for (let k = 0; k < HPAGE_PMD_NR; k++) {
      leaf.words[2 * k] = keep;
      leaf.words[2 * k + 1] = hi + k;
      phys.mapcount[hi + k]++;
      if (anon) phys.flags[hi + k] = (phys.flags[hi + k] & ~PG.anonExclusive) | excl;
    }
    const em = (phys.entireMapcount.get(hi) ?? 1) - 1;
    if (em <= 0) phys.entireMapcount.delete(hi);
    else phys.entireMapcount.set(hi, em);
    phys.refcount[hi] += HPAGE_PMD_NR - 1;
    folioAddLargeMapcount(phys, hi, mm, HPAGE_PMD_NR);
    folioSubLargeMapcount(phys, hi, mm, 1);
  }
  leaf.used = HPAGE_PMD_NR;
  mm.pgt.setUpperWords(pmd, i, 0, 0);
  mm.pgt.attachPteTable(base, leaf);
  sys.trace.count('thp.split_pmd');
}

/** Splits the PMD mappings that [start, end) covers only partly (vma_adjust_trans_huge and friends). */
export function* splitHugePmdsAtEdges(vma: Vma, start: number, end: number): KGen {
  for (const a of [start, end]) {
    if (a % PMD_SIZE === 0) continue;
    const base = a - (a % PMD_SIZE);
    if (base < vma.start || base >= vma.end) continue;
    const pmd = pmdTableOf(vma.mm, base);
    if (pmd === null) continue;
    const i = indexAt(base, 1);
    if (pmd.children[i] === null && (pmd.words[2 * i] !== 0 || pmd.words[2 * i + 1] !== 0))
      yield* splitHugePmd(vma, base);
  }
}

/** Models zap_huge_pmd(): removes a whole PMD mapping. Returns the page to put after the TLB flush, or -1. */
export function zapHugePmd(vma: Vma, base: number): number {
  const mm = vma.mm;
  const phys = mm.sys.phys;
  const pmd = pmdTableOf(mm, base)!;
  const i = indexAt(base, 1);
  const hi = pmd.words[2 * i + 1];
  const lo = pmd.words[2 * i];
  mm.pgt.setUpperWords(pmd, i, 0, 0);
  if ((lo & PTE_HUGE) !== 0 && (vma.flags & VM.HUGETLB) !== 0) return hi;
  if (isPmdMigrationEntry(lo)) {
    // The migration holds the folio; only the RSS the entry stood for goes.
    mm.rss[MM_ANONPAGES] -= HPAGE_PMD_NR;
    return -1;
  }
  if (isPmdDevicePrivate(lo)) {
    // A device-private THP: drop the PMD's rmap; the caller puts the reference it held.
    removeRmapPmd(phys, hi, mm, MM_ANONPAGES);
    return hi;
  }
  if (phys.isZeroPfn(hi)) return -1;
  if ((lo & PTE_DIRTY) !== 0) phys.flags[hi] |= PG.dirty;
  removeRmapPmd(phys, hi, mm, MM_ANONPAGES);
  return hi;
}

/**
 * Whether the PTEs of a 2 MiB can be collapsed: the number of swap entries to swap in first (0
 * but in the first scan), or the errno of the first PTE that cannot be collapsed. A
 * non-anonymous page is -EINVAL; a page with a reference beyond its mappings (a GUP pin, a pipe)
 * is -EAGAIN (is_refcount_suitable()); pages shared with another process are fine, only
 * khugepaged limits them (max_ptes_shared). In the first scan (`scan`) an entry that is not
 * present (is_swap_pte(): a swap entry, a device or migration entry, a guard marker) is counted,
 * and the count is returned: MADV_COLLAPSE faults those in (khugepaged would limit them,
 * max_ptes_swap). Once the huge page is allocated, any entry not present is -EINVAL
 * (__collapse_huge_page_isolate()'s SCAN_PTE_NON_PRESENT).
 */
function collapseCheckPtes(sys: System, t: { words: Uint32Array } | null, scan: boolean): number {
  if (t === null) return 0;
  const phys = sys.phys;
  let unmapped = 0;
  for (let k = 0; k < HPAGE_PMD_NR; k++) {
    const lo = t.words[2 * k];
    const hi = t.words[2 * k + 1];
    if (pteNone(lo, hi)) continue;
    if (!ptePresent(lo)) {
      if (!scan) return -Errno.EINVAL;
      unmapped++;
      continue;
    }
    if (phys.isZeroPfn(hi) || (lo & PTE_SPECIAL) !== 0) continue;
    const h = phys.head(hi);
    if ((phys.flags[h] & PG.anon) === 0) return -Errno.EINVAL;
    if (phys.refcount[h] !== folioMapcount(phys, h)) return -Errno.EAGAIN;
  }
  return unmapped;
}

/**
 * collapseHugePage()'s SCAN_FAIL (a swap-in that failed): not an errno, since madvise_collapse()
 * does not go on to the next 2 MiB after it, as it does after the failures that are errnos here.
 * It reports -EINVAL.
 */
export const COLLAPSE_SCAN_FAIL = 1;

/**
 * Models collapse_huge_page() for MADV_COLLAPSE: copies the 512 pages of an aligned range into a
 * new THP and maps it with one PMD. Returns 0 or -errno (-EAGAIN when a page is pinned or busy,
 * -ENOMEM when no huge page can be had, -EINVAL when the range cannot hold a THP), or
 * COLLAPSE_SCAN_FAIL. Pages the scan found swapped out are brought back first by `swapin`
 * (memory.ts's collapseSwapin(), passed in: this file sits below the fault handler).
 */
export function* collapseHugePage(
  vma: Vma,
  base: number,
  swapin: (vma: Vma, base: number) => KGen<number>,
): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  if (base < vma.start || base + PMD_SIZE > vma.end || !vma.isAnon() || (vma.flags & VM.SHARED) !== 0) {
    return -Errno.EINVAL;
  }
  const pmd = pmdTableOf(mm, base);
  const i = indexAt(base, 1);
  // find_pmd_or_thp_or_none(): no PMD table is SCAN_PMD_NULL. A PMD-mapped THP, the huge zero page
  // included (pmd_trans_huge), is SCAN_PMD_MAPPED, a success; an empty or non-present PMD entry
  // (SCAN_PMD_NONE, SCAN_PMD_NULL) is -EINVAL.
  if (pmd === null) return -Errno.EINVAL;
  if (pmd.children[i] === null) return pmdPresentHuge(pmd.words[2 * i]) ? 0 : -Errno.EINVAL;
  const unmapped = collapseCheckPtes(sys, mm.pgt.pteTable(base), true);
  if (unmapped < 0) return unmapped;
  anonVmaPrepare(sys, vma);
  const pfn = yield* allocPageReclaim(sys, 9, 'collapse_alloc');
  if (pfn < 0) return -Errno.ENOMEM;
  if (unmapped > 0) {
    // __collapse_huge_page_swapin(), after the allocation as in collapse_huge_page(). A PTE table
    // gone meanwhile is SCAN_PMD_NULL (-EINVAL); a failed swap-in is SCAN_FAIL.
    const r = yield* swapin(vma, base);
    if (r !== 0) {
      phys.put(pfn);
      return r === -1 ? -Errno.EINVAL : COLLAPSE_SCAN_FAIL;
    }
  }
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, base, base + PMD_SIZE);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  // The allocation may have reclaimed, and the invalidation slept: what the scan saw can be gone
  // (pages swapped out, another collapse done). The kernel checks again under the PTL once it
  // holds the mmap lock for write (hugepage_vma_revalidate(), __collapse_huge_page_isolate()).
  // With no PTE table left, a PMD mapping (another collapse won) is SCAN_PMD_MAPPED, a success.
  const pmdNow = pmdTableOf(mm, base);
  const ptes = pmdNow !== null && pmdNow.children[i] !== null;
  const isolated = ptes
    ? collapseCheckPtes(sys, mm.pgt.pteTable(base), false)
    : pmdNow !== null && pmdPresentHuge(pmdNow.words[2 * i])
      ? 0
      : -Errno.EINVAL;
  if (!ptes || isolated !== 0) {
    yield* mm.ptl.unlock();
    yield* mmuNotifierInvalidateRangeEnd(range);
    phys.put(pfn);
    return isolated;
  }
  const old = mm.pgt.detachPteTable(base);
  const toPut: number[] = [];
  if (old !== null) {
    for (let k = 0; k < HPAGE_PMD_NR; k++) {
      const lo = old.words[2 * k];
      const hi = old.words[2 * k + 1];
      if (pteNone(lo, hi) || phys.isZeroPfn(hi) || (lo & PTE_SPECIAL) !== 0) continue;
      phys.copyPage(pfn + k, hi);
      removeRmapPte(phys, hi, mm, MM_ANONPAGES);
      toPut.push(hi);
    }
  }
  addNewAnonRmap(sys, vma, pfn, base, true);
  const pmdT = mm.pgt.pmdTableAlloc(base);
  mm.pgt.setUpperWords(pmdT, i, mkHugePmd(vma), pfn);
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, base, base + PMD_SIZE);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  for (const p of toPut) phys.put(p);
  sys.trace.count('thp.collapse');
  return 0;
}
