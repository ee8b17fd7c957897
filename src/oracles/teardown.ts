import type { Violation } from '../sched/types.ts';
import { PG } from '../kernel/mm/page_alloc.ts';
import { sdkDevices } from '../kernel/drivers/sdk/device.ts';
import { iommufdObjects } from '../kernel/iommufd/main.ts';
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
function sites(list: readonly (RefSiteEntry | { toString(): string })[]): string {
  if (list.length === 0) return 'no recorded site';
  const shown = list.slice(-4).reverse().join('; ');
  return list.length > 4 ? `${shown}; and ${list.length - 4} more` : shown;
}

const AFTER = 'after every process exited and every file closed';

function leak(message: string): Violation {
  return { oracle: 'leak', message };
}

/**
 * The leak oracle: once every process has exited and every file is closed, nothing that only
 * they kept alive may be. An mm with mm_users left was never torn down (someone's mmget() has no
 * mmput()); one with only mm_count left is freed address space whose struct someone still grabs
 * (an mmgrab() without mmdrop()). A file with references left was fget() by someone who never
 * fput() it; a removed device with references left was get_device()d and never put; an iommufd
 * object still alive holds a reference its owner never dropped (an access never destroyed, a
 * device never unbound). Each is reported with where its outstanding references were taken.
 */
export function checkLeaks(sys: System): Violation[] {
  const out: Violation[] = [];
  if (!quiescent(sys)) return out;
  checkMmLeaks(sys, out);
  for (const f of [...sys.installedFiles]) {
    if (f.refs <= 0) {
      sys.installedFiles.delete(f);
      continue;
    }
    out.push(
      leak(
        `file ${f.id} (${f.fops?.name ?? f.inode.kind}): ${f.refs} reference(s) ${AFTER}; taken at ${sites(sys.refSites.of(f))}`,
      ),
    );
  }
  for (const dev of sdkDevices(sys)) {
    if (dev.state !== 'removed' || dev.refs <= 0) continue;
    out.push(
      leak(
        `device ${dev.name}: removed, with ${dev.refs} reference(s) ${AFTER}; taken at ${sites(sys.refSites.of(dev))}`,
      ),
    );
  }
  for (const obj of iommufdObjects(sys)) {
    out.push(
      leak(
        `iommufd ${obj.type.toLowerCase()} ${obj.id} (iommufd ctx ${obj.ictx.id}): alive with ${obj.users} user(s) ${AFTER}; taken at ${sites(sys.refSites.of(obj))}`,
      ),
    );
  }
  return out;
}

/** mm_structs still alive (see checkLeaks). */
function checkMmLeaks(sys: System, out: Violation[]): void {
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
  for (const [lo, hi] of phys.checkedRanges()) {
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
