/**
 * Depth-first search with DPOR over worker threads.
 *
 * DPOR learns where to branch from the schedules it has run, so its tree cannot be cut ahead of
 * time the way the sleep-set search's is (pardfs.ts). It is split as shards split it (shard.ts):
 * every choice the bound allows at the first choice points, grown level by level until there are
 * at least DPOR_SPLIT_PREFIXES prefixes, and each prefix's subtree is searched with DPOR and a
 * state cache of its own. A race whose reversal lies inside a prefix is covered by another
 * prefix, since all of them are searched; the subtrees share no sleep sets, so together they run
 * more schedules than the one-thread search (measured in docs/explorer.md).
 *
 * The subtrees are numbered in DFS order and handed out one at a time to whichever worker is
 * free (a worker that finishes early takes the next one). The result is defined by the order
 * alone: it is what searchSubtrees() reports for the same prefixes in one thread, the first
 * violation being the first in subtree order. A subtree's size is known only once run, so it is
 * capped at the budget minus a lower bound of its start (one schedule for each earlier subtree
 * still running), and the master adds up the results in order; a subtree that ran past the
 * budget's end is rerun here up to it, for the last schedule, its coverage and its states. With
 * a time budget the walk stops at the first subtree the deadline cut short. The prefix count does
 * not depend on the worker count, so neither does the result.
 */
import { Coverage } from '../../sched/explore/coverage.ts';
import type { ResolvedOptions } from '../../sched/explore/options.ts';
import {
  DPOR_SPLIT_PREFIXES,
  type ParallelDporConfig,
  type ParallelDporResult,
} from '../../sched/explore/parallel.ts';
import { enumeratePrefixes } from '../../sched/explore/shard.ts';
import { addStateStats, emptyStateStats } from '../../sched/explore/state_cache.ts';
import type { ExploreTarget, TargetDescriptor } from '../../sched/explore/types.ts';
import { runDporUnit, WorkerPool, type DporUnitResult } from './workers.ts';

export function parallelDpor(
  local: ExploreTarget,
  descriptor: TargetDescriptor,
  o: ResolvedOptions,
  cfg: ParallelDporConfig,
): ParallelDporResult {
  const budget = o.schedules;
  const prefixes = enumeratePrefixes(local, o, cfg.prefixes ?? DPOR_SPLIT_PREFIXES);
  const results: (DporUnitResult | undefined)[] = [];
  /** Known sizes of the subtrees handed out, 1 for those still running: where the next starts. */
  let lowerBound = 0;
  let next = 0;
  let violationSeen = false;
  let ran = 0;

  const coverage = new Coverage();
  const states = emptyStateStats();
  let cursor = 0;
  let start = 0;
  let last = new Map<number, number>();

  /** Counts a subtree's coverage and states into the result. */
  const count = (r: DporUnitResult): void => {
    coverage.addReport(r.coverage);
    addStateStats(states, r.states);
  };

  const walk = (): Omit<ParallelDporResult, 'stats' | 'coverage' | 'states'> | null => {
    for (;;) {
      if (start >= budget)
        return { found: null, schedules: start, exhausted: cursor >= prefixes.length, lastOverrides: last };
      if (cursor >= prefixes.length)
        return { found: null, schedules: start, exhausted: true, lastOverrides: last };
      const r = results[cursor];
      if (r === undefined) return null;
      const limit = budget - start;
      if (r.violation !== null && r.violation.pos < limit) {
        count(r);
        const found = new Map(r.violation.overrides);
        return { found, schedules: start + r.violation.pos + 1, exhausted: false, lastOverrides: found };
      }
      if (r.ran > limit) {
        // The budget ends inside this subtree, which ran further (its cap was loose): rerun it.
        const cut = runDporUnit(local, o, { item: cursor, prefix: prefixes[cursor], cap: limit }, Infinity);
        count(cut);
        return {
          found: null,
          schedules: budget,
          exhausted: false,
          lastOverrides: cut.last === null ? last : new Map(cut.last),
        };
      }
      count(r);
      if (r.last !== null) last = new Map(r.last);
      if (!r.exhausted) {
        // Stopped exactly at the budget, or by the deadline.
        return { found: null, schedules: start + r.ran, exhausted: false, lastOverrides: last };
      }
      start += r.ran;
      cursor++;
    }
  };

  const finish = (r: Omit<ParallelDporResult, 'stats' | 'coverage' | 'states'>): ParallelDporResult => {
    const c = coverage.report();
    return {
      ...r,
      coverage: { oneOrder: c.oneOrder, both: c.both },
      states,
      stats: { subtrees: prefixes.length, ran },
    };
  };

  const pool = new WorkerPool(descriptor, o, undefined);
  try {
    for (;;) {
      for (let w = 0; w < pool.size; w++) {
        if (pool.inFlight(w) > 0) continue;
        if (violationSeen || next >= prefixes.length || lowerBound >= budget) break;
        if (performance.now() >= cfg.deadline) break;
        pool.send(w, {
          type: 'dpor',
          unit: { item: next, prefix: prefixes[next], cap: budget - lowerBound },
          deadlineEpoch: performance.timeOrigin + cfg.deadline,
        });
        next++;
        lowerBound++;
      }
      const decided = walk();
      if (decided !== null) return finish(decided);
      if (!pool.busy) {
        // Nothing in flight and nothing handed out: the deadline stopped the split.
        return finish({ found: null, schedules: start, exhausted: false, lastOverrides: last });
      }
      pool.receive((_w, msg) => {
        if (msg.type !== 'dpor') return;
        const r = msg.unit;
        results[r.item] = r;
        lowerBound += r.ran - 1;
        ran += r.ran;
        if (r.violation !== null) violationSeen = true;
        cfg.onProgress?.(ran);
      });
    }
  } finally {
    pool.close();
  }
}
