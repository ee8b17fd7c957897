/**
 * Interval subscribers (mmu_interval_notifier, mm/mmu_notifier.c): the collision-retry scheme
 * between invalidations (writers, many at once) and a driver building device mappings (reader).
 *
 * `subs.invalidateSeq` is even when no invalidation hit an interval and odd while at least one
 * did ("fully excluded"). Every overlapping invalidation in flight shares that odd value as its
 * cur_seq; the callback stores it into the subscriber (mmuIntervalSetSeq) under the driver's lock,
 * and the driver's read_retry compares it with what read_begin returned. The last inv_end makes
 * the seq even again (+1, so +2 per exclusion), applies queued tree changes and wakes readers.
 */
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import type { MmStruct } from './mm_types.ts';
import { markFreed, usedAfterFree } from '../uaf.ts';
import { __mmuNotifierRegister, mmuNotifierRegister } from './mmu_notifier_register.ts';
import {
  INVALIDATE_MAP,
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  MMU_NOTIFY,
  type MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
  type MmuNotifierRange,
  type MmuNotifierSubscriptions,
  mightLock,
  mmdrop,
  mmgrab,
  mmuNotifierRangeBlockable,
  mmuNotifierRangeInit,
  rangeTraceArgs,
  runCallback,
  traceNotifierCall,
  warn,
} from './mmu_notifier_types.ts';
import { ULONG_MAX } from '../../lib/units.ts';
import { mightSleep } from '../../sched/locks.ts';

function isOdd(seq: number): boolean {
  return seq % 2 === 1;
}

/** mn_itree_is_invalidating(): the tree is frozen; caller holds subs.lock. */
function itreeIsInvalidating(subs: MmuNotifierSubscriptions): boolean {
  return isOdd(subs.invalidateSeq);
}

/**
 * Models mn_itree_inv_start_range(): counts one more active range and, if it hits any interval,
 * enters the fully excluded state. Returns the first overlapping subscriber and the cur_seq every
 * callback of this range is given.
 */
export function* itreeInvStartRange(
  subs: MmuNotifierSubscriptions,
  range: MmuNotifierRange,
): KGen<{ sub: MmuIntervalNotifier | null; curSeq: number }> {
  yield* subs.lock.lock();
  yield subs.points.activeInc;
  subs.activeInvalidateRanges++;
  const node = subs.itree.firstOverlap(range.start, range.end - 1);
  if (node !== null && !isOdd(subs.invalidateSeq)) {
    yield subs.points.seqOdd;
    subs.invalidateSeq += 1;
  }
  const curSeq = subs.invalidateSeq;
  yield* subs.lock.unlock();
  return { sub: node === null ? null : node.value, curSeq };
}

/**
 * Models mn_itree_inv_next(): the next overlapping subscriber. Runs without the lock: the odd
 * seq this range holds keeps the tree from changing.
 */
export function itreeInvNext(
  subs: MmuNotifierSubscriptions,
  sub: MmuIntervalNotifier,
  range: MmuNotifierRange,
): MmuIntervalNotifier | null {
  const node = subs.itree.nextOverlap(sub.node!, range.start, range.end - 1);
  return node === null ? null : node.value;
}

/**
 * Models mn_itree_inv_end(): one active range fewer. The last one of a full exclusion makes the
 * seq even, applies the deferred inserts and removes, and wakes readers and removers.
 */
export function* itreeInvEnd(subs: MmuNotifierSubscriptions): KGen {
  const sys = subs.mm.sys;
  yield* subs.lock.lock();
  yield subs.points.activeDec;
  subs.activeInvalidateRanges--;
  if (subs.activeInvalidateRanges !== 0 || !itreeIsInvalidating(subs)) {
    yield* subs.lock.unlock();
    return;
  }
  yield subs.points.seqInc;
  subs.invalidateSeq++;
  // Like rtnl_unlock(): tree changes requested during the exclusion happen now, in list order.
  for (const s of subs.deferredList) {
    if (s.node === null) {
      s.node = subs.itree.insert(s.start, s.last, s);
      sys.trace.emit('notifier', 'interval deferred insert', 'i', { start: s.start, last: s.last });
    } else {
      subs.itree.remove(s.node);
      s.node = null;
      sys.trace.emit('notifier', 'interval deferred remove', 'i', { start: s.start, last: s.last });
    }
    s.deferred = false;
  }
  subs.deferredList.length = 0;
  yield* subs.lock.unlock();
  subs.wq.wakeUpAll();
}

/** First passes whose subscriber asked for a second one. */
interface FinishPass {
  readonly sub: MmuIntervalNotifier;
  readonly finish: unknown;
}

