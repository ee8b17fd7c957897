/**
 * `hetmem difftest`: random programs over the mm syscalls the model implements, over memfds
 * (sizes, fallocate, pread/pwrite, read/write/lseek at the file position, second open files,
 * file mappings, seals) and across a fork (ops in the parent and the child, which may exit before
 * the parent is done), run on the model and on the live kernel (native/difftest_helper.c,
 * compiled with cc on first use), at the same fixed addresses inside a window both check is free. Return values, errnos, the bytes loads and reads see and the pagemap
 * present/swap/soft-dirty/exclusive/file bits are compared op by op. A mismatch is minimised and
 * written as a scenario whose expectations are what the live kernel did; differences the model is
 * known to have (difftest_known.ts) are counted apart.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Errno, errnoName } from '../kernel/errno.ts';
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_SEAL_EXEC,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  MADV,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_STACK,
  MFD_ALLOW_SEALING,
  MFD_EXEC,
  MFD_HUGETLB,
  MFD_NOEXEC_SEAL,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  O_ACCMODE,
  O_APPEND,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  PROT_GROWSDOWN,
} from '../kernel/mm/mman.ts';
import { Prng } from '../lib/prng.ts';
import { kernel } from '../scenario/kernel.ts';
import type { ParsedScenario } from '../scenario/parse.ts';
import { buildWorld, runStepNow } from '../scenario/runner.ts';
import { FALLOC, MFD, OPEN } from '../scenario/ops/files.ts';
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

/**
 * One op of a program. After a `fork`, an op on memory (`child: true`) may run in the child the
 * fork made instead of the parent; file ops always run in the parent (CHILD_OPS).
 */
export type DiffOp = (
  | {
      op: 'mmap';
      off: number;
      len: Ulen;
      prot: number;
      shared: boolean;
      flags?: MapFlag[];
      /** MAP_DROPPABLE instead of MAP_PRIVATE or MAP_SHARED (`shared` false). */
      droppable?: boolean;
    }
  | { op: 'munmap'; off: number; len: Ulen }
  | { op: 'mprotect'; off: number; len: Ulen; prot: number }
  | { op: 'madvise'; off: number; len: Ulen; advice: string }
  | {
      op: 'mremap';
      off: number;
      len: Ulen;
      newLen: Ulen;
      fixed: boolean;
      newOff: number;
      /** MREMAP_DONTUNMAP with MREMAP_FIXED: the old range stays mapped, emptied. */
      dontunmap?: boolean;
    }
  | { op: 'write'; off: number; len: number; byte: number }
  | { op: 'read'; off: number; len: number }
  | { op: 'pagemap'; off: number; npages: number }
  /** mincore(2): a byte a page, 0 or 1 (compared when the call succeeds). */
  | { op: 'mincore'; off: number; len: Ulen }
  | { op: 'clear_refs' }
  /** /proc/PID/maps over the window. */
  | { op: 'maps' }
  /** /proc/PID/smaps over the window: per VMA the kB of SMAPS_FIELDS. */
  | { op: 'smaps' }
  // Files: a memfd kept in one of FILE_SLOTS slots; `foff` is a byte offset in the file.
  /** memfd_create() with `flags` (MFD_ALLOW_SEALING, MFD_NOEXEC_SEAL, MFD_EXEC; none when absent). */
  | { op: 'memfd'; slot: number; flags?: number }
  /** fcntl() with F_ADD_SEALS (seals in `arg`) or F_GET_SEALS (`cmd` is one of the two). */
  | { op: 'fcntl'; slot: number; cmd: number; arg: number }
  /**
   * open() of /proc/self/fd/N, N the descriptor of slot `from`, with the O_* `flags`: the new file
   * goes into slot `slot` where the open cannot fail (openSaves()), else it is closed again.
   */
  | { op: 'open'; slot: number; from: number; flags: number }
  /** fchmod() of the slot's file: F_SEAL_EXEC freezes the exec bits on tmpfs. */
  | { op: 'fchmod'; slot: number; mode: number }
  | { op: 'close'; slot: number }
  | { op: 'ftruncate'; slot: number; len: number }
  | { op: 'fallocate'; slot: number; mode: number; foff: number; len: number }
  | {
      op: 'mmapf';
      off: number;
      len: Ulen;
      prot: number;
      shared: boolean;
      slot: number;
      foff: number;
      flags?: MapFlag[];
    }
  | { op: 'pwrite'; slot: number; foff: number; len: number; byte: number }
  | { op: 'pread'; slot: number; foff: number; len: number }
  /** write() of `len` bytes `byte` at the slot's open file's position, which it advances. */
  | { op: 'fwrite'; slot: number; len: number; byte: number }
  /** read() of `len` bytes at the position (the bytes compared by their hash). */
  | { op: 'fread'; slot: number; len: number }
  /** lseek() of the slot's open file: SEEK_SET to SEEK_HOLE, or a whence past them. */
  | { op: 'lseek'; slot: number; foff: number; whence: number }
  | { op: 'fork' }
  /** The child the fork made exits, and the parent reaps it; no op of the child follows. */
  | { op: 'exit' }
  /** mlock2() with `flags` (0 is mlock(); 2 is not a flag: -EINVAL). */
  | { op: 'mlock'; off: number; len: Ulen; flags: number }
  | { op: 'munlock'; off: number; len: Ulen }
  /**
   * mlockall() without MCL_CURRENT, which would lock the helper's own mappings too (and measure
   * its whole address space against the limit): MCL_FUTURE, with or without MCL_ONFAULT, or a
   * value the kernel refuses.
   */
  | { op: 'mlockall'; flags: number }
  | { op: 'munlockall' }
  /**
   * process_madvise(2) of one or two segments, on the calling process or (`remote`, from the
   * parent only) on the one fork made; the helper passes neither CAP_SYS_NICE.
   */
  | {
      op: 'process_madvise';
      remote: boolean;
      segs: { off: number; len: number }[];
      advice: string;
    }
  /** mseal(2) with `flags` (0; anything else is -EINVAL). */
  | { op: 'mseal'; off: number; len: Ulen; flags: number }
  /**
   * VmLck, VmData, VmSize, VmStk and VmPTE of /proc/PID/status, in kB: locked_vm, and data_vm,
   * total_vm, stack_vm and the page tables above what the live process had before the program
   * ran (VmPTE not in the child, whose tables include copies of the helper's own).
   */
  | { op: 'status' }
  /**
   * setrlimit(2) of RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK or RLIMIT_MEMLOCK, in bytes. The live
   * helper adds what its process had before the program ran (VmSize for `as`, VmData for `data`,
   * but to a soft value of 0), so that the limit leaves the program the same room as the model's
   * process has; RLIMIT_MEMLOCK starts at 64 KiB, soft and hard, on both sides.
   */
  | { op: 'setrlimit'; res: 'as' | 'data' | 'stack' | 'memlock'; cur: RlimitValue; max: RlimitValue }
) & { child?: boolean };

/** A limit in bytes, or RLIM_INFINITY. */
type RlimitValue = number | 'unlimited';

/**
 * mmap flags a program may add, by the scenario's names: `fixed` maps with MAP_FIXED (replacing
 * what is there) instead of MAP_FIXED_NOREPLACE.
 */
type MapFlag = 'fixed' | 'populate' | 'noreserve' | 'stack' | 'locked' | 'growsdown' | 'hugetlb';
const MAP_FLAG_BITS: Record<MapFlag, number> = {
  fixed: MAP_FIXED,
  hugetlb: MAP_HUGETLB,
  locked: MAP_LOCKED,
  populate: MAP_POPULATE,
  noreserve: MAP_NORESERVE,
  stack: MAP_STACK,
  growsdown: MAP_GROWSDOWN,
};

/** The helper's extra mmap flags for `flags`. */
function mapBits(flags: readonly MapFlag[] | undefined): number {
  return (flags ?? []).reduce((b, f) => b | MAP_FLAG_BITS[f], 0);
}

/** The mremap flags of a program's mremap. */
function mremapBits(o: { fixed: boolean; dontunmap?: boolean }): number {
  if (!o.fixed) return 0;
  return MREMAP_MAYMOVE | MREMAP_FIXED | (o.dontunmap === true ? MREMAP_DONTUNMAP : 0);
}

/** The scenario's mmap flags for `flags`: MAP_FIXED_NOREPLACE unless MAP_FIXED is asked for. */
function mapNames(flags: readonly MapFlag[] | undefined): string[] {
  const f = flags ?? [];
  return [...f, ...(f.includes('fixed') ? [] : ['fixed_noreplace'])];
}

/**
 * The smaps fields the helper prints, by the scenario's names, in its order (SMAPS_FIELDS in
 * native/difftest_helper.c). Those in SMAPS_UNCOMPARED are left out of the comparison.
 */
const SMAPS_FIELDS = [
  'rss',
  'pss',
  'pss_dirty',
  'shared_clean',
  'shared_dirty',
  'private_clean',
  'private_dirty',
  'referenced',
  'anonymous',
  'lazyfree',
  'anon_huge_pages',
  'shmem_pmd_mapped',
  'shared_hugetlb',
  'private_hugetlb',
  'swap',
  'swap_pss',
  'locked',
];

/**
 * The smaps fields not compared, because they read LRU state the kernel changes lazily or by its
 * own policy and the model sets at once:
 * - Referenced counts a page whose PTE is young or whose folio has PG_referenced. After
 *   clear_refs, x86 keeps using cached translations without setting the young bit again, where
 *   the model, which has no TLB, sets it at the next access; and folio_mark_accessed() (file reads
 *   and writes, GUP) activates a folio through a per-CPU batch, until whose drain further accesses
 *   set and clear PG_referenced again, where the model activates the folio at once.
 * - LazyFree counts anonymous folios without PG_swapbacked; MADV_FREE clears it through a per-CPU
 *   batch (folio_mark_lazyfree()) that is drained later, so right after the call the kernel
 *   counts none.
 */
