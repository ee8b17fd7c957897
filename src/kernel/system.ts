import '../lib/instance.ts';
import { type CoreContracts, CURRENT_CONTRACTS } from './contracts.ts';
import { PAGE_SIZE } from '../lib/units.ts';
import { Scheduler } from '../sched/scheduler.ts';
import { Srcu, WaitQueue } from '../sched/locks.ts';
import type { KGen, SchedPoint, Violation } from '../sched/types.ts';
import { Errno, KernelError } from './errno.ts';
import { FaultInjector } from './fault_inject.ts';
import { DmaMappingTable } from './dma/mapping.ts';
import type { FolioLocks } from './mm/filemap.ts';
import { accessMappedPage, WalkAhead } from './mm/memory.ts';
import { PhysMem } from './mm/page_alloc.ts';
import { SwapDevice } from './mm/swapfile.ts';
import { File, type Mapping, MmStruct, UserStruct, type Vma } from './mm/mm_types.ts';
import {
  copyRlimits,
  defaultRlimits,
  getRlimit,
  type Rlimit,
  type RlimitResource,
  type Rlimits,
  setRlimit,
  vmKinds,
} from './mm/rlimit.ts';
import { mmPgtablesBytes } from './mm/huge_memory.ts';
import * as sc from './syscalls.ts';
import * as scp from './syscalls.plain.ts';
import { type Counter, TraceLog } from './trace.ts';
import { callSite, FreedObjects, type Site } from './uaf.ts';
import type { Ulong } from './ulong.ts';
import type { Thread } from '../sched/thread.ts';
import { RefSites } from './refs.ts';

/** How many accesses ahead a replay touches the pages it will reach (see prefetch()). */
const REPLAY_PREFETCH = 16;
/** pageOffset()'s mask as this module's own constant, which optimised code reads for free. */
const OFFSET_MASK = PAGE_SIZE - 1;
/** PAGE_SIZE for the hit path's check, as this module's own constant. */
const HIT_PAGE_SIZE = PAGE_SIZE;

/** The kernel function a device page's free is reported under. */
const DEVICE_FREE_FN = 'folio_put (the device page goes back through folio_free)';

export type ThpMode = 'always' | 'madvise' | 'never';

/**
 * A device page table that mirrors part of a CPU address space, as the mirror and frame-reference
 * oracles see it. Drivers register theirs in System.deviceMirrors (the SDK's DevicePageTable does).
 */
export interface DeviceMirrorView {
  /** Who holds it, for reports ("gpu0 file 3 page table"). */
  readonly name: string;
  readonly mm: MmStruct;
  /** False once the table no longer receives invalidations (its file is being released). */
  readonly live: boolean;
  /** Every entry: the VA, the frame the CPU should map there, write access, and the frame's generation when stored. */
  entries(): Iterable<{ va: number; pfn: number; write: boolean; gen: number }>;
  /** How many entries there are, when the table knows without a walk (0: the checks skip it). */
  readonly size?: number;
}

export interface SystemConfig {
  /** Bytes of RAM. Default 1GiB. */
  ram?: number;
  /** Bytes of swap. Default 4GiB; 0 disables swap. */
  swap?: number;
  /** RLIMIT_MEMLOCK in bytes for every process (iommufd and mlock accounting). Default 8MiB. */
  rlimitMemlock?: number;
  /** /sys/kernel/mm/transparent_hugepage/enabled. Default 'madvise'. */
  thp?: ThpMode;
  /** 2MiB hugetlb pages reserved in the pool (nr_hugepages). Default 0 means 'as many as RAM allows'. */
  hugetlbPages?: number;
  /**
   * Whether a read fault of untouched private anonymous memory maps the shared zero page (or the
   * huge zero page). Default true; false is mm_forbids_zeropage(): the read gets a zeroed page
   * of its own, as a write would.
   */
  zeroPage?: boolean;
  /** Keep detailed trace events (costs memory). Default false. */
  trace?: boolean;
  /**
   * Run kernel paths in their plain-function form, and CPU accesses to mapped pages without a
   * thread, whenever nothing else can be scheduled. Default true; false runs every path on the
   * scheduler (results and traces are the same either way).
   */
  plainPaths?: boolean;
  /** Older semantics of specific core paths (contracts.ts). Default: the modelled release's. */
  contracts?: Partial<CoreContracts>;
}

/** The largest RAM and swap a System models: per-frame and per-slot state lives in typed arrays. */
export const MAX_RAM_BYTES = 16 * 1024 * 1024 * 1024;
export const MAX_SWAP_BYTES = 256 * 1024 * 1024 * 1024;
const MIN_RAM_BYTES = 8 * 1024 * 1024;

/** A SystemConfig field out of range: `field` names it (`ram`, `swap`, ...). */
export class SystemConfigError extends KernelError {
  constructor(
    readonly field: keyof SystemConfig,
    why: string,
  ) {
    super(Errno.EINVAL, `${field}: ${why}`);
    this.name = 'SystemConfigError';
  }
}

