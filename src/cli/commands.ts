/** The CLI's commands as plain async functions returning an exit code (main.ts wires them to commander). */
import { availableParallelism } from 'node:os';
import { extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CaseResult } from '../conformance/types.ts';
import { explore, replay } from '../node/explore/index.ts';
import type { CoverageReport } from '../sched/explore/coverage.ts';
import { DEFAULT_MAX_STEPS, decodeToken, runSchedule } from '../sched/explore/index.ts';
import { parseShard, type Shard } from '../sched/explore/shard.ts';
import type { ExploreResult, ExploreTarget, StrategyName } from '../sched/explore/types.ts';
import { demoScenarioText } from '../scenario/demo.ts';
import { CALLBACK_BOUND_ORACLE, targetFromParsed } from '../scenario/explore_target.ts';
import { loadKernel } from '../scenario/kernel.ts';
import { renderDriverIssue } from '../scenario/driver_module.ts';
import { judgeOutcome } from '../scenario/outcome.ts';
import {
  type ParsedScenario,
  parseScenarioFile,
  parseScenarioText,
  ScenarioError,
} from '../scenario/parse.ts';
import { preloadDriver, runScenario } from '../scenario/runner.ts';
import { scenarioFingerprint } from '../scenario/fingerprint.ts';
import { scenarioJsonSchema } from '../scenario/schema.ts';
import { EXIT, InternalError, UsageError } from './errors.ts';
import { cmdExploreMerge } from './explore_merge.ts';
import { formatRunSummary, formatStats, formatStep, style, table, toJson } from './output.ts';
import { progressBar } from './progress.ts';
import { checkTracePath, traceFormat, writeTrace } from './trace.ts';
import { DEFAULT_CALLBACK_MS, startWatchdog, type Watchdog } from './watchdog.ts';

function out(s: string): void {
  process.stdout.write(`${s}\n`);
}

function intOption(v: string | undefined, name: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v)))
    throw new UsageError(`--${name} takes an integer from ${min} to 2^53-1, got '${v}'`);
  return Number(v);
}

export interface RunOpts {
  json?: boolean;
  seed?: string;
  trace?: string;
  traceFormat?: string;
  callbackTimeout?: string;
}

/** `--callback-timeout 10s`: how long a driver callback may run without yielding. */
function parseCallbackTimeout(v: string | undefined): number {
  if (v === undefined) return DEFAULT_CALLBACK_MS;
  const b = parseBudget(v);
  if (b?.ms === undefined || b.ms <= 0)
    throw new UsageError(`--callback-timeout takes a time (10s, 500ms, 1m), got '${v}'`);
  return b.ms;
}

/**
 * The watchdog of a command that runs a user driver or has a time budget: when a driver callback
 * runs `callbackMs` without yielding, or the budget (plus a second of grace) is gone while one
 * step still runs, prints one line and exits (2: the driver module misbehaves; 3: a model path);
 * when the main thread does not stop, the watchdog thread prints the line and kills the process.
 */
function guard(
  file: string,
  modules: ReadonlyMap<string, string>,
  callbackMs: number,
  budgetMs: number | undefined,
  threadNow: () => string,
): Watchdog | null {
  if (modules.size === 0 && budgetMs === undefined) return null;
  const started = Date.now();
  return startWatchdog({
    callbackMs,
    deadline: budgetMs === undefined ? 0 : started + budgetMs + 1000,
    file,
    modules,
    threadNow,
    onFire(what, path, workerThread, step) {
      const thread = workerThread ?? threadNow();
      const module = path !== null ? (modules.get(path[0]) ?? [...modules.values()][0]) : undefined;
      if (what === 'callback' && path !== null && module !== undefined) {
        const why = renderDriverIssue({
          code: 'callback_time_bound',
          module,
          path: [path[0], path[1]],
          ms: callbackMs,
          thread,
          ...(step !== null && step !== '' ? { step } : {}),
        });
        process.stderr.write(`${file}: ${why}\n`);
        process.exit(EXIT.usage);
      }
      const inside =
        path !== null ? `driver callback '${path.join('.')}' of thread ${thread}` : `thread ${thread}`;
      process.stderr.write(
        `${file}: the time budget ran out while ${inside} was inside one step that did not return\n`,
      );
      process.exit(path !== null ? EXIT.usage : EXIT.internal);
    },
  });
}

