/**
 * mseal(2) (mm/mseal.c): sealing the VMAs of a range against the calls that would change them.
 *
 * A sealed VMA carries VM_SEALED, which nothing clears. The calls that then fail with -EPERM:
 *  - munmap(), mmap(MAP_FIXED) over it, and mremap()'s unmaps of a destination or of a shrunk
 *    tail (vms_gather_munmap_vmas(): nothing is unmapped, splits made before are kept);
 *  - mremap() of it (check_prep_vma());
 *  - mprotect() of it (mprotect_fixup(): VMAs changed before it stay changed);
 *  - advice that discards data (MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK,
 *    MADV_WIPEONFORK, MADV_GUARD_INSTALL...) on a private anonymous VMA the user cannot write
 *    (can_madvise_modify()).
 * mlock() and munlock(), other advice and faults are not affected; a forked child's VMAs keep
 * the seal; sealed neighbours merge as any VMAs with equal flags do.
 */
import { PAGE_SIZE, pageAlignUp } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { Process } from '../system.ts';
import { MADV } from './mman.ts';
import { VM, type MmStruct, type Vma } from './mm_types.ts';
import { mmapWriteLockKillable } from './mmap_lock.ts';
import { hugetlbSplitCheck, splitRange } from './mmap.ts';
import { fixupVmaRange } from './mprotect.ts';

/** vma_is_sealed(). */
export function vmaIsSealed(vma: Vma): boolean {
  return (vma.flags & VM.SEALED) !== 0;
}

/** Models is_discard() of madvise.c: advice that can drop the data a mapping holds. */
function isDiscard(advice: number): boolean {
  return (
    advice === MADV.FREE ||
    advice === MADV.DONTNEED ||
    advice === MADV.DONTNEED_LOCKED ||
    advice === MADV.REMOVE ||
    advice === MADV.DONTFORK ||
    advice === MADV.WIPEONFORK ||
    advice === MADV.GUARD_INSTALL
  );
}

/**
 * Models can_madvise_modify(): advice on a sealed VMA is refused only when it discards data of
 * a private anonymous mapping the user has no write permission to (file mappings, shared
 * anonymous memory among them, are allowed).
 */
export function canMadviseModify(vma: Vma, advice: number): boolean {
  if (!vmaIsSealed(vma) || !isDiscard(advice)) return true;
  if (!vma.isAnon()) return true;
  return (vma.flags & VM.WRITE) !== 0;
}

/** Models range_contains_unmapped(): a hole anywhere in [start, end). */
function rangeContainsUnmapped(mm: MmStruct, start: number, end: number): boolean {
  let prevEnd = start;
  for (const v of mm.vmasIn(start, end)) {
    if (v.start > prevEnd) return true;
    prevEnd = v.end;
  }
  return prevEnd < end;
}

/**
 * Models mseal_apply(): each VMA of [start, end) not sealed yet is split to the range and sealed
 * (vma_modify_flags(), which merges it with sealed neighbours); a hugetlb VMA that cannot be
 * split there ends the walk with -EINVAL, the VMAs before it staying sealed.
 */
function* msealApply(mm: MmStruct, start: number, end: number): KGen<number> {
  const vmas = mm.vmasIn(start, end);
  return yield* fixupVmaRange(mm, vmas, start, end, function* (v, from, to, changed) {
    if (vmaIsSealed(v)) return 0;
    const rc = hugetlbSplitCheck(mm, from, to);
    if (rc < 0) return rc;
    for (const piece of yield* splitRange(mm, from, to)) {
      piece.flags |= VM.SEALED;
      changed.push(piece);
    }
    return 0;
  });
}

/**
 * Models do_mseal(): `flags` must be 0 and `start` page-aligned (-EINVAL); the length is
 * page-aligned up (a length that wraps to 0 is -EINVAL, as is an end that wraps); an empty range
 * is sealed at once. The range must be mapped with no hole (-ENOMEM, nothing sealed). Arguments
 * of 2^53 or more are checked at the syscall entry (msealHuge()).
 */
export function* sysMsealImpl(p: Process, start: number, lenIn: number, flags: number): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  if (flags !== 0) return -Errno.EINVAL;
  if (start % PAGE_SIZE !== 0) return -Errno.EINVAL;
  const end = start + pageAlignUp(lenIn);
  if (end === start) return 0;
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  try {
    mm.sys.trace.count('mseal');
    if (rangeContainsUnmapped(mm, start, end)) return -Errno.ENOMEM;
    return yield* msealApply(mm, start, end);
  } finally {
    yield* mm.mmapLock.upWrite();
  }
}
