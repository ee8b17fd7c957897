import { type LeafTable, type UpperTable, indexAt } from '../../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, ULONG_MAX } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Inode, type MmStruct, VM, type Vma } from '../mm/mm_types.ts';
import { PG } from '../mm/page_alloc.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from '../mm/mmu_notifier.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SOFT_DIRTY,
  PTE_SPECIAL,
  PTE_WRITE,
  isDeviceExclusiveEntry,
  isGuardMarker,
  isDevicePrivateEntry,
  isMigrationEntry,
  isPfnSwapEntry,
  isSwapEntry,
  pteNone,
  ptePresent,
} from '../mm/pgtable.ts';
import { mmapWriteLockKillable } from '../mm/mmap_lock.ts';
import { pteSlot } from '../mm/pte.ts';
import { pageMapcount } from '../mm/rmap.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';

/** One /proc/pid/pagemap entry, decoded. */
export interface PagemapEntry {
  /** PM_PRESENT */
  readonly present: boolean;
  /** PM_SWAP: swap, migration, device-private and device-exclusive entries all report as swapped. */
  readonly swap: boolean;
  readonly pfn: number;
  readonly kind:
    | 'none'
    | 'ram'
    | 'zero'
    | 'device-private'
    | 'device-coherent'
    | 'device-exclusive'
    | 'migration'
    | 'swap'
    | 'guard'
    | 'special';
  /** PM_SOFT_DIRTY */
  readonly softDirty: boolean;
  /** PM_MMAP_EXCLUSIVE: a present page mapped exactly once. */
  readonly exclusive: boolean;
  /** PM_FILE: the page (present, or behind a migration or device entry) is not anonymous. */
  readonly file: boolean;
  /**
   * The page is part of a THP or a hugetlb page, whether a PMD or PTEs map it (kpageflags'
   * KPF_THP / KPF_HUGE, not a pagemap bit). Whether a PMD maps it is not told apart here.
   */
  readonly thp: boolean;
}

const NONE: PagemapEntry = {
  present: false,
  swap: false,
  pfn: 0,
  kind: 'none',
  softDirty: false,
  exclusive: false,
  file: false,
  thp: false,
};

/** folio_test_anon()'s negation: the folio of `pfn` belongs to a file (a shmem or hugetlbfs inode). */
function fileFolio(sys: System, pfn: number): boolean {
  return sys.mappings.get(sys.phys.mapping[sys.phys.head(pfn)]) instanceof Inode;
}