/** The driver modules a scenario loads, by export name (the first part of a callback's path). */
function driverModules(parsed: ParsedScenario): Map<string, string> {
  const m = new Map<string, string>();
  const d = parsed.scenario.driver;
  if (d !== undefined) m.set(d.export, d.module);
  for (const dev of Object.values(parsed.scenario.devices ?? {}))
    if ('driver' in dev && !m.has(dev.driver.export)) m.set(dev.driver.export, dev.driver.module);
  return m;
}

export async function cmdRun(file: string | undefined, o: RunOpts): Promise<number> {
  intOption(o.seed, 'seed');
  const format = o.trace !== undefined ? traceFormat(o.trace, o.traceFormat) : 'json';
  checkTracePath(o.trace);
  const k = await loadKernel();
  const parsed =
    file !== undefined ? parseScenarioFile(file) : parseScenarioText(demoScenarioText(), '<demo>');
  // Driver modules are imported ahead, so they share this process' kernel modules.
  await preloadDriver(parsed);
  const s = style(process.stdout);
  // The header waits for the first step, so a file the world cannot be built from prints only
  // its one error line.
  let headerDone = o.json === true;
  const header = () => {
    if (headerDone) return;
    headerDone = true;
    const title = parsed.scenario.name ?? file ?? 'demo';
    out(
      s.bold(`scenario ${title}`) +
        (file !== undefined ? s.dim(` (${file})`) : s.dim(' (built-in demo; run FILE for your own)')),
    );
    if (parsed.scenario.description !== undefined) out(s.dim(parsed.scenario.description));
  };
  let last: { sys: { sched: { current: { name: string } | null } } } | null = null;
  const dog = guard(
    file ?? '<demo>',
    driverModules(parsed),
    parseCallbackTimeout(o.callbackTimeout),
    undefined,
    () => last?.sys.sched.current?.name ?? '?',
  );
  const { report, ctx } = runScenario(parsed, k, {
    onWorld: (c) => {
      last = c;
    },
    trace: o.trace !== undefined,
    faults: o.json === true,
    onStep: (r) => {
      header();
      if (o.json !== true) for (const l of formatStep(r, s)) out(l);
    },
  });
  dog?.stop();
  if (o.trace !== undefined)
    writeTrace(o.trace, [{ name: report.name, events: ctx.sys.trace.events }], format);
  if (o.json === true) {
    out(
      toJson({
        ok: report.ok,
        name: report.name,
        steps: report.steps,
        stats: report.stats,
        violations: report.violations,
      }),
    );
  } else {
    for (const l of formatStats(report.stats, s)) out(l);
    out('');
    out(formatRunSummary(report, s));
    if (o.trace !== undefined) out(s.dim(`trace written to ${o.trace} (open it in https://ui.perfetto.dev)`));
  }
  return report.ok ? EXIT.ok : EXIT.failed;
}

export interface ExploreOpts {
  json?: boolean;
  seed?: string;
  strategy?: string;
  budget?: string;
  replay?: string;
  preemptionBound?: string;
  workers?: string;
  trace?: string;
  traceFormat?: string;
  /** commander sets it false for --no-por. */
  por?: boolean;
  restore?: boolean;
  /** commander sets it false for --no-state-cache. */
  stateCache?: boolean;
  /** `I/N`: run part I of N of the search. */
  shard?: string;
  /** Combine the --json results of shards instead of exploring. */
  merge?: string[];
  callbackTimeout?: string;
}

