/**
 * "Predict the next state": questions derived from what the next step actually does. The worker
 * runs the step out of sight; the questions compare the state before it with the state after it
 * (device page-table entries per page, the CPU entry of a page, a frame's mapcount and refcount,
 * an interval notifier's seq, what HMM_DMIRROR_SNAPSHOT returns, the return value) and ask only
 * about what the step touched. Pure data in and out: no DOM, so node tests call it too.
 */
import type { DevPteSnap, Snapshot } from '../../src/scenario/snapshot.ts';
import type { StudioState, UnitInfo } from '../../src/scenario/studio.ts';
import { parseProtBytes, protBytesSummary } from '../../src/scenario/values.ts';
import { hex } from './format.ts';

export type QuestionKind = 'value' | 'pages' | 'choice' | 'bytes';

export interface Question {
  /** Stable within one step: what it asks about ('ret', 'dev:gpu0#1', 'cpu:1:0x1000', ...). */
  id: string;
  kind: QuestionKind;
  /** Short name of the answer field. */
  label: string;
  prompt: string;
  /** pages: the addresses to choose from; choice: the answers to choose from. */
  options: string[];
  /** The model's answer: one string, or the set of pages (kind 'pages'). */
  expected: string[];
}

export type Answer = string | string[];

export interface Check {
  id: string;
  label: string;
  expected: string;
  given: string;
  ok: boolean;
}

/** At most this many questions a step (the return value comes first). */
export const MAX_QUESTIONS = 5;
/** At most this many pages to choose from. */
const MAX_OPTIONS = 16;

/** Device entry states, as the page-table view shows them. */
export const DEVICE_STATES = [
  'none',
  'read',
  'write',
  'atomic',
  'read devmem',
  'write devmem',
  'atomic devmem',
] as const;

/** CPU entry states: the kind, and whether it is writable. */
export const CPU_STATES = [
  'none',
  'present',
  'present writable',
  'zero',
  'protnone',
  'swap',
  'migration',
  'migration writable',
  'device-private',
  'device-private writable',
  'exclusive',
  'exclusive writable',
  'hwpoison',
  'guard',
] as const;

function devState(e: DevPteSnap | undefined): string {
  if (e === undefined) return 'none';
  return `${e.access}${e.deviceMemory ? ' devmem' : ''}`;
}

interface PageRef {
  pid: number;
  proc: string;
  addr: number;
}

/** Every device entry of a snapshot: mirror -> address -> entry, with the process that owns it. */
type Entries = Map<number, { e: DevPteSnap; ref: PageRef }>;

function deviceEntries(s: Snapshot): Map<string, Entries> {
  const out = new Map<string, Entries>();
  for (const p of s.processes) {
    for (const pg of p.pages) {
      for (const e of pg.devices) {
        let m = out.get(e.mirror);
        if (m === undefined) {
          m = new Map() as Entries;
          out.set(e.mirror, m);
        }
        m.set(pg.addr, { e, ref: { pid: p.pid, proc: p.name, addr: pg.addr } });
      }
    }
  }
  return out;
}

function cpuState(s: Snapshot, pid: number, addr: number): string | null {
  const pg = s.processes.find((p) => p.pid === pid)?.pages.find((x) => x.addr === addr);
  if (pg === undefined) return null;
  const k = pg.cpu.kind;
  return pg.cpu.writable && (CPU_STATES as readonly string[]).includes(`${k} writable`) ? `${k} writable` : k;
}

/** Where a frame is mapped, to name it in a question. */
function whereMapped(s: Snapshot, pfn: number): PageRef | null {
  for (const p of s.processes) {
    const pg = p.pages.find((x) => x.cpu.pfn === pfn && x.cpu.kind !== 'swap' && x.cpu.kind !== 'none');
    if (pg !== undefined) return { pid: p.pid, proc: p.name, addr: pg.addr };
  }
  return null;
}

function retQuestion(unit: UnitInfo, after: StudioState): Question | null {
  const r = after.report;
  if (r === null || r.section === 'teardown' || r.op === 'check' || r.op.startsWith('expect')) return null;
  // Addresses the kernel picks (mmap, a chosen IOVA) are not something to predict.
  if (r.errno === null && Math.abs(r.ret) >= 2 ** 20) return null;
  return {
    id: 'ret',
    kind: 'value',
    label: 'Return value',
    prompt: `What does ${unit.label} return? (a number, or an errno such as EFAULT)`,
    options: [],
    expected: [r.errno ?? String(r.ret)],
  };
}

