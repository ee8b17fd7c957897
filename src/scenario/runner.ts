/**
 * Runs a scenario sequentially: builds the System its `system:`, `devices:` and `processes:` ask
 * for, runs each step as a kernel path on the scheduler, judges it against its expectation, and
 * finally closes what is still open, exits what still runs and checks every oracle.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { LegacyMirrorDriver } from '../kernel/drivers/legacy_mirror.ts';
import type { DmirrorDriver } from '../kernel/drivers/test_hmm.ts';
import {
  checkDriver,
  Device,
  deviceProbe,
  deviceUnregister,
  sdkDevices,
  type IoctlDef,
} from '../kernel/drivers/sdk/device.ts';
import { DriverError } from '../kernel/drivers/sdk/driver_error.ts';
import { gpuKind } from '../kernel/drivers/gpu/registry.ts';
import { errnoName, isErr } from '../kernel/errno.ts';
import * as scp from '../kernel/syscalls.plain.ts';
import { System, SystemConfigError } from '../kernel/system.ts';
import type { KGen, Violation } from '../sched/types.ts';
import { NotModelled, type OpResult, ScenarioContext } from './context.ts';
import {
  boundDriver,
  CallbackBoundError,
  CallbackBounds,
  checkDriverExport,
  DriverModuleError,
  type DriverModuleIssue,
  type DriverShape,
  loadIssue,
  MIRROR_DRIVER_SHAPE,
} from './driver_module.ts';
import { judge } from './expect.ts';
import { type FaultRun, faultRuns } from './fault_runs.ts';
import type { KernelApi, PagemapEntry } from './kernel.ts';
import { runOracles, tornDown } from './ops/checks.ts';
import { driverIoctl, HANDLERS } from './ops/index.ts';
import type { OpHandler } from './ops/types.ts';
import { type ParsedScenario, type Path, ScenarioError, suggest } from './parse.ts';
import { isDriverIoctlOp, OPS, type StepT } from './schema.ts';
import { importUserModule, requireUserModule } from './user_module.ts';
import { parseSize, u64Value, UnboundError, ValueError } from './values.ts';

export interface StepReport {
  /** 'steps', 'setup', 'final', a thread name, or 'teardown'. */
  section: string;
  index: number;
  op: string;
  line: number;
  /** The step's fields, compactly (for the human output). */
  summary: string;
  ret: number;
  errno: string | null;
  outputs: Record<string, unknown>;
  /** Counters that changed during the step (faults, invalidations by event, migrations, pins). */
  counters: Record<string, number>;
  notes: string[];
  failures: string[];
  ok: boolean;
  comment?: string;
  /** What a read returned (cpu_read, pread, HMM_DMIRROR_READ, ...): its length and first bytes. */
  data?: DataSummary;
  /** What pagemap returned, as runs of pages with the same bits. */
  pages?: PageRun[];
  /** What HMM_DMIRROR_SNAPSHOT returned: one HMM_DMIRROR_PROT_* byte per page. */
  bytes?: number[];
  /** The CPU faults the step took, by handler, when the run records events. */
  faults?: FaultRun[];
  /** Fault runs left out of `faults` past its first MAX_FAULT_RUNS. */
  faults_more?: number;
}

export interface DataSummary {
  length: number;
  /** The first up to 32 bytes, as hex. */
  head: string;
  /** The byte every position holds, when they are all the same. */
  uniform: number | null;
}

export interface PageRun {
  /** Index of the run's first page in the request, and how many pages it has. */
  first: number;
  count: number;
  present: boolean;
  swap: boolean;
  soft_dirty: boolean;
  exclusive: boolean;
  file: boolean;
  thp: boolean;
  kind: string;
}

/** The byte every byte of `d` equals, or null; compared a 32-bit word at a time where aligned. */
function uniformByte(d: Uint8Array): number | null {
  if (d.length === 0) return null;
  const b = d[0];
  let i = 0;
  if (d.byteOffset % 4 === 0) {
    const words = new Uint32Array(d.buffer, d.byteOffset, d.length >>> 2);
    const w = (b * 0x01010101) >>> 0;
    for (const x of words) if (x !== w) return null;
    i = words.length * 4;
  }
  for (; i < d.length; i++) if (d[i] !== b) return null;
  return b;
}

