/**
 * Reads a scenario file (YAML, or JSON, which the YAML parser reads too) and validates it. Every
 * problem becomes one ScenarioError carrying the line and column of the offending node, so the CLI
 * prints exactly one `FILE:LINE:COL: message` line.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { gpuKind } from '../kernel/drivers/gpu/registry.ts';
import { isDriverIoctlOp, OPS, Scenario, type ScenarioT, type StepT } from './schema.ts';
import { isSize, isU64Literal, parseAddressExpr, ValueError } from './values.ts';

export type Path = readonly (string | number)[];

/** An invalid scenario: a message and where it is. */
export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    message: string,
  ) {
    super(message);
    this.name = 'ScenarioError';
  }

  /** The one line the CLI prints. */
  get oneLine(): string {
    return `${this.file}:${this.line}:${this.col}: ${this.message}`;
  }
}

/** A validated scenario and a way back from a path in it to its place in the file. */
export interface ParsedScenario {
  readonly file: string;
  readonly scenario: ScenarioT;
  /** `line:col` of the node at `path` (or of its nearest existing ancestor). */
  position(path: Path): { line: number; col: number };
}

interface Located {
  doc: Document.Parsed;
  lines: LineCounter;
}

function nodeAt(doc: Document.Parsed, path: Path): { node: Node | null; exact: boolean } {
  let node: unknown = doc.contents;
  let exact = true;
  let last: Node | null = doc.contents ?? null;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (pair === undefined) {
        exact = false;
        break;
      }
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof key === 'number' && key < node.items.length) {
      node = node.items[key];
    } else {
      exact = false;
      break;
    }
    last = node as Node;
  }
  return { node: last, exact };
}

/** The key node of field `key` in the map at `path` (for "unknown field" errors). */
function keyNodeAt(doc: Document.Parsed, path: Path, key: string): Node | null {
  const { node } = nodeAt(doc, path);
  if (!isMap(node)) return null;
  const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key);
  return pair !== undefined && isScalar(pair.key) ? pair.key : null;
}

function lineCol(loc: Located, node: Node | null): { line: number; col: number } {
  const offset = node?.range?.[0] ?? 0;
  return loc.lines.linePos(offset);
}

function valueAt(root: unknown, path: Path): { found: boolean; value: unknown } {
  let v: unknown = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !(key in v)) return { found: false, value: undefined };
    v = (v as Record<string | number, unknown>)[key];
  }
  return { found: true, value: v };
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

