import type { KGen, SchedPoint, WaitChannel, WakeReason } from './types.ts';

export type ThreadState = 'runnable' | 'blocked' | 'done';

/** A lock a thread holds, as far as the lock checks need to know. */
export interface HeldLock {
  readonly lockClass: string;
  readonly name: string;
  /** lockClassId(lockClass), when the entry was made with it. */
  readonly classId?: number;
  /**
   * How many instances of a nestable lock class (folio locks) the thread holds, on the entry of
   * that class. Such a class stands on `held` once, however many instances are taken: the order
   * checks need only the class, and a migration holds one per page.
   */
  instances?: number;
}

/** Where every thread starts (shared: points are never changed in place). */
const START: SchedPoint = { kind: 'step', label: 'start' };

/** A simulated CPU thread: one generator plus what the scheduler and the checks track about it. */
/** Thread.local key set while the thread sleeps in a killable wait (TASK_KILLABLE). */
export const KILLABLE_WAIT = 'killable_wait';

export class Thread {
  state: ThreadState = 'runnable';
  /** The point the thread yielded last: the step it takes next. */
  pending: SchedPoint;
  waitingOn: WaitChannel | null = null;
  deadline = Infinity;
  wakeReason: WakeReason | undefined = undefined;
  result: unknown = undefined;
  error: unknown = undefined;
  readonly held: HeldLock[] = [];
  /** > 0 inside a non-blockable invalidation: sleeping there is a bug. */
  nonBlockDepth = 0;
  /** > 0 while a spinlock is held: sleeping there is a bug. */
  atomicDepth = 0;
  private localValues: Map<string, unknown> | null = null;
  /**
   * The process the thread is inside the kernel for (current's thread group), or null: a field of
   * its own rather than a `local` value, since every system call sets and clears it.
   */
  task: object | null = null;
  /**
   * The tasks that nested enterTask() calls replaced, innermost last (an ioctl of a caller that
   * takes a process' mm): a field too, so that a system call leaves no per-thread value behind.
   */
  readonly outerTasks: (object | null)[] = [];
  steps = 0;

  /** Its id and name: fixed for its life (only a plain path's thread is reused, see clean()). */
  id: number;
  name: string;

  constructor(
    id: number,
    name: string,
    readonly gen: KGen<unknown>,
  ) {
    this.id = id;
    this.name = name;
    this.pending = START;
  }

  /**
   * Whether the finished thread left nothing behind that could refer to it: no lock (nor nested
   * lock instance), no per-thread value, no task, no open depth, no error. Scheduler.runPlain()
   * then makes its next thread out of this object (restart()) instead of a new one.
   */
  clean(): boolean {
    return (
      this.state === 'done' &&
      this.error === undefined &&
      this.held.length === 0 &&
      this.localValues === null &&
      this.task === null &&
      this.outerTasks.length === 0 &&
      this.waitingOn === null &&
      this.nonBlockDepth === 0 &&
      this.atomicDepth === 0
    );
  }

  /** Makes a clean() finished thread a fresh one, as the constructor would. */
  restart(id: number, name: string): void {
    this.id = id;
    this.name = name;
    this.state = 'runnable';
    this.pending = START;
    this.deadline = Infinity;
    this.wakeReason = undefined;
    this.result = undefined;
    this.steps = 0;
  }

  /** Per-thread values drivers and kernel paths may keep (like task_struct fields). */
  get local(): Map<string, unknown> {
    return (this.localValues ??= new Map());
  }

  get done(): boolean {
    return this.state === 'done';
  }
}
