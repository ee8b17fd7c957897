import { PAGE_SHIFT, PAGE_SIZE, PMD_SHIFT, pageOffset } from '../../lib/units.ts';
import type { KGen, SchedPoint } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { mmapReadLockKillable, mmapWriteLockKillable } from './mmap_lock.ts';
import { mlockFutureOk } from './mlock_limit.ts';
import { mayExpandVm, ownerOf, STK_LIM } from './rlimit.ts';
import type { System } from '../system.ts';
import { doHugePmdAnonymousPage, hugePmdFault, thpFaultEligible } from './huge_memory.ts';
import { hugetlbFault } from './hugetlb.ts';
import {
  MMAP_MIN_ADDR,
  type MmStruct,
  MM_SWAPENTS,
  STACK_GUARD_GAP,
  VM,
  VM_ACCESS_FLAGS,
  VM_FAULT,
  VM_FAULT_ERROR,
  type Vma,
  type VmFault,
} from './mm_types.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInitOwner,
} from './mmu_notifier.ts';
import { folioLock, folioTrylock, folioUnlock, folioWaitLocked } from './filemap.ts';
import { PG, type PhysMem } from './page_alloc.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SOFT_DIRTY,
  PTE_SPECIAL,
  PTE_SWP_EXCLUSIVE,
  PTE_WRITE,
  SwpType,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
  pteNone,
  ptePresent,
  swpType,
} from './pgtable.ts';
import { pmdIsLeaf, pmdTableOf, pteSlot, setPte } from './pte.ts';
import { ENTRIES as PTRS_PER_TABLE } from '../../lib/pgtable_store.ts';
import {
  addNewAnonRmap,
  addRmapPte,
  anonVmaPrepare,
  folioLargeMaybeMappedShared,
  folioMapcount,
  removeRmapPte,
  rssCounterOf,
} from './rmap.ts';
import { shmemFault } from './shmem.ts';
import { allocPageReclaim } from './vmscan.ts';

/** fault flags (enum fault_flag). */
export const FAULT_FLAG_WRITE = 1 << 0;
export const FAULT_FLAG_REMOTE = 1 << 7;
export const FAULT_FLAG_UNSHARE = 1 << 10;

/*
 * The constants a fault reads, copied into constants of this module (as HIT_* below are for the
 * hit path): optimised code reads an imported or exported binding from its cell, and a member of
 * an imported table from the table, at every use; a module's own constant not at all.
 */
const F_WRITE = FAULT_FLAG_WRITE;
const F_REMOTE = FAULT_FLAG_REMOTE;
const F_PAGE_SIZE = PAGE_SIZE;
const F_VM_WRITE = VM.WRITE;
const F_VM_SHARED = VM.SHARED;
const F_VM_HUGETLB = VM.HUGETLB;
const F_VM_ACCESS = VM.READ | VM.WRITE | VM.EXEC;
const F_PTE_NEW = PTE_PRESENT | PTE_ACCESSED;
const F_PTE_WRITE = PTE_WRITE;
const F_PTE_DIRTY = PTE_DIRTY | PTE_SOFT_DIRTY;
const F_PTE_PRESENT = PTE_PRESENT;
const F_PTE_PROTNONE = PTE_PROTNONE;
const F_PAGE_SHIFT = PAGE_SHIFT;
const F_PMD_SHIFT = PMD_SHIFT;
const F_INDEX_MASK = PTRS_PER_TABLE - 1;

/** The low PTE word for a freshly mapped page in `vma`. */
export function mkPte(vma: Vma, writable: boolean, dirty: boolean): number {
  let lo = F_PTE_NEW;
  if (writable && (vma.flags & F_VM_WRITE) !== 0) lo |= F_PTE_WRITE;
  if (dirty) lo |= F_PTE_DIRTY;
  if ((vma.flags & F_VM_ACCESS) === 0) lo = (lo & ~F_PTE_PRESENT) | F_PTE_PROTNONE;
  return lo;
}

/** The zero-page PTE (pte_mkspecial(pfn_pte(zero_pfn))). */
export function zeroPte(sys: System): [number, number] {
  return [PTE_PRESENT | PTE_SPECIAL | PTE_ACCESSED, sys.phys.zeroPfn];
}

/** Models vm_normal_page(): the page a present PTE maps, or -1 for special mappings and the zero page. */
export function vmNormalPage(sys: System, vma: Vma, lo: number, hi: number): number {
  if ((lo & PTE_SPECIAL) !== 0) return -1;
  if (sys.phys.isZeroPfn(hi)) return -1;
  if ((vma.flags & VM.PFNMAP) !== 0) return -1;
  return hi;
}

/** Models the x86 access_error(): whether the VMA forbids this access (SIGSEGV). */
export function accessError(vma: Vma, write: boolean): boolean {
  if (write) return (vma.flags & F_VM_WRITE) === 0;
  return (vma.flags & F_VM_ACCESS) === 0;
}

/**
 * Models handle_mm_fault(). The caller holds mm.mmapLock for read and has checked the access
 * against the VMA. Returns a vm_fault_t: 0, or VM_FAULT_* bits.
 */
export function* handleMmFault(vma: Vma, address: number, flags: number): KGen<number> {
  const sys = vma.mm.sys;
  const addr = address - pageOffset(address);
  sys.trace.faults.add();
  if (!sys.trace.enabled) return yield* handleFault(vma, addr, flags);
  // The span is named after the handler the fault takes (trace.ts FAULT_KINDS).
  sys.trace.faultBegin(addr, (flags & FAULT_FLAG_WRITE) !== 0);
  const r = yield* handleFault(vma, addr, flags);
  sys.trace.faultEnd(r);
  return r;
}

