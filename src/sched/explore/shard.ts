/**
 * Shards: one search split into N parts that separate processes or machines run independently
 * (a CI matrix, a Kubernetes Indexed Job), each part chosen by its number alone, so the parts
 * together cover what the whole search covers and `hetmem explore --merge` combines their results.
 *
 * Random and PCT schedules are numbered and depend only on (seed, number): shard i of N runs a
 * contiguous range of the numbers below the schedule budget (PCT first learns its step estimate
 * from the calibration schedules, which every shard reruns). A depth-first search is split by its
 * top choice points: every shard enumerates the same prefixes (all choices the bound allows at the
 * first few choice points, grown level by level until there are at least PREFIXES_PER_SHARD per
 * shard), takes every N-th, and searches the subtree under each with the configured reduction.
 * Reduction inside a subtree is as sound as in the whole search (a race whose reversal lies in
 * the prefix is covered by another prefix, since all of them are enumerated); the shards share
 * no sleep sets, so together they run more schedules than one search does.
 */
import { DfsStrategy, type DfsNodeData } from './dfs.ts';
import { DporStrategy } from './dpor.ts';
import type { ResolvedOptions } from './options.ts';
import { CALIBRATION_RUNS, PctStrategy } from './pct.ts';
import { RandomStrategy } from './random.ts';
import { runSchedule } from './run.ts';
import { searchLoop, type SearchConfig, type SearchResult } from './search.ts';
import type { StateStats } from './state_cache.ts';
import type { ChoiceContext, ExploreTarget, Strategy } from './types.ts';

/** Shard `index` (0-based) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

/** Prefixes wanted per shard before a depth-first search is split. */
export const PREFIXES_PER_SHARD = 4;
/** The prefixes stop growing at this many choice points. */
const MAX_PREFIX_DEPTH = 12;

/** A choice point of a prefix: the runnable threads, and which one the prefix takes. */
export interface PrefixNode {
  tids: number[];
  chosen: number;
  preemptionsBefore: number;
  lastIndex: number;
}

export function parseShard(v: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const i = m === null ? NaN : Number(m[1]);
  const n = m === null ? NaN : Number(m[2]);
  if (!(Number.isSafeInteger(i) && Number.isSafeInteger(n) && n >= 1 && i >= 1 && i <= n)) {
    throw new TypeError(`a shard is I/N with 1 <= I <= N (e.g. 2/8), got '${v}'`);
  }
  return { index: i - 1, count: n };
}

/** Runs the schedule the prefix names (defaults below it) and returns the choice point at its end. */
function probe(target: ExploreTarget, prefix: readonly PrefixNode[], maxSteps: number): ChoiceContext | null {
  let at = null as ChoiceContext | null;
  runSchedule(
    target,
    {
      choose(ctx) {
        if (ctx.depth < prefix.length) return prefix[ctx.depth].chosen;
        at = ctx;
        return null;
      },
    },
    { maxSteps, recordTrace: false, brief: true },
  );
  return at;
}

/**
 * The prefixes a depth-first search is split into, in DFS order: every allowed choice at each of
 * the first choice points. A prefix whose schedules end before the next level is kept as it is.
 */
export function enumeratePrefixes(target: ExploreTarget, o: ResolvedOptions, want: number): PrefixNode[][] {
  let level: PrefixNode[][] = [[]];
  for (let depth = 0; depth < MAX_PREFIX_DEPTH && level.length < want; depth++) {
    const next: PrefixNode[][] = [];
    let grew = false;
    for (const p of level) {
      const ctx = probe(target, p, o.maxSteps);
      if (ctx === null) {
        next.push(p);
        continue;
      }
      grew = true;
      for (let j = 0; j < ctx.runnable.length; j++) {
        const preempts = ctx.lastIndex >= 0 && j !== ctx.lastIndex;
        if (preempts && ctx.preemptions + 1 > o.preemptionBound) continue;
        next.push([
          ...p,
          {
            tids: ctx.runnable.map((t) => t.id),
            chosen: j,
            preemptionsBefore: ctx.preemptions,
            lastIndex: ctx.lastIndex,
          },
        ]);
      }
    }
    level = next;
    if (!grew) break;
  }
  return level;
}

