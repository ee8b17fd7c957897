/**
 * The killable forms of the mmap lock (include/linux/mmap_lock.h) and the fatal signal they
 * watch for. The model's only fatal signal is an exit: a process made to exit by one of its
 * threads (exit_group()'s SIGKILL to the others) has a fatal signal pending in every other thread
 * that is inside the kernel for it. Such a thread sleeping for the mmap lock wakes and gives up.
 */
import type { Scheduler } from '../../sched/scheduler.ts';
import type { Thread } from '../../sched/thread.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { MmStruct } from './mm_types.ts';

interface Task {
  readonly exited: boolean;
}

/**
 * Marks the current thread (if any) as a thread of `task` until the matching leaveTask(). Calls
 * nest (an ioctl of the caller that takes a process' mm): leaveTask() gives back the task before.
 */
export function enterTask(sched: Scheduler, task: Task): void {
  const t = sched.current;
  if (t === null) return;
  t.outerTasks[t.outerTasks.length] = t.task; // not push(): see addReader() in locks.ts
  t.task = task;
}

export function leaveTask(sched: Scheduler): void {
  const t = sched.current;
  if (t === null) return;
  t.task = t.outerTasks.length > 0 ? (t.outerTasks.pop() ?? null) : null;
}

/** The threads inside the kernel for `task`, other than the current one. */
export function threadsOf(sched: Scheduler, task: Task): Thread[] {
  return sched.threads.filter((t) => t !== sched.current && !t.done && t.task === task);
}

/** Models fatal_signal_pending(current): the process the thread runs for is exiting. */
export function fatalSignalPending(sched: Scheduler): boolean {
  const task = sched.current?.task as Task | null | undefined;
  return task?.exited === true;
}

/** fatalSignalPending() for the threads taking `mm`'s mmap lock, as one function kept on `mm`. */
export function killedCheck(mm: MmStruct): () => boolean {
  // The function is made apart: a closure made here would allocate this function's context on
  // every call (every fault takes the lock), even when the kept one is returned.
  return mm.fatalSignalCheck ?? newKilledCheck(mm);
}

function newKilledCheck(mm: MmStruct): () => boolean {
  const sched = mm.sys.sched;
  return (mm.fatalSignalCheck = () => fatalSignalPending(sched));
}

/** Models mmap_read_lock_killable(): 0, or -EINTR when a fatal signal ends the wait. */
export function* mmapReadLockKillable(mm: MmStruct): KGen<number> {
  return (yield* mm.mmapLock.downReadKillable(killedCheck(mm))) ? 0 : -Errno.EINTR;
}

/** Models mmap_write_lock_killable(): 0, or -EINTR when a fatal signal ends the wait. */
export function* mmapWriteLockKillable(mm: MmStruct): KGen<number> {
  return (yield* mm.mmapLock.downWriteKillable(killedCheck(mm))) ? 0 : -Errno.EINTR;
}
