/**
 * BUGGY: a fault path that programs device PTEs without mmu_interval_read_retry() under its lock.
 * Used by ../no-read-retry.yaml.
 *
 * What is wrong: hmm_range_fault() returns a snapshot of the CPU page table, and nothing stops
 * an invalidation (munmap, migration, reclaim) from running between that snapshot and the device
 * update. invalidate() cleared the device PTEs that existed then, but this path writes the stale
 * snapshot afterwards: the device keeps pages the CPU has unmapped and freed.
 *
 * The fix: take the lock invalidate() takes, then
 *     if (mmu_interval_read_retry(range.notifier, range.notifierSeq)) { unlock; goto again; }
 * before programming, as interval_mirror_driver.ts does.
 */
import {
  type Dmirror,
  dmirrorDoFault,
  type DmirrorDriver,
  Errno,
  type HmmRange,
  hmmRangeFault,
  type KGen,
  mmuIntervalReadBegin,
} from 'hetmem';

function* rangeFault(mirror: Dmirror, range: HmmRange): KGen<number> {
  const mm = mirror.mm;
  for (;;) {
    range.notifierSeq = yield* mmuIntervalReadBegin(range.notifier);
    yield* mm.mmapLock.downRead();
    const ret = yield* hmmRangeFault(range);
    yield* mm.mmapLock.upRead();
    if (ret === -Errno.EBUSY) continue;
    if (ret !== 0) return ret;
    yield* mirror.mutex.lock();
    // BUG: no mmu_interval_read_retry() here.
    const r = dmirrorDoFault(mirror, range);
    yield* mirror.mutex.unlock();
    return r;
  }
}

/** invalidate() stays the built-in one (correct); only the fault path is replaced. */
export const noRetryDriver: Partial<DmirrorDriver> = { rangeFault };