/** Models __handle_mm_fault(): hugetlb, then the PMD level, then the PTE level. */
function* handleFault(vma: Vma, addr: number, flags: number): KGen<number> {
  const mm = vma.mm;
  if ((vma.flags & F_VM_HUGETLB) !== 0) return yield* hugetlbFault(vma, addr, flags);
  // pud_alloc() and pmd_alloc(): the tables above the PTE level are there before anything else.
  const pmd = mm.pgt.pmdTableAlloc(addr);
  if (pmdIsLeaf(pmd, addr)) {
    const r = yield* hugePmdFault(vma, addr, flags);
    if ((r & VM_FAULT.FALLBACK) === 0) return r;
  } else if (
    // mm.pgt.pteTable(addr), from the PMD table at hand.
    (pmd === null || pmd.children[(addr >>> F_PMD_SHIFT) & F_INDEX_MASK] === null) &&
    thpFaultEligible(vma, addr)
  ) {
    const r = yield* doHugePmdAnonymousPage(vma, addr, flags);
    if ((r & VM_FAULT.FALLBACK) === 0) return r;
  }
  return yield* handlePteFault(vma, addr, flags);
}

/** Models handle_pte_fault(). */
function* handlePteFault(vma: Vma, addr: number, flags: number): KGen<number> {
  const mm = vma.mm;
  // No PTE table yet is an empty entry (do_pte_missing()): each path below allocates the table
  // where the kernel's does, a file or driver fault only as it maps a page (finish_fault(),
  // fault-around, an inserted page), so one that fails leaves none.
  const t = mm.pgt.pteTable(addr);
  // pteSlot(addr), written out: this and doAnonymousPage() are too large for the JIT to inline
  // every helper they call, and an address beyond 32 bits is boxed for each call.
  const slot = 2 * ((addr >>> F_PAGE_SHIFT) & F_INDEX_MASK);
  const lo = t === null ? 0 : t.words[slot];
  const hi = t === null ? 0 : t.words[slot + 1];
  const write = (flags & F_WRITE) !== 0;
  if (t === null || pteNone(lo, hi)) {
    if (vma.vmOps?.fault !== undefined) return yield* doSpecialFault(vma, addr, flags);
    if (vma.file === null) return yield* doAnonymousPage(vma, addr, flags);
    return yield* shmemFault(vma, addr, flags);
  }
  if (!ptePresent(lo)) return yield* doSwapPage(vma, addr, flags, lo, hi);
  if ((lo & PTE_PROTNONE) !== 0) return VM_FAULT.SIGSEGV;
  // An unshare fault (a read-only long-term pin) breaks COW like a write, but maps read-only.
  if ((write || (flags & FAULT_FLAG_UNSHARE) !== 0) && (lo & PTE_WRITE) === 0)
    return yield* doWpPage(vma, addr, flags);
  // Spurious fault (another thread fixed it): update the accessed / dirty bits.
  mm.sys.trace.faultKind('spurious');
  let nlo = lo | PTE_ACCESSED;
  if (write) nlo |= PTE_DIRTY | PTE_SOFT_DIRTY;
  t.words[slot] = nlo >>> 0;
  return 0;
}

/** Faults of mappings whose driver supplies pages (vm_ops->fault). */
function* doSpecialFault(vma: Vma, addr: number, flags: number): KGen<number> {
  const vmf: VmFault = { vma, address: addr, flags, page: -1 };
  vma.mm.sys.trace.faultKind('special');
  return yield* vma.vmOps!.fault!(vmf);
}

/** Models do_anonymous_page(). */
function* doAnonymousPage(vma: Vma, addr: number, flags: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const write = (flags & F_WRITE) !== 0;
  if ((vma.flags & F_VM_SHARED) !== 0) return VM_FAULT.SIGBUS;
  // pte_alloc() before anything else: a fault that fails below leaves the table.
  mm.pgt.pteTableAlloc(addr);
  if (mm.unstable) return VM_FAULT.SIGBUS;
  if (!write && sys.config.zeroPage) return yield* doAnonymousZeroPage(vma, addr);
  sys.trace.faultKind('anon');
  anonVmaPrepare(sys, vma);
  const pfn = yield* allocPageReclaim(sys, 0, 'alloc_anon_folio');
  if (pfn < 0) return VM_FAULT.OOM;
  sys.phys.clearPage(pfn);
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTableAlloc(addr);
  const slot = 2 * ((addr >>> F_PAGE_SHIFT) & F_INDEX_MASK);
  if (!pteNone(t.words[slot], t.words[slot + 1])) {
    // Someone else populated it while we allocated.
    yield* mm.ptl.unlock();
    sys.phys.put(pfn);
    return 0;
  }
  addNewAnonRmap(sys, vma, pfn, addr, false);
  // Writable and dirty where the VMA may be written (a read fault maps the page so too, when
  // it did not get the zero page).
  setPte(t, slot, mkPte(vma, true, (vma.flags & F_VM_WRITE) !== 0), pfn);
  yield* mm.ptl.unlock();
  sys.trace.anonFaults.add();
  return 0;
}

/**
 * do_anonymous_page() for a read of untouched private anonymous memory: it maps the shared zero
 * page. (Apart from the write path, which the JIT then compiles with more of its callees inlined.)
 */
