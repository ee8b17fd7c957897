import type { Violation } from '../sched/types.ts';
import { PG } from '../kernel/mm/page_alloc.ts';
import type { System } from '../kernel/system.ts';
import type { RefSiteEntry } from '../kernel/mm/mm_refs.ts';

/**
 * Whether nothing is left that should hold memory: every process exited and every file closed.
 * An mm still alive then is not a reason to stay silent: it is a leak (checkLeaks).
 */
export function quiescent(sys: System): boolean {
  return sys.processes.size === 0 && sys.files.size === 0;
}

/** Lists the outstanding reference sites, at most four. */
function sites(list: readonly RefSiteEntry[]): string {
  if (list.length === 0) return 'no recorded site';
  const shown = list.slice(-4).reverse().join('; ');
  return list.length > 4 ? `${shown}; and ${list.length - 4} more` : shown;
}

/**
 * The leak oracle: once every process has exited and every file is closed, no mm_struct may be
 * alive. An mm with mm_users left was never torn down (someone's mmget() has no mmput()); one
 * with only mm_count left is freed address space whose struct someone still grabs (an mmgrab()
 * without mmdrop()). Each is reported with where its outstanding references were taken.
 */
export function checkLeaks(sys: System): Violation[] {
  const out: Violation[] = [];
  if (!quiescent(sys)) return out;
  for (const mm of sys.mmStructs) {
    if (mm.mmUsers > 0) {
      out.push({
        oracle: 'leak',
        message: `mm ${mm.id} (${mm.ownerName}): mm_users is ${mm.mmUsers} after every process exited and every file closed; taken at ${sites(mm.userRefSites)}`,
      });
    } else if (mm.mmCount > 0) {
      out.push({
        oracle: 'leak',
        message: `mm ${mm.id} (${mm.ownerName}): mm_count is ${mm.mmCount} after every process exited and every file closed; taken at ${sites(mm.countRefSites)}`,
      });
    }
  }
  return out;
}

/**
 * Oracle 6: with every process gone and every file closed, every frame is free (device frames
 * back with their driver), swap is empty, and no counter is left non-zero.
 */
export function checkTeardown(sys: System): Violation[] {
  const out: Violation[] = checkLeaks(sys);
  if (!quiescent(sys)) return out;
  const phys = sys.phys;
  const leaked: number[] = [];
  for (const [lo, hi] of phys.touchedRanges()) {
    for (let pfn = lo; pfn < hi; pfn++) {
      const f = phys.flags[pfn];
      if ((f & PG.used) === 0 || (f & (PG.reserved | PG.tail)) !== 0) continue;
      if (phys.isDevice(pfn)) {
        if (phys.refcount[pfn] !== 0) leaked.push(pfn);
        continue;
      }
      leaked.push(pfn);
    }
  }
  if (leaked.length > 0) {
    const show = leaked
      .slice(0, 8)
      .map((p) => `${p}(ref ${phys.refcount[p]}, map ${phys.mapcount[p]}, pin ${phys.pinCount(p)})`)
      .join(', ');
    out.push({
      oracle: 'teardown',
      message: `${leaked.length} frames still allocated after teardown: ${show}`,
    });
  }
  if (sys.swap.used !== 0)
    out.push({ oracle: 'teardown', message: `${sys.swap.used} swap slots still in use` });
  for (const u of sys.users.values()) {
    if (u.lockedVm !== 0)
      out.push({ oracle: 'teardown', message: `user ${u.uid} locked_vm is ${u.lockedVm} pages` });
  }
  if (phys.contents.size !== 0) {
    out.push({ oracle: 'teardown', message: `${phys.contents.size} page contents still stored` });
  }
  return out;
}
