/**
 * The page's state: plain snapshots from the worker, in signals. Views read them and never
 * recompute kernel semantics. The URL carries what reproduces the view: the scenario (an
 * example's name, or the text itself), the replay token, the explore seed and the step.
 */
import { batch, computed, signal } from '@preact/signals';
import type { StudioState, UnitInfo } from '../../src/scenario/studio.ts';
import { exampleByName } from './examples.ts';
import type { Issue } from './protocol.ts';
import { type Answer, type Check, checkAnswers, type Question, questionsFor } from './questions.ts';
import { call, ModelError } from './rpc.ts';

export interface Source {
  /** An example's name, or null for text from the editor, a file or the command line. */
  example: string | null;
  /** The path errors and driver modules refer to. */
  file: string;
  text: string;
}

export const source = signal<Source | null>(null);
/** The editor's text (may differ from the source until applied). */
export const draft = signal('');
export const outline = signal<UnitInfo[]>([]);
export const current = signal<StudioState | null>(null);
export const threadsScenario = signal(false);
export const replayToken = signal('');
export const seed = signal(1);
export const issue = signal<Issue | null>(null);
export const busy = signal(false);
export const notice = signal('');

export interface Selection {
  pid: number | null;
  addr: number | null;
  pfn: number | null;
}
export const selection = signal<Selection>({ pid: null, addr: null, pfn: null });

export const snapshot = computed(() => current.value?.snapshot ?? null);
export const violation = computed(() => current.value?.race?.violation ?? null);
export const selectedProc = computed(() => {
  const s = snapshot.value;
  if (s === null) return null;
  return (
    s.processes.find((p) => p.pid === selection.value.pid) ??
    s.processes.find((p) => !p.exited) ??
    s.processes[0] ??
    null
  );
});

function fail(e: unknown): void {
  if (e instanceof ModelError) issue.value = e.issue;
  else issue.value = { code: 'internal', message: e instanceof Error ? e.message : String(e) };
}

async function guarded<T>(f: () => Promise<T>): Promise<T | undefined> {
  busy.value = true;
  try {
    const r = await f();
    issue.value = null;
    return r;
  } catch (e) {
    fail(e);
    return undefined;
  } finally {
    busy.value = false;
  }
}