function* doAnonymousZeroPage(vma: Vma, addr: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  sys.trace.faultKind('zero_page');
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTableAlloc(addr);
  const slot = pteSlot(addr);
  if (pteNone(t.words[slot], t.words[slot + 1])) {
    const [zlo, zhi] = zeroPte(sys);
    setPte(t, slot, zlo, zhi);
    sys.trace.count('fault.zero_page');
  }
  yield* mm.ptl.unlock();
  return 0;
}

/**
 * Models do_wp_page(): a write to a present read-only PTE. Reuses an exclusively owned anonymous
 * page, otherwise copies (wp_page_copy), which invalidates secondary MMUs for that page.
 */
function* doWpPage(vma: Vma, addr: number, flags: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  const t = mm.pgt.pteTable(addr)!;
  const slot = pteSlot(addr);
  const lo = t.words[slot];
  const hi = t.words[slot + 1];
  const page = vmNormalPage(sys, vma, lo, hi);
  const unshare = (flags & FAULT_FLAG_WRITE) === 0 && (flags & FAULT_FLAG_UNSHARE) !== 0;
  if ((vma.flags & VM.SHARED) !== 0) {
    sys.trace.faultKind('wp_shared');
    // Nothing is shared copy-on-write in a shared mapping, so there is nothing to unshare.
    if (unshare) return 0;
    // Shared mappings never copy: the write makes the PTE writable (wp_page_shared).
    if (page >= 0) phys.flags[phys.head(page)] |= PG.dirty;
    t.words[slot] = (lo | PTE_WRITE | PTE_DIRTY | PTE_SOFT_DIRTY | PTE_ACCESSED) >>> 0;
    yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, addr, addr + PAGE_SIZE);
    return 0;
  }
  if (page >= 0 && (phys.flags[phys.head(page)] & PG.anon) !== 0 && canReuseAnonPage(sys, page)) {
    sys.trace.faultKind('wp_reuse');
    phys.flags[page] |= PG.anonExclusive;
    // wp_page_reuse(): an unshare only records the exclusive ownership; a write makes the PTE
    // dirty and, through maybe_mkwrite(), writable only where the VMA is (a FOLL_FORCE write into
    // a read-only private mapping leaves it read-only).
    const w = (vma.flags & VM.WRITE) !== 0 ? PTE_WRITE : 0;
    if (!unshare) t.words[slot] = (lo | w | PTE_DIRTY | PTE_SOFT_DIRTY | PTE_ACCESSED) >>> 0;
    sys.trace.count('fault.wp_reuse');
    return 0;
  }
  sys.trace.faultKind('cow');
  return yield* wpPageCopy(vma, addr, flags, page);
}

/**
 * Models wp_can_reuse_anon_folio() for the model's pages.
 */
function canReuseAnonPage(sys: System, page: number): boolean {
  const phys = sys.phys;
  if ((phys.flags[page] & PG.anonExclusive) !== 0) return true;
  const h = phys.head(page);
  if (phys.order[h] > 0) {
    // __wp_can_reuse_large_anon_folio(): a large folio every reference of which is a mapping is
    // reused in place unless it may be mapped shared: its MM_ID bit, which can stay set while a
    // single MM maps it (page_alloc.ts FolioMmIds). One with a single page mapped is copied
    // from, so it can go.
    const mapcount = folioMapcount(phys, h);
    if (mapcount <= 1 || phys.refcount[h] !== mapcount || phys.pinCount(h) !== 0) return false;
    return !folioLargeMaybeMappedShared(phys, h);
  }
  return phys.refcount[h] === 1 && phys.mapcount[h] === 1;
}

/** Models wp_page_copy(): COW of one page (or replacing the zero page) under a CLEAR notifier. */
function* wpPageCopy(vma: Vma, addr: number, flags: number, oldPage: number): KGen<number> {
  const unshare = (flags & FAULT_FLAG_WRITE) === 0 && (flags & FAULT_FLAG_UNSHARE) !== 0;
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  anonVmaPrepare(sys, vma);
  const pfn = yield* allocPageReclaim(sys, 0, 'wp_page_copy');
  if (pfn < 0) return VM_FAULT.OOM;
  if (oldPage >= 0) phys.copyPage(pfn, oldPage);
  else phys.clearPage(pfn);
  const range = mmuNotifierRangeInitOwner(MMU_NOTIFY.CLEAR, 0, mm, addr, addr + PAGE_SIZE, null);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTable(addr);
  const slot = pteSlot(addr);
  const cur = t === null ? 0 : t.words[slot];
  const curHi = t === null ? 0 : t.words[slot + 1];
  const stillSame =
    t !== null && ptePresent(cur) && (cur & PTE_WRITE) === 0 && (oldPage < 0 || curHi === oldPage);
  if (stillSame) {
    if (oldPage >= 0) {
      removeRmapPte(phys, oldPage, mm, rssCounterOf(phys, oldPage, vma));
    }
    addNewAnonRmap(sys, vma, pfn, addr, false);
    // An unshared copy is exclusive but stays read-only until a real write.
    setPte(t, slot, mkPte(vma, !unshare, !unshare) | (unshare ? cur & PTE_SOFT_DIRTY : 0), pfn);
    yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, addr, addr + PAGE_SIZE);
  }
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  if (stillSame) {
    if (oldPage >= 0) phys.put(oldPage);
    sys.trace.count('fault.cow');
  } else {
    phys.put(pfn);
  }
  return 0;
}

