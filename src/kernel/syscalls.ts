/**
 * The system calls and CPU actions of the model as generators, so they run both sequentially
 * (System's wrappers) and as steps of explorer threads. Each returns what the kernel returns:
 * a value, or -errno.
 */
import { PAGE_SIZE } from '../lib/units.ts';
import type { KGen } from '../sched/types.ts';
import { Errno } from './errno.ts';
import { doExit, taskMmget, taskMmput } from './exit.ts';
import { doFork } from './fork.ts';
import { type MadviseIovec, processMadviseImpl, sysMadviseImpl } from './mm/madvise.ts';
import { enterTask, leaveTask, mmapReadLockKillable } from './mm/mmap_lock.ts';
import { cpuAccess } from './mm/memory.ts';
import { sysMmapImpl, sysMunmapImpl, fdput, fget, fput } from './mm/mmap.ts';
import { File, type Inode, type MmStruct, VM } from './mm/mm_types.ts';
import { Mutex } from '../sched/locks.ts';
import { PG } from './mm/page_alloc.ts';
import {
  F_SEAL_EXEC,
  F_SEAL_SEAL,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
  MFD_HUGETLB,
  MFD_HUGE_MASK,
  MFD_HUGE_SHIFT,
  MFD_NOEXEC_SEAL,
  MLOCK_ONFAULT,
  O_ACCMODE,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_TMPFILE_BIT,
  O_TRUNC,
  SEEK_CUR,
  SEEK_DATA,
  SEEK_END,
  SEEK_HOLE,
  SEEK_SET,
} from './mm/mman.ts';
import { memfdFcntl } from './mm/memfd.ts';
import { sysMincoreImpl } from './mm/mincore.ts';
import { sysMlock2Impl, sysMlockallImpl, sysMunlockImpl, sysMunlockallImpl } from './mm/mlock.ts';
import { sysMprotectImpl } from './mm/mprotect.ts';
import { sysMsealImpl } from './mm/mseal.ts';
import { sysMremapImpl } from './mm/mremap.ts';
import { oomReapTask } from './mm/oom_kill.ts';
import {
  type MapsEntry,
  type PagemapEntry,
  type SmapsEntry,
  CLEAR_REFS,
  clearRefs,
  clearRefsSoftDirty,
  mapsRange,
  pagemapRange,
  smapsRange,
} from './fs/task_mmu.ts';
import {
  inodeLockOf,
  shmemFileSetup,
  shmemOpenFile,
  shmemRead,
  shmemSetSize,
  shmemWrite,
  vfsFallocate,
} from './mm/shmem.ts';
import { reclaim as reclaimPages } from './mm/vmscan.ts';
import type { Process, System } from './system.ts';
import {
  type Ulong,
  big,
  madviseHuge,
  mlockHuge,
  mmapHuge,
  mprotectHuge,
  mremapHuge,
  msealHuge,
  offsetArg,
  plainUlong,
  standIn,
  ulong,
  ulongStandIn,
} from './ulong.ts';

export type { Ulong };

export type { MapsEntry, PagemapEntry, SmapsEntry };

/** The most one read or write moves (the kernel's MAX_RW_COUNT, INT_MAX rounded down to a page). */
export const MAX_RW_COUNT = 0x7fffffff - (0x7fffffff % PAGE_SIZE);

/** A signed 64-bit argument (loff_t, ssize_t): a safe integer, negative or not. */
function loff(v: unknown): number | null {
  if (typeof v === 'bigint') {
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    return v >= -max && v <= max ? Number(v) : null;
  }
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : null;
}

/** Int arguments (prot, flags, advice, fd): plain safe integers. */
function ints(...vs: unknown[]): boolean {
  return vs.every((v) => typeof v === 'number' && Number.isSafeInteger(v));
}

export function* sysMmap(
  sys: System,
  p: Process,
  addr: Ulong,
  length: Ulong,
  prot: number,
  flags: number,
  fd = -1,
  offset: Ulong = 0,
): KGen<number> {
  const a = ulong(addr);
  let l = ulong(length);
  const o = ulong(offset);
  if (a === null || l === null || o === null || !ints(prot, flags, fd)) return -Errno.EINVAL;
  if (typeof a !== 'number' || typeof l !== 'number' || typeof o !== 'number') {
    const h = mmapHuge(sys, p, a, l, flags, fd, o);
    if ('ret' in h) return h.ret;
    l = h.length;
  }
  const off = offsetArg(o);
  const at = standIn(a);
  sys.trace.emit('syscall', 'mmap', 'i', { addr: at, length: l, prot, flags });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMmapImpl(sys, p, at, l, prot, flags, fd, off);
  yield* taskMmput(p, mm);
  return r;
}

/**
 * munmap(2). Every value of 2^53 or more fails do_vmi_munmap()'s range check (an address above
 * TASK_SIZE, or a length above TASK_SIZE - start) with -EINVAL, as its stand-in does.
 */
export function* sysMunmap(sys: System, p: Process, addr: Ulong, length: Ulong): KGen<number> {
  const a = ulong(addr);
  const l = ulong(length);
  if (a === null || l === null) return -Errno.EINVAL;
  const at = standIn(a);
  const len = standIn(l);
  sys.trace.emit('syscall', 'munmap', 'i', { addr: at, length: len });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMunmapImpl(p, at, len);
  yield* taskMmput(p, mm);
  return r;
}

