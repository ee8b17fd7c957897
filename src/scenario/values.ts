/**
 * Scenario values: sizes, address expressions, data patterns and SNAPSHOT byte names. Pure
 * functions with no kernel state, shared by the schema (to validate) and the runner (to evaluate).
 */

import { parseSize as libParseSize, SizeError } from '../lib/size.ts';

/** A value in a scenario file that could not be understood. */
export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueError';
  }
}

/**
 * A name the file binds, but that an earlier step failed to bind when it ran (a `save` of a step
 * that failed, the child of a fork that failed). The file is fine: the step that uses it fails.
 */
export class UnboundError extends ValueError {
  constructor(message: string) {
    super(message);
    this.name = 'UnboundError';
  }
}

/**
 * Size strings already parsed: the value, or the message of the error. Scenario values are few
 * and evaluated again in every schedule the explorer runs, where the exceptions cost more than
 * the steps.
 */
const sizeCache = new Map<string, number | string>();
const SIZE_CACHE_MAX = 4096;

function sizeOf(v: string): number | string {
  let r = sizeCache.get(v);
  if (r === undefined) {
    try {
      r = libParseSize(v);
    } catch (e) {
      if (!(e instanceof SizeError)) throw e;
      r = e.message;
    }
    if (sizeCache.size >= SIZE_CACHE_MAX) sizeCache.clear();
    sizeCache.set(v, r);
  }
  return r;
}

/** Sizes: an integer, a hex string, or a number with B/K/KiB/M/MiB/G/GiB/T/TiB (binary units). */
export function parseSize(v: string | number): number {
  if (typeof v === 'string') {
    const r = sizeOf(v);
    if (typeof r === 'string') throw new ValueError(r);
    return r;
  }
  try {
    return libParseSize(v);
  } catch (e) {
    if (e instanceof SizeError) throw new ValueError(e.message);
    throw e;
  }
}

export function isSize(v: string | number): boolean {
  if (typeof v === 'string') return typeof sizeOf(v) === 'number';
  try {
    parseSize(v);
    return true;
  } catch {
    return false;
  }
}

/** Parses an integer given as a number, decimal or hex string (negative allowed). */
export function parseInteger(v: string | number): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new ValueError(`${v} is not an integer`);
    return v;
  }
  const s = v.trim();
  const neg = s.startsWith('-');
  const body = neg ? s.slice(1) : s;
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(body)) n = Number.parseInt(body.slice(2), 16);
  else if (/^\d+$/.test(body)) n = Number(body);
  else throw new ValueError(`'${v}' is not an integer`);
  if (!Number.isSafeInteger(n)) throw new ValueError(`'${v}' is too large (above 2^53)`);
  return neg ? -n : n;
}

