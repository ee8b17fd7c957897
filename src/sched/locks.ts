import { LockDep, lockClassId } from './lockdep.ts';
import type { Scheduler } from './scheduler.ts';
import { KILLABLE_WAIT, type HeldLock, type Thread } from './thread.ts';
import type { Access, KGen, SchedPoint, WaitChannel } from './types.ts';

/**
 * The footprint of a lock's steps and the points it yields at every acquisition and release are
 * made once per lock and never change: frozen, so a snapshot keeps them as they are instead of
 * restoring them for every schedule.
 */
function fixedAccess(obj: object, write: boolean): Access {
  return Object.freeze({ obj, write });
}

function fixedPoint(label: string, obj: object, write: boolean): SchedPoint {
  return Object.freeze({ kind: 'step', label, access: fixedAccess(obj, write) });
}

/**
 * The lock-order checker of `sched`. Called on every lock acquisition: it captures nothing, so a
 * call allocates nothing (a closure over `sched` here would make each call allocate its context).
 */
export function lockdepOf(sched: Scheduler): LockDep {
  // A field of the scheduler: a snapshot of the world captures it with the scheduler, and one
  // made after the capture is gone again on restore.
  return sched.lockdep ?? newLockdep(sched);
}

function newLockdep(sched: Scheduler): LockDep {
  const ld = new LockDep((v) => {
    sched.report(v);
  });
  sched.lockdep = ld;
  return ld;
}

/** Models might_sleep(): reports sleeping inside a non-blockable invalidation or with a spinlock held. */
export function mightSleep(sched: Scheduler, what: string): void {
  const t = sched.current;
  if (t === null) return;
  if (t.nonBlockDepth > 0) {
    sched.report({
      oracle: 'locks',
      message: `${t.name}: ${what} may sleep inside a non-blockable invalidation`,
      thread: t.name,
    });
  } else if (t.atomicDepth > 0) {
    sched.report({
      oracle: 'locks',
      message: `${t.name}: ${what} may sleep while a spinlock is held`,
      thread: t.name,
    });
  }
}

/** Puts a lock on `t`'s held list: later acquisitions by `t` order after it. */
export function pushHeld(t: Thread, lockClass: string, name: string): void {
  t.held.push({ lockClass, name });
}

/** Takes a lock off `t`'s held list (in place: the list keeps its order and allocates nothing). */
export function popHeld(t: Thread, name: string): void {
  const held = t.held;
  const last = held.length - 1;
  // Locks are most often released in the reverse order of taking: then the lock is the last
  // entry, and taking it off is all there is to do. Small, so that it is inlined at an unlock.
  if (last >= 0 && held[last].name === name) {
    held.pop();
    return;
  }
  popHeldBelow(held, name, last - 1);
}

/** popHeld() of a lock that is not the last entry: the latest of `name` at or below `from`. */
function popHeldBelow(held: HeldLock[], name: string, from: number): void {
  for (let i = from; i >= 0; i--) {
    if (held[i].name === name) {
      removeHeldAt(held, i);
      return;
    }
  }
}

function removeHeldAt(held: HeldLock[], i: number): void {
  for (let j = i + 1; j < held.length; j++) held[j - 1] = held[j];
  held.pop();
}

/**
 * Where `t` is in a set of readers kept as an array, or -1. A loop: the set holds a thread or two,
 * and includes() or indexOf() would be a call into the runtime on every lock and unlock.
 */
function readerIndex(readers: Thread[], t: Thread): number {
  for (let i = 0; i < readers.length; i++) if (readers[i] === t) return i;
  return -1;
}

/**
 * Puts `t` in a set of readers kept as an array (once). Here and where a lock is recorded in
 * `t.held`, an indexed store appends rather than push(): on a fault path the JIT often leaves
 * push() a call into the builtin, several of them per fault.
 */
function addReader(readers: Thread[], t: Thread): void {
  if (readerIndex(readers, t) < 0) readers[readers.length] = t;
}

/** Takes the reader at `i` (readerIndex()) out of a set of readers kept as an array. */
function removeReaderAt(readers: Thread[], i: number): void {
  readers[i] = readers[readers.length - 1];
  readers.pop();
}

/**
 * Counts one more instance of the nestable class `lockClass` as held by `t`, on the class's entry
 * (HeldLock.instances); the first one puts the class on the held list.
 */
