/**
 * mlock(2), mlock2(2), munlock(2), mlockall(2) and munlockall(2) (mm/mlock.c), the checks mmap
 * and mremap make against RLIMIT_MEMLOCK (mlock_future_ok()), and __mm_populate().
 *
 * A locked VMA carries VM_LOCKED (and VM_LOCKONFAULT when its pages are locked only as they are
 * faulted in); mm->locked_vm counts its pages. PG_mlocked, with the unevictable LRU and the
 * per-CPU batches that move folios there, is not a page flag of the model: a folio is
 * unevictable exactly while a VM_LOCKED VMA maps it, which reclaim asks the rmap
 * (vmscan.ts), as folio_referenced_one() and try_to_unmap_one() do when they meet such a VMA
 * and (re)mlock the folio. The kernel's mlock_count can undercount and is corrected by that same
 * reclaim walk, so the set of pages reclaim may take is the same.
 */
import { PAGE_SIZE, pageAlignUp } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { Process } from '../system.ts';
import { FOLL_FORCE, FOLL_TOUCH, FOLL_WRITE, getUserPagesLocked } from './gup.ts';
import { VM, VM_ACCESS_FLAGS, VM_SPECIAL, type MmStruct, type Vma } from './mm_types.ts';
import { mmapWriteLockKillable } from './mmap_lock.ts';
import { mergeChanged, splitRange } from './mmap.ts';
import { fixupVmaRange } from './mprotect.ts';
import { MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT } from './mman.ts';
import { canDoMlock, hasCapIpcLock, lockLimit } from './mlock_limit.ts';

/** VM_LOCKED_MASK: the flags mlock() and munlock() set and clear. */
export const VM_LOCKED_MASK = VM.LOCKED | VM.LOCKONFAULT;

export { canDoMlock, hasCapIpcLock, mlockFutureOk, setCapIpcLock } from './mlock_limit.ts';

/**
 * Whether a VMA may carry VM_LOCKED: not a special mapping (VM_IO, VM_PFNMAP, VM_MIXEDMAP,
 * VM_DONTEXPAND), hugetlb or droppable memory, which mlock_fixup() and __mmap_complete() leave
 * unlocked and uncounted. (DAX, secretmem and the gate VMA are not modelled.)
 */
export function vmaSupportsMlock(vma: Vma): boolean {
  return (vma.flags & (VM_SPECIAL | VM.HUGETLB | VM.DROPPABLE)) === 0;
}

/**
 * Models mlock_fixup() for [start, end) of `vma`: the VMA is split off there and takes
 * `newFlags`, and mm->locked_vm follows (pages newly locked are added, pages unlocked taken
 * away). The merges vma_modify_flags() makes are left to the caller (mergeChanged()), which
 * collects the changed pieces in `changed`. What mlock_vma_pages_range() then does to the
 * pages mapped there (mlock_folio() / munlock_folio()) has no state of its own in the model.
 */
function* mlockFixup(
  mm: MmStruct,
  vma: Vma,
  start: number,
  end: number,
  newFlags: number,
  changed: Vma[],
): KGen<number> {
  if (newFlags === vma.flags || !vmaSupportsMlock(vma)) return 0;
  const oldFlags = vma.flags;
  let pages = (end - start) / PAGE_SIZE;
  if ((newFlags & VM.LOCKED) === 0) pages = -pages;
  else if ((oldFlags & VM.LOCKED) !== 0) pages = 0;
  for (const piece of yield* splitRange(mm, start, end)) {
    piece.flags = newFlags;
    changed.push(piece);
  }
  mm.lockedVm += pages;
  return 0;
}

/**
 * Models apply_vma_lock_flags(): every VMA of [start, start + len) gets `flags` for its
 * VM_LOCKED_MASK bits. The range must start inside a VMA and have no hole (-ENOMEM); VMAs
 * changed before a hole keep their new flags. Caller holds the mmap lock for writing.
 */
function* applyVmaLockFlags(mm: MmStruct, start: number, len: number, flags: number): KGen<number> {
  const end = start + len;
  if (len === 0) return 0;
  const vmas = mm.vmasIn(start, end);
  if (vmas.length === 0 || vmas[0].start > start) return -Errno.ENOMEM;
  return yield* fixupVmaRange(mm, vmas, start, end, (v, from, to, changed) =>
    mlockFixup(mm, v, from, to, (v.flags & ~VM_LOCKED_MASK) | flags, changed),
  );
}

/**
 * Models count_mm_mlocked_page_nr(): how many pages of [start, start + len) are already in
 * VM_LOCKED VMAs (locking them again adds nothing to mm->locked_vm).
 */
