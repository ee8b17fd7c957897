import { PAGE_SIZE } from '../lib/units.ts';
import { Scheduler } from '../sched/scheduler.ts';
import { Srcu } from '../sched/locks.ts';
import type { KGen } from '../sched/types.ts';
import { Errno } from './errno.ts';
import { FaultInjector } from './fault_inject.ts';
import { PhysMem } from './mm/page_alloc.ts';
import { SwapDevice } from './mm/swapfile.ts';
import { File, type Mapping, MmStruct, UserStruct } from './mm/mm_types.ts';
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
  readonly processes = new Map<number, Process>();
  /** Files the scenario holds open, by descriptor. */
  readonly files = new Map<number, File>();
  /** What page->mapping ids refer to. */
  readonly mappings = new Map<number, Mapping>();
  /** Devices by name; drivers put their state here. */
  readonly devices = new Map<string, unknown>();
  /** Hooks run at teardown and by the oracles (drivers register their own checks). */
  readonly teardownHooks: (() => void)[] = [];
  private ids = new Map<string, number>();
  private nextFd = 3;
  readonly users = new Map<number, UserStruct>();

  constructor(config: SystemConfig = {}) {
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

  newMm(user: UserStruct, owner: string): MmStruct {
    return new MmStruct(this, this.nextId('mm'), user, owner);
  }

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

  /** -EBADF unless fd is open. */
  badFd(fd: number): number {
    return this.files.has(fd) ? 0 : -Errno.EBADF;
  }
}