function summariseData(d: Uint8Array): DataSummary {
  // Plain loops, not Buffer: the runner also runs in the studio's Web Worker.
  let head = '';
  for (const x of d.subarray(0, 32)) head += x.toString(16).padStart(2, '0');
  return { length: d.length, head, uniform: uniformByte(d) };
}

function pageRuns(pages: readonly PagemapEntry[]): PageRun[] {
  const runs: PageRun[] = [];
  pages.forEach((p, i) => {
    const run: PageRun = {
      first: i,
      count: 1,
      present: p.present,
      swap: p.swap,
      soft_dirty: p.softDirty,
      exclusive: p.exclusive,
      file: p.file,
      thp: p.thp,
      kind: p.kind,
    };
    const last = runs.at(-1);
    const same =
      last !== undefined &&
      (['present', 'swap', 'soft_dirty', 'exclusive', 'file', 'thp', 'kind'] as const).every(
        (k) => last[k] === run[k],
      );
    if (same) last.count++;
    else runs.push(run);
  });
  return runs;
}

export interface RunReport {
  name: string;
  ok: boolean;
  steps: StepReport[];
  stats: Record<string, number>;
  violations: Violation[];
}

export interface RunOptions {
  /** Keep detailed trace events (for --trace). */
  trace?: boolean;
  /**
   * List each step's CPU faults with the handler they took (`faults` of its report); the events
   * this needs are dropped after each step unless `trace` keeps them.
   */
  faults?: boolean;
  /** Called after each step (the CLI prints as it goes). */
  onStep?(r: StepReport, done: number, total: number): void;
  /** Called with the world once it is built (the CLI's watchdog names the running thread). */
  onWorld?(ctx: ScenarioContext): void;
}

/** A user driver: members of DmirrorDriver (dmirror devices) or LegacyMirrorDriver (legacy_mirror). */
type UserDriver = Partial<DmirrorDriver> & Partial<LegacyMirrorDriver>;

const drivers = new WeakMap<ParsedScenario, UserDriver>();

/** Driver modules loaded ahead through import(), by absolute path. */
const preloaded = new Map<string, Record<string, unknown>>();

/** Every driver module a scenario names: the old top-level `driver:` and each driver device's. */
function driverModules(parsed: ParsedScenario): { module: string; export: string; path: Path }[] {
  const s = parsed.scenario;
  const out: { module: string; export: string; path: Path }[] = [];
  if (s.driver !== undefined) out.push({ ...s.driver, path: ['driver'] });
  for (const [name, dev] of Object.entries(s.devices ?? {})) {
    if ('driver' in dev) out.push({ ...dev.driver, path: ['devices', name, 'driver'] });
  }
  return out;
}

/**
 * Loads the driver modules a scenario names through import() (user_module.ts), ahead of
 * buildWorld, so they share the kernel's module instances; a .ts module gets a TypeScript loader.
 * Errors are left for buildWorld to report.
 */
export async function preloadDriver(parsed: ParsedScenario): Promise<void> {
  for (const d of driverModules(parsed)) {
    const path = resolve(dirname(parsed.file), d.module);
    if (preloaded.has(path)) continue;
    try {
      preloaded.set(path, await importUserModule(path));
    } catch (e) {
      // A module that throws while it loads is reported now: loading it again would run its
      // top-level code twice. A missing one is left for buildWorld to report with the position.
      const issue = loadIssue(d.module, path, e);
      if (issue.code === 'module_threw') {
        const pos = parsed.position([...d.path, 'module']);
        throw new DriverModuleError(parsed.file, pos.line, pos.col, issue);
      }
    }
  }
}

/**
 * Registers a driver module under its absolute path, for hosts that cannot require() one: the
 * studio bundles the example drivers and registers them before opening a scenario.
 */
