/**
 * File seals (mm/memfd.c): fcntl(F_ADD_SEALS / F_GET_SEALS) on tmpfs and hugetlbfs files, and the
 * check mmap() makes against them. The other places a seal refuses something read the inode's
 * seals themselves: a write (shmemWrite), a size change (shmemSetSize) and fallocate()
 * (shmemFallocate).
 */
import { sleepNs } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_SEAL_EXEC,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
} from './mman.ts';
import { type File, type Inode, VM } from './mm_types.ts';
import { folioMapcount } from './rmap.ts';
import { inodeLockOf } from './shmem.ts';

/** Every seal fcntl() knows. */
export const F_ALL_SEALS =
  F_SEAL_SEAL | F_SEAL_EXEC | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;

/** Whether the file's inode keeps seals (memfd_file_seals_ptr(): tmpfs and hugetlbfs only). */
export function hasSeals(inode: Inode): boolean {
  return inode.kind === 'shmem' || inode.kind === 'hugetlb';
}

/** Whether the seals refuse new writes through the file and new shared writable mappings. */
export function isWriteSealed(seals: number): boolean {
  return (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) !== 0;
}

/**
 * Models memfd_check_seals_mmap(): under a write seal a shared writable mapping is -EPERM, and a
 * shared read-only one loses VM_MAYWRITE, so that mprotect() cannot make it writable later.
 * Private mappings are not concerned. Returns the flags to map with, or -EPERM.
 */
export function memfdCheckSealsMmap(file: File, vmFlags: number): number {
  const inode = file.inode;
  if (!hasSeals(inode) || !isWriteSealed(inode.seals) || (vmFlags & VM.SHARED) === 0) return vmFlags;
  if ((vmFlags & VM.WRITE) !== 0) return -Errno.EPERM;
  return vmFlags & ~VM.MAYWRITE;
}

/**
 * Models mapping_writably_mapped(): whether some VMA maps the file shared with VM_MAYWRITE (the
 * kernel counts them in i_mmap_writable; the model looks at the VMAs that map the file).
 */
function writablyMapped(inode: Inode): boolean {
  for (const vma of inode.iMmap)
    if ((vma.flags & (VM.SHARED | VM.MAYWRITE)) === (VM.SHARED | VM.MAYWRITE)) return true;
  return false;
}

/** The scans memfd_wait_for_pins() makes after its first, and how long it sleeps before each. */
const LAST_SCAN = 4;
/** (HZ << scan) / 200 jiffies before scan 1..4: 10, 20, 40 and 80 ms. */
const SCAN_SLEEP_NS = 5_000_000;

/** The page-cache pages of `inode` with a reference beyond the cache's and their mappings'. */
function pinnedPages(sys: System, inode: Inode, among: Iterable<number> | null): number[] {
  const phys = sys.phys;
  const out: number[] = [];
  const check = (index: number, pfn: number): void => {
    const h = phys.head(pfn);
    if (phys.refcount[h] !== folioMapcount(phys, h) + 1) out.push(index);
  };
  if (among === null) {
    for (const [index, pfn] of inode.pages.range(0, Infinity)) check(index, pfn);
  } else {
    for (const index of among) {
      const pfn = inode.pages.load(index);
      if (pfn !== undefined) check(index, pfn);
    }
  }
  return out;
}

/**
 * Models memfd_wait_for_pins(): a page someone holds beyond the page cache and its mappings (a
 * GUP pin, a reference a kernel path holds for a moment) may still be written through. The pages
 * found so are looked at again after sleeps of 10, 20, 40 and 80 ms; one still held at the last
 * look is -EBUSY.
 */
function* memfdWaitForPins(sys: System, inode: Inode): KGen<number> {
  let tagged = pinnedPages(sys, inode, null);
  for (let scan = 0; scan <= LAST_SCAN; scan++) {
    if (tagged.length === 0) return 0;
    if (scan > 0) yield* sleepNs(sys.sched, SCAN_SLEEP_NS << scan);
    const still = pinnedPages(sys, inode, tagged);
    if (scan === LAST_SCAN && still.length > 0) return -Errno.EBUSY;
    tagged = still;
  }
  return 0;
}

/**
 * Models memfd_add_seals(). Checked in this order: a file not open for writing (-EPERM), an unknown
 * seal (-EINVAL), a file that keeps no seals (-EINVAL), F_SEAL_SEAL already set (-EPERM). F_SEAL_EXEC
 * on a file whose mode has exec bits brings the write, grow and shrink seals with it. A first
 * F_SEAL_WRITE needs no shared writable mapping of the file (-EBUSY) and no page held beyond
 * its mappings (memfdWaitForPins()).
 */
function* memfdAddSeals(sys: System, file: File, seals: number): KGen<number> {
  if (!file.writable) return -Errno.EPERM;
  if ((seals & ~F_ALL_SEALS) !== 0) return -Errno.EINVAL;
  // The rest holds the inode lock, the pins' wait included: a write, a size change or another
  // F_ADD_SEALS waits for it.
  const lock = inodeLockOf(sys, file.inode);
  yield* lock.downWrite();
  const r = yield* memfdAddSealsLocked(sys, file.inode, seals);
  yield* lock.upWrite();
  return r;
}

/** memfd_add_seals() under the inode lock. */
function* memfdAddSealsLocked(sys: System, inode: Inode, sealsIn: number): KGen<number> {
  let seals = sealsIn;
  if (!hasSeals(inode)) return -Errno.EINVAL;
  if ((inode.seals & F_SEAL_SEAL) !== 0) return -Errno.EPERM;
  if ((seals & F_SEAL_EXEC) !== 0 && (inode.mode & 0o111) !== 0)
    seals |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
  if ((seals & F_SEAL_WRITE) !== 0 && (inode.seals & F_SEAL_WRITE) === 0) {
    // mapping_deny_writable(): from here no shared writable mapping can be made (the kernel's
    // i_mmap_writable goes negative), so the pins looked for can only go.
    if (writablyMapped(inode)) return -Errno.EBUSY;
    inode.denyWritable++;
    const err = yield* memfdWaitForPins(sys, inode);
    inode.denyWritable--;
    if (err < 0) return err;
  }
  inode.seals |= seals;
  return 0;
}

/**
 * Models the seal commands of fcntl(2) (memfd_fcntl()): F_ADD_SEALS adds the seals in the low 32
 * bits of `arg` (do_fcntl() passes them as an unsigned int), F_GET_SEALS returns the file's seals.
 * Any other command is -EINVAL: the model has no other fcntl().
 */
export function* memfdFcntl(sys: System, file: File, cmd: number, arg: number): KGen<number> {
  switch (cmd) {
    case F_ADD_SEALS:
      return yield* memfdAddSeals(sys, file, arg);
    case F_GET_SEALS:
      return hasSeals(file.inode) ? file.inode.seals : -Errno.EINVAL;
    default:
      return -Errno.EINVAL;
  }
}
