import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explore } from '../../../src/node/explore/index.ts';
import type { ExploreOptions, ExploreResult } from '../../../src/sched/explore/index.ts';

const fixtures = new URL('./fixtures.ts', import.meta.url).href;

/** What must not depend on the worker count (workers report no coverage). */
function withoutTime(r: ExploreResult): Omit<ExploreResult, 'elapsedMs' | 'coverage'> {
  const { elapsedMs: _elapsed, coverage: _coverage, ...rest } = r;
  return rest;
}

void describe('parallel search', () => {
  for (const strategy of ['random', 'pct'] as const) {
    void it(`${strategy}: two workers report what one reports`, () => {
      const racy = { module: fixtures, exportName: 'counterTarget', args: { noise: 5, threads: 3 } };
      const opts: ExploreOptions = { strategy, seed: 11, budget: { schedules: 300 } };
      const one = explore(racy, { ...opts, workers: 1 });
      const two = explore(racy, { ...opts, workers: 2 });
      assert.ok(one.violation);
      assert.deepEqual(withoutTime(two), withoutTime(one));
    });
  }

  void it('random: a passing target runs the whole budget, same last token', () => {
    const safe = { module: fixtures, exportName: 'counterTarget', args: { noise: 2, mutex: true } };
    const opts: ExploreOptions = { strategy: 'random', seed: 5, budget: { schedules: 200 } };
    const one = explore(safe, { ...opts, workers: 1 });
    const two = explore(safe, { ...opts, workers: 2 });
    assert.equal(one.violation, null);
    assert.equal(one.schedules, 200);
    assert.deepEqual(withoutTime(two), withoutTime(one));
  });

  void it('rejects a descriptor whose export is missing', () => {
    const bad = { module: fixtures, exportName: 'noSuchExport', args: {} };
    assert.throws(() => explore(bad, { strategy: 'random', workers: 2 }), /noSuchExport/);
  });

  void it('surfaces a worker that fails to build the target instead of waiting for it', () => {
    const hostile = { module: fixtures, exportName: 'mainThreadOnlyTarget', args: {} };
    assert.throws(
      () => explore(hostile, { strategy: 'random', workers: 2, budget: { schedules: 50 } }),
      /explore worker failed: [^]*cannot build this target in a worker/,
    );
  });
});
