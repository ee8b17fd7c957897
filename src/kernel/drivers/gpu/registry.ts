/**
 * The built-in GPU device kinds a scenario may name in `devices:` (`gpu0: { type: xe }`): each
 * is an SDK driver plus its side of the generic GPU scenario ops (gpu_device.ts). Add a kind by
 * adding its entry here; the scenario schema, `hetmem schema` and the docs list these names.
 */
import type { DeviceDriver } from '../sdk/device.ts';
import type { GpuDeviceOps } from './gpu_device.ts';
import { XE_UAPI_CONSTANTS, xeDriver, xeGpuOps } from './xe_device.ts';

export interface GpuKind {
  /** The `type:` of a scenario device. */
  readonly name: string;
  /** One line for docs and `hetmem schema`. */
  readonly doc: string;
  readonly driver: DeviceDriver;
  readonly gpu: GpuDeviceOps;
  /** uAPI constants bound as names in scenarios that declare a device of this kind. */
  readonly constants: Readonly<Record<string, number>>;
}

export const GPU_KINDS: Readonly<Record<string, GpuKind>> = {
  xe: {
    name: 'xe',
    doc: 'an xe-style GPU on drm_gpusvm and drm_pagemap (config: vram, fault_queue, strict_atomic, atomic_timeslice_ms)',
    driver: xeDriver,
    gpu: xeGpuOps,
    constants: XE_UAPI_CONSTANTS,
  },
};

/** The kind named `name`, or null. */
export function gpuKind(name: string): GpuKind | null {
  return Object.hasOwn(GPU_KINDS, name) ? GPU_KINDS[name] : null;
}

/** Every built-in GPU kind name. */
export function gpuKindNames(): string[] {
  return Object.keys(GPU_KINDS);
}

/** The kind whose driver `driver` is, or null (a device of a user driver, dmirror, ...). */
export function gpuKindOfDriver(driver: unknown): GpuKind | null {
  return Object.values(GPU_KINDS).find((k) => k.driver === driver) ?? null;
}
