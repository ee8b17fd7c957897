/**
 * Judges a step's outcome against its `expect` (or, without one, against "must succeed").
 * Returns the list of failures: empty means the step did what the scenario says.
 */
import { errnoName, errnoValue, isErr } from '../kernel/errno.ts';
import type { OpResult, ScenarioContext } from './context.ts';
import type { PagemapEntry } from './kernel.ts';
import { type DataSpec, firstDifference, parseProtBytes, patternView, protBytesSummary } from './values.ts';

type Expect = Record<string, unknown>;

const SPECIAL = new Set(['errno', 'ret', 'data', 'bytes', 'pages', 'any']);

export function describeRet(ret: number): string {
  return isErr(ret) ? `-${errnoName(ret)}` : ret >= 2 ** 32 ? `0x${ret.toString(16)}` : String(ret);
}

function toBig(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'boolean') return v ? 1n : 0n;
  return null;
}

/** An expected value written as a name expression, exact when a bound name holds a bigint. */
function exactValue(ctx: ScenarioContext, v: string, name: string): bigint {
  try {
    return BigInt(ctx.u64(v, name));
  } catch {
    return BigInt(ctx.num(v, name));
  }
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return v >= 2n ** 32n ? `0x${v.toString(16)}` : v.toString();
  if (typeof v === 'number') return v >= 2 ** 32 ? `0x${v.toString(16)}` : String(v);
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x));
}

function compareValue(ctx: ScenarioContext, name: string, expected: unknown, actual: unknown): string | null {
  if (actual === undefined) return `${name}: the op reported no '${name}'`;
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${name} is ${show(actual)}, expected a list`;
    if (actual.length !== expected.length)
      return `${name} has ${actual.length} entries, expected ${expected.length}`;
    for (let i = 0; i < expected.length; i++) {
      const e: unknown = expected[i];
      const a: unknown = actual[i];
      if (e !== null && typeof e === 'object') {
        for (const [k, v] of Object.entries(e as Record<string, unknown>)) {
          const why = compareValue(ctx, `${name}[${i}].${k}`, v, (a as Record<string, unknown> | null)?.[k]);
          if (why !== null) return why;
        }
      } else {
        const why = compareValue(ctx, `${name}[${i}]`, e, a);
        if (why !== null) return why;
      }
    }
    return null;
  }
  // A text output (a maps line) compares as text.
  if (typeof actual === 'string' && typeof expected === 'string')
    return actual === expected ? null : `${name} is ${show(actual)}, expected ${show(expected)}`;
  if (typeof expected === 'boolean') {
    return Boolean(actual) === expected ? null : `${name} is ${show(actual)}, expected ${expected}`;
  }
  // Plain hex or decimal strings compare exactly, beyond 2^53 too (0xffffffffffffffff).
  const want =
    typeof expected === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(expected.trim())
      ? BigInt(expected.trim())
      : typeof expected === 'string'
        ? exactValue(ctx, expected, name)
        : toBig(expected);
  const got = toBig(actual);
  if (want === null || got === null) {
    return JSON.stringify(actual) === JSON.stringify(expected)
      ? null
      : `${name} is ${show(actual)}, expected ${show(expected)}`;
  }
  return want === got ? null : `${name} is ${show(got)}, expected ${show(want)}`;
}

const KIND_ALIASES: Record<string, string> = { present: 'ram' };

function comparePages(expected: unknown[], pages: PagemapEntry[]): string | null {
  const flat: Record<string, unknown>[] = [];
  for (const e of expected) {
    if (typeof e === 'string') {
      const m = /^([a-z-]+)(?:\*(\d+))?$/.exec(e)!;
      const n = m[2] === undefined ? 1 : Number(m[2]);
      for (let i = 0; i < n; i++) flat.push({ kind: KIND_ALIASES[m[1]] ?? m[1] });
    } else {
      const o = e as Record<string, unknown>;
      const n = typeof o.repeat === 'number' ? o.repeat : 1;
      for (let i = 0; i < n; i++) flat.push(o);
    }
  }
  if (flat.length !== pages.length) return `pagemap returned ${pages.length} pages, expected ${flat.length}`;
  for (let i = 0; i < flat.length; i++) {
    const want = flat[i];
    const got = pages[i] as unknown as Record<string, unknown>;
    const fields: [string, string][] = [
      ['kind', 'kind'],
      ['present', 'present'],
      ['swap', 'swap'],
      ['soft_dirty', 'softDirty'],
      ['exclusive', 'exclusive'],
      ['file', 'file'],
      ['thp', 'thp'],
    ];
    for (const [k, g] of fields) {
      if (want[k] !== undefined && want[k] !== got[g]) {
        return `page ${i}: ${k} is ${show(got[g])}, expected ${show(want[k])}`;
      }
    }
  }
  return null;
}

/** Failures of one alternative. */
function judgeOne(ctx: ScenarioContext, e: Expect, r: OpResult): string[] {
  const out: string[] = [];
  if (typeof e.errno === 'string') {
    const want = errnoValue(e.errno);
    if (want === undefined) out.push(`unknown errno name ${e.errno}`);
    else if (r.ret !== -want) out.push(`returned ${describeRet(r.ret)}, expected -${e.errno}`);
  } else if (e.ret !== undefined) {
    const want = ctx.num(e.ret, 'ret');
    if (r.ret !== want) out.push(`returned ${describeRet(r.ret)}, expected ${describeRet(want)}`);
  } else if (isErr(r.ret)) {
    out.push(`failed with ${describeRet(r.ret)}`);
  }
  if (out.length > 0) return out;
  if (e.data !== undefined) {
    if (r.data === undefined) out.push('the op returned no data');
    else {
      const want = patternView(e.data as DataSpec, r.data.length);
      const why = firstDifference(r.data, want);
      const spec = e.data as DataSpec;
      // A short `bytes` list still judges the whole read: the bytes it does not list must be 0.
      const listed = 'bytes' in spec ? spec.bytes.length : r.data.length;
      const note =
        listed < r.data.length
          ? ` (bytes lists ${listed} of the ${r.data.length} bytes read; the rest must be 0)`
          : '';
      if (why !== null) out.push(`data: ${why}${note}`);
    }
  }
  if (e.bytes !== undefined) {
    const want = parseProtBytes(e.bytes as (string | number)[]);
    const got = r.bytes ?? [];
    const same = want.length === got.length && want.every((b, i) => b === got[i]);
    if (!same) out.push(`bytes are ${protBytesSummary(got)}, expected ${protBytesSummary(want)}`);
  }
  if (e.pages !== undefined) {
    const why = comparePages(e.pages as unknown[], r.pages ?? []);
    if (why !== null) out.push(why);
  }
  for (const [k, v] of Object.entries(e)) {
    if (SPECIAL.has(k)) continue;
    const why = compareValue(ctx, k, v, r.outputs?.[k]);
    if (why !== null) out.push(why);
  }
  return out;
}

/** All failures of a step's outcome against its expectation. */
export function judge(ctx: ScenarioContext, expect: unknown, r: OpResult): string[] {
  if (expect === undefined) return isErr(r.ret) ? [`failed with ${describeRet(r.ret)}`] : [];
  const e = expect as Expect;
  if (Array.isArray(e.any)) {
    const alternatives = (e.any as Expect[]).map((alt) => judgeOne(ctx, alt, r));
    if (alternatives.some((f) => f.length === 0)) return [];
    return [
      `matched none of ${alternatives.length} alternatives: ${alternatives.map((f) => f.join('; ')).join(' | ')}`,
    ];
  }
  return judgeOne(ctx, e, r);
}
