/**
 * Trace importers: each turns a text trace into the page-level accesses the simulator replays.
 * Addresses are made relative to the lowest page the trace touches, so the footprint is the span
 * between its lowest and highest page. A line that is not of the format is refused with
 * `FILE:LINE:COL: message` (exit 2 at the CLI); nothing is guessed.
 *
 * Formats:
 * - `uvm-eval`: the per-fault driver logs of Allen & Ge's uvm-eval tools (tools/plotv2/Fault.py):
 *   `f,addr,ts,fault_type,access_type,...` per fault (addr hex, access_type UVM's
 *   UVM_FAULT_ACCESS_TYPE number 0 prefetch, 1 read, 2 write, 3 weak atomic, 4 strong atomic,
 *   or its name); `b,...` batch lines and `p`/`d`/`s`/`e` lines are read and skipped. GPU side.
 * - `nvuvm`: NVIDIA UVM tools events, one UvmEventGpuFaultInfo record per line as its fields
 *   `name=value` (eventType=GpuFault address=0x... accessType=read|write|atomic|prefetch
 *   faultType=... gpuIndex=... batchId=... timeStamp=...); address and accessType are needed.
 *   Numbers are the tools API's: eventType 3 (UvmEventTypeGpuFault), accessType 1 read, 2 write,
 *   3 atomic, 4 prefetch (UvmEventMemoryAccessType). This text form is hetmem's own. GPU side.
 * - `nvuvm-v1`, `nvuvm-v2`: the same events as the tools API delivers them: a file of
 *   consecutive UvmEventEntry_V1 (64 bytes) or UvmEventEntry_V2 (72 bytes) records, little-endian,
 *   as a tool that copies its event queue to disk writes them (uvm_types.h of NVIDIA's open
 *   driver). A GpuFault entry (eventType 3) is a GPU access: address at byte 8, accessType at
 *   byte 2 (V1) or 37 (V2). A CpuFault entry (eventType 1, UvmEventCpuFaultInfo, the same in
 *   both) is a CPU access: accessType at byte 1, address at byte 8. Every other event type of
 *   the API (2, 4-14, and the test types 62, 63) is skipped; eventType 0 or an unknown one, an
 *   access type outside 1-4 and a truncated last record are refused with `FILE:OFFSET: message`
 *   (OFFSET in bytes from the start of the file).
 * - `kfd`: AMD KFD SMI event text (the KFD_EVENT_FMT_* strings of kfd_ioctl.h), an optional
 *   event name or id first: `PAGEFAULT_START ts -pid @addr(node) R|W` is a fault (addr in pages,
 *   hex, as KFD prints it); MIGRATE_START/END, PAGEFAULT_END, QUEUE_EVICTION/RESTORE and
 *   UNMAP_FROM_GPU lines are checked and skipped. GPU side.
 * - `lackey`: Valgrind lackey --trace-mem=yes: `I addr,size` (skipped), ` L addr,size` load,
 *   ` S addr,size` store, ` M addr,size` modify; `==pid==` lines are skipped. CPU side.
 * - `pinatrace`: Pin's pinatrace: `ip: R addr` / `ip: W addr`, `#` comments. CPU side.
 */
import { PAGE_SIZE } from '../lib/units.ts';
import type { TraceAccess } from './engine.ts';
import { ATOMIC, READ, WRITE } from './workloads.ts';

export const TRACE_FORMATS = [
  'uvm-eval',
  'nvuvm',
  'nvuvm-v1',
  'nvuvm-v2',
  'kfd',
  'lackey',
  'pinatrace',
] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

/** The formats that are read as bytes (the others are text). */
export const BINARY_TRACE_FORMATS: ReadonlySet<TraceFormat> = new Set<TraceFormat>(['nvuvm-v1', 'nvuvm-v2']);

/** A bad trace line: where and why. */
export class TraceError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly why: string,
  ) {
    super(`${file}:${line}:${col}: ${why}`);
  }
}