export function registerDriverModule(path: string, mod: Record<string, unknown>): void {
  preloaded.set(path, mod);
}

/**
 * The export `exportName` of the driver module `module` (relative to the scenario file). Loaded
 * synchronously (requireUserModule()) when preloadDriver() did not load it. A module that cannot be loaded, or lacks the export, is a
 * ScenarioError at `path` (the `driver:` map in the file).
 */
function loadDriverExport(
  parsed: ParsedScenario,
  path: Path,
  module: string,
  exportName: string,
  shape?: DriverShape,
): unknown {
  const file = resolve(dirname(parsed.file), module);
  const fail = (field: string, issue: DriverModuleIssue): never => {
    const pos = parsed.position([...path, field]);
    throw new DriverModuleError(parsed.file, pos.line, pos.col, issue);
  };
  let mod = preloaded.get(file);
  if (mod === undefined) {
    if (!existsSync(file)) fail('module', { code: 'module_not_found', module });
    try {
      mod = requireUserModule(file);
    } catch (e) {
      return fail('module', loadIssue(module, file, e));
    }
    preloaded.set(file, mod);
  }
  if (shape !== undefined) {
    const issue = checkDriverExport(module, mod, exportName, shape);
    if (issue !== null) fail('export', issue);
  } else {
    const drv = mod[exportName];
    if (drv === null || typeof drv !== 'object' || Array.isArray(drv))
      fail('export', {
        code: 'not_an_object',
        module,
        path: [exportName],
        got: drv === null ? 'null' : typeof drv,
      });
  }
  return mod[exportName];
}

/**
 * The driver a scenario's `driver: { module, export }` names: an object with the members it
 * replaces, of DmirrorDriver (invalidate, rangeFault) or LegacyMirrorDriver
 * (syncCpuDevicePagetables, rangeFault). Preloaded by preloadDriver(), else loaded synchronously
 * (requireUserModule()).
 */
function userDriver(parsed: ParsedScenario): UserDriver | undefined {
  const d = parsed.scenario.driver;
  if (d === undefined) return undefined;
  const cached = drivers.get(parsed);
  if (cached !== undefined) return cached;
  const driver = boundDriver(
    d.module,
    d.export,
    loadDriverExport(parsed, ['driver'], d.module, d.export, MIRROR_DRIVER_SHAPE) as UserDriver,
  );
  drivers.set(parsed, driver);
  return driver;
}

/**
 * Probes the devices of user drivers (`devices: NAME: { driver: { module, export }, config }`) and
 * checks every driver-ioctl step against the ioctl tables of those drivers.
 */
