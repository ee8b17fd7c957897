/**
 * The data of the mmu notifier machinery (include/linux/mmu_notifier.h and the private
 * struct mmu_notifier_subscriptions of mm/mmu_notifier.c), and the small helpers every part of
 * it shares: reference counts on the mm, WARN reports, the lockdep map that stands for "an
 * invalidation is in progress", and the wrapper that turns a driver callback into scheduling
 * points.
 *
 * Locking summary (what protects what):
 *  - `MmuNotifierSubscriptions.lock` (a spinlock): the hlist membership, `invalidateSeq`,
 *    `activeInvalidateRanges`, the deferred list, and the interval tree whenever it may change.
 *  - the notifier SRCU (`System.notifierSrcu`): whole-mm subscribers stay alive while a callback
 *    walks the hlist; unregister and put wait for it.
 *  - an odd `invalidateSeq` freezes the interval tree, so invalidations walk it without the lock.
 */
import { dropRef, noteRef } from './mm_refs.ts';
import { IntervalTree, type IntervalNode } from '../../lib/interval_tree.ts';
import { lockdepOf, popHeld, SpinLock, WaitQueue } from '../../sched/locks.ts';
import type { Scheduler } from '../../sched/scheduler.ts';
import { lockClassId } from '../../sched/lockdep.ts';
import type { HeldLock } from '../../sched/thread.ts';
import type { KGen, SchedPoint } from '../../sched/types.ts';
import { BUG_ON } from '../errno.ts';
import type { System } from '../system.ts';
import type { MmStruct } from './mm_types.ts';

/** enum mmu_notifier_event: why the PTEs of a range change. */
export const MMU_NOTIFY = {
  UNMAP: 0,
  CLEAR: 1,
  PROTECTION_VMA: 2,
  PROTECTION_PAGE: 3,
  SOFT_DIRTY: 4,
  RELEASE: 5,
  MIGRATE: 6,
  EXCLUSIVE: 7,
} as const;

export type MmuNotifyEvent = (typeof MMU_NOTIFY)[keyof typeof MMU_NOTIFY];

const EVENT_NAMES: readonly string[] = Object.keys(MMU_NOTIFY);

/** The name of an event ('UNMAP', 'CLEAR', ...), as used in trace counters. */
export function mmuNotifyEventName(event: number): string {
  return EVENT_NAMES[event] ?? `EVENT#${event}`;
}

/** The only range flag: callbacks may sleep. */
export const MMU_NOTIFIER_RANGE_BLOCKABLE = 1;

/** unsigned int in the kernel: the users count of a get/put notifier saturates here. */
export const UINT_MAX = 0xffffffff;

/** Models struct mmu_notifier_range. `end` is exclusive. */
export interface MmuNotifierRange {
  mm: MmStruct;
  start: number;
  end: number;
  flags: number;
  event: number;
  /** Only meaningful for MIGRATE and EXCLUSIVE: lets a driver skip its own events. */
  owner: unknown;
}

/** Models mmu_notifier_range_init(). */
export function mmuNotifierRangeInit(
  event: number,
  flags: number,
  mm: MmStruct,
  start: number,
  end: number,
): MmuNotifierRange {
  return { mm, start, end, flags, event, owner: null };
}

/** Models mmu_notifier_range_init_owner(). */
export function mmuNotifierRangeInitOwner(
  event: number,
  flags: number,
  mm: MmStruct,
  start: number,
  end: number,
  owner: unknown,
): MmuNotifierRange {
  const r = mmuNotifierRangeInit(event, flags, mm, start, end);
  r.owner = owner;
  return r;
}

/** Models mmu_notifier_range_blockable(). */
export function mmuNotifierRangeBlockable(r: MmuNotifierRange): boolean {
  return (r.flags & MMU_NOTIFIER_RANGE_BLOCKABLE) !== 0;
}

/**
 * Models struct mmu_notifier_ops: the callbacks of a whole-mm ("hlist") subscriber. Callbacks
 * that may take locks or sleep are generators; alloc/free are plain because free runs from an
 * SRCU callback, where nothing may sleep. `S` is the driver's subclass of MmuNotifier, so
 * callbacks get it typed (the kernel's container_of).
 */
