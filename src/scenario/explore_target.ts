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
import type { ScenarioContext } from './context.ts';
import { kernel, type KernelApi } from './kernel.ts';
import { type ParsedScenario, parseScenarioFile } from './parse.ts';
import { buildWorld, finishStep, preloadDriver, runStepNow, stepGen, teardown } from './runner.ts';
import type { StepT } from './schema.ts';

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

/** An ExploreTarget that also remembers the world it built last (for traces and reports). */
export interface ScenarioTarget extends ExploreTarget {
  last: ScenarioContext | null;
}

interface ThreadFailure {
  thread: string;
  index: number;
  op: string;
  line: number;
  failures: string[];
}

function* scenarioThread(
  ctx: ScenarioContext,
  name: string,
  steps: readonly StepT[],
  failed: ThreadFailure[],
  inOp: Set<string>,
): KGen {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const path = ['threads', name, i];
    ctx.sys.trace.emit('syscall', step.op, 'B', { step: i }, `cpu:${name}`);
    inOp.add(name);
    const r = yield* stepGen(ctx, step, path);
    inOp.delete(name);
    ctx.sys.trace.emit('syscall', step.op, 'E', { ret: r.ret }, `cpu:${name}`);
    const failures = finishStep(ctx, step, r);
    if (failures.length > 0) {
      failed.push({ thread: name, index: i, op: step.op, line: ctx.parsed.position(path).line, failures });
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
  let restore = opts.restore ?? true;
  /** The world as setup left it, and its snapshot. */
  let base: { ctx: ScenarioContext; snap: Snapshot } | null = null;
  const setUp = (): { ctx: ScenarioContext; setupFailure: Violation | null } => {
    if (base !== null && base.snap.valid) {
      base.snap.restore();
      return { ctx: base.ctx, setupFailure: null };
    }
    base = null;
    const ctx = buildWorld(parsed, k, opts.trace ?? false);
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
    if (restore && setupFailure === null) {
      try {
        base = { ctx, snap: new Snapshot([ctx], [parsed, k]) };
      } catch (e) {
        if (!(e instanceof SnapshotError)) throw e;
        restore = false;
      }
    }
    return { ctx, setupFailure };
  };
  const target: ScenarioTarget = {
    last: null,
    create(): ExploreWorld {
      const { ctx, setupFailure } = setUp();
      target.last = ctx;
      const failed: ThreadFailure[] = [];
      // Threads inside an operation: page counts and iommufd accounting hold only between
      // operations (a kernel path may drop a reference before it installs the entry it stands
      // for), so those oracles run after every step at which no thread is inside one.
      const inOp = new Set<string>();
      const scenarioThreads = new Set<unknown>();
      if (setupFailure === null) {
        for (const [name, steps] of Object.entries(s.threads ?? {})) {
          scenarioThreads.add(
            ctx.sys.sched.spawn(name, scenarioThread(ctx, name, steps as StepT[], failed, inOp)),
          );
        }
      }
      const quiescent = (): boolean =>
        inOp.size === 0 && ctx.sys.sched.threads.every((t) => t.done || scenarioThreads.has(t));
      return {
        sched: ctx.sys.sched,
        // Mirror coherence, device references and lock rules after every step, so a violation is
        // reported at the step that caused it; the full oracle set runs in checkFinal.
        checkStep: () => (setupFailure === null ? checkStep(ctx.sys, quiescent()) : null),
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
          for (let i = 0; i < (s.final ?? []).length; i++) {
            const r = runStepNow(ctx, s.final![i], 'final', i, ['final', i], true);
            if (!r.ok) {
              // A `check` step that fails reports the oracle that fired, as teardown does.
              const m = r.op === 'check' ? /^oracle ([^:]+): /.exec(r.failures[0]) : null;
              return {
                oracle: m?.[1] ?? 'expect',
                message: `final step ${i + 1} (${r.op}, line ${r.line}): ${r.failures.join('; ')}`,
              };
            }
          }
          const td = teardown(ctx);
          if (!td.ok) {
            const first = td.failures[0];
            const m = /^oracle ([^:]+): (.*)$/.exec(first);
            return m !== null ? { oracle: m[1], message: m[2] } : { oracle: 'teardown', message: first };
          }
          return null;
        },
      };
    },
  };
  return target;
}

export interface ScenarioTargetArgs {
  file: string;
  trace?: boolean;
  restore?: boolean;
}

/**
 * Worker-descriptor entry: `{ module: <this file>, exportName: 'scenarioTarget', args: { file } }`.
 * The kernel modules must already be loaded in the thread (loadKernel()).
 */
export function scenarioTarget(args: ScenarioTargetArgs): ScenarioTarget {
  return targetFromParsed(parseScenarioFile(args.file), kernel(), {
    trace: args.trace ?? false,
    restore: args.restore ?? true,
  });
}

/** The descriptor's prepare step: imports the scenario's driver module before scenarioTarget(). */
export async function prepareScenarioTarget(args: ScenarioTargetArgs): Promise<void> {
  await preloadDriver(parseScenarioFile(args.file));
}
