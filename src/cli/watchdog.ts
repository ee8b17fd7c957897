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
import {
  FIRED,
  FIRED_SLOT,
  inCallbackWord,
  newSharedWatch,
  slotText,
  stretchWord,
  WATCH_LAYOUT,
  type SharedWatch,
} from '../scenario/callback_watch.ts';
import { type CallbackWatch, setCallbackWatch } from '../scenario/driver_module.ts';

/** [FIRED] says what fired: 1 a callback, 2 the budget; [FIRED_SLOT] which thread's callback. */
const WATCHER = `
const { workerData, parentPort } = require('node:worker_threads');
const inspector = require('node:inspector');
const w = workerData.words;
const L = workerData.layout;
const { callbackMs, deadline } = workerData;
const stretch = new Array(L.slots).fill(-1);
const since = new Array(L.slots).fill(Date.now());
const iv = setInterval(() => {
  const now = Date.now();
  let fired = 0;
  let slot = 0;
  const used = Math.min(L.slots, Atomics.load(w, L.nextSlot) + 1);
  for (let i = 0; i < used && fired === 0; i++) {
    const s = Atomics.load(w, L.header + L.perSlot * i + 1);
    if (s !== stretch[i]) { stretch[i] = s; since[i] = now; }
    if (Atomics.load(w, L.header + L.perSlot * i) === 1 && now - since[i] >= callbackMs) { fired = 1; slot = i; }
  }
  if (fired === 0 && deadline > 0 && now >= deadline) fired = 2;
  if (fired === 0) return;
  clearInterval(iv);
  Atomics.store(w, L.firedSlot, slot);
  Atomics.store(w, L.fired, fired);
  parentPort.postMessage(fired);
  const session = new inspector.Session();
  session.connectToMainThread();
  // Disconnect right behind the request, without waiting for its answer: the main thread takes
  // both from one queue, in order, so the session is gone by the time its stopped script reaches
  // exit. A session still connected then makes Node print a line of its own about waiting for a
  // debugger (waiting for the answer first left that window open under load).
  session.post('Runtime.terminateExecution');
  session.disconnect();
  // Then this thread stays until the process exits (unref()ed, it keeps nothing alive). As the
  // main thread takes the disconnect, it posts the end of the session back to this thread, and
  // Node aborts the process (SIGABRT, nothing printed) when that finds the thread tearing its
  // inspector down, which it would do at once with nothing left to run.
  setInterval(() => {}, 1 << 30);
}, 50);
`;

export interface WatchdogOptions {
  /** A driver callback running this long without yielding is stopped. */
  callbackMs: number;
  /** Wall-clock time (Date.now()) after which the main thread is stopped whatever it does; 0: none. */
  deadline: number;
  /**
   * Called on the main thread once its script has been stopped; prints and exits. For a callback
   * that ran on an explore worker, `thread` names the scheduler thread it ran in (else null: ask
   * the main thread's world).
   */
  onFire(
    what: 'callback' | 'deadline',
    path: readonly [string, string] | null,
    thread: string | null,
    /** The scenario step the callback was called during, when known. */
    step: string | null,
  ): void;
}

export interface Watchdog {
  /** The memory explore workers install their callback watches on (callback_watch.ts). */
  readonly shared: SharedWatch;
  stop(): void;
}

/** @defaultValue 10 s: far beyond any single stretch of model code between two yields. */
export const DEFAULT_CALLBACK_MS = 10_000;

/** Starts the watchdog thread and installs the callback watch (slot 0) it observes. */
export function startWatchdog(o: WatchdogOptions): Watchdog {
  const shared = newSharedWatch();
  const words = shared.words;
  let current: readonly [string, string] | null = null;
  let currentStep: string | null = null;
  const watch: CallbackWatch = {
    enter(path, step) {
      current = path;
      currentStep = step ?? null;
      Atomics.add(words, stretchWord(0), 1);
      Atomics.store(words, inCallbackWord(0), 1);
    },
    leave() {
      Atomics.store(words, inCallbackWord(0), 0);
    },
  };
  setCallbackWatch(watch);
  const worker = new Worker(WATCHER, {
    eval: true,
    workerData: { words, layout: WATCH_LAYOUT, callbackMs: o.callbackMs, deadline: o.deadline },
  });
  let reported = false;
  const report = (fired: number): void => {
    if (reported) return;
    reported = true;
    if (fired !== 1) {
      o.onFire('deadline', current, null, currentStep);
      return;
    }
    const slot = Atomics.load(words, FIRED_SLOT);
    const text = slot === 0 ? null : slotText(shared, slot);
    o.onFire(
      'callback',
      slot === 0 ? current : (text?.path ?? null),
      text?.thread ?? null,
      slot === 0 ? currentStep : (text?.step ?? null),
    );
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
    shared,
    stop() {
      setCallbackWatch(null);
      process.off('exit', onExit);
      void worker.terminate();
    },
  };
}
