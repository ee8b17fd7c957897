import { indexAt } from '../../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE, alignUp, pageAlignUp } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { mmapWriteLockKillable } from './mmap_lock.ts';
import type { Process, System } from '../system.ts';
import { dropRefAt, takeRefAt } from '../refs.ts';
import { splitHugePmd, splitHugePmdsAtEdges, zapHugePmd } from './huge_memory.ts';
import {
  HUGETLB_RESV_UNMAPPED,
  hugetlbReservePages,
  hugetlbRestoreReserve,
  hugetlbUnreserveVma,
  putHugetlbPage,
} from './hugetlb.ts';
import { vmEnoughMemory, vmNormalPage } from './memory.ts';
import {
  type File,
  MM_SWAPENTS,
  type MmStruct,
  VM,
  VM_SPECIAL,
  VM_STICKY,
  Vma,
  MMAP_MIN_ADDR,
  vmStartGap,
} from './mm_types.ts';
import { mayExpandVm } from './rlimit.ts';
import { memfdCheckSealsMmap } from './memfd.ts';
import * as mman from './mman.ts';
import { vmaIsSealed } from './mseal.ts';
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
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isGuardMarker,
  isMigrationEntry,
  isSwapEntry,
  pteNone,
  ptePresent,
} from './pgtable.ts';
import { clearPte } from './pte.ts';
import {
  VM_LOCKED_MASK,
  canDoMlock,
  mlockFutureOk,
  populateVmaPageRange,
  vmaSupportsMlock,
} from './mlock.ts';
import { anonVmaClone, linkAnonVma, removeRmapPte, rssCounterOf, unlinkAnonVmas } from './rmap.ts';
import { shmemEvictInode, shmemFileSetup } from './shmem.ts';
import { folioMarkAccessed } from './vmscan.ts';

export { MMAP_MIN_ADDR };

/** vma_has_recency() is false for a VMA with either flag (MADV_SEQUENTIAL, MADV_RANDOM). */
const NO_RECENCY = VM.SEQ_READ | VM.RAND_READ;

/** vm.max_map_count. */
export const MAX_MAP_COUNT = 65530;

export { vmEnoughMemory };

/** Models calc_vm_prot_bits() + calc_vm_flag_bits(). */
export function protToVmFlags(prot: number): number {
  return (
    ((prot & mman.PROT_READ) !== 0 ? VM.READ : 0) |
    ((prot & mman.PROT_WRITE) !== 0 ? VM.WRITE : 0) |
    ((prot & mman.PROT_EXEC) !== 0 ? VM.EXEC : 0)
  );
}

/** Inserts a VMA into the mm's tree and its file's i_mmap. */
export function insertVma(mm: MmStruct, vma: Vma): void {
  vma.node = mm.vmas.insert(vma.start, vma.end - 1, vma);
  if (vma.file !== null) vma.file.inode.iMmap.add(vma);
  mm.totalVm += vma.pages;
}

/** Takes a VMA out of the tree; with `free`, also unlinks its anon_vmas and drops its file (remove_vma). */
export function detachVma(mm: MmStruct, vma: Vma): void {
  if (vma.node !== null) mm.vmas.remove(vma.node);
  vma.node = null;
  if (vma.file !== null) vma.file.inode.iMmap.delete(vma);
  mm.totalVm -= vma.pages;
}

/** Models remove_vma(): the VMA is gone for good. */
export function removeVma(sys: System, vma: Vma): void {
  hugetlbUnreserveVma(sys, vma);
  unlinkAnonVmas(sys, vma);
  vma.vmOps?.close?.(vma);
  if (vma.file !== null) {
    if (vma.fileRef !== null) dropRefAt(sys, vma.file, vma.fileRef);
    vma.fileRef = null;
    fput(sys, vma.file);
  }
}

/**
 * Records the reference `vma` holds on its file as taken by `kernelFn` (the get_file() of
 * vma->vm_file in mmap_region, __split_vma, copy_vma, dup_mmap), so that a mapping left behind
 * in a leaked mm names where its file reference came from; remove_vma() forgets it.
 */
export function noteVmaFileRef(sys: System, vma: Vma, kernelFn: string): void {
  if (vma.file !== null) vma.fileRef = takeRefAt(sys, vma.file, kernelFn);
}

/** Models get_file() of a new VMA's vm_file, copied from another VMA by `kernelFn`. */
export function vmaGetFile(sys: System, vma: Vma, kernelFn: string): void {
  if (vma.file === null) return;
  fget(vma.file);
  noteVmaFileRef(sys, vma, kernelFn);
}

export function fget(file: File): File {
  file.refs++;
  return file;
}

/** Models fput(): the last reference releases the file (its pages if nothing else holds the inode). */
export function fput(sys: System, file: File): void {
  if (--file.refs > 0) return;
  if (file.fops?.release !== undefined) {
    sys.sched.spawn(`release:${file.fops.name}`, file.fops.release(file));
  } else if (file.inode.kind !== 'device') {
    if (--file.inode.openFiles > 0) return;
    file.inode.nlink = 0;
    shmemEvictInode(sys, file.inode);
  }
}

/**
 * Models fdput() at the end of a syscall that held the file with fdget(): when the call's
 * reference is the last (another thread closed the descriptor meanwhile), the release runs on the
 * calling thread on its way back to user space, as __fput() runs from task work.
 */
