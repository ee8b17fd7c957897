/**
 * Oracle 4 of DESIGN.md, for iommufd:
 *  - a domain maps only pinned pages: every PFN an iommu_domain holds for an area is one its
 *    iopt_pages has pinned (and the frame is in use and pinned);
 *  - npinned of every iopt_pages equals the indexes its accesses and storage domains cover,
 *    and equals what is accounted (last_npinned) whenever no thread holds pages->mutex;
 *  - accounting: per source mm, pinned_vm covers what the pages charged to it hold.
 */
import { PAGE_SIZE } from '../lib/units.ts';
import type { Violation } from '../sched/types.ts';
import type { System } from '../kernel/system.ts';
import { iommufdContexts } from '../kernel/iommufd/main.ts';
import { ioasOf } from '../kernel/iommufd/ioas.ts';
import type { IoptPages } from '../kernel/iommufd/pages.ts';
import type { IntervalTree } from '../lib/interval_tree.ts';

/** Runs oracle 4 over every open iommufd context of `sys`. */
export function checkIommufd(sys: System): Violation[] {
  const out: Violation[] = [];
  const bad = (message: string): void => {
    out.push({ oracle: 'iommufd', message });
  };
  const allPages = new Set<IoptPages>();
  for (const ictx of iommufdContexts(sys)) {
    for (const obj of ictx.objects.values()) {
      if (obj === null || obj.type !== 'IOAS') continue;
      const iopt = ioasOf(obj).iopt;
      for (const area of iopt.areas()) {
        const pages = area.pages;
        if (pages === null) continue;
        allPages.add(pages);
        if (iopt.domains.length > 0 && area.storageDomain === null)
          bad(`area [${area.iova}, ${area.last}] has no storage domain`);
        if (iopt.domains.length === 0 && area.storageDomain !== null)
          bad(`area [${area.iova}, ${area.last}] stored in a detached domain`);
        for (const d of iopt.domains) {
          for (let idx = area.pagesStart; idx <= area.pagesLast; idx++) {
            const phys = d.ops.iovaToPhys(area.indexIova(idx));
            if (phys < 0) {
              bad(`domain ${d.id} lacks IOVA ${area.indexIova(idx)}`);
              continue;
            }
            const pfn = Math.floor(phys / PAGE_SIZE);
            if (!sys.phys.isUsed(pfn) || sys.phys.pinCount(sys.phys.head(pfn)) <= 0) {
              bad(`domain ${d.id} maps pfn ${pfn} at IOVA ${area.indexIova(idx)}, which is not pinned`);
            }
            const x = pages.pinnedPfns.get(idx);
            if (x !== undefined && x !== pfn) bad(`domain ${d.id} and pinned_pfns disagree at index ${idx}`);
          }
        }
      }
    }
  }
  for (const pages of allPages) {
    // Walk the intervals, not every index: an area may span far more pages than are pinned.
    const covered = unionLength([...intervals(pages.accessItree), ...intervals(pages.domainsItree)]);
    for (let n = pages.accessItree.first(); n !== null; n = pages.accessItree.next(n)) {
      for (let idx = n.start; idx <= n.last; idx++) {
        if (!pages.pinnedPfns.has(idx)) {
          bad(`pages ${pages.id}: access index ${idx} not in pinned_pfns`);
          break;
        }
      }
    }
    if (covered !== pages.npinned)
      bad(`pages ${pages.id}: npinned ${pages.npinned} but ${covered} indexes covered`);
    if (!pages.mutex.isLocked() && pages.npinned !== pages.lastNpinned) {
      bad(`pages ${pages.id}: npinned ${pages.npinned} but accounted ${pages.lastNpinned}`);
    }
  }
  return out;
}

function intervals<T>(t: IntervalTree<T>): [number, number][] {
  const out: [number, number][] = [];
  for (let n = t.first(); n !== null; n = t.next(n)) out.push([n.start, n.last]);
  return out;
}

/** Indexes covered by the union of inclusive intervals. */
function unionLength(iv: [number, number][]): number {
  iv.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let curStart = -1;
  let curLast = -2;
  for (const [s, l] of iv) {
    if (s > curLast + 1) {
      total += curLast - curStart + 1;
      curStart = s;
      curLast = l;
    } else curLast = Math.max(curLast, l);
  }
  return total + (curLast - curStart + 1);
}
