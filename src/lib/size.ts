/**
 * Byte sizes as written in scenario files and on the command line ('2MiB', '4K', '0x1000').
 *
 * Units are binary only. 'KB', 'MB', ... are rejected rather than guessed at, because a model of
 * page tables cannot afford a size that is silently 1000 when the author meant 1024.
 * Fractions go through BigInt so '1.5KiB' is exact and '0.1KiB' (102.4 bytes) is refused instead
 * of rounded.
 */

export class SizeError extends Error {
  override name = 'SizeError';
}

const UNIT_SHIFT: ReadonlyMap<string, number> = new Map([
  ['', 0],
  ['b', 0],
  ['k', 10],
  ['kib', 10],
  ['m', 20],
  ['mib', 20],
  ['g', 30],
  ['gib', 30],
  ['t', 40],
  ['tib', 40],
]);

/** Largest first, for formatSize. */
const FORMAT_UNITS: readonly [string, number][] = [
  ['TiB', 2 ** 40],
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10],
];

const DECIMAL = /^(\d+)(?:\.(\d+))?\s*([a-z]*)$/i;
const HEX = /^0x([0-9a-f]+)$/i;
const AMBIGUOUS_UNIT = /^[kmgtpe]b$/i;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function fail(input: string, why: string): never {
  throw new SizeError(`invalid size ${JSON.stringify(input)}: ${why}`);
}

function toSafeNumber(input: string, bytes: bigint): number {
  if (bytes > MAX_SAFE) fail(input, 'larger than 2^53 - 1 bytes');
  return Number(bytes);
}

export function parseSize(v: string | number): number {
  if (typeof v === 'number') {
    const shown = String(v);
    if (!Number.isFinite(v)) fail(shown, 'not a finite number');
    if (v < 0) fail(shown, 'negative sizes are not allowed');
    if (!Number.isInteger(v)) fail(shown, 'not a whole number of bytes');
    if (!Number.isSafeInteger(v)) fail(shown, 'larger than 2^53 - 1 bytes');
    return v;
  }
  if (typeof v !== 'string') fail(String(v), 'expected a string or a number');
  const s = v.trim();
  if (s === '') fail(v, 'empty');
  if (s.startsWith('-')) fail(v, 'negative sizes are not allowed');

  const hex = HEX.exec(s);
  if (hex) return toSafeNumber(v, BigInt(`0x${hex[1]}`));
  if (/^0x/i.test(s)) fail(v, 'bad hexadecimal number (hex sizes are plain bytes, with no unit)');

  const m = DECIMAL.exec(s);
  if (!m) fail(v, 'expected a number with an optional unit (B, K/KiB, M/MiB, G/GiB, T/TiB) or 0x hex');
  const [, whole, frac = '', unitText] = m;
  const shift = UNIT_SHIFT.get(unitText.toLowerCase());
  if (shift === undefined) {
    if (AMBIGUOUS_UNIT.test(unitText)) {
      fail(v, `unit "${unitText}" is ambiguous; write ${unitText[0].toUpperCase()}iB (binary)`);
    }
    fail(v, `unknown unit "${unitText}"; use B, K/KiB, M/MiB, G/GiB or T/TiB`);
  }
  const scale = 10n ** BigInt(frac.length);
  const scaled = BigInt(whole + frac) << BigInt(shift);
  if (scaled % scale !== 0n) fail(v, 'not a whole number of bytes');
  return toSafeNumber(v, scaled / scale);
}

/** Uses the largest binary unit that divides n exactly, so the output always parses back to n. */
export function formatSize(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new SizeError(`cannot format size ${n}: expected a non-negative safe integer`);
  }
  if (n !== 0) {
    for (const [unit, bytes] of FORMAT_UNITS) if (n % bytes === 0) return `${n / bytes}${unit}`;
  }
  return `${n}B`;
}
