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

export class Coverage {
  /** Unordered pair key -> which orders were seen (bit 1: a before b, bit 2: b before a). */
  private readonly seen = new Map<string, number>();
  /**
   * The steps of the schedule being run, and those of the previous one of its search after the
   * replayed ones; one per search a strategy interleaves (run.ts RunMemo.lane).
   */
  private readonly lanes: { hb: HappensBefore; names: string[] }[] = [];
  private hb = new HappensBefore();
  private names: string[] = [];
  /** Steps of the current schedule so far. */
  private cursor = 0;

  begin(lane = 0): void {
    const l = (this.lanes[lane] ??= { hb: new HappensBefore(), names: [] });
    this.hb = l.hb;
    this.names = l.names;
    this.cursor = 0;
  }

  /**
   * The next step of the schedule is the previous schedule's step at the same place (a replayed
   * prefix: run.ts), whose races were recorded then.
   */
  replayed(tid: number, p: SchedPoint): void {
    if (!this.hb.replayed(this.cursor, tid, p))
      throw new Error(`target is not deterministic: step ${this.cursor} differs`);
    this.cursor++;
  }

  step(tid: number, thread: string, p: SchedPoint): void {
    if (this.names.length > this.cursor) {
      this.hb.truncate(this.cursor);
      this.names.length = this.cursor;
    }
    this.cursor++;
    const name = `${thread}: ${p.label}`;
    for (const i of this.hb.add(eventOf(tid, p, -1, this.hb.stepsOf(tid) + 1)))
      this.record(this.names[i], name);
    this.names.push(name);
  }

  /** Adds the orders of a report (from another shard). */
  addReport(r: Pick<CoverageReport, 'oneOrder' | 'both'>): void {
    for (const [a, b] of r.oneOrder) this.record(a, b);
    for (const [a, b] of r.both) {
      this.record(a, b);
      this.record(b, a);
    }
  }

  private record(first: string, second: string): void {
    if (first === second) return;
    const [a, b, bit] = first < second ? [first, second, 1] : [second, first, 2];
    const key = `${a}\u0000${b}`;
    this.seen.set(key, (this.seen.get(key) ?? 0) | bit);
  }

  report(): CoverageReport {
    const oneOrder: [string, string][] = [];
    const both: [string, string][] = [];
    for (const [k, v] of this.seen) {
      const [a, b] = k.split('\u0000') as [string, string];
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