/** A bad record of a binary trace: the byte offset where it starts, and why. */
export class TraceBinaryError extends TraceError {
  constructor(
    file: string,
    readonly offset: number,
    why: string,
  ) {
    super(file, 0, 0, why);
    this.message = `${file}:${offset}: ${why}`;
  }
}

/** The most pages a trace may span (the model's RAM limit). */
const MAX_SPAN_PAGES = (16 * 2 ** 30) / PAGE_SIZE;

export interface ImportedTrace {
  readonly accesses: TraceAccess[];
  /** Footprint in bytes: the span of pages touched. */
  readonly footprint: number;
  /** Lines skipped by design (batch markers, instruction fetches, other events). */
  readonly skipped: number;
}

interface Raw {
  addr: number;
  kind: number;
  cpu: boolean;
}

type LineParser = (line: string, fail: (col: number, why: string) => never) => Raw | null;

function hexAddr(s: string, col: number, fail: (col: number, why: string) => never): number {
  const t = s.startsWith('0x') || s.startsWith('0X') ? s.slice(2) : s;
  if (!/^[0-9a-fA-F]{1,16}$/.test(t)) fail(col, `not a hex address: '${s}'`);
  const v = Number.parseInt(t, 16);
  if (!Number.isSafeInteger(v)) fail(col, `address ${s} is beyond 2^53`);
  return v;
}

const UVM_ACCESS: Record<string, number> = {
  '0': READ,
  '1': READ,
  '2': WRITE,
  '3': ATOMIC,
  '4': ATOMIC,
  prefetch: READ,
  read: READ,
  write: WRITE,
  atomic: ATOMIC,
  atomic_weak: ATOMIC,
  atomic_strong: ATOMIC,
};

const uvmEval: LineParser = (line, fail) => {
  const f = line.split(',');
  const col = (i: number): number => f.slice(0, i).reduce((a, s) => a + s.length + 1, 1);
  switch (f[0].trim()) {
    case 'f': {
      if (f.length < 5)
        fail(1, `a fault line has at least 5 fields (f,addr,ts,fault_type,access_type), got ${f.length}`);
      const addr = hexAddr(f[1].trim(), col(1), fail);
      if (!/^\d+$/.test(f[2].trim())) fail(col(2), `timestamp is not an integer: '${f[2]}'`);
      const kind = UVM_ACCESS[f[4].trim().toLowerCase()] as number | undefined;
      if (kind === undefined) return fail(col(4), `unknown access type '${f[4].trim()}'`);
      return { addr, kind, cpu: false };
    }
    case 'b':
    case 'p':
    case 'd':
    case 's':
    case 'e':
      return null;
    default:
      return fail(1, `unknown record type '${f[0]}' (f, b, p, d, s or e)`);
  }
};

/** UvmEventMemoryAccessType, by number and by name. */
const NVUVM_ACCESS: Record<string, number> = {
  '1': READ,
  '2': WRITE,
  '3': ATOMIC,
  '4': READ,
  read: READ,
  write: WRITE,
  atomic: ATOMIC,
  prefetch: READ,
};

const nvuvm: LineParser = (line, fail) => {
  const fields = new Map<string, [string, number]>();
  let pos = 0;
  for (const tok of line.split(/(\s+)/)) {
    if (tok.trim() !== '') {
      const eq = tok.indexOf('=');
      if (eq <= 0 && tok !== 'UvmEventGpuFaultInfo') fail(pos + 1, `expected name=value, got '${tok}'`);
      if (eq > 0) fields.set(tok.slice(0, eq), [tok.slice(eq + 1), pos + eq + 2]);
    }
    pos += tok.length;
  }
  const type = fields.get('eventType');
  if (type !== undefined && type[0] !== 'GpuFault' && type[0] !== '3')
    fail(type[1], `eventType ${type[0]} is not a GPU fault (GpuFault or 3)`);
  const addr = fields.get('address');
  if (addr === undefined) return fail(1, 'a UvmEventGpuFaultInfo record needs address=');
  const acc = fields.get('accessType');
  if (acc === undefined) return fail(1, 'a UvmEventGpuFaultInfo record needs accessType=');
  const kind = NVUVM_ACCESS[acc[0].toLowerCase()] as number | undefined;
  if (kind === undefined) return fail(acc[1], `unknown accessType '${acc[0]}'`);
  return { addr: hexAddr(addr[0], addr[1], fail), kind, cpu: false };
};

