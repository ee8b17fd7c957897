/**
 * A thread scenario (`setup`, `threads`, `final`) as an explorer target. The first create() builds
 * a System and runs the setup sequentially; later ones restore the state setup left (a snapshot,
 * src/lib/snapshot.ts) instead. Each then spawns one scheduler thread per NAME whose steps
 * run through the same kernel paths as `hetmem run`, so the explorer interleaves them inside the
 * kernel (at lock, notifier and seqcount points), not only between steps.
 */
import { Snapshot, SnapshotError } from '../lib/snapshot.ts';
import { checkStep } from '../oracles/index.ts';
import type { ExploreTarget, ExploreWorld } from '../sched/explore/types.ts';
import type { KGen, Violation } from '../sched/types.ts';
import { NotModelled, type OpResult, type ScenarioContext, UserBufferPool } from './context.ts';
import { kernel, type KernelApi } from './kernel.ts';
import { type ParsedScenario, parseScenarioFile } from './parse.ts';
import {
  buildWorld,
  finishStep,
  preloadDriver,
  runStepNow,
  stepFailure,
  stepHandler,
  teardown,
  type StepReport,
} from './runner.ts';
import type { StepT } from './schema.ts';
import { claimSlot, sharedCallbackWatch, type SharedWatch } from './callback_watch.ts';
import { renderDriverIssue, setCallbackWatch } from './driver_module.ts';

/** Scheduling points that take or release a lock (their labels name the lock function). */
const LOCK_POINT = /^(down_(read|write)|up_(read|write)|spin_(un)?lock|mutex_(un)?lock)/;

export interface ScenarioTargetOptions {
  /** Record trace events (for --trace of a replayed schedule). */
  trace?: boolean;
  /**
   * Run `setup` once and start every later schedule from a snapshot of the state it left
   * (src/lib/snapshot.ts) instead of building the system again. Default true; a state the
   * snapshot cannot hold (a thread still running after setup) falls back to rebuilding.
   */
  restore?: boolean;
}

/**
 * One piece of the end of a schedule, after every thread finished: a `final` step, or the
 * teardown. checkFinal() runs them in order and stops at the first that fails; the studio runs
 * them one at a time.
 */
export interface FinalStage {
  section: 'final' | 'teardown';
  /** The step's op, or 'teardown'. */
  label: string;
  /** The step's line in the file (0 for the teardown, and in brief stages). */
  line: number;
  /** Runs it on the world; the violation it makes, if any, is the one checkFinal() reports. */
  run(): { report: StepReport; violation: Violation | null };
}

export interface ScenarioWorld extends ExploreWorld {
  /**
   * The final steps and the teardown, once every thread finished; none when the setup or a
   * thread's step failed (checkFinal() reports that without running them). `brief` reports only
   * what the explorer judges by.
   */
  finalStages(brief: boolean): FinalStage[];
}

/** An ExploreTarget that also remembers the world it built last (for traces and reports). */
export interface ScenarioTarget extends ExploreTarget {
  create(): ScenarioWorld;
  last: ScenarioContext | null;
  /** How many final stages the last world's checkFinal() ran, the failing one included. */
  lastStages: number;
}

interface ThreadFailure {
  thread: string;
  index: number;
  op: string;
  line: number;
  failures: string[];
}

/**
 * A step of a thread with what every schedule says of it, made once per target: the same
 * strings in every schedule, not built again at every step.
 */
interface ThreadStep {
  step: StepT;
  path: (string | number)[];
  line: number;
  /** What the thread does while inside it (a livelock's message). */
  doing: string;
  /** The step, as the driver-callback bound names it. */
  label: string;
}

function threadSteps(parsed: ParsedScenario, name: string, steps: readonly StepT[]): ThreadStep[] {
  return steps.map((step, i) => {
    const path = ['threads', name, i];
    const line = parsed.position(path).line;
    return {
      step,
      path,
      line,
      doing: `in ${step.op} (line ${line})`,
      label: `${name} step ${i + 1} (${step.op}, line ${line})`,
    };
  });
}

