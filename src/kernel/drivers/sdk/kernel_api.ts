/**
 * The kernel functions a device driver calls, under their kernel names, in one place: what the
 * driver SDK promises to keep stable. Each is the model's own implementation (the same code the
 * system calls run), re-exported, never a copy.
 */
export {
  MMU_NOTIFY,
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  MmuIntervalNotifier,
  MmuNotifier,
  mmuIntervalCheckRetry,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierInsertLocked,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  mmuNotifierGet,
  mmuNotifierGetLocked,
  mmuNotifierPut,
  mmuNotifierRangeBlockable,
  mmuNotifierRegister,
  mmuNotifierSynchronize,
  mmuNotifierUnregister,
  mmuNotifyEventName,
  __mmuNotifierRegister,
  type InvalidateStartResult,
  type MmuIntervalNotifierOps,
  type MmuNotifierOps,
  type MmuNotifierRange,
  type MmuNotifyEvent,
} from '../../mm/mmu_notifier.ts';
export {
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  HMM_RANGE_DEFAULT_TIMEOUT_MS,
  hmmPfnFlags,
  hmmPfnPfn,
  hmmPfnToMapOrder,
  hmmRangeFault,
  type HmmRange,
} from '../../mm/hmm.ts';
export {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDevicePfns,
  migrateDeviceRange,
  migratePfn,
  migratePfnFlags,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  type MigrateVma,
} from '../../mm/migrate_device.ts';
export {
  DevPagemap,
  isDeviceCoherentPage,
  isDevicePrivatePage,
  isZoneDevicePage,
  memremapPages,
  memunmapPages,
  pageDevPagemap,
  zoneDevicePageInit,
  type DevPagemapOps,
} from '../../mm/memremap.ts';
export { makeDeviceExclusive } from '../../mm/device_exclusive.ts';
/** The v5.4 hmm_mirror API (mm/hmm.c of that release), for drivers modelled on it. */
export {
  HMM_PFN_FLAG,
  HMM_PFN_VALUE,
  HmmMirror,
  hmmDeviceEntryToPfn,
  hmmMirrorRegister,
  hmmMirrorUnregister,
  hmmRangeRegister,
  hmmRangeUnregister,
  hmmRangeValid,
  hmmRangeWaitUntilValid,
  legacyHmmRangeFault,
  type HmmMirrorOps,
  type LegacyHmmRange,
} from '../../mm/hmm_legacy.ts';
export {
  FOLL_FORCE,
  FOLL_LONGTERM,
  FOLL_WRITE,
  getUserPagesFast,
  getUserPagesRemote,
  pinUserPagesFast,
  pinUserPagesRemote,
  putUserPages,
  unpinUserPages,
} from '../../mm/gup.ts';
export { folioLock, folioTestLocked, folioTrylock, folioUnlock } from '../../mm/filemap.ts';
export { mmgetNotZero, mmput } from '../../exit.ts';
export { accessRemoteVm, clearUser, copyUser, vmInsertPage } from '../../mm/memory.ts';
export { VM, VM_FAULT, type MmStruct, type Vma, type VmFault, File } from '../../mm/mm_types.ts';
export { allocPageReclaim } from '../../mm/vmscan.ts';
export { warn } from '../../mm/mmu_notifier_types.ts';
export { HPAGE_PMD_NR, HPAGE_PMD_ORDER, PAGE_SHIFT, PAGE_SIZE, ULONG_MAX } from '../../../lib/units.ts';

import type { System } from '../../system.ts';
import type { VmFault } from '../../mm/mm_types.ts';
import { fatalSignalPending as fatalSignalPendingOf } from '../../mm/mmap_lock.ts';
import type { Completion, WaitQueue } from '../../../sched/locks.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { pmdIsLeaf, pmdTableOf } from '../../mm/pte.ts';

/**
 * Whether the fault of `vmf` came through a PMD leaf entry rather than a PTE (the kernel's
 * `vmf->pte == NULL` in a migrate_to_ram): only then may the driver migrate the whole folio.
 */
export function vmfPmdMapped(vmf: VmFault): boolean {
  return pmdIsLeaf(pmdTableOf(vmf.vma.mm, vmf.address), vmf.address);
}

/** Models folio_get(): one more reference on the folio of `pfn`. */
export function folioGet(sys: System, pfn: number): void {
  sys.phys.get(sys.phys.head(pfn));
}

/** Models folio_put(): drops a reference; the last one frees the folio (folio_free for device memory). */
export function folioPut(sys: System, pfn: number): void {
  sys.phys.put(sys.phys.head(pfn));
}

/** Models fatal_signal_pending(current): the process the calling thread runs for is exiting. */
export function fatalSignalPending(sys: System): boolean {
  return fatalSignalPendingOf(sys.sched);
}

/**
 * Models wait_event_killable(): sleeps on `wq` until `cond()` holds (0), or until the calling
 * process is killed (-ERESTARTSYS; its exit is the model's fatal signal).
 */
export function* waitEventKillable(sys: System, wq: WaitQueue, cond: () => boolean): KGen<number> {
  return (yield* wq.waitEventKillable(cond, () => fatalSignalPendingOf(sys.sched))) ? 0 : -Errno.ERESTARTSYS;
}

/** Models wait_for_completion_killable(): 0, or -ERESTARTSYS if the calling process is killed. */
export function* waitForCompletionKillable(sys: System, c: Completion): KGen<number> {
  return (yield* c.waitKillable(() => fatalSignalPendingOf(sys.sched))) ? 0 : -Errno.ERESTARTSYS;
}
