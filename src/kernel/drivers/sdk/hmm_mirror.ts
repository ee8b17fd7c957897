/**
 * The driver side of HMM address-space mirroring (Documentation/mm/hmm.rst): the loop every
 * mirroring driver writes around hmm_range_fault(), once.
 *
 *   CPU0 invalidate                    CPU1 device fault (this helper)
 *                                      seq = mmu_interval_read_begin()
 *                                      hmm_range_fault() under the mmap read lock
 *   driver lock; set_seq(cur);
 *   zap device PTEs; unlock
 *                                      driver lock; read_retry(seq) === true -> unlock, again
 *                                      ... read_retry(seq) === false -> program the device
 *                                      PTEs while still holding the lock, then unlock
 */
import { NSEC_PER_MSEC } from '../../../sched/clock.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { HMM_RANGE_DEFAULT_TIMEOUT_MS, type HmmRange, hmmRangeFault } from '../../mm/hmm.ts';
import { mmuIntervalReadBegin, mmuIntervalReadRetry } from '../../mm/mmu_notifier_interval.ts';

/** The lock a driver's invalidate callback takes (its "user lock"). */
export interface UserLock {
  lock(): KGen;
  unlock(): KGen;
}

export interface RangeFaultOptions {
  /** @defaultValue HMM_RANGE_DEFAULT_TIMEOUT_MS */ readonly timeoutMs?: number;
  /**
   * Virtual time one pass costs. Virtual time otherwise moves only while every thread waits, so
   * a loop that keeps colliding with invalidations would never time out without it.
   * @defaultValue 10000 (10 µs)
   */
  readonly passNs?: number;
  /** The caller already holds the mmap lock for reading. @defaultValue false */
  readonly mmapLocked?: boolean;
}

/**
 * The read_begin / hmm_range_fault / lock / read_retry loop over `range` (range.notifier is the
 * driver's interval notifier). Returns 0 with `userLock` HELD and range.hmmPfns valid: the
 * caller programs its device PTEs, then unlocks. Returns -errno with the lock not held: the
 * error of hmm_range_fault() other than -EBUSY, or -EBUSY once the timeout passed.
 */
export function* hmmRangeFaultLocked(
  range: HmmRange,
  userLock: UserLock,
  opts: RangeFaultOptions = {},
): KGen<number> {
  const mm = range.notifier.mm;
  const clock = mm.sys.sched.clock;
  const deadline = clock.now + (opts.timeoutMs ?? HMM_RANGE_DEFAULT_TIMEOUT_MS) * NSEC_PER_MSEC;
  const passNs = opts.passNs ?? 10_000;
  const takeMmap = opts.mmapLocked !== true;
  for (;;) {
    if (clock.now > deadline) return -Errno.EBUSY;
    clock.advanceBy(passNs);
    range.notifierSeq = yield* mmuIntervalReadBegin(range.notifier);
    if (takeMmap) yield* mm.mmapLock.downRead();
    const ret = yield* hmmRangeFault(range);
    if (takeMmap) yield* mm.mmapLock.upRead();
    if (ret === -Errno.EBUSY) continue;
    if (ret !== 0) return ret;
    yield* userLock.lock();
    if (!mmuIntervalReadRetry(range.notifier, range.notifierSeq)) return 0;
    yield* userLock.unlock();
  }
}
