/** Scenario text run in-process, as the tests of single model paths need it. */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
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
