/**
 * The public API of hetmem. Everything not exported here is internal and may change.
 */
export { System, Process, type SystemConfig, type ThpMode } from './kernel/system.ts';
export type { Rlimit, RlimitResource } from './kernel/mm/rlimit.ts';
export * as mman from './kernel/mm/mman.ts';
export { Errno, KernelError, errnoName, errnoValue, isErr, check } from './kernel/errno.ts';
export * as syscalls from './kernel/syscalls.ts';
export type { MapsEntry, PagemapEntry, SmapsEntry, Ulong } from './kernel/syscalls.ts';
export { checkAll, assertOracles, type CheckOptions } from './oracles/index.ts';
export { Scheduler, type Chooser } from './sched/scheduler.ts';
export { Srcu } from './sched/locks.ts';
export type { SchedPoint, Violation } from './sched/types.ts';
export { explore, replay } from './node/explore/index.ts';
export type { ExploreOptions, ExploreResult, ExploreTarget, ExploreWorld } from './sched/explore/index.ts';

// Devices.
export {
  createDmirrorDevice,
  dmirrorOpen,
  defaultDmirrorDriver,
  type CreateDmirrorOptions,
} from './kernel/drivers/test_hmm.ts';
export type { DmirrorDriver } from './kernel/drivers/test_hmm_types.ts';
export { iommufdOpen, iommufdIoctl } from './kernel/iommufd/index.ts';
import './kernel/drivers/iommufd_selftest.ts';

// The driver SDK (src/kernel/drivers/sdk/): devices and drivers, notifiers, HMM, device memory,
// device page tables and faults, workers, iommufd accesses, DMA, and the kernel calls drivers make.
// sdk/index.ts lists each public name once; the package root exports them all from there.
export * from './kernel/drivers/sdk/index.ts';

// Scenario files and conformance.
export { parseScenarioFile, parseScenarioText } from './scenario/parse.ts';
export { suites as conformanceSuites } from './conformance/suites.ts';
export { runCase, type ConformanceCase, type CaseResult } from './conformance/types.ts';

// The built-in devices' helpers the driver modules of examples/races/ use, by name.
export { type Dmirror, dmirrorDoFault, dmirrorDoUpdate } from './kernel/drivers/test_hmm.ts';
export { dmirrorMigrateToDevice } from './kernel/drivers/test_hmm_devmem.ts';
export {
  type LegacyMirror,
  type LegacyMirrorDriver,
  legacyMirrorInvalidate,
  legacyMirrorProgram,
} from './kernel/drivers/legacy_mirror.ts';

// One loaded model per process (see lib/instance.ts) and the version.
export { DuplicateInstanceError } from './lib/instance.ts';
export { HETMEM_VERSION, KERNEL_RELEASE, VERSION_STRING } from './version.ts';
