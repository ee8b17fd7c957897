/**
 * The benchmark suite: `hetmem bench [--json] [--smoke] [--filter S]` calls runBenchmarks().
 * Run directly too: node --import tsx bench/run.ts [--json] [--smoke] [--filter S]
 *
 * Performance is measured here, never in timed unit tests. Every comparison uses an anchor
 * measured in the same run (or a published reference, which the figure's goal names) and is
 * reported as a ratio.
 */
import { fileURLToPath } from 'node:url';
import { apiSuite } from './api.ts';
import { cliSuite } from './cli.ts';
import { explorerSuite } from './explorer.ts';
import { faultsSuite } from './faults.ts';
import { gpuSuite } from './gpu.ts';
import type { BenchContext, Figure, MissingFigure, Suite } from './figure.ts';
import { hmmSuite } from './hmm.ts';
import { iommufdSuite } from './iommufd.ts';
import { memorySuite } from './memory.ts';
import { notifierSuite } from './notifier.ts';
import { simSuite } from './sim.ts';

export type { Figure, MissingFigure };

export const SUITES: readonly Suite[] = [
  faultsSuite,
  notifierSuite,
  hmmSuite,
  iommufdSuite,
  explorerSuite,
  memorySuite,
  apiSuite,
  cliSuite,
  gpuSuite,
  simSuite,
];

/** The suites' names, in the order they run (what a `--filter` may name). */
export const SUITE_NAMES: readonly string[] = SUITES.map((s) => s.name);

export interface BenchOptions {
  json?: boolean;
  smoke?: boolean;
  /** Substring of a suite or figure name (e.g. 'faults', 'notifier.itree'). */
  filter?: string;
  onProgress?: (name: string) => void;
}

/** The figures, plus (outside the JSON shape) those that could not be measured and why. */
export interface BenchReport {
  figures: Figure[];
  missing: MissingFigure[];
}

function suiteSelected(s: Suite, filter: string | undefined): boolean {
  if (filter === undefined || filter === '') return true;
  return s.name.includes(filter) || filter.startsWith(`${s.name}.`);
}

function figureSelected(s: Suite, name: string, filter: string | undefined): boolean {
  if (filter === undefined || filter === '' || s.name.includes(filter)) return true;
  return name.includes(filter);
}

/** Runs every selected suite in order (one at a time: they measure wall-clock time). */
export async function runBenchmarks(opts: {
  json?: boolean;
  smoke?: boolean;
  filter?: string;
  onProgress?: (name: string) => void;
}): Promise<{ figures: Figure[] }> {
  return runBenchmarksReport(opts);
}

/** runBenchmarks() with the list of figures that could not be measured. */
export async function runBenchmarksReport(opts: BenchOptions): Promise<BenchReport> {
  const figures: Figure[] = [];
  const missing: MissingFigure[] = [];
  for (const s of SUITES) {
    if (!suiteSelected(s, opts.filter)) continue;
    const ctx: BenchContext = {
      smoke: opts.smoke === true,
      progress: (name) => opts.onProgress?.(name),
      missing: (name, reason) => {
        if (figureSelected(s, name, opts.filter)) missing.push({ name, reason });
      },
    };
    for (const f of await s.run(ctx)) if (figureSelected(s, f.name, opts.filter)) figures.push(f);
  }
  return { figures, missing };
}

/** The message for a `--filter` that selects no figure. */
export function noMatch(filter: string, suites: readonly string[]): string {
  return `--filter '${filter}' matches no benchmark figure: give a substring of a suite name (${suites.join(', ')}) or of a figure name`;
}

function formatTable(r: BenchReport): string {
  const rows = [
    ['figure', 'value', 'unit', 'anchor', 'ratio', 'goal', 'pass'],
    ...r.figures.map((f) => [
      f.name,
      String(f.value),
      f.unit,
      f.anchor === undefined ? '' : String(f.anchor),
      f.ratio === undefined ? '' : String(f.ratio),
      f.goal + (f.reason === undefined ? '' : ` (${f.reason})`),
      f.pass ? 'pass' : 'FAIL',
    ]),
  ];
  const lines = rows.map((cells) => `| ${cells.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0].map(() => '---').join('|')}|`);
  for (const m of r.missing) lines.push(`\nnot measured: ${m.name}: ${m.reason}`);
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<void> {
  const fi = argv.indexOf('--filter');
  const opts: BenchOptions = {
    json: argv.includes('--json'),
    smoke: argv.includes('--smoke'),
    onProgress: (name) => process.stderr.write(`bench: ${name}\n`),
  };
  if (fi >= 0) opts.filter = argv[fi + 1];
  const t0 = performance.now();
  const r = await runBenchmarksReport(opts);
  if (opts.filter !== undefined && r.figures.length === 0 && r.missing.length === 0) {
    process.stderr.write(`bench: ${noMatch(opts.filter, SUITE_NAMES)}\n`);
    process.exitCode = 2;
    return;
  }
  for (const m of r.missing) process.stderr.write(`bench: not measured: ${m.name}: ${m.reason}\n`);
  process.stderr.write(`bench: done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(
    opts.json === true ? `${JSON.stringify({ figures: r.figures }, null, 2)}\n` : `${formatTable(r)}\n`,
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
