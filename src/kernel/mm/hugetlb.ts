import { indexAt } from '../../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { type Inode, VM, VM_FAULT, type Vma } from './mm_types.ts';
import {
  MMU_NOTIFY,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from './mmu_notifier.ts';
import { PG } from './page_alloc.ts';
import { PTE_ACCESSED, PTE_DIRTY, PTE_HUGE, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_WRITE } from './pgtable.ts';
import { anonVmaPrepare, rmapWalk } from './rmap.ts';
import { sideTable } from '../../lib/snapshot.ts';
import { unmapHugepageRef } from './mmap.ts';

/**
 * hugetlbfs with one page size, 2MiB, mapped by PMD leaves. Pages come from a pool of
 * `hugetlbPages` (0: as many as RAM gives). Hugetlb pages are not counted in RSS and never
 * reclaimed, as in the kernel. mmap reserves the pages a mapping may fault (unless
 * MAP_NORESERVE), so a mapping the pool cannot back fails at mmap time with -ENOMEM rather than
 * at a later fault; faults consume the reservation.
 */
interface Pool {
  /** Hugetlb folios handed out, with the generation they had then (a freed one no longer matches). */
  readonly pages: Map<number, number>;
  /** Pages promised to reservations and not yet faulted in. */
  resv: number;
  /**
   * Pages zapped with their reservation given back (their restore_reserve flag), with their
   * generation: that reservation counts in `resv` once the page is freed (settled()).
   */
  readonly restore: Map<number, number>;
}
const pools = sideTable<System, Pool>();

function pool(sys: System): Pool {
  let p = pools.get(sys);
  if (p === undefined) {
    p = { pages: new Map(), resv: 0, restore: new Map() };
    pools.set(sys, p);
  }
  return p;
}

/** Whether the page handed out at `pfn` in generation `gen` was freed since. */
function freedSince(sys: System, pfn: number, gen: number): boolean {
  return sys.phys.gen[pfn] !== gen || !sys.phys.isUsed(pfn);
}

/** Whether the folio at `pfn` is a hugetlb page in use. */
export function isHugetlbFolio(sys: System, pfn: number): boolean {
  const gen = pool(sys).pages.get(pfn);
  return gen !== undefined && !freedSince(sys, pfn, gen);
}

/** Hugetlb pages in use (freed ones, wherever their last reference went, drop out). */
function inUse(sys: System): number {
  const p = pool(sys);
  for (const [pfn, gen] of p.pages) if (freedSince(sys, pfn, gen)) p.pages.delete(pfn);
  return p.pages.size;
}

/** The pool, with the reservations of the zapped pages freed since counted (free_huge_folio()). */
function settled(sys: System): Pool {
  const p = pool(sys);
  for (const [pfn, gen] of p.restore) {
    if (freedSince(sys, pfn, gen)) {
      p.restore.delete(pfn);
      p.resv++;
    }
  }
  return p;
}

/** Free huge pages in the pool (reserved ones included). */
export function hugetlbPagesFree(sys: System): number {
  const limit = sys.config.hugetlbPages;
  if (limit > 0) return Math.max(0, limit - inUse(sys));
  return Math.floor(sys.phys.freeFrames / HPAGE_PMD_NR);
}

/**
 * Huge pages promised to reservations and not yet faulted in (HugePages_Rsvd). It goes below zero
 * where the kernel's unsigned count wraps: a mapping unmapped while a fork child still maps one
 * of its zapped pages takes that page's reservation from the pool before its free gives it back
 * (hugetlbRestoreReserve()).
 */
export function hugetlbPagesReserved(sys: System): number {
  return settled(sys).resv;
}

/** Free huge pages no reservation has claimed. */
export function hugetlbPagesAvailable(sys: System): number {
  return hugetlbPagesFree(sys) - settled(sys).resv;
}

/** Models alloc_hugetlb_folio(); `reserved` when the fault consumed a reservation. */
export function allocHugetlbPage(sys: System, reserved = false): number {
  if (reserved ? hugetlbPagesFree(sys) <= 0 : hugetlbPagesAvailable(sys) <= 0) return -1;
  if (sys.inject.shouldFail('alloc_hugetlb_folio')) return -1;
  const pfn = sys.phys.alloc(9, null);
  if (pfn < 0) return -1;
  pool(sys).pages.set(pfn, sys.phys.gen[pfn]);
  return pfn;
}

/**
 * HPAGE_RESV_UNMAPPED, as the private data of a private hugetlb VMA that does not own its
 * reservations (a fork child's): the mapping that owns them took one of its pages away
 * (unmapRefPrivate()), and every later fault on an empty entry of the VMA is SIGBUS. A fork
 * does not pass it on (the child's VMA starts with no private data).
 */
export const HUGETLB_RESV_UNMAPPED: object = Object.freeze({ hugetlbResvUnmapped: true });

/** Models struct resv_map: the huge-page indexes reserved for a mapping and not faulted yet. */
export class ResvMap {
  readonly idx = new Set<number>();
}
const inodeResv = sideTable<Inode, ResvMap>();

function resvMapOf(vma: Vma): ResvMap | null {
  if ((vma.flags & VM.SHARED) !== 0 && vma.file !== null) return inodeResv.get(vma.file.inode) ?? null;
  return vma.priv instanceof ResvMap ? vma.priv : null;
}

/**
 * Models the reservation __unmap_hugepage_range() gives back when it zaps an anonymous huge page
 * (`pfn`, mapped at `addr`) of a private mapping that owns its reservations: the index is reserved
 * for the mapping again (vma_add_reservation()), so the page cannot be lost to another mapping
 * before this one faults it again. The pool counts the reservation when the page is freed (its
 * restore_reserve flag): while a fork child still maps it, HugePages_Rsvd does not show it, and
 * unmapping the index meanwhile takes one reservation from the pool that this one gives back
 * later.
 */
export function hugetlbRestoreReserve(sys: System, vma: Vma, addr: number, pfn: number): void {
  if ((vma.flags & VM.SHARED) !== 0 || (sys.phys.flags[pfn] & PG.anon) === 0) return;
  const map = vma.priv instanceof ResvMap ? vma.priv : null;
  const idx = vma.pageIndex(addr);
  if (map === null || map.idx.has(idx)) return;
  map.idx.add(idx);
  // The page may have been freed and handed out again since an earlier zap flagged it: that
  // reservation is counted before the new flag takes its place.
  settled(sys).restore.set(pfn, sys.phys.gen[pfn]);
}

/**
 * Models hugetlb_reserve_pages() at mmap: private mappings reserve every huge page of the VMA in a
 * map of their own (shared by the pieces a split makes); shared mappings reserve, in the file's
 * map, the pages not in its page cache yet. 0, or -ENOMEM when the pool cannot cover it.
 */
export function hugetlbReservePages(sys: System, vma: Vma): number {
  const shared = (vma.flags & VM.SHARED) !== 0 && vma.file !== null;
  const map = shared ? (inodeResv.get(vma.file!.inode) ?? new ResvMap()) : new ResvMap();
  const want: number[] = [];
  for (let a = vma.start; a < vma.end; a += PMD_SIZE) {
    const idx = vma.pageIndex(a);
    if (shared && (vma.file!.inode.pages.has(idx) || map.idx.has(idx))) continue;
    want.push(idx);
  }
  // hugetlb_acct_memory(): the free pages no reservation has claimed must cover the new ones
  // (gather_surplus_pages()), and so must the free pages alone (allowed_mems_nr()), which tells
  // only when the reserved count has gone below zero (see hugetlbPagesReserved()).
  if (hugetlbPagesAvailable(sys) < want.length || hugetlbPagesFree(sys) < want.length) return -Errno.ENOMEM;
  for (const idx of want) map.idx.add(idx);
  pool(sys).resv += want.length;
  if (shared) inodeResv.set(vma.file!.inode, map);
  else vma.priv = map;
  return 0;
}

/** Takes the reservation for page index `idx` of `vma`, if it has one. */
function consumeReservation(sys: System, vma: Vma, idx: number): ResvMap | null {
  const map = resvMapOf(vma);
  if (map === null || !map.idx.delete(idx)) return null;
  pool(sys).resv--;
  return map;
}

function restoreReservation(sys: System, map: ResvMap | null, idx: number): void {
  if (map === null) return;
  map.idx.add(idx);
  pool(sys).resv++;
}

/** Models hugetlb_vm_op_close() for a private mapping: its unused reservations go back to the pool. */
export function hugetlbUnreserveVma(sys: System, vma: Vma): void {
  if ((vma.flags & VM.HUGETLB) === 0 || (vma.flags & VM.SHARED) !== 0) return;
  const map = vma.priv instanceof ResvMap ? vma.priv : null;
  if (map === null) return;
  for (let a = vma.start; a < vma.end; a += PMD_SIZE) if (map.idx.delete(vma.pageIndex(a))) pool(sys).resv--;
}

/**
 * Models hugetlb_unreserve_pages(): the file's reservations of page indexes [from, to] (truncate
 * and evict: to the end; a punched hole: its pages).
 */
export function hugetlbUnreserveInode(sys: System, inode: Inode, from: number, to = Infinity): void {
  const map = inodeResv.get(inode);
  if (map === undefined) return;
  for (const idx of [...map.idx]) {
    if (idx >= from && idx <= to) {
      map.idx.delete(idx);
      pool(sys).resv--;
    }
  }
}

/**
 * Models hugetlbfs_fallocate()'s allocation of one page: a huge page for page index `index` into
 * the file's page cache. Its pseudo VMA is a shared mapping of the file, so a reservation a shared
 * mapping made for the index is used. Returns the PFN, or -1 when the pool has none to give.
 */
export function hugetlbfsAddPage(sys: System, inode: Inode, index: number): number {
  const map = inodeResv.get(inode) ?? null;
  const reserved = map !== null && map.idx.delete(index);
  if (reserved) pool(sys).resv--;
  const pfn = allocHugetlbPage(sys, reserved);
  if (pfn < 0) {
    restoreReservation(sys, reserved ? map : null, index);
    return -1;
  }
  sys.phys.mapping[pfn] = inode.mappingId;
  sys.phys.setIndex(pfn, index);
  inode.pages.store(index, pfn);
  return pfn;
}

/** Models make_huge_pte(): a present, young, dirty huge entry, writable when asked and the VMA allows. */
export function hugePte(vma: Vma, writable: boolean): number {
  let lo = PTE_PRESENT | PTE_HUGE | PTE_ACCESSED | PTE_DIRTY | PTE_SOFT_DIRTY;
  if (writable && (vma.flags & VM.WRITE) !== 0) lo |= PTE_WRITE;
  return lo;
}

function putHugetlb(sys: System, pfn: number): void {
  sys.phys.put(pfn);
}

export function putHugetlbPage(sys: System, pfn: number): void {
  putHugetlb(sys, pfn);
}

/**
 * Models unmap_ref_private(): the owner of a private mapping's reservations could not copy huge
 * page `ref`, which it shares since a fork, for want of a free huge page. Every other private
 * mapping that maps the page and does not own reservations (a child's) has it zapped and is
 * marked (HUGETLB_RESV_UNMAPPED): the child gets SIGBUS when it next faults there, rather than a
 * new zeroed page in place of its data. Whether any mapping lost the page.
 *
 * The kernel finds those mappings in the i_mmap tree of the mapping's file (the hidden hugetlbfs
 * file of an anonymous one) and zaps each at the faulting address; the model finds them through
 * the page's rmap and zaps each where it maps the page. That differs only for a child that moved
 * its mapping with mremap(): the kernel finds nothing there to zap, and its fault retries for as
 * long as the pool stays empty.
 */
function* unmapRefPrivate(vma: Vma, ref: number): KGen<boolean> {
  const sys = vma.mm.sys;
  const others: [Vma, number][] = [];
  for (const w = rmapWalk(sys, ref); w.next();) {
    const v = w.vma;
    if (v === vma || (v.flags & (VM.SHARED | VM.MAYSHARE)) !== 0 || v.priv instanceof ResvMap) continue;
    others.push([v, w.addr - (w.addr % PMD_SIZE)]);
  }
  let zapped = false;
  for (const [v, addr] of others) if (yield* unmapHugepageRef(v, addr, ref)) zapped = true;
  return zapped;
}

/**
 * Whether the huge page at base-page `index` of a hugetlbfs file lies past its end, as
 * hugetlb_no_page() counts: in whole huge pages, `i_size >> huge_page_shift`. A size that ends
 * inside a huge page (fallocate() sets one) leaves that page past the end too.
 */
function pastHugeEnd(inode: Inode, index: number): boolean {
  return Math.floor(index / HPAGE_PMD_NR) >= Math.floor(inode.size / (HPAGE_PMD_NR * PAGE_SIZE));
}

/**
 * Models hugetlb_fault(): hugetlb_no_page() for an empty entry, hugetlb_wp() for a write to a
 * read-only one. A huge page the pool cannot give is SIGBUS: alloc_hugetlb_folio() fails with
 * -ENOSPC, which vmf_error() turns into VM_FAULT_SIGBUS.
 */
export function* hugetlbFault(vma: Vma, addr: number, flags: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  const base = addr - (addr % PMD_SIZE);
  // An unshare fault (FAULT_FLAG_UNSHARE, 1 << 10) breaks COW like a write; the copy is mapped writable here.
  const write = (flags & (1 | (1 << 10))) !== 0;
  const shared = (vma.flags & VM.SHARED) !== 0;
  const pmd = mm.pgt.pmdTableAlloc(base);
  const i = indexAt(base, 1);
  const lo = pmd.words[2 * i];
  if (lo === 0) {
    // hugetlb_no_page(): the owner of the reservations took a page of this VMA away when it could
    // not copy it (unmapRefPrivate()), so no fault here may bring in a new one.
    if (vma.priv === HUGETLB_RESV_UNMAPPED) return VM_FAULT.SIGBUS;
    sys.trace.faultKind('hugetlb');
    let pfn: number;
    // The reservation of a private mapping this fault used, if any, and the cache page it maps
    // or copies (-1: none).
    let privateResv: ResvMap | null = null;
    let fromCache = -1;
    let copyFailed = false;
    const inode = vma.file?.inode ?? null;
    const index = vma.pageIndex(base);
    // hugetlb_no_page() looks at the size only when the cache has no page: one fallocate() put
    // past the end (FALLOC_FL_KEEP_SIZE) is mapped.
    const past = inode !== null && pastHugeEnd(inode, index);
    if (past && inode.pages.load(index) === undefined) return VM_FAULT.SIGBUS;
    if (inode !== null && (shared || inode.pages.load(index) !== undefined)) {
      // hugetlb_no_page(): file pages come from the page cache. A private mapping maps the cache
      // page read-only, or on a write fault gets its own anonymous copy. A private mapping of a
      // hole gets a new anonymous page (below) and leaves the cache empty.
      let cached = inode.pages.load(index);
      if (cached === undefined) {
        const resv = shared ? consumeReservation(sys, vma, index) : null;
        cached = allocHugetlbPage(sys, resv !== null);
        if (cached < 0) {
          restoreReservation(sys, resv, index);
          return VM_FAULT.SIGBUS;
        }
        phys.mapping[cached] = inode.mappingId;
        phys.setIndex(cached, index);
        inode.pages.store(index, cached);
      }
      fromCache = cached;
      if (shared || !write) {
        pfn = cached;
        phys.get(pfn);
      } else {
        const resv = consumeReservation(sys, vma, index);
        pfn = allocHugetlbPage(sys, resv !== null);
        if (pfn < 0) {
          // hugetlb_no_page() maps the cache page before hugetlb_wp() tries the copy: a copy it
          // cannot make leaves that page mapped read-only, and the fault is SIGBUS. The VMA gets
          // no anon_vma (hugetlb_wp() prepares it only for a copy).
          restoreReservation(sys, resv, index);
          pfn = cached;
          phys.get(pfn);
          copyFailed = true;
        } else {
          anonVmaPrepare(sys, vma);
          privateResv = resv;
          for (let k = 0; k < HPAGE_PMD_NR; k++) phys.copyPage(pfn + k, cached + k);
          phys.flags[pfn] |= PG.anon | PG.anonExclusive;
          phys.mapping[pfn] = vma.anonVma!.mappingId;
          phys.setIndex(pfn, index);
        }
      }
    } else {
      anonVmaPrepare(sys, vma);
      const resv = consumeReservation(sys, vma, index);
      pfn = allocHugetlbPage(sys, resv !== null);
      if (pfn < 0) {
        restoreReservation(sys, resv, index);
        return VM_FAULT.SIGBUS;
      }
      privateResv = resv;
      phys.flags[pfn] |= PG.anon | PG.anonExclusive;
      phys.mapping[pfn] = vma.anonVma!.mappingId;
      phys.setIndex(pfn, index);
    }
    yield* mm.ptl.lock();
    // The kernel's fault holds the VMA's hugetlb lock and the index's fault mutex throughout, so
    // a truncation or hole punch comes wholly before or after it. One that has taken the cache
    // page, or shrunk the file under a hole, since they were looked at above came before: the
    // fault has used no reservation and is taken again (SIGBUS past the new end).
    const stale =
      inode !== null && (fromCache >= 0 ? inode.pages.load(index) !== fromCache : pastHugeEnd(inode, index));
    if (stale) {
      yield* mm.ptl.unlock();
      putHugetlb(sys, pfn);
      restoreReservation(sys, privateResv, index);
      return 0;
    }
    if (pmd.words[2 * i] === 0) {
      phys.entireMapcount.set(pfn, (phys.entireMapcount.get(pfn) ?? 0) + 1);
      mm.pgt.setUpperWords(pmd, i, hugePte(vma, (shared || write) && !copyFailed), pfn);
    } else {
      putHugetlb(sys, pfn);
    }
    yield* mm.ptl.unlock();
    if (copyFailed) return VM_FAULT.SIGBUS;
    sys.trace.count('fault.hugetlb');
    return 0;
  }
  if (!write || (lo & PTE_WRITE) !== 0) {
    sys.trace.faultKind('spurious');
    pmd.words[2 * i] = (lo | PTE_ACCESSED | (write ? PTE_DIRTY : 0)) >>> 0;
    return 0;
  }
  sys.trace.faultKind('hugetlb_wp');
  const old = pmd.words[2 * i + 1];
  if (shared) {
    pmd.words[2 * i] = (lo | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED) >>> 0;
    return 0;
  }
  const index = vma.pageIndex(base);
  // The mapping that owns its reservations, copying an anonymous page it shares since a fork
  // (cow_from_owner).
  const fromOwner = vma.priv instanceof ResvMap && (phys.flags[old] & PG.anon) !== 0;
  let pfn: number;
  for (;;) {
    // hugetlb_wp(): an anonymous page mapped only here is reused, exclusive or not (a page that
    // was shared with a child which has since unmapped it becomes this mm's again); no reference
    // count check, unlike wp_can_reuse_anon_folio(), so a page a pipe still references is reused
    // too.
    if ((phys.flags[old] & PG.anon) !== 0 && (phys.entireMapcount.get(old) ?? 0) === 1) {
      phys.flags[old] |= PG.anonExclusive;
      pmd.words[2 * i] =
        (lo |
          ((flags & 1) !== 0 && (vma.flags & VM.WRITE) !== 0 ? PTE_WRITE | PTE_DIRTY : 0) |
          PTE_ACCESSED) >>>
        0;
      return 0;
    }
    // Copy the whole huge page. The mapping that owns its reservations uses the one for this
    // index when it copies the file's page; copying a page it shares since a fork, it allocates
    // outside its reservations. Another mapping has none to use.
    const resv = fromOwner ? null : consumeReservation(sys, vma, index);
    pfn = allocHugetlbPage(sys, resv !== null);
    if (pfn >= 0) break;
    restoreReservation(sys, resv, index);
    if (!fromOwner) return VM_FAULT.SIGBUS;
    // The owner keeps its page: the mappings that share it without reservations of their own
    // lose it, and the owner looks at its entry again under the page-table lock. Unchanged, the
    // page is its alone now and is reused; changed, the fault is done (it is taken again if need
    // be). Where no mapping lost it, looking again would find the same: the kernel would go
    // round until a huge page is freed, the model stops with SIGBUS.
    if (!(yield* unmapRefPrivate(vma, old))) return VM_FAULT.SIGBUS;
    yield* mm.ptl.lock();
    const same = pmd.words[2 * i] === lo && pmd.words[2 * i + 1] === old;
    yield* mm.ptl.unlock();
    if (!same) return 0;
  }
  // A file page mapped read-only has no anon_vma behind it until it is copied.
  anonVmaPrepare(sys, vma);
  for (let k = 0; k < HPAGE_PMD_NR; k++) phys.copyPage(pfn + k, old + k);
  phys.flags[pfn] |= PG.anon | PG.anonExclusive;
  phys.mapping[pfn] = vma.anonVma!.mappingId;
  phys.setIndex(pfn, index);
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, base, base + PMD_SIZE);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  const em = (phys.entireMapcount.get(old) ?? 1) - 1;
  if (em <= 0) phys.entireMapcount.delete(old);
  else phys.entireMapcount.set(old, em);
  phys.entireMapcount.set(pfn, 1);
  mm.pgt.setUpperWords(pmd, i, hugePte(vma, true), pfn);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  putHugetlb(sys, old);
  sys.trace.count('fault.hugetlb_cow');
  return 0;
}
