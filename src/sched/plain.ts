/**
 * What the plain-function form of kernel paths (the `*.plain.ts` files that
 * scripts/derive-plain.mjs derives from the generator source) calls where the source yields.
 *
 * A plain path runs inside Scheduler.runPlain(), on a thread of its own, only when the scheduler
 * is `solo`: then after every step the chooser picks the same thread again, so a step point needs
 * no suspension, only its accounting. A wait blocks the thread and lets the others run, exactly as
 * the scheduler would, until this thread is chosen again.
 *
 * Calling a plain path from other code (a simulator's driver, a benchmark): call it inside
 * `sched.runPlain(name, () => ...)` (System.runPath does, choosing the plain form only when
 * `sched.solo`), never from inside a generator thread and never while another thread could be
 * scheduled — under a chooser that interleaves, the generator form is the only faithful one.
 * Migration, for one: `migrateVmaSetup$`, `migrateVmaPages$` and `migrateVmaFinalize$` from
 * src/kernel/mm/migrate_device.plain.ts take the same MigrateVma as their generator forms, with
 * the mmap lock held through `RwSem$downRead(mm.mmapLock)` (locks.plain.ts); the
 * dmirror driver's `dmirrorMigrateToDevice$` (test_hmm_devmem.plain.ts) is a complete example.
 */
import type { Scheduler } from './scheduler.ts';
import type { KGen, SchedPoint, WakeReason } from './types.ts';

let active: Scheduler | null = null;

/** Makes `sched` the one plain paths report to; returns the previous one, for restoring. */
export function setPlainScheduler(sched: Scheduler | null): Scheduler | null {
  const prev = active;
  active = sched;
  return prev;
}

/** Where the source yields `p`: what the thread would get back from the yield. */
export function inlineYield(p: SchedPoint): WakeReason | undefined {
  const s = active;
  if (s === null) throw new Error('a plain kernel path ran outside Scheduler.runPlain');
  return s.inlineStep(p);
}

/** Where the source delegates to a generator that has no plain form: runs it here, step by step. */
export function inlineDrive<T>(gen: KGen<T>): T {
  let r = gen.next();
  while (r.done !== true) r = gen.next(inlineYield(r.value));
  return r.value;
}
