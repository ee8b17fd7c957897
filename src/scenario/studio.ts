/**
 * The studio's model side: a scenario opened for time travel. Browser-safe (the studio's Web
 * Worker holds one), and tested by node tests against `hetmem run`.
 *
 * Two kinds of session:
 *  - a run: one unit is one scenario step (setup, steps, threads one after the other, final),
 *    and the last unit is the teardown, as `hetmem run` does them;
 *  - a schedule of a thread scenario (a replay token, or what exploring found): one unit is one
 *    scheduler step, chosen exactly as the explorer's replay chooses it; then, once every thread
 *    finished, one unit per `final` step and the teardown, up to the one that fails, as the
 *    explorer's final check runs them (so leaks and device-page references that only the
 *    teardown finds show too).
 *
 * Every state is reached deterministically. A run keeps checkpoints: every CHECKPOINT_EVERY units
 * it captures the world in place (lib/snapshot.ts), so going to step n restores the nearest
 * checkpoint at or before n and runs only the units after it. A world that holds a running
 * thread (a driver's kthread is a generator, which cannot be captured) keeps none, and a schedule
 * is always in the middle of its threads: those replay from the start, as `hetmem explore
 * --replay` does.
 */
import {
  DEFAULT_MAX_STEPS,
  followOverrides,
  overridesOf,
  runSchedule,
  type Decider,
} from '../sched/explore/run.ts';
import { renderDiagram } from '../sched/explore/diagram.ts';
import { minimizeSchedule } from '../sched/explore/minimize.ts';
import { makeStrategy, resolveOptions } from '../sched/explore/options.ts';
import { decodeToken, encodeToken, ReplayTokenError } from '../sched/explore/replay.ts';
import { searchLoop } from '../sched/explore/search.ts';
import type { StrategyName } from '../sched/explore/types.ts';
import type { Thread } from '../sched/thread.ts';
import type { System } from '../kernel/system.ts';
import type { ScenarioContext } from './context.ts';
import {
  type FinalStage,
  targetFromParsed,
  type ScenarioTarget,
  type ScenarioWorld,
} from './explore_target.ts';
import { kernel } from './kernel.ts';
import { type ParsedScenario, parseScenarioText } from './parse.ts';
import { buildWorld, runStepNow, teardown, type StepReport } from './runner.ts';
import type { StepT } from './schema.ts';
import { snapshot, type Snapshot, type SnapshotWindow } from './snapshot.ts';
import { Snapshot as Checkpoint, SnapshotError } from '../lib/snapshot.ts';
import { scenarioFingerprint } from './fingerprint.ts';

/** One unit of a session, as the outline lists it. */
export interface UnitInfo {
  /** 'steps', 'setup', a thread name, 'final' or 'teardown'. */
  section: string;
  /** The step's op (run) or the scheduling point's label (schedule). */
  label: string;
  /** The line of the step in the file (0 when it has none). */
  line: number;
  /** The thread that takes the unit (schedule), or the section. */
  thread: string;
  /** Column in the CPU0 / CPU1 diagram (schedule); 0 for a run; -1 for a schedule's final steps and teardown. */
  column: number;
}

export interface RaceInfo {
  token: string;
  threadNames: string[];
  violation: { oracle: string; message: string } | null;
  diagram: string | null;
  /** The unit after which the violation shows (the last one). */
  at: number;
}

export interface StudioState {
  /** Units done. */
  step: number;
  total: number;
  snapshot: Snapshot;
  /** The report of the last unit done (run sessions), or null. */
  report: StepReport | null;
  /** Reports of every unit done so far (run sessions). */
  reports: StepReport[];
  race: RaceInfo | null;
  /** How the last move got here: from the state at unit `from` (a checkpoint, the start, or where it was), running `replayed` units. */
  travel: { from: number; replayed: number };
  /**
   * Trace events recorded up to this state. A trace exported of it takes that many, however far
   * the model has gone since (an exercise runs the next step out of sight).
   */
  events: number;
}

export interface OpenOptions {
  /** Replay this schedule of a thread scenario. */
  replay?: string;
}

function flatSteps(
  s: ParsedScenario['scenario'],
): { section: string; step: StepT; path: (string | number)[] }[] {
  const out: { section: string; step: StepT; path: (string | number)[] }[] = [];
  (s.setup ?? []).forEach((step, i) => out.push({ section: 'setup', step, path: ['setup', i] }));
  (s.steps ?? []).forEach((step, i) => out.push({ section: 'steps', step, path: ['steps', i] }));
  for (const [name, steps] of Object.entries(s.threads ?? {})) {
    steps.forEach((step, i) => out.push({ section: name, step, path: ['threads', name, i] }));
  }
  (s.final ?? []).forEach((step, i) => out.push({ section: 'final', step, path: ['final', i] }));
  return out;
}

