/**
 * Checking a user's driver module before the model runs it, and bounding its callbacks while it
 * runs. A driver module is hostile input like a scenario file: one that is missing, throws while
 * it loads, exports the wrong thing, has a misspelt or unknown member, or is an empty object is
 * refused with one line naming the module and the member; a callback that never returns is
 * stopped (by a yield bound when it keeps yielding, by the CLI's watchdog when it never yields)
 * and reported in one line too. A misspelt member matters most: it used to be ignored, so the
 * built-in callback ran in its place and the search came out falsely clean.
 *
 * Issues are data (a code and a path into the export, zod style); the message is rendered from
 * them and tests match codes.
 */
import type { DriverCodeBound } from '../sched/driver_code.ts';
import type { Scheduler } from '../sched/scheduler.ts';
import type { KGen } from '../sched/types.ts';
import { ScenarioError, suggest } from './parse.ts';

/** What a member of a driver export must be. */
export type MemberKind = 'function' | 'string' | 'object';

/** The members a driver export may have: name -> kind and whether it is required. */
export type DriverShape = Readonly<Record<string, { kind: MemberKind; required?: boolean }>>;

/**
 * A user driver for the built-in mirror devices: the callbacks it replaces, of DmirrorDriver
 * (invalidate, rangeFault) or LegacyMirrorDriver (syncCpuDevicePagetables, rangeFault).
 */
export const MIRROR_DRIVER_SHAPE: DriverShape = {
  invalidate: { kind: 'function' },
  rangeFault: { kind: 'function' },
  syncCpuDevicePagetables: { kind: 'function' },
};

export type DriverModuleIssue =
  | { code: 'module_not_found'; module: string }
  | { code: 'module_threw'; module: string; message: string }
  | { code: 'missing_export'; module: string; path: [string]; exports: string[] }
  | { code: 'not_an_object'; module: string; path: [string]; got: string }
  | { code: 'empty_driver'; module: string; path: [string]; members: string[] }
  | { code: 'unknown_member'; module: string; path: [string, string]; members: string[] }
  | { code: 'wrong_member_type'; module: string; path: [string, string]; expected: MemberKind; got: string }
  | { code: 'missing_member'; module: string; path: [string, string] }
  | { code: 'callback_yield_bound'; module: string; path: [string, string]; yields: number; step?: string }
  | {
      code: 'callback_time_bound';
      module: string;
      path: [string, string];
      ms: number;
      thread: string;
      step?: string;
    };

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'function') return 'a function';
  return `${typeof v === 'object' ? 'an' : 'a'} ${typeof v}`;
}

/** `; called during user step 1 (GPU_SPIN, line 12)`: the scenario step a stopped callback belongs to. */
function during(step: string | undefined): string {
  return step === undefined || step === '' ? '' : `; called ${step}`;
}

/** The one-line message of an issue (without the scenario's FILE:LINE:COL). */
export function renderDriverIssue(issue: DriverModuleIssue): string {
  const m = `driver module ${issue.module}`;
  switch (issue.code) {
    case 'module_not_found':
      return `${m}: no such file`;
    case 'module_threw':
      return `${m}: loading it threw: ${issue.message}`;
    case 'missing_export': {
      const near = suggest(issue.path[0], issue.exports);
      const list =
        issue.exports.length > 0 ? `; it exports ${issue.exports.join(', ')}` : '; it exports nothing';
      return `${m}: no export '${issue.path[0]}'${near}${list}`;
    }
    case 'not_an_object':
      return `${m}: export '${issue.path[0]}' is ${issue.got}, not a driver object`;
    case 'empty_driver':
      return `${m}: export '${issue.path[0]}' has no members; a driver sets some of ${issue.members.join(', ')}`;
    case 'unknown_member': {
      const [exp, member] = issue.path;
      return `${m}: '${exp}.${member}' is not a driver member${suggest(member, issue.members)}; the members are ${issue.members.join(', ')}`;
    }
    case 'wrong_member_type':
      return `${m}: '${issue.path.join('.')}' is ${issue.got}, expected a ${issue.expected}`;
    case 'missing_member':
      return `${m}: '${issue.path.join('.')}' is required`;
    case 'callback_yield_bound':
      return `${m}: callback '${issue.path.join('.')}' yielded ${issue.yields} times without returning (a loop that never ends?)${during(issue.step)}`;
    case 'callback_time_bound':
      return `${m}: callback '${issue.path.join('.')}' (thread ${issue.thread}) ran ${issue.ms} ms without yielding (a loop that never ends?)${during(issue.step)}`;
  }
}

