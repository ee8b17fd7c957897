/**
 * Driver worker threads in virtual time: work items (include/linux/workqueue.h), delayed work,
 * timers (timer_list), kthreads and fence-like waits.
 *
 * Each queued work item runs on a scheduler thread of its own (a kworker that exists while the
 * item runs), so the explorer interleaves it with everything else; an idle workqueue has no
 * thread, and nothing waits at the end of a run for work that never comes. As in the kernel, a
 * work item queued again while it runs is not run beside itself: its next run waits for the
 * running one to end. Delays and timer expiries are virtual nanoseconds: the clock jumps to the
 * next deadline once every thread waits.
 *
 * Timer callbacks run in softirq context: atomic, so anything that may sleep there is reported by
 * the lock checks, as in the kernel.
 */
import { currentDriverOwner, runDriverCode } from '../../../sched/driver_code.ts';
import { Channel, Completion, WaitQueue, mightSleep } from '../../../sched/locks.ts';
import type { Scheduler } from '../../../sched/scheduler.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';

/** Models struct work_struct. `fn` is the work function; it may sleep. */
export class WorkStruct {
  /** Queued and not yet started (WORK_STRUCT_PENDING). */
  pending = false;
  /** A kworker is running fn. */
  running = false;
  /** Bumped by cancel: a queued run that sees a newer generation does nothing. */
  private generation = 0;
  readonly done: WaitQueue;
  /** The driver whose code initialised the work: its runs are that driver's code. */
  readonly owner: object | null;

  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    readonly fn: (work: WorkStruct) => KGen,
  ) {
    this.done = new WaitQueue(sched, `work ${name}`);
    this.owner = currentDriverOwner(sched);
  }

  /** @internal Starts a kworker thread for one run, after `delayNs` of virtual time. */
  spawnRun(delayNs: number, timer: Channel): void {
    const gen = this.generation;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const work = this;
    this.sched.spawn(
      `kworker:${this.name}`,
      (function* (): KGen {
        if (delayNs > 0) {
          const deadline = work.sched.clock.now + delayNs;
          while (work.sched.clock.now < deadline && gen === work.generation) {
            yield { kind: 'wait', label: `delayed_work(${work.name})`, channel: timer, deadline };
          }
        }
        // A work item never runs on two workers at once: queued again while it runs, it runs once
        // that run ends (process_one_work() hands it to the worker executing it).
        if (work.running)
          yield* work.done.waitEvent(
            () => !work.running || gen !== work.generation,
            `process_one_work(${work.name}): wait for the running instance`,
          );
        yield { kind: 'step', label: `process_one_work(${work.name})`, access: { obj: work, write: true } };
        if (gen !== work.generation || !work.pending) {
          // Cancelled while queued: a flush_work() queued its barrier behind this run, and the
          // barrier still runs (the kernel's cancel unlinks the work, not the barrier).
          work.done.wakeUpAll();
          return;
        }
        work.pending = false;
        work.running = true;
        try {
          yield* runDriverCode(work.sched, work.owner, `work ${work.name}`, work.fn(work));
        } finally {
          work.running = false;
          work.done.wakeUpAll();
        }
      })(),
    );
  }

  /** @internal */
  cancelQueued(): boolean {
    const was = this.pending;
    this.pending = false;
    this.generation++;
    return was;
  }
}

/** Models INIT_WORK(). */
export function initWork(sched: Scheduler, name: string, fn: (work: WorkStruct) => KGen): WorkStruct {
  return new WorkStruct(sched, name, fn);
}

/** Models queue_work() / schedule_work(): false if the work was already pending. */
export function queueWork(work: WorkStruct): boolean {
  if (work.pending) return false;
  work.pending = true;
  work.spawnRun(0, new Channel(`work ${work.name}`));
  return true;
}

/** Models struct delayed_work. */
export class DelayedWork {
  readonly work: WorkStruct;
  /** The timer's wait channel: cancel wakes the sleeping kworker so it can leave. */
  readonly timer: Channel;
  constructor(sched: Scheduler, name: string, fn: (work: WorkStruct) => KGen) {
    this.work = new WorkStruct(sched, name, fn);
    this.timer = new Channel(`delayed_work ${name}`);
  }
}

