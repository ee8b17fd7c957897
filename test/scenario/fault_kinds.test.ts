/**
 * Fault kinds: every CPU fault's span is named after the handler it took (trace.ts FAULT_KINDS),
 * and `runScenario({ faults: true })` lists each step's faults by kind, as `hetmem run --json` does.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FAULT_KINDS } from '../../src/kernel/trace.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario, type StepReport } from '../../src/scenario/runner.ts';

/** The fault runs of every step, as `op@index: kind xN [major]`. */
function faultsOf(text: string, file = 'faults.yaml'): string[] {
  const { report } = runScenario(parseScenarioText(text, file), kernel(), { faults: true });
  assert.ok(report.ok, JSON.stringify(report.steps.filter((s) => !s.ok)));
  return report.steps.flatMap((s: StepReport) =>
    (s.faults ?? []).map(
      (f) => `${s.op}@${s.index}: ${f.kind ?? 'none'} x${f.pages}${f.major ? ' major' : ''}`,
    ),
  );
}

/** A THP faulted in, then written by a forked child (a hugetlb pool too, for the tests that add one). */
const THP_AFTER_FORK = `version: 1
system: { ram: 64MiB, swap: 0, thp: always, hugetlb_pages: 4 }
processes: [p]
steps:
  - { op: mmap, proc: p, length: 4MiB, prot: [read, write], flags: [private, anonymous], save: t }
  - { op: cpu_write, proc: p, addr: t+2MiB, length: 4KiB, data: { fill: 1 } }
  - { op: fork, proc: p, child: c }
  - { op: cpu_write, proc: c, addr: t+2MiB, length: 4KiB, data: { fill: 2 } }
`;

const example = (name: string): string => readFileSync(`examples/${name}.yaml`, 'utf8');

describe('fault kinds', () => {
  it('fork-cow: first touch, COW copy and reuse', () => {
    assert.deepEqual(faultsOf(example('fork-cow')), [
      'cpu_write@1: anon x8',
      'cpu_write@6: cow x1',
      'cpu_write@10: wp_reuse x1',
    ]);
  });

  it('swap-out-in: a swap-in is a major fault', () => {
    const f = faultsOf(example('swap-out-in'));
    assert.ok(f.includes('cpu_write@1: anon x4'), f.join('\n'));
    assert.ok(
      f.some((x) => /: swapin x\d major$/.test(x)),
      f.join('\n'),
    );
    assert.ok(!f.some((x) => x.includes('anon') && x.includes('major')));
  });

  it('device memory: migrate_to_ram and device-exclusive restore', () => {
    assert.ok(faultsOf(example('dmirror-migrate-round-trip')).some((x) => x.includes('device_private')));
    assert.ok(faultsOf(example('dmirror-exclusive')).some((x) => x.includes('device_exclusive')));
  });

  it('zero page, file read / COW / shared, shmem swap-in', () => {
    const f = faultsOf(`version: 1
system: { ram: 16MiB, swap: 16MiB }
processes: [p]
steps:
  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [private, anonymous], save: a }
  - { op: cpu_read, proc: p, addr: a, length: 4KiB }
  - { op: cpu_write, proc: p, addr: a, length: 4KiB, data: { fill: 1 } }
  - { op: memfd_create, save: mfd }
  - { op: ftruncate, fd: mfd, length: 16KiB }
  - { op: mmap, proc: p, length: 16KiB, prot: [read, write], flags: [shared], fd: mfd, save: s }
  - { op: cpu_read, proc: p, addr: s, length: 4KiB }
  - { op: cpu_write, proc: p, addr: s+4KiB, length: 4KiB, data: { fill: 2 } }
  - { op: mmap, proc: p, length: 16KiB, prot: [read, write], flags: [private], fd: mfd, save: v }
  - { op: cpu_write, proc: p, addr: v+8KiB, length: 4KiB, data: { fill: 3 } }
  - { op: madvise, proc: p, addr: s+4KiB, length: 4KiB, advice: pageout }
  - { op: cpu_read, proc: p, addr: s+4KiB, length: 4KiB, expect: { data: { fill: 2 } } }
`);
    assert.deepEqual(f, [
      'cpu_read@1: zero_page x1',
      'cpu_write@2: cow x1',
      'cpu_read@6: file_read x1',
      'cpu_write@7: file_shared x1',
      'cpu_write@9: file_cow x1',
      'cpu_read@11: file_read x1 major',
    ]);
  });

  it('THP and hugetlb: PMD faults, the split fallback, hugetlb_no_page and hugetlb_wp', () => {
    const f =
      faultsOf(`${THP_AFTER_FORK}  - { op: mmap, proc: p, length: 2MiB, prot: [read, write], flags: [private, anonymous, hugetlb], save: h }
  - { op: cpu_write, proc: p, addr: h, length: 4KiB, data: { fill: 3 } }
  - { op: fork, proc: p, child: d }
  - { op: cpu_write, proc: d, addr: h, length: 4KiB, data: { fill: 4 } }
`);
    assert.deepEqual(f, [
      'cpu_write@1: pmd_anon x1',
      'cpu_write@3: cow x1',
      'cpu_write@5: hugetlb x1',
      'cpu_write@7: hugetlb_wp x1',
    ]);
  });

  it('a THP write after fork is named by the PTE handler it fell back to, its path kept', () => {
    const { ctx } = runScenario(parseScenarioText(THP_AFTER_FORK, 'thp.yaml'), kernel(), { trace: true });
    const spans = ctx.sys.trace.events.filter((e) => e.cat === 'fault' && e.ph === 'B');
    assert.deepEqual(
      spans.map((e) => [e.name, e.args?.kind, e.args?.path]),
      [
        [FAULT_KINDS.pmd_anon, 'pmd_anon', undefined],
        [FAULT_KINDS.cow, 'cow', 'pmd_wp > cow'],
      ],
    );
    const ends = ctx.sys.trace.events.filter((e) => e.cat === 'fault' && e.ph === 'E');
    assert.deepEqual(
      ends.map((e) => e.args?.kind),
      ['pmd_anon', 'cow'],
      'every span is closed, with its kind',
    );
  });

  it('events are dropped after each step when only the faults are wanted', () => {
    const { ctx, report } = runScenario(parseScenarioText(example('fork-cow'), 'f.yaml'), kernel(), {
      faults: true,
    });
    assert.equal(ctx.sys.trace.events.length, 0);
    assert.equal(report.steps.filter((s) => s.faults !== undefined).length, 3);
  });
});
