import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { explore, type ExploreOptions } from '../../../src/sched/explore/index.ts';
import { eventOf, HappensBefore } from '../../../src/sched/explore/races.ts';
import { keyOf, StateCache } from '../../../src/sched/explore/state_cache.ts';
import type { SchedPoint } from '../../../src/sched/types.ts';
import { programs, programTarget, type Op } from './programs.ts';
import { counterTarget, orderTarget } from './fixtures.ts';

const X = { name: 'x' };
const Y = { name: 'y' };
const step = (label: string, obj: object | undefined, write = true): SchedPoint => ({
  kind: 'step',
  label,
  access: obj === undefined ? undefined : { obj, write },
});

/** The state key after running `steps` (thread id and point) in order. */
function keyAfter(steps: [number, SchedPoint][]): number {
  const hb = new HappensBefore(true);
  const seq = new Map<number, number>();
  for (const [tid, p] of steps) {
    const n = (seq.get(tid) ?? 0) + 1;
    seq.set(tid, n);
    hb.add(eventOf(tid, p, -1, n));
  }
  return keyOf(hb.traceHash());
}

void describe('state hash', () => {
  void it('is the same for schedules that only reorder independent steps', () => {
    const a: [number, SchedPoint] = [0, step('write x', X)];
    const b: [number, SchedPoint] = [1, step('write y', Y)];
    const c: [number, SchedPoint] = [0, step('read y', Y, false)];
    const d: [number, SchedPoint] = [2, step('read y', Y, false)];
    assert.equal(keyAfter([a, b]), keyAfter([b, a]));
    // Two reads of y commute; both come after the write they depend on.
    assert.equal(keyAfter([a, b, c, d]), keyAfter([b, d, a, c]));
  });

  void it('tells apart states that differ (what the hash must include)', () => {
    const w0: [number, SchedPoint] = [0, step('write x', X)];
    const w1: [number, SchedPoint] = [1, step('write x', X)];
    const r1: [number, SchedPoint] = [1, step('read x', X, false)];
    // The order of two dependent steps: x ends with the value of the thread that wrote last.
    assert.notEqual(keyAfter([w0, w1]), keyAfter([w1, w0]));
    // A read before or after a write sees different values (the thread's locals differ).
    assert.notEqual(keyAfter([w0, r1]), keyAfter([r1, w0]));
    // Which thread took a step, and what it was.
    assert.notEqual(keyAfter([w0]), keyAfter([[1, step('write x', X)]]));
    assert.notEqual(keyAfter([w0]), keyAfter([[0, step('write y', Y)]]));
    // How far each thread went.
    assert.notEqual(keyAfter([w0]), keyAfter([w0, [0, step('write y', Y)]]));
    // A step that declares nothing is ordered with every other.
    const any1: [number, SchedPoint] = [1, step('anything', undefined)];
    assert.notEqual(keyAfter([w0, any1]), keyAfter([any1, w0]));
  });
});

/** The cache's rules written plainly over a Map (what StateCache packs into typed arrays). */
class ReferenceCache {
  private readonly visits = new Map<number, { p: number; last: number; sleep: number[] }[]>();
  constructor(private readonly bounded: boolean) {}
  seen(key: number, p: number, last: number, sleep: ReadonlySet<number>): boolean {
    if (!this.bounded) [p, last] = [0, -1];
    const list = this.visits.get(key) ?? [];
    for (const v of list) {
      if (!v.sleep.every((t) => sleep.has(t))) continue;
      if (!this.bounded || (v.last === last && v.p <= p) || v.p + 1 <= p) return true;
    }
    if (list.length < 8) list.push({ p, last, sleep: [...sleep] });
    this.visits.set(key, list);
    return false;
  }
}

