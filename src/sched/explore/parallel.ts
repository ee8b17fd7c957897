/**
 * What explore() needs from a runtime that can spread a search over threads. The explorer itself
 * is plain TypeScript and runs anywhere (the studio runs it in a browser, single-threaded); the
 * Node implementation (src/node/explore/) runs workers on node:worker_threads and is injected by
 * the callers that run under Node (the public API in src/index.ts, the CLI).
 */
import type { CoverageReport } from './coverage.ts';
import type { ResolvedOptions } from './options.ts';
import type { StateStats } from './state_cache.ts';
import type { ExploreTarget, TargetDescriptor } from './types.ts';

export interface ParallelConfig {
  startIndex: number;
  endIndex: number;
  deadline: number;
  pctSteps: number | undefined;
  onProgress?(done: number): void;
}

export interface ParallelResult {
  found: { index: number; overrides: Map<number, number> } | null;
  /** Schedules run (those above a failure that were already in flight included). */
  schedules: number;
  lastOverrides: Map<number, number> | null;
}

export interface ParallelDfsConfig {
  deadline: number;
  /** Default DEFAULT_SPLIT_LEVELS; the result does not depend on it (tests vary it). */
  splitLevels?: number;
  onProgress?(done: number): void;
}

export interface ParallelDfsResult {
  /** The first failing schedule in DFS order, as its non-default decisions. */
  found: Map<number, number> | null;
  schedules: number;
  exhausted: boolean;
  /** The last schedule counted (for a replay token when nothing failed). */
  lastOverrides: Map<number, number>;
  /** How the work went: schedules the master ran, subtrees handed out, schedules run in all. */
  stats: { masterRuns: number; subtrees: number; ran: number };
}

export interface ParallelDporConfig {
  deadline: number;
  /** How many subtrees to split the search into (at least); default DPOR_SPLIT_PREFIXES. */
  prefixes?: number;
  onProgress?(done: number): void;
}

/**
 * Subtrees a DPOR search over workers is split into (at least; shard.ts enumerates them). It
 * does not depend on the worker count, so neither does the result.
 */
export const DPOR_SPLIT_PREFIXES = 16;

export interface ParallelDporResult {
  /** The first failing schedule, in the order of the subtrees, as its non-default decisions. */
  found: Map<number, number> | null;
  schedules: number;
  exhausted: boolean;
  lastOverrides: Map<number, number>;
  /** The orders of conflicting steps the counted schedules ran (coverage.ts). */
  coverage: Pick<CoverageReport, 'oneOrder' | 'both'>;
  /** States hashed and pruned, summed over the subtrees (each keeps its own cache). */
  states: StateStats;
  /** How the work went: subtrees, schedules run in all (some past a budget's end). */
  stats: { subtrees: number; ran: number };
}

export interface ParallelBackend {
  /** Builds the target a descriptor names, in this thread. */
  loadTarget(d: TargetDescriptor): ExploreTarget;
  /** Random or PCT schedules startIndex..endIndex-1 over workers. */
  search(descriptor: TargetDescriptor, o: ResolvedOptions, cfg: ParallelConfig): ParallelResult;
  /** The whole depth-first search over workers, with the sequential search's result. */
  dfs(
    local: ExploreTarget,
    descriptor: TargetDescriptor,
    o: ResolvedOptions,
    cfg: ParallelDfsConfig,
  ): ParallelDfsResult;
  /**
   * The depth-first search with DPOR, split at its first choice points (shard.ts) into subtrees
   * that workers search, each with its own reduction and state cache; the result is that of
   * searchSubtrees() over the same prefixes in this thread.
   */
  dpor(
    local: ExploreTarget,
    descriptor: TargetDescriptor,
    o: ResolvedOptions,
    cfg: ParallelDporConfig,
  ): ParallelDporResult;
}
