/**
 * BUGGY: an invalidate() that calls mmu_interval_set_seq() outside its lock. Used by
 * ../set-seq-unlocked.yaml.
 *
 * What is wrong: the fault path checks mmu_interval_read_retry() under the driver lock, and that
 * check is only meaningful if set_seq() happens under the same lock, together with the device
 * update. Here the device PTEs are cleared under the lock, but the sequence is recorded after
 * the unlock. A fault that took its snapshot before the invalidation can take the lock in that
 * gap, see an unchanged sequence, and map pages the invalidation is about to free:
 *
 *          CPU0 (munmap -> invalidate)         CPU1 (device fault)
 *                                          seq = read_begin(); hmm_range_fault() -> page P
 *   lock; clear device PTEs; unlock
 *                                          lock; read_retry(seq) == false; map P; unlock
 *   set_seq(cur_seq)                       <- too late
 *   zap PTEs, free P                       device still maps P
 *
 * The fix: call mmu_interval_set_seq() while holding the lock (interval_mirror_driver.ts).
 */
import {
  type Dmirror,
  dmirrorDoUpdate,
  type DmirrorDriver,
  type KGen,
  mmuIntervalSetSeq,
  type MmuNotifierRange,
  mmuNotifierRangeBlockable,
  schedPoint,
} from 'hetmem';

function* invalidate(mirror: Dmirror, range: MmuNotifierRange, curSeq: number): KGen<boolean> {
  if (mmuNotifierRangeBlockable(range)) yield* mirror.mutex.lock();
  else if (!(yield* mirror.mutex.trylock())) return false;
  dmirrorDoUpdate(mirror, range.start, range.end);
  yield* mirror.mutex.unlock();
  // BUG: the sequence is written after the unlock. (The write of a shared word is a point where
  // another CPU may run first; schedPoint() tells the explorer so. It declares no footprint:
  // the word is shared with read_retry() in steps that only declare the lock they take.)
  yield* schedPoint('mmu_interval_set_seq (unlocked)');
  mmuIntervalSetSeq(mirror, curSeq);
  return true;
}

/** The fault path stays the built-in one (correct); only invalidate() is replaced. */
export const setSeqUnlockedDriver: Partial<DmirrorDriver> = { invalidate };