/** `--budget 500` (schedules), `--budget 5s` / `300ms` / `2m` (time). */
export function parseBudget(v: string | undefined): { schedules?: number; ms?: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (m === null)
    throw new UsageError(`--budget takes a schedule count (1000) or a time (5s, 300ms, 2m), got '${v}'`);
  const n = Number(m[1]);
  if (m[2] === undefined) {
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError(`--budget: a schedule count is a positive integer, got '${v}'`);
    return { schedules: n };
  }
  const ms = m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
  return { ms, schedules: Number.POSITIVE_INFINITY };
}

/**
 * A replay token names choices by their position in one scenario's schedule. Run it once and
 * check that every choice it names comes, with that many threads to choose from: a token made for
 * another scenario (or an older version of this one) is a usage error, not a quiet "no violation".
 */
function checkTokenFits(target: ExploreTarget, token: string): void {
  const t = decodeToken(token);
  const misfit = (why: string) =>
    new UsageError(`--replay: the token does not fit this scenario (${why}); was it made for another file?`);
  let choices = 0;
  const outcome = runSchedule(
    target,
    {
      choose(ctx) {
        choices = ctx.depth + 1;
        const i = t.overrides.get(ctx.depth) ?? (ctx.lastIndex >= 0 ? ctx.lastIndex : 0);
        if (i >= ctx.runnable.length)
          throw misfit(`choice ${ctx.depth} picks thread ${i} of ${ctx.runnable.length}`);
        return i;
      },
    },
    { maxSteps: t.maxSteps ?? DEFAULT_MAX_STEPS, recordTrace: false },
  );
  choices = Math.max(choices, outcome.decisions.length);
  const last = Math.max(-1, ...t.overrides.keys());
  if (last >= choices) throw misfit(`it names choice ${last}, the schedule has ${choices}`);
}

function coverageJson(c: CoverageReport): Record<string, unknown> {
  return { pairs: c.pairs, both_orders: c.bothOrders, one_order: c.oneOrder, both: c.both };
}

/** Shown pairs of steps run in one order only. */
const COVERAGE_LINES = 8;

function coverageText(c: CoverageReport): string[] {
  const lines = [`coverage: ${c.bothOrders} of ${c.pairs} conflicting step pairs ran in both orders`];
  for (const [a, b] of c.oneOrder.slice(0, COVERAGE_LINES)) lines.push(`  only ${a}  before  ${b}`);
  if (c.oneOrder.length > COVERAGE_LINES)
    lines.push(`  ... and ${c.oneOrder.length - COVERAGE_LINES} more (--json lists them all)`);
  return lines;
}