/** Models INIT_DELAYED_WORK(). */
export function initDelayedWork(sched: Scheduler, name: string, fn: (work: WorkStruct) => KGen): DelayedWork {
  return new DelayedWork(sched, name, fn);
}

/** Models queue_delayed_work(): runs fn `delayNs` virtual ns from now; false if already pending. */
export function queueDelayedWork(dwork: DelayedWork, delayNs: number): boolean {
  const work = dwork.work;
  if (work.pending) return false;
  work.pending = true;
  work.spawnRun(Math.max(0, delayNs), dwork.timer);
  return true;
}

/** Models flush_work(): waits until the work is neither pending nor running. Returns whether it waited. */
export function* flushWork(work: WorkStruct): KGen<boolean> {
  mightSleep(work.sched, `flush_work(${work.name})`);
  const busy = work.pending || work.running;
  yield* work.done.waitEvent(() => !work.pending && !work.running, `flush_work(${work.name})`);
  return busy;
}

/** Models cancel_work_sync(): unqueues the work and waits for a running instance. True if it was pending. */
export function* cancelWorkSync(work: WorkStruct): KGen<boolean> {
  const was = work.cancelQueued();
  yield* work.done.waitEvent(() => !work.running, `cancel_work_sync(${work.name})`);
  return was;
}

/** Models cancel_delayed_work_sync(). */
export function* cancelDelayedWorkSync(dwork: DelayedWork): KGen<boolean> {
  const was = dwork.work.cancelQueued();
  dwork.work.sched.wakeAll(dwork.timer);
  yield* dwork.work.done.waitEvent(() => !dwork.work.running, `cancel_delayed_work_sync(${dwork.work.name})`);
  return was;
}

/** Models struct timer_list. The callback runs in softirq (atomic) context. */
export class TimerList {
  /** Absolute expiry in virtual ns while armed. */
  expires = 0;
  armed = false;
  private generation = 0;
  private readonly ch: Channel;
  /** The driver whose code set the timer up. */
  readonly owner: object | null;
  constructor(
    readonly sched: Scheduler,
    readonly name: string,
    readonly fn: (timer: TimerList) => void,
  ) {
    this.ch = new Channel(`timer ${name}`);
    this.owner = currentDriverOwner(sched);
  }

  /** @internal */
  arm(expires: number): void {
    this.generation++;
    this.sched.wakeAll(this.ch);
    const gen = this.generation;
    this.expires = expires;
    this.armed = true;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const timer = this;
    this.sched.spawn(
      `timer:${this.name}`,
      (function* (): KGen {
        while (timer.sched.clock.now < expires && gen === timer.generation) {
          yield { kind: 'wait', label: `timer(${timer.name})`, channel: timer.ch, deadline: expires };
        }
        yield { kind: 'step', label: `run_timer(${timer.name})`, access: { obj: timer, write: true } };
        if (gen !== timer.generation) return;
        timer.armed = false;
        const t = timer.sched.cur();
        t.atomicDepth++;
        try {
          yield* runDriverCode(
            timer.sched,
            timer.owner,
            `timer ${timer.name}`,
            (function* (): KGen {
              timer.fn(timer);
            })(),
          );
        } finally {
          t.atomicDepth--;
        }
      })(),
    );
  }

  /** @internal */
  disarm(): boolean {
    const was = this.armed;
    this.armed = false;
    this.generation++;
    this.sched.wakeAll(this.ch);
    return was;
  }
}

/** Models timer_setup(). */
export function timerSetup(sched: Scheduler, name: string, fn: (timer: TimerList) => void): TimerList {
  return new TimerList(sched, name, fn);
}

/** Models mod_timer() with an absolute expiry in virtual ns: true if the timer was armed before. */
export function modTimer(timer: TimerList, expires: number): boolean {
  const was = timer.armed;
  timer.arm(expires);
  return was;
}

/** Models timer_delete() (del_timer): true if the timer was armed. */
export function timerDelete(timer: TimerList): boolean {
  return timer.disarm();
}