function* scenarioThread(
  ctx: ScenarioContext,
  name: string,
  steps: readonly ThreadStep[],
  failed: ThreadFailure[],
  inOp: Map<string, string>,
): KGen {
  const track = `cpu:${name}`;
  for (let i = 0; i < steps.length; i++) {
    const { step, path, line } = steps[i];
    ctx.sys.trace.emit('syscall', step.op, 'B', { step: i }, track);
    inOp.set(name, steps[i].doing);
    ctx.bounds?.enterStep(name, steps[i].label);
    // stepGen(), written out: each of its yields would pass through one more generator, and a
    // step of an explored schedule yields at every scheduling point of its kernel path.
    const handler = stepHandler(step);
    let r: OpResult;
    try {
      if (handler === undefined) throw new NotModelled(`op ${step.op} has no handler`);
      r = yield* handler(ctx, step);
    } catch (e) {
      r = stepFailure(ctx, e, path);
    }
    ctx.bounds?.leaveStep(name);
    inOp.delete(name);
    ctx.sys.trace.emit('syscall', step.op, 'E', { ret: r.ret }, track);
    const failures = finishStep(ctx, step, r);
    if (failures.length > 0) {
      failed.push({ thread: name, index: i, op: step.op, line, failures });
    }
  }
}

/** Builds the target of a parsed thread scenario. */
export function targetFromParsed(
  parsed: ParsedScenario,
  k: KernelApi,
  opts: ScenarioTargetOptions = {},
): ScenarioTarget {
  const s = parsed.scenario;
  const threads = Object.entries(s.threads ?? {}).map(
    ([name, steps]) => [name, threadSteps(parsed, name, steps as StepT[])] as const,
  );
  let restore = opts.restore ?? true;
  /** The world as setup left it, and its snapshot. */
  let base: { ctx: ScenarioContext; snap: Snapshot } | null = null;
  // The steps of every schedule take their user buffers from here (a traced run, whose reports
  // are looked at afterwards, takes new ones).
  const buffers = opts.trace === true ? null : new UserBufferPool();
  const setUp = (): { ctx: ScenarioContext; setupFailure: Violation | null } => {
    if (base !== null && base.snap.valid) {
      base.snap.restore();
      return { ctx: base.ctx, setupFailure: null };
    }
    base = null;
    const ctx = buildWorld(parsed, k, opts.trace ?? false);
    if (opts.trace === true) {
      // Lock acquire and release points as instants on the thread's track.
      ctx.sys.sched.beforeStep.push((t, point) => {
        if (LOCK_POINT.test(point.label))
          ctx.sys.trace.emit('lock', point.label, 'i', undefined, `cpu:${t.name}`);
      });
    }
    let setupFailure: Violation | null = null;
    (s.setup ?? []).forEach((step, i) => {
      if (setupFailure !== null) return;
      const r = runStepNow(ctx, step, 'setup', i, ['setup', i], true);
      if (!r.ok) {
        setupFailure = {
          oracle: 'setup',
          message: `setup step ${i + 1} (${r.op}, line ${r.line}): ${r.failures.join('; ')}`,
        };
      }
    });
    ctx.buffers = buffers;
    if (restore && setupFailure === null) {
      try {
        base = { ctx, snap: new Snapshot([ctx], buffers === null ? [parsed, k] : [parsed, k, buffers]) };
      } catch (e) {
        if (!(e instanceof SnapshotError)) throw e;
        restore = false;
      }
    }
    return { ctx, setupFailure };
  };
  const target: ScenarioTarget = {
    last: null,
    lastStages: 0,
    create(): ScenarioWorld {
      const { ctx, setupFailure } = setUp();
      buffers?.reset();
      target.last = ctx;
      target.lastStages = 0;
      const failed: ThreadFailure[] = [];
      // Threads inside an operation: page counts and iommufd accounting hold only between
      // operations (a kernel path may drop a reference before it installs the entry it stands
      // for), so those oracles run after every step at which no thread is inside one.
      // Each thread inside an operation, with what it is doing (for a livelock's message).
      const inOp = new Map<string, string>();
      const scenarioThreads = new Set<unknown>();
      if (setupFailure === null) {
        for (const [name, steps] of threads) {
          scenarioThreads.add(ctx.sys.sched.spawn(name, scenarioThread(ctx, name, steps, failed, inOp)));
        }
      }
      const quiescent = (): boolean =>
        inOp.size === 0 && ctx.sys.sched.threads.every((t) => t.done || scenarioThreads.has(t));
      const finalStages = (brief: boolean): FinalStage[] => {
        if (setupFailure !== null || failed.length > 0) return [];
        const stages: FinalStage[] = (s.final ?? []).map((step, i) => ({
          section: 'final',
          label: step.op,
          line: brief ? 0 : parsed.position(['final', i]).line,
          run() {
            const r = runStepNow(ctx, step, 'final', i, ['final', i], brief);
            if (r.ok) return { report: r, violation: null };
            // A `check` step that fails reports the oracle that fired, as teardown does.
            const m = r.op === 'check' ? /^oracle ([^:]+): /.exec(r.failures[0]) : null;
            return {
              report: r,
              violation: {
                oracle: m?.[1] ?? 'expect',
                message: `final step ${i + 1} (${r.op}, line ${r.line}): ${r.failures.join('; ')}`,
              },
            };
          },
        }));
        stages.push({
          section: 'teardown',
          label: 'teardown',
          line: 0,
          run() {
            const td = teardown(ctx, brief);
            if (td.ok) return { report: td, violation: null };
            const m = /^oracle ([^:]+): (.*)$/.exec(td.failures[0]);
            return {
              report: td,
              violation:
                m !== null
                  ? { oracle: m[1], message: m[2] }
                  : { oracle: 'teardown', message: td.failures[0] },
            };
          },
        });
        return stages;
      };
      return {
        sched: ctx.sys.sched,
        // Mirror coherence, device references and lock rules after every step, so a violation is
        // reported at the step that caused it; the full oracle set runs in checkFinal.
        checkStep: () => (setupFailure === null ? checkStep(ctx.sys, quiescent()) : null),
        finalStages,
        explainLivelock: (steps) => callbackLivelock(ctx, steps),
        threadDoing: (t) => (scenarioThreads.has(t) ? (inOp.get(t.name) ?? null) : null),
        checkFinal(): Violation | null {
          if (setupFailure !== null) return setupFailure;
          if (failed.length > 0) {
            const f = failed[0];
            return {
              oracle: 'expect',
              thread: f.thread,
              message: `${f.thread} step ${f.index + 1} (${f.op}, line ${f.line}): ${f.failures.join('; ')}`,
            };
          }
          for (const stage of finalStages(true)) {
            target.lastStages++;
            const v = stage.run().violation;
            if (v !== null) return v;
          }
          return null;
        },
      };
    },
  };
  return target;
}

