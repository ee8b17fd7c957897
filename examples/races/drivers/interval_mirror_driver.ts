/**
 * The driver of legacy_mirror_driver.ts moved to mmu_interval_notifier, the API that replaced
 * hmm_mirror in v5.5 (commit 04ec32fbc2). Used by ../interval-mirror.yaml on a dmirror device;
 * a template for a driver's two callbacks:
 *
 *  - invalidate(): under the driver lock, record the invalidation with mmu_interval_set_seq()
 *    and tear down the device PTEs of the range (trylock, return false, if not blockable);
 *  - the fault path: seq = mmu_interval_read_begin(); hmm_range_fault() under the mmap read
 *    lock; take the driver lock; if mmu_interval_read_retry(seq) drop it and start over;
 *    otherwise program the device PTEs before unlocking.
 *
 * Why this is right where range->valid was not: set_seq() stores a sequence number that changes
 * with every invalidation epoch, so read_retry() sees an invalidation that started *and ended*
 * while the driver was faulting; a boolean reset at invalidate_range_end could not.
 */
import {
  type Dmirror,
  dmirrorDoFault,
  dmirrorDoUpdate,
  type DmirrorDriver,
  Errno,
  type HmmRange,
  hmmRangeFault,
  type KGen,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  type MmuNotifierRange,
  mmuNotifierRangeBlockable,
} from 'hetmem';

/** mmu_interval_notifier_ops.invalidate */
function* invalidate(mirror: Dmirror, range: MmuNotifierRange, curSeq: number): KGen<boolean> {
  if (mmuNotifierRangeBlockable(range)) yield* mirror.mutex.lock();
  else if (!(yield* mirror.mutex.trylock())) return false;
  mmuIntervalSetSeq(mirror, curSeq);
  dmirrorDoUpdate(mirror, range.start, range.end);
  yield* mirror.mutex.unlock();
  return true;
}

/** The device fault path for one range (range.notifier is the mirror's interval notifier). */
function* rangeFault(mirror: Dmirror, range: HmmRange): KGen<number> {
  const mm = mirror.mm;
  for (;;) {
    range.notifierSeq = yield* mmuIntervalReadBegin(range.notifier);
    yield* mm.mmapLock.downRead();
    const ret = yield* hmmRangeFault(range);
    yield* mm.mmapLock.upRead();
    if (ret === -Errno.EBUSY) continue; // collided with an invalidation: start over
    if (ret !== 0) return ret;
    yield* mirror.mutex.lock();
    // Under the lock invalidate() takes: no set_seq can slip in between this check and the
    // device update below.
    if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) {
      yield* mirror.mutex.unlock();
      continue;
    }
    const r = dmirrorDoFault(mirror, range);
    yield* mirror.mutex.unlock();
    return r;
  }
}

export const intervalDriver: DmirrorDriver = Object.freeze({ invalidate, rangeFault });