function probeDriverDevices(parsed: ParsedScenario, ctx: ScenarioContext): void {
  const s = parsed.scenario;
  const ioctls = new Map<string, IoctlDef<object>>();
  for (const [name, dev] of Object.entries(s.devices ?? {})) {
    const kind = 'driver' in dev ? null : gpuKind(dev.type);
    if (!('driver' in dev) && kind === null) continue;
    const path: Path = kind === null ? ['devices', name, 'driver'] : ['devices', name];
    const fail = (why: string): never => {
      const pos = parsed.position([...path, kind === null ? 'export' : 'type']);
      throw new ScenarioError(parsed.file, pos.line, pos.col, why);
    };
    const drv =
      kind !== null
        ? kind.driver
        : 'driver' in dev
          ? loadDriverExport(parsed, path, dev.driver.module, dev.driver.export)
          : null;
    if (kind !== null) for (const [k, v] of Object.entries(kind.constants)) ctx.names.set(k, v);
    if ('driver' in dev && drv !== null && typeof drv === 'object')
      ctx.bounds?.drivers.set(drv, { module: dev.driver.module, exportName: dev.driver.export });
    try {
      checkDriver(drv, 'driver' in dev ? dev.driver.export : dev.type);
    } catch (e) {
      if (e instanceof DriverError) fail(e.message.replace(/^EINVAL: /, ''));
      throw e;
    }
    let r: Device | number;
    try {
      r = deviceProbe(ctx.sys, name, drv, ('config' in dev ? dev.config : undefined) ?? {});
    } catch (e) {
      return fail(`probe of ${name} threw: ${(e as Error).message.split('\n')[0]}`);
    }
    if (typeof r === 'number')
      fail(
        kind !== null
          ? `probe of ${name} failed with -${errnoName(r)} (config: ${kind.doc.replace(/^.*config: /, '').replace(/\)$/, '')})`
          : `probe of ${name} failed with -${errnoName(r)}`,
      );
    for (const [cmd, def] of Object.entries(drv.ioctls ?? {})) ioctls.set(cmd, def);
  }
  const sections: [Path, readonly StepT[]][] = [];
  if (s.setup !== undefined) sections.push([['setup'], s.setup]);
  if (s.steps !== undefined) sections.push([['steps'], s.steps]);
  for (const [t, steps] of Object.entries(s.threads ?? {})) sections.push([['threads', t], steps]);
  if (s.final !== undefined) sections.push([['final'], s.final]);
  for (const [base, steps] of sections) {
    steps.forEach((step, i) => {
      if (!isDriverIoctlOp(step.op)) return;
      const fail = (field: string, why: string): never => {
        const pos = parsed.position([...base, i, field]);
        throw new ScenarioError(parsed.file, pos.line, pos.col, why);
      };
      const def = ioctls.get(step.op);
      if (def === undefined)
        return fail(
          'op',
          `unknown op '${step.op}'${suggest(step.op, [...ioctls.keys(), ...Object.keys(OPS)])}: no built-in op and no driver of this scenario defines it`,
        );
      for (const field of Object.keys(step)) {
        if (['op', 'fd', 'save', 'expect', 'comment'].includes(field)) continue;
        if (def.in[field] === undefined)
          fail(
            field,
            `unknown field '${field}' in ${step.op} step${suggest(field, Object.keys(def.in))}; its struct has ${Object.keys(def.in).join(', ') || 'no input members'}`,
          );
      }
    });
  }
}

/** Builds the System, devices and processes of a scenario. */
export function buildWorld(parsed: ParsedScenario, k: KernelApi, trace = false): ScenarioContext {
  const s = parsed.scenario;
  const failAt = (field: string, why: string): never => {
    const pos = parsed.position(['system', field]);
    throw new ScenarioError(parsed.file, pos.line, pos.col, why);
  };
  const size = (field: string, v: string | number | undefined): number | undefined => {
    if (v === undefined) return undefined;
    try {
      return parseSize(v);
    } catch (e) {
      if (e instanceof ValueError) failAt(field, e.message);
      throw e;
    }
  };
  let sys: System;
  try {
    sys = new System({
      ram: size('ram', s.system?.ram),
      swap: size('swap', s.system?.swap),
      rlimitMemlock: size('rlimit_memlock', s.system?.rlimit_memlock),
      thp: s.system?.thp,
      hugetlbPages: s.system?.hugetlb_pages,
      zeroPage: s.system?.zero_page,
      trace,
      contracts: {
        invalidateRangeStartNonblock: s.kernel?.contracts?.invalidate_range_start_nonblock,
        devicePrivateFault: s.kernel?.contracts?.device_private_fault,
      },
    });
  } catch (e) {
    if (!(e instanceof SystemConfigError)) throw e;
    const names: Record<string, string> = { rlimitMemlock: 'rlimit_memlock', hugetlbPages: 'hugetlb_pages' };
    return failAt(
      names[e.field] ?? e.field,
      `system.${e.message.replace(/^EINVAL: \w+: /, `${names[e.field] ?? e.field}: `)}`,
    );
  }
  const ctx = new ScenarioContext(sys, k, parsed);
  if (Object.values(s.devices ?? {}).some((d) => 'driver' in d)) {
    ctx.bounds = new CallbackBounds(sys.sched);
    sys.sched.driverCode = ctx.bounds;
  }
  const driver = userDriver(parsed);
  for (const [name, dev] of Object.entries(s.devices ?? {})) {
    if ('driver' in dev || gpuKind(dev.type) !== null) continue;
    if (dev.type === 'dmirror' && 'memory' in dev)
      k.dmirror.createDmirrorDevice(sys, name, dev.memory, { driver });
    if (dev.type === 'legacy_mirror') k.legacyMirror.createLegacyMirrorDevice(sys, name, { driver });
    // iommufd mock devices come to life through IOMMU_TEST_OP_MOCK_DOMAIN.
  }
  probeDriverDevices(parsed, ctx);
  for (const name of s.processes ?? []) ctx.procs.set(name, sys.createProcess(name));
  return ctx;
}

