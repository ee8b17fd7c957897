/**
 * Parallel random/PCT search on node:worker_threads, with results independent of the worker count.
 *
 * Schedules are numbered and schedule i depends only on (seed, i) (and k for PCT), so the master
 * hands out chunks of numbers in order; the reported failure is the lowest-numbered one, and the
 * master keeps collecting until every chunk below it has come back. No chunk above a known failure
 * is handed out, and budgets count schedule numbers, so one worker or eight report the same.
 *
 * explore() is synchronous, so the master does not use its event loop while waiting: workers
 * answer on MessagePorts, bump a shared counter and Atomics.notify; the master Atomics.wait()s and
 * drains the ports with receiveMessageOnPort. Workers rebuild the target from its descriptor after
 * registering tsx, since closures cannot cross threads.
 *
 * The same workers also explore subtrees of a parallel depth-first search (pardfs.ts): a 'dfs'
 * task is a batch of subtrees, each the path that leads to it and a cap on its schedules.
 */
import {
  MessageChannel,
  Worker,
  receiveMessageOnPort,
  workerData,
  type MessagePort,
} from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { Coverage, type CoverageReport } from '../../sched/explore/coverage.ts';
import { DfsStrategy, type DfsNodeData } from '../../sched/explore/dfs.ts';
import { makeStrategy, type ResolvedOptions } from '../../sched/explore/options.ts';
import type { ParallelConfig, ParallelResult } from '../../sched/explore/parallel.ts';
import { overridesOf } from '../../sched/explore/run.ts';
import { searchLoop } from '../../sched/explore/search.ts';
import { subtreeStrategy, type PrefixNode } from '../../sched/explore/shard.ts';
import { emptyStateStats, type StateStats } from '../../sched/explore/state_cache.ts';
import type { ExploreTarget, TargetDescriptor } from '../../sched/explore/types.ts';

/** A worker that sends nothing for this long is presumed dead. */
const STALL_MS = 10 * 60 * 1000;

interface WorkerBoot {
  kind: 'hetmem-explore-worker';
  /** tsx's ESM API to register first, when this module runs from its TypeScript sources. */
  tsxApi: string | null;
  entry: string;
  descriptor: TargetDescriptor;
  options: ResolvedOptions;
  pctSteps: number | undefined;
  port: MessagePort;
  signal: Int32Array;
}

/** One subtree of a parallel DFS: `item` numbers it in DFS order among all the master's items. */
export interface DfsUnitTask {
  item: number;
  prefix: DfsNodeData[];
  /** Run at most this many schedules of it (what the global budget may still need). */
  cap: number;
}

export interface DfsUnitResult {
  item: number;
  /** Schedules run. */
  ran: number;
  /** The subtree was covered (false: stopped by its cap, the deadline, or a violation). */
  exhausted: boolean;
  /** The first failing schedule, by its position among the subtree's schedules. */
  violation: { pos: number; overrides: Overrides } | null;
  /** The last schedule run. */
  last: Overrides | null;
}

/** One subtree of a DPOR search split over workers (pardpor.ts), `item` its place in order. */
export interface DporUnitTask {
  item: number;
  prefix: PrefixNode[];
  cap: number;
}

export interface DporUnitResult extends DfsUnitResult {
  coverage: Pick<CoverageReport, 'oneOrder' | 'both'>;
  states: StateStats;
}

type ToWorker =
  | { type: 'chunk'; start: number; end: number }
  | { type: 'dfs'; units: DfsUnitTask[]; deadlineEpoch: number }
  | { type: 'dpor'; unit: DporUnitTask; deadlineEpoch: number }
  | { type: 'stop' };

export type Overrides = [number, number][];

export type FromWorker =
  | {
      type: 'chunk';
      start: number;
      ran: number;
      violation: { index: number; overrides: Overrides } | null;
      last: { index: number; overrides: Overrides } | null;
    }
  | { type: 'dfs'; units: DfsUnitResult[] }
  | { type: 'dpor'; unit: DporUnitResult }
  | { type: 'error'; message: string };

/**
 * The worker's first code: plain CommonJS (eval workers cannot be TypeScript) that registers tsx
 * when this module is TypeScript (hetmem running from its sources) and then loads this very module
 * to run workerMain(). Compiled JavaScript needs no loader.
 */
const BOOT = `
const { workerData } = require('node:worker_threads');
const fail = (e) => {
  workerData.port.postMessage({ type: 'error', message: String((e && e.stack) || e) });
  Atomics.add(workerData.signal, 0, 1);
  Atomics.notify(workerData.signal, 0);
};
(workerData.tsxApi === null ? Promise.resolve() : import(workerData.tsxApi).then((api) => api.register()))
  .then(() => import(workerData.entry))
  .then((m) => m.workerMain())
  .catch(fail);
`;