function countMmMlockedPageNr(mm: MmStruct, start: number, len: number): number {
  const end = start + len;
  let count = 0;
  for (const v of mm.vmasIn(start, end)) {
    if ((v.flags & VM.LOCKED) === 0) continue;
    if (start > v.start) count -= start - v.start;
    if (end < v.end) {
      count += end - v.start;
      break;
    }
    count += v.end - v.start;
  }
  return count / PAGE_SIZE;
}

/**
 * Models populate_vma_page_range(): faults [start, end) of one VMA in through GUP without taking
 * the pages, a private writable mapping by write faults (breaking COW), any other by read faults
 * (FOLL_FORCE, for a mapping that is executable only). A VM_LOCKONFAULT VMA is left as it is; a
 * PROT_NONE one is -EFAULT. Returns the pages done or -errno. Caller holds the mmap lock.
 */
export function* populateVmaPageRange(vma: Vma, start: number, end: number): KGen<number> {
  const npages = (end - start) / PAGE_SIZE;
  if ((vma.flags & VM.LOCKONFAULT) !== 0) return npages;
  if ((vma.flags & VM_ACCESS_FLAGS) === 0) return -Errno.EFAULT;
  const write = (vma.flags & (VM.WRITE | VM.SHARED)) === VM.WRITE;
  return yield* getUserPagesLocked(
    vma.mm,
    start,
    npages,
    FOLL_TOUCH | (write ? FOLL_WRITE : FOLL_FORCE),
    null,
  );
}

/**
 * Models __mm_populate(): faults in every VMA of [start, start + len) in address order, under
 * the mmap lock taken for reading, skipping VM_IO and VM_PFNMAP mappings and holes. The first
 * error ends it, unless `ignoreErrors` (then the next VMA is tried).
 */
export function* mmPopulate(mm: MmStruct, start: number, len: number, ignoreErrors: boolean): KGen<number> {
  const end = start + len;
  let ret = 0;
  yield* mm.mmapLock.downRead();
  try {
    for (let nstart = start; nstart < end;) {
      const vma = mm.findVma(nstart);
      if (vma === null || vma.start >= end) break;
      const nend = Math.min(end, vma.end);
      if ((vma.flags & (VM.IO | VM.PFNMAP)) !== 0) {
        nstart = nend;
        continue;
      }
      const from = Math.max(nstart, vma.start);
      const r = yield* populateVmaPageRange(vma, from, nend);
      if (r < 0) {
        if (!ignoreErrors) {
          ret = r;
          break;
        }
        nstart = nend;
        continue;
      }
      nstart = from + r * PAGE_SIZE;
    }
  } finally {
    yield* mm.mmapLock.upRead();
  }
  return ret;
}

/**
 * How many pages of [start, end) __mm_populate() would fault in at most: those of the VMAs
 * populate_vma_page_range() works on (not VM_IO or VM_PFNMAP, not VM_LOCKONFAULT, not PROT_NONE).
 */
function populatedPages(mm: MmStruct, start: number, end: number): number {
  let n = 0;
  for (const v of mm.vmasIn(start, end)) {
    if ((v.flags & (VM.IO | VM.PFNMAP | VM.LOCKONFAULT)) !== 0 || (v.flags & VM_ACCESS_FLAGS) === 0) continue;
    n += (Math.min(end, v.end) - Math.max(start, v.start)) / PAGE_SIZE;
  }
  return n;
}

/** Models __mlock_posix_error_return(): what GUP says, as POSIX has mlock() say it. */
function posixError(r: number): number {
  if (r === -Errno.EFAULT) return -Errno.ENOMEM;
  if (r === -Errno.ENOMEM) return -Errno.EAGAIN;
  return r;
}

/**
 * Models do_mlock(): mlock() (`flags` VM_LOCKED) and mlock2() (VM_LOCKED, with VM_LOCKONFAULT for
 * MLOCK_ONFAULT). The range is widened to whole pages; without CAP_IPC_LOCK the pages it would
 * newly lock, with those already locked, must fit RLIMIT_MEMLOCK (-ENOMEM); then the VMAs are
 * changed and, with the write lock dropped, the range is populated.
 */
