/**
 * What every built-in GPU driver model offers the scenario layer and the simulator, whatever
 * framework it is written on (an NVIDIA-UVM-style HMM driver, an xe-style driver on drm_gpusvm):
 * attach a process, make a GPU access through the GPU's own page tables (faulting, migrating and
 * replaying as that driver does), and show its page tables and ranges the way SNAPSHOT shows a
 * dmirror's.
 *
 * The scenario ops `gpu_access` and `gpu_snapshot` dispatch through this interface only, so one
 * op serves every kind in the registry (registry.ts).
 */
import type { KGen } from '../../../sched/types.ts';
import type { Process } from '../../system.ts';
import type { Device } from '../sdk/device.ts';

export type GpuAccessKind = 'read' | 'write' | 'atomic';

/** One GPU PTE as introspection shows it. */
export interface GpuPteView {
  readonly va: number;
  readonly pfn: number;
  readonly read: boolean;
  readonly write: boolean;
  readonly atomic: boolean;
  /** Where the page lives: this GPU's memory, or system memory mapped remotely. */
  readonly memory: 'device' | 'system';
}

/** A driver-defined range (a UVM VA block, a gpusvm range) with a short state line. */
export interface GpuRangeView {
  readonly start: number;
  readonly end: number;
  readonly kind: string;
  readonly state: string;
}

export interface GpuSnapshot {
  readonly device: string;
  readonly kind: string;
  readonly ptes: readonly GpuPteView[];
  readonly ranges: readonly GpuRangeView[];
}

export interface GpuAccessResult {
  /** 0, or -errno (-EFAULT when the access could not be made to succeed). */
  readonly ret: number;
  /** The bytes read (reads), empty otherwise. */
  readonly data: Uint8Array;
}

/** A GPU device model bound to an SDK device. */
export interface GpuDevice {
  /** The kind name in the registry ('uvm', 'xe'). */
  readonly kind: string;
  readonly dev: Device;
  /** Makes `proc`'s address space visible to the GPU (open + bind); 0 or -errno. Idempotent. */
  attach(proc: Process): KGen<number>;
  /**
   * A GPU access of `length` bytes at `va` by `proc`'s context: reads fill the result's data,
   * writes and atomics store `data` (zeros when null). Faults go through the driver's fault path.
   */
  access(
    proc: Process,
    va: number,
    length: number,
    access: GpuAccessKind,
    data: Uint8Array | null,
  ): KGen<GpuAccessResult>;
  /** The GPU page tables and ranges of `proc`'s context now. */
  snapshot(proc: Process): GpuSnapshot;
}