export interface MmuNotifierOps<S extends MmuNotifier = MmuNotifier> {
  release?(sub: S, mm: MmStruct): KGen;
  clearFlushYoung?(sub: S, mm: MmStruct, start: number, end: number): KGen<boolean>;
  clearYoung?(sub: S, mm: MmStruct, start: number, end: number): KGen<boolean>;
  testYoung?(sub: S, mm: MmStruct, address: number): KGen<boolean>;
  /** 0, or -EAGAIN when the range is not blockable and the subscriber would have to sleep. */
  invalidateRangeStart?(sub: S, range: MmuNotifierRange): KGen<number>;
  invalidateRangeEnd?(sub: S, range: MmuNotifierRange): KGen;
  /** Called from TLB-flush points with the page-table lock held: must not sleep. */
  archInvalidateSecondaryTlbs?(sub: S, mm: MmStruct, start: number, end: number): KGen;
  /** For mmuNotifierGet(): a new subscriber, or a negative errno. */
  allocNotifier?(mm: MmStruct): S | number;
  freeNotifier?(sub: S): void;
}

/**
 * Models struct mmu_notifier. Drivers extend it (the kernel embeds it) to keep their own state.
 * The hlist link is intrusive so that SRCU readers standing on an unhooked entry still find the
 * rest of the list, as with hlist_del_init_rcu().
 */
export class MmuNotifier {
  /** Set by registration; the mm this subscriber holds an mmgrab() on. */
  mm!: MmStruct;
  /** Get/put reference count. */
  users = 0;
  /** Next entry in the hlist (kept after unhooking, for readers already on this entry). */
  hnext: MmuNotifier | null = null;
  hprev: MmuNotifier | null = null;
  /** !hlist_unhashed(). */
  hashed = false;

  constructor(public ops: MmuNotifierOps) {}
}

/** What the first pass of a two-pass interval subscriber answers. */
export interface InvalidateStartResult {
  /** false only when the range is not blockable and the subscriber would have to sleep. */
  ok: boolean;
  /** When present (and ok), invalidateFinish(sub, finish) runs after every first pass. */
  finish?: unknown;
}

/** Models struct mmu_interval_notifier_ops. `S` is the driver's subclass, as for MmuNotifierOps. */
export interface MmuIntervalNotifierOps<S extends MmuIntervalNotifier = MmuIntervalNotifier> {
  /** Must call mmuIntervalSetSeq(sub, curSeq) under the driver lock that guards read_retry. */
  invalidate?(sub: S, range: MmuNotifierRange, curSeq: number): KGen<boolean>;
  /** Two-pass form, first pass. */
  invalidateStart?(sub: S, range: MmuNotifierRange, curSeq: number): KGen<InvalidateStartResult>;
  /** Two-pass form, second pass, run after the first pass of every overlapping subscriber. */
  invalidateFinish?(sub: S, finish: unknown): KGen;
}

/** Models struct mmu_interval_notifier: a subscription to [start, last] of one mm. */
export class MmuIntervalNotifier {
  start = 0;
  /** Inclusive. */
  last = 0;
  /** Always odd once inserted; see mmuIntervalReadBegin(). */
  invalidateSeq = 0;
  ops!: MmuIntervalNotifierOps;
  mm!: MmStruct;
  /** The tree node while linked into the interval tree; null is the kernel's RB_EMPTY_NODE. */
  node: IntervalNode<MmuIntervalNotifier> | null = null;
  /** On the deferred list, waiting for the final inv_end of the current exclusion. */
  deferred = false;
}

/**
 * Models struct mmu_notifier_subscriptions, one per mm, created by the first registration and
 * freed when the mm's last mm_count reference goes.
 *
 * Interval side states (seen under `lock`):
 *  - idle: activeInvalidateRanges == 0, invalidateSeq even;
 *  - partially excluded: ranges active, seq even: none of them hit an interval when it started,
 *    so the tree may still change;
 *  - fully excluded: ranges active, seq odd: callbacks may be running, the tree is frozen and
 *    inserts/removes queue on the deferred list until the last inv_end.
 */
