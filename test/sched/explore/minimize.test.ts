import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explore, replay } from '../../../src/node/explore/index.ts';
import { counterTarget } from './fixtures.ts';

void describe('minimisation', () => {
  void it('reduces a random schedule with many preemptions to the single one the race needs', () => {
    // Long private prefixes make random schedules switch threads many times before the race.
    const target = counterTarget({ noise: 12 });
    const raw = explore(target, { strategy: 'random', seed: 1, minimize: false });
    assert.ok(raw.violation);
    assert.ok(raw.violation.preemptions >= 3, `raw schedule had ${raw.violation.preemptions} preemptions`);

    const min = explore(target, { strategy: 'random', seed: 1 });
    assert.ok(min.violation);
    assert.equal(min.violation.oracle, raw.violation.oracle);
    assert.equal(min.violation.preemptions, 1);
    assert.equal(min.schedules, raw.schedules, 'minimising does not change what the search counted');
    assert.ok(min.replay.length < raw.replay.length, `${min.replay} vs ${raw.replay}`);
    assert.ok(min.violation.trace.length <= raw.violation.trace.length);

    // The token is the minimised schedule's.
    const again = replay(target, min.replay);
    assert.equal(again.violation?.preemptions, 1);
    assert.equal(again.violation?.diagram, min.violation.diagram);
  });
});