/** Models pagemap_read() for `npages` pages from `addr`. */
export function pagemapRange(sys: System, mm: MmStruct, addr: number, npages: number): PagemapEntry[] {
  const out: PagemapEntry[] = [];
  const phys = sys.phys;
  for (let k = 0; k < npages; k++) {
    const a = addr + k * PAGE_SIZE;
    const vma = mm.vmaLookup(a);
    const vmaSoftDirty = vma !== null && (vma.flags & VM.SOFTDIRTY) !== 0;
    const pmd = mm.pgt.upperAt(a, 1);
    if (pmd === null) {
      out.push({ ...NONE, softDirty: vmaSoftDirty });
      continue;
    }
    const i = indexAt(a, 1);
    if (pmd.children[i] === null) {
      const lo = pmd.words[2 * i];
      if (lo === 0) {
        out.push({ ...NONE, softDirty: vmaSoftDirty });
        continue;
      }
      const pfn = pmd.words[2 * i + 1] + (Math.floor(a / PAGE_SIZE) % HPAGE_PMD_NR);
      if ((lo & (PTE_PRESENT | PTE_PROTNONE)) === 0) {
        // A PMD migration entry or a device-private THP: a swap entry, like its PTE forms.
        out.push({
          present: false,
          swap: true,
          pfn,
          kind: isMigrationEntry(lo) ? 'migration' : isDevicePrivateEntry(lo) ? 'device-private' : 'special',
          softDirty: (lo & PTE_SOFT_DIRTY) !== 0 || vmaSoftDirty,
          exclusive: false,
          file: fileFolio(sys, pfn),
          thp: true,
        });
        continue;
      }
      out.push({
        present: (lo & (PTE_PRESENT | PTE_PROTNONE)) !== 0,
        swap: false,
        pfn,
        kind: phys.isZeroPfn(pfn) ? 'zero' : phys.isDevice(pfn) ? 'device-coherent' : 'ram',
        softDirty: (lo & PTE_SOFT_DIRTY) !== 0 || vmaSoftDirty,
        // pagemap_pmd_range_thp() asks about the PMD's first page for every page it maps: the
        // mapcount of that one page (the PMD mapping plus its own PTE mappings elsewhere) decides.
        exclusive: !phys.isZeroPfn(pfn) && pageMapcount(phys, pmd.words[2 * i + 1]) === 1,
        // The PMD walk takes the page from the entry itself, not vm_normal_page_pmd(): the huge
        // zero folio is not anonymous, so it reads as PM_FILE (the PTE zero page does not).
        file: phys.isZeroPfn(pfn) || fileFolio(sys, pfn),
        thp: true,
      });
      continue;
    }
    const t = pmd.children[i] as { words: Uint32Array };
    const s = pteSlot(a);
    const lo = t.words[s];
    const hi = t.words[s + 1];
    if (pteNone(lo, hi)) {
      out.push({ ...NONE, softDirty: vmaSoftDirty });
      continue;
    }
    const sd = (lo & PTE_SOFT_DIRTY) !== 0 || vmaSoftDirty;
    if (ptePresent(lo)) {
      const pm = phys.pagemapOf(hi);
      const kind = phys.isZeroPfn(hi)
        ? 'zero'
        : (lo & (1 << 9)) !== 0
          ? 'special'
          : pm !== null
            ? pm.hooks.type === 'coherent'
              ? 'device-coherent'
              : 'device-private'
            : 'ram';
      out.push({
        present: true,
        swap: false,
        pfn: hi,
        kind,
        softDirty: sd,
        exclusive: kind === 'ram' || kind === 'device-coherent' ? pageMapcount(phys, hi) === 1 : false,
        file: (kind === 'ram' || kind === 'device-coherent') && fileFolio(sys, hi),
        thp: phys.isRam(hi) && phys.order[phys.head(hi)] > 0,
      });
      continue;
    }
    let kind: PagemapEntry['kind'] = 'swap';
    if (isMigrationEntry(lo)) kind = 'migration';
    else if (isDevicePrivateEntry(lo)) kind = 'device-private';
    else if (isDeviceExclusiveEntry(lo)) kind = 'device-exclusive';
    // A guard-region marker reads as swapped (PM_SWAP), with PM_GUARD_REGION.
    else if (isGuardMarker(lo)) kind = 'guard';
    else if (!isSwapEntry(lo)) kind = 'special';
    out.push({
      present: false,
      swap: true,
      pfn: kind === 'swap' ? 0 : hi,
      kind,
      softDirty: sd,
      // Only a present page is reported as mapped exclusively.
      exclusive: false,
      file: kind !== 'swap' && kind !== 'guard' && kind !== 'special' && fileFolio(sys, hi),
      thp: false,
    });
  }
  return out;
}

/**
 * A page walk of `vma`'s populated page tables: `pte` for each entry of a PTE table inside the
 * VMA (the table, the entry's index in it, its address), `pmd` for each PMD leaf (a THP, a
 * hugetlb page, or an entry standing for one).
 */
function walkVmaEntries(
  vma: Vma,
  pte: (t: LeafTable, k: number, addr: number) => void,
  pmd: (t: UpperTable, i: number, base: number) => void,
): void {
  vma.mm.pgt.walk(
    vma.start,
    vma.end,
    (t, base) => {
      for (let k = 0; k < 512; k++) {
        const a = base + k * PAGE_SIZE;
        if (a >= vma.start && a < vma.end) pte(t, k, a);
      }
    },
    pmd,
  );
}

/**
 * Models clear_refs_write(CLEAR_REFS_SOFT_DIRTY): under the mmap lock taken for writing, killable
 * (a caller killed while waiting gets -EINTR), every VMA loses VM_SOFTDIRTY, then one SOFT_DIRTY
 * invalidation covers the whole address space while every PTE loses its soft-dirty bit and is
 * write-protected, so the next write faults and marks it again.
 */