export function* doMlock(p: Process, startIn: number, lenIn: number, flags: number): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  if (!canDoMlock(p)) return -Errno.EPERM;
  const len = pageAlignUp(lenIn + (startIn % PAGE_SIZE));
  const start = startIn - (startIn % PAGE_SIZE);
  const limit = lockLimit(p);
  let locked = len / PAGE_SIZE;
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  let error = -Errno.ENOMEM;
  try {
    locked += mm.lockedVm;
    const cap = hasCapIpcLock(p);
    if (locked > limit && !cap) locked -= countMmMlockedPageNr(mm, start, len);
    if (locked <= limit || cap) error = yield* applyVmaLockFlags(mm, start, len, flags);
  } finally {
    yield* mm.mmapLock.upWrite();
  }
  mm.sys.trace.count('mlock');
  if (error !== 0) return error;
  // More pages to fault in than RAM and swap hold together: the kernel would fill memory and
  // then kill the task; the model fails the populate as out of memory at once.
  const sys = mm.sys;
  if (populatedPages(mm, start, start + len) > sys.phys.ramFrames + sys.swap.nslots) return -Errno.EAGAIN;
  return posixError(yield* mmPopulate(mm, start, len, false));
}

/** mlock2(2): MLOCK_ONFAULT is the only flag. */
export function* sysMlock2Impl(p: Process, start: number, len: number, flags: number): KGen<number> {
  if ((flags & ~MLOCK_ONFAULT) !== 0) return -Errno.EINVAL;
  return yield* doMlock(p, start, len, VM.LOCKED | ((flags & MLOCK_ONFAULT) !== 0 ? VM.LOCKONFAULT : 0));
}

/** Models munlock(2): the range, widened to whole pages, loses VM_LOCKED and VM_LOCKONFAULT. */
export function* sysMunlockImpl(p: Process, startIn: number, lenIn: number): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  const len = pageAlignUp(lenIn + (startIn % PAGE_SIZE));
  const start = startIn - (startIn % PAGE_SIZE);
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  try {
    mm.sys.trace.count('munlock');
    return yield* applyVmaLockFlags(mm, start, len, 0);
  } finally {
    yield* mm.mmapLock.upWrite();
  }
}

/**
 * Models apply_mlockall_flags(): MCL_FUTURE sets the mm's default flags for the VMAs to come
 * (a call without it clears them); MCL_CURRENT locks every VMA there is, a VMA that cannot be
 * changed being passed over. `flags` 0 is munlockall(). Caller holds the mmap lock for writing.
 */
function* applyMlockallFlags(mm: MmStruct, flags: number): KGen {
  mm.defFlags &= ~VM_LOCKED_MASK;
  if ((flags & MCL_FUTURE) !== 0) {
    mm.defFlags |= VM.LOCKED;
    if ((flags & MCL_ONFAULT) !== 0) mm.defFlags |= VM.LOCKONFAULT;
    if ((flags & MCL_CURRENT) === 0) return;
  }
  let add = 0;
  if ((flags & MCL_CURRENT) !== 0) add = VM.LOCKED | ((flags & MCL_ONFAULT) !== 0 ? VM.LOCKONFAULT : 0);
  const changed: Vma[] = [];
  for (const v of mm.vmasIn(0, mm.taskSize)) {
    yield* mlockFixup(mm, v, v.start, v.end, (v.flags & ~VM_LOCKED_MASK) | add, changed);
  }
  mergeChanged(mm, changed);
}

/**
 * Models mlockall(2): MCL_CURRENT, MCL_FUTURE or both, with MCL_ONFAULT as a modifier. Without
 * CAP_IPC_LOCK, MCL_CURRENT needs the whole address space (total_vm) within RLIMIT_MEMLOCK
 * (-ENOMEM). With MCL_CURRENT every VMA is then populated, errors ignored.
 */
export function* sysMlockallImpl(p: Process, flags: number): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  if (flags === 0 || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) !== 0 || flags === MCL_ONFAULT)
    return -Errno.EINVAL;
  if (!canDoMlock(p)) return -Errno.EPERM;
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  let ret = -Errno.ENOMEM;
  try {
    if ((flags & MCL_CURRENT) === 0 || mm.totalVm <= lockLimit(p) || hasCapIpcLock(p)) {
      yield* applyMlockallFlags(mm, flags);
      ret = 0;
    }
  } finally {
    yield* mm.mmapLock.upWrite();
  }
  mm.sys.trace.count('mlockall');
  if (ret === 0 && (flags & MCL_CURRENT) !== 0) yield* mmPopulate(mm, 0, mm.taskSize, true);
  return ret;
}

/** Models munlockall(2): no VMA stays locked, and none to come will be. */
export function* sysMunlockallImpl(p: Process): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  try {
    yield* applyMlockallFlags(mm, 0);
  } finally {
    yield* mm.mmapLock.upWrite();
  }
  mm.sys.trace.count('munlockall');
  return 0;
}
