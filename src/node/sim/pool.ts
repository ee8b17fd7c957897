/**
 * The points of a `hetmem sim` sweep on node:worker_threads. A point's result depends only on its
 * options (every random choice is seeded), so the pool hands the points out in grid order to
 * whichever worker is free and returns the results in grid order: one worker or eight print the
 * same table (only `wall_ms`, the host time, differs).
 *
 * Workers load this module again (after registering tsx when hetmem runs from its TypeScript
 * sources) and run workerMain(), which answers one point at a time on the worker's parent port.
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { SimError, runSim, type SimOptions, type SimResult } from '../../sim/engine.ts';

interface Boot {
  kind: 'hetmem-sim-worker';
  tsxApi: string | null;
  entry: string;
}

type ToWorker = { type: 'run'; index: number; opts: SimOptions } | { type: 'stop' };

type FromWorker =
  | { type: 'progress'; index: number; done: number; total: number }
  | { type: 'result'; index: number; result: SimResult }
  | { type: 'failed'; index: number; usage: boolean; message: string };

/** CommonJS (eval workers cannot be TypeScript) that loads this module and runs workerMain(). */
const BOOT = `
const { workerData, parentPort } = require('node:worker_threads');
(workerData.tsxApi === null ? Promise.resolve() : import(workerData.tsxApi).then((api) => api.register()))
  .then(() => import(workerData.entry))
  .then((m) => m.workerMain())
  .catch((e) => parentPort.postMessage({ type: 'failed', index: -1, usage: false, message: String((e && e.stack) || e) }));
`;

/** A worker posts progress at most this often (ms). */
const PROGRESS_MS = 100;

/**
 * Runs every point on `workers` threads (at least 1, at most one per point) and returns the
 * results in the order of `points`. `onProgress(done, total)` sums the points' progress, each
 * point counting as 1. A SimError of a point rejects with a SimError; any other failure is a bug.
 */
export function runSweep(
  points: readonly SimOptions[],
  workers: number,
  onProgress?: (done: number, total: number) => void,
): Promise<SimResult[]> {
  const n = Math.max(1, Math.min(workers, points.length));
  const tsxApi = /\.[cm]?ts$/.test(import.meta.url) ? import.meta.resolve('tsx/esm/api') : null;
  const results: (SimResult | undefined)[] = new Array<SimResult | undefined>(points.length);
  const fraction = new Float64Array(points.length);
  const pool: Worker[] = [];
  let next = 0;
  let finished = 0;
  let settled = false;
  return new Promise<SimResult[]>((resolve, reject) => {
    const end = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      for (const w of pool) void w.terminate();
      if (err !== null) reject(err);
      else resolve(results as SimResult[]);
    };
    const feed = (w: Worker): void => {
      if (next >= points.length) return;
      const msg: ToWorker = { type: 'run', index: next, opts: points[next] };
      next++;
      w.postMessage(msg);
    };
    const progress = (): void => {
      if (onProgress === undefined) return;
      let done = 0;
      for (const f of fraction) done += f;
      onProgress(done, points.length);
    };
    for (let i = 0; i < n; i++) {
      const boot: Boot = { kind: 'hetmem-sim-worker', tsxApi, entry: import.meta.url };
      const w = new Worker(BOOT, { eval: true, workerData: boot });
      pool.push(w);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'progress') {
          fraction[m.index] = m.total === 0 ? 0 : m.done / m.total;
          progress();
        } else if (m.type === 'result') {
          results[m.index] = m.result;
          fraction[m.index] = 1;
          progress();
          if (++finished === points.length) end(null);
          else feed(w);
        } else {
          end(m.usage ? new SimError(m.message) : new Error(`sim worker failed: ${m.message}`));
        }
      });
      w.on('error', (e) => {
        end(new Error(`sim worker failed: ${e.stack ?? e.message}`));
      });
      w.on('exit', (code) => {
        if (!settled) end(new Error(`a sim worker exited (${code}) before the sweep ended`));
      });
      feed(w);
    }
  });
}

/** A worker's loop: runs the points it is sent, one at a time. */
export function workerMain(): void {
  const boot = workerData as Boot | null;
  const port = parentPort;
  if (boot?.kind !== 'hetmem-sim-worker' || port === null) return;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'stop') {
      port.close();
      return;
    }
    const post = (msg: FromWorker): void => {
      port.postMessage(msg);
    };
    let last = 0;
    try {
      const result = runSim(m.opts, (done, total) => {
        const now = performance.now();
        if (now - last < PROGRESS_MS) return;
        last = now;
        post({ type: 'progress', index: m.index, done, total });
      });
      post({ type: 'result', index: m.index, result });
    } catch (e) {
      post({
        type: 'failed',
        index: m.index,
        usage: e instanceof SimError,
        message: e instanceof SimError ? e.message : String(e instanceof Error ? (e.stack ?? e) : e),
      });
    }
  });
}
