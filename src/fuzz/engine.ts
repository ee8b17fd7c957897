/**
 * The fuzz loop of one worker: fresh programs and mutations of corpus programs, each run with
 * every oracle after every step; programs that reach something new (an op with a result class, a
 * counter it moved) join the corpus; every new kind of failure is minimised. Program i of a worker
 * is drawn from (seed, worker, i), so a run is reproducible for a given seed and worker count.
 */
import { Prng } from '../lib/prng.ts';
import { parseScenarioText, ScenarioError } from '../scenario/parse.ts';
import {
  confirmHang,
  type Finding,
  findingKey,
  programDocument,
  type ProgramResult,
  runProgram,
  runProgramTwice,
} from './execute.ts';
import { Generator, generatorAfter, type OpGroup, type Program, type Step } from './generate.ts';
import { knownFinding } from './known.ts';

export interface EngineOptions {
  seed: number;
  groups: readonly OpGroup[];
  worker: number;
  /** Stop after this wall-clock time (ms since the epoch). */
  deadline: number;
  /** Stop after this many programs (this worker's share). */
  programs: number;
  /** The first program index (a restarted worker goes on after the program that stopped it). */
  firstProgram?: number;
  /** Minimising one failure stops after this long. */
  minimizeMs?: number;
}

export interface Report {
  key: string;
  finding: Finding;
  /** The minimised program as a scenario document. */
  document: Record<string, unknown>;
  known: string | null;
  program: number;
}

export interface EngineStats {
  programs: number;
  ops: number;
  rejected: number;
  corpus: number;
  features: number;
  /** Per op run outside threads: the results it gave (errno names, `0`, `+` for positive). */
  opResults: Record<string, string[]>;
}

/** The op:result features of a run, grouped by op (the coverage report's view of them). */
export function opResultsOf(features: Iterable<string>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const f of features) {
    const m = /^([A-Za-z0-9_]+):(.+)$/.exec(f);
    if (m === null || m[1] === 'threads') continue;
    (out[m[1]] ??= []).push(m[2]);
  }
  for (const k of Object.keys(out)) out[k].sort();
  return out;
}

export interface EngineHooks {
  /** Called before each program runs (the parent's watchdog names a hung program with it). */
  onStart?(index: number, p: Program): void;
  onReport?(r: Report): void;
  onProgress?(s: EngineStats): void;
}

const PROGRAM_STEPS = 30;

/** Whether a program is a scenario file `hetmem run` accepts (names bound before use, too). */
function validFile(q: Program): boolean {
  try {
    parseScenarioText(JSON.stringify(programDocument(q, 'fuzz')), '<fuzz>.json');
    return true;
  } catch (e) {
    if (e instanceof ScenarioError) return false;
    throw e;
  }
}

/** Removes steps while the failure stays the same (delta debugging over the step list). */
export function minimize(p: Program, key: string, seed: number, deadline: number): Program {
  const same = (q: Program): boolean => {
    if (!validFile(q)) return false;
    const r = runProgram(q, seed);
    return r.finding !== null && findingKey(r.finding) === key;
  };
  let best = p;
  const lists = (q: Program): string[] => ['steps', ...Object.keys(q.threads ?? {})];
  const get = (q: Program, l: string): Step[] => (l === 'steps' ? q.steps : (q.threads?.[l] ?? []));
  const set = (q: Program, l: string, s: Step[]): Program =>
    l === 'steps' ? { ...q, steps: s } : { ...q, threads: { ...q.threads, [l]: s } };
  for (const l of lists(best)) {
    let chunk = Math.max(1, Math.floor(get(best, l).length / 2));
    while (chunk >= 1 && Date.now() < deadline) {
      let removed = false;
      for (let i = 0; i < get(best, l).length && Date.now() < deadline;) {
        const s = get(best, l);
        const cand = set(best, l, [...s.slice(0, i), ...s.slice(i + chunk)]);
        if (same(cand)) {
          best = cand;
          removed = true;
        } else i += chunk;
      }
      if (!removed) chunk = Math.floor(chunk / 2);
    }
  }
  return best;
}

/**
 * The reproducer: the minimised program with each step's observed errno as its expectation, cut
 * after the failing step, with a `check` there so `hetmem run` fires the same oracle.
 */