function checkBytes(field: keyof SystemConfig, v: number | undefined, min: number, max: number): void {
  if (v === undefined) return;
  const mib = (n: number) => (n >= 2 ** 30 ? `${n / 2 ** 30}GiB` : `${n / 2 ** 20}MiB`);
  if (!Number.isSafeInteger(v)) throw new SystemConfigError(field, `${v} is not a whole number of bytes`);
  if (v < min)
    throw new SystemConfigError(field, `${v} bytes is below the least the model runs with, ${mib(min)}`);
  if (v > max)
    throw new SystemConfigError(field, `${v} bytes is above the most the model holds, ${mib(max)}`);
}

/** VmExe, VmStk and VmData of an mm (exec_vm, stack_vm, data_vm), in bytes; zeros without one. */
function kindsOf(mm: MmStruct | null): { exec_vm: number; stack_vm: number; data_vm: number } {
  const k = mm === null ? { exec: 0, stack: 0, data: 0 } : vmKinds(mm);
  return { exec_vm: k.exec * PAGE_SIZE, stack_vm: k.stack * PAGE_SIZE, data_vm: k.data * PAGE_SIZE };
}

/** Rejects a config the model cannot build, before anything is allocated. */
function validateConfig(c: SystemConfig): void {
  checkBytes('ram', c.ram, MIN_RAM_BYTES, MAX_RAM_BYTES);
  checkBytes('swap', c.swap, 0, MAX_SWAP_BYTES);
  checkBytes('rlimitMemlock', c.rlimitMemlock, 0, Number.MAX_SAFE_INTEGER);
  if (c.hugetlbPages !== undefined && (!Number.isSafeInteger(c.hugetlbPages) || c.hugetlbPages < 0))
    throw new SystemConfigError('hugetlbPages', `${c.hugetlbPages} is not a page count`);
  if (c.thp !== undefined && !['always', 'madvise', 'never'].includes(c.thp))
    throw new SystemConfigError('thp', `'${c.thp}' is not always, madvise or never`);
}

/** Models a task with its mm: the unit scenario steps act on. */
export class Process {
  mm: MmStruct | null;
  exited = false;
  /** RLIMIT_MEMLOCK in bytes: the soft limit, and the hard one (mm/rlimit.ts). */
  rlimitMemlock: number;
  rlimitMemlockMax: number;
  /** RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK (mm/rlimit.ts). */
  readonly rlim: Rlimits;
  /** The names of the threads that make its loads and stores (made once, not per access). */
  readonly readThreadName: string;
  readonly writeThreadName: string;
  /**
   * The steps of a thread of this process taking and dropping its mm reference on entering and
   * leaving the kernel (taskMmget / taskMmput), made once: every system call takes both.
   */
  readonly mmgetPoint: SchedPoint;
  readonly mmputPoint: SchedPoint;
  constructor(
    readonly pid: number,
    readonly name: string,
    mm: MmStruct,
    readonly user: UserStruct,
    rlimitMemlock: number,
    readonly parent: Process | null,
  ) {
    this.mm = mm;
    this.rlimitMemlock = rlimitMemlock;
    this.rlimitMemlockMax = parent?.rlimitMemlockMax ?? rlimitMemlock;
    this.rlim = parent === null ? defaultRlimits() : copyRlimits(parent.rlim);
    this.readThreadName = `${name}:read`;
    this.writeThreadName = `${name}:write`;
    // Frozen, as a lock's points are: nothing changes them, so a snapshot keeps them as they are
    // instead of checking and restoring them for every schedule.
    this.mmgetPoint = Object.freeze({
      kind: 'step',
      label: 'mmget',
      access: Object.freeze({ obj: this, write: false }),
    });
    this.mmputPoint = Object.freeze({
      kind: 'step',
      label: 'mmput',
      access: Object.freeze({ obj: this, write: true }),
    });
  }
}

/**
 * One simulated machine: physical memory, swap, processes, files, devices, the scheduler and
 * the event log. Nothing is global; tests and explorer runs each build their own.
 */
export class System {
  readonly config: Required<Omit<SystemConfig, 'contracts'>>;
  /** The core-path contracts in force (contracts.ts). */
  readonly contracts: CoreContracts;
  readonly sched = new Scheduler();
  readonly inject = new FaultInjector();
  readonly phys: PhysMem;
  readonly swap: SwapDevice;
  readonly trace: TraceLog;
  /** The SRCU domain that protects whole-mm notifier callbacks (one for the kernel, as there). */
  readonly notifierSrcu: Srcu;
  /** Sleepers in migration_entry_wait(); woken when a migration ends. */
  readonly migrationWq: WaitQueue;
  /**
   * The folio locks' state (mm/filemap.ts) once a folio was locked: null before (a snapshot
   * captures it with the System).
   */
  folioLocks: FolioLocks | null = null;
  readonly processes = new Map<number, Process>();
  /** Files the scenario holds open, by descriptor. */
  readonly files = new Map<number, File>();
  /** What page->mapping ids refer to. */
  readonly mappings = new Map<number, Mapping>();
  /** Devices by name; drivers put their state here. */
  readonly devices = new Map<string, unknown>();
  private ids = new Map<string, number>();
  private nextFd = 3;
  readonly users = new Map<number, UserStruct>();

