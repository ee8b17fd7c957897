/**
 * The one interface every built-in GPU driver model implements for the generic scenario ops:
 * `gpu_access` (the GPU reads, writes or does an atomic on user memory through its own page
 * tables, faulting as the hardware would) and `gpu_snapshot` (what the GPU page tables and the
 * driver's SVM ranges hold, like HMM_DMIRROR_SNAPSHOT). Each driver keeps its own uAPI (ioctls
 * by their names); this is only the part the scenario layer needs to drive any of them alike.
 */
import type { KGen } from '../../../sched/types.ts';
import type { Process } from '../../system.ts';
import type { Device } from '../sdk/device.ts';
import type { DeviceAccessKind } from '../sdk/device_pagetable.ts';

/** One GPU access: `buf.length` bytes at `addr` (any alignment; it may span pages). */
export interface GpuAccessRequest {
  /** Whose GPU context (VM) performs it; null: the device's only one. */
  readonly proc: Process | null;
  readonly addr: number;
  readonly access: DeviceAccessKind;
  /** Read: filled with what the GPU read. Write / atomic: what it stores. */
  readonly buf: Uint8Array;
}

/** One 4 KiB page the GPU maps. */
export interface GpuPteView {
  readonly va: number;
  readonly pfn: number;
  readonly write: boolean;
  readonly atomic: boolean;
  /** 'vram': a device page; 'system': a DMA-mapped system page. */
  readonly mem: 'vram' | 'system';
}

/** One SVM range of the driver (a drm_gpusvm range, a UVM VA block, ...). */
export interface GpuRangeView {
  readonly start: number;
  readonly end: number;
  /** Flags in the driver's words ('unmapped', 'partial_unmap', 'has_devmem_pages', ...). */
  readonly flags: readonly string[];
}

/** What gpu_snapshot returns for [start, end). */
export interface GpuSnapshot {
  readonly ptes: readonly GpuPteView[];
  readonly ranges: readonly GpuRangeView[];
}

/** The part of a GPU driver model the generic scenario ops drive. */
export interface GpuDeviceOps {
  /** Performs one access; 0 or -errno (-EFAULT: the GPU gave up on an unrecoverable fault). */
  access(dev: Device, req: GpuAccessRequest): KGen<number>;
  /** The GPU's view of [start, end) for `proc` (null: the only context), or -errno. */
  snapshot(dev: Device, proc: Process | null, start: number, end: number): GpuSnapshot | number;
}