/** Non-present PTE faults: swap-in, migration wait, device-private and device-exclusive entries, markers. */
function* doSwapPage(vma: Vma, addr: number, flags: number, lo: number, hi: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  if (isMigrationEntry(lo)) {
    // Models migration_entry_wait(): sleep until the migration finishes, then retry.
    sys.trace.faultKind('migration_wait');
    yield* sys.migrationWq.waitEvent(() => {
      const t = mm.pgt.pteTable(addr);
      return t === null || !isMigrationEntry(t.words[pteSlot(addr)]);
    }, 'migration_entry_wait');
    return 0;
  }
  if (isDevicePrivateEntry(lo)) {
    sys.trace.faultKind('device_private');
    const pm = sys.phys.pagemapOf(hi);
    if (pm?.hooks.migrateToRam === undefined) return VM_FAULT.SIGBUS;
    if (sys.contracts.devicePrivateFault === 'v6.0')
      return yield* devicePrivateFaultV60(vma, addr, flags, hi);
    sys.phys.get(hi);
    // The page is locked across migrate_to_ram (the driver passes it as fault_page); if someone
    // else holds the lock (a migration of it in progress), wait for them and retry the fault.
    if (!folioTrylock(sys, hi)) {
      sys.phys.put(hi);
      yield* folioWaitLocked(sys, hi);
      return 0;
    }
    const vmf: VmFault = { vma, address: addr, flags, page: hi };
    const r = yield* pm.hooks.migrateToRam(vmf);
    folioUnlock(sys, hi);
    sys.phys.put(hi);
    sys.trace.count('fault.device_private');
    return r;
  }
  if (isDeviceExclusiveEntry(lo)) {
    sys.trace.faultKind('device_exclusive');
    return yield* removeDeviceExclusiveEntry(vma, addr, hi);
  }
  const type = swpType(lo);
  if (type === SwpType.HWPOISON) return VM_FAULT.HWPOISON;
  // handle_pte_marker(): any access to a guard region is a segmentation fault.
  if (type === SwpType.GUARD_MARKER) return VM_FAULT.SIGSEGV;
  if (type !== SwpType.SWAP) return VM_FAULT.SIGBUS;
  sys.trace.faultKind('swapin');
  return yield* swapIn(vma, addr, flags, lo, hi);
}

/**
 * Models do_swap_page()'s device-private branch before v6.1 (sys.contracts.devicePrivateFault
 * 'v6.0'): the owner's migrate_to_ram() gets the page the entry named when the fault read it,
 * locklessly, and nothing holds the page: no PTL recheck, no reference, no page lock. A migration
 * of the same page in that window frees it, and the callback then works on a free page and its
 * possibly unmapped pgmap (CVE-2022-3523, fixed by commit 16ce101db85d). The model reports that
 * as a use-after-free where the kernel would dereference it.
 */
function* devicePrivateFaultV60(vma: Vma, addr: number, flags: number, page: number): KGen<number> {
  const sys = vma.mm.sys;
  const gen = sys.phys.gen[page];
  yield { kind: 'step', label: 'do_swap_page: device page held by nothing (v6.0)' };
  const pm = sys.phys.pagemapOf(page);
  if (!sys.phys.isUsed(page) || sys.phys.gen[page] !== gen || pm?.hooks.migrateToRam === undefined) {
    sys.sched.report({
      oracle: 'use-after-free',
      message: `do_swap_page: migrate_to_ram() called for device page ${page}, which was freed after the fault read its entry (no reference held: CVE-2022-3523)`,
      thread: sys.sched.current?.name,
    });
    return VM_FAULT.SIGBUS;
  }
  const vmf: VmFault = { vma, address: addr, flags, page };
  const r = yield* pm.hooks.migrateToRam(vmf);
  sys.trace.count('fault.device_private');
  return r;
}

/** Models the swap-in part of do_swap_page() (no swap cache: the slot is read and released). */
function* swapIn(vma: Vma, addr: number, flags: number, lo: number, slot: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  anonVmaPrepare(sys, vma);
  const pfn = yield* allocPageReclaim(sys, 0, 'swapin');
  if (pfn < 0) return VM_FAULT.OOM;
  const data = sys.swap.read(slot);
  if (data === null) phys.clearPage(pfn);
  else phys.contents.set(pfn, data);
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTable(addr);
  const s = pteSlot(addr);
  if (t === null || t.words[s] !== lo || t.words[s + 1] !== slot) {
    yield* mm.ptl.unlock();
    phys.put(pfn);
    return 0;
  }
  const exclusive = (lo & PTE_SWP_EXCLUSIVE) !== 0 || sys.swap.count[slot] === 1;
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  addNewAnonRmap(sys, vma, pfn, addr, false);
  if (!exclusive) phys.flags[pfn] &= ~PG.anonExclusive;
  let nlo = mkPte(vma, write && exclusive, write && exclusive);
  if ((lo & PTE_SOFT_DIRTY) !== 0) nlo |= PTE_SOFT_DIRTY;
  setPte(t, s, nlo, pfn);
  mm.rss[MM_SWAPENTS]--;
  sys.swap.free(slot);
  yield* mm.ptl.unlock();
  sys.trace.count('fault.swapin');
  if (write && !exclusive) return yield* doWpPage(vma, addr, flags);
  return 0;
}