function isErrnoError(e: unknown): e is { errno: number } {
  return typeof e === 'object' && e !== null && typeof (e as { errno?: unknown }).errno === 'number';
}

/**
 * A step as a kernel path. Kernel errors become the step's -errno; an op the model lacks becomes a
 * failure; a bad value in the file becomes a ScenarioError at the step's position.
 */
export function* stepGen(ctx: ScenarioContext, step: StepT, path: Path): KGen<OpResult> {
  const handler = stepHandler(step);
  try {
    if (handler === undefined) throw new NotModelled(`op ${step.op} has no handler`);
    return yield* handler(ctx, step);
  } catch (e) {
    return stepFailure(ctx, e, path);
  }
}

/** The kernel path of a step's op, or undefined when the model has none. */
export function stepHandler(step: StepT): OpHandler | undefined {
  return HANDLERS[step.op] ?? (isDriverIoctlOp(step.op) ? driverIoctl : undefined);
}

/**
 * What stepGen() makes of an error its op threw: the step's result (a -errno, a failure), or, for
 * a bad value in the file (at `path`) or a driver callback stopped at its bound, the error to
 * report instead, thrown.
 */
export function stepFailure(ctx: ScenarioContext, e: unknown, path: Path): OpResult {
  if (isErrnoError(e)) return { ret: -Math.abs(e.errno) };
  if (e instanceof NotModelled) return { ret: 0, failures: [`not modelled: ${e.message}`] };
  // A name or process an earlier step failed to bind: this step fails too (the file is fine).
  if (e instanceof UnboundError) return { ret: 0, failures: [e.message] };
  if (e instanceof ValueError) {
    const pos = ctx.parsed.position(path);
    throw new ScenarioError(ctx.parsed.file, pos.line, pos.col, e.message);
  }
  if (e instanceof CallbackBoundError) {
    const pos = ctx.parsed.position(path);
    throw new DriverModuleError(ctx.parsed.file, pos.line, pos.col, e.issue);
  }
  throw e;
}

/** Binds `save` names and judges the expectation. Returns the failures. */
export function finishStep(ctx: ScenarioContext, step: StepT, r: OpResult): string[] {
  const failures = [...(r.failures ?? [])];
  if (failures.length === 0) failures.push(...judge(ctx, step.expect, r));
  if (!isErr(r.ret) && step.save !== undefined) {
    if (typeof step.save === 'string') ctx.names.set(step.save, r.main ?? r.ret);
    else {
      for (const [field, name] of Object.entries(step.save)) {
        const v = field === 'ret' ? r.ret : r.outputs?.[field];
        if (typeof v === 'number') ctx.names.set(name, v);
        else if (typeof v === 'bigint') ctx.names.set(name, u64Value(v));
        else failures.push(`cannot save ${field}: the op did not report it`);
      }
    }
  }
  return failures;
}

function fmtValue(v: unknown): string {
  if (Array.isArray(v)) return v.map(fmtValue).join('|');
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}:${fmtValue(x)}`)
      .join(',')}}`;
  }
  return String(v);
}

/** `proc=p addr=buf length=4MiB`: the step as the output shows it. */
export function stepSummary(step: StepT): string {
  return Object.entries(step)
    .filter(([k]) => k !== 'op' && k !== 'expect' && k !== 'comment')
    .map(([k, v]) => `${k}=${fmtValue(v)}`)
    .join(' ');
}

function threadNameFor(step: StepT): string {
  const p = (step as Record<string, unknown>).proc;
  return typeof p === 'string' ? p : 'scenario';
}

