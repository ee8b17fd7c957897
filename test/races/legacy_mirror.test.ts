/** The legacy_mirror device (v5.4 hmm_mirror API) run sequentially, and its oracle. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { legacyMirrorDevices, legacyMirrorDriver } from '../../src/kernel/drivers/legacy_mirror.ts';
import { DEV_PTE, DevicePageTable, deviceByName, sdkDevices } from '../../src/kernel/drivers/sdk/index.ts';
import { PAGE_SIZE } from '../../src/lib/units.ts';
import { checkAll } from '../../src/oracles/index.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioFile, parseScenarioText } from '../../src/scenario/parse.ts';
import { buildWorld, preloadDriver, runScenario, runStepNow } from '../../src/scenario/runner.ts';
import { checkDeviceMirrors } from '../../src/oracles/devices.ts';
import { RACES } from './helpers.ts';

const BASE = [
  'version: 1',
  'system: { ram: 16MiB, swap: 0 }',
  'devices: { gpu0: { type: legacy_mirror } }',
  'processes: [p]',
  'steps:',
  '  - { op: mmap, proc: p, length: 16KiB, prot: [read, write], flags: [private, anonymous], save: buf }',
  '  - { op: cpu_write, proc: p, addr: buf, length: 16KiB, data: { pattern: index32 } }',
  '  - { op: legacy_mirror_open, device: gpu0, proc: p, save: fd }',
  '  - { op: legacy_mirror_read, fd: fd, addr: buf, npages: 4, expect: { ret: 0, cpages: 4, faults: 1, data: { pattern: index32 } } }',
  '  - { op: legacy_mirror_read, fd: fd, addr: buf, npages: 4, expect: { faults: 0, data: { pattern: index32 } } }',
  '  - { op: legacy_mirror_fault, fd: fd, addr: buf, npages: 2, write: true }',
  '  - { op: check }',
  '  - { op: munmap, proc: p, addr: "buf+8KiB", length: 8KiB }',
  '  - { op: check }',
  '  - { op: legacy_mirror_fault, fd: fd, addr: "buf+8KiB", npages: 1, expect: { errno: EFAULT } }',
];

describe('legacy_mirror device', () => {
  it('reads through its page table, faulting once, and follows munmap', () => {
    const text = [
      ...BASE,
      '  - { op: legacy_mirror_close, fd: fd }',
      '  - { op: exit, proc: p }',
      '  - { op: check }',
      '',
    ].join('\n');
    const { report, ctx } = runScenario(parseScenarioText(text, 'legacy.yaml'), kernel());
    assert.ok(report.ok, JSON.stringify(report.steps.filter((s) => !s.ok)));
    assert.equal(legacyMirrorDevices(ctx.sys)[0].mirrors.size, 0);
  });

  it('is checked by the mirror oracles (checkAll)', () => {
    const parsed = parseScenarioText([...BASE.slice(0, 9), ''].join('\n'), 'legacy.yaml');
    const ctx = buildWorld(parsed, kernel());
    parsed.scenario.steps!.forEach((step, i) => {
      const r = runStepNow(ctx, step, 'steps', i, ['steps', i]);
      assert.ok(r.ok, r.failures.join('; '));
    });
    assert.deepEqual(checkDeviceMirrors(ctx.sys), []);
    // The device is the SDK's, and so is its page table: the device-mirror oracles check it.
    const dev = deviceByName(ctx.sys, 'gpu0');
    assert.ok(dev !== null && dev.driver === legacyMirrorDriver);
    assert.deepEqual(sdkDevices(ctx.sys), [dev]);
    const mirror = [...legacyMirrorDevices(ctx.sys)[0].mirrors][0];
    assert.ok(mirror.pt instanceof DevicePageTable && ctx.sys.deviceMirrors.has(mirror.pt));
    const buf = ctx.num('buf');
    const first = mirror.pt.lookup(buf)!;
    const second = mirror.pt.lookup(buf + PAGE_SIZE)!;
    // A stale entry: the device maps the second page at the first address, writable.
    ctx.sys.run(
      'stale',
      (function* () {
        yield* mirror.update.lock();
        mirror.pt.map(buf, second.pfn, DEV_PTE.READ | DEV_PTE.WRITE);
        yield* mirror.update.unlock();
      })(),
    );
    const v = checkAll(ctx.sys);
    assert.ok(
      v.some((x) => x.oracle === 'mirror' && x.message.includes(`the CPU maps pfn ${first.pfn}`)),
      JSON.stringify(v),
    );
  });

  it('takes a user driver from the scenario file (driver: { module, export })', async () => {
    const parsed = parseScenarioFile(`${RACES}legacy-mirror.yaml`);
    await preloadDriver(parsed);
    const { report } = runScenario(parsed, kernel());
    // `hetmem run` runs the threads one after the other: no race, munmap clears the device PT.
    assert.ok(report.ok, JSON.stringify(report.steps.filter((s) => !s.ok)));
  });
});