export function* sysMprotect(
  sys: System,
  p: Process,
  addr: Ulong,
  length: Ulong,
  prot: number,
): KGen<number> {
  const a = ulong(addr);
  const l = ulong(length);
  if (a === null || l === null || !ints(prot)) return -Errno.EINVAL;
  if (typeof a !== 'number' || typeof l !== 'number') {
    const r = mprotectHuge(p, big(a), big(l), prot);
    if (r !== 1) return r;
  }
  const at = standIn(a);
  const len = standIn(l);
  sys.trace.emit('syscall', 'mprotect', 'i', { addr: at, length: len, prot });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMprotectImpl(p, at, len, prot);
  yield* taskMmput(p, mm);
  return r;
}

export function* sysMadvise(
  sys: System,
  p: Process,
  addr: Ulong,
  length: Ulong,
  advice: number,
): KGen<number> {
  const a = ulong(addr);
  const l = ulong(length);
  if (a === null || l === null || !ints(advice)) return -Errno.EINVAL;
  if (typeof a !== 'number' || typeof l !== 'number') {
    const r = madviseHuge(p, big(a), big(l), advice);
    if (r !== 1) return r;
  }
  const at = standIn(a);
  const len = standIn(l);
  sys.trace.emit('syscall', 'madvise', 'i', { addr: at, length: len, advice });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMadviseImpl(p, at, len, advice);
  yield* taskMmput(p, mm);
  return r;
}

/** UIO_MAXIOV: the most segments an iovec may have. */
const UIO_MAXIOV = 1024;

/**
 * process_madvise(2) by `p` on `target`'s memory (the model has no pidfds: the target process is
 * named). `flags` must be 0 (-EINVAL). The vector is imported as import_iovec() does: at most
 * UIO_MAXIOV segments and no length of 2^63 or more (-EINVAL), the lengths cut so that they add
 * up to at most MAX_RW_COUNT. A base of 2^53 or more fails its own segment in u64 arithmetic (an
 * unaligned or wrapping one -EINVAL, else -ENOMEM: nothing is mapped above TASK_SIZE). Returns
 * the bytes advised, or the first failure if none were.
 */
export function* sysProcessMadvise(
  sys: System,
  p: Process,
  target: Process,
  vec: readonly { base: Ulong; len: Ulong }[],
  advice: number,
  flags: Ulong = 0,
): KGen<number> {
  const f = ulong(flags);
  if (f === null || !ints(advice) || f !== 0) return -Errno.EINVAL;
  if (vec.length > UIO_MAXIOV) return -Errno.EINVAL;
  const iov: MadviseIovec[] = [];
  let total = 0;
  for (const seg of vec) {
    const b = ulong(seg.base);
    const l = ulong(seg.len);
    if (b === null || l === null || (typeof l === 'bigint' && l >= 2n ** 63n)) return -Errno.EINVAL;
    const len = Math.min(Number(l), MAX_RW_COUNT - total);
    total += len;
    if (typeof b === 'number') iov.push({ base: b, len });
    else {
      const r = madviseHuge(p, b, BigInt(len), advice);
      if (r !== 1) iov.push({ base: 0, len, err: r });
      else iov.push(len === 0 ? { base: 0, len } : { base: 0, len, err: -Errno.ENOMEM });
    }
  }
  sys.trace.emit('syscall', 'process_madvise', 'i', { advice, segments: iov.length });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* processMadviseImpl(p, target, iov, advice);
  yield* taskMmput(p, mm);
  return r;
}

/**
 * mlock2(2) (`flags` MLOCK_ONFAULT or 0; 0 is mlock(2)) and, with `lock` false, munlock(2).
 * Arguments of 2^53 or more are checked in u64 arithmetic first (mlockHuge()).
 */
function* mlockCall(
  sys: System,
  p: Process,
  addr: Ulong,
  length: Ulong,
  flags: number,
  lock: boolean,
): KGen<number> {
  const a = ulong(addr);
  const l = ulong(length);
  if (a === null || l === null || !ints(flags)) return -Errno.EINVAL;
  if (lock && (flags & ~MLOCK_ONFAULT) !== 0) return -Errno.EINVAL;
  let at: number;
  let len: number;
  if (typeof a !== 'number' || typeof l !== 'number') {
    const r = mlockHuge(p, big(a), big(l), lock);
    if ('ret' in r) return r.ret;
    at = r.start;
    len = r.len;
  } else {
    at = a;
    len = l;
  }
  sys.trace.emit('syscall', lock ? 'mlock' : 'munlock', 'i', { addr: at, length: len, flags });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = lock ? yield* sysMlock2Impl(p, at, len, flags) : yield* sysMunlockImpl(p, at, len);
  yield* taskMmput(p, mm);
  return r;
}

export function* sysMlock(sys: System, p: Process, addr: Ulong, length: Ulong, flags = 0): KGen<number> {
  return yield* mlockCall(sys, p, addr, length, flags, true);
}

export function* sysMunlock(sys: System, p: Process, addr: Ulong, length: Ulong): KGen<number> {
  return yield* mlockCall(sys, p, addr, length, 0, false);
}

/** mlockall(2): MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT. */
export function* sysMlockall(sys: System, p: Process, flags: number): KGen<number> {
  if (!ints(flags)) return -Errno.EINVAL;
  sys.trace.emit('syscall', 'mlockall', 'i', { flags });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMlockallImpl(p, flags);
  yield* taskMmput(p, mm);
  return r;
}

/** munlockall(2). */
export function* sysMunlockall(sys: System, p: Process): KGen<number> {
  sys.trace.emit('syscall', 'munlockall', 'i', {});
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMunlockallImpl(p);
  yield* taskMmput(p, mm);
  return r;
}

/**
 * mseal(2): seals the VMAs of [addr, addr + length) (flags must be 0). Arguments of 2^53 or more
 * are checked in u64 arithmetic (msealHuge()), which ends the call.
 */
