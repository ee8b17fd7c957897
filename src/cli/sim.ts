/**
 * `hetmem sim`: the policy simulator's command line. Flags set one run; a sim file sets
 * everything and may sweep; flags given beside a file override it. A bad flag, sim file or trace
 * line exits 2 with one line (`FILE:LINE:COL: message` for files).
 */
import { accessSync, constants, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { runSweep } from '../node/sim/pool.ts';
import { parseSize, SizeError } from '../lib/size.ts';
import { SIM_DEFAULTS, SimError, runSim, type SimOptions, type SimResult } from '../sim/engine.ts';
import { runChart, sweepChart } from '../sim/charts.ts';
import { sweepTable } from '../sim/table.ts';
import { applySimKey, parseSimFile, SimFileError, sweepPoints, type SimFile } from '../sim/simfile.ts';
import {
  BINARY_TRACE_FORMATS,
  importTrace,
  TRACE_FORMATS,
  TraceError,
  type TraceFormat,
} from '../sim/traces.ts';
import { EXIT, UsageError } from './errors.ts';
import { progressBar } from './progress.ts';

export interface SimOpts {
  workload?: string;
  footprint?: string;
  gpuMemory?: string;
  policy?: string;
  cost?: string;
  seed?: string;
  warps?: string;
  group?: string;
  iterations?: string;
  processes?: string;
  gpus?: string;
  cpuTouch?: string;
  set?: string[];
  json?: boolean;
  plot?: string;
  workers?: string;
  traceIn?: string;
  format?: string;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function readBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** A flag value as the sim file would give it: numbers as numbers, true/false as booleans. */
function scalar(v: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

function applyFlags(base: SimOptions, o: SimOpts): SimOptions {
  const opts = { ...base, driver: { ...base.driver } } as unknown as Record<string, unknown>;
  const flag = (name: string, key: string, v: string | undefined, asSize = false): void => {
    if (v === undefined) return;
    let val: unknown = scalar(v);
    if (asSize) {
      try {
        val = parseSize(v);
      } catch (e) {
        if (e instanceof SizeError) throw new UsageError(`--${name}: ${e.message}`);
        throw e;
      }
    }
    const why = applySimKey(opts, key, val);
    if (why !== null) throw new UsageError(`--${name}: ${why}`);
  };
  flag('workload', 'workload', o.workload);
  flag('footprint', 'footprint', o.footprint, true);
  flag('gpu-memory', 'gpu_memory', o.gpuMemory, true);
  flag('policy', 'policy', o.policy);
  flag('cost', 'cost', o.cost);
  flag('seed', 'seed', o.seed);
  flag('warps', 'warps', o.warps);
  flag('group', 'group', o.group);
  flag('iterations', 'iterations', o.iterations);
  flag('processes', 'processes', o.processes);
  flag('gpus', 'gpus', o.gpus);
  flag('cpu-touch', 'cpu_touch', o.cpuTouch);
  for (const kv of o.set ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set takes KEY=VALUE, got '${kv}'`);
    const why = applySimKey(opts, `driver.${kv.slice(0, eq)}`, scalar(kv.slice(eq + 1)));
    if (why !== null) throw new UsageError(`--set: ${why}`);
  }
  return opts as unknown as SimOptions;
}

function report(r: SimResult): string {
  const t = r.time_by_component_us;
  return [
    `${r.workload} on ${r.policy}, cost ${r.cost}, footprint ${r.footprint_bytes} B, GPU memory ${r.gpu_memory_bytes} B`,
    `faults ${r.faults} (far ${r.far_faults}, duplicates ${r.duplicates}), batches ${r.batches}, VA blocks per batch ${r.va_blocks_per_batch}, replays ${r.replays}`,
    `pages to GPU ${r.pages_to_gpu} (prefetched ${r.pages_prefetched}), to CPU ${r.pages_to_cpu}, migrated ${r.migrated_bytes} B`,
    `evictions ${r.evictions} (ahead ${r.pre_evictions}), thrashing events ${r.thrashing_events}, throttles ${r.throttles}, pins ${r.pins}, CPU faults ${r.cpu_faults}, fatal ${r.fatal_faults}`,
    `modelled time ${r.time_us} us (${r.us_per_fault} us/fault): far faults ${t.far_faults}, H2D ${t.h2d}, D2H ${t.d2h}, CPU faults ${t.cpu_faults}, throttle ${t.throttle}, compute ${t.compute}`,
    `host wall time ${r.wall_ms} ms`,
  ].join('\n');
}

/**
 * Why `path` cannot take the plot, or null: checked before the run, so a long sweep does not end
 * in an unwritable path. A path that does not exist yet needs a writable directory.
 */
export function unwritable(path: string): string | null {
  const code = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? 'error';
  try {
    if (statSync(path).isDirectory()) return 'EISDIR';
    accessSync(path, constants.W_OK);
    return null;
  } catch (e) {
    if (code(e) !== 'ENOENT') return code(e);
  }
  try {
    const dir = dirname(path);
    if (!statSync(dir).isDirectory()) return 'ENOTDIR';
    accessSync(dir, constants.W_OK);
    return null;
  } catch (e) {
    return code(e);
  }
}

function writePlot(path: string, svg: string): void {
  try {
    writeFileSync(path, svg);
  } catch (e) {
    throw new UsageError(`--plot: cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

export async function cmdSim(file: string | undefined, o: SimOpts): Promise<number> {
  try {
    return await simMain(file, o);
  } catch (e) {
    if (e instanceof SimFileError || e instanceof TraceError) {
      process.stderr.write(`${e.message}\n`);
      return EXIT.usage;
    }
    if (e instanceof SimError) throw new UsageError(e.message);
    throw e;
  }
}

async function simMain(file: string | undefined, o: SimOpts): Promise<number> {
  let sf: SimFile = { base: SIM_DEFAULTS, sweep: [] };
  if (file !== undefined) sf = parseSimFile(file, readText(file, 'sim file'));
  let trace = sf.trace;
  if (o.traceIn !== undefined || o.format !== undefined) {
    if (o.traceIn === undefined || o.format === undefined)
      throw new UsageError('--trace-in and --format go together');
    if (!(TRACE_FORMATS as readonly string[]).includes(o.format))
      throw new UsageError(`--format is one of ${TRACE_FORMATS.join(', ')}`);
    trace = { file: o.traceIn, format: o.format as TraceFormat };
  }
  let base = applyFlags(sf.base, o);
  const plot = o.plot ?? sf.plot?.file;
  if (plot !== undefined) {
    const why = unwritable(plot);
    if (why !== null) {
      if (o.plot !== undefined) throw new UsageError(`--plot: cannot write ${plot}: ${why}`);
      const at = sf.plot as NonNullable<SimFile['plot']>;
      throw new SimFileError(file as string, at.line, at.col, `cannot write plot ${plot}: ${why}`);
    }
  }
  const sweeping = sf.sweep.length > 0;
  if (plot !== undefined && !sweeping) base = { ...base, timeline: true };
  if (trace !== undefined) {
    const data = BINARY_TRACE_FORMATS.has(trace.format)
      ? readBytes(trace.file, 'trace')
      : readText(trace.file, 'trace');
    const t = importTrace(trace.file, data, trace.format);
    base = { ...base, trace: t.accesses, footprint: t.footprint };
  }
  const points = sweepPoints(base, sf.sweep);
  // More workers than cores only adds memory and contention; results do not depend on the count.
  const cores = availableParallelism();
  let workers = Math.min(cores, points.length);
  if (o.workers !== undefined) {
    if (!/^\d+$/.test(o.workers) || Number(o.workers) < 1 || !Number.isSafeInteger(Number(o.workers)))
      throw new UsageError(`--workers takes an integer from 1 to 2^53-1, got '${o.workers}'`);
    workers = Math.min(Number(o.workers), cores, points.length);
  }
  const bar = progressBar('sim', o.json !== true);
  const results: { at: Record<string, unknown>; r: SimResult }[] = [];
  if (workers > 1) {
    const rs = await runSweep(
      points.map((p) => p.opts),
      workers,
      (done, total) => {
        bar.update(Math.floor(done * 1000), total * 1000);
      },
    );
    rs.forEach((r, i) => results.push({ at: points[i].at, r }));
  } else {
    for (const [i, p] of points.entries()) {
      const r = runSim(p.opts, (done, total) => {
        bar.update(i * total + done, points.length * total);
      });
      results.push({ at: p.at, r });
    }
  }
  bar.stop();
  if (plot !== undefined) {
    const spec = sweeping
      ? sweepChart(
          results,
          sf.sweep.map(([k]) => k),
        )
      : runChart(results[0].r);
    // Vega loads only when there is a chart to draw.
    const { chartSvg } = await import('../sim/render.ts');
    writePlot(plot, await chartSvg(spec));
  }
  for (const x of results) delete x.r.timeline;
  if (o.json === true) {
    const out = !sweeping ? results[0].r : { runs: results.map((x) => ({ ...x.at, ...x.r })) };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else if (sweeping) process.stdout.write(`${sweepTable(results)}\n`);
  else process.stdout.write(`${report(results[0].r)}\n`);
  return EXIT.ok;
}
