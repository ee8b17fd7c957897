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
 */
import {
  MessageChannel,
  Worker,
  receiveMessageOnPort,
  workerData,
  type MessagePort,
} from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { makeStrategy, type ResolvedOptions } from './options.ts';
import { overridesOf } from './run.ts';
import { searchLoop } from './search.ts';
import type { ExploreTarget, TargetDescriptor } from './types.ts';

/** A worker that sends nothing for this long is presumed dead. */
const STALL_MS = 10 * 60 * 1000;

interface WorkerBoot {
  kind: 'hetmem-explore-worker';
  tsxApi: string;
  entry: string;
  descriptor: TargetDescriptor;
  options: ResolvedOptions;
  pctSteps: number | undefined;
  port: MessagePort;
  signal: Int32Array;
}

type ToWorker = { type: 'chunk'; start: number; end: number } | { type: 'stop' };

type Overrides = [number, number][];

type FromWorker =
  | {
      type: 'chunk';
      start: number;
      ran: number;
      violation: { index: number; overrides: Overrides } | null;
      last: { index: number; overrides: Overrides } | null;
    }
  | { type: 'error'; message: string };

export interface ParallelConfig {
  startIndex: number;
  endIndex: number;
  deadline: number;
  pctSteps: number | undefined;
  onProgress?(done: number): void;
}

export interface ParallelResult {
  found: { index: number; overrides: Map<number, number> } | null;
  /** Schedules run (those above a failure that were already in flight included). */
  schedules: number;
  lastOverrides: Map<number, number> | null;
}

/**
 * The worker's first code: plain CommonJS (eval workers cannot be TypeScript) that registers tsx
 * and then loads this very module to run workerMain().
 */
const BOOT = `
const { workerData } = require('node:worker_threads');
const fail = (e) => {
  workerData.port.postMessage({ type: 'error', message: String((e && e.stack) || e) });
  Atomics.add(workerData.signal, 0, 1);
  Atomics.notify(workerData.signal, 0);
};
import(workerData.tsxApi)
  .then((api) => { api.register(); return import(workerData.entry); })
  .then((m) => m.workerMain())
  .catch(fail);
`;

function chunkSize(count: number, workers: number): number {
  if (!Number.isFinite(count)) return 16;
  return Math.max(1, Math.min(32, Math.ceil(count / (workers * 8))));
}

export function parallelSearch(
  descriptor: TargetDescriptor,
  o: ResolvedOptions,
  cfg: ParallelConfig,
): ParallelResult {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const size = chunkSize(cfg.endIndex - cfg.startIndex, o.workers);
  const workers: { worker: Worker; port: MessagePort; inFlight: number }[] = [];
  const tsxApi = import.meta.resolve('tsx/esm/api');
  for (let i = 0; i < o.workers; i++) {
    const { port1, port2 } = new MessageChannel();
    const boot: WorkerBoot = {
      kind: 'hetmem-explore-worker',
      tsxApi,
      entry: import.meta.url,
      descriptor,
      options: { ...o, workers: 1 },
      pctSteps: cfg.pctSteps,
      port: port2,
      signal,
    };
    const worker = new Worker(BOOT, { eval: true, workerData: boot, transferList: [port2] });
    worker.unref();
    workers.push({ worker, port: port1, inFlight: 0 });
  }

  let next = cfg.startIndex;
  let schedules = 0;
  let found: ParallelResult['found'] = null;
  let last: { index: number; overrides: Overrides } | null = null;
  let error: string | null = null;

  const dispatch = (w: (typeof workers)[number]): void => {
    if (error !== null || next >= cfg.endIndex || performance.now() >= cfg.deadline) return;
    if (found !== null && next > found.index) return;
    const msg: ToWorker = { type: 'chunk', start: next, end: Math.min(next + size, cfg.endIndex) };
    next = msg.end;
    w.inFlight++;
    w.port.postMessage(msg);
  };

  try {
    // Two chunks each, so a worker never idles while the master is between waits.
    for (const w of workers) dispatch(w);
    for (const w of workers) dispatch(w);
    let quietSince = performance.now();
    while (workers.some((w) => w.inFlight > 0)) {
      const seen = Atomics.load(signal, 0);
      let got = false;
      for (const w of workers) {
        for (let m = receiveMessageOnPort(w.port); m !== undefined; m = receiveMessageOnPort(w.port)) {
          got = true;
          const msg = m.message as FromWorker;
          if (msg.type === 'error') {
            error = msg.message;
            w.inFlight = 0;
            continue;
          }
          w.inFlight--;
          schedules += msg.ran;
          if (msg.violation !== null && (found === null || msg.violation.index < found.index)) {
            found = { index: msg.violation.index, overrides: new Map(msg.violation.overrides) };
          }
          if (msg.last !== null && (last === null || msg.last.index > last.index)) last = msg.last;
          cfg.onProgress?.(schedules);
          dispatch(w);
        }
      }
      if (error !== null) break;
      if (got) {
        quietSince = performance.now();
      } else {
        if (performance.now() - quietSince > STALL_MS) throw new Error('explore workers stopped answering');
        Atomics.wait(signal, 0, seen, 1000);
      }
    }
  } finally {
    for (const w of workers) {
      const stop: ToWorker = { type: 'stop' };
      w.port.postMessage(stop);
      w.port.close();
      void w.worker.terminate();
    }
  }
  if (error !== null) throw new Error(`explore worker failed: ${error}`);
  return { found, schedules, lastOverrides: last === null ? null : new Map(last.overrides) };
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
