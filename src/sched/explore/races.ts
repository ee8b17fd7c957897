/**
 * The happens-before relation of one execution, over the footprints steps declare, and the races
 * in it: what dynamic partial-order reduction (dpor.ts) reverses and what coverage (coverage.ts)
 * reports.
 *
 * Two steps are dependent when they are of the same thread, or when one of them declares no
 * footprint (it may touch anything), or when they touch the same object and one of them writes:
 * the rule of independent() in dfs.ts, which docs/fidelity.md asks every step to honour. Step j
 * happens after step i when a chain of dependent steps leads from i to j. Two steps race when
 * they are dependent, of different threads, and nothing else orders them: no step k between
 * them has i before k before j. Reversing such a pair gives a schedule that is not equivalent to
 * this one; reversing anything else gives either an equivalent one or one some race reaches.
 */
import type { SchedPoint } from '../types.ts';
import { labelHash, laneKey, mixHi, mixLo, type Hash2 } from './state_cache.ts';

/** One step of an execution, as the analysis sees it. */
export interface Event {
  readonly tid: number;
  /** Object touched, or null when the step declares no footprint (dependent with everything). */
  readonly obj: object | null;
  readonly write: boolean;
  /** Choice point (depth) at which this step was chosen, or -1 when it was the only runnable thread. */
  readonly node: number;
  /** Position of the step among its thread's steps, from 1. */
  readonly seq: number;
  /** The step's label (state hashes mix it in). */
  readonly label: string;
}

/**
 * Every event is made here, with its fields in one order, so the code that reads them sees one
 * shape of object (a replayed event moved to a new world's object included).
 */
function makeEvent(
  tid: number,
  obj: object | null,
  write: boolean,
  node: number,
  seq: number,
  label: string,
): Event {
  return { tid, obj, write, node, seq, label };
}

export function eventOf(tid: number, p: SchedPoint, node: number, seq: number): Event {
  const a = p.kind === 'step' ? p.access : undefined;
  return a === undefined
    ? makeEvent(tid, null, true, node, seq, p.label)
    : makeEvent(tid, a.obj, a.write, node, seq, p.label);
}

export function dependent(a: Event, b: Event): boolean {
  if (a.tid === b.tid || a.obj === null || b.obj === null) return true;
  return a.obj === b.obj && (a.write || b.write);
}

/** What add() returns for a step that races with nothing (most steps). */
const NO_RACES: readonly number[] = Object.freeze([]);

interface ObjRecord {
  write: number[];
  access: number[];
  events: number;
}

/**
 * The events of one execution with their vector clocks (clock[t] = how many steps of thread t
 * happen before or at the event), built step by step.
 */
export class HappensBefore {
  readonly events: Event[] = [];
  /**
   * The clocks, `width` columns a row, row j the clock of event j: one buffer, so an event adds
   * no object of its own.
   */
  private clocks = new Int32Array(8 * 64);
  /** Threads by id -> column in the clocks. */
  private readonly column = new Map<number, number>();
  private width = 8;
  /** Last event per thread, by column. */
  private last: number[] = [];
  /** Last event per thread that declared no footprint (dependent with everything), by column. */
  private lastAny: number[] = [];
  /**
   * Per object touched: the last write and the last access of each thread, by column, and how
   * many events touched it (truncate() forgets an object no event touches any more).
   */
  private readonly byObj = new Map<object, ObjRecord>();
  /**
   * What add() overwrote, by event, for truncate(): the thread's last event and the object's
   * entries (for an event with no footprint, its thread's lastAny and last).
   */
  private readonly undoLast: number[] = [];
  private readonly undoAccess: number[] = [];
  private readonly undoWrite: number[] = [];
  /** The state hash after each event (with `hashing`), for truncate(). */
  private readonly sumsLo: number[] = [];
  private readonly sumsHi: number[] = [];
  /**
   * With `hashing`: each event's hash (state_cache.ts), independent of the interleaving: its
   * thread's previous event, its label, and the latest event it depends on in each other thread.
   */
  private readonly hashes: Hash2[] = [];
  /** The sum, over threads, of the hash of (thread id, its latest event), lane by lane. */
  private sumLo = 0;
  private sumHi = 0;
  /** add()'s candidates (the first of them; see there). */
  private readonly cand: number[] = [];

  constructor(private readonly hashing = false) {}

  /**
   * The hash of the trace so far (the steps run and the order of every dependent pair): equal
   * for every schedule that is equivalent to this one. Only with `hashing`.
   */
  traceHash(): Hash2 {
    return { lo: this.sumLo, hi: this.sumHi };
  }

  /** keyOf(traceHash()), without the object (a search asks at every new choice point). */
  traceKey(): number {
    return laneKey(this.sumLo, this.sumHi);
  }