export async function cmdExplore(file: string | undefined, o: ExploreOpts): Promise<number> {
  if (o.merge !== undefined) {
    if (file !== undefined) o.merge.unshift(file);
    return cmdExploreMerge(o.merge, o, out);
  }
  if (file === undefined) throw new UsageError('explore needs a scenario file (or --merge FILES)');
  let shard: Shard | undefined;
  if (o.shard !== undefined) {
    try {
      shard = parseShard(o.shard);
    } catch (e) {
      throw new UsageError(`--shard: ${(e as Error).message}`);
    }
    if (o.replay !== undefined) throw new UsageError('--shard splits a search; --replay runs one schedule');
  }
  // PCT by default: kernel races typically need one thread to stall at one precise point while
  // another runs a long path, which uniform random choice almost never produces.
  const strategy = (o.strategy ?? 'pct') as StrategyName;
  if (!['random', 'pct', 'dfs'].includes(strategy))
    throw new UsageError(`--strategy is random, pct or dfs, got '${o.strategy}'`);
  const seed = intOption(o.seed, 'seed') ?? 1;
  if (o.trace !== undefined) traceFormat(o.trace, o.traceFormat);
  const budget = parseBudget(o.budget);
  const preemptionBound = intOption(o.preemptionBound, 'preemption-bound');
  // More workers than cores only adds memory and contention; results do not depend on the count.
  const workers = Math.min(intOption(o.workers, 'workers', 1) ?? 1, availableParallelism());
  checkTracePath(o.trace);
  const callbackMs = parseCallbackTimeout(o.callbackTimeout);
  const k = await loadKernel();
  const parsed = parseScenarioFile(file);
  // Load a user driver now, so its compile time is not counted as search time.
  await preloadDriver(parsed);
  if (parsed.scenario.threads === undefined) {
    throw new ScenarioError(
      file,
      1,
      1,
      "explore needs 'threads: { NAME: [steps] }' (this file has only 'steps'; use hetmem run)",
    );
  }
  const restore = o.restore !== false;
  const target = targetFromParsed(parsed, k, { restore });
  const fingerprint = scenarioFingerprint(parsed);
  const s = style(process.stdout);
  const dog = guard(
    file,
    driverModules(parsed),
    callbackMs,
    o.replay === undefined ? budget?.ms : undefined,
    () => target.last?.sys.sched.current?.name ?? '?',
  );
  let result: ExploreResult;
  if (o.replay !== undefined) {
    try {
      const [core, fp] = o.replay.trim().split('~');
      if (fp !== undefined && fp !== fingerprint)
        throw new UsageError(
          '--replay: the token was made for another scenario (or another version of this file)',
        );
      checkTokenFits(target, core);
      result = replay(target, core);
    } catch (e) {
      if (e instanceof Error && e.name === 'ReplayTokenError') throw new UsageError(e.message);
      throw e;
    }
  } else {
    const bar = progressBar('exploring', o.json !== true);
    const descriptor = {
      // explore_target.ts beside src/cli/, explore_target.js beside dist/cli/.
      module: fileURLToPath(
        new URL(`../scenario/explore_target${extname(import.meta.url)}`, import.meta.url),
      ),
      exportName: 'scenarioTarget',
      prepareExportName: 'prepareScenarioTarget',
      // Workers watch their driver callbacks in the watchdog's shared memory.
      args: { file: resolve(file), restore, ...(dog !== null ? { watch: dog.shared } : {}) },
    };
    try {
      result = explore(workers > 1 ? descriptor : target, {
        strategy,
        seed,
        budget,
        preemptionBound,
        workers,
        por: o.por !== false,
        stateCache: o.stateCache !== false,
        shard,
        onProgress: (done, total) => {
          bar.update(done, total);
        },
      });
    } finally {
      bar.stop();
    }
  }
  dog?.stop();
  if (o.trace !== undefined) {
    // Rerun the reported schedule with the event log on.
    const traced = targetFromParsed(parsed, k, { trace: true });
    replay(traced, result.replay);
    // Mark where the schedule broke: an instant on a track of its own.
    if (result.violation !== null)
      traced.last?.sys.trace.emit(
        'violation',
        result.violation.oracle,
        'i',
        { message: result.violation.message },
        'violation',
      );
    writeTrace(
      o.trace,
      [{ name: parsed.scenario.name ?? file, events: traced.last?.sys.trace.events ?? [] }],
      traceFormat(o.trace, o.traceFormat),
    );
  }
  const v = result.violation;
  // A driver callback that looped is the module's error, not a finding (as `run` reports it).
  if (v?.oracle === CALLBACK_BOUND_ORACLE) {
    process.stderr.write(`${file}: ${v.message}\n`);
    return EXIT.usage;
  }
  const judged = judgeOutcome(parsed.scenario.explore, v);
  if (o.json === true) {
    out(
      toJson({
        violation:
          v === null
            ? null
            : { oracle: v.oracle, message: v.message, diagram: v.diagram, preemptions: v.preemptions },
        schedules: result.schedules,
        exhausted: result.exhausted,
        replay: `${result.replay}~${fingerprint}`,
        elapsed_ms: Math.round(result.elapsedMs),
        declared: judged.declared,
        matched: judged.matched,
        ...(result.coverage !== undefined ? { coverage: coverageJson(result.coverage) } : {}),
        ...(result.states !== undefined ? { states: result.states } : {}),
        ...(shard !== undefined ? { shard: { index: shard.index + 1, count: shard.count } } : {}),
      }),
    );
  } else {
    const how =
      o.replay !== undefined
        ? 'replayed 1 schedule'
        : `explored ${result.schedules} schedule(s) with ${strategy}`;
    out(
      `${how}${result.exhausted ? ' (the bounded space is exhausted)' : ''} in ${Math.round(result.elapsedMs)} ms`,
    );
    if (v === null) out(judged.matched ? s.ok('no violation') : s.bad('no violation'));
    else {
      const line = `violation (${v.oracle}): ${v.message}`;
      out(judged.declared !== null && judged.matched ? s.ok(line) : s.bad(line));
      out('');
      out(v.diagram);
      out('');
      out(`replay: hetmem explore ${file} --replay ${result.replay}~${fingerprint}`);
    }
    if (judged.declared !== null)
      out(judged.matched ? s.ok(`outcome: ${judged.reason}`) : s.bad(`outcome: ${judged.reason}`));
    if (result.coverage !== undefined && o.replay === undefined) {
      for (const line of coverageText(result.coverage)) out(s.dim(line));
    }
    if (result.states !== undefined && o.replay === undefined)
      out(
        s.dim(
          `states: ${result.states.hashed} hashed, ${result.states.pruned} schedule(s) pruned at a state explored before` +
            (result.states.unrecorded > 0
              ? `, ${result.states.unrecorded} visit(s) not recorded (the state cache was full)`
              : ''),
        ),
      );
    if (o.trace !== undefined) out(s.dim(`trace written to ${o.trace}`));
  }
  return judged.matched ? EXIT.ok : EXIT.failed;
}

