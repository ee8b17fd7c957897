/**
 * Sim files (docs/sim.md): a YAML document that sets everything `hetmem sim` takes, the driver's
 * tunables, an optional trace, and a sweep (a grid over keys, each given a list of values) whose
 * points run as separate simulations and print one table. Every refusal names the file, line and
 * column of the offending value.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { parseSize, SizeError } from '../lib/size.ts';
import { UVM_TUNABLE_KEYS } from '../kernel/drivers/gpu/uvm_config.ts';
import { COST_MODELS } from './cost.ts';
import { SIM_DEFAULTS, type SimOptions } from './engine.ts';
import { TRACE_FORMATS, type TraceFormat } from './traces.ts';
import { WORKLOADS } from './workloads.ts';

export class SimFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly why: string,
  ) {
    super(`${file}:${line}:${col}: ${why}`);
  }
}

export interface SimFile {
  readonly base: SimOptions;
  readonly trace?: { readonly file: string; readonly format: TraceFormat };
  /** `plot: OUT.svg`: where the charts go, and where the file names it (for errors). */
  readonly plot?: { readonly file: string; readonly line: number; readonly col: number };
  /** Sweep axes: key (as in the file, `driver.X` for tunables) -> values. */
  readonly sweep: readonly (readonly [string, readonly unknown[]])[];
}

type Setter = (o: Record<string, unknown>, v: unknown) => string | null;

const POLICIES = ['ondemand', 'random4k', 'seq64k', 'tree'];

function int(min: number, key: string): Setter {
  return (o, v) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      return `${key} takes an integer >= ${min}`;
    o[key] = v;
    return null;
  };
}

function size(key: string, field: string): Setter {
  return (o, v) => {
    try {
      o[field] = parseSize(v as string | number);
      return null;
    } catch (e) {
      if (e instanceof SizeError) return `${key}: ${e.message}`;
      throw e;
    }
  };
}

function oneOf(key: string, field: string, values: readonly string[]): Setter {
  return (o, v) => {
    if (typeof v !== 'string' || !values.includes(v)) return `${key} is one of ${values.join(', ')}`;
    o[field] = v;
    return null;
  };
}

/** The keys of a sim file (and of a sweep) and how each is checked. */
export const SIM_KEYS: Readonly<Record<string, Setter>> = {
  workload: oneOf('workload', 'workload', Object.keys(WORKLOADS)),
  footprint: size('footprint', 'footprint'),
  gpu_memory: size('gpu_memory', 'gpuMemory'),
  policy: oneOf('policy', 'policy', POLICIES),
  cost: oneOf('cost', 'cost', Object.keys(COST_MODELS)),
  seed: int(0, 'seed'),
  warps: int(1, 'warps'),
  group: int(1, 'group'),
  iterations: int(1, 'iterations'),
  stride: int(1, 'stride'),
  tile: int(1, 'tile'),
  processes: int(1, 'processes'),
  gpus: int(1, 'gpus'),
  cpu_touch: (o, v) => {
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) return 'cpu_touch is a fraction from 0 to 1';
    o.cpuTouch = v;
    return null;
  },
  compute_ns: (o, v) => {
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) return 'compute_ns is a number >= 0';
    o.computeNs = v;
    return null;
  },
};

/** Sets `driver.KEY` (a UVM tunable) after checking its type. */
function setDriver(o: Record<string, unknown>, key: string, v: unknown): string | null {
  if (!(key in UVM_TUNABLE_KEYS)) return `unknown driver tunable '${key}' (see docs/sim.md)`;
  o.driver = { ...(o.driver as Record<string, unknown>), [key]: v };
  return null;
}

/** Applies `key: v` to options `o`; null or the reason it is refused. */
export function applySimKey(o: Record<string, unknown>, key: string, v: unknown): string | null {
  if (key.startsWith('driver.')) return setDriver(o, key.slice(7), v);
  const set = SIM_KEYS[key] as Setter | undefined;
  if (set === undefined) return `unknown key '${key}'`;
  if (key === 'workload' || key === 'cpu_touch' || key === 'compute_ns') return set(o, v);
  return set(o, v);
}

