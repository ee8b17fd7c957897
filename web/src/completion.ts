/**
 * Completion from the scenario JSON Schema (`hetmem schema`): top-level keys, op names, the
 * fields of the op of the step under the cursor, and the values of enumerated fields.
 */
import type { CompletionContext, CompletionResult } from '@codemirror/autocomplete';

type Json = Record<string, unknown>;

export interface SchemaIndex {
  top: { label: string; info: string }[];
  ops: Map<string, { info: string; fields: string[]; required: string[]; values: Map<string, string[]> }>;
}

function deref(schema: Json, node: unknown): Json {
  let n = node as Json;
  for (let i = 0; i < 16 && typeof n.$ref === 'string'; i++) {
    const key = n.$ref.split('/').pop()!;
    n = ((schema.$defs as Json)[key] ?? {}) as Json;
  }
  return n;
}

/** The string values a field may take (a const, an enum, or arrays of them). */
function valuesOf(schema: Json, node: unknown): string[] {
  const n = deref(schema, node);
  if (typeof n.const === 'string') return [n.const];
  if (Array.isArray(n.enum)) return n.enum.filter((x): x is string => typeof x === 'string');
  const out: string[] = [];
  if (n.items !== undefined) out.push(...valuesOf(schema, n.items));
  for (const k of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(n[k])) for (const x of n[k] as unknown[]) out.push(...valuesOf(schema, x));
  }
  return [...new Set(out)];
}

function describe(n: Json): string {
  return typeof n.description === 'string' ? n.description : '';
}

/** The object schemas of a union, through nested anyOf / oneOf. */
function variants(schema: Json, node: Json): Json[] {
  const alts = (node.oneOf ?? node.anyOf) as unknown[] | undefined;
  if (!Array.isArray(alts)) return [node];
  return alts.flatMap((a) => variants(schema, deref(schema, a)));
}

export function indexSchema(schema: Json): SchemaIndex {
  try {
    return indexSchemaUnsafe(schema);
  } catch {
    return { top: [], ops: new Map() };
  }
}

function indexSchemaUnsafe(schema: Json): SchemaIndex {
  const props = (schema.properties ?? {}) as Json;
  const top = Object.keys(props).map((k) => ({
    label: k,
    info: describe(deref(schema, props[k])),
  }));
  const ops: SchemaIndex['ops'] = new Map();
  const steps = deref(schema, props.steps);
  const step = deref(schema, steps.items);
  for (const v of variants(schema, step)) {
    const vp = (v.properties ?? {}) as Json;
    const op = valuesOf(schema, vp.op)[0];
    if (op === undefined) continue;
    const values = new Map<string, string[]>();
    for (const [f, fs] of Object.entries(vp)) {
      const vals = valuesOf(schema, fs);
      if (f !== 'op' && vals.length > 0) values.set(f, vals);
    }
    ops.set(op, {
      info: describe(v),
      fields: Object.keys(vp).filter((f) => f !== 'op'),
      required: ((v.required ?? []) as string[]).filter((f) => f !== 'op'),
      values,
    });
  }
  return { top, ops };
}

/** The op of the step the cursor is in: `op: X` on this line, or on the lines of its list item. */
function opAround(lines: string[], lineNo: number): string | null {
  const inline = /\bop:\s*([A-Za-z_0-9]+)/.exec(lines[lineNo]);
  if (inline !== null) return inline[1];
  const indent = (s: string): number => s.length - s.trimStart().length;
  const here = indent(lines[lineNo]);
  for (let i = lineNo - 1; i >= 0; i--) {
    const l = lines[i];
    if (l.trim() === '') continue;
    const m = /\bop:\s*([A-Za-z_0-9]+)/.exec(l);
    if (m !== null) return m[1];
    if (/^\s*-\s/.test(l) || indent(l) < here - 2) return null;
  }
  return null;
}

export function schemaCompletion(index: Promise<SchemaIndex>) {
  return async (ctx: CompletionContext): Promise<CompletionResult | null> => {
    const idx = await index;
    const line = ctx.state.doc.lineAt(ctx.pos);
    const before = line.text.slice(0, ctx.pos - line.from);
    const word = ctx.matchBefore(/[A-Za-z_0-9]*/);
    const from = word?.from ?? ctx.pos;
    if (/\bop:\s*[A-Za-z_0-9]*$/.test(before)) {
      return {
        from,
        options: [...idx.ops].map(([label, o]) => ({ label, type: 'keyword', info: o.info })),
      };
    }
    const lines = ctx.state.doc.toString().split('\n');
    const op = opAround(lines, line.number - 1);
    const valueField = /([A-Za-z_]+):\s*\[?(?:[A-Za-z_0-9]+,\s*)*[A-Za-z_0-9]*$/.exec(before);
    if (op !== null && valueField !== null) {
      const vals = idx.ops.get(op)?.values.get(valueField[1]);
      if (vals !== undefined) return { from, options: vals.map((label) => ({ label, type: 'enum' })) };
    }
    if (op !== null && /(^\s*(-\s*)?|[{,]\s*)[A-Za-z_]*$/.test(before)) {
      const o = idx.ops.get(op);
      if (o !== undefined)
        return {
          from,
          options: o.fields.map((label) => ({
            label,
            type: 'property',
            detail: o.required.includes(label) ? 'required' : undefined,
            apply: `${label}: `,
          })),
        };
    }
    if (/^[A-Za-z_]*$/.test(before)) {
      return {
        from,
        options: idx.top.map((t) => ({
          label: t.label,
          type: 'property',
          info: t.info,
          apply: `${t.label}: `,
        })),
      };
    }
    return null;
  };
}
