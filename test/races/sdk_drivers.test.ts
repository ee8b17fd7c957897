/**
 * The corpus cases whose drivers are written on the driver SDK (devices of user drivers, opened
 * with device_open and driven by their own ioctls). Each pre-fix variant must be found; its fixed
 * twin must come out clean over the whole bounded space.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exploreRace } from './helpers.ts';

const PAIRS: { found: string; clean: string; oracle: string; what: string }[] = [
  {
    found: 'mm-notifier-release-open',
    clean: 'mm-notifier-release-dead',
    oracle: 'frame-refs',
    what: 'a whole-mm notifier registered at open whose release leaves the mirror open',
  },
  {
    found: 'fault-buffer-lost-irq',
    clean: 'fault-buffer-recheck',
    oracle: 'deadlock',
    what: 'a fault handler on a worker that loses an interrupt',
  },
  {
    found: 'migrate-to-ram-stale-pte',
    clean: 'migrate-to-ram-zap',
    oracle: 'mirror',
    what: 'a migrate_to_ram that leaves the device PTE of the page it sends back',
  },
  {
    found: 'access-unmap-contained',
    clean: 'access-unmap-overlap',
    oracle: 'iommufd',
    what: 'an iommufd access whose unmap callback drops only the pins inside the range',
  },
];

describe('race corpus: SDK drivers', () => {
  for (const p of PAIRS) {
    it(`${p.found}: ${p.what}: dfs finds ${p.oracle}`, async () => {
      const r = await exploreRace(p.found, { strategy: 'dfs' });
      assert.ok(r.violation !== null, 'no violation found');
      assert.equal(r.violation.oracle, p.oracle, r.violation.message);
    });
    it(`${p.clean}: the fixed twin: dfs exhausts its bound without a violation`, async () => {
      const r = await exploreRace(p.clean, { strategy: 'dfs' });
      assert.equal(r.violation, null, r.violation?.message);
      assert.equal(r.exhausted, true);
      assert.ok(r.schedules > 1, `only ${r.schedules} schedule(s): the threads do not interleave`);
    });
  }
});