export function* clearRefsSoftDirty(mm: MmStruct): KGen<number> {
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  for (const node of mm.vmas) node.value.flags &= ~VM.SOFTDIRTY;
  const range = mmuNotifierRangeInit(MMU_NOTIFY.SOFT_DIRTY, 0, mm, 0, ULONG_MAX);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  for (const node of mm.vmas) {
    walkVmaEntries(
      node.value,
      (t, k) => {
        const lo = t.words[2 * k];
        if (lo === 0 && t.words[2 * k + 1] === 0) return;
        if (ptePresent(lo)) t.words[2 * k] = (lo & ~(PTE_SOFT_DIRTY | PTE_WRITE)) >>> 0;
        else t.words[2 * k] = (lo & ~PTE_SOFT_DIRTY) >>> 0;
      },
      (pmd, i) => {
        pmd.words[2 * i] = (pmd.words[2 * i] & ~(PTE_SOFT_DIRTY | PTE_WRITE)) >>> 0;
      },
    );
  }
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, 0, mm.taskSize);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  yield* mm.mmapLock.upWrite();
  mm.sys.trace.count('clear_soft_dirty');
  return 0;
}

/** What may be written to /proc/pid/clear_refs (enum clear_refs_types). */
export const CLEAR_REFS = { ALL: 1, ANON: 2, MAPPED: 3, SOFT_DIRTY: 4, MM_HIWATER_RSS: 5 } as const;

/**
 * Models clear_refs_write() for CLEAR_REFS_ALL, CLEAR_REFS_ANON (VMAs without a file) and
 * CLEAR_REFS_MAPPED (VMAs with one, shared anonymous memory included), under the mmap lock taken
 * for writing, killable: every present entry of a normal page loses its young bit and its folio
 * PG_referenced, with no invalidation, so secondary MMUs keep their young bits; a PMD mapping
 * (the huge zero page's too) loses its young bit and its folio PG_referenced as well. PFN-mapped
 * and hugetlb VMAs are passed over, and so are PTEs of the zero page and special PTEs
 * (vm_normal_folio() finds no folio there). CLEAR_REFS_MM_HIWATER_RSS resets the peak RSS,
 * which the model does not keep: it only takes and drops the lock.
 */
export function* clearRefs(mm: MmStruct, type: number): KGen<number> {
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  const phys = mm.sys.phys;
  if (type !== CLEAR_REFS.MM_HIWATER_RSS) {
    yield* mm.ptl.lock();
    for (const node of mm.vmas) {
      const vma = node.value;
      if ((vma.flags & (VM.PFNMAP | VM.HUGETLB)) !== 0) continue;
      if (type === CLEAR_REFS.ANON && vma.file !== null) continue;
      if (type === CLEAR_REFS.MAPPED && vma.file === null) continue;
      walkVmaEntries(
        vma,
        (t, k) => {
          const lo = t.words[2 * k];
          const pfn = t.words[2 * k + 1];
          if (!ptePresent(lo) || (lo & PTE_SPECIAL) !== 0 || phys.isZeroPfn(pfn) || !phys.isRam(pfn)) return;
          t.words[2 * k] = (lo & ~PTE_ACCESSED) >>> 0;
          phys.flags[phys.head(pfn)] &= ~PG.referenced;
        },
        (pmd, i) => {
          const lo = pmd.words[2 * i];
          if ((lo & (PTE_PRESENT | PTE_PROTNONE)) === 0) return;
          pmd.words[2 * i] = (lo & ~PTE_ACCESSED) >>> 0;
          const h = pmd.words[2 * i + 1];
          if (!phys.isZeroPfn(h)) phys.flags[phys.head(h)] &= ~PG.referenced;
        },
      );
    }
    yield* mm.ptl.unlock();
  }
  yield* mm.mmapLock.upWrite();
  mm.sys.trace.count('clear_refs');
  return 0;
}

/** One line of /proc/pid/maps, less its device and inode numbers (which differ between machines). */
export interface MapsEntry {
  readonly start: number;
  readonly end: number;
  /** r, w, x or `-` each, then `s` for a VM_MAYSHARE mapping, `p` otherwise. */
  readonly perms: string;
  /** vm_pgoff in bytes for a VMA with a file (shared anonymous memory has one); 0 for anonymous memory. */
  readonly offset: number;
  /** The file's path, `` for anonymous memory. */
  readonly name: string;
}

/**
 * The path show_map_vma() prints for a VMA's file. Every shmem file of the model is unlinked
 * (a memfd, the backing of shared anonymous memory), so it reads as `/NAME (deleted)`; a device
 * file by its name under /dev.
 */
function mapsName(inode: Inode): string {
  return inode.kind === 'device' ? `/dev/${inode.name}` : `/${inode.name} (deleted)`;
}

