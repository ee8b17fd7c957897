import { VirtualClock } from './clock.ts';
import type { DriverCodeBound } from './driver_code.ts';
import type { LockDep } from './lockdep.ts';
import { KILLABLE_WAIT, Thread } from './thread.ts';
import { setPlainScheduler } from './plain.ts';
import type { Access, KGen, SchedPoint, Violation, WaitChannel, WaitPoint, WakeReason } from './types.ts';

/** The generator a plain path's thread carries: it never runs, runPlain() runs the body instead. */
const PLAIN_BODY: KGen<unknown> = (function* (): KGen<unknown> {
  return undefined;
})();

/** Picks which runnable thread takes the next step. Strategies of the explorer implement this. */
export interface Chooser {
  choose(runnable: readonly Thread[], sched: Scheduler): Thread;
}

/** Keeps running the thread that ran last while it can; otherwise the oldest runnable thread. */
export const runToCompletion: Chooser = Object.freeze({
  choose(runnable: readonly Thread[], sched: Scheduler) {
    const last = sched.last;
    if (last !== null && last.state === 'runnable') return last;
    return runnable[0];
  },
});

export class DeadlockError extends Error {
  constructor(readonly blocked: readonly string[]) {
    super(`deadlock: every thread waits (${blocked.join(', ')})`);
    this.name = 'DeadlockError';
  }
}

/**
 * One scheduler per System. Threads are generators; a step runs one thread from the point it
 * yielded to the next. Nothing here knows about memory: locks and wait queues are built on it.
 */
export class Scheduler {
  readonly clock = new VirtualClock();
  readonly threads: Thread[] = [];
  current: Thread | null = null;
  last: Thread | null = null;
  chooser: Chooser = runToCompletion;
  readonly violations: Violation[] = [];
  /** Called after every step with the thread that stepped (oracles, tracing, step limits). */
  readonly afterStep: ((t: Thread) => void)[] = [];
  /** Called when a thread is about to step, with its pending point (tracing, footprints). */
  readonly beforeStep: ((t: Thread, p: SchedPoint) => void)[] = [];
  totalSteps = 0;
  /** Bounds driver code when an embedder installs one (driver_code.ts); null: calls run as they are. */
  driverCode: DriverCodeBound | null = null;
  /** The lock-order checker, once lockdepOf() (locks.ts) made it: null before. */
  lockdep: LockDep | null = null;
  /**
   * A search schedule runs brief: only its verdict counts, so what is kept to explain a violation
   * (where an object was freed or a reference taken, as a captured stack) is not captured. A
   * schedule that fails is run again in full for its report (run.ts RunConfig.brief).
   */
  brief = false;
  private nextId = 0;
  private readonly waiters = new Map<WaitChannel, Thread[]>();
  /** Runnable threads, kept in id order. */
  private runnableCache: Thread[] | null = null;

  /** Starts a thread. `first` may declare what its first step (up to its first yield) touches. */
  spawn<T>(name: string, gen: KGen<T>, first?: SchedPoint): Thread {
    const t = new Thread(this.nextId++, name, gen);
    if (first !== undefined) t.pending = first;
    // Up to its first point, a thread spawned outside any step runs its own code only: shared
    // state it reads there is what setup left, and what it writes another thread cannot see
    // before a point (docs/fidelity.md). A thread spawned by a step keeps the undeclared start,
    // which orders it after the step that spawned it.
    else if (this.current === null)
      t.pending = { kind: 'step', label: 'start', access: { obj: t, write: true } };
    this.threads.push(t);
    this.runnableCache = null;
    return t;
  }

  runnable(): readonly Thread[] {
    if (this.runnableCache === null) {
      this.runnableCache = this.threads.filter((t) => t.state === 'runnable');
    }
    return this.runnableCache;
  }

  /** Whether any thread has not finished. */
  get live(): boolean {
    return this.threads.some((t) => t.state !== 'done');
  }

