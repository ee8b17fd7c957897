/**
 * Models mm/migrate_device.c and the migrate_vma part of include/linux/migrate.h: moving anonymous
 * pages between system RAM and ZONE_DEVICE memory, driven by a device driver in three steps.
 *
 *  1. migrate_vma_setup(): collect the range (under a MIGRATE invalidation that carries the
 *     caller's pgmap owner, so the caller can ignore its own event), lock each page with a trylock
 *     and replace its PTE by a migration entry; then unmap the other mappings (try_to_migrate) and
 *     drop pages something else still holds (pinned pages stay where they are).
 *  2. the driver allocates and fills destination pages, then migrate_vma_pages() commits: the
 *     page-cache side of the move, or for holes and zero pages a new PTE straight away.
 *  3. migrate_vma_finalize(): every migration entry becomes a mapping of the new page (or of the
 *     old one again when that page did not move); pages are unlocked and the references the
 *     migration held are dropped, which frees a source that moved.
 *
 * migrate_pfn values are exact integers in a Float64Array: pfn * 64 + MIGRATE_PFN_* flags.
 *
 * THP migration (MIGRATE_VMA_SELECT_COMPOUND): a PMD-mapped THP, a device-private THP entry or an
 * empty (or huge-zero) PMD that the range covers exactly is collected as one MIGRATE|COMPOUND
 * entry followed by HPAGE_PMD_NR - 1 empty ones, its PMD replaced by a PMD migration entry. A
 * compound destination is mapped by one PMD again (a device-private PMD entry for private memory);
 * a driver that supplies small pages instead gets the source folio split at commit time, each
 * page then moving on its own. Without COMPOUND (or for a range not covering the whole PMD) large
 * folios are split before collection, as pre-THP-migration kernels always did.
 *
 * While a page is under migration it holds one reference for the migration and is locked; its
 * mappings are migration entries (mapcount 0, RSS unchanged). CPU faults on migration entries
 * sleep on sys.migrationWq until finalize (or the restore path) wakes them.
 */
import { indexAt } from '../../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { folioSplitUnlock, folioTestLocked, folioTrylock, folioUnlock, folioLock } from './filemap.ts';
import { isPmdDevicePrivate, isPmdMigrationEntry, splitHugePmd, swpPmdLo } from './huge_memory.ts';
import { mkPte, vmNormalPage } from './memory.ts';
import { VM, VM_SPECIAL, type Vma } from './mm_types.ts';
import {
  MMU_NOTIFY,
  type MmuNotifierRange,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
  mmuNotifierRangeInitOwner,
} from './mmu_notifier.ts';
import { PG } from './page_alloc.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_SOFT_DIRTY,
  PTE_WRITE,
  SwpType,
  type SwpTypeValue,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
  pteNone,
  ptePresent,
  swpLo,
  swpType,
} from './pgtable.ts';
import { pmdBase, pmdIsLeaf, pmdPresentHuge, pmdTableOf, pteSlot, setPte } from './pte.ts';
import {
  addNewAnonRmap,
  anonVmaPrepare,
  folioAddLargeMapcount,
  folioAddLargeMapcountPte,
  folioMapcount,
  folioSubLargeMapcount,
  folioSubLargeMapcountPte,
  rmapLinkCount,
  rmapWalk,
} from './rmap.ts';
import { allocPageReclaim, mapUnusedToZeropage, splitMappedFolio, splitPmdMappings } from './vmscan.ts';

export const MIGRATE_PFN_VALID = 1;
export const MIGRATE_PFN_MIGRATE = 2;
export const MIGRATE_PFN_WRITE = 8;
export const MIGRATE_PFN_COMPOUND = 16;
export const MIGRATE_PFN_SHIFT = 6;
const MIGRATE_PFN_SCALE = 1 << MIGRATE_PFN_SHIFT;

/** enum migrate_vma_direction. */
export const MIGRATE_VMA_SELECT_SYSTEM = 1;
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 2;
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 4;
export const MIGRATE_VMA_SELECT_COMPOUND = 8;

/** Models migrate_pfn(). */
export function migratePfn(pfn: number): number {
  return pfn * MIGRATE_PFN_SCALE + MIGRATE_PFN_VALID;
}

/**
 * The MIGRATE_PFN_* flag bits of a migrate pfn value. A value below 2^31 (a PFN below 2^25) takes
 * them with a mask; `%` of a double (the values live in a Float64Array) is a library call.
 */
export function migratePfnFlags(m: number): number {
  return m < 0x80000000 ? m & (MIGRATE_PFN_SCALE - 1) : m % MIGRATE_PFN_SCALE;
}

/** Models migrate_pfn_to_page(): the PFN, or -1 when the value is not VALID. */
export function migratePfnToPage(m: number): number {
  if ((migratePfnFlags(m) & MIGRATE_PFN_VALID) === 0) return -1;
  return m < 0x80000000 ? m >>> MIGRATE_PFN_SHIFT : Math.floor(m / MIGRATE_PFN_SCALE);
}

function has(m: number, flag: number): boolean {
  return (migratePfnFlags(m) & flag) !== 0;
}

function without(m: number, flag: number): number {
  return has(m, flag) ? m - flag : m;
}

/** Models struct migrate_vma. `faultPage` is -1 when the migration is not serving a CPU fault. */
export interface MigrateVma {
  vma: Vma;
  src: Float64Array;
  dst: Float64Array;
  cpages: number;
  npages: number;
  start: number;
  end: number;
  pgmapOwner: unknown;
  flags: number;
  faultPage: number;
}

// ---------------------------------------------------------------------------------------------
// Migration entries: install, and replace by the new (or old) page.

/** The migration entry type for a page leaving a mapping that was writable or exclusive. */
function migrationType(writable: boolean, anonExclusive: boolean): SwpTypeValue {
  if (writable) return SwpType.MIGRATION_WRITE;
  return anonExclusive ? SwpType.MIGRATION_READ_EXCLUSIVE : SwpType.MIGRATION_READ;
}

/**
 * Models remove_migration_pmd() for every PMD migration entry naming the large folio `src`: each
 * becomes a PMD mapping of the large folio `dst` (a device-private PMD entry for device-private
 * memory), taking a reference and an entire mapcount on dst.
 */
