/** Process and memory ops: mmap family, fork/exit, CPU accesses, reclaim, pagemap. */
import { PAGE_SIZE, TASK_SIZE } from '../../lib/units.ts';
import { MAX_USER_BUFFER } from '../context.ts';
import * as mman from '../../kernel/mm/mman.ts';
import { Errno, isErr } from '../../kernel/errno.ts';
import { mapsLine } from '../../kernel/fs/task_mmu.ts';
import type { RlimitResource } from '../../kernel/mm/rlimit.ts';
import { dataLength, type DataSpec, patternBytes, ValueError } from '../values.ts';
import type { ScenarioContext } from '../context.ts';
import type { StepT } from '../schema.ts';
import { f, flagBits, type OpHandler } from './types.ts';

const PROT: Record<string, number> = {
  none: mman.PROT_NONE,
  read: mman.PROT_READ,
  write: mman.PROT_WRITE,
  exec: mman.PROT_EXEC,
};
const MAP: Record<string, number> = {
  private: mman.MAP_PRIVATE,
  shared: mman.MAP_SHARED,
  shared_validate: mman.MAP_SHARED_VALIDATE,
  droppable: mman.MAP_DROPPABLE,
  anonymous: mman.MAP_ANONYMOUS,
  fixed: mman.MAP_FIXED,
  fixed_noreplace: mman.MAP_FIXED_NOREPLACE,
  populate: mman.MAP_POPULATE,
  hugetlb: mman.MAP_HUGETLB,
  noreserve: mman.MAP_NORESERVE,
  locked: mman.MAP_LOCKED,
  stack: mman.MAP_STACK,
  growsdown: mman.MAP_GROWSDOWN,
};
const MREMAP: Record<string, number> = {
  maymove: mman.MREMAP_MAYMOVE,
  fixed: mman.MREMAP_FIXED,
  dontunmap: mman.MREMAP_DONTUNMAP,
};

const MLOCK: Record<string, number> = { onfault: mman.MLOCK_ONFAULT };
const MCL: Record<string, number> = {
  current: mman.MCL_CURRENT,
  future: mman.MCL_FUTURE,
  onfault: mman.MCL_ONFAULT,
};

export function protBits(v: unknown): number {
  return flagBits(v, PROT, 'prot');
}

/** The bytes a `data` field describes; `length` defaults to the data's own length. */
export function dataOf(spec: unknown, length: number | undefined): Uint8Array {
  const d = spec as DataSpec;
  const n = length ?? dataLength(d);
  if (n === undefined) throw new ValueError('give a length for a data pattern');
  return patternBytes(d, n);
}

/** A CPU access span within what the model keeps in one buffer (`reachable()` result passes through). */
function userSpan(n: number): number {
  if (n > MAX_USER_BUFFER)
    throw new ValueError(
      `an access of ${n} mapped bytes is above the ${MAX_USER_BUFFER >> 20}MiB a step may move; split it`,
    );
  return n;
}

/** The range a maps or smaps step lists the VMAs of: [addr, addr + length), all by default. */
function procMapsRange(ctx: ScenarioContext, step: StepT, op: string): [number, number] {
  const addr = ctx.optNum(f(step, 'addr'), 0);
  const length = ctx.optNum(f(step, 'length'), Math.max(0, TASK_SIZE - addr));
  if (addr < 0 || length < 0) throw new ValueError(`${op}: addr and length must not be negative`);
  return [addr, addr + length];
}

/** Pagemap entries one step may return (4GiB of address space); each is kept in the report. */
export const MAX_PAGEMAP_PAGES = 1 << 20;