const SMAPS_UNCOMPARED = new Set(['referenced', 'lazyfree']);

/**
 * One VMA of smaps, the model's or the helper's line, as compared: START-END, then each field's
 * kB, then VmFlags' names (but `sd`), comma-separated (`-` for none).
 */
function smapsCompared(range: string, kb: readonly number[], vmflags: string): string {
  return `${range} ${kb.filter((_, i) => !SMAPS_UNCOMPARED.has(SMAPS_FIELDS[i])).join(':')} ${vmflags}`;
}

function smapsLine(e: Record<string, number | string>): string {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const flags = String(e.vmflags ?? '');
  return smapsCompared(
    `${hex(e.start as number)}-${hex(e.end as number)}`,
    SMAPS_FIELDS.map((k) => (e[k] as number) / 1024),
    flags === '' ? '-' : flags.split(' ').join(','),
  );
}

/** A VMA as compared, as scenario smaps expectations (its range, the fields compared in bytes, VmFlags). */
function smapsExpectation(line: string): Record<string, number | string> {
  const [range, fields, flags] = line.split(' ');
  const [start, end] = range.split('-').map((h) => parseInt(h, 16));
  const kb = fields.split(':').map(Number);
  const names = SMAPS_FIELDS.filter((k) => !SMAPS_UNCOMPARED.has(k));
  return {
    start,
    end,
    ...Object.fromEntries(names.map((k, i) => [k, kb[i] * 1024])),
    vmflags: flags === undefined || flags === '-' ? '' : flags.split(',').join(' '),
  };
}

/** The scenario's name for the process a program's `fork` makes. */
const CHILD = 'c';
/**
 * The ops the child may run. Not the file ops: the helper keeps its files in the parent (a file
 * made after the fork is not in the child's table), the model has one table for all processes.
 */
const CHILD_OPS = new Set<DiffOp['op']>([
  'mmap',
  'munmap',
  'mprotect',
  'madvise',
  'mremap',
  'write',
  'read',
  'pagemap',
  'mincore',
  'clear_refs',
  'maps',
  'smaps',
  'mlock',
  'munlock',
  'mlockall',
  'munlockall',
  'mseal',
  'process_madvise',
  'status',
  'setrlimit',
]);
/** How many files a program may hold at once (the helper's slots). */
const FILE_SLOTS = 2;
/** The fd a slot with no open file stands for on both sides: no file has it (EBADF). */
const NO_FILE = 1000;

/** Advice that only sets or clears a VMA flag (it splits and merges VMAs, and maps nothing). */
const FLAG_ADVICE = [
  'normal',
  'random',
  'dontfork',
  'dofork',
  'wipeonfork',
  'keeponfork',
  'dontdump',
  'dodump',
];
/** The advice programs give, by the scenario's names: MADV's values (mman.ts). */
const ADVICE: Record<string, number> = Object.fromEntries(
  [
    ...['dontneed', 'free', 'cold', 'pageout', 'remove', 'hugepage', 'nohugepage', 'willneed', 'collapse'],
    ...[
      'populate_read',
      'populate_write',
      'dontneed_locked',
      'guard_install',
      'guard_remove',
      ...FLAG_ADVICE,
    ],
  ].map((name) => [name, MADV[name.toUpperCase() as keyof typeof MADV]]),
);
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

function helperLine(o: DiffOp, saves: boolean): string {
  return o.child === true ? `c ${opLine(o, saves)}` : opLine(o, saves);
}

function opLine(o: DiffOp, saves: boolean): string {
  const a = (off: number) => WINDOW + off;
  switch (o.op) {
    case 'fork':
      return 'fork';
    case 'exit':
      return 'exitchild';
    case 'mmap':
      return `mmap ${a(o.off)} ${o.len} ${o.prot} ${o.droppable === true ? 2 : o.shared ? 1 : 0} ${mapBits(o.flags)}`;
    case 'munmap':
      return `munmap ${a(o.off)} ${o.len}`;
    case 'mprotect':
      return `mprotect ${a(o.off)} ${o.len} ${o.prot}`;
    case 'madvise':
      return `madvise ${a(o.off)} ${o.len} ${ADVICE[o.advice]}`;
    case 'mremap':
      return `mremap ${a(o.off)} ${o.len} ${o.newLen} ${mremapBits(o)} ${o.fixed ? a(o.newOff) : 0}`;
    case 'write':
      return `write ${a(o.off)} ${o.len} ${o.byte}`;
    case 'read':
      return `read ${a(o.off)} ${o.len}`;
    case 'pagemap':
      return `pagemap ${a(o.off)} ${o.npages}`;
    case 'mincore':
      return `mincore ${a(o.off)} ${o.len}`;
    case 'clear_refs':
      return 'clear_refs';
    case 'maps':
      return `maps ${WINDOW} ${WINDOW_SIZE}`;
    case 'smaps':
      return `smaps ${WINDOW} ${WINDOW_SIZE}`;
    case 'memfd':
      return `memfd ${o.slot} ${o.flags ?? 0}`;
    case 'fcntl':
      return `fcntl ${o.slot} ${o.cmd} ${o.arg}`;
    case 'open':
      return `open ${saves ? o.slot : NO_SLOT} ${o.from} ${o.flags}`;
    case 'fchmod':
      return `fchmod ${o.slot} ${o.mode}`;
    case 'close':
      return `close ${o.slot}`;
    case 'ftruncate':
      return `ftruncate ${o.slot} ${o.len}`;
    case 'fallocate':
      return `fallocate ${o.slot} ${o.mode} ${o.foff} ${o.len}`;
    case 'mmapf':
      return `mmapf ${a(o.off)} ${o.len} ${o.prot} ${o.shared ? 1 : 0} ${o.slot} ${o.foff} ${mapBits(o.flags)}`;
    case 'pwrite':
      return `pwrite ${o.slot} ${o.foff} ${o.len} ${o.byte}`;
    case 'pread':
      return `pread ${o.slot} ${o.foff} ${o.len}`;
    case 'fwrite':
      return `fwrite ${o.slot} ${o.len} ${o.byte}`;
    case 'fread':
      return `fread ${o.slot} ${o.len}`;
    case 'lseek':
      return `lseek ${o.slot} ${o.foff} ${o.whence}`;
    case 'mlock':
      return `mlock ${a(o.off)} ${o.len} ${o.flags}`;
    case 'munlock':
      return `munlock ${a(o.off)} ${o.len}`;
    case 'mlockall':
      return `mlockall ${o.flags}`;
    case 'munlockall':
      return 'munlockall';
    case 'mseal':
      return `mseal ${a(o.off)} ${o.len} ${o.flags}`;
    case 'process_madvise': {
      const [s0, s1] = [o.segs[0], o.segs[1] ?? { off: 0, len: 0 }];
      return `pmadvise ${o.remote ? 1 : 0} ${ADVICE[o.advice]} ${o.segs.length} ${a(s0.off)} ${s0.len} ${a(s1.off)} ${s1.len}`;
    }
    case 'status':
      return 'status';
    case 'setrlimit': {
      const bytes = (v: RlimitValue) => (v === 'unlimited' ? 0 : v);
      const inf = (o.cur === 'unlimited' ? 1 : 0) | (o.max === 'unlimited' ? 2 : 0);
      return `rlimit ${['as', 'data', 'stack', 'memlock'].indexOf(o.res)} ${bytes(o.cur)} ${bytes(o.max)} ${inf}`;
    }
  }
}

/** One op's outcome on either side. */
export interface Outcome {
  ret: number;
  /** read: FNV-1a of the bytes read; pagemap: per-page flags; maps: the entries, `|` between. */
  extra?: string;
  /**
   * The model's outcome of a write() at the file position (fwrite) only: the offset it wrote at,
   * the file's size with O_APPEND. Not compared: the known differences read it.
   */
  at?: number;
}