const KFD_SKIPPED = new Set([
  'PAGEFAULT_END',
  'MIGRATE_START',
  'MIGRATE_END',
  'QUEUE_EVICTION',
  'QUEUE_RESTORE',
  'UNMAP_FROM_GPU',
]);

const kfd: LineParser = (line, fail) => {
  const m = /^\s*(?:([A-Z_]+|\d+)\s+)?(\d+)\s+-(\d+)\s+@([0-9a-fA-Fx]+)\(([0-9a-fA-Fx]+)\)\s*(.*)$/.exec(
    line,
  );
  if (m === null) return fail(1, 'not a KFD SMI event line ([EVENT] ts -pid @addr(...) ...)');
  const ev = m[1] ?? 'PAGEFAULT_START';
  if (ev === 'PAGEFAULT_START' || ev === '5') {
    const rw = m[6].trim();
    if (rw !== 'R' && rw !== 'W')
      return fail(line.length - m[6].length + 1, `PAGEFAULT_START ends in R or W, got '${rw}'`);
    const at = line.indexOf('@') + 2;
    return { addr: hexAddr(m[4], at, fail) * PAGE_SIZE, kind: rw === 'W' ? WRITE : READ, cpu: false };
  }
  if (KFD_SKIPPED.has(ev) || /^\d+$/.test(ev)) return null;
  return fail(1, `unknown KFD event '${ev}'`);
};

const lackey: LineParser = (line, fail) => {
  if (line.startsWith('==')) return null;
  const m = /^( ?)([ILSM])\s+([0-9a-fA-F]+),(\d+)\s*$/.exec(line);
  if (m === null) return fail(1, "not a lackey line ('I addr,size', ' L|S|M addr,size')");
  if (m[2] === 'I') return null;
  return { addr: hexAddr(m[3], line.indexOf(m[3]) + 1, fail), kind: m[2] === 'L' ? READ : WRITE, cpu: true };
};

const pinatrace: LineParser = (line, fail) => {
  if (line.startsWith('#')) return null;
  const m = /^\s*(0x[0-9a-fA-F]+):\s+([RW])\s+(0x[0-9a-fA-F]+)\s*$/.exec(line);
  if (m === null) return fail(1, "not a pinatrace line ('ip: R addr' or 'ip: W addr')");
  return {
    addr: hexAddr(m[3], line.lastIndexOf(m[3]) + 1, fail),
    kind: m[2] === 'R' ? READ : WRITE,
    cpu: true,
  };
};

type TextFormat = Exclude<TraceFormat, 'nvuvm-v1' | 'nvuvm-v2'>;

const PARSERS: Record<TextFormat, LineParser> = { 'uvm-eval': uvmEval, nvuvm, kfd, lackey, pinatrace };

/** UvmEventType values of the tools API (uvm_types.h). */
const UVM_EVENT_CPU_FAULT = 1;
const UVM_EVENT_GPU_FAULT = 3;
/** Event types the API defines besides the faults: read and skipped. */
const UVM_EVENT_OTHER = new Set([2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 62, 63]);

/** The layout of one UvmEventEntry version: its size and where a GPU fault keeps accessType. */
const UVM_EVENT_ENTRY = {
  'nvuvm-v1': { name: 'UvmEventEntry_V1', size: 64, gpuAccessAt: 2 },
  'nvuvm-v2': { name: 'UvmEventEntry_V2', size: 72, gpuAccessAt: 37 },
} as const;

