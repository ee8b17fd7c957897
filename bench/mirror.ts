/**
 * A stand-in for one lib/test_hmm.c mirror device where the benchmarks need only its interval
 * notifier: the callback does what dmirror_interval_invalidate() does (skip its own migrations,
 * take the driver lock, or trylock when the range may not block, publish the seq, drop the
 * device's entries for the range from its page-table xarray).
 */
import type { MmStruct } from '../src/kernel/mm/mm_types.ts';
import {
  MMU_NOTIFY,
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
  mmuIntervalNotifierInsert,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
} from '../src/kernel/mm/mmu_notifier.ts';
import type { System } from '../src/kernel/system.ts';
import { XArray } from '../src/lib/xarray.ts';
import { PAGE_SIZE, ULONG_MAX } from '../src/lib/units.ts';
import { Mutex } from '../src/sched/locks.ts';
import type { KGen } from '../src/sched/types.ts';
import { check } from './figure.ts';

/** One mirror: its lock and its device page table (virtual page number -> entry). */
export class BenchMirror extends MmuIntervalNotifier {
  readonly pt = new XArray<number>();
  readonly lock: Mutex;
  invalidations = 0;
  constructor(sys: System, name: string) {
    super();
    this.lock = new Mutex(sys.sched, `${name}.mutex`, 'dmirror.mutex');
  }
}

/** Models dmirror_interval_invalidate() + dmirror_do_update(). */
export const benchMirrorOps: MmuIntervalNotifierOps<BenchMirror> = {
  *invalidate(m, range, curSeq): KGen<boolean> {
    // A migration this device started itself needs no invalidation of its own mappings.
    if (range.event === MMU_NOTIFY.MIGRATE && range.owner === m) return true;
    if (mmuNotifierRangeBlockable(range)) yield* m.lock.lock();
    else if (!(yield* m.lock.trylock())) return false;
    mmuIntervalSetSeq(m, curSeq);
    m.pt.eraseRange(Math.floor(range.start / PAGE_SIZE), Math.floor((range.end - 1) / PAGE_SIZE));
    m.invalidations++;
    yield* m.lock.unlock();
    return true;
  },
};

/** Subscribes a mirror to [start, start + length) of `mm` (the whole address space by default, as dmirror does). */
export function insertMirror(
  sys: System,
  mm: MmStruct,
  name: string,
  start = 0,
  length = ULONG_MAX - (ULONG_MAX % PAGE_SIZE),
): BenchMirror {
  const m = new BenchMirror(sys, name);
  check(
    sys.run('mmu_interval_notifier_insert', mmuIntervalNotifierInsert(m, mm, start, length, benchMirrorOps)),
    'insert',
  );
  return m;
}
