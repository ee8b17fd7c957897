import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { point, Scheduler, type KGen } from '../../../src/sched/index.ts';
import {
  explore,
  parseShard,
  type ExploreOptions,
  type ExploreTarget,
} from '../../../src/sched/explore/index.ts';
import { counterTarget } from './fixtures.ts';

interface Op {
  obj: number;
  write: boolean;
}

function programTarget(threads: Op[][], seen: Set<string>): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      const objs = [{ v: 0 }, { v: 0 }, { v: 0 }];
      const logs: number[][] = threads.map(() => []);
      threads.forEach((ops, ti) => {
        sched.spawn(
          `t${ti}`,
          (function* (): KGen {
            for (const [k, o] of ops.entries()) {
              yield point(`${o.write ? 'w' : 'r'}${o.obj}`, objs[o.obj], o.write);
              if (o.write) objs[o.obj].v = objs[o.obj].v * 7 + ti * 3 + k + 1;
              else logs[ti].push(objs[o.obj].v);
            }
          })(),
        );
      });
      for (const t of [...sched.threads]) sched.step(t);
      return {
        sched,
        checkFinal: () => {
          seen.add(JSON.stringify([objs, logs]));
          return null;
        },
      };
    },
  };
}

const programs = fc.array(
  fc.array(fc.record({ obj: fc.nat(2), write: fc.boolean() }), { minLength: 1, maxLength: 3 }),
  { minLength: 2, maxLength: 3 },
);

describe('shards', () => {
  it('parses I/N and rejects the rest', () => {
    assert.deepEqual(parseShard('2/8'), { index: 1, count: 8 });
    for (const bad of ['0/3', '4/3', '1/0', 'x', '1/2/3', '-1/2', ''])
      assert.throws(() => parseShard(bad), /a shard is I\/N/);
  });

  it('dfs: the shards together reach every final state the whole search reaches', () => {
    fc.assert(
      fc.property(
        programs,
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom<Partial<ExploreOptions>>(
          { preemptionBound: Infinity },
          { preemptionBound: 1 },
          { preemptionBound: Infinity, reduction: 'sleep' },
          { preemptionBound: 2, por: false },
        ),
        (threads, count, o) => {
          const whole = new Set<string>();
          const r = explore(programTarget(threads, whole), { strategy: 'dfs', ...o });
          assert.equal(r.exhausted, true);
          const parts = new Set<string>();
          for (let index = 0; index < count; index++) {
            const s = explore(programTarget(threads, parts), {
              strategy: 'dfs',
              ...o,
              shard: { index, count },
            });
            assert.equal(s.exhausted, true);
          }
          assert.deepEqual([...parts].sort(), [...whole].sort());
        },
      ),
      { numRuns: 40 },
    );
  });

  it('dfs: some shard finds the lost update, and its token replays it', () => {
    const found = [0, 1, 2, 3].map((index) =>
      explore(counterTarget({ noise: 2 }), { strategy: 'dfs', shard: { index, count: 4 } }),
    );
    assert.ok(found.some((r) => r.violation?.oracle === 'race'));
  });

  it('pct: shard i runs its range of the schedule numbers, so the shards add up to the budget', () => {
    const counts = [0, 1, 2].map(
      (index) =>
        explore(counterTarget({ noise: 2, mutex: true }), {
          strategy: 'pct',
          budget: { schedules: 100 },
          shard: { index, count: 3 },
        }).schedules,
    );
    assert.deepEqual(counts, [33, 33, 34]);
    assert.throws(
      () =>
        explore(counterTarget({}), {
          strategy: 'random',
          budget: { ms: 100 },
          shard: { index: 0, count: 2 },
        }),
      /schedule budget/,
    );
  });
});