/** Reads consecutive UvmEventEntry records (the tools API's event queue entries). */
function parseUvmEvents(file: string, data: Uint8Array, format: 'nvuvm-v1' | 'nvuvm-v2'): [Raw[], number] {
  const { name, size, gpuAccessAt } = UVM_EVENT_ENTRY[format];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const raws: Raw[] = [];
  let skipped = 0;
  for (let at = 0; at < data.length; at += size) {
    if (data.length - at < size)
      throw new TraceBinaryError(
        file,
        at,
        `truncated ${name}: ${data.length - at} of ${size} bytes (a file of ${name} records is a multiple of ${size} bytes)`,
      );
    const type = data[at];
    if (type !== UVM_EVENT_GPU_FAULT && type !== UVM_EVENT_CPU_FAULT) {
      if (!UVM_EVENT_OTHER.has(type))
        throw new TraceBinaryError(file, at, `eventType ${type} is not a UvmEventType of the tools API`);
      skipped++;
      continue;
    }
    const cpu = type === UVM_EVENT_CPU_FAULT;
    const access = data[at + (cpu ? 1 : gpuAccessAt)];
    const kind = NVUVM_ACCESS[String(access)] as number | undefined;
    if (kind === undefined)
      throw new TraceBinaryError(
        file,
        at + (cpu ? 1 : gpuAccessAt),
        `accessType ${access} is not a UvmEventMemoryAccessType (1 read, 2 write, 3 atomic, 4 prefetch)`,
      );
    const addr = view.getBigUint64(at + 8, true);
    if (addr > BigInt(Number.MAX_SAFE_INTEGER))
      throw new TraceBinaryError(file, at + 8, `address 0x${addr.toString(16)} is beyond 2^53`);
    raws.push({ addr: Number(addr), kind, cpu });
  }
  return [raws, skipped];
}

/**
 * Parses `data` (the contents of `file`) as `format`: text for the line formats, bytes for the
 * binary ones (BINARY_TRACE_FORMATS). Throws TraceError on a bad line or record.
 */
export function importTrace(file: string, data: string | Uint8Array, format: TraceFormat): ImportedTrace {
  if (format === 'nvuvm-v1' || format === 'nvuvm-v2') {
    if (typeof data === 'string') throw new TraceBinaryError(file, 0, `${format} is a binary format`);
    if (data.length === 0) throw new TraceBinaryError(file, 0, `no accesses in this ${format} trace`);
    const [raws, skipped] = parseUvmEvents(file, data, format);
    if (raws.length === 0) throw new TraceBinaryError(file, 0, `no accesses in this ${format} trace`);
    return toAccesses(file, raws, skipped, (why) => new TraceBinaryError(file, 0, why));
  }
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  const parse = PARSERS[format];
  const raws: Raw[] = [];
  let skipped = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '') continue;
    const fail = (col: number, why: string): never => {
      throw new TraceError(file, i + 1, col, why);
    };
    const r = parse(line, fail);
    if (r === null) skipped++;
    else raws.push(r);
  }
  if (raws.length === 0) throw new TraceError(file, 1, 1, `no accesses in this ${format} trace`);
  return toAccesses(file, raws, skipped, (why) => new TraceError(file, 1, 1, why));
}

/** Pages relative to the lowest page touched; refuses a span the model cannot hold. */
function toAccesses(
  file: string,
  raws: Raw[],
  skipped: number,
  error: (why: string) => TraceError,
): ImportedTrace {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of raws) {
    const p = Math.floor(r.addr / PAGE_SIZE);
    lo = Math.min(lo, p);
    hi = Math.max(hi, p);
  }
  if (hi - lo + 1 > MAX_SPAN_PAGES)
    throw error(`the trace spans ${hi - lo + 1} pages; at most ${MAX_SPAN_PAGES} (16GiB) fit the model`);
  const accesses = raws.map((r) => ({ page: Math.floor(r.addr / PAGE_SIZE) - lo, kind: r.kind, cpu: r.cpu }));
  return { accesses, footprint: (hi - lo + 1) * PAGE_SIZE, skipped };
}
