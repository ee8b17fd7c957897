/**
 * The iommufd event queues by name in a scenario: IOMMU_FAULT_QUEUE_ALLOC, a nested HWPT that
 * routes I/O page faults to it (IOMMU_HWPT_ALLOC with FAULT_ID_VALID and the selftest data),
 * IOMMU_TEST_OP_TRIGGER_IOPF, fault_read and fault_respond; a vEVENTQ and veventq_read; and
 * IOMMU_GET_HW_INFO copying to a user buffer. The errnos are those of drivers/iommu/iommufd/
 * eventq.c and device.c.
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

const SETUP = [
  '{ op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [private, anonymous], save: buf }',
  // struct iommu_hwpt_selftest { iotlb }: IOMMU_TEST_IOTLB_DEFAULT is 0xbadbeef.
  '{ op: cpu_write, proc: p, addr: buf, length: 4, data: { bytes: [0xef, 0xbe, 0xad, 0x0b] } }',
  '{ op: iommufd_open, proc: p, save: fd }',
  '{ op: IOMMU_IOAS_ALLOC, fd: fd, save: ioas }',
  '{ op: IOMMU_TEST_OP_MOCK_DOMAIN, fd: fd, id: ioas, save: { out_stdev_id: stdev, out_idev_id: idev } }',
  '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: ioas, flags: [NEST_PARENT], save: parent }',
];

test('a fault queue by uAPI name: allocate, route, trigger, read, respond', () => {
  const report = run([
    ...SETUP,
    '{ op: IOMMU_FAULT_QUEUE_ALLOC, fd: fd, flags: 1, expect: { errno: EOPNOTSUPP } }',
    '{ op: IOMMU_FAULT_QUEUE_ALLOC, fd: fd, save: { out_fault_id: fault, out_fault_fd: ffd } }',
    // A nested HWPT needs its driver data; then its faults go to the queue.
    '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: parent, flags: [FAULT_ID_VALID], fault_id: fault, expect: { errno: EOPNOTSUPP } }',
    '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: parent, flags: [FAULT_ID_VALID], data_type: 0xdead, data_len: 4, data_uptr: buf, fault_id: ioas, expect: { errno: ENOENT } }',
    '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: parent, flags: [FAULT_ID_VALID], data_type: 0xdead, data_len: 4, data_uptr: buf, fault_id: fault, save: iopf }',
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: iopf }',
    '{ op: fault_read, fd: ffd, expect: { ret: 0, faults: 0 } }',
    '{ op: IOMMU_TEST_OP_TRIGGER_IOPF, fd: fd, dev_id: idev, grpid: 7, perm: 1, addr: 0x1000 }',
    '{ op: IOMMU_TEST_OP_TRIGGER_IOPF, fd: fd, dev_id: idev, grpid: 8, perm: 1, addr: 0x2000 }',
    // Reads take whole records.
    '{ op: fault_read, fd: ffd, count: 39, expect: { errno: ESPIPE } }',
    '{ op: fault_read, fd: ffd, count: 40, expect: { ret: 40, faults: 1 }, save: c1 }',
    '{ op: fault_read, fd: ffd, expect: { ret: 40, faults: 1 }, save: c2 }',
    '{ op: fault_respond, fd: ffd, cookie: c1, code: 5, expect: { errno: EINVAL } }',
    '{ op: fault_respond, fd: ffd, cookie: c1, count: 7, expect: { errno: ESPIPE } }',
    '{ op: fault_respond, fd: ffd, cookie: c1, expect: { ret: 8 } }',
    '{ op: fault_respond, fd: ffd, cookie: c1, expect: { errno: EINVAL } }',
    // Two responses with one cookie: the first is taken, the second refused, 8 bytes consumed.
    '{ op: fault_respond, fd: ffd, cookie: c2, code: 1, count: 16, expect: { ret: 8 } }',
    '{ op: fault_read, fd: fd, expect: { errno: EINVAL } }',
    '{ op: fault_read, fd: 99, expect: { errno: EBADF } }',
    // The queue is busy while a HWPT uses it.
    '{ op: IOMMU_DESTROY, fd: fd, id: fault, expect: { errno: EBUSY } }',
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: ioas }',
    '{ op: IOMMU_DESTROY, fd: fd, id: iopf }',
    '{ op: close, fd: ffd }',
    '{ op: IOMMU_DESTROY, fd: fd, id: fault }',
    '{ op: iommufd_close, fd: fd }',
    'op: check',
  ]);
  assert.ok(report.ok, failed(report));
});

test('a vEVENTQ by uAPI name: events, the lost-events header, sequence numbers', () => {
  const report = run([
    ...SETUP,
    '{ op: IOMMU_VIOMMU_ALLOC, fd: fd, dev_id: idev, hwpt_id: parent, type: 0xdeadbeef, save: viommu }',
    '{ op: IOMMU_VEVENTQ_ALLOC, fd: fd, viommu_id: viommu, type: 0xbeefbeef, veventq_depth: 2, save: { out_veventq_id: vq, out_veventq_fd: vfd } }',
    '{ op: IOMMU_VDEVICE_ALLOC, fd: fd, viommu_id: viommu, dev_id: idev, virt_id: 0x99 }',
    '{ op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: viommu, data_type: 0xdead, data_len: 4, data_uptr: buf, save: nested }',
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: nested }',
    '{ op: veventq_read, fd: vfd, expect: { ret: 0, events: 0 } }',
    '{ op: IOMMU_TEST_OP_TRIGGER_VEVENT, fd: fd, dev_id: idev }',
    '{ op: IOMMU_TEST_OP_TRIGGER_VEVENT, fd: fd, dev_id: idev }',
    '{ op: IOMMU_TEST_OP_TRIGGER_VEVENT, fd: fd, dev_id: idev }',
    // Too small for one event: nothing read.
    '{ op: veventq_read, fd: vfd, count: 8, expect: { ret: 0 } }',
    '{ op: veventq_read, fd: vfd, count: 12, expect: { ret: 12, events: 1, flags: 0, sequence: 0 } }',
    // The second event, then the lost-events header (the third did not fit a depth of 2).
    '{ op: veventq_read, fd: vfd, expect: { ret: 20, events: 2, sequence: 1 } }',
    '{ op: veventq_read, fd: vq, expect: { errno: EBADF } }',
    '{ op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: ioas }',
    '{ op: iommufd_close, fd: fd }',
    'op: check',
  ]);
  assert.ok(report.ok, failed(report));
});

test('IOMMU_GET_HW_INFO by uAPI name: the type asked for, and the copy to data_uptr', () => {
  const report = run([
    ...SETUP,
    // IOMMU_HW_INFO_TYPE_SELFTEST is 0xfeedbeef; the mock has no other.
    '{ op: IOMMU_GET_HW_INFO, fd: fd, dev_id: idev, expect: { out_data_type: 0xfeedbeef, data_len: 8 } }',
    '{ op: IOMMU_GET_HW_INFO, fd: fd, dev_id: idev, flags: [INPUT_TYPE], in_data_type: 1, expect: { errno: EOPNOTSUPP } }',
    '{ op: IOMMU_GET_HW_INFO, fd: fd, dev_id: idev, flags: 2, expect: { errno: EOPNOTSUPP } }',
    '{ op: IOMMU_GET_HW_INFO, fd: fd, dev_id: ioas, expect: { errno: ENOENT } }',
    // Data wanted but nowhere to put it, or at an address not mapped.
    '{ op: IOMMU_GET_HW_INFO, fd: fd, dev_id: idev, data_len: 8, expect: { errno: EFAULT } }',
    '{ op: IOMMU_GET_HW_INFO, fd: fd, dev_id: idev, data_len: 8, data_uptr: 0x10000, expect: { errno: EFAULT } }',
    // The buffer is larger than the data: the rest is cleared, up to the end of the mapping.
    '{ op: cpu_write, proc: p, addr: buf, length: 8KiB, data: { fill: 0xaa } }',
    '{ op: IOMMU_GET_HW_INFO, fd: fd, dev_id: idev, data_len: 16, data_uptr: buf, expect: { data_len: 8 } }',
    '{ op: cpu_read, proc: p, addr: buf, length: 20, expect: { data: { bytes: [0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa] } } }',
    '{ op: IOMMU_GET_HW_INFO, fd: fd, dev_id: idev, data_len: 8KiB, data_uptr: buf+4KiB, expect: { errno: EFAULT } }',
    '{ op: iommufd_close, fd: fd }',
    'op: check',
  ]);
  assert.ok(report.ok, failed(report));
});
