/**
 * Shrinks a failing schedule to one with the fewest preemptions that fails the same oracle.
 *
 * Fewer preemptions means fewer places where the reader must ask "why did the CPU switch here?",
 * and the diagram of a 1-preemption race is usually the whole explanation. The search is
 * iterative preemption bounding: a bounded DFS with bound 0, then 1, ... up to one less than the
 * schedule in hand, each with a small schedule budget. The first failing schedule found wins; if
 * none is found (budgets too small for a large world), the original schedule stands.
 * Budgets count schedules, not time, so the result does not depend on machine speed.
 */
import { DfsStrategy } from './dfs.ts';
import { overridesOf } from './run.ts';
import { searchLoop } from './search.ts';
import type { ExploreTarget } from './types.ts';

export interface MinimizeConfig {
  maxSteps: number;
  /** Schedules tried per preemption bound. */
  perBound?: number;
  /** Schedules tried in all. */
  total?: number;
}

export interface MinimizeResult {
  overrides: Map<number, number>;
  preemptions: number;
  /** Schedules run while minimising. */
  schedules: number;
}

export function minimizeSchedule(
  target: ExploreTarget,
  failing: { oracle: string; overrides: Map<number, number>; preemptions: number },
  cfg: MinimizeConfig,
): MinimizeResult {
  const perBound = cfg.perBound ?? 2000;
  let left = cfg.total ?? 10000;
  let schedules = 0;
  for (let bound = 0; bound < failing.preemptions && left > 0; bound++) {
    const dfs = new DfsStrategy(bound, true);
    const r = searchLoop(target, dfs, {
      maxSteps: cfg.maxSteps,
      startIndex: 0,
      endIndex: Math.min(perBound, left),
      deadline: Infinity,
      accept: (o) => !o.pruned && o.violation?.oracle === failing.oracle,
    });
    schedules += r.schedules;
    left -= r.schedules;
    if (r.found !== null && r.found.outcome.preemptions < failing.preemptions) {
      return {
        overrides: overridesOf(r.found.outcome.decisions),
        preemptions: r.found.outcome.preemptions,
        schedules,
      };
    }
  }
  return { overrides: failing.overrides, preemptions: failing.preemptions, schedules };
}
