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
import { TASK_SIZE } from '../../../lib/units.ts';
import { NSEC_PER_MSEC } from '../../../sched/clock.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { HMM_RANGE_DEFAULT_TIMEOUT_MS, type HmmRange, hmmRangeFault } from '../../mm/hmm.ts';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from '../../mm/mmu_notifier_interval.ts';
import {
  mmuNotifierRangeBlockable,
  type MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
  type MmuNotifierRange,
} from '../../mm/mmu_notifier_types.ts';
import type { Process } from '../../system.ts';
import type { Device } from './device.ts';
import type { DriverMutex, LockDecl } from './locks.ts';

/** The lock a driver's invalidate callback takes (its "user lock"). */
export interface UserLock {
  lock(): KGen;
  unlock(): KGen;
  /** The plain form of lock(), for the plain form of a path (a driver mutex has one). */
  lock$?(): void;
  /** The plain form of unlock(). */
  unlock$?(): void;
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

/** A user lock an invalidate callback may only trylock when the range must not block. */
export interface TryUserLock extends UserLock {
  trylock(): KGen<boolean>;
  /** The plain form of trylock(). */
  trylock$?(): boolean;
}

/**
 * The body of a mirroring driver's mmu_interval_notifier_ops.invalidate: takes `lock` (only
 * tries it when the range may not block, and returns false if it is held), publishes `curSeq`
 * with mmu_interval_set_seq() under it, lets `zap` drop the device's mappings of
 * [range.start, range.end), and unlocks. Returns true once the range is invalidated.
 */
export function* invalidateUnderLock(
  sub: MmuIntervalNotifier,
  lock: TryUserLock,
  range: MmuNotifierRange,
  curSeq: number,
  zap: (start: number, end: number) => void,
): KGen<boolean> {
  if (mmuNotifierRangeBlockable(range)) yield* lock.lock();
  else if (!(yield* lock.trylock())) return false;
  mmuIntervalSetSeq(sub, curSeq);
  zap(range.start, range.end);
  yield* lock.unlock();
  return true;
}

/** How mirrorOpen() sets up a file: its lock, its state and its notifier ops. */
export interface MirrorFileDecl<F extends MmuIntervalNotifier> {
  /** The file's user lock: its name on the device, its lock class and what it guards. */
  readonly lock: LockDecl & { readonly name: string };
  /** Builds the file's state around its lock: `F` is the notifier itself (container_of). */
  readonly create: (lock: DriverMutex) => F;
  readonly ops: MmuIntervalNotifierOps<F>;
}

/**
 * The open() of a driver whose every file mirrors its opener's whole user address space, as
 * RDMA ODP's implicit MRs and SVM GPU drivers do: declares the file's mutex on `dev`, builds the
 * file's state and registers it with mmu_interval_notifier_insert() over [0, TASK_SIZE) before
 * any device access can fault. Returns the state, or -ESRCH when the process has no mm left, or
 * the insert's -errno.
 */
export function* mirrorOpen<D extends object, F extends MmuIntervalNotifier>(
  dev: Device<D, F>,
  proc: Process,
  decl: MirrorFileDecl<F>,
): KGen<F | number> {
  const mm = proc.mm;
  if (mm === null) return -Errno.ESRCH;
  const { name, ...lockDecl } = decl.lock;
  const file = decl.create(dev.mutex(name, lockDecl));
  const ret = yield* mmuIntervalNotifierInsert(file, mm, 0, TASK_SIZE, decl.ops);
  return ret !== 0 ? ret : file;
}
