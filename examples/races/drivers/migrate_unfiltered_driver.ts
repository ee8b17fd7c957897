/**
 * BUGGY: a driver that migrates pages to its memory from its fault path and whose invalidate()
 * does not ignore the MIGRATE events its own migration raises. Used by
 * ../migrate-self-invalidate.yaml.
 *
 * The fault path keeps the range in device memory: inside the read_begin / read_retry section it
 * migrates whatever is still in system RAM (migrate_vma_setup(), which always raises a
 * MMU_NOTIFY_MIGRATE invalidation over the range, with the device as its owner), then faults the
 * range with hmm_range_fault() and maps it.
 *
 * What is wrong: invalidate() treats the driver's own migration like any other invalidation and
 * calls mmu_interval_set_seq(). read_retry() then always fails, the fault path starts over and
 * migrates again, which invalidates again: the device never gets its mapping (a livelock; the
 * kernel would spin until the fault timeout).
 *
 * The fix (test_hmm's dmirror_interval_invalidate, amdgpu's svm_range_cpu_invalidate_pagetables):
 *     if (range->event == MMU_NOTIFY_MIGRATE && range->owner == device) return true;
 * The migration code itself keeps the device page table right for those pages.
 */
import {
  type Dmirror,
  dmirrorDoFault,
  dmirrorDoUpdate,
  type DmirrorDriver,
  dmirrorMigrateToDevice,
  Errno,
  type HmmRange,
  hmmRangeFault,
  type KGen,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  type MmuNotifierRange,
  mmuNotifierRangeBlockable,
  PAGE_SIZE,
} from 'hetmem';

function* invalidate(mirror: Dmirror, range: MmuNotifierRange, curSeq: number): KGen<boolean> {
  // BUG: missing `if (range.event === MMU_NOTIFY.MIGRATE && range.owner === mirror.mdevice) return true;`
  if (mmuNotifierRangeBlockable(range)) yield* mirror.mutex.lock();
  else if (!(yield* mirror.mutex.trylock())) return false;
  mmuIntervalSetSeq(mirror, curSeq);
  dmirrorDoUpdate(mirror, range.start, range.end);
  yield* mirror.mutex.unlock();
  return true;
}

function* rangeFault(mirror: Dmirror, range: HmmRange): KGen<number> {
  const mm = mirror.mm;
  const npages = (range.end - range.start) / PAGE_SIZE;
  for (;;) {
    range.notifierSeq = yield* mmuIntervalReadBegin(range.notifier);
    // Policy: the device works on its own memory, so migrate the range there first.
    const cmd = { addr: range.start, npages, cpages: 0, faults: 0 };
    const mret = yield* dmirrorMigrateToDevice(mirror, cmd);
    if (mret !== 0 && mret !== -Errno.ENOENT) return mret;
    yield* mm.mmapLock.downRead();
    const ret = yield* hmmRangeFault(range);
    yield* mm.mmapLock.upRead();
    if (ret === -Errno.EBUSY) continue;
    if (ret !== 0) return ret;
    yield* mirror.mutex.lock();
    if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) {
      yield* mirror.mutex.unlock();
      continue;
    }
    const r = dmirrorDoFault(mirror, range);
    yield* mirror.mutex.unlock();
    return r;
  }
}

export const migrateUnfilteredDriver: DmirrorDriver = Object.freeze({ invalidate, rangeFault });