function* removeMigrationPmds(sys: System, src: number, dst: number): KGen {
  const phys = sys.phys;
  const dstPrivate = phys.pagemapOf(dst)?.hooks.type === 'private';
  const dstAnon = (phys.flags[dst] & PG.anon) !== 0;
  for (const w = rmapWalk(sys, src); w.next();) {
    const vma = w.vma;
    const addr = w.addr;
    if (addr % PMD_SIZE !== 0) continue;
    const mm = vma.mm;
    const pmd = pmdTableOf(mm, addr);
    const i = indexAt(addr, 1);
    if (pmd === null || pmd.children[i] !== null) continue;
    if (!isPmdMigrationEntry(pmd.words[2 * i]) || pmd.words[2 * i + 1] !== src) continue;
    yield* mm.ptl.lock();
    const lo = pmd.words[2 * i];
    if (pmd.children[i] === null && isPmdMigrationEntry(lo) && pmd.words[2 * i + 1] === src) {
      const type = swpType(lo);
      const writable = type === SwpType.MIGRATION_WRITE;
      const exclusive = type !== SwpType.MIGRATION_READ;
      let nlo: number;
      if (dstPrivate) {
        nlo = swpPmdLo(
          writable ? SwpType.DEVICE_PRIVATE_WRITE : SwpType.DEVICE_PRIVATE_READ,
          lo & PTE_SOFT_DIRTY,
        );
      } else {
        nlo = mkPte(vma, writable, (lo & PTE_DIRTY) !== 0) | (lo & PTE_SOFT_DIRTY) | PTE_HUGE;
        if ((lo & PTE_ACCESSED) === 0) nlo &= ~PTE_ACCESSED;
      }
      if (dstAnon) {
        if (exclusive) phys.flags[dst] |= PG.anonExclusive;
        else phys.flags[dst] &= ~PG.anonExclusive;
      }
      phys.get(dst);
      phys.entireMapcount.set(dst, (phys.entireMapcount.get(dst) ?? 0) + 1);
      folioAddLargeMapcount(phys, dst, mm, 1);
      mm.pgt.setUpperWords(pmd, i, nlo >>> 0, dst);
    }
    yield* mm.ptl.unlock();
  }
}

/**
 * Models remove_migration_ptes() for every mapping of the folio `src`: each migration entry
 * naming a page of `src` becomes a mapping of the same page of `dst` (a device-private entry when
 * dst is device-private memory), which takes a reference and a mapcount on dst. `src` still
 * carries its rmap identity here. A large folio may be mapped by PMD migration entries, PTE
 * migration entries (a PMD split while it migrated), or both.
 */
function* removeMigrationPtes(sys: System, src: number, dst: number): KGen {
  const nr = sys.phys.folioNr(src);
  if (nr > 1) yield* removeMigrationPmds(sys, src, dst);
  for (let k = 0; k < nr; k++) yield* removeMigrationPtesOfPage(sys, src + k, dst + k);
  sys.migrationWq.wakeUpAll();
}

/** removeMigrationPtes() for the PTE migration entries naming one page. */
function* removeMigrationPtesOfPage(sys: System, src: number, dst: number): KGen {
  const phys = sys.phys;
  const dstPrivate = phys.pagemapOf(dst)?.hooks.type === 'private';
  const dstAnon = (phys.flags[phys.head(dst)] & PG.anon) !== 0;
  // The kernel walks the rmap under the anon_vma lock, which fork needs to link a child's VMA,
  // so no mapping appears behind the walk. Here every page-table lock below yields, and a fork
  // may meanwhile copy an entry still waiting into a VMA the walk's list predates: walk again
  // until no migration entry naming src is left, or that child would wait on it forever. Such an
  // entry can only appear in a VMA that joined the page's anon_vma behind the walk: when none
  // did, the walk that restored the entries was complete.
  for (let again = true; again;) {
    again = false;
    const w = rmapWalk(sys, src);
    const linked = w.linked;
    while (w.next()) {
      const vma = w.vma;
      const addr = w.addr;
      const mm = vma.mm;
      const t = mm.pgt.pteTable(addr);
      if (t === null) continue;
      const s = pteSlot(addr);
      if (!isMigrationEntry(t.words[s]) || t.words[s + 1] !== src) continue;
      again = true;
      yield* restoreMigrationPte(sys, vma, addr, src, dst, dstPrivate, dstAnon);
    }
    if (linked >= 0 && rmapLinkCount(sys, src) === linked) again = false;
  }
}

/** One step of removeMigrationPtesOfPage(): the entry at `addr`, if it still names src. */
function* restoreMigrationPte(
  sys: System,
  vma: Vma,
  addr: number,
  src: number,
  dst: number,
  dstPrivate: boolean,
  dstAnon: boolean,
): KGen {
  const phys = sys.phys;
  const mm = vma.mm;
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTable(addr);
  const s = pteSlot(addr);
  const lo = t === null ? 0 : t.words[s];
  if (t !== null && isMigrationEntry(lo) && t.words[s + 1] === src) {
    const type = swpType(lo);
    const writable = type === SwpType.MIGRATION_WRITE;
    const exclusive = type !== SwpType.MIGRATION_READ;
    let nlo: number;
    if (dstPrivate) {
      nlo = swpLo(writable ? SwpType.DEVICE_PRIVATE_WRITE : SwpType.DEVICE_PRIVATE_READ, lo & PTE_SOFT_DIRTY);
    } else {
      nlo = mkPte(vma, writable, (lo & PTE_DIRTY) !== 0) | (lo & PTE_SOFT_DIRTY);
      if ((lo & PTE_ACCESSED) === 0) nlo &= ~PTE_ACCESSED;
    }
    if (dstAnon) {
      if (exclusive) phys.flags[dst] |= PG.anonExclusive;
      else phys.flags[dst] &= ~PG.anonExclusive;
    }
    phys.get(dst);
    phys.mapcount[dst]++;
    folioAddLargeMapcountPte(phys, dst, mm);
    setPte(t, s, nlo, dst);
  }
  yield* mm.ptl.unlock();
}

/**
 * Replaces the present or device-private PMD leaf `lo` mapping the folio `head` by a PMD
 * migration entry (models set_pmd_migration_entry()); the caller holds the page-table lock and
 * has checked the entry. Returns false, changing nothing, when the folio is exclusive to this
 * mapping and may be DMA-pinned (folio_try_share_anon_rmap_pmd() refuses).
 */
function* setPmdMigrationEntry(
  sys: System,
  mm: Vma['mm'],
  addr: number,
  lo: number,
  head: number,
): KGen<boolean> {
  const phys = sys.phys;
  const pmd = pmdTableOf(mm, addr)!;
  const i = indexAt(addr, 1);
  const present = ptePresent(lo);
  const anonExclusive = (phys.flags[head] & PG.anon) !== 0 && (phys.flags[head] & PG.anonExclusive) !== 0;
  if (anonExclusive && phys.maybeDmaPinned(head)) return false;
  const writable = present ? (lo & PTE_WRITE) !== 0 : swpType(lo) === SwpType.DEVICE_PRIVATE_WRITE;
  if (present && (lo & PTE_DIRTY) !== 0) phys.flags[head] |= PG.dirty;
  phys.flags[head] &= ~PG.anonExclusive;
  const keep = lo & (PTE_SOFT_DIRTY | PTE_ACCESSED | PTE_DIRTY);
  mm.pgt.setUpperWords(pmd, i, swpPmdLo(migrationType(writable, anonExclusive), keep), head);
  if (present) yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, addr, addr + PMD_SIZE);
  // Like an unmap: the PMD's rmap and reference go (the RSS stays with the migration entry).
  const em = (phys.entireMapcount.get(head) ?? 1) - 1;
  if (em <= 0) phys.entireMapcount.delete(head);
  else phys.entireMapcount.set(head, em);
  folioSubLargeMapcount(phys, head, mm, 1);
  phys.put(head);
  return true;
}

