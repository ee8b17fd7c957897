/**
 * The CPU faults a step took, for `hetmem run --json`: read from the event log's fault spans
 * (trace.ts FAULT_KINDS), merged into runs of consecutive pages that took the same handler.
 */
import type { TraceEvent } from '../kernel/trace.ts';

export interface FaultRun {
  /** The first page's address, as hex. */
  addr: string;
  pages: number;
  /** A FAULT_KINDS key ('anon', 'cow', 'swapin', ...), or null when no handler ran (SIGSEGV, SIGBUS). */
  kind: string | null;
  /** The kernel function that handled the fault. */
  handler: string;
  write: boolean;
  /** Read back from swap (VM_FAULT_MAJOR). */
  major: boolean;
}

/** At most this many runs per step; the rest are counted in `more`. */
export const MAX_FAULT_RUNS = 64;

const PAGE = 4096;

/** The fault runs among `events` from index `from` on. */
export function faultRuns(events: readonly TraceEvent[], from: number): { runs: FaultRun[]; more: number } {
  const runs: FaultRun[] = [];
  let more = 0;
  let last: FaultRun | null = null;
  /** The address that would extend `last`. */
  let next = 0;
  for (let i = from; i < events.length; i++) {
    const e = events[i];
    if (e.cat !== 'fault' || e.ph !== 'B') continue;
    const a = e.args ?? {};
    const addr = typeof a.addr === 'number' ? a.addr : 0;
    const kind = typeof a.kind === 'string' ? a.kind : null;
    const write = a.write === true;
    const major = a.major === true;
    if (
      last !== null &&
      last.kind === kind &&
      last.write === write &&
      last.major === major &&
      next === addr
    ) {
      last.pages++;
      next += PAGE;
      continue;
    }
    if (runs.length >= MAX_FAULT_RUNS) {
      more++;
      last = null;
      continue;
    }
    last = { addr: `0x${addr.toString(16)}`, pages: 1, kind, handler: e.name, write, major };
    next = addr + PAGE;
    runs.push(last);
  }
  return { runs, more };
}