/** Runs a program on the live kernel. */
export function runLive(helper: string, ops: readonly DiffOp[]): Outcome[] {
  const saves = openSaves(ops);
  const input =
    [`window ${WINDOW} ${WINDOW_SIZE}`, ...ops.map((o, i) => helperLine(o, saves[i]))].join('\n') + '\n';
  const r = spawnSync(helper, [], { input, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0)
    throw new HelperError(`the live-kernel helper failed (${r.status ?? r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  if (lines[0] !== 'R 0')
    throw new HelperError(
      `the window at 0x${WINDOW.toString(16)} is not free in a fresh process (${lines[0]})`,
    );
  return lines.slice(1).map((l, i) => {
    const sp = l.indexOf(' ', 2);
    const ret = sp < 0 ? l.slice(2) : l.slice(2, sp);
    let extra = sp < 0 ? undefined : l.slice(sp + 1);
    if (extra !== undefined && ops[i]?.op === 'smaps')
      extra = extra
        .split('|')
        .map((v) => {
          const [range, kb, vmflags] = v.split(' ');
          return smapsCompared(range, kb.split(':').map(Number), vmflags ?? '-');
        })
        .join('|');
    // A load that faulted is compared by its errno only (the model stops at the same byte).
    return extra === undefined || Number(ret) < 0 ? { ret: Number(ret) } : { ret: Number(ret), extra };
  });
}

function fnv(d: Uint8Array): string {
  let h = 2166136261;
  for (const b of d) h = Math.imul(h ^ b, 16777619) >>> 0;
  return String(h);
}

/**
 * The names of each op's files in the scenario: `fd`, the file it works on (the name its slot
 * holds; for an open, the slot it opens from; NO_FILE for a slot with no file, never opened or
 * closed), and `save`, the name of the file it makes (a memfd_create, and an open that keeps its
 * file: openSaves()), `f1`, `f2`, ... in program order.
 */
function fileNames(ops: readonly DiffOp[]): { fd: string | number; save?: string }[] {
  const slots: (string | number)[] = Array.from({ length: FILE_SLOTS }, () => NO_FILE);
  const saves = openSaves(ops);
  let made = 0;
  return ops.map((o, i) => {
    if (!('slot' in o)) return { fd: NO_FILE };
    if (o.op === 'memfd' || (o.op === 'open' && saves[i])) {
      const fd = o.op === 'open' ? slots[o.from] : NO_FILE;
      const save = `f${++made}`;
      slots[o.slot] = save;
      return { fd, save };
    }
    if (o.op === 'open') return { fd: slots[o.from] };
    const fd = slots[o.slot];
    if (o.op === 'close') slots[o.slot] = NO_FILE;
    return { fd };
  });
}

/** The slot number the helper takes for "close the new file again" (any number past the slots). */
const NO_SLOT = 99;
/** open() flags a program's open may keep its file with: none makes the open fail. */
const OPEN_KEEPS = new Set([
  O_RDONLY,
  O_WRONLY,
  O_RDWR,
  O_ACCMODE,
  O_PATH,
  O_PATH | O_NOFOLLOW,
  O_RDWR | O_APPEND,
  O_WRONLY | O_APPEND,
]);
/** lseek() whence values by the scenario's names (a whence past SEEK_HOLE goes by its number). */
const WHENCE_NAMES: Record<number, string> = { 0: 'set', 1: 'cur', 2: 'end', 3: 'data', 4: 'hole' };

/**
 * Which `open` ops keep their file in their slot: those that cannot fail, whatever else the
 * program did (an open of a slot that holds a memfd or an O_PATH file of one, with flags of
 * OPEN_KEEPS). The others close it again, as the model's run cannot bind a name to an open that
 * failed. Both sides decide this from the program alone, so that they agree after minimising.
 */
function openSaves(ops: readonly DiffOp[]): boolean[] {
  type Held = 'none' | 'file' | 'path' | 'link';
  const held: Held[] = Array.from({ length: FILE_SLOTS }, () => 'none');
  return ops.map((o) => {
    if (o.op === 'memfd') held[o.slot] = 'file';
    else if (o.op === 'close') held[o.slot] = 'none';
    else if (o.op === 'open') {
      const keeps = (held[o.from] === 'file' || held[o.from] === 'path') && OPEN_KEEPS.has(o.flags);
      if (keeps)
        held[o.slot] = (o.flags & O_PATH) === 0 ? 'file' : (o.flags & O_NOFOLLOW) !== 0 ? 'link' : 'path';
      return keeps;
    }
    return false;
  });
}

/** The scenario's names of the bits set in `bits`, by a table of names (FALLOC, MFD). */
function flagNames(table: Record<string, number>, bits: number): string[] {
  return Object.entries(table)
    .filter(([, bit]) => (bits & bit) !== 0)
    .map(([name]) => name);
}

/** open() flags by the scenario's names: the access mode by its value, then the other bits. */
function openFlagNames(flags: number): string[] {
  const modes = ['rdonly', 'wronly', 'rdwr', 'accmode'];
  const others = Object.fromEntries(Object.entries(OPEN).filter(([name]) => !modes.includes(name)));
  return [modes[flags & O_ACCMODE], ...flagNames(others, flags)];
}

/** The program as scenario steps (what the model runs and a reproducer holds). */
export function scenarioSteps(ops: readonly DiffOp[]): Record<string, unknown>[] {
  const a = (off: number) => WINDOW + off;
  const files = fileNames(ops);
  return ops.map((o, i) => {
    const { fd, save } = files[i];
    const proc = o.child === true ? CHILD : 'p';
    switch (o.op) {
      case 'fork':
        return { op: 'fork', proc: 'p', child: CHILD };
      case 'exit':
        return { op: 'exit', proc: CHILD };
      case 'memfd':
        return {
          op: 'memfd_create',
          name: 'difftest',
          ...(o.flags ? { flags: flagNames(MFD, o.flags) } : {}),
          save,
        };
      case 'fcntl':
        return {
          op: 'fcntl',
          fd,
          cmd: o.cmd === F_ADD_SEALS ? 'add_seals' : 'get_seals',
          ...(o.cmd === F_ADD_SEALS ? { seals: o.arg } : {}),
        };
      case 'open':
        return { op: 'open', proc: 'p', fd, flags: openFlagNames(o.flags), ...(save ? { save } : {}) };
      case 'fchmod':
        return { op: 'fchmod', fd, mode: o.mode };
      case 'close':
        return { op: 'close', fd };
      case 'ftruncate':
        return { op: 'ftruncate', fd, length: o.len };
      case 'fallocate':
        return { op: 'fallocate', fd, mode: flagNames(FALLOC, o.mode), offset: o.foff, length: o.len };
      case 'pwrite':
        return { op: 'pwrite', fd, offset: o.foff, length: o.len, data: { fill: o.byte } };
      case 'pread':
        return { op: 'pread', fd, offset: o.foff, length: o.len };
      case 'fwrite':
        return { op: 'write', fd, length: o.len, data: { fill: o.byte } };
      case 'fread':
        return { op: 'read', fd, length: o.len };
      case 'lseek':
        return { op: 'lseek', fd, offset: o.foff, whence: WHENCE_NAMES[o.whence] ?? o.whence };
      case 'mmap':
      case 'mmapf': {
        const anon = o.op === 'mmap';
        const step = {
          op: 'mmap',
          proc,
          addr: a(o.off),
          length: o.len,
          prot: PROT_NAMES[o.prot],
          flags: [
            anon && o.droppable === true ? 'droppable' : o.shared ? 'shared' : 'private',
            ...(anon ? ['anonymous'] : []),
            ...mapNames(o.flags),
          ],
        };
        return anon ? step : { ...step, fd, offset: o.foff };
      }
      case 'munmap':
        return { op: 'munmap', proc, addr: a(o.off), length: o.len };
      case 'mprotect':
        return { op: 'mprotect', proc, addr: a(o.off), length: o.len, prot: PROT_NAMES[o.prot] ?? o.prot };
      case 'madvise':
        return { op: 'madvise', proc, addr: a(o.off), length: o.len, advice: o.advice };
      case 'mremap': {
        const s: Record<string, unknown> = {
          op: 'mremap',
          proc,
          addr: a(o.off),
          length: o.len,
          new_length: o.newLen,
          flags: o.fixed ? ['maymove', 'fixed', ...(o.dontunmap === true ? ['dontunmap'] : [])] : [],
        };
        if (o.fixed) s.new_addr = a(o.newOff);
        return s;
      }
      case 'write':
        return { op: 'cpu_write', proc, addr: a(o.off), length: o.len, data: { fill: o.byte } };
      case 'read':
        return { op: 'cpu_read', proc, addr: a(o.off), length: o.len };
      case 'pagemap':
        return { op: 'pagemap', proc, addr: a(o.off), npages: o.npages };
      case 'mincore':
        return { op: 'mincore', proc, addr: a(o.off), length: o.len };
      case 'clear_refs':
        return { op: 'clear_soft_dirty', proc };
      case 'maps':
      case 'smaps':
        return { op: o.op, proc, addr: WINDOW, length: WINDOW_SIZE };
      case 'mlock':
        return { op: 'mlock', proc, addr: a(o.off), length: o.len, flags: o.flags };
      case 'munlock':
        return { op: 'munlock', proc, addr: a(o.off), length: o.len };
      case 'mlockall':
        return { op: 'mlockall', proc, flags: o.flags };
      case 'munlockall':
        return { op: 'munlockall', proc };
      case 'mseal':
        return {
          op: 'mseal',
          proc,
          addr: a(o.off),
          length: o.len,
          ...(o.flags !== 0 ? { flags: o.flags } : {}),
        };
      case 'process_madvise':
        return {
          op: 'process_madvise',
          proc,
          ...(o.remote ? { target: CHILD } : {}),
          iov: o.segs.map((s) => ({ addr: a(s.off), length: s.len })),
          advice: o.advice,
        };
      case 'status':
        // The reproducer's expectations are the live counts (reproducer()); the model's run
        // reads its own (runModel()).
        return { op: 'expect_stats', proc };
      case 'setrlimit':
        return { op: 'setrlimit', proc, resource: o.res, cur: o.cur, max: o.max };
    }
  });
}

export interface HostConfig {
  thp: 'always' | 'madvise' | 'never';
  swap: boolean;
  softDirty: boolean;
  /**
   * Whether programs use files: the model's tmpfs has no huge pages, so only where the live
   * kernel's shmem_enabled is `never` or `deny`.
   */
  files: boolean;
  /**
   * Whether a read fault of private anonymous memory maps the shared zero page, as 6.18's
   * do_anonymous_page() does. Where the kernel maps a page of the process's own instead, the
   * model runs with `zero_page: false` (mm_forbids_zeropage()) to match.
   */
  zeroPage: boolean;
  /**
   * The live kernel's pool of 2 MiB huge pages when it is idle and small enough for the model's
   * RAM to hold (2 to 16 pages, none in use): programs then use hugetlb too, and the model's pool
   * is the same size. 0: no hugetlb programs (vm.nr_hugepages is 0 on most machines).
   */
  hugePages: number;
}

/** The huge-page counts of /proc/meminfo (-1 for a field it lacks). */
export interface HugePool {
  total: number;
  free: number;
  rsvd: number;
  surp: number;
  /** Hugepagesize, in kB. */
  size: number;
}

/** The huge-page counts in the text of /proc/meminfo. */
export function parseHugePool(meminfo: string): HugePool {
  const field = (name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? -1);
  return {
    total: field('HugePages_Total'),
    free: field('HugePages_Free'),
    rsvd: field('HugePages_Rsvd'),
    surp: field('HugePages_Surp'),
    size: field('Hugepagesize'),
  };
}

/**
 * The size of a pool difftest can use: HugePages_Total when it is 2 to 16 pages of 2 MiB, all of
 * them free, none reserved or surplus; else 0.
 */
export function idlePoolSize(p: HugePool): number {
  const idle = p.total === p.free && p.rsvd === 0 && p.surp === 0;
  return idle && p.size === 2048 && p.total >= 2 && p.total <= 16 ? p.total : 0;
}

function hugePool(): HugePool | null {
  try {
    return parseHugePool(readFileSync('/proc/meminfo', 'utf8'));
  } catch {
    return null;
  }
}

function idleHugePool(): number {
  const p = hugePool();
  return p === null ? 0 : idlePoolSize(p);
}

/** The live kernel's knobs the model must match: THP mode, swap, soft-dirty, shmem THP, the zero page. */
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
  // A page written after mmap is soft-dirty where the kernel has CONFIG_MEM_SOFT_DIRTY; a page
  // only read is the zero page, not mapped exclusively, where the kernel uses one.
  const probe = runLive(helper, [
    { op: 'mmap', off: 0, len: 2 * PAGE, prot: 3, shared: false },
    { op: 'write', off: 0, len: 1, byte: 1 },
    { op: 'pagemap', off: 0, npages: 1 },
    { op: 'read', off: PAGE, len: 1 },
    { op: 'pagemap', off: PAGE, npages: 1 },
  ]);
  let files = false;
  try {
    const m = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/shmem_enabled', 'utf8'));
    files = m === null || m[1] === 'never' || m[1] === 'deny';
  } catch {
    files = true;
  }
  return {
    thp,
    swap,
    softDirty: probe[2]?.extra?.includes('d') === true,
    files,
    zeroPage: probe[4]?.extra?.includes('x') !== true,
    hugePages: idleHugePool(),
  };
}

/** The model's system for a host: its RAM and swap, and the host's knobs. */
function systemOf(host: HostConfig): Record<string, unknown> {
  // RLIMIT_MEMLOCK as the helper sets it (memlock_as_user()), with no CAP_IPC_LOCK on either side.
  const sys: Record<string, unknown> = {
    ram: '64MiB',
    swap: host.swap ? '64MiB' : 0,
    thp: host.thp,
    rlimit_memlock: '64KiB',
  };
  if (!host.zeroPage) sys.zero_page = false;
  if (host.hugePages > 0) sys.hugetlb_pages = host.hugePages;
  return sys;
}

/** Runs a program on the model. */
export function runModel(ops: readonly DiffOp[], host: HostConfig): Outcome[] {
  const doc = {
    version: 1,
    system: systemOf(host),
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
  const steps = parsed.scenario.steps ?? [];
  steps.forEach((step, i) => {
    const o = ops[i];
    // Reads: the bytes themselves, not the report's summary, hashed as the helper does.
    const proc = o.child === true ? ctx.procs.get(CHILD) : p;
    if (o.op === 'read' && proc !== undefined) {
      const r = ctx.sys.run('p', ctx.sc.cpuRead(ctx.sys, proc, WINDOW + o.off, o.len));
      out.push(r.ret < 0 ? { ret: r.ret } : { ret: r.ret, extra: fnv(r.data) });
      return;
    }
    if (o.op === 'status') {
      if (proc?.mm == null) out.push({ ret: -Errno.ESRCH });
      else {
        const s = ctx.sys.stats(proc);
        const kb = (bytes: number) => bytes / 1024;
        // VmPTE only for the parent: the helper's child also holds tables of the helper's own,
        // and more as it faults in the helper's code and libc's, by a varying amount.
        const pte = o.child === true ? '' : `:${kb(s.pgtables)}`;
        out.push({
          ret: 0,
          extra: `${kb(s.locked_vm)}:${kb(s.data_vm)}:${kb(s.total_vm)}:${kb(s.stack_vm)}${pte}`,
        });
      }
      return;
    }
    if (o.op === 'pread') {
      const fd = (step as { fd: string | number }).fd;
      const r = ctx.sys.run('p', ctx.sc.sysPread(ctx.sys, ctx.num(fd), o.len, o.foff));
      out.push(r.ret < 0 ? { ret: r.ret } : { ret: r.ret, extra: fnv(r.data) });
      return;
    }
    if (o.op === 'fread') {
      const fd = (step as { fd: string | number }).fd;
      const r = ctx.sys.run('p', ctx.sc.sysRead(ctx.sys, ctx.num(fd), o.len));
      out.push(r.ret < 0 ? { ret: r.ret } : { ret: r.ret, extra: fnv(r.data) });
      return;
    }
    if (o.op === 'fwrite') {
      // Where it writes, as writeLocked() decides (before the write moves it).
      const f = ctx.sys.fileOf(ctx.num((step as { fd: string | number }).fd));
      const at = f === null ? undefined : (f.mode & O_APPEND) !== 0 && o.len > 0 ? f.inode.size : f.pos;
      const r = runStepNow(ctx, step, 'steps', i, ['steps', i]);
      out.push(at === undefined ? { ret: r.ret } : { ret: r.ret, at });
      return;
    }
    const r = runStepNow(ctx, step, 'steps', i, ['steps', i]);
    if (o.op === 'pagemap') {
      const flags = (r.pages ?? []).flatMap((run) =>
        Array.from({ length: run.count }, () => {
          const s =
            (run.present ? 'p' : '') +
            (run.swap ? 's' : '') +
            (host.softDirty && run.soft_dirty ? 'd' : '') +
            (run.exclusive ? 'x' : '') +
            (run.file ? 'f' : '');
          return s === '' ? '-' : s;
        }),
      );
      out.push({ ret: r.ret, extra: flags.join(',') });
    } else if (o.op === 'maps' || o.op === 'smaps') {
      const lines =
        o.op === 'maps'
          ? ((r.outputs?.maps ?? []) as string[])
          : ((r.outputs?.smaps ?? []) as Record<string, number | string>[]).map(smapsLine);
      out.push(r.ret < 0 || lines.length === 0 ? { ret: r.ret } : { ret: r.ret, extra: lines.join('|') });
    } else if (o.op === 'mincore') {
      const vec = r.outputs?.vec as string | undefined;
      out.push(r.ret < 0 || vec === undefined || vec === '' ? { ret: r.ret } : { ret: r.ret, extra: vec });
    } else if (o.op === 'memfd' || o.op === 'fork' || o.op === 'open') {
      // The fd numbers and pids differ between the two sides: only success is compared.
      out.push({ ret: r.ret < 0 ? r.ret : 0 });
    } else out.push({ ret: r.ret });
  });
  return out;
}

/**
 * Random programs over a few pages of the window, with edge lengths and offsets. With `files`, one
 * program in three also makes memfds and maps, sizes, allocates, punches, writes and reads them.
 * Without `softDirty` (a kernel without CONFIG_MEM_SOFT_DIRTY, whose clear_refs 4 changes no
 * PTE, where the model's write-protects them) no program writes clear_refs. With `hugePages`
 * (the live kernel's idle pool, HostConfig), one program in four is over huge pages instead
 * (hugetlbProgram()).
 */
export function generateProgram(
  r: Prng,
  len: number,
  files = false,
  softDirty = true,
  hugePages = 0,
  /** Where setrlimit() steps are drawn from, apart from `r` (see rlimitSteps()); none without it. */
  limits?: Prng,
  /** Whether the kernel gives MADV_HUGEPAGE memory transparent huge pages (thpProgram()). */
  thp = false,
): DiffOp[] {
  if (hugePages > 0 && r.next() < 0.25) return hugetlbProgram(r, len);
  if (thp && r.next() < 0.2) return thpProgram(r, len);
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
  const withFiles = files && r.next() < 1 / 3;
  if (withFiles)
    ops.push(
      { op: 'memfd', slot: 0, ...(r.next() < 0.5 ? { flags: MFD_ALLOW_SEALING } : {}) },
      { op: 'ftruncate', slot: 0, len: (1 + r.int(12)) * PAGE },
    );
  // One program in four forks somewhere; after it, an op on memory runs in either process.
  const fork = new ForkPlan(r, ops.length, len, 0.25);
  while (ops.length < len) {
    if (fork.step(ops)) continue;
    const o = withFiles && r.next() < 0.45 ? fileOp(r, off, length) : anonOp();
    if (fork.exited && o.op === 'process_madvise') o.remote = false;
    if (fork.childAlive && CHILD_OPS.has(o.op) && !(o.op === 'process_madvise' && o.remote) && r.next() < 0.5)
      o.child = true;
    ops.push(o);
  }
  noDontUnmapWhenLocked(ops);
  if (limits !== undefined) rlimitSteps(limits, ops);
  pushViews(ops, false);
  // And the seals each file slot ends with.
  if (withFiles)
    for (let slot = 0; slot < FILE_SLOTS; slot++) ops.push({ op: 'fcntl', slot, cmd: F_GET_SEALS, arg: 0 });
  if (fork.childAlive) pushViews(ops, true);
  return ops;

  function anonOp(): DiffOp {
    const k = r.int(110);
    // process_madvise(2), now and then: on the parent's own memory, or after the fork on the
    // child's (advice the kernel refuses there too, and without CAP_SYS_NICE).
    if (k >= 108) {
      const n = 1 + r.int(2);
      const segs = Array.from({ length: n }, () => ({
        off: off(),
        len: r.next() < 0.9 ? (1 + r.int(8)) * PAGE - (r.next() < 0.2 ? 1 + r.int(PAGE - 1) : 0) : 0,
      }));
      const remote = fork.forked && r.next() < 0.3;
      const advice = remote
        ? pick(['cold', 'pageout', 'willneed', 'dontneed'])
        : pick([
            'dontneed',
            'free',
            'pageout',
            'cold',
            'willneed',
            'populate_read',
            'guard_install',
            'guard_remove',
          ]);
      return { op: 'process_madvise', remote, segs, advice };
    }
    // mseal(2), now and then: a sealed mapping refuses munmap, mremap, mprotect and discarding
    // advice from then on (the rest of the program exercises those refusals).
    if (k >= 106)
      return {
        op: 'mseal',
        off: off(),
        len:
          r.next() < 0.8
            ? (1 + r.int(8)) * PAGE - (r.next() < 0.2 ? 1 + r.int(PAGE - 1) : 0)
            : ulen(U64_WRAPPING_LENGTHS),
        flags: r.next() < 0.95 ? 0 : pick([1, 2]),
      };
    if (k < 14) {
      const shared = r.next() < 0.25;
      const o: DiffOp = {
        op: 'mmap',
        off: off(),
        len: ulen(),
        prot: pick([0, 1, 3, 3]),
        shared,
        // MAP_DROPPABLE now and then: pages that MADV_PAGEOUT drops even when written.
        ...(!shared && r.next() < 0.1 ? { droppable: true } : {}),
      };
      const flags = mapFlags(r);
      return flags.length > 0 ? { ...o, flags } : o;
    } else if (k < 22) return { op: 'munmap', off: off(), len: ulen() };
    else if (k < 32) {
      // PROT_GROWSDOWN now and then: the change reaches down to the start of a VMA that grows down.
      // Its length stays in the window: the first VMA of the range decides, and a range that
      // reached the helper's own mappings would find them.
      const grows = r.next() < 0.1;
      return {
        op: 'mprotect',
        off: off(),
        len: grows ? length() : ulen(),
        prot: (grows ? PROT_GROWSDOWN : 0) | pick([0, 1, 3]),
      };
    } else if (k < 42)
      return {
        op: 'madvise',
        off: off(),
        len: ulen(U64_WRAPPING_LENGTHS),
        advice:
          r.next() < 0.8
            ? pick(['dontneed', 'free', 'cold', 'pageout', 'remove', 'hugepage', 'nohugepage'])
            : r.next() < 0.6
              ? pick([
                  'willneed',
                  'populate_read',
                  'populate_write',
                  'dontneed_locked',
                  'guard_install',
                  'guard_remove',
                  'collapse',
                ])
              : pick(FLAG_ADVICE),
      };
    else if (k < 47) {
      const fixed = r.next() < 0.7;
      // MREMAP_DONTUNMAP wants the same length; mostly it gets it.
      const dontunmap = fixed && r.next() < 0.25;
      const len = ulen();
      return {
        op: 'mremap',
        off: off(),
        len,
        newLen: dontunmap && r.next() < 0.7 ? len : ulen(),
        fixed,
        newOff: (32 + r.int(16)) * PAGE,
        ...(dontunmap ? { dontunmap } : {}),
      };
    } else if (k < 67)
      return {
        op: 'write',
        off: off(),
        len: r.next() < 0.8 ? 1 + r.int(2 * PAGE) : length(),
        byte: r.int(256),
      };
    else if (k < 82) return { op: 'read', off: off(), len: r.next() < 0.8 ? 1 + r.int(2 * PAGE) : length() };
    else if (k < 87) return { op: 'pagemap', off: off(), npages: 1 + r.int(16) };
    else if (k < 90)
      // Half of them within the first mapping, which every program makes at offset 0.
      return {
        op: 'mincore',
        off: r.next() < 0.5 ? r.int(4) * PAGE : off(),
        len: r.next() < 0.85 ? (1 + r.int(8)) * PAGE - (r.next() < 0.2 ? 1 + r.int(PAGE - 1) : 0) : ulen(),
      };
    else if (k < 93) return { op: 'maps' };
    else if (k < 95) return { op: 'smaps' };
    else if (k < 96) return { op: 'status' };
    else if (k < 100) return softDirty ? { op: 'clear_refs' } : { op: 'smaps' };
    else if (k < 103)
      return {
        op: 'mlock',
        off: off(),
        len: ulen(U64_WRAPPING_LENGTHS),
        flags: r.next() < 0.9 ? r.int(2) : 2,
      };
    else if (k < 105) return { op: 'munlock', off: off(), len: ulen(U64_WRAPPING_LENGTHS) };
    else if (r.next() < 0.5) return { op: 'munlockall' };
    return { op: 'mlockall', flags: r.next() < 0.8 ? pick([2, 6]) : pick([0, 4, 8]) };
  }
}

/**
 * One program in five sets one or two limits (RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK,
 * RLIMIT_MEMLOCK) somewhere after its first mapping, in either process once it forked, so that the
 * ops after it meet may_expand_vm() or the lock limit. Drawn from a generator of their own (`r`),
 * the steps go into a program otherwise the same as without them. Limits are small, to be met by
 * the program's mappings of a few pages; a hard limit is mostly left unlimited (RLIMIT_MEMLOCK's
 * mostly the soft one, as its hard limit starts at 64 KiB), sometimes lowered, and now and then
 * below the soft one (-EINVAL) or above one lowered before (-EPERM).
 */
function rlimitSteps(r: Prng, ops: DiffOp[]): void {
  if (r.next() >= 0.2) return;
  const pick = <T>(xs: readonly T[]): T => xs[r.int(xs.length)];
  const n = 1 + (r.next() < 0.3 ? 1 : 0);
  for (let k = 0; k < n; k++) {
    const at = 1 + r.int(ops.length - 1);
    const res = pick(['as', 'as', 'data', 'data', 'stack', 'memlock'] as const);
    const cur: RlimitValue =
      r.next() < 0.1
        ? 'unlimited'
        : pick([0, 1, 4, 8, 16, 24, 32, 64]) * PAGE + (r.next() < 0.15 ? 1 + r.int(PAGE - 1) : 0);
    const q = r.next();
    const max: RlimitValue =
      res === 'memlock' && q < 0.6 && cur !== 'unlimited'
        ? cur
        : q < 0.6 || cur === 'unlimited'
          ? 'unlimited'
          : q < 0.8
            ? cur
            : q < 0.9
              ? Math.max(0, cur - PAGE)
              : cur + pick([1, 16, 256]) * PAGE;
    // The child runs it if there is one then, half the time.
    const forkAt = ops.findIndex((o) => o.op === 'fork');
    const exitAt = ops.findIndex((o) => o.op === 'exit');
    const childAlive = forkAt >= 0 && forkAt < at && (exitAt < 0 || exitAt >= at);
    const o: DiffOp = { op: 'setrlimit', res, cur, max };
    if (childAlive && r.next() < 0.5) o.child = true;
    ops.splice(at, 0, o);
  }
}

/**
 * Where a program forks, with probability `p` somewhere among its ops from `from` to `len`, and in
 * a third of those where its child exits later on (the parent goes on alone). step() puts the
 * fork or the exit in when its place comes.
 */
class ForkPlan {
  private readonly forkAt: number;
  private readonly exitAt: number;
  forked = false;
  exited = false;

  constructor(r: Prng, from: number, len: number, p: number) {
    this.forkAt = r.next() < p ? from + r.int(Math.max(1, len - from)) : -1;
    this.exitAt =
      this.forkAt >= 0 && r.next() < 1 / 3 ? this.forkAt + 1 + r.int(Math.max(1, len - this.forkAt)) : -1;
  }

  /** Pushes the fork or the exit if `ops` has come to its place; whether it did. */
  step(ops: DiffOp[]): boolean {
    if (ops.length === this.forkAt) {
      ops.push({ op: 'fork' });
      this.forked = true;
      return true;
    }
    if (ops.length === this.exitAt) {
      ops.push({ op: 'exit' });
      this.exited = true;
      return true;
    }
    return false;
  }

  /** Whether a child is there for an op to run in. */
  get childAlive(): boolean {
    return this.forked && !this.exited;
  }
}

/**
 * A program over 2 MiB huge pages: a hugetlbfs memfd and anonymous MAP_HUGETLB memory, mapped
 * shared and private at huge-page offsets of the window (now and then at one the kernel refuses),
 * written and read through, sized, allocated and punched, unmapped, protected and advised, until
 * the pool or the reservations run out. One program in three forks, and memory ops after the
 * fork run in either process: a child copies a huge page without a reservation of its own, and a
 * parent that finds no huge page to copy one into takes it from the child (unmap_ref_private()).
 * No mremap: on Linux 6.18 a program that forked and moved huge pages with it left
 * HugePages_Rsvd raised with nothing mapped, a loss the machine keeps until it reboots.
 */
export function hugetlbProgram(r: Prng, len: number): DiffOp[] {
  const pick = <T>(xs: readonly T[]): T => xs[r.int(xs.length)];
  const H = 2 * 1024 * 1024;
  const off = (): number => (r.next() < 0.9 ? r.int(6) * H : pick([PAGE, H - PAGE, H + 2 * PAGE]));
  const length = (): number => (r.next() < 0.85 ? (1 + r.int(3)) * H : pick([0, PAGE, H - 1, H + PAGE]));
  /** An address to load or store at: anywhere in a huge page. */
  const at = (): number => r.int(6) * H + (r.next() < 0.5 ? r.int(512) * PAGE + r.int(16) : 0);
  const foff = (): number => (r.next() < 0.9 ? r.int(4) * H : r.int(4) * H + pick([PAGE, 17]));
  const ops: DiffOp[] = [
    { op: 'memfd', slot: 0, flags: MFD_HUGETLB | (r.next() < 0.3 ? MFD_ALLOW_SEALING : 0) },
    { op: 'ftruncate', slot: 0, len: (1 + r.int(4)) * H },
    r.next() < 0.5
      ? { op: 'mmapf', off: 0, len: 2 * H, prot: 3, shared: r.next() < 0.7, slot: 0, foff: 0 }
      : { op: 'mmap', off: 0, len: 2 * H, prot: 3, shared: r.next() < 0.4, flags: ['hugetlb'] },
  ];
  const fork = new ForkPlan(r, ops.length, len, 1 / 3);
  while (ops.length < len) {
    if (fork.step(ops)) continue;
    const before = ops.length;
    hugetlbOp();
    const o = ops[before];
    if (fork.childAlive && CHILD_OPS.has(o.op) && r.next() < 0.5) o.child = true;
  }
  pushViews(ops, false);
  if (fork.childAlive) pushViews(ops, true);
  return ops;

  function hugetlbOp(): void {
    const k = r.int(100);
    if (k < 12) {
      const flags: MapFlag[] = ['hugetlb'];
      if (r.next() < 0.15) flags.push('noreserve');
      if (r.next() < 0.1) flags.push('populate');
      ops.push({
        op: 'mmap',
        off: off(),
        len: length(),
        prot: pick([1, 3, 3]),
        shared: r.next() < 0.4,
        flags,
      });
    } else if (k < 26) {
      const o: DiffOp = {
        op: 'mmapf',
        off: off(),
        len: length(),
        prot: pick([1, 3, 3]),
        shared: r.next() < 0.6,
        slot: 0,
        foff: foff(),
      };
      ops.push(r.next() < 0.15 ? { ...o, flags: [pick(['noreserve', 'populate'] as const)] } : o);
    } else if (k < 34) ops.push({ op: 'munmap', off: off(), len: length() });
    else if (k < 39) ops.push({ op: 'mprotect', off: off(), len: length(), prot: pick([0, 1, 3]) });
    else if (k < 47)
      ops.push({
        op: 'madvise',
        off: off(),
        len: length(),
        advice: pick([
          'dontneed',
          'remove',
          'free',
          'pageout',
          'willneed',
          'populate_read',
          'populate_write',
        ]),
      });
    else if (k < 64) ops.push({ op: 'write', off: at(), len: pick([1, 8, PAGE, H]), byte: r.int(256) });
    else if (k < 74) ops.push({ op: 'read', off: at(), len: pick([1, 8, PAGE]) });
    else if (k < 79)
      ops.push({ op: 'ftruncate', slot: 0, len: r.next() < 0.85 ? r.int(5) * H : pick([PAGE, H + PAGE]) });
    else if (k < 86)
      ops.push({
        op: 'fallocate',
        slot: 0,
        mode: pick([0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE]),
        foff: foff(),
        len: r.next() < 0.8 ? (1 + r.int(2)) * H : pick([PAGE, H + PAGE]),
      });
    else if (k < 91)
      ops.push({ op: 'pread', slot: 0, foff: r.int(4) * H + r.int(512) * PAGE, len: pick([8, PAGE]) });
    else if (k < 95) ops.push({ op: 'pagemap', off: at() - (at() % PAGE), npages: pick([1, 2, 513]) });
    else if (k < 97) ops.push({ op: 'mincore', off: off(), len: length() });
    else ops.push({ op: 'smaps' });
  }
}

/**
 * A program over transparent huge pages: private anonymous memory at 2 MiB-aligned offsets of the
 * window, given MADV_HUGEPAGE and written, so that faults map whole PMD-sized folios, then cut
 * through by munmap, mprotect and mremap at page offsets, advised (MADV_DONTNEED, MADV_FREE,
 * MADV_COLD, MADV_PAGEOUT, MADV_NOHUGEPAGE, MADV_COLLAPSE, population, guard regions;
 * process_madvise() too, on the fork child's memory as well) over whole and partial huge pages,
 * mlocked a few pages at a time, read
 * (the huge zero page), and, one program in three, shared with a fork child and written on either
 * side. smaps' AnonHugePages shows which huge pages each side still maps whole. A live fault or
 * collapse that found no huge page shows in /proc/vmstat, a collapse by khugepaged in its own
 * count, and such a program is not compared (runDifftest()).
 */
export function thpProgram(r: Prng, len: number): DiffOp[] {
  const pick = <T>(xs: readonly T[]): T => xs[r.int(xs.length)];
  const H = 2 * 1024 * 1024;
  /** A huge-page boundary mostly, else a page inside one. */
  const off = (): number => r.int(4) * H + (r.next() < 0.6 ? 0 : r.int(512) * PAGE);
  const length = (): number =>
    r.next() < 0.6 ? (1 + r.int(2)) * H : pick([PAGE, (1 + r.int(511)) * PAGE, H + (1 + r.int(511)) * PAGE]);
  /** An address to load or store at: anywhere in the four huge pages. */
  const at = (): number => r.int(4 * 512) * PAGE + (r.next() < 0.3 ? r.int(PAGE) : 0);
  const ops: DiffOp[] = [
    { op: 'mmap', off: 0, len: 4 * H, prot: 3, shared: false },
    { op: 'madvise', off: 0, len: 4 * H, advice: 'hugepage' },
    { op: 'write', off: r.int(4) * H + r.int(512) * PAGE, len: pick([1, PAGE, H]), byte: r.int(256) },
  ];
  const fork = new ForkPlan(r, ops.length, len, 1 / 3);
  while (ops.length < len) {
    if (fork.step(ops)) continue;
    const o = thpOp();
    const remote = o.op === 'process_madvise' && o.remote;
    if (fork.childAlive && CHILD_OPS.has(o.op) && !remote && r.next() < 0.5) o.child = true;
    ops.push(o);
  }
  noDontUnmapWhenLocked(ops);
  pushViews(ops, false);
  if (fork.childAlive) pushViews(ops, true);
  return ops;

  function thpOp(): DiffOp {
    const k = r.int(100);
    if (k < 28) return { op: 'write', off: at(), len: pick([1, 8, PAGE, 2 * PAGE, H]), byte: r.int(256) };
    if (k < 36) return { op: 'read', off: at(), len: pick([1, 8, PAGE]) };
    if (k < 56)
      return {
        op: 'madvise',
        off: off(),
        len: length(),
        advice: pick([
          'dontneed',
          'free',
          'free',
          'cold',
          'pageout',
          'pageout',
          'hugepage',
          'nohugepage',
          'populate_read',
          'populate_write',
          'willneed',
          'guard_install',
          'guard_remove',
          'collapse',
          'collapse',
          'dontneed_locked',
        ]),
      };
    if (k < 60) {
      // process_madvise(2): on this process's memory, or on the fork child's.
      const remote = fork.childAlive && r.next() < 0.5;
      return {
        op: 'process_madvise',
        remote,
        segs: [{ off: off(), len: length() }],
        advice: pick(
          remote ? ['cold', 'pageout', 'collapse'] : ['cold', 'pageout', 'dontneed', 'free', 'collapse'],
        ),
      };
    }
    if (k < 64) return { op: 'mprotect', off: off(), len: length(), prot: pick([0, 1, 3]) };
    if (k < 70) return { op: 'munmap', off: off(), len: length() };
    if (k < 78) {
      const len = length();
      const fixed = r.next() < 0.6;
      // MREMAP_DONTUNMAP now and then (it wants the same length): the old range stays, emptied.
      const dontunmap = fixed && r.next() < 0.25;
      return {
        op: 'mremap',
        off: off(),
        len,
        newLen: dontunmap || r.next() < 0.6 ? len : length(),
        fixed,
        // A huge-page boundary past the first mapping (4 MiB or more away), or a page inside one.
        newOff: (5 + r.int(4)) * H + (r.next() < 0.7 ? 0 : r.int(512) * PAGE),
        ...(dontunmap ? { dontunmap } : {}),
      };
    }
    if (k < 82) {
      // A new mapping over part of the old (MAP_FIXED) or past it, given MADV_HUGEPAGE later.
      const o: DiffOp = { op: 'mmap', off: off(), len: length(), prot: pick([1, 3, 3]), shared: false };
      return r.next() < 0.5 ? { ...o, flags: ['fixed'] } : o;
    }
    if (k < 88) return { op: 'pagemap', off: at() & ~(PAGE - 1), npages: pick([1, 2, 513]) };
    if (k < 92) return { op: 'mincore', off: off(), len: length() };
    // mlock(2) of a few pages inside a huge page (RLIMIT_MEMLOCK is 64 KiB on both sides), with
    // MLOCK_ONFAULT now and then; munlock(2) of them or of more.
    if (k < 96) return { op: 'mlock', off: off(), len: pick([PAGE, 16 * PAGE]), flags: r.int(2) };
    if (k < 98) return { op: 'munlock', off: off(), len: r.next() < 0.5 ? 16 * PAGE : length() };
    return { op: 'smaps' };
  }
}

/**
 * A program that locks memory moves nothing with MREMAP_DONTUNMAP: the kernel leaves PG_mlocked
 * on the pages left in the old range, which loses VM_LOCKED, and the model keeps no PG_mlocked
 * (docs/fidelity.md), so reclaim would take pages there that the kernel keeps.
 */
function noDontUnmapWhenLocked(ops: DiffOp[]): void {
  if (ops.some(locks)) for (const o of ops) if (o.op === 'mremap') delete o.dontunmap;
}

/**
 * The VMAs a process ends a program with and what they hold (maps, smaps, status): a split or
 * merge that no later call needed, or a page counted differently, shows here.
 */
function pushViews(ops: DiffOp[], child: boolean): void {
  if (child) ops.push({ op: 'maps', child }, { op: 'smaps', child }, { op: 'status', child });
  else ops.push({ op: 'maps' }, { op: 'smaps' }, { op: 'status' });
}

/** Whether an op may lock memory: mlock, mlockall, or a MAP_LOCKED mapping. */
function locks(o: DiffOp): boolean {
  if (o.op === 'mlock' || o.op === 'mlockall') return true;
  return (o.op === 'mmap' || o.op === 'mmapf') && o.flags?.includes('locked') === true;
}

/**
 * Flags an mmap adds now and then: MAP_FIXED over what is mapped, MAP_POPULATE, MAP_NORESERVE,
 * MAP_STACK, MAP_LOCKED, MAP_GROWSDOWN (a write below such a VMA grows it).
 */
function mapFlags(r: Prng): MapFlag[] {
  if (r.next() >= 0.3) return [];
  return (['fixed', 'populate', 'noreserve', 'stack', 'locked', 'growsdown'] as const).filter(
    (_, i) => r.next() < [0.6, 0.4, 0.3, 0.3, 0.2, 0.3][i],
  );
}

/**
 * One file op: mostly on slot 0, now and then on a second memfd, past the end of the file, at
 * offsets the kernel refuses (unaligned for mmap, past the largest file), in every fallocate mode.
 */
function fileOp(r: Prng, off: () => number, length: () => number): DiffOp {
  const pick = <T>(xs: readonly T[]): T => xs[r.int(xs.length)];
  const slot = r.next() < 0.85 ? 0 : 1;
  /** A byte offset in the file: a page mostly, else unaligned or far out. */
  const foff = (): number =>
    r.next() < 0.85
      ? r.int(16) * PAGE
      : pick([1, PAGE - 1, 100 * PAGE + 17, 2 ** 40, 2 ** 52 - PAGE, 2 ** 53 - PAGE]);
  const k = r.int(133);
  // read(), write() and lseek() at the open file's position (dup()ed and reopened files have
  // their own or a shared one): writes that grow the file, seeks to its data and holes.
  if (k >= 129)
    return {
      op: 'lseek',
      slot,
      foff: r.next() < 0.8 ? r.int(16) * PAGE + pick([0, 0, 1, 100]) : pick([-1, -PAGE, 2 ** 40, 2 ** 52]),
      whence: r.next() < 0.95 ? r.int(5) : 5,
    };
  if (k >= 125) return { op: 'fread', slot, len: r.int(3 * PAGE) };
  if (k >= 121) return { op: 'fwrite', slot, len: r.int(2 * PAGE), byte: r.int(256) };
  // The mode: before F_SEAL_EXEC it decides the seals that come with it, after it the exec bits
  // may not change.
  if (k >= 116) return { op: 'fchmod', slot, mode: pick([0o644, 0o755, 0o600, 0o700, 0o7777]) };
  // A second open file of a slot's file (open() of /proc/self/fd/N) in another access mode, into
  // either slot: one that cannot write, map or seal; O_PATH; O_TRUNC, which a shrink seal refuses.
  if (k >= 110) {
    const flags = pick([
      O_RDONLY,
      O_RDONLY,
      O_WRONLY,
      O_RDWR,
      O_ACCMODE,
      O_PATH,
      O_PATH | O_NOFOLLOW,
      O_RDWR | O_TRUNC,
      O_RDONLY | O_TRUNC,
      O_RDWR | O_APPEND,
      O_WRONLY | O_APPEND,
      O_RDWR | O_CREAT | O_EXCL,
      O_RDWR | O_NOFOLLOW,
      O_RDONLY | O_DIRECTORY,
    ]);
    return { op: 'open', slot: r.next() < 0.5 ? slot : 1 - slot, from: slot, flags };
  }
  if (k < 6) {
    const flags = pick([
      0,
      MFD_ALLOW_SEALING,
      MFD_ALLOW_SEALING,
      MFD_NOEXEC_SEAL,
      MFD_EXEC | MFD_ALLOW_SEALING,
    ]);
    return flags === 0 ? { op: 'memfd', slot } : { op: 'memfd', slot, flags };
  }
  // Seals: mostly one at a time, now and then an unknown one or one in the high 32 bits.
  if (k >= 100) {
    if (r.next() < 0.25) return { op: 'fcntl', slot, cmd: F_GET_SEALS, arg: 0 };
    const arg = pick([
      F_SEAL_WRITE,
      F_SEAL_WRITE,
      F_SEAL_FUTURE_WRITE,
      F_SEAL_GROW,
      F_SEAL_SHRINK,
      F_SEAL_GROW | F_SEAL_SHRINK,
      F_SEAL_SEAL,
      F_SEAL_EXEC,
      F_SEAL_EXEC,
      0x40,
      2 ** 32 + F_SEAL_GROW,
    ]);
    return { op: 'fcntl', slot, cmd: F_ADD_SEALS, arg };
  }
  if (k < 9) return { op: 'close', slot };
  if (k < 20)
    return { op: 'ftruncate', slot, len: r.next() < 0.8 ? r.int(16) * PAGE : pick([1, PAGE + 7, 2 ** 40]) };
  if (k < 38) {
    const mode =
      r.next() < 0.8 ? pick([0, 1, 3, 3]) : pick([2, 0x08, 0x10, 0x11, 0x20, 0x40, 0x80, 0x83, 0x09]);
    // A long range only where tmpfs allocates nothing (a hole, or a mode it refuses): the live
    // kernel would fill its memory.
    const long = mode > 1 ? pick([2 ** 40, 2 ** 53 - PAGE]) : 0;
    return { op: 'fallocate', slot, mode, foff: foff(), len: r.next() < 0.9 ? 1 + r.int(8 * PAGE) : long };
  }
  if (k < 58) {
    const flags = mapFlags(r);
    return {
      ...(flags.length > 0 ? { flags } : {}),
      op: 'mmapf',
      off: off(),
      len: length(),
      prot: pick([1, 3, 3]),
      shared: r.next() < 0.6,
      slot,
      foff: r.next() < 0.9 ? r.int(8) * PAGE : pick([1, 2 ** 40, 2 ** 52 - PAGE, 2 ** 53 - PAGE]),
    };
  }
  if (k < 68)
    return {
      op: 'madvise',
      off: off(),
      len: length(),
      advice: pick([
        'remove',
        'dontneed',
        'pageout',
        'willneed',
        'populate_read',
        'populate_write',
        'guard_install',
        'guard_remove',
      ]),
    };
  if (k < 82) return { op: 'pwrite', slot, foff: foff(), len: r.int(2 * PAGE), byte: r.int(256) };
  return { op: 'pread', slot, foff: foff(), len: r.int(3 * PAGE) };
}

export interface Mismatch {
  index: number;
  op: string;
  model: Outcome;
  live: Outcome;
  file: string | null;
  /**
   * False when the program, run again on the live kernel, no longer disagreed (something outside
   * the program, khugepaged say, acted in between the first time): the file then holds the
   * program as first run, with what the live kernel returned then.
   */
  reproduced: boolean;
}

/**
 * The live kernel's huge-page pool was not idle any more after a program: the kernel lost count
 * of a reservation (HugePages_Rsvd stays above 0 with nothing mapped), or something else on the
 * machine took pages. Every later huge-page program would see a smaller pool there than on the
 * model, so the run goes on without huge pages.
 */
export interface PoolChange {
  /** The program after which the pool was found changed. */
  index: number;
  /** The counts then (HugePages_Total, _Free, _Rsvd, _Surp). */
  total: number;
  free: number;
  rsvd: number;
  surp: number;
  /** That program, as a scenario (its expectations are what the live kernel returned). */
  file: string | null;
}

export interface DifftestResult {
  programs: number;
  ops: number;
  mismatches: Mismatch[];
  /** Null while the pool stayed idle (or the run had no huge pages). */
  pool_changed: PoolChange | null;
  known_differences: number;
  known: Record<string, number>;
  elapsed_ms: number;
}

/** The known difference a program counts as when the live kernel missed a huge page. */
export const THP_MISSED = 'thp-missed';

/**
 * The /proc/vmstat events by which the live kernel mapped memory without a huge page where it
 * would have used one: a fault that found no free huge page (thp_fault_fallback, _charge), a huge
 * zero page it could not allocate, and a collapse (MADV_COLLAPSE's or khugepaged's) that could
 * not allocate one. The model has memory for every huge page a program asks for.
 */
const THP_MISSES = [
  'thp_fault_fallback',
  'thp_fault_fallback_charge',
  'thp_zero_page_alloc_failed',
  'thp_collapse_alloc_failed',
];

/** Huge pages khugepaged made in the background, which the model has no thread for. */
export const KHUGEPAGED_COLLAPSED = '/sys/kernel/mm/transparent_hugepage/khugepaged/pages_collapsed';

/**
 * The sum of the THP_MISSES counts and of khugepaged's collapses, machine-wide; -1 where vmstat
 * cannot be read. khugepaged's own count keeps the collapses of a program's MADV_COLLAPSE out
 * (vmstat's thp_collapse_alloc counts both); where it cannot be read, thp_collapse_alloc stands
 * in for it, and a program whose MADV_COLLAPSE made a huge page is then not compared either.
 */
export function thpMisses(vmstat = '/proc/vmstat', khugepaged = KHUGEPAGED_COLLAPSED): number {
  let text: string;
  try {
    text = readFileSync(vmstat, 'utf8');
  } catch {
    return -1;
  }
  let collapsed = -1;
  try {
    collapsed = Number(readFileSync(khugepaged, 'utf8').trim());
  } catch {
    // Read from vmstat below.
  }
  let n = 0;
  for (const line of text.split('\n')) {
    const [key, v] = line.split(' ');
    if (THP_MISSES.includes(key) || (key === 'thp_collapse_alloc' && !(collapsed >= 0))) n += Number(v);
  }
  return collapsed >= 0 ? n + collapsed : n;
}

/**
 * Runs a program on the live kernel; `missed` when the kernel missed a huge page meanwhile
 * (thpMisses() moved): its huge pages are then not the model's, and the program is not compared.
 */
function runLiveThp(helper: string, ops: readonly DiffOp[]): { live: Outcome[]; missed: boolean } {
  const before = thpMisses();
  const live = runLive(helper, ops);
  return { live, missed: before !== thpMisses() };
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

/** A program's ops with what the model and the live kernel returned for each. */
interface ProgramRun {
  ops: DiffOp[];
  model: readonly Outcome[];
  live: readonly Outcome[];
}

/**
 * The mismatch program `index` showed at op `at` of its first run, as its run `again` (minimised, or
 * the same program) shows it: saved through `save` (the ops, what the live kernel returned, a
 * note for the description) as the first op `again` disagrees at. Where `again` disagrees at
 * none, the live kernel acted differently the second time (khugepaged, say, collapsed a range in
 * between the first time): the first run is saved, up to `at`, and the mismatch is marked not
 * reproduced.
 */
export function mismatchOf(
  index: number,
  first: ProgramRun,
  at: number,
  again: ProgramRun,
  host: HostConfig,
  save: (ops: DiffOp[], live: Outcome[], note: string) => string | null,
): Mismatch {
  const j = firstMismatch(again.ops, again.model, again.live, host, null);
  if (j < 0) {
    const file = save(
      first.ops.slice(0, at + 1),
      [...first.live],
      '; run again, the live kernel agreed with the model',
    );
    return {
      index,
      op: first.ops[at].op,
      model: first.model[at],
      live: first.live[at],
      file,
      reproduced: false,
    };
  }
  const file = save(again.ops.slice(0, j + 1), [...again.live], '');
  return { index, op: again.ops[j].op, model: again.model[j], live: again.live[j], file, reproduced: true };
}

/**
 * Whether every op of the child, and its exit, come after the fork that makes it, and nothing of
 * the child (an op, a remote process_madvise) after its exit (what minimising must keep).
 */
function wellFormed(ops: readonly DiffOp[]): boolean {
  const fork = ops.findIndex((o) => o.op === 'fork');
  const exit = ops.findIndex((o) => o.op === 'exit');
  const ofChild = (o: DiffOp): boolean => o.child === true || (o.op === 'process_madvise' && o.remote);
  return ops.every(
    (o, i) =>
      ((!ofChild(o) && o.op !== 'exit') || (fork >= 0 && i > fork)) && (exit < 0 || i < exit || !ofChild(o)),
  );
}

function minimizeOps(ops: DiffOp[], helper: string, host: HostConfig, deadline: number): DiffOp[] {
  let best = ops;
  const fails = (c: DiffOp[]): boolean => {
    if (!wellFormed(c)) return false;
    const { live, missed } = runLiveThp(helper, c);
    return !missed && firstMismatch(c, runModel(c, host), live, host, null) >= 0;
  };
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
  let host = hostConfig(helper);
  const known = new Map<string, number>();
  const mismatches: Mismatch[] = [];
  let poolChanged: PoolChange | null = null;
  const seen = new Set<string>();
  let programs = 0;
  let opsRun = 0;
  const deadline = start + o.seconds * 1000;
  const dir = o.out ?? 'hetmem-difftest';
  const save = (
    name: string,
    ops: DiffOp[],
    live: Outcome[],
    h: HostConfig,
    i: number,
    note = '',
    title = 'difftest pool change',
  ) => {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, name);
    const what = note === '' ? undefined : { name: title, note };
    writeFileSync(file, stringify(reproducer(ops, live, h, o.seed, i, what), { lineWidth: 0 }));
    return file;
  };
  for (let i = 0; Date.now() < deadline; i++) {
    // The host this program runs with: a pool found changed after it is left out of the next.
    const h = host;
    const ops = generateProgram(
      new Prng(`difftest:${o.seed}:${i}`),
      12 + (i % 16),
      h.files,
      h.softDirty,
      h.hugePages,
      new Prng(`difftest:${o.seed}:${i}:rlimit`),
      h.thp !== 'never',
    );
    const model = runModel(ops, h);
    const { live, missed } = runLiveThp(helper, ops);
    programs++;
    opsRun += ops.length;
    o.onProgress?.(programs);
    const changed = h.hugePages > 0 && idleHugePool() !== h.hugePages;
    if (changed) {
      const now = hugePool();
      poolChanged = {
        index: i,
        total: now?.total ?? -1,
        free: now?.free ?? -1,
        rsvd: now?.rsvd ?? -1,
        surp: now?.surp ?? -1,
        file: save(
          `pool-changed-${String(i).padStart(6, '0')}.yaml`,
          ops,
          live,
          h,
          i,
          `; after it the live kernel's huge-page pool was not idle (HugePages_Free ${now?.free}, ` +
            `HugePages_Rsvd ${now?.rsvd} of ${now?.total})`,
        ),
      };
      host = { ...h, hugePages: 0 };
    }
    if (missed) {
      known.set(THP_MISSED, (known.get(THP_MISSED) ?? 0) + 1);
      continue;
    }
    const at = firstMismatch(ops, model, live, h, known);
    if (at < 0) continue;
    const key = `${ops[at].op}:${model[at].ret}:${live[at].ret}`;
    if (seen.has(key)) continue;
    seen.add(key);
    // Running the program again on a changed pool would not show the same: it is kept whole.
    const min = changed
      ? ops.slice(0, at + 1)
      : minimizeOps(ops.slice(0, at + 1), helper, h, Date.now() + 10_000);
    const again = {
      ops: min,
      model: changed ? model : runModel(min, h),
      live: changed ? live : runLive(helper, min),
    };
    const name = `mismatch-${String(mismatches.length + 1).padStart(3, '0')}.yaml`;
    mismatches.push(
      mismatchOf(i, { ops, model, live }, at, again, h, (saved, outcomes, note) =>
        save(name, saved, outcomes, h, i, note, 'difftest mismatch'),
      ),
    );
  }
  return {
    programs,
    ops: opsRun,
    mismatches,
    pool_changed: poolChanged,
    known_differences: [...known.values()].reduce((a, b) => a + b, 0),
    known: Object.fromEntries(known),
    elapsed_ms: Date.now() - start,
  };
}

