/**
 * Models mm/mmu_notifier.c and include/linux/mmu_notifier.h: how the core mm tells secondary
 * MMUs (devices, KVM, IOMMUs) that CPU page table entries are about to change.
 *
 * This file holds the entry points the core mm calls: invalidate_range_start/end (interval
 * subscribers first, then whole-mm ones), the exit-time release, the accessed-bit queries and the
 * TLB-flush hook. Subscriber lifetime is in mmu_notifier_register.ts, the interval algorithm in
 * mmu_notifier_interval.ts, the shared data in mmu_notifier_types.ts; everything is re-exported
 * from here, the one module the rest of the model imports.
 */
import { mightSleep } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { MmStruct } from './mm_types.ts';
import { itreeInvEnd, itreeInvalidate, itreeRelease } from './mmu_notifier_interval.ts';
import {
  INVALIDATE_MAP,
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  type MmuNotifier,
  type MmuNotifierRange,
  type MmuNotifierSubscriptions,
  lockMapAcquire,
  lockMapRelease,
  mmuNotifierRangeBlockable,
  mmuNotifyEventName,
  rangeTraceArgs,
  runCallback,
  traceNotifierCall,
  warn,
} from './mmu_notifier_types.ts';

export * from './mmu_notifier_types.ts';
export * from './mmu_notifier_register.ts';
export {
  mmuIntervalCheckRetry,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierInsertLocked,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from './mmu_notifier_interval.ts';

function traceArgs(r: MmuNotifierRange): Record<string, unknown> {
  return {
    event: mmuNotifyEventName(r.event),
    mm: r.mm.id,
    start: r.start,
    end: r.end,
    blockable: mmuNotifierRangeBlockable(r),
  };
}

/**
 * Models mn_hlist_invalidate_range_start(). Every whole-mm subscriber's start runs even after one
 * fails; if any failed (only -EAGAIN on a non-blockable range is legitimate), every subscriber
 * with an end gets it now, because the caller will not call range_end. Under the v5.11 contract
 * (sys.contracts.invalidateRangeStartNonblock) there is no such unwind and no warning about a
 * failing subscriber with an end: the subscribers whose start succeeded never see their end.
 */
function* hlistInvalidateRangeStart(subs: MmuNotifierSubscriptions, range: MmuNotifierRange): KGen<number> {
  const sys = range.mm.sys;
  const srcu = sys.notifierSrcu;
  const nonBlock = !mmuNotifierRangeBlockable(range);
  const unwind = sys.contracts.invalidateRangeStartNonblock !== 'v5.11';
  let ret = 0;
  const idx = yield* srcu.readLock();
  for (let s = subs.hlistHead; s !== null; s = s.hnext) {
    const ops = s.ops;
    if (ops.invalidateRangeStart === undefined) continue;
    if (sys.trace.enabled)
      traceNotifierCall(range.mm, 'mmu_notifier invalidate_range_start', rangeTraceArgs(range));
    const r = yield* runCallback(
      sys,
      'mmu_notifier invalidate_range_start',
      nonBlock,
      ops.invalidateRangeStart(s, range),
      s,
      true,
    );
    if (r !== 0) {
      if (!nonBlock || r !== -Errno.EAGAIN) {
        warn(sys, `invalidate_range_start failed with ${r} in ${nonBlock ? 'non-' : ''}blockable context`);
      }
      // A subscriber that can fail its start cannot have an end: it would not know which one.
      if (unwind && ops.invalidateRangeEnd !== undefined) {
        warn(sys, 'a subscriber whose invalidate_range_start failed also implements invalidate_range_end');
      }
      ret = r;
    }
  }
  if (ret !== 0 && unwind) {
    for (let s = subs.hlistHead; s !== null; s = s.hnext) {
      const ops = s.ops;
      if (ops.invalidateRangeEnd === undefined) continue;
      yield* runCallback(
        sys,
        'mmu_notifier invalidate_range_end (unwind)',
        nonBlock,
        ops.invalidateRangeEnd(s, range),
        s,
        true,
      );
    }
  }
  yield* srcu.readUnlock(idx);
  return ret;
}

/** The counter of each event's invalidations, by event (named once, not on every invalidation). */
const invalidateCounters: string[] = [];

/** The trace counter of `event`'s invalidations (exported: both forms of the path share the names). */
export function invalidateCounter(event: number): string {
  return (invalidateCounters[event] ??= `invalidate.${mmuNotifyEventName(event)}`);
}

/** Models __mmu_notifier_invalidate_range_start(): interval subscribers, then whole-mm ones. */
function* invalidateRangeStartSubs(range: MmuNotifierRange): KGen<number> {
  const sys = range.mm.sys;
  const subs = range.mm.notifierSubscriptions!;
  sys.trace.count(invalidateCounter(range.event));
  if (sys.trace.enabled) sys.trace.emit('notifier', 'invalidate_range', 'B', traceArgs(range));
  if (subs.hasItree) {
    const ret = yield* itreeInvalidate(subs, range);
    if (ret !== 0) {
      sys.trace.count('invalidate.eagain');
      sys.trace.emit('notifier', 'invalidate_range', 'E', { ...traceArgs(range), ret });
      return ret;
    }
  }
  if (!subs.hlistEmpty) {
    // If this fails after the interval side succeeded, the kernel leaves the interval side's
    // active range counted (the caller does not call range_end); the model does the same.
    const ret = yield* hlistInvalidateRangeStart(subs, range);
    if (ret !== 0) {
      sys.trace.count('invalidate.eagain');
      sys.trace.emit('notifier', 'invalidate_range', 'E', { ...traceArgs(range), ret });
    }
    return ret;
  }
  return 0;
}

/**
 * Models mmu_notifier_invalidate_range_start(): from here until the paired range_end, secondary
 * MMUs must not use or re-establish translations in [start, end). May sleep. With no
 * subscriptions on the mm it does nothing and is not a scheduling point.
 */
export function* mmuNotifierInvalidateRangeStart(range: MmuNotifierRange): KGen {
  const sched = range.mm.sys.sched;
  mightSleep(sched, 'mmu_notifier_invalidate_range_start');
  if (range.mm.notifierSubscriptions === null) return;
  lockMapAcquire(sched, INVALIDATE_MAP);
  range.flags |= MMU_NOTIFIER_RANGE_BLOCKABLE;
  yield* invalidateRangeStartSubs(range);
  lockMapRelease(sched, INVALIDATE_MAP);
}

/**
 * Models mmu_notifier_invalidate_range_start_nonblock() (the OOM reaper): 0, or -EAGAIN if a
 * subscriber would have to sleep. After -EAGAIN the caller must leave the range alone and must
 * not call range_end: everything already started has been ended here.
 */
export function* mmuNotifierInvalidateRangeStartNonblock(range: MmuNotifierRange): KGen<number> {
  const sched = range.mm.sys.sched;
  if (range.mm.notifierSubscriptions === null) return 0;
  lockMapAcquire(sched, INVALIDATE_MAP);
  range.flags &= ~MMU_NOTIFIER_RANGE_BLOCKABLE;
  const ret = yield* invalidateRangeStartSubs(range);
  lockMapRelease(sched, INVALIDATE_MAP);
  return ret;
}

/** Models mn_hlist_invalidate_end(). */
function* hlistInvalidateEnd(subs: MmuNotifierSubscriptions, range: MmuNotifierRange): KGen {
  const sys = range.mm.sys;
  const srcu = sys.notifierSrcu;
  const nonBlock = !mmuNotifierRangeBlockable(range);
  const idx = yield* srcu.readLock();
  for (let s = subs.hlistHead; s !== null; s = s.hnext) {
    const ops = s.ops;
    if (ops.invalidateRangeEnd === undefined) continue;
    if (sys.trace.enabled)
      traceNotifierCall(range.mm, 'mmu_notifier invalidate_range_end', rangeTraceArgs(range));
    yield* runCallback(
      sys,
      'mmu_notifier invalidate_range_end',
      nonBlock,
      ops.invalidateRangeEnd(s, range),
      s,
      true,
    );
  }
  yield* srcu.readUnlock(idx);
}

/**
 * Models mmu_notifier_invalidate_range_end(): the PTEs have changed (pages may already be free);
 * secondary MMUs may fault them in again. Ends the interval exclusion this range took part in.
 */
export function* mmuNotifierInvalidateRangeEnd(range: MmuNotifierRange): KGen {
  const sys = range.mm.sys;
  if (mmuNotifierRangeBlockable(range)) mightSleep(sys.sched, 'mmu_notifier_invalidate_range_end');
  const subs = range.mm.notifierSubscriptions;
  if (subs === null) return;
  lockMapAcquire(sys.sched, INVALIDATE_MAP);
  if (subs.hasItree) yield* itreeInvEnd(subs);
  if (!subs.hlistEmpty) yield* hlistInvalidateEnd(subs, range);
  lockMapRelease(sys.sched, INVALIDATE_MAP);
  if (sys.trace.enabled) sys.trace.emit('notifier', 'invalidate_range', 'E', traceArgs(range));
}

/**
 * Models mmu_notifier_arch_invalidate_secondary_tlbs(): called where the CPU TLB is flushed,
 * with the page-table lock held, so the callbacks run as non-sleeping.
 */
export function* mmuNotifierArchInvalidateSecondaryTlbs(mm: MmStruct, start: number, end: number): KGen {
  const subs = mm.notifierSubscriptions;
  if (subs === null) return;
  const sys = mm.sys;
  const srcu = sys.notifierSrcu;
  const idx = yield* srcu.readLock();
  for (let s = subs.hlistHead; s !== null; s = s.hnext) {
    const ops = s.ops;
    if (ops.archInvalidateSecondaryTlbs === undefined) continue;
    traceNotifierCall(mm, 'mmu_notifier arch_invalidate_secondary_tlbs', { start, end });
    yield* runCallback(
      sys,
      'mmu_notifier arch_invalidate_secondary_tlbs',
      true,
      ops.archInvalidateSecondaryTlbs(s, mm, start, end),
      s,
      true,
    );
  }
  yield* srcu.readUnlock(idx);
}

/**
 * Models mn_hlist_release(): ->release of every whole-mm subscriber, then unhook them all, then
 * wait for a ->release that mmu_notifier_unregister may be running concurrently.
 */
function* hlistRelease(subs: MmuNotifierSubscriptions, mm: MmStruct): KGen {
  const sys = mm.sys;
  const srcu = sys.notifierSrcu;
  const idx = yield* srcu.readLock();
  for (let s = subs.hlistHead; s !== null; s = s.hnext) {
    const ops = s.ops;
    if (ops.release === undefined) continue;
    traceNotifierCall(mm, 'mmu_notifier release', {});
    yield* runCallback(sys, 'mmu_notifier release', false, ops.release(s, mm), s, true);
  }
  yield* subs.lock.lock();
  while (subs.hlistHead !== null) subs.hlistDel(subs.hlistHead);
  yield* subs.lock.unlock();
  yield* srcu.readUnlock(idx);
  yield* srcu.synchronize();
}

/**
 * Models mmu_notifier_release(), the first step of exit_mmap() (mm_users already 0): a RELEASE
 * event to every interval subscriber, then ->release of every whole-mm subscriber, which are
 * unhooked. Interval subscribers stay in the tree and also see the UNMAP that follows.
 */
export function* mmuNotifierRelease(mm: MmStruct): KGen {
  const subs = mm.notifierSubscriptions;
  if (subs === null) return;
  if (subs.hasItree) yield* itreeRelease(subs, mm);
  if (!subs.hlistEmpty) yield* hlistRelease(subs, mm);
}

/**
 * The walk shared by the accessed-bit queries: every whole-mm subscriber that has the op, under
 * SRCU; `call` returns the subscriber's answer, or null when it lacks the op. With `firstOnly` the
 * walk stops at the first subscriber that saw an access (test_young).
 */
function* youngWalk(
  mm: MmStruct,
  label: string,
  call: (s: MmuNotifier) => KGen<boolean> | null,
  firstOnly: boolean,
): KGen<boolean> {
  const subs = mm.notifierSubscriptions;
  if (subs === null) return false;
  const sys = mm.sys;
  let young = false;
  const idx = yield* sys.notifierSrcu.readLock();
  for (let s = subs.hlistHead; s !== null; s = s.hnext) {
    const gen = call(s);
    if (gen === null) continue;
    const y = yield* runCallback(sys, label, false, gen, s, true);
    young = y || young;
    if (young && firstOnly) break;
  }
  yield* sys.notifierSrcu.readUnlock(idx);
  return young;
}

/** Models mmu_notifier_clear_flush_young(): whether any secondary MMU had the range accessed. */
export function* mmuNotifierClearFlushYoung(mm: MmStruct, start: number, end: number): KGen<boolean> {
  return yield* youngWalk(
    mm,
    'mmu_notifier clear_flush_young',
    (s) => s.ops.clearFlushYoung?.(s, mm, start, end) ?? null,
    false,
  );
}

/** Models mmu_notifier_clear_young(): like clear_flush_young, the flush may be skipped. */
export function* mmuNotifierClearYoung(mm: MmStruct, start: number, end: number): KGen<boolean> {
  return yield* youngWalk(
    mm,
    'mmu_notifier clear_young',
    (s) => s.ops.clearYoung?.(s, mm, start, end) ?? null,
    false,
  );
}

/** Models mmu_notifier_test_young(): stops at the first subscriber that saw an access. */
export function* mmuNotifierTestYoung(mm: MmStruct, address: number): KGen<boolean> {
  return yield* youngWalk(
    mm,
    'mmu_notifier test_young',
    (s) => s.ops.testYoung?.(s, mm, address) ?? null,
    true,
  );
}
