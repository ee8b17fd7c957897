/**
 * The iommufd model's view of the mm layer: long-term pinning (pin_user_pages_remote /
 * memfd_pin_folios), unpinning and access_remote_vm, plus thin wrappers over the System
 * syscalls that the ported selftests use, returning what the C tests would see.
 */
import type { KGen } from '../../sched/types.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import { Errno } from '../errno.ts';
import {
  FOLL_LONGTERM,
  FOLL_PIN,
  FOLL_WRITE,
  memfdPinPages as gupMemfdPinPages,
  pinUserPagesRemote,
  unpinUserPages,
} from '../mm/gup.ts';
import { copyUser } from '../mm/memory.ts';
import type { File, MmStruct } from '../mm/mm_types.ts';
import type { Process, System } from '../system.ts';

export { FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE };

/**
 * Models pfn_reader_user_pin(): pin_user_pages_remote() with FOLL_LONGTERM under the mmap read
 * lock. Pins up to `npages` from `start`; returns the count or -errno.
 */
export function* pinUserPages(
  _sys: System,
  mm: MmStruct,
  start: number,
  npages: number,
  write: boolean,
  out: number[],
): KGen<number> {
  if (mm.exited) return -Errno.EFAULT;
  yield* mm.mmapLock.downRead();
  try {
    return yield* pinUserPagesRemote(
      mm,
      start,
      npages,
      FOLL_LONGTERM | FOLL_PIN | (write ? FOLL_WRITE : 0),
      out,
    );
  } finally {
    yield* mm.mmapLock.upRead();
  }
}

/** Models memfd_pin_folios() page by page: pins file pages [first, first+npages). */
export function* memfdPinPages(
  sys: System,
  file: File,
  first: number,
  npages: number,
  out: number[],
): KGen<number> {
  return yield* gupMemfdPinPages(sys, file, first, npages, out);
}

/** Models unpin_user_pages_dirty_lock(). */
export function unpinPages(sys: System, pfns: ArrayLike<number>, n: number, dirty: boolean): void {
  unpinUserPages(sys, pfns, n, dirty);
}

/** Models access_remote_vm(): copies between `buf` and the mm; bytes copied or -EFAULT. */
export function* accessRemote(
  _sys: System,
  mm: MmStruct | null,
  addr: number,
  buf: Uint8Array,
  write: boolean,
): KGen<number> {
  // A caller whose process has exited has no user memory left to copy from or to.
  if (mm === null) return -Errno.EFAULT;
  return yield* copyUser(mm, addr, buf, write);
}

/** Looks up the PFN backing `addr` without keeping a reference (get_user_pages_fast + put_page). */
export function* lookupPfn(sys: System, mm: MmStruct | null, addr: number): KGen<number> {
  if (mm === null) return -Errno.EFAULT;
  const out: number[] = [];
  const rc = yield* pinUserPages(sys, mm, addr - (addr % PAGE_SIZE), 1, false, out);
  if (rc < 0) return rc;
  const pfn = out[0];
  unpinPages(sys, out, 1, false);
  return pfn;
}

// User-side syscalls for the ported tests.

export function umMmap(
  sys: System,
  p: Process,
  addr: number,
  length: number,
  prot: number,
  flags: number,
  fd = -1,
  offset = 0,
): number {
  return sys.mmap(p, addr, length, prot, flags, fd, offset);
}

export function umMunmap(sys: System, p: Process, addr: number, length: number): number {
  return sys.munmap(p, addr, length);
}

export function umWrite(sys: System, p: Process, addr: number, data: Uint8Array): number {
  return sys.write(p, addr, data);
}

export function umRead(sys: System, p: Process, addr: number, len: number): Uint8Array {
  const r = sys.read(p, addr, len);
  if (r.ret < 0) throw new Error(`read failed: ${r.ret}`);
  return r.data;
}

export function umMemfdCreate(sys: System, name: string, flags: number): number {
  return sys.memfdCreate(name, flags);
}

export function umFtruncate(sys: System, fd: number, len: number): number {
  return sys.ftruncate(fd, len);
}

export function umCloseFile(sys: System, fd: number): void {
  sys.close(fd);
}

/** fork(2) for the tests. */
export function umFork(sys: System, p: Process): Process {
  const r = sys.fork(p, `${p.name}-child`);
  if (r.ret < 0 || r.child === null) throw new Error(`fork failed: ${r.ret}`);
  return r.child;
}

/** exit(2) for the tests: the address space goes away (exit_mmap). */
export function umExit(sys: System, p: Process): void {
  sys.exit(p);
}