function bytesQuestion(after: StudioState): Question | null {
  const b = after.report?.bytes;
  if (b === undefined || b.length === 0) return null;
  return {
    id: 'bytes',
    kind: 'bytes',
    label: 'Snapshot bytes',
    prompt: `What does the snapshot return for its ${b.length} pages? One HMM_DMIRROR_PROT name per page, NAME*N for a run (e.g. ZERO|READ*2, NONE)`,
    options: [],
    expected: [protBytesSummary(b).slice(1, -1)],
  };
}

function deviceQuestions(before: Snapshot, after: Snapshot): Question[] {
  const out: Question[] = [];
  const b = deviceEntries(before);
  const a = deviceEntries(after);
  const mirrors = [...new Set([...b.keys(), ...a.keys()])].sort();
  for (const mirror of mirrors) {
    const mb: Entries = b.get(mirror) ?? (new Map() as Entries);
    const ma: Entries = a.get(mirror) ?? (new Map() as Entries);
    const changed = [...new Set([...mb.keys(), ...ma.keys()])]
      .sort((x, y) => x - y)
      .filter((addr) => devState(mb.get(addr)?.e) !== devState(ma.get(addr)?.e));
    if (mb.size === 0 && ma.size === 0) continue;
    // The pages to choose from: what the device maps before or after, and what the CPU maps in
    // the same process (so "it keeps all of them" is not the only answer left).
    const ref = (mb.values().next().value ?? ma.values().next().value)!.ref;
    const proc =
      after.processes.find((p) => p.pid === ref.pid) ?? before.processes.find((p) => p.pid === ref.pid);
    const cpuPages = (proc?.pages ?? [])
      .filter((pg) => pg.cpu.kind !== 'none' && pg.cpu.kind !== 'swap')
      .map((pg) => pg.addr);
    const options = [...new Set([...mb.keys(), ...ma.keys(), ...cpuPages])]
      .sort((x, y) => x - y)
      .slice(0, MAX_OPTIONS);
    out.push({
      id: `dev:${mirror}`,
      kind: 'pages',
      label: `Pages ${mirror} maps`,
      prompt: `Which of these pages of ${ref.proc} does ${mirror} map after this step?`,
      options: options.map(hex),
      expected: options.filter((x) => ma.has(x)).map(hex),
    });
    const addr = changed.find((x) => ma.has(x)) ?? changed[0];
    if (addr !== undefined) {
      out.push({
        id: `deventry:${mirror}:${hex(addr)}`,
        kind: 'choice',
        label: `${mirror} entry at ${hex(addr)}`,
        prompt: `What is ${mirror}'s entry for ${hex(addr)} after this step (it was ${devState(mb.get(addr)?.e)})?`,
        options: [...DEVICE_STATES],
        expected: [devState(ma.get(addr)?.e)],
      });
    }
  }
  return out;
}

function cpuQuestion(before: Snapshot, after: Snapshot): Question | null {
  for (const p of before.processes) {
    for (const pg of p.pages) {
      const was = cpuState(before, p.pid, pg.addr);
      const now = cpuState(after, p.pid, pg.addr);
      if (was === null || now === null || was === now) continue;
      return {
        id: `cpu:${p.pid}:${hex(pg.addr)}`,
        kind: 'choice',
        label: `CPU entry at ${hex(pg.addr)}`,
        prompt: `What is ${p.name}'s CPU page-table entry for ${hex(pg.addr)} after this step (it was ${was})?`,
        options: [...CPU_STATES],
        expected: [now],
      };
    }
  }
  return null;
}

function frameQuestions(before: Snapshot, after: Snapshot): Question[] {
  const was = new Map(before.frames.map((f) => [f.pfn, f]));
  for (const f of after.frames) {
    const old = was.get(f.pfn);
    if (old === undefined) continue;
    if (old.mapcount === f.mapcount && old.refcount === f.refcount) continue;
    const at = whereMapped(before, f.pfn);
    if (at === null) continue;
    const name = `frame ${f.pfn} (${at.proc}'s page at ${hex(at.addr)})`;
    const out: Question[] = [];
    for (const count of ['mapcount', 'refcount'] as const) {
      if (old[count] === f[count]) continue;
      out.push({
        id: `${count}:${f.pfn}`,
        kind: 'value',
        label: `${count === 'mapcount' ? 'Mapcount' : 'Refcount'} of frame ${f.pfn}`,
        prompt: `What is the ${count} of ${name} after this step (it was ${old[count]})?`,
        options: [],
        expected: [String(f[count])],
      });
    }
    return out;
  }
  return [];
}