export interface ConformanceOpts {
  suite?: string;
  json?: boolean;
}

export async function cmdConformance(o: ConformanceOpts): Promise<number> {
  const { suites } = await import('../conformance/suites.ts');
  const { runCase } = await import('../conformance/types.ts');
  const names = Object.keys(suites);
  if (o.suite !== undefined && !names.includes(o.suite)) {
    throw new UsageError(`--suite is one of ${names.join(', ')}, got '${o.suite}'`);
  }
  const chosen = o.suite !== undefined ? [o.suite] : names;
  const cases = chosen.flatMap((n) => (suites[n] !== undefined ? suites[n]() : []));
  const bar = progressBar('conformance', o.json !== true);
  const results: CaseResult[] = [];
  for (const c of cases) {
    results.push(await runCase(c));
    bar.update(results.length, cases.length);
  }
  bar.stop();
  const failed = results.filter((r) => r.status === 'fail').length;
  if (o.json === true) {
    out(toJson({ suite: o.suite ?? 'all', cases: results }));
  } else {
    const s = style(process.stdout);
    const colour = (st: string) => (st === 'pass' ? s.ok(st) : st === 'fail' ? s.bad(st) : s.dim(st));
    const rows = results.map((r) => [r.name, r.variant, r.status, r.reason ?? '']);
    const lines = table(rows, s, ['case', 'variant', 'status', 'reason']);
    out(lines[0]);
    lines.slice(1).forEach((l, i) => {
      out(l.replace(results[i].status, colour(results[i].status)));
    });
    const count = (st: string) => results.filter((r) => r.status === st).length;
    if (cases.length === 0) out(s.dim(`no cases in ${o.suite ?? 'any suite'} yet`));
    out(
      `${count('pass')} pass, ${failed} fail, ${count('skip')} skip, ${count('not-modelled')} not modelled${count('kernel-fails') > 0 ? `, ${count('kernel-fails')} failing as on the kernel` : ''}`,
    );
  }
  return failed > 0 ? EXIT.failed : EXIT.ok;
}

export interface BenchOpts {
  json?: boolean;
  smoke?: boolean;
  filter?: string;
  seed?: string;
}

interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  anchor?: number;
  ratio?: number;
  goal: string;
  pass: boolean;
}