/**
 * Models show_map_vma() for the VMAs that overlap [start, end), in address order; each whole, as
 * the kernel prints it. The caller holds the mmap lock.
 */
export function mapsRange(mm: MmStruct, start: number, end: number): MapsEntry[] {
  return mm.vmasIn(start, end).map(mapsEntry);
}

/** Models show_map_vma() for one VMA. */
function mapsEntry(vma: Vma): MapsEntry {
  return {
    start: vma.start,
    end: vma.end,
    perms:
      ((vma.flags & VM.READ) !== 0 ? 'r' : '-') +
      ((vma.flags & VM.WRITE) !== 0 ? 'w' : '-') +
      ((vma.flags & VM.EXEC) !== 0 ? 'x' : '-') +
      ((vma.flags & VM.MAYSHARE) !== 0 ? 's' : 'p'),
    offset: vma.file === null && (vma.flags & VM.HUGETLB) === 0 ? 0 : vma.pgoff * PAGE_SIZE,
    // Private anonymous huge pages have a hugetlbfs file in the kernel too (hugetlb_file_setup()
    // in ksys_mmap_pgoff()), which the model leaves out: its name is printed all the same.
    name:
      vma.file !== null
        ? mapsName(vma.file.inode)
        : (vma.flags & VM.HUGETLB) !== 0
          ? '/anon_hugepage (deleted)'
          : '',
  };
}

/** A maps entry as /proc/pid/maps prints it, without the device and inode columns. */
export function mapsLine(e: MapsEntry): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const line = `${hex(e.start, 8)}-${hex(e.end, 8)} ${e.perms} ${hex(e.offset, 8)}`;
  return e.name === '' ? line : `${line} ${e.name}`;
}

/**
 * One /proc/pid/smaps entry: its maps line and what show_smap() counts, in bytes as the file
 * shows them (each a whole number of KiB, rounded down like the file's kB).
 */
export interface SmapsEntry extends MapsEntry {
  readonly size: number;
  readonly rss: number;
  readonly pss: number;
  readonly pssDirty: number;
  readonly sharedClean: number;
  readonly sharedDirty: number;
  readonly privateClean: number;
  readonly privateDirty: number;
  readonly referenced: number;
  readonly anonymous: number;
  readonly lazyFree: number;
  readonly anonHugePages: number;
  readonly shmemPmdMapped: number;
  readonly sharedHugetlb: number;
  readonly privateHugetlb: number;
  readonly swap: number;
  readonly swapPss: number;
  readonly locked: number;
  /** VmFlags: the two-letter names of the VMA's flags, space-separated, in the kernel's order. */
  readonly vmFlags: string;
}

/**
 * show_smap_vma_flags()'s mnemonics, in the kernel's bit order. VM_DROPPABLE (bit 40) and
 * VM_SEALED (bit 42) sit at the end there, whatever bit the model keeps them in. VM_SOFTDIRTY's
 * `sd` is left out: pagemap reports soft-dirty state, and a kernel built without
 * CONFIG_MEM_SOFT_DIRTY prints no `sd`.
 */
const VM_MNEMONICS: readonly (readonly [number, string])[] = [
  [VM.READ, 'rd'],
  [VM.WRITE, 'wr'],
  [VM.EXEC, 'ex'],
  [VM.SHARED, 'sh'],
  [VM.MAYREAD, 'mr'],
  [VM.MAYWRITE, 'mw'],
  [VM.MAYEXEC, 'me'],
  [VM.MAYSHARE, 'ms'],
  [VM.GROWSDOWN, 'gd'],
  [VM.PFNMAP, 'pf'],
  [VM.MAYBE_GUARD, 'gu'],
  [VM.LOCKED, 'lo'],
  [VM.IO, 'io'],
  [VM.SEQ_READ, 'sr'],
  [VM.RAND_READ, 'rr'],
  [VM.DONTCOPY, 'dc'],
  [VM.DONTEXPAND, 'de'],
  [VM.LOCKONFAULT, 'lf'],
  [VM.ACCOUNT, 'ac'],
  [VM.NORESERVE, 'nr'],
  [VM.HUGETLB, 'ht'],
  [VM.WIPEONFORK, 'wf'],
  [VM.DONTDUMP, 'dd'],
  [VM.MIXEDMAP, 'mm'],
  [VM.HUGEPAGE, 'hg'],
  [VM.NOHUGEPAGE, 'nh'],
  [VM.DROPPABLE, 'dp'],
  [VM.SEALED, 'sl'],
];