/** Units between two checkpoints of a run (at first; the interval doubles as they grow many). */
export const CHECKPOINT_EVERY = 8;
/** Checkpoints kept at most: past that every other one goes and the interval doubles. */
const MAX_CHECKPOINTS = 32;

interface RunCheckpoint {
  done: number;
  snap: Checkpoint;
  reports: StepReport[];
}

/** A sequential run, one scenario step per unit. */
class RunSession {
  /** Where the windows of pages and frames start (big address spaces). */
  window: SnapshotWindow = {};
  /** How the last goto() got there. */
  travel = { from: 0, replayed: 0 };
  private ctx: ScenarioContext;
  private done = 0;
  private reports: StepReport[] = [];
  private readonly units: ReturnType<typeof flatSteps>;
  private readonly k = kernel();
  /** By `done`, ascending; the first is the world as built. Empty when the world cannot be captured. */
  private checkpoints: RunCheckpoint[] = [];
  private every = CHECKPOINT_EVERY;

  constructor(private readonly parsed: ParsedScenario) {
    this.units = flatSteps(parsed.scenario);
    this.ctx = this.fresh();
  }

  private fresh(): ScenarioContext {
    this.close();
    this.done = 0;
    this.reports = [];
    this.every = CHECKPOINT_EVERY;
    this.ctx = buildWorld(this.parsed, this.k, true);
    this.checkpoint();
    return this.ctx;
  }

  /** Captures the world as it is now, unless it cannot be (then the session only replays). */
  private checkpoint(): void {
    if (this.done > 0 && this.checkpoints.length === 0) return;
    try {
      const snap = new Checkpoint([this.ctx], [this.parsed, this.k], { alongside: true });
      this.checkpoints.push({ done: this.done, snap, reports: [...this.reports] });
    } catch (e) {
      if (!(e instanceof SnapshotError)) throw e;
      this.close();
      return;
    }
    if (this.checkpoints.length > MAX_CHECKPOINTS) {
      const drop = this.checkpoints.filter((_, i) => i % 2 === 1);
      for (const c of drop) c.snap.release();
      this.checkpoints = this.checkpoints.filter((_, i) => i % 2 === 0);
      this.every *= 2;
    }
  }

  /** Releases the checkpoints (they journal every side-table write while armed). */
  close(): void {
    for (const c of this.checkpoints) c.snap.release();
    this.checkpoints = [];
  }

  /** Units between checkpoints now, and how many are kept (for tests and the docs' claims). */
  get checkpointing(): { every: number; kept: number[] } {
    return { every: this.every, kept: this.checkpoints.map((c) => c.done) };
  }

  get total(): number {
    return this.units.length + 1;
  }

  get step(): number {
    return this.done;
  }

  get sys(): System {
    return this.ctx.sys;
  }

  outline(): UnitInfo[] {
    return [
      ...this.units.map((u) => ({
        section: u.section,
        label: u.step.op,
        line: this.parsed.position(u.path).line,
        thread: u.section,
        column: 0,
      })),
      { section: 'teardown', label: 'teardown', line: 0, thread: 'teardown', column: 0 },
    ];
  }

  goto(n: number): void {
    // Another capture (the explorer's, in the same worker) disarmed them: start again.
    if (this.checkpoints.some((c) => !c.snap.valid)) this.fresh();
    const cp = this.checkpoints.findLast((c) => c.done <= n);
    if (cp !== undefined && (n < this.done || cp.done > this.done)) {
      cp.snap.restore();
      this.done = cp.done;
      this.reports = [...cp.reports];
    } else if (n < this.done) {
      this.fresh();
    }
    this.travel = { from: this.done, replayed: Math.max(0, n - this.done) };
    while (this.done < n) {
      const i = this.done;
      const r =
        i < this.units.length
          ? runStepNow(this.ctx, this.units[i].step, this.units[i].section, i, this.units[i].path)
          : teardown(this.ctx);
      this.reports.push(r);
      this.done++;
      const last = this.checkpoints.at(-1);
      if (last !== undefined && this.done >= last.done + this.every) this.checkpoint();
    }
  }

