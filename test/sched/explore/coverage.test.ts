import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { point, Scheduler, type KGen } from '../../../src/sched/index.ts';
import { explore, type ExploreTarget } from '../../../src/sched/explore/index.ts';

/** Thread a writes x then y; thread b reads y then z: the only conflict is a's write of y with b's read of it. */
function twoThreads(): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      const [x, y, z] = [{}, {}, {}];
      sched.spawn(
        'a',
        (function* (): KGen {
          yield point('write x', x, true);
          yield point('write y', y, true);
        })(),
        point('a starts', x, true),
      );
      sched.spawn(
        'b',
        (function* (): KGen {
          yield point('read y', y, false);
          yield point('read z', z, false);
        })(),
        point('b starts', z, false),
      );
      return { sched, checkFinal: () => null };
    },
  };
}

describe('coverage of conflicting step pairs', () => {
  it('an exhausted search ran the conflicting pair in both orders', () => {
    const r = explore(twoThreads(), { strategy: 'dfs', preemptionBound: Infinity });
    assert.equal(r.exhausted, true);
    assert.deepEqual(r.coverage?.both, [['a: write y', 'b: read y']]);
    assert.deepEqual(r.coverage?.oneOrder, []);
    assert.equal(r.coverage?.pairs, 1);
  });

  it('one schedule leaves the other order out, and says which', () => {
    const r = explore(twoThreads(), { strategy: 'dfs', budget: { schedules: 1 } });
    assert.equal(r.coverage?.bothOrders, 0);
    assert.deepEqual(r.coverage?.oneOrder, [['a: write y', 'b: read y']]);
  });

  it('independent steps are no pair', () => {
    const r = explore(twoThreads(), { strategy: 'random', budget: { schedules: 20 } });
    const named = [...(r.coverage?.oneOrder ?? []), ...(r.coverage?.both ?? [])].flat();
    assert.ok(!named.some((n) => n.includes('x') || n.includes('z')), named.join(', '));
  });
});