/** Models show_smap_vma_flags() (less `sd`, see VM_MNEMONICS). */
export function vmFlagsMnemonics(flags: number): string {
  const out: string[] = [];
  for (const [bit, name] of VM_MNEMONICS) if ((flags & bit) !== 0) out.push(name);
  return out.join(' ');
}

/** PSS_SHIFT: Pss is summed in 1/4096ths of a byte. */
const PSS_ONE = 4096;

/** struct mem_size_stats, in bytes (the Pss sums in 1/4096ths of a byte). */
class SizeStats {
  resident = 0;
  sharedClean = 0;
  sharedDirty = 0;
  privateClean = 0;
  privateDirty = 0;
  referenced = 0;
  anonymous = 0;
  lazyFree = 0;
  anonThp = 0;
  shmemThp = 0;
  sharedHugetlb = 0;
  privateHugetlb = 0;
  swap = 0;
  pss = 0;
  pssDirty = 0;
  pssLocked = 0;
  swapPss = 0;
}

/** Models smaps_page_accumulate(). */
function smapsAccumulate(
  s: SizeStats,
  size: number,
  pss: number,
  dirty: boolean,
  locked: boolean,
  priv: boolean,
): void {
  s.pss += pss;
  if (locked) s.pssLocked += pss;
  if (dirty) {
    s.pssDirty += pss;
    if (priv) s.privateDirty += size;
    else s.sharedDirty += size;
  } else if (priv) s.privateClean += size;
  else s.sharedClean += size;
}

/**
 * Models smaps_account() for the page of `pfn` (the head of a PMD-mapped THP when `nr` is 512).
 * A present page counts as private while it is mapped once (the kernel's refcount == 1 shortcut
 * gives the same); an entry that is not present (migration, device-exclusive) as shared.
 */
function smapsAccount(
  sys: System,
  s: SizeStats,
  pfn: number,
  nr: number,
  young: boolean,
  pteDirty: boolean,
  locked: boolean,
  present: boolean,
): void {
  const phys = sys.phys;
  const flags = phys.flags[phys.head(pfn)];
  const dirty = pteDirty || (flags & PG.dirty) !== 0;
  const size = nr * PAGE_SIZE;
  if ((flags & PG.anon) !== 0) {
    s.anonymous += size;
    if ((flags & PG.swapbacked) === 0 && !dirty) s.lazyFree += size;
  }
  s.resident += size;
  if (young || (flags & PG.referenced) !== 0) s.referenced += size;
  if (!present) {
    smapsAccumulate(s, size, size * PSS_ONE, dirty, locked, false);
    return;
  }
  for (let k = 0; k < nr; k++) {
    const mapcount = pageMapcount(phys, pfn + k);
    const pss = mapcount >= 2 ? Math.floor((PAGE_SIZE * PSS_ONE) / mapcount) : PAGE_SIZE * PSS_ONE;
    smapsAccumulate(s, PAGE_SIZE, pss, dirty, locked, mapcount < 2);
  }
}

/** shmem_partial_swap_usage(): the bytes of the file's pages [first, last) that are in swap. */
function shmemSwapped(inode: Inode, first: number, last: number): number {
  return last > first ? inode.swapped.entriesIn(first, last - 1).length * PAGE_SIZE : 0;
}

