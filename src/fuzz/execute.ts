/**
 * Runs one fuzz program on the model: every step through the same paths as `hetmem run`, every
 * oracle after every step, teardown at the end. Step results are not judged (a random program
 * fails most of its steps, as it should); what counts is an exception out of the model, an oracle
 * violation, a step that runs past the step bound, or a run that differs from itself.
 */
import { stringify } from 'yaml';
import { checkStep } from '../oracles/index.ts';
import { explore } from '../sched/explore/index.ts';
import type { ExploreTarget, ExploreWorld } from '../sched/explore/types.ts';
import type { KGen, Violation } from '../sched/types.ts';
import type { ScenarioContext } from '../scenario/context.ts';
import { kernel } from '../scenario/kernel.ts';
import { type ParsedScenario, ScenarioError } from '../scenario/parse.ts';
import { buildWorld, finishStep, runStepNow, stepGen, teardown } from '../scenario/runner.ts';
import { Scenario, type ScenarioT, Step as StepSchema, type StepT } from '../scenario/schema.ts';
import { DEVICES, type Program, type Step } from './generate.ts';
import { knownFinding } from './known.ts';

/** Scheduler steps one op may take before it counts as a hang (fuzz worlds are tiny). */
export const STEP_BOUND = 200_000;

export type Finding =
  | { kind: 'internal'; message: string; step: number }
  | { kind: 'violation'; oracle: string; message: string; step: number }
  | { kind: 'hang'; message: string; step: number }
  | { kind: 'nondeterminism'; message: string; step: number };

export interface ProgramResult {
  /** The program was not a valid scenario (a value out of the file format's range). */
  rejected: string | null;
  ops: number;
  finding: Finding | null;
  /** What the run reached: op and result class, counters that moved. */
  features: Set<string>;
  /** The run's observable history, to compare two runs of one program. */
  signature: string;
  /** -errno name or null, per executed step (to write expectations into a reproducer). */
  errnos: (string | null)[];
}

/** The scenario document of a program (what a reproducer file holds). */
export function programDocument(
  p: Program,
  name: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    version: 1,
    name,
    ...extra,
    system: p.system,
    devices:
      p.uvm === undefined
        ? DEVICES
        : { ...DEVICES, gpu2: { ...DEVICES.gpu2, config: { ...DEVICES.gpu2.config, ...p.uvm } } },
    processes: p.processes,
  };
  if (p.threads !== undefined) {
    doc.setup = p.steps;
    doc.threads = p.threads;
  } else doc.steps = p.steps;
  return doc;
}

export function programText(p: Program, name = 'fuzz'): string {
  return stringify(programDocument(p, name), { lineWidth: 0, flowCollectionPadding: true });
}

type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * What the schema said of each step and world header, by identity: a mutated program shares all
 * but a step or two with its corpus parent, and one program runs several times (twice in ten,
 * once more to confirm a hang, many times while minimised). The schema is a plain object schema
 * with no rule across members, so checking the parts one by one says what checking the whole
 * document says.
 */
const checkedSteps = new WeakMap<Step, Checked<StepT>>();
const checkedHeaders = new WeakMap<
  object,
  { processes: string[]; uvm: Program['uvm']; checked: Checked<ScenarioT> }
>();

function firstIssue(e: { issues: readonly { message: string }[] }): string {
  return e.issues[0]?.message ?? 'invalid program';
}

function checkedStep(s: Step): Checked<StepT> {
  let c = checkedSteps.get(s);
  if (c === undefined) {
    const r = StepSchema.safeParse(s);
    c = r.success ? { ok: true, value: r.data as StepT } : { ok: false, message: firstIssue(r.error) };
    checkedSteps.set(s, c);
  }
  return c;
}

function checkSteps(steps: readonly Step[]): StepT[] | string {
  const out: StepT[] = [];
  for (const s of steps) {
    const c = checkedStep(s);
    if (!c.ok) return c.message;
    out.push(c.value);
  }
  return out;
}

/**
 * Validates a program as a scenario without the YAML round trip (the schema is what makes the
 * reproducer file valid; positions are not needed until it is written out).
 */
