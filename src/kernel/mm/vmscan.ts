import { HPAGE_PMD_NR, PAGE_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { splitHugePmd } from './huge_memory.ts';
import { Inode, MM_SWAPENTS, VM, VM_SPECIAL, type Vma } from './mm_types.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierClearFlushYoung,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from './mmu_notifier.ts';
import { PG, type PhysMem } from './page_alloc.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SOFT_DIRTY,
  PTE_SPECIAL,
  PTE_SWP_EXCLUSIVE,
  SwpType,
  swpLo,
} from './pgtable.ts';
import { pmdTableOf, pteSlot, setPte } from './pte.ts';
import { folioMapcount, removeRmapPte, rmapWalk, rssCounterOf } from './rmap.ts';
import { type LeafTable, indexAt } from '../../lib/pgtable_store.ts';
import { sideTable } from '../../lib/snapshot.ts';

/**
 * Reclaim. The model keeps no LRU lists: a clock hand sweeps the frames and gives every page a
 * second chance through its accessed bits, which approximates the kernel's active/inactive
 * aging (and asks secondary MMUs through clear_flush_young as folio_referenced() does).
 */

export const reclaimHands = sideTable<System, number>();

/** Page allocation for mm paths: tries to free memory when RAM is short, like the slow path. */
export function* allocPageReclaim(sys: System, order: number, site: string): KGen<number> {
  if (sys.inject.shouldFail(site)) return -Errno.ENOMEM;
  let pfn = sys.phys.alloc(order, null);
  if (pfn >= 0) return pfn;
  for (let attempt = 0; attempt < 3 && pfn < 0; attempt++) {
    const freed = yield* shrinkMemory(sys, order > 0 ? HPAGE_PMD_NR * 2 : 32);
    pfn = sys.phys.alloc(order, null);
    if (freed === 0) break;
  }
  if (pfn < 0) sys.trace.count('alloc.fail');
  return pfn;
}

/** One place a page is mapped by a PTE right now. */
interface Mapped {
  readonly vma: Vma;
  readonly addr: number;
}

/** The PTE mappings of `pfn` that exist now (rmap walk plus a page-table check). */
export function ptesMapping(sys: System, pfn: number): Mapped[] {
  const out: Mapped[] = [];
  for (const w = rmapWalk(sys, pfn); w.next();) {
    const vma = w.vma;
    const addr = w.addr;
    const t = vma.mm.pgt.pteTable(addr);
    if (t === null) continue;
    const s = pteSlot(addr);
    const lo = t.words[s];
    if ((lo & 1) !== 0 || (lo & (1 << 8)) !== 0) {
      if (t.words[s + 1] === pfn) out.push({ vma, addr });
    }
  }
  return out;
}

/** Where a page is mapped: the table's words, the entry's index, the span the entry maps. */
export interface Mapping {
  readonly words: Uint32Array;
  readonly s: number;
  readonly span: number;
}

/**
 * Where page `k` of the folio at `h` is mapped at `addr` of `vma` (by a PMD leaf, for the
 * folio's first page, or by a PTE), or null (page_vma_mapped_walk()).
 */
export function findMapping(vma: Vma, addr: number, h: number, k: number): Mapping | null {
  const pmd = pmdTableOf(vma.mm, addr);
  if (pmd === null) return null;
  const pi = indexAt(addr, 1);
  if (pmd.children[pi] === null) {
    if (k !== 0 || (pmd.words[2 * pi] & PTE_HUGE) === 0 || pmd.words[2 * pi + 1] !== h) return null;
    return { words: pmd.words, s: 2 * pi, span: PAGE_SIZE * HPAGE_PMD_NR };
  }
  const words = (pmd.children[pi] as { words: Uint32Array }).words;
  const s = pteSlot(addr);
  // pte_present(): a PROT_NONE entry maps its page too.
  if (words[s + 1] !== h + k || (words[s] & (PTE_PRESENT | PTE_PROTNONE)) === 0) return null;
  return { words, s, span: PAGE_SIZE };
}