export async function cmdBench(o: BenchOpts): Promise<number> {
  const seed = intOption(o.seed, 'seed');
  // The compiled CLI runs the compiled benchmarks (dist-bench/, made by `npm run build` from
  // bench/), which measure the compiled package; the sources' CLI runs bench/*.ts.
  const entry = import.meta.url.endsWith('.ts') ? 'bench/run.ts' : 'dist-bench/run.js';
  const url = pathToFileURL(resolve(fileURLToPath(new URL(`../../${entry}`, import.meta.url)))).href;
  let mod: {
    runBenchmarks?: (opts: Record<string, unknown>) => Promise<{ figures: BenchFigure[] }>;
    noMatch?: (filter: string, suites: readonly string[]) => string;
    SUITE_NAMES?: readonly string[];
  };
  try {
    mod = (await import(url)) as typeof mod;
  } catch (e) {
    throw new InternalError(
      `benchmarks are not available: ${entry} could not be loaded (${(e as Error).message.split('\n')[0]}); they run from a clone of the hetmem repository after \`npm run build\``,
    );
  }
  if (typeof mod.runBenchmarks !== 'function')
    throw new InternalError(`${entry} does not export runBenchmarks`);
  const bar = progressBar('bench', o.json !== true);
  const r = await mod.runBenchmarks({
    smoke: o.smoke === true,
    filter: o.filter,
    seed,
    // runBenchmarks names each benchmark as it starts; the total is not known up front.
    onProgress: (() => {
      let done = 0;
      return () => {
        bar.update(++done, undefined);
      };
    })(),
  });
  bar.stop();
  // A filter that names nothing would otherwise print an empty list and exit 0.
  if (o.filter !== undefined && r.figures.length === 0 && mod.noMatch !== undefined)
    throw new UsageError(mod.noMatch(o.filter, mod.SUITE_NAMES ?? []));
  // A smoke pass checks that every benchmark runs; at its small sizes (and on a busy CI machine)
  // the goals say nothing, so they are shown but do not decide the exit code.
  const judged = o.smoke !== true;
  const ok = !judged || r.figures.every((f) => f.pass);
  if (o.json === true) out(toJson({ figures: r.figures, judged }));
  else {
    const s = style(process.stdout);
    const rows = r.figures.map((f) => [
      f.name,
      `${f.value} ${f.unit}`,
      f.anchor === undefined ? '' : String(f.anchor),
      f.ratio === undefined ? '' : f.ratio.toFixed(2),
      f.goal,
      f.pass ? 'pass' : 'FAIL',
    ]);
    for (const l of table(rows, s, ['figure', 'value', 'anchor', 'ratio', 'goal', ''])) out(l);
    if (!judged)
      out(s.dim(`smoke pass: ${r.figures.length} figures ran; goals are judged only without --smoke`));
  }
  return ok ? EXIT.ok : EXIT.failed;
}

export function cmdSchema(): number {
  out(JSON.stringify(scenarioJsonSchema(), null, 2));
  return EXIT.ok;
}

export interface FuzzOpts {
  seconds?: string;
  programs?: string;
  seed?: string;
  ops?: string;
  workers?: string;
  out?: string;
  json?: boolean;
}

