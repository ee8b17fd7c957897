/**
 * A fixed-size bitmap over a Uint32Array, like the kernel's unsigned long bitmaps (lib/bitmap.c,
 * lib/find_bit.c). Used for allocation maps and per-page flags where millions of bits must stay
 * compact and scans must skip 32 bits per step.
 *
 * Bits past nbits in the last word are kept zero by every operation, so count() and the find
 * functions never need to mask them out except where a zero-search can run into them.
 *
 * Bit indices are limited to 32 bits (nbits < 2^32) so `i >>> 5` and `i & 31` are exact.
 */

import { changesWithin } from './snapshot.ts';

const MAX_BITS = 2 ** 32 - 1;

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function ctz32(m: number): number {
  return 31 - Math.clz32(m & -m);
}

/** Mask of bits [lo, hi) within one word; 0 <= lo < hi <= 32. */
function wordMask(lo: number, hi: number): number {
  return (hi === 32 ? -1 : (1 << hi) - 1) & (-1 << lo);
}

export class Bitmap {
  readonly nbits: number;
  private readonly words: Uint32Array;

  constructor(nbits: number) {
    if (!Number.isInteger(nbits) || nbits < 0 || nbits > MAX_BITS) {
      throw new RangeError(`Bitmap size must be an integer in [0, 2^32 - 1], got ${nbits}`);
    }
    this.nbits = nbits;
    this.words = new Uint32Array(Math.ceil(nbits / 32));
  }

  /**
   * Tells snapshots that bits change only within the bit ranges [lo, hi) `ranges()` answers
   * (lib/snapshot.ts changesWithin()): a restore writes back the words that hold them.
   */
  changesWithin(ranges: () => readonly (readonly [number, number])[]): void {
    changesWithin([this.words], () =>
      ranges().map(([lo, hi]): [number, number] => [lo >>> 5, Math.ceil(hi / 32)]),
    );
  }

  test(i: number): boolean {
    this.checkBit(i);
    return ((this.words[i >>> 5] >>> (i & 31)) & 1) !== 0;
  }

  set(i: number): void {
    this.checkBit(i);
    this.words[i >>> 5] |= 1 << (i & 31);
  }

  clear(i: number): void {
    this.checkBit(i);
    this.words[i >>> 5] &= ~(1 << (i & 31));
  }

  /** Sets bits [start, start + n). */
  setRange(start: number, n: number): void {
    this.checkRange(start, n);
    if (n === 0) return;
    const end = start + n;
    const w0 = start >>> 5;
    const w1 = (end - 1) >>> 5;
    if (w0 === w1) {
      this.words[w0] |= wordMask(start & 31, ((end - 1) & 31) + 1);
      return;
    }
    this.words[w0] |= wordMask(start & 31, 32);
    this.words.fill(0xffffffff, w0 + 1, w1);
    this.words[w1] |= wordMask(0, ((end - 1) & 31) + 1);
  }

  /** Clears bits [start, start + n). */
  clearRange(start: number, n: number): void {
    this.checkRange(start, n);
    if (n === 0) return;
    const end = start + n;
    const w0 = start >>> 5;
    const w1 = (end - 1) >>> 5;
    if (w0 === w1) {
      this.words[w0] &= ~wordMask(start & 31, ((end - 1) & 31) + 1);
      return;
    }
    this.words[w0] &= ~wordMask(start & 31, 32);
    this.words.fill(0, w0 + 1, w1);
    this.words[w1] &= ~wordMask(0, ((end - 1) & 31) + 1);
  }

  /** Models find_next_bit(): first set bit at or after `from`, or nbits. */
  findNextSet(from: number): number {
    this.checkFrom(from);
    const nbits = this.nbits;
    if (from >= nbits) return nbits;
    const words = this.words;
    let w = from >>> 5;
    let word = words[w] & (-1 << (from & 31));
    while (word === 0) {
      if (++w >= words.length) return nbits;
      word = words[w];
    }
    return w * 32 + ctz32(word);
  }

  /** Models find_next_zero_bit(): first clear bit at or after `from`, or nbits. */
  findNextZero(from: number): number {
    this.checkFrom(from);
    const nbits = this.nbits;
    if (from >= nbits) return nbits;
    const words = this.words;
    let w = from >>> 5;
    let word = ~words[w] & (-1 << (from & 31));
    while (word === 0) {
      if (++w >= words.length) return nbits;
      word = ~words[w];
    }
    // The always-zero tail of the last word looks like free bits; clamp them away.
    const bit = w * 32 + ctz32(word);
    return bit < nbits ? bit : nbits;
  }

  /**
   * Models bitmap_find_next_zero_area() without alignment: start of the first run of `n` clear
   * bits at or after `from`, or nbits if there is none. Each probe skips past the blocking set bit,
   * so the scan is linear in the words covered.
   */
  findNextZeroArea(from: number, n: number): number {
    this.checkFrom(from);
    if (!Number.isInteger(n) || n < 0)
      throw new RangeError(`Bitmap area length must be an integer >= 0, got ${n}`);
    const nbits = this.nbits;
    let start = from;
    for (;;) {
      start = n === 0 ? Math.min(start, nbits) : this.findNextZero(start);
      if (start + n > nbits) return nbits;
      const blocker = this.findNextSet(start);
      if (blocker >= start + n) return start;
      start = blocker + 1;
    }
  }

  count(): number {
    const words = this.words;
    let c = 0;
    for (let w = 0; w < words.length; w++) c += popcount32(words[w]);
    return c;
  }

  /** Set bits in [start, start + n). */
  countRange(start: number, n: number): number {
    this.checkRange(start, n);
    if (n === 0) return 0;
    const words = this.words;
    const end = start + n;
    const w0 = start >>> 5;
    const w1 = (end - 1) >>> 5;
    if (w0 === w1) return popcount32(words[w0] & wordMask(start & 31, ((end - 1) & 31) + 1));
    let c = popcount32(words[w0] & wordMask(start & 31, 32));
    for (let w = w0 + 1; w < w1; w++) c += popcount32(words[w]);
    return c + popcount32(words[w1] & wordMask(0, ((end - 1) & 31) + 1));
  }

  private checkBit(i: number): void {
    if (!(i >= 0 && i < this.nbits && Math.floor(i) === i)) {
      throw new RangeError(`bit ${i} out of range [0, ${this.nbits})`);
    }
  }

  private checkFrom(from: number): void {
    if (!(from >= 0 && Math.floor(from) === from && from <= MAX_BITS)) {
      throw new RangeError(`Bitmap search start must be a non-negative integer, got ${from}`);
    }
  }

  private checkRange(start: number, n: number): void {
    if (!(
      Number.isInteger(start) &&
      Number.isInteger(n) &&
      start >= 0 &&
      n >= 0 &&
      start + n <= this.nbits
    )) {
      throw new RangeError(`bit range [${start}, ${start} + ${n}) outside [0, ${this.nbits})`);
    }
  }
}