/** The parts of an address expression: `NAME`, `NAME+OFF`, `NAME-OFF`, or a plain number. */
export interface AddressExpr {
  readonly name: string | null;
  readonly offset: number;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export function isName(s: string): boolean {
  return NAME_RE.test(s);
}

/**
 * Address expressions parsed so far: a scenario's steps name the same few in every schedule the
 * explorer runs. Bounded: emptied when it reaches EXPR_CACHE entries (a fuzzer's are many).
 */
const parsedExprs = new Map<string, AddressExpr>();
const EXPR_CACHE = 4096;

/** Parses `buf`, `buf+2MiB`, `buf+2MiB-4KiB`, `buf-4096`, `0x7f0000000000`, `4096`. */
export function parseAddressExpr(v: string | number): AddressExpr {
  if (typeof v === 'number') return { name: null, offset: parseInteger(v) };
  let e = parsedExprs.get(v);
  if (e === undefined) {
    e = Object.freeze(parseAddressText(v));
    if (parsedExprs.size >= EXPR_CACHE) parsedExprs.clear();
    parsedExprs.set(v, e);
  }
  return e;
}

function parseAddressText(v: string): AddressExpr {
  const s = v.trim();
  if (/^-?(0x[0-9a-f]+|\d+)$/i.test(s)) return { name: null, offset: parseInteger(s) };
  const m = /^([A-Za-z_][A-Za-z0-9_.]*)\s*(.*)$/.exec(s);
  if (m === null) throw new ValueError(`'${v}' is not an address (examples: 0x10000, buf, buf+2MiB)`);
  let offset = 0;
  let rest = m[2];
  while (rest.length > 0) {
    const t = /^([+-])\s*([0-9][0-9a-zA-Z.]*)\s*(.*)$/.exec(rest);
    if (t === null) throw new ValueError(`'${v}' is not an address (examples: 0x10000, buf, buf+2MiB)`);
    const off = parseSize(t[2]);
    offset += t[1] === '-' ? -off : off;
    rest = t[3];
  }
  return { name: m[1], offset };
}

export function isAddressExpr(v: string | number): boolean {
  try {
    parseAddressExpr(v);
    return true;
  } catch {
    return false;
  }
}

/** Evaluates an address expression against the bound names. */
export function evalAddress(v: string | number, lookup: (name: string) => number | undefined): number {
  const e = parseAddressExpr(v);
  if (e.name === null) return e.offset;
  const base = lookup(e.name);
  if (base === undefined) throw new UnboundError(`unbound name '${e.name}'`);
  return base + e.offset;
}

/** The largest u64, 2^64 - 1. */
export const U64_MAX = (1n << 64n) - 1n;

/**
 * A u64 uAPI value as the scenario layer hands it to the kernel: a number when it is at most
 * 2^53 - 1, a bigint above that, so no value is ever rounded.
 */
export type U64Value = number | bigint;

/** A bigint as a U64Value: a number when that is exact. */
export function u64Value(b: bigint): U64Value {
  return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

function u64Range(b: bigint, shown: string): bigint {
  if (b < 0n) throw new ValueError(`'${shown}' is negative; a u64 is 0 to 0xffffffffffffffff`);
  if (b > U64_MAX) throw new ValueError(`'${shown}' does not fit in 64 bits (largest 0xffffffffffffffff)`);
  return b;
}

/**
 * Parses a u64 exactly: a bigint or integer number, a decimal or 0x hex string of any size up to
 * 2^64 - 1, or a size with a binary unit (`2MiB`).
 */
export function parseU64(v: string | number | bigint): bigint {
  if (typeof v === 'bigint') return u64Range(v, `0x${v.toString(16)}`);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new ValueError(`${v} is not an exact integer (write values above 2^53 as 0x... strings)`);
    return u64Range(BigInt(v), String(v));
  }
  const s = v.trim();
  if (/^0x[0-9a-f]+$/i.test(s) || /^\d+$/.test(s)) return u64Range(BigInt(s), v);
  return BigInt(parseSize(s));
}

/** A u64 field: a u64 literal (parseU64) or a name expression, evaluated exactly. */
export function evalU64(v: string | number | bigint, lookup: (name: string) => U64Value | undefined): bigint {
  if (typeof v !== 'string') return parseU64(v);
  if (isU64Literal(v)) return parseU64(v);
  const e = parseAddressExpr(v);
  if (e.name === null) return u64Range(BigInt(e.offset), v);
  const base = lookup(e.name);
  if (base === undefined) throw new UnboundError(`unbound name '${e.name}'`);
  return u64Range(BigInt(base) + BigInt(e.offset), v);
}

/**
 * Whether a string is a u64 literal: decimal or 0x hex up to 2^64 - 1, or a size. It answers
 * without throwing: the runner asks it of every address expression a step evaluates (a name is
 * the common case), in every schedule the explorer runs.
 */
export function isU64Literal(s: string): boolean {
  let r = literals.get(s);
  if (r === undefined) {
    const t = s.trim();
    r = /^0x[0-9a-f]+$/i.test(t) || /^\d+$/.test(t) ? BigInt(t) <= U64_MAX : isSize(t);
    if (literals.size >= EXPR_CACHE) literals.clear();
    literals.set(s, r);
  }
  return r;
}

/** isU64Literal()'s answers so far, by string (bounded as parsedExprs is). */
const literals = new Map<string, boolean>();

/**
 * evalU64() as a U64Value. A name expression whose name holds a safe integer and whose sum is
 * one (`buf`, `buf+4KiB`: nearly every address a step evaluates) is added as numbers: the same
 * value, without the bigints.
 */
export function evalU64Value(
  v: string | number | bigint,
  lookup: (name: string) => U64Value | undefined,
): U64Value {
  if (typeof v === 'string' && !isU64Literal(v)) {
    const e = parseAddressExpr(v);
    if (e.name !== null) {
      const base = lookup(e.name);
      if (typeof base === 'number' && Number.isSafeInteger(base) && Number.isSafeInteger(e.offset)) {
        const sum = base + e.offset;
        // Exact: two safe integers whose sum is one. (+0, not -0, as Number(0n) gives.)
        if (sum >= 0 && Number.isSafeInteger(sum)) return sum === 0 ? 0 : sum;
      }
    }
  }
  return u64Value(evalU64(v, lookup));
}

/** Whether a string is a u64 literal or a name expression (the schema's check). */
export function isU64(s: string): boolean {
  return isU64Literal(s) || isAddressExpr(s);
}

/** A data pattern as written in the file (already shape-checked by the schema). */
export type DataSpec =
  | { pattern: 'index32' | 'neg_index32' | 'zero'; offset?: string | number }
  | { fill: number; offset?: string | number }
  | { bytes: number[]; offset?: string | number };

/**
 * Materialises `length` bytes of a pattern. `offset` (bytes) says where in the pattern the
 * buffer starts, so `{ pattern: index32, offset: 2MiB }` is what the second half of a 4MiB
 * index32 buffer holds.
 */
/** Bytes of the patterns built so far, by spec object and length (a copy is handed out). */
const patterns = new WeakMap<DataSpec, Map<number, Uint8Array>>();

export function patternBytes(spec: DataSpec, length: number): Uint8Array {
  return patternView(spec, length).slice();
}

/** The bytes of patternBytes(), shared with later calls: only to read (to compare a read with). */
export function patternView(spec: DataSpec, length: number): Uint8Array {
  let byLength = patterns.get(spec);
  const known = byLength?.get(length);
  if (known !== undefined) return known;
  const out = buildPattern(spec, length);
  if (byLength === undefined) patterns.set(spec, (byLength = new Map<number, Uint8Array>()));
  if (byLength.size < 16) byLength.set(length, out);
  return out;
}

/** Whether this host stores the low byte of a word first (every host Node runs on, in practice). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function buildPattern(spec: DataSpec, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const offset = spec.offset === undefined ? 0 : parseSize(spec.offset);
  if ('fill' in spec) {
    out.fill(spec.fill & 0xff);
    return out;
  }
  if ('bytes' in spec) {
    for (let i = 0; i < length; i++) {
      const j = offset + i;
      out[i] = j < spec.bytes.length ? spec.bytes[j] & 0xff : 0;
    }
    return out;
  }
  if (spec.pattern === 'zero') return out;
  const neg = spec.pattern === 'neg_index32';
  let i = 0;
  if (LITTLE_ENDIAN && offset % 4 === 0) {
    // Whole words as words: on a little-endian host, word w of the pattern stored in a
    // Uint32Array is its four bytes in the order the loop below writes them (a quarter of the
    // iterations, without the divisions; the setup of a search writes and judges such buffers
    // before anything is compiled).
    const words = new Uint32Array(out.buffer, 0, length >>> 2);
    const first = offset / 4;
    if (neg) for (let w = 0; w < words.length; w++) words[w] = -(first + w);
    else for (let w = 0; w < words.length; w++) words[w] = first + w;
    i = words.length * 4;
  }
  for (; i < length; i++) {
    const pos = offset + i;
    const word = Math.floor(pos / 4);
    const value = (neg ? -word : word) >>> 0;
    const shift = (pos % 4) * 8;
    out[i] = (value >>> shift) & 0xff;
  }
  return out;
}

/** The natural length of a data spec when a step gives none (only `bytes` has one). */
export function dataLength(spec: DataSpec): number | undefined {
  return 'bytes' in spec ? spec.bytes.length : undefined;
}

/** Describes the first difference between two buffers, or null when equal. */
export function firstDifference(actual: Uint8Array, expected: Uint8Array): string | null {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  if (sameWords(actual, expected)) return null;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      let n = 0;
      for (let j = i; j < actual.length; j++) if (actual[j] !== expected[j]) n++;
      return `byte ${i} (0x${i.toString(16)}) is 0x${hex2(actual[i])}, expected 0x${hex2(expected[i])} (${n} bytes differ)`;
    }
  }
  return null;
}