export function pushHeldInstance(t: Thread, lockClass: string): void {
  const held = t.held;
  for (let i = held.length - 1; i >= 0; i--) {
    const h = held[i];
    if (h.name === lockClass && h.instances !== undefined) {
      h.instances++;
      return;
    }
  }
  held.push({ lockClass, name: lockClass, classId: lockClassId(lockClass), instances: 1 });
}

/** Counts one instance of `lockClass` off `t`; the last one takes the class off the held list. */
export function popHeldInstance(t: Thread, lockClass: string): void {
  const held = t.held;
  for (let i = held.length - 1; i >= 0; i--) {
    const h = held[i];
    if (h.name === lockClass && h.instances !== undefined) {
      if (--h.instances === 0) removeHeldAt(held, i);
      return;
    }
  }
}

/** A plain wait channel with a name (frozen: nothing about it changes, a snapshot keeps it). */
export class Channel implements WaitChannel {
  constructor(readonly name: string) {
    if (new.target === Channel) Object.freeze(this);
  }
}

/** Models struct mutex: sleeping, one owner, no recursion. */
export class Mutex {
  owner: Thread | null = null;
  readonly ch: Channel;
  /** What a holder's held list carries for this lock. */
  readonly heldEntry: HeldLock;
  readonly lockPoint: SchedPoint;
  readonly unlockPoint: SchedPoint;
  /** The footprint of taking the lock, and of the step after a wake-up on it. */
  readonly lockAccess: Access;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    readonly lockClass: string = name,
  ) {
    this.ch = new Channel(`mutex ${name}`);
    this.heldEntry = Object.freeze({ lockClass, name, classId: lockClassId(lockClass) });
    this.lockAccess = fixedAccess(this, true);
    this.lockPoint = fixedPoint(`mutex_lock(${name})`, this, true);
    this.unlockPoint = fixedPoint(`mutex_unlock(${name})`, this, true);
  }

  /** Models mutex_lock(). */
  *lock(): KGen {
    const s = this.sched;
    if (s.current !== null && (s.current.nonBlockDepth > 0 || s.current.atomicDepth > 0)) {
      mightSleep(s, `mutex_lock(${this.name})`);
    }
    yield this.lockPoint;
    let t = s.cur();
    // With nothing held, taking a lock orders it after nothing: acquire() would return at once,
    // and not calling it saves a call on every first lock of a path (lockdepOf() still makes the
    // checker at the first acquisition). The same at every acquisition of a lock's own class below,
    // written out at each: a shared helper for it and the release below was not inlined into the
    // plain fault path, and cost a first write about 370 instructions more (cachegrind).
    const ld = lockdepOf(s);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    while (this.owner !== null) {
      yield { kind: 'wait', label: `mutex_lock(${this.name})`, channel: this.ch, resume: this.lockAccess };
      t = s.cur();
    }
    this.owner = t;
    t.held[t.held.length] = this.heldEntry;
  }

  /** Models mutex_trylock(): takes the lock if free, never sleeps. */
  *trylock(): KGen<boolean> {
    yield this.lockPoint;
    const t = this.sched.cur();
    if (this.owner !== null) return false;
    const ld = lockdepOf(this.sched);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    this.owner = t;
    t.held[t.held.length] = this.heldEntry;
    return true;
  }

  /** Models mutex_unlock(). */
  *unlock(): KGen {
    yield this.unlockPoint;
    const t = this.sched.cur();
    if (this.owner !== t) throw new Error(`mutex_unlock(${this.name}) by ${t.name}, not the owner`);
    this.owner = null;
    // The lock taken last is most often released first: its own entry is then the last one held,
    // which popHeld() would take off too, and this takes off without a call. The same at every
    // release below.
    const held = t.held;
    if (held.length !== 0 && held[held.length - 1] === this.heldEntry) held.pop();
    else popHeld(t, this.name);
    this.sched.wakeOne(this.ch);
  }

  isLocked(): boolean {
    return this.owner !== null;
  }

  heldByCurrent(): boolean {
    return this.owner !== null && this.owner === this.sched.current;
  }
}

