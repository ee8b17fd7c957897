/**
 * The event log as Chrome Trace Event JSON (the format Perfetto and chrome://tracing open): one
 * pid per System, one tid per track (CPU threads, devices, notifiers), B/E spans and instants,
 * plus metadata events naming the process and every track.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import type { TraceEvent } from '../kernel/trace.ts';
import { UsageError } from './errors.ts';
import { toPerfetto } from './perfetto.ts';

export interface ChromeEvent {
  name: string;
  cat?: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  s?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ms' | 'ns';
  otherData?: Record<string, unknown>;
}

/** One System's events. */
export interface TraceSource {
  name: string;
  events: readonly TraceEvent[];
}

/** Tracks sort CPU threads first, then devices, then notifiers, then anything else. */
function trackOrder(track: string): number {
  if (track.startsWith('cpu:')) return 0;
  if (track.startsWith('device:')) return 1;
  if (track.startsWith('notifier:')) return 2;
  return 3;
}

/** JSON-safe args: bigints and big numbers as hex strings, typed arrays summarised. */
function jsonArgs(args: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (args === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    if (typeof v === 'bigint') out[k] = `0x${v.toString(16)}`;
    else if (typeof v === 'number' && v >= 2 ** 32) out[k] = `0x${v.toString(16)}`;
    else if (v instanceof Uint8Array) out[k] = `<${v.length} bytes>`;
    else if (
      typeof v === 'function' ||
      (typeof v === 'object' && v !== null && !Array.isArray(v) && v.constructor !== Object)
    ) {
      const n = (v as { name?: unknown }).name;
      out[k] = typeof n === 'string' ? n : Object.prototype.toString.call(v);
    } else out[k] = v;
  }
  return out;
}

/** Converts event logs (one per System) to a Chrome trace. Timestamps are scheduler steps (shown as µs). */
export function toChromeTrace(sources: readonly TraceSource[]): ChromeTrace {
  const traceEvents: ChromeEvent[] = [];
  sources.forEach((src, i) => {
    const pid = i + 1;
    traceEvents.push({ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: src.name } });
    const tracks = [...new Set(src.events.map((e) => e.track))].sort(
      (a, b) => trackOrder(a) - trackOrder(b) || a.localeCompare(b),
    );
    const tids = new Map(tracks.map((t, j) => [t, j + 1]));
    for (const [track, tid] of tids) {
      traceEvents.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid, args: { name: track } });
      traceEvents.push({ name: 'thread_sort_index', ph: 'M', ts: 0, pid, tid, args: { sort_index: tid } });
    }
    // Open spans per track, so an E without its B (a trace cut short) is dropped, and spans still
    // open at the end are closed: Perfetto then shows every span with a duration.
    const open = new Map<number, number>();
    let lastTs = 0;
    for (const e of src.events) {
      const tid = tids.get(e.track)!;
      lastTs = Math.max(lastTs, e.ts);
      const ev: ChromeEvent = { name: e.name, cat: e.cat, ph: e.ph, ts: e.ts, pid, tid };
      const args = jsonArgs({ ...(e.args ?? {}), thread: e.thread });
      if (args !== undefined) ev.args = args;
      if (e.ph === 'i') ev.s = 't';
      if (e.ph === 'B') open.set(tid, (open.get(tid) ?? 0) + 1);
      if (e.ph === 'E') {
        const n = open.get(tid) ?? 0;
        if (n === 0) continue;
        open.set(tid, n - 1);
      }
      traceEvents.push(ev);
    }
    for (const [tid, n] of open) {
      for (let k = 0; k < n; k++) traceEvents.push({ name: 'unfinished', ph: 'E', ts: lastTs + 1, pid, tid });
    }
  });
  return { traceEvents, displayTimeUnit: 'ns', otherData: { generator: 'hetmem', clock: 'scheduler steps' } };
}

export function writeChromeTrace(file: string, sources: readonly TraceSource[]): void {
  writeFileSync(file, `${JSON.stringify(toChromeTrace(sources))}\n`);
}

export type TraceFormat = 'json' | 'perfetto';

/** The format `--trace-format` names, or else the file's extension tells (.pftrace, .perfetto-trace). */
export function traceFormat(file: string, format: string | undefined): TraceFormat {
  if (format === undefined) return /\.(pftrace|perfetto-trace|pb)$/i.test(file) ? 'perfetto' : 'json';
  if (format === 'json' || format === 'perfetto') return format;
  throw new UsageError(`--trace-format takes json or perfetto, got '${format}'`);
}

/** Writes the trace in the format asked for: Chrome JSON, or Perfetto's protobuf TrackEvents. */
export function writeTrace(file: string, sources: readonly TraceSource[], format: TraceFormat): void {
  if (format === 'perfetto') writeFileSync(file, toPerfetto(sources));
  else writeChromeTrace(file, sources);
}

/**
 * Opens the trace file for writing before the run starts, so a path that cannot be written fails
 * at once with a usage error instead of after minutes of exploring.
 */
export function checkTracePath(file: string | undefined): void {
  if (file === undefined) return;
  try {
    closeSync(openSync(file, 'w'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`--trace: cannot write '${file}' (${code})`);
  }
}