  state(): StudioState {
    return {
      step: this.done,
      total: this.total,
      snapshot: snapshot(this.ctx.sys, this.window),
      report: this.reports.at(-1) ?? null,
      reports: [...this.reports],
      race: null,
      travel: this.travel,
      events: this.ctx.sys.trace.events.length,
    };
  }
}

/** Where runSchedule would stop: the same loop, one scheduler step at a time. */
class ScheduleStepper {
  readonly world: ScenarioWorld;
  private last: Thread | null = null;
  private depth = 0;
  steps = 0;
  finished = false;

  constructor(
    target: ScenarioTarget,
    private readonly decider: Decider,
  ) {
    this.world = target.create();
  }

  /** Takes one scheduler step; false once nothing can run. */
  step(): boolean {
    const sched = this.world.sched;
    let runnable = sched.runnable();
    if (runnable.length === 0) {
      if (!sched.fireTimers()) {
        this.finished = true;
        return false;
      }
      runnable = sched.runnable();
      if (runnable.length === 0) return true;
    }
    let index = 0;
    if (runnable.length > 1) {
      const lastIndex = this.last === null ? -1 : runnable.indexOf(this.last);
      index =
        this.decider.choose({
          runnable,
          last: this.last,
          lastIndex,
          steps: this.steps,
          preemptions: 0,
          depth: this.depth,
        }) ?? 0;
      this.depth++;
    }
    const t = runnable[index];
    sched.step(t);
    this.steps++;
    this.last = t;
    return true;
  }
}

/** One schedule of a thread scenario, one scheduler step per unit. */
class ScheduleSession {
  /** Where the windows of pages and frames start (big address spaces). */
  window: SnapshotWindow = {};
  private stepper: ScheduleStepper;
  private readonly target: ScenarioTarget;
  private readonly overrides: Map<number, number>;
  readonly race: RaceInfo;
  private readonly labels: UnitInfo[];
  /** The final steps and teardown the explorer's final check ran for this schedule. */
  private readonly endUnits: UnitInfo[];
  private stages: FinalStage[] | null = null;
  private endReports: StepReport[] = [];
  /** How the last goto() got there: a schedule replays from its start to go back. */
  private travel = { from: 0, replayed: 0 };

  constructor(parsed: ParsedScenario, token: string, shown: string) {
    this.target = targetFromParsed(parsed, kernel(), { trace: true });
    const t = decodeToken(token);
    this.overrides = t.overrides;
    const maxSteps = t.maxSteps ?? DEFAULT_MAX_STEPS;
    const outcome = runSchedule(this.target, followOverrides(this.overrides), {
      maxSteps,
      recordTrace: true,
    });
    const trace = outcome.trace ?? [];
    const columns = outcome.traceColumns ?? [];
    // checkFinal() ran this many final stages (0 when a step, a deadlock or a livelock ended it).
    const ran = this.target.lastStages;
    const finals = parsed.scenario.final ?? [];
    this.endUnits = Array.from({ length: ran }, (_, i) =>
      i < finals.length
        ? {
            section: 'final',
            label: finals[i].op,
            line: parsed.position(['final', i]).line,
            thread: 'final',
            column: -1,
          }
        : { section: 'teardown', label: 'teardown', line: 0, thread: 'teardown', column: -1 },
    );
    this.labels = trace.map((s, i) => ({
      section: s.thread,
      label: s.label,
      line: 0,
      thread: s.thread,
      column: columns[i] ?? 0,
    }));
    const v = outcome.violation;
    this.race = {
      token: shown,
      threadNames: outcome.threadNames ?? [],
      violation: v === null ? null : { oracle: v.oracle, message: v.message },
      diagram:
        v === null
          ? null
          : renderDiagram({
              threadNames: outcome.threadNames ?? [],
              labels: trace.map((s) => s.label),
              columns,
              violation: v,
            }),
      at: trace.length + ran,
    };
    this.stepper = this.fresh();
  }

  private fresh(): ScheduleStepper {
    this.stages = null;
    this.endReports = [];
    return new ScheduleStepper(this.target, followOverrides(this.overrides));
  }

  get total(): number {
    return this.labels.length + this.endUnits.length;
  }

  get step(): number {
    return this.stepper.steps + this.endReports.length;
  }

  get sys(): System {
    return this.target.last!.sys;
  }

  outline(): UnitInfo[] {
    return [...this.labels, ...this.endUnits];
  }