/** Whether `vma` is VM_LOCKED (and not special): what reclaim's rmap walks stop at. */
export function lockedVma(vma: Vma): boolean {
  return (vma.flags & (VM.LOCKED | VM_SPECIAL)) === VM.LOCKED;
}

/**
 * Whether a VM_LOCKED VMA maps the large folio at `h` (by a PMD or a PTE): the mlocked folio the
 * kernel keeps on its unevictable list, which reclaim must not split. (For a small folio,
 * folioReferenced() finds the same as it walks.)
 */
export function folioMappedLocked(sys: System, h: number): boolean {
  const n = 1 << sys.phys.order[h];
  for (let k = 0; k < n; k++) {
    for (const w = rmapWalk(sys, h + k); w.next();) {
      if (lockedVma(w.vma) && findMapping(w.vma, w.addr, h, k) !== null) return true;
    }
  }
  return false;
}

/**
 * Models folio_mark_accessed() on the two LRU lists (the machines run without MGLRU): a use of the
 * folio by the kernel rather than through a PTE (a file read or write, GUP with FOLL_TOUCH). The
 * first since the folio was last aged sets PG_referenced; the next, on a folio that is not active,
 * activates it and clears PG_referenced. An mlocked folio only keeps PG_referenced: it sits on
 * the unevictable list, which is never aged.
 *
 * The kernel moves a folio to the active list through a per-CPU batch, and sets PG_active when
 * the batch drains (until then the folio is off the LRU, and another access only sets and clears
 * PG_referenced again); the model activates it at once, as after the drain.
 */
export function folioMarkAccessed(sys: System, pfn: number): void {
  const phys = sys.phys;
  const h = phys.head(pfn);
  const f = phys.flags[h];
  if ((f & PG.referenced) === 0) {
    phys.flags[h] = f | PG.referenced;
    return;
  }
  if ((f & PG.active) !== 0 || folioMappedLocked(sys, h)) return;
  // A folio not on an LRU list (not yet added, or never: a device page) is not moved; the kernel
  // activates one still in its CPU's batch of new folios, which the model does not keep.
  phys.flags[h] = (f & ~PG.referenced) | ((f & PG.lru) !== 0 ? PG.active : 0);
}

/**
 * Models folio_referenced(): counts and clears accessed bits in every mapping and secondary MMU.
 * Like folio_referenced_one(), it stops at a mapping in a VM_LOCKED VMA and returns -1: the
 * folio is mlocked, and reclaim leaves it.
 */
export function* folioReferenced(sys: System, pfn: number): KGen<number> {
  let referenced = 0;
  const h = sys.phys.head(pfn);
  const n = 1 << sys.phys.order[h];
  for (let k = 0; k < n; k++) {
    for (const w = rmapWalk(sys, h + k); w.next();) {
      const vma = w.vma;
      const addr = w.addr;
      const m = findMapping(vma, addr, h, k);
      if (m === null) continue;
      if (lockedVma(vma)) return -1;
      const { words, s, span } = m;
      if ((words[s] & PTE_ACCESSED) !== 0) {
        words[s] = (words[s] & ~PTE_ACCESSED) >>> 0;
        referenced++;
      }
      if (yield* mmuNotifierClearFlushYoung(vma.mm, addr, addr + span)) referenced++;
    }
  }
  return referenced;
}

/**
 * Changes the PTE at `addr` of `vma` while it still maps `pfn` (present or PROT_NONE), as
 * try_to_unmap_one() and remove_migration_pte() do: under the rmap lock, a CLEAR invalidation of
 * that page and the page-table lock. `change` rewrites the entry (and the rmap) and says whether
 * it did; secondary TLBs are then flushed, and only then is the entry's page reference dropped
 * (still under the lock). Returns what `change` returned, or false if the entry was gone.
 */
function* changeMappedPte(
  vma: Vma,
  addr: number,
  pfn: number,
  change: (t: LeafTable, s: number) => boolean,
): KGen<boolean> {
  const mm = vma.mm;
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, addr, addr + PAGE_SIZE);
  yield* mm.rmapLock.downRead();
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTable(addr);
  const s = pteSlot(addr);
  const changed =
    t !== null && t.words[s + 1] === pfn && (t.words[s] & (PTE_PRESENT | PTE_PROTNONE)) !== 0 && change(t, s);
  if (changed) {
    yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, addr, addr + PAGE_SIZE);
    mm.sys.phys.put(pfn);
  }
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  yield* mm.rmapLock.upRead();
  return changed;
}

