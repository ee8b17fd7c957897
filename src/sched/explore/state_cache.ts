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
  /** Thread ids asleep at the state, sorted. */
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
}

/** The states explored so far, with what each visit covered. */
export class StateCache {
  private readonly visits = new Map<number, Visit[]>();

  constructor(
    /** Bounded: the preemptions and the last thread matter; else the sleep set alone does. */
    private readonly bounded: boolean,
    readonly stats: StateStats = { hashed: 0, pruned: 0 },
  ) {}

  /**
   * Whether a state explored before covers this visit; if not, records this visit. `sleep` is
   * the set of sleeping threads at the state (empty without sleep sets).
   */
  seen(key: number, preemptions: number, last: number, sleep: ReadonlySet<number>): boolean {
    this.stats.hashed++;
    let list = this.visits.get(key);
    if (list !== undefined) {
      for (const v of list) {
        if (!subset(v.sleep, sleep)) continue;
        if (
          !this.bounded ||
          (v.last === last && v.preemptions <= preemptions) ||
          v.preemptions + 1 <= preemptions
        ) {
          this.stats.pruned++;
          return true;
        }
      }
    } else {
      list = [];
      this.visits.set(key, list);
    }
    list.push({
      preemptions: this.bounded ? preemptions : 0,
      last: this.bounded ? last : -1,
      sleep: sleep.size === 0 ? NONE_ASLEEP : [...sleep].sort((a, b) => a - b),
    });
    return false;
  }

  get size(): number {
    return this.visits.size;
  }
}
