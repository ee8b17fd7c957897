/** Check ops: `check` runs the oracles now; `expect_stats` compares counters. */
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS } from '../../kernel/mm/mm_types.ts';
import { mmPgtablesBytes } from '../../kernel/mm/huge_memory.ts';
import { vmKinds } from '../../kernel/mm/rlimit.ts';
import { ioasOf } from '../../kernel/iommufd/ioas.ts';
import { iommufdContexts } from '../../kernel/iommufd/main.ts';
import type { IoptPages } from '../../kernel/iommufd/pages.ts';
import type { Process } from '../../kernel/system.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import type { Violation } from '../../sched/types.ts';
import type { OpResult, ScenarioContext } from '../context.ts';
import { isSize, parseSize } from '../values.ts';
import { f, type OpHandler } from './types.ts';

/** True when every process has exited and the scenario holds no file: the teardown oracle applies. */
export function tornDown(ctx: ScenarioContext): boolean {
  for (const p of ctx.sys.processes.values()) if (!p.exited && p.mm !== null) return false;
  return ctx.sys.files.size === 0;
}

/** Runs every oracle (the teardown oracle too when `teardown`). */
export function runOracles(
  ctx: ScenarioContext,
  teardown: boolean,
): { violations: Violation[]; notes: string[] } {
  return {
    violations: ctx.k.oracles.checkAll(ctx.sys, { teardown }),
    notes: [teardown ? 'oracles incl. teardown' : 'oracles'],
  };
}

/** Per-process stats in pages, by the names expect_stats takes. */
function procStat(p: Process, name: string): number | undefined {
  const mm = p.mm;
  switch (name) {
    case 'rss_anon':
      return mm?.rss[MM_ANONPAGES] ?? 0;
    case 'rss_file':
      return mm?.rss[MM_FILEPAGES] ?? 0;
    case 'rss_shmem':
      return mm?.rss[MM_SHMEMPAGES] ?? 0;
    case 'swap_ents':
      return mm?.rss[MM_SWAPENTS] ?? 0;
    case 'total_vm':
      return mm?.totalVm ?? 0;
    case 'data_vm':
      return mm === null ? 0 : vmKinds(mm).data;
    case 'stack_vm':
      return mm === null ? 0 : vmKinds(mm).stack;
    case 'exec_vm':
      return mm === null ? 0 : vmKinds(mm).exec;
    case 'locked_vm':
      return mm?.lockedVm ?? 0;
    case 'pinned_vm':
      return mm?.pinnedVm ?? 0;
    case 'user_locked_vm':
      return p.user.lockedVm;
    case 'pgtables':
      return mm === null ? 0 : mmPgtablesBytes(mm) / PAGE_SIZE;
    default:
      return undefined;
  }
}

/**
 * The npinned of every iopt_pages the open iommufd contexts map, summed: how many pages of user
 * memory iommufd holds pinned for domains and accesses (each iopt_pages counted once, however
 * many IOASes share it through IOMMU_IOAS_COPY).
 */
export function iommufdNpinned(ctx: ScenarioContext): number {
  const seen = new Set<IoptPages>();
  for (const ictx of iommufdContexts(ctx.sys)) {
    for (const obj of ictx.objects.values()) {
      if (obj === null || obj.type !== 'IOAS') continue;
      for (const area of ioasOf(obj).iopt.areas()) if (area.pages !== null) seen.add(area.pages);
    }
  }
  let n = 0;
  for (const pages of seen) n += pages.npinned;
  return n;
}

function globalStat(ctx: ScenarioContext, name: string): number | undefined {
  switch (name) {
    case 'npinned':
      return iommufdNpinned(ctx);
    case 'free_pages':
      return ctx.sys.phys.ramFrames - ctx.sys.phys.usedRamFrames();
    case 'swap_used':
      return ctx.sys.swap.used;
    default:
      return ctx.sys.trace.counters.get(name);
  }
}

/**
 * A stat value in pages: sizes written with a unit ("16KiB") are bytes and are converted; plain
 * integers are page counts, as the kernel keeps these counters.
 */
function expectedPages(ctx: ScenarioContext, v: unknown): number {
  if (typeof v === 'string' && isSize(v) && /[a-z]$/i.test(v.trim())) return parseSize(v) / PAGE_SIZE;
  return ctx.num(v);
}

const STAT_KEYS = new Set([
  'rss_anon',
  'rss_file',
  'rss_shmem',
  'swap_ents',
  'total_vm',
  'data_vm',
  'stack_vm',
  'exec_vm',
  'locked_vm',
  'pinned_vm',
  'user_locked_vm',
  'pgtables',
  'free_pages',
  'swap_used',
  'npinned',
]);

export const checkOps: Record<string, OpHandler> = {
  *check(ctx) {
    const teardown = tornDown(ctx);
    const { violations, notes } = runOracles(ctx, teardown);
    const r: OpResult = {
      ret: 0,
      notes,
      failures: violations.map((v) => `oracle ${v.oracle}: ${v.message}`),
    };
    return r;
  },
  *expect_stats(ctx, step) {
    const failures: string[] = [];
    const procName = f(step, 'proc');
    const p = procName === undefined ? null : ctx.proc(procName);
    for (const [k, v] of Object.entries(step)) {
      if (!STAT_KEYS.has(k)) continue;
      const want = expectedPages(ctx, v);
      const got = p !== null ? (procStat(p, k) ?? globalStat(ctx, k)) : globalStat(ctx, k);
      if (got === undefined) failures.push(`${k}: the model does not report this stat yet`);
      else if (got !== want) failures.push(`${k} is ${got} pages, expected ${want}`);
    }
    const counters = f(step, 'counters') as Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(counters ?? {})) {
      const got = ctx.sys.trace.counters.get(k) ?? 0;
      const want = ctx.num(v);
      if (got !== want) failures.push(`counter ${k} is ${got}, expected ${want}`);
    }
    return { ret: 0, failures };
  },
};
