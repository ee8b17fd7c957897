/**
 * A sweep's results as text: the same table on the command line and in the studio.
 */
import type { SweepRun } from './charts.ts';
import type { SimResult } from './engine.ts';

/** The counters a sweep's table shows, in order (host wall time is left out: it varies). */
const COLUMNS: readonly (keyof SimResult)[] = [
  'faults',
  'far_faults',
  'batches',
  'va_blocks_per_batch',
  'pages_to_gpu',
  'pages_to_cpu',
  'evictions',
  'thrashing_events',
  'time_us',
  'us_per_fault',
];

/**
 * The table `hetmem sim` prints for a sweep, and the studio's sim panel shows: a row per point in
 * grid order, the axes' values first, then the counters, each column right-aligned.
 */
export function sweepTable(rows: readonly SweepRun[]): string {
  const keys = [...new Set(rows.flatMap((x) => Object.keys(x.at)))];
  const head = [...keys, ...COLUMNS.map(String)];
  const body = rows.map((x) => [
    ...keys.map((k) => JSON.stringify(x.at[k] ?? '').replace(/^"|"$/g, '')),
    ...COLUMNS.map((c) => JSON.stringify(x.r[c])),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}