export function* sysMseal(
  sys: System,
  p: Process,
  addr: Ulong,
  length: Ulong,
  flags: Ulong = 0,
): KGen<number> {
  const a = ulong(addr);
  const l = ulong(length);
  const f = ulong(flags);
  if (a === null || l === null || f === null) return -Errno.EINVAL;
  if (typeof a !== 'number' || typeof l !== 'number' || typeof f !== 'number')
    return msealHuge(p, big(a), big(l), big(f));
  sys.trace.emit('syscall', 'mseal', 'i', { addr: a, length: l, flags: f });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMsealImpl(p, a, l, f);
  yield* taskMmput(p, mm);
  return r;
}

/**
 * mincore(2) into `vec`, one byte a page (the caller's buffer: one too short is -EFAULT). An
 * argument of 2^53 or more puts the range past the user address space (-ENOMEM), unless the
 * start is unaligned (-EINVAL, checked first).
 */
export function* sysMincore(
  sys: System,
  p: Process,
  addr: Ulong,
  length: Ulong,
  vec: Uint8Array,
): KGen<number> {
  const a = ulong(addr);
  const l = ulong(length);
  if (a === null || l === null) return -Errno.EINVAL;
  if (typeof a !== 'number' || typeof l !== 'number') {
    if (p.mm === null || p.exited) return -Errno.ESRCH;
    return big(a) % BigInt(PAGE_SIZE) !== 0n ? -Errno.EINVAL : -Errno.ENOMEM;
  }
  sys.trace.emit('syscall', 'mincore', 'i', { addr: a, length: l });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMincoreImpl(p, a, l, vec);
  yield* taskMmput(p, mm);
  return r;
}

export function* sysMremap(
  sys: System,
  p: Process,
  oldAddr: Ulong,
  oldLen: Ulong,
  newLen: Ulong,
  flags: number,
  newAddr: Ulong = 0,
): KGen<number> {
  const a = ulong(oldAddr);
  let ol = ulong(oldLen);
  let nl = ulong(newLen);
  const na = ulong(newAddr);
  if (a === null || ol === null || nl === null || na === null || !ints(flags)) return -Errno.EINVAL;
  let overlaps: boolean | undefined;
  if (typeof a !== 'number' || typeof ol !== 'number' || typeof nl !== 'number' || typeof na !== 'number') {
    const h = mremapHuge(p, big(a), big(ol), big(nl), flags, big(na));
    if ('ret' in h) return h.ret;
    ({ oldLen: ol, newLen: nl, overlaps } = h);
  }
  const at = standIn(a);
  const to = standIn(na);
  sys.trace.emit('syscall', 'mremap', 'i', { oldAddr: at, oldLen: ol, newLen: nl, flags, newAddr: to });
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* sysMremapImpl(p, at, ol, nl, flags, to, overlaps);
  yield* taskMmput(p, mm);
  return r;
}

export function* sysFork(
  sys: System,
  p: Process,
  childName: string,
): KGen<{ ret: number; child: Process | null }> {
  sys.trace.emit('syscall', 'fork', 'i', { parent: p.name, child: childName });
  const mm = yield* taskMmget(p);
  if (mm === null) return { ret: -Errno.ESRCH, child: null };
  const r = yield* doFork(sys, p, childName);
  yield* taskMmput(p, mm);
  return r;
}

export function* sysExit(sys: System, p: Process): KGen<number> {
  sys.trace.emit('syscall', 'exit', 'i', { proc: p.name });
  return yield* doExit(sys, p);
}

/** A CPU read by a thread of `p`: faults as the MMU would. ret is bytes read or -EFAULT / -ENOMEM. */
/**
 * How much of [addr, addr + len) a CPU access can reach before it must fault for good: 0 when the
 * range leaves the user address space (access_ok() fails), else up to the first hole in the VMAs
 * plus one byte, so the access still takes the fault the kernel takes there (a hole a VMA that
 * grows down may grow over counts as mapped). Keeps the buffers a huge request needs
 * proportional to what is mapped.
 */
export function reachable(p: Process, addrIn: number, lenIn: number): number {
  const mm = p.mm;
  let addr: number;
  let len: number;
  if (plainUlong(addrIn) && plainUlong(lenIn)) {
    addr = addrIn;
    len = lenIn;
  } else {
    const addrU = ulong(addrIn);
    const lenU = ulong(lenIn);
    if (addrU === null || lenU === null) return -1;
    // A value of 2^53 or more is beyond the user space, as its stand-in is.
    addr = standIn(addrU);
    len = standIn(lenU);
  }
  if (mm === null || addr + len > mm.taskSize) return -1;
  let a = addr;
  const end = addr + len;
  while (a < end) {
    const v = mm.vmaLookup(a);
    if (v !== null) {
      a = v.end;
      continue;
    }
    // A hole just below a VMA that grows down is not one yet: the fault may grow the VMA over
    // it, to RLIMIT_STACK at most.
    const next = mm.findVma(a);
    if (next === null || (next.flags & VM.GROWSDOWN) === 0 || next.end - a > p.rlim.stack.cur)
      return Math.min(len, a - addr + 1);
    a = next.end;
  }
  return len;
}

/** A CPU read by a thread of `p`. Returns bytes read or -EFAULT / -ENOMEM (and the bytes). */
export function* cpuRead(
  sys: System,
  p: Process,
  addr: number,
  len: number,
): KGen<{ ret: number; data: Uint8Array }> {
  if (p.mm === null) return { ret: -Errno.ESRCH, data: new Uint8Array(0) };
  const n = reachable(p, addr, len);
  if (n < 0) return { ret: -Errno.EFAULT, data: new Uint8Array(0) };
  const data = new Uint8Array(n);
  const mm = yield* taskMmget(p);
  if (mm === null) return { ret: -Errno.ESRCH, data: new Uint8Array(0) };
  // reachable() >= 0 means both were integers the model holds (a BigInt that fits, too).
  const ret = yield* cpuAccess(mm, ulongStandIn(addr), data, false);
  yield* taskMmput(p, mm);
  sys.trace.cpuReadBytes.add(Math.max(0, ret));
  return { ret: n < standIn(ulong(len) ?? 0) && ret >= 0 ? -Errno.EFAULT : ret, data };
}

