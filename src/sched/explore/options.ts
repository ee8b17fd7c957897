/** Defaults and validation of ExploreOptions, and the strategy they select. */
import { BoundedDporSearch } from './bounded.ts';
import { DfsStrategy } from './dfs.ts';
import { DporStrategy } from './dpor.ts';
import { PctStrategy } from './pct.ts';
import { RandomStrategy } from './random.ts';
import { DEFAULT_MAX_STEPS } from './run.ts';
import type { StateStats } from './state_cache.ts';
import type { ExploreOptions, Strategy, StrategyName } from './types.ts';

/** Schedules tried by random and PCT when the caller gives no budget at all. */
export const DEFAULT_SCHEDULES = 1000;
export const DEFAULT_DFS_PREEMPTION_BOUND = 2;
/** The smallest preemption bound at which DPOR races the unbounded search (bounded.ts). */
export const RACE_FROM_BOUND = 3;

/** Options after defaults and validation. */
export interface ResolvedOptions {
  strategy: StrategyName;
  seed: number;
  schedules: number;
  ms: number;
  pctDepth: number;
  preemptionBound: number;
  maxSteps: number;
  por: boolean;
  reduction: 'dpor' | 'sleep';
  stateCache: boolean;
  workers: number;
  shard: { index: number; count: number } | null;
  minimize: boolean;
}

export function resolveOptions(opts: ExploreOptions): ResolvedOptions {
  const strategy = opts.strategy;
  if (strategy !== 'random' && strategy !== 'pct' && strategy !== 'dfs') {
    throw new TypeError(`unknown strategy '${String(strategy)}': expected random, pct or dfs`);
  }
  const seed = opts.seed ?? 1;
  if (!Number.isSafeInteger(seed)) throw new TypeError(`seed must be an integer, got ${seed}`);
  const budget = opts.budget ?? {};
  const positive = (name: string, v: number | undefined, integer: boolean): void => {
    if (v !== undefined && (!(v >= 0) || (integer && !Number.isInteger(v) && v !== Infinity))) {
      throw new TypeError(`${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${v}`);
    }
  };
  positive('budget.schedules', budget.schedules, true);
  positive('budget.ms', budget.ms, false);
  positive('preemptionBound', opts.preemptionBound, true);
  positive('maxStepsPerSchedule', opts.maxStepsPerSchedule, true);
  positive('pctDepth', opts.pctDepth, true);
  positive('workers', opts.workers, true);
  if (opts.reduction !== undefined && opts.reduction !== 'dpor' && opts.reduction !== 'sleep') {
    throw new TypeError(`unknown reduction '${String(opts.reduction)}': expected dpor or sleep`);
  }
  const workers = Math.max(1, opts.workers ?? 1);
  const shard = opts.shard ?? null;
  if (
    shard !== null &&
    !(
      Number.isSafeInteger(shard.count) &&
      Number.isSafeInteger(shard.index) &&
      shard.count >= 1 &&
      shard.index >= 0 &&
      shard.index < shard.count
    )
  ) {
    throw new TypeError(`shard must have 0 <= index < count, got ${shard.index} of ${shard.count}`);
  }
  const unbudgeted = budget.schedules === undefined && budget.ms === undefined;
  return {
    strategy,
    seed,
    schedules: budget.schedules ?? (unbudgeted && strategy !== 'dfs' ? DEFAULT_SCHEDULES : Infinity),
    ms: budget.ms ?? Infinity,
    pctDepth: Math.max(1, opts.pctDepth ?? 3),
    preemptionBound: opts.preemptionBound ?? (strategy === 'dfs' ? DEFAULT_DFS_PREEMPTION_BOUND : Infinity),
    maxSteps: Math.max(1, opts.maxStepsPerSchedule ?? DEFAULT_MAX_STEPS),
    por: opts.por ?? true,
    reduction: opts.reduction ?? 'dpor',
    stateCache: opts.stateCache ?? true,
    workers,
    shard,
    minimize: opts.minimize ?? true,
  };
}

/** Whether the search `o` selects uses the state cache. */
export function usesStateCache(o: ResolvedOptions): boolean {
  return o.strategy === 'dfs' && o.por && o.stateCache;
}

export function makeStrategy(o: ResolvedOptions, pctSteps?: number, states?: StateStats): Strategy {
  switch (o.strategy) {
    case 'random':
      return new RandomStrategy(o.seed, o.preemptionBound);
    case 'pct':
      return new PctStrategy(o.seed, o.pctDepth, o.preemptionBound, pctSteps);
    case 'dfs':
      if (o.por && o.reduction === 'dpor') {
        // From bound 3 the bounded search races the unbounded one (bounded.ts); below, the
        // bounded one is usually the smaller and the race would about double its cost.
        return Number.isFinite(o.preemptionBound) && o.preemptionBound >= RACE_FROM_BOUND
          ? new BoundedDporSearch(o.preemptionBound, o.stateCache, states)
          : new DporStrategy(o.preemptionBound, [], o.stateCache, states);
      }
      return new DfsStrategy(o.preemptionBound, o.por, [], o.stateCache, states);
  }
}