export function* fdput(sys: System, file: File): KGen {
  if (file.refs === 1 && file.fops?.release !== undefined) {
    file.refs--;
    yield* file.fops.release(file);
  } else fput(sys, file);
}

/** Models __split_vma(): [start, addr) stays in `vma`, [addr, end) becomes the returned VMA. */
export function splitVma(vma: Vma, addr: number): Vma {
  const mm = vma.mm;
  const tail = new Vma(mm, addr, vma.end, vma.flags, vma.pgoff + (addr - vma.start) / PAGE_SIZE, vma.file);
  tail.vmOps = vma.vmOps;
  tail.priv = vma.priv;
  anonVmaClone(tail, vma);
  vmaGetFile(mm.sys, tail, '__split_vma');
  detachVma(mm, vma);
  vma.end = addr;
  insertVma(mm, vma);
  insertVma(mm, tail);
  return tail;
}

/**
 * Whether two VMAs share their anon_vma state closely enough to become one (is_mergeable_anon_vma).
 * When only one has an anon_vma, the merged VMA takes it, unless that VMA was cloned at fork and
 * still chains its parent's (vma_had_uncowed_parents(): a chain of more than its own anon_vma).
 * `moved` is a VMA mremap() just placed: in 6.18 copy_vma() merges it with no middle VMA, so its
 * own chain is not asked (mainline asks it since 3b617fd3d317; docs/fidelity.md).
 */
function anonCompatible(a: Vma, b: Vma, moved: Vma | null): boolean {
  const aNone = a.anonVma === null && a.anonChain.size === 0;
  const bNone = b.anonVma === null && b.anonChain.size === 0;
  if (aNone && bNone) return true;
  if (aNone) return b === moved || b.anonChain.size === 1;
  if (bNone) return a === moved || a.anonChain.size === 1;
  if (a.anonVma !== b.anonVma || a.anonChain.size !== b.anonChain.size) return false;
  for (const av of a.anonChain) if (!b.anonChain.has(av)) return false;
  return true;
}

/**
 * Models is_mergeable_vma() and the checks around it: whether `a` and the VMA `b` that starts
 * where it ends could be one VMA: same flags (soft-dirty aside), the same file (or none) and no
 * driver ops, contiguous page offsets, compatible anon_vmas. Mappings of one shmem file merge
 * as anonymous memory does (a shared anonymous mapping has a file of its own, so only its pieces
 * do); hugetlb and driver mappings (VM_SPECIAL) never do.
 */
function canMergeAnon(a: Vma, b: Vma, moved: Vma | null): boolean {
  if (a.end !== b.start || a.file !== b.file || a.vmOps !== null || b.vmOps !== null) return false;
  if (a.priv !== b.priv) return false;
  if (((a.flags ^ b.flags) & ~VM_STICKY) !== 0) return false;
  if ((a.flags & (VM_SPECIAL | VM.HUGETLB)) !== 0) return false;
  if (a.file === null && (a.flags & VM.SHARED) !== 0) return false;
  if (a.pgoff + a.pages !== b.pgoff) return false;
  return anonCompatible(a, b, moved);
}

/** Folds `b` into `a` (b starts where a ends). */
function mergeInto(mm: MmStruct, a: Vma, b: Vma): void {
  detachVma(mm, a);
  detachVma(mm, b);
  a.end = b.end;
  a.flags |= b.flags & VM_STICKY;
  if (a.anonVma === null && b.anonVma !== null) {
    a.anonVma = b.anonVma;
    a.anonVma.active++;
    for (const av of b.anonChain) linkAnonVma(a, av);
  }
  for (const av of b.anonChain) av.vmas.delete(b);
  if (b.anonVma !== null) b.anonVma.active--;
  b.anonChain.clear();
  b.anonVma = null;
  // remove_vma() of the VMA merged away: its reference on the file goes.
  if (b.file !== null) {
    if (b.fileRef !== null) dropRefAt(mm.sys, b.file, b.fileRef);
    b.fileRef = null;
    fput(mm.sys, b.file);
  }
  insertVma(mm, a);
  mm.sys.trace.count('vma_merge');
}

/**
 * Models vma_merge() for anonymous and shmem memory: after an mmap, mprotect or madvise, `vma` joins the
 * neighbours it has become identical to; `moved` when mremap() just placed it (copy_vma()).
 * Returns the VMA that now covers `vma`'s range.
 */
export function mergeAnonNeighbours(mm: MmStruct, vma: Vma, moved = false): Vma {
  let v = vma;
  const prevNode = v.node === null ? null : mm.vmas.prev(v.node);
  if (prevNode !== null && canMergeAnon(prevNode.value, v, moved ? v : null)) {
    const prev = prevNode.value;
    mergeInto(mm, prev, v);
    v = prev;
  }
  mergeWithNext(mm, v, moved ? v : null);
  return v;
}

/**
 * The next-neighbour half of mergeAnonNeighbours(): `vma` takes in the VMA after it if it can
 * (`moved` as there).
 */
export function mergeWithNext(mm: MmStruct, vma: Vma, moved: Vma | null = null): void {
  const nextNode = vma.node === null ? null : mm.vmas.next(vma.node);
  if (nextNode !== null && canMergeAnon(vma, nextNode.value, moved)) mergeInto(mm, vma, nextNode.value);
}

/**
 * The merges vma_modify_flags() makes as mprotect changes `changed` one by one, in address order:
 * each joins its neighbours as they are by then. A piece that an earlier merge took
 * in is merged again as the VMA that now covers it, so a run of changed pieces also joins the VMA
 * after it (a piece left unchanged because it already had the new flags).
 */
