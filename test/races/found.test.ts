/**
 * The corpus cases with a bug: the explorer reports it (with the oracle that fires), and replaying
 * the token reproduces the same violation and diagram.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StrategyName } from '../../src/sched/explore/types.ts';
import { exploreRace, replayRace } from './helpers.ts';

interface BugCase {
  name: string;
  what: string;
  strategy: StrategyName;
  /** Oracles that may report it first. */
  oracles: string[];
  message: RegExp;
}

const FOUND: BugCase[] = [
  {
    name: 'legacy-mirror',
    what: 'hmm_mirror range->valid racing munmap',
    strategy: 'pct',
    oracles: ['frame-refs'],
    message: /page table: refers to pfn \d+, which is free/,
  },
  {
    name: 'legacy-mirror',
    what: 'hmm_mirror range->valid racing munmap',
    strategy: 'dfs',
    oracles: ['frame-refs'],
    message: /which is free/,
  },
  {
    name: 'no-read-retry',
    what: 'device PTEs programmed without mmu_interval_read_retry',
    strategy: 'pct',
    oracles: ['frame-refs'],
    message: /which is free/,
  },
  {
    name: 'no-read-retry',
    what: 'device PTEs programmed without mmu_interval_read_retry',
    strategy: 'dfs',
    // DFS meets the device reading the freed page's contents first.
    oracles: ['frame-refs', 'expect'],
    message: /which is free|HMM_DMIRROR_READ/,
  },
  {
    name: 'set-seq-unlocked',
    what: 'mmu_interval_set_seq outside the driver lock',
    strategy: 'dfs',
    oracles: ['frame-refs'],
    message: /which is free/,
  },
  {
    name: 'migrate-self-invalidate',
    what: 'invalidate does not filter its own MIGRATE events',
    strategy: 'pct',
    oracles: ['livelock'],
    message: /steps and still not finished: gpu/,
  },
  {
    name: 'oom-reap-sleeping-driver',
    what: 'oom_reap against a driver sleeping on its lock',
    strategy: 'pct',
    oracles: ['locks'],
    message: /mutex_lock\(gpu0\.mirror0\.mutex\) may sleep inside a non-blockable invalidation/,
  },
];

describe('race corpus: bugs the explorer finds', () => {
  for (const c of FOUND) {
    it(`${c.name} (${c.strategy}): ${c.what}`, async () => {
      const r = await exploreRace(c.name, { strategy: c.strategy, budget: { schedules: 2000 } });
      assert.ok(r.violation !== null, `no violation in ${r.schedules} schedules`);
      assert.ok(c.oracles.includes(r.violation.oracle), `${r.violation.oracle}: ${r.violation.message}`);
      assert.match(r.violation.message, c.message);
      assert.equal(r.exhausted, false);
      const again = await replayRace(c.name, r.replay);
      assert.ok(again.violation !== null);
      assert.equal(again.violation.oracle, r.violation.oracle);
      assert.equal(again.violation.message, r.violation.message);
      assert.equal(again.violation.diagram, r.violation.diagram);
    });
  }

  it('legacy-mirror: the diagram shows the whole invalidation between the fault and the valid check', async () => {
    const r = await exploreRace('legacy-mirror', { strategy: 'pct' });
    assert.ok(r.violation !== null);
    const lines = r.violation.diagram.split('\n');
    const at = (s: string): number => lines.findIndex((l) => l.includes(s));
    const fault = at('hmm_range_fault (v5.4)');
    const end = at('invalidate_range_end: exit');
    const lock = lines.findIndex((l, i) => i > end && l.includes('mutex_lock(gpu0.mirror0.update)'));
    assert.ok(fault >= 0 && end > fault && lock > end, r.violation.diagram);
  });

  it('migrate-self-invalidate (dfs): the livelock is met in the only schedule; every pass invalidates again', async () => {
    const r = await exploreRace('migrate-self-invalidate', {
      strategy: 'dfs',
      maxStepsPerSchedule: 3000,
    });
    assert.equal(r.schedules, 1);
    assert.equal(r.violation?.oracle, 'livelock', r.violation?.message);
    const labels = r.violation.trace.map((s) => s.label);
    const count = (l: string): number => labels.filter((x) => x === l).length;
    // The pages moved to the device once (one allocation of device memory) ...
    assert.equal(count('mutex_lock(gpu0.devmem_lock)'), 1);
    // ... yet each pass raised an invalidation of its own, which the driver did not filter.
    assert.ok(count('interval invalidate: enter') > 50, `${count('interval invalidate: enter')}`);
    assert.ok(Math.abs(count('interval invalidate: enter') - count('hmm_range_fault')) <= 1);
  });

  it('set-seq-unlocked: the fault slips in between the unlock and set_seq', async () => {
    const r = await exploreRace('set-seq-unlocked', { strategy: 'dfs' });
    assert.ok(r.violation !== null);
    assert.match(r.violation.diagram, /mmu_interval_set_seq \(unlocked\)/);
  });
});