/**
 * Models __collapse_huge_page_swapin(), which MADV_COLLAPSE runs when its scan found entries that
 * are not present in the 2 MiB at `base`: each PTE that still holds one is faulted in, one at a
 * time, by do_swap_page() as a read fault, whatever the entry is (is_swap_pte()): a swap entry is
 * read back, a device-private page migrated back, a migration waited for, and a guard marker is
 * VM_FAULT_SIGSEGV (live, a guard ends the whole MADV_COLLAPSE after a huge page was allocated).
 * Returns 0; -1 when the PTE table is gone (SCAN_PMD_NULL); or the VM_FAULT bits of the first
 * fault that failed (SCAN_FAIL). There is no swap cache, so no VM_FAULT_RETRY (a page lock another
 * thread holds) either.
 */
export function* collapseSwapin(vma: Vma, base: number): KGen<number> {
  const mm = vma.mm;
  for (let k = 0; k < PTRS_PER_TABLE; k++) {
    const addr = base + k * PAGE_SIZE;
    // Read afresh for each entry: a swap-in sleeps (it may reclaim) and the table can change.
    const t = mm.pgt.pteTable(addr);
    if (t === null) return -1;
    const slot = 2 * k;
    const lo = t.words[slot];
    const hi = t.words[slot + 1];
    if (pteNone(lo, hi) || ptePresent(lo)) continue;
    const r = yield* doSwapPage(vma, addr, 0, lo, hi);
    if ((r & VM_FAULT_ERROR) !== 0) return r;
  }
  return 0;
}

/**
 * Models remove_device_exclusive_entry(): a CPU access to a page a device holds exclusively
 * restores the original mapping after an EXCLUSIVE invalidation with no owner.
 */
export function* removeDeviceExclusiveEntry(vma: Vma, addr: number, pfn: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  // folio_try_get() + folio_lock(): a device still holding the page locked (between
  // make_device_exclusive() and its folio_unlock()) makes the CPU wait here.
  if (sys.phys.refcount[sys.phys.head(pfn)] === 0) return 0;
  sys.phys.get(pfn);
  yield* folioLock(sys, pfn);
  const range = mmuNotifierRangeInitOwner(MMU_NOTIFY.EXCLUSIVE, 0, mm, addr, addr + PAGE_SIZE, null);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTable(addr);
  const s = pteSlot(addr);
  if (t !== null && isDeviceExclusiveEntry(t.words[s]) && t.words[s + 1] === pfn) {
    const lo = t.words[s];
    const exclusive = (sys.phys.flags[pfn] & PG.anonExclusive) !== 0;
    let nlo = mkPte(vma, exclusive, false);
    nlo |= lo & PTE_SOFT_DIRTY;
    setPte(t, s, nlo, pfn);
  }
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  folioUnlock(sys, pfn);
  sys.phys.put(pfn);
  sys.trace.count('fault.device_exclusive');
  return 0;
}

/** Models __vm_enough_memory() under OVERCOMMIT_GUESS (the default): pages <= totalram + total swap. */
export function vmEnoughMemory(sys: System, pages: number): boolean {
  return pages <= sys.phys.ramFrames + Math.max(0, sys.swap.nslots - 1);
}

/**
 * Models lock_mm_and_find_vma(): takes the mmap lock for reading and returns the VMA holding
 * `addr`, the lock held; or, the lock dropped, -EINTR (a fatal signal ended a wait for it) or
 * -EFAULT (no VMA). An address below a VMA that grows down (VM_GROWSDOWN) grows it first: the
 * lock is dropped and taken for writing (x86 cannot upgrade it in place), the VMA looked up
 * again and expanded (expandDownwards()), and the lock downgraded.
 */
export function* lockMmAndFindVma(mm: MmStruct, addr: number): KGen<Vma | number> {
  if ((yield* mmapReadLockKillable(mm)) !== 0) return -Errno.EINTR;
  let vma = mm.vmaLookup(addr);
  if (vma !== null) return vma;
  vma = mm.findVma(addr);
  yield* mm.mmapLock.upRead();
  if (vma === null || (vma.flags & VM.GROWSDOWN) === 0) return -Errno.EFAULT;
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  vma = mm.findVma(addr);
  if (vma === null || (addr < vma.start && expandDownwards(mm, vma, addr) !== 0)) {
    yield* mm.mmapLock.upWrite();
    return -Errno.EFAULT;
  }
  yield* mm.mmapLock.downgradeWrite();
  return vma;
}

/**
 * Models expand_downwards() (mm/vma.c): grows `vma` down to the page holding `address`. Caller
 * holds the mmap lock for writing. 0, or -EFAULT (the VMA does not grow down), -EPERM (below
 * mmap_min_addr) or -ENOMEM: within stack_guard_gap of an accessible VMA below that does not
 * grow down, past RLIMIT_AS or RLIMIT_DATA (may_expand_vm()), larger than RLIMIT_STACK, past
 * RLIMIT_MEMLOCK when locked, or past the commit limit.
 * The stack is not populated: the fault that grew it maps its one page.
 */
