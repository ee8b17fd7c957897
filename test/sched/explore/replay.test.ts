import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeToken,
  encodeToken,
  explore,
  replay,
  ReplayTokenError,
} from '../../../src/sched/explore/index.ts';
import { abbaDeadlockTarget, counterTarget, livelockTarget } from './fixtures.ts';

void describe('replay tokens', () => {
  void it('round-trip any set of overrides', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('random' as const, 'pct' as const, 'dfs' as const),
        fc.integer({ min: -1e6, max: 1e9 }),
        fc.array(fc.tuple(fc.nat(100000), fc.nat(300)), { maxLength: 40 }),
        fc.option(fc.integer({ min: 1, max: 1e7 }), { nil: undefined }),
        (strategy, seed, pairs, maxSteps) => {
          const overrides = new Map(pairs);
          const token = encodeToken(strategy, seed, overrides, maxSteps);
          assert.match(token, /^[A-Za-z0-9._-]+$/);
          const d = decodeToken(token);
          assert.equal(d.strategy, strategy);
          assert.equal(d.seed, seed);
          assert.equal(d.maxSteps, maxSteps);
          assert.deepEqual(
            [...d.overrides].sort((a, b) => a[0] - b[0]),
            [...overrides].sort((a, b) => a[0] - b[0]),
          );
        },
      ),
    );
  });

  void it('rejects malformed tokens with a typed error', () => {
    for (const bad of [
      '',
      'v2.dfs.s1.AA',
      'v1.bfs.s1.AA',
      'v1.dfs.x1.AA',
      'v1.dfs.s1.A*',
      'v1.dfs.s1.AQ',
      'v1.dfs.s1.AAAA',
    ]) {
      assert.throws(() => decodeToken(bad), ReplayTokenError, bad);
    }
  });

  for (const [name, target, opts] of [
    ['a random race', counterTarget({ noise: 4 }), { strategy: 'random', seed: 9 }],
    ['a PCT race with three threads', counterTarget({ noise: 2, threads: 3 }), { strategy: 'pct', seed: 4 }],
    ['a DFS deadlock', abbaDeadlockTarget(), { strategy: 'dfs' }],
    ['a livelock', livelockTarget(), { strategy: 'random', maxStepsPerSchedule: 150 }],
  ] as const) {
    void it(`reproduces ${name}: same violation, trace and diagram`, () => {
      const found = explore(target, opts);
      assert.ok(found.violation);
      const again = replay(target, found.replay);
      assert.deepEqual(again.violation, found.violation);
      assert.equal(again.replay, found.replay);
      assert.equal(again.schedules, 1);
    });
  }

  void it('replays a passing schedule as passing', () => {
    const r = explore(counterTarget({ mutex: true }), { strategy: 'random', budget: { schedules: 5 } });
    assert.equal(r.violation, null);
    assert.equal(replay(counterTarget({ mutex: true }), r.replay).violation, null);
  });

  void it('says so when a token does not fit the target', () => {
    // Index 5 at the first choice point: only two threads exist.
    const token = encodeToken('dfs', 1, new Map([[0, 5]]));
    assert.throws(() => replay(counterTarget(), token), /replay diverged/);
  });
});
