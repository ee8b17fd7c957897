/**
 * Lifetime of whole-mm ("hlist") subscribers (mm/mmu_notifier.c): register / unregister, the
 * get/put interface that frees through SRCU, and mmu_notifier_synchronize().
 */
import { WaitQueue } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { BUG_ON, Errno } from '../errno.ts';
import type { System } from '../system.ts';
import type { MmStruct } from './mm_types.ts';
import {
  type MmuNotifier,
  type MmuNotifierOps,
  MmuNotifierSubscriptions,
  UINT_MAX,
  mmdrop,
  mmgrab,
  runCallback,
  traceNotifierCall,
  warn,
} from './mmu_notifier_types.ts';
import { sideTable } from '../../lib/snapshot.ts';

/** Frees queued by mmuNotifierPut() that have not run yet, per System. */
interface PendingFrees {
  count: number;
  readonly wq: WaitQueue;
}
const pendingFrees = sideTable<System, PendingFrees>();

function pendingOf(sys: System): PendingFrees {
  let p = pendingFrees.get(sys);
  if (p === undefined) {
    p = { count: 0, wq: new WaitQueue(sys.sched, 'mmu_notifier free') };
    pendingFrees.set(sys, p);
  }
  return p;
}

/** mmap_assert_write_locked(): a lockdep assertion, reported rather than fatal. */
function assertMmapWriteLocked(mm: MmStruct, what: string): void {
  const s = mm.sys.sched;
  if (s.current !== null && mm.mmapLock.writer !== s.current) {
    s.report({
      oracle: 'locks',
      message: `${s.current.name}: ${what} without mmap_lock[${mm.id}] held for write`,
      thread: s.current.name,
    });
  }
}

/**
 * Models __mmu_notifier_register(): the caller holds the mmap lock for write and an mm_users
 * reference. `sub` null only switches the interval tree on.
 */
export function* __mmuNotifierRegister(sub: MmuNotifier | null, mm: MmStruct): KGen<number> {
  const sys = mm.sys;
  assertMmapWriteLocked(mm, '__mmu_notifier_register');
  BUG_ON(mm.mmUsers <= 0, `__mmu_notifier_register on mm ${mm.id} with mm_users ${mm.mmUsers}`);

  // A secondary TLB that shares the CPU page tables gets the TLB-flush hook; it must not also
  // take the start/end pair, whose timing is different.
  if (
    sub !== null &&
    sub.ops.archInvalidateSecondaryTlbs !== undefined &&
    (sub.ops.invalidateRangeStart !== undefined || sub.ops.invalidateRangeEnd !== undefined)
  ) {
    warn(
      sys,
      'mmu_notifier_register: arch_invalidate_secondary_tlbs together with invalidate_range_start/end',
    );
    return -Errno.EINVAL;
  }

  let fresh: MmuNotifierSubscriptions | null = null;
  if (mm.notifierSubscriptions === null) {
    if (sys.inject.shouldFail('mmu_notifier_subscriptions')) return -Errno.ENOMEM;
    fresh = new MmuNotifierSubscriptions(mm, sys.sched);
  }

  // mm_take_all_locks(): excludes every rmap walker while the subscriber set changes, so no
  // invalidation an rmap walker started before the mm had subscribers ends on them.
  yield { kind: 'step', label: `mm_take_all_locks(mm ${mm.id})`, access: { obj: mm, write: true } };
  yield* mm.rmapLock.downWrite();

  if (fresh !== null) mm.notifierSubscriptions = fresh;
  const subs = mm.notifierSubscriptions!;
  if (sub !== null) {
    mmgrab(mm); // dropped by unregister or by the free after the last put
    sub.mm = mm;
    sub.users = 1;
    yield* subs.lock.lock();
    subs.hlistAddHead(sub);
    yield* subs.lock.unlock();
  } else {
    subs.hasItree = true;
  }

  yield* mm.rmapLock.upWrite();
  yield { kind: 'step', label: `mm_drop_all_locks(mm ${mm.id})`, access: { obj: mm, write: true } };
  return 0;
}

/** Models mmu_notifier_register(): takes the mmap lock itself. */
export function* mmuNotifierRegister(sub: MmuNotifier | null, mm: MmStruct): KGen<number> {
  yield* mm.mmapLock.downWrite();
  const ret = yield* __mmuNotifierRegister(sub, mm);
  yield* mm.mmapLock.upWrite();
  return ret;
}

/**
 * Models mmu_notifier_unregister(). Calls ->release if exit has not already done it, unhooks the
 * subscriber, then waits until no callback of it runs any more (including a ->release started by
 * exit on another CPU) before dropping its hold on the mm.
 */
