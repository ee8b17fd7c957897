/**
 * The state of the xe-style GPU driver model (drivers/gpu/drm/xe): the device, its open files,
 * its VMs, their CPU-address-mirror bindings, userptrs and SVM ranges.
 *
 * Locking (what protects what):
 *  - `XeVm.lock` (vm->lock, an rw_semaphore) serialises everything that changes the VM's
 *    bindings and its gpusvm trees: binds, madvise, the page-fault handler and the garbage
 *    collector take it for write; it is the gpusvm's driver lock;
 *  - the gpusvm's `notifierLock` guards the GPU page table (`XeVm.pt`) and every range's pages:
 *    the invalidate callback zaps under it (write), a fault commits its PTEs under it (read)
 *    after drm_gpusvm_range_pages_valid() said the pages are still current;
 *  - `XeVm.gcLock` (a spinlock) guards the garbage-collector list, which the invalidate callback
 *    fills while holding the notifier lock;
 *  - `XeDevice.evictLock` guards the VRAM allocation LRU used for eviction.
 */
import type { MmStruct } from '../../mm/mm_types.ts';
import type { Process } from '../../system.ts';
import type { Device } from '../sdk/device.ts';
import type { DevicePageTable, FaultBuffer } from '../sdk/device_pagetable.ts';
import type { DriverMutex, DriverRwSem, DriverSpinLock } from '../sdk/locks.ts';
import type { WorkStruct } from '../sdk/workqueue.ts';
import type { DrmGpusvm, DrmGpusvmPages, DrmGpusvmRange } from './drm_gpusvm.ts';
import type { DrmPagemap, DrmPagemapDevmem } from './drm_pagemap.ts';
import type { MmuIntervalNotifier } from '../sdk/kernel_api.ts';

/** DRM_XE_PREFERRED_LOC_*: where a range's pages should live. */
export const XE_PREFERRED_LOC = { DEFAULT_DEVICE: 0, DEFAULT_SYSTEM: 1 } as const;
/** DRM_XE_ATOMIC_*: which side's atomics a range must support. */
export const XE_ATOMIC = { UNDEFINED: 0, DEVICE: 1, GLOBAL: 2, CPU: 3 } as const;

/** The memory attributes madvise sets on a part of a mirror binding (struct xe_vma_mem_attr). */
export interface XeMemAttr {
  preferredLoc: number;
  atomic: number;
}

/** A GPU VMA: a CPU-address-mirror binding, or a userptr. */
export interface XeMirrorVma {
  start: number;
  end: number;
  attr: XeMemAttr;
}

/** A userptr binding on the gpusvm pages API, with its own interval notifier. */
export interface XeUserptr {
  readonly start: number;
  readonly end: number;
  readonly notifier: MmuIntervalNotifier & { userptr: XeUserptr };
  readonly pages: DrmGpusvmPages;
  /** Invalidated since the last bind: the next GPU fault repins and rebinds it. */
  invalidated: boolean;
}

/** Models struct xe_svm_range's driver part (range->priv). */
export interface XeSvmRange {
  /** The GPU page table maps the range (tile_present). */
  bound: boolean;
  /** Queued on the garbage-collector list, now or before (the collector unlinks it with list_del()). */
  queued: boolean;
  /** The VRAM allocation populated for it, if any. */
  devmem: DrmPagemapDevmem | null;
}

/** Models struct xe_vm with fault mode (DRM_XE_VM_CREATE_FLAG_FAULT_MODE). */
export interface XeVm {
  readonly id: number;
  readonly xe: XeDevice;
  readonly mm: MmStruct;
  readonly proc: Process;
  readonly lock: DriverRwSem;
  readonly gpusvm: DrmGpusvm;
  readonly pt: DevicePageTable;
  readonly gcLock: DriverSpinLock;
  readonly gcList: DrmGpusvmRange[];
  readonly gcWork: WorkStruct;
  readonly mirrors: XeMirrorVma[];
  readonly userptrs: XeUserptr[];
  closed: boolean;
}

/** The driver's knobs (the scenario's device `config`). */
export interface XeConfig {
  /** VRAM size in bytes; 0: an integrated GPU without device memory. @defaultValue 64 MiB */
  readonly vram: number;
  /** GPU page-fault queue entries. @defaultValue 64 */
  readonly faultQueue: number;
  /**
   * Atomic faults require device memory (drm_gpusvm devmem_only; xe's strict migration policy).
   * false replays the driver before that policy. @defaultValue true
   */
  readonly strictAtomic: boolean;
  /** Migration timeslice of atomic faults, ms (0 before timeslicing existed). @defaultValue 5 */
  readonly atomicTimesliceMs: number;
}

/** Models struct xe_device (with one tile and one GT). */
export interface XeDevice {
  readonly dev: Device<XeDevice, XeFile>;
  readonly config: XeConfig;
  readonly dpagemap: DrmPagemap | null;
  readonly faults: FaultBuffer;
  readonly vms: Map<number, XeVm>;
  nextVmId: number;
  /** VRAM allocations, least recently populated first (the TTM LRU the shrinker walks). */
  readonly lru: DrmPagemapDevmem[];
  readonly evictLock: DriverMutex;
  /** The VM of each GPU page table (a fault record names the table). */
  readonly vmOfPt: Map<DevicePageTable, XeVm>;
}

/** Models struct xe_file: a process' open /dev/dri/renderD*. */
export interface XeFile {
  readonly proc: Process;
  readonly vms: Set<XeVm>;
}
