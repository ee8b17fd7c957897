/**
 * Coverage of a search: the pairs of conflicting steps (a race in some schedule: dependent steps of
 * two threads that nothing else orders, see races.ts) and whether the search ran them in both
 * orders. A pair seen in one order only is what a bounded or budgeted search left out, or an order
 * the program never allows (a lock held across both, a wait for the other's step). Steps are named
 * `thread: label`, so a label a thread takes at several places counts once.
 */
import type { SchedPoint } from '../types.ts';
import { eventOf, HappensBefore } from './races.ts';

export interface CoverageReport {
  /** Conflicting pairs seen. */
  pairs: number;
  /** Of those, the pairs run in both orders. */
  bothOrders: number;
  /** The pairs run in one order only, as [first, second], sorted. */
  oneOrder: [string, string][];
  /** The pairs run in both orders, as [a, b] with a < b, sorted. */
  both: [string, string][];
}

/** Step names are numbered (Coverage.idOf); a pair's key is lo * PAIR_KEY + hi of its two ids. */
const PAIR_KEY = 2 ** 26;

export class Coverage {
  /**
   * Unordered pair of step ids (lo < hi) -> which orders were seen (bit 1: lo before hi, bit 2:
   * hi before lo). A step every search runs costs two map lookups, not a string built.
   */
  private readonly seen = new Map<number, number>();
  /** Step names by id, ids by name, and by thread name and label (what a step gives). */
  private readonly nameOf: string[] = [];
  private readonly ids = new Map<string, number>();
  private readonly byThread = new Map<string, Map<string, number>>();
  /**
   * The steps of the schedule being run (their ids), and those of the previous one of its search
   * after the replayed ones; one per search a strategy interleaves (run.ts RunMemo.lane).
   */
  private readonly lanes: { hb: HappensBefore; names: number[] }[] = [];
  private hb = new HappensBefore();
  private names: number[] = [];
  /** Steps of the current schedule so far. */
  private cursor = 0;
  /** The schedule's races come from its strategy (step()'s `races`), not from `hb`. */
  private given = false;

  /**
   * Starts a schedule of search `lane`. With `given`, the strategy works out the races of the
   * steps and step() gets them (the strategy checks that replayed steps are the same).
   */
  begin(lane = 0, given = false): void {
    const l = (this.lanes[lane] ??= { hb: new HappensBefore(), names: [] });
    this.hb = l.hb;
    this.names = l.names;
    this.cursor = 0;
    this.given = given;
  }

  /**
   * The next step of the schedule is the previous schedule's step at the same place (a replayed
   * prefix: run.ts), whose races were recorded then.
   */
  replayed(tid: number, p: SchedPoint): void {
    if (!this.given && !this.hb.replayed(this.cursor, tid, p))
      throw new Error(`target is not deterministic: step ${this.cursor} differs`);
    this.cursor++;
  }

  /**
   * The next step, not a replayed one: its conflicting pairs are recorded. `races` are the
   * earlier steps (by number) it races with, from the strategy (begin()'s `given`); null when the
   * strategy replayed the step, whose races were recorded in the schedule that first ran it.
   */
  step(tid: number, thread: string, p: SchedPoint, races?: readonly number[] | null): void {
    if (this.names.length > this.cursor) {
      if (!this.given) this.hb.truncate(this.cursor);
      this.names.length = this.cursor;
    }
    this.cursor++;
    let labels = this.byThread.get(thread);
    if (labels === undefined) this.byThread.set(thread, (labels = new Map<string, number>()));
    let id = labels.get(p.label);
    if (id === undefined) labels.set(p.label, (id = this.idOf(`${thread}: ${p.label}`)));
    const found = this.given ? races : this.hb.add(eventOf(tid, p, -1, this.hb.stepsOf(tid) + 1));
    if (found !== null && found !== undefined)
      for (let r = 0; r < found.length; r++) this.record(this.names[found[r]], id);
    this.names.push(id);
  }

  /** The id of step name `name` (`thread: label`). */
  private idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.nameOf.length;
      this.nameOf.push(name);
      this.ids.set(name, id);
    }
    return id;
  }

  /** Adds the orders of a report (from another shard). */
  addReport(r: Pick<CoverageReport, 'oneOrder' | 'both'>): void {
    for (const [a, b] of r.oneOrder) this.record(this.idOf(a), this.idOf(b));
    for (const [a, b] of r.both) {
      this.record(this.idOf(a), this.idOf(b));
      this.record(this.idOf(b), this.idOf(a));
    }
  }

  private record(first: number, second: number): void {
    if (first === second) return;
    const key = first < second ? first * PAIR_KEY + second : second * PAIR_KEY + first;
    this.seen.set(key, (this.seen.get(key) ?? 0) | (first < second ? 1 : 2));
  }

  report(): CoverageReport {
    const oneOrder: [string, string][] = [];
    const both: [string, string][] = [];
    for (const [k, bits] of this.seen) {
      const lo = this.nameOf[Math.floor(k / PAIR_KEY)];
      const hi = this.nameOf[k % PAIR_KEY];
      // As names: a < b, bit 1 for a before b.
      const [a, b] = lo < hi ? [lo, hi] : [hi, lo];
      const v = lo < hi || bits === 3 ? bits : 3 - bits;
      if (v === 3) both.push([a, b]);
      else oneOrder.push(v === 1 ? [a, b] : [b, a]);
    }
    const order = (x: [string, string], y: [string, string]): number =>
      x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
    oneOrder.sort(order);
    both.sort(order);
    return { pairs: this.seen.size, bothOrders: both.length, oneOrder, both };
  }
}
