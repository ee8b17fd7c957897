/**
 * The charts of `hetmem sim --plot` and of the studio's sim panel, as Vega-Lite specifications
 * built from results (plain data in, plain data out; nothing here renders). One run charts its
 * counters after each fault batch; a sweep charts the grid, one panel per measure.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { SimResult, TimelinePoint } from './engine.ts';

/** A run's timeline keeps at most this many points in a chart (evenly thinned, last kept). */
export const MAX_CHART_POINTS = 1000;
const WIDTH = 480;
const HEIGHT = 140;

/** One point of a sweep: the values of its axes and its result. */
export interface SweepRun {
  readonly at: Readonly<Record<string, unknown>>;
  readonly r: SimResult;
}

type Row = Record<string, string | number>;

/** A y encoding; a measure that stays 0 gets the domain [0, 1] rather than a degenerate one. */
function yOf(rows: readonly Row[], fields: readonly string[], field: string, title: string) {
  const flat = rows.every((r) => fields.every((f) => r[f] === 0));
  return {
    field,
    type: 'quantitative',
    title,
    ...(flat ? { scale: { domain: [0, 1] } } : {}),
  } as const;
}

/** Every `step`-th point and the last one, so a chart stays small whatever the run's length. */
function thin(points: readonly TimelinePoint[]): TimelinePoint[] {
  if (points.length <= MAX_CHART_POINTS) return [...points];
  const step = Math.ceil(points.length / MAX_CHART_POINTS);
  const out = points.filter((_, i) => i % step === 0);
  if (out.at(-1) !== points.at(-1)) out.push(points[points.length - 1]);
  return out;
}

const START: TimelinePoint = {
  batch: 0,
  time_us: 0,
  faults: 0,
  pages_to_gpu: 0,
  pages_to_cpu: 0,
  evictions: 0,
  resident_mib: 0,
};

/** The measures a run's chart has a panel for, with their axis titles. */
export const RUN_PANELS: readonly (readonly [string, string])[] = [
  ['faults', 'faults serviced'],
  ['pages', 'pages migrated'],
  ['evictions', 'evictions (2 MiB chunks)'],
  ['resident_mib', 'GPU-resident MiB'],
  ['time_us', 'modelled time (us)'],
];

/** The chart of one run: its counters after each fault batch (`timeline` must have been kept). */
export function runChart(r: SimResult): TopLevelSpec {
  const points = [START, ...thin(r.timeline ?? [])];
  const values = points.map((p): Row => ({
    batch: p.batch,
    faults: p.faults,
    'to GPU': p.pages_to_gpu,
    'to CPU': p.pages_to_cpu,
    evictions: p.evictions,
    resident_mib: p.resident_mib,
    time_us: p.time_us,
  }));
  const x = { field: 'batch', type: 'quantitative', title: 'fault batch' } as const;
  const line = (field: string, title: string) => ({
    width: WIDTH,
    height: HEIGHT,
    mark: { type: 'line', interpolate: 'step-after' } as const,
    encoding: { x, y: yOf(values, [field], field, title) },
  });
  const panels = RUN_PANELS.map(([field, title]) =>
    field === 'pages'
      ? {
          width: WIDTH,
          height: HEIGHT,
          transform: [{ fold: ['to GPU', 'to CPU'], as: ['direction', 'pages'] as [string, string] }],
          mark: { type: 'line', interpolate: 'step-after' } as const,
          encoding: {
            x,
            y: yOf(values, ['to GPU', 'to CPU'], 'pages', title),
            color: {
              field: 'direction',
              type: 'nominal',
              title: 'direction',
              sort: ['to GPU', 'to CPU'],
            } as const,
          },
        }
      : line(field, title),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `${r.workload} on ${r.policy}`,
      subtitle: `${r.faults} faults, ${r.batches} batches, ${r.evictions} evictions, ${r.time_us} us modelled (${r.cost})`,
    },
    data: { values },
    vconcat: panels,
  };
}

/** What a sweep's chart has a panel for; evictions only when some point evicted. */
export const SWEEP_MEASURES: readonly (readonly [keyof SimResult, string])[] = [
  ['faults', 'faults'],
  ['time_us', 'modelled time (us)'],
  ['evictions', 'evictions (2 MiB chunks)'],
];

function label(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * The chart of a sweep over `axes` (in the file's order): `policy`, when swept with other axes,
 * colours the series and the first other axis is x; otherwise the first axis is x and the rest
 * colour the series. A sweep of one axis is bars. Points keep the grid's order on both.
 */
export function sweepChart(runs: readonly SweepRun[], axes: readonly string[]): TopLevelSpec {
  const xAxis =
    axes.length > 1 && axes.includes('policy')
      ? (axes.find((a) => a !== 'policy') as string)
      : (axes[0] ?? 'run');
  // policy first among the series' names: 'tree, alloc' reads as a policy and its setting.
  const others = axes.filter((a) => a !== xAxis);
  const seriesAxes = [...others.filter((a) => a === 'policy'), ...others.filter((a) => a !== 'policy')];
  const rows: Row[] = runs.map((run, i) => {
    const row: Row = {
      x: axes.length === 0 ? String(i + 1) : label(run.at[xAxis]),
      series: seriesAxes.map((a) => (seriesAxes.length > 1 ? `${a}=` : '') + label(run.at[a])).join(', '),
    };
    for (const [m] of SWEEP_MEASURES) row[m] = run.r[m] as number;
    return row;
  });
  const uniq = (k: string): string[] => [...new Set(rows.map((r) => r[k] as string))];
  const measures = SWEEP_MEASURES.filter(([m]) => m !== 'evictions' || rows.some((r) => r[m] !== 0));
  const x = {
    field: 'x',
    type: 'ordinal',
    title: xAxis,
    sort: uniq('x'),
    axis: { labelAngle: 0 },
  } as const;
  const panels = measures.map(([m, title]) => {
    const y = yOf(rows, [m], m, title);
    if (seriesAxes.length === 0)
      return { width: WIDTH, height: HEIGHT * 1.5, mark: 'bar' as const, encoding: { x, y } };
    return {
      width: WIDTH,
      height: HEIGHT * 1.5,
      mark: { type: 'line', point: true } as const,
      encoding: {
        x,
        y,
        color: {
          field: 'series',
          type: 'nominal',
          title: seriesAxes.join(', '),
          sort: uniq('series'),
          legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0, titleLimit: 0 },
        } as const,
      },
    };
  });
  const first = runs[0] as SweepRun | undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `sweep over ${axes.join(' x ')}`,
      subtitle: first === undefined ? '' : `${runs.length} points, cost ${first.r.cost}`,
    },
    data: { values: rows },
    vconcat: panels,
  };
}
