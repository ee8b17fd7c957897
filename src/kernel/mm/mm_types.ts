import { IntervalTree, type IntervalNode } from '../../lib/interval_tree.ts';
import { PageTableStore } from '../../lib/pgtable_store.ts';
import { XArray } from '../../lib/xarray.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, TASK_SIZE } from '../../lib/units.ts';
import { type Mutex, RwSem, SpinLock } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import type { Process, System } from '../system.ts';
import type { Site } from '../uaf.ts';
import type { MmuNotifierSubscriptions } from './mmu_notifier.ts';
import { OWNER_REF, type RefSiteEntry } from './mm_refs.ts';
import { O_ACCMODE, O_PATH, O_RDONLY, O_RDWR, O_WRONLY } from './mman.ts';

/** vm_flags bits (include/linux/mm.h). */
export const VM = {
  READ: 0x1,
  WRITE: 0x2,
  EXEC: 0x4,
  SHARED: 0x8,
  MAYREAD: 0x10,
  MAYWRITE: 0x20,
  MAYEXEC: 0x40,
  MAYSHARE: 0x80,
  GROWSDOWN: 0x100,
  /**
   * VM_MAYBE_GUARD: guard markers may be in this VMA. Set on the whole VMA when guards are
   * installed, never cleared; sticky (see VM_STICKY). The kernel's bit is 11, which the model
   * gives VM_SEALED; it keeps this one in bit 9 (the kernel's VM_UFFD_MISSING, not modelled).
   */
  MAYBE_GUARD: 0x200,
  PFNMAP: 0x400,
  /**
   * VM_SEALED (mseal()). The kernel's bit is 42, past the 32 bits the model's flag word is
   * operated on with; the model uses bit 11, which no flag of the kernel's it models takes.
   */
  SEALED: 0x800,
  /**
   * VM_DROPPABLE (MAP_DROPPABLE): the kernel's bit is 40, past the model's 32-bit flag word; the
   * model uses bit 12 (the kernel's VM_UFFD_WP, which it does not model).
   */
  DROPPABLE: 0x1000,
  LOCKED: 0x2000,
  IO: 0x4000,
  SEQ_READ: 0x8000,
  RAND_READ: 0x10000,
  DONTCOPY: 0x20000,
  DONTEXPAND: 0x40000,
  LOCKONFAULT: 0x80000,
  ACCOUNT: 0x100000,
  NORESERVE: 0x200000,
  HUGETLB: 0x400000,
  WIPEONFORK: 0x2000000,
  DONTDUMP: 0x4000000,
  SOFTDIRTY: 0x8000000,
  MIXEDMAP: 0x10000000,
  HUGEPAGE: 0x20000000,
  NOHUGEPAGE: 0x40000000,
} as const;

/**
 * VM_STICKY: flags that do not keep VMAs from merging and that the merged VMA keeps if any part
 * had them (VM_SOFTDIRTY, VM_MAYBE_GUARD).
 */
export const VM_STICKY = VM.SOFTDIRTY | VM.MAYBE_GUARD;

/** VM_SPECIAL: mappings the core mm must not merge, migrate or treat as normal memory. */
export const VM_SPECIAL = VM.IO | VM.DONTEXPAND | VM.PFNMAP | VM.MIXEDMAP;
export const VM_ACCESS_FLAGS = VM.READ | VM.WRITE | VM.EXEC;

/** Lowest address a process may map (vm.mmap_min_addr). */
export const MMAP_MIN_ADDR = 65536;

/** stack_guard_gap: the room kept free below a VMA that grows down (256 pages, the default). */
export const STACK_GUARD_GAP = 256 * PAGE_SIZE;

/** Models vm_start_gap(): where a VMA begins for the placement of others, its guard gap included. */
export function vmStartGap(vma: { readonly start: number; readonly flags: number }): number {
  if ((vma.flags & VM.GROWSDOWN) === 0) return vma.start;
  return Math.max(0, vma.start - STACK_GUARD_GAP);
}

