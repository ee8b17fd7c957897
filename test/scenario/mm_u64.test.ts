/**
 * Scenario files pass any u64 to the mm syscalls (YAML integers above 2^53, 0x hex and decimal
 * strings), and the model answers with the kernel's errno; each expectation was checked against a
 * live Linux 6.18 kernel (test/kernel/mm/syscalls_u64.test.ts has the reasons, call by call).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText, ScenarioError } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';

const HEAD = [
  'version: 1',
  'processes: [p]',
  'steps:',
  '  - { op: mmap, proc: p, addr: 0x600000000000, length: 1MiB, prot: [read, write], flags: [private, anonymous, fixed_noreplace], save: buf }',
];

function run(steps: string[]): void {
  const text = [...HEAD, ...steps.map((s) => `  - ${s}`), ''].join('\n');
  const { report } = runScenario(parseScenarioText(text, 'mm-u64.yaml'), kernel());
  assert.ok(report.ok, JSON.stringify(report.steps.filter((s) => !s.ok)));
}

test('mmap with u64 lengths, addresses and offsets', () => {
  run([
    // PAGE_ALIGN() wraps to 0, or the length is above TASK_SIZE: -ENOMEM, before the type check.
    '{ op: mmap, proc: p, length: 0xffffffffffffffff, prot: [read], flags: [private, anonymous], expect: { errno: ENOMEM } }',
    '{ op: mmap, proc: p, length: 18446744073709547520, prot: [read], flags: [private, anonymous], expect: { errno: ENOMEM } }',
    '{ op: mmap, proc: p, length: 0x8000000000000000, prot: [read], flags: 0x2f, expect: { errno: ENOMEM } }',
    '{ op: mmap, proc: p, length: 9007199254740993, prot: [read], flags: [private, anonymous], expect: { errno: ENOMEM } }',
    '{ op: mmap, proc: p, length: 0x800000000000, prot: [read], flags: [private, anonymous], expect: { errno: ENOMEM } }',
    // hugetlb aligns to 2 MiB first; wrapping to 0 is an empty mapping.
    '{ op: mmap, proc: p, length: 0xfffffffffffff000, prot: [read], flags: [private, anonymous, hugetlb], expect: { errno: EINVAL } }',
    '{ op: mmap, proc: p, length: 0xffffffffffe00000, prot: [read], flags: [private, anonymous, hugetlb], expect: { errno: ENOMEM } }',
    // A MAP_FIXED address of 2^64 - 1 is the error pointer -EPERM; others past TASK_SIZE -ENOMEM.
    '{ op: mmap, proc: p, addr: 0xffffffffffffffff, length: 4KiB, prot: [read], flags: [private, anonymous, fixed], expect: { errno: EPERM } }',
    '{ op: mmap, proc: p, addr: 0xfffffffffffff000, length: 4KiB, prot: [read], flags: [private, anonymous, fixed], expect: { errno: ENOMEM } }',
    '{ op: mmap, proc: p, addr: 9007199254740993, length: 4KiB, prot: [read], flags: [private, anonymous, fixed], expect: { errno: ENOMEM } }',
    '{ op: mmap, proc: p, addr: 0x7ffffffff000, length: 4KiB, prot: [read], flags: [private, anonymous, fixed], expect: { errno: ENOMEM } }',
    // A hint beyond the user space is ignored.
    '{ op: mmap, proc: p, addr: 0x8000000000000000, length: 4KiB, prot: [read], flags: [private, anonymous], save: hinted }',
    '{ op: mmap, proc: p, length: 4KiB, prot: [read], flags: [private, anonymous], offset: 0xffffffffffffffff, expect: { errno: EINVAL } }',
    '{ op: mmap, proc: p, length: 4KiB, prot: [read], flags: [private, anonymous], offset: 0xfffffffffffff000, save: anon_off }',
  ]);
});

test('munmap, mprotect and madvise with u64 lengths and addresses', () => {
  run([
    '{ op: munmap, proc: p, addr: buf, length: 0xffffffffffffffff, expect: { errno: EINVAL } }',
    '{ op: munmap, proc: p, addr: 0xfffffffffffff000, length: 4KiB, expect: { errno: EINVAL } }',
    '{ op: munmap, proc: p, addr: buf, length: 0x7ffffffff000, expect: { errno: EINVAL } }',
    // The aligned length wraps to 0, or start + length wraps: -ENOMEM.
    '{ op: mprotect, proc: p, addr: buf, length: 0xffffffffffffffff, prot: [read], expect: { errno: ENOMEM } }',
    '{ op: mprotect, proc: p, addr: 0xfffffffffffff000, length: 4KiB, prot: [read], expect: { errno: ENOMEM } }',
    '{ op: mprotect, proc: p, addr: 9007199254740993, length: 4KiB, prot: [read], expect: { errno: EINVAL } }',
    // No wrap: the mapping changes, then the hole above it is -ENOMEM.
    '{ op: mprotect, proc: p, addr: buf, length: "0x8000000000000000", prot: [read], expect: { errno: ENOMEM } }',
    '{ op: cpu_write, proc: p, addr: buf, data: { fill: 1 }, length: 1, expect: { errno: EFAULT } }',
    '{ op: madvise, proc: p, addr: buf, length: 0xffffffffffffffff, advice: normal, expect: { errno: EINVAL } }',
    '{ op: madvise, proc: p, addr: buf, length: 0xfffffffffffff000, advice: normal, expect: { errno: EINVAL } }',
    '{ op: madvise, proc: p, addr: buf, length: 9223372036854775808, advice: normal, expect: { errno: ENOMEM } }',
    '{ op: madvise, proc: p, addr: 0x8000000000000000, length: 4KiB, advice: dontneed, expect: { errno: ENOMEM } }',
    '{ op: madvise, proc: p, addr: 0xfffffffffffff000, length: 4KiB, advice: dontneed, expect: { errno: EINVAL } }',
  ]);
});

test('mremap with u64 lengths and addresses', () => {
  run([
    '{ op: mremap, proc: p, addr: buf, length: 0x8000000000000000, new_length: 4KiB, expect: { errno: EINVAL } }',
    '{ op: mremap, proc: p, addr: buf, length: 0xffffffffffffffff, new_length: 4KiB, flags: [maymove], expect: { errno: EINVAL } }',
    '{ op: mremap, proc: p, addr: buf, length: 4KiB, new_length: 0xffffffffffffffff, flags: [maymove], expect: { errno: EINVAL } }',
    '{ op: mremap, proc: p, addr: buf, length: 4KiB, new_length: 0x7ffffffff000, flags: [maymove], expect: { errno: ENOMEM } }',
    '{ op: mremap, proc: p, addr: 0xfffffffffffff000, length: 4KiB, new_length: 8KiB, flags: [maymove], expect: { errno: EFAULT } }',
    '{ op: mremap, proc: p, addr: 9007199254740993, length: 4KiB, new_length: 8KiB, flags: [maymove], expect: { errno: EINVAL } }',
    '{ op: mremap, proc: p, addr: buf, length: 4KiB, new_length: 4KiB, flags: [maymove, fixed], new_addr: 0x8000000000000000, expect: { errno: EINVAL } }',
  ]);
});

test('a field that takes no u64 says what it takes when given an integer above 2^53', () => {
  const text = [...HEAD, '  - { op: cpu_read, proc: p, addr: buf, length: 9007199254740993 }', ''].join('\n');
  assert.throws(
    () => parseScenarioText(text, 'big.yaml'),
    (e: unknown) =>
      e instanceof ScenarioError &&
      /^big\.yaml:5:\d+: field 'length': 9007199254740993 \(0x20000000000001, above 2\^53\) is too large for this field, which takes integers up to 2\^53 - 1 \(9007199254740991\); only u64 fields/.test(
        e.oneLine,
      ),
  );
});