/**
 * A CPU write by a thread of `p`. Returns bytes written or -EFAULT / -ENOMEM. Bytes before a
 * fault stay written, as a store loop leaves them.
 */
export function* cpuWrite(sys: System, p: Process, addr: number, data: Uint8Array): KGen<number> {
  if (p.mm === null) return -Errno.ESRCH;
  const n = reachable(p, addr, data.length);
  if (n < 0) return -Errno.EFAULT;
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const ret = yield* cpuAccess(mm, ulongStandIn(addr), n < data.length ? data.subarray(0, n) : data, true);
  yield* taskMmput(p, mm);
  sys.trace.cpuWriteBytes.add(Math.max(0, ret));
  return n < data.length && ret >= 0 ? -Errno.EFAULT : ret;
}

/** Models memfd_create(2). */
export function* sysMemfdCreate(sys: System, name: string, flags: number): KGen<number> {
  yield { kind: 'step', label: 'memfd_create' };
  const known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
  // With MFD_HUGETLB the flags may also name the huge page size (log2, MFD_HUGE_2MB and the like).
  const sizeBits = (flags & MFD_HUGETLB) !== 0 ? MFD_HUGE_MASK * 2 ** MFD_HUGE_SHIFT : 0;
  if ((flags & ~(known | sizeBits)) !== 0) return -Errno.EINVAL;
  if ((flags & MFD_EXEC) !== 0 && (flags & MFD_NOEXEC_SEAL) !== 0) return -Errno.EINVAL;
  // Neither MFD_EXEC nor MFD_NOEXEC_SEAL: vm.memfd_noexec is 0 (its default), which means MFD_EXEC.
  if (name.length > 249) return -Errno.EINVAL;
  // hugetlb_file_setup(): a size with no hstate (anything but the default and 2 MiB) is -ENODEV.
  const sizeLog = Math.floor(flags / 2 ** MFD_HUGE_SHIFT) & MFD_HUGE_MASK;
  if ((flags & MFD_HUGETLB) !== 0 && sizeLog !== 0 && sizeLog !== 21) return -Errno.ENODEV;
  if (sys.inject.shouldFail('memfd_create')) return -Errno.ENOMEM;
  const f = shmemFileSetup(sys, `memfd:${name}`, 0, (flags & MFD_HUGETLB) !== 0 ? 'hugetlb' : 'shmem');
  // memfd_alloc_file(): MFD_NOEXEC_SEAL takes the exec bits off the mode and seals them so (and
  // allows sealing); MFD_ALLOW_SEALING alone allows sealing.
  if ((flags & MFD_NOEXEC_SEAL) !== 0) {
    f.inode.mode &= ~0o111;
    f.inode.seals = (f.inode.seals & ~F_SEAL_SEAL) | F_SEAL_EXEC;
  } else if ((flags & MFD_ALLOW_SEALING) !== 0) f.inode.seals &= ~F_SEAL_SEAL;
  return sys.installFd(f);
}

function fileFor(sys: System, fd: number): File | null {
  const f = sys.fileOf(fd);
  return f !== null && f.inode.kind !== 'device' ? f : null;
}

export function* sysFtruncate(sys: System, fd: number, lengthIn: number): KGen<number> {
  const length = loff(lengthIn);
  if (length === null) return -Errno.EINVAL;
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  if (f.inode.kind === 'device' || !f.writable) return -Errno.EINVAL;
  if (length < 0) return -Errno.EINVAL;
  if (f.inode.kind === 'hugetlb' && length % (PAGE_SIZE * 512) !== 0) return -Errno.EINVAL;
  // Held (fdget) across the truncation's unmap, which may sleep.
  fget(f);
  const r = yield* setSizeLocked(sys, f.inode, length);
  yield* fdput(sys, f);
  return r;
}

/** do_truncate(): the size changes under the inode lock. */
function* setSizeLocked(sys: System, inode: Inode, size: number): KGen<number> {
  const lock = inodeLockOf(sys, inode);
  yield* lock.downWrite();
  const r = yield* shmemSetSize(sys, inode, size);
  yield* lock.upWrite();
  return r;
}

/**
 * Models fallocate(2): allocates the range of a tmpfs or hugetlbfs file, or punches a hole in it
 * (vfsFallocate()). An offset or length past 2^53 that a bigint gives is -EINVAL when negative,
 * else -EFBIG (the range ends past the largest file).
 */
export function* sysFallocate(
  sys: System,
  fd: number,
  mode: number,
  offsetIn: unknown,
  lenIn: unknown,
): KGen<number> {
  if (!ints(fd, mode)) return -Errno.EINVAL;
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  const offset = loff(offsetIn);
  const len = loff(lenIn);
  if (offset === null || len === null) {
    const negative = [offsetIn, lenIn].some((v) =>
      typeof v === 'bigint' ? v < 0n : typeof v !== 'number' || v < 0,
    );
    return negative ? -Errno.EINVAL : -Errno.EFBIG;
  }
  // Held (fdget) across the allocation, which may sleep in reclaim, and the hole's unmap.
  fget(f);
  const r = yield* vfsFallocate(sys, f, mode, offset, len);
  yield* fdput(sys, f);
  return r;
}

