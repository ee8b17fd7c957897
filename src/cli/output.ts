/**
 * Human output of the CLI. Colour only when the stream is a terminal and NO_COLOR is unset
 * (https://no-color.org); JSON output never has colour.
 */
import type { StepReport, RunReport } from '../scenario/runner.ts';
import { describeRet } from '../scenario/expect.ts';

export interface Style {
  ok(s: string): string;
  bad(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
  warn(s: string): string;
}

export function useColour(stream: NodeJS.WriteStream): boolean {
  const noColor = process.env.NO_COLOR;
  return stream.isTTY && (noColor === undefined || noColor === '');
}

export function style(stream: NodeJS.WriteStream): Style {
  const on = useColour(stream);
  const wrap = (a: number, b: number) => (s: string) => (on ? `\x1b[${a}m${s}\x1b[${b}m` : s);
  return { ok: wrap(32, 39), bad: wrap(31, 39), dim: wrap(2, 22), bold: wrap(1, 22), warn: wrap(33, 39) };
}

/** A number the way a reader wants it: hex for addresses, decimal for counts. */
export function showNumber(v: unknown): string {
  if (typeof v === 'bigint') return v >= 2n ** 32n ? `0x${v.toString(16)}` : v.toString();
  if (typeof v === 'number') return v >= 2 ** 32 ? `0x${v.toString(16)}` : String(v);
  if (Array.isArray(v)) return `[${v.map(showNumber).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}: ${showNumber(x)}`)
      .join(', ')}}`;
  }
  return String(v);
}

function countersLine(c: Record<string, number>): string {
  return Object.entries(c)
    .map(([k, v]) => `${k} ${v > 0 ? '+' : ''}${v}`)
    .join(', ');
}

/** The lines for one step: what it asked, what the kernel returned, what happened inside. */
export function formatStep(r: StepReport, s: Style): string[] {
  const out: string[] = [];
  const where =
    r.section === 'steps' ? `${r.index + 1}` : r.section === 'teardown' ? '' : `${r.section}.${r.index + 1}`;
  const head = r.section === 'teardown' ? s.bold('teardown') : `${s.dim(where.padStart(3))} ${s.bold(r.op)}`;
  out.push(`${head} ${s.dim(r.summary)}${r.line > 0 ? s.dim(` (line ${r.line})`) : ''}`);
  if (r.comment !== undefined) out.push(`      ${s.dim(`# ${r.comment}`)}`);
  const outs = Object.entries(r.outputs)
    .map(([k, v]) => `${k}=${showNumber(v)}`)
    .join(' ');
  const result = r.errno !== null ? s.warn(`-${r.errno}`) : describeRet(r.ret);
  if (r.section !== 'teardown') out.push(`      = ${result}${outs.length > 0 ? `  ${outs}` : ''}`);
  if (r.data !== undefined) {
    const d = r.data;
    const what =
      d.uniform !== null
        ? `every byte 0x${d.uniform.toString(16).padStart(2, '0')}`
        : `${d.head.slice(0, 32).replace(/(..)/g, '$1 ').trim()}${d.length > 16 ? ' ...' : ''}`;
    out.push(`      data ${d.length} bytes: ${what}`);
  }
  for (const p of r.pages ?? []) {
    const bits = [
      p.present ? 'present' : p.swap ? 'swap' : 'none',
      ...(p.kind !== 'none' && p.kind !== 'swap' ? [p.kind] : []),
      ...(p.soft_dirty ? ['soft-dirty'] : []),
      ...(p.exclusive ? ['exclusive'] : []),
      ...(p.file ? ['file'] : []),
      ...(p.thp ? ['thp'] : []),
    ];
    const range = p.count === 1 ? `page ${p.first}` : `pages ${p.first}-${p.first + p.count - 1}`;
    out.push(`      ${range}: ${bits.join(' ')}`);
  }
  if (Object.keys(r.counters).length > 0) out.push(`      ${s.dim(countersLine(r.counters))}`);
  for (const n of r.notes) out.push(`      ${s.dim(n)}`);
  for (const f of r.failures) out.push(`      ${s.bad('✗')} ${s.bad(f)}`);
  return out;
}

/** Two aligned columns. */
export function table(rows: readonly (readonly string[])[], s: Style, header?: readonly string[]): string[] {
  const all = header !== undefined ? [header, ...rows] : rows;
  const widths: number[] = [];
  for (const row of all) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (row: readonly string[]) =>
    row
      .map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  if (header !== undefined) out.push(s.bold(line(header)));
  for (const r of rows) out.push(line(r));
  return out;
}

export function formatStats(stats: Record<string, number>, s: Style): string[] {
  const rows = Object.entries(stats).map(([k, v]) => [k, showNumber(v)]);
  return ['', s.bold('stats'), ...table(rows, s).map((l) => `  ${l}`)];
}

export function formatRunSummary(r: RunReport, s: Style): string {
  const failed = r.steps.filter((x) => !x.ok).length;
  return r.ok
    ? s.ok(`ok: ${r.steps.length - 1} steps, every expectation held`)
    : s.bad(`FAILED: ${failed} step(s) did not do what the scenario expects`);
}

/** JSON with 64-bit values as hex strings and byte buffers as hex. */
export function toJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x: unknown) => {
      if (typeof x === 'bigint') return `0x${x.toString(16)}`;
      if (typeof x === 'number' && Number.isInteger(x) && Math.abs(x) >= 2 ** 32)
        return `0x${x.toString(16)}`;
      if (x instanceof Uint8Array) return Buffer.from(x).toString('hex');
      if (x instanceof Map) return Object.fromEntries(x as Map<string, unknown>);
      return x;
    },
    2,
  );
}