export function* mmuNotifierUnregister(sub: MmuNotifier, mm: MmStruct): KGen {
  const sys = mm.sys;
  const srcu = sys.notifierSrcu;
  BUG_ON(mm.mmCount <= 0, `mmu_notifier_unregister on mm ${mm.id} with mm_count ${mm.mmCount}`);
  if (sub.hashed) {
    const idx = yield* srcu.readLock();
    if (sub.ops.release !== undefined) {
      traceNotifierCall(mm, 'mmu_notifier release', { unregister: true });
      yield* runCallback(sys, 'mmu_notifier release', false, sub.ops.release(sub, mm), sub, true);
    }
    yield* srcu.readUnlock(idx);

    const subs = mm.notifierSubscriptions!;
    yield* subs.lock.lock();
    // exit's mmu_notifier_release() may have unhooked it meanwhile: hlistDel tolerates that.
    subs.hlistDel(sub);
    yield* subs.lock.unlock();
  }
  yield* srcu.synchronize();
  BUG_ON(mm.mmCount <= 0, `mmu_notifier_unregister on mm ${mm.id} with mm_count ${mm.mmCount}`);
  mmdrop(mm);
}

/** find_get_mmu_notifier(): the subscriber with these ops, with one more user; null if none. */
function* findGetMmuNotifier(mm: MmStruct, ops: object): KGen<MmuNotifier | number | null> {
  const subs = mm.notifierSubscriptions!;
  yield* subs.lock.lock();
  for (let s = subs.hlistHead; s !== null; s = s.hnext) {
    if (s.ops !== ops) continue;
    let ret: MmuNotifier | number = s;
    if (s.users !== UINT_MAX) s.users++;
    else ret = -Errno.EOVERFLOW;
    yield* subs.lock.unlock();
    return ret;
  }
  yield* subs.lock.unlock();
  return null;
}

/**
 * Models mmu_notifier_get_locked(): the one subscriber of this mm with these ops (the identity
 * of `ops` decides), allocating and registering it through ops.allocNotifier on first use.
 * The caller holds the mmap lock for write. Returns the subscriber or a negative errno.
 */
export function* mmuNotifierGetLocked<S extends MmuNotifier>(
  ops: MmuNotifierOps<S>,
  mm: MmStruct,
): KGen<S | number> {
  assertMmapWriteLocked(mm, 'mmu_notifier_get_locked');
  if (mm.notifierSubscriptions !== null) {
    const found = yield* findGetMmuNotifier(mm, ops);
    // Same ops object, so it was allocated by ops.allocNotifier: an S.
    if (found !== null) return found as S | number;
  }
  if (ops.allocNotifier === undefined) {
    warn(mm.sys, 'mmu_notifier_get without alloc_notifier');
    return -Errno.EINVAL;
  }
  const sub = ops.allocNotifier(mm);
  if (typeof sub === 'number') return sub;
  sub.ops = ops;
  const ret = yield* __mmuNotifierRegister(sub, mm);
  if (ret !== 0) {
    ops.freeNotifier?.(sub);
    return ret;
  }
  return sub;
}

/** Models mmu_notifier_get(): takes the mmap lock itself. */
export function* mmuNotifierGet<S extends MmuNotifier>(
  ops: MmuNotifierOps<S>,
  mm: MmStruct,
): KGen<S | number> {
  yield* mm.mmapLock.downWrite();
  const ret = yield* mmuNotifierGetLocked(ops, mm);
  yield* mm.mmapLock.upWrite();
  return ret;
}

/**
 * Models mmu_notifier_put(): drops one user; the last one unhooks the subscriber and queues
 * ops.freeNotifier + mmdrop to run after an SRCU grace period, i.e. once no callback of it runs.
 * ->release is not called (only exit calls it for get/put users). Never sleeps.
 */
export function mmuNotifierPut(sub: MmuNotifier): void {
  const mm = sub.mm;
  const sys = mm.sys;
  const subs = mm.notifierSubscriptions!;
  // The spinlock is held across these few instructions in the kernel; nothing here yields, so
  // no other thread can observe the intermediate state.
  if (sub.users === 0) {
    warn(sys, 'mmu_notifier_put with no users');
    return;
  }
  sub.users--;
  if (sub.users !== 0) return;
  subs.hlistDel(sub);
  const pending = pendingOf(sys);
  pending.count++;
  sys.notifierSrcu.callSrcu(`mmu_notifier_free[mm ${mm.id}]`, () => {
    sub.ops.freeNotifier?.(sub);
    mmdrop(mm);
    pending.count--;
    if (pending.count === 0) pending.wq.wakeUpAll();
  });
}

/**
 * Models mmu_notifier_synchronize(): returns once every free queued by mmuNotifierPut() has run,
 * so no callback of a put subscriber can run any more (module unload).
 */
export function* mmuNotifierSynchronize(sys: System): KGen {
  yield* sys.notifierSrcu.synchronize();
  const pending = pendingOf(sys);
  yield* pending.wq.waitEvent(() => pending.count === 0, 'mmu_notifier_synchronize');
}
