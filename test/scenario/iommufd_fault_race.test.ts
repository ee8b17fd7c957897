/**
 * The fault queue's deliver list under eventq->lock (drivers/iommu/iommufd/eventq.c): a page fault
 * reported, a read of the queue and the device leaving the HWPT (iommufd_auto_response_faults())
 * race, with every oracle after every step. The mock device drains nothing when it leaves, so a
 * report already past its handle lookup may still queue on the old HWPT's queue after the
 * automatic responses, as in the kernel: that request is answered when the queue is destroyed.
 * Run in order, the request is answered once, INVALID, by the automatic response.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { explore } from '../../src/node/explore/index.ts';
import { targetFromParsed } from '../../src/scenario/explore_target.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';

const FILE = fileURLToPath(new URL('../fixtures/inline.yaml', import.meta.url));

const TEXT = `version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
setup:
  - { op: mmap, proc: p, length: 4KiB, prot: [read, write], flags: [private, anonymous], save: buf }
  - { op: cpu_write, proc: p, addr: buf, length: 4, data: { bytes: [0xef, 0xbe, 0xad, 0x0b] } }
  - { op: iommufd_open, proc: p, save: fd }
  - { op: IOMMU_IOAS_ALLOC, fd: fd, save: ioas }
  - { op: IOMMU_TEST_OP_MOCK_DOMAIN, fd: fd, id: ioas, save: { out_stdev_id: stdev, out_idev_id: idev } }
  - { op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: ioas, flags: [NEST_PARENT], save: parent }
  - { op: IOMMU_FAULT_QUEUE_ALLOC, fd: fd, save: { out_fault_id: fault, out_fault_fd: ffd } }
  - { op: IOMMU_HWPT_ALLOC, fd: fd, dev_id: idev, pt_id: parent, flags: [FAULT_ID_VALID], data_type: 0xdead, data_len: 4, data_uptr: buf, fault_id: fault, save: iopf }
  - { op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: iopf }
threads:
  fault:
    - { op: IOMMU_TEST_OP_TRIGGER_IOPF, fd: fd, dev_id: idev, grpid: 1, perm: 1, addr: 0x1000 }
  reader:
    - { op: fault_read, fd: ffd, count: 40 }
  detach:
    - { op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, fd: fd, id: stdev, pt_id: ioas }
`;

describe('fault queue: report, read and automatic response race', () => {
  it('every interleaving answers the one page request once', () => {
    const parsed = parseScenarioText(TEXT, FILE);
    const r = explore(targetFromParsed(parsed, kernel()), {
      strategy: 'dfs',
      seed: 1,
      budget: { schedules: 3000 },
    });
    assert.equal(r.violation, null, r.violation?.message);
    assert.ok(r.schedules > 10, `${r.schedules} schedules`);
  });

  it('in order (report, read, leave) the request is answered once, INVALID', () => {
    const text = TEXT.replace(/threads:\n {2}fault:\n/, 'steps:\n')
      .replace('\n  reader:\n', '\n')
      .replace('\n  detach:\n', '\n')
      .concat('    - { op: expect_stats, counters: { iopf.response.error: 1 } }\n');
    const { report } = runScenario(parseScenarioText(text, FILE), kernel());
    assert.ok(report.ok, JSON.stringify(report.steps.filter((x) => !x.ok)));
  });
});
