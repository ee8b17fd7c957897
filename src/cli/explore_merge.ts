/**
 * `hetmem explore --merge FILES`: combines the `--json` results of the shards of one search
 * (`--shard I/N`) into the result of the whole: the first violation in shard order, the schedules
 * of all, exhausted when every shard of 1..N is there and exhausted, and the union of coverage.
 */
import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { z } from 'zod';
import { Coverage } from '../sched/explore/coverage.ts';
import { judgeOutcome } from '../scenario/outcome.ts';
import { ScenarioError } from '../scenario/parse.ts';
import { EXIT } from './errors.ts';
import { style, toJson } from './output.ts';

const Pair = z.tuple([z.string(), z.string()]);

const ShardResult = z.object({
  violation: z
    .object({
      oracle: z.string(),
      message: z.string(),
      diagram: z.string(),
      preemptions: z.number().int().nonnegative(),
    })
    .nullable(),
  schedules: z.number().int().nonnegative(),
  exhausted: z.boolean(),
  replay: z.string(),
  elapsed_ms: z.number().nonnegative(),
  declared: z
    .object({ expect: z.enum(['found', 'clean']), oracle: z.string().optional() })
    .nullable()
    .optional(),
  matched: z.boolean().optional(),
  coverage: z
    .object({
      pairs: z.number().int().nonnegative(),
      both_orders: z.number().int().nonnegative(),
      one_order: z.array(Pair),
      both: z.array(Pair),
    })
    .optional(),
  states: z
    .object({
      hashed: z.number().int().nonnegative(),
      pruned: z.number().int().nonnegative(),
      // Absent in the results of a version whose state cache had no size limit.
      unrecorded: z.number().int().nonnegative().optional(),
    })
    .optional(),
  shard: z.object({ index: z.number().int().positive(), count: z.number().int().positive() }).optional(),
});
type ShardResultT = z.infer<typeof ShardResult>;

/** The node at `path` (or the deepest one that exists), for an error position. */
function nodeAt(root: Node | null, path: readonly PropertyKey[]): Node | null {
  let n: Node | null = root;
  for (const k of path) {
    if (isMap(n)) {
      const pair = n.items.find((p) => (p.key as { value?: unknown } | null)?.value === k);
      if (pair === undefined) break;
      n = (pair.value ?? pair.key) as Node | null;
    } else if (isSeq(n) && typeof k === 'number') {
      const item = n.items[k] as Node | undefined;
      if (item === undefined) break;
      n = item;
    } else break;
  }
  return n;
}

function readShard(file: string): ShardResultT {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'EIO';
    throw new ScenarioError(file, 1, 1, `cannot read the file (${code})`);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const at = lc.linePos(err.pos[0]);
    throw new ScenarioError(file, at.line, at.col, `not a JSON result: ${err.message.split('\n')[0]}`);
  }
  const r = ShardResult.safeParse(doc.toJS());
  if (!r.success) {
    const issue = r.error.issues[0];
    const node = nodeAt(doc.contents, issue.path);
    const at = lc.linePos(node?.range?.[0] ?? 0);
    const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new ScenarioError(
      file,
      at.line,
      at.col,
      `not a result of hetmem explore --json: ${where}${issue.message}`,
    );
  }
  return r.data;
}

export interface MergeOpts {
  json?: boolean;
}

export function cmdExploreMerge(files: readonly string[], o: MergeOpts, out: (s: string) => void): number {
  const parts = files.map((f) => ({ file: f, r: readShard(f) }));
  const count = parts[0].r.shard?.count ?? 1;
  for (const p of parts) {
    if ((p.r.shard?.count ?? 1) !== count) {
      throw new ScenarioError(
        p.file,
        1,
        1,
        `a shard of ${p.r.shard?.count ?? 1}, but ${files[0]} is one of ${count}`,
      );
    }
  }
  parts.sort((a, b) => (a.r.shard?.index ?? 1) - (b.r.shard?.index ?? 1));
  const have = new Set(parts.map((p) => p.r.shard?.index ?? 1));
  const missing: number[] = [];
  for (let i = 1; i <= count; i++) if (!have.has(i)) missing.push(i);

  const found = parts.find((p) => p.r.violation !== null) ?? null;
  const coverage = new Coverage();
  let covered = true;
  for (const p of parts) {
    if (p.r.coverage === undefined) covered = false;
    else coverage.addReport({ oneOrder: p.r.coverage.one_order, both: p.r.coverage.both });
  }
  const c = coverage.report();
  // Each shard keeps its own states: their counts add up.
  const states = parts.every((p) => p.r.states !== undefined)
    ? {
        hashed: parts.reduce((n, p) => n + (p.r.states?.hashed ?? 0), 0),
        pruned: parts.reduce((n, p) => n + (p.r.states?.pruned ?? 0), 0),
        unrecorded: parts.reduce((n, p) => n + (p.r.states?.unrecorded ?? 0), 0),
      }
    : undefined;
  const violation = found?.r.violation ?? null;
  const declared = parts[0].r.declared ?? undefined;
  const judged = judgeOutcome(declared, violation);
  const merged = {
    violation,
    schedules: parts.reduce((n, p) => n + p.r.schedules, 0),
    exhausted: missing.length === 0 && found === null && parts.every((p) => p.r.exhausted),
    replay: (found ?? parts[parts.length - 1]).r.replay,
    // The shards run side by side: the search took as long as the slowest.
    elapsed_ms: Math.max(...parts.map((p) => p.r.elapsed_ms)),
    declared: judged.declared,
    matched: judged.matched,
    shards: { count, merged: parts.length, missing },
    ...(covered
      ? { coverage: { pairs: c.pairs, both_orders: c.bothOrders, one_order: c.oneOrder, both: c.both } }
      : {}),
    ...(states !== undefined ? { states } : {}),
  };
  if (o.json === true) out(toJson(merged));
  else {
    const s = style(process.stdout);
    out(
      `merged ${parts.length} of ${count} shard(s): ${merged.schedules} schedule(s)${merged.exhausted ? ' (the bounded space is exhausted)' : ''}, ${merged.elapsed_ms} ms for the slowest`,
    );
    if (missing.length > 0) out(s.bad(`missing shard(s): ${missing.join(', ')}`));
    if (violation === null) out(judged.matched ? s.ok('no violation') : s.bad('no violation'));
    else {
      out(s.bad(`violation (${violation.oracle}): ${violation.message}`));
      out('');
      out(violation.diagram);
      out('');
      out(`replay token: ${merged.replay}`);
    }
    if (judged.declared !== null)
      out(judged.matched ? s.ok(`outcome: ${judged.reason}`) : s.bad(`outcome: ${judged.reason}`));
    if (covered)
      out(s.dim(`coverage: ${c.bothOrders} of ${c.pairs} conflicting step pairs ran in both orders`));
  }
  return judged.matched && missing.length === 0 ? EXIT.ok : EXIT.failed;
}
