import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SIM_DEFAULTS, runSim, type SimResult } from '../../src/sim/engine.ts';
import { MAX_CHART_POINTS, RUN_PANELS, runChart, sweepChart, type SweepRun } from '../../src/sim/charts.ts';
import { chartSvg } from '../../src/sim/render.ts';
import { groupsOf, readSvg, textsOf } from './svg.ts';

const MiB = 1024 * 1024;

describe('sim charts', () => {
  const run = runSim({
    ...SIM_DEFAULTS,
    footprint: 8 * MiB,
    gpuMemory: 4 * MiB,
    policy: 'ondemand',
    timeline: true,
  });

  it('a run keeps its counters after every batch, ending at the totals', () => {
    const t = run.timeline ?? [];
    assert.equal(t.length, run.batches);
    assert.deepEqual(
      t.map((p) => p.batch),
      t.map((_, i) => i + 1),
    );
    const last = t[t.length - 1];
    assert.equal(last.faults, run.faults);
    assert.equal(last.pages_to_gpu, run.pages_to_gpu);
    assert.equal(last.evictions, run.evictions);
    assert.equal(last.time_us, run.time_us);
    for (let i = 1; i < t.length; i++) assert.ok(t[i].faults >= t[i - 1].faults);
  });

  it('the chart of a run has one panel per series over the fault batches', async () => {
    assert.ok(run.evictions > 0, 'the run oversubscribes');
    const svg = readSvg(await chartSvg(runChart(run)));
    assert.deepEqual(
      textsOf(svg, 'role-axis-title'),
      RUN_PANELS.flatMap(([, title]) => ['fault batch', title]),
    );
    const lines = groupsOf(svg, 'mark-line', 'role-mark');
    // pages migrated draws one line each way
    assert.equal(lines.length, RUN_PANELS.length + 1);
    for (const l of lines) assert.equal(l.paths, 1);
    assert.deepEqual(textsOf(svg, 'role-legend-label'), ['to GPU', 'to CPU']);
    assert.deepEqual(textsOf(svg, 'role-title-text'), ['stream on ondemand']);
    assert.match(
      textsOf(svg, 'role-title-subtitle')[0],
      new RegExp(`^${run.faults} faults, ${run.batches} batches, ${run.evictions} evictions`),
    );
  });

  it('a long run is thinned to at most MAX_CHART_POINTS, keeping its last point', () => {
    const timeline = Array.from({ length: 5 * MAX_CHART_POINTS + 3 }, (_, i) => ({
      batch: i + 1,
      time_us: i,
      faults: i,
      pages_to_gpu: i,
      pages_to_cpu: 0,
      evictions: 0,
      resident_mib: 0,
    }));
    const spec = runChart({ ...run, timeline }) as { data: { values: { batch: number }[] } };
    const values = spec.data.values;
    assert.ok(values.length <= MAX_CHART_POINTS + 2, `${values.length}`);
    assert.equal(values[0].batch, 0);
    assert.equal(values[values.length - 1].batch, timeline.length);
  });

  const fake = (faults: number, evictions: number): SimResult => ({
    ...run,
    faults,
    time_us: faults * 47,
    evictions,
  });

  it('a sweep of one axis is bars in the grid order; evictions only when some point evicted', async () => {
    const runs: SweepRun[] = [
      { at: { policy: 'tree' }, r: fake(10, 0) },
      { at: { policy: 'ondemand' }, r: fake(40, 0) },
    ];
    const svg = readSvg(await chartSvg(sweepChart(runs, ['policy'])));
    assert.deepEqual(textsOf(svg, 'role-axis-title'), ['policy', 'faults', 'policy', 'modelled time (us)']);
    const bars = groupsOf(svg, 'mark-rect', 'role-mark');
    assert.equal(bars.length, 2);
    for (const b of bars) assert.equal(b.paths, 2);
    const xLabels = textsOf(svg, 'role-axis-label').filter((t) => /[a-z]/.test(t));
    assert.deepEqual(xLabels, ['tree', 'ondemand', 'tree', 'ondemand']);
  });

  it('a sweep with policy and footprint draws one line per policy across the footprints', async () => {
    const runs: SweepRun[] = [];
    for (const policy of ['ondemand', 'tree'])
      for (const footprint of ['512MiB', '1536MiB'])
        runs.push({
          at: { policy, footprint },
          r: fake(policy === 'tree' ? 5 : 50, footprint === '1536MiB' ? 3 : 0),
        });
    const svg = readSvg(await chartSvg(sweepChart(runs, ['policy', 'footprint'])));
    assert.deepEqual(textsOf(svg, 'role-axis-title'), [
      'footprint',
      'faults',
      'footprint',
      'modelled time (us)',
      'footprint',
      'evictions (2 MiB chunks)',
    ]);
    assert.equal(groupsOf(svg, 'mark-line', 'role-mark').length, 3 * 2);
    for (const s of groupsOf(svg, 'mark-symbol', 'role-mark')) assert.equal(s.paths, 4);
    assert.deepEqual(textsOf(svg, 'role-legend-title'), ['policy']);
    assert.deepEqual(textsOf(svg, 'role-legend-label'), ['ondemand', 'tree']);
  });
});