/** Calls the invalidate (or two-pass first pass) of one subscriber; returns its answer. */
function* invokeInterval(
  sys: System,
  sub: MmuIntervalNotifier,
  range: MmuNotifierRange,
  curSeq: number,
  finishes: FinishPass[],
): KGen<boolean> {
  const ops = sub.ops;
  const nonBlock = !mmuNotifierRangeBlockable(range);
  if (sys.trace.enabled) {
    const name = ops.invalidateStart !== undefined ? 'interval invalidate_start' : 'interval invalidate';
    traceNotifierCall(sub.mm, name, {
      ...rangeTraceArgs(range),
      interval: `[0x${sub.start.toString(16)}, 0x${sub.last.toString(16)}]`,
      seq: curSeq,
    });
  }
  if (ops.invalidateStart !== undefined) {
    const res = yield* runCallback(
      sys,
      'interval invalidate_start',
      nonBlock,
      ops.invalidateStart(sub, range, curSeq),
      sub,
    );
    if (res.ok && res.finish !== undefined && res.finish !== null) finishes.push({ sub, finish: res.finish });
    return res.ok;
  }
  if (ops.invalidate === undefined) return true;
  return yield* runCallback(sys, 'interval invalidate', nonBlock, ops.invalidate(sub, range, curSeq), sub);
}

/** Models mn_itree_finish_pass(): second passes, in the order the first passes ran. */
function* runFinishPasses(sys: System, range: MmuNotifierRange, finishes: FinishPass[]): KGen {
  const nonBlock = !mmuNotifierRangeBlockable(range);
  for (const f of finishes) {
    const ops = f.sub.ops;
    if (ops.invalidateFinish === undefined) continue; // rejected at insert; nothing to call
    if (sys.trace.enabled)
      traceNotifierCall(f.sub.mm, 'interval invalidate_finish', {
        ...rangeTraceArgs(range),
        interval: `[0x${f.sub.start.toString(16)}, 0x${f.sub.last.toString(16)}]`,
      });
    yield* runCallback(
      sys,
      'interval invalidate_finish',
      nonBlock,
      ops.invalidateFinish(f.sub, f.finish),
      f.sub,
    );
  }
}

/**
 * Models mn_itree_invalidate(): calls every overlapping interval subscriber. Only a non-blockable
 * range may be refused (-EAGAIN); then the walk stops, the finish passes collected so far still
 * run, and the range is ended here because the caller must not call range_end.
 */
export function* itreeInvalidate(subs: MmuNotifierSubscriptions, range: MmuNotifierRange): KGen<number> {
  const sys = subs.mm.sys;
  const finishes: FinishPass[] = [];
  let err = 0;
  const first = yield* itreeInvStartRange(subs, range);
  for (let sub = first.sub; sub !== null; sub = itreeInvNext(subs, sub, range)) {
    const ok = yield* invokeInterval(sys, sub, range, first.curSeq, finishes);
    if (!ok) {
      if (mmuNotifierRangeBlockable(range)) {
        warn(sys, `interval notifier [${sub.start}, ${sub.last}] refused a blockable invalidation`);
        continue;
      }
      err = -Errno.EAGAIN;
      break;
    }
  }
  yield* runFinishPasses(sys, range, finishes);
  if (err !== 0) yield* itreeInvEnd(subs);
  return err;
}

/**
 * Models mn_itree_release(): at exit, every interval subscriber gets one blockable RELEASE event
 * over the whole address space. They stay in the tree (the following unmap still reaches them).
 */
export function* itreeRelease(subs: MmuNotifierSubscriptions, mm: MmStruct): KGen {
  const sys = mm.sys;
  const range = mmuNotifierRangeInit(MMU_NOTIFY.RELEASE, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, 0, ULONG_MAX);
  sys.trace.count('invalidate.RELEASE');
  sys.trace.emit('notifier', 'invalidate_range', 'B', {
    event: 'RELEASE',
    mm: mm.id,
    start: 0,
    end: ULONG_MAX,
  });
  const finishes: FinishPass[] = [];
  const first = yield* itreeInvStartRange(subs, range);
  for (let sub = first.sub; sub !== null; sub = itreeInvNext(subs, sub, range)) {
    const ok = yield* invokeInterval(sys, sub, range, first.curSeq, finishes);
    if (!ok) warn(sys, `interval notifier [${sub.start}, ${sub.last}] refused the RELEASE invalidation`);
  }
  yield* runFinishPasses(sys, range, finishes);
  yield* itreeInvEnd(subs);
  sys.trace.emit('notifier', 'invalidate_range', 'E', { event: 'RELEASE', mm: mm.id });
}

/**
 * Models mmu_interval_read_begin(): the seq to hand to read_retry later. Sleeps only if this
 * subscriber has already been told about the exclusion in progress (or was inserted during it);
 * a collision with any other invalidation is left for read_retry to catch.
 */
