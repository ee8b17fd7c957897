import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { point, Scheduler, type KGen } from '../../../src/sched/index.ts';
import {
  DfsStrategy,
  type ExploreOptions,
  type ExploreResult,
  type ExploreTarget,
  type TargetDescriptor,
} from '../../../src/sched/explore/index.ts';
import type { DfsNodeData } from '../../../src/sched/explore/dfs.ts';
import { explore, loadTargetSync, replay } from '../../../src/node/explore/index.ts';
import { resolveOptions } from '../../../src/sched/explore/options.ts';
import { parallelDfs } from '../../../src/node/explore/pardfs.ts';
import { overridesOf, runSchedule } from '../../../src/sched/explore/run.ts';
import { searchLoop } from '../../../src/sched/explore/search.ts';
import { hetmem } from '../../cli/helpers.ts';
import { counterTarget, orderTarget } from './fixtures.ts';

const fixtures = new URL('./fixtures.ts', import.meta.url).href;

/** What must not depend on the worker count (workers report no coverage). */
function withoutTime(r: ExploreResult): Omit<ExploreResult, 'elapsedMs' | 'coverage'> {
  const { elapsedMs: _elapsed, coverage: _coverage, ...rest } = r;
  return rest;
}

const key = (m: ReadonlyMap<number, number>): string => JSON.stringify([...m].sort((a, b) => a[0] - b[0]));

/** Every schedule of a DFS, as its non-default decisions, in the order it runs them. */
function sequence(target: ExploreTarget, bound: number, por: boolean, prefix: DfsNodeData[] = []): string[] {
  const out: string[] = [];
  searchLoop(target, new DfsStrategy(bound, por, prefix), {
    maxSteps: 1000,
    startIndex: 0,
    endIndex: Infinity,
    deadline: Infinity,
    onSchedule: (_i, o) => out.push(`${key(overridesOf(o.decisions))}${o.pruned ? ' pruned' : ''}`),
  });
  return out;
}

/** The same schedules, split the way the parallel search splits them: first schedule, then subtrees. */
function splitSequence(
  target: ExploreTarget,
  bound: number,
  por: boolean,
  levels: number,
  prefix: DfsNodeData[] = [],
): string[] {
  if (levels === 0) return sequence(target, bound, por, prefix);
  const dfs = new DfsStrategy(bound, por, prefix);
  dfs.begin(0);
  const o = runSchedule(target, dfs, { maxSteps: 1000, recordTrace: false });
  dfs.end(o);
  const out = [`${key(overridesOf(o.decisions))}${o.pruned ? ' pruned' : ''}`];
  for (const p of dfs.subtrees()) out.push(...splitSequence(target, bound, por, levels - 1, p));
  return out;
}

/** Small programs of reads and writes on three shared objects (as in por.test.ts). */
function programTarget(threads: { obj: number; write: boolean }[][]): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      const objs = [{ v: 0 }, { v: 0 }, { v: 0 }];
      threads.forEach((ops, ti) => {
        sched.spawn(
          `t${ti}`,
          (function* (): KGen {
            for (const o of ops) yield point(`${o.write ? 'w' : 'r'}${o.obj}`, objs[o.obj], o.write);
          })(),
        );
      });
      for (const t of [...sched.threads]) sched.step(t);
      return { sched, checkFinal: () => null };
    },
  };
}

void describe('DFS subtrees', () => {
  void it('the first schedule and the subtrees, in order, are the whole search (any split depth)', () => {
    const op = fc.record({ obj: fc.nat(2), write: fc.boolean() });
    const program = fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 });
    fc.assert(
      fc.property(
        program,
        fc.boolean(),
        fc.constantFrom(0, 1, 2, Infinity),
        fc.integer({ min: 1, max: 4 }),
        (threads, por, bound, levels) => {
          const target = programTarget(threads);
          assert.deepEqual(splitSequence(target, bound, por, levels), sequence(target, bound, por));
        },
      ),
      { numRuns: 60 },
    );
  });

  void it('holds for the fixtures, with sleep sets (unbounded) and with a preemption bound', () => {
    for (const target of [
      counterTarget({ noise: 2, mutex: true, threads: 3 }),
      orderTarget({ threads: 4, noise: 1, forbidden: [9] }),
    ]) {
      for (const bound of [2, Infinity]) {
        const whole = sequence(target, bound, true);
        assert.ok(whole.length > 50, `${whole.length} schedules`);
        for (const levels of [1, 2, 3]) assert.deepEqual(splitSequence(target, bound, true, levels), whole);
      }
    }
  });
});