void describe('StateCache', () => {
  void it('unbounded: prunes a visit whose sleep set includes the first visit’s', () => {
    const c = new StateCache(false);
    assert.equal(c.seen(7, 0, -1, new Set([1])), false);
    assert.equal(c.seen(7, 0, -1, new Set()), false, 'fewer threads asleep: more to explore');
    assert.equal(c.seen(7, 5, 2, new Set([1, 2])), true);
    assert.equal(c.seen(8, 0, -1, new Set([1])), false, 'another state');
    assert.deepEqual(c.stats, { hashed: 4, pruned: 1, unrecorded: 0 });
  });

  void it('bounded: prunes only a visit with no more budget left than the first', () => {
    const c = new StateCache(true);
    assert.equal(c.seen(7, 2, 0, new Set()), false);
    assert.equal(c.seen(7, 1, 0, new Set()), false, 'fewer preemptions: more schedules fit the bound');
    assert.equal(c.seen(7, 1, 0, new Set()), true);
    assert.equal(c.seen(7, 1, 1, new Set()), false, 'another thread ran last: its next step is free');
    assert.equal(c.seen(7, 2, 1, new Set()), true, 'one preemption more covers any thread that ran last');
  });
  const visit = fc.record({
    key: fc.oneof(
      fc.integer({ min: 0, max: 40 }),
      fc.constantFrom(2 ** 53 - 1, 2 ** 32, 2 ** 32 - 1, 2 ** 52 + 7),
    ),
    preemptions: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom(65535, 65536, 1e6)),
    last: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.constantFrom(32766, 32767, 100000)),
    sleep: fc.uniqueArray(fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom(30, 31, 40)), {
      maxLength: 3,
    }),
  });

  void it('answers as the plain rules do, packed or listed, bounded or not (random visits)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(visit, { maxLength: 200 }), (bounded, visits) => {
        const c = new StateCache(bounded);
        const ref = new ReferenceCache(bounded);
        let pruned = 0;
        for (const [i, v] of visits.entries()) {
          const sleep = new Set(v.sleep);
          const want = ref.seen(v.key, v.preemptions, v.last, sleep);
          assert.equal(c.seen(v.key, v.preemptions, v.last, sleep), want, `visit ${i}: ${JSON.stringify(v)}`);
          if (want) pruned++;
        }
        assert.deepEqual(c.stats, { hashed: visits.length, pruned, unrecorded: 0 });
      }),
      { numRuns: 300 },
    );
  });

  void it('keeps every state across its table growing (200,000 keys of 53 bits)', () => {
    const c = new StateCache(false);
    const keys: number[] = [];
    let x = 0x12345678;
    for (let i = 0; i < 200_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      keys.push(((x ^ (i << 7)) & 0x1fffff) * 0x100000000 + (Math.imul(i, 0x9e3779b1) >>> 0));
    }
    const distinct = new Set(keys).size;
    for (const k of keys) c.seen(k, 0, -1, new Set());
    assert.equal(c.size, distinct);
    for (const k of keys) assert.equal(c.seen(k, 0, -1, new Set()), true, `key ${k} lost`);
    assert.equal(c.seen(2 ** 53 - 1, 0, -1, new Set()), keys.includes(2 ** 53 - 1));
  });

  void it('stops recording when full: new states are explored again, known ones still pruned', () => {
    const c = new StateCache(false, undefined, 3);
    for (const k of [10, 11, 12]) assert.equal(c.seen(k, 0, -1, new Set()), false);
    assert.equal(c.seen(13, 0, -1, new Set()), false);
    assert.equal(c.seen(13, 0, -1, new Set()), false, 'a fourth state is not recorded');
    assert.equal(c.seen(11, 0, -1, new Set()), true);
    assert.equal(c.size, 3);
    assert.deepEqual(c.stats, { hashed: 6, pruned: 1, unrecorded: 2 });
  });

  void it('keeps at most maxListed visits in lists; what does not fit is not recorded', () => {
    const c = new StateCache(true, undefined, 100, 3);
    for (let t = 0; t < 3; t++) assert.equal(c.seen(5, 0, t, new Set()), false);
    assert.equal(c.stats.unrecorded, 0, 'the first packed, the next two in a list of three');
    assert.equal(c.seen(5, 0, 3, new Set()), false);
    assert.equal(c.stats.unrecorded, 1);
    assert.equal(c.seen(5, 0, 2, new Set()), true, 'a listed visit still covers');
    assert.equal(c.seen(5, 0, 3, new Set()), false, 'the unrecorded one does not');
    // A new state whose first visit packs is still recorded; one that needs a list is not.
    assert.equal(c.seen(6, 1, 0, new Set()), false);
    assert.equal(c.seen(6, 1, 0, new Set()), true);
    const u = new StateCache(false, undefined, 100, 0);
    assert.equal(u.seen(7, 0, -1, new Set([40])), false);
    assert.equal(u.seen(7, 0, -1, new Set([40])), false, 'sleeping thread 40 does not pack');
    assert.equal(u.size, 0);
    assert.equal(u.seen(8, 0, -1, new Set([3])), false);
    assert.equal(u.seen(8, 0, -1, new Set([3, 4])), true, 'thread 3 asleep packs as a mask');
    assert.deepEqual(u.stats, { hashed: 4, pruned: 1, unrecorded: 2 });
  });

  void it('records at most eight visits of one state', () => {
    const c = new StateCache(true);
    // No visit covers another: each has another thread last and no fewer preemptions.
    for (let t = 0; t < 10; t++) assert.equal(c.seen(5, 0, t, new Set()), false);
    assert.equal(c.stats.unrecorded, 2);
    assert.equal(c.seen(5, 0, 7, new Set()), true, 'the eighth visit is kept');
    assert.equal(c.seen(5, 0, 9, new Set()), false, 'the tenth was not');
  });
});

void describe('stateful search', () => {
  const finals = (threads: Op[][], o: Partial<ExploreOptions>): Set<string> => {
    const seen = new Set<string>();
    const r = explore(programTarget(threads, seen), { strategy: 'dfs', preemptionBound: Infinity, ...o });
    assert.equal(r.exhausted, true);
    return seen;
  };

  void it('reaches every final state the search without it reaches (random programs)', () => {
    fc.assert(
      fc.property(programs, fc.constantFrom(0, 1, 2, Infinity), (threads, bound) => {
        for (const reduction of ['dpor', 'sleep'] as const) {
          const o = { reduction, preemptionBound: bound };
          const without = finals(threads, { ...o, stateCache: false });
          const withCache = finals(threads, { ...o, stateCache: true });
          for (const f of without) assert.ok(withCache.has(f), `${reduction}, bound ${bound}: misses ${f}`);
        }
      }),
      { numRuns: 150 },
    );
  });

  void it('finds the same violations and runs fewer schedules with sleep sets', () => {
    const opts: ExploreOptions = { strategy: 'dfs', reduction: 'sleep', preemptionBound: 2 };
    for (const target of [counterTarget({ noise: 3 }), orderTarget({ threads: 4, noise: 2 })]) {
      const a = explore(target, { ...opts, stateCache: false });
      const b = explore(target, { ...opts, stateCache: true });
      assert.equal(b.violation?.message, a.violation?.message);
    }
    const safe = counterTarget({ noise: 3, mutex: true, threads: 3 });
    const a = explore(safe, { ...opts, stateCache: false });
    const b = explore(safe, { ...opts, stateCache: true });
    assert.equal(a.exhausted && b.exhausted, true);
    assert.ok(b.states !== undefined && b.states.pruned > 0);
    assert.ok(b.schedules < a.schedules, `${b.schedules} vs ${a.schedules}`);
    assert.equal(a.states, undefined);
  });
});