export const mmOps: Record<string, OpHandler> = {
  *mmap(ctx, step) {
    const p = ctx.proc(f(step, 'proc'));
    const ret = yield* ctx.sc.sysMmap(
      ctx.sys,
      p,
      ctx.optUlong(f(step, 'addr'), 0, 'addr'),
      ctx.ulong(f(step, 'length'), 'length'),
      protBits(f(step, 'prot')),
      flagBits(f(step, 'flags'), MAP, 'mmap'),
      ctx.optNum(f(step, 'fd'), -1),
      ctx.optUlong(f(step, 'offset'), 0, 'offset'),
    );
    return { ret };
  },
  *munmap(ctx, step) {
    const ret = yield* ctx.sc.sysMunmap(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      ctx.ulong(f(step, 'addr'), 'addr'),
      ctx.ulong(f(step, 'length'), 'length'),
    );
    return { ret };
  },
  *mprotect(ctx, step) {
    const ret = yield* ctx.sc.sysMprotect(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      ctx.ulong(f(step, 'addr'), 'addr'),
      ctx.ulong(f(step, 'length'), 'length'),
      protBits(f(step, 'prot')),
    );
    return { ret };
  },
  *madvise(ctx, step) {
    const advice = String(f(step, 'advice')).toUpperCase() as keyof typeof mman.MADV;
    const ret = yield* ctx.sc.sysMadvise(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      ctx.ulong(f(step, 'addr'), 'addr'),
      ctx.ulong(f(step, 'length'), 'length'),
      mman.MADV[advice],
    );
    return { ret };
  },
  *process_madvise(ctx, step) {
    const advice = String(f(step, 'advice')).toUpperCase() as keyof typeof mman.MADV;
    const p = ctx.proc(f(step, 'proc'));
    const target = f(step, 'target') === undefined ? p : ctx.proc(f(step, 'target'));
    const iov = (f(step, 'iov') as { addr: unknown; length: unknown }[]).map((seg, i) => ({
      base: ctx.ulong(seg.addr, `iov[${i}].addr`),
      len: ctx.ulong(seg.length, `iov[${i}].length`),
    }));
    const flags = ctx.optUlong(f(step, 'flags'), 0, 'flags');
    return { ret: yield* ctx.sc.sysProcessMadvise(ctx.sys, p, target, iov, mman.MADV[advice], flags) };
  },
  *mremap(ctx, step) {
    const ret = yield* ctx.sc.sysMremap(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      ctx.ulong(f(step, 'addr'), 'addr'),
      ctx.ulong(f(step, 'length'), 'length'),
      ctx.ulong(f(step, 'new_length'), 'new_length'),
      flagBits(f(step, 'flags'), MREMAP, 'mremap'),
      ctx.optUlong(f(step, 'new_addr'), 0, 'new_addr'),
    );
    return { ret };
  },
  *mlock(ctx, step) {
    const ret = yield* ctx.sc.sysMlock(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      ctx.ulong(f(step, 'addr'), 'addr'),
      ctx.ulong(f(step, 'length'), 'length'),
      flagBits(f(step, 'flags'), MLOCK, 'mlock'),
    );
    return { ret };
  },
  *munlock(ctx, step) {
    const ret = yield* ctx.sc.sysMunlock(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      ctx.ulong(f(step, 'addr'), 'addr'),
      ctx.ulong(f(step, 'length'), 'length'),
    );
    return { ret };
  },
  *mlockall(ctx, step) {
    const flags = flagBits(f(step, 'flags'), MCL, 'mlockall');
    return { ret: yield* ctx.sc.sysMlockall(ctx.sys, ctx.proc(f(step, 'proc')), flags) };
  },
  *setrlimit(ctx, step) {
    const p = ctx.proc(f(step, 'proc'));
    const resource = f(step, 'resource') as RlimitResource;
    const value = (v: unknown, field: string) => (v === 'unlimited' ? Infinity : ctx.num(v, field));
    const max = f(step, 'max');
    return {
      ret: ctx.sys.setrlimit(p, resource, {
        cur: value(f(step, 'cur'), 'cur'),
        max: max === undefined ? ctx.sys.getrlimit(p, resource).max : value(max, 'max'),
      }),
    };
  },
  *munlockall(ctx, step) {
    return { ret: yield* ctx.sc.sysMunlockall(ctx.sys, ctx.proc(f(step, 'proc'))) };
  },
  *mseal(ctx, step) {
    const ret = yield* ctx.sc.sysMseal(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      ctx.ulong(f(step, 'addr'), 'addr'),
      ctx.ulong(f(step, 'length'), 'length'),
      ctx.optUlong(f(step, 'flags'), 0, 'flags'),
    );
    return { ret };
  },
  *fork(ctx, step) {
    const childName = String(f(step, 'child'));
    if (ctx.procs.has(childName))
      throw new ValueError(`child '${childName}' is already a process; give the child a new name`);
    const r = yield* ctx.sc.sysFork(ctx.sys, ctx.proc(f(step, 'proc')), childName);
    if (r.child !== null) ctx.procs.set(childName, r.child);
    return {
      ret: r.ret,
      outputs: { pid: r.child?.pid },
      notes: r.child !== null ? [`child ${childName} pid ${r.child.pid}`] : [],
    };
  },
  *exit(ctx, step) {
    const ret = yield* ctx.sc.sysExit(ctx.sys, ctx.proc(f(step, 'proc')));
    return { ret };
  },
  *cpu_read(ctx, step) {
    const p = ctx.proc(f(step, 'proc'));
    const addr = ctx.num(f(step, 'addr'));
    const len = ctx.num(f(step, 'length'));
    userSpan(ctx.sc.reachable(p, addr, len));
    const r = yield* ctx.sc.cpuRead(ctx.sys, p, addr, len);
    return { ret: r.ret, data: r.data };
  },
  *cpu_write(ctx, step) {
    const p = ctx.proc(f(step, 'proc'));
    const addr = ctx.num(f(step, 'addr'));
    const len = f(step, 'length') === undefined ? undefined : ctx.num(f(step, 'length'));
    const spec = f(step, 'data');
    const full = len ?? dataLength(spec as DataSpec);
    if (full === undefined) throw new ValueError('give a length for a data pattern');
    // Only the bytes the store can reach are built; a hole or the end of user space faults.
    const n = userSpan(ctx.sc.reachable(p, addr, full));
    if (n < 0) return { ret: -Errno.EFAULT };
    const ret = yield* ctx.sc.cpuWrite(ctx.sys, p, addr, dataOf(spec, n));
    return { ret: n < full && ret >= 0 ? -Errno.EFAULT : ret };
  },
  *oom_reap(ctx, step) {
    const ret = yield* ctx.sc.oomReap(ctx.sys, ctx.proc(f(step, 'proc')));
    return { ret };
  },
  *reclaim(ctx, step) {
    const pages = ctx.optNum(f(step, 'pages'), Math.floor(ctx.sys.config.ram / PAGE_SIZE));
    const ret = yield* ctx.sc.reclaim(ctx.sys, pages);
    return { ret, notes: isErr(ret) ? [] : [`reclaimed ${ret} pages`] };
  },
  *clear_soft_dirty(ctx, step) {
    const ret = yield* ctx.sc.clearSoftDirty(ctx.sys, ctx.proc(f(step, 'proc')));
    return { ret };
  },
  *clear_refs(ctx, step) {
    return { ret: yield* ctx.sc.sysClearRefs(ctx.sys, ctx.proc(f(step, 'proc')), ctx.num(f(step, 'value'))) };
  },
  *pagemap(ctx, step) {
    const npages =
      f(step, 'npages') !== undefined
        ? ctx.num(f(step, 'npages'))
        : Math.ceil(ctx.optNum(f(step, 'length'), PAGE_SIZE) / PAGE_SIZE);
    const addr = ctx.num(f(step, 'addr'));
    // The file offset is addr / PAGE_SIZE * 8: a negative one is -EINVAL (rw_verify_area()).
    if (addr < 0 || npages < 0) return { ret: -Errno.EINVAL };
    const reach = Math.max(0, Math.floor((TASK_SIZE - Math.min(addr, TASK_SIZE)) / PAGE_SIZE));
    if (Math.min(npages, reach) > MAX_PAGEMAP_PAGES)
      throw new ValueError(
        `pagemap of ${npages} pages is above the ${MAX_PAGEMAP_PAGES} a step may read; split it`,
      );
    const pages = yield* ctx.sc.pagemapRead(ctx.sys, ctx.proc(f(step, 'proc')), addr, npages);
    return { ret: 0, pages, outputs: { entries: pages.length } };
  },
  *mincore(ctx, step) {
    const length = ctx.ulong(f(step, 'length'), 'length');
    // The caller's buffer, a byte a page: none for a length past the user address space, which
    // the kernel refuses before it writes anything.
    let pages = 0;
    if (typeof length === 'number' && length <= TASK_SIZE) {
      pages = Math.ceil(length / PAGE_SIZE);
      if (pages > MAX_PAGEMAP_PAGES)
        throw new ValueError(
          `mincore of ${pages} pages is above the ${MAX_PAGEMAP_PAGES} a step may read; split it`,
        );
    }
    const vec = new Uint8Array(pages);
    const ret = yield* ctx.sc.sysMincore(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      ctx.ulong(f(step, 'addr'), 'addr'),
      length,
      vec,
    );
    if (ret < 0) return { ret };
    return { ret, outputs: { vec: Array.from(vec, (b) => String(b & 1)).join('') } };
  },
  *maps(ctx, step) {
    const [start, end] = procMapsRange(ctx, step, 'maps');
    const entries = yield* ctx.sc.mapsRead(ctx.sys, ctx.proc(f(step, 'proc')), start, end);
    if (typeof entries === 'number') return { ret: entries };
    return { ret: 0, outputs: { maps: entries.map(mapsLine), entries: entries.length } };
  },
  *smaps(ctx, step) {
    const [start, end] = procMapsRange(ctx, step, 'smaps');
    const entries = yield* ctx.sc.smapsRead(ctx.sys, ctx.proc(f(step, 'proc')), start, end);
    if (typeof entries === 'number') return { ret: entries };
    const smaps = entries.map((e) => ({
      line: mapsLine(e),
      start: e.start,
      end: e.end,
      size: e.size,
      rss: e.rss,
      pss: e.pss,
      pss_dirty: e.pssDirty,
      shared_clean: e.sharedClean,
      shared_dirty: e.sharedDirty,
      private_clean: e.privateClean,
      private_dirty: e.privateDirty,
      referenced: e.referenced,
      anonymous: e.anonymous,
      lazyfree: e.lazyFree,
      anon_huge_pages: e.anonHugePages,
      shmem_pmd_mapped: e.shmemPmdMapped,
      shared_hugetlb: e.sharedHugetlb,
      private_hugetlb: e.privateHugetlb,
      swap: e.swap,
      swap_pss: e.swapPss,
      locked: e.locked,
      vmflags: e.vmFlags,
    }));
    return { ret: 0, outputs: { smaps, entries: entries.length } };
  },
};
