/**
 * BUGGY: an invalidate() that sleeps on its lock even when the range is not blockable. Used by
 * ../oom-reap-sleeping-driver.yaml.
 *
 * What is wrong: the OOM reaper (and other atomic contexts) invalidates with
 * mmu_notifier_invalidate_range_start_nonblock(): callbacks run with blocking forbidden, because
 * the reaper must make progress even when the victim's holders of driver locks are stuck
 * waiting for memory. mutex_lock() may sleep; the kernel's might_sleep() check (non_block_start)
 * reports it, and so does the model.
 *
 * The fix: if (!mmu_notifier_range_blockable(range)) { if (!mutex_trylock(lock)) return false; }
 * else mutex_lock(lock); as interval_mirror_driver.ts does. Returning false makes the reaper
 * skip the VMA and retry later.
 */
import {
  type Dmirror,
  dmirrorDoUpdate,
  type DmirrorDriver,
  type KGen,
  mmuIntervalSetSeq,
  type MmuNotifierRange,
} from 'hetmem';

function* invalidate(mirror: Dmirror, range: MmuNotifierRange, curSeq: number): KGen<boolean> {
  // BUG: no mmu_notifier_range_blockable() check: this may sleep in a non-blockable context.
  yield* mirror.mutex.lock();
  mmuIntervalSetSeq(mirror, curSeq);
  dmirrorDoUpdate(mirror, range.start, range.end);
  yield* mirror.mutex.unlock();
  return true;
}

export const sleepingDriver: Partial<DmirrorDriver> = { invalidate };