/** Outputs with bigints as numbers when exact, hex strings otherwise. */
function plainOutputs(o: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o ?? {})) {
    if (v === undefined) continue;
    out[k] = typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v) : v;
  }
  return out;
}

function countersObject(m: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort((a, b) => a[0].localeCompare(b[0])));
}

/** A step that kept running past its step bound: a kernel path that loops without end. */
export class LivelockError extends Error {
  constructor(op: string, steps: number) {
    super(`livelock: ${op} did not finish within ${steps} scheduler steps (a kernel loop that never ends)`);
    this.name = 'LivelockError';
  }
}

/** The most pages of an op's own span the step bound grows by (8 GiB). */
const MAX_SPAN_PAGES = 2 ** 21;

/**
 * The pages an op names by its size fields (`npages`, or `length` / `new_length` / `range` in
 * bytes), at most MAX_SPAN_PAGES; 0 when none resolves to a positive number.
 */
function spanPages(ctx: ScenarioContext, step: StepT): number {
  const fields = step as Record<string, unknown>;
  let pages = 0;
  for (const [key, unit] of [
    ['npages', 1],
    ['length', 4096],
    ['new_length', 4096],
    ['range', 4096],
  ] as const) {
    if (fields[key] === undefined) continue;
    let n: number;
    try {
      n = ctx.num(fields[key], key);
    } catch {
      continue;
    }
    if (Number.isFinite(n) && n > 0) pages = Math.max(pages, Math.ceil(n / unit));
  }
  return Math.min(pages, MAX_SPAN_PAGES);
}

/**
 * Scheduler steps one op may take: generous for the memory the System has (a populate of all of
 * it takes a few dozen steps a page) and for the pages the op itself names (a migration of an
 * empty range takes a few steps a page without using memory), so only a loop that never ends
 * reaches it. `ctx.stepBound`, when set, replaces it.
 */
export function stepBoundFor(ctx: ScenarioContext, step?: StepT): number {
  if (ctx.stepBound !== undefined) return ctx.stepBound;
  const pages = (ctx.sys.config.ram + ctx.sys.config.swap) / 4096;
  return 1_000_000 + 64 * pages + 8 * (step === undefined ? 0 : spanPages(ctx, step));
}

/** Arms the step bound for one op; returns the disarm function. */
function armStepBound(ctx: ScenarioContext, step: StepT): () => void {
  const op = step.op;
  const sched = ctx.sys.sched;
  const bound = stepBoundFor(ctx, step);
  const limit = sched.totalSteps + bound;
  const hook = () => {
    if (sched.totalSteps > limit) throw new LivelockError(op, bound);
  };
  sched.afterStep.push(hook);
  return () => {
    const i = sched.afterStep.indexOf(hook);
    if (i >= 0) sched.afterStep.splice(i, 1);
  };
}