/** ` (did you mean 'x'?)` when one candidate is close. */
export function suggest(word: string, candidates: readonly string[]): string {
  let best = '';
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean '${best}'?)` : '';
}

function fieldName(path: Path): string {
  const parts = path.filter((p) => typeof p === 'string');
  return parts.length > 0 ? parts[parts.length - 1] : 'value';
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `'${v}'`;
  // YAML integers above 2^53 arrive as bigints (exact); say which value it was.
  if (typeof v === 'bigint') return `${v} (0x${v.toString(16)}, above 2^53)`;
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v;
}

/** The op of the step that contains `path`, for messages. */
function stepOpAt(root: unknown, path: Path): string | null {
  for (let i = path.length; i > 0; i--) {
    const { value } = valueAt(root, path.slice(0, i));
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'op' in value) {
      const op = value.op;
      return typeof op === 'string' ? op : null;
    }
  }
  return null;
}

function knownFields(op: string): string[] {
  const spec = OPS[op];
  return spec === undefined ? [] : [...Object.keys(spec.fields), 'op', 'save', 'expect', 'comment'];
}

/** One readable message (and the node to blame) for a zod issue. */
function explain(
  issue: z.core.$ZodIssue,
  root: unknown,
  loc: Located,
): { message: string; node: Node | null } {
  const path = issue.path as Path;
  const here = valueAt(root, path);
  const { node } = nodeAt(loc.doc, path);
  const field = fieldName(path);

  // A step is a built-in op or a driver's ioctl; a device is a built-in type or a driver's: explain
  // the issue of the alternative the value was meant to be.
  if (issue.code === 'invalid_union' && !('discriminator' in issue && issue.discriminator !== undefined)) {
    const v = here.value;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const meant =
        'op' in v
          ? isDriverIoctlOp(v.op)
            ? 1
            : 0
          : 'driver' in v && !('type' in v)
            ? 1
            : 'type' in v
              ? 0
              : -1;
      const subs = meant >= 0 ? (issue.errors[meant] ?? []) : [];
      const explained = subs.map((sub) => explain({ ...sub, path: [...path, ...sub.path] }, root, loc));
      explained.sort((a, b) => offsetOf(a.node) - offsetOf(b.node));
      if (explained.length > 0) return explained[0];
    }
  }
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator !== undefined) {
    const disc = issue.discriminator;
    if (!here.found) return { message: `missing field '${disc}'`, node };
    const opts = (issue as { options?: unknown[] }).options?.map(String) ?? [];
    const kind = disc === 'op' ? 'op' : disc;
    return {
      message: `unknown ${kind} '${String(here.value)}'${suggest(String(here.value), opts)}`,
      node,
    };
  }
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    const op = stepOpAt(root, path);
    const where = op !== null && path[path.length - 1] !== 'expect' ? ` in ${op} step` : '';
    let candidates = op !== null ? knownFields(op) : [];
    if (path[path.length - 1] === 'expect' && op !== null) {
      candidates = ['errno', 'ret', 'data', 'bytes', 'pages', 'any', ...(OPS[op]?.outputs ?? [])];
      return {
        message: `'${key}' is not an output of ${op}${suggest(key, candidates)}; expect takes ${candidates.join(', ')}`,
        node: keyNodeAt(loc.doc, path, key) ?? node,
      };
    }
    if (op === null) {
      const { value } = valueAt(root, path);
      candidates = value !== null && typeof value === 'object' ? [] : [];
      if (path.length === 0) {
        candidates = Object.keys(Scenario.shape);
      }
    }
    return {
      message: `unknown field '${key}'${where}${suggest(key, candidates)}`,
      node: keyNodeAt(loc.doc, path, key) ?? node,
    };
  }
  if (!here.found && path.length === 1 && path[0] === 'version') {
    return {
      message: "missing field 'version': version: 1 is required (the only scenario format so far)",
      node,
    };
  }
  if (!here.found) {
    const op = stepOpAt(root, path.slice(0, -1));
    return { message: `missing field '${field}'${op !== null ? ` in ${op} step` : ''}`, node };
  }
  if (issue.code === 'invalid_union') {
    // An alternative whose type matched but whose content did not (a list with one bad item):
    // explain that item rather than say the whole value had the wrong type.
    const inner = issue.errors.find((alt) => alt.length > 0 && alt.every((e) => e.path.length > 0));
    if (inner !== undefined) {
      const sub = inner[0];
      return explain({ ...sub, path: [...path, ...sub.path] }, root, loc);
    }
    const custom = issue.errors.flat().find((e) => e.code === 'custom');
    const expected = [
      ...new Set(
        issue.errors
          .flat()
          .filter((e) => e.code === 'invalid_type')
          .map((e) => (e as { expected: string }).expected),
      ),
    ];
    const why =
      custom?.message ?? (expected.length > 0 ? `expected ${expected.join(' or ')}` : 'invalid value');
    // A field that takes no bigint (a size, a count) cannot hold an integer above 2^53: say so,
    // with what the field does take.
    if (typeof here.value === 'bigint')
      return {
        message: `field '${field}': ${describeType(here.value)} is too large for this field, which takes integers up to 2^53 - 1 (9007199254740991); only u64 fields (iommufd uAPI fields, and the addresses and lengths of mmap, munmap, mprotect, madvise, mremap, mlock, munlock, mseal and mincore, and the flags of mseal) take larger values`,
        node,
      };
    return { message: `field '${field}': ${why}, got ${describeType(here.value)}`, node };
  }
  if (issue.code === 'invalid_type') {
    return { message: `field '${field}': expected ${issue.expected}, got ${describeType(here.value)}`, node };
  }
  if (issue.code === 'invalid_value') {
    const numeric = issue.values.find((v) => typeof v === 'number' && String(v) === String(here.value));
    if (typeof here.value === 'string' && numeric !== undefined)
      return {
        message: `field '${field}': expected the number ${String(numeric)}, got the string '${here.value}' (drop the quotes)`,
        node,
      };
    const vals = issue.values.map((v) => String(v));
    return {
      message: `field '${field}': ${describeType(here.value)} is not one of ${vals.join(', ')}${suggest(String(here.value), vals)}`,
      node,
    };
  }
  return { message: `field '${field}': ${issue.message}`, node };
}

function offsetOf(node: Node | null): number {
  return node?.range?.[0] ?? 0;
}

/** toJS reviver: a bigint that a double holds exactly becomes a number; larger ones stay bigints. */
function exactIntegers(_key: unknown, v: unknown): unknown {
  if (typeof v !== 'bigint') return v;
  const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
  return safe ? Number(v) : v;
}

/** Parses and validates scenario text; throws ScenarioError. */
export function parseScenarioText(text: string, file: string): ParsedScenario {
  const lines = new LineCounter();
  // Integers are read as bigints so values above 2^53 (a u64 IOVA or length) stay exact; those
  // that fit a double exactly become numbers again below.
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
    intAsBigInt: true,
  });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = lines.linePos(e.pos[0]);
    const msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new ScenarioError(
      file,
      pos.line,
      pos.col,
      `invalid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${msg}`,
    );
  }
  const loc: Located = { doc, lines };
  const root: unknown = doc.toJS({ maxAliasCount: 1000, reviver: exactIntegers });
  if (root === null || typeof root !== 'object' || Array.isArray(root)) {
    throw new ScenarioError(
      file,
      1,
      1,
      'a scenario is a map with version, system, devices, processes and steps',
    );
  }
  const result = Scenario.safeParse(root);
  if (!result.success) {
    // Report the issue that comes first in the file: that is the one a reader fixes first.
    const explained = result.error.issues.map((i) => explain(i, root, loc));
    explained.sort((a, b) => offsetOf(a.node) - offsetOf(b.node));
    const first = explained[0];
    const pos = lineCol(loc, first.node);
    throw new ScenarioError(file, pos.line, pos.col, first.message);
  }
  const positions = new Map<string, { line: number; col: number }>();
  const parsed: ParsedScenario = {
    file,
    scenario: result.data,
    position: (path) => {
      // The document never changes, and the explorer asks for the same steps' lines every schedule.
      const key = path.join('\u0000');
      let pos = positions.get(key);
      if (pos === undefined) positions.set(key, (pos = lineCol(loc, nodeAt(doc, path).node)));
      return { ...pos };
    },
  };
  checkStepCount(parsed);
  checkBindings(parsed);
  return parsed;
}

/** Reads and validates a scenario file; throws ScenarioError (also for an unreadable file). */
export function parseScenarioFile(file: string): ParsedScenario {
  return parseScenarioText(readBounded(file), file);
}

/**
 * Scenario files are bounded: a file above this size (or an endless one such as /dev/zero) is
 * refused before it is parsed, so a bad path cannot exhaust memory.
 */
export const MAX_SCENARIO_BYTES = 4 * 1024 * 1024;
/** Steps in all sections together; a run keeps a report per step. */
export const MAX_SCENARIO_STEPS = 50_000;

/** Reads at most MAX_SCENARIO_BYTES of a file, whatever kind of file it is. */
function readBounded(file: string): string {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ScenarioError(file, 1, 1, `cannot read the file (${code})`);
  }
  try {
    for (;;) {
      const buf = new Uint8Array(64 * 1024);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_SCENARIO_BYTES)
        throw new ScenarioError(
          file,
          1,
          1,
          `the file is larger than ${MAX_SCENARIO_BYTES >> 20} MiB; split it`,
        );
      chunks.push(buf.subarray(0, n));
    }
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ScenarioError(file, 1, 1, `cannot read the file (${code})`);
  } finally {
    closeSync(fd);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

function checkStepCount(parsed: ParsedScenario): void {
  const s = parsed.scenario;
  const sections = [s.setup, s.steps, s.final, ...Object.values(s.threads ?? {})];
  const n = sections.reduce((acc, st) => acc + (st?.length ?? 0), 0);
  if (n > MAX_SCENARIO_STEPS)
    throw new ScenarioError(parsed.file, 1, 1, `${n} steps; a scenario has at most ${MAX_SCENARIO_STEPS}`);
}

/** Fields whose value names a process. */
const PROC_FIELDS = new Set(['proc', 'target']);
/** Lists of records whose fields may name values: the list's field, and the record fields. */
const NAMED_RECORD_FIELDS: readonly (readonly [string, readonly string[]])[] = [
  ['allowed_iovas', ['start', 'last']],
  ['iov', ['addr', 'length']],
];
/** Fields that are not numeric expressions. */
const NON_NUMERIC = new Set([
  'op',
  'save',
  'expect',
  'comment',
  'proc',
  'target',
  'child',
  'device',
  'name',
  'data',
  'flags',
  'prot',
  'advice',
  'option_id',
  'option_op',
  'allowed_iovas',
  'iov',
  'dirty',
  'access',
  'cmd',
  'whence',
  // setrlimit's: a resource's name, and sizes or 'unlimited' (the schema admits no bound names).
  'resource',
  'cur',
  'max',
]);

/**
 * Checks, in file order, that every name a step uses was bound before: processes (from
 * `processes` or an earlier fork), devices, and names bound by `save`. Threads see the setup's
 * names and their own; `final` sees everything.
 */
function checkBindings(p: ParsedScenario): void {
  const s = p.scenario;
  const fail = (path: Path, message: string): never => {
    const pos = p.position(path);
    throw new ScenarioError(p.file, pos.line, pos.col, message);
  };
  if (s.steps === undefined && s.threads === undefined) {
    fail([], "a scenario needs 'steps' (for run) or 'threads' (for explore)");
  }
  if (s.explore !== undefined && s.threads === undefined) {
    fail(['explore'], "'explore' declares what exploring the threads gives, but this file has no 'threads'");
  }
  if (s.explore?.expect === 'clean' && s.explore.oracle !== undefined) {
    fail(['explore', 'oracle'], "'oracle' names what a 'found' outcome reports; 'expect: clean' takes none");
  }
  const procs = new Set<string>(s.processes ?? []);
  const devices = new Set<string>(Object.keys(s.devices ?? {}));
  const names = new Set<string>();
  // A built-in GPU device's uAPI constants are bound names (DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR).
  for (const dev of Object.values(s.devices ?? {})) {
    const kind = 'type' in dev ? gpuKind(dev.type) : null;
    for (const k of Object.keys(kind?.constants ?? {})) names.add(k);
  }

  const walk = (steps: readonly StepT[], base: Path, procs: Set<string>, names: Set<string>): void => {
    steps.forEach((step, i) => {
      const path = [...base, i];
      for (const [key, value] of Object.entries(step)) {
        if (PROC_FIELDS.has(key) && typeof value === 'string' && !procs.has(value)) {
          fail(
            [...path, key],
            `unknown process '${value}'${suggest(value, [...procs])}: list it in 'processes' or create it with fork`,
          );
        }
        if (
          key === 'device' &&
          typeof value === 'string' &&
          !devices.has(value) &&
          (step.op === 'dmirror_open' || step.op === 'device_open')
        ) {
          fail(
            [...path, key],
            `unknown device '${value}'${suggest(value, [...devices])}: declare it under 'devices'`,
          );
        }
        if (key === 'child' && typeof value === 'string') procs.add(value);
        if (!NON_NUMERIC.has(key) && typeof value === 'string') checkName(value, [...path, key], names);
      }
      // Names inside lists of records: allowed_iovas' ranges, process_madvise's segments.
      for (const [list, keys] of NAMED_RECORD_FIELDS) {
        const items = step[list];
        if (!Array.isArray(items)) continue;
        (items as Record<string, unknown>[]).forEach((r, j) => {
          for (const k of keys) if (typeof r[k] === 'string') checkName(r[k], [...path, list, j, k], names);
        });
      }
      const save = step.save;
      if (typeof save === 'string') names.add(save);
      else if (save !== undefined && typeof save === 'object') {
        const outs = OPS[step.op]?.outputs ?? [];
        for (const [field, name] of Object.entries(save)) {
          // A driver ioctl's outputs are checked once its driver is loaded.
          if (!outs.includes(field) && field !== 'ret' && !isDriverIoctlOp(step.op)) {
            fail(
              [...path, 'save', field],
              `'${field}' is not an output of ${step.op}${suggest(field, outs)}`,
            );
          }
          names.add(name);
        }
      }
    });
  };
  const checkName = (value: string, path: Path, names: Set<string>): void => {
    if (isSize(value) || isU64Literal(value)) return;
    try {
      const e = parseAddressExpr(value);
      if (e.name !== null && !names.has(e.name)) {
        fail(
          path,
          `unbound name '${e.name}'${suggest(e.name, [...names])}: bind it with 'save' in an earlier step`,
        );
      }
    } catch (err) {
      if (err instanceof ValueError) fail(path, err.message);
      throw err;
    }
  };

  if (s.setup !== undefined) walk(s.setup, ['setup'], procs, names);
  if (s.steps !== undefined) walk(s.steps, ['steps'], procs, names);
  const allNames = new Set(names);
  const allProcs = new Set(procs);
  if (s.threads !== undefined) {
    for (const [t, steps] of Object.entries(s.threads)) {
      const tn = new Set(names);
      const tp = new Set(procs);
      walk(steps, ['threads', t], tp, tn);
      for (const n of tn) allNames.add(n);
      for (const q of tp) allProcs.add(q);
    }
  }
  if (s.final !== undefined) walk(s.final, ['final'], allProcs, allNames);
}
