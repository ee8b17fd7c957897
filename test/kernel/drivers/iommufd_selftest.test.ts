/** The iommufd selftest's access users are a driver on the public SDK. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceByName, sdkDevices } from '../../../src/kernel/drivers/sdk/index.ts';
import { kernel } from '../../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../../src/scenario/parse.ts';
import { buildWorld, runStepNow } from '../../../src/scenario/runner.ts';
import { checkAll } from '../../../src/oracles/index.ts';

const STEPS = [
  'version: 1',
  'system: { ram: 16MiB, swap: 0 }',
  'processes: [p]',
  'steps:',
  '  - { op: mmap, proc: p, length: 16KiB, prot: [read, write], flags: [private, anonymous], save: buf }',
  '  - { op: cpu_write, proc: p, addr: buf, length: 16KiB, data: { pattern: index32 } }',
  '  - { op: iommufd_open, proc: p, save: iofd }',
  '  - { op: IOMMU_IOAS_ALLOC, fd: iofd, save: ioas }',
  '  - { op: IOMMU_IOAS_MAP, fd: iofd, ioas_id: ioas, user_va: buf, length: 16KiB, iova: 0x1000000, flags: [FIXED_IOVA, READABLE, WRITEABLE] }',
  '  - { op: IOMMU_TEST_OP_CREATE_ACCESS, fd: iofd, id: ioas, flags: [NEEDS_PIN_PAGES], save: access }',
  '  - { op: IOMMU_TEST_OP_ACCESS_PAGES, fd: iofd, id: access, iova: 0x1000000, length: 8KiB }',
  '',
].join('\n');

describe('iommufd selftest device', () => {
  it('its access files are files of the SDK device "iommufd_selftest"; their lock is declared', () => {
    const parsed = parseScenarioText(STEPS, 'access.yaml');
    const ctx = buildWorld(parsed, kernel());
    assert.equal(
      deviceByName(ctx.sys, 'iommufd_selftest'),
      null,
      'registered by the first command that needs it',
    );
    parsed.scenario.steps!.forEach((step, i) => {
      const r = runStepNow(ctx, step, 'steps', i, ['steps', i]);
      assert.ok(r.ok, r.failures.join('; '));
    });
    const dev = deviceByName(ctx.sys, 'iommufd_selftest');
    assert.ok(dev !== null);
    assert.equal(dev.state, 'bound');
    assert.equal(dev.driver.name, 'iommufd_selftest');
    assert.deepEqual(sdkDevices(ctx.sys), [dev]);
    const file = ctx.sys.fileOf(ctx.num('access'));
    assert.ok(file !== null && [...dev.files].some((f) => f === file));
    assert.equal(file.fops, dev.fops);
    assert.deepEqual(
      dev.locks.map((l) => l.lockClass),
      ['staccess.lock'],
    );
    assert.deepEqual(checkAll(ctx.sys), []);
    // The last close runs the driver's release: the pins go with the access.
    assert.equal(ctx.sys.close(ctx.num('access')), 0);
    assert.equal(dev.files.size, 0);
    assert.equal(ctx.sys.close(ctx.num('iofd')), 0);
    assert.deepEqual(checkAll(ctx.sys), []);
  });
});