export function mergeChanged(mm: MmStruct, changed: readonly Vma[]): void {
  for (const v of changed) {
    const cur = v.node !== null ? v : mm.findVma(v.start);
    if (cur !== null && cur.start <= v.start) mergeAnonNeighbours(mm, cur);
  }
}

/**
 * Models the hugetlb vm_ops->may_split() check that __split_vma() makes: a hugetlb VMA can only be
 * split on a huge-page boundary, so any operation that would cut one elsewhere fails with -EINVAL.
 * vma_modify() splits at the start of the range before the end: a start off a boundary changes
 * nothing, an end off one leaves the split at the start made.
 */
export function hugetlbSplitCheck(mm: MmStruct, start: number, end: number): number {
  for (const v of mm.vmasIn(start, end)) {
    if ((v.flags & VM.HUGETLB) === 0) continue;
    const inside = (edge: number): boolean => edge > v.start && edge < v.end;
    if (inside(start) && start % PMD_SIZE !== 0) return -Errno.EINVAL;
    if (inside(end) && end % PMD_SIZE !== 0) {
      // vma_modify() has split at the start already, and that split stays.
      if (inside(start)) splitVma(v, start);
      return -Errno.EINVAL;
    }
  }
  return 0;
}

/** Splits VMAs so that [start, end) is exactly covered by whole VMAs; returns them. */
export function* splitRange(mm: MmStruct, start: number, end: number): KGen<Vma[]> {
  for (const v of mm.vmasIn(start, end)) {
    if (v.start < start && v.end > start) {
      yield* splitHugeAt(v, start);
      splitVma(v, start);
    }
  }
  for (const v of mm.vmasIn(start, end)) {
    if (v.start < end && v.end > end) {
      yield* splitHugeAt(v, end);
      splitVma(v, end);
    }
  }
  return mm.vmasIn(start, end);
}

/** A PMD mapping that straddles a VMA boundary about to be created is split first (vma_adjust_trans_huge). */
function* splitHugeAt(vma: Vma, addr: number): KGen {
  if (addr % PMD_SIZE === 0 || (vma.flags & VM.HUGETLB) !== 0) return;
  const base = addr - (addr % PMD_SIZE);
  const pmd = vma.mm.pgt.upperAt(base, 1);
  if (pmd === null) return;
  const i = indexAt(base, 1);
  if (pmd.children[i] === null && (pmd.words[2 * i] !== 0 || pmd.words[2 * i + 1] !== 0))
    yield* splitHugePmd(vma, base);
}

/** What a zap leaves to do after the TLB flush: pages to release. */
interface ZapBatch {
  readonly pages: number[];
  readonly hugetlb: number[];
  /**
   * zap_details without even_cows (a hole punched in a file): anonymous pages, the private
   * copies a MAP_PRIVATE mapping of the file made, and their swap entries stay.
   */
  readonly keepCows: boolean;
  /** ZAP_FLAG_DROP_MARKER: guard-region markers go too (unmapping, not zapping). */
  readonly dropMarkers: boolean;
  /**
   * unmap_hugepage_range() given a folio (unmap_ref_private()): only huge entries that map this
   * huge page go, and the VMA is marked for having lost it (HPAGE_RESV_UNMAPPED).
   */
  readonly ref?: number;
  /** Entries the zap cleared because they mapped `ref`. */
  refZapped?: number;
}

/**
 * Models zap_pte_range()/zap_pmd_range() for [start, end) inside one VMA: clears every entry,
 * drops the rmap and RSS, frees swap slots, and collects the pages to put after the TLB flush.
 * PMD mappings only partly inside the range are split first.
 */