  /** Throws SystemConfigError (-EINVAL) for a size the model cannot hold. */
  constructor(config: SystemConfig = {}) {
    validateConfig(config);
    this.config = {
      ram: config.ram ?? 1024 * 1024 * 1024,
      swap: config.swap ?? 4 * 1024 * 1024 * 1024,
      rlimitMemlock: config.rlimitMemlock ?? 8 * 1024 * 1024,
      thp: config.thp ?? 'madvise',
      hugetlbPages: config.hugetlbPages ?? 0,
      zeroPage: config.zeroPage ?? true,
      trace: config.trace ?? false,
      plainPaths: config.plainPaths ?? true,
    };
    this.contracts = {
      invalidateRangeStartNonblock:
        config.contracts?.invalidateRangeStartNonblock ?? CURRENT_CONTRACTS.invalidateRangeStartNonblock,
      devicePrivateFault: config.contracts?.devicePrivateFault ?? CURRENT_CONTRACTS.devicePrivateFault,
    };
    this.phys = new PhysMem(this.config.ram, this.inject);
    this.swap = new SwapDevice(Math.floor(this.config.swap / PAGE_SIZE));
    this.trace = new TraceLog(
      () => this.sched.totalSteps,
      () => this.sched.current?.name ?? 'main',
    );
    this.trace.enabled = this.config.trace;
    this.notifierSrcu = new Srcu(this.sched, 'mmu_notifier');
    this.migrationWq = new WaitQueue(this.sched, 'migration');
    this.phys.onRelease = (h, order) => {
      this.noteRelease(h, order);
    };
  }

  /**
   * Remembers where a frame a device could still reach was freed: every device page (a device
   * PTE may point at it) and every DMA-mapped frame. The use-after-free oracle names the place.
   */
  private noteRelease(h: number, order: number): void {
    const n = 1 << order;
    const device = this.phys.isDevice(h);
    if (!device && !this.dma.mapsFrames(h, n)) return;
    const batch = this.deviceFreeBatch;
    let site: Site;
    if (device && batch !== null && batch.thread === this.sched.current) {
      batch.site ??= callSite(this, DEVICE_FREE_FN);
      site = batch.site;
    } else {
      site = callSite(this, device ? DEVICE_FREE_FN : 'folio_put');
    }
    for (let i = 0; i < n; i++) this.freed.markFrame(h + i, this.phys.gen[h + i], site);
  }

  /**
   * While a thread frees the device pages of one migration (migrate_vma_finalize and its by-PFN
   * variant), the place of their free is one place: the same kernel function called from the
   * same caller in the same thread. It is captured at the first such free and shared by the rest
   * (capturing a stack per page was a fifth of the time of a migration back to system RAM).
   */
  private deviceFreeBatch: { thread: Thread | null; site: Site | null } | null = null;

  /** Starts a batch of device page frees by the current thread; pass the result to endDeviceFreeBatch. */
  beginDeviceFreeBatch(): { thread: Thread | null; site: Site | null } | null {
    const prev = this.deviceFreeBatch;
    this.deviceFreeBatch = { thread: this.sched.current, site: null };
    return prev;
  }

  /** Ends the batch beginDeviceFreeBatch() started. */
  endDeviceFreeBatch(prev: { thread: Thread | null; site: Site | null } | null): void {
    this.deviceFreeBatch = prev;
  }

  /** A fresh id in the sequence `kind` (ids start at 1). */
  nextId(kind: string): number {
    const n = (this.ids.get(kind) ?? 0) + 1;
    this.ids.set(kind, n);
    return n;
  }

  user(uid: number): UserStruct {
    let u = this.users.get(uid);
    if (u === undefined) {
      u = new UserStruct(uid);
      this.users.set(uid, u);
    }
    return u;
  }

  /** Every mm whose address space still exists (removed by exit_mmap). */
  readonly mms = new Set<MmStruct>();

  /** Every mm_struct not yet freed (removed by the last mmdrop): the leak oracle walks them. */
  readonly mmStructs = new Set<MmStruct>();

  newMm(user: UserStruct, owner: string): MmStruct {
    const mm = new MmStruct(this, this.nextId('mm'), user, owner);
    this.mms.add(mm);
    this.mmStructs.add(mm);
    return mm;
  }

