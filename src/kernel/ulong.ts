/**
 * Unsigned long syscall arguments of the mm syscalls, exact to 2^64 - 1. The model's kernel paths
 * work in numbers; a value of 2^53 or more takes a slow branch here at the syscall entry, which
 * does the checks that need all 64 bits (the wraps of PAGE_ALIGN() and of start + len) and then
 * either ends the call with the kernel's errno or hands the path a stand-in number that every
 * later check answers as the exact value would.
 */
import { PAGE_SIZE, PMD_SIZE, TASK_SIZE } from '../lib/units.ts';
import { Errno } from './errno.ts';
import { madviseBehaviorValid } from './mm/madvise.ts';
import { canDoMlock, hasCapIpcLock } from './mm/mlock.ts';
import { MAX_MAP_COUNT, hugetlbFlagOnOtherFile } from './mm/mmap.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGETLB,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
} from './mm/mman.ts';
import type { Process, System } from './system.ts';

/** An unsigned long argument as a caller passes it: a number, or a bigint for any u64. */
export type Ulong = number | bigint;

const TWO64 = 1n << 64n;
const PAGE_BIG = BigInt(PAGE_SIZE);
const PMD_BIG = BigInt(PMD_SIZE);
const TASK_SIZE_BIG = BigInt(TASK_SIZE);

/**
 * The syscall ABI passes unsigned longs. A safe non-negative integer is taken as it is (the fast
 * path: no bigint work). Any other integer from -2^63 to 2^64 - 1, number or bigint, becomes the
 * exact u64 a C caller passes (a negative long reinterpreted as unsigned, as the ABI does), as a
 * bigint when it is 2^53 or more. Anything else (NaN, a fraction, an infinity, a string, a value
 * out of that range) is null, refused with -EINVAL before any lock is taken, so a bad argument
 * from a library caller can never leave a kernel path half done.
 */
export function ulong(v: unknown): number | bigint | null {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    if (!Number.isInteger(v) || v < -(2 ** 63) || v >= 2 ** 64) return null;
    const b = BigInt(v);
    return b < 0n ? b + TWO64 : b;
  }
  if (typeof v === 'bigint') {
    if (v < -(1n << 63n) || v >= TWO64) return null;
    const b = v < 0n ? v + TWO64 : v;
    return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  }
  return null;
}

/**
 * Whether `v` is an argument ulong() takes as it is (a safe non-negative integer), which is then
 * also its own stand-in: the check system calls made per access run before anything else.
 */