/** A refused driver module, reported at the scenario's `driver:` entry (exit 2). */
export class DriverModuleError extends ScenarioError {
  constructor(
    file: string,
    line: number,
    col: number,
    readonly issue: DriverModuleIssue,
  ) {
    super(file, line, col, renderDriverIssue(issue));
    this.name = 'DriverModuleError';
  }
}

/** Classifies what loading a module (`module` as the scenario names it, at `path`) threw. */
export function loadIssue(module: string, path: string, e: unknown): DriverModuleIssue {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  // Not found: the module itself, not something it imports.
  if ((code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && message.includes(`'${path}'`))
    return { code: 'module_not_found', module };
  return { code: 'module_threw', module, message: message.split('\n')[0] };
}

/**
 * Checks the export `name` of a loaded module against `shape`. Returns the first issue, or null
 * when the export is a driver of that shape.
 */
export function checkDriverExport(
  module: string,
  mod: Readonly<Record<string, unknown>>,
  name: string,
  shape: DriverShape,
): DriverModuleIssue | null {
  const members = Object.keys(shape);
  if (!Object.hasOwn(mod, name) || mod[name] === undefined) {
    const exports = Object.keys(mod).filter((k) => k !== 'default' && k !== '__esModule');
    return { code: 'missing_export', module, path: [name], exports };
  }
  const drv = mod[name];
  if (drv === null || typeof drv !== 'object' || Array.isArray(drv))
    return { code: 'not_an_object', module, path: [name], got: typeName(drv) };
  const own = Object.keys(drv);
  if (own.length === 0) return { code: 'empty_driver', module, path: [name], members };
  for (const key of own) {
    if (!Object.hasOwn(shape, key)) return { code: 'unknown_member', module, path: [name, key], members };
  }
  for (const [key, spec] of Object.entries(shape)) {
    const v = (drv as Record<string, unknown>)[key];
    if (v === undefined) {
      if (spec.required === true) return { code: 'missing_member', module, path: [name, key] };
      continue;
    }
    const ok = spec.kind === 'object' ? v !== null && typeof v === 'object' : typeof v === spec.kind;
    if (!ok)
      return { code: 'wrong_member_type', module, path: [name, key], expected: spec.kind, got: typeName(v) };
  }
  return null;
}

/**
 * Watches driver callbacks for the CLI's watchdog: enter() when a callback starts running a
 * stretch of code (a generator's next()), leave() when it yields or returns. The default does
 * nothing; the CLI installs one that a watchdog thread observes.
 */
export interface CallbackWatch {
  /** `step`: the scenario step the call belongs to, when known. */
  enter(path: readonly [string, string], step?: string): void;
  leave(): void;
}

const noWatch: CallbackWatch = { enter() {}, leave() {} };
let watch: CallbackWatch = noWatch;

/** Installs the watch the CLI's watchdog observes (null: none). */
export function setCallbackWatch(w: CallbackWatch | null): void {
  watch = w ?? noWatch;
}

/**
 * How many times one call of a driver callback may yield before it is stopped. A callback of the
 * model yields at each lock, wait and notifier point; a million of them in one call is a loop.
 */
export const CALLBACK_YIELD_BOUND = 1_000_000;

/** A bounded driver callback went past its bound: the error a scenario step reports. */
export class CallbackBoundError extends Error {
  constructor(readonly issue: DriverModuleIssue) {
    super(renderDriverIssue(issue));
    this.name = 'CallbackBoundError';
  }
}

function isGenerator(v: unknown): v is Generator<unknown, unknown, unknown> {
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof (v as Generator).next === 'function' &&
    typeof (v as Generator).throw === 'function'
  );
}

/** One call of a bounded callback that has not returned yet. */
export interface ActiveCall {
  readonly module: string;
  readonly path: [string, string];
  /** The scenario step it was called during ('' when none is known). */
  readonly step: string;
  yields: number;
}