  /** Extra checks drivers contribute to the oracles (mirror coherence, device references, iommufd). */
  readonly checkHooks: ((final: boolean) => Violation[])[] = [];
  /** Device page tables that mirror a process (oracles 1 and 2 walk them). */
  readonly deviceMirrors = new Set<DeviceMirrorView>();
  /** Live streaming DMA mappings (dma_map_page), checked by the frame-reference oracle. */
  readonly dma = new DmaMappingTable();
  /** Kernel objects freed while something may still use them (the use-after-free oracle, uaf.ts). */
  readonly freed = new FreedObjects();
  /** Where the outstanding references of files, devices and iommufd objects were taken (refs.ts). */
  readonly refSites = new RefSites();
  /**
   * Every file ever installed in the descriptor table; the leak oracle reports those that still
   * hold references once every descriptor is closed. Forgotten once their references are gone.
   */
  readonly installedFiles = new Set<File>();
  /**
   * How a FOLL_LONGTERM pin moves a device-coherent page to RAM first
   * (check_and_migrate_movable_folios); memremap_pages() of coherent memory installs it. Returns
   * the new PFN or -errno.
   */
  longtermMigrate: ((sys: System, vma: Vma, addr: number, pfn: number) => KGen<number>) | null = null;

  /** Creates a process with an empty address space. */
  createProcess(name = `p${this.ids.get('pid') ?? 0}`, uid = 1000): Process {
    const pid = this.nextId('pid');
    const user = this.user(uid);
    const p = new Process(pid, name, this.newMm(user, name), user, this.config.rlimitMemlock, null);
    this.processes.set(pid, p);
    return p;
  }

  registerMapping(m: Mapping): void {
    this.mappings.set(m.mappingId, m);
  }

  /** Installs a file in the scenario's descriptor table. */
  installFd(f: File): number {
    this.installedFiles.add(f);
    const fd = this.nextFd++;
    this.files.set(fd, f);
    return fd;
  }

  /** The open file behind `fd` as fdget() finds it: null for none, and for an O_PATH file. */
  fileOf(fd: number): File | null {
    const f = this.files.get(fd);
    return f === undefined || f.path ? null : f;
  }

  /** Runs a kernel path to completion on the scheduler and returns its result. */
  run<T>(name: string, gen: KGen<T>): T {
    return this.sched.run(name, gen);
  }

  /**
   * Runs a kernel path to completion: its plain-function form (derived from the same source by
   * scripts/derive-plain.mjs) when nothing else can be scheduled or watch its steps, its
   * generator form on the scheduler otherwise. Both take the same steps and give the same result.
   */
  runPath<T>(name: string, plain: () => T, gen: () => KGen<T>): T {
    return this.config.plainPaths && this.sched.solo
      ? this.sched.runPlain(name, plain)
      : this.sched.run(name, gen());
  }

  // Sequential wrappers of the system calls in syscalls.ts: each runs the kernel path to completion.
  // Address and length arguments are unsigned longs: numbers, or bigints for any u64 (exact).

  mmap(
    p: Process,
    addr: Ulong,
    length: Ulong,
    prot: number,
    flags: number,
    fd = -1,
    offset: Ulong = 0,
  ): number {
    return this.runPath(
      'mmap',
      () => scp.sysMmap$(this, p, addr, length, prot, flags, fd, offset),
      () => sc.sysMmap(this, p, addr, length, prot, flags, fd, offset),
    );
  }

  munmap(p: Process, addr: Ulong, length: Ulong): number {
    return this.runPath(
      'munmap',
      () => scp.sysMunmap$(this, p, addr, length),
      () => sc.sysMunmap(this, p, addr, length),
    );
  }

  mprotect(p: Process, addr: Ulong, length: Ulong, prot: number): number {
    return this.runPath(
      'mprotect',
      () => scp.sysMprotect$(this, p, addr, length, prot),
      () => sc.sysMprotect(this, p, addr, length, prot),
    );
  }

  /** mlock2(2) (`flags` MLOCK_ONFAULT or 0, which is mlock(2)). */
  mlock(p: Process, addr: Ulong, length: Ulong, flags = 0): number {
    return this.runPath(
      'mlock',
      () => scp.sysMlock$(this, p, addr, length, flags),
      () => sc.sysMlock(this, p, addr, length, flags),
    );
  }

  munlock(p: Process, addr: Ulong, length: Ulong): number {
    return this.runPath(
      'munlock',
      () => scp.sysMunlock$(this, p, addr, length),
      () => sc.sysMunlock(this, p, addr, length),
    );
  }

  /**
   * setrlimit(2) (prlimit(2) on `p`) for RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK or RLIMIT_MEMLOCK:
   * 0, -EINVAL when `cur` is above `max`, -EPERM when `max` would go up (mm/rlimit.ts). Values are
   * bytes, Infinity for RLIM_INFINITY. Changes nothing already mapped or locked.
   */
  setrlimit(p: Process, resource: RlimitResource, limit: Rlimit): number {
    for (const v of [limit.cur, limit.max])
      if (v !== Infinity && !(Number.isSafeInteger(v) && v >= 0))
        throw new TypeError(`setrlimit: ${v} is not a limit (bytes from 0 to 2^53 - 1, or Infinity)`);
    return setRlimit(p, resource, limit.cur, limit.max);
  }

