/**
 * A schedule of a search replays the first steps of the previous one of its search (run.ts
 * RunMemo): their per-step checks, coverage and DPOR bookkeeping are not done again. The search
 * must not notice: the same schedules, the same violation, the same coverage as when every step
 * is checked afresh.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Mutex, point, Scheduler, type KGen } from '../../../src/sched/index.ts';
import { BoundedDporSearch } from '../../../src/sched/explore/bounded.ts';
import { Coverage } from '../../../src/sched/explore/coverage.ts';
import { DporStrategy } from '../../../src/sched/explore/dpor.ts';
import { runSchedule } from '../../../src/sched/explore/run.ts';
import { searchLoop } from '../../../src/sched/explore/search.ts';
import type { ExploreTarget, Strategy } from '../../../src/sched/explore/types.ts';
import { programs, type Op } from './programs.ts';

/**
 * The programs of programs.ts with a per-step check that fails when object 0 holds `bad`. With
 * `persist` the objects are reset in place for each schedule (as a restored snapshot keeps them);
 * without, every schedule gets new ones. `checks` counts the calls of the per-step check.
 */
function checkedTarget(threads: Op[][], bad: number, persist: boolean, checks: { n: number }): ExploreTarget {
  let kept: { v: number }[] | null = null;
  return {
    create() {
      const sched = new Scheduler();
      if (kept === null || !persist) kept = [{ v: 0 }, { v: 0 }, { v: 0 }];
      const objs = kept;
      for (const o of objs) o.v = 0;
      const locks = objs.map((_, i) => new Mutex(sched, `m${i}`));
      threads.forEach((ops, ti) => {
        sched.spawn(
          `t${ti}`,
          (function* (): KGen {
            for (const [k, o] of ops.entries()) {
              if (o.locked === true) yield* locks[o.obj].lock();
              yield point(`${o.write ? 'w' : 'r'}${o.obj}`, objs[o.obj], o.write);
              if (o.write) objs[o.obj].v = (objs[o.obj].v * 7 + ti * 3 + k + 1) % 11;
              if (o.locked === true) yield* locks[o.obj].unlock();
            }
          })(),
        );
      });
      return {
        sched,
        checkStep: () => {
          checks.n++;
          return objs[0].v === bad ? { oracle: 'bad', message: `object 0 is ${bad}` } : null;
        },
        checkFinal: () => null,
      };
    },
  };
}

/** The search with every step checked afresh: no memo, so nothing is replayed. */
function reference(target: ExploreTarget, strategy: Strategy, coverage: Coverage) {
  const outcomes: string[] = [];
  for (let i = 0; strategy.begin(i); i++) {
    const o = runSchedule(target, strategy, { maxSteps: 1000, recordTrace: false, coverage });
    strategy.end?.(o);
    outcomes.push(JSON.stringify([o.decisions, o.steps, o.violation]));
    if (o.violation !== null && (strategy.accepts?.(o) ?? true)) break;
  }
  return outcomes;
}

function memoized(target: ExploreTarget, strategy: Strategy, coverage: Coverage) {
  const outcomes: string[] = [];
  searchLoop(target, strategy, {
    maxSteps: 1000,
    startIndex: 0,
    endIndex: Infinity,
    deadline: Infinity,
    coverage,
    onSchedule: (_i, o) => outcomes.push(JSON.stringify([o.decisions, o.steps, o.violation])),
  });
  return outcomes;
}

void describe('replayed prefixes', () => {
  void it('leave the schedules, the violation and the coverage of a search as they were', () => {
    fc.assert(
      fc.property(
        programs,
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.constantFrom(Infinity, 1, 2, 4),
        (threads, bad, persist, bound) => {
          const make = (): Strategy =>
            bound >= 3 && Number.isFinite(bound)
              ? new BoundedDporSearch(bound, true)
              : new DporStrategy(bound, [], true);
          const fresh = { n: 0 };
          const c1 = new Coverage();
          const want = reference(checkedTarget(threads, bad, persist, fresh), make(), c1);
          const memo = { n: 0 };
          const c2 = new Coverage();
          const got = memoized(checkedTarget(threads, bad, persist, memo), make(), c2);
          assert.deepEqual(got, want);
          assert.deepEqual(c2.report(), c1.report());
          assert.ok(memo.n <= fresh.n);
        },
      ),
      { numRuns: 300 },
    );
  });

  void it('skip the checks of the steps the previous schedule checked', () => {
    const threads: Op[][] = [
      [
        { obj: 0, write: true },
        { obj: 1, write: true },
        { obj: 2, write: true },
      ],
      [
        { obj: 0, write: true },
        { obj: 1, write: false },
        { obj: 2, write: true },
      ],
    ];
    const fresh = { n: 0 };
    const want = reference(
      checkedTarget(threads, -1, true, fresh),
      new DporStrategy(Infinity),
      new Coverage(),
    );
    const memo = { n: 0 };
    const got = memoized(checkedTarget(threads, -1, true, memo), new DporStrategy(Infinity), new Coverage());
    assert.deepEqual(got, want);
    assert.ok(want.length > 1);
    assert.ok(memo.n < fresh.n, `${memo.n} checks, ${fresh.n} without replay`);
  });
});
