import { indexAt } from '../../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, ULONG_MAX } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Inode, type MmStruct, VM } from '../mm/mm_types.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from '../mm/mmu_notifier.ts';
import {
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SOFT_DIRTY,
  PTE_WRITE,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
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
        exclusive: !phys.isZeroPfn(pfn) && pageMapcount(phys, pfn) === 1,
        file: !phys.isZeroPfn(pfn) && fileFolio(sys, pfn),
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
    else if (!isSwapEntry(lo)) kind = 'special';
    out.push({
      present: false,
      swap: true,
      pfn: kind === 'swap' ? 0 : hi,
      kind,
      softDirty: sd,
      // Only a present page is reported as mapped exclusively.
      exclusive: false,
      file: kind !== 'swap' && kind !== 'special' && fileFolio(sys, hi),
      thp: false,
    });
  }
  return out;
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
    const vma = node.value;
    mm.pgt.walk(
      vma.start,
      vma.end,
      (t, base) => {
        for (let k = 0; k < 512; k++) {
          const a = base + k * PAGE_SIZE;
          if (a < vma.start || a >= vma.end) continue;
          const lo = t.words[2 * k];
          if (lo === 0 && t.words[2 * k + 1] === 0) continue;
          if (ptePresent(lo)) t.words[2 * k] = (lo & ~(PTE_SOFT_DIRTY | PTE_WRITE)) >>> 0;
          else t.words[2 * k] = (lo & ~PTE_SOFT_DIRTY) >>> 0;
        }
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
  return mm.vmasIn(start, end).map((vma) => ({
    start: vma.start,
    end: vma.end,
    perms:
      ((vma.flags & VM.READ) !== 0 ? 'r' : '-') +
      ((vma.flags & VM.WRITE) !== 0 ? 'w' : '-') +
      ((vma.flags & VM.EXEC) !== 0 ? 'x' : '-') +
      ((vma.flags & VM.MAYSHARE) !== 0 ? 's' : 'p'),
    offset: vma.file === null ? 0 : vma.pgoff * PAGE_SIZE,
    name: vma.file === null ? '' : mapsName(vma.file.inode),
  }));
}

/** A maps entry as /proc/pid/maps prints it, without the device and inode columns. */
export function mapsLine(e: MapsEntry): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const line = `${hex(e.start, 8)}-${hex(e.end, 8)} ${e.perms} ${hex(e.offset, 8)}`;
  return e.name === '' ? line : `${line} ${e.name}`;
}
