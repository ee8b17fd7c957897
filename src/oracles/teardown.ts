import type { Violation } from '../sched/types.ts';
import { PG } from '../kernel/mm/page_alloc.ts';
import type { System } from '../kernel/system.ts';

/** Whether nothing is left that could hold memory: every process exited and every file closed. */
export function quiescent(sys: System): boolean {
  return sys.processes.size === 0 && sys.files.size === 0 && sys.mms.size === 0;
}

/**
 * Oracle 6: with every process gone and every file closed, every frame is free (device frames
 * back with their driver), swap is empty, and no counter is left non-zero.
 */
export function checkTeardown(sys: System): Violation[] {
  const out: Violation[] = [];
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