/** What a fault handler of a special mapping returns (vm_fault_t bits). */
export const VM_FAULT = {
  OOM: 0x1,
  SIGBUS: 0x2,
  MAJOR: 0x4,
  HWPOISON: 0x10,
  SIGSEGV: 0x40,
  NOPAGE: 0x100,
  LOCKED: 0x200,
  RETRY: 0x400,
  FALLBACK: 0x800,
  DONE_COW: 0x1000,
  NEEDDSYNC: 0x2000,
  COMPLETED: 0x4000,
} as const;
export const VM_FAULT_ERROR = VM_FAULT.OOM | VM_FAULT.SIGBUS | VM_FAULT.SIGSEGV | VM_FAULT.HWPOISON;

/** Models struct vm_fault, the state of one fault being handled. */
export interface VmFault {
  readonly vma: Vma;
  readonly address: number;
  readonly flags: number;
  /** The page the fault is about, for device-private and device-exclusive entries. */
  page: number;
}

/** Models vm_operations_struct, for mappings whose pages a driver provides. */
export interface VmOps {
  readonly name: string;
  fault?(vmf: VmFault): KGen<number>;
  close?(vma: Vma): void;
}

/** The identity of something page->mapping can point at. */
export interface Mapping {
  readonly mappingId: number;
}

/**
 * Models struct anon_vma: the set of VMAs (across forked processes) in which an anonymous page
 * whose page->mapping is this anon_vma may be mapped. The kernel links them through
 * anon_vma_chain; here each anon_vma keeps its VMAs directly.
 */
export class AnonVma implements Mapping {
  readonly vmas = new Set<Vma>();
  /** How many times a VMA was linked in (never decreases): a walk compares it to see a join. */
  linked = 0;
  /** VMAs whose own vma.anonVma is this one (the kernel's num_active_vmas). */
  active = 0;
  constructor(
    readonly mappingId: number,
    readonly root: AnonVma | null,
  ) {}
}

/** Models the bits of struct inode + struct address_space the model needs. */
/**
 * Models struct shmem_falloc: how far an allocating fallocate() has come (pages [start, next)), how
 * many pages it added, and how many of those reclaim wanted to swap out but kept.
 */
export interface ShmemFalloc {
  readonly start: number;
  next: number;
  nrFalloced: number;
  nrUnswapped: number;
}

export class Inode implements Mapping {
  size = 0;
  /** Page cache: page index -> PFN of the (head) page. */
  readonly pages = new XArray<number>();
  /** shmem: page index -> swap slot of pages swapped out. */
  readonly swapped = new XArray<number>();
  /** i_mmap: VMAs that map this file. */
  readonly iMmap = new Set<Vma>();
  nlink = 1;

  /**
   * The PFN of the page at `index` in the cache, or undefined. A hugetlbfs file's cache holds each
   * huge page once, at the index of its first page: a page inside one is that page plus its offset.
   */
  pageAt(index: number): number | undefined {
    if (this.kind !== 'hugetlb') return this.pages.load(index);
    const sub = index % HPAGE_PMD_NR;
    const head = this.pages.load(index - sub);
    return head === undefined ? undefined : head + sub;
  }
  /** shmem: the fallocate() allocating in this file now (inode->i_private's struct shmem_falloc). */
  falloc: ShmemFalloc | null = null;
  /**
   * tmpfs and hugetlbfs: the file's seals (fcntl F_ADD_SEALS). Every such inode starts with
   * F_SEAL_SEAL (no seal may be added); memfd_create() with MFD_ALLOW_SEALING takes it off.
   */
  seals = 0x01;
  /**
   * The permission bits of i_mode (07777). A memfd starts 0777, or 0666 with MFD_NOEXEC_SEAL;
   * fchmod() changes them.
   */
  mode = 0o777;
  /**
   * While above 0, a shared mapping with VM_MAYWRITE cannot be made (-EPERM): F_ADD_SEALS waiting
   * for pins before it sets F_SEAL_WRITE (the kernel's i_mmap_writable held negative).
   */
  denyWritable = 0;
  /**
   * Open files (struct file) of a tmpfs or hugetlbfs inode: the stand-in for the dentry and inode
   * references each holds. The last one's release drops the unlinked file's pages.
   */
  openFiles = 0;
  /**
   * A character device's inode: its open(), which an open() of /proc/self/fd/N runs again for
   * the opener (a new file with its own private data). Null for every other inode; a device file
   * without one is an anonymous inode's, which such an open() refuses.
   */
  cdevOpen: ((proc: Process) => KGen<number>) | null = null;
  /**
   * tmpfs and hugetlbfs: i_rwsem (inode_lock()), which a write, a size change, fallocate(), adding
   * seals, fchmod() and lseek()'s search hold for writing; made by the first of them (inodeLockOf()).
   */
  lock: RwSem | null = null;
  constructor(
    readonly mappingId: number,
    readonly kind: 'shmem' | 'hugetlb' | 'device',
    readonly name: string,
  ) {}
}

