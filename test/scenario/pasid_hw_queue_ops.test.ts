/**
 * IOMMU_HW_QUEUE_ALLOC and the PASID selftest ops (IOMMU_TEST_OP_PASID_ATTACH / _REPLACE /
 * _DETACH / _CHECK_HWPT, IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE) by their uAPI names in a scenario,
 * with the errnos the kernel's iommufd_viommu.hw_queue and iommufd_device_pasid.pasid_attach
 * tests expect.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';

function run(steps: string[]): ReturnType<typeof runScenario>['report'] {
  const text = ['version: 1', 'processes: [p]', 'steps:', ...steps.map((s) => `  - ${s}`), ''].join('\n');
  return runScenario(parseScenarioText(text, 'ops.yaml'), kernel()).report;
}

function failed(report: ReturnType<typeof run>): string {
  return JSON.stringify(report.steps.filter((s) => !s.ok));
}

test('IOMMU_HW_QUEUE_ALLOC by uAPI name: the kernel errnos, the pin that makes unmap -EBUSY', () => {
  const report = run([
    '{ op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [private, anonymous], save: buf }',
    '{ op: iommufd_open, proc: p, save: fd }',
    '{ op: IOMMU_IOAS_ALLOC, fd: fd, save: ioas }',
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN, fd: fd, id: ioas, save: { out_idev_id: idev } }',
    '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: ioas, flags: [NEST_PARENT], save: parent }',
    '{ op: IOMMU_VIOMMU_ALLOC, fd: fd, dev_id: idev, hwpt_id: parent, type: 0xdeadbeef, save: viommu }',
    // IOMMU_HW_QUEUE_TYPE_DEFAULT is not a type the mock supports.
    '{ op: IOMMU_HW_QUEUE_ALLOC, fd: fd, viommu_id: viommu, type: 0, index: 0, nesting_parent_iova: 0x1000000, length: 4KiB, expect: { errno: EOPNOTSUPP } }',
    '{ op: IOMMU_HW_QUEUE_ALLOC, fd: fd, viommu_id: viommu, type: 0xdeadbeef, index: 0, nesting_parent_iova: 0x1000000, length: 0, expect: { errno: EINVAL } }',
    '{ op: IOMMU_HW_QUEUE_ALLOC, fd: fd, viommu_id: viommu, type: 0xdeadbeef, index: 0, nesting_parent_iova: 0xffffffffffffffff, length: 4KiB, expect: { errno: EOVERFLOW } }',
    // Nothing is mapped at that IOVA yet.
    '{ op: IOMMU_HW_QUEUE_ALLOC, fd: fd, viommu_id: viommu, type: 0xdeadbeef, index: 0, nesting_parent_iova: 0x1000000, length: 4KiB, expect: { errno: ENOENT } }',
    '{ op: IOMMU_IOAS_MAP, fd: fd, ioas_id: ioas, user_va: buf, length: 8KiB, iova: 0x1000000 }',
    // Indexes start from 0.
    '{ op: IOMMU_HW_QUEUE_ALLOC, fd: fd, viommu_id: viommu, type: 0xdeadbeef, index: 1, nesting_parent_iova: 0x1000000, length: 4KiB, expect: { errno: EIO } }',
    '{ op: IOMMU_HW_QUEUE_ALLOC, fd: fd, viommu_id: viommu, type: 0xdeadbeef, index: 0, nesting_parent_iova: 0x1000000, length: 4KiB, save: q0 }',
    '{ op: IOMMU_HW_QUEUE_ALLOC, fd: fd, viommu_id: viommu, type: 0xdeadbeef, index: 0, nesting_parent_iova: 0x1000000, length: 4KiB, expect: { errno: EEXIST } }',
    // The queue owns the IOVA it sits on: the area cannot be unmapped while it exists.
    '{ op: IOMMU_IOAS_UNMAP, fd: fd, ioas_id: ioas, iova: 0x1000000, length: 8KiB, expect: { errno: EBUSY } }',
    '{ op: IOMMU_HW_QUEUE_ALLOC, fd: fd, viommu_id: viommu, type: 0xdeadbeef, index: 1, nesting_parent_iova: 0x1000800, length: 2KiB, save: q1 }',
    '{ op: IOMMU_DESTROY, fd: fd, id: q0, expect: { errno: EBUSY } }',
    '{ op: IOMMU_DESTROY, fd: fd, id: viommu, expect: { errno: EBUSY } }',
    '{ op: IOMMU_DESTROY, fd: fd, id: q1 }',
    '{ op: IOMMU_DESTROY, fd: fd, id: q0 }',
    '{ op: IOMMU_IOAS_UNMAP, fd: fd, ioas_id: ioas, iova: 0x1000000, length: 8KiB, expect: { length: 8KiB } }',
    '{ op: iommufd_close, fd: fd }',
    'op: check',
  ]);
  assert.ok(report.ok, failed(report));
});

test('PASID attach, replace, detach and check by uAPI name, with the kernel errnos', () => {
  const report = run([
    '{ op: iommufd_open, proc: p, save: fd }',
    '{ op: IOMMU_IOAS_ALLOC, fd: fd, save: ioas }',
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN, fd: fd, id: ioas, dev_flags: [PASID], save: { out_stdev_id: stdev, out_idev_id: idev } }',
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN, fd: fd, id: ioas, save: { out_stdev_id: plain } }',
    '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: ioas, flags: [NEST_PARENT], save: parent }',
    '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: ioas, flags: [PASID], save: s2 }',
    '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: ioas, flags: [PASID], save: s2b }',
    // Detaching a PASID that is not attached is not an error.
    '{ op: IOMMU_TEST_OP_PASID_DETACH, fd: fd, id: stdev, pasid: 100 }',
    // With the RID on a domain that is not PASID-compatible, no PASID can be attached.
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: parent, expect: { pt_id: parent } }',
    '{ op: IOMMU_TEST_OP_PASID_ATTACH, fd: fd, id: stdev, pasid: 100, pt_id: s2, expect: { errno: EINVAL } }',
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: s2 }',
    // An IOAS, or a HWPT allocated without PASID, cannot be attached to a PASID.
    '{ op: IOMMU_TEST_OP_PASID_ATTACH, fd: fd, id: stdev, pasid: 100, pt_id: ioas, expect: { errno: EINVAL } }',
    '{ op: IOMMU_TEST_OP_PASID_ATTACH, fd: fd, id: stdev, pasid: 100, pt_id: parent, expect: { errno: EINVAL } }',
    '{ op: IOMMU_TEST_OP_PASID_CHECK_HWPT, fd: fd, id: stdev, pasid: 100, hwpt_id: 0 }',
    // A device without PASID support refuses every PASID attach.
    '{ op: IOMMU_TEST_OP_PASID_ATTACH, fd: fd, id: plain, pasid: 100, pt_id: s2, expect: { errno: EINVAL } }',
    '{ op: IOMMU_TEST_OP_PASID_ATTACH, fd: fd, id: stdev, pasid: 100, pt_id: s2 }',
    '{ op: IOMMU_TEST_OP_PASID_CHECK_HWPT, fd: fd, id: stdev, pasid: 100, hwpt_id: s2 }',
    '{ op: IOMMU_TEST_OP_PASID_CHECK_HWPT, fd: fd, id: stdev, pasid: 100, hwpt_id: s2b, expect: { errno: EINVAL } }',
    // Attach does not overwrite; replace does.
    '{ op: IOMMU_TEST_OP_PASID_ATTACH, fd: fd, id: stdev, pasid: 100, pt_id: s2b, expect: { errno: EBUSY } }',
    // The RID cannot leave for a domain that is not PASID-compatible while a PASID is attached.
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: parent, expect: { errno: EINVAL } }',
    '{ op: IOMMU_TEST_OP_PASID_REPLACE, fd: fd, id: stdev, pasid: 100, pt_id: s2b }',
    '{ op: IOMMU_TEST_OP_PASID_CHECK_HWPT, fd: fd, id: stdev, pasid: 100, hwpt_id: s2b }',
    // The attached HWPT is busy.
    '{ op: IOMMU_DESTROY, fd: fd, id: s2b, expect: { errno: EBUSY } }',
    '{ op: IOMMU_TEST_OP_PASID_DETACH, fd: fd, id: stdev, pasid: 100 }',
    '{ op: IOMMU_TEST_OP_PASID_CHECK_HWPT, fd: fd, id: stdev, pasid: 100, hwpt_id: 0 }',
    // Replacing a PASID that is not attached fails.
    '{ op: IOMMU_TEST_OP_PASID_REPLACE, fd: fd, id: stdev, pasid: 100, pt_id: s2, expect: { errno: EINVAL } }',
    '{ op: IOMMU_DESTROY, fd: fd, id: s2b }',
    '{ op: iommufd_close, fd: fd }',
    'op: check',
  ]);
  assert.ok(report.ok, failed(report));
});
