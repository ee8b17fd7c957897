/**
 * The driver SDK: everything a device-driver model needs, and all that the built-in devices use.
 * src/index.ts exports these names from the package root.
 */
export { DriverError, type DriverIssue } from './driver_error.ts';
export {
  DriverMutex,
  DriverRwSem,
  DriverSpinLock,
  lockdepAssertHeld,
  type DriverLock,
  type LockDecl,
} from './locks.ts';
export {
  Device,
  checkDriver,
  defineIoctl,
  ioctlFor,
  deviceAnonFile,
  deviceByName,
  deviceFileOf,
  deviceOpen,
  deviceProbe,
  deviceRegister,
  deviceUnregister,
  getDevice,
  putDevice,
  sdkDevices,
  type DeviceDriver,
  type IoctlArg,
  type IoctlDef,
  type IoctlFieldType,
  type IoctlFields,
} from './device.ts';
export {
  DelayedWork,
  DmaFence,
  Kthread,
  TimerList,
  WorkStruct,
  cancelDelayedWorkSync,
  cancelWorkSync,
  dmaFenceInit,
  dmaFenceSignal,
  dmaFenceWaitTimeout,
  flushWork,
  initDelayedWork,
  initWork,
  kthreadRun,
  kthreadShouldStop,
  kthreadStop,
  modTimer,
  queueDelayedWork,
  queueWork,
  timerDelete,
  timerSetup,
} from './workqueue.ts';
export {
  DEVICE_ACCESS_MAX_REPLAYS,
  DEV_PTE,
  DevicePageTable,
  FaultBuffer,
  deviceAccess,
  type DevPte,
  type DeviceAccessKind,
  type DeviceFault,
} from './device_pagetable.ts';
export { hmmRangeFaultLocked, type RangeFaultOptions, type UserLock } from './hmm_mirror.ts';
export {
  DeviceMemory,
  devmMemremapPages,
  copyDevicePagesToRam,
  deviceMemoryEvict,
  deviceMemoryRemove,
  migrateToDevice,
  migrateToRamOne,
  migrateVmaInit,
  pageDeviceMemory,
  type DeviceMemoryOptions,
} from './devmem.ts';
export {
  IOMMUFD_ACCESS_RW_READ,
  IOMMUFD_ACCESS_RW_SLOW_PATH,
  IOMMUFD_ACCESS_RW_WRITE,
  IommufdAccess,
  iommufdAccessAttach,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessDetach,
  iommufdAccessPinPages,
  iommufdAccessReplace,
  iommufdAccessRw,
  iommufdAccessUnpinPages,
  iommufdCtxFromFd,
  type IommufdAccessOps,
  type IommufdCtx,
} from './iommufd_access.ts';
export {
  DMA,
  DMA_MAPPING_ERROR,
  dmaMapPage,
  dmaMappingError,
  dmaUnmapPage,
  dmaSyncSingleForCpu,
  dmaSyncSingleForDevice,
  deviceDmaRw,
  type DmaDataDirection,
  type DmaMapping,
} from './dma_mapping.ts';
export * from './kernel_api.ts';
export { Completion, Mutex, RwSem, SpinLock, WaitQueue, sleepNs, schedPoint } from '../../../sched/locks.ts';
export type { KGen } from '../../../sched/types.ts';