  private col(tid: number): number {
    let c = this.column.get(tid);
    if (c === undefined) {
      c = this.column.size;
      this.column.set(tid, c);
      if (c >= this.width) {
        // Twice the columns: every row moves to its place in a buffer of the new width.
        const old = this.width;
        const rows = this.events.length;
        const w = new Int32Array(2 * this.clocks.length);
        for (let i = 0; i < rows; i++) w.set(this.clocks.subarray(i * old, (i + 1) * old), 2 * old * i);
        this.clocks = w;
        this.width = 2 * old;
      }
      this.last[c] = -1;
      this.lastAny[c] = -1;
    }
    return c;
  }

  /** How many steps of thread `tid` the events hold (the seq of its next event, less one). */
  stepsOf(tid: number): number {
    const c = this.column.get(tid);
    if (c === undefined) return 0;
    const l = this.last[c];
    return l >= 0 ? this.events[l].seq : 0;
  }

  /**
   * Forgets every event from the n-th on, as if only the first n had been added: the next
   * schedule of a depth-first search replays the previous one's first steps exactly, and keeps
   * what was learnt of them.
   */
  truncate(n: number): void {
    for (let j = this.events.length - 1; j >= n; j--) {
      const e = this.events[j];
      const c = this.column.get(e.tid)!;
      if (e.obj === null) {
        this.lastAny[c] = this.undoLast[j];
        this.last[c] = this.undoAccess[j];
      } else {
        this.last[c] = this.undoLast[j];
        const o = this.byObj.get(e.obj)!;
        o.access[c] = this.undoAccess[j];
        if (e.write) o.write[c] = this.undoWrite[j];
        if (--o.events === 0) this.byObj.delete(e.obj);
      }
    }
    if (n >= this.events.length) return;
    this.events.length = n;
    this.undoLast.length = n;
    this.undoAccess.length = n;
    this.undoWrite.length = n;
    if (this.hashing) {
      this.hashes.length = n;
      this.sumsLo.length = n;
      this.sumsHi.length = n;
      this.sumLo = n > 0 ? this.sumsLo[n - 1] : 0;
      this.sumHi = n > 0 ? this.sumsHi[n - 1] : 0;
    }
  }

  /**
   * The k-th step of a schedule that replays the first steps of the one these events came from:
   * checks it is the same thread's, and, when the target built its world again instead of
   * restoring it, moves what is known of the old schedule's object to the one this step touches.
   * False when another thread runs there (the target is not deterministic).
   */
  replayed(k: number, tid: number, p: SchedPoint): boolean {
    const e = this.events[k];
    if (e.tid !== tid) return false;
    const a = p.kind === 'step' ? p.access : undefined;
    const obj = a === undefined ? null : a.obj;
    if (obj === e.obj) return true;
    if (obj === null || e.obj === null) return false;
    const o = this.byObj.get(e.obj);
    if (o !== undefined) {
      this.byObj.delete(e.obj);
      this.byObj.set(obj, o);
    }
    // Every event of the prefix on the old object is replayed on the new one.
    for (let i = k; i < this.events.length; i++) {
      const x = this.events[i];
      if (x.obj === e.obj) this.events[i] = makeEvent(x.tid, obj, x.write, x.node, x.seq, x.label);
    }
    return true;
  }

  /** i happens before (or is) j. */
  before(i: number, j: number): boolean {
    const e = this.events[i];
    return this.clocks[j * this.width + this.col(e.tid)] >= e.seq;
  }