function toBase64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64url(b: string): string {
  const b64 = b.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/** The query string that reproduces the current view. */
export function shareQuery(): string {
  const q = new URLSearchParams();
  const src = source.value;
  if (src !== null) {
    if (src.example !== null) q.set('example', src.example);
    else {
      q.set('name', src.file.replace(/^.*\//, ''));
      q.set('src', toBase64url(src.text));
    }
  }
  if (replayToken.value !== '') q.set('replay', replayToken.value);
  if (seed.value !== 1) q.set('seed', String(seed.value));
  q.set('step', String(current.value?.step ?? 0));
  if (exerciseMode.value) q.set('mode', 'exercise');
  return `?${q.toString()}`;
}

export function syncUrl(): void {
  history.replaceState(null, '', shareQuery());
}

/** Opens a scenario (and a schedule of it, if a token is given) at `step`. */
export async function openScenario(
  src: Source,
  opts: { replay?: string; step?: number } = {},
): Promise<boolean> {
  const r = await guarded(() =>
    call('open', { text: src.text, file: src.file, replay: opts.replay ?? '', step: opts.step ?? 0 }),
  );
  if (r === undefined) {
    // Nothing shown yet: show the text, so the editor points at the problem.
    if (current.value === null) {
      source.value = src;
      draft.value = src.text;
    }
    return false;
  }
  batch(() => {
    source.value = src;
    draft.value = src.text;
    outline.value = r.outline;
    current.value = r.state;
    threadsScenario.value = r.threads;
    replayToken.value = opts.replay ?? '';
    selection.value = { pid: null, addr: null, pfn: null };
  });
  exercise.value = null;
  syncUrl();
  return true;
}

export async function openExample(name: string): Promise<boolean> {
  const ex = exampleByName(name);
  if (ex === undefined) {
    issue.value = { code: 'usage', message: `no example named '${name}'` };
    return false;
  }
  return openScenario({ example: ex.name, file: ex.path, text: ex.text });
}

export async function goto(n: number): Promise<void> {
  const st = current.value;
  if (st === null) return;
  const target = Math.max(0, Math.min(n, st.total));
  const r = await guarded(() => call('goto', { n: target }));
  if (r !== undefined) current.value = r;
  exercise.value = null;
  syncUrl();
}

let queue: Promise<void> = Promise.resolve();

/** Moves by `delta` units after the moves already asked for (keys pressed quickly add up). */
export function stepBy(delta: number): Promise<void> {
  queue = queue.then(() => goto((current.value?.step ?? 0) + delta));
  return queue;
}

/** Shows another window of pages (the one holding `addr`) or of frames (holding `pfn`). */
export async function setWindow(w: { addr?: number; pfn?: number }): Promise<void> {
  const r = await guarded(() => call('window', { ...w, step: current.value?.step ?? 0 }));
  if (r !== undefined) current.value = r;
}

export async function nextEvent(cat: string): Promise<void> {
  const r = await guarded(() => call('next', { cat }));
  if (r === undefined) return;
  current.value = r.state;
  notice.value = r.found ? '' : `no further ${cat} event`;
  syncUrl();
}

/** The trace of the state shown (never of a step the model ran out of sight). */
export function shownTrace(): Promise<{ json: string; pftrace: Uint8Array }> {
  return call('trace', { events: current.value?.events ?? 0 });
}

/** Applies the editor's text: reopens the scenario from it. */
export async function applyDraft(): Promise<void> {
  const src = source.value;
  const file = src?.file ?? '/scenario.yaml';
  const same = src !== null && src.text === draft.value;
  await openScenario(
    { example: same ? src.example : null, file, text: draft.value },
    same ? { replay: replayToken.value } : {},
  );
}

export async function loadToken(token: string): Promise<void> {
  const src = source.value;
  if (src === null) return;
  await openScenario(src, { replay: token.trim() });
}

export async function exploreHere(strategy: 'random' | 'pct' | 'dfs', schedules: number): Promise<void> {
  const src = source.value;
  if (src === null) return;
  const r = await guarded(() =>
    call('explore', { text: src.text, file: src.file, strategy, seed: seed.value, schedules }),
  );
  if (r === undefined) return;
  notice.value = r.found
    ? `found a violation after ${r.schedules} schedules`
    : `no violation in ${r.schedules} schedules`;
  await openScenario(src, { replay: r.token });
}

// Exercises: predict the next state.

export interface Exercise {
  /** The step being predicted (the state after it is `answer`). */
  step: number;
  /** The hidden state after the step. */
  answer: StudioState;
  questions: Question[];
  /** The checked answers, once given. */
  checks: Check[] | null;
}

export const exerciseMode = signal(false);
export const exercise = signal<Exercise | null>(null);
export const score = signal({ right: 0, asked: 0 });

let preparing = -1;

/**
 * Runs the next step out of sight (the worker moves on; the page keeps showing this step) and
 * derives the questions from what it did.
 */
export async function prepareExercise(): Promise<void> {
  const st = current.value;
  if (!exerciseMode.value || st === null || st.step >= st.total) return;
  const ex = exercise.value;
  if ((ex !== null && ex.step === st.step + 1) || preparing === st.step) return;
  preparing = st.step;
  try {
    const r = await guarded(() => call('goto', { n: st.step + 1 }));
    // The page moved on meanwhile: the next call prepares the step it shows.
    if (r === undefined || current.value !== st) return;
    const unit = outline.value[st.step];
    exercise.value = { step: st.step + 1, answer: r, questions: questionsFor(unit, st, r), checks: null };
  } finally {
    preparing = -1;
  }
}

/** Checks the student's answers against the hidden state and keeps score. */
export function checkExercise(answers: Record<string, Answer>): void {
  const ex = exercise.value;
  if (ex === null || ex.checks !== null) return;
  const checks = checkAnswers(ex.questions, answers);
  exercise.value = { ...ex, checks };
  const right = checks.filter((c) => c.ok).length;
  score.value = { right: score.value.right + right, asked: score.value.asked + checks.length };
}

/** Shows the checked step's state. */
export function revealAnswer(): void {
  const ex = exercise.value;
  if (ex === null) return;
  current.value = ex.answer;
  exercise.value = null;
  syncUrl();
}
