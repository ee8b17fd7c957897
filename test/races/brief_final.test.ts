/**
 * A brief schedule (a search's) is judged as a full run of the same schedule is: the same
 * verdict and final stages, and the scheduler's step and thread counts the teardown goes on from.
 * A brief run may skip work that only a report reads; it may not skip work that changes these.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runSchedule, type Decider } from '../../src/sched/explore/run.ts';
import { RACES, raceTarget } from './helpers.ts';

const NAMES = readdirSync(RACES)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

/** Picks runnable threads from a seeded generator: the same choices for the same seed. */
function seeded(seed: number): Decider {
  let s = seed;
  return {
    choose(ctx) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return (s >>> 16) % ctx.runnable.length;
    },
  };
}

describe('explore: a brief schedule against a full run of it', () => {
  for (const name of NAMES) {
    it(`${name}: brief and full runs of the same schedules agree`, async () => {
      const target = await raceTarget(name);
      for (let seed = 1; seed <= 6; seed++) {
        const run = (brief: boolean) => {
          const o = runSchedule(target, seeded(seed), { maxSteps: 5000, recordTrace: false, brief });
          const sched = target.last!.sys.sched;
          return {
            oracle: o.violation?.oracle ?? null,
            steps: o.steps,
            stages: target.lastStages,
            totalSteps: sched.totalSteps,
            threads: sched.threads.length,
            nextThread: sched.spawn('probe', (function* () {})()).id,
          };
        };
        const full = run(false);
        assert.deepEqual(run(true), full, `seed ${seed}`);
      }
    });
  }
});