/** Models spinlock_t: busy-waits rather than sleeps; sleeping while holding one is reported. */
export class SpinLock {
  owner: Thread | null = null;
  readonly ch: Channel;
  /** What a holder's held list carries for this lock. */
  readonly heldEntry: HeldLock;
  readonly lockPoint: SchedPoint;
  readonly unlockPoint: SchedPoint;
  /** The footprint of taking the lock, and of the step after a wake-up on it. */
  readonly lockAccess: Access;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    readonly lockClass: string = name,
  ) {
    this.ch = new Channel(`spin ${name}`);
    this.heldEntry = Object.freeze({ lockClass, name, classId: lockClassId(lockClass) });
    this.lockAccess = fixedAccess(this, true);
    this.lockPoint = fixedPoint(`spin_lock(${name})`, this, true);
    this.unlockPoint = fixedPoint(`spin_unlock(${name})`, this, true);
  }

  *lock(): KGen {
    yield this.lockPoint;
    let t = this.sched.cur();
    const ld = lockdepOf(this.sched);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    while (this.owner !== null) {
      yield {
        kind: 'wait',
        label: `spin_lock(${this.name})`,
        channel: this.ch,
        spin: true,
        resume: this.lockAccess,
      };
      t = this.sched.cur();
    }
    this.owner = t;
    t.atomicDepth++;
    t.held[t.held.length] = this.heldEntry;
  }

  *unlock(): KGen {
    yield this.unlockPoint;
    const t = this.sched.cur();
    if (this.owner !== t) throw new Error(`spin_unlock(${this.name}) by ${t.name}, not the owner`);
    this.owner = null;
    t.atomicDepth--;
    const held = t.held;
    if (held.length !== 0 && held[held.length - 1] === this.heldEntry) held.pop();
    else popHeld(t, this.name);
    this.sched.wakeOne(this.ch);
  }

  /** Models spin_trylock(): takes the lock if free, never spins. */
  *trylock(): KGen<boolean> {
    yield this.lockPoint;
    const t = this.sched.cur();
    if (this.owner !== null) return false;
    const ld = lockdepOf(this.sched);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    this.owner = t;
    t.atomicDepth++;
    t.held[t.held.length] = this.heldEntry;
    return true;
  }

  isLocked(): boolean {
    return this.owner !== null;
  }

  heldByCurrent(): boolean {
    return this.owner !== null && this.owner === this.sched.current;
  }
}

/** Models struct rw_semaphore: many readers or one writer; new readers queue behind a waiting writer. */
export class RwSem {
  readers = 0;
  writer: Thread | null = null;
  writersWaiting = 0;
  /** The reading threads, each once (a set; an array so taking and dropping allocate nothing). */
  readonly readers_: Thread[] = [];
  readonly ch: Channel;
  /** What a holder's held list carries for this lock. */
  readonly heldEntry: HeldLock;