  /** getrlimit(2): the soft and hard values of one of the limits setrlimit() takes. */
  getrlimit(p: Process, resource: RlimitResource): Rlimit {
    return getRlimit(p, resource);
  }

  /** mlockall(2): MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT. */
  mlockall(p: Process, flags: number): number {
    return this.runPath(
      'mlockall',
      () => scp.sysMlockall$(this, p, flags),
      () => sc.sysMlockall(this, p, flags),
    );
  }

  munlockall(p: Process): number {
    return this.runPath(
      'munlockall',
      () => scp.sysMunlockall$(this, p),
      () => sc.sysMunlockall(this, p),
    );
  }

  /**
   * mseal(2): the VMAs of [addr, addr + length) are sealed against munmap, mremap, mprotect,
   * mmap(MAP_FIXED) over them and advice that discards read-only anonymous memory (-EPERM).
   */
  mseal(p: Process, addr: Ulong, length: Ulong, flags: Ulong = 0): number {
    return this.runPath(
      'mseal',
      () => scp.sysMseal$(this, p, addr, length, flags),
      () => sc.sysMseal(this, p, addr, length, flags),
    );
  }

  /**
   * mincore(2): one byte a page of [addr, addr + length) into `vec`, 1 for a page in memory;
   * returns 0 or -errno (-EFAULT when `vec` is shorter than the pages).
   */
  mincore(p: Process, addr: Ulong, length: Ulong, vec: Uint8Array): number {
    return this.runPath(
      'mincore',
      () => scp.sysMincore$(this, p, addr, length, vec),
      () => sc.sysMincore(this, p, addr, length, vec),
    );
  }

  /**
   * process_madvise(2) by `p` on the memory of `target` (`p` itself, or another process: then
   * only MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED and MADV_COLLAPSE, with CAP_SYS_NICE), over the
   * segments of `vec`; returns the bytes advised or -errno.
   */
  processMadvise(
    p: Process,
    target: Process,
    vec: readonly { base: Ulong; len: Ulong }[],
    advice: number,
    flags: Ulong = 0,
  ): number {
    return this.runPath(
      'process_madvise',
      () => scp.sysProcessMadvise$(this, p, target, vec, advice, flags),
      () => sc.sysProcessMadvise(this, p, target, vec, advice, flags),
    );
  }

  madvise(p: Process, addr: Ulong, length: Ulong, advice: number): number {
    return this.runPath(
      'madvise',
      () => scp.sysMadvise$(this, p, addr, length, advice),
      () => sc.sysMadvise(this, p, addr, length, advice),
    );
  }

  mremap(
    p: Process,
    oldAddr: Ulong,
    oldLen: Ulong,
    newLen: Ulong,
    flags: number,
    newAddr: Ulong = 0,
  ): number {
    return this.runPath(
      'mremap',
      () => scp.sysMremap$(this, p, oldAddr, oldLen, newLen, flags, newAddr),
      () => sc.sysMremap(this, p, oldAddr, oldLen, newLen, flags, newAddr),
    );
  }

  fork(p: Process, childName: string): { ret: number; child: Process | null } {
    return this.runPath(
      'fork',
      () => scp.sysFork$(this, p, childName),
      () => sc.sysFork(this, p, childName),
    );
  }

  exit(p: Process): number {
    return this.runPath(
      'exit',
      () => scp.sysExit$(this, p),
      () => sc.sysExit(this, p),
    );
  }

  /** A CPU load of `length` bytes at `addr` by a thread of `p`. */
  read(p: Process, addr: number, length: number): { ret: number; data: Uint8Array } {
    if (this.hitPathAllowed(p, addr, length)) {
      const data = new Uint8Array(length);
      if (accessMappedPage(p.mm!, addr, data, 0, length, false)) {
        this.soloHit(this.trace.cpuReadBytes, length);
        return { ret: length, data };
      }
    }
    return this.readPath(p, addr, length);
  }

  /**
   * runPath() of cpuRead(), made apart from read() (as writePath() is from write()) so that the
   * hit path has no context to allocate, and with no closure for the plain form.
   */
  private readPath(p: Process, addr: number, length: number): { ret: number; data: Uint8Array } {
    if (this.config.plainPaths && this.sched.solo)
      return this.sched.runPlainWith(p.readThreadName, scp.cpuRead$, this, p, addr, length);
    return this.sched.run(p.readThreadName, sc.cpuRead(this, p, addr, length));
  }

  /** A CPU store of `data` at `addr` by a thread of `p`. */
  write(p: Process, addr: number, data: Uint8Array): number {
    // Whether the path would run solo is asked once, for the hit path and the kernel path both
    // (as writePath() would run the kernel path): a first write to a page takes both.
    if (this.config.plainPaths && this.sched.solo) {
      const length = data.length;
      if (this.hitAccess(p, addr, length) && accessMappedPage(p.mm!, addr, data, 0, length, true)) {
        this.soloHit(this.trace.cpuWriteBytes, length);
        return length;
      }
      return this.sched.runPlainWith(p.writeThreadName, scp.cpuWrite$, this, p, addr, data);
    }
    return this.sched.run(p.writeThreadName, sc.cpuWrite(this, p, addr, data));
  }

