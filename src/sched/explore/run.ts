/**
 * Runs one schedule of a target: the single place where threads are stepped and every oracle of
 * the explorer (scheduler violations, per-step and final checks, deadlock, livelock, unexpected
 * exceptions) is consulted, so search, replay and minimisation all judge schedules identically.
 */
import type { Thread } from '../thread.ts';
import type { Coverage } from './coverage.ts';
import type { ChoiceContext, Decision, ExploreTarget, RunOutcome, Strategy, TraceStep } from './types.ts';

export const DEFAULT_MAX_STEPS = 100_000;

/** What the engine needs from whoever decides: a strategy, a replayer, a minimiser variant. */
export type Decider = Pick<Strategy, 'choose' | 'beforeStep' | 'stepRaces'>;

export interface RunConfig {
  maxSteps: number;
  recordTrace: boolean;
  /** Records the conflicting pairs of steps and the orders they ran in. */
  coverage?: Coverage;
  /** The previous schedule of the same search, whose first steps this one may replay. */
  memo?: RunMemo;
  /**
   * Only the verdict counts (Scheduler.brief): the oracle and the step that failed are those of a
   * full run, the message may say less. Searches run brief and report a violation from a full
   * rerun of its schedule. Default false.
   */
  brief?: boolean;
}

/**
 * What a schedule leaves for the next one of its search: the threads it chose and how many of its
 * steps passed the per-step checks. The target is deterministic (the search relies on it), so a
 * schedule that makes the same choices runs the same steps on the same state: up to its first
 * different choice it replays the previous schedule, and the per-step checks of those steps, which
 * passed then, would pass again. They are skipped, and coverage keeps what it learnt of them.
 */
export class RunMemo {
  /** Which of the searches a strategy interleaves (Strategy.lane()). */
  constructor(readonly lane = 0) {}
  /** The thread chosen at each choice point of the previous schedule. */
  tids: number[] = [];
  /** How many of the previous schedule's first steps passed the per-step checks. */
  checked = 0;
}

/**
 * Errors a kernel path is allowed to throw: a KernelError carries a numeric errno. They are outcomes
 * the scenario's expectations judge (through checkFinal), not bugs of the model. Duck-typed because
 * src/sched must not import src/kernel.
 */
