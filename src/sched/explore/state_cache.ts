/**
 * Stateful search: the states a depth-first search has explored, so a schedule that reaches one
 * again is abandoned instead of exploring the same future twice.
 *
 * What a state is. The model's own state (page frames, tables, side tables) is not the whole
 * state: every thread is a generator whose local variables (a sequence count it read, a range it
 * is faulting, a retry counter) cannot be read from outside, so two schedules that leave the
 * model byte for byte the same may still differ in what a thread does next. A hash of the model
 * and the threads' positions would merge them and could hide a race. What does fix the whole
 * state, locals included, is the partial order of the steps that led to it (its Mazurkiewicz
 * trace, over the footprints steps declare): two schedules that run the same steps with every
 * pair of dependent steps in the same order leave the model, and every thread, in the same state
 * (docs/fidelity.md asks steps to declare what makes this hold). So a state is named by a hash of
 * that order, computed step by step (races.ts): each step's hash mixes its thread, its position
 * in the thread, its label and the hashes of the latest step of every thread it depends on, and
 * the state's hash sums, per thread, the hash of its latest step. Both are independent of the
 * interleaving that produced the order.
 *
 * When a state may be pruned (docs/explorer.md, "Stateful search"):
 *  - unbounded, with sleep sets: when an earlier visit's sleep set is a subset of this one's (the
 *    earlier visit explored at least what this one would: Godefroid's rule for state caching with
 *    sleep sets);
 *  - under a preemption bound: when an earlier visit had no more preemptions and the same thread
 *    ran last (the next choice's cost depends on it), or at least one preemption fewer whatever
 *    ran last.
 * A pruned schedule ends where it met the state; DPOR finds the races of its future through the
 * schedules that explored it the first time.
 *
 * Hashes are 53 bits (two 32-bit lanes, truncated to a safe integer for Map keys): with a million
 * states the odds of any collision are about 1 in 18,000. `--no-state-cache` turns it off.
 */

/** Murmur3's finaliser: a bijective mix of 32 bits. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 64-bit hash as two 32-bit lanes. */
export interface Hash2 {
  lo: number;
  hi: number;
}

/** mix()'s low lane: `v` mixed into the low lane `lo` of a hash. */
export function mixLo(lo: number, v: number): number {
  return fmix(Math.imul(lo ^ v, 0x9e3779b1) + 0x7f4a7c15);
}

/** mix()'s high lane: `v` mixed into the high lane `hi` of a hash. */
export function mixHi(hi: number, v: number): number {
  return fmix(Math.imul(hi + v, 0x85ebca77) ^ 0x165667b1);
}

/** Mixes `v` (any 32-bit value) into the running hash `h`, lane by lane with different seeds. */
export function mix(h: Hash2, v: number): Hash2 {
  return { lo: mixLo(h.lo, v), hi: mixHi(h.hi, v) };
}

const labelHashes = new Map<string, number>();

/** A 32-bit hash of a step label (FNV-1a), memoised: labels repeat. */
export function labelHash(label: string): number {
  let h = labelHashes.get(label);
  if (h !== undefined) return h;
  h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  h >>>= 0;
  if (labelHashes.size < 65536) labelHashes.set(label, h);
  return h;
}

/** The Map key of a hash: 53 of its 64 bits. */
export function keyOf(h: Hash2): number {
  return laneKey(h.lo, h.hi);
}

/** keyOf() of the hash with lanes `lo` and `hi` (no object made for it). */
export function laneKey(lo: number, hi: number): number {
  return (hi & 0x1fffff) * 0x100000000 + lo;
}

/** The sleep set of a visit where no thread sleeps (most): one list, never changed. */
const NONE_ASLEEP: readonly number[] = Object.freeze([]);

interface Visit {
  /** Preemptions before the state (0 when the search is unbounded). */
  preemptions: number;
  /** The thread that ran last (-1: none), when the search is bounded. */
  last: number;
  /** Thread ids asleep at the state, sorted (empty: none). */
  sleep: readonly number[];
}

