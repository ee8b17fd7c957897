/** Scenario text run in-process, as the tests of single model paths need it. */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { explore } from '../../src/node/explore/index.ts';
import type { ExploreResult } from '../../src/sched/explore/index.ts';
import { targetFromParsed } from '../../src/scenario/explore_target.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { type RunReport, runScenario } from '../../src/scenario/runner.ts';

/** The path inline scenarios are reported under (relative paths in them resolve beside it). */
export const INLINE_FILE = fileURLToPath(new URL('../fixtures/inline.yaml', import.meta.url));

/** Runs `text` and asserts no oracle fired and every step did what it expects; returns the report. */
export function runClean(text: string): RunReport {
  const { report } = runScenario(parseScenarioText(text, INLINE_FILE), kernel());
  assert.deepEqual(
    report.violations.map((v) => `${v.oracle}: ${v.message}`),
    [],
  );
  assert.ok(report.ok, JSON.stringify(report.steps.filter((s) => !s.ok)));
  return report;
}

/**
 * Explores the threads of `text` depth-first from seed 1 and asserts the search found nothing and
 * exhausted its bound within `budget` schedules; returns the result.
 */
export function exploreClean(text: string, budget: number, preemptionBound?: number): ExploreResult {
  const r = explore(targetFromParsed(parseScenarioText(text, INLINE_FILE), kernel()), {
    strategy: 'dfs',
    seed: 1,
    budget: { schedules: budget },
    ...(preemptionBound === undefined ? {} : { preemptionBound }),
  });
  assert.equal(r.violation, null, r.violation?.message);
  assert.ok(r.exhausted, 'every interleaving ran');
  assert.ok(r.schedules > 1);
  return r;
}

/**
 * The start of a scenario whose RAM is full of anonymous pages, with a memfd `mfd`: a write to the
 * file allocates through reclaim, which yields part way.
 */
export const RAM_FULL_WITH_MEMFD = `version: 1
system: { ram: 8MiB, swap: 16MiB }
processes: [p]
setup:
  - { op: mmap, proc: p, length: 8MiB, prot: [read, write], flags: [private, anonymous], save: buf }
  - { op: cpu_write, proc: p, addr: buf, length: 8MiB, data: { fill: 1 } }
  - { op: memfd_create, save: mfd }
`;