/**
 * What a pagemap read returned on the live kernel as scenario page expectations: per page its
 * present, swap, exclusive and file bits, and soft-dirty where the kernel reports it; runs of
 * equal pages folded.
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
    page.exclusive = f.includes('x');
    page.file = f.includes('f');
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
  /** What the program showed, for the scenario's name and description. */
  what: { name: string; note: string } = { name: 'difftest mismatch', note: '' },
): Record<string, unknown> {
  const steps = scenarioSteps(ops).map((s, i) => {
    const l = live[i];
    const expect: Record<string, unknown> = {};
    if (l.ret < 0 && l.ret >= -4095) expect.errno = errnoName(l.ret);
    else if (
      ['mmap', 'mmapf', 'mremap', 'write', 'read', 'pwrite', 'pread', 'fwrite', 'fread', 'lseek'].includes(
        ops[i].op,
      )
    )
      expect.ret = l.ret;
    else if (ops[i].op === 'pagemap' && l.extra !== undefined) expect.pages = pageExpectations(l.extra, host);
    else if (ops[i].op === 'mincore') expect.vec = l.extra ?? '';
    else if (ops[i].op === 'maps') expect.maps = l.extra === undefined ? [] : l.extra.split('|');
    else if (ops[i].op === 'smaps')
      expect.smaps = l.extra === undefined ? [] : l.extra.split('|').map(smapsExpectation);
    else if (ops[i].op === 'status' && l.extra !== undefined) {
      const [lck, data, size, stk, pte] = l.extra.split(':').map((kb) => `${kb}KiB`);
      return {
        ...s,
        locked_vm: lck,
        data_vm: data,
        total_vm: size,
        stack_vm: stk,
        ...(pte !== undefined ? { pgtables: pte } : {}),
      };
    }
    return Object.keys(expect).length > 0 ? { ...s, expect } : s;
  });
  return {
    version: 1,
    name: what.name,
    description: `hetmem difftest (seed ${seed}, program ${program}): the expectations are what the live kernel returned${what.note}`,
    system: systemOf(host),
    processes: ['p'],
    steps,
  };
}
