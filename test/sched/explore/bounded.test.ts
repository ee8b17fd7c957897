import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { point, Scheduler, type KGen } from '../../../src/sched/index.ts';
import { explore, type ExploreOptions, type ExploreTarget } from '../../../src/sched/explore/index.ts';
import { programs, programTarget, type Op } from './programs.ts';
import { counterTarget, independentTarget } from './fixtures.ts';
import {
  BoundedDporSearch,
  UNBOUNDED_HEAD_START,
  UNBOUNDED_SHARE,
} from '../../../src/sched/explore/bounded.ts';
import { searchLoop } from '../../../src/sched/explore/search.ts';

/**
 * Two threads append to a shared log, `rounds` times each; the log alternating a, b, a, b, ...
 * is the violation, which takes a preemption at almost every append.
 */
function alternatingTarget(rounds: number): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      const log: string[] = [];
      for (const who of ['a', 'b']) {
        sched.spawn(
          who,
          (function* (): KGen {
            for (let i = 0; i < rounds; i++) {
              yield point(`append ${who}`, log, true);
              log.push(who);
            }
          })(),
        );
      }
      return {
        sched,
        checkFinal: () =>
          log.every((w, i) => w === (i % 2 === 0 ? 'a' : 'b'))
            ? { oracle: 'order', message: `log is ${log.join('')}` }
            : null,
      };
    },
  };
}

void describe('bounded DPOR racing the unbounded search', () => {
  const finals = (threads: Op[][], o: Partial<ExploreOptions>): Set<string> => {
    const seen = new Set<string>();
    const r = explore(programTarget(threads, seen), { strategy: 'dfs', ...o });
    assert.equal(r.exhausted, true);
    return seen;
  };

  void it('reaches every final state plain DFS reaches within bounds 3 and 4', () => {
    fc.assert(
      fc.property(programs, fc.constantFrom(3, 4), (threads, bound) => {
        const plain = finals(threads, { por: false, preemptionBound: bound });
        const raced = finals(threads, { preemptionBound: bound });
        for (const f of plain) assert.ok(raced.has(f), `bound ${bound}: misses ${f}`);
      }),
      { numRuns: 150 },
    );
  });

  void it('does not report a violation that needs more preemptions than the bound', () => {
    const target = alternatingTarget(4);
    const within = explore(target, { strategy: 'dfs', preemptionBound: 3 });
    assert.equal(within.violation, null, within.violation?.message);
    assert.equal(within.exhausted, true);
    const wider = explore(target, { strategy: 'dfs', preemptionBound: 8 });
    assert.equal(wider.violation?.message, 'log is abababab');
    assert.ok(wider.violation.preemptions > 3, `${wider.violation.preemptions}`);
  });

  void it('ends with the unbounded search when it is the smaller one', () => {
    // Independent threads: sleep sets leave one schedule unbounded; bounded, every interleaving
    // within the bound is one.
    const target = independentTarget({ steps: 4, threads: 3 });
    const unbounded = explore(target, { strategy: 'dfs', preemptionBound: Infinity });
    const raced = explore(target, { strategy: 'dfs', preemptionBound: 4 });
    const alone = explore(target, {
      strategy: 'dfs',
      preemptionBound: 4,
      reduction: 'sleep',
      stateCache: false,
    });
    assert.equal(raced.exhausted, true);
    // Within the head start: the bounded search never got a turn.
    assert.equal(raced.schedules, unbounded.schedules);
    assert.ok(raced.schedules < alone.schedules, `${raced.schedules} vs ${alone.schedules}`);
  });

  void it('gives the bounded search its share once the unbounded one used its head start', () => {
    // Three threads under a mutex: the unbounded search needs more than 3 preemptions in some
    // schedules, so the bounded search starts beside it.
    const target = counterTarget({ threads: 3, noise: 2, mutex: true });
    const run = (headStart: number) =>
      searchLoop(
        target,
        new BoundedDporSearch(3, true, { hashed: 0, pruned: 0, unrecorded: 0 }, UNBOUNDED_SHARE, headStart),
        {
          maxSteps: 1000,
          startIndex: 0,
          endIndex: Infinity,
          deadline: Infinity,
        },
      );
    const unbounded = explore(target, { strategy: 'dfs', preemptionBound: Infinity });
    const headed = run(UNBOUNDED_HEAD_START);
    const shared = run(0);
    assert.equal(headed.exhausted, true);
    assert.equal(shared.exhausted, true);
    // Within the head start the unbounded search ran alone; without one the bounded search had
    // its share of the turns until the unbounded one ended.
    assert.equal(headed.schedules, unbounded.schedules);
    assert.ok(shared.schedules > headed.schedules, `${shared.schedules} vs ${headed.schedules}`);
    assert.ok(shared.schedules <= 2 * headed.schedules + 1, `${shared.schedules} vs ${headed.schedules}`);
  });
});