/** Models struct file_operations, for device files. `P` is the type of the file's private_data. */
export interface FileOps<P = unknown> {
  readonly name: string;
  /**
   * file_operations.llseek: the kernel's default_llseek (a character device's size is 0) or
   * noop_llseek (the position stays); without one, lseek() is -ESPIPE.
   */
  readonly llseek?: 'default' | 'noop';
  mmap?(file: File<P>, vma: Vma): KGen<number>;
  ioctl?(file: File<P>, cmd: string, arg: unknown): KGen<number>;
  /** The plain form of `ioctl` (see src/sched/plain.ts), which a plain system call calls when given. */
  ioctl$?(file: File<P>, cmd: string, arg: unknown): number;
  release?(file: File<P>): KGen;
}

/** Models struct file. `P` is the type of private_data, which its fops set and read. */
export class File<P = unknown> {
  refs = 1;
  /** f_pos: where read() and write() go next and lseek() moves (dup() shares it, open() does not). */
  pos = 0;
  /** f_pos_lock, held across a read(), write() or lseek() (fdget_pos()); made by the first of them. */
  posLock: Mutex | null = null;
  constructor(
    readonly id: number,
    readonly inode: Inode,
    readonly mode: number,
    readonly fops: FileOps<P> | null,
    public priv: P,
  ) {}

  /**
   * FMODE_READ: opened O_RDONLY or O_RDWR. An access mode of 3 (O_ACCMODE) gives neither
   * FMODE_READ nor FMODE_WRITE, and an O_PATH file has no access mode.
   */
  get readable(): boolean {
    const acc = this.mode & (O_ACCMODE | O_PATH);
    return acc === O_RDONLY || acc === O_RDWR;
  }

  /** FMODE_WRITE: opened O_WRONLY or O_RDWR. */
  get writable(): boolean {
    const acc = this.mode & (O_ACCMODE | O_PATH);
    return acc === O_WRONLY || acc === O_RDWR;
  }

  /** FMODE_PATH: opened O_PATH, a file no call but close(), dup() and open() takes (fdget() fails). */
  get path(): boolean {
    return (this.mode & O_PATH) !== 0;
  }
}

/** PAGE_SIZE for pageIndex(), which every anonymous fault calls: a constant of this module only. */
const INDEX_PAGE_SIZE = PAGE_SIZE;

/** Models struct vm_area_struct. [start, end) is page aligned. */
export class Vma {
  node: IntervalNode<Vma> | null = null;
  anonVma: AnonVma | null = null;
  /** anon_vma_chain: every anon_vma this VMA is linked into (its own and its ancestors'). */
  readonly anonChain = new Set<AnonVma>();
  vmOps: VmOps | null = null;
  priv: unknown = null;
  /** Where this VMA's reference on `file` was taken (get_file), for the leak oracle. */
  fileRef: Site | null = null;
  constructor(
    readonly mm: MmStruct,
    public start: number,
    public end: number,
    public flags: number,
    /** vm_pgoff: in pages; for anonymous VMAs the virtual page number it was created at. */
    public pgoff: number,
    public file: File | null,
  ) {}

  get pages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }

  isAnon(): boolean {
    return this.file === null && this.vmOps === null;
  }

  isShared(): boolean {
    return (this.flags & VM.SHARED) !== 0;
  }

  /** Models linear_page_index(). */
  pageIndex(addr: number): number {
    return this.pgoff + Math.floor((addr - this.start) / INDEX_PAGE_SIZE);
  }

  /** The address of page index `index` in this VMA, or -1 if outside it. */
  addressOf(index: number): number {
    const a = this.start + (index - this.pgoff) * PAGE_SIZE;
    return a >= this.start && a < this.end ? a : -1;
  }
}

