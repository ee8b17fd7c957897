import { PAGE_SIZE } from '../lib/units.ts';
import { Scheduler } from '../sched/scheduler.ts';
import { Srcu, WaitQueue } from '../sched/locks.ts';
import type { KGen, Violation } from '../sched/types.ts';
import { Errno, KernelError } from './errno.ts';
import { FaultInjector } from './fault_inject.ts';
import { PhysMem } from './mm/page_alloc.ts';
import { SwapDevice } from './mm/swapfile.ts';
import { File, type Mapping, MmStruct, UserStruct } from './mm/mm_types.ts';
import * as sc from './syscalls.ts';
import { TraceLog } from './trace.ts';

export type ThpMode = 'always' | 'madvise' | 'never';

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
  /** Keep detailed trace events (costs memory). Default false. */
  trace?: boolean;
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
  /** RLIMIT_MEMLOCK in bytes. */
  rlimitMemlock: number;
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
  }
}

/**
 * One simulated machine: physical memory, swap, processes, files, devices, the scheduler and
 * the event log. Nothing is global; tests and explorer runs each build their own.
 */
export class System {
  readonly config: Required<SystemConfig>;
  readonly sched = new Scheduler();
  readonly inject = new FaultInjector();
  readonly phys: PhysMem;
  readonly swap: SwapDevice;
  readonly trace: TraceLog;
  /** The SRCU domain that protects whole-mm notifier callbacks (one for the kernel, as there). */
  readonly notifierSrcu: Srcu;
  /** Sleepers in migration_entry_wait(); woken when a migration ends. */
  readonly migrationWq: WaitQueue;
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
      trace: config.trace ?? false,
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

  newMm(user: UserStruct, owner: string): MmStruct {
    const mm = new MmStruct(this, this.nextId('mm'), user, owner);
    this.mms.add(mm);
    return mm;
  }

  /** Extra checks drivers contribute to the oracles (mirror coherence, device references, iommufd). */
  readonly checkHooks: ((final: boolean) => Violation[])[] = [];

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
    const fd = this.nextFd++;
    this.files.set(fd, f);
    return fd;
  }

  fileOf(fd: number): File | null {
    return this.files.get(fd) ?? null;
  }

  /** Runs a kernel path to completion on the scheduler and returns its result. */
  run<T>(name: string, gen: KGen<T>): T {
    return this.sched.run(name, gen);
  }

  // Sequential wrappers of the system calls in syscalls.ts: each runs the kernel path to completion.

  mmap(p: Process, addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    return this.run('mmap', sc.sysMmap(this, p, addr, length, prot, flags, fd, offset));
  }

  munmap(p: Process, addr: number, length: number): number {
    return this.run('munmap', sc.sysMunmap(this, p, addr, length));
  }

  mprotect(p: Process, addr: number, length: number, prot: number): number {
    return this.run('mprotect', sc.sysMprotect(this, p, addr, length, prot));
  }

  madvise(p: Process, addr: number, length: number, advice: number): number {
    return this.run('madvise', sc.sysMadvise(this, p, addr, length, advice));
  }

  mremap(p: Process, oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr = 0): number {
    return this.run('mremap', sc.sysMremap(this, p, oldAddr, oldLen, newLen, flags, newAddr));
  }

  fork(p: Process, childName: string): { ret: number; child: Process | null } {
    return this.run('fork', sc.sysFork(this, p, childName));
  }

  exit(p: Process): number {
    return this.run('exit', sc.sysExit(this, p));
  }

  read(p: Process, addr: number, length: number): { ret: number; data: Uint8Array } {
    return this.run(`${p.name}:read`, sc.cpuRead(this, p, addr, length));
  }

  write(p: Process, addr: number, data: Uint8Array): number {
    return this.run(`${p.name}:write`, sc.cpuWrite(this, p, addr, data));
  }

  memfdCreate(name: string, flags = 0): number {
    return this.run('memfd_create', sc.sysMemfdCreate(this, name, flags));
  }

  ftruncate(fd: number, length: number): number {
    return this.run('ftruncate', sc.sysFtruncate(this, fd, length));
  }

  pwrite(fd: number, data: Uint8Array, offset: number): number {
    return this.run('pwrite', sc.sysPwrite(this, fd, data, offset));
  }

  pread(fd: number, length: number, offset: number): { ret: number; data: Uint8Array } {
    return this.run('pread', sc.sysPread(this, fd, length, offset));
  }

  close(fd: number): number {
    return this.run('close', sc.sysClose(this, fd));
  }

  ioctl(fd: number, name: string, arg: Record<string, unknown>): number {
    return this.run(name, sc.sysIoctl(this, fd, name, arg));
  }

  reclaim(nrPages = 0): number {
    return this.run('reclaim', sc.reclaim(this, nrPages));
  }

  oomReap(p: Process): number {
    return this.run('oom_reaper', sc.oomReap(this, p));
  }

  clearSoftDirty(p: Process): number {
    return this.run('clear_refs', sc.clearSoftDirty(this, p));
  }

  pagemap(p: Process, addr: number, npages: number): sc.PagemapEntry[] {
    return this.run('pagemap', sc.pagemapRead(this, p, addr, npages));
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
        pinned_vm: (mm?.pinnedVm ?? 0) * PAGE_SIZE,
        locked_vm: p.user.lockedVm * PAGE_SIZE,
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