/** Runs one step to completion on the scheduler and reports it. */
export function runStepNow(
  ctx: ScenarioContext,
  step: StepT,
  section: string,
  index: number,
  path: Path,
  /** Only what the explorer judges by (ok, failures, op, line): no summary, outputs or counters. */
  brief = false,
): StepReport {
  const pos0 = ctx.parsed.position(path);
  if (ctx.livelocked !== null) {
    // The runaway kernel path still holds its locks: nothing after it can run.
    return {
      section,
      index,
      op: step.op,
      line: pos0.line,
      summary: stepSummary(step),
      ret: 0,
      errno: null,
      outputs: {},
      counters: {},
      notes: [],
      failures: [`not run: ${ctx.livelocked}`],
      ok: false,
    };
  }
  // A brief report carries no counters: the copy of every counter is not made.
  const before = brief ? null : ctx.sys.trace.snapshot();
  const seenViolations = ctx.sys.sched.violations.length;
  const thread = threadNameFor(step);
  const firstEvent = ctx.sys.trace.events.length;
  ctx.sys.trace.emit('syscall', step.op, 'B', { step: index }, `cpu:${thread}`);
  let r: OpResult;
  const disarm = armStepBound(ctx, step);
  ctx.bounds?.enterStep(thread, `${section} step ${index + 1} (${step.op}, line ${pos0.line})`);
  try {
    r = ctx.sys.run(thread, stepGen(ctx, step, path));
    // A driver's work item or kthread stopped at its bound: its own thread had nobody to tell.
    const stopped = ctx.bounds?.stopped ?? null;
    if (stopped !== null) throw new DriverModuleError(ctx.parsed.file, pos0.line, pos0.col, stopped);
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    if (e instanceof LivelockError) ctx.livelocked = `step ${index + 1} (${step.op}) livelocked`;
    if (e instanceof Error && (e.name === 'DeadlockError' || e instanceof LivelockError))
      r = { ret: 0, failures: [e.message] };
    else throw e;
  } finally {
    disarm();
    ctx.bounds?.leaveStep(thread);
  }
  ctx.sys.trace.emit('syscall', step.op, 'E', { ret: r.ret }, `cpu:${thread}`);
  const failures = finishStep(ctx, step, r);
  for (const v of ctx.sys.sched.violations.slice(seenViolations)) failures.push(`${v.oracle}: ${v.message}`);
  const quiet = brief && failures.length === 0;
  const report: StepReport = {
    section,
    index,
    op: step.op,
    line: quiet ? 0 : ctx.parsed.position(path).line,
    summary: quiet ? '' : stepSummary(step),
    ret: r.ret,
    errno: isErr(r.ret) ? errnoName(r.ret) : null,
    outputs: quiet ? {} : plainOutputs(r.outputs),
    counters: before === null ? {} : countersObject(ctx.sys.trace.since(before)),
    notes: r.notes ?? [],
    failures,
    ok: failures.length === 0,
  };
  if (typeof step.comment === 'string') report.comment = step.comment;
  if (r.data !== undefined) report.data = summariseData(r.data);
  if (r.pages !== undefined) report.pages = pageRuns(r.pages);
  if (r.bytes !== undefined && !quiet) report.bytes = [...r.bytes];
  if (ctx.sys.trace.enabled && !quiet) {
    const { runs, more } = faultRuns(ctx.sys.trace.events, firstEvent);
    if (runs.length > 0) report.faults = runs;
    if (more > 0) report.faults_more = more;
  }
  return report;
}

/**
 * Closes open files and exits live processes, then runs every oracle with teardown. `brief`
 * leaves out the counters (the explorer judges by the failures alone).
 */