/** Runs a driver generator with its stretches watched and its yields counted. */
function* bounded(
  module: string,
  path: readonly [string, string],
  gen: Generator<unknown, unknown, unknown>,
  yieldBound: number,
  bounds?: CallbackBounds,
): Generator<unknown, unknown, unknown> {
  const call: ActiveCall = { module, path: [path[0], path[1]], step: bounds?.stepNow() ?? '', yields: 0 };
  bounds?.active.add(call);
  let input: unknown = undefined;
  try {
    for (; ; call.yields++) {
      if (call.yields > yieldBound) {
        const issue: DriverModuleIssue = {
          code: 'callback_yield_bound',
          module,
          path: call.path,
          yields: call.yields,
          ...(call.step !== '' ? { step: call.step } : {}),
        };
        if (bounds !== undefined) bounds.stopped ??= issue;
        throw new CallbackBoundError(issue);
      }
      watch.enter(path, call.step);
      let r: IteratorResult<unknown, unknown>;
      try {
        r = gen.next(input);
      } finally {
        watch.leave();
      }
      if (r.done === true) return r.value;
      input = yield r.value;
    }
  } finally {
    bounds?.active.delete(call);
  }
}

/** A scenario driver whose calls are bounded: its module and its export's name. */
export interface BoundedDriver {
  readonly module: string;
  readonly exportName: string;
}

/**
 * The bound on the driver code of one scenario world (sched/driver_code.ts): every call of a
 * driver loaded from a module counts its yields and is watched stretch by stretch, the calls
 * still running are known (the explorer names one when its step bound runs out), and the first
 * call stopped is kept, since a work item's thread that throws has nobody to tell.
 *
 * Its state is plain data reachable from the System, so a snapshot restores it with the world.
 */
export class CallbackBounds implements DriverCodeBound {
  readonly drivers = new Map<object, BoundedDriver>();
  readonly active = new Set<ActiveCall>();
  /** Scenario threads inside a step: thread name -> `user step 1 (GPU_SPIN, line 12)`. */
  readonly steps = new Map<string, string>();
  /** The step a scenario thread started last. */
  lastStep = '';
  stopped: DriverModuleIssue | null = null;

  constructor(
    readonly sched: Scheduler,
    readonly yieldBound = CALLBACK_YIELD_BOUND,
  ) {}

  owns(owner: object): boolean {
    return this.drivers.has(owner);
  }

  wrap<T>(owner: object, what: string, gen: KGen<T>): KGen<T> {
    const d = this.drivers.get(owner);
    if (d === undefined) return gen;
    return bounded(d.module, [d.exportName, what], gen, this.yieldBound, this) as KGen<T>;
  }

  /** A scenario thread starts a step (`user step 1 (GPU_SPIN, line 12)`). */
  enterStep(thread: string, step: string): void {
    this.steps.set(thread, step);
    this.lastStep = step;
  }

  leaveStep(thread: string): void {
    this.steps.delete(thread);
  }

  /**
   * The step a call starting now belongs to: `during` the current thread's, when it is a
   * scenario thread; else (a kworker or kthread) during the steps scenario threads are inside,
   * or `after` the one started last when none is.
   */
  stepNow(): string {
    const t = this.sched.current?.name;
    const own = t !== undefined ? this.steps.get(t) : undefined;
    if (own !== undefined) return `during ${own}`;
    if (this.steps.size > 0) return `during ${[...this.steps.values()].join(' and ')}`;
    return this.lastStep !== '' ? `after ${this.lastStep}` : '';
  }

  /** The running call that made the most yields, if it made at least `min`. */
  busiest(min: number): ActiveCall | null {
    let best: ActiveCall | null = null;
    for (const c of this.active) if (c.yields >= min && (best === null || c.yields > best.yields)) best = c;
    return best;
  }
}

/**
 * A copy of a checked driver whose function members are bounded: generator callbacks (the ones
 * that may sleep) count their yields and are watched stretch by stretch; plain callbacks are
 * watched for the one call.
 */
export function boundDriver<T extends object>(
  module: string,
  exportName: string,
  drv: T,
  yieldBound = CALLBACK_YIELD_BOUND,
): T {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(drv)) {
    if (typeof v !== 'function') {
      out[key] = v;
      continue;
    }
    const fn = v as (...args: unknown[]) => unknown;
    const path = [exportName, key] as const;
    out[key] = function (this: unknown, ...args: unknown[]): unknown {
      watch.enter(path);
      let r: unknown;
      try {
        r = fn.apply(this, args);
      } finally {
        watch.leave();
      }
      return isGenerator(r) ? bounded(module, path, r, yieldBound) : r;
    };
  }
  return out as T;
}