export function parseProgram(p: Program): ParsedScenario | string {
  let h = checkedHeaders.get(p.system);
  if (h?.processes !== p.processes || h.uvm !== p.uvm) {
    const r = Scenario.safeParse(programDocument({ ...p, steps: [], threads: undefined }, 'fuzz'));
    h = {
      processes: p.processes,
      uvm: p.uvm,
      checked: r.success ? { ok: true, value: r.data } : { ok: false, message: firstIssue(r.error) },
    };
    checkedHeaders.set(p.system, h);
  }
  if (!h.checked.ok) return h.checked.message;
  const scenario: ScenarioT = { ...h.checked.value };
  delete scenario.steps;
  const steps = checkSteps(p.steps);
  if (typeof steps === 'string') return steps;
  if (p.threads !== undefined) {
    scenario.setup = steps;
    scenario.threads = {};
    for (const [name, list] of Object.entries(p.threads)) {
      const t = checkSteps(list);
      if (typeof t === 'string') return t;
      scenario.threads[name] = t;
    }
  } else scenario.steps = steps;
  return { file: '<fuzz>', scenario, position: () => ({ line: 1, col: 1 }) };
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? `${e.name}: ${e.message}` : String(e)).split('\n')[0];
}

/** Runs a sequential program. */
function runSteps(
  parsed: ParsedScenario,
  steps: readonly StepT[],
  out: ProgramResult,
  stepBound: number | undefined,
): void {
  const k = kernel();
  const ctx = buildWorld(parsed, k);
  ctx.stepBound = stepBound;
  const sig: unknown[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    let r;
    try {
      r = runStepNow(ctx, step, 'steps', i, ['steps', i]);
    } catch (e) {
      if (e instanceof ScenarioError) {
        // A value the file format accepts but the op refuses (a bound the model keeps): the
        // program ends here, as `hetmem run` would end it with exit 2.
        out.rejected = e.message;
        return;
      }
      out.finding = { kind: 'internal', message: oneLine(e), step: i };
      return;
    }
    if (ctx.livelocked !== null) {
      out.finding = { kind: 'hang', message: r.failures[0], step: i };
      return;
    }
    out.ops++;
    out.errnos.push(r.errno);
    out.features.add(`${step.op}:${r.errno ?? (r.ret > 0 ? '+' : String(r.ret))}`);
    for (const c of Object.keys(r.counters)) out.features.add(`${step.op}>${c}`);
    sig.push([step.op, r.ret, r.counters]);
    const violations = [...ctx.sys.sched.violations, ...k.oracles.checkAll(ctx.sys, { teardown: false })];
    if (violations.length > 0) {
      const v = violations[0];
      out.finding = { kind: 'violation', oracle: v.oracle, message: v.message, step: i };
      return;
    }
  }
  try {
    const td = teardown(ctx);
    sig.push(['teardown', td.failures]);
    if (!td.ok) {
      const m = /^oracle ([^:]+): (.*)$/.exec(td.failures[0]);
      out.finding = {
        kind: 'violation',
        oracle: m?.[1] ?? 'teardown',
        message: m?.[2] ?? td.failures[0],
        step: steps.length,
      };
    }
  } catch (e) {
    out.finding = { kind: 'internal', message: oneLine(e), step: steps.length };
  }
  out.signature = JSON.stringify(sig);
}

function* fuzzThread(
  ctx: ScenarioContext,
  name: string,
  steps: readonly StepT[],
  inOp: Map<string, string>,
): KGen {
  for (let i = 0; i < steps.length; i++) {
    inOp.set(name, `in ${steps[i].op}`);
    let r;
    try {
      r = yield* stepGen(ctx, steps[i], ['threads', name, i]);
    } catch (e) {
      // A value the op refuses (a process another thread forked, not there yet): the thread
      // stops, as `hetmem run` would stop at that step with exit 2. Anything else is a model bug.
      if (e instanceof ScenarioError) return;
      throw e;
    } finally {
      inOp.delete(name);
    }
    finishStep(ctx, steps[i], r);
  }
}

/**
 * A threads program under the explorer (seeded random, a few schedules): setup runs first, then
 * the threads interleave inside the kernel. Only oracles judge; step results do not.
 */