/** Models struct task_struct of a kthread: kthread_should_stop() and the exit it reports. */
export class Kthread {
  shouldStop = false;
  exited = false;
  result = 0;
  /** Where the thread sleeps for work: kthreadStop() wakes it. */
  readonly wq: WaitQueue;
  readonly exitDone: Completion;
  constructor(
    readonly sched: Scheduler,
    readonly name: string,
  ) {
    this.wq = new WaitQueue(sched, `kthread ${name}`, true);
    this.exitDone = new Completion(sched, `kthread ${name} exit`);
  }
}

/**
 * Models kthread_run(): `fn` runs on its own thread until it returns. A kthread that sleeps on
 * its `wq` waiting for work is idle (TASK_IDLE): when every other thread has finished that is not
 * a deadlock, and the scenario's teardown unbinds the device, whose remove() stops it
 * (kthreadStop). One that remove() does not stop still waits after teardown: a deadlock, as a
 * kthread left behind by an unloaded module is. A kthread asleep anywhere else is not idle.
 */
export function kthreadRun(sched: Scheduler, name: string, fn: (k: Kthread) => KGen<number>): Kthread {
  const k = new Kthread(sched, name);
  const owner = currentDriverOwner(sched);
  sched.spawn(
    name,
    (function* (): KGen {
      try {
        k.result = yield* runDriverCode(sched, owner, `kthread ${name}`, fn(k));
        // do_exit()'s complete of the vfork/exit completion: a step that declares it, so the
        // kthread_stop() waiting there wakes declaring it too (locks.ts, Completion).
        yield { kind: 'step', label: `kthread_exit(${name})`, access: k.exitDone.access };
      } finally {
        k.exited = true;
        k.exitDone.completeAll();
      }
    })(),
    // A kthread's code up to its first point reads kthread_should_stop() and its work, which
    // other threads change: its start declares nothing, wherever it was spawned.
    { kind: 'step', label: 'start' },
  );
  return k;
}

/** Models kthread_should_stop(). */
export function kthreadShouldStop(k: Kthread): boolean {
  return k.shouldStop;
}

/** Models kthread_stop(): asks the thread to stop, wakes it, waits for it to exit; its return value. */
export function* kthreadStop(k: Kthread): KGen<number> {
  k.shouldStop = true;
  k.wq.wakeUpAll();
  yield* k.exitDone.wait();
  return k.result;
}

/**
 * Models struct dma_fence: signalled once, with an optional error; waiters sleep until then. A
 * waiter woken by a step that declares the fence (`yield* schedPoint('dma_fence_signal', f)`
 * before dmaFenceSignal(), as the kernel takes the fence's lock) wakes reading it; woken by any
 * other step, its wake declares nothing (docs/explorer.md).
 */
export class DmaFence {
  signaled = false;
  error = 0;
  readonly wq: WaitQueue;
  /** The footprint of a waiter's wake: it reads `signaled`. */
  readonly access: { readonly obj: object; readonly write: boolean };
  constructor(
    readonly sched: Scheduler,
    readonly name: string,
  ) {
    this.wq = new WaitQueue(sched, `fence ${name}`);
    this.access = { obj: this, write: false };
  }
}

/** Models dma_fence_init(). */
export function dmaFenceInit(sched: Scheduler, name: string): DmaFence {
  return new DmaFence(sched, name);
}

/** Models dma_fence_signal() (with dma_fence_set_error() when `error` is given): -EINVAL if already signalled. */
export function dmaFenceSignal(f: DmaFence, error = 0): number {
  if (f.signaled) return -Errno.EINVAL;
  f.error = error;
  f.signaled = true;
  f.wq.wakeUpAll();
  return 0;
}

/**
 * Models dma_fence_wait_timeout(): the virtual ns left (at least 1) once signalled, 0 on timeout.
 * `timeoutNs` Infinity waits for ever (MAX_SCHEDULE_TIMEOUT).
 */
export function* dmaFenceWaitTimeout(f: DmaFence, timeoutNs = Infinity): KGen<number> {
  if (timeoutNs === Infinity) {
    yield* f.wq.waitEvent(() => f.signaled, `dma_fence_wait(${f.name})`, undefined, f.access);
    return 1;
  }
  return yield* f.wq.waitEventTimeout(() => f.signaled, timeoutNs, `dma_fence_wait(${f.name})`, f.access);
}
