/**
 * What the plain-function form of kernel paths (the `*.plain.ts` files that
 * scripts/derive-plain.mjs derives from the generator source) calls where the source yields.
 *
 * A plain path runs inside Scheduler.runPlain(), on a thread of its own, only when the scheduler
 * is `solo`: then after every step the chooser picks the same thread again, so a step point needs
 * no suspension, only its accounting. A wait blocks the thread and lets the others run, exactly as
 * the scheduler would, until this thread is chosen again.
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
