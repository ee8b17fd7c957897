/**
 * DPOR over worker threads (src/node/explore/pardpor.ts): the search split at its first choice
 * points, subtrees handed to whichever worker is free. Its result is defined by the subtree order
 * alone: it must be what searchSubtrees() reports for the same prefixes in one thread, for any
 * number of workers, with or without a budget, and its verdict that of the one-thread search.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explore, loadTargetSync, replay } from '../../../src/node/explore/index.ts';
import { parallelDpor } from '../../../src/node/explore/pardpor.ts';
import { Coverage } from '../../../src/sched/explore/coverage.ts';
import { resolveOptions } from '../../../src/sched/explore/options.ts';
import { DPOR_SPLIT_PREFIXES } from '../../../src/sched/explore/parallel.ts';
import { encodeToken } from '../../../src/sched/explore/replay.ts';
import { overridesOf } from '../../../src/sched/explore/run.ts';
import { enumeratePrefixes, searchSubtrees } from '../../../src/sched/explore/shard.ts';
import type { ExploreOptions, ExploreResult, TargetDescriptor } from '../../../src/sched/explore/index.ts';
import { hetmem } from '../../cli/helpers.ts';

const fixtures = new URL('./fixtures.ts', import.meta.url).href;

function withoutTime(r: ExploreResult): Omit<ExploreResult, 'elapsedMs'> {
  const { elapsedMs: _elapsed, ...rest } = r;
  return rest;
}

const key = (m: ReadonlyMap<number, number>): string => JSON.stringify([...m].sort((a, b) => a[0] - b[0]));

/** The one-thread search of the same subtrees. */
function sequential(target: TargetDescriptor, opts: ExploreOptions, prefixes = DPOR_SPLIT_PREFIXES) {
  const local = loadTargetSync(target);
  const o = resolveOptions(opts);
  const coverage = new Coverage();
  const states = { hashed: 0, pruned: 0, unrecorded: 0 };
  const r = searchSubtrees(
    local,
    o,
    enumeratePrefixes(local, o, prefixes),
    { maxSteps: o.maxSteps, deadline: Infinity, coverage },
    states,
  );
  return { r, coverage: coverage.report(), states };
}

const cases: [string, TargetDescriptor, ExploreOptions][] = [
  [
    'the lost update',
    { module: fixtures, exportName: 'counterTarget', args: { noise: 3 } },
    { strategy: 'dfs', preemptionBound: Infinity },
  ],
  [
    'the mutex-protected counter (exhausts), bound 2',
    { module: fixtures, exportName: 'counterTarget', args: { noise: 4, mutex: true, threads: 3 } },
    { strategy: 'dfs' },
  ],
  [
    'the mutex-protected counter (exhausts), bound 4',
    { module: fixtures, exportName: 'counterTarget', args: { noise: 3, mutex: true, threads: 3 } },
    { strategy: 'dfs', preemptionBound: 4 },
  ],
  [
    'an order violation deep in the search',
    { module: fixtures, exportName: 'orderTarget', args: { threads: 4, noise: 3, forbidden: [2, 3, 1, 0] } },
    { strategy: 'dfs', preemptionBound: Infinity },
  ],
];