/**
 * Models try_to_migrate() of one page: every remaining mapping (present PTE, device-private or
 * device-exclusive entry) becomes a migration entry under a CLEAR invalidation. A mapping of an exclusive
 * anonymous page that may be DMA-pinned is left alone (folio_try_share_anon_rmap_pte fails), so
 * the page stays mapped and the caller gives up on it.
 */
function* tryToMigrate(sys: System, folio: number): KGen {
  const phys = sys.phys;
  const nr = phys.folioNr(folio);
  if (nr > 1 && phys.entireMapcount.has(folio)) yield* tryToMigratePmds(sys, folio);
  for (let k = 0; k < nr; k++) yield* tryToMigratePage(sys, folio + k);
}

/** try_to_migrate() for the PMD mappings (present THP or device-private THP) of a large folio. */
function* tryToMigratePmds(sys: System, head: number): KGen {
  for (const w = rmapWalk(sys, head); w.next();) {
    const vma = w.vma;
    const addr = w.addr;
    if (addr % PMD_SIZE !== 0) continue;
    const mm = vma.mm;
    const pmd0 = pmdTableOf(mm, addr);
    const i = indexAt(addr, 1);
    if (pmd0 === null || pmd0.children[i] !== null || pmd0.words[2 * i + 1] !== head) continue;
    const lo0 = pmd0.words[2 * i];
    if (!pmdPresentHuge(lo0) && !isPmdDevicePrivate(lo0)) continue;
    const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, addr, addr + PMD_SIZE);
    yield* mmuNotifierInvalidateRangeStart(range);
    yield* mm.ptl.lock();
    const pmd = pmdTableOf(mm, addr);
    if (pmd !== null && pmd.children[i] === null && pmd.words[2 * i + 1] === head) {
      const lo = pmd.words[2 * i];
      if (pmdPresentHuge(lo) || isPmdDevicePrivate(lo)) yield* setPmdMigrationEntry(sys, mm, addr, lo, head);
    }
    yield* mm.ptl.unlock();
    yield* mmuNotifierInvalidateRangeEnd(range);
  }
}

/**
 * A PTE that maps its page for try_to_migrate_one(): a present one, or a PFN swap entry that
 * stands for a mapping (device-private, and device-exclusive since 6.15, which becomes a
 * read-only migration entry like a read-only device-private one).
 */
function mapsPage(lo: number): boolean {
  return ptePresent(lo) || isDevicePrivateEntry(lo) || isDeviceExclusiveEntry(lo);
}

/** try_to_migrate() for the PTE mappings of one page. */
function* tryToMigratePage(sys: System, page: number): KGen {
  const phys = sys.phys;
  for (const w = rmapWalk(sys, page); w.next();) {
    const vma = w.vma;
    const addr = w.addr;
    const mm = vma.mm;
    const t0 = mm.pgt.pteTable(addr);
    if (t0 === null) continue;
    const s = pteSlot(addr);
    const lo0 = t0.words[s];
    if (t0.words[s + 1] !== page || !mapsPage(lo0)) continue;
    const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, addr, addr + PAGE_SIZE);
    yield* mmuNotifierInvalidateRangeStart(range);
    yield* mm.ptl.lock();
    const t = mm.pgt.pteTable(addr);
    if (t !== null) {
      const lo = t.words[s];
      const present = ptePresent(lo);
      if (t.words[s + 1] === page && mapsPage(lo)) {
        const anonExclusive = (phys.flags[page] & PG.anonExclusive) !== 0;
        if (!(anonExclusive && phys.maybeDmaPinned(page))) {
          const writable = present ? (lo & PTE_WRITE) !== 0 : swpType(lo) === SwpType.DEVICE_PRIVATE_WRITE;
          if (present && (lo & PTE_DIRTY) !== 0) phys.flags[phys.head(page)] |= PG.dirty;
          phys.flags[page] &= ~PG.anonExclusive;
          setPte(
            t,
            s,
            swpLo(migrationType(writable, anonExclusive), lo & (PTE_SOFT_DIRTY | PTE_ACCESSED | PTE_DIRTY)),
            page,
          );
          if (present) yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, addr, addr + PAGE_SIZE);
          phys.mapcount[page]--;
          folioSubLargeMapcountPte(phys, page, mm);
          phys.put(page);
        }
      }
    }
    yield* mm.ptl.unlock();
    yield* mmuNotifierInvalidateRangeEnd(range);
  }
}

/**
 * Models migrate_vma_check_page(): false when something beyond the migration's own reference
 * (and the faulting thread's, for the fault page) holds the page: a pin, a GUP reference.
 */
function checkPage(sys: System, page: number, faultPage: number): boolean {
  const phys = sys.phys;
  const h = phys.head(page);
  const extra = 1 + (page === faultPage ? 1 : 0);
  return phys.refcount[h] - extra <= folioMapcount(phys, h);
}

/**
 * Models migrate_device_unmap(): unmaps what collection left mapped, gives up on pages still
 * mapped or held, and puts those back as they were. Returns how many entries can still migrate.
 */
function* migrateDeviceUnmap(
  sys: System,
  src: Float64Array,
  npages: number,
  faultPage: number,
): KGen<number> {
  const phys = sys.phys;
  let unmapped = 0;
  let restore = 0;
  for (let i = 0; i < npages;) {
    const page = migratePfnToPage(src[i]);
    if (page < 0) {
      if (has(src[i], MIGRATE_PFN_MIGRATE)) unmapped++;
      i++;
      continue;
    }
    // A large folio is one entry (its tail entries are empty): mark it COMPOUND and skip them.
    const nr = phys.folioNr(page);
    if (nr > 1 && !has(src[i], MIGRATE_PFN_COMPOUND)) src[i] += MIGRATE_PFN_COMPOUND;
    i += nr;
    if (folioMapcount(phys, page) > 0) yield* tryToMigrate(sys, phys.head(page));
    if (folioMapcount(phys, page) > 0 || !checkPage(sys, page, faultPage)) {
      src[i - nr] = without(src[i - nr], MIGRATE_PFN_MIGRATE);
      restore++;
      continue;
    }
    unmapped++;
  }
  for (let i = 0; i < npages && restore > 0; i++) {
    const page = migratePfnToPage(src[i]);
    if (page < 0 || has(src[i], MIGRATE_PFN_MIGRATE)) continue;
    yield* removeMigrationPtes(sys, page, page);
    src[i] = 0;
    if (page !== faultPage) folioUnlock(sys, page);
    phys.put(page);
    restore--;
  }
  sys.trace.count('migrate.unmapped', unmapped);
  return unmapped;
}

// ---------------------------------------------------------------------------------------------
// migrate_vma_setup(): collection.

/** Per-walk state of migrate_vma_collect(). */
interface Collect {
  readonly args: MigrateVma;
  readonly sys: System;
}

