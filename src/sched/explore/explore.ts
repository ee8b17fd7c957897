/**
 * explore() and replay(): the public entry points of the interleaving explorer.
 *
 * Every schedule rebuilds the world through the target's factory. The search strategies only
 * decide; runSchedule judges. Once a schedule fails, it is minimised to the fewest preemptions,
 * then rerun once more with tracing on to produce the trace, the diagram and the replay token, so
 * the report is exactly what replay() of that token prints.
 */
import { Coverage } from './coverage.ts';
import { renderDiagram } from './diagram.ts';
import { minimizeSchedule } from './minimize.ts';
import { makeStrategy, resolveOptions, usesStateCache, type ResolvedOptions } from './options.ts';
import { CALIBRATION_RUNS, PctStrategy } from './pct.ts';
import { decodeToken, encodeToken } from './replay.ts';
import { DEFAULT_MAX_STEPS, followOverrides, overridesOf, runSchedule } from './run.ts';
import { searchLoop } from './search.ts';
import { searchShard } from './shard.ts';
import { emptyStateStats } from './state_cache.ts';
import type {
  ExploreOptions,
  ExploreResult,
  ExploreTarget,
  ExploreViolation,
  RunOutcome,
  TargetDescriptor,
} from './types.ts';
import type { ParallelBackend } from './parallel.ts';

function isDescriptor(x: ExploreTarget | TargetDescriptor): x is TargetDescriptor {
  return typeof (x as Partial<TargetDescriptor>).module === 'string';
}

function tokenFor(
  o: Pick<ResolvedOptions, 'strategy' | 'seed' | 'maxSteps'>,
  overrides: Map<number, number>,
): string {
  return encodeToken(
    o.strategy,
    o.seed,
    overrides,
    o.maxSteps === DEFAULT_MAX_STEPS ? undefined : o.maxSteps,
  );
}

/** Reruns a schedule with tracing and turns it into the reported violation. */
function report(
  target: ExploreTarget,
  overrides: Map<number, number>,
  maxSteps: number,
): { outcome: RunOutcome; violation: ExploreViolation | null } {
  const outcome = runSchedule(target, followOverrides(overrides), { maxSteps, recordTrace: true });
  const v = outcome.violation;
  if (v === null) return { outcome, violation: null };
  const trace = outcome.trace ?? [];
  const diagram = renderDiagram({
    threadNames: outcome.threadNames ?? [],
    labels: trace.map((s) => s.label),
    columns: outcome.traceColumns ?? [],
    violation: v,
  });
  return {
    outcome,
    violation: { oracle: v.oracle, message: v.message, diagram, trace, preemptions: outcome.preemptions },
  };
}

function localTarget(target: ExploreTarget | TargetDescriptor, backend: ParallelBackend | undefined) {
  if (!isDescriptor(target)) return target;
  if (backend === undefined) throw new TypeError('a TargetDescriptor needs a runtime that can load modules');
  return backend.loadTarget(target);
}

/**
 * Explores the interleavings of `target` and reports the first failing schedule, minimised.
 * `backend` runs workers (options.workers > 1); without one the search runs in this thread.
 */
