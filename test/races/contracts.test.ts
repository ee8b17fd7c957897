/**
 * Historical core contracts: each pair of scenarios runs the same race on the modelled kernel and
 * on an older contract selected with `kernel: { contracts }`, and the outcome differs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { System } from '../../src/kernel/system.ts';
import { parseScenarioText, ScenarioError } from '../../src/scenario/parse.ts';
import { exploreRace } from './helpers.ts';

describe('contract: a failed non-blockable invalidate_range_start (v5.11 / v5.12)', () => {
  it('v5.12 (modelled): the v5.4 hmm_mirror core, which ends its own failed start, trips the WARN', async () => {
    const r = await exploreRace('hmm-mirror-oom-reap', { strategy: 'dfs' });
    assert.ok(r.violation !== null, 'no violation');
    assert.equal(r.violation.oracle, 'warn');
    assert.match(r.violation.message, /failed also implements invalidate_range_end/);
  });

  it('v5.11: the same race is clean, every schedule', async () => {
    const r = await exploreRace('hmm-mirror-oom-reap-v5.11', { strategy: 'dfs' });
    assert.equal(r.violation, null, r.violation?.message);
    assert.equal(r.exhausted, true);
    assert.ok(r.schedules > 1);
  });
});

describe('contract: the device-private fault path (CVE-2022-3523, v6.0 / v6.1)', () => {
  it('v6.0: migrate_to_ram runs on a device page a concurrent migration freed', async () => {
    const r = await exploreRace('device-private-fault-v6.0', { strategy: 'pct' });
    assert.ok(r.violation !== null, 'no violation');
    assert.equal(r.violation.oracle, 'use-after-free');
    assert.match(r.violation.message, /migrate_to_ram\(\) called for device page \d+, which was freed/);
  });

  it('v6.1 (modelled): the referenced, locked page makes the same race clean', async () => {
    const r = await exploreRace('device-private-fault', { strategy: 'pct', budget: { schedules: 100 } });
    assert.equal(r.violation, null, r.violation?.message);
  });
});

describe('contract selection', () => {
  it('a System defaults to the modelled release and takes older contracts by name', () => {
    assert.deepEqual(new System({ ram: 16 << 20 }).contracts, {
      invalidateRangeStartNonblock: 'v5.12',
      devicePrivateFault: 'v6.1',
    });
    const old = new System({ ram: 16 << 20, contracts: { devicePrivateFault: 'v6.0' } });
    assert.equal(old.contracts.devicePrivateFault, 'v6.0');
    assert.equal(old.contracts.invalidateRangeStartNonblock, 'v5.12');
  });

  it('a scenario naming an unknown contract or release is refused with its position', () => {
    const base = ['version: 1', 'processes: [p]', 'steps: [{ op: exit, proc: p }]'];
    const bad = (line: string): ScenarioError => {
      try {
        parseScenarioText([...base, line].join('\n'), 'x.yaml');
      } catch (e) {
        if (e instanceof ScenarioError) return e;
        throw e;
      }
      assert.fail('expected a ScenarioError');
    };
    assert.match(
      bad('kernel: { contracts: { device_private_fault: v5.0 } }').message,
      /'v5\.0' is not one of v6\.0, v6\.1/,
    );
    const e = bad('kernel: { contracts: { device_private_faults: v6.0 } }');
    assert.equal(e.line, 4);
    assert.match(e.message, /unknown field 'device_private_faults'/);
  });
});
