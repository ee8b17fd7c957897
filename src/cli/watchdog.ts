/**
 * The time bound on driver callbacks and on `explore --budget TIME`. JavaScript cannot interrupt
 * a loop from the thread that runs it, so a watchdog thread watches a shared word the main
 * thread sets while a driver callback runs (and a deadline for the whole search), and when a
 * bound passes it stops the main thread's script through the inspector (Runtime.terminateExecution)
 * after posting what happened; the main thread, free again, prints one line and exits.
 *
 * V8 takes that request only where it checks for interrupts, which a loop each turn of which is
 * one long call into a builtin (a fill() of a large array) does only every many turns. So when
 * the main thread has not taken the report `graceMs` after the request, the watchdog thread
 * writes the line itself, from what the thread's slot recorded (callback_watch.ts), and kills the
 * process (SIGKILL: nothing the stuck thread runs can delay it).
 *
 * Started only for scenarios with a user driver or a time budget: the model's own paths always
 * yield or return.
 */
import { Worker } from 'node:worker_threads';
import {
  claimReportForMain,
  FIRED_SLOT,
  FIRED,
  newSharedWatch,
  REPORTED,
  sharedCallbackWatch,
  slotText,
  WATCH_LAYOUT,
  type SharedWatch,
} from '../scenario/callback_watch.ts';
import { type CallbackWatch, setCallbackWatch } from '../scenario/driver_module.ts';
import { EXIT } from './errors.ts';

/** [FIRED] says what fired: 1 a callback, 2 the budget; [FIRED_SLOT] which thread's callback. */
const WATCHER = `
const { workerData, parentPort } = require('node:worker_threads');
const inspector = require('node:inspector');
const fs = require('node:fs');
const w = workerData.words;
const L = workerData.layout;
const { callbackMs, deadline, graceMs, file, modules } = workerData;
const stretch = new Array(L.slots).fill(-1);
const since = new Array(L.slots).fill(Date.now());
// What slot i recorded: [export, member, scheduler thread, step], or null.
function slotText(i) {
  const len = Atomics.load(w, L.header + L.perSlot * i + 2);
  if (len === 0) return null;
  const at = i * L.textBytes;
  const parts = new TextDecoder().decode(workerData.text.slice(at, at + len)).split('\\0');
  return parts.length === 4 ? parts : null;
}
// The line the main thread would have printed (commands.ts, renderDriverIssue()), and why it is
// this thread's.
function lateLine(fired, slot) {
  const late = '; it did not stop within ' + graceMs + ' ms of being asked to (a loop of long calls ' +
    'into builtins?), so the process was killed';
  let t = fired === 1 ? slotText(slot) : null;
  for (let i = 0; fired === 2 && t === null && i < L.slots; i++)
    if (Atomics.load(w, L.header + L.perSlot * i) === 1) t = slotText(i);
  const during = t !== null && t[3] !== '' ? '; called ' + t[3] : '';
  if (fired === 1 && t !== null) {
    const module = modules[t[0]] !== undefined ? modules[t[0]] : Object.values(modules)[0];
    return file + ': driver module ' + module + ": callback '" + t[0] + '.' + t[1] + "' (thread " +
      t[2] + ') ran ' + callbackMs + ' ms without yielding (a loop that never ends?)' + during + late;
  }
  const inside = t !== null ? "driver callback '" + t[0] + '.' + t[1] + "' of thread " + t[2] : 'a step';
  return file + ': the time budget ran out while ' + inside + ' was inside one step that did not return' + late;
}
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
  // The main thread has not taken the report in time: this thread writes the line (straight to
  // the descriptor: its own stderr is relayed through the main thread) and ends the process.
  setTimeout(() => {
    if (Atomics.compareExchange(w, L.reporter, 0, 2) !== 0) {
      // The main thread printed it but is still here: its exit waits for a worker thread that
      // does not stop.
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), graceMs);
      return;
    }
    try { fs.writeSync(2, lateLine(fired, slot) + '\\n'); } catch {}
    Atomics.store(w, L.reported, 1);
    Atomics.notify(w, L.reported);
    process.kill(process.pid, 'SIGKILL');
  }, graceMs);
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
   * How long the main thread has, once asked to stop, before the watchdog thread prints the line
   * and kills the process. @defaultValue 5 s.
   */
  graceMs?: number;
  /** The scenario file, for that line. */
  file: string;
  /** The driver modules by export name (the first part of a callback's path), for that line. */
  modules: ReadonlyMap<string, string>;
  /** The scheduler thread running on the main thread now (recorded as a callback starts). */
  threadNow(): string;
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
  // Slot 0 records its callback's names in the shared memory too, for the watchdog thread's line.
  const slot0 = sharedCallbackWatch(shared, 0, () => o.threadNow());
  const watch: CallbackWatch = {
    enter(path, step) {
      current = path;
      currentStep = step ?? null;
      slot0.enter(path, step);
    },
    leave() {
      slot0.leave();
    },
  };
  setCallbackWatch(watch);
  const worker = new Worker(WATCHER, {
    eval: true,
    workerData: {
      words,
      text: shared.text,
      layout: WATCH_LAYOUT,
      callbackMs: o.callbackMs,
      deadline: o.deadline,
      graceMs: o.graceMs ?? 5000,
      file: o.file,
      modules: Object.fromEntries(o.modules),
    },
  });
  let reported = false;
  const report = (fired: number): void => {
    if (reported) return;
    reported = true;
    if (!claimReportForMain(words)) {
      // The watchdog thread is writing the line and then kills the process: wait for that.
      Atomics.wait(words, REPORTED, 0, 10_000);
      Atomics.wait(words, REPORTED, 1, 10_000);
      process.exit(EXIT.usage);
    }
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