export function* sysPwrite(sys: System, fd: number, data: Uint8Array, offsetIn: number): KGen<number> {
  const offset = loff(offsetIn);
  if (offset === null) return -Errno.EINVAL;
  const f = fileFor(sys, fd);
  if (f === null) return sys.fileOf(fd) === null ? -Errno.EBADF : -Errno.EINVAL;
  if (!f.writable) return -Errno.EBADF;
  // hugetlbfs has no write method (no FMODE_CAN_WRITE): vfs_write() refuses any length.
  if (f.inode.kind === 'hugetlb') return -Errno.EINVAL;
  // Held (fdget) across the write's page allocations, which may sleep in reclaim: a close() by
  // another thread meanwhile must not evict the inode the write is still filling.
  fget(f);
  const r = yield* writeLocked(sys, f, data, offset, false);
  yield* fdput(sys, f);
  return r;
}

export function* sysPread(
  sys: System,
  fd: number,
  len: number,
  offset: number,
): KGen<{ ret: number; data: Uint8Array }> {
  yield { kind: 'step', label: 'pread' };
  const a = [loff(len), loff(offset)];
  if (a[0] === null || a[1] === null) return { ret: -Errno.EINVAL, data: new Uint8Array(0) };
  const f = fileFor(sys, fd);
  if (f === null)
    return { ret: sys.fileOf(fd) === null ? -Errno.EBADF : -Errno.EINVAL, data: new Uint8Array(0) };
  if (!f.readable) return { ret: -Errno.EBADF, data: new Uint8Array(0) };
  // Held (fdget) across a swap-in's allocation, which may sleep in reclaim.
  fget(f);
  const r = yield* shmemRead(sys, f.inode, Math.min(a[0], MAX_RW_COUNT), a[1]);
  yield* fdput(sys, f);
  return r;
}

/**
 * shmem_file_write_iter(): `data` at `offset` under the inode lock, or at the end of the file for
 * O_APPEND (IOCB_APPEND), pwrite() too; the end is read under the lock. With `advance` (write(),
 * under the f_pos_lock) the file position moves past what was written. Returns what shmemWrite()
 * returns.
 */
function* writeLocked(
  sys: System,
  f: File,
  data: Uint8Array,
  offset: number,
  advance: boolean,
): KGen<number> {
  const lock = inodeLockOf(sys, f.inode);
  yield* lock.downWrite();
  const at = (f.mode & O_APPEND) !== 0 && data.length > 0 ? f.inode.size : offset;
  const r = yield* shmemWrite(sys, f.inode, data.subarray(0, MAX_RW_COUNT), at);
  if (advance && r >= 0) f.pos = at + r;
  yield* lock.upWrite();
  return r;
}

/** The file's f_pos_lock (fdget_pos()), made the first time a call needs it. */
function posLockOf(sys: System, f: File): Mutex {
  if (f.posLock === null) f.posLock = new Mutex(sys.sched, `file[${f.id}].f_pos_lock`, 'file.f_pos_lock');
  return f.posLock;
}

/**
 * Models read(2) of a tmpfs or hugetlbfs file: up to `len` bytes from the file position, which
 * advances by what was read (nothing past the end of the file). The position is the open file's:
 * dup()ed descriptors share it, a second open() has its own. The call holds the file's
 * f_pos_lock throughout, as fdget_pos() does for a regular file, so two reads through one open
 * file never read from the same position. A device file has no read method (-EINVAL).
 */
export function* sysRead(sys: System, fd: number, len: number): KGen<{ ret: number; data: Uint8Array }> {
  yield { kind: 'step', label: 'read' };
  const none = new Uint8Array(0);
  const f = sys.fileOf(fd);
  if (f === null) return { ret: -Errno.EBADF, data: none };
  if (!f.readable) return { ret: -Errno.EBADF, data: none };
  if (f.inode.kind === 'device') return { ret: -Errno.EINVAL, data: none };
  const n = loff(len);
  if (n === null || n < 0) return { ret: -Errno.EINVAL, data: none };
  fget(f);
  const lock = posLockOf(sys, f);
  yield* lock.lock();
  const r = yield* shmemRead(sys, f.inode, Math.min(n, MAX_RW_COUNT), f.pos);
  if (r.ret > 0) f.pos += r.ret;
  yield* lock.unlock();
  yield* fdput(sys, f);
  return r;
}

/**
 * Models write(2) of a tmpfs file: `data` at the file position (at the end of the file with
 * O_APPEND), which advances by what was written. Seals and the largest file refuse it as they
 * refuse pwrite(); hugetlbfs and device files have no write method (-EINVAL). Holds the file's
 * f_pos_lock throughout, as read() does.
 */
export function* sysWrite(sys: System, fd: number, data: Uint8Array): KGen<number> {
  yield { kind: 'step', label: 'write' };
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  if (!f.writable) return -Errno.EBADF;
  if (f.inode.kind !== 'shmem') return -Errno.EINVAL;
  fget(f);
  const lock = posLockOf(sys, f);
  yield* lock.lock();
  const r = yield* writeLocked(sys, f, data, f.pos, true);
  yield* lock.unlock();
  yield* fdput(sys, f);
  return r;
}

/**
 * The largest file position the model keeps: the kernel's MAX_LFS_FILESIZE is 2^63 - 1, and a
 * position past the largest safe integer is refused here (-EINVAL) instead.
 */
export const MAX_FILE_POS = Number.MAX_SAFE_INTEGER;

/** Models vfs_setpos(): the new position, or -EINVAL for one below 0 or past the largest. */
function setPos(f: File, pos: number): number {
  if (pos < 0 || pos > MAX_FILE_POS) return -Errno.EINVAL;
  f.pos = pos;
  return pos;
}