function subset(a: readonly number[], b: ReadonlySet<number>): boolean {
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** Counts a search reports (`states` in the result). */
export interface StateStats {
  /** States hashed: choice points the search reached for the first time. */
  hashed: number;
  /** Schedules abandoned at a state explored before. */
  pruned: number;
  /** Visits the cache could not record because it was full (their states may be explored again). */
  unrecorded: number;
}

/** Fresh counts. */
export function emptyStateStats(): StateStats {
  return { hashed: 0, pruned: 0, unrecorded: 0 };
}

/** Adds the counts of `b` into `a`. */
export function addStateStats(a: StateStats, b: StateStats): void {
  a.hashed += b.hashed;
  a.pruned += b.pruned;
  a.unrecorded += b.unrecorded;
}

/**
 * How many states a cache holds at most by default: its table then takes 12 bytes a slot, 2^24
 * slots (192 MiB) at a load of three quarters. A search that runs on after that explores new
 * states without recording them; pruning less is sound, it only repeats work.
 */
export const STATE_CACHE_MAX_STATES = 12_582_912;
/** Visits recorded per state at most (they differ in sleep set, preemptions or last thread). */
const MAX_VISITS_PER_STATE = 8;
/**
 * Visits kept in lists at most by default (a state's second and later visits, and a first visit
 * that does not pack): objects on the heap, about 150 bytes a visit with its share of the lists
 * (measured with two visits a state), so about 320 MB at most.
 */
export const STATE_CACHE_MAX_LISTED = 1 << 21;

/** Slot values: bit 31 set, an index into the lists; clear, one visit packed (encode()). */
const LIST = 0x80000000;
const LAST_BITS = 15;
const LAST_LIMIT = 1 << LAST_BITS;
const PREEMPTION_LIMIT = 1 << 16;

/**
 * The states explored so far, with what each visit covered: an open-addressed table of 53-bit
 * keys in typed arrays (so a long search neither feeds the garbage collector per state nor meets
 * a Map's size limit). Most states are visited once; such a visit is packed into the slot's value,
 * and a state with more visits keeps them in a list the value points to.
 */
export class StateCache {
  private keyLo = new Uint32Array(0);
  /** The key's high 21 bits, plus bit 21 set in an occupied slot. */
  private keyHi = new Uint32Array(0);
  private value = new Uint32Array(0);
  private readonly lists: Visit[][] = [];
  /** Visits in the lists. */
  private listed = 0;
  private count = 0;
  /** Occupied slots allowed before the table grows (or, at its largest, stops recording). */
  private growAt = 0;
  private readonly maxSlots: number;

  constructor(
    /** Bounded: the preemptions and the last thread matter; else the sleep set alone does. */
    private readonly bounded: boolean,
    readonly stats: StateStats = emptyStateStats(),
    /** At most this many states are recorded (tests set it small). */
    readonly maxStates: number = STATE_CACHE_MAX_STATES,
    /** At most this many visits are kept in lists. */
    readonly maxListed: number = STATE_CACHE_MAX_LISTED,
  ) {
    let slots = 16;
    while (slots * 0.75 < maxStates && slots < 1 << 30) slots *= 2;
    this.maxSlots = slots;
    this.resize(Math.min(4096, slots));
  }

  /**
   * Whether a state explored before covers this visit; if not, records this visit. `sleep` is
   * the set of sleeping threads at the state (empty without sleep sets).
   */
  seen(key: number, preemptions: number, last: number, sleep: ReadonlySet<number>): boolean {
    this.stats.hashed++;
    if (!this.bounded) {
      preemptions = 0;
      last = -1;
    }
    const lo = key >>> 0;
    const hi = (Math.floor(key / 0x100000000) & 0x1fffff) | 0x200000;
    const mask = this.keyHi.length - 1;
    let i = mix32(lo, hi) & mask;
    for (;;) {
      const h = this.keyHi[i];
      if (h === 0) break;
      if (h === hi && this.keyLo[i] === lo) return this.revisit(i, preemptions, last, sleep);
      i = (i + 1) & mask;
    }
    // A state not seen before.
    const full =
      this.count >= this.growAt && (this.keyHi.length >= this.maxSlots || this.count >= this.maxStates);
    const v = full ? -1 : this.encode(preemptions, last, sleep);
    if (v < 0) {
      this.stats.unrecorded++;
      return false;
    }
    if (this.count >= this.growAt) {
      this.resize(this.keyHi.length * 2);
      i = mix32(lo, hi) & (this.keyHi.length - 1);
      while (this.keyHi[i] !== 0) i = (i + 1) & (this.keyHi.length - 1);
    }
    this.keyLo[i] = lo;
    this.keyHi[i] = hi;
    this.value[i] = v;
    this.count++;
    return false;
  }

  /** States recorded. */
  get size(): number {
    return this.count;
  }

  /** A known state: whether one of its visits covers this one; if none does, records it. */
  private revisit(i: number, preemptions: number, last: number, sleep: ReadonlySet<number>): boolean {
    const v = this.value[i];
    let list: Visit[];
    if ((v & LIST) === 0) {
      const first = this.decode(v);
      if (this.covers(first, preemptions, last, sleep)) return true;
      if (this.listed + 2 > this.maxListed) {
        this.stats.unrecorded++;
        return false;
      }
      list = [first];
      this.listed++;
      this.value[i] = (LIST | this.lists.length) >>> 0;
      this.lists.push(list);
    } else {
      list = this.lists[v & ~LIST];
      for (const old of list) if (this.covers(old, preemptions, last, sleep)) return true;
    }
    if (list.length < MAX_VISITS_PER_STATE && this.listed < this.maxListed) {
      list.push(visit(preemptions, last, sleep));
      this.listed++;
    } else this.stats.unrecorded++;
    return false;
  }

  private covers(v: Visit, preemptions: number, last: number, sleep: ReadonlySet<number>): boolean {
    if (!subset(v.sleep, sleep)) return false;
    if (
      !this.bounded ||
      (v.last === last && v.preemptions <= preemptions) ||
      v.preemptions + 1 <= preemptions
    ) {
      this.stats.pruned++;
      return true;
    }
    return false;
  }

  /**
   * The slot value of a first visit, packed when it fits, else a list of one (-1 when the lists
   * are full). Unbounded, a visit is its sleep set, as a mask of thread ids below 31; bounded (no
   * sleep sets), its preemptions and the thread that ran last.
   */
  private encode(preemptions: number, last: number, sleep: ReadonlySet<number>): number {
    if (!this.bounded) {
      let mask = 0;
      for (const t of sleep) {
        if (t < 0 || t > 30) return this.listOf(preemptions, last, sleep);
        mask |= 1 << t;
      }
      return mask;
    }
    if (sleep.size === 0 && preemptions < PREEMPTION_LIMIT && last + 1 < LAST_LIMIT && last >= -1)
      return ((preemptions << LAST_BITS) | (last + 1)) >>> 0;
    return this.listOf(preemptions, last, sleep);
  }

  /** The visit a packed slot value stands for. */
  private decode(v: number): Visit {
    if (this.bounded)
      return { preemptions: v >>> LAST_BITS, last: (v & (LAST_LIMIT - 1)) - 1, sleep: NONE_ASLEEP };
    const sleep: number[] = [];
    for (let t = 0; v !== 0; t++, v >>>= 1) if ((v & 1) !== 0) sleep.push(t);
    return { preemptions: 0, last: -1, sleep: sleep.length === 0 ? NONE_ASLEEP : sleep };
  }

  private listOf(preemptions: number, last: number, sleep: ReadonlySet<number>): number {
    if (this.listed >= this.maxListed) return -1;
    this.listed++;
    this.lists.push([visit(preemptions, last, sleep)]);
    return (LIST | (this.lists.length - 1)) >>> 0;
  }

  private resize(slots: number): void {
    const lo = this.keyLo;
    const hi = this.keyHi;
    const val = this.value;
    this.keyLo = new Uint32Array(slots);
    this.keyHi = new Uint32Array(slots);
    this.value = new Uint32Array(slots);
    this.growAt = Math.min(Math.floor(slots * 0.75), this.maxStates);
    const mask = slots - 1;
    for (let j = 0; j < hi.length; j++) {
      if (hi[j] === 0) continue;
      let i = mix32(lo[j], hi[j]) & mask;
      while (this.keyHi[i] !== 0) i = (i + 1) & mask;
      this.keyLo[i] = lo[j];
      this.keyHi[i] = hi[j];
      this.value[i] = val[j];
    }
  }
}

function visit(preemptions: number, last: number, sleep: ReadonlySet<number>): Visit {
  return { preemptions, last, sleep: sleep.size === 0 ? NONE_ASLEEP : [...sleep].sort((a, b) => a - b) };
}

/** A table index from a key's two lanes (they are hash values already; this spreads the high one in). */
function mix32(lo: number, hi: number): number {
  return fmix(lo ^ Math.imul(hi, 0x9e3779b1));
}