/** Models migrate_vma_collect_hole() / _skip(): pages with no PTE table. */
function collectHole(c: Collect, addr: number, end: number, skip: boolean): void {
  const a = c.args;
  const anon = !skip && a.vma.isAnon();
  if (anon && coversWholePmd(a, addr, end)) {
    // One compound entry for the whole PMD; the rest stay empty in case it is split later.
    a.src[a.npages] = MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND;
    a.dst[a.npages] = 0;
    a.npages++;
    a.cpages++;
    collectHole(c, addr + PAGE_SIZE, end, true);
    return;
  }
  for (; addr < end; addr += PAGE_SIZE) {
    a.src[a.npages] = anon ? MIGRATE_PFN_MIGRATE : 0;
    a.dst[a.npages] = 0;
    a.npages++;
    if (anon) a.cpages++;
  }
}

/** Whether [addr, end) is exactly one PMD and the caller asked for THP migration. */
function coversWholePmd(a: MigrateVma, addr: number, end: number): boolean {
  return (a.flags & MIGRATE_VMA_SELECT_COMPOUND) !== 0 && addr % PMD_SIZE === 0 && end - addr === PMD_SIZE;
}

/**
 * Splits the large device-private folio a collected entry belongs to, so it can move alone
 * (split_folio(), or migrate_vma_split_folio() for the folio of the faulting page, which the
 * fault holds locked and referenced: after the split that lock and reference belong to the
 * faulting page's folio). Only possible when nothing but its PTE mappings (and that fault) holds
 * it.
 */
function splitForMigration(sys: System, page: number, faultPage: number): boolean {
  const phys = sys.phys;
  const h = phys.head(page);
  if (phys.order[h] === 0) return true;
  const faultFolio = faultPage >= 0 && phys.head(faultPage) === h;
  if (phys.entireMapcount.has(h) || (phys.flags[h] & PG.anon) === 0) return false;
  const held = faultFolio ? 1 : 0;
  if (phys.pinCount(h) > 0 || phys.refcount[h] !== folioMapcount(phys, h) + held) return false;
  if (!faultFolio && (phys.flags[h] & PG.locked) !== 0) return false;
  const n = 1 << phys.order[h];
  phys.splitFolio(h, 0);
  if (faultFolio) {
    phys.refcount[faultPage]++;
    folioSplitUnlock(sys, h, n, faultPage);
  }
  sys.trace.count('thp.split_folio');
  return phys.isUsed(page) && phys.refcount[page] > 0;
}

/**
 * migrate_vma_split_folio() of a large folio in RAM (or device-coherent memory) that the walk met
 * mapped by a PTE, run with the PTL dropped, as the kernel runs it. The caller took a reference on
 * it under the PTL (the faulting page's folio already has the fault's, and its lock); it is locked
 * here. As split_folio() does, every PMD that maps it elsewhere is split first (unmap_folio()),
 * and the folio is split only if then nothing but its mappings and that reference hold it; its
 * zero-filled pages then map the zero page (RMP_USE_SHARED_ZEROPAGE, not for a device-private
 * folio, which splitForMigration() splits). After the split the faulting page holds the fault's
 * lock and reference; otherwise the lock and the reference are dropped. Returns whether it was
 * split.
 */
function* splitPteMappedFolio(sys: System, h: number, faultPage: number): KGen<boolean> {
  const phys = sys.phys;
  const faultFolio = faultPage >= 0 && phys.head(faultPage) === h;
  if (!faultFolio) yield* folioLock(sys, h);
  // can_split_folio(), asked again after the PMDs are split as folio_ref_freeze() would.
  const splittable = (): boolean =>
    phys.order[h] > 0 &&
    (phys.flags[h] & PG.anon) !== 0 &&
    phys.pinCount(h) === 0 &&
    phys.refcount[h] === folioMapcount(phys, h) + 1;
  let split = splittable();
  if (split && phys.entireMapcount.has(h)) {
    yield* splitPmdMappings(sys, h);
    split = !phys.entireMapcount.has(h) && splittable();
  }
  if (!split) {
    if (!faultFolio) {
      folioUnlock(sys, h);
      phys.put(h);
    }
    return false;
  }
  const n = 1 << phys.order[h];
  // The reference taken for the split goes with it: each page is referenced by its mappings.
  splitMappedFolio(sys, h);
  if (faultFolio) {
    phys.refcount[faultPage]++;
    folioSplitUnlock(sys, h, n, faultPage);
  } else {
    folioSplitUnlock(sys, h, n, h);
    folioUnlock(sys, h);
  }
  for (let k = 0; k < n; k++) yield* mapUnusedToZeropage(sys, h + k);
  return true;
}

/** What migrate_vma_collect_pmd() decides for one PTE, before trying to take the page. */
function collectChoice(c: Collect, lo: number, hi: number): number {
  const a = c.args;
  const sys = c.sys;
  const phys = sys.phys;
  if (pteNone(lo, hi)) {
    if (!a.vma.isAnon()) return 0;
    a.cpages++;
    return MIGRATE_PFN_MIGRATE;
  }
  if (!ptePresent(lo)) {
    if (!isDevicePrivateEntry(lo)) return 0;
    const pm = phys.pagemapOf(hi);
    if (
      (a.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) === 0 ||
      pm === null ||
      pm.hooks.owner !== a.pgmapOwner
    ) {
      return 0;
    }
    return (
      migratePfn(hi) +
      MIGRATE_PFN_MIGRATE +
      (swpType(lo) === SwpType.DEVICE_PRIVATE_WRITE ? MIGRATE_PFN_WRITE : 0)
    );
  }
  if (phys.isZeroPfn(hi)) {
    if ((a.flags & MIGRATE_VMA_SELECT_SYSTEM) === 0 || !a.vma.isAnon()) return 0;
    a.cpages++;
    return MIGRATE_PFN_MIGRATE;
  }
  const page = vmNormalPage(sys, a.vma, lo, hi);
  if (page < 0) return 0;
  const pm = phys.pagemapOf(page);
  if (pm === null) {
    if ((a.flags & MIGRATE_VMA_SELECT_SYSTEM) === 0) return 0;
  } else if (pm.hooks.type === 'coherent') {
    if ((a.flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) === 0 || pm.hooks.owner !== a.pgmapOwner) return 0;
  } else {
    return 0;
  }
  return migratePfn(page) + MIGRATE_PFN_MIGRATE + ((lo & PTE_WRITE) !== 0 ? MIGRATE_PFN_WRITE : 0);
}