function isExpectedError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && typeof (e as { errno?: unknown }).errno === 'number';
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Runs `target` once under `decider`. Never throws for model bugs: they become violations. */
export function runSchedule(target: ExploreTarget, decider: Decider, cfg: RunConfig): RunOutcome {
  const world = target.create();
  const sched = world.sched;
  sched.brief = cfg.brief ?? false;
  const nameOf = (t: Thread): string => (world.threadName !== undefined ? world.threadName(t) : t.name);
  const decisions: Decision[] = [];
  const trace: { tid: number; name: string; label: string }[] | null = cfg.recordTrace ? [] : null;
  let violation: RunOutcome['violation'] = null;
  let steps = 0;
  let preemptions = 0;
  let pruned = false;
  let last: Thread | null = null;

  if (sched.violations.length > 0) violation = { ...sched.violations[0] };
  const coverage = cfg.coverage;
  const memo = cfg.memo;
  // A decider that works out each step's races (DPOR) hands them to coverage.
  const racesOf = decider.stepRaces;
  coverage?.begin(memo?.lane ?? 0, racesOf !== undefined);
  /** Steps that replay the previous schedule's: the choices so far were the same. */
  let replayable = memo === undefined ? 0 : memo.checked;
  /** Steps that passed the per-step checks. */
  let checked = 0;

  while (violation === null) {
    let runnable = sched.runnable();
    if (runnable.length === 0) {
      if (!sched.fireTimers()) break;
      runnable = sched.runnable();
      if (runnable.length === 0) continue;
    }
    let index = 0;
    if (runnable.length > 1) {
      const lastIndex: number = last === null ? -1 : runnable.indexOf(last);
      const ctx: ChoiceContext = { runnable, last, lastIndex, steps, preemptions, depth: decisions.length };
      const chosen = decider.choose(ctx);
      if (chosen === null) {
        pruned = true;
        break;
      }
      if (!Number.isInteger(chosen) || chosen < 0 || chosen >= runnable.length) {
        throw new Error(`chooser picked ${chosen} of ${runnable.length} runnable threads`);
      }
      index = chosen;
      if (lastIndex >= 0 && index !== lastIndex) preemptions++;
      decisions.push({ index, fallback: lastIndex >= 0 ? lastIndex : 0, tid: runnable[index].id });
      if (replayable > steps && memo!.tids[decisions.length - 1] !== runnable[index].id) replayable = steps;
    }
    const t: Thread = runnable[index];
    if (decider.beforeStep !== undefined && !decider.beforeStep(t, steps)) {
      pruned = true;
      break;
    }
    if (trace !== null) trace.push({ tid: t.id, name: nameOf(t), label: t.pending.label });
    const replayed = steps < replayable;
    if (coverage !== undefined) {
      if (replayed) coverage.replayed(t.id, t.pending);
      else
        coverage.step(t.id, nameOf(t), t.pending, racesOf === undefined ? undefined : racesOf.call(decider));
    }
    const seen = sched.violations.length;
    sched.step(t);
    steps++;
    last = t;
    violation = judgeStep(t, seen, nameOf);
    if (violation === null && world.checkStep !== undefined && !replayed) {
      const v = world.checkStep();
      if (v !== null) violation = { oracle: v.oracle, message: v.message };
    }
    if (violation === null) checked = steps;
    if (violation === null && steps >= cfg.maxSteps && sched.live) {
      const running = sched.threads.filter((x) => x.state !== 'done');
      violation = world.explainLivelock?.(steps) ?? {
        oracle: 'livelock',
        message: `${steps} steps and still not finished: ${running
          .map((x) => {
            const doing = world.threadDoing?.(x) ?? null;
            return `${nameOf(x)}${doing !== null ? ` ${doing}` : ''} at ${x.pending.label}`;
          })
          .join(', ')}`,
      };
    }
  }

  if (violation === null && !pruned) {
    // Threads idle for work (a kthread waiting to be given some or stopped) are not a hang: the
    // final checks tear the world down, and whoever owns them stops them then.
    const blocked = sched.blockedThreads().filter((b) => b.waitingOn?.idle !== true);
    if (blocked.length > 0) {
      violation = {
        oracle: 'deadlock',
        message: `every thread waits: ${blocked
          .map((b) => `${nameOf(b)} waits on ${b.waitingOn?.name ?? '?'} (${b.pending.label})`)
          .join('; ')}`,
      };
    } else {
      const v = world.checkFinal();
      if (v !== null) violation = { oracle: v.oracle, message: v.message };
    }
  }

  if (memo !== undefined) {
    memo.tids = decisions.map((d) => d.tid);
    memo.checked = checked;
  }
  const out: RunOutcome = { violation, decisions, preemptions, steps, pruned };
  if (trace !== null) {
    const ids = new Set<number>(sched.threads.map((x) => x.id));
    const names = new Map<number, string>(sched.threads.map((x) => [x.id, nameOf(x)]));
    for (const s of trace) {
      ids.add(s.tid);
      if (!names.has(s.tid)) names.set(s.tid, s.name);
    }
    const order = [...ids].sort((a, b) => a - b);
    const column = new Map(order.map((id, i) => [id, i]));
    out.trace = trace.map((s): TraceStep => ({ thread: s.name, label: s.label }));
    out.traceColumns = trace.map((s) => column.get(s.tid)!);
    out.threadNames = order.map((id) => names.get(id)!);
  }
  return out;

  function judgeStep(t: Thread, seen: number, name: (t: Thread) => string): RunOutcome['violation'] {
    if (sched.violations.length > seen) {
      const v = sched.violations[seen];
      return { oracle: v.oracle, message: v.message };
    }
    if (t.error !== undefined && !isExpectedError(t.error)) {
      return { oracle: 'exception', message: `${name(t)} threw: ${errorMessage(t.error)}` };
    }
    return null;
  }
}

/**
 * Follows a schedule given as its non-default decisions (choice depth -> runnable index) and takes
 * the default everywhere else: keep running the last thread if it can, else the first runnable.
 */
export function followOverrides(overrides: ReadonlyMap<number, number>): Decider {
  return {
    choose(ctx) {
      const i = overrides.get(ctx.depth) ?? (ctx.lastIndex >= 0 ? ctx.lastIndex : 0);
      if (i >= ctx.runnable.length) {
        throw new Error(
          `replay diverged at choice ${ctx.depth}: index ${i} but only ${ctx.runnable.length} threads can run`,
        );
      }
      return i;
    },
  };
}

/** The non-default decisions of a run: all a replay needs. */
export function overridesOf(decisions: readonly Decision[]): Map<number, number> {
  const m = new Map<number, number>();
  decisions.forEach((d, depth) => {
    if (d.index !== d.fallback) m.set(depth, d.index);
  });
  return m;
}
