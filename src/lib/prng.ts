/**
 * Seeded pseudo-random numbers for the explorer, workloads and property tests.
 *
 * Reproducibility is the whole point: a replay token names a seed, and the same seed must give the
 * same run on every machine and Node version, so nothing here touches Math.random or any host
 * entropy. The generator is sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG, 128-bit state,
 * passes PractRand to many terabytes) seeded through splitmix32, which spreads even tiny or
 * similar seeds (0, 1, 2, ...) over the whole state space.
 *
 * Besides the running state, each generator remembers the 64-bit key it was seeded from. fork()
 * derives a child from that key and a label rather than from the running state, so adding or
 * removing draws in one component never shifts the streams of its siblings: a scheduler and a
 * workload forked from one seed stay stable while either of them is edited.
 */

const GOLDEN32 = 0x9e3779b9;
/** Marks keys derived from string seeds so the string '7' and the number 7 give different streams. */
const STRING_KEY_TAG = 0x5eed5eed;
const NUMBER_LABEL_TAG = 0x6e756d62;
const TWO_POW_32 = 2 ** 32;
const TWO_POW_53 = 2 ** 53;
/** Rounds discarded after seeding: sfc32's state needs a few steps to mix splitmix's output fully. */
const WARMUP_ROUNDS = 12;

/** Murmur3's 32-bit finaliser: a bijection with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hashes a string seed to 32 bits (FNV-1a over UTF-16 code units, then fmix32 because FNV alone
 * leaves the high bits poorly mixed for short inputs).
 */
export function hashSeed(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** Splits a safe integer (possibly negative) into low and high 32-bit words without bit ops above 2^32. */
function splitSafeInteger(n: number): [number, number] {
  const lo = ((n % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
  const hi = Math.floor(n / TWO_POW_32) >>> 0;
  return [lo >>> 0, hi];
}

function seedKey(seed: number | string): [number, number] {
  if (typeof seed === 'string') return [hashSeed(seed), STRING_KEY_TAG];
  if (Number.isSafeInteger(seed)) return splitSafeInteger(seed);
  if (!Number.isFinite(seed)) throw new RangeError(`Prng seed must be finite, got ${seed}`);
  // Fractional or huge doubles: their shortest decimal form is a stable, exact description.
  return [hashSeed(String(seed)), STRING_KEY_TAG ^ 1];
}

function labelHash(label: string | number): number {
  if (typeof label === 'string') return hashSeed(label);
  if (Number.isSafeInteger(label)) {
    const [lo, hi] = splitSafeInteger(label);
    return fmix32(lo ^ fmix32(hi ^ NUMBER_LABEL_TAG));
  }
  if (!Number.isFinite(label)) throw new RangeError(`Prng fork label must be finite, got ${label}`);
  return fmix32(hashSeed(String(label)) ^ NUMBER_LABEL_TAG);
}

function isU32(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < TWO_POW_32;
}

export class Prng {
  // State words are kept as int32 (`| 0`) so V8 stores them as small integers, not heap doubles.
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  private keyLo = 0;
  private keyHi = 0;

  constructor(seed: number | string) {
    const [lo, hi] = seedKey(seed);
    this.reseed(lo, hi);
  }

  private reseed(keyLo: number, keyHi: number): void {
    this.keyLo = keyLo >>> 0;
    this.keyHi = keyHi >>> 0;
    // splitmix32 walking from a start point that depends on both key words.
    let s = (keyLo ^ fmix32((keyHi + GOLDEN32) | 0)) | 0;
    const splitmix = (): number => {
      s = (s + GOLDEN32) | 0;
      let t = s ^ (s >>> 16);
      t = Math.imul(t, 0x21f0aaad);
      t ^= t >>> 15;
      t = Math.imul(t, 0x735a2d97);
      t ^= t >>> 15;
      return t | 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    for (let i = 0; i < WARMUP_ROUNDS; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    const c = (this.c << 21) | (this.c >>> 11);
    this.c = (c + t) | 0;
    return t >>> 0;
  }

  /** Uses 53 random bits (two draws) so every double in the result grid is reachable. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_POW_53;
  }

  /**
   * Rejection sampling rather than `next() * n` so the result is exactly uniform; the rejected
   * zone is below half the draw space, so the expected number of draws is under two.
   */
  int(n: number): number {
    // 2^53 itself is allowed: every result is still a safe integer.
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_53) {
      throw new RangeError(`Prng.int: n must be an integer in [1, 2^53], got ${n}`);
    }
    if (n <= TWO_POW_32) {
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const u = this.nextU32();
        if (u < limit) return u % n;
      }
    }
    const limit = TWO_POW_53 - (TWO_POW_53 % n);
    for (;;) {
      const u = (this.nextU32() >>> 11) * TWO_POW_32 + this.nextU32();
      if (u < limit) return u % n;
    }
  }

  /** Inclusive on both ends, like the kernel's get_random_u32_inclusive(). */
  range(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo) {
      throw new RangeError(`Prng.range: need safe integers lo <= hi, got [${lo}, ${hi}]`);
    }
    return lo + this.int(hi - lo + 1);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Prng.pick: empty array');
    return items[this.int(items.length)];
  }

  /** Fisher-Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /**
   * A child stream keyed by this generator's seed key and the label. It does not depend on how
   * far this generator has advanced, and the same label always gives the same child; mixing is
   * order-sensitive, so fork('a').fork('b') differs from fork('b').fork('a').
   */
  fork(label: string | number): Prng {
    const lh = labelHash(label);
    const lo = fmix32(this.keyLo ^ fmix32(lh));
    const hi = fmix32((this.keyHi + lo + GOLDEN32) | 0);
    // Built through the constructor so every instance shares one hidden class.
    const child = new Prng(0);
    child.reseed(lo, hi);
    return child;
  }

  clone(): Prng {
    return Prng.fromState(this.state);
  }

  /** [a, b, c, d, keyLo, keyHi] as unsigned 32-bit words; the key keeps fork() working after a restore. */
  get state(): readonly number[] {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0, this.keyLo, this.keyHi];
  }

  static fromState(s: readonly number[]): Prng {
    if (s.length !== 6 || !s.every(isU32)) {
      throw new RangeError('Prng.fromState: expected 6 unsigned 32-bit words');
    }
    const p = new Prng(0);
    p.a = s[0] | 0;
    p.b = s[1] | 0;
    p.c = s[2] | 0;
    p.d = s[3] | 0;
    p.keyLo = s[4];
    p.keyHi = s[5];
    return p;
  }
}