/**
 * Models shrink_folio_list() for one order-0 page: try_to_unmap() turns every PTE mapping it into
 * a swap entry (anonymous) or none (shmem, whose page cache entry is swapped), each under a CLEAR
 * invalidation, and pageout() writes it. A clean lazily-freed page is dropped, swap or not.
 * `direct`: MADV_PAGEOUT hands the page over itself (reclaim_pages()), so a shmem page is unmapped
 * even when there is no swap slot to write it to, and stays in the page cache if it is dirty (a
 * clean one is dropped from the cache, as a clean file page is); the LRU scan never
 * picks swap-backed pages when there is no swap (get_scan_count()). An anonymous page without a
 * slot stays mapped either way (add_to_swap() fails before the unmap). Returns true if the page
 * was freed.
 */
export function* pageoutPage(sys: System, pfn: number, direct = false): KGen<boolean> {
  const phys = sys.phys;
  if (phys.order[pfn] !== 0 || (phys.flags[pfn] & (PG.tail | PG.reserved)) !== 0) return false;
  if (phys.pinCount(pfn) > 0) return false;
  const anon = (phys.flags[pfn] & PG.anon) !== 0;
  const mapping = sys.mappings.get(phys.mapping[pfn]);
  const inCache = !anon && mapping instanceof Inode;
  const maps = ptesMapping(sys, pfn);
  // A page a locked VMA maps stays (folio_check_references() finds the VM_LOCKED mapping first).
  for (const m of maps) if ((m.vma.flags & (VM.LOCKED | VM_SPECIAL)) === VM.LOCKED) return false;
  // Anything beyond the mappings (and the page cache's own reference) is a transient user: keep it.
  if (phys.refcount[pfn] !== maps.length + (inCache ? 1 : 0)) return false;
  if (!anon && !inCache) return false;
  // MADV_FREE'd pages still clean are simply dropped (lazyfree), and so are the pages of a
  // droppable mapping, written or not (they are never swap-backed).
  const lazyfree =
    anon &&
    (phys.flags[pfn] & PG.swapbacked) === 0 &&
    ((maps.length > 0 && maps.every(({ vma }) => (vma.flags & VM.DROPPABLE) !== 0)) ||
      ((phys.flags[pfn] & PG.dirty) === 0 &&
        maps.every(({ vma, addr }) => {
          const t = vma.mm.pgt.pteTable(addr);
          return t !== null && (t.words[pteSlot(addr)] & PTE_DIRTY) === 0;
        })));
  if (lazyfree) {
    for (const { vma, addr } of maps) {
      if (!(yield* discardMapping(vma, addr, pfn))) return false;
    }
    sys.trace.count('reclaim.lazyfree');
    return true;
  }
  if (!sys.swap.enabled && (anon || !direct)) return false;
  if (inCache && (phys.flags[pfn] & PG.uptodate) === 0) {
    // shmem_writeout() of a page fallocate() added and nobody used: one the fallocate in progress
    // added stays (and is counted, so that the fallocate stops); another is written as the zero
    // page it is, up to date from now on.
    const falloc = mapping.falloc;
    const idx = phys.getIndex(pfn);
    if (falloc !== null && idx >= falloc.start && idx < falloc.next) {
      falloc.nrUnswapped++;
      return false;
    }
    phys.flags[pfn] |= PG.uptodate;
  }
  // The slot's first reference is this pageout's own, as the swap cache's is in the kernel: a
  // mapping zapped meanwhile (exit, munmap) must not free the slot under the entries still coming.
  const slot = sys.swap.enabled ? sys.swap.alloc() : -1;
  if (slot < 0 && anon) return false;
  // Reclaim holds the folio (isolated from the LRU) until it is written: the last unmap below
  // must not free it before its contents reach the slot.
  phys.get(pfn);
  let refs = 0;
  for (const { vma, addr } of maps) {
    const mm = vma.mm;
    yield* changeMappedPte(vma, addr, pfn, (t, s) => {
      const lo = t.words[s];
      if ((lo & PTE_DIRTY) !== 0) phys.flags[pfn] |= PG.dirty;
      removeRmapPte(phys, pfn, mm, rssCounterOf(phys, pfn, vma));
      if (anon) {
        // No swap cache: a swap-in from this entry reads the slot at once, so it must hold the
        // contents as they are now, with every write made through the mappings gone so far.
        sys.swap.write(slot, phys.data(pfn));
        sys.swap.dup(slot);
        refs++;
        const keep =
          (lo & PTE_SOFT_DIRTY) | ((phys.flags[pfn] & PG.anonExclusive) !== 0 ? PTE_SWP_EXCLUSIVE : 0);
        setPte(t, s, swpLo(SwpType.SWAP, keep), slot);
        mm.rss[MM_SWAPENTS]++;
      } else {
        setPte(t, s, 0, 0);
      }
      return true;
    });
  }
  if (inCache && (phys.flags[pfn] & PG.dirty) === 0) {
    // A clean shmem page (a hole read in, never written: swap-in and every write mark it dirty)
    // is not written anywhere: __remove_mapping() drops it from the page cache, swap or not, and
    // the next fault reads the hole again.
    if (slot >= 0) sys.swap.free(slot);
    phys.put(pfn);
    const inode = mapping;
    const idx = phys.getIndex(pfn);
    if (inode.pages.load(idx) !== pfn || phys.mapcount[pfn] !== 0) return false;
    inode.pages.erase(idx);
    phys.put(pfn);
    sys.trace.count('reclaim.clean');
    return !phys.isUsed(pfn) || phys.refcount[pfn] === 0;
  }
  if (slot < 0) {
    // shmem_writeout() has nowhere to write: the page stays in the page cache, unmapped.
    phys.put(pfn);
    return false;
  }
  // The final contents go to the slot once the mappings are gone (pageout() runs after
  // try_to_unmap()): every unmap above yields, and a CPU or device write landing before the last
  // mapping went away must not be lost with a copy taken earlier.
  sys.swap.write(slot, phys.data(pfn));
  phys.put(pfn);
  if (mapping instanceof Inode && inCache) {
    const inode = mapping;
    const idx = phys.getIndex(pfn);
    // A fault that mapped the page again while the unmaps above yielded keeps it in the cache
    // (the kernel's fault waits on the folio lock reclaim holds; here it wins and pageout fails).
    if (inode.pages.load(idx) === pfn && phys.mapcount[pfn] === 0) {
      inode.pages.erase(idx);
      inode.swapped.store(idx, slot);
      sys.swap.dup(slot);
      phys.put(pfn);
      refs++;
    }
  }
  sys.swap.free(slot);
  if (refs === 0) return false;
  sys.trace.count('reclaim.pageout');
  return !phys.isUsed(pfn) || phys.refcount[pfn] === 0;
}