/** Parses a sim file's text. Throws SimFileError. */
export function parseSimFile(file: string, text: string): SimFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (node: Node | null | undefined): [number, number] => {
    const off = node?.range?.[0] ?? 0;
    const p = lines.linePos(off);
    return [p.line, p.col];
  };
  const fail = (node: Node | null | undefined, why: string): never => {
    const [l, c] = at(node);
    throw new SimFileError(file, l, c, why);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const p = lines.linePos(e.pos[0]);
    throw new SimFileError(file, p.line, p.col, e.message.split('\n')[0]);
  }
  const root = doc.contents;
  if (!isMap(root)) return fail(root, 'a sim file is a map of keys (see docs/sim.md)');
  const o: Record<string, unknown> = { ...SIM_DEFAULTS, driver: {} };
  let trace: SimFile['trace'];
  let plot: SimFile['plot'];
  const sweep: [string, unknown[]][] = [];
  let version = false;
  for (const pair of root.items) {
    const k = pair.key as Node;
    const key = isScalar(k) ? String(k.value) : fail(k, 'keys are plain names');
    const vnode = pair.value as Node | null;
    const value: unknown = isScalar(vnode) ? vnode.value : vnode?.toJSON();
    if (key === 'version') {
      if (value !== 1) fail(vnode, 'version must be 1');
      version = true;
    } else if (key === 'driver') {
      if (!isMap(vnode)) return fail(vnode, 'driver is a map of tunables');
      for (const dp of vnode.items) {
        const dk = dp.key as Node;
        const dv = dp.value as Node | null;
        const why = setDriver(
          o,
          isScalar(dk) ? String(dk.value) : '',
          isScalar(dv) ? dv.value : dv?.toJSON(),
        );
        if (why !== null) fail(why.startsWith('unknown') ? dk : dv, why);
      }
    } else if (key === 'trace') {
      if (!isMap(vnode)) return fail(vnode, 'trace is { file: PATH, format: FORMAT }');
      const t = vnode.toJSON() as Record<string, unknown>;
      if (typeof t.file !== 'string') fail(vnode, 'trace.file is a path');
      if (typeof t.format !== 'string' || !(TRACE_FORMATS as readonly string[]).includes(t.format))
        fail(vnode, `trace.format is one of ${TRACE_FORMATS.join(', ')}`);
      trace = { file: t.file as string, format: t.format as TraceFormat };
    } else if (key === 'plot') {
      if (typeof value !== 'string' || value === '') return fail(vnode, 'plot is the path of an SVG file');
      const [line, col] = at(vnode);
      plot = { file: value, line, col };
    } else if (key === 'sweep') {
      if (!isMap(vnode)) return fail(vnode, 'sweep is a map from keys to lists of values');
      for (const sp of vnode.items) {
        const sk = sp.key as Node;
        const sv = sp.value as Node | null;
        const name = isScalar(sk) ? String(sk.value) : fail(sk, 'sweep keys are plain names');
        if (!isSeq(sv) || sv.items.length === 0) return fail(sv ?? sk, `sweep.${name} is a non-empty list`);
        const values: unknown[] = [];
        for (const item of sv.items) {
          const v: unknown = isScalar(item) ? item.value : (item as Node).toJSON();
          const why = applySimKey({ ...o }, name, v);
          if (why !== null) fail(why.startsWith('unknown') ? sk : (item as Node), why);
          values.push(v);
        }
        sweep.push([name, values]);
      }
    } else {
      const why = applySimKey(o, key, value);
      if (why !== null) fail(why.startsWith('unknown') ? k : vnode, why);
    }
  }
  if (!version) fail(root, 'a sim file starts with version: 1');
  const points = sweep.reduce((n, [, v]) => n * v.length, 1);
  if (points > 1000) fail(root, `the sweep has ${points} points; at most 1000`);
  return { base: o as unknown as SimOptions, trace, sweep, ...(plot !== undefined ? { plot } : {}) };
}

/** Every point of a sweep: the options and the values that set it. */
export function sweepPoints(
  base: SimOptions,
  sweep: SimFile['sweep'],
): { opts: SimOptions; at: Record<string, unknown> }[] {
  let points: { opts: Record<string, unknown>; at: Record<string, unknown> }[] = [
    { opts: { ...base }, at: {} },
  ];
  for (const [key, values] of sweep) {
    const next: typeof points = [];
    for (const p of points) {
      for (const v of values) {
        const opts = { ...p.opts };
        applySimKey(opts, key, v);
        next.push({ opts, at: { ...p.at, [key]: v } });
      }
    }
    points = next;
  }
  return points.map((p) => ({ opts: p.opts as unknown as SimOptions, at: p.at }));
}