export function* mmuIntervalReadBegin(sub: MmuIntervalNotifier): KGen<number> {
  const mm = sub.mm;
  if (usedAfterFree(mm.sys, sub, 'mmu_interval_read_begin')) return sub.invalidateSeq;
  const subs = mm.notifierSubscriptions!;
  const sched = mm.sys.sched;
  yield* subs.lock.lock();
  yield { kind: 'step', label: 'read interval invalidate_seq', access: { obj: sub, write: false } };
  const seq = sub.invalidateSeq;
  const busy = seq === subs.invalidateSeq;
  yield* subs.lock.unlock();
  // The sleep below waits for invalidation callbacks: lockdep must see that ordering.
  mightLock(sched, INVALIDATE_MAP);
  if (busy) {
    mm.sys.trace.emit('notifier', 'read_begin waits', 'i', { seq });
    // Woken, it reads the subscriptions' seq, which every writer declares; the caller runs on to
    // its next point with the seq it was handed.
    yield* subs.wq.waitEvent(() => subs.invalidateSeq !== seq, 'mmu_interval_read_begin', {
      obj: subs,
      write: false,
    });
  }
  return seq;
}

/**
 * Models mmu_interval_read_retry(): true if an invalidation collided with the read section.
 * Call it under the same driver lock the invalidate callback holds around mmuIntervalSetSeq().
 */
export function mmuIntervalReadRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  usedAfterFree(sub.mm.sys, sub, 'mmu_interval_read_retry');
  return sub.invalidateSeq !== seq;
}

/** Models mmu_interval_check_retry(): the same test without the lock, only as an early hint. */
export function mmuIntervalCheckRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  usedAfterFree(sub.mm.sys, sub, 'mmu_interval_check_retry');
  return sub.invalidateSeq !== seq;
}

/** Models mmu_interval_set_seq(): called from invalidate() under the driver's lock. */
export function mmuIntervalSetSeq(sub: MmuIntervalNotifier, curSeq: number): void {
  usedAfterFree(sub.mm.sys, sub, 'mmu_interval_set_seq');
  sub.invalidateSeq = curSeq;
}

/** Rejects ops the core could not call correctly (the kernel WARNs; the model refuses them). */
function checkIntervalOps(sys: System, ops: MmuIntervalNotifierOps): number {
  if (ops.invalidateStart !== undefined && ops.invalidateFinish === undefined) {
    warn(sys, 'mmu_interval_notifier_insert: invalidate_start without invalidate_finish');
    return -Errno.EINVAL;
  }
  if (ops.invalidateStart === undefined && ops.invalidate === undefined) {
    warn(sys, 'mmu_interval_notifier_insert: neither invalidate nor invalidate_start');
    return -Errno.EINVAL;
  }
  return 0;
}

/** Models __mmu_interval_notifier_insert(). */
function* intervalInsert(
  sub: MmuIntervalNotifier,
  mm: MmStruct,
  subs: MmuNotifierSubscriptions,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps,
): KGen<number> {
  const sys = mm.sys;
  // A removed notifier may be inserted again (re-initialised by its driver): it is live again.
  sys.freed.revive(sub);
  sub.mm = mm;
  sub.ops = ops;
  sub.node = null;
  sub.deferred = false;
  sub.start = start;
  // The tree stores the inclusive last address, which must fit in an unsigned long.
  if (length === 0 || start + (length - 1) > ULONG_MAX) return -Errno.EOVERFLOW;
  sub.last = start + (length - 1);
  // The caller must hold an mm_users reference (mmget).
  if (mm.mmUsers <= 0) {
    warn(sys, `mmu_interval_notifier_insert on mm ${mm.id} with mm_users ${mm.mmUsers}`);
    return -Errno.EINVAL;
  }
  mmgrab(mm); // dropped by mmuIntervalNotifierRemove()

  yield* subs.lock.lock();
  if (subs.activeInvalidateRanges !== 0) {
    // Some invalidation is in flight and its range is unknown here: assume it covers us.
    if (itreeIsInvalidating(subs)) {
      // Frozen tree: join it at the final inv_end, so the outcome does not depend on timing.
      subs.deferredList.unshift(sub);
      sub.deferred = true;
      sys.trace.emit('notifier', 'interval insert deferred', 'i', { start: sub.start, last: sub.last });
    } else {
      yield subs.points.seqOdd;
      subs.invalidateSeq += 1;
      sub.node = subs.itree.insert(sub.start, sub.last, sub);
    }
    // Equal to the current odd seq: read_begin sleeps until this exclusion is over.
    sub.invalidateSeq = subs.invalidateSeq;
  } else {
    if (itreeIsInvalidating(subs)) warn(sys, 'interval insert: odd invalidate_seq with no active range');
    // Odd and different from the current seq, so read_begin does not sleep.
    sub.invalidateSeq = subs.invalidateSeq - 1;
    sub.node = subs.itree.insert(sub.start, sub.last, sub);
  }
  yield* subs.lock.unlock();
  return 0;
}