/**
 * Drops one PTE mapping of a clean lazily-freed page under a CLEAR invalidation, as the MADV_FREE
 * branch of try_to_unmap_one() does. Returns false when the page must be kept: the decision to
 * discard was taken before the invalidation yielded, and a write meanwhile (a dirty PTE, a dirty
 * folio) or a new reference (GUP) makes the contents live again. A redirtied page becomes
 * swap-backed again so the next pageout writes it to swap; a page with an extra reference is
 * only left alone.
 */
function* discardMapping(vma: Vma, addr: number, pfn: number): KGen<boolean> {
  const mm = vma.mm;
  const phys = mm.sys.phys;
  // The folio's flags and references: a page of a large folio is discarded with its folio.
  const h = phys.head(pfn);
  let kept = false;
  yield* changeMappedPte(vma, addr, pfn, (t, s) => {
    if ((t.words[s] & PTE_DIRTY) !== 0) phys.flags[h] |= PG.dirty;
    // A droppable mapping's page goes even written, and never becomes swap-backed.
    if ((phys.flags[h] & PG.dirty) !== 0 && (vma.flags & VM.DROPPABLE) === 0) {
      phys.flags[h] |= PG.swapbacked;
      kept = true;
    } else if (phys.refcount[h] !== folioMapcount(phys, h)) {
      kept = true;
    }
    if (kept) return false;
    removeRmapPte(phys, pfn, mm, rssCounterOf(phys, pfn, vma));
    setPte(t, s, 0, 0);
    return true;
  });
  return !kept;
}