function runThreads(
  parsed: ParsedScenario,
  seed: number,
  out: ProgramResult,
  stepBound: number | undefined,
): void {
  const k = kernel();
  const s = parsed.scenario;
  let ops = 0;
  const target: ExploreTarget = {
    create(): ExploreWorld {
      const ctx = buildWorld(parsed, k);
      ctx.stepBound = stepBound;
      (s.setup ?? []).forEach((step, i) => {
        if (ctx.livelocked !== null) return;
        const r = runStepNow(ctx, step, 'setup', i, ['setup', i]);
        ops++;
        // The setup runs alone: a step that outlives its bound is the program's hang, before
        // any thread starts (its loop would otherwise go on under the explorer).
        if (ctx.livelocked !== null) throw new SetupHang(r.failures[0]);
      });
      const inOp = new Map<string, string>();
      const mine = new Set<unknown>();
      for (const [name, steps] of Object.entries(s.threads ?? {})) {
        mine.add(ctx.sys.sched.spawn(name, fuzzThread(ctx, name, steps as StepT[], inOp)));
        ops += steps.length;
      }
      const quiescent = () => inOp.size === 0 && ctx.sys.sched.threads.every((t) => t.done || mine.has(t));
      return {
        sched: ctx.sys.sched,
        checkStep: () => checkStep(ctx.sys, quiescent()),
        threadDoing: (t) => (mine.has(t) ? (inOp.get(t.name) ?? null) : null),
        checkFinal(): Violation | null {
          const td = teardown(ctx);
          if (td.ok) return null;
          const m = /^oracle ([^:]+): (.*)$/.exec(td.failures[0]);
          return m !== null
            ? { oracle: m[1], message: m[2] }
            : { oracle: 'teardown', message: td.failures[0] };
        },
      };
    },
  };
  try {
    const r = explore(target, { strategy: 'random', seed, budget: { schedules: 4 } });
    out.ops += ops;
    out.features.add(`threads:${r.schedules}`);
    out.signature = r.replay;
    if (r.violation !== null) {
      // An exception out of a kernel path is a model bug, whichever thread it hit.
      out.finding =
        r.violation.oracle === 'exception'
          ? { kind: 'internal', message: r.violation.message, step: -1 }
          : { kind: 'violation', oracle: r.violation.oracle, message: r.violation.message, step: -1 };
    }
  } catch (e) {
    if (e instanceof ScenarioError) {
      out.rejected = e.message;
      return;
    }
    out.ops += ops;
    out.finding =
      e instanceof SetupHang
        ? { kind: 'hang', message: e.message, step: -1 }
        : { kind: 'internal', message: oneLine(e), step: -1 };
  }
}

/** A setup step of a threads program that did not finish within its step bound. */
class SetupHang extends Error {}

/**
 * Runs a program once. `stepBound`: scheduler steps one op may take before it counts as a hang;
 * null gives the bound `hetmem run` uses (larger, by memory size).
 */
export function runProgram(p: Program, seed = 1, stepBound: number | null = STEP_BOUND): ProgramResult {
  const out: ProgramResult = {
    rejected: null,
    ops: 0,
    finding: null,
    features: new Set(),
    signature: '',
    errnos: [],
  };
  const parsed = parseProgram(p);
  if (typeof parsed === 'string') {
    out.rejected = parsed;
    return out;
  }
  if (parsed.scenario.threads !== undefined) runThreads(parsed, seed, out, stepBound ?? undefined);
  else runSteps(parsed, parsed.scenario.steps ?? [], out, stepBound ?? undefined);
  return out;
}

/**
 * The fuzz bound is small to keep runs fast; a hang counts only if the op also outlives the
 * bound `hetmem run` gives it, so the reproducer hangs there too. A shorter run is a long loop
 * that ends (a walk of a large range), not a livelock: the rerun's result stands instead. Known
 * kernel livelocks are not rerun.
 */
export function confirmHang(p: Program, seed: number, res: ProgramResult): ProgramResult {
  if (res.finding?.kind !== 'hang' || knownFinding(res.finding) !== null) return res;
  const again = runProgram(p, seed, null);
  return again.finding?.kind === 'hang' ? res : { ...again, ops: res.ops + again.ops };
}

/** Runs a program twice and reports a difference as non-determinism. */
export function runProgramTwice(p: Program, seed = 1): ProgramResult {
  const a = runProgram(p, seed);
  if (a.finding !== null || a.rejected !== null) return a;
  const b = runProgram(p, seed);
  if (b.finding === null && b.signature !== a.signature) {
    let i = 0;
    while (i < a.signature.length && a.signature[i] === b.signature[i]) i++;
    a.finding = {
      kind: 'nondeterminism',
      message: `two runs of one program differ at character ${i} of their histories`,
      step: -1,
    };
  } else if (b.finding !== null) a.finding = b.finding;
  a.ops += b.ops;
  return a;
}

/** The part of a finding that must stay the same while a program is minimised. */
export function findingKey(f: Finding): string {
  const msg = f.message.replace(/0x[0-9a-f]+|\d+/gi, 'N');
  return f.kind === 'violation' ? `${f.kind}:${f.oracle}:${msg}` : `${f.kind}:${msg}`;
}