  /**
   * Adds the next event and returns the earlier events it races with (immediate races: a direct
   * dependence that no other chain of dependences implies).
   */
  add(e: Event): readonly number[] {
    const j = this.events.length;
    const c = this.col(e.tid);
    const width = this.width;
    if ((j + 1) * width > this.clocks.length) {
      const w = new Int32Array(2 * (j + 1) * width);
      w.set(this.clocks);
      this.clocks = w;
    }
    const clocks = this.clocks;
    const row = j * width;
    // The latest dependent event of each other thread: an earlier one of the same thread is
    // ordered before it, so only these can race with e. The first `nc` of a list kept from one
    // event to the next (a step makes no list of its own).
    const cand = this.cand;
    let nc = 0;
    const prev = this.last[c];
    if (prev >= 0) clocks.copyWithin(row, prev * width, (prev + 1) * width);
    else clocks.fill(0, row, row + width);
    // The latest event of each other thread that is dependent with e (see dependent()): any
    // event when e declares no footprint; else one that declared none, or one on e's object
    // that writes (or any access of it when e writes). Kept per thread, so a step costs the
    // number of threads, not the length of the execution.
    const objLast = e.obj === null ? undefined : this.byObj.get(e.obj);
    for (let t = 0; t < this.column.size; t++) {
      if (t === c) continue;
      let i: number;
      if (e.obj === null) i = this.last[t];
      else {
        i = this.lastAny[t];
        const onObj = objLast === undefined ? -1 : ((e.write ? objLast.access[t] : objLast.write[t]) ?? -1);
        if (onObj > i) i = onObj;
      }
      if (i < 0) continue;
      // Latest first, as a backward scan would find them (each thread's is a different event):
      // an insertion sort of the few there are.
      let at = nc++;
      while (at > 0 && cand[at - 1] < i) {
        cand[at] = cand[at - 1];
        at--;
      }
      cand[at] = i;
    }
    // Index loops: an iterator costs more than the loop's body until the function is optimised.
    for (let a = 0; a < nc; a++) {
      const ci = cand[a] * width;
      for (let k = 0; k < width; k++) if (clocks[ci + k] > clocks[row + k]) clocks[row + k] = clocks[ci + k];
    }
    // Most steps race with nothing: then no list is made.
    let races: number[] | null = null;
    for (let a = 0; a < nc; a++) {
      const i = cand[a];
      const x = this.events[i];
      const xc = this.col(x.tid);
      // Ordered through the thread's previous step or another candidate: not immediate.
      let implied = prev >= 0 && clocks[prev * width + xc] >= x.seq;
      for (let b = 0; b < nc && !implied; b++) {
        const k = cand[b];
        if (k !== i && clocks[k * width + xc] >= x.seq) implied = true;
      }
      if (!implied) (races ??= []).push(i);
    }
    if (this.hashing) this.hashEvent(e, prev, cand, nc);
    clocks[row + c] = e.seq;
    this.events.push(e);
    if (e.obj === null) {
      // lastAny in undoLast, last in undoAccess.
      this.undoLast.push(this.lastAny[c]);
      this.undoAccess.push(this.last[c]);
      this.undoWrite.push(-1);
      this.lastAny[c] = j;
    } else {
      let o = this.byObj.get(e.obj);
      if (o === undefined) this.byObj.set(e.obj, (o = { write: [], access: [], events: 0 }));
      this.undoLast.push(this.last[c]);
      this.undoAccess.push(o.access[c] ?? -1);
      this.undoWrite.push(o.write[c] ?? -1);
      o.events++;
      o.access[c] = j;
      if (e.write) o.write[c] = j;
    }
    this.last[c] = j;
    if (this.hashing) {
      this.sumsLo.push(this.sumLo);
      this.sumsHi.push(this.sumHi);
    }
    return races ?? NO_RACES;
  }

  private hashEvent(e: Event, prev: number, cand: readonly number[], nc: number): void {
    // mix() lane by lane, so an event makes one object (its hash), not one per mix.
    const tid = e.tid;
    let lo: number;
    let hi: number;
    if (prev >= 0) {
      lo = this.hashes[prev].lo;
      hi = this.hashes[prev].hi;
    } else {
      lo = mixLo(0x3c6ef372, tid);
      hi = mixHi(0x510e527f, tid);
    }
    const label = labelHash(e.label);
    lo = mixLo(lo, label);
    hi = mixHi(hi, label);
    // The latest dependent step of each other thread, as a set: summed, so their order is moot.
    let sumLo = 0;
    let sumHi = 0;
    for (let a = 0; a < nc; a++) {
      const h = this.hashes[cand[a]];
      sumLo = (sumLo + h.lo) >>> 0;
      sumHi = (sumHi + h.hi) >>> 0;
    }
    lo = mixLo(mixLo(lo, sumLo), sumHi);
    hi = mixHi(mixHi(hi, sumLo), sumHi);
    this.hashes.push({ lo, hi });
    // The state sums each thread's latest event, tagged with the thread.
    if (prev >= 0) {
      const old = this.hashes[prev];
      this.sumLo = (this.sumLo - mixLo(old.lo, tid)) >>> 0;
      this.sumHi = (this.sumHi - mixHi(old.hi, tid)) >>> 0;
    }
    this.sumLo = (this.sumLo + mixLo(lo, tid)) >>> 0;
    this.sumHi = (this.sumHi + mixHi(hi, tid)) >>> 0;
  }

  /**
   * The threads that could start `v`: the steps after `i` that do not happen after it, then `j`.
   * A thread is an initial when its first step in v has no step of v before it in happens-before.
   */
  initials(i: number, j: number): number[] {
    const v: number[] = [];
    for (let k = i + 1; k < j; k++) if (!this.before(i, k)) v.push(k);
    v.push(j);
    const out: number[] = [];
    const seen = new Set<number>();
    for (let a = 0; a < v.length; a++) {
      const tid = this.events[v[a]].tid;
      if (seen.has(tid)) continue;
      seen.add(tid);
      let first = true;
      for (let b = 0; b < a && first; b++) if (this.before(v[b], v[a])) first = false;
      if (first) out.push(tid);
    }
    return out;
  }
}