function seqQuestion(before: Snapshot, after: Snapshot): Question | null {
  for (const n of after.notifiers) {
    const old = before.notifiers.find((x) => x.mm === n.mm);
    if (old === undefined) continue;
    for (const i of n.intervals) {
      const o = old.intervals.find((x) => x.start === i.start && x.last === i.last && x.owner === i.owner);
      if (o === undefined || o.seq === i.seq) continue;
      return {
        id: `seq:${n.mm}:${hex(i.start)}`,
        kind: 'value',
        label: `Seq of ${i.owner}'s notifier`,
        prompt: `What is the seq of ${i.owner}'s interval notifier ${hex(i.start)}-${hex(i.last)} after this step (it was ${o.seq}; mm ${n.mm}'s invalidate_seq was ${old.treeSeq})?`,
        options: [],
        expected: [String(i.seq)],
      };
    }
    if (old.treeSeq !== n.treeSeq) {
      return {
        id: `treeseq:${n.mm}`,
        kind: 'value',
        label: `invalidate_seq of mm ${n.mm}`,
        prompt: `What is mm ${n.mm}'s invalidate_seq after this step (it was ${old.treeSeq})?`,
        options: [],
        expected: [String(n.treeSeq)],
      };
    }
  }
  return null;
}

function cpuPagesQuestion(before: Snapshot, after: Snapshot): Question {
  const count = (s: Snapshot): number =>
    s.processes.reduce(
      (n, p) => n + p.pages.filter((x) => x.cpu.kind === 'present' || x.cpu.kind === 'zero').length,
      0,
    );
  return {
    id: 'cpupages',
    kind: 'value',
    label: 'Pages the CPU maps',
    prompt: `How many pages does the CPU map (present or zero page) after this step (${count(before)} before)?`,
    options: [],
    expected: [String(count(after))],
  };
}

/** The questions about the step `unit`, which takes the state `before` to `after`. */
export function questionsFor(unit: UnitInfo, before: StudioState, after: StudioState): Question[] {
  const b = before.snapshot;
  const a = after.snapshot;
  const ret = retQuestion(unit, after);
  const rest: Question[] = [];
  const bytes = bytesQuestion(after);
  if (bytes !== null) rest.push(bytes);
  // Checks and expectations change nothing: asking what a device keeps across them is noise.
  const passive = unit.label === 'check' || unit.label.startsWith('expect');
  if (!passive) rest.push(...deviceQuestions(b, a));
  const cpu = cpuQuestion(b, a);
  if (cpu !== null) rest.push(cpu);
  rest.push(...frameQuestions(b, a));
  const seq = seqQuestion(b, a);
  if (seq !== null) rest.push(seq);
  if (rest.length === 0) rest.push(cpuPagesQuestion(b, a));
  return [...(ret === null ? [] : [ret]), ...rest].slice(0, MAX_QUESTIONS);
}

/** Numbers compare by value (0x10 is 16); errno names with or without the minus sign. */
function sameValue(expected: string, given: string): boolean {
  const x = expected.trim();
  const y = given.trim();
  if (x === '' || y === '') return x === y;
  const nx = Number(x);
  const ny = Number(y);
  if (!Number.isNaN(nx) && !Number.isNaN(ny)) return nx === ny;
  return x.replace(/^-/, '').toUpperCase() === y.replace(/^-/, '').toUpperCase();
}

/** SNAPSHOT bytes compare as bytes: 'READ|ZERO' is 'ZERO|READ', 'READ*2' is 'READ, READ'. */
function sameBytes(expected: string, given: string): boolean {
  const parse = (t: string): number[] | null => {
    const items = t
      .replace(/^\[|\]$/g, '')
      .split(',')
      .map((x) => x.trim().toUpperCase())
      .filter((x) => x !== '');
    try {
      return parseProtBytes(items);
    } catch {
      return null;
    }
  };
  const want = parse(expected);
  const got = parse(given);
  return want !== null && got !== null && want.length === got.length && want.every((v, i) => v === got[i]);
}

function shown(q: Question, v: Answer | undefined): string {
  if (q.kind === 'pages') {
    const list = Array.isArray(v) ? v : [];
    return list.length === 0 ? 'none of them' : list.join(', ');
  }
  return typeof v === 'string' ? v : '';
}

/** Checks the answers against the model's. */
export function checkAnswers(questions: readonly Question[], answers: Record<string, Answer>): Check[] {
  return questions.map((q) => {
    const given = answers[q.id];
    let ok: boolean;
    if (q.kind === 'pages') {
      const set = new Set(Array.isArray(given) ? given : []);
      ok = set.size === q.expected.length && q.expected.every((x) => set.has(x));
    } else {
      const g = typeof given === 'string' ? given : '';
      ok =
        q.kind === 'bytes'
          ? sameBytes(q.expected[0], g)
          : q.kind === 'choice'
            ? g === q.expected[0]
            : sameValue(q.expected[0], g);
    }
    return {
      id: q.id,
      label: q.label,
      expected: shown(q, q.kind === 'pages' ? q.expected : q.expected[0]),
      given: shown(q, given),
      ok,
    };
  });
}