  readonly readPoint: SchedPoint;
  readonly writePoint: SchedPoint;
  readonly upReadPoint: SchedPoint;
  readonly upWritePoint: SchedPoint;
  /** Footprints of down_read() and down_write(), also of the step after a wake-up in them. */
  readonly readAccess: Access;
  readonly writeAccess: Access;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    readonly lockClass: string = name,
  ) {
    this.ch = new Channel(`rwsem ${name}`);
    this.heldEntry = Object.freeze({ lockClass, name, classId: lockClassId(lockClass) });
    this.readAccess = fixedAccess(this, false);
    this.writeAccess = fixedAccess(this, true);
    // Points are built once: the mmap lock is taken on every fault.
    this.readPoint = fixedPoint(`down_read(${name})`, this, false);
    this.writePoint = fixedPoint(`down_write(${name})`, this, true);
    this.upReadPoint = fixedPoint(`up_read(${name})`, this, true);
    this.upWritePoint = fixedPoint(`up_write(${name})`, this, true);
  }

  *downRead(): KGen {
    const s = this.sched;
    if (s.current !== null && (s.current.nonBlockDepth > 0 || s.current.atomicDepth > 0)) {
      mightSleep(s, `down_read(${this.name})`);
    }
    yield this.readPoint;
    let t = s.cur();
    const ld = lockdepOf(s);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    while (this.writer !== null || this.writersWaiting > 0) {
      yield { kind: 'wait', label: `down_read(${this.name})`, channel: this.ch, resume: this.readAccess };
      t = s.cur();
    }
    this.readers++;
    addReader(this.readers_, t);
    t.held[t.held.length] = this.heldEntry;
  }

  /**
   * Models down_read_killable(): as downRead(), but a wait ends without the lock once `killed()`
   * holds (a fatal signal is pending). Returns whether the lock was taken. An uncontended lock is
   * taken whatever `killed()` says, as the kernel's fast path does.
   */
  *downReadKillable(killed: () => boolean): KGen<boolean> {
    const s = this.sched;
    if (s.current !== null && (s.current.nonBlockDepth > 0 || s.current.atomicDepth > 0)) {
      mightSleep(s, `down_read_killable(${this.name})`);
    }
    yield this.readPoint;
    let t = s.cur();
    const ld = lockdepOf(s);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    while (this.writer !== null || this.writersWaiting > 0) {
      if (killed()) return false;
      t.local.set(KILLABLE_WAIT, true);
      yield {
        kind: 'wait',
        label: `down_read_killable(${this.name})`,
        channel: this.ch,
        resume: this.readAccess,
      };
      t = s.cur();
      t.local.delete(KILLABLE_WAIT);
    }
    this.readers++;
    addReader(this.readers_, t);
    t.held[t.held.length] = this.heldEntry;
    return true;
  }

  *downReadTrylock(): KGen<boolean> {
    yield { kind: 'step', label: `down_read_trylock(${this.name})`, access: { obj: this, write: false } };
    const t = this.sched.cur();
    if (this.writer !== null || this.writersWaiting > 0) return false;
    const ld = lockdepOf(this.sched);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    this.readers++;
    addReader(this.readers_, t);
    t.held[t.held.length] = this.heldEntry;
    return true;
  }

  *upRead(): KGen {
    yield this.upReadPoint;
    const t = this.sched.cur();
    const i = readerIndex(this.readers_, t);
    if (i < 0) throw new Error(`up_read(${this.name}) by ${t.name}, not a reader`);
    this.readers--;
    removeReaderAt(this.readers_, i);
    const held = t.held;
    if (held.length !== 0 && held[held.length - 1] === this.heldEntry) held.pop();
    else popHeld(t, this.name);
    if (this.readers === 0) this.sched.wakeAll(this.ch);
  }

  /** Models down_write(); a non-zero `subclass` is down_write_nested() (a second lock of the same class). */
  *downWrite(subclass = 0): KGen {
    const s = this.sched;
    if (s.current !== null && (s.current.nonBlockDepth > 0 || s.current.atomicDepth > 0)) {
      mightSleep(s, `down_write(${this.name})`);
    }
    yield this.writePoint;
    let t = s.cur();
    const cls = subclass === 0 ? this.lockClass : `${this.lockClass}/${subclass}`;
    lockdepOf(s).acquire(t, cls, this.name);
    if (this.writer !== null || this.readers > 0) {
      this.writersWaiting++;
      while (this.writer !== null || this.readers > 0) {
        yield { kind: 'wait', label: `down_write(${this.name})`, channel: this.ch, resume: this.writeAccess };
        t = s.cur();
      }
      this.writersWaiting--;
    }
    this.writer = t;
    if (cls === this.lockClass) t.held[t.held.length] = this.heldEntry;
    else pushHeld(t, cls, this.name);
  }

  /**
   * Models down_write_killable(): as downWrite(), but a wait ends without the lock once `killed()`
   * holds. Returns whether the lock was taken. A writer that gives up stops holding readers back,
   * so they are woken (rwsem_down_write_slowpath() does the same when a signal ends its wait).
   */
  *downWriteKillable(killed: () => boolean): KGen<boolean> {
    const s = this.sched;
    if (s.current !== null && (s.current.nonBlockDepth > 0 || s.current.atomicDepth > 0)) {
      mightSleep(s, `down_write_killable(${this.name})`);
    }
    yield this.writePoint;
    let t = s.cur();
    const ld = lockdepOf(s);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    if (this.writer !== null || this.readers > 0) {
      this.writersWaiting++;
      while (this.writer !== null || this.readers > 0) {
        if (killed()) {
          this.writersWaiting--;
          s.wakeAll(this.ch);
          return false;
        }
        t.local.set(KILLABLE_WAIT, true);
        yield {
          kind: 'wait',
          label: `down_write_killable(${this.name})`,
          channel: this.ch,
          resume: this.writeAccess,
        };
        t = s.cur();
        t.local.delete(KILLABLE_WAIT);
      }
      this.writersWaiting--;
    }
    this.writer = t;
    t.held[t.held.length] = this.heldEntry;
    return true;
  }

  *downWriteTrylock(): KGen<boolean> {
    yield { kind: 'step', label: `down_write_trylock(${this.name})`, access: { obj: this, write: true } };
    const t = this.sched.cur();
    if (this.writer !== null || this.readers > 0) return false;
    const ld = lockdepOf(this.sched);
    if (t.held.length !== 0) ld.acquire(t, this.lockClass, this.name, false, this.heldEntry.classId);
    this.writer = t;
    t.held[t.held.length] = this.heldEntry;
    return true;
  }

  *upWrite(): KGen {
    yield this.upWritePoint;
    const t = this.sched.cur();
    if (this.writer !== t) throw new Error(`up_write(${this.name}) by ${t.name}, not the writer`);
    this.writer = null;
    const held = t.held;
    if (held.length !== 0 && held[held.length - 1] === this.heldEntry) held.pop();
    else popHeld(t, this.name);
    this.sched.wakeAll(this.ch);
  }

  /** Models downgrade_write(). */
  *downgradeWrite(): KGen {
    yield { kind: 'step', label: `downgrade_write(${this.name})`, access: { obj: this, write: true } };
    const t = this.sched.cur();
    if (this.writer !== t) throw new Error(`downgrade_write(${this.name}) by ${t.name}, not the writer`);
    this.writer = null;
    this.readers++;
    addReader(this.readers_, t);
    this.sched.wakeAll(this.ch);
  }

  isWriteLocked(): boolean {
    return this.writer !== null;
  }

  isLocked(): boolean {
    return this.writer !== null || this.readers > 0;
  }

  heldByCurrent(): boolean {
    const t = this.sched.current;
    return t !== null && (this.writer === t || this.readers_.includes(t));
  }
}