/**
 * Splits every PMD that maps folio `h`, in any process: what unmap_folio() does first when a
 * folio is split (TTU_SPLIT_HUGE_PMD). The folio stays mapped, by PTEs.
 */
export function* splitPmdMappings(sys: System, h: number): KGen {
  if (!sys.phys.entireMapcount.has(h)) return;
  for (const w = rmapWalk(sys, h); w.next();) {
    const vma = w.vma;
    const addr = w.addr;
    const pmd = pmdTableOf(vma.mm, addr);
    if (pmd === null) continue;
    const i = indexAt(addr, 1);
    if (pmd.children[i] === null && pmd.words[2 * i + 1] === h && (pmd.words[2 * i] & PTE_HUGE) !== 0) {
      yield* splitHugePmd(vma, addr - (addr % (PAGE_SIZE * HPAGE_PMD_NR)));
    }
  }
}

/**
 * Splits large folio `h`, mapped by PTEs only, into pages in one go (the split of __folio_split(),
 * between unmap_folio() and remap_page()): unmap_folio() replaces every PTE by a migration entry,
 * and a dirty one marks the folio dirty, so each page of the split folio is then dirty, wherever
 * the written entry was. Every page is then referenced by its mappings alone.
 */
export function splitMappedFolio(sys: System, h: number): void {
  const phys = sys.phys;
  const n = 1 << phys.order[h];
  for (let k = 0; k < n && (phys.flags[h] & PG.dirty) === 0; k++) {
    for (const { vma, addr } of ptesMapping(sys, h + k)) {
      const t = vma.mm.pgt.pteTable(addr);
      if (t !== null && (t.words[pteSlot(addr)] & PTE_DIRTY) !== 0) phys.flags[h] |= PG.dirty;
    }
  }
  phys.splitFolio(h, 0);
  sys.trace.count('thp.split_folio');
}

/**
 * Splits a large anonymous folio so its pages can be reclaimed one by one, if nothing but its
 * mappings holds it (can_split_folio()): PMD mappings are split first, then the folio itself,
 * whose zero-filled pages then map the zero page (mapUnusedToZeropage()). A folio something else
 * holds is left whole, its PMD mappings too. Returns whether it was split.
 */
export function* splitForReclaim(sys: System, h: number): KGen<boolean> {
  const phys = sys.phys;
  if (phys.pinCount(h) > 0 || phys.refcount[h] !== folioMapcount(phys, h)) return false;
  yield* splitPmdMappings(sys, h);
  if (phys.entireMapcount.has(h)) return false;
  const n = 1 << phys.order[h];
  const anon = (phys.flags[h] & PG.anon) !== 0;
  splitMappedFolio(sys, h);
  if (anon) for (let i = 0; i < n; i++) yield* mapUnusedToZeropage(sys, h + i);
  return true;
}

/**
 * Models shrink_folio_list() for a large anonymous folio that MADV_FREE made lazily freeable:
 * reclaim neither looks for swap nor splits the folio. A PMD mapping of it is split first (live,
 * MADV_PAGEOUT of a whole clean lazily-freeable THP splits its PMD and leaves the emptied PTE
 * table, so the next fault there maps a small page). Then try_to_unmap() drops the whole folio,
 * all its PTEs in one batch, if it is still clean and nothing but its mappings holds it; a
 * droppable mapping's folio goes written or not. Otherwise it stays, swap-backed again (and dirty
 * if an entry was). A folio a VM_LOCKED VMA maps stays as it is. Returns whether it was freed.
 */
