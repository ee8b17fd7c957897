import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText, ScenarioError } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';

function errorOf(text: string): ScenarioError {
  try {
    parseScenarioText(text, 'x.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  assert.fail('expected a ScenarioError');
}

describe('scenario parser', () => {
  it('accepts every value form of the contract', () => {
    const p = parseScenarioText(
      [
        'version: 1',
        'system: { ram: 512MiB, swap: 0, rlimit_memlock: 64MiB }',
        'devices: { gpu0: { type: dmirror, memory: private }, mock0: { type: iommufd_mock } }',
        'processes: [p]',
        'steps:',
        '  - { op: mmap, proc: p, length: 4MiB, prot: [read, write], flags: [private, anonymous], save: buf }',
        '  - { op: cpu_write, proc: p, addr: buf, length: 4MiB, data: { pattern: index32 } }',
        '  - { op: dmirror_open, device: gpu0, proc: p, save: fd0 }',
        '  - { op: HMM_DMIRROR_MIGRATE_TO_DEV, fd: fd0, addr: buf, npages: 1024, expect: { ret: 0, cpages: 1024 } }',
        '  - { op: HMM_DMIRROR_SNAPSHOT, fd: fd0, addr: buf, npages: 2, expect: { bytes: [DEV_PRIVATE_LOCAL|WRITE*2] } }',
        '  - { op: cpu_read, proc: p, addr: "buf+2MiB", length: 4KiB, expect: { data: { pattern: index32, offset: 2MiB } } }',
        '  - { op: iommufd_open, proc: p, save: iofd }',
        '  - { op: IOMMU_IOAS_ALLOC, fd: iofd, save: { out_ioas_id: ioas } }',
        '  - { op: IOMMU_IOAS_MAP, fd: iofd, ioas_id: ioas, user_va: buf, length: 1MiB, save: iova }',
        '  - { op: IOMMU_IOAS_UNMAP, fd: iofd, ioas_id: ioas, iova: iova, length: 1MiB, expect: { any: [ { length: 1MiB }, { errno: EBUSY } ] } }',
        '  - { op: expect_stats, proc: p, pinned_vm: 16KiB }',
        '  - { op: check }',
      ].join('\n'),
      'x.yaml',
    );
    assert.equal(p.scenario.steps?.length, 12);
    assert.deepEqual(p.position(['steps', 1, 'addr']), { line: 7, col: 37 });
  });

  it('reads YAML integers above 2^53 exactly; sizes above 2^53 and values above 2^64 - 1 are refused', () => {
    const text = (step: string): string =>
      [
        'version: 1',
        'processes: [p]',
        'steps:',
        '  - { op: iommufd_open, proc: p, save: iofd }',
        '  - { op: IOMMU_IOAS_ALLOC, fd: iofd, save: ioas }',
        step,
      ].join('\n');
    const unmapAll = parseScenarioText(
      text('  - { op: IOMMU_IOAS_UNMAP, fd: iofd, ioas_id: ioas, iova: 0, length: 18446744073709551615 }'),
      'x.yaml',
    );
    assert.equal((unmapAll.scenario.steps?.[2] as Record<string, unknown>).length, 2n ** 64n - 1n);
    const hex = parseScenarioText(
      text(
        '  - { op: IOMMU_IOAS_UNMAP, fd: iofd, ioas_id: ioas, iova: 0x20000000000001, length: 0xffffffffffffffff }',
      ),
      'x.yaml',
    );
    const step = hex.scenario.steps?.[2] as Record<string, unknown>;
    assert.equal(step.iova, 2n ** 53n + 1n);
    assert.equal(step.length, 2n ** 64n - 1n);
    // An address above 2^53 is taken, and the syscall fails as the kernel's does; a size above
    // 2^53 and a value above 2^64 - 1 are refused at their line.
    const big = parseScenarioText(
      text('  - { op: munmap, proc: p, addr: 0x8000000000000001, length: 4KiB, expect: { errno: EINVAL } }'),
      'x.yaml',
    );
    assert.equal((big.scenario.steps?.[2] as Record<string, unknown>).addr, 2n ** 63n + 1n);
    const { report } = runScenario(big, kernel());
    assert.ok(report.ok, JSON.stringify(report.steps.filter((st) => !st.ok)));
    assert.equal(errorOf(text('  - { op: mmap, proc: p, length: 9007199254740993 }')).line, 6);
    assert.equal(errorOf(text('  - { op: munmap, proc: p, addr: 0x10000000000000000, length: 1 }')).line, 6);
  });

  it('thread scenarios bind names per thread and in final', () => {
    const e = errorOf(
      [
        'version: 1',
        'processes: [p]',
        'setup: [ { op: mmap, proc: p, length: 4KiB, prot: [read], flags: [private, anonymous], save: buf } ]',
        'threads:',
        '  a: [ { op: cpu_read, proc: p, addr: buf, length: 4 } ]',
        '  b: [ { op: cpu_read, proc: p, addr: other, length: 4 } ]',
      ].join('\n'),
    );
    assert.equal(e.line, 6);
    assert.match(e.message, /unbound name 'other'/);
  });

  it('rejects expectations of outputs an op does not have', () => {
    const e = errorOf(
      ['version: 1', 'processes: [p]', 'steps:', '  - { op: exit, proc: p, expect: { cpages: 1 } }'].join(
        '\n',
      ),
    );
    assert.equal(e.line, 4);
    assert.match(e.message, /'cpages' is not an output of exit/);
  });

  it('needs steps or threads', () => {
    assert.match(errorOf('version: 1\n').message, /needs 'steps'/);
  });
});