export function teardown(ctx: ScenarioContext, brief = false): StepReport {
  const before = brief ? null : ctx.sys.trace.snapshot();
  const failures: string[] = [];
  const notes: string[] = [];
  // What the closes, exits and removals report (a WARN, a use-after-free) counts as the
  // teardown's failure, as a step's reports count as the step's.
  const seenViolations = ctx.sys.sched.violations.length;
  // A wait nothing can end (every thread asleep) stops the teardown there: it is reported as the
  // deadlock it is, and the oracles, which would judge a half-torn-down world, do not run.
  let hung = false;
  if (ctx.livelocked !== null) failures.push(`teardown not run: ${ctx.livelocked}`);
  else {
    try {
      const sc = ctx.k.syscalls;
      for (const fd of [...ctx.sys.files.keys()].sort((a, b) => a - b)) {
        const ret = ctx.sys.runPath(
          'teardown',
          () => scp.sysClose$(ctx.sys, fd),
          () => sc.sysClose(ctx.sys, fd),
        );
        if (isErr(ret)) failures.push(`close(${fd}) failed with -${errnoName(ret)}`);
        else notes.push(`closed fd ${fd}`);
        ctx.openFiles.delete(fd);
      }
      for (const [name, p] of ctx.procs) {
        if (p.exited || p.mm === null) continue;
        const ret = ctx.sys.runPath(
          name,
          () => scp.sysExit$(ctx.sys, p),
          () => sc.sysExit(ctx.sys, p),
        );
        if (isErr(ret)) failures.push(`exit(${name}) failed with -${errnoName(ret)}`);
        else notes.push(`exited ${name}`);
      }
      // Unbinding is the last thing: the driver's remove() undoes what probe() set up.
      for (const dev of sdkDevices(ctx.sys)) {
        if (dev.state !== 'bound') continue;
        ctx.sys.run(`remove:${dev.name}`, deviceUnregister(dev));
        notes.push(`removed ${dev.name}`);
      }
      // A kthread idle for work is ended by its driver's remove() (kthread_stop); one still asleep
      // now is a real hang: nothing is left that could wake it.
      const stuck = ctx.sys.sched.blockedThreads();
      if (stuck.length > 0) {
        failures.push(
          `oracle deadlock: ${stuck
            .map((t) => `${t.name} still waits on ${t.waitingOn?.name ?? '?'}`)
            .join('; ')} after every file was closed, every process exited and every device was removed`,
        );
      }
    } catch (e) {
      if (!(e instanceof Error && e.name === 'DeadlockError')) throw e;
      hung = true;
      failures.push(`oracle deadlock: ${e.message.replace(/^deadlock: /, '')} during teardown`);
    }
  }
  for (const v of ctx.sys.sched.violations.slice(seenViolations))
    failures.push(`oracle ${v.oracle}: ${v.message}`);
  if (ctx.livelocked === null && !hung) {
    const { violations, notes: oracleNotes } = runOracles(ctx, tornDown(ctx));
    notes.push(...oracleNotes);
    failures.push(...violations.map((v) => `oracle ${v.oracle}: ${v.message}`));
  }
  return {
    section: 'teardown',
    index: 0,
    op: 'teardown',
    line: 0,
    summary: 'close every file, exit every process, check every oracle',
    ret: 0,
    errno: null,
    outputs: {},
    counters: before === null ? {} : countersObject(ctx.sys.trace.since(before)),
    notes,
    failures,
    ok: failures.length === 0,
  };
}

/** Whole-run statistics: every counter plus memory use. */
export function runStats(ctx: ScenarioContext): Record<string, number> {
  return {
    ...countersObject(ctx.sys.trace.counters),
    'mem.ram_frames_used': ctx.sys.phys.usedRamFrames(),
    'mem.swap_slots_used': ctx.sys.swap.used,
  };
}

/** Runs `steps` (or `setup` then `final` for a thread scenario run sequentially). */
export function runScenario(
  parsed: ParsedScenario,
  k: KernelApi,
  opts: RunOptions = {},
): { report: RunReport; ctx: ScenarioContext } {
  const s = parsed.scenario;
  const ctx = buildWorld(parsed, k, opts.trace === true || opts.faults === true);
  // Only the faults are wanted: the events go once each step has read its own.
  const dropEvents = opts.faults === true && opts.trace !== true;
  opts.onWorld?.(ctx);
  const sections: [string, StepT[]][] = [];
  if (s.setup !== undefined) sections.push(['setup', s.setup]);
  if (s.steps !== undefined) sections.push(['steps', s.steps]);
  if (s.threads !== undefined) {
    for (const [t, steps] of Object.entries(s.threads)) sections.push([t, steps]);
  }
  if (s.final !== undefined) sections.push(['final', s.final]);
  const total = sections.reduce((n, [, st]) => n + st.length, 0) + 1;
  const reports: StepReport[] = [];
  let done = 0;
  for (const [section, steps] of sections) {
    const base: Path = s.threads?.[section] !== undefined ? ['threads', section] : [section];
    steps.forEach((step, i) => {
      const r = runStepNow(ctx, step, section, i, [...base, i]);
      if (dropEvents) ctx.sys.trace.clear();
      reports.push(r);
      opts.onStep?.(r, ++done, total);
    });
  }
  const td = teardown(ctx);
  reports.push(td);
  opts.onStep?.(td, ++done, total);
  const violations = [...ctx.sys.sched.violations];
  return {
    ctx,
    report: {
      name: s.name ?? parsed.file,
      ok: reports.every((r) => r.ok),
      steps: reports,
      stats: runStats(ctx),
      violations,
    },
  };
}