function* unmapPageRange(vma: Vma, start: number, end: number, batch: ZapBatch): KGen {
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  for (let base = start - (start % PMD_SIZE); base < end; base += PMD_SIZE) {
    const pmd = mm.pgt.upperAt(base, 1);
    if (pmd === null) {
      base = alignUp(base + 1, PMD_SIZE * 512) - PMD_SIZE;
      continue;
    }
    const i = indexAt(base, 1);
    if (pmd.children[i] === null && (pmd.words[2 * i] !== 0 || pmd.words[2 * i + 1] !== 0)) {
      const whole = base >= start && base + PMD_SIZE <= end;
      if ((vma.flags & VM.HUGETLB) !== 0) {
        const hi = pmd.words[2 * i + 1];
        if (batch.ref !== undefined) {
          if (hi !== batch.ref) continue;
          vma.priv = HUGETLB_RESV_UNMAPPED;
          batch.refZapped = (batch.refZapped ?? 0) + 1;
        }
        mm.pgt.setUpperWords(pmd, i, 0, 0);
        const em = (phys.entireMapcount.get(hi) ?? 1) - 1;
        if (em <= 0) phys.entireMapcount.delete(hi);
        else phys.entireMapcount.set(hi, em);
        batch.hugetlb.push(hi);
        hugetlbRestoreReserve(sys, vma, base, hi);
        continue;
      }
      if (!whole) {
        yield* splitHugePmd(vma, base);
      } else {
        const p = zapHugePmd(vma, base);
        if (p >= 0) batch.pages.push(p);
        continue;
      }
    }
    const t = pmd.children[i];
    if (t === null) continue;
    const from = Math.max(start, base);
    const to = Math.min(end, base + PMD_SIZE);
    for (let a = from; a < to; a += PAGE_SIZE) {
      const s = 2 * (Math.floor(a / PAGE_SIZE) % HPAGE_PMD_NR);
      const lo = t.words[s];
      const hi = t.words[s + 1];
      if (pteNone(lo, hi)) continue;
      if (ptePresent(lo)) {
        const page = vmNormalPage(sys, vma, lo, hi);
        if (page >= 0) {
          const h = phys.head(page);
          const anon = (phys.flags[h] & PG.anon) !== 0;
          if (batch.keepCows && anon) continue;
          // zap_present_folio_ptes(): a file folio takes the PTE's dirty bit, and its young bit
          // marks it accessed unless the VMA has no recency (MADV_SEQUENTIAL, MADV_RANDOM); an
          // anonymous one needs neither (its other mappings keep theirs).
          if (!anon) {
            if ((lo & PTE_DIRTY) !== 0) phys.flags[h] |= PG.dirty;
            if ((lo & PTE_ACCESSED) !== 0 && (vma.flags & NO_RECENCY) === 0) folioMarkAccessed(sys, page);
          }
          removeRmapPte(phys, page, mm, rssCounterOf(phys, page, vma));
          batch.pages.push(page);
        }
      } else if (isSwapEntry(lo)) {
        if (batch.keepCows) continue;
        sys.swap.free(hi);
        mm.rss[MM_SWAPENTS]--;
      } else if (isDevicePrivateEntry(lo) || isDeviceExclusiveEntry(lo)) {
        // Both stand for anonymous pages.
        if (batch.keepCows) continue;
        removeRmapPte(phys, hi, mm, rssCounterOf(phys, hi, vma));
        batch.pages.push(hi);
      } else if (isMigrationEntry(lo)) {
        if (batch.keepCows && (phys.flags[phys.head(hi)] & PG.anon) !== 0) continue;
        mm.rss[rssCounterOf(phys, hi, vma)]--;
      } else if (isGuardMarker(lo) && !batch.dropMarkers) {
        // zap_nonpresent_ptes(): a guard region survives MADV_DONTNEED and a hole punched in the
        // file; only unmapping the range (ZAP_FLAG_DROP_MARKER) takes it away.
        continue;
      }
      clearPte(t, s);
    }
  }
}

function releaseBatch(sys: System, batch: ZapBatch): void {
  for (const p of batch.pages) sys.phys.put(p);
  for (const p of batch.hugetlb) putHugetlbPage(sys, p);
}

/**
 * Models unmap_vmas() as munmap / exit / mremap use it: one UNMAP invalidation over the whole
 * range, every VMA zapped inside it, the TLB flushed, then pages freed.
 */
export function* unmapVmas(mm: MmStruct, vmas: readonly Vma[], start: number, end: number): KGen {
  const batch: ZapBatch = { pages: [], hugetlb: [], keepCows: false, dropMarkers: true };
  for (const v of vmas) {
    // As in zapPageRangeSingle(): partial PMDs are split before the page-table lock is taken.
    if ((v.flags & VM.HUGETLB) === 0)
      yield* splitHugePmdsAtEdges(v, Math.max(start, v.start), Math.min(end, v.end));
  }
  const range = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, start, end);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  for (const v of vmas) yield* unmapPageRange(v, Math.max(start, v.start), Math.min(end, v.end), batch);
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, start, end);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  releaseBatch(mm.sys, batch);
}

/**
 * Models zap_page_range_single(): MADV_DONTNEED and unmap_mapping_range zap with a CLEAR event.
 * Without `evenCows`, anonymous pages stay mapped (see ZapBatch). With `reclaimPt` (MADV_DONTNEED's
 * zap_details.reclaim_pt), PTE tables the zap emptied are freed (reclaimEmptyPteTables()).
 */
export function* zapPageRangeSingle(
  vma: Vma,
  start: number,
  end: number,
  evenCows = true,
  reclaimPt = false,
): KGen {
  const mm = vma.mm;
  const batch: ZapBatch = { pages: [], hugetlb: [], keepCows: !evenCows, dropMarkers: false };
  // A PMD mapping the range covers only partly is split first, outside the page-table lock that
  // the zap holds (the split takes it itself, so splitting inside would deadlock).
  if ((vma.flags & VM.HUGETLB) === 0) yield* splitHugePmdsAtEdges(vma, start, end);
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, start, end);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  yield* unmapPageRange(vma, start, end, batch);
  if (reclaimPt && (vma.flags & VM.HUGETLB) === 0) reclaimEmptyPteTables(mm, start, end);
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, start, end);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  releaseBatch(mm.sys, batch);
}

/**
 * CONFIG_PT_RECLAIM (set in the live 6.18 build this was checked on): a zap with reclaim_pt
 * frees a PTE table whose whole PMD_SIZE range it covered once every entry is none, and clears the
 * PMD entry (zap_pte_range() with reclaim_pt_is_enabled()). A table an entry stayed in, such as a
 * guard marker, is kept, and so is one the zap covered only in part. A later fault there finds
 * an empty PMD entry, so it may map a THP.
 */
function reclaimEmptyPteTables(mm: MmStruct, start: number, end: number): void {
  for (let a = Math.ceil(start / PMD_SIZE) * PMD_SIZE; a + PMD_SIZE <= end; a += PMD_SIZE) {
    const t = mm.pgt.pteTable(a);
    if (t !== null && t.used === 0) mm.pgt.detachPteTable(a);
  }
}