export class MmuNotifierSubscriptions {
  /** Head of the hlist of whole-mm subscribers (newest first). */
  hlistHead: MmuNotifier | null = null;
  hasItree = false;
  readonly lock: SpinLock;
  invalidateSeq = 2;
  activeInvalidateRanges = 0;
  readonly itree = new IntervalTree<MmuIntervalNotifier>();
  readonly wq: WaitQueue;
  /** Pending tree updates, newest first like hlist_add_head(). */
  readonly deferredList: MmuIntervalNotifier[] = [];
  /** Set once the mm has been destroyed: any later use is a use-after-free of the model. */
  destroyed = false;
  /**
   * The scheduling points at which an invalidation changes `activeInvalidateRanges` and
   * `invalidateSeq`, each writing this object: made once and frozen (a snapshot keeps them), so
   * the invalidations of a run allocate none.
   */
  readonly points: {
    readonly activeInc: SchedPoint;
    readonly activeDec: SchedPoint;
    readonly seqOdd: SchedPoint;
    readonly seqInc: SchedPoint;
  };

  constructor(
    readonly mm: MmStruct,
    sched: Scheduler,
  ) {
    this.lock = new SpinLock(
      sched,
      `mmu_notifier_subscriptions[${mm.id}]`,
      'mmu_notifier_subscriptions.lock',
    );
    this.wq = new WaitQueue(sched, `mmu_notifier_wq[${mm.id}]`);
    const access = Object.freeze({ obj: this, write: true });
    const point = (label: string): SchedPoint => Object.freeze({ kind: 'step', label, access });
    this.points = Object.freeze({
      activeInc: point('active_invalidate_ranges++'),
      activeDec: point('active_invalidate_ranges--'),
      seqOdd: point('invalidate_seq |= 1'),
      seqInc: point('invalidate_seq++'),
    });
  }

  /** hlist_empty(). */
  get hlistEmpty(): boolean {
    return this.hlistHead === null;
  }

  /** The whole-mm subscribers in list order (a snapshot, for tests and oracles). */
  hlist(): MmuNotifier[] {
    const out: MmuNotifier[] = [];
    for (let s = this.hlistHead; s !== null; s = s.hnext) out.push(s);
    return out;
  }

  /** hlist_add_head_rcu(); caller holds `lock`. */
  hlistAddHead(s: MmuNotifier): void {
    s.hnext = this.hlistHead;
    s.hprev = null;
    if (this.hlistHead !== null) this.hlistHead.hprev = s;
    this.hlistHead = s;
    s.hashed = true;
  }

  /** hlist_del_init_rcu(); caller holds `lock`. `s.hnext` survives for readers already on s. */
  hlistDel(s: MmuNotifier): void {
    if (!s.hashed) return;
    if (s.hprev !== null) s.hprev.hnext = s.hnext;
    else this.hlistHead = s.hnext;
    if (s.hnext !== null) s.hnext.hprev = s.hprev;
    s.hprev = null;
    s.hashed = false;
  }

  /** The subscribers now linked in the interval tree (a snapshot, for tests and oracles). */
  intervals(): MmuIntervalNotifier[] {
    const out: MmuIntervalNotifier[] = [];
    for (let n = this.itree.first(); n !== null; n = this.itree.next(n)) out.push(n.value);
    return out;
  }
}

/** Models mm_has_notifiers(). */
export function mmHasNotifiers(mm: MmStruct): boolean {
  return mm.notifierSubscriptions !== null;
}

/** Models mmgrab(): keeps the mm_struct (not the address space) alive. */
export function mmgrab(mm: MmStruct): void {
  mm.mmCount++;
  noteRef(mm, 'count');
}

/**
 * Models mmdrop(). The last reference runs __mmdrop(), of which the notifier part is modelled
 * here: mmu_notifier_subscriptions_destroy().
 */
export function mmdrop(mm: MmStruct, owner = false): void {
  BUG_ON(mm.mmCount <= 0, `mmdrop(mm ${mm.id}) with mm_count ${mm.mmCount}`);
  mm.mmCount--;
  dropRef(mm, 'count', owner);
  if (mm.mmCount === 0) {
    mmuNotifierSubscriptionsDestroy(mm);
    mm.sys.mmStructs.delete(mm);
  }
}

/** Models mmu_notifier_subscriptions_destroy(): the mm is gone; every hlist subscriber must be. */
export function mmuNotifierSubscriptionsDestroy(mm: MmStruct): void {
  const subs = mm.notifierSubscriptions;
  if (subs === null) return;
  BUG_ON(!subs.hlistEmpty, `mm ${mm.id} destroyed with whole-mm notifiers still registered`);
  subs.destroyed = true;
  mm.notifierSubscriptions = null;
}