/** Models smap_gather_stats() for one VMA (the caller holds the mmap lock). */
function smapGatherStats(sys: System, vma: Vma): SizeStats {
  const s = new SizeStats();
  const phys = sys.phys;
  const locked = (vma.flags & VM.LOCKED) !== 0;
  const inode = vma.file !== null && vma.file.inode.kind === 'shmem' ? vma.file.inode : null;
  // shmem: the swapped pages of the mapped part are counted from the file at once where they
  // must be the file's (a shared or read-only mapping); a private writable one counts them only
  // where it maps nothing (its own copies are anonymous pages and swap entries).
  let holes = false;
  if (inode !== null) {
    const swapped = shmemSwapped(inode, vma.pgoff, vma.pgoff + vma.pages);
    if (swapped === 0 || (vma.flags & VM.SHARED) !== 0 || (vma.flags & VM.WRITE) === 0) s.swap += swapped;
    else holes = true;
  }
  const hugetlb = (vma.flags & VM.HUGETLB) !== 0;
  let covered = vma.start;
  const hole = (from: number, to: number) => {
    if (holes && to > from) s.swap += shmemSwapped(inode!, vma.pageIndex(from), vma.pageIndex(to - 1) + 1);
  };
  walkVmaEntries(
    vma,
    (t, k, a) => {
      hole(covered, a);
      covered = a + PAGE_SIZE;
      const lo = t.words[2 * k];
      const hi = t.words[2 * k + 1];
      if (pteNone(lo, hi)) {
        hole(a, a + PAGE_SIZE);
        return;
      }
      if (ptePresent(lo)) {
        // vm_normal_page(): no struct page behind the zero page or a special (PFN) mapping.
        if (phys.isZeroPfn(hi) || (lo & PTE_SPECIAL) !== 0) return;
        smapsAccount(sys, s, hi, 1, (lo & PTE_ACCESSED) !== 0, (lo & PTE_DIRTY) !== 0, locked, true);
      } else if (isSwapEntry(lo)) {
        s.swap += PAGE_SIZE;
        const count = sys.swap.count[hi] ?? 1;
        s.swapPss += count >= 2 ? Math.floor((PAGE_SIZE * PSS_ONE) / count) : PAGE_SIZE * PSS_ONE;
      } else if (isPfnSwapEntry(lo)) {
        // A device-private page counts as present; migration and device-exclusive entries not.
        smapsAccount(sys, s, hi, 1, false, false, locked, isDevicePrivateEntry(lo));
      }
    },
    (pmd, i, base) => {
      const a = Math.max(base, vma.start);
      const end = Math.min(base + HPAGE_PMD_NR * PAGE_SIZE, vma.end);
      hole(covered, a);
      covered = end;
      const lo = pmd.words[2 * i];
      const head = pmd.words[2 * i + 1];
      const present = (lo & (PTE_PRESENT | PTE_PROTNONE)) !== 0;
      if (hugetlb) {
        // smaps_hugetlb_range(): only the hugetlb counters; an entry not present is "maybe shared".
        const size = end - a;
        if (!present || pageMapcount(phys, head) > 1) s.sharedHugetlb += size;
        else s.privateHugetlb += size;
        return;
      }
      if (present && phys.isZeroPfn(head)) return;
      if (!present && !isPfnSwapEntry(lo)) return;
      const flags = phys.flags[phys.head(head)];
      if ((flags & PG.anon) !== 0) s.anonThp += HPAGE_PMD_NR * PAGE_SIZE;
      else if ((flags & PG.swapbacked) !== 0 && !phys.isDevice(head)) s.shmemThp += HPAGE_PMD_NR * PAGE_SIZE;
      smapsAccount(
        sys,
        s,
        head,
        HPAGE_PMD_NR,
        (lo & PTE_ACCESSED) !== 0,
        (lo & PTE_DIRTY) !== 0,
        locked,
        present,
      );
    },
  );
  hole(covered, vma.end);
  return s;
}

/** Bytes as the smaps file shows them: whole KiB, rounded down. */
function kb(bytes: number): number {
  return Math.floor(bytes / 1024) * 1024;
}

/** Models show_smap() for the VMAs that overlap [start, end). The caller holds the mmap lock. */
export function smapsRange(sys: System, mm: MmStruct, start: number, end: number): SmapsEntry[] {
  return mm.vmasIn(start, end).map((vma) => {
    const e = mapsEntry(vma);
    const s = smapGatherStats(sys, vma);
    return {
      ...e,
      size: e.end - e.start,
      rss: kb(s.resident),
      pss: kb(Math.floor(s.pss / PSS_ONE)),
      pssDirty: kb(Math.floor(s.pssDirty / PSS_ONE)),
      sharedClean: kb(s.sharedClean),
      sharedDirty: kb(s.sharedDirty),
      privateClean: kb(s.privateClean),
      privateDirty: kb(s.privateDirty),
      referenced: kb(s.referenced),
      anonymous: kb(s.anonymous),
      lazyFree: kb(s.lazyFree),
      anonHugePages: kb(s.anonThp),
      shmemPmdMapped: kb(s.shmemThp),
      sharedHugetlb: kb(s.sharedHugetlb),
      privateHugetlb: kb(s.privateHugetlb),
      swap: kb(s.swap),
      swapPss: kb(Math.floor(s.swapPss / PSS_ONE)),
      locked: kb(Math.floor(s.pssLocked / PSS_ONE)),
      vmFlags: vmFlagsMnemonics(vma.flags),
    };
  });
}
