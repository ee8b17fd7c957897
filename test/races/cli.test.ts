/** The corpus through the command line, as a driver developer runs it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hetmem } from '../cli/helpers.ts';

interface ExploreJson {
  violation: null | { oracle: string; message: string; diagram: string; preemptions: number };
  schedules: number;
  exhausted: boolean;
  replay: string;
  elapsed_ms: number;
  states?: { hashed: number; pruned: number; unrecorded: number };
}

function exploreJson(args: string[]): { status: number | null; doc: ExploreJson } {
  const r = hetmem(['explore', ...args, '--json']);
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  return { status: r.status, doc: JSON.parse(r.stdout) as ExploreJson };
}

describe('hetmem explore examples/races', () => {
  it('finds the hmm_mirror valid-flag race, as declared, and its token replays it', () => {
    const found = exploreJson(['examples/races/legacy-mirror.yaml']);
    // The scenario declares `found (frame-refs)`, so finding it is success.
    assert.equal(found.status, 0);
    assert.ok(found.doc.violation !== null);
    assert.equal(found.doc.violation.oracle, 'frame-refs');
    assert.match(found.doc.replay, /^v1\.pct\.s1\./);

    const again = exploreJson(['examples/races/legacy-mirror.yaml', '--replay', found.doc.replay]);
    assert.equal(again.status, 0);
    assert.deepEqual(again.doc.violation, found.doc.violation);
    assert.equal(again.doc.replay, found.doc.replay);
  });

  it('the same driver on mmu_interval_notifier: dfs exhausts its bound with no violation', () => {
    const r = exploreJson(['examples/races/interval-mirror.yaml', '--strategy', 'dfs']);
    assert.equal(r.status, 0);
    assert.equal(r.doc.violation, null);
    assert.equal(r.doc.exhausted, true);
    assert.ok(r.doc.states !== undefined && r.doc.states.hashed > 0, JSON.stringify(r.doc.states));
    const off = exploreJson(['examples/races/interval-mirror.yaml', '--strategy', 'dfs', '--no-state-cache']);
    assert.equal(off.status, 0);
    assert.equal(off.doc.exhausted, true);
    assert.equal(off.doc.states, undefined);
  });
});

describe('hetmem explore examples/races --workers', () => {
  it('loads the user driver in worker threads and reports what one worker reports', () => {
    const one = exploreJson(['examples/races/set-seq-unlocked.yaml']);
    const two = exploreJson(['examples/races/set-seq-unlocked.yaml', '--workers', '2']);
    assert.ok(one.doc.violation !== null && two.doc.violation !== null);
    assert.equal(two.doc.replay, one.doc.replay);
    assert.equal(two.doc.violation.diagram, one.doc.violation.diagram);
  });
});