export async function cmdFuzz(o: FuzzOpts): Promise<number> {
  const { OP_GROUPS } = await import('../fuzz/generate.ts');
  const { runFuzz } = await import('../fuzz/run.ts');
  const seconds = intOption(o.seconds, 'seconds', 1);
  const programs = intOption(o.programs, 'programs', 1);
  if (seconds !== undefined && programs !== undefined)
    throw new UsageError('give --seconds or --programs, not both');
  const groups = (o.ops ?? OP_GROUPS.join(',')).split(',').map((g) => g.trim());
  for (const g of groups) {
    if (!(OP_GROUPS as readonly string[]).includes(g))
      throw new UsageError(`--ops takes a list of ${OP_GROUPS.join(', ')}, got '${g}'`);
  }
  const workers = Math.min(intOption(o.workers, 'workers', 1) ?? 1, availableParallelism());
  const bar = progressBar('fuzzing', o.json !== true);
  const r = await runFuzz({
    seconds: seconds ?? (programs === undefined ? 60 : undefined),
    programs,
    seed: intOption(o.seed, 'seed') ?? 1,
    groups: groups as typeof OP_GROUPS,
    workers,
    out: o.out,
    onProgress: (n) => {
      bar.update(n, programs);
    },
  });
  bar.stop();
  if (o.json === true) out(toJson(r));
  else {
    const s = style(process.stdout);
    out(
      `${r.programs} programs, ${r.ops} ops in ${(r.elapsed_ms / 1000).toFixed(1)} s; corpus ${r.corpus} programs, ${r.features} features; ${r.rejected} rejected as input`,
    );
    const reached = Object.entries(r.op_results);
    out(
      s.dim(
        `${reached.length} ops reached, ${reached.reduce((n, [, res]) => n + res.length, 0)} op results (--json lists them)`,
      ),
    );
    for (const k of r.known) out(s.dim(`known (kernel behaviour): ${k.kind}: ${k.message}`));
    for (const f of [...r.violations, ...r.internal]) {
      out(s.bad(`${f.kind}${f.oracle !== undefined ? ` (${f.oracle})` : ''}: ${f.message}`));
      if (f.file !== null) out(`  reproduce: hetmem run ${f.file}`);
    }
    if (r.violations.length === 0 && r.internal_errors === 0) out(s.ok('no violation, no internal error'));
  }
  return r.violations.length === 0 && r.internal_errors === 0 ? EXIT.ok : EXIT.failed;
}

export interface DifftestOpts {
  seconds?: string;
  seed?: string;
  out?: string;
  json?: boolean;
}

export async function cmdDifftest(o: DifftestOpts): Promise<number> {
  const { runDifftest, HelperError } = await import('../fuzz/difftest.ts');
  const seconds = intOption(o.seconds, 'seconds', 1) ?? 60;
  const seed = intOption(o.seed, 'seed') ?? 1;
  const bar = progressBar('difftest', o.json !== true);
  let r;
  try {
    r = runDifftest({
      seconds,
      seed,
      out: o.out,
      onProgress: (n) => {
        bar.update(n, undefined);
      },
    });
  } catch (e) {
    if (e instanceof HelperError) throw new UsageError(e.message);
    throw e;
  } finally {
    bar.stop();
  }
  if (o.json === true) out(toJson(r));
  else {
    const s = style(process.stdout);
    out(
      `${r.programs} programs, ${r.ops} ops on the model and the live kernel in ${(r.elapsed_ms / 1000).toFixed(1)} s; ${r.known_differences} known differences`,
    );
    for (const m of r.mismatches) {
      out(
        s.bad(
          `mismatch at ${m.op}: model ${m.model.ret}${m.model.extra !== undefined ? ` ${m.model.extra}` : ''}, live kernel ${m.live.ret}${m.live.extra !== undefined ? ` ${m.live.extra}` : ''}`,
        ),
      );
      if (!m.reproduced) out('  (run again, the live kernel agreed with the model)');
      if (m.file !== null) out(`  reproduce: hetmem run ${m.file}`);
    }
    const pc = r.pool_changed;
    if (pc !== null) {
      out(
        s.bad(
          `the live kernel's huge-page pool was not idle after program ${pc.index} (HugePages_Free ${pc.free}, HugePages_Rsvd ${pc.rsvd}, HugePages_Surp ${pc.surp} of ${pc.total}); the programs after it used no huge pages`,
        ),
      );
      if (pc.file !== null) out(`  the program: ${pc.file}`);
    }
    if (r.mismatches.length === 0) out(s.ok('no mismatch'));
  }
  return r.mismatches.length === 0 ? EXIT.ok : EXIT.failed;
}
