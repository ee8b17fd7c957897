/**
 * Every scenario of examples/races/ declares its outcome, and exploring it with the CLI's defaults
 * (pct, seed 1, at most 1,000 schedules) gives exactly that outcome. A clean one is capped at 300
 * schedules here, to keep the suite short; a found one stops at its first violation.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { judgeOutcome } from '../../src/scenario/outcome.ts';
import { parseScenarioFile } from '../../src/scenario/parse.ts';
import { exploreRace, RACES } from './helpers.ts';

const NAMES = readdirSync(RACES)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

describe('race corpus: declared outcomes', () => {
  it('has at least ten scenarios, every one with a declaration', () => {
    assert.ok(NAMES.length >= 10, NAMES.join(', '));
    for (const n of NAMES) {
      assert.ok(
        parseScenarioFile(`${RACES}${n}.yaml`).scenario.explore !== undefined,
        `${n} declares nothing`,
      );
    }
  });

  for (const name of NAMES) {
    it(`${name}: exploring gives the declared outcome`, async () => {
      const declared = parseScenarioFile(`${RACES}${name}.yaml`).scenario.explore;
      const schedules = declared?.expect === 'found' ? 1000 : 300;
      const r = await exploreRace(name, { strategy: 'pct', seed: 1, budget: { schedules } });
      const j = judgeOutcome(declared, r.violation);
      assert.ok(j.matched, `${j.reason}${r.violation !== null ? `: ${r.violation.message}` : ''}`);
    });
  }
});