void describe('parallel DFS', () => {
  const cases: [string, TargetDescriptor, ExploreOptions][] = [
    [
      'the lost update',
      { module: fixtures, exportName: 'counterTarget', args: { noise: 3 } },
      { strategy: 'dfs', reduction: 'sleep', stateCache: false },
    ],
    [
      'the mutex-protected counter (exhausts)',
      { module: fixtures, exportName: 'counterTarget', args: { noise: 4, mutex: true, threads: 3 } },
      { strategy: 'dfs', reduction: 'sleep', stateCache: false },
    ],
    [
      'independent threads under POR (exhausts)',
      { module: fixtures, exportName: 'independentTarget', args: { steps: 5, threads: 3 } },
      { strategy: 'dfs', reduction: 'sleep', stateCache: false, preemptionBound: 3 },
    ],
    [
      'an order violation deep in the search',
      {
        module: fixtures,
        exportName: 'orderTarget',
        args: { threads: 4, noise: 3, forbidden: [2, 3, 1, 0] },
      },
      { strategy: 'dfs', reduction: 'sleep', stateCache: false },
    ],
  ];
  for (const [name, target, opts] of cases) {
    void it(`${name}: workers 1, 2 and 3 report the same`, () => {
      const one = explore(target, { ...opts, workers: 1 });
      for (const workers of [2, 3]) {
        assert.deepEqual(
          withoutTime(explore(target, { ...opts, workers })),
          withoutTime(one),
          `${workers} workers`,
        );
      }
    });
  }

  void it('the failure found by a worker is the sequential one, and its token replays it', () => {
    const target = {
      module: fixtures,
      exportName: 'orderTarget',
      args: { threads: 4, noise: 3, forbidden: [2, 3, 1, 0] },
    };
    const local = loadTargetSync(target);
    const o = resolveOptions({ strategy: 'dfs', workers: 2 });
    const p = parallelDfs(local, target, o, { deadline: Infinity });
    const s = searchLoop(local, new DfsStrategy(), {
      maxSteps: o.maxSteps,
      startIndex: 0,
      endIndex: Infinity,
      deadline: Infinity,
    });
    assert.ok(s.found !== null && p.found !== null);
    assert.equal(p.schedules, s.found.index + 1);
    assert.equal(key(p.found), key(overridesOf(s.found.outcome.decisions)));
    // Found in a subtree a worker ran, not among the master's own schedules.
    assert.ok(p.stats.subtrees > 0 && p.stats.masterRuns < p.schedules, JSON.stringify(p.stats));

    const r = explore(target, { strategy: 'dfs', reduction: 'sleep', stateCache: false, workers: 2 });
    assert.ok(r.violation);
    assert.equal(r.violation.message, 'log is [2, 3, 1, 0]');
    assert.deepEqual(replay(local, r.replay).violation, r.violation);
  });

  void it('a budget that cuts the search gives the same partial result for any worker count', () => {
    const target = {
      module: fixtures,
      exportName: 'counterTarget',
      args: { noise: 4, mutex: true, threads: 3 },
    };
    const total = explore(target, { strategy: 'dfs', reduction: 'sleep', stateCache: false }).schedules;
    for (const schedules of [1, 7, 60, total - 1, total, total + 1]) {
      const opts: ExploreOptions = {
        strategy: 'dfs',
        reduction: 'sleep',
        stateCache: false,
        budget: { schedules },
      };
      const one = withoutTime(explore(target, { ...opts, workers: 1 }));
      assert.equal(one.schedules, Math.min(schedules, total));
      assert.equal(one.exhausted, schedules >= total);
      const workers = schedules % 2 === 0 ? 2 : 3;
      assert.deepEqual(withoutTime(explore(target, { ...opts, workers })), one, `budget ${schedules}`);
    }
  });

  void it('the result does not depend on where the tree is split', () => {
    const target = {
      module: fixtures,
      exportName: 'orderTarget',
      args: { threads: 4, noise: 2, forbidden: [9] },
    };
    const local = loadTargetSync(target);
    const results = [0, 1, 2, 3, 6].flatMap((splitLevels) =>
      [Infinity, 40].map((schedules) => {
        const o = resolveOptions({ strategy: 'dfs', workers: 2, budget: { schedules } });
        const p = parallelDfs(local, target, o, { deadline: Infinity, splitLevels });
        return { schedules, p };
      }),
    );
    for (const { schedules, p } of results) {
      const s = searchLoop(local, new DfsStrategy(), {
        maxSteps: 100_000,
        startIndex: 0,
        endIndex: schedules,
        deadline: Infinity,
      });
      assert.equal(p.found, null);
      assert.equal(p.schedules, s.schedules);
      assert.equal(p.exhausted, s.exhausted);
      assert.equal(key(p.lastOverrides), key(overridesOf(s.last!.decisions)));
    }
  });

  void it('a time budget stops where the sequential search with that many schedules stops', () => {
    // 415080 schedules: far more than the time allows.
    const target = { module: fixtures, exportName: 'independentTarget', args: { steps: 20, threads: 3 } };
    const opts: ExploreOptions = { strategy: 'dfs', preemptionBound: 3, por: false };
    for (const ms of [150, 1200]) {
      const r = explore(target, { ...opts, workers: 2, budget: { ms } });
      assert.equal(r.violation, null);
      assert.equal(r.exhausted, false);
      const s = explore(target, { ...opts, budget: { schedules: r.schedules } });
      assert.deepEqual(withoutTime(r), withoutTime(s), `${ms} ms`);
    }
  });

  void it('hetmem explore --strategy dfs --no-por --workers 2 prints what one worker prints', () => {
    const run = (workers: string): unknown => {
      const r = hetmem([
        'explore',
        'examples/races/interval-mirror.yaml',
        '--strategy',
        'dfs',
        '--no-por',
        '--workers',
        workers,
        '--json',
      ]);
      assert.equal(r.status, 0, r.stderr);
      // The split DFS reports no coverage (its workers do not collect it).
      const {
        elapsed_ms: _ms,
        coverage: _c,
        ...doc
      } = JSON.parse(r.stdout) as {
        elapsed_ms: number;
        coverage?: unknown;
      };
      return doc;
    };
    const one = run('1');
    assert.deepEqual(run('2'), one);
    assert.equal((one as { exhausted: boolean }).exhausted, true);
  });
});
