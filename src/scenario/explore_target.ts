/**
 * A thread scenario (`setup`, `threads`, `final`) as an explorer target. Every create() builds a
 * fresh System, runs the setup sequentially, and spawns one scheduler thread per NAME whose steps
 * run through the same kernel paths as `hetmem run`, so the explorer interleaves them inside the
 * kernel (at lock, notifier and seqcount points), not only between steps.
 */
import { checkStep } from '../oracles/index.ts';
import type { ExploreTarget, ExploreWorld } from '../sched/explore/types.ts';
import type { KGen, Violation } from '../sched/types.ts';
import type { ScenarioContext } from './context.ts';
import { kernel, type KernelApi } from './kernel.ts';
import { type ParsedScenario, parseScenarioFile } from './parse.ts';
import { buildWorld, finishStep, preloadDriver, runStepNow, stepGen, teardown } from './runner.ts';
import type { StepT } from './schema.ts';
import { claimSlot, sharedCallbackWatch, type SharedWatch } from './callback_watch.ts';
import { setCallbackWatch } from './driver_module.ts';

/** Scheduling points that take or release a lock (their labels name the lock function). */
const LOCK_POINT = /^(down_(read|write)|up_(read|write)|spin_(un)?lock|mutex_(un)?lock)/;

export interface ScenarioTargetOptions {
  /** Record trace events (for --trace of a replayed schedule). */
  trace?: boolean;
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
  const target: ScenarioTarget = {
    last: null,
    create(): ExploreWorld {
      const ctx = buildWorld(parsed, k, opts.trace ?? false);
      target.last = ctx;
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
  /** The CLI watchdog's shared memory: in a worker thread, its driver callbacks are watched there. */
  watch?: SharedWatch;
}

/**
 * Worker-descriptor entry: `{ module: <this file>, exportName: 'scenarioTarget', args: { file } }`.
 * The kernel modules must already be loaded in the thread (loadKernel()).
 */
export function scenarioTarget(args: ScenarioTargetArgs): ScenarioTarget {
  const target = targetFromParsed(parseScenarioFile(args.file), kernel(), { trace: args.trace ?? false });
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