function chunkSize(count: number, workers: number): number {
  if (!Number.isFinite(count)) return 16;
  return Math.max(1, Math.min(32, Math.ceil(count / (workers * 8))));
}

/**
 * Worker threads that each rebuild the target, and the master's side of their ports. The master
 * stays synchronous: receive() blocks in Atomics.wait until some worker has answered.
 */
export class WorkerPool {
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  private readonly workers: { worker: Worker; port: MessagePort; inFlight: number }[] = [];
  private quietSince = performance.now();

  constructor(descriptor: TargetDescriptor, o: ResolvedOptions, pctSteps: number | undefined) {
    const tsxApi = /\.[cm]?ts$/.test(import.meta.url) ? import.meta.resolve('tsx/esm/api') : null;
    for (let i = 0; i < o.workers; i++) {
      const { port1, port2 } = new MessageChannel();
      const boot: WorkerBoot = {
        kind: 'hetmem-explore-worker',
        tsxApi,
        entry: import.meta.url,
        descriptor,
        options: { ...o, workers: 1 },
        pctSteps,
        port: port2,
        signal: this.signal,
      };
      const worker = new Worker(BOOT, { eval: true, workerData: boot, transferList: [port2] });
      worker.unref();
      this.workers.push({ worker, port: port1, inFlight: 0 });
    }
  }

  get size(): number {
    return this.workers.length;
  }

  inFlight(w: number): number {
    return this.workers[w].inFlight;
  }

  get busy(): boolean {
    return this.workers.some((w) => w.inFlight > 0);
  }

  send(w: number, msg: ToWorker): void {
    this.workers[w].inFlight++;
    this.workers[w].port.postMessage(msg);
  }

  /**
   * Hands every answer already there to `on` (worker index, message), or waits up to a second for
   * one. Throws when a worker failed or all have been silent for too long.
   */
  receive(on: (w: number, msg: Exclude<FromWorker, { type: 'error' }>) => void): void {
    const seen = Atomics.load(this.signal, 0);
    let got = false;
    this.workers.forEach((w, i) => {
      for (let m = receiveMessageOnPort(w.port); m !== undefined; m = receiveMessageOnPort(w.port)) {
        got = true;
        const msg = m.message as FromWorker;
        if (msg.type === 'error') throw new Error(`explore worker failed: ${msg.message}`);
        w.inFlight--;
        on(i, msg);
      }
    });
    if (got) {
      this.quietSince = performance.now();
    } else {
      if (performance.now() - this.quietSince > STALL_MS)
        throw new Error('explore workers stopped answering');
      Atomics.wait(this.signal, 0, seen, 1000);
    }
  }

  close(): void {
    for (const w of this.workers) {
      const stop: ToWorker = { type: 'stop' };
      w.port.postMessage(stop);
      w.port.close();
      void w.worker.terminate();
    }
  }
}

export function parallelSearch(
  descriptor: TargetDescriptor,
  o: ResolvedOptions,
  cfg: ParallelConfig,
): ParallelResult {
  const size = chunkSize(cfg.endIndex - cfg.startIndex, o.workers);
  const pool = new WorkerPool(descriptor, o, cfg.pctSteps);

  let next = cfg.startIndex;
  let schedules = 0;
  let found = null as ParallelResult['found'];
  let last = null as { index: number; overrides: Overrides } | null;

  const dispatch = (w: number): void => {
    if (next >= cfg.endIndex || performance.now() >= cfg.deadline) return;
    if (found !== null && next > found.index) return;
    const msg: ToWorker = { type: 'chunk', start: next, end: Math.min(next + size, cfg.endIndex) };
    next = msg.end;
    pool.send(w, msg);
  };

  try {
    // Two chunks each, so a worker never idles while the master is between waits.
    for (let w = 0; w < pool.size; w++) dispatch(w);
    for (let w = 0; w < pool.size; w++) dispatch(w);
    while (pool.busy) {
      pool.receive((w, msg) => {
        if (msg.type !== 'chunk') return;
        schedules += msg.ran;
        if (msg.violation !== null && (found === null || msg.violation.index < found.index)) {
          found = { index: msg.violation.index, overrides: new Map(msg.violation.overrides) };
        }
        if (msg.last !== null && (last === null || msg.last.index > last.index)) last = msg.last;
        cfg.onProgress?.(schedules);
        dispatch(w);
      });
    }
  } finally {
    pool.close();
  }
  return { found, schedules, lastOverrides: last === null ? null : new Map(last.overrides) };
}

