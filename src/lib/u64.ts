/**
 * u64 values (IOVAs, uAPI lengths) kept in doubles without losing what matters.
 *
 * A double holds every integer below 2^53, and above that every multiple of its spacing: 2 KiB
 * just below 2^64. Page-aligned and 2 KiB-aligned IOVAs and the exclusive ends of ranges built
 * from them are therefore exact anywhere in the 64-bit space; inclusive last bytes (0x...fff)
 * are not. The model keeps a range's last byte as the largest double not above it ("floor
 * last"), so that for any exact start `s`, `s <= last` is answered exactly, and recovers the end
 * as the next double up. Conversions from the uAPI round a start up and a last down, which keeps
 * every comparison against exact area bounds exact. Arithmetic on byte offsets inside such a
 * range stays in its own small numbers.
 */

/** 2^53: below it every integer is a double. */
export const EXACT_LIMIT = 2 ** 53;
/** 2^64 as a double: the end of the IOVA space. */
export const U64_END = 2 ** 64;
/** 2^64 - 1 as a bigint. */
export const U64_MAX_BIG = (1n << 64n) - 1n;

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** The next double above a non-negative finite x. */
export function nextDouble(x: number): number {
  f64[0] = x;
  u64[0] += 1n;
  return f64[0];
}

/** The next double below a positive finite x. */
export function prevDouble(x: number): number {
  f64[0] = x;
  u64[0] -= 1n;
  return f64[0];
}

/** The inclusive last byte of a range ending (exclusively) at `end`, as the model keeps it. */
export function lastOf(end: number): number {
  return end <= EXACT_LIMIT ? end - 1 : prevDouble(end);
}

/** The exclusive end of a range whose last byte the model keeps as `last` (ULONG_MAX ends at 2^64). */
export function endOf(last: number): number {
  if (last >= U64_END) return U64_END;
  return last < EXACT_LIMIT ? last + 1 : nextDouble(last);
}

/** The largest double not above b: a uAPI last byte as the model keeps it. */
export function floorDouble(b: bigint): number {
  const n = Number(b);
  return BigInt(n) > b ? prevDouble(n) : n;
}

/** The smallest double not below b: a uAPI start as the model keeps it. */
export function ceilDouble(b: bigint): number {
  const n = Number(b);
  return n !== 0 && BigInt(n) < b ? nextDouble(n) : n;
}

/** A model last byte back to the exact u64 (ULONG_MAX and the top byte give 2^64 - 1). */
export function lastToU64(last: number): bigint {
  return BigInt(endOf(last)) - 1n;
}

/** Whether [start, start + length) runs past 2^64 - 1, computed exactly (check_add_overflow(start, length - 1)). */
export function rangeOverflows(start: number, length: number): boolean {
  return BigInt(start) + BigInt(length) - 1n > U64_MAX_BIG;
}
