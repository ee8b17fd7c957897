/**
 * Public and internal types of the interleaving explorer.
 *
 * The explorer is a stateless model checker: it never snapshots a world, it rebuilds it from
 * scratch through ExploreTarget.create() for every schedule and drives it with a chooser. That
 * keeps kernel code free of any copy/restore duty, at the price of re-running common prefixes.
 */
import type { Scheduler } from '../scheduler.ts';
import type { Thread } from '../thread.ts';
import type { Violation } from '../types.ts';
import type { CoverageReport } from './coverage.ts';
import type { StateStats } from './state_cache.ts';

/** One fresh execution. */
export interface ExploreWorld {
  /** Threads already spawned. */
  sched: Scheduler;
  /** Oracles after each step (optional, may be costly). */
  checkStep?(): Violation | null;
  /** After all threads ended: expectations and teardown oracles. */
  checkFinal(): Violation | null;
  /** Name shown in diagrams and traces; defaults to Thread.name. */
  threadName?(t: Thread): string;
  /**
   * When the step bound ran out after `steps` steps: a violation that says better than
   * 'livelock' what ran for ever (a driver callback that loops), or null.
   */
  explainLivelock?(steps: number): Violation | null;
  /**
   * What thread `t` is in the middle of, for the livelock message (e.g. `in HMM_DMIRROR_READ
   * (line 12)`), or null.
   */
  threadDoing?(t: Thread): string | null;
}

/** Builds worlds; create() must be deterministic (same threads, same steps for the same choices). */
export interface ExploreTarget {
  create(): ExploreWorld;
}

/**
 * A target that can be rebuilt inside a worker thread, where closures cannot travel:
 * `import(module)[exportName](args)` must return an ExploreTarget.
 */
export interface TargetDescriptor {
  /** Absolute path or file URL of a .ts/.js module (loaded through tsx in workers). */
  module: string;
  exportName: string;
  args: unknown;
  /**
   * An async export a worker awaits with `args` before calling the factory (to import() what the
   * factory then needs synchronously, such as a user's driver module).
   */
  prepareExportName?: string;
}

export type StrategyName = 'random' | 'pct' | 'dfs';

export interface ExploreOptions {
  strategy: StrategyName;
  /** Default 1. */
  seed?: number;
  /** Stop at whichever comes first. Default: 1000 schedules for random/pct, unlimited for dfs. */
  budget?: { schedules?: number; ms?: number };
  /** PCT bug depth d, default 3. */
  pctDepth?: number;
  /** Max preemptions per schedule; default unbounded for random/pct, 2 for dfs. */
  preemptionBound?: number;
  /** Livelock bound: exceeding it is a 'livelock' violation. Default 100000. */
  maxStepsPerSchedule?: number;
  /** dfs: partial-order reduction, default true. */
  por?: boolean;
  /**
   * dfs with por: 'dpor' (source-set dynamic partial-order reduction with sleep sets) or 'sleep'
   * (sleep sets alone, only when the search is not bounded). Default 'dpor', which runs in one
   * thread: only 'sleep' and no reduction split a depth-first search over workers.
   */
  reduction?: 'dpor' | 'sleep';
  /**
   * dfs with DPOR: abandon a schedule that reaches a state explored before (state_cache.ts;
   * docs/explorer.md says when that is sound). Default true.
   */
  stateCache?: boolean;
  /** Worker threads (any strategy; the result does not depend on it); default 1. > 1 needs a TargetDescriptor. */
  workers?: number;
  /**
   * Run only part `index` (0-based) of `count` of the search (shard.ts says how it is split);
   * budgets then count this part's schedules. Runs in this thread.
   */
  shard?: { index: number; count: number };
  /** Search for a failing schedule with fewer preemptions once one fails. Default true. */
  minimize?: boolean;
  onProgress?(done: number, total: number | undefined): void;
}

export interface TraceStep {
  thread: string;
  label: string;
}

export interface ExploreViolation {
  oracle: string;
  message: string;
  diagram: string;
  trace: TraceStep[];
  preemptions: number;
}

export interface ExploreResult {
  violation: null | ExploreViolation;
  schedules: number;
  exhausted: boolean;
  replay: string;
  elapsedMs: number;
  /**
   * The conflicting pairs of steps the search ran, and in which orders; absent when the schedules
   * ran on workers.
   */
  coverage?: CoverageReport;
  /** States hashed and schedules pruned at a state explored before (dfs with DPOR and the state cache). */
  states?: StateStats;
}

/** What a strategy sees at a choice point (more than one runnable thread). */
export interface ChoiceContext {
  readonly runnable: readonly Thread[];
  /** The thread that took the previous step, or null before the first step. */
  readonly last: Thread | null;
  /** Index of `last` in `runnable`, or -1 when it cannot run (blocked, done, none yet). */
  readonly lastIndex: number;
  /** Steps taken so far in this schedule. */
  readonly steps: number;
  /** Preemptions so far in this schedule. */
  readonly preemptions: number;
  /** Choice points passed before this one. */
  readonly depth: number;
}

/**
 * A search strategy. The engine calls begin() before each schedule, choose() at every choice point,
 * beforeStep() before every step (choice or not), and end() when the schedule is over.
 */
export interface Strategy {
  readonly name: StrategyName;
  /** Prepares schedule number `index`; false when there is nothing left to explore. */
  begin(index: number): boolean;
  /** Index into ctx.runnable, or null to abandon this schedule as redundant. */
  choose(ctx: ChoiceContext): number | null;
  /** Sees every step before it runs; false abandons the schedule as redundant. */
  beforeStep?(t: Thread, steps: number): boolean;
  /**
   * For a strategy that works out the races of each step (DPOR): the earlier steps of this
   * schedule (by number) that the step beforeStep() just passed races with, or null for a step it
   * replayed from the previous schedule of its search (whose races it reported then). Coverage
   * then records these instead of working them out a second time.
   */
  stepRaces?(): readonly number[] | null;
  end?(outcome: RunOutcome): void;
  /** True once the whole (bounded) space was covered. */
  exhausted(): boolean;
  /** Whether a violation in this schedule ends the search; default yes. */
  accepts?(outcome: RunOutcome): boolean;
  /**
   * Which of the searches this strategy interleaves runs the schedule begin() prepared (0 when it
   * runs one): a schedule shares its first steps with the previous one of the same search.
   */
  lane?(): number;
}

/** One decision: the index chosen among the runnable threads, and the index the default chooser would pick. */
export interface Decision {
  index: number;
  fallback: number;
  /** Thread id chosen, for diagnostics and minimisation. */
  tid: number;
}

/** The raw outcome of one schedule. */
export interface RunOutcome {
  violation: { oracle: string; message: string } | null;
  decisions: Decision[];
  preemptions: number;
  steps: number;
  /** Abandoned by the strategy (sleep-set blocked, preemption bound): not a full execution. */
  pruned: boolean;
  /** Present when the run was asked to record it. */
  trace?: TraceStep[];
  /** Thread names by column (thread id order), present with the trace. */
  threadNames?: string[];
  /** Column (thread index) of each trace step, present with the trace. */
  traceColumns?: number[];
}