export function* reclaimLazyfreeFolio(sys: System, h: number): KGen<boolean> {
  const phys = sys.phys;
  const n = 1 << phys.order[h];
  const mappings = (): { vma: Vma; addr: number; words: Uint32Array; s: number; span: number }[] => {
    const out: { vma: Vma; addr: number; words: Uint32Array; s: number; span: number }[] = [];
    for (let k = 0; k < n; k++) {
      for (const w = rmapWalk(sys, h + k); w.next();) {
        const m = findMapping(w.vma, w.addr, h, k);
        if (m !== null) out.push({ vma: w.vma, addr: w.addr, ...m });
      }
    }
    return out;
  };
  let maps = mappings();
  if (maps.length === 0 || maps.some(({ vma }) => lockedVma(vma))) return false;
  if (maps.some(({ span }) => span > PAGE_SIZE)) {
    for (const { vma, addr, span } of maps) if (span > PAGE_SIZE) yield* splitHugePmd(vma, addr);
    maps = mappings();
  }
  let dirty = (phys.flags[h] & PG.dirty) !== 0;
  for (const { words, s } of maps) if ((words[s] & PTE_DIRTY) !== 0) dirty = true;
  const droppable = maps.length > 0 && maps.every(({ vma }) => (vma.flags & VM.DROPPABLE) !== 0);
  const held = phys.pinCount(h) > 0 || phys.refcount[h] !== folioMapcount(phys, h);
  if ((dirty && !droppable) || held || maps.length === 0) {
    if (dirty) phys.flags[h] |= PG.dirty;
    if (!droppable) phys.flags[h] |= PG.swapbacked;
    return false;
  }
  for (const { vma, addr, words, s } of maps) {
    if (!(yield* discardMapping(vma, addr, words[s + 1]))) return false;
  }
  sys.trace.count('reclaim.lazyfree');
  return true;
}

/** Whether a page holds only zero bytes (pages_identical() with the zero page). */
function zeroFilled(phys: PhysMem, pfn: number): boolean {
  const d = phys.data(pfn);
  if (d === null) return true;
  for (let i = 0; i < d.length; i++) if (d[i] !== 0) return false;
  return true;
}

/**
 * After an anonymous folio is split, a subpage that holds only zeros is mapped by the shared zero
 * page instead, and freed once the last such mapping is gone: __folio_split() remaps an anonymous
 * folio with RMP_USE_SHARED_ZEROPAGE, and remove_migration_pte() then takes
 * try_to_map_unused_to_zeropage() for every mapping of such a page: none when the folio is mlocked,
 * and none in a VM_LOCKED VMA.
 * The entry keeps its soft-dirty bit and follows the VMA's protection, as a fresh zero-page
 * entry does. (The kernel unmaps the whole folio for the split under MMU_NOTIFY_CLEAR; the model
 * invalidates secondary MMUs only where an entry changes.)
 */
export function* mapUnusedToZeropage(sys: System, pfn: number): KGen {
  const phys = sys.phys;
  if (phys.mapcount[pfn] === 0 || !zeroFilled(phys, pfn)) return;
  const maps = ptesMapping(sys, pfn);
  // folio_test_mlocked(): the model's mlocked folio is one a locked VMA maps (mlock.ts). Its
  // pages keep their frames in every mapping, locked or not.
  if (maps.some(({ vma }) => lockedVma(vma))) return;
  for (const { vma, addr } of maps) {
    if ((vma.flags & VM.LOCKED) !== 0) continue;
    yield* changeMappedPte(vma, addr, pfn, (t, s) => {
      let z = PTE_PRESENT | PTE_ACCESSED | PTE_SPECIAL | (t.words[s] & PTE_SOFT_DIRTY);
      if ((vma.flags & (VM.READ | VM.WRITE | VM.EXEC)) === 0) z = (z & ~PTE_PRESENT) | PTE_PROTNONE;
      removeRmapPte(phys, pfn, vma.mm, rssCounterOf(phys, pfn, vma));
      setPte(t, s, z, phys.zeroPfn);
      return true;
    });
  }
}

/**
 * Whether a sweep without swap has anything to look at: a RAM page on an LRU list or in a file
 * that is not swap-backed (a lazily-freed anonymous page).
 */