/** Models migrate_vma_collect_pmd() for the PTE table covering [addr, end). */
function* collectPtes(c: Collect, addr: number, end: number): KGen {
  const a = c.args;
  const sys = c.sys;
  const phys = sys.phys;
  const mm = a.vma.mm;
  yield* mm.ptl.lock();
  let t = mm.pgt.pteTable(addr);
  if (t === null) {
    yield* mm.ptl.unlock();
    collectHole(c, addr, end, false);
    return;
  }
  let flushed = false;
  for (; addr < end; addr += PAGE_SIZE) {
    const s = pteSlot(addr);
    const lo = t.words[s];
    const hi = t.words[s + 1];
    const choice = collectChoice(c, lo, hi);
    let mpfn = choice;
    const page = migratePfnToPage(choice);
    if (page >= 0) {
      mpfn = 0;
      const tried = phys.mapping[page] !== 0;
      const head = phys.head(page);
      if (tried && phys.order[head] > 0 && phys.pagemapOf(head)?.hooks.type !== 'private') {
        // migrate_vma_split_folio() runs with the PTL dropped. The reference it takes is taken
        // before the PTL goes, while the PTE still holds the folio.
        if (a.faultPage < 0 || phys.head(a.faultPage) !== head) phys.get(head);
        yield* mm.ptl.unlock();
        if (!(yield* splitPteMappedFolio(sys, head, a.faultPage))) {
          // The rest of the range under this PMD is skipped (migrate_vma_collect_skip()), pages
          // of other folios included, once what was unmapped is flushed.
          if (flushed) yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, a.start, a.end);
          collectHole(c, addr, end, true);
          return;
        }
        // The walk takes this entry again.
        yield* mm.ptl.lock();
        t = mm.pgt.pteTable(addr);
        if (t === null) {
          collectHole(c, addr, end, false);
          break;
        }
        addr -= PAGE_SIZE;
        continue;
      }
      const split = tried && splitForMigration(sys, page, a.faultPage);
      if (tried && !split && phys.order[head] > 0) {
        // migrate_vma_split_folio() failed: the rest of the range under this PMD is skipped
        // (migrate_vma_collect_skip()), pages of other folios included.
        collectHole(c, addr, end, true);
        break;
      }
      if (split) {
        phys.get(page);
        if (page !== a.faultPage && !folioTrylock(sys, page)) {
          phys.put(page);
        } else {
          const anonExclusive =
            (phys.flags[phys.head(page)] & PG.anon) !== 0 && (phys.flags[page] & PG.anonExclusive) !== 0;
          if (anonExclusive && phys.maybeDmaPinned(page)) {
            // folio_try_share_anon_rmap_pte() refuses: the PTE stays, the page is not collected.
            if (page !== a.faultPage) folioUnlock(sys, page);
            phys.put(page);
          } else {
            const writable = has(choice, MIGRATE_PFN_WRITE);
            mpfn = choice;
            a.cpages++;
            if (ptePresent(lo) && (lo & PTE_DIRTY) !== 0) phys.flags[phys.head(page)] |= PG.dirty;
            phys.flags[page] &= ~PG.anonExclusive;
            const keep = lo & (PTE_SOFT_DIRTY | PTE_ACCESSED | PTE_DIRTY);
            setPte(t, s, swpLo(migrationType(writable, anonExclusive), keep), page);
            if (ptePresent(lo)) flushed = true;
            // Like an unmap: the mapping's rmap and reference go; the reference taken above stays.
            phys.mapcount[page]--;
            folioSubLargeMapcountPte(phys, page, mm);
            phys.put(page);
          }
        }
      }
    }
    a.src[a.npages] = mpfn;
    a.dst[a.npages] = 0;
    a.npages++;
  }
  if (flushed) yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, a.start, a.end);
  yield* mm.ptl.unlock();
}

/**
 * Models migrate_vma_collect_huge_pmd() for a PMD leaf covering [addr, end). Returns true when
 * the range is dealt with (collected as one compound entry, or skipped), false when the PMD was
 * split and its PTEs are to be walked.
 */
function* collectHugePmd(c: Collect, addr: number, end: number): KGen<boolean> {
  const a = c.args;
  const sys = c.sys;
  const phys = sys.phys;
  const mm = a.vma.mm;
  const pmd = pmdTableOf(mm, addr)!;
  const i = indexAt(addr, 1);
  const lo = pmd.words[2 * i];
  const head = pmd.words[2 * i + 1];
  let write = 0;
  if (pmdPresentHuge(lo)) {
    if ((a.flags & MIGRATE_VMA_SELECT_SYSTEM) === 0) {
      collectHole(c, addr, end, true);
      return true;
    }
    // The huge zero page is a hole to be filled (migrate_vma_insert_*page replace it).
    if (phys.isZeroPfn(head)) {
      collectHole(c, addr, end, false);
      return true;
    }
    if ((lo & PTE_WRITE) !== 0) write = MIGRATE_PFN_WRITE;
  } else if (isPmdDevicePrivate(lo)) {
    const pm = phys.pagemapOf(head);
    if (
      (a.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) === 0 ||
      pm === null ||
      pm.hooks.owner !== a.pgmapOwner
    ) {
      collectHole(c, addr, end, true);
      return true;
    }
    if (swpType(lo) === SwpType.DEVICE_PRIVATE_WRITE) write = MIGRATE_PFN_WRITE;
  } else {
    // A PMD migration entry: another migration owns the folio.
    collectHole(c, addr, end, true);
    return true;
  }
  const isFault = a.faultPage >= 0 && phys.head(a.faultPage) === head;
  phys.get(head);
  if (!isFault && !folioTrylock(sys, head)) {
    phys.put(head);
    collectHole(c, addr, end, true);
    return true;
  }
  if (coversWholePmd(a, addr, end)) {
    yield* mm.ptl.lock();
    let done = false;
    if (pmd.children[i] === null && pmd.words[2 * i] === lo && pmd.words[2 * i + 1] === head) {
      done = yield* setPmdMigrationEntry(sys, mm, addr, lo, head);
    }
    yield* mm.ptl.unlock();
    if (done) {
      a.src[a.npages] = migratePfn(head) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_COMPOUND + write;
      a.dst[a.npages] = 0;
      a.npages++;
      a.cpages++;
      collectHole(c, addr + PAGE_SIZE, end, true);
      sys.trace.count('migrate.collect_thp');
      return true;
    }
  }
  // Fallback: the PMD is split and the folio goes page by page (split when its page is met).
  if (!isFault) folioUnlock(sys, head);
  phys.put(head);
  yield* splitHugePmd(a.vma, addr - (addr % PMD_SIZE));
  return false;
}

/** Models migrate_vma_collect(): the walk under one MIGRATE invalidation carrying the owner. */
function* migrateVmaCollect(args: MigrateVma): KGen {
  const mm = args.vma.mm;
  const c: Collect = { args, sys: mm.sys };
  const range = mmuNotifierRangeInitOwner(MMU_NOTIFY.MIGRATE, 0, mm, args.start, args.end, args.pgmapOwner);
  yield* mmuNotifierInvalidateRangeStart(range);
  for (let addr = args.start; addr < args.end;) {
    const next = Math.min(args.end, pmdBase(addr) + PMD_SIZE);
    if (pmdIsLeaf(pmdTableOf(mm, addr), addr) && (yield* collectHugePmd(c, addr, next))) {
      addr = next;
      continue;
    }
    if (mm.pgt.pteTable(addr) === null) collectHole(c, addr, next, false);
    else yield* collectPtes(c, addr, next);
    addr = next;
  }
  yield* mmuNotifierInvalidateRangeEnd(range);
  args.end = args.start + args.npages * PAGE_SIZE;
}