export function plainUlong(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** standIn(ulong(v) ?? 0), without the calls for a plain argument. */
export function ulongStandIn(v: unknown): number {
  if (plainUlong(v)) return v;
  return standIn(ulong(v) ?? 0);
}

/**
 * How the model carries an exact value of 2^53 or more once the entry has done the checks that
 * need all 64 bits (the wraps of PAGE_ALIGN() and of start + len): as a number above every user
 * address and every length a mapping can have, with the same offset within a 2 MiB page, so every
 * later alignment check, and every comparison with TASK_SIZE or a VMA, answers as for the exact
 * value.
 */
export function standIn(v: number | bigint): number {
  return typeof v === 'number' ? v : 2 ** 53 - PMD_SIZE + Number(v & (PMD_BIG - 1n));
}

export function big(v: number | bigint): bigint {
  return typeof v === 'bigint' ? v : BigInt(v);
}

/** PAGE_ALIGN() in unsigned long arithmetic: a length within a page of 2^64 wraps to 0. */
export function pageAlign64(v: bigint): bigint {
  return (v + PAGE_BIG - 1n) & ~(PAGE_BIG - 1n) & (TWO64 - 1n);
}

/**
 * The checks of an mmap() with an argument of 2^53 or more that the stand-ins cannot answer, in
 * the kernel's order; 0 when the call can go on with stand-ins. Models the u64 arithmetic of
 * ksys_mmap_pgoff() and do_mmap(): a hugetlb length is aligned up to the huge page first, and
 * one within a huge page of 2^64 wraps to 0, which do_mmap() refuses as an empty mapping
 * (-EINVAL, where the other huge lengths are -ENOMEM); and a MAP_FIXED address in the last 4095
 * bytes of the space comes back from get_unmapped_area() looking like an error pointer, so the
 * call fails with that "errno" (2^64 - addr), after the length and map-count checks.
 */
export function mmapHuge(
  sys: System,
  p: Process,
  addr: number | bigint,
  length: number | bigint,
  flags: number,
  fd: number,
  offset: number | bigint,
): { ret: number } | { length: number } {
  const anonymous = (flags & MAP_ANONYMOUS) !== 0;
  const file = anonymous ? null : sys.fileOf(fd);
  if (file !== null && hugetlbFlagOnOtherFile(flags, file)) {
    // The offset check before it gives the same errno.
    return { ret: p.mm === null || p.exited ? -Errno.ESRCH : -Errno.EINVAL };
  }
  const hugetlb = (flags & MAP_HUGETLB) !== 0 || (file !== null && file.inode.kind === 'hugetlb');
  const len = big(length);
  // ALIGN(len, huge page) wrapping to 0 reaches do_mmap() as a zero length.
  const lengthIn = hugetlb && len > TWO64 - PMD_BIG ? 0 : standIn(length);
  const fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0;
  const a = big(addr);
  if (!fixed || hugetlb || a < TWO64 - 4095n) return { length: lengthIn };
  // The earlier checks, as sysMmapImpl() and do_mmap() make them, then the error-pointer address.
  if (p.mm === null || p.exited) return { ret: -Errno.ESRCH };
  if (big(offset) % PAGE_BIG !== 0n) return { ret: -Errno.EINVAL };
  if (!anonymous && file === null) return { ret: -Errno.EBADF };
  if (len === 0n) return { ret: -Errno.EINVAL };
  const aligned = pageAlign64(len);
  if (aligned === 0n || aligned > TASK_SIZE_BIG) return { ret: -Errno.ENOMEM };
  if (p.mm.vmas.size >= MAX_MAP_COUNT) return { ret: -Errno.ENOMEM };
  return { ret: -Number(TWO64 - a) };
}

/**
 * Models do_mprotect_pkey()'s checks in unsigned long arithmetic, for arguments of 2^53 or more:
 * after the grow-bits and alignment checks and the zero length, the length is page-aligned and
 * the end is start + length, both modulo 2^64; an end not above the start (the length wrapped
 * to 0, or the range wrapped) is -ENOMEM, before the prot bits are looked at. Returns 1 when the
 * call can go on with stand-ins.
 */
export function mprotectHuge(p: Process, start: bigint, len: bigint, prot: number): number {
  if (p.mm === null || p.exited) return -Errno.ESRCH;
  const grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return -Errno.EINVAL;
  if (start % PAGE_BIG !== 0n) return -Errno.EINVAL;
  if (len === 0n) return 0;
  const end = (start + pageAlign64(len)) & (TWO64 - 1n);
  return end <= start ? -Errno.ENOMEM : 1;
}

/**
 * Models madvise_should_skip()'s checks in unsigned long arithmetic, for arguments of 2^53 or
 * more: after the advice and alignment checks, a non-zero length that page-aligns to 0 and a
 * range whose end wraps past 2^64 are -EINVAL. Returns 1 when the call can go on with stand-ins
 * (which then walk the VMAs and find the hole above TASK_SIZE: -ENOMEM after advising what is
 * mapped).
 */
export function madviseHuge(p: Process, start: bigint, lenIn: bigint, advice: number): number {
  if (p.mm === null || p.exited) return -Errno.ESRCH;
  if (!madviseBehaviorValid(advice)) return -Errno.EINVAL;
  if (start % PAGE_BIG !== 0n) return -Errno.EINVAL;
  const len = pageAlign64(lenIn);
  if (lenIn !== 0n && len === 0n) return -Errno.EINVAL;
  return start + len >= TWO64 ? -Errno.EINVAL : 1;
}

/**
 * Models do_mremap()'s use of unsigned long arithmetic, for arguments of 2^53 or more: both
 * lengths are page-aligned modulo 2^64 before check_mremap_params() (an old length that wraps
 * becomes 0, the "duplicate a shared mapping" request; a new length that wraps is -EINVAL), and
 * vrm_overlaps() compares the ranges' ends as wrapped sums. Returns the lengths and the overlap
 * answer to go on with, or an errno.
 */
export function mremapHuge(
  p: Process,
  addr: bigint,
  oldLenIn: bigint,
  newLenIn: bigint,
  flags: number,
  newAddr: bigint,
): { ret: number } | { oldLen: number; newLen: number; overlaps: boolean } {
  if (p.mm === null || p.exited) return { ret: -Errno.ESRCH };
  const oldLen = pageAlign64(oldLenIn);
  const newLen = pageAlign64(newLenIn);
  const mask = TWO64 - 1n;
  const endOld = (addr + oldLen) & mask;
  const endNew = (newAddr + newLen) & mask;
  const small = (v: bigint): number => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : standIn(v));
  return { oldLen: small(oldLen), newLen: small(newLen), overlaps: endOld > newAddr && endNew > addr };
}

