/**
 * A device driver on the v5.4 hmm_mirror API (hmm_mirror_register / hmm_range_register /
 * hmm_range_valid), as nouveau's SVM code and the HMM documentation of that release wrote it.
 * Used by ../legacy-mirror.yaml on a `legacy_mirror` device.
 *
 * What is wrong: nothing in the driver's own logic, everything in the API. hmm_range_valid()
 * reads a boolean that invalidate_range_start clears and the *end* of the last concurrent
 * invalidation sets again. If a whole start/end cycle (munmap of the range, say) runs after
 * hmm_range_fault() returned and before the driver takes its lock, `valid` is true again and the
 * driver maps pages the CPU has already unmapped and freed:
 *
 *          CPU0 (munmap)                         CPU1 (device fault)
 *                                      hmm_range_wait_until_valid()   valid == true
 *                                      hmm_range_fault()              pfns[] = page P
 *   invalidate_range_start  valid = false
 *   sync_cpu_device_pagetables (nothing mapped yet)
 *   zap PTEs, free page P
 *   invalidate_range_end    valid = true
 *                                      lock(update); hmm_range_valid() == true   <- wrong
 *                                      program device PTE -> freed page P
 *
 * The fix (commit 04ec32fbc2, v5.5) replaced the boolean by the sequence count of
 * mmu_interval_notifier: see interval_mirror_driver.ts, the same driver on the new API.
 */
import {
  Errno,
  HMM_RANGE_DEFAULT_TIMEOUT_MS,
  hmmRangeRegister,
  hmmRangeUnregister,
  hmmRangeValid,
  hmmRangeWaitUntilValid,
  type KGen,
  type LegacyHmmRange,
  legacyHmmRangeFault,
  type LegacyMirror,
  type LegacyMirrorDriver,
  legacyMirrorInvalidate,
  legacyMirrorProgram,
  type MmuNotifierRange,
  mmuNotifierRangeBlockable,
} from 'hetmem';

/** hmm_mirror_ops.sync_cpu_device_pagetables: clear the device PTEs under the driver lock. */
function* syncCpuDevicePagetables(mirror: LegacyMirror, range: MmuNotifierRange): KGen<number> {
  if (mmuNotifierRangeBlockable(range)) yield* mirror.update.lock();
  else if (!(yield* mirror.update.trylock())) return -Errno.EAGAIN;
  legacyMirrorInvalidate(mirror, range.start, range.end);
  yield* mirror.update.unlock();
  return 0;
}

/** The device fault path for one range, following the v5.4 documentation. */
function* rangeFault(mirror: LegacyMirror, range: LegacyHmmRange): KGen<number> {
  const mm = mirror.mm;
  let ret = yield* hmmRangeRegister(range, mirror);
  if (ret !== 0) return ret;
  for (;;) {
    if (!(yield* hmmRangeWaitUntilValid(range, HMM_RANGE_DEFAULT_TIMEOUT_MS))) {
      ret = -Errno.EBUSY;
      break;
    }
    yield* mm.mmapLock.downRead();
    const n = yield* legacyHmmRangeFault(range, 0);
    yield* mm.mmapLock.upRead();
    if (n === -Errno.EBUSY) continue; // invalidated while faulting: wait and retry
    if (n <= 0) {
      ret = n === 0 ? -Errno.EBUSY : n;
      break;
    }
    yield* mirror.update.lock();
    // The check the API offers. It cannot see an invalidation that started and ended since
    // hmm_range_fault() returned.
    if (!hmmRangeValid(range)) {
      yield* mirror.update.unlock();
      continue;
    }
    legacyMirrorProgram(mirror, range);
    yield* mirror.update.unlock();
    ret = 0;
    break;
  }
  yield* hmmRangeUnregister(range);
  return ret;
}

export const legacyDriver: LegacyMirrorDriver = Object.freeze({ syncCpuDevicePagetables, rangeFault });
