/**
 * `hetmem difftest`: random programs over the mm syscalls the model implements, run on the model
 * and on the live kernel (native/difftest_helper.c, compiled with cc on first use), at the same
 * fixed addresses inside a window both check is free. Return values, errnos, the bytes loads see
 * and the pagemap present/swap/soft-dirty bits are compared op by op. A mismatch is minimised and
 * written as a scenario whose expectations are what the live kernel did; differences the model
 * is known to have (difftest_known.ts) are counted apart.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Prng } from '../lib/prng.ts';
import { kernel } from '../scenario/kernel.ts';
import type { ParsedScenario } from '../scenario/parse.ts';
import { buildWorld, runStepNow } from '../scenario/runner.ts';
import { Scenario } from '../scenario/schema.ts';
import { knownDifference } from './difftest_known.ts';

const PAGE = 4096;
/** The window both sides map in: free in a fresh process, far from the stack and the heap. */
export const WINDOW = 0x600000000000;
export const WINDOW_SIZE = 1 << 30;

/** A syscall length: a number, or an exact u64 of 2^53 or more (the helper reads it with %llu). */
export type Ulen = number | bigint;

/**
 * u64 lengths the programs pass now and then, so the model's 64-bit checks are compared with the
 * live kernel's: PAGE_ALIGN() wrapping to 0, a hugetlb-sized wrap, and lengths past TASK_SIZE.
 */
const U64_LENGTHS = [
  2n ** 64n - 1n,
  2n ** 64n - 4096n,
  2n ** 63n,
  2n ** 53n + 1n,
  2n ** 64n - 2n ** 21n + 4095n,
];
/**
 * The ones that make any range in the window wrap past 2^64, which madvise() refuses before it
 * looks at a VMA: a madvise() over the whole address space above the window would reach the
 * helper's own stack and libraries.
 */
const U64_WRAPPING_LENGTHS = [2n ** 64n - 1n, 2n ** 64n - 4096n, 2n ** 64n - 2n ** 21n + 4095n];

export type DiffOp =
  | { op: 'mmap'; off: number; len: Ulen; prot: number; shared: boolean }
  | { op: 'munmap'; off: number; len: Ulen }
  | { op: 'mprotect'; off: number; len: Ulen; prot: number }
  | { op: 'madvise'; off: number; len: Ulen; advice: string }
  | { op: 'mremap'; off: number; len: Ulen; newLen: Ulen; fixed: boolean; newOff: number }
  | { op: 'write'; off: number; len: number; byte: number }
  | { op: 'read'; off: number; len: number }
  | { op: 'pagemap'; off: number; npages: number }
  | { op: 'clear_refs' };

const ADVICE: Record<string, number> = {
  dontneed: 4,
  free: 8,
  cold: 20,
  pageout: 21,
  hugepage: 14,
  nohugepage: 15,
};
const PROT_NAMES: Record<number, string[]> = { 0: ['none'], 1: ['read'], 3: ['read', 'write'] };

export class HelperError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HelperError';
  }
}

/** Builds the helper into the cache (once per source version) and returns its path. */
export function ensureHelper(cacheDir?: string): string {
  const src = fileURLToPath(new URL('../../native/difftest_helper.c', import.meta.url));
  const text = readFileSync(src);
  const tag = createHash('sha256').update(text).digest('hex').slice(0, 12);
  const dir = cacheDir ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'hetmem');
  const bin = join(dir, `difftest-helper-${tag}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O1', '-o', bin, src], { encoding: 'utf8' });
  if (r.error !== undefined) {
    throw new HelperError(
      `difftest needs a C compiler to build its live-kernel helper: '${cc}' ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'was not found' : 'failed to start'} (install cc, or set CC)`,
    );
  }
  if (r.status !== 0)
    throw new HelperError(`${cc} could not build ${src}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
  return bin;
}

function helperLine(o: DiffOp): string {
  const a = (off: number) => WINDOW + off;
  switch (o.op) {
    case 'mmap':
      return `mmap ${a(o.off)} ${o.len} ${o.prot} ${o.shared ? 1 : 0}`;
    case 'munmap':
      return `munmap ${a(o.off)} ${o.len}`;
    case 'mprotect':
      return `mprotect ${a(o.off)} ${o.len} ${o.prot}`;
    case 'madvise':
      return `madvise ${a(o.off)} ${o.len} ${ADVICE[o.advice]}`;
    case 'mremap':
      return `mremap ${a(o.off)} ${o.len} ${o.newLen} ${o.fixed ? 3 : 0} ${o.fixed ? a(o.newOff) : 0}`;
    case 'write':
      return `write ${a(o.off)} ${o.len} ${o.byte}`;
    case 'read':
      return `read ${a(o.off)} ${o.len}`;
    case 'pagemap':
      return `pagemap ${a(o.off)} ${o.npages}`;
    case 'clear_refs':
      return 'clear_refs';
  }
}