function badInterval(start: number, length: number): boolean {
  return !(Number.isFinite(start) && start >= 0 && Number.isFinite(length) && length >= 0);
}

/**
 * Models mmu_interval_notifier_insert(): subscribes `sub` to [start, start + length). On return
 * the subscriber may not be in the tree yet (deferred); the read_begin/read_retry protocol
 * covers that. Returns 0, -EOVERFLOW (empty or wrapping interval), -EINVAL (mm without users,
 * bad ops), -ENOMEM.
 */
export function* mmuIntervalNotifierInsert<S extends MmuIntervalNotifier>(
  sub: S,
  mm: MmStruct,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps<S>,
): KGen<number> {
  const sys = mm.sys;
  if (badInterval(start, length)) return -Errno.EINVAL;
  const bad = checkIntervalOps(sys, ops);
  if (bad !== 0) return bad;
  mightLock(sys.sched, mm.mmapLock.lockClass);
  let subs = mm.notifierSubscriptions;
  if (subs === null || !subs.hasItree) {
    const ret = yield* mmuNotifierRegister(null, mm);
    if (ret !== 0) return ret;
    subs = mm.notifierSubscriptions!;
  }
  return yield* intervalInsert(sub, mm, subs, start, length, ops);
}

/** Models mmu_interval_notifier_insert_locked(): the caller holds the mmap lock for write. */
export function* mmuIntervalNotifierInsertLocked<S extends MmuIntervalNotifier>(
  sub: S,
  mm: MmStruct,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps<S>,
): KGen<number> {
  const sys = mm.sys;
  if (badInterval(start, length)) return -Errno.EINVAL;
  const bad = checkIntervalOps(sys, ops);
  if (bad !== 0) return bad;
  let subs = mm.notifierSubscriptions;
  if (subs === null || !subs.hasItree) {
    const ret = yield* __mmuNotifierRegister(null, mm);
    if (ret !== 0) return ret;
    subs = mm.notifierSubscriptions!;
  }
  return yield* intervalInsert(sub, mm, subs, start, length, ops);
}

/**
 * Models mmu_interval_notifier_remove(): on return no callback for `sub` runs or will run. If an
 * exclusion is in progress the removal is queued and this sleeps until that exclusion ends, so
 * it must not be called from a callback nor with a lock a callback takes.
 */
export function* mmuIntervalNotifierRemove(sub: MmuIntervalNotifier): KGen {
  const mm = sub.mm;
  const sys = mm.sys;
  const subs = mm.notifierSubscriptions!;
  let seq = 0;
  if (usedAfterFree(sys, sub, 'mmu_interval_notifier_remove')) return;
  mightSleep(sys.sched, 'mmu_interval_notifier_remove');

  yield* subs.lock.lock();
  if (itreeIsInvalidating(subs)) {
    if (sub.node === null) {
      // Inserted during this same exclusion and never linked: just forget the pending insert.
      const i = subs.deferredList.indexOf(sub);
      if (i >= 0) subs.deferredList.splice(i, 1);
      else warn(sys, 'mmu_interval_notifier_remove of a notifier that is not inserted');
      sub.deferred = false;
    } else {
      subs.deferredList.unshift(sub);
      sub.deferred = true;
      seq = subs.invalidateSeq;
      sys.trace.emit('notifier', 'interval remove deferred', 'i', { start: sub.start, last: sub.last, seq });
    }
  } else if (sub.node === null) {
    warn(sys, 'mmu_interval_notifier_remove of a notifier that is not in the tree');
  } else {
    subs.itree.remove(sub.node);
    sub.node = null;
  }
  yield* subs.lock.unlock();

  mightLock(sys.sched, INVALIDATE_MAP);
  if (seq !== 0) {
    // Wait for the exclusion that holds the queued removal: its final inv_end unlinks us.
    for (;;) {
      yield* subs.lock.lock();
      const released = subs.invalidateSeq !== seq;
      yield* subs.lock.unlock();
      if (released) break;
      // Woken, it only goes back to take the lock: a step that touches nothing shared.
      yield {
        kind: 'wait',
        label: 'mmu_interval_notifier_remove',
        channel: subs.wq,
        resume: { obj: subs, write: false },
      };
    }
  }
  // On return the driver may free the notifier: any later use of it is a use-after-free.
  markFreed(
    sys,
    sub,
    `mmu_interval_notifier [0x${sub.start.toString(16)}, 0x${sub.last.toString(16)}]`,
    'mmu_interval_notifier_remove',
  );
  mmdrop(mm);
}