  /** runPath() of cpuWrite() (see readPath()), as write() runs it. */
  private writePath(p: Process, addr: number, data: Uint8Array): number {
    if (this.config.plainPaths && this.sched.solo)
      return this.sched.runPlainWith(p.writeThreadName, scp.cpuWrite$, this, p, addr, data);
    return this.sched.run(p.writeThreadName, sc.cpuWrite(this, p, addr, data));
  }

  /**
   * Replays a CPU access trace on a thread of `p`, as read(p, addrs[i], 1) or, where writes[i] is
   * not 0, write(p, addrs[i], [values[i]]) would one after another (values default to 0). Accesses
   * that hit a mapped page cost no kernel path; the others fault as the hardware would. Returns
   * how many accesses were made: all of them with ret 0, or those before the first that failed,
   * with its errno in ret (-EINVAL, none made, if the arrays' lengths differ).
   */
  replay(
    p: Process,
    addrs: Float64Array,
    writes: Uint8Array,
    values?: Uint8Array,
  ): { count: number; ret: number } {
    const n = addrs.length;
    if (writes.length !== n || (values !== undefined && values.length !== n))
      return { count: 0, ret: -Errno.EINVAL };
    const phys = this.phys;
    const one = new Uint8Array(1);
    let hits = 0;
    let writeBytes = 0;
    let i = 0;
    let ret = 0;
    while (i < n) {
      // What hitPathAllowed() checks once per access is the same for the whole run of hits: it
      // changes only when a miss runs a kernel path.
      const mm = p.mm;
      if (mm !== null && !mm.exited && this.config.plainPaths && this.sched.solo) {
        const ahead = this.walkAhead;
        const from = i;
        let touched = i;
        let k = 0;
        for (; i < n; i++, k++) {
          if (i === touched) {
            touched = this.prefetch(mm, addrs, i, Math.min(n, i + REPLAY_PREFETCH));
            k = 0;
          }
          // An address find() could not walk (not a user address) maps nothing: the access
          // goes the way of a miss, through the kernel path, which answers it.
          if (writes[i] === 0) {
            if (ahead.load(k, phys, addrs[i]) < 0) break;
          } else {
            if (!ahead.store(k, phys, addrs[i], values === undefined ? 0 : values[i])) break;
            writeBytes++;
          }
        }
        // Hits are accounted in one go (as accountSoloRun(4) each) before anything else runs,
        // so step counts and thread ids after a miss are the same as with one read/write per
        // access.
        if (i > from) {
          this.sched.accountSoloRuns(i - from, 4);
          hits += i - from;
        }
      }
      if (i === n) break;
      // A miss: the kernel path of read() or write(), whose hit check would fail as the loop's
      // did (or, outside a solo run, not be made).
      const addr = addrs[i];
      if (writes[i] !== 0) {
        one[0] = values === undefined ? 0 : values[i];
        ret = this.writePath(p, addr, one);
      } else {
        ret = this.readPath(p, addr, 1).ret;
      }
      if (ret < 0) break;
      ret = 0;
      i++;
    }
    if (hits > writeBytes) this.trace.cpuReadBytes.add(hits - writeBytes);
    if (writeBytes > 0) this.trace.cpuWriteBytes.add(writeBytes);
    return { count: i, ret };
  }

  /** The entries prefetch() found, and the offsets and what it read last (kept, so the reads stay). */
  private readonly walkAhead = new WalkAhead(REPLAY_PREFETCH);
  private readonly prefetchPfns = new Int32Array(REPLAY_PREFETCH);
  private readonly prefetchOffsets = new Uint16Array(REPLAY_PREFETCH);
  private prefetched = 0;

  /**
   * Walks ahead, changing nothing, to the page table entries of the accesses at addrs[from..to)
   * (the accesses then use them: WalkAhead), then reads their pages' contents
   * (PageContents.touch()), so that the host fetches them together rather than one cache miss
   * after another when the accesses are made. Returns `to`.
   */
  private prefetch(mm: MmStruct, addrs: Float64Array, from: number, to: number): number {
    const ahead = this.walkAhead;
    const pfns = this.prefetchPfns;
    const offsets = this.prefetchOffsets;
    let k = 0;
    for (let j = from; j < to; j++) {
      const addr = addrs[j];
      const pfn = ahead.find(j - from, mm, addr);
      if (pfn < 0) continue;
      pfns[k] = pfn;
      offsets[k] = (addr >>> 0) & OFFSET_MASK;
      k++;
    }
    this.prefetched = this.phys.contents.touch(pfns, offsets, k);
    return to;
  }

