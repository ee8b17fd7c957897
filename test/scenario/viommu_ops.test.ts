/**
 * The vIOMMU ioctls by their uAPI names in a scenario: IOMMU_VIOMMU_ALLOC over a NEST_PARENT HWPT
 * of the mock IOMMU, IOMMU_VDEVICE_ALLOC with a 64-bit guest ID, IOMMU_VEVENTQ_ALLOC, and the
 * references that keep the parent and the vIOMMU from being destroyed first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';

function run(steps: string[]): ReturnType<typeof runScenario>['report'] {
  const text = ['version: 1', 'processes: [p]', 'steps:', ...steps.map((s) => `  - ${s}`), ''].join('\n');
  return runScenario(parseScenarioText(text, 'viommu.yaml'), kernel()).report;
}

const SETUP = [
  '{ op: iommufd_open, proc: p, save: fd }',
  '{ op: IOMMU_IOAS_ALLOC, fd: fd, save: ioas }',
  '{ op: IOMMU_TEST_OP_MOCK_DOMAIN, fd: fd, id: ioas, save: stdev }',
  '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: "stdev+1", pt_id: ioas, flags: [NEST_PARENT], save: parent }',
];

test('vIOMMU, vDEVICE and vEVENTQ allocation by uAPI name, with the kernel errnos', () => {
  const report = run([
    ...SETUP,
    '{ op: IOMMU_VIOMMU_ALLOC, fd: fd, dev_id: "stdev+1", hwpt_id: parent, type: 0xdead, expect: { errno: EOPNOTSUPP } }',
    '{ op: IOMMU_VIOMMU_ALLOC, fd: fd, dev_id: "stdev+1", hwpt_id: ioas, type: 0xdeadbeef, expect: { errno: ENOENT } }',
    '{ op: IOMMU_VIOMMU_ALLOC, fd: fd, dev_id: "stdev+1", hwpt_id: parent, type: 0xdeadbeef, save: viommu }',
    '{ op: IOMMU_VDEVICE_ALLOC, fd: fd, viommu_id: viommu, dev_id: "stdev+1", virt_id: 0xffffffffffffffff, save: vdev }',
    '{ op: IOMMU_VDEVICE_ALLOC, fd: fd, viommu_id: viommu, dev_id: "stdev+1", virt_id: 0x99, expect: { errno: EEXIST } }',
    '{ op: IOMMU_VEVENTQ_ALLOC, fd: fd, viommu_id: viommu, type: 0xbeefbeef, veventq_depth: 0, expect: { errno: EINVAL } }',
    '{ op: IOMMU_VEVENTQ_ALLOC, fd: fd, viommu_id: viommu, type: 0xbeefbeef, veventq_depth: 2, save: q }',
    '{ op: IOMMU_VEVENTQ_ALLOC, fd: fd, viommu_id: viommu, type: 0xbeefbeef, veventq_depth: 2, expect: { errno: EEXIST } }',
    // The device is on the IOAS's automatic domain, not a nested one: nothing to report to.
    '{ op: IOMMU_TEST_OP_TRIGGER_VEVENT, fd: fd, dev_id: "stdev+1", expect: { errno: ENOENT } }',
    '{ op: IOMMU_DESTROY, fd: fd, id: parent, expect: { errno: EBUSY } }',
    '{ op: IOMMU_DESTROY, fd: fd, id: viommu, expect: { errno: EBUSY } }',
    '{ op: IOMMU_DESTROY, fd: fd, id: vdev }',
    '{ op: IOMMU_DESTROY, fd: fd, id: q, expect: { errno: EBUSY } }',
  ]);
  assert.ok(report.ok, JSON.stringify(report.steps.filter((s) => !s.ok)));
});