/** Models WARN_ON(): records a 'warn' violation and lets the path go on. */
export function warn(sys: System, message: string): void {
  const t = sys.sched.current;
  sys.sched.report({ oracle: 'warn', message, thread: t?.name });
}

/** The lockdep class standing for __mmu_notifier_invalidate_range_start_map. */
export const INVALIDATE_MAP = 'mmu_notifier_invalidate_range_start';

/**
 * Models lock_map_acquire() of a lockdep map: no real lock, only the ordering edges, so lockdep
 * sees "an invalidation may be running" as a lock that invalidation callbacks nest inside.
 */
export function lockMapAcquire(sched: Scheduler, cls: string): void {
  const t = sched.current;
  if (t === null) return;
  lockdepOf(sched).acquire(t, cls, cls);
  t.held.push(lockMapEntry(cls));
}

/** The held-list entry of each lockdep map (frozen and shared: it never changes). */
const lockMapEntries = new Map<string, HeldLock>();

/** The entry found last (nearly every map taken is the invalidation map). */
let lastLockMapEntry: HeldLock | null = null;

function lockMapEntry(cls: string): HeldLock {
  if (lastLockMapEntry !== null && lastLockMapEntry.name === cls) return lastLockMapEntry;
  let e = lockMapEntries.get(cls);
  if (e === undefined) {
    e = Object.freeze({ lockClass: cls, name: cls, classId: lockClassId(cls) });
    lockMapEntries.set(cls, e);
  }
  lastLockMapEntry = e;
  return e;
}

/** Models lock_map_release(). */
export function lockMapRelease(sched: Scheduler, cls: string): void {
  const t = sched.current;
  if (t === null) return;
  popHeld(t, cls);
}

/** Models might_lock(): the ordering check of taking `cls` now, without taking it. */
export function mightLock(sched: Scheduler, cls: string): void {
  lockMapAcquire(sched, cls);
  lockMapRelease(sched, cls);
}

/**
 * Records a callback delivered to a subscriber of `mm` (which one, for which range), as an
 * instant on the mm's own notifier track, so a trace shows every subscriber's calls in one row.
 */
export function traceNotifierCall(mm: MmStruct, name: string, args: Record<string, unknown>): void {
  const trace = mm.sys.trace;
  if (trace.enabled) trace.emit('notifier', name, 'i', { mm: mm.id, ...args }, `notifier:${mm.ownerName}`);
}

/** The trace args of a range: its event, bounds and whether it may sleep. */
export function rangeTraceArgs(r: MmuNotifierRange): Record<string, unknown> {
  return {
    event: mmuNotifyEventName(r.event),
    start: r.start,
    end: r.end,
    blockable: (r.flags & MMU_NOTIFIER_RANGE_BLOCKABLE) !== 0,
  };
}

/**
 * Runs one driver callback between two scheduling points (its entry and its exit). Inside a
 * non-blockable range the thread's nonBlockDepth is raised around it (non_block_start/end), so
 * a callback that sleeps is reported by mightSleep().
 *
 * `sub`, when given, is the footprint of both points: the subscription whose callback runs (the
 * entry step runs the callback up to its first scheduling point, the exit step the caller's walk
 * to the next subscriber, which the caller's protocol keeps stable). They are writes, because a
 * callback updates its subscription without a scheduling point of its own (mmu_interval_set_seq()
 * under the driver's lock), which a read of the subscription elsewhere must be ordered against.
 * Without `sub` the points declare nothing and conflict with every step. With `enterOnly`, only
 * the entry declares `sub`: a whole-mm subscriber's walk to the next one reads a list that
 * mmu_notifier_put() may unhook from inside any step, so the exit stays undeclared.
 */
export function* runCallback<T>(
  sys: System,
  label: string,
  nonBlock: boolean,
  body: KGen<T>,
  sub?: object,
  enterOnly = false,
): KGen<T> {
  const access = sub === undefined ? undefined : { obj: sub, write: true };
  yield { kind: 'step', label: `${label}: enter`, access };
  const t = sys.sched.cur();
  if (nonBlock) t.nonBlockDepth++;
  let v: T;
  try {
    v = yield* body;
  } finally {
    if (nonBlock) t.nonBlockDepth--;
  }
  yield { kind: 'step', label: `${label}: exit`, access: enterOnly ? undefined : access };
  return v;
}