/**
 * Models the unsigned long arithmetic of do_mlock() (`lock`) and munlock(), for arguments of 2^53
 * or more. The length is widened by the start's offset in its page, modulo 2^64, and then
 * page-aligned modulo 2^64: a length near 2^64 from an unaligned start wraps to a page or two,
 * one within a page of 2^64 from an aligned start wraps to 0 (nothing to lock: success).
 * mlock() first needs the right to lock at all (-EPERM). A start and length both below 2^53 after
 * that go on exactly. Otherwise, without CAP_IPC_LOCK, the range must fit RLIMIT_MEMLOCK
 * (-ENOMEM): a length of 2^53 or more is more pages than any limit, and a start that high has no
 * locked pages to discount; a range whose end wraps past 2^64 is then -EINVAL
 * (apply_vma_lock_flags()); and the call goes on with stand-ins, which find no VMA above
 * TASK_SIZE (-ENOMEM once the VMAs below it are changed).
 */
export function mlockHuge(
  p: Process,
  startIn: bigint,
  lenIn: bigint,
  lock: boolean,
): { ret: number } | { start: number; len: number } {
  const mm = p.mm;
  if (mm === null || p.exited) return { ret: -Errno.ESRCH };
  if (lock && !canDoMlock(p)) return { ret: -Errno.EPERM };
  const off = startIn % PAGE_BIG;
  const len = pageAlign64((lenIn + off) & (TWO64 - 1n));
  const start = startIn - off;
  if (len === 0n) return { ret: 0 };
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  // Both below 2^53 after the wrap: the call goes on exactly (the limit then discounts what the
  // range has locked already, as count_mm_mlocked_page_nr() does).
  if (start <= max && len <= max) return { start: Number(start), len: Number(len) };
  if (lock && !hasCapIpcLock(p)) {
    const pages = len / PAGE_BIG + BigInt(mm.lockedVm);
    if (pages > BigInt(Math.floor(p.rlimitMemlock / PAGE_SIZE))) return { ret: -Errno.ENOMEM };
  }
  if (start + len >= TWO64) return { ret: -Errno.EINVAL };
  const small = (v: bigint): number => (v <= max ? Number(v) : standIn(v));
  return { start: small(start), len: small(len) };
}

/**
 * Models the unsigned long checks of do_mseal() for arguments of 2^53 or more, which always end
 * the call here: any flag is -EINVAL, as are an unaligned start, a length that PAGE_ALIGN() wraps
 * to 0 and an end past 2^64; a length aligned to 0 seals nothing (success). Any other range
 * reaches past TASK_SIZE, where nothing is mapped: -ENOMEM, nothing sealed.
 */
export function msealHuge(p: Process, start: bigint, lenIn: bigint, flags: bigint): number {
  if (p.mm === null || p.exited) return -Errno.ESRCH;
  if (flags !== 0n || start % PAGE_BIG !== 0n) return -Errno.EINVAL;
  const len = pageAlign64(lenIn);
  if (lenIn !== 0n && len === 0n) return -Errno.EINVAL;
  if (start + len >= TWO64) return -Errno.EINVAL;
  return len === 0n ? 0 : -Errno.ENOMEM;
}

/**
 * An offset as the model takes it: a page-aligned value is exact as a double anywhere below 2^64;
 * an unaligned one keeps its offset in the page, which is all the model checks of it.
 */
export function offsetArg(o: number | bigint): number {
  return typeof o === 'bigint' && o % PAGE_BIG === 0n ? Number(o) : standIn(o);
}