/**
 * Models unmap_hugepage_range() with a reference folio, as unmap_ref_private() calls it: the huge
 * entry at `addr` of hugetlb `vma` is zapped (a CLEAR invalidation) only if it maps huge page
 * `ref`, and then the VMA is marked so that its later faults fail. Whether it was zapped.
 */
export function* unmapHugepageRef(vma: Vma, addr: number, ref: number): KGen<boolean> {
  const mm = vma.mm;
  const batch: ZapBatch = { pages: [], hugetlb: [], keepCows: false, dropMarkers: false, ref };
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, addr, addr + PMD_SIZE);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  yield* unmapPageRange(vma, addr, addr + PMD_SIZE, batch);
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, addr, addr + PMD_SIZE);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  releaseBatch(mm.sys, batch);
  return (batch.refZapped ?? 0) > 0;
}

/** The zap the OOM reaper does inside its own (non-blockable) invalidation. */
export function* zapForOom(vma: Vma): KGen {
  const mm = vma.mm;
  const batch: ZapBatch = { pages: [], hugetlb: [], keepCows: false, dropMarkers: false };
  yield* mm.ptl.lock();
  yield* unmapPageRange(vma, vma.start, vma.end, batch);
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, vma.start, vma.end);
  yield* mm.ptl.unlock();
  releaseBatch(mm.sys, batch);
}

/**
 * Models vms_gather_munmap_vmas(): splits [start, end) off the VMAs it overlaps and returns them,
 * or -errno. Cutting a hole in one VMA needs room for one more (-ENOMEM); the first VMA is split
 * at `start` unless it is sealed (-EPERM) or hugetlb off a huge-page boundary (-EINVAL); then
 * each VMA is checked for a seal (-EPERM) and the last split at `end` (-EINVAL for hugetlb as
 * before). Nothing is unmapped yet; on a failure the splits made before it stay, as the kernel
 * puts the VMAs back as they are.
 */
export function* gatherMunmapVmas(mm: MmStruct, start: number, end: number): KGen<Vma[] | number> {
  const vmas = mm.vmasIn(start, end);
  if (vmas.length === 0) return vmas;
  const first = vmas[0];
  if (first.start < start) {
    if (end < first.end && mm.vmas.size >= MAX_MAP_COUNT) return -Errno.ENOMEM;
    if (vmaIsSealed(first)) return -Errno.EPERM;
    if ((first.flags & VM.HUGETLB) !== 0 && start % PMD_SIZE !== 0) return -Errno.EINVAL;
    yield* splitHugeAt(first, start);
    vmas[0] = splitVma(first, start);
  }
  for (const v of vmas) {
    if (vmaIsSealed(v)) return -Errno.EPERM;
    if (v.end > end) {
      if ((v.flags & VM.HUGETLB) !== 0 && end % PMD_SIZE !== 0) return -Errno.EINVAL;
      yield* splitHugeAt(v, end);
      splitVma(v, end);
    }
  }
  return vmas;
}

/**
 * Models free_pgtables() after [start, end) was unmapped: its empty page tables go, between the
 * neighbouring VMAs left (a table one of them may use stays).
 */
export function freePgtables(mm: MmStruct, start: number, end: number): void {
  const next = mm.findVma(end);
  const prev = next === null ? mm.vmas.last() : mm.vmas.prev(next.node!);
  mm.pgt.freeEmpty(start, end, prev?.value.end ?? 0, next?.start ?? Infinity);
}

/**
 * Models vms_complete_munmap_vmas(): the VMAs gatherMunmapVmas() returned leave the tree, their
 * pages are zapped and their locked pages leave locked_vm.
 */
function* completeMunmap(mm: MmStruct, vmas: readonly Vma[], start: number, end: number): KGen {
  for (const v of vmas) if ((v.flags & VM.LOCKED) !== 0) mm.lockedVm -= v.pages;
  for (const v of vmas) detachVma(mm, v);
  yield* unmapVmas(mm, vmas, start, end);
  freePgtables(mm, start, end);
  for (const v of vmas) removeVma(mm.sys, v);
  mm.sys.trace.count('munmap');
}

/** Models do_vmi_munmap() with the mmap lock held for writing. */
export function* doMunmap(mm: MmStruct, start: number, len: number): KGen<number> {
  if (start % PAGE_SIZE !== 0 || start > mm.taskSize || len > mm.taskSize - start) return -Errno.EINVAL;
  const end = start + pageAlignUp(len);
  if (end === start) return -Errno.EINVAL;
  const vmas = yield* gatherMunmapVmas(mm, start, end);
  if (typeof vmas === 'number') return vmas;
  if (vmas.length === 0) return 0;
  yield* completeMunmap(mm, vmas, start, end);
  return 0;
}

/** Models get_unmapped_area(): top-down search below mmap_base, PMD-aligned for PMD-multiple anonymous lengths. */
export function getUnmappedArea(mm: MmStruct, hint: number, len: number, align: number): number {
  if (len > mm.taskSize) return -Errno.ENOMEM;
  if (hint !== 0) {
    // The hint stands if the range is free, and clear of the guard gap of a VMA above that
    // grows down.
    const a = pageAlignUp(hint);
    if (
      a <= mm.taskSize - len &&
      a >= MMAP_MIN_ADDR &&
      mm.vmasIn(a, a + len).length === 0 &&
      a % align === 0
    ) {
      const next = mm.findVma(a);
      if (next === null || a + len <= vmStartGap(next)) return a;
    }
  }
  let top = mm.mmapBase;
  // Walk existing VMAs from the top down, looking for a gap of len below `top`; a VMA that grows
  // down ends the gap below it at its guard gap (vm_start_gap()).
  let node = mm.vmas.last();
  while (node !== null && node.value.start >= top) {
    top = Math.min(top, vmStartGap(node.value));
    node = mm.vmas.prev(node);
  }
  for (;;) {
    const floor = node === null ? MMAP_MIN_ADDR : node.value.end;
    const candidate = top - len - ((top - len) % align);
    if (candidate >= floor && candidate >= MMAP_MIN_ADDR) return candidate;
    if (node === null) return -Errno.ENOMEM;
    top = Math.min(top, vmStartGap(node.value));
    node = mm.vmas.prev(node);
  }
}