  private travelFrom(from: number, n: number): void {
    this.travel = { from, replayed: Math.max(0, Math.min(n, this.total) - from) };
  }

  /** Nothing to release: a schedule keeps no checkpoints. */
  close(): void {
    // A schedule is always inside its threads' generators, which cannot be captured.
  }

  goto(n: number): void {
    if (n < this.step) this.stepper = this.fresh();
    const from = this.step;
    this.travelFrom(from, n);
    const scheduled = Math.min(n, this.labels.length);
    while (this.stepper.steps < scheduled && this.stepper.step()) {
      // one scheduler step each
    }
    if (n <= this.labels.length || this.stepper.steps < this.labels.length) return;
    this.stages ??= this.stepper.world.finalStages(false);
    while (this.step < n && this.endReports.length < this.stages.length) {
      this.endReports.push(this.stages[this.endReports.length].run().report);
    }
  }

  state(): StudioState {
    const ctx = this.target.last!;
    return {
      step: this.step,
      total: this.total,
      snapshot: snapshot(ctx.sys, this.window),
      report: this.endReports.at(-1) ?? null,
      reports: [],
      race: this.race,
      travel: this.travel,
      events: ctx.sys.trace.events.length,
    };
  }
}

export type Session = RunSession | ScheduleSession;

/**
 * Goes forward one unit at a time until a unit records a trace event of category `cat` (fault,
 * notifier, migrate, ...), or to the end. Returns whether one was found.
 */
export function nextEvent(s: Session, cat: string): boolean {
  while (s.step < s.total) {
    const seen = s.sys.trace.events.length;
    const at = s.step;
    s.goto(at + 1);
    if (s.step === at) return false;
    if (s.sys.trace.events.slice(seen).some((e) => e.cat === cat)) return true;
  }
  return false;
}

export interface ExploreRequest {
  strategy?: StrategyName;
  seed?: number;
  schedules?: number;
}

/**
 * Explores a thread scenario here, on one thread (the CLI's worker pool is Node's), and returns
 * the replay token of the first failing schedule, minimised, or of the last schedule tried.
 */
export function exploreText(
  parsed: ParsedScenario,
  req: ExploreRequest,
): { token: string; found: boolean; schedules: number } {
  const o = resolveOptions({
    strategy: req.strategy ?? 'pct',
    seed: req.seed ?? 1,
    budget: { schedules: req.schedules ?? 500 },
  });
  const fp = scenarioFingerprint(parsed);
  const target = targetFromParsed(parsed, kernel());
  const r = searchLoop(target, makeStrategy(o), {
    maxSteps: o.maxSteps,
    startIndex: 0,
    endIndex: o.schedules,
    deadline: Infinity,
  });
  const maxSteps = o.maxSteps === DEFAULT_MAX_STEPS ? undefined : o.maxSteps;
  if (r.found === null || r.found.outcome.violation === null) {
    const last = r.last === null ? new Map<number, number>() : overridesOf(r.last.decisions);
    return {
      token: `${encodeToken(o.strategy, o.seed, last, maxSteps)}~${fp}`,
      found: false,
      schedules: r.schedules,
    };
  }
  let overrides = overridesOf(r.found.outcome.decisions);
  if (r.found.outcome.preemptions > 0) {
    overrides = minimizeSchedule(
      target,
      { oracle: r.found.outcome.violation.oracle, overrides, preemptions: r.found.outcome.preemptions },
      { maxSteps: o.maxSteps },
    ).overrides;
  }
  return {
    token: `${encodeToken(o.strategy, o.seed, overrides, maxSteps)}~${fp}`,
    found: true,
    schedules: r.schedules,
  };
}

/** Parses scenario text and opens it (throws ScenarioError, or ReplayTokenError for a bad token). */
export function openSession(text: string, file: string, opts: OpenOptions = {}): Session {
  const parsed = parseScenarioText(text, file);
  if (opts.replay !== undefined && opts.replay !== '') {
    if (parsed.scenario.threads === undefined) {
      throw new TypeError('a replay token needs a scenario with threads');
    }
    const token = opts.replay.trim();
    const [core, fp] = token.split('~');
    const mine = scenarioFingerprint(parsed);
    if (fp !== undefined && fp !== mine) {
      throw new ReplayTokenError(token, 'it was made for another scenario (or another version of this one)');
    }
    return new ScheduleSession(parsed, core, `${core}~${mine}`);
  }
  return new RunSession(parsed);
}

export { parseScenarioText };
