/**
 * One GPU of the UVM-style driver: its device memory and root-chunk allocator, its replayable
 * fault buffer, its va_spaces (one per process attached), the tunables and the counters.
 */
import { Prng } from '../../../lib/prng.ts';
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