/** Models ksys_mmap_pgoff() + do_mmap() + mmap_region(). Caller holds the mmap lock for writing. */
export function* doMmap(
  task: Process,
  mm: MmStruct,
  addr: number,
  length: number,
  prot: number,
  flags: number,
  file: File | null,
  offset: number,
): KGen<number> {
  const sys = mm.sys;
  if (offset % PAGE_SIZE !== 0 || offset < 0) return -Errno.EINVAL;
  const type = flags & mman.MAP_TYPE;
  const anonymous = (flags & mman.MAP_ANONYMOUS) !== 0;
  const droppable = type === mman.MAP_DROPPABLE;
  const shared = type !== mman.MAP_PRIVATE && !droppable;
  const hugetlb = (flags & mman.MAP_HUGETLB) !== 0 || (file !== null && file.inode.kind === 'hugetlb');
  if (length === 0) return -Errno.EINVAL;
  let len = pageAlignUp(length);
  if (hugetlb) len = alignUp(length, PMD_SIZE);
  if (len === 0 || len > mm.taskSize) return -Errno.ENOMEM;
  const pgoff = offset / PAGE_SIZE;
  if (pgoff + len / PAGE_SIZE > Number.MAX_SAFE_INTEGER) return -Errno.EOVERFLOW;
  if (mm.vmas.size >= MAX_MAP_COUNT) return -Errno.ENOMEM;
  const fixed = (flags & (mman.MAP_FIXED | mman.MAP_FIXED_NOREPLACE)) !== 0;
  let start: number;
  if (fixed) {
    // __get_unmapped_area(): hugetlb_get_unmapped_area() checks the huge-page alignment first;
    // otherwise the range is checked against TASK_SIZE before the address's alignment.
    if (hugetlb && addr % PMD_SIZE !== 0) return -Errno.EINVAL;
    if (addr > mm.taskSize - len) return -Errno.ENOMEM;
    if (addr % PAGE_SIZE !== 0) return -Errno.EINVAL;
    if (addr < MMAP_MIN_ADDR) return -Errno.EPERM;
    if ((flags & mman.MAP_FIXED_NOREPLACE) !== 0 && mm.vmasIn(addr, addr + len).length > 0)
      return -Errno.EEXIST;
    start = addr;
  } else {
    const align = hugetlb || (anonymous && len % PMD_SIZE === 0) ? PMD_SIZE : PAGE_SIZE;
    start = getUnmappedArea(mm, addr === 0 ? 0 : Math.max(addr, MMAP_MIN_ADDR), len, align);
    if (start < 0) return start;
  }
  // A mapping is locked by MAP_LOCKED or by the mm's default flags (mlockall(MCL_FUTURE)); then
  // it must be allowed to lock (-EPERM) and fit RLIMIT_MEMLOCK with what is locked (-EAGAIN).
  const lockFlags = ((flags & mman.MAP_LOCKED) !== 0 ? VM.LOCKED : 0) | mm.defFlags;
  if ((flags & mman.MAP_LOCKED) !== 0 && !canDoMlock(task)) return -Errno.EPERM;
  if (!mlockFutureOk(task, mm, lockFlags, len)) return -Errno.EAGAIN;
  // file_mmap_ok(): a regular file (shmem, hugetlbfs) maps at most MAX_LFS_FILESIZE (2^63 - 1)
  // bytes, so the last page of the mapping must lie below page 2^51; device files take any offset.
  if (file !== null && !anonymous && file.inode.kind !== 'device' && pgoff + len / PAGE_SIZE >= 2 ** 51)
    return -Errno.EOVERFLOW;
  // The mapping type and the file's checks come after the address, in do_mmap()'s switch on
  // MAP_TYPE (an unknown type is -EINVAL, unknown MAP_SHARED_VALIDATE flags -EOPNOTSUPP).
  // MAP_DROPPABLE is a type of anonymous memory only (a file, hugetlb's too, does not take it);
  // it cannot be locked nor grow down.
  if (droppable) {
    if (!anonymous || hugetlb) return -Errno.EINVAL;
    if ((flags & (mman.MAP_LOCKED | mman.MAP_GROWSDOWN)) !== 0) return -Errno.EINVAL;
  } else if (type !== mman.MAP_SHARED && type !== mman.MAP_PRIVATE && type !== mman.MAP_SHARED_VALIDATE)
    return -Errno.EINVAL;
  if (type === mman.MAP_SHARED_VALIDATE && (flags & ~mman.LEGACY_MAP_MASK & ~0xff) !== 0)
    return -Errno.EOPNOTSUPP;
  if (!anonymous && file === null) return -Errno.EBADF;
  if (file !== null && !anonymous) {
    if (file.inode.kind === 'device' && file.fops?.mmap === undefined) return -Errno.ENODEV;
    if (!file.readable) return -Errno.EACCES;
    if (shared && (prot & mman.PROT_WRITE) !== 0 && !file.writable) return -Errno.EACCES;
  }
  // Only private anonymous memory grows down: a file (hugetlb's anonymous one too) and shared
  // anonymous memory refuse MAP_GROWSDOWN once their type is checked.
  const growsdown = (flags & mman.MAP_GROWSDOWN) !== 0;
  if (growsdown && (!anonymous || hugetlb || shared)) return -Errno.EINVAL;
  // A new VMA always starts soft-dirty (mmap_region sets VM_SOFTDIRTY), so pagemap reports its
  // pages dirty until the next clear_refs.
  let vmFlags = protToVmFlags(prot) | VM.MAYREAD | VM.MAYWRITE | VM.MAYEXEC | VM.SOFTDIRTY;
  if (shared) vmFlags |= VM.SHARED | VM.MAYSHARE;
  if (file !== null && !anonymous && shared && !file.writable) vmFlags &= ~(VM.MAYWRITE | VM.SHARED);
  if (file !== null && !anonymous) {
    // The file's seals: a write seal refuses a shared writable mapping and keeps a shared
    // read-only one from becoming writable (no VM_MAYWRITE).
    const sealed = memfdCheckSealsMmap(file, vmFlags);
    if (sealed < 0) return sealed;
    vmFlags = sealed;
    // mmap_region() -> mapping_map_writable(): while F_ADD_SEALS waits to set F_SEAL_WRITE, a
    // shared mapping that could be made writable is -EPERM.
    if ((vmFlags & (VM.SHARED | VM.MAYWRITE)) === (VM.SHARED | VM.MAYWRITE) && file.inode.denyWritable > 0)
      return -Errno.EPERM;
  }
  if ((flags & mman.MAP_NORESERVE) !== 0) vmFlags |= VM.NORESERVE;
  // Droppable pages are not reserved, and do not survive a fork or go into a core dump.
  if (droppable) vmFlags |= VM.DROPPABLE | VM.NORESERVE | VM.WIPEONFORK | VM.DONTDUMP;
  vmFlags |= lockFlags;
  // calc_vm_flag_bits(): a stack gets no huge pages (MAP_STACK is VM_NOHUGEPAGE).
  if ((flags & mman.MAP_STACK) !== 0) vmFlags |= VM.NOHUGEPAGE;
  if (growsdown) vmFlags |= VM.GROWSDOWN;
  if (hugetlb) vmFlags |= VM.HUGETLB | VM.DONTEXPAND;
  // hugetlbfs_file_mmap(): a file offset inside a huge page is -EINVAL. Anonymous huge pages are a
  // hugetlbfs file too (hugetlb_file_setup() in ksys_mmap_pgoff()), mapped at the offset asked.
  if (hugetlb && pgoff % HPAGE_PMD_NR !== 0) return -Errno.EINVAL;
  let backing: File | null = anonymous ? null : fget(file!);
  if (hugetlb && anonymous) {
    if (shared) backing = shmemFileSetup(sys, 'anon_hugepage', len, 'hugetlb');
  } else if (anonymous && shared) {
    // shmem_zero_setup(): shared anonymous memory is an unlinked shmem file.
    backing = shmemFileSetup(sys, 'dev/zero', len);
  }
  // __mmap_setup(): what MAP_FIXED replaces is gathered first (a sealed VMA there is -EPERM),
  // and unmapped only once the new mapping is sure to be made.
  let replaced: Vma[] = [];
  if (fixed && (flags & mman.MAP_FIXED) !== 0) {
    const g = yield* gatherMunmapVmas(mm, start, start + len);
    if (typeof g === 'number') {
      if (backing !== null) fput(sys, backing);
      return g;
    }
    replaced = g;
  }
  // The address space limits, for the pages the mapping adds: what it replaces counts already
  // (so a private writable mapping over a read-only one passes while VmData is within the limit).
  let replacedPages = 0;
  for (const v of replaced)
    replacedPages += (Math.min(v.end, start + len) - Math.max(v.start, start)) / PAGE_SIZE;
  if (!mayExpandVm(task, mm, vmFlags, len / PAGE_SIZE - replacedPages)) {
    if (backing !== null) fput(sys, backing);
    return -Errno.ENOMEM;
  }
  const accountable = !hugetlb && (vmFlags & (VM.NORESERVE | VM.SHARED | VM.WRITE)) === VM.WRITE;
  if (accountable || (anonymous && shared && !hugetlb && (vmFlags & VM.NORESERVE) === 0)) {
    // accountable_mapping() (private writable) and shmem_acct_size() (shared anonymous) charge
    // the commit: under the default heuristic overcommit one request above RAM + swap is refused.
    // A private writable mapping is charged only what the charged mappings it replaces were not.
    let pages = len / PAGE_SIZE;
    if (accountable) for (const v of replaced) if ((v.flags & VM.ACCOUNT) !== 0) pages -= v.pages;
    if (pages > 0 && !vmEnoughMemory(sys, pages)) {
      if (backing !== null) fput(sys, backing);
      return -Errno.ENOMEM;
    }
  }
  // mmap_region(): a private writable mapping is charged to the VMA (VM_ACCOUNT), which then
  // keeps it apart from uncharged neighbours when merging.
  if (accountable) vmFlags |= VM.ACCOUNT;
  if (replaced.length > 0) yield* completeMunmap(mm, replaced, start, start + len);
  const vma = new Vma(
    mm,
    start,
    start + len,
    vmFlags,
    backing === null && !hugetlb ? start / PAGE_SIZE : pgoff,
    backing,
  );
  // Shared anonymous memory is a file of its own, mapped from offset 0 (shmem_zero_setup()).
  if (anonymous && shared && !hugetlb) vma.pgoff = 0;
  noteVmaFileRef(sys, vma, 'mmap_region');
  if (hugetlb && (flags & mman.MAP_NORESERVE) === 0) {
    // hugetlbfs_file_mmap() -> hugetlb_reserve_pages(): no mapping the pool cannot back.
    const r = hugetlbReservePages(sys, vma);
    if (r < 0) {
      if (backing !== null) fput(sys, backing);
      return r;
    }
  }
  // hugetlbfs_file_mmap(): a writable mapping past the end of the file makes the file that long.
  if (hugetlb && backing !== null && (vmFlags & VM.WRITE) !== 0) {
    const end = (pgoff + len / PAGE_SIZE) * PAGE_SIZE;
    if (backing.inode.size < end) backing.inode.size = end;
  }
  insertVma(mm, vma);
  if (backing !== null && backing.fops?.mmap !== undefined) {
    const r = yield* backing.fops.mmap(backing, vma);
    if (r < 0) {
      detachVma(mm, vma);
      yield* unmapVmas(mm, [vma], vma.start, vma.end);
      removeVma(sys, vma);
      return r;
    }
  }
  sys.trace.count('mmap');
  // __mmap_region() tries vma_merge_new_range() before a driver's ->mmap() runs, with the flags
  // the caller asked for; a driver's mapping gets its special flags (VM_PFNMAP, VM_MIXEDMAP,
  // VM_IO) only inside that hook, so the model, which runs the hook first, keeps driver mappings
  // apart as those flags would. A shmem file has no such hook (its mmap_prepare runs before the
  // merge): its mappings merge with the neighbours canMergeAnon() accepts.
  const merged = backing === null || backing.fops?.mmap === undefined ? mergeAnonNeighbours(mm, vma) : vma;
  // __mmap_complete(): a locked mapping is counted in locked_vm, unless it is one that cannot be
  // locked (hugetlb, or special after the driver's mmap), which loses VM_LOCKED but is still
  // populated below, as do_mmap() decided from the flags asked for.
  if ((vmFlags & VM.LOCKED) !== 0) {
    if (!vmaSupportsMlock(merged)) merged.flags &= ~VM_LOCKED_MASK;
    else mm.lockedVm += len / PAGE_SIZE;
  }
  if ((flags & mman.MAP_POPULATE) !== 0 || (vmFlags & VM.LOCKED) !== 0) {
    if (!populateCanFit(sys, merged, len)) {
      // The kernel would fill RAM and swap and then OOM-kill the task; the model refuses up
      // front, with the mapping undone, rather than fault in gigabytes to reach the same end.
      yield* doMunmap(mm, start, len);
      return -Errno.ENOMEM;
    }
    yield* populateVmaPageRange(merged, start, start + len);
  }
  return start;
}

