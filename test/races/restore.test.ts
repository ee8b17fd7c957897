/**
 * Starting schedules from a snapshot of the state setup left (the default) explores exactly what
 * rebuilding the system for every schedule explores: the same schedules, verdicts, replay tokens
 * and coverage, over the whole race corpus and over random schedules.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { explore } from '../../src/sched/explore/index.ts';
import type { ExploreOptions, ExploreResult } from '../../src/sched/explore/types.ts';
import { RACES, raceTarget } from './helpers.ts';

const NAMES = readdirSync(RACES)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

/** What must not depend on how a schedule's world is made. */
function verdict(r: ExploreResult): unknown {
  return {
    schedules: r.schedules,
    exhausted: r.exhausted,
    replay: r.replay,
    violation: r.violation === null ? null : { ...r.violation },
    coverage: r.coverage,
  };
}

async function both(name: string, opts: ExploreOptions): Promise<[unknown, unknown]> {
  const rebuilt = explore(await raceTarget(name, false), opts);
  const restored = explore(await raceTarget(name, true), opts);
  return [verdict(rebuilt), verdict(restored)];
}

// A livelock takes its whole step bound to show: a small one keeps the corpus quick.
const BASE = { maxStepsPerSchedule: 5000, minimize: false } as const;

describe('explore: schedules from a restored snapshot', () => {
  for (const name of NAMES) {
    it(`${name}: dfs at bound 2 gives what rebuilding gives`, async () => {
      const [rebuilt, restored] = await both(name, {
        ...BASE,
        strategy: 'dfs',
        preemptionBound: 2,
        budget: { schedules: 40 },
      });
      assert.deepEqual(restored, rebuilt);
    });
  }

  it('random schedules of random corpus scenarios give what rebuilding gives', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...NAMES),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.constantFrom('random' as const, 'pct' as const),
        async (name, seed, strategy) => {
          const [rebuilt, restored] = await both(name, {
            ...BASE,
            strategy,
            seed,
            budget: { schedules: 6 },
          });
          assert.deepEqual(restored, rebuilt);
        },
      ),
      { numRuns: 12, seed: 18 },
    );
  });
});
