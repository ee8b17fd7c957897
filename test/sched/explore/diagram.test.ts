import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explore, renderDiagram } from '../../../src/sched/explore/index.ts';
import { counterTarget } from './fixtures.ts';

void describe('diagram', () => {
  void it('draws one fixed-width column per CPU and marks the violation on the last row', () => {
    const r = explore(counterTarget(), { strategy: 'dfs' });
    assert.ok(r.violation);
    const lines = r.violation.diagram.split('\n');
    assert.match(lines[0], /^CPU0 \(inc0\) +CPU1 \(inc1\)$/);
    const col1 = lines[0].indexOf('CPU1');
    // Every step of inc1 starts exactly in CPU1's column; steps of inc0 start at column 0.
    const rows = lines.slice(2, lines.indexOf(''));
    for (const row of rows) assert.ok(row.startsWith(' ') ? row.indexOf(row.trim()) === col1 : true, row);
    assert.deepEqual(
      rows.map((x) => x.trim()),
      ['begin', 'read counter', 'begin', 'read counter', 'write counter', 'write counter', '*** race ***'],
    );
    assert.equal(lines[lines.length - 1], 'race: lost update: counter is 1, expected 2');
  });

  void it('collapses a long run of one thread but keeps lock steps', () => {
    const labels = Array.from({ length: 20 }, (_, i) => (i === 10 ? 'mutex_lock(mm)' : `work ${i}`));
    const d = renderDiagram({
      threadNames: ['a', 'b'],
      labels: [...labels, 'other'],
      columns: [...labels.map(() => 0), 1],
      violation: { oracle: 'x', message: 'y' },
    });
    assert.match(d, /mutex_lock\(mm\)/);
    assert.match(d, /\.\.\. \(8 steps\)/);
    assert.doesNotMatch(d, /work 5/);
    assert.match(d, /work 19/);
  });
});