export function expandDownwards(mm: MmStruct, vma: Vma, address: number): number {
  if ((vma.flags & VM.GROWSDOWN) === 0) return -Errno.EFAULT;
  address -= address % PAGE_SIZE;
  if (address < MMAP_MIN_ADDR) return -Errno.EPERM;
  const prevNode = vma.node === null ? null : mm.vmas.prev(vma.node);
  const prev = prevNode === null ? null : prevNode.value;
  if (
    prev !== null &&
    (prev.flags & VM.GROWSDOWN) === 0 &&
    (prev.flags & VM_ACCESS_FLAGS) !== 0 &&
    address - prev.end < STACK_GUARD_GAP
  )
    return -Errno.ENOMEM;
  const sys = mm.sys;
  anonVmaPrepare(sys, vma);
  if (address >= vma.start) return 0;
  const size = vma.end - address;
  const grow = (vma.start - address) / PAGE_SIZE;
  if (grow > vma.pgoff) return -Errno.ENOMEM;
  // acct_stack_growth(): the address space limits, the stack limit, the lock limit, then the
  // commit charge (checked only: the model keeps no running commit total). The limits are those
  // of the process the mm is (the kernel asks the faulting task's).
  const task = ownerOf(mm);
  if (task !== null && !mayExpandVm(task, mm, vma.flags, grow)) return -Errno.ENOMEM;
  if (size > (task?.rlim.stack.cur ?? STK_LIM)) return -Errno.ENOMEM;
  if ((vma.flags & VM.LOCKED) !== 0) {
    if (task === null || !mlockFutureOk(task, mm, vma.flags, grow * PAGE_SIZE)) return -Errno.ENOMEM;
  }
  if (!vmEnoughMemory(sys, grow)) return -Errno.ENOMEM;
  if ((vma.flags & VM.LOCKED) !== 0) mm.lockedVm += grow;
  // The VMA's start is its key in the mm's tree: it goes back in at its new start.
  if (vma.node !== null) mm.vmas.remove(vma.node);
  vma.start = address;
  vma.pgoff -= grow;
  vma.node = mm.vmas.insert(vma.start, vma.end - 1, vma);
  mm.totalVm += grow;
  return 0;
}

/** Models the user-fault retry loop of the x86 page-fault handler for one address. */
export function* faultIn(mm: MmStruct, addr: number, write: boolean, remote: boolean): KGen<number> {
  // lock_mm_and_find_vma() takes the lock killable; a fatal signal sends the fault to
  // bad_area_nosemaphore(): SIGSEGV for a user access, the exception fixup (a short copy) for a
  // kernel path's user copy (-EINTR here, which copyUser() turns into the count copied so far).
  const vma = yield* lockMmAndFindVma(mm, addr);
  if (typeof vma === 'number') return vma === -Errno.EINTR && remote ? -Errno.EINTR : -Errno.EFAULT;
  try {
    if (accessError(vma, write)) return -Errno.EFAULT;
    const r = yield* handleMmFault(vma, addr, (write ? F_WRITE : 0) | (remote ? F_REMOTE : 0));
    return vmFaultToErrno(r);
  } finally {
    yield* mm.mmapLock.upRead();
  }
}

/** Models vm_fault_to_errno(). */
export function vmFaultToErrno(r: number): number {
  if (r === 0) return 0;
  if ((r & VM_FAULT.OOM) !== 0) return -Errno.ENOMEM;
  if ((r & (VM_FAULT.SIGBUS | VM_FAULT.HWPOISON)) !== 0) return -Errno.EFAULT;
  if ((r & VM_FAULT.SIGSEGV) !== 0) return -Errno.EFAULT;
  return 0;
}

/*
 * The constants of the MMU's hit path (tlbHit(), WalkAhead), copied into constants of this
 * module: optimised code reads an imported (or exported) binding from its cell and checks it at
 * every use, a module's own constant not at all. A trace replay makes these reads per access.
 */
const HIT_PRESENT = PTE_PRESENT;
const HIT_WRITE = PTE_WRITE;
const HIT_ACCESSED = PTE_ACCESSED;
const HIT_DIRTY = PTE_DIRTY | PTE_SOFT_DIRTY;
const HIT_PAGE_SHIFT = PAGE_SHIFT;
const HIT_PMD_SHIFT = PMD_SHIFT;
const HIT_INDEX_MASK = PTRS_PER_TABLE - 1;
const HIT_OFFSET_MASK = PAGE_SIZE - 1;

/**
 * The PFN the CPU would reach at `addr` for this access without faulting, or -1 when it must
 * fault. Sets the accessed and dirty bits like the MMU does.
 */
export function tlbLookup(mm: MmStruct, addr: number, write: boolean): number {
  const pmd = mm.pgt.upperAt(addr, 1);
  if (pmd === null) return -1;
  // The PMD and PTE indexes are in the address's low 32 bits (as in WalkAhead.find()).
  const low = addr >>> 0;
  const pi = (low >>> HIT_PMD_SHIFT) & HIT_INDEX_MASK;
  const leaf = pmd.children[pi];
  if (leaf === null) {
    const pfn = tlbHit(pmd.words, 2 * pi, write);
    return pfn < 0 ? -1 : pfn + ((low >>> HIT_PAGE_SHIFT) & HIT_INDEX_MASK);
  }
  return tlbHit(leaf.words, 2 * ((low >>> HIT_PAGE_SHIFT) & HIT_INDEX_MASK), write);
}

/**
 * The last step of tlbLookup(), at the entry the walk found (words[s], words[s + 1]): the PFN it
 * maps, or -1 when the access must fault; sets the accessed and dirty bits like the MMU does.
 */
function tlbHit(words: Uint32Array, s: number, write: boolean): number {
  const lo = words[s];
  if ((lo & HIT_PRESENT) === 0) return -1;
  if (write && (lo & HIT_WRITE) === 0) return -1;
  words[s] = (lo | HIT_ACCESSED | (write ? HIT_DIRTY : 0)) >>> 0;
  return words[s + 1];
}

/** WalkAhead's slots: an entry's index in its table's words is below 2 * 512 = 2^PLACE_SHIFT. */
const PLACE_SHIFT = 10;
const PLACE = 1 << PLACE_SHIFT;

