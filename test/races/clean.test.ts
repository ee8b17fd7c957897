/**
 * The corpus cases that must be clean: depth-first search (two preemptions, sleep sets) covers
 * every schedule of each and finds no violation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exploreRace } from './helpers.ts';

const CLEAN: [string, string][] = [
  ['interval-mirror', 'the legacy driver moved to mmu_interval_notifier, racing munmap'],
  ['deferred-insert', 'an interval notifier inserted during an invalidation, with a reader'],
  ['read-munmap', 'HMM_DMIRROR_READ racing munmap (anon_teardown)'],
  ['iommufd-map-attach', 'iommufd map racing a domain attach'],
  ['iommufd-unmap-access', 'iommufd unmap racing an access pin'],
  ['uvm-va-space-first-access', "two threads' first GPU accesses each opening the UVM va_space"],
];

describe('race corpus: clean cases', () => {
  for (const [name, what] of CLEAN) {
    it(`${name}: ${what}: dfs exhausts its bound without a violation`, async () => {
      const r = await exploreRace(name, { strategy: 'dfs' });
      assert.equal(r.violation, null, r.violation?.message);
      assert.equal(r.exhausted, true);
      assert.ok(r.schedules > 1, `only ${r.schedules} schedule(s): the threads do not interleave`);
    });
  }

  it('uvm-migrate-to-ram-gpu-fault: past any preemption bound the GPU read still succeeds', async () => {
    // An unbounded search can alternate the CPU's migrate_to_ram with the GPU fault service on the
    // same page; the thrashing THROTTLE nap of the CPU fault lets the GPU's read through before
    // the device gives up on its replays (-EFAULT). Without the nap this finds the failure at the
    // 69th schedule.
    const r = await exploreRace('uvm-migrate-to-ram-gpu-fault', {
      strategy: 'dfs',
      preemptionBound: 100,
      budget: { schedules: 300 },
    });
    assert.equal(r.violation, null, r.violation?.message);
    assert.equal(r.schedules, 300);
  });

  it('interval-mirror: pct finds nothing either', async () => {
    const r = await exploreRace('interval-mirror', { strategy: 'pct', budget: { schedules: 200 } });
    assert.equal(r.violation, null, r.violation?.message);
  });
});
