import type { KGen, SchedPoint, WaitChannel, WakeReason } from './types.ts';

export type ThreadState = 'runnable' | 'blocked' | 'done';

/** A lock a thread holds, as far as the lock checks need to know. */
export interface HeldLock {
  readonly lockClass: string;
  readonly name: string;
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
  /**
   * How many instances of each nestable lock class (folio locks) the thread holds. Such a class
   * stands on `held` once, however many instances are taken: the order checks need only the
   * class, and a migration holds one per page.
   */
  heldInstances: Map<string, number> | null = null;
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
  steps = 0;

  constructor(
    readonly id: number,
    readonly name: string,
    readonly gen: KGen<unknown>,
  ) {
    this.pending = START;
  }

  /** Per-thread values drivers and kernel paths may keep (like task_struct fields). */
  get local(): Map<string, unknown> {
    return (this.localValues ??= new Map());
  }

  get done(): boolean {
    return this.state === 'done';
  }
}
