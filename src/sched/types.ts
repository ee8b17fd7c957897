/**
 * Scheduling points. A kernel path is a generator that yields one of these each time another
 * thread could run before it goes on: before taking or releasing a lock, reading or writing a
 * sequence count, entering or leaving a driver callback, touching a device. The yielded value
 * describes the step the thread is about to take, so a strategy can see every thread's next move.
 */

/** What woke a thread that waited: an explicit wake-up, or its virtual-time deadline. */
export type WakeReason = 'woken' | 'timeout';

/** A shared object a step touches; `write` false means it only reads it. */
export interface Access {
  readonly obj: object;
  readonly write: boolean;
}

/** The thread is ready to take a step. `access` undefined means the step may touch anything. */
export interface StepPoint {
  readonly kind: 'step';
  readonly label: string;
  readonly access?: Access | undefined;
}

/** The thread cannot go on until `channel` is woken (or `deadline`, in virtual ns, passes). */
export interface WaitPoint {
  readonly kind: 'wait';
  readonly label: string;
  readonly channel: WaitChannel;
  readonly deadline?: number | undefined;
  /** Spinning on a spinlock is waiting, but not sleeping: the might-sleep check ignores it. */
  readonly spin?: boolean;
  /**
   * What the step after an explicit wake-up touches (the code from the wait to the next point:
   * a lock's owner check), declared as a StepPoint declares it; undefined, it may touch anything.
   * A wake-up by timeout declares nothing.
   */
  readonly resume?: Access | undefined;
  /**
   * What the step after an explicit wake-up touches when the step that woke it declares the same
   * object (a completion or fence signalled in a step of its own): the wake is then ordered after
   * the signal by the footprints alone. Woken by any other step, it declares nothing.
   */
  readonly signal?: Access | undefined;
}

export type SchedPoint = StepPoint | WaitPoint;

/** The type of every kernel path that can be interleaved. */
export type KGen<T = void> = Generator<SchedPoint, T, WakeReason | undefined>;

/** Something threads can wait on. */
export interface WaitChannel {
  readonly name: string;
  /**
   * A sleep for work that nothing owes (the kernel's TASK_IDLE: a kthread's or worker's idle
   * wait). Threads asleep only on idle channels when every other thread has finished are not a
   * deadlock: whoever owns them stops them (kthread_stop at remove).
   */
  readonly idle?: boolean;
}

/** A broken rule seen while running: a lock-order cycle, a sleep where sleeping is forbidden, a deadlock. */
export interface Violation {
  readonly oracle: string;
  readonly message: string;
  readonly thread?: string | undefined;
}