  /**
   * Whether an access of `length` bytes at `addr` may take the MMU's hit path without a thread:
   * a plain in-range user address (anything else goes through the checks of cpuRead/cpuWrite),
   * the access stays in one page, and nothing could be scheduled or observe steps meanwhile (the
   * path through cpuRead() / cpuWrite() would take exactly four steps: start, mmget, the access, mmput; and never fault).
   */
  private hitPathAllowed(p: Process, addr: number, length: number): boolean {
    return this.hitAccess(p, addr, length) && this.config.plainPaths && this.sched.solo;
  }

  /** hitPathAllowed() without its last part, whether the path would run solo. */
  private hitAccess(p: Process, addr: number, length: number): boolean {
    return (
      typeof addr === 'number' &&
      Number.isSafeInteger(addr) &&
      addr >= 0 &&
      length > 0 &&
      length <= HIT_PAGE_SIZE - ((addr >>> 0) & OFFSET_MASK) &&
      p.mm !== null &&
      addr + length <= p.mm.taskSize &&
      !p.mm.exited
    );
  }

  /** Accounts for an access made on the hit path as cpuRead() / cpuWrite() on a thread would. */
  private soloHit(counter: Counter, bytes: number): void {
    this.sched.accountSoloRun(4);
    counter.add(bytes);
  }

  memfdCreate(name: string, flags = 0): number {
    return this.runPath(
      'memfd_create',
      () => scp.sysMemfdCreate$(this, name, flags),
      () => sc.sysMemfdCreate(this, name, flags),
    );
  }

  ftruncate(fd: number, length: number): number {
    return this.runPath(
      'ftruncate',
      () => scp.sysFtruncate$(this, fd, length),
      () => sc.sysFtruncate(this, fd, length),
    );
  }

  /** fallocate(2) on a tmpfs (memfd) or hugetlbfs file: mode 0 allocates, FALLOC_FL_PUNCH_HOLE frees. */
  fallocate(fd: number, mode: number, offset: number | bigint, len: number | bigint): number {
    return this.runPath(
      'fallocate',
      () => scp.sysFallocate$(this, fd, mode, offset, len),
      () => sc.sysFallocate(this, fd, mode, offset, len),
    );
  }

  pwrite(fd: number, data: Uint8Array, offset: number): number {
    return this.runPath(
      'pwrite',
      () => scp.sysPwrite$(this, fd, data, offset),
      () => sc.sysPwrite(this, fd, data, offset),
    );
  }

  pread(fd: number, length: number, offset: number): { ret: number; data: Uint8Array } {
    return this.runPath(
      'pread',
      () => scp.sysPread$(this, fd, length, offset),
      () => sc.sysPread(this, fd, length, offset),
    );
  }

  /**
   * read(2) of a memfd: up to `length` bytes from the open file's position, which advances by what
   * was read. (`read()` is a load from user memory; this is the system call on a descriptor.)
   */
  fdRead(fd: number, length: number): { ret: number; data: Uint8Array } {
    return this.runPath(
      'read',
      () => scp.sysRead$(this, fd, length),
      () => sc.sysRead(this, fd, length),
    );
  }

  /**
   * write(2) of a memfd: `data` at the open file's position (at its end with O_APPEND), which
   * advances by what was written. (`write()` is a store to user memory.)
   */
  fdWrite(fd: number, data: Uint8Array): number {
    return this.runPath(
      'write',
      () => scp.sysWrite$(this, fd, data),
      () => sc.sysWrite(this, fd, data),
    );
  }

  /**
   * lseek(2): moves the open file's position (SEEK_SET, SEEK_CUR, SEEK_END from mman), or finds
   * the next data or hole of a memfd (SEEK_DATA, SEEK_HOLE). Returns the new position or -errno.
   */
  lseek(fd: number, offset: number | bigint, whence: number): number {
    return this.runPath(
      'lseek',
      () => scp.sysLseek$(this, fd, offset, whence),
      () => sc.sysLseek(this, fd, offset, whence),
    );
  }

  /**
   * fcntl(2) with F_ADD_SEALS (add the seals in `arg`) or F_GET_SEALS (returns the seals) on a
   * memfd; the model has no other command (-EINVAL).
   */
  fcntl(fd: number, cmd: number, arg: number | bigint = 0): number {
    return this.runPath(
      'fcntl',
      () => scp.sysFcntl$(this, fd, cmd, arg),
      () => sc.sysFcntl(this, fd, cmd, arg),
    );
  }

  /** fchmod(2) of a tmpfs or hugetlbfs file: its permission bits become `mode & 07777`. */
  fchmod(fd: number, mode: number): number {
    return this.runPath(
      'fchmod',
      () => scp.sysFchmod$(this, fd, mode),
      () => sc.sysFchmod(this, fd, mode),
    );
  }