/**
 * Models mapping_seek_hole_data() over a tmpfs file's page cache from `start` to `end` (the size):
 * a page that is up to date or swapped out is data; a page fallocate() reserved and nothing wrote
 * (not up to date) is a hole, as is an index with no page. SEEK_DATA finds the first data at or
 * after `start` (-ENXIO if none before `end`), SEEK_HOLE the first hole (`end` if none).
 */
function seekHoleData(sys: System, f: File, start: number, end: number, data: boolean): number {
  if (end <= start) return -Errno.ENXIO;
  const inode = f.inode;
  const last = Math.floor((end - 1) / PAGE_SIZE);
  let at = start;
  let index = Math.floor(start / PAGE_SIZE);
  while (index <= last) {
    // The next index that holds a page or a swap entry.
    const page = inode.pages.find(index, last);
    const slot = inode.swapped.find(index, last);
    if (page === undefined && slot === undefined) break;
    const next = page !== undefined && (slot === undefined || page[0] <= slot[0]) ? page[0] : slot![0];
    const pos = next * PAGE_SIZE;
    if (at < pos) {
      if (!data) return at;
      at = pos;
    }
    const pfn = inode.pages.load(next);
    const isData = pfn === undefined || (sys.phys.flags[pfn] & PG.uptodate) !== 0;
    if (isData === data) return Math.min(at, end);
    at = pos + PAGE_SIZE;
    if (at >= end) break;
    index = next + 1;
  }
  if (data) return -Errno.ENXIO;
  return Math.min(at, end);
}

/**
 * Models lseek(2). A tmpfs file takes shmem_file_llseek(): SEEK_SET, SEEK_CUR and SEEK_END set the
 * position (-EINVAL below 0), SEEK_DATA and SEEK_HOLE look for data or a hole in its pages
 * (-ENXIO at or past the end, or below 0). A hugetlbfs file takes default_llseek(): past the end
 * SEEK_DATA and SEEK_HOLE are -ENXIO, before it the whole file is data. A device file takes its
 * driver's llseek: default_llseek over a size of 0 (dmirror), noop_llseek, which leaves the
 * position (xe), or none: -ESPIPE (iommufd). A whence past SEEK_HOLE is -EINVAL.
 */
export function* sysLseek(sys: System, fd: number, offsetIn: number | bigint, whence: number): KGen<number> {
  yield { kind: 'step', label: 'lseek' };
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  if (!ints(whence) || whence < SEEK_SET || whence > SEEK_HOLE) return -Errno.EINVAL;
  const how = f.inode.kind === 'shmem' ? 'shmem' : f.inode.kind === 'hugetlb' ? 'default' : f.fops?.llseek;
  if (how === undefined) return -Errno.ESPIPE;
  if (how === 'noop') return f.pos;
  const offset = loff(offsetIn);
  if (offset === null) return -Errno.EINVAL;
  // Held (fdget_pos()) while the call waits for its locks: a close() meanwhile does not free it.
  fget(f);
  const lock = posLockOf(sys, f);
  yield* lock.lock();
  // default_llseek() holds the inode lock for every whence, shmem_file_llseek() for its search of
  // data and holes.
  const inodeLock = how === 'default' || whence >= SEEK_DATA ? inodeLockOf(sys, f.inode) : null;
  if (inodeLock !== null) yield* inodeLock.downWrite();
  const r = llseek(sys, f, offset, whence);
  if (inodeLock !== null) yield* inodeLock.upWrite();
  yield* lock.unlock();
  yield* fdput(sys, f);
  return r;
}

/** The file system's llseek, with the file's f_pos_lock held (see sysLseek()). */
function llseek(sys: System, f: File, offset: number, whence: number): number {
  const size = f.inode.size;
  if (whence === SEEK_CUR) return offset === 0 ? f.pos : setPos(f, f.pos + offset);
  if (whence === SEEK_END) return setPos(f, offset + size);
  if (whence === SEEK_SET) return setPos(f, offset);
  if (f.inode.kind !== 'shmem') {
    // default_llseek(): before the end, the whole file is data.
    if (offset >= size) return -Errno.ENXIO;
    return setPos(f, whence === SEEK_HOLE ? size : offset);
  }
  if (offset < 0) return -Errno.ENXIO;
  const r = seekHoleData(sys, f, offset, size, whence === SEEK_DATA);
  return r < 0 ? r : setPos(f, r);
}

/**
 * Models dup(2): a second descriptor for the same open file (get_file()), which shares its mode
 * and, for a memfd, its seals. The model numbers descriptors in order and never reuses one; the
 * kernel takes the lowest free.
 */
export function* sysDup(sys: System, fd: number): KGen<number> {
  yield { kind: 'step', label: 'dup' };
  if (!ints(fd)) return -Errno.EBADF;
  // fget_raw(): an O_PATH file may be duplicated too.
  const f = sys.files.get(fd);
  if (f === undefined) return -Errno.EBADF;
  f.refs++;
  return sys.installFd(f);
}

/**
 * Models fchmod(2): the permission bits of the file's mode (`mode & 07777`; the file type bits of
 * `mode` are ignored), as its owner sets them. On a tmpfs file shmem_setattr() refuses to change
 * an exec bit once F_SEAL_EXEC is set (-EPERM); hugetlbfs has no such check. A device node
 * belongs to root, which no process of the model is (-EPERM); an anonymous inode takes no
 * attributes (-EOPNOTSUPP).
 */
