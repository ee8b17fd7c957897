/**
 * Driver code as the embedder sees it. A driver's callbacks (its probe, file operations and ioctl
 * handlers, the functions of its work items, kthreads and timers) are code the model did not write:
 * one that loops for ever, with or without scheduling points, must be stopped and named, not
 * mistaken for a kernel livelock or left to hang the run. The SDK routes every such call through
 * runDriverCode(); an embedder that bounds driver code (the scenario runner, for the drivers a
 * scenario loads from a module) installs a DriverCodeBound on the scheduler, and with none
 * installed the call runs as it is.
 *
 * A work item or kthread is owned by the driver whose code set it up: runDriverCode() records the
 * owner on the thread while a callback runs, and the SDK reads it back (currentDriverOwner()) when
 * the driver initialises one.
 */
import type { Scheduler } from './scheduler.ts';
import type { KGen, SchedPoint, WakeReason } from './types.ts';

export interface DriverCodeBound {
  /** Whether calls of `owner` are bounded (a built-in driver is not). */
  owns(owner: object): boolean;
  /** Wraps one call of a callback `what` of `owner`: the generator the thread runs instead. */
  wrap<T>(owner: object, what: string, gen: KGen<T>): KGen<T>;
}

/** Thread-local key of the driver whose callback the thread runs. */
const OWNER_KEY = 'driver.owner';

/** The driver whose callback the current thread runs, or null. */
export function currentDriverOwner(sched: Scheduler): object | null {
  const v = sched.current?.local.get(OWNER_KEY);
  return typeof v === 'object' && v !== null ? v : null;
}

/** Runs `gen`, recording `owner` on the current thread while its code runs. */
function* owned<T>(sched: Scheduler, owner: object, gen: KGen<T>): KGen<T> {
  const t = sched.cur();
  let input: WakeReason | undefined = undefined;
  for (;;) {
    const before = t.local.get(OWNER_KEY);
    t.local.set(OWNER_KEY, owner);
    let r: IteratorResult<SchedPoint, T>;
    try {
      r = gen.next(input);
    } finally {
      if (before === undefined) t.local.delete(OWNER_KEY);
      else t.local.set(OWNER_KEY, before);
    }
    if (r.done === true) return r.value;
    input = yield r.value;
  }
}

/** Whether calls of `owner`'s callbacks are bounded: runDriverCode() then wraps them. */
export function driverCodeBounded(sched: Scheduler, owner: object | null): boolean {
  const b = sched.driverCode;
  return owner !== null && b !== null && b.owns(owner);
}

/**
 * Runs a call of the callback `what` of the driver `owner` (null: code of no driver the embedder
 * bounds). Without a bound that owns the driver, `gen` itself: built-in drivers pay nothing.
 */
export function runDriverCode<T>(
  sched: Scheduler,
  owner: object | null,
  what: string,
  gen: KGen<T>,
): KGen<T> {
  const b = sched.driverCode;
  if (owner === null || b === null || !b.owns(owner)) return gen;
  return owned(sched, owner, b.wrap(owner, what, gen));
}
