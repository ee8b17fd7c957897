import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';

test('a scenario maps, saves and unmaps IOVAs above 2^53 exactly, and unmaps all with length 0xffffffffffffffff', () => {
  const text = [
    'version: 1',
    'processes: [p]',
    'steps:',
    '  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [private, anonymous], save: buf }',
    '  - { op: iommufd_open, proc: p, save: fd }',
    '  - { op: IOMMU_IOAS_ALLOC, fd: fd, save: ioas }',
    '  - { op: IOMMU_IOAS_MAP, fd: fd, ioas_id: ioas, user_va: buf, length: 4KiB, iova: 0x8000000000001000, save: hi }',
    '  - { op: IOMMU_IOAS_MAP, fd: fd, ioas_id: ioas, user_va: buf, length: 4KiB, iova: "hi+4KiB", expect: { ret: 0, iova: 0x8000000000002000 } }',
    '  - { op: IOMMU_IOAS_MAP, fd: fd, ioas_id: ioas, user_va: buf, length: 4KiB, iova: 9007199254740992 }',
    '  - { op: IOMMU_IOAS_MAP, fd: fd, ioas_id: ioas, user_va: buf, length: 4KiB, iova: 0xfffffffffffff000 }',
    '  - { op: IOMMU_IOAS_MAP, fd: fd, ioas_id: ioas, user_va: buf, length: 8KiB, iova: 0xfffffffffffff000, expect: { errno: EOVERFLOW } }',
    '  - { op: IOMMU_IOAS_UNMAP, fd: fd, ioas_id: ioas, iova: hi, length: 0x1000, expect: { ret: 0, length: 4096 } }',
    '  - { op: IOMMU_IOAS_UNMAP, fd: fd, ioas_id: ioas, iova: 9007199254740993, length: 4KiB, expect: { errno: ENOENT } }',
    '  - { op: IOMMU_IOAS_UNMAP, fd: fd, ioas_id: ioas, iova: 0, length: 0xffffffffffffffff, expect: { ret: 0, length: 12KiB } }',
    '  - { op: IOMMU_IOAS_UNMAP, fd: fd, ioas_id: ioas, iova: 0, length: 18446744073709551615, expect: { ret: 0, length: 0 } }',
    '',
  ].join('\n');
  const { report } = runScenario(parseScenarioText(text, 'u64.yaml'), kernel());
  assert.ok(report.ok, JSON.stringify(report.steps.filter((s) => !s.ok)));
});