export function* sysFchmod(sys: System, fd: number, mode: number): KGen<number> {
  yield { kind: 'step', label: 'fchmod' };
  if (!ints(fd, mode)) return -Errno.EINVAL;
  // umode_t: the low 16 bits of the value passed (a negative one as the C ABI passes it).
  mode &= 0xffff;
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  const inode = f.inode;
  if (inode.kind === 'device') return inode.cdevOpen === null ? -Errno.EOPNOTSUPP : -Errno.EPERM;
  const bits = mode & 0o7777;
  // chmod_common(): the check and the change under the inode lock.
  const lock = inodeLockOf(sys, inode);
  yield* lock.downWrite();
  const frozen =
    inode.kind === 'shmem' && (inode.seals & F_SEAL_EXEC) !== 0 && ((inode.mode ^ bits) & 0o111) !== 0;
  if (!frozen) inode.mode = bits;
  yield* lock.upWrite();
  return frozen ? -Errno.EPERM : 0;
}

/** The flags open(2) keeps (VALID_OPEN_FLAGS): it ignores any other bit. */
export const VALID_OPEN_FLAGS = 0o37777703;
/** What O_PATH leaves of the other flags. */
export const O_PATH_FLAGS = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;
/** The path of descriptor N: the only paths the model's file system has. */
export const PROC_SELF_FD = /^\/proc\/self\/fd\/(0|[1-9][0-9]{0,9})(\/?)$/;

/**
 * Models open(2) by `p` of /proc/self/fd/N, the only paths the model has (any other is -ENOENT):
 * a new open file of the inode behind descriptor N, with its own access mode, as opposed to dup().
 * A tmpfs or hugetlbfs file gets a new struct file (O_TRUNC truncates it to 0, which F_SEAL_SHRINK
 * refuses); a character device runs its driver's open() again for `p` (-ENXIO once the device is
 * removed); an anonymous inode's file is -EACCES. O_PATH gives a file only close(), dup() and open() take. `flags` are open()'s O_*
 * bits (build_open_flags()); permission to read and write is taken as granted (the opener owns
 * the file).
 */
export function* sysOpen(sys: System, p: Process, path: unknown, flagsIn: number): KGen<number> {
  yield { kind: 'step', label: 'open' };
  if (!ints(flagsIn)) return -Errno.EINVAL;
  let flags = flagsIn & VALID_OPEN_FLAGS;
  if ((flags & O_PATH) !== 0) flags &= O_PATH_FLAGS;
  const acc = flags & O_ACCMODE;
  // ACC_MODE(): O_ACCMODE asks for read and write permission; O_TRUNC asks for write.
  const mayWrite = acc !== O_RDONLY || (flags & O_TRUNC) !== 0;
  if ((flags & (O_DIRECTORY | O_CREAT)) === (O_DIRECTORY | O_CREAT)) return -Errno.EINVAL;
  if ((flags & O_TMPFILE_BIT) !== 0 && ((flags & O_DIRECTORY) === 0 || !mayWrite)) return -Errno.EINVAL;
  if (typeof path !== 'string') return -Errno.EFAULT;
  // getname(): the string ends at its first NUL, and with it at most PATH_MAX (4096) bytes.
  const name = path.split('\0', 1)[0];
  if (name.length >= 4096 || new TextEncoder().encode(name).length >= 4096) return -Errno.ENAMETOOLONG;
  // Path walk: repeated slashes are one.
  const m = PROC_SELF_FD.exec(name.replace(/\/\/+/g, '/'));
  if (m === null) return -Errno.ENOENT;
  const target = sys.files.get(Number(m[1]));
  if (target === undefined) return -Errno.ENOENT;
  // A trailing slash asks for a directory; so do O_DIRECTORY and O_TMPFILE.
  if (m[2] !== '' || (flags & O_DIRECTORY) !== 0) return -Errno.ENOTDIR;
  if ((flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)) return -Errno.EEXIST;
  // The path is a magic link: O_NOFOLLOW stops at it, and O_PATH | O_NOFOLLOW opens the link
  // itself (a file with both bits). A path through such a file's own link ends at that link:
  // O_PATH opens it again, anything else stops there.
  const link = target.path && (target.mode & O_NOFOLLOW) !== 0;
  if ((flags & (O_NOFOLLOW | O_PATH)) === O_NOFOLLOW || (link && (flags & O_PATH) === 0)) return -Errno.ELOOP;
  const inode = target.inode;
  const keep = (flags & ~O_CLOEXEC) | (link ? O_NOFOLLOW : 0);
  if ((flags & O_PATH) !== 0) {
    if (inode.kind === 'device') return sys.installFd(new File(sys.nextId('file'), inode, keep, null, null));
    return sys.installFd(shmemOpenFile(sys, inode, keep));
  }
  if (inode.kind === 'device') {
    if (inode.cdevOpen === null) return -Errno.EACCES;
    return yield* inode.cdevOpen(p);
  }
  const f = shmemOpenFile(sys, inode, keep);
  if ((flags & O_TRUNC) !== 0) {
    // handle_truncate(): the size goes to 0 through the file system's setattr (its seal checks).
    const r = yield* setSizeLocked(sys, inode, 0);
    if (r < 0) {
      fput(sys, f);
      return r;
    }
  }
  return sys.installFd(f);
}

/** Models close(2): the descriptor goes; the file goes with its last reference. */
export function* sysClose(sys: System, fd: number): KGen<number> {
  yield { kind: 'step', label: 'close' };
  const f = sys.files.get(fd);
  if (f === undefined) return -Errno.EBADF;
  sys.files.delete(fd);
  const fops = f.fops;
  if (f.refs === 1 && fops?.release !== undefined) {
    f.refs--;
    yield* fops.release(f);
    return 0;
  }
  fput(sys, f);
  return 0;
}