/**
 * The entries of the page table that map the next accesses of a run of CPU accesses, found by
 * walking ahead (find()) and used by load() and store(): each access's table is walked once, and
 * the walks ahead read the tables (and then the pages, PageContents.touch()) one after another
 * rather than one cache miss at a time. A kernel path may change the tables: find() again after
 * one runs.
 */
export class WalkAhead {
  /** Per access, the words of the table holding its entry (null: no table maps it). */
  private readonly words: (Uint32Array | null)[];
  /**
   * Per access, its entry's index in `words`, plus its page's place in a huge PMD leaf (0 for a
   * PTE) times PLACE: one array read per access instead of two.
   */
  private readonly slots: Int32Array;

  constructor(n: number) {
    this.words = new Array<Uint32Array | null>(n).fill(null);
    this.slots = new Int32Array(n);
  }

  /**
   * Walks, changing nothing, to the entry mapping `addr` for access `k` (any number: an address
   * outside the user space maps nothing). Returns the frame it maps, or -1.
   */
  find(k: number, mm: MmStruct, addr: number): number {
    // An integer in [0, taskSize) is a safe integer: taskSize is below 2^53.
    const pmd = addr >= 0 && addr < mm.taskSize && Math.floor(addr) === addr ? pmdTableOf(mm, addr) : null;
    if (pmd === null) {
      this.words[k] = null;
      return -1;
    }
    // The PMD and PTE indexes of a user address are in its low 32 bits (indexAt(), without
    // the division).
    const low = addr >>> 0;
    const pi = (low >>> HIT_PMD_SHIFT) & HIT_INDEX_MASK;
    const pte = (low >>> HIT_PAGE_SHIFT) & HIT_INDEX_MASK;
    const leaf = pmd.children[pi];
    let words: Uint32Array;
    let s: number;
    let page: number;
    if (leaf === null) {
      words = pmd.words;
      s = 2 * pi;
      page = pte;
    } else {
      words = leaf.words;
      s = 2 * pte;
      page = 0;
    }
    this.words[k] = words;
    this.slots[k] = s + page * PLACE;
    // Frames are numbered below 2^31 (the callers keep them in Int32Arrays).
    return (words[s] & HIT_PRESENT) === 0 ? -1 : (words[s + 1] + page) | 0;
  }

  /**
   * accessMappedPage() of a one-byte load by access `k` at `a` (found by find(k, mm, a), with no
   * kernel path run since) in `phys`, the mm's memory: the byte, or -1, having done nothing, when
   * the access must fault.
   */
  load(k: number, phys: PhysMem, a: number): number {
    const words = this.words[k];
    if (words === null) return -1;
    const at = this.slots[k];
    const pfn = tlbHit(words, at & (PLACE - 1), false);
    if (pfn < 0) return -1;
    return phys.byteAt(pfn + (at >>> PLACE_SHIFT), (a >>> 0) & HIT_OFFSET_MASK);
  }

  /**
   * accessMappedPage() of a one-byte store of `value` by access `k` at `a` (as load()): false,
   * having done nothing, when the access must fault.
   */
  store(k: number, phys: PhysMem, a: number, value: number): boolean {
    const words = this.words[k];
    if (words === null) return false;
    const at = this.slots[k];
    const pfn = tlbHit(words, at & (PLACE - 1), true);
    if (pfn < 0) return false;
    const page = pfn + (at >>> PLACE_SHIFT);
    phys.storeByte(page, (a >>> 0) & HIT_OFFSET_MASK, value);
    return true;
  }
}

/**
 * What the MMU does for one page of a CPU access when it finds the page mapped with the access's
 * permission (a TLB hit): copies `n` bytes between `buf` at `done` and the page at `a`. Returns
 * false, having done nothing, when the access must fault.
 */
export function accessMappedPage(
  mm: MmStruct,
  a: number,
  buf: Uint8Array,
  done: number,
  n: number,
  write: boolean,
): boolean {
  const pfn = tlbLookup(mm, a, write);
  if (pfn < 0) return false;
  const phys = mm.sys.phys;
  if (write) {
    phys.write(pfn, pageOffset(a), buf, done, n);
  } else {
    phys.read(pfn, pageOffset(a), buf, done, n);
  }
  return true;
}

/**
 * accessMappedPage() for a write of `n` zero bytes at `a`: a page without contents keeps none,
 * and a whole page zeroed drops what it stored.
 */
function clearMappedPage(mm: MmStruct, a: number, n: number): boolean {
  const pfn = tlbLookup(mm, a, true);
  if (pfn < 0) return false;
  const phys = mm.sys.phys;
  phys.zero(pfn, pageOffset(a), n);
  return true;
}

export const CPU_WRITE_POINT: SchedPoint = { kind: 'step', label: 'cpu write' };
export const CPU_READ_POINT: SchedPoint = { kind: 'step', label: 'cpu read' };

/**
 * A CPU access of `buf.length` bytes at `addr` by a thread of the process owning `mm`: page by
 * page, faulting as the hardware would. Returns bytes accessed or -EFAULT (SIGSEGV / SIGBUS) or
 * -ENOMEM (the fault ran out of memory).
 */
export function* cpuAccess(
  mm: MmStruct,
  addr: number,
  buf: Uint8Array,
  write: boolean,
  remote = false,
): KGen<number> {
  return yield* userAccess(mm, addr, buf.length, buf, write, remote);
}