  /** Runs one step of `t`. */
  step(t: Thread): void {
    if (t.state !== 'runnable') throw new Error(`thread ${t.name} is not runnable`);
    this.beforeStepHooks(t);
    const reason = t.wakeReason;
    t.wakeReason = undefined;
    this.current = t;
    let r: IteratorResult<SchedPoint, unknown>;
    try {
      r = t.gen.next(reason);
    } catch (e) {
      this.current = null;
      this.finish(t);
      t.error = e;
      this.afterStepHooks(t);
      return;
    }
    this.current = null;
    this.last = t;
    t.steps++;
    this.totalSteps++;
    if (r.done === true) {
      t.result = r.value;
      this.finish(t);
    } else {
      t.pending = r.value;
      if (r.value.kind === 'wait') this.block(t, r.value);
    }
    this.afterStepHooks(t);
  }

  /** Whether no hook observes steps. */
  private hooksEmpty(): boolean {
    return this.afterStep.length === 0 && this.beforeStep.length === 0;
  }

  // Hooks by index: until V8 optimises the caller, a for-of loop makes an iterator and calls it,
  // which costs more than running no hook at all (every step runs these).
  private beforeStepHooks(t: Thread): void {
    const before = this.beforeStep;
    for (let i = 0; i < before.length; i++) {
      const hook = before[i];
      hook(t, t.pending);
    }
  }

  private afterStepHooks(t: Thread): void {
    const after = this.afterStep;
    for (let i = 0; i < after.length; i++) {
      const hook = after[i];
      hook(t);
    }
  }

  private finish(t: Thread): void {
    t.state = 'done';
    this.runnableCache = null;
  }

  private block(t: Thread, p: WaitPoint): void {
    t.state = 'blocked';
    t.waitingOn = p.channel;
    t.deadline = p.deadline ?? Infinity;
    let list = this.waiters.get(p.channel);
    if (list === undefined) {
      list = [];
      this.waiters.set(p.channel, list);
    }
    list.push(t);
    this.runnableCache = null;
  }

  private unblock(t: Thread, reason: 'woken' | 'timeout'): void {
    const ch = t.waitingOn;
    if (ch !== null) {
      const list = this.waiters.get(ch);
      if (list !== undefined) {
        const i = list.indexOf(t);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.waiters.delete(ch);
      }
    }
    t.state = 'runnable';
    t.waitingOn = null;
    t.deadline = Infinity;
    t.wakeReason = reason;
    const resume = reason === 'woken' && t.pending.kind === 'wait' ? this.resumeOf(t.pending) : undefined;
    t.pending =
      resume === undefined
        ? { kind: 'step', label: reason === 'woken' ? 'wake' : 'timeout' }
        : { kind: 'step', label: 'wake', access: resume };
    this.runnableCache = null;
  }

  /** What the wake-up from `p` declares: its `resume`, or its `signal` when the waking step declares that. */
  private resumeOf(p: WaitPoint): Access | undefined {
    if (p.resume !== undefined || p.signal === undefined) return p.resume;
    const by = this.current?.pending;
    return by?.kind === 'step' && by.access?.obj === p.signal.obj && by.access.write ? p.signal : undefined;
  }

  /** Makes every thread waiting on `ch` runnable. */
  wakeAll(ch: WaitChannel): void {
    // Nobody waits on anything (unblock() drops emptied lists): no lookup. Every unlock wakes.
    if (this.waiters.size === 0) return;
    const list = this.waiters.get(ch);
    if (list === undefined) return;
    for (const t of [...list]) this.unblock(t, 'woken');
  }

  /**
   * Models signal_wake_up() of a fatal signal: `t`, if it sleeps in a killable wait, is made
   * runnable to see the signal and give up its wait. Other sleeps are left alone.
   */
  wakeKillable(t: Thread): void {
    if (t.state === 'blocked' && t.local.get(KILLABLE_WAIT) === true) this.unblock(t, 'woken');
  }

  /** Makes the longest-waiting thread on `ch` runnable. */
  wakeOne(ch: WaitChannel): void {
    if (this.waiters.size === 0) return;
    const list = this.waiters.get(ch);
    if (list !== undefined && list.length > 0) this.unblock(list[0], 'woken');
  }

  hasWaiters(ch: WaitChannel): boolean {
    return (this.waiters.get(ch)?.length ?? 0) > 0;
  }

  /**
   * When no thread can run, lets virtual time pass to the earliest deadline and wakes the
   * threads whose deadline that is. Returns false if nothing has a deadline.
   */
  fireTimers(): boolean {
    let earliest = Infinity;
    for (const t of this.threads) if (t.state === 'blocked' && t.deadline < earliest) earliest = t.deadline;
    if (earliest === Infinity) return false;
    this.clock.advanceTo(earliest);
    for (const t of this.threads)
      if (t.state === 'blocked' && t.deadline <= earliest) this.unblock(t, 'timeout');
    return true;
  }

