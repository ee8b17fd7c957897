/**
 * Steps declare what they touch (docs/explorer.md), and the reduced search is only as sound as
 * those declarations: for each kind of shared state a small scenario whose outcome depends on the
 * order of two threads, and depth-first search with its reduction must reach both orders, as the
 * search without reduction does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explore } from '../../src/node/explore/index.ts';
import type { ExploreOptions } from '../../src/sched/explore/types.ts';
import { targetFromParsed } from '../../src/scenario/explore_target.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';

/** The violation message a search of `text` reports, or null when it exhausts clean. */
function search(text: string, opts: Partial<ExploreOptions>): string | null {
  const target = targetFromParsed(parseScenarioText(text, 'footprints.yaml'), kernel(), { restore: true });
  const r = explore(target, { strategy: 'dfs', preemptionBound: Infinity, ...opts });
  assert.ok(r.violation !== null || r.exhausted, 'the search neither found nor exhausted');
  return r.violation?.message ?? null;
}

/** Both one-sided expectations are broken by some order: each search must find it. */
function assertBothOrders(scenario: (expect: string) => string, outcomes: readonly string[]): void {
  for (const expect of outcomes) {
    const text = scenario(expect);
    const plain = search(text, { por: false });
    assert.notEqual(plain, null, `without reduction, no order breaks ${expect}`);
    for (const o of [{}, { reduction: 'sleep' as const }, { preemptionBound: 2 }]) {
      assert.notEqual(search(text, o), null, `${JSON.stringify(o)}: no order breaks ${expect}`);
    }
  }
}

void describe('declared footprints: the reduced search reaches every order', () => {
  void it('an exit beside a device open (the process and its mm_users)', () => {
    const scenario = (expect: string): string => `version: 1
name: open beside exit
system: { ram: 8MiB, swap: 0 }
devices:
  gpu0: { type: dmirror, memory: private }
processes: [p, q]
setup: []
threads:
  t0:
    - op: exit
      proc: q
  t1:
    - op: dmirror_open
      device: gpu0
      proc: q
      expect: { ${expect} }
`;
    // The open runs first (fd 3) or after the exit (-ESRCH).
    assertBothOrders(scenario, ['ret: 3', 'errno: ESRCH']);
  });
});