/**
 * Models fcntl(2) with the seal commands (F_ADD_SEALS, F_GET_SEALS), the only ones the model has:
 * any other command is -EINVAL. `arg` is an unsigned long (a number or bigint); the seal commands
 * take its low 32 bits.
 */
export function* sysFcntl(sys: System, fd: number, cmd: number, arg: unknown): KGen<number> {
  yield { kind: 'step', label: 'fcntl' };
  if (!ints(fd, cmd)) return -Errno.EINVAL;
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  const u = ulong(arg);
  if (u === null) return -Errno.EINVAL;
  const low = typeof u === 'number' ? u % 2 ** 32 : Number(BigInt.asUintN(32, u));
  // Held (fdget) across F_ADD_SEALS's waits for pinned pages.
  fget(f);
  const r = yield* memfdFcntl(sys, f, cmd, low);
  yield* fdput(sys, f);
  return r;
}

/**
 * Device ioctls by their uAPI name; the argument struct is a plain object with the kernel's field
 * names. `caller` is the process making the call (`current`): while the ioctl runs the thread is
 * one of its threads, so a fatal signal to it (its exit) reaches a killable wait inside the driver
 * (fatal_signal_pending(current)). Without a caller the ioctl runs as no process.
 */
export function* sysIoctl(
  sys: System,
  fd: number,
  name: string,
  arg: Record<string, unknown>,
  caller?: Process,
): KGen<number> {
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  const fops = f.fops;
  if (fops?.ioctl === undefined) return -Errno.ENOTTY;
  sys.trace.emit('syscall', name, 'B', { fd });
  if (caller !== undefined) enterTask(sys.sched, caller);
  // fdget(): the call holds the file, so a close() by another thread meanwhile only drops the fd,
  // and the release runs when the call puts it (the kernel's fdput(), then __fput()).
  f.refs++;
  let r: number;
  try {
    r = yield* fops.ioctl(f, name, arg);
  } catch (e) {
    fput(sys, f);
    throw e;
  } finally {
    if (caller !== undefined) leaveTask(sys.sched);
  }
  sys.trace.emit('syscall', name, 'E', { ret: r });
  yield* fdput(sys, f);
  return r;
}

/** Memory pressure: frees up to `nrPages` pages by aging and swap-out (all it can when nrPages <= 0). */
export function* reclaim(sys: System, nrPages = 0): KGen<number> {
  return yield* reclaimPages(sys, nrPages);
}

/** The OOM reaper on `p`'s private memory (non-blockable invalidations). Returns VMAs reaped or -errno. */
export function* oomReap(sys: System, p: Process): KGen<number> {
  if (p.mm === null) return -Errno.ESRCH;
  return yield* oomReapTask(sys, p.mm);
}

/**
 * Writing `value` to /proc/pid/clear_refs: 1 to 5 (CLEAR_REFS in fs/task_mmu.ts; 4 is
 * clearSoftDirty()), anything else -EINVAL before the mm is looked at.
 */
export function* sysClearRefs(sys: System, p: Process, value: number): KGen<number> {
  if (!ints(value) || value < CLEAR_REFS.ALL || value > CLEAR_REFS.MM_HIWATER_RSS) return -Errno.EINVAL;
  if (value === CLEAR_REFS.SOFT_DIRTY) return yield* clearSoftDirty(sys, p);
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* clearRefs(mm, value);
  yield* taskMmput(p, mm);
  return r;
}

/** Writing 4 to /proc/pid/clear_refs (clear_refs_write() holds the mm with get_task_mm()). */
export function* clearSoftDirty(sys: System, p: Process): KGen<number> {
  const mm = yield* taskMmget(p);
  if (mm === null) return -Errno.ESRCH;
  const r = yield* clearRefsSoftDirty(mm);
  yield* taskMmput(p, mm);
  return r;
}

/** Reading /proc/pid/pagemap for `npages` pages from `addr`. */
export function* pagemapRead(sys: System, p: Process, addr: number, npages: number): KGen<PagemapEntry[]> {
  yield { kind: 'step', label: 'pagemap_read' };
  if (p.mm === null) return [];
  // Entries stop at the top of the user address space: the read returns fewer bytes.
  const top = Math.floor((p.mm.taskSize - Math.min(addr, p.mm.taskSize)) / PAGE_SIZE);
  return pagemapRange(sys, p.mm, addr, Math.min(npages, top));
}

/**
 * Reads /proc/pid/maps or smaps as m_start() does: with the mm held and its mmap lock taken for
 * reading, killable. A process with no mm lists nothing; a wait for the lock ended by a kill is
 * -EINTR.
 */
function* procMapsRead<T>(p: Process, label: string, read: (mm: MmStruct) => T[]): KGen<T[] | number> {
  yield { kind: 'step', label };
  const mm = yield* taskMmget(p);
  if (mm === null) return [];
  if ((yield* mmapReadLockKillable(mm)) !== 0) {
    yield* taskMmput(p, mm);
    return -Errno.EINTR;
  }
  const entries = read(mm);
  yield* mm.mmapLock.upRead();
  yield* taskMmput(p, mm);
  return entries;
}

/** Reading /proc/pid/maps: the VMAs that overlap [start, end), each whole. */
export function* mapsRead(sys: System, p: Process, start: number, end: number): KGen<MapsEntry[] | number> {
  return yield* procMapsRead(p, 'maps_read', (mm) => mapsRange(mm, start, end));
}

/** Reading /proc/pid/smaps: the VMAs that overlap [start, end), each whole, with their page counts. */
export function* smapsRead(sys: System, p: Process, start: number, end: number): KGen<SmapsEntry[] | number> {
  return yield* procMapsRead(p, 'smaps_read', (mm) => smapsRange(sys, mm, start, end));
}
