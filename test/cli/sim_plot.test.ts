import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hetmem, tempFile } from './helpers.ts';
import { groupsOf, readSvg, textsOf } from '../sim/svg.ts';

const out = (name: string): string => join(mkdtempSync(join(tmpdir(), 'hetmem-plot-')), name);

describe('hetmem sim --plot', () => {
  it('a run plots its counters over the fault batches; --json is unchanged', () => {
    const svgPath = out('run.svg');
    const r = hetmem(['sim', '--footprint', '4MiB', '--policy', 'ondemand', '--json', '--plot', svgPath]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(j.timeline, undefined);
    const svg = readSvg(readFileSync(svgPath, 'utf8'));
    assert.deepEqual(textsOf(svg, 'role-title-text'), ['stream on ondemand']);
    const titles = textsOf(svg, 'role-axis-title');
    for (const t of ['faults serviced', 'pages migrated', 'evictions (2 MiB chunks)', 'modelled time (us)'])
      assert.ok(titles.includes(t), t);
    assert.equal(titles.filter((t) => t === 'fault batch').length, 5);
    assert.equal(groupsOf(svg, 'mark-line', 'role-mark').length, 6);
    assert.match(
      textsOf(svg, 'role-title-subtitle')[0],
      new RegExp(`^${String(j.faults)} faults, ${String(j.batches)} batches`),
    );
  });

  it('a sweep file with plot: charts the grid, one series per policy', () => {
    const svgPath = out('sweep.svg');
    const f = tempFile(
      's.yaml',
      `version: 1\ngpu_memory: 4MiB\nplot: ${svgPath}\nsweep:\n  policy: [ondemand, tree]\n  footprint: [2MiB, 6MiB]\n`,
    );
    const r = hetmem(['sim', f]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 5);
    const svg = readSvg(readFileSync(svgPath, 'utf8'));
    assert.deepEqual(textsOf(svg, 'role-legend-label'), ['ondemand', 'tree']);
    const titles = textsOf(svg, 'role-axis-title');
    assert.deepEqual(titles.slice(0, 4), ['footprint', 'faults', 'footprint', 'modelled time (us)']);
    for (const s of groupsOf(svg, 'mark-symbol', 'role-mark')) assert.equal(s.paths, 4);
  });

  it('an unwritable plot path is refused before the run, exit 2', () => {
    const r = hetmem(['sim', '--footprint', '4MiB', '--plot', '/nonexistent/dir/x.svg']);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'hetmem: --plot: cannot write /nonexistent/dir/x.svg: ENOENT\n');
    const dir = mkdtempSync(join(tmpdir(), 'hetmem-plot-'));
    const d = hetmem(['sim', '--footprint', '4MiB', '--plot', dir]);
    assert.equal(d.status, 2);
    assert.match(d.stderr, /cannot write .*: EISDIR\n$/);
    const f = tempFile('s.yaml', 'version: 1\nfootprint: 4MiB\nplot: /nonexistent/p.svg\n');
    const s = hetmem(['sim', f]);
    assert.equal(s.status, 2);
    assert.equal(s.stderr, `${f}:3:7: cannot write plot /nonexistent/p.svg: ENOENT\n`);
    const g = tempFile('s.yaml', 'version: 1\nplot: [a]\n');
    const t = hetmem(['sim', g]);
    assert.equal(t.status, 2);
    assert.equal(t.stderr, `${g}:2:7: plot is the path of an SVG file\n`);
    assert.equal(existsSync('/nonexistent'), false);
  });
});