/** Runs a batch of DFS subtrees in order, stopping at the first that ends the search. */
function runDfsUnits(
  target: ExploreTarget,
  o: ResolvedOptions,
  units: readonly DfsUnitTask[],
  deadline: number,
): DfsUnitResult[] {
  const out: DfsUnitResult[] = [];
  // Each subtree starts at least where the previous one ends: its cap shrinks accordingly.
  let capLeft = Infinity;
  for (const u of units) {
    const cap = Math.min(u.cap, capLeft);
    if (cap <= 0) break;
    const dfs = new DfsStrategy(o.preemptionBound, o.por, u.prefix);
    const r = searchLoop(target, dfs, { maxSteps: o.maxSteps, startIndex: 0, endIndex: cap, deadline });
    out.push({
      item: u.item,
      ran: r.schedules,
      exhausted: r.exhausted,
      violation:
        r.found === null
          ? null
          : { pos: r.found.index, overrides: [...overridesOf(r.found.outcome.decisions)] },
      last: r.last === null ? null : [...overridesOf(r.last.decisions)],
    });
    // Whatever comes after a failure, a cut, or the deadline is never needed.
    if (!r.exhausted) break;
    capLeft = cap - r.schedules;
  }
  return out;
}

/** Searches one subtree of a split DPOR search (also the master's rerun of a subtree cut short). */
export function runDporUnit(
  target: ExploreTarget,
  o: ResolvedOptions,
  u: DporUnitTask,
  deadline: number,
): DporUnitResult {
  const coverage = new Coverage();
  const states = emptyStateStats();
  const r = searchLoop(target, subtreeStrategy(o, u.prefix, states), {
    maxSteps: o.maxSteps,
    startIndex: 0,
    endIndex: u.cap,
    deadline,
    coverage,
  });
  const c = coverage.report();
  return {
    item: u.item,
    ran: r.schedules,
    exhausted: r.exhausted,
    violation:
      r.found === null
        ? null
        : { pos: r.found.index, overrides: [...overridesOf(r.found.outcome.decisions)] },
    last: r.last === null ? null : [...overridesOf(r.last.decisions)],
    coverage: { oneOrder: c.oneOrder, both: c.both },
    states,
  };
}

/** Entry point inside a worker thread (called by BOOT once tsx is registered). */
export async function workerMain(): Promise<void> {
  const boot = workerData as WorkerBoot;
  const { port, signal, descriptor } = boot;
  const post = (msg: FromWorker): void => {
    port.postMessage(msg);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  };
  let target: ExploreTarget;
  try {
    const url = descriptor.module.startsWith('file:')
      ? descriptor.module
      : pathToFileURL(descriptor.module).href;
    const mod = (await import(url)) as Record<string, unknown>;
    if (descriptor.prepareExportName !== undefined) {
      const prepare = mod[descriptor.prepareExportName];
      if (typeof prepare !== 'function')
        throw new TypeError(`${descriptor.module} does not export '${descriptor.prepareExportName}'`);
      await (prepare as (args: unknown) => Promise<unknown>)(descriptor.args);
    }
    const factory = mod[descriptor.exportName];
    if (typeof factory !== 'function')
      throw new TypeError(`${descriptor.module} does not export '${descriptor.exportName}'`);
    target = (factory as (args: unknown) => ExploreTarget)(descriptor.args);
  } catch (e) {
    post({ type: 'error', message: String(e instanceof Error ? (e.stack ?? e.message) : e) });
    return;
  }
  const strategy = makeStrategy(boot.options, boot.pctSteps);
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'stop') {
      port.close();
      return;
    }
    if (msg.type === 'dpor') {
      try {
        const deadline = msg.deadlineEpoch - performance.timeOrigin;
        post({ type: 'dpor', unit: runDporUnit(target, boot.options, msg.unit, deadline) });
      } catch (e) {
        post({ type: 'error', message: String(e instanceof Error ? (e.stack ?? e.message) : e) });
      }
      return;
    }
    if (msg.type === 'dfs') {
      try {
        const deadline = msg.deadlineEpoch - performance.timeOrigin;
        post({ type: 'dfs', units: runDfsUnits(target, boot.options, msg.units, deadline) });
      } catch (e) {
        post({ type: 'error', message: String(e instanceof Error ? (e.stack ?? e.message) : e) });
      }
      return;
    }
    try {
      const r = searchLoop(target, strategy, {
        maxSteps: boot.options.maxSteps,
        startIndex: msg.start,
        endIndex: msg.end,
        deadline: Infinity,
      });
      post({
        type: 'chunk',
        start: msg.start,
        ran: r.schedules,
        violation:
          r.found === null
            ? null
            : { index: r.found.index, overrides: [...overridesOf(r.found.outcome.decisions)] },
        last: r.last === null ? null : { index: r.lastIndex, overrides: [...overridesOf(r.last.decisions)] },
      });
    } catch (e) {
      post({ type: 'error', message: String(e instanceof Error ? (e.stack ?? e.message) : e) });
    }
  });
}
