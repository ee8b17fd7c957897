import type { Violation } from '../sched/types.ts';
import type { System } from '../kernel/system.ts';
import { checkCounts } from './counts.ts';
import { checkDeviceMirrors, checkDma } from './devices.ts';
import { checkIommufd } from './iommufd.ts';
import { checkLocks } from './locks.ts';
import { checkTeardown } from './teardown.ts';

export { checkCounts, census } from './counts.ts';
export { checkTeardown, quiescent } from './teardown.ts';
export { checkLocks } from './locks.ts';
export { checkIommufd } from './iommufd.ts';
export { checkDeviceMirrors, checkDma } from './devices.ts';

export interface CheckOptions {
  /** Also run the teardown oracle (it only speaks once nothing is left running). */
  readonly teardown?: boolean;
}

/**
 * Runs every oracle of DESIGN.md that applies now: mirror coherence and device references of
 * every device page table drivers registered (the built-in devices' too), iommufd accounting, checks drivers
 * registered in sys.checkHooks, page counts, lock rules, and, when asked, teardown.
 */
export function checkAll(sys: System, opts: CheckOptions = {}): Violation[] {
  const out: Violation[] = [];
  for (const hook of sys.checkHooks) out.push(...hook(opts.teardown === true));
  out.push(...checkDeviceMirrors(sys));
  out.push(...checkDma(sys));
  out.push(...checkIommufd(sys));
  out.push(...checkCounts(sys));
  out.push(...checkLocks(sys));
  if (opts.teardown === true) out.push(...checkTeardown(sys));
  return out;
}

/**
 * The oracles an exploration runs after a step: the checks drivers registered in
 * sys.checkHooks (not final), mirror coherence and device references of every mirror (oracles 1
 * and 2) and the lock rules (oracle 5) always; page counts (3) and iommufd accounting (4) when
 * `quiescent` says no kernel path is half done, since they are invariants of the state between
 * operations. Teardown runs at the end of each schedule (checkAll).
 */
export function checkStep(sys: System, quiescent = false): Violation | null {
  // Each check's first violation, if any (index loops: this runs after every step explored).
  const hooks = sys.checkHooks;
  for (let i = 0; i < hooks.length; i++) {
    const v = hooks[i](false);
    if (v.length > 0) return v[0];
  }
  let v = checkDeviceMirrors(sys);
  if (v.length === 0) v = checkDma(sys);
  if (v.length === 0) v = checkLocks(sys);
  if (v.length === 0 && quiescent) {
    v = checkIommufd(sys);
    if (v.length === 0) v = checkCounts(sys);
  }
  return v.length > 0 ? v[0] : null;
}

/** Throws with every violation listed, for tests. */
export function assertOracles(sys: System, opts: CheckOptions = {}): void {
  const v = checkAll(sys, opts);
  if (v.length > 0)
    throw new Error(`oracle violations:\n${v.map((x) => `  [${x.oracle}] ${x.message}`).join('\n')}`);
}