/** Models wait_queue_head_t with wait_event() / wait_event_timeout() / wake_up_all(). */
export class WaitQueue implements WaitChannel {
  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    /** Sleeping here is idle waiting for work, not a hang (WaitChannel.idle). */
    readonly idle = false,
  ) {}

  /**
   * Sleeps until `cond()` holds. `resume`, when given, is the footprint of the step after a
   * wake-up (WaitPoint.resume): `cond()` must read only that object, and the caller's code from
   * here to its next point must touch nothing shared that another thread's step declaring
   * something else writes (docs/fidelity.md). Without it the step may touch anything.
   */
  *waitEvent(
    cond: () => boolean,
    label = `wait_event(${this.name})`,
    resume?: Access,
    /** WaitPoint.signal: the footprint of the wake when the step that wakes it declares this. */
    signal?: Access,
  ): KGen {
    mightSleep(this.sched, label);
    while (!cond()) yield { kind: 'wait', label, channel: this, resume, signal };
  }

  /**
   * Models wait_event_killable(): as waitEvent(), but a fatal signal (`killed()`, checked after
   * `cond()` and after each wake-up) ends the wait. Returns whether `cond()` came true.
   */
  *waitEventKillable(
    cond: () => boolean,
    killed: () => boolean,
    label = `wait_event_killable(${this.name})`,
  ): KGen<boolean> {
    mightSleep(this.sched, label);
    while (!cond()) {
      if (killed()) return false;
      this.sched.cur().local.set(KILLABLE_WAIT, true);
      yield { kind: 'wait', label, channel: this };
      this.sched.cur().local.delete(KILLABLE_WAIT);
    }
    return true;
  }

  /**
   * Models wait_event_timeout(): returns the virtual ns left (at least 1) if `cond` came true,
   * 0 if the timeout passed first.
   */
  *waitEventTimeout(
    cond: () => boolean,
    timeoutNs: number,
    label = `wait_event_timeout(${this.name})`,
    signal?: Access,
  ): KGen<number> {
    mightSleep(this.sched, label);
    const deadline = this.sched.clock.now + timeoutNs;
    while (!cond()) {
      if (this.sched.clock.now >= deadline) return cond() ? 1 : 0;
      const why = yield { kind: 'wait', label, channel: this, deadline, signal };
      if (why === 'timeout' && !cond()) return 0;
    }
    return Math.max(1, deadline - this.sched.clock.now);
  }

  wakeUpAll(): void {
    this.sched.wakeAll(this);
  }

  wakeUp(): void {
    this.sched.wakeOne(this);
  }
}

/**
 * Models struct completion. Footprints (docs/explorer.md): wait_for_completion() takes a point of
 * its own that writes the completion (it tests and takes `done` there); complete() runs inside its
 * caller's step, and the waiter's wake declares the completion only when that step declares it
 * (`yield* schedPoint('complete', c)` before `c.complete()`, as the kernel's complete() takes the
 * completion's wait-queue lock), so the wake is ordered after it by the footprints alone.
 */