  /** Chooses and runs one step. Returns false when nothing can run (all done, or deadlock). */
  runOne(): boolean {
    let runnable = this.runnable();
    if (runnable.length === 0) {
      if (!this.fireTimers()) return false;
      runnable = this.runnable();
    }
    const t = runnable.length === 1 ? runnable[0] : this.chooser.choose(runnable, this);
    this.step(t);
    return true;
  }

  /** Blocked threads while none can run and no timer can fire: a deadlock. */
  blockedThreads(): Thread[] {
    return this.threads.filter((t) => t.state === 'blocked');
  }

  /** Runs until every thread finished or none can go on. Throws DeadlockError in the latter case. */
  runAll(): void {
    while (this.runOne());
    const blocked = this.blockedThreads();
    if (blocked.length > 0)
      throw new DeadlockError(blocked.map((t) => `${t.name} on ${t.waitingOn?.name ?? '?'}`));
  }

  /**
   * Runs `gen` as a new thread to its end (other runnable threads may step too) and returns its
   * result, rethrowing what it threw. This is how the sequential API drives kernel paths.
   */
  run<T>(name: string, gen: KGen<T>): T {
    if (this.current !== null) throw new Error('Scheduler.run called from inside a thread: use yield*');
    const t = this.spawn(name, gen);
    while (t.state !== 'done') {
      if (!this.runOne()) {
        const blocked = this.blockedThreads();
        throw new DeadlockError(blocked.map((b) => `${b.name} on ${b.waitingOn?.name ?? '?'}`));
      }
    }
    // Work it started in the background (SRCU callbacks, deferred frees) finishes before returning.
    while (this.runnable().length > 0) this.runOne();
    this.reap();
    if (t.error !== undefined) {
      throw t.error instanceof Error ? t.error : new Error(`thread ${t.name} threw a non-Error value`);
    }
    return t.result as T;
  }

  /**
   * Whether a path run now with run() would be the only thread stepped until it ends, with nobody
   * watching its steps: no other thread exists, the chooser keeps running the thread that ran
   * last, and no hook observes steps. A path that cannot yield then runs just as run() would run it.
   */
  get solo(): boolean {
    return (
      this.threads.length === 0 &&
      this.chooser === runToCompletion &&
      this.afterStep.length === 0 &&
      this.beforeStep.length === 0
    );
  }

  /**
   * Accounts for a run that needed no scheduling at all (see `solo`) as run() would have: one
   * thread spawned and `steps` steps taken, so step counts, trace timestamps and thread ids after
   * it are the same either way.
   */
  accountSoloRun(steps: number): void {
    this.nextId++;
    this.totalSteps += steps;
  }

  /** accountSoloRun(steps) `runs` times. */
  accountSoloRuns(runs: number, steps: number): void {
    this.nextId += runs;
    this.totalSteps += runs * steps;
  }

  /**
   * Runs the plain-function form of a path (see plain.ts) as run() runs its generator form: on a
   * thread of its own, with the same step accounting, background work finished before returning,
   * and what it threw rethrown. Only for a `solo` scheduler.
   */
  runPlain<T>(name: string, body: () => T): T {
    return this.runPlainWith(name, body, undefined, undefined, undefined, undefined);
  }

