/**
 * What explore() needs from a runtime that can spread a search over threads. The explorer itself
 * is plain TypeScript and runs anywhere (the studio runs it in a browser, single-threaded); the
 * Node implementation (src/node/explore/) runs workers on node:worker_threads and is injected by
 * the callers that run under Node (the public API in src/index.ts, the CLI).
 */
import type { ResolvedOptions } from './options.ts';
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
}
