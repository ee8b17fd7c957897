import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { explore, type ExploreOptions } from '../../../src/sched/explore/index.ts';
import { programs, programTarget, type Op } from './programs.ts';
import { counterTarget, independentTarget, orderTarget } from './fixtures.ts';

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

  void it('a bounded search finds an order that needs no preemption (sleep sets used to hide it)', () => {
    // Four threads append to a log; [3, 2, 1, 0] runs them one after the other, last first.
    for (const o of [{}, { reduction: 'sleep' as const }, { por: false }]) {
      const r = explore(orderTarget({ threads: 4, noise: 2 }), { strategy: 'dfs', preemptionBound: 2, ...o });
      assert.equal(r.violation?.message, 'log is [3, 2, 1, 0]', JSON.stringify(o));
      assert.equal(r.violation.preemptions, 0);
    }
  });

  void it('still finds the lost update', () => {
    const r = explore(counterTarget({ noise: 3 }), { strategy: 'dfs', por: true });
    assert.equal(r.violation?.oracle, 'race');
  });

  void it('reaches every final state plain DFS reaches (random small programs)', () => {
    fc.assert(
      fc.property(programs, (threads) => {
        assert.deepEqual(finals(threads, { por: true }), finals(threads, { por: false }));
      }),
      { numRuns: 40 },
    );
  });

  void it('sleep sets alone reach them too', () => {
    fc.assert(
      fc.property(programs, (threads) => {
        assert.deepEqual(finals(threads, { reduction: 'sleep' }), finals(threads, { por: false }));
      }),
      { numRuns: 40 },
    );
  });

  void it('dpor under a preemption bound reaches every final state plain DFS reaches under it', () => {
    fc.assert(
      fc.property(programs, fc.integer({ min: 0, max: 2 }), (threads, bound) => {
        const plain = finals(threads, { por: false, preemptionBound: bound });
        const dpor = finals(threads, { reduction: 'dpor', preemptionBound: bound });
        for (const f of plain) assert.ok(dpor.has(f), `bound ${bound}: dpor misses ${f}`);
      }),
      { numRuns: 300 },
    );
  });

  void it('sleep sets under a preemption bound reach every final state plain DFS reaches under it', () => {
    fc.assert(
      fc.property(programs, fc.integer({ min: 0, max: 2 }), (threads, bound) => {
        const plain = finals(threads, { por: false, preemptionBound: bound });
        const sleep = finals(threads, { reduction: 'sleep', preemptionBound: bound });
        for (const f of plain) assert.ok(sleep.has(f), `bound ${bound}: sleep sets miss ${f}`);
      }),
      { numRuns: 300 },
    );
  });

  void it('dpor runs no more schedules than sleep sets on these programs, and far fewer than plain DFS', () => {
    const threads: Op[][] = [
      [
        { obj: 0, write: true },
        { obj: 1, write: false },
        { obj: 2, write: true },
      ],
      [
        { obj: 1, write: true },
        { obj: 2, write: false },
        { obj: 0, write: false },
      ],
      [
        { obj: 2, write: true },
        { obj: 0, write: true },
      ],
    ];
    const count = (o: Partial<ExploreOptions>): number =>
      explore(programTarget(threads, new Set()), { strategy: 'dfs', preemptionBound: Infinity, ...o })
        .schedules;
    const plain = count({ por: false });
    const sleep = count({ reduction: 'sleep' });
    const dpor = count({ reduction: 'dpor' });
    assert.ok(dpor <= sleep, `dpor ${dpor}, sleep sets ${sleep}`);
    assert.ok(dpor * 4 < plain, `dpor ${dpor}, plain ${plain}`);
  });
});

function finals(threads: Op[][], o: Partial<ExploreOptions>): Set<string> {
  const seen = new Set<string>();
  const r = explore(programTarget(threads, seen), { strategy: 'dfs', preemptionBound: Infinity, ...o });
  assert.equal(r.exhausted, true);
  return seen;
}
