import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { explore, parseShard, type ExploreOptions } from '../../../src/sched/explore/index.ts';
import { programs, programTarget } from './programs.ts';
import { counterTarget } from './fixtures.ts';

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