/** cpuAccess() of `len` bytes; `buf` null writes zeroes (clearUser()). */
function* userAccess(
  mm: MmStruct,
  addr: number,
  len: number,
  buf: Uint8Array | null,
  write: boolean,
  remote: boolean,
): KGen<number> {
  if (mm.exited) return -Errno.EFAULT;
  let done = 0;
  let tries = 0;
  while (done < len) {
    const a = addr + done;
    const n = Math.min(F_PAGE_SIZE - pageOffset(a), len - done);
    yield write ? CPU_WRITE_POINT : CPU_READ_POINT;
    const hit = buf === null ? clearMappedPage(mm, a, n) : accessMappedPage(mm, a, buf, done, n, write);
    if (!hit) {
      if (++tries > 64) return -Errno.EFAULT;
      const r = yield* faultIn(mm, a, write, remote);
      // A kernel path's copy reports what it copied; killed in the fault, that may be 0.
      if (r < 0) return (done > 0 || r === -Errno.EINTR) && remote ? done : r;
      continue;
    }
    tries = 0;
    done += n;
  }
  return done;
}

/**
 * Models copy_to_user() / copy_from_user() run by a kernel path (an ioctl) on behalf of the task
 * owning `mm`: mapped pages are copied without the mmap lock, a miss faults through the exception
 * path. Returns the bytes copied (short when a page cannot be had or the caller was killed in
 * the fault), or -errno when nothing could be copied.
 */
export function* copyUser(mm: MmStruct, addr: number, buf: Uint8Array, write: boolean): KGen<number> {
  return yield* cpuAccess(mm, addr, buf, write, true);
}

/**
 * Models clear_user() run by a kernel path on behalf of the task owning `mm`: `len` bytes at
 * `addr` become zeroes, faulting like copyUser(). A page zeroed whole stores no contents (it
 * reads as zeroes, as a page never written does), so clearing a large range costs no memory.
 * Returns the bytes cleared (short as copyUser()'s count is), or -errno when none could be.
 * (The kernel returns the bytes left uncleared; this keeps copyUser()'s convention.)
 */
export function* clearUser(mm: MmStruct, addr: number, len: number): KGen<number> {
  return yield* userAccess(mm, addr, len, null, true, true);
}

/**
 * Models access_remote_vm() (/proc/pid/mem, ptrace, process_vm_readv-style reads of another
 * process): the target's mmap lock is taken with mmap_read_lock_killable() and held for the whole
 * copy, faulting pages in as get_user_pages_remote() does. Returns the bytes copied (short at the
 * first page that cannot be had; 0 when the caller is killed while waiting for the lock), or
 * -EFAULT when the mm is gone.
 */
export function* accessRemoteVm(mm: MmStruct, addr: number, buf: Uint8Array, write: boolean): KGen<number> {
  if (mm.exited) return -Errno.EFAULT;
  if ((yield* mmapReadLockKillable(mm)) !== 0) return 0;
  let done = 0;
  try {
    let tries = 0;
    while (done < buf.length) {
      const a = addr + done;
      const n = Math.min(PAGE_SIZE - pageOffset(a), buf.length - done);
      yield write ? CPU_WRITE_POINT : CPU_READ_POINT;
      if (accessMappedPage(mm, a, buf, done, n, write)) {
        tries = 0;
        done += n;
        continue;
      }
      const vma = mm.vmaLookup(a);
      if (++tries > 64 || vma === null || accessError(vma, write)) break;
      const r = yield* handleMmFault(vma, a, (write ? FAULT_FLAG_WRITE : 0) | FAULT_FLAG_REMOTE);
      if (vmFaultToErrno(r) < 0) break;
    }
  } finally {
    yield* mm.mmapLock.upRead();
  }
  return done;
}

/** Whether a PTE-mapped anonymous page in `vma` at `addr` is exclusively owned (PageAnonExclusive). */
export function anonExclusive(sys: System, pfn: number): boolean {
  return (sys.phys.flags[pfn] & PG.anonExclusive) !== 0;
}

/** Adds one PTE mapping of `pfn` in `vma` at `addr` for file / shmem / inserted pages. */
export function mapFilePte(
  sys: System,
  vma: Vma,
  addr: number,
  pfn: number,
  writable: boolean,
  dirty: boolean,
): void {
  const t = vma.mm.pgt.pteTableAlloc(addr);
  const slot = pteSlot(addr);
  sys.phys.get(pfn);
  addRmapPte(sys.phys, pfn, vma.mm, rssCounterOf(sys.phys, pfn, vma));
  setPte(t, slot, mkPte(vma, writable, dirty), pfn);
}

/** Models vm_insert_page(): maps a driver's page into a VM_MIXEDMAP VMA. */
export function vmInsertPage(vma: Vma, addr: number, pfn: number): number {
  const sys = vma.mm.sys;
  if (addr < vma.start || addr >= vma.end) return -Errno.EFAULT;
  const t = vma.mm.pgt.pteTableAlloc(addr);
  const slot = pteSlot(addr);
  if (!pteNone(t.words[slot], t.words[slot + 1])) return -Errno.EBUSY;
  vma.flags |= VM.MIXEDMAP;
  mapFilePte(sys, vma, addr, pfn, false, false);
  return 0;
}

/** Models remap_pfn_range() for one page: a special PTE with no struct page behind it. */
export function remapPfn(vma: Vma, addr: number, pfn: number, writable: boolean): void {
  const t = vma.mm.pgt.pteTableAlloc(addr);
  vma.flags |= VM.IO | VM.PFNMAP | VM.DONTEXPAND;
  setPte(t, pteSlot(addr), mkPte(vma, writable, false) | PTE_SPECIAL, pfn);
}
