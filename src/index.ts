/**
 * The public API of hetmem. Everything not exported here is internal and may change.
 */
export { System, Process, type SystemConfig, type ThpMode } from './kernel/system.ts';
export * as mman from './kernel/mm/mman.ts';
export { Errno, KernelError, errnoName, errnoValue, isErr, check } from './kernel/errno.ts';
export * as syscalls from './kernel/syscalls.ts';
export type { PagemapEntry } from './kernel/syscalls.ts';
export { checkAll, assertOracles, type CheckOptions } from './oracles/index.ts';
export { Scheduler, type Chooser } from './sched/scheduler.ts';
export { Mutex, SpinLock, RwSem, WaitQueue, Completion, Srcu } from './sched/locks.ts';
export type { KGen, SchedPoint, Violation } from './sched/types.ts';
export { explore, replay } from './sched/explore/index.ts';
export type { ExploreOptions, ExploreResult, ExploreTarget, ExploreWorld } from './sched/explore/index.ts';