/** Models struct user_struct: the per-user locked memory counter. */
export class UserStruct {
  /** Pages counted against RLIMIT_MEMLOCK (user->locked_vm). */
  lockedVm = 0;
  constructor(readonly uid: number) {}
}

/** RSS counter indexes (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES). */
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;

/** Models struct mm_struct. */
export class MmStruct {
  readonly mmapLock: RwSem;
  /**
   * What the killable forms of the mmap lock ask while they wait (mmap_lock.ts): made by the first
   * of them to run, rather than one closure per fault.
   */
  fatalSignalCheck: (() => boolean) | null = null;
  /**
   * Stands for the rmap locks of this mm's VMAs (anon_vma->rwsem, i_mmap_rwsem): an rmap walker
   * (reclaim) holds it for reading while it invalidates a mapping in this mm, and
   * mm_take_all_locks() takes it for writing, so a notifier registers only between such walks.
   */
  readonly rmapLock: RwSem;
  /** One page-table lock per mm (the kernel splits it per table; the model keeps one). */
  readonly ptl: SpinLock;
  readonly vmas = new IntervalTree<Vma>();
  readonly pgt = new PageTableStore();
  mmUsers = 1;
  mmCount = 1;
  /** Where each mm_users reference was taken, the owner's first (mm_refs.ts; the leak oracle). */
  readonly userRefSites: RefSiteEntry[] = [OWNER_REF];
  /** Where each mm_count reference was taken, the owner's (mm_users as a whole) first. */
  readonly countRefSites: RefSiteEntry[] = [OWNER_REF];
  notifierSubscriptions: MmuNotifierSubscriptions | null = null;
  readonly rss = [0, 0, 0, 0];
  totalVm = 0;
  /** Pages of VM_LOCKED VMAs, and pages iommufd charges to this mm (mm->locked_vm). */
  lockedVm = 0;
  /** Flags every new VMA starts with (mm->def_flags): VM_LOCKED, VM_LOCKONFAULT after mlockall(MCL_FUTURE). */
  defFlags = 0;
  /** Pages pinned long-term and charged to this mm (mm->pinned_vm). */
  pinnedVm = 0;
  readonly taskSize = TASK_SIZE;
  /** Top-down mmap allocation starts below this. */
  mmapBase = 0x7f0000000000;
  /**
   * mm->write_protect_seq: odd while fork() write-protects a COW mapping of this mm
   * (copy_page_range()); the lockless walk of pin_user_pages_fast() gives way to the slow path then.
   */
  writeProtectSeq = 0;
  /** exit_mmap() has run: the address space is gone. */
  exited = false;
  /** MMF_UNSTABLE: the OOM reaper has torn private memory down; new anonymous faults get SIGBUS. */
  unstable = false;
  /** The VMA vmaLookup() found last (it checks that the VMA is still in the tree before use). */
  private lastVma: Vma | null = null;

  constructor(
    readonly sys: System,
    readonly id: number,
    readonly user: UserStruct,
    public ownerName: string,
  ) {
    this.mmapLock = new RwSem(sys.sched, `mmap_lock[${id}]`, 'mmap_lock');
    this.rmapLock = new RwSem(sys.sched, `rmap_lock[${id}]`, 'rmap_lock');
    this.ptl = new SpinLock(sys.sched, `ptl[${id}]`, 'ptl');
  }

  /** Models find_vma(): the first VMA ending after addr. */
  findVma(addr: number): Vma | null {
    const n = this.vmas.firstOverlap(addr, Infinity);
    return n === null ? null : n.value;
  }

  /**
   * Models vma_lookup(): the VMA containing addr. The VMA found last is tried first, as the
   * per-thread VMA cache did before the maple tree (mm/vmacache.c): it answers while it is still
   * in the tree (a VMA's bounds change only while it is out of it) and contains addr.
   */
  vmaLookup(addr: number): Vma | null {
    const c = this.lastVma;
    if (c !== null && addr >= c.start && addr < c.end && c.node !== null && this.vmas.has(c.node)) return c;
    const v = this.findVma(addr);
    if (v === null || v.start > addr) return null;
    this.lastVma = v;
    return v;
  }

  /** VMAs overlapping [start, end), in address order. */
  vmasIn(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    if (end <= start) return out;
    for (const n of this.vmas.overlapping(start, end - 1)) out.push(n.value);
    return out;
  }
}
