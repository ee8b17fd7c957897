/**
 * DPOR over workers on the race corpus: the search split at its first choice points
 * (`--workers N` with the default DPOR, src/node/explore/pardpor.ts) gives every scenario its
 * declared outcome, as the one-thread search does. What the workers report is what
 * searchSubtrees() reports for the same prefixes in one thread (test/sched/explore/pardpor.test.ts),
 * so the corpus runs that here, and two scenarios (one racy, one clean) on real worker threads.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { explore } from '../../src/node/explore/index.ts';
import { resolveOptions } from '../../src/sched/explore/options.ts';
import { DPOR_SPLIT_PREFIXES } from '../../src/sched/explore/parallel.ts';
import { enumeratePrefixes, searchSubtrees } from '../../src/sched/explore/shard.ts';
import { judgeOutcome } from '../../src/scenario/outcome.ts';
import { parseScenarioFile } from '../../src/scenario/parse.ts';
import { raceTarget, RACES } from './helpers.ts';

const NAMES = readdirSync(RACES)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

describe('race corpus: DPOR split over workers', () => {
  for (const name of NAMES) {
    it(`${name}: the split search gives the declared outcome`, async () => {
      const declared = parseScenarioFile(`${RACES}${name}.yaml`).scenario.explore;
      const target = await raceTarget(name);
      const o = resolveOptions({ strategy: 'dfs', workers: 2 });
      const r = searchSubtrees(target, o, enumeratePrefixes(target, o, DPOR_SPLIT_PREFIXES), {
        maxSteps: o.maxSteps,
        deadline: Infinity,
      });
      const violation = r.found?.outcome.violation ?? null;
      const j = judgeOutcome(declared, violation);
      assert.ok(j.matched, `${j.reason}${violation !== null ? `: ${violation.message}` : ''}`);
      if (violation === null) assert.equal(r.exhausted, true);
    });
  }

  for (const name of ['legacy-mirror', 'hmm-mirror-oom-reap-v5.11']) {
    it(`${name}: two worker threads give the declared outcome`, async () => {
      const file = `${RACES}${name}.yaml`;
      const declared = parseScenarioFile(file).scenario.explore;
      await raceTarget(name);
      const descriptor = {
        module: new URL('../../src/scenario/explore_target.ts', import.meta.url).href,
        exportName: 'scenarioTarget',
        prepareExportName: 'prepareScenarioTarget',
        args: { file, restore: true },
      };
      const r = explore(descriptor, { strategy: 'dfs', workers: 2 });
      const j = judgeOutcome(declared, r.violation);
      assert.ok(j.matched, `${j.reason}${r.violation !== null ? `: ${r.violation.message}` : ''}`);
      assert.equal(r.exhausted, r.violation === null);
      assert.ok(r.coverage !== undefined && r.states !== undefined);
    });
  }
});