/**
 * Whether two buffers of one length hold the same bytes, compared four at a time (an explorer
 * compares every schedule's read with its expected data). False when they differ, or when their
 * alignment does not allow it: the byte loop decides then.
 */
function sameWords(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length >>> 2;
  if (n === 0 || a.byteOffset % 4 !== 0 || b.byteOffset % 4 !== 0) return false;
  const wa = new Uint32Array(a.buffer, a.byteOffset, n);
  const wb = new Uint32Array(b.buffer, b.byteOffset, n);
  for (let i = 0; i < n; i++) if (wa[i] !== wb[i]) return false;
  for (let i = 4 * n; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** lib/test_hmm_uapi.h: enum of the per-page bytes HMM_DMIRROR_SNAPSHOT writes. */
export const HMM_DMIRROR_PROT: Record<string, number> = {
  ERROR: 0xff,
  NONE: 0x00,
  READ: 0x01,
  WRITE: 0x02,
  PMD: 0x04,
  PUD: 0x08,
  ZERO: 0x10,
  DEV_PRIVATE_LOCAL: 0x20,
  DEV_PRIVATE_REMOTE: 0x30,
  DEV_COHERENT_LOCAL: 0x40,
  DEV_COHERENT_REMOTE: 0x50,
};

/**
 * Expands SNAPSHOT byte names: `ZERO|READ`, `WRITE*16`, `DEV_PRIVATE_LOCAL|WRITE*16`, or plain
 * numbers. `*N` repeats the whole combined byte.
 */
export function parseProtBytes(items: readonly (string | number)[]): number[] {
  const out: number[] = [];
  for (const item of items) {
    if (typeof item === 'number') {
      out.push(item & 0xff);
      continue;
    }
    const m = /^(.*?)(?:\*\s*(\d+))?$/.exec(item.trim())!;
    const count = m[2] === undefined ? 1 : Number(m[2]);
    let byte = 0;
    for (const part of m[1].split('|')) {
      const name = part.trim().replace(/^HMM_DMIRROR_PROT_/, '');
      if (/^(0x[0-9a-f]+|\d+)$/i.test(name)) {
        byte |= parseInteger(name);
        continue;
      }
      const v = HMM_DMIRROR_PROT[name];
      if (v === undefined) {
        throw new ValueError(
          `'${part.trim()}' is not an HMM_DMIRROR_PROT_* name (${Object.keys(HMM_DMIRROR_PROT).join(', ')})`,
        );
      }
      byte |= v;
    }
    for (let i = 0; i < count; i++) out.push(byte);
  }
  return out;
}

/** Names a SNAPSHOT byte the way a scenario writes it. */
export function protByteName(b: number): string {
  if (b === 0xff) return 'ERROR';
  if (b === 0) return 'NONE';
  const parts: string[] = [];
  const kind = b & 0xf0;
  for (const [name, v] of Object.entries(HMM_DMIRROR_PROT)) {
    if (v >= 0x10 && v === kind) parts.push(name);
  }
  for (const name of ['READ', 'WRITE', 'PMD', 'PUD'])
    if ((b & HMM_DMIRROR_PROT[name]) !== 0) parts.push(name);
  return parts.length > 0 ? parts.join('|') : `0x${hex2(b)}`;
}

/** Compresses a byte list into the `X*N` form for messages. */
export function protBytesSummary(bytes: readonly number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < bytes.length) {
    let j = i;
    while (j < bytes.length && bytes[j] === bytes[i]) j++;
    const n = j - i;
    out.push(n > 1 ? `${protByteName(bytes[i])}*${n}` : protByteName(bytes[i]));
    i = j;
  }
  return `[${out.join(', ')}]`;
}

/** A number for display and JSON: hex string at and above 2^32, else the number. */
export function hex(n: number | bigint): string {
  const b = BigInt(n);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}