/** The oracle of a driver callback stopped at its bound: not a finding, the driver module misbehaves. */
export const CALLBACK_BOUND_ORACLE = 'driver-callback';

/**
 * A schedule that ran out of steps while a driver callback had made at least half of them in one
 * call: that callback loops (yielding, so the watchdog sees it progress). Reported as the
 * callback's own error, as `hetmem run` reports it at the yield bound.
 */
function callbackLivelock(ctx: ScenarioContext, steps: number): Violation | null {
  const call = ctx.bounds?.busiest(Math.ceil(steps / 2)) ?? null;
  if (call === null) return null;
  return {
    oracle: CALLBACK_BOUND_ORACLE,
    message: renderDriverIssue({
      code: 'callback_yield_bound',
      module: call.module,
      path: call.path,
      yields: call.yields,
      ...(call.step !== '' ? { step: call.step } : {}),
    }),
  };
}

export interface ScenarioTargetArgs {
  file: string;
  trace?: boolean;
  /** The CLI watchdog's shared memory: in a worker thread, its driver callbacks are watched there. */
  watch?: SharedWatch;
  restore?: boolean;
}

/**
 * Worker-descriptor entry: `{ module: <this file>, exportName: 'scenarioTarget', args: { file } }`.
 * The kernel modules must already be loaded in the thread (loadKernel()).
 */
export function scenarioTarget(args: ScenarioTargetArgs): ScenarioTarget {
  const target = targetFromParsed(parseScenarioFile(args.file), kernel(), {
    trace: args.trace ?? false,
    restore: args.restore ?? true,
  });
  if (args.watch !== undefined) {
    const slot = claimSlot(args.watch);
    if (slot > 0) {
      setCallbackWatch(
        sharedCallbackWatch(args.watch, slot, () => target.last?.sys.sched.current?.name ?? '?'),
      );
    }
  }
  return target;
}

/** The descriptor's prepare step: imports the scenario's driver module before scenarioTarget(). */
export async function prepareScenarioTarget(args: ScenarioTargetArgs): Promise<void> {
  await preloadDriver(parseScenarioFile(args.file));
}
