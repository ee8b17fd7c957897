import { ULONG_MAX } from '../lib/units.ts';
import { schedPoint } from '../sched/locks.ts';
import type { KGen } from '../sched/types.ts';
import { Errno } from './errno.ts';
import { detachVma, removeVma, unmapVmas } from './mm/mmap.ts';
import { enterTask, leaveTask, threadsOf } from './mm/mmap_lock.ts';
import { dropRef, noteRef } from './mm/mm_refs.ts';
import type { MmStruct } from './mm/mm_types.ts';
import { mmdrop, mmuNotifierRelease } from './mm/mmu_notifier.ts';
import type { Process, System } from './system.ts';

/**
 * Models exit_mmap(): notifiers are told first (RELEASE to interval subscribers, ->release to
 * whole-mm ones), then every VMA is unmapped under one UNMAP invalidation over [0, ULONG_MAX),
 * page tables and VMAs are freed.
 */
export function* exitMmap(mm: MmStruct): KGen {
  yield* mmuNotifierRelease(mm);
  yield* mm.mmapLock.downWrite();
  const vmas = [...mm.vmas].map((n) => n.value);
  for (const v of vmas) detachVma(mm, v);
  yield* unmapVmas(mm, vmas, 0, ULONG_MAX);
  mm.pgt.freeEmpty(0, mm.taskSize);
  for (const v of vmas) removeVma(mm.sys, v);
  mm.exited = true;
  mm.sys.mms.delete(mm);
  yield* mm.mmapLock.upWrite();
}

/**
 * Models mmput(): the last user tears the address space down; the mm_struct goes with the last
 * mmdrop. `owner`: this is the process' own reference (the leak oracle's bookkeeping).
 */
export function* mmput(mm: MmStruct, owner = false): KGen {
  dropRef(mm, 'users', owner);
  if (--mm.mmUsers > 0) return;
  yield* exitMmap(mm);
  mmdrop(mm, true);
}

/**
 * Models mmget_not_zero(). `holder` names the reference for the leak oracle instead of the stack
 * of the call, which costs far more to capture than the rest: for a caller on a hot path that
 * drops the reference before it returns (a GPU's fault servicing, once per batch).
 */
export function mmgetNotZero(mm: MmStruct, holder?: string): boolean {
  if (mm.mmUsers <= 0) return false;
  mm.mmUsers++;
  if (holder !== undefined) mm.userRefSites.push(holder);
  else noteRef(mm, 'users');
  return true;
}

/** What the leak oracle calls the reference of a thread inside the kernel (taskMmget()). */
export const TASK_REF = 'a thread of the process inside a syscall';

/**
 * Models the mm_users reference a thread holds on its mm while it runs (task->mm: copy_mm() takes
 * one per thread with CLONE_VM, exit_mm() drops it). The model's process holds one reference for
 * all its threads; a scenario thread that enters the kernel as a thread of `p` holds this one
 * until it leaves, so an exit of `p` by another thread cannot tear the mm down under it: the
 * last of the two to let go runs exit_mmap(). Null when `p` has exited (its threads are gone).
 *
 * The step that takes it reads the process (`exited`, `mm`) and mm_users, which do_exit() and the
 * last taskMmput() write: it declares the process (read), so an exit beside it is tried on both
 * sides of it (docs/explorer.md).
 */
export function* taskMmget(p: Process): KGen<MmStruct | null> {
  yield p.mmgetPoint;
  const mm = p.mm;
  if (mm === null || p.exited || mm.mmUsers <= 0) return null;
  mm.mmUsers++;
  mm.userRefSites[mm.userRefSites.length] = TASK_REF; // not push(): see addReader() in locks.ts
  enterTask(mm.sys.sched, p);
  return mm;
}

/**
 * Drops the reference taskMmget() took, as mmput() does. The step writes the process `p`: the
 * last reference to go (this one, or do_exit()'s) tears the mm down in its own thread.
 */
export function* taskMmput(p: Process, mm: MmStruct): KGen {
  yield p.mmputPoint;
  leaveTask(mm.sys.sched);
  const sites = mm.userRefSites;
  // A loop from the end (the one taken last is usually the last entry): lastIndexOf() would be a
  // call into the runtime on every system call.
  let at = sites.length - 1;
  while (at >= 0 && sites[at] !== TASK_REF) at--;
  if (at >= 0) {
    // In place (splice would allocate the removed part on every system call).
    for (let j = at + 1; j < sites.length; j++) sites[j - 1] = sites[j];
    sites.pop();
  }
  if (--mm.mmUsers > 0) return;
  yield* exitMmap(mm);
  mmdrop(mm, true);
}

/** Models do_exit() for the parts the model has: the process drops its mm. */
export function* doExit(sys: System, p: Process): KGen<number> {
  // The step writes the process and drops its mm_users reference: it declares the process, as
  // the steps of its other threads that take or drop a reference do (taskMmget()).
  yield* schedPoint('exit_group', p);
  if (p.exited) return -Errno.ESRCH;
  p.exited = true;
  // exit_group()'s SIGKILL to the process' other threads: one asleep in a killable wait wakes
  // and gives up (signal_wake_up()).
  for (const t of threadsOf(sys.sched, p)) sys.sched.wakeKillable(t);
  const mm = p.mm;
  p.mm = null;
  if (mm !== null) yield* mmput(mm, true);
  sys.processes.delete(p.pid);
  sys.trace.count('exit');
  return 0;
}