  /**
   * open(2) by `p` of `path`, which must be /proc/self/fd/N: a new open file of what descriptor N
   * refers to, with the O_* `flags` (O_RDONLY, O_RDWR, O_TRUNC, O_PATH and the rest). Any other
   * path is -ENOENT: the model has no other file system.
   */
  open(p: Process, path: string, flags: number): number {
    return this.runPath(
      'open',
      () => scp.sysOpen$(this, p, path, flags),
      () => sc.sysOpen(this, p, path, flags),
    );
  }

  /** dup(2): a new descriptor for the open file of `fd`, or -EBADF. */
  dup(fd: number): number {
    return this.runPath(
      'dup',
      () => scp.sysDup$(this, fd),
      () => sc.sysDup(this, fd),
    );
  }

  close(fd: number): number {
    return this.runPath(
      'close',
      () => scp.sysClose$(this, fd),
      () => sc.sysClose(this, fd),
    );
  }

  /**
   * ioctl(2) on `fd`. `caller` is the process making the call (`current`): what the driver
   * reaches through current, such as copy_to_user() into `ptr` and a fatal signal, is that
   * process'. Without one the call runs as no process.
   */
  ioctl(fd: number, name: string, arg: Record<string, unknown>, caller?: Process): number {
    return this.runPath(
      name,
      () => scp.sysIoctl$(this, fd, name, arg, caller),
      () => sc.sysIoctl(this, fd, name, arg, caller),
    );
  }

  reclaim(nrPages = 0): number {
    return this.runPath(
      'reclaim',
      () => scp.reclaim$(this, nrPages),
      () => sc.reclaim(this, nrPages),
    );
  }

  oomReap(p: Process): number {
    return this.runPath(
      'oom_reaper',
      () => scp.oomReap$(this, p),
      () => sc.oomReap(this, p),
    );
  }

  /**
   * Writing `value` to /proc/PID/clear_refs: 1 (every page), 2 (anonymous), 3 (file-backed) clear
   * young bits and PG_referenced, 4 soft-dirty bits (as clearSoftDirty()), 5 the peak RSS (not
   * kept); anything else -EINVAL.
   */
  clearRefs(p: Process, value: number): number {
    return this.runPath(
      'clear_refs',
      () => scp.sysClearRefs$(this, p, value),
      () => sc.sysClearRefs(this, p, value),
    );
  }

  clearSoftDirty(p: Process): number {
    return this.runPath(
      'clear_refs',
      () => scp.clearSoftDirty$(this, p),
      () => sc.clearSoftDirty(this, p),
    );
  }

  pagemap(p: Process, addr: number, npages: number): sc.PagemapEntry[] {
    return this.runPath(
      'pagemap',
      () => scp.pagemapRead$(this, p, addr, npages),
      () => sc.pagemapRead(this, p, addr, npages),
    );
  }

  /** /proc/PID/maps: the VMAs that overlap [start, end) (by default all of them), or -errno. */
  maps(p: Process, start = 0, end = Number.MAX_SAFE_INTEGER): sc.MapsEntry[] | number {
    return this.runPath(
      'maps',
      () => scp.mapsRead$(this, p, start, end),
      () => sc.mapsRead(this, p, start, end),
    );
  }

  /** /proc/PID/smaps: the VMAs that overlap [start, end) (by default all of them), or -errno. */
  smaps(p: Process, start = 0, end = Number.MAX_SAFE_INTEGER): sc.SmapsEntry[] | number {
    return this.runPath(
      'smaps',
      () => scp.smapsRead$(this, p, start, end),
      () => sc.smapsRead(this, p, start, end),
    );
  }

  /** Memory counters of a process (by /proc names) or of the machine. */
  stats(p?: Process): Record<string, number> {
    const phys = this.phys;
    if (p !== undefined) {
      const mm = p.mm;
      return {
        rss_anon: (mm?.rss[1] ?? 0) * PAGE_SIZE,
        rss_file: (mm?.rss[0] ?? 0) * PAGE_SIZE,
        rss_shmem: (mm?.rss[3] ?? 0) * PAGE_SIZE,
        swap_ents: (mm?.rss[2] ?? 0) * PAGE_SIZE,
        total_vm: (mm?.totalVm ?? 0) * PAGE_SIZE,
        ...kindsOf(mm),
        pinned_vm: (mm?.pinnedVm ?? 0) * PAGE_SIZE,
        locked_vm: (mm?.lockedVm ?? 0) * PAGE_SIZE,
        user_locked_vm: p.user.lockedVm * PAGE_SIZE,
        pgtables: mm === null ? 0 : mmPgtablesBytes(mm),
        vmas: mm?.vmas.size ?? 0,
      };
    }
    return {
      ram: this.config.ram,
      free: phys.freeFrames * PAGE_SIZE,
      used: phys.usedRamFrames() * PAGE_SIZE,
      swap_used: this.swap.used * PAGE_SIZE,
      processes: this.processes.size,
      files: this.files.size,
    };
  }

  /** -EBADF unless fd is open. */
  badFd(fd: number): number {
    return this.files.has(fd) ? 0 : -Errno.EBADF;
  }
}