  /**
   * runPlain() of `fn(a, b, c, d)`: for a path run once per call (a CPU access), which then makes
   * no closure (and no context for it) on every call.
   */
  runPlainWith<A, B, C, D, T>(name: string, fn: (a: A, b: B, c: C, d: D) => T, a: A, b: B, c: C, d: D): T {
    if (this.current !== null) throw new Error('Scheduler.runPlain called from inside a thread');
    const spare = this.#spare;
    let t: Thread;
    if (spare !== null) {
      this.#spare = null;
      spare.restart(this.nextId++, name);
      t = spare;
    } else {
      t = new Thread(this.nextId++, name, PLAIN_BODY);
    }
    this.threads[this.threads.length] = t; // not push(): see addReader() in locks.ts
    this.runnableCache = null;
    this.beforeStepHooks(t);
    const prev = setPlainScheduler(this);
    this.current = t;
    let ok = false;
    // No finally: the catch takes whatever the body throws, so the code after it always runs.
    try {
      t.result = fn(a, b, c, d);
      ok = true;
    } catch (e) {
      t.error = e;
    }
    this.current = null;
    setPlainScheduler(prev);
    if (ok) {
      this.last = t;
      t.steps++;
      this.totalSteps++;
    }
    this.finish(t);
    this.afterStepHooks(t);
    if (this.threads.length === 1 && this.threads[0] === t) {
      // Nothing else was started: what the loop and reap() below would do, without their scans
      // (and without setting the length, which is a call into the runtime).
      this.threads.pop();
      this.runnableCache = null;
      this.last = null;
      if (t.clean()) {
        const result = t.result as T;
        t.result = undefined;
        this.#spare = t;
        return result;
      }
    } else {
      while (this.runnable().length > 0) this.runOne();
      this.reap();
    }
    if (t.error !== undefined) {
      throw t.error instanceof Error ? t.error : new Error(`thread ${t.name} threw a non-Error value`);
    }
    return t.result as T;
  }

  /**
   * The current thread of a plain path reached point `p`: ends its step as step() would, runs
   * whatever the chooser picks before this thread (nothing, for a step point of a solo run), and
   * starts its next step. Returns what the yield would have returned.
   */
  inlineStep(p: SchedPoint): WakeReason | undefined {
    const t = this.current;
    if (t !== null && p.kind === 'step' && this.chooser === runToCompletion && this.hooksEmpty()) {
      // What inlineStepOther() does for a step point of a solo run, without its branches: the
      // step is accounted for and the same thread goes on (nobody sees `current` change in
      // between). Small, so that it is inlined where a plain path yields.
      // Stores only what changes (most steps follow a step of the same thread, with no wake-up
      // to hand over): a store of an object field costs its write barrier.
      if (this.last !== t) this.last = t;
      t.steps++;
      this.totalSteps++;
      t.pending = p;
      const reason = t.wakeReason;
      if (reason !== undefined) t.wakeReason = undefined;
      return reason;
    }
    return this.inlineStepOther(p);
  }

  /** inlineStep() of any point, under any chooser and hooks. */
  private inlineStepOther(p: SchedPoint): WakeReason | undefined {
    const t = this.cur();
    this.current = null;
    this.last = t;
    t.steps++;
    this.totalSteps++;
    t.pending = p;
    if (p.kind === 'wait') this.block(t, p);
    this.afterStepHooks(t);
    if (p.kind !== 'step' || this.chooser !== runToCompletion) {
      for (;;) {
        let runnable = this.runnable();
        if (runnable.length === 0) {
          if (!this.fireTimers()) {
            const blocked = this.blockedThreads();
            throw new DeadlockError(blocked.map((b) => `${b.name} on ${b.waitingOn?.name ?? '?'}`));
          }
          runnable = this.runnable();
        }
        const next = runnable.length === 1 ? runnable[0] : this.chooser.choose(runnable, this);
        if (next === t) break;
        this.step(next);
      }
    }
    this.beforeStepHooks(t);
    const reason = t.wakeReason;
    t.wakeReason = undefined;
    this.current = t;
    return reason;
  }

  /**
   * The thread of the last plain path, when it finished clean (Thread.clean()) and alone: the
   * next runPlain() reuses the object, so a path run per call (a CPU access) makes no thread.
   * Private (#) so that snapshots of the scheduler, which it is no part of, never see it.
   */
  #spare: Thread | null = null;

  /** Forgets finished threads so long sequential runs do not accumulate them. */
  reap(): void {
    if (this.threads.every((t) => t.state === 'done')) {
      this.threads.length = 0;
      this.runnableCache = null;
      this.last = null;
    }
  }

  report(v: Violation): void {
    this.violations.push(v);
  }

  /** The running thread; kernel paths call this only from inside a step. */
  cur(): Thread {
    const t = this.current;
    if (t === null) throw new Error('no current thread');
    return t;
  }
}

/** A scheduling point object for a plain step, optionally declaring what it touches. */
export function point(label: string, obj?: object, write = true): SchedPoint {
  return obj === undefined ? { kind: 'step', label } : { kind: 'step', label, access: { obj, write } };
}