/** One op's outcome on either side. */
export interface Outcome {
  ret: number;
  /** read: FNV-1a of the bytes read; pagemap: per-page flags. */
  extra?: string;
}

/** Runs a program on the live kernel. */
export function runLive(helper: string, ops: readonly DiffOp[]): Outcome[] {
  const input = [`window ${WINDOW} ${WINDOW_SIZE}`, ...ops.map(helperLine)].join('\n') + '\n';
  const r = spawnSync(helper, [], { input, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0)
    throw new HelperError(`the live-kernel helper failed (${r.status ?? r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  if (lines[0] !== 'R 0')
    throw new HelperError(
      `the window at 0x${WINDOW.toString(16)} is not free in a fresh process (${lines[0]})`,
    );
  return lines.slice(1).map((l) => {
    const [, ret, extra] = l.split(' ');
    // A load that faulted is compared by its errno only (the model stops at the same byte).
    return extra === undefined || Number(ret) < 0 ? { ret: Number(ret) } : { ret: Number(ret), extra };
  });
}

function fnv(d: Uint8Array): string {
  let h = 2166136261;
  for (const b of d) h = Math.imul(h ^ b, 16777619) >>> 0;
  return String(h);
}

/** The program as scenario steps (what the model runs and a reproducer holds). */
export function scenarioSteps(ops: readonly DiffOp[]): Record<string, unknown>[] {
  const a = (off: number) => WINDOW + off;
  return ops.map((o) => {
    switch (o.op) {
      case 'mmap':
        return {
          op: 'mmap',
          proc: 'p',
          addr: a(o.off),
          length: o.len,
          prot: PROT_NAMES[o.prot],
          flags: [o.shared ? 'shared' : 'private', 'anonymous', 'fixed_noreplace'],
        };
      case 'munmap':
        return { op: 'munmap', proc: 'p', addr: a(o.off), length: o.len };
      case 'mprotect':
        return { op: 'mprotect', proc: 'p', addr: a(o.off), length: o.len, prot: PROT_NAMES[o.prot] };
      case 'madvise':
        return { op: 'madvise', proc: 'p', addr: a(o.off), length: o.len, advice: o.advice };
      case 'mremap': {
        const s: Record<string, unknown> = {
          op: 'mremap',
          proc: 'p',
          addr: a(o.off),
          length: o.len,
          new_length: o.newLen,
          flags: o.fixed ? ['maymove', 'fixed'] : [],
        };
        if (o.fixed) s.new_addr = a(o.newOff);
        return s;
      }
      case 'write':
        return { op: 'cpu_write', proc: 'p', addr: a(o.off), length: o.len, data: { fill: o.byte } };
      case 'read':
        return { op: 'cpu_read', proc: 'p', addr: a(o.off), length: o.len };
      case 'pagemap':
        return { op: 'pagemap', proc: 'p', addr: a(o.off), npages: o.npages };
      case 'clear_refs':
        return { op: 'clear_soft_dirty', proc: 'p' };
    }
  });
}

export interface HostConfig {
  thp: 'always' | 'madvise' | 'never';
  swap: boolean;
  softDirty: boolean;
}

/** The live kernel's knobs the model must match: THP mode, swap, soft-dirty support. */
export function hostConfig(helper: string): HostConfig {
  let thp: HostConfig['thp'] = 'madvise';
  try {
    const m = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'));
    if (m !== null && (m[1] === 'always' || m[1] === 'madvise' || m[1] === 'never')) thp = m[1];
  } catch {
    thp = 'never';
  }
  let swap = false;
  try {
    swap = readFileSync('/proc/swaps', 'utf8').trim().split('\n').length > 1;
  } catch {
    swap = false;
  }
  // A page written after mmap is soft-dirty where the kernel has CONFIG_MEM_SOFT_DIRTY.
  const probe = runLive(helper, [
    { op: 'mmap', off: 0, len: PAGE, prot: 3, shared: false },
    { op: 'write', off: 0, len: 1, byte: 1 },
    { op: 'pagemap', off: 0, npages: 1 },
  ]);
  return { thp, swap, softDirty: probe[2]?.extra?.includes('d') === true };
}

/** Runs a program on the model. */
export function runModel(ops: readonly DiffOp[], host: HostConfig): Outcome[] {
  const doc = {
    version: 1,
    system: { ram: '64MiB', swap: host.swap ? '64MiB' : 0, thp: host.thp },
    processes: ['p'],
    steps: scenarioSteps(ops),
  };
  const parsed: ParsedScenario = {
    file: '<difftest>',
    scenario: Scenario.parse(doc),
    position: () => ({ line: 1, col: 1 }),
  };
  const ctx = buildWorld(parsed, kernel());
  const out: Outcome[] = [];
  const p = ctx.procs.get('p');
  (parsed.scenario.steps ?? []).forEach((step, i) => {
    const o = ops[i];
    if (o.op === 'read' && p !== undefined) {
      // The bytes themselves, not the report's summary: hash them as the helper does.
      const r = ctx.sys.run('p', ctx.sc.cpuRead(ctx.sys, p, WINDOW + o.off, o.len));
      out.push(r.ret < 0 ? { ret: r.ret } : { ret: r.ret, extra: fnv(r.data) });
      return;
    }
    const r = runStepNow(ctx, step, 'steps', i, ['steps', i]);
    if (o.op === 'pagemap') {
      const flags = (r.pages ?? []).flatMap((run) =>
        Array.from({ length: run.count }, () => {
          const s = `${run.present ? 'p' : ''}${run.swap ? 's' : ''}${host.softDirty && run.soft_dirty ? 'd' : ''}`;
          return s === '' ? '-' : s;
        }),
      );
      out.push({ ret: r.ret, extra: flags.join(',') });
    } else out.push({ ret: r.ret });
  });
  return out;
}

/** Random programs over a few pages of the window, with edge lengths and offsets. */
export function generateProgram(r: Prng, len: number): DiffOp[] {
  const pick = <T>(xs: readonly T[]): T => xs[r.int(xs.length)];
  const off = (): number =>
    r.next() < 0.9 ? r.int(24) * PAGE : pick([1, PAGE - 1, 2 * 1024 * 1024, 512 * PAGE]);
  const length = (): number =>
    r.next() < 0.85 ? (1 + r.int(8)) * PAGE : pick([0, 1, PAGE - 1, PAGE + 1, 64 * PAGE]);
  // A syscall length, now and then a u64 (see U64_LENGTHS).
  const ulen = (u64s: readonly bigint[] = U64_LENGTHS): Ulen => (r.next() < 0.04 ? pick(u64s) : length());
  const ops: DiffOp[] = [
    { op: 'mmap', off: 0, len: (4 + r.int(12)) * PAGE, prot: 3, shared: r.next() < 0.2 },
  ];
  while (ops.length < len) {
    const k = r.int(100);
    if (k < 14)
      ops.push({ op: 'mmap', off: off(), len: ulen(), prot: pick([0, 1, 3, 3]), shared: r.next() < 0.25 });
    else if (k < 22) ops.push({ op: 'munmap', off: off(), len: ulen() });
    else if (k < 32) ops.push({ op: 'mprotect', off: off(), len: ulen(), prot: pick([0, 1, 3]) });
    else if (k < 42)
      ops.push({
        op: 'madvise',
        off: off(),
        len: ulen(U64_WRAPPING_LENGTHS),
        advice: pick(['dontneed', 'free', 'cold', 'pageout', 'hugepage', 'nohugepage']),
      });
    else if (k < 47) {
      const fixed = r.next() < 0.7;
      ops.push({
        op: 'mremap',
        off: off(),
        len: ulen(),
        newLen: ulen(),
        fixed,
        newOff: (32 + r.int(16)) * PAGE,
      });
    } else if (k < 67)
      ops.push({
        op: 'write',
        off: off(),
        len: r.next() < 0.8 ? 1 + r.int(2 * PAGE) : length(),
        byte: r.int(256),
      });
    else if (k < 82)
      ops.push({ op: 'read', off: off(), len: r.next() < 0.8 ? 1 + r.int(2 * PAGE) : length() });
    else if (k < 96) ops.push({ op: 'pagemap', off: off(), npages: 1 + r.int(16) });
    else ops.push({ op: 'clear_refs' });
  }
  return ops;
}

export interface Mismatch {
  index: number;
  op: string;
  model: Outcome;
  live: Outcome;
  file: string | null;
}

export interface DifftestResult {
  programs: number;
  ops: number;
  mismatches: Mismatch[];
  known_differences: number;
  known: Record<string, number>;
  elapsed_ms: number;
}

/** The first op where model and kernel differ (known differences skipped, and counted). */
function firstMismatch(
  ops: readonly DiffOp[],
  model: readonly Outcome[],
  live: readonly Outcome[],
  host: HostConfig,
  known: Map<string, number> | null,
): number {
  for (let i = 0; i < ops.length; i++) {
    const m = model[i];
    const l = live[i];
    if (m.ret === l.ret && (m.extra ?? '') === (l.extra ?? '')) continue;
    const k = knownDifference(ops[i], m, l, host);
    if (k !== null) {
      known?.set(k, (known.get(k) ?? 0) + 1);
      // Past a known difference the two sides no longer share a state worth comparing.
      return -1;
    }
    return i;
  }
  return -1;
}

function minimizeOps(ops: DiffOp[], helper: string, host: HostConfig, deadline: number): DiffOp[] {
  let best = ops;
  const fails = (c: DiffOp[]): boolean =>
    firstMismatch(c, runModel(c, host), runLive(helper, c), host, null) >= 0;
  let chunk = Math.max(1, Math.floor(best.length / 2));
  while (chunk >= 1 && Date.now() < deadline) {
    let removed = false;
    for (let i = 0; i < best.length && Date.now() < deadline;) {
      const cand = [...best.slice(0, i), ...best.slice(i + chunk)];
      if (cand.length > 0 && fails(cand)) {
        best = cand;
        removed = true;
      } else i += chunk;
    }
    if (!removed) chunk = Math.floor(chunk / 2);
  }
  return best;
}

export interface DifftestOptions {
  seconds: number;
  seed: number;
  out?: string;
  onProgress?(programs: number): void;
}

export function runDifftest(o: DifftestOptions): DifftestResult {
  const start = Date.now();
  const helper = ensureHelper();
  const host = hostConfig(helper);
  const known = new Map<string, number>();
  const mismatches: Mismatch[] = [];
  const seen = new Set<string>();
  let programs = 0;
  let opsRun = 0;
  const deadline = start + o.seconds * 1000;
  for (let i = 0; Date.now() < deadline; i++) {
    const ops = generateProgram(new Prng(`difftest:${o.seed}:${i}`), 12 + (i % 16));
    const model = runModel(ops, host);
    const live = runLive(helper, ops);
    programs++;
    opsRun += ops.length;
    o.onProgress?.(programs);
    const at = firstMismatch(ops, model, live, host, known);
    if (at < 0) continue;
    const key = `${ops[at].op}:${model[at].ret}:${live[at].ret}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const min = minimizeOps(ops.slice(0, at + 1), helper, host, Date.now() + 10_000);
    const mm = runModel(min, host);
    const ml = runLive(helper, min);
    const j = Math.max(0, firstMismatch(min, mm, ml, host, null));
    let file: string | null = null;
    {
      const dir = o.out ?? 'hetmem-difftest';
      mkdirSync(dir, { recursive: true });
      file = join(dir, `mismatch-${String(mismatches.length + 1).padStart(3, '0')}.yaml`);
      writeFileSync(file, stringify(reproducer(min.slice(0, j + 1), ml, host, o.seed, i), { lineWidth: 0 }));
    }
    mismatches.push({ index: i, op: min[j].op, model: mm[j], live: ml[j], file });
  }
  return {
    programs,
    ops: opsRun,
    mismatches,
    known_differences: [...known.values()].reduce((a, b) => a + b, 0),
    known: Object.fromEntries(known),
    elapsed_ms: Date.now() - start,
  };
}

/**
 * What a pagemap read returned on the live kernel as scenario page expectations: per page its
 * present and swap bits, and soft-dirty where the kernel reports it; runs of equal pages folded.
 */
function pageExpectations(extra: string, host: HostConfig): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let last = '';
  for (const f of extra.split(',')) {
    const prev = out.at(-1);
    if (prev !== undefined && f === last) {
      prev.repeat = ((prev.repeat as number | undefined) ?? 1) + 1;
      continue;
    }
    const page: Record<string, unknown> = { present: f.includes('p'), swap: f.includes('s') };
    if (host.softDirty) page.soft_dirty = f.includes('d');
    out.push(page);
    last = f;
  }
  return out;
}