export class Completion {
  done = 0;
  readonly wq: WaitQueue;
  /** The footprint of the waiter's steps: `done` is read and taken there. */
  readonly access: Access;
  readonly waitPoint: SchedPoint;

  constructor(sched: Scheduler, name: string) {
    this.wq = new WaitQueue(sched, `completion ${name}`);
    this.access = fixedAccess(this, true);
    this.waitPoint = Object.freeze({ kind: 'step', label: 'wait_for_completion', access: this.access });
  }

  complete(): void {
    this.done++;
    this.wq.wakeUp();
  }

  completeAll(): void {
    this.done = Number.MAX_SAFE_INTEGER;
    this.wq.wakeUpAll();
  }

  *wait(): KGen {
    yield this.waitPoint;
    yield* this.wq.waitEvent(() => this.done > 0, 'wait_for_completion', undefined, this.access);
    if (this.done !== Number.MAX_SAFE_INTEGER) this.done--;
  }

  /** Models wait_for_completion_killable(): false if a fatal signal (`killed()`) ended the wait. */
  *waitKillable(killed: () => boolean): KGen<boolean> {
    const done = yield* this.wq.waitEventKillable(
      () => this.done > 0,
      killed,
      'wait_for_completion_killable',
    );
    if (done && this.done !== Number.MAX_SAFE_INTEGER) this.done--;
    return done;
  }

  /** Returns false on timeout. */
  *waitTimeout(ns: number): KGen<boolean> {
    yield this.waitPoint;
    const left = yield* this.wq.waitEventTimeout(
      () => this.done > 0,
      ns,
      'wait_for_completion_timeout',
      this.access,
    );
    if (left === 0) return false;
    if (this.done !== Number.MAX_SAFE_INTEGER) this.done--;
    return true;
  }
}

/** Sleeps for `ns` of virtual time (msleep / usleep_range). */
export function* sleepNs(sched: Scheduler, ns: number): KGen {
  mightSleep(sched, 'sleep');
  const deadline = sched.clock.now + ns;
  const ch = new Channel('sleep');
  while (sched.clock.now < deadline) yield { kind: 'wait', label: 'sleep', channel: ch, deadline };
}

/** A scheduling point with no lock: a place another thread may run (cond_resched, a device access). */
export function* schedPoint(label: string, obj?: object, write = true): KGen {
  yield obj === undefined ? { kind: 'step', label } : { kind: 'step', label, access: { obj, write } };
}

/**
 * Models SRCU as an actor: readers hold a count per epoch; synchronize() waits until every reader
 * that began before it has left; callSrcu() runs the callback on its own thread after a grace period.
 */
export class Srcu {
  epoch = 0;
  readonly active = new Map<number, number>();
  readonly wq: WaitQueue;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
  ) {
    this.wq = new WaitQueue(sched, `srcu ${name}`);
  }

  /** Models srcu_read_lock(): returns the index to pass to readUnlock. */
  *readLock(): KGen<number> {
    yield { kind: 'step', label: `srcu_read_lock(${this.name})`, access: { obj: this, write: false } };
    const e = this.epoch;
    this.active.set(e, (this.active.get(e) ?? 0) + 1);
    return e;
  }

  *readUnlock(idx: number): KGen {
    yield { kind: 'step', label: `srcu_read_unlock(${this.name})`, access: { obj: this, write: true } };
    const n = (this.active.get(idx) ?? 0) - 1;
    if (n <= 0) this.active.delete(idx);
    else this.active.set(idx, n);
    this.wq.wakeUpAll();
  }

  /** Models synchronize_srcu(). */
  *synchronize(): KGen {
    mightSleep(this.sched, `synchronize_srcu(${this.name})`);
    yield { kind: 'step', label: `synchronize_srcu(${this.name})`, access: { obj: this, write: true } };
    const upTo = this.epoch;
    this.epoch++;
    yield* this.wq.waitEvent(() => {
      for (const e of this.active.keys()) if (e <= upTo) return false;
      return true;
    }, `synchronize_srcu(${this.name})`);
  }

  /** Models call_srcu(): `cb` runs on its own thread once the readers present now have left. */
  callSrcu(label: string, cb: () => void): void {
    const gracePeriod = this.synchronize();
    this.sched.spawn(
      `srcu_cb:${label}`,
      (function* () {
        yield* gracePeriod;
        cb();
      })(),
    );
  }

  readersActive(): number {
    let n = 0;
    for (const v of this.active.values()) n += v;
    return n;
  }
}