/**
 * Models migrate_vma_setup(). The caller holds the mmap lock (read is enough). Returns 0 with
 * src[] filled (cpages entries still marked MIGRATE) or -EINVAL for a bad request.
 */
export function* migrateVmaSetup(args: MigrateVma): KGen<number> {
  const vma = args.vma as Vma | null;
  const start = args.start - (args.start % PAGE_SIZE);
  const end = args.end - (args.end % PAGE_SIZE);
  const nrPages = (end - start) / PAGE_SIZE;
  args.start = start;
  args.end = end;
  if (vma === null || (vma.flags & (VM.HUGETLB | VM_SPECIAL)) !== 0) return -Errno.EINVAL;
  if (nrPages <= 0) return -Errno.EINVAL;
  if (start < vma.start || start >= vma.end) return -Errno.EINVAL;
  if (end <= vma.start || end > vma.end) return -Errno.EINVAL;
  if ((args.src as Float64Array | null) === null || (args.dst as Float64Array | null) === null)
    return -Errno.EINVAL;
  if (args.src.length < nrPages || args.dst.length < nrPages) return -Errno.EINVAL;
  const sys = vma.mm.sys;
  // Before v6.1 migrate_vma had no fault_page: the fault path held nothing the collection had
  // to allow for, and a driver serving a fault passed none.
  if (sys.contracts.devicePrivateFault === 'v6.0') args.faultPage = -1;
  if (args.faultPage >= 0) {
    if (sys.phys.pagemapOf(args.faultPage)?.hooks.type !== 'private') return -Errno.EINVAL;
    if (!folioTestLocked(sys, args.faultPage)) return -Errno.EINVAL;
  }
  args.src.fill(0, 0, nrPages);
  args.dst.fill(0, 0, nrPages);
  args.cpages = 0;
  args.npages = 0;
  sys.trace.emit('migrate', 'migrate_vma_setup', 'B', { start, end, owner: String(args.pgmapOwner) });
  yield* migrateVmaCollect(args);
  if (args.cpages > 0) args.cpages = yield* migrateDeviceUnmap(sys, args.src, args.npages, args.faultPage);
  sys.trace.count('migrate.setup');
  sys.trace.count('migrate.collected', args.cpages);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// migrate_vma_pages(): commit.

/**
 * Models migrate_vma_insert_page(): a hole or zero page in an anonymous VMA gets the new page
 * mapped directly. Returns the new src value: MIGRATE on success, the old value without MIGRATE
 * when the slot changed meanwhile or the page cannot be mapped there.
 */
function* migrateVmaInsertPage(args: MigrateVma, addr: number, page: number, src: number): KGen<number> {
  const vma = args.vma;
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  const abort = without(src, MIGRATE_PFN_MIGRATE);
  if (!vma.isAnon()) return abort;
  const pm = phys.pagemapOf(page);
  if (pm !== null && pm.hooks.type !== 'private' && pm.hooks.type !== 'coherent') return abort;
  const pmd = pmdTableOf(mm, addr);
  if (pmdIsLeaf(pmd, addr)) {
    // Only the huge zero page may be replaced, after splitting it into zero-page PTEs.
    const i = indexAt(addr, 1);
    if (!pmdPresentHuge(pmd!.words[2 * i]) || !phys.isZeroPfn(pmd!.words[2 * i + 1])) return abort;
    yield* splitHugePmd(vma, pmdBase(addr));
    if (pmdIsLeaf(pmdTableOf(mm, addr), addr)) return abort;
  }
  anonVmaPrepare(sys, vma);
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTableAlloc(addr);
  const s = pteSlot(addr);
  const lo = t.words[s];
  const hi = t.words[s + 1];
  let replacingZero = false;
  if (ptePresent(lo)) {
    if (!phys.isZeroPfn(hi)) {
      yield* mm.ptl.unlock();
      return abort;
    }
    replacingZero = true;
  } else if (!pteNone(lo, hi)) {
    yield* mm.ptl.unlock();
    return abort;
  }
  const writable = (vma.flags & VM.WRITE) !== 0;
  let nlo: number;
  if (pm?.hooks.type === 'private') {
    nlo = swpLo(writable ? SwpType.DEVICE_PRIVATE_WRITE : SwpType.DEVICE_PRIVATE_READ);
  } else {
    nlo = mkPte(vma, writable, writable);
  }
  addNewAnonRmap(sys, vma, page, addr, false);
  if (pm !== null) phys.flags[page] &= ~PG.lru;
  phys.get(page);
  setPte(t, s, nlo, page);
  if (replacingZero) yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, addr, addr + PAGE_SIZE);
  yield* mm.ptl.unlock();
  return MIGRATE_PFN_MIGRATE;
}

/**
 * Models migrate_vma_insert_huge_pmd_page(): an empty (or huge-zero) PMD of an anonymous VMA gets
 * the new large folio mapped by one PMD: a device-private PMD entry, or a present PMD for system
 * or device-coherent memory. Returns false when the PMD cannot take it (the caller then clears
 * MIGRATE for the whole folio).
 */
function* migrateVmaInsertHugePmdPage(args: MigrateVma, addr: number, page: number): KGen<boolean> {
  const vma = args.vma;
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  if (!vma.isAnon() || addr % PMD_SIZE !== 0 || addr < vma.start || addr + PMD_SIZE > vma.end) return false;
  if (phys.folioNr(page) !== HPAGE_PMD_NR) return false;
  const pm = phys.pagemapOf(page);
  if (pm !== null && pm.hooks.type !== 'private' && pm.hooks.type !== 'coherent') return false;
  anonVmaPrepare(sys, vma);
  const writable = (vma.flags & VM.WRITE) !== 0;
  const lo =
    pm?.hooks.type === 'private'
      ? swpPmdLo(writable ? SwpType.DEVICE_PRIVATE_WRITE : SwpType.DEVICE_PRIVATE_READ)
      : (mkPte(vma, writable, writable) | PTE_HUGE) >>> 0;
  yield* mm.ptl.lock();
  const pmd = mm.pgt.pmdTableAlloc(addr);
  const i = indexAt(addr, 1);
  const curLo = pmd.words[2 * i];
  const curHi = pmd.words[2 * i + 1];
  let flush = false;
  if (pmd.children[i] !== null) {
    yield* mm.ptl.unlock();
    return false;
  }
  if (curLo !== 0 || curHi !== 0) {
    if (!pmdPresentHuge(curLo) || !phys.isZeroPfn(curHi)) {
      yield* mm.ptl.unlock();
      return false;
    }
    flush = true;
  }
  addNewAnonRmap(sys, vma, page, addr, true);
  if (pm !== null) phys.flags[page] &= ~PG.lru;
  phys.get(page);
  mm.pgt.setUpperWords(pmd, i, lo, page);
  if (flush) yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, addr, addr + PMD_SIZE);
  yield* mm.ptl.unlock();
  sys.trace.count('migrate.insert_thp');
  return true;
}