/** A scenario whose expectations are what the live kernel returned. */
export function reproducer(
  ops: DiffOp[],
  live: Outcome[],
  host: HostConfig,
  seed: number,
  program: number,
): Record<string, unknown> {
  const steps = scenarioSteps(ops).map((s, i) => {
    const l = live[i];
    const expect: Record<string, unknown> = {};
    if (l.ret < 0 && l.ret >= -4095) expect.errno = ERRNO_NAMES[-l.ret] ?? `E#${-l.ret}`;
    else if (ops[i].op === 'mmap' || ops[i].op === 'mremap' || ops[i].op === 'write' || ops[i].op === 'read')
      expect.ret = l.ret;
    else if (ops[i].op === 'pagemap' && l.extra !== undefined) expect.pages = pageExpectations(l.extra, host);
    return Object.keys(expect).length > 0 ? { ...s, expect } : s;
  });
  return {
    version: 1,
    name: 'difftest mismatch',
    description: `hetmem difftest (seed ${seed}, program ${program}): the expectations are what the live kernel returned`,
    system: { ram: '64MiB', swap: host.swap ? '64MiB' : 0, thp: host.thp },
    processes: ['p'],
    steps,
  };
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  9: 'EBADF',
  12: 'ENOMEM',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  22: 'EINVAL',
};
