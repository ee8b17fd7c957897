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

void describe('StateCache', () => {
  void it('unbounded: prunes a visit whose sleep set includes the first visit’s', () => {
    const c = new StateCache(false);
    assert.equal(c.seen(7, 0, -1, new Set([1])), false);
    assert.equal(c.seen(7, 0, -1, new Set()), false, 'fewer threads asleep: more to explore');
    assert.equal(c.seen(7, 5, 2, new Set([1, 2])), true);
    assert.equal(c.seen(8, 0, -1, new Set([1])), false, 'another state');
    assert.deepEqual(c.stats, { hashed: 4, pruned: 1 });
  });

  void it('bounded: prunes only a visit with no more budget left than the first', () => {
    const c = new StateCache(true);
    assert.equal(c.seen(7, 2, 0, new Set()), false);
    assert.equal(c.seen(7, 1, 0, new Set()), false, 'fewer preemptions: more schedules fit the bound');
    assert.equal(c.seen(7, 1, 0, new Set()), true);
    assert.equal(c.seen(7, 1, 1, new Set()), false, 'another thread ran last: its next step is free');
    assert.equal(c.seen(7, 2, 1, new Set()), true, 'one preemption more covers any thread that ran last');
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
