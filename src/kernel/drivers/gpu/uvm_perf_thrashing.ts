/**
 * Thrashing detection of the UVM-style driver (after uvm_perf_thrashing.c): a page that migrates
 * again within `lapse` of its previous migration is a thrashing event; `threshold` events make
 * the hint THROTTLE (the faulting processor naps `nap` lapses before the page is serviced);
 * `pinThreshold` throttles make the hint PIN (the page stays where it is and the GPU maps it
 * remotely for `pinLapses` lapses). The driver's self-tuning of the lapse and its epochs are not
 * modelled: the lapse is fixed.
 */
import type { UvmStats, UvmTunables, UvmVaBlock } from './uvm_types.ts';

export type UvmThrashingHint = 'none' | 'throttle' | 'pin';

/** Models uvm_perf_thrashing_get_hint() for page `page` of `block` at model time `nowNs`. */
export function uvmPerfThrashingGetHint(
  t: UvmTunables,
  block: UvmVaBlock,
  page: number,
  nowNs: number,
  stats: UvmStats,
): UvmThrashingHint {
  if (!t.thrashingEnable) return 'none';
  if (block.pinnedUntilNs[page] > nowNs) return 'pin';
  const lapseNs = t.thrashingLapseUs * 1000;
  if (nowNs - block.lastMigrateNs[page] > lapseNs) {
    block.thrashEvents[page] = 0;
    return 'none';
  }
  stats.thrashingEvents++;
  if (++block.thrashEvents[page] < t.thrashingThreshold) return 'none';
  block.thrashEvents[page] = 0;
  if (++block.throttles[page] >= t.thrashingPinThreshold) {
    block.throttles[page] = 0;
    block.pinnedUntilNs[page] = nowNs + t.thrashingPinLapses * lapseNs;
    stats.pins++;
    return 'pin';
  }
  stats.throttles++;
  stats.throttleNapNs += t.thrashingNapLapses * lapseNs;
  return 'throttle';
}