/** Whether populating `len` bytes of `vma` could fit in the free RAM and swap at all. */
function populateCanFit(sys: System, vma: Vma, len: number): boolean {
  if ((vma.flags & VM.HUGETLB) !== 0) return true;
  return len / PAGE_SIZE <= sys.phys.freeFrames + sys.swap.freeBytes / PAGE_SIZE;
}

/**
 * Models ksys_mmap_pgoff()'s refusal of MAP_HUGETLB with a descriptor: the flag asks for an
 * anonymous hugetlb file, so a file that is not on hugetlbfs (a shmem or memfd file, a device)
 * is -EINVAL, before any length or address check. A hugetlbfs file maps as hugetlb with or
 * without the flag.
 */
export function hugetlbFlagOnOtherFile(flags: number, file: File): boolean {
  return (flags & mman.MAP_HUGETLB) !== 0 && file.inode.kind !== 'hugetlb';
}

/** Syscall entry: mmap(2). */
export function* sysMmapImpl(
  sys: System,
  p: Process,
  addr: number,
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  // The x86-64 sys_mmap() rejects an unaligned offset before it looks at the descriptor.
  if (offset % PAGE_SIZE !== 0 || offset < 0) return -Errno.EINVAL;
  let file: File | null = null;
  if ((flags & mman.MAP_ANONYMOUS) === 0) {
    file = sys.fileOf(fd);
    if (file === null) return -Errno.EBADF;
    if (hugetlbFlagOnOtherFile(flags, file)) return -Errno.EINVAL;
    // ksys_mmap_pgoff() holds the file (fget) across the mmap lock, so a close() by another
    // thread meanwhile cannot release it under the new mapping.
    fget(file);
  }
  // vm_mmap_pgoff()
  let r = -Errno.EINTR;
  if ((yield* mmapWriteLockKillable(mm)) === 0) {
    r = yield* doMmap(p, mm, addr, length, prot, flags, file, offset);
    yield* mm.mmapLock.upWrite();
  }
  if (file !== null) yield* fdput(sys, file);
  return r;
}

/** Syscall entry: munmap(2). */
export function* sysMunmapImpl(p: Process, addr: number, length: number): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  // __vm_munmap()
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  const r = yield* doMunmap(mm, addr, length);
  yield* mm.mmapLock.upWrite();
  return r;
}
