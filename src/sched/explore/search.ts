/** The sequential search loop shared by explore() and the minimiser. */
import type { Coverage } from './coverage.ts';
import { RunMemo, runSchedule } from './run.ts';
import type { ExploreTarget, RunOutcome, Strategy } from './types.ts';

export interface SearchConfig {
  maxSteps: number;
  /** Number of the first schedule (PCT calibration and parallel chunks start elsewhere than 0). */
  startIndex: number;
  /** Stop before this schedule number. */
  endIndex: number;
  /** performance.now() deadline. */
  deadline: number;
  /** Which violations end the search; default any. */
  accept?: (o: RunOutcome) => boolean;
  onSchedule?: (index: number, outcome: RunOutcome) => void;
  coverage?: Coverage;
}

export interface SearchResult {
  found: { index: number; outcome: RunOutcome } | null;
  /** Schedules run. */
  schedules: number;
  /** The last schedule run (for a replay token when nothing failed). */
  last: RunOutcome | null;
  lastIndex: number;
  exhausted: boolean;
}

export function searchLoop(target: ExploreTarget, strategy: Strategy, cfg: SearchConfig): SearchResult {
  let schedules = 0;
  let last: RunOutcome | null = null;
  let lastIndex = -1;
  let index = cfg.startIndex;
  /** The previous schedule of each search the strategy interleaves. */
  const memos: RunMemo[] = [];
  for (; index < cfg.endIndex && performance.now() < cfg.deadline; index++) {
    if (!strategy.begin(index)) break;
    const lane = strategy.lane?.() ?? 0;
    const memo = (memos[lane] ??= new RunMemo(lane));
    const outcome = runSchedule(target, strategy, {
      maxSteps: cfg.maxSteps,
      recordTrace: false,
      coverage: cfg.coverage,
      memo,
      brief: true,
    });
    strategy.end?.(outcome);
    schedules++;
    last = outcome;
    lastIndex = index;
    cfg.onSchedule?.(index, outcome);
    if (
      outcome.violation !== null &&
      (cfg.accept === undefined || cfg.accept(outcome)) &&
      (strategy.accepts?.(outcome) ?? true)
    ) {
      return { found: { index, outcome }, schedules, last, lastIndex, exhausted: false };
    }
  }
  // Out of budget exactly when the space ran out: one more begin() tells (and runs nothing).
  const exhausted = strategy.exhausted() || (index >= cfg.endIndex && !strategy.begin(index));
  return { found: null, schedules, last, lastIndex, exhausted };
}
