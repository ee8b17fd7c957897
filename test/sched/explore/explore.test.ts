import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explore } from '../../../src/node/explore/index.ts';
import { CALIBRATION_RUNS } from '../../../src/sched/explore/pct.ts';
import {
  abbaDeadlockTarget,
  abbaMutexTarget,
  counterTarget,
  livelockTarget,
  throwingTarget,
} from './fixtures.ts';

void describe('explore: lost update on an unprotected counter', () => {
  for (const strategy of ['random', 'pct', 'dfs'] as const) {
    void it(`is found by ${strategy}`, () => {
      const r = explore(counterTarget({ noise: 3 }), { strategy, seed: 1, budget: { schedules: 500 } });
      assert.ok(r.violation, 'expected a violation');
      assert.equal(r.violation.oracle, 'race');
      assert.match(r.violation.message, /counter is 1, expected 2/);
      assert.equal(r.exhausted, false);
      assert.ok(r.schedules >= 1 && r.schedules <= 500);
      assert.match(r.replay, new RegExp(`^v1\\.${strategy}\\.s1\\.`));
      // The race needs exactly one preemption: read, switch, the other thread's whole update.
      assert.equal(r.violation.preemptions, 1);
      // PCT's calibration runs have no change points and run threads one after the other; the
      // race can only come from a change point.
      if (strategy === 'pct') assert.ok(r.schedules > CALIBRATION_RUNS);
    });
  }

  void it('is out of reach of DFS with preemption bound 0, which exhausts its two schedules', () => {
    const r = explore(counterTarget({ noise: 3 }), { strategy: 'dfs', preemptionBound: 0 });
    assert.equal(r.violation, null);
    assert.equal(r.exhausted, true);
    assert.equal(r.schedules, 2);
  });
});

void describe('explore: the same counter under a mutex', () => {
  void it('DFS exhausts the bounded tree without a violation', () => {
    const r = explore(counterTarget({ noise: 2, mutex: true }), { strategy: 'dfs' });
    assert.equal(r.violation, null);
    assert.equal(r.exhausted, true);
    assert.ok(r.schedules > 2, `only ${r.schedules} schedules`);
  });

  void it('random honours the schedule budget and never claims exhaustion', () => {
    const progress: [number, number | undefined][] = [];
    const r = explore(counterTarget({ mutex: true }), {
      strategy: 'random',
      budget: { schedules: 40 },
      onProgress: (done, total) => progress.push([done, total]),
    });
    assert.equal(r.violation, null);
    assert.equal(progress.length, 40);
    assert.deepEqual(progress[39], [40, 40]);
    assert.equal(r.schedules, 40);
    assert.equal(r.exhausted, false);
  });

  void it('stops on the time budget', () => {
    const r = explore(counterTarget({ noise: 3, mutex: true, threads: 3 }), {
      strategy: 'random',
      budget: { ms: 30, schedules: 1e9 },
    });
    assert.equal(r.violation, null);
    assert.ok(r.schedules < 1e9);
    assert.ok(r.elapsedMs < 2000);
  });
});

void describe('explore: lock order', () => {
  void it('reports an ABBA order on mutexes as a lockdep cycle', () => {
    const r = explore(abbaMutexTarget(), { strategy: 'dfs' });
    assert.ok(r.violation);
    assert.equal(r.violation.oracle, 'locks');
    assert.match(r.violation.message, /lock order cycle: B -> A -> B/);
  });

  void it('finds a real ABBA deadlock that only some interleavings reach', () => {
    for (const strategy of ['dfs', 'random'] as const) {
      const r = explore(abbaDeadlockTarget(), { strategy, seed: 2 });
      assert.ok(r.violation, strategy);
      assert.equal(r.violation.oracle, 'deadlock');
      assert.match(r.violation.message, /ab waits on bitlock B/);
      assert.match(r.violation.message, /ba waits on bitlock A/);
      assert.equal(r.violation.preemptions, 1);
    }
    // The first, non-preemptive DFS schedule does not deadlock: the search had to look further.
    const first = explore(abbaDeadlockTarget(), { strategy: 'dfs', budget: { schedules: 1 } });
    assert.equal(first.violation, null);
  });
});

void describe('explore: livelock and exceptions', () => {
  void it('reports a thread spinning on a flag nobody sets', () => {
    const r = explore(livelockTarget(), { strategy: 'dfs', maxStepsPerSchedule: 200 });
    assert.ok(r.violation);
    assert.equal(r.violation.oracle, 'livelock');
    assert.match(r.violation.message, /200 steps/);
    assert.match(r.violation.message, /spinner at READ_ONCE\(flag\)/);
    assert.match(r.replay, /\.m200\./);
  });

  void it('reports a thread that threw a plain error as an exception', () => {
    const r = explore(throwingTarget({ errno: false }), { strategy: 'dfs' });
    assert.ok(r.violation);
    assert.equal(r.violation.oracle, 'exception');
    assert.equal(r.violation.message, 'thrower#0 threw: BUG: list corrupted');
  });

  void it('leaves an expected kernel error (errno) to the final checks', () => {
    const r = explore(throwingTarget({ errno: true }), { strategy: 'dfs' });
    assert.equal(r.violation, null);
    assert.equal(r.exhausted, true);
  });

  void it('rejects bad options', () => {
    assert.throws(() => explore(counterTarget(), { strategy: 'bfs' as 'dfs' }), TypeError);
    assert.throws(() => explore(counterTarget(), { strategy: 'dfs', seed: 1.5 }), TypeError);
    assert.throws(() => explore(counterTarget(), { strategy: 'random', workers: 2 }), /TargetDescriptor/);
  });
});