/**
 * Models migrate_vma_split_unmapped_folio(): the driver gave small pages for a THP source, so the
 * source folio (unmapped, locked, held only by the migration) is split: its PMD migration
 * entries become PTE migration entries and src[] gets one entry per page. Returns false if the
 * folio cannot be split.
 */
function* migrateVmaSplitUnmappedFolio(args: MigrateVma, idx: number, head: number): KGen<boolean> {
  const sys = args.vma.mm.sys;
  const phys = sys.phys;
  const nr = phys.folioNr(head);
  if (idx + nr > args.npages) return false;
  for (const w = rmapWalk(sys, head); w.next();) {
    const vma = w.vma;
    const addr = w.addr;
    if (addr % PMD_SIZE !== 0) continue;
    const pmd = pmdTableOf(vma.mm, addr);
    const i = indexAt(addr, 1);
    if (pmd === null || pmd.children[i] !== null) continue;
    if (isPmdMigrationEntry(pmd.words[2 * i]) && pmd.words[2 * i + 1] === head)
      yield* splitHugePmd(vma, addr);
  }
  // Each new folio keeps the migration's reference and lock.
  phys.splitFolio(head, 1);
  const flags = migratePfnFlags(without(args.src[idx], MIGRATE_PFN_COMPOUND));
  for (let k = 0; k < nr; k++) args.src[idx + k] = migratePfn(head + k) - MIGRATE_PFN_VALID + flags;
  sys.trace.count('migrate.split_unmapped_thp');
  return true;
}

/**
 * folio_migrate_mapping() + folio_migrate_flags() for one source folio and its destination:
 * false when the move cannot be committed.
 */
function migrateFolioMapping(sys: System, page: number, newpage: number, args: MigrateVma | null): boolean {
  const phys = sys.phys;
  const h = phys.head(page);
  const anon = (phys.flags[h] & PG.anon) !== 0;
  // Only anonymous memory moves: a page-cache page (shmem, files) has an address_space whose
  // entry would have to be replaced, which device memory cannot hold, and which the model does
  // not do for RAM-to-RAM moves either.
  if (!anon) return false;
  // folio_migrate_mapping(): nobody may have taken a reference since the unmap.
  const extra = args !== null && args.faultPage === page ? 1 : 0;
  if (phys.refcount[h] !== 1 + extra) return false;
  // The new folio takes the old one's identity.
  const n = phys.folioNr(newpage);
  for (let k = 0; k < n; k++) {
    phys.mapping[newpage + k] = phys.mapping[h];
    phys.setIndex(newpage + k, phys.getIndex(h) + k);
  }
  const carry = PG.anon | PG.swapbacked | PG.dirty | PG.uptodate;
  phys.flags[newpage] |= phys.flags[h] & carry;
  if (phys.isDevice(newpage)) phys.flags[newpage] &= ~PG.lru;
  else phys.flags[newpage] |= PG.lru;
  return true;
}

/** Models __migrate_device_pages(); `args` is null for the by-PFN (eviction) variant. */
function* migrateDevicePagesImpl(
  sys: System,
  src: Float64Array,
  dst: Float64Array,
  npages: number,
  args: MigrateVma | null,
): KGen {
  let range: MmuNotifierRange | null = null;
  for (let i = 0; i < npages;) {
    let nr = 1;
    const newpage = migratePfnToPage(dst[i]);
    const page = migratePfnToPage(src[i]);
    if (newpage < 0) {
      src[i] = without(src[i], MIGRATE_PFN_MIGRATE);
      i++;
      continue;
    }
    if (page < 0) {
      if (!has(src[i], MIGRATE_PFN_MIGRATE) || args === null) {
        src[i] = without(src[i], MIGRATE_PFN_MIGRATE);
        i++;
        continue;
      }
      const addr = args.start + i * PAGE_SIZE;
      if (range === null) {
        range = mmuNotifierRangeInitOwner(
          MMU_NOTIFY.MIGRATE,
          0,
          args.vma.mm,
          addr,
          args.end,
          args.pgmapOwner,
        );
        yield* mmuNotifierInvalidateRangeStart(range);
      }
      if (has(src[i], MIGRATE_PFN_COMPOUND) && !has(dst[i], MIGRATE_PFN_COMPOUND)) {
        // A compound hole filled with small pages: each page of the PMD is inserted alone.
        nr = HPAGE_PMD_NR;
        src[i] = without(src[i], MIGRATE_PFN_COMPOUND);
        for (let j = 0; j < nr && i + j < npages; j++) {
          const d = migratePfnToPage(dst[i + j]);
          if (d < 0) {
            src[i + j] = without(src[i + j], MIGRATE_PFN_MIGRATE);
            continue;
          }
          const sv = has(src[i + j], MIGRATE_PFN_MIGRATE) ? src[i + j] : src[i + j] + MIGRATE_PFN_MIGRATE;
          src[i + j] = yield* migrateVmaInsertPage(args, addr + j * PAGE_SIZE, d, sv);
        }
      } else if (has(dst[i], MIGRATE_PFN_COMPOUND)) {
        if (!(yield* migrateVmaInsertHugePmdPage(args, addr, newpage))) {
          for (let j = 0; j < HPAGE_PMD_NR && i + j < npages; j++) {
            src[i + j] = without(src[i + j], MIGRATE_PFN_MIGRATE);
          }
        }
      } else {
        src[i] = yield* migrateVmaInsertPage(args, addr, newpage, src[i]);
      }
      i += nr;
      continue;
    }
    if (!has(src[i], MIGRATE_PFN_MIGRATE)) {
      i++;
      continue;
    }
    if (has(src[i], MIGRATE_PFN_COMPOUND) && !has(dst[i], MIGRATE_PFN_COMPOUND)) {
      // Small destination pages for a THP: split the source and move page by page.
      nr = sys.phys.folioNr(page);
      if (args === null || !(yield* migrateVmaSplitUnmappedFolio(args, i, page))) {
        src[i] = without(without(src[i], MIGRATE_PFN_MIGRATE), MIGRATE_PFN_COMPOUND);
        i += nr;
        continue;
      }
    } else if (has(dst[i], MIGRATE_PFN_COMPOUND) && !has(src[i], MIGRATE_PFN_COMPOUND)) {
      src[i] = without(src[i], MIGRATE_PFN_MIGRATE);
      i++;
      continue;
    }
    for (let j = 0; j < nr && i + j < npages; j++) {
      const sp = migratePfnToPage(src[i + j]);
      const np = migratePfnToPage(dst[i + j]);
      if (sp < 0 || np < 0 || !migrateFolioMapping(sys, sp, np, args)) {
        src[i + j] = without(src[i + j], MIGRATE_PFN_MIGRATE);
      }
    }
    i += nr;
  }
  if (range !== null) yield* mmuNotifierInvalidateRangeEnd(range);
}

