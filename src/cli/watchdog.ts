/**
 * The time bound on driver callbacks and on `explore --budget TIME`. JavaScript cannot interrupt
 * a loop from the thread that runs it, so a watchdog thread watches a shared word the main
 * thread sets while a driver callback runs (and a deadline for the whole search), and when a
 * bound passes it stops the main thread's script through the inspector (Runtime.terminateExecution)
 * after posting what happened; the main thread, free again, prints one line and exits.
 *
 * Started only for scenarios with a user driver or a time budget: the model's own paths always
 * yield or return.
 */
import { Worker } from 'node:worker_threads';
import { type CallbackWatch, setCallbackWatch } from '../scenario/driver_module.ts';

/** Shared words: [0] 1 while a callback runs, [1] stretch number, [2] what fired (1 callback, 2 budget). */
const IN_CALLBACK = 0;
const STRETCH = 1;
const FIRED = 2;

const WATCHER = `
const { workerData, parentPort } = require('node:worker_threads');
const inspector = require('node:inspector');
const w = workerData.words;
const { callbackMs, deadline } = workerData;
let stretch = -1;
let since = Date.now();
const iv = setInterval(() => {
  const now = Date.now();
  const s = Atomics.load(w, ${STRETCH});
  if (s !== stretch) { stretch = s; since = now; }
  let fired = 0;
  if (Atomics.load(w, ${IN_CALLBACK}) === 1 && now - since >= callbackMs) fired = 1;
  else if (deadline > 0 && now >= deadline) fired = 2;
  if (fired === 0) return;
  clearInterval(iv);
  Atomics.store(w, ${FIRED}, fired);
  parentPort.postMessage(fired);
  const session = new inspector.Session();
  session.connectToMainThread();
  session.post('Runtime.terminateExecution');
}, 50);
`;

export interface WatchdogOptions {
  /** A driver callback running this long without yielding is stopped. */
  callbackMs: number;
  /** Wall-clock time (Date.now()) after which the main thread is stopped whatever it does; 0: none. */
  deadline: number;
  /** Called on the main thread once its script has been stopped; prints and exits. */
  onFire(what: 'callback' | 'deadline', path: readonly [string, string] | null): void;
}

export interface Watchdog {
  stop(): void;
}

/** @defaultValue 10 s: far beyond any single stretch of model code between two yields. */
export const DEFAULT_CALLBACK_MS = 10_000;

/** Starts the watchdog thread and installs the callback watch it observes. */
export function startWatchdog(o: WatchdogOptions): Watchdog {
  const words = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  let current: readonly [string, string] | null = null;
  const watch: CallbackWatch = {
    enter(path) {
      current = path;
      Atomics.add(words, STRETCH, 1);
      Atomics.store(words, IN_CALLBACK, 1);
    },
    leave() {
      Atomics.store(words, IN_CALLBACK, 0);
    },
  };
  setCallbackWatch(watch);
  const worker = new Worker(WATCHER, {
    eval: true,
    workerData: { words, callbackMs: o.callbackMs, deadline: o.deadline },
  });
  let reported = false;
  const report = (fired: number): void => {
    if (reported) return;
    reported = true;
    o.onFire(fired === 1 ? 'callback' : 'deadline', current);
  };
  worker.on('message', report);
  // After on('message'), which refs the thread again: the watchdog never keeps the process alive.
  worker.unref();
  // Once the main script is stopped, nothing may be left to keep the event loop going: the
  // process then exits (13, an unsettled top-level await) before the message arrives. Report
  // from the exit handler instead; onFire's process.exit() sets the code.
  const onExit = (): void => {
    const fired = Atomics.load(words, FIRED);
    if (fired !== 0) report(fired);
  };
  process.on('exit', onExit);
  return {
    stop() {
      setCallbackWatch(null);
      process.off('exit', onExit);
      void worker.terminate();
    },
  };
}