function fileListsHold(phys: PhysMem, total: number): boolean {
  for (let i = 0; i < total; i++) {
    const f = phys.flags[i];
    if ((f & PG.used) === 0 || (f & (PG.reserved | PG.tail | PG.swapbacked)) !== 0) continue;
    if ((f & PG.lru) !== 0 || phys.mapping[i] !== 0) return true;
  }
  return false;
}

/** Models try_to_free_pages(): sweeps frames with the clock hand until `nr` pages are freed or a full turn passes. */
export function* shrinkMemory(sys: System, nr: number): KGen<number> {
  const phys = sys.phys;
  let freed = 0;
  let hand = reclaimHands.get(sys) ?? 0;
  const total = phys.ramFrames;
  // get_scan_count(): with no free swap slot (or no swap at all) the anonymous LRU lists, which
  // hold every swap-backed page (anonymous and shmem), are neither scanned nor aged. Only clean
  // lazily-freed pages, which live on the file lists, can still go.
  const scanAnon = sys.swap.enabled && !sys.swap.full;
  if (!scanAnon && !fileListsHold(phys, total)) {
    // Nothing on the file lists: the three turns below would look at no page, free none and
    // bring the clock hand back where it is.
    reclaimHands.set(sys, hand);
    sys.trace.count('reclaim.freed', 0);
    return 0;
  }
  // Up to three turns: a recently used page is first marked active, then demoted, then reclaimed
  // if it stayed idle all along.
  let looked = 0;
  for (let scanned = 0; scanned < total * 3 && freed < nr; scanned++) {
    // A whole turn that found no page to look at changed nothing (the checks below only read),
    // and brought the hand back where it started: the next two would find none either.
    if (scanned === total && looked === 0) break;
    hand = hand + 1 >= total ? 0 : hand + 1;
    const f = phys.flags[hand];
    if ((f & PG.used) === 0 || (f & (PG.reserved | PG.tail)) !== 0) continue;
    if ((f & PG.lru) === 0 && phys.mapping[hand] === 0) continue;
    if (phys.pinCount(hand) > 0) continue;
    if (!scanAnon && (f & PG.swapbacked) !== 0) continue;
    looked++;
    sys.trace.count('reclaim.scanned');
    const large = phys.order[hand] > 0;
    if (large) {
      // An mlocked THP stays whole on the unevictable list.
      if (folioMappedLocked(sys, hand)) continue;
      // Only THPs are split for reclaim. Hugetlb folios (private ones are anonymous too) are
      // never on the LRU, so the kernel's reclaim never sees them: splitting one would turn a
      // hugetlb PMD into PTEs and the pool page into small pages. A lazily-freeable THP is not
      // split: it is aged as a small page is, then dropped whole or kept whole.
      if ((f & (PG.anon | PG.lru | PG.swapbacked)) !== (PG.anon | PG.lru)) {
        if ((f & (PG.anon | PG.lru)) === (PG.anon | PG.lru)) yield* splitForReclaim(sys, hand);
        continue;
      }
    }
    const referenced = yield* folioReferenced(sys, hand);
    // A folio a locked VMA maps goes to the unevictable list: reclaim leaves it.
    if (referenced < 0) continue;
    if (referenced > 0) {
      phys.flags[hand] |= PG.active | PG.referenced;
      continue;
    }
    if ((phys.flags[hand] & PG.active) !== 0) {
      phys.flags[hand] &= ~(PG.active | PG.referenced);
      continue;
    }
    if (large ? yield* reclaimLazyfreeFolio(sys, hand) : yield* pageoutPage(sys, hand)) freed++;
  }
  reclaimHands.set(sys, hand);
  sys.trace.count('reclaim.freed', freed);
  return freed;
}

/** Models the `reclaim` op: memory pressure that frees up to `nr` pages (all it can when nr <= 0). */
export function* reclaim(sys: System, nr: number): KGen<number> {
  return yield* shrinkMemory(sys, nr > 0 ? nr : Number.MAX_SAFE_INTEGER);
}
