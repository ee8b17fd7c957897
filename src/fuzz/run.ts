/**
 * `hetmem fuzz`: runs worker processes over disjoint program streams, watches each for a program
 * that stops reporting (a hang the step bound could not catch, or a crash), gathers what they
 * found and writes every failure as a scenario file.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { EngineOptions, Report } from './engine.ts';
import { findingKey, programDocument, type Finding } from './execute.ts';
import type { OpGroup, Program } from './generate.ts';
import type { FromWorker } from './worker.ts';

export interface FuzzOptions {
  seconds?: number;
  programs?: number;
  seed: number;
  groups: readonly OpGroup[];
  workers: number;
  /** Where findings (and the corpus size) are written; undefined: findings go to ./hetmem-fuzz. */
  out?: string;
  /** A worker silent this long is stopped and its program reported as a hang. */
  silenceMs?: number;
  onProgress?(programs: number, ops: number): void;
}

export interface FuzzFinding {
  kind: Finding['kind'];
  oracle?: string;
  message: string;
  file: string | null;
  known?: string;
}

export interface FuzzResult {
  programs: number;
  ops: number;
  violations: FuzzFinding[];
  internal_errors: number;
  internal: FuzzFinding[];
  known: FuzzFinding[];
  rejected: number;
  corpus: number;
  features: number;
  /** Per op (steps outside threads), the results the run reached: errno names, `0`, `+`. */
  op_results: Record<string, string[]>;
  elapsed_ms: number;
}

interface Totals {
  programs: number;
  ops: number;
  rejected: number;
  corpus: number;
  features: number;
}

/** Adds what a worker reports it reached to the run's op results. */
function addOpResults(into: Map<string, Set<string>>, r: Record<string, string[]>): void {
  for (const [op, res] of Object.entries(r)) {
    let set = into.get(op);
    if (set === undefined) into.set(op, (set = new Set()));
    for (const x of res) set.add(x);
  }
}

// worker.ts beside this file when running from the sources, worker.js in the compiled package.
const WORKER = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url),
);

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const start = Date.now();
  // Finite stand-ins for "no limit": the options cross the IPC channel as JSON.
  const deadline = o.seconds !== undefined ? start + o.seconds * 1000 : Number.MAX_SAFE_INTEGER;
  const budget = o.programs ?? Number.MAX_SAFE_INTEGER;
  const silenceMs = o.silenceMs ?? 30_000;
  const outDir = o.out ?? 'hetmem-fuzz';
  const reports: Report[] = [];
  const keys = new Set<string>();
  const totals: Totals[] = [];
  const fileOf = new Map<string, string>();
  const reached = new Map<string, Set<string>>();

  const record = (r: Report): void => {
    if (keys.has(r.key)) return;
    keys.add(r.key);
    reports.push(r);
  };

  const runWorker = (w: number): Promise<void> =>
    new Promise((resolveWorker) => {
      const share =
        o.programs !== undefined ? Math.floor(budget / o.workers) + (w < budget % o.workers ? 1 : 0) : budget;
      totals[w] = { programs: 0, ops: 0, rejected: 0, corpus: 0, features: 0 };
      let base: Totals = { programs: 0, ops: 0, rejected: 0, corpus: 0, features: 0 };
      let current: { i: number; program: Program } | null = null;
      let restarts = 0;
      const launch = (first: number): void => {
        const child: ChildProcess = fork(WORKER, [], {
          execArgv: ['--import', import.meta.resolve('tsx')],
          stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        });
        let stderr = '';
        child.stderr?.on('data', (d: Buffer) => {
          stderr = (stderr + d.toString()).slice(-2000);
        });
        let timer: NodeJS.Timeout | null = null;
        const arm = (): void => {
          if (timer !== null) clearTimeout(timer);
          timer = setTimeout(() => {
            child.kill('SIGKILL');
          }, silenceMs);
        };
        arm();
        let done = false;
        child.on('message', (m: FromWorker) => {
          arm();
          if (m.t === 'start') current = { i: m.i, program: m.program as Program };
          else if (m.t === 'report') record(m.report as Report);
          else {
            addOpResults(reached, m.opResults);
            totals[w] = {
              programs: base.programs + m.programs,
              ops: base.ops + m.ops,
              rejected: base.rejected + m.rejected,
              corpus: base.corpus + m.corpus,
              features: Math.max(base.features, m.features),
            };
            o.onProgress?.(
              totals.reduce((n, t) => n + t.programs, 0),
              totals.reduce((n, t) => n + t.ops, 0),
            );
            if (m.t === 'done') done = true;
          }
        });
        child.on('exit', (code, signal) => {
          if (timer !== null) clearTimeout(timer);
          if (done) {
            resolveWorker();
            return;
          }
          // The worker died or went silent inside a program: report that program, go on after it.
          const c = current;
          if (c !== null) {
            const kind = signal === 'SIGKILL' ? 'hang' : 'internal';
            const message =
              kind === 'hang'
                ? `program ${c.i} ran for ${silenceMs} ms without finishing`
                : `worker exited (${signal ?? code}) in program ${c.i}: ${stderr.trim().split('\n').pop() ?? ''}`;
            const finding: Finding = { kind, message, step: -1 };
            record({
              key: findingKey(finding),
              finding,
              document: programDocument(c.program, 'fuzz finding', {
                description: `hetmem fuzz: ${message}`,
              }),
              known: null,
              program: c.i,
            });
          }
          base = { ...totals[w] };
          base.programs++;
          if (++restarts > 20 || Date.now() >= deadline || c === null) {
            resolveWorker();
            return;
          }
          launch(c.i + 1);
        });
        const eo: EngineOptions = {
          seed: o.seed,
          groups: o.groups,
          worker: w,
          deadline,
          programs: share - first,
          firstProgram: first,
        };
        child.send(eo);
      };
      launch(0);
    });

  await Promise.all(Array.from({ length: o.workers }, (_, w) => runWorker(w)));

  const toFinding = (r: Report): FuzzFinding => {
    const f = r.finding;
    const out: FuzzFinding = { kind: f.kind, message: f.message, file: fileOf.get(r.key) ?? null };
    if (f.kind === 'violation') out.oracle = f.oracle;
    if (r.known !== null) out.known = r.known;
    return out;
  };
  const unknown = reports.filter((r) => r.known === null);
  if (unknown.length > 0 || o.out !== undefined) mkdirSync(outDir, { recursive: true });
  unknown.forEach((r, n) => {
    const file = join(outDir, `finding-${String(n + 1).padStart(3, '0')}-${r.finding.kind}.yaml`);
    writeFileSync(file, stringify(r.document, { lineWidth: 0 }));
    fileOf.set(r.key, file);
  });
  const sum = (k: keyof Totals): number => totals.reduce((n, t) => n + t[k], 0);
  return {
    programs: sum('programs'),
    ops: sum('ops'),
    violations: unknown.filter((r) => r.finding.kind !== 'internal').map(toFinding),
    internal_errors: unknown.filter((r) => r.finding.kind === 'internal').length,
    internal: unknown.filter((r) => r.finding.kind === 'internal').map(toFinding),
    known: reports.filter((r) => r.known !== null).map(toFinding),
    rejected: sum('rejected'),
    corpus: sum('corpus'),
    features: Math.max(0, ...totals.map((t) => t.features)),
    op_results: Object.fromEntries(
      [...reached.keys()].sort().map((op) => [op, [...reached.get(op)!].sort()]),
    ),
    elapsed_ms: Date.now() - start,
  };
}
