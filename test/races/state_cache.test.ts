/**
 * The state cache on the race corpus: every fixed variant gets the same verdict with and without
 * it, and the search that uses it fully (sleep sets, or a bounded search without DPOR) runs
 * fewer schedules.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { explore } from '../../src/sched/explore/index.ts';
import type { ExploreOptions } from '../../src/sched/explore/types.ts';
import { RACES, raceTarget } from './helpers.ts';

/** The fixed variants: the scenarios that declare `explore: { expect: clean }`. */
const CLEAN = readdirSync(RACES)
  .filter((f) => f.endsWith('.yaml') && /explore: \{ expect: clean \}/.test(readFileSync(RACES + f, 'utf8')))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

async function both(name: string, opts: ExploreOptions) {
  const target = await raceTarget(name);
  const without = explore(target, { ...opts, stateCache: false });
  const withCache = explore(target, { ...opts, stateCache: true });
  return { without, withCache };
}

describe('race corpus: the state cache', () => {
  it('knows the fixed variants', () => {
    assert.ok(CLEAN.includes('interval-mirror') && CLEAN.length >= 10, CLEAN.join(', '));
  });

  for (const name of CLEAN) {
    it(`${name}: the default search gives the same verdict with and without it`, async () => {
      const { without, withCache } = await both(name, { strategy: 'dfs' });
      assert.equal(withCache.violation, null, withCache.violation?.message);
      assert.equal(without.violation, null, without.violation?.message);
      assert.equal(withCache.exhausted, true);
      assert.equal(without.exhausted, true);
      assert.ok(withCache.schedules <= without.schedules, `${withCache.schedules} vs ${without.schedules}`);
      assert.ok(withCache.states !== undefined);
    });
  }

  for (const name of ['interval-mirror', 'read-munmap']) {
    it(`${name}: sleep sets at bound 2 exhaust with fewer schedules`, async () => {
      const { without, withCache } = await both(name, {
        strategy: 'dfs',
        reduction: 'sleep',
        preemptionBound: 2,
      });
      assert.equal(withCache.violation, null, withCache.violation?.message);
      assert.equal(without.violation, null);
      assert.equal(withCache.exhausted && without.exhausted, true);
      assert.ok(withCache.states !== undefined && withCache.states.pruned > 0);
      assert.ok(withCache.schedules < without.schedules, `${withCache.schedules} vs ${without.schedules}`);
    });
  }
});