void describe('DPOR over workers', () => {
  for (const [name, target, opts] of cases) {
    void it(`${name}: 2 and 3 workers report the split search's result, the one-thread verdict`, () => {
      const two = withoutTime(explore(target, { ...opts, workers: 2 }));
      assert.deepEqual(withoutTime(explore(target, { ...opts, workers: 3 })), two);
      const s = sequential(target, opts);
      assert.equal(two.exhausted, s.r.exhausted);
      if (s.r.found === null) {
        assert.equal(two.violation, null);
        assert.equal(two.schedules, s.r.schedules);
      } else {
        assert.equal(two.violation?.oracle, s.r.found.outcome.violation?.oracle);
        assert.equal(two.schedules, s.r.found.index + 1);
      }
      assert.deepEqual(two.coverage, s.coverage);
      assert.deepEqual(two.states, s.states);
      const one = explore(target, { ...opts, workers: 1 });
      assert.equal(two.violation?.oracle ?? null, one.violation?.oracle ?? null);
      assert.equal(two.exhausted, one.exhausted);
      // The same fields as the one-thread search.
      assert.deepEqual(Object.keys(two).sort(), Object.keys(withoutTime(one)).sort());
    });
  }

  void it('without the state cache, the same fields as one thread (no states)', () => {
    const [, target, opts] = cases[1];
    const one = withoutTime(explore(target, { ...opts, stateCache: false, workers: 1 }));
    const two = withoutTime(explore(target, { ...opts, stateCache: false, workers: 2 }));
    assert.equal(two.states, undefined);
    assert.deepEqual(Object.keys(two).sort(), Object.keys(one).sort());
    assert.equal(two.exhausted, true);
  });

  void it('the violation found by a worker is the first in subtree order, and its token replays it', () => {
    const target = cases[3][1];
    const local = loadTargetSync(target);
    const o = resolveOptions({ strategy: 'dfs', preemptionBound: Infinity, workers: 2 });
    const p = parallelDpor(local, target, o, { deadline: Infinity });
    const s = sequential(target, { strategy: 'dfs', preemptionBound: Infinity });
    assert.ok(p.found !== null && s.r.found !== null);
    assert.equal(p.schedules, s.r.found.index + 1);
    assert.equal(key(p.found), key(overridesOf(s.r.found.outcome.decisions)));
    assert.ok(p.stats.subtrees >= DPOR_SPLIT_PREFIXES, JSON.stringify(p.stats));

    const r = explore(target, { strategy: 'dfs', preemptionBound: Infinity, workers: 2 });
    assert.ok(r.violation);
    assert.equal(r.violation.message, 'log is [2, 3, 1, 0]');
    assert.deepEqual(replay(local, r.replay).violation, r.violation);
  });

  void it('a budget that cuts the search gives the split search cut at the same place', () => {
    const target = cases[1][1];
    const total = sequential(target, { strategy: 'dfs' }).r.schedules;
    assert.ok(total > 40, `${total} schedules`);
    for (const schedules of [1, 7, 30, total - 1, total, total + 1]) {
      const opts: ExploreOptions = { strategy: 'dfs', budget: { schedules } };
      const s = sequential(target, opts);
      const r = explore(target, { ...opts, workers: schedules % 2 === 0 ? 2 : 3 });
      assert.equal(r.violation, null);
      assert.equal(r.schedules, Math.min(schedules, total), `budget ${schedules}`);
      assert.equal(r.schedules, s.r.schedules);
      assert.equal(r.exhausted, s.r.exhausted, `budget ${schedules}`);
      assert.equal(r.exhausted, schedules >= total);
      assert.deepEqual(r.coverage, s.coverage, `budget ${schedules}`);
      assert.deepEqual(r.states, s.states, `budget ${schedules}`);
      assert.equal(r.replay, encodeToken('dfs', 1, overridesOf(s.r.last!.decisions)), `budget ${schedules}`);
    }
  });

  void it('the result does not depend on the worker count or the timing, only on the prefixes', () => {
    const target = cases[2][1];
    const local = loadTargetSync(target);
    for (const prefixes of [1, 5, 40]) {
      const o = resolveOptions({ strategy: 'dfs', preemptionBound: 4, workers: 2 });
      const p = parallelDpor(local, target, o, { deadline: Infinity, prefixes });
      const s = sequential(target, { strategy: 'dfs', preemptionBound: 4 }, prefixes);
      assert.equal(p.found, null);
      assert.equal(p.exhausted, true);
      assert.equal(p.schedules, s.r.schedules, `${prefixes} prefixes`);
      assert.equal(key(p.lastOverrides), key(overridesOf(s.r.last!.decisions)));
    }
  });

  void it('hetmem explore --strategy dfs --workers 2: the one-thread verdict and --json fields', () => {
    const run = (workers: string): Record<string, unknown> => {
      const r = hetmem([
        'explore',
        'examples/races/interval-mirror.yaml',
        '--strategy',
        'dfs',
        '--workers',
        workers,
        '--json',
      ]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const one = run('1');
    const two = run('2');
    assert.deepEqual(Object.keys(two).sort(), Object.keys(one).sort());
    assert.equal(two.violation, null);
    assert.equal(two.exhausted, true);
    assert.equal(two.matched, true);
  });
});