/** Models migrate_vma_pages(): commits the moves for which the driver supplied a destination. */
export function* migrateVmaPages(args: MigrateVma): KGen {
  yield* migrateDevicePagesImpl(args.vma.mm.sys, args.src, args.dst, args.npages, args);
}

// ---------------------------------------------------------------------------------------------
// migrate_vma_finalize(): migration entries become real mappings again.

function unlockIfLocked(sys: System, pfn: number): void {
  if (folioTestLocked(sys, pfn)) folioUnlock(sys, pfn);
}

/** Models __migrate_device_finalize(). */
function* migrateDeviceFinalizeImpl(
  sys: System,
  src: Float64Array,
  dst: Float64Array,
  npages: number,
  faultPage: number,
): KGen {
  const phys = sys.phys;
  const batch = sys.beginDeviceFreeBatch();
  for (let i = 0; i < npages; i++) {
    const dstPage = migratePfnToPage(dst[i]);
    const page = migratePfnToPage(src[i]);
    if (page < 0) {
      if (dstPage >= 0) {
        unlockIfLocked(sys, dstPage);
        phys.put(dstPage);
      }
      continue;
    }
    let newpage = dstPage;
    if (!has(src[i], MIGRATE_PFN_MIGRATE) || dstPage < 0) {
      if (dstPage >= 0) {
        unlockIfLocked(sys, dstPage);
        phys.put(dstPage);
      }
      newpage = page;
    }
    yield* removeMigrationPtes(sys, page, newpage);
    if (page !== faultPage) unlockIfLocked(sys, page);
    // The reference the migration held: for a page that moved this is the last one.
    phys.put(page);
    if (newpage !== page) {
      unlockIfLocked(sys, newpage);
      phys.put(newpage);
    }
  }
  sys.endDeviceFreeBatch(batch);
  sys.migrationWq.wakeUpAll();
}

/** Models migrate_vma_finalize(). */
export function* migrateVmaFinalize(args: MigrateVma): KGen {
  const sys = args.vma.mm.sys;
  yield* migrateDeviceFinalizeImpl(sys, args.src, args.dst, args.npages, args.faultPage);
  sys.trace.count('migrate.finalize');
  sys.trace.emit('migrate', 'migrate_vma_setup', 'E', { start: args.start, end: args.end });
}

// ---------------------------------------------------------------------------------------------
// The by-PFN variants drivers use to evict device memory (no VMA, no holes).

/** Takes a reference and the lock of a device page for eviction; false if it is idle or busy. */
function grabForEviction(sys: System, pfn: number): boolean {
  const phys = sys.phys;
  if (pfn < 0 || pfn >= phys.nr || !phys.isUsed(pfn)) return false;
  const h = phys.head(pfn);
  if (h !== pfn || phys.refcount[h] === 0) return false;
  phys.get(h);
  if (!folioTrylock(sys, h)) {
    phys.put(h);
    return false;
  }
  return true;
}

/**
 * A grabbed large device folio is one COMPOUND entry whose following entries are empty; returns
 * how many entries that covers beyond the first.
 */
function compoundEntry(sys: System, src: Float64Array, i: number, pfn: number, npages: number): number {
  if (src[i] === 0 || sys.phys.order[pfn] === 0) return 0;
  const nr = sys.phys.folioNr(pfn);
  src[i] += MIGRATE_PFN_COMPOUND;
  for (let j = 1; j < nr && i + j < npages; j++) src[i + j] = 0;
  return nr - 1;
}

/**
 * Models migrate_device_range(): collects `npages` device pages from `startPfn` for eviction
 * (idle and locked pages are left out), unmapping them to migration entries. Returns 0.
 */
export function* migrateDeviceRange(
  sys: System,
  src: Float64Array,
  startPfn: number,
  npages: number,
): KGen<number> {
  yield { kind: 'step', label: 'migrate_device_range' };
  for (let i = 0; i < npages; i++) {
    const pfn = startPfn + i;
    src[i] = grabForEviction(sys, pfn) ? migratePfn(pfn) + MIGRATE_PFN_MIGRATE : 0;
    i += compoundEntry(sys, src, i, pfn, npages);
  }
  yield* migrateDeviceUnmap(sys, src, npages, -1);
  return 0;
}

/** Models migrate_device_pfns(): like migrate_device_range() for a list of PFNs given in src[]. */
export function* migrateDevicePfns(sys: System, src: Float64Array, npages: number): KGen<number> {
  yield { kind: 'step', label: 'migrate_device_pfns' };
  for (let i = 0; i < npages; i++) {
    const pfn = src[i];
    src[i] = grabForEviction(sys, pfn) ? migratePfn(pfn) + MIGRATE_PFN_MIGRATE : 0;
    i += compoundEntry(sys, src, i, pfn, npages);
  }
  yield* migrateDeviceUnmap(sys, src, npages, -1);
  return 0;
}

/** Models migrate_device_pages(). */
export function* migrateDevicePages(sys: System, src: Float64Array, dst: Float64Array, npages: number): KGen {
  yield* migrateDevicePagesImpl(sys, src, dst, npages, null);
}

/** Models migrate_device_finalize(). */
export function* migrateDeviceFinalize(
  sys: System,
  src: Float64Array,
  dst: Float64Array,
  npages: number,
): KGen {
  yield* migrateDeviceFinalizeImpl(sys, src, dst, npages, -1);
}

/**
 * Models migrate_device_coherent_folio() as check_and_migrate_movable_folios() uses it for a
 * FOLL_LONGTERM pin: moves one device-coherent page to a new RAM page. Returns the new PFN (now
 * mapped where the old page was), -EBUSY when the page could not be isolated, -ENOMEM.
 */
export function* migrateDeviceCoherentPage(sys: System, _vma: Vma, _addr: number, pfn: number): KGen<number> {
  const phys = sys.phys;
  const page = phys.head(pfn);
  phys.get(page);
  yield* folioLock(sys, page);
  const src = new Float64Array([migratePfn(page) + MIGRATE_PFN_MIGRATE]);
  const dst = new Float64Array(1);
  yield* migrateDeviceUnmap(sys, src, 1, -1);
  if (!has(src[0], MIGRATE_PFN_MIGRATE)) return -Errno.EBUSY;
  const dpfn = yield* allocPageReclaim(sys, 0, 'migrate_device_coherent');
  if (dpfn >= 0) {
    folioTrylock(sys, dpfn);
    phys.copyPage(dpfn, page);
    dst[0] = migratePfn(dpfn) + (has(src[0], MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
  }
  yield* migrateDevicePagesImpl(sys, src, dst, 1, null);
  const moved = dpfn >= 0 && has(src[0], MIGRATE_PFN_MIGRATE);
  yield* migrateDeviceFinalizeImpl(sys, src, dst, 1, -1);
  sys.trace.count('migrate.coherent_longterm');
  if (dpfn < 0) return -Errno.ENOMEM;
  return moved ? dpfn : -Errno.EBUSY;
}
