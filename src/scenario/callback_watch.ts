/**
 * The memory the CLI's watchdog thread (src/cli/watchdog.ts) shares with every thread that runs
 * driver callbacks: the main thread, and the worker threads of `hetmem explore --workers N`. Each
 * such thread claims a slot and, through its CallbackWatch, marks in it when a callback stretch
 * starts and ends, and which callback and scheduler thread that is. The watchdog reads every
 * slot; a stretch that does not end in time is reported with what the slot says, whichever
 * thread it runs on, since a worker stuck in a loop can tell nobody itself.
 *
 * Only SharedArrayBuffer and Atomics: no Node module, so this layer stays browser-safe.
 */
import type { CallbackWatch } from './driver_module.ts';

/** Slot 0 is the main thread; workers take 1, 2, ... */
export const WATCH_SLOTS = 65;
const TEXT_BYTES = 512;

/** Header words. */
export const FIRED = 0;
export const FIRED_SLOT = 1;
const NEXT_SLOT = 2;
/**
 * Who reports a stop: 0 nobody yet, 1 the main thread, 2 the watchdog thread (when the main
 * thread does not stop in time, see watchdog.ts), which sets [REPORTED] once its line is written.
 */
export const REPORTER = 3;
export const REPORTED = 4;
const HEADER = 5;
const PER_SLOT = 3;

/** The word layout, for the watchdog thread's plain-JavaScript loop. */
export const WATCH_LAYOUT = {
  fired: FIRED,
  firedSlot: FIRED_SLOT,
  nextSlot: NEXT_SLOT,
  reporter: REPORTER,
  reported: REPORTED,
  header: HEADER,
  perSlot: PER_SLOT,
  slots: WATCH_SLOTS,
  textBytes: TEXT_BYTES,
} as const;

/** Claims the report of a stop for the main thread: false when the watchdog thread has it. */
export function claimReportForMain(words: Int32Array): boolean {
  const was = Atomics.compareExchange(words, REPORTER, 0, 1);
  return was === 0 || was === 1;
}

/** Per-slot words: 1 while a callback runs, a stretch counter, the length of the slot's text. */
export function inCallbackWord(slot: number): number {
  return HEADER + PER_SLOT * slot;
}
export function stretchWord(slot: number): number {
  return HEADER + PER_SLOT * slot + 1;
}
function textLenWord(slot: number): number {
  return HEADER + PER_SLOT * slot + 2;
}

/** The shared memory itself (structured-cloned to workers, which then see the same bytes). */
export interface SharedWatch {
  readonly words: Int32Array;
  readonly text: Uint8Array;
}

export function newSharedWatch(): SharedWatch {
  return {
    words: new Int32Array(new SharedArrayBuffer((HEADER + PER_SLOT * WATCH_SLOTS) * 4)),
    text: new Uint8Array(new SharedArrayBuffer(TEXT_BYTES * WATCH_SLOTS)),
  };
}

/** Claims the next worker slot, or -1 when all are taken (that worker then runs unwatched). */
export function claimSlot(sw: SharedWatch): number {
  const slot = Atomics.add(sw.words, NEXT_SLOT, 1) + 1;
  return slot < WATCH_SLOTS ? slot : -1;
}

/** How many slots are in use (the main thread's and the claimed ones). */
export function slotsInUse(words: Int32Array): number {
  return Math.min(WATCH_SLOTS, Atomics.load(words, NEXT_SLOT) + 1);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The CallbackWatch of a thread in slot `slot`: it marks the slot's words, and records the
 * callback's path and the running scheduler thread (`threadNow`) whenever either changes.
 */
export function sharedCallbackWatch(sw: SharedWatch, slot: number, threadNow: () => string): CallbackWatch {
  const base = slot * TEXT_BYTES;
  let lastPath: readonly [string, string] | null = null;
  let lastThread = '';
  let lastStep: string | undefined = undefined;
  return {
    enter(path, step) {
      const thread = threadNow();
      if (path !== lastPath || thread !== lastThread || step !== lastStep) {
        lastPath = path;
        lastThread = thread;
        lastStep = step;
        const r = encoder.encodeInto(
          `${path[0]}\0${path[1]}\0${thread}\0${step ?? ''}`,
          sw.text.subarray(base, base + TEXT_BYTES),
        );
        Atomics.store(sw.words, textLenWord(slot), r.written);
      }
      Atomics.add(sw.words, stretchWord(slot), 1);
      Atomics.store(sw.words, inCallbackWord(slot), 1);
    },
    leave() {
      Atomics.store(sw.words, inCallbackWord(slot), 0);
    },
  };
}

/** What slot `slot` last recorded: the callback's path, the scheduler thread and the scenario step. */
export function slotText(
  sw: SharedWatch,
  slot: number,
): { path: [string, string]; thread: string; step: string } | null {
  const len = Atomics.load(sw.words, textLenWord(slot));
  if (len === 0) return null;
  // TextDecoder does not read shared memory: copy the bytes out first.
  const parts = decoder.decode(sw.text.slice(slot * TEXT_BYTES, slot * TEXT_BYTES + len)).split('\0');
  return parts.length === 4 ? { path: [parts[0], parts[1]], thread: parts[2], step: parts[3] } : null;
}
