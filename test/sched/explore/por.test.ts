import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { point, Scheduler, type KGen } from '../../../src/sched/index.ts';
import { explore, type ExploreTarget } from '../../../src/sched/explore/index.ts';
import { counterTarget, independentTarget } from './fixtures.ts';

void describe('sleep-set partial-order reduction', () => {
  void it('explores strictly fewer schedules on independent threads and still exhausts', () => {
    const target = independentTarget({ steps: 4 });
    const plain = explore(target, { strategy: 'dfs', por: false, preemptionBound: Infinity });
    const reduced = explore(target, { strategy: 'dfs', por: true, preemptionBound: Infinity });
    assert.equal(plain.exhausted, true);
    assert.equal(reduced.exhausted, true);
    assert.equal(plain.violation, null);
    assert.equal(reduced.violation, null);
    // 8 steps, 4 each: C(8,4) interleavings without reduction.
    assert.equal(plain.schedules, 70);
    assert.ok(reduced.schedules < plain.schedules, `${reduced.schedules} vs ${plain.schedules}`);
  });

  void it('still finds the lost update', () => {
    const r = explore(counterTarget({ noise: 3 }), { strategy: 'dfs', por: true });
    assert.equal(r.violation?.oracle, 'race');
  });

  void it('reaches every final state plain DFS reaches (random small programs)', () => {
    const op = fc.record({ obj: fc.nat(2), write: fc.boolean() });
    const program = fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 });
    fc.assert(
      fc.property(program, (threads) => {
        const finals = (por: boolean): Set<string> => {
          const seen = new Set<string>();
          const target: ExploreTarget = {
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
          const r = explore(target, { strategy: 'dfs', por, preemptionBound: Infinity });
          assert.equal(r.exhausted, true);
          return seen;
        };
        assert.deepEqual(finals(true), finals(false));
      }),
      { numRuns: 40 },
    );
  });
});
