/** The `setrlimit` step and the data_vm / stack_vm / exec_vm / pgtables counters of `expect_stats`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText, ScenarioError } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';
import { INLINE_FILE, runClean } from './helpers.ts';

describe('the setrlimit op', () => {
  it('limits private writable memory with data, keeps the hard limit when max is left out, and refuses raising it', () => {
    const report = runClean(`version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
steps:
  - { op: setrlimit, proc: p, resource: data, cur: 64KiB, max: 1MiB, expect: { ret: 0 } }
  - { op: mmap, proc: p, length: 64KiB, prot: [read, write], flags: [private, anonymous], save: a }
  - { op: mmap, proc: p, length: 4KiB, prot: [read, write], flags: [private, anonymous], expect: { errno: ENOMEM } }
  - { op: mmap, proc: p, length: 8KiB, prot: [read, exec], flags: [private, anonymous] }
  - { op: mmap, proc: p, length: 16KiB, prot: [read, write], flags: [private, anonymous, growsdown] }
  - { op: expect_stats, proc: p, data_vm: 64KiB, exec_vm: 2, stack_vm: 16KiB, total_vm: 22 }
  - { op: setrlimit, proc: p, resource: data, cur: 68KiB, expect: { ret: 0 } }
  - { op: mmap, proc: p, length: 4KiB, prot: [read, write], flags: [private, anonymous] }
  - { op: setrlimit, proc: p, resource: data, cur: unlimited, expect: { errno: EINVAL } }
  - { op: setrlimit, proc: p, resource: data, cur: 1MiB, max: unlimited, expect: { errno: EPERM } }
  - { op: setrlimit, proc: p, resource: as, cur: 88KiB, expect: { ret: 0 } }
  - { op: mmap, proc: p, length: 4KiB, prot: [none], flags: [private, anonymous], expect: { errno: ENOMEM } }
`);
    assert.deepEqual(
      report.steps.filter((s) => s.op === 'setrlimit').map((s) => s.ret),
      [0, 0, -22, -1, 0],
    );
  });

  it('refuses an unknown resource and a value that is not a size, at its position', () => {
    for (const [bad, col] of [
      ['resource: nofile, cur: 1', 41],
      ['resource: as, cur: lots', 50],
    ] as const) {
      assert.throws(
        () =>
          parseScenarioText(
            `version: 1
processes: [p]
steps:
  - { op: setrlimit, proc: p, ${bad} }
`,
            INLINE_FILE,
          ),
        (e: unknown) => e instanceof ScenarioError && e.line === 4 && e.col === col,
      );
    }
  });
});

describe('expect_stats pgtables (VmPTE)', () => {
  const scenario = (want: string): string => `version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
steps:
  - { op: mmap, proc: p, length: 64KiB, prot: [read, write], flags: [private, anonymous], save: a }
  - { op: expect_stats, proc: p, pgtables: 0 }
  - { op: cpu_write, proc: p, addr: a, length: 1, data: { fill: 1 } }
  - { op: expect_stats, proc: p, pgtables: ${want} }
`;

  it('counts the PUD, PMD and PTE tables a first write allocates', () => {
    runClean(scenario('12KiB'));
    runClean(scenario('3'));
  });

  it('fails a step that expects another count', () => {
    const { report } = runScenario(parseScenarioText(scenario('2'), INLINE_FILE), kernel());
    assert.equal(report.ok, false);
    assert.deepEqual(report.steps.filter((st) => st.op === 'expect_stats').at(-1)?.failures, [
      'pgtables is 3 pages, expected 2',
    ]);
  });
});