export function reproducer(p: Program, f: Finding, seed: number, program: number): Record<string, unknown> {
  const extra = {
    description: `hetmem fuzz (seed ${seed}, program ${program}): ${f.kind}${'oracle' in f ? ` (${f.oracle})` : ''}: ${f.message}`,
  };
  if (p.threads !== undefined) return programDocument(p, 'fuzz finding', extra);
  const r: ProgramResult = runProgram(p, seed);
  const last = f.step >= 0 && f.step < p.steps.length ? f.step : p.steps.length - 1;
  const steps: Step[] = p.steps.slice(0, last + 1).map((s, i) => {
    const errno = r.errnos[i];
    return errno !== null && errno !== undefined && i !== last ? { ...s, expect: { errno } } : s;
  });
  if (f.kind === 'violation') steps.push({ op: 'check' });
  return programDocument({ ...p, steps }, 'fuzz finding', extra);
}

/** One mutation of a corpus program: steps added at the end, one removed, or one replaced. */
export function mutate(r: Prng, groups: readonly OpGroup[], base: Program): Program {
  const steps = [...base.steps];
  // Steps that bind a name stay: later steps may use it, and the program must stay a valid file.
  const binds = (s: Step): boolean => s.save !== undefined || s.op === 'fork';
  const k = r.int(4);
  const at = r.int(steps.length);
  // A step put in place of another uses only the names bound before it; appended ones use all.
  const g = generatorAfter(r, groups, base, k === 3 && !binds(steps[at]) ? at : steps.length);
  if (k === 0 || steps.length < 4) for (let n = 1 + r.int(5); n > 0; n--) steps.push(g.step());
  else if (k === 1 && !binds(steps[at])) steps.splice(at, 1);
  else if (k === 2) steps.push(g.step());
  else if (!binds(steps[at])) steps[at] = g.step();
  else steps.push(g.step());
  return { ...base, steps };
}

/** Runs the loop; returns when the deadline or the program budget is reached. */
export function runEngine(o: EngineOptions, hooks: EngineHooks = {}): EngineStats {
  const stats: EngineStats = { programs: 0, ops: 0, rejected: 0, corpus: 0, features: 0, opResults: {} };
  const seen = new Set<string>();
  const reported = new Set<string>();
  const corpus: Program[] = [];
  let lastProgress = Date.now();
  const first = o.firstProgram ?? 0;
  for (let i = first; i - first < o.programs && Date.now() < o.deadline; i++) {
    const r = new Prng(`fuzz:${o.seed}:${o.worker}:${i}`);
    const p =
      corpus.length > 0 && r.next() < 0.5
        ? mutate(r, o.groups, corpus[r.int(corpus.length)])
        : new Generator(r, o.groups).program(PROGRAM_STEPS);
    hooks.onStart?.(i, p);
    // Every tenth program runs twice: the same program must give the same history.
    const res = confirmHang(p, i, i % 10 === 0 ? runProgramTwice(p, i) : runProgram(p, i));
    stats.programs++;
    stats.ops += res.ops;
    if (res.rejected !== null) stats.rejected++;
    let fresh = false;
    for (const f of res.features) {
      if (!seen.has(f)) {
        seen.add(f);
        fresh = true;
      }
    }
    if (fresh && res.finding === null && p.threads === undefined) corpus.push(p);
    stats.corpus = corpus.length;
    stats.features = seen.size;
    if (res.finding !== null) {
      const key = findingKey(res.finding);
      if (!reported.has(key)) {
        reported.add(key);
        const known = knownFinding(res.finding, p);
        const min = known === null ? minimize(p, key, i, Date.now() + (o.minimizeMs ?? 5000)) : p;
        const again = runProgram(min, i).finding ?? res.finding;
        hooks.onReport?.({
          key,
          finding: again,
          document: reproducer(min, again, o.seed, i),
          known,
          program: i,
        });
      }
    }
    if (Date.now() - lastProgress > 500) {
      lastProgress = Date.now();
      stats.opResults = opResultsOf(seen);
      hooks.onProgress?.(stats);
    }
  }
  stats.opResults = opResultsOf(seen);
  return stats;
}
