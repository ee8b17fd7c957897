/** The built-in GPU driver models: importing this registers every kind. */
import './uvm.ts';
export { createGpuDevice, gpuDevice, gpuKind, gpuKindNames, type GpuKind } from './registry.ts';
export type { GpuAccessKind, GpuAccessResult, GpuDevice, GpuSnapshot } from './gpu_device.ts';
