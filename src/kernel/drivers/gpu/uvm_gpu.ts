/**
 * One GPU of the UVM-style driver: its device memory and root-chunk allocator, its replayable
 * fault buffer, its va_spaces (one per process attached), the tunables and the counters.
 */
import { Prng } from '../../../lib/prng.ts';
import { inlineDrive } from '../../../sched/plain.ts';
import type { KGen } from '../../../sched/types.ts';
import type { Mutex, RwSem } from '../../../sched/locks.ts';
import {
  Mutex$unlock,
  RwSem$downgradeWrite,
  RwSem$downRead,
  RwSem$downWrite,
  RwSem$upRead,
} from '../../../sched/locks.plain.ts';
import type { MmStruct } from '../../mm/mm_types.ts';
import type { System } from '../../system.ts';
import type { Device } from '../sdk/device.ts';
import type { DevicePageTable, FaultBuffer } from '../sdk/device_pagetable.ts';
import type { DeviceMemory } from '../sdk/devmem.ts';
import type { UvmPmm } from './uvm_pmm_gpu.ts';
import { UvmStats, type UvmTunables, type UvmVaSpace } from './uvm_types.ts';

export class UvmGpu {
  /** Set once probe has memremapped the device memory. */
  mem!: DeviceMemory;
  pmm!: UvmPmm;
  faults!: FaultBuffer;
  readonly stats = new UvmStats();
  readonly vaSpaces = new Map<MmStruct, UvmVaSpace>();
  readonly byPt = new Map<DevicePageTable, UvmVaSpace>();
  readonly rng: Prng;
  /**
   * The clock thrashing detection reads, in ns. The scheduler's virtual clock unless a simulator
   * drives the GPU on its modelled time.
   */
  clockNs: () => number;
  /** The bottom half runs only when someone calls it (the simulator polls), not on interrupt. */
  polled = false;
  /**
   * Set by whoever runs the bottom half as a plain path (Scheduler.runPlain: nothing else can be
   * scheduled meanwhile), and only for that call: then uvmKernel() runs each kernel path the
   * driver calls to its end in place, and no step climbs back through the driver's generators.
   */
  plainPass = false;
  /** Called after each batch (the simulator prices it); gets the batch's VA block count. */
  onBatch: ((faults: number, vaBlocks: number) => void) | null = null;

  constructor(
    readonly dev: Device,
    readonly tunables: UvmTunables,
  ) {
    this.rng = new Prng(`uvm:${tunables.seed}`);
    const sys: System = dev.sys;
    this.clockNs = () => sys.sched.clock.now;
  }

  get sys(): System {
    return this.dev.sys;
  }
}

/**
 * A kernel path the driver calls, in both its forms: on the scheduler the generator form is
 * delegated to (yield*); during a plain pass (UvmGpu.plainPass) the plain form runs in place
 * (the derived `*.plain.ts` function, or inlineDrive of the generator where there is none), with
 * the same steps, and no step climbs back through the driver's own generators.
 */
export function* uvmKernel<T>(gpu: UvmGpu, plain: () => T, gen: () => KGen<T>): KGen<T> {
  if (gpu.plainPass) return plain();
  return yield* gen();
}

/** uvmKernel() of a path with no plain form: inlineDrive runs its generator in place. */
export function* uvmKernelGen<T>(gpu: UvmGpu, gen: () => KGen<T>): KGen<T> {
  if (gpu.plainPass) return inlineDrive(gen());
  return yield* gen();
}

/** down_read() for the driver (see uvmKernel). */
export function* uvmDownRead(gpu: UvmGpu, sem: RwSem): KGen {
  if (gpu.plainPass) RwSem$downRead(sem);
  else yield* sem.downRead();
}

/** up_read() for the driver (see uvmKernel). */
export function* uvmUpRead(gpu: UvmGpu, sem: RwSem): KGen {
  if (gpu.plainPass) RwSem$upRead(sem);
  else yield* sem.upRead();
}

/** down_write() for the driver (see uvmKernel). */
export function* uvmDownWrite(gpu: UvmGpu, sem: RwSem): KGen {
  if (gpu.plainPass) RwSem$downWrite(sem);
  else yield* sem.downWrite();
}

/** downgrade_write() for the driver (see uvmKernel). */
export function* uvmDowngradeWrite(gpu: UvmGpu, sem: RwSem): KGen {
  if (gpu.plainPass) RwSem$downgradeWrite(sem);
  else yield* sem.downgradeWrite();
}

/** mutex_unlock() for the driver (see uvmKernel). */
export function* uvmMutexUnlock(gpu: UvmGpu, lock: Mutex): KGen {
  if (gpu.plainPass) Mutex$unlock(lock);
  else yield* lock.unlock();
}