/** The search of the subtree under `prefix`, with the configured reduction. */
export function subtreeStrategy(o: ResolvedOptions, prefix: PrefixNode[], states?: StateStats): Strategy {
  if (o.por && o.reduction === 'dpor')
    return new DporStrategy(o.preemptionBound, prefix, o.stateCache, states);
  const data: DfsNodeData[] = prefix.map((n) => ({ ...n, done: [n.chosen], sleep: [] }));
  return new DfsStrategy(o.preemptionBound, o.por, data);
}

/** Runs this shard's part of the search (budgets count this shard's schedules). */
export function searchShard(
  target: ExploreTarget,
  o: ResolvedOptions,
  shard: Shard,
  cfg: Omit<SearchConfig, 'startIndex' | 'endIndex'>,
  /** Where a depth-first search counts the states it hashed and pruned. */
  states?: StateStats,
): SearchResult {
  if (o.strategy !== 'dfs') {
    if (!Number.isFinite(o.schedules))
      throw new TypeError('a random or pct search needs a schedule budget to be split into shards');
    const start = Math.floor((shard.index * o.schedules) / shard.count);
    const end = Math.floor(((shard.index + 1) * o.schedules) / shard.count);
    let steps: number | undefined;
    if (o.strategy === 'pct' && start > 0) {
      // Learn k as the whole search does, from its first schedules.
      const cal = new PctStrategy(o.seed, o.pctDepth, o.preemptionBound);
      searchLoop(target, cal, { ...cfg, startIndex: 0, endIndex: Math.min(CALIBRATION_RUNS, start) });
      steps = cal.estimatedSteps;
    }
    const strategy =
      o.strategy === 'pct'
        ? new PctStrategy(o.seed, o.pctDepth, o.preemptionBound, steps)
        : new RandomStrategy(o.seed, o.preemptionBound);
    return searchLoop(target, strategy, { ...cfg, startIndex: start, endIndex: end });
  }
  const prefixes = enumeratePrefixes(target, o, PREFIXES_PER_SHARD * shard.count);
  const mine = prefixes.filter((_, k) => k % shard.count === shard.index);
  return searchSubtrees(target, o, mine, cfg, states);
}

/**
 * Searches the subtrees under `prefixes` one after the other, in order, as one search: budgets
 * count the schedules of all of them, and the first violation ends it. What a split search over
 * worker threads reports is what this reports for the same prefixes.
 */
export function searchSubtrees(
  target: ExploreTarget,
  o: ResolvedOptions,
  prefixes: readonly PrefixNode[][],
  cfg: Omit<SearchConfig, 'startIndex' | 'endIndex'>,
  states?: StateStats,
): SearchResult {
  let schedules = 0;
  let exhausted = true;
  let last: SearchResult['last'] = null;
  let lastIndex = -1;
  for (const prefix of prefixes) {
    const left = o.schedules - schedules;
    if (left <= 0 || performance.now() >= cfg.deadline) {
      exhausted = false;
      break;
    }
    const before = schedules;
    const r = searchLoop(target, subtreeStrategy(o, prefix, states), {
      ...cfg,
      startIndex: 0,
      endIndex: left,
      onSchedule: (i, outcome) => cfg.onSchedule?.(before + i, outcome),
    });
    if (r.found !== null) {
      return {
        ...r,
        found: { ...r.found, index: schedules + r.found.index },
        schedules: schedules + r.schedules,
      };
    }
    schedules += r.schedules;
    if (r.last !== null) {
      last = r.last;
      lastIndex = schedules - 1;
    }
    if (!r.exhausted) {
      exhausted = false;
      break;
    }
  }
  return { found: null, schedules, last, lastIndex, exhausted };
}