export function explore(
  target: ExploreTarget | TargetDescriptor,
  opts: ExploreOptions,
  backend?: ParallelBackend,
): ExploreResult {
  const start = performance.now();
  const o = resolveOptions(opts);
  if (o.workers > 1 && !isDescriptor(target)) {
    throw new TypeError('workers > 1 needs a TargetDescriptor: a closure cannot be sent to a worker thread');
  }
  if (o.workers > 1 && backend === undefined) {
    throw new TypeError('workers > 1 needs a runtime with threads (the Node entry points provide one)');
  }
  const local = localTarget(target, backend);
  const deadline = start + o.ms;
  const total = Number.isFinite(o.schedules) ? o.schedules : undefined;
  const states = emptyStateStats();
  /** States hashed and pruned by workers (each subtree keeps its own cache). */
  let workerStates: typeof states | null = null;
  const strategy = makeStrategy(o, undefined, states);

  let found: { index: number; outcome: RunOutcome } | null = null;
  let schedules = 0;
  let exhausted = false;
  let lastOverrides = new Map<number, number>();
  const coverage = new Coverage();
  /** Whether every schedule ran here (workers do not report coverage). */
  let ranHere = true;

  if (o.shard !== null) {
    const r = searchShard(
      local,
      o,
      o.shard,
      {
        maxSteps: o.maxSteps,
        deadline,
        onSchedule: (i) => opts.onProgress?.(i + 1, total),
        coverage,
      },
      states,
    );
    found = r.found;
    schedules = r.schedules;
    exhausted = r.exhausted && o.strategy === 'dfs';
    if (r.last !== null) lastOverrides = overridesOf(r.last.decisions);
    return finish();
  }

  if (
    backend !== undefined &&
    o.workers > 1 &&
    o.strategy === 'dfs' &&
    o.por &&
    o.reduction === 'dpor' &&
    isDescriptor(target) &&
    o.schedules > 0
  ) {
    const p = backend.dpor(local, target, o, {
      deadline,
      onProgress: (done) => opts.onProgress?.(done, total),
    });
    schedules = p.schedules;
    exhausted = p.exhausted;
    lastOverrides = p.lastOverrides;
    coverage.addReport(p.coverage);
    workerStates = p.states;
    if (p.found !== null) {
      const outcome = runSchedule(local, followOverrides(p.found), {
        maxSteps: o.maxSteps,
        recordTrace: false,
      });
      found = { index: schedules - 1, outcome };
    }
    return finish();
  }

  if (
    backend !== undefined &&
    o.workers > 1 &&
    o.strategy === 'dfs' &&
    // The state cache learns from the states the schedules reached: it does not split ahead of
    // time (DPOR, above, splits at its first choice points instead).
    (!o.por || (o.reduction === 'sleep' && !o.stateCache)) &&
    isDescriptor(target) &&
    o.schedules > 0
  ) {
    ranHere = false;
    const p = backend.dfs(local, target, o, {
      deadline,
      onProgress: (done) => opts.onProgress?.(done, total),
    });
    schedules = p.schedules;
    exhausted = p.exhausted;
    lastOverrides = p.lastOverrides;
    if (p.found !== null) {
      // Rerun here: minimisation needs the outcome, and the report must not depend on the workers.
      const outcome = runSchedule(local, followOverrides(p.found), {
        maxSteps: o.maxSteps,
        recordTrace: false,
      });
      found = { index: schedules - 1, outcome };
    }
    return finish();
  }

  // PCT learns k sequentially first; the rest (and everything for random) may run in parallel.
  const parallel = backend !== undefined && o.workers > 1 && o.strategy !== 'dfs' && isDescriptor(target);
  const sequentialEnd = parallel
    ? Math.min(o.schedules, o.strategy === 'pct' ? CALIBRATION_RUNS : 0)
    : o.schedules;
  const r = searchLoop(local, strategy, {
    maxSteps: o.maxSteps,
    startIndex: 0,
    endIndex: sequentialEnd,
    deadline,
    onSchedule: (i) => opts.onProgress?.(i + 1, total),
    coverage,
  });
  found = r.found;
  schedules = r.schedules;
  exhausted = r.exhausted && o.strategy === 'dfs';
  if (r.last !== null) lastOverrides = overridesOf(r.last.decisions);

  if (found === null && parallel && sequentialEnd < o.schedules && performance.now() < deadline) {
    const pctSteps = strategy instanceof PctStrategy ? strategy.estimatedSteps : undefined;
    ranHere = false;
    const p = backend.search(target, o, {
      startIndex: sequentialEnd,
      endIndex: o.schedules,
      deadline,
      pctSteps,
      onProgress: (done) => opts.onProgress?.(sequentialEnd + done, total),
    });
    schedules += p.schedules;
    if (p.lastOverrides !== null) lastOverrides = p.lastOverrides;
    if (p.found !== null) {
      // Rerun here: the report must not depend on which worker found it.
      const outcome = runSchedule(local, followOverrides(p.found.overrides), {
        maxSteps: o.maxSteps,
        recordTrace: false,
      });
      found = { index: p.found.index, outcome };
      schedules = p.found.index + 1;
    }
  }

  return finish();

  function finish(): ExploreResult {
    const stateStats =
      workerStates !== null && usesStateCache(o)
        ? { states: workerStates }
        : ranHere && usesStateCache(o)
          ? { states }
          : {};
    if (found === null || found.outcome.violation === null) {
      return {
        violation: null,
        schedules,
        exhausted,
        replay: tokenFor(o, lastOverrides),
        elapsedMs: performance.now() - start,
        ...(ranHere ? { coverage: coverage.report() } : {}),
        ...stateStats,
      };
    }

    let overrides = overridesOf(found.outcome.decisions);
    if (o.minimize && found.outcome.preemptions > 0) {
      overrides = minimizeSchedule(
        local,
        { oracle: found.outcome.violation.oracle, overrides, preemptions: found.outcome.preemptions },
        { maxSteps: o.maxSteps },
      ).overrides;
    }
    const { violation } = report(local, overrides, o.maxSteps);
    if (violation === null)
      throw new Error('internal: a failing schedule passed when rerun (is the target deterministic?)');
    return {
      violation,
      schedules,
      exhausted: false,
      replay: tokenFor(o, overrides),
      elapsedMs: performance.now() - start,
      ...(ranHere ? { coverage: coverage.report() } : {}),
      ...stateStats,
    };
  }
}

/** Reruns the schedule a replay token names; the result carries the same violation and diagram. */
export function replay(
  target: ExploreTarget | TargetDescriptor,
  token: string,
  backend?: ParallelBackend,
): ExploreResult {
  const start = performance.now();
  const t = decodeToken(token);
  const local = localTarget(target, backend);
  const maxSteps = t.maxSteps ?? DEFAULT_MAX_STEPS;
  const { violation } = report(local, t.overrides, maxSteps);
  return {
    violation,
    schedules: 1,
    exhausted: false,
    replay: tokenFor({ strategy: t.strategy, seed: t.seed, maxSteps }, t.overrides),
    elapsedMs: performance.now() - start,
  };
}
