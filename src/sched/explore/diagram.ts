/**
 * Renders a failing schedule as a plain-text timeline with one fixed-width column per thread,
 * the way kernel changelogs draw races (see the CPU0/CPU1 diagram in the commit that introduced
 * mmu_interval_notifier): time runs down, each row is one step in its thread's column.
 *
 * Long runs of one thread are collapsed, but steps that matter to a race reader (locks, sequence
 * counts, notifier callbacks, waits and wake-ups) are always kept.
 */

export interface DiagramInput {
  threadNames: readonly string[];
  labels: readonly string[];
  /** Column of each step. */
  columns: readonly number[];
  violation: { oracle: string; message: string };
}

const MAX_COLUMN_WIDTH = 40;
/** A run of one thread longer than this is collapsed. */
const RUN_KEEP = 6;
/** Above this many rows, the middle of the diagram is elided. */
const MAX_ROWS = 80;
const KEEP_HEAD = 30;
const KEEP_TAIL = 45;

const SIGNIFICANT =
  /lock|seq|retry|begin|end|start|invalidat|notifier|callback|srcu|rcu|wait|wake|complet|down_|up_|sleep|timeout|fault|migrat/i;

interface Row {
  column: number;
  text: string;
}

function collapseRuns(labels: readonly string[], columns: readonly number[]): Row[] {
  const rows: Row[] = [];
  let i = 0;
  while (i < labels.length) {
    let j = i;
    while (j < labels.length && columns[j] === columns[i]) j++;
    const col = columns[i];
    if (j - i <= RUN_KEEP) {
      for (let k = i; k < j; k++) rows.push({ column: col, text: labels[k] });
    } else {
      // Keep the first and last two steps of the run and every significant one in between.
      let skipped = 0;
      for (let k = i; k < j; k++) {
        const edge = k < i + 2 || k >= j - 2;
        if (edge || SIGNIFICANT.test(labels[k])) {
          if (skipped > 0) rows.push({ column: col, text: `... (${skipped} steps)` });
          skipped = 0;
          rows.push({ column: col, text: labels[k] });
        } else {
          skipped++;
        }
      }
    }
    i = j;
  }
  return rows;
}

function fit(text: string, width: number): string {
  if (text.length <= width) return text.padEnd(width);
  return `${text.slice(0, width - 3)}...`;
}

export function renderDiagram(input: DiagramInput): string {
  const ncol = Math.max(input.threadNames.length, 1);
  let rows = collapseRuns(input.labels, input.columns);
  const lastColumn = input.columns.length > 0 ? input.columns[input.columns.length - 1] : 0;
  rows.push({ column: lastColumn, text: `*** ${input.violation.oracle} ***` });
  if (rows.length > MAX_ROWS) {
    const omitted = rows.length - KEEP_HEAD - KEEP_TAIL;
    rows = [
      ...rows.slice(0, KEEP_HEAD),
      { column: -1, text: `... (${omitted} rows omitted) ...` },
      ...rows.slice(rows.length - KEEP_TAIL),
    ];
  }
  const headers = Array.from({ length: ncol }, (_, c) => `CPU${c} (${input.threadNames[c] ?? '?'})`);
  const widths = headers.map((h, c) => {
    let w = h.length;
    for (const r of rows) if (r.column === c) w = Math.max(w, r.text.length);
    return Math.min(Math.max(w, 12), MAX_COLUMN_WIDTH);
  });
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => fit(cell, widths[c]))
      .join('   ')
      .trimEnd();
  const out: string[] = [line(headers), line(widths.map((w) => '-'.repeat(w)))];
  for (const r of rows) {
    if (r.column < 0) {
      out.push(r.text);
      continue;
    }
    const cells = headers.map(() => '');
    cells[r.column] = r.text;
    out.push(line(cells));
  }
  out.push('');
  out.push(`${input.violation.oracle}: ${input.violation.message}`);
  return out.join('\n');
}
