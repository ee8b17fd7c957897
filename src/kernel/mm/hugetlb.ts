import { indexAt } from '../../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import type { System } from '../system.ts';
import { VM, VM_FAULT, type Vma } from './mm_types.ts';
import {
  MMU_NOTIFY,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from './mmu_notifier.ts';
import { PG } from './page_alloc.ts';
import { PTE_ACCESSED, PTE_DIRTY, PTE_HUGE, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_WRITE } from './pgtable.ts';
import { anonVmaPrepare } from './rmap.ts';

/**
 * hugetlbfs with one page size, 2MiB, mapped by PMD leaves. Pages come from a pool of
 * `hugetlbPages` (0: as many as RAM gives). Hugetlb pages are not counted in RSS and never
 * reclaimed, as in the kernel.
 */
const inUse = new WeakMap<System, number>();

export function hugetlbPagesFree(sys: System): number {
  const limit = sys.config.hugetlbPages;
  const used = inUse.get(sys) ?? 0;
  if (limit > 0) return Math.max(0, limit - used);
  return Math.floor(sys.phys.freeFrames / HPAGE_PMD_NR);
}

/** Models alloc_hugetlb_folio(). */
export function allocHugetlbPage(sys: System): number {
  if (hugetlbPagesFree(sys) <= 0) return -1;
  if (sys.inject.shouldFail('alloc_hugetlb_folio')) return -1;
  const pfn = sys.phys.alloc(9, null);
  if (pfn < 0) return -1;
  inUse.set(sys, (inUse.get(sys) ?? 0) + 1);
  return pfn;
}

/** Called when a hugetlb page's last reference goes. */
export function hugetlbPageFreed(sys: System): void {
  inUse.set(sys, (inUse.get(sys) ?? 1) - 1);
}

function hugePte(vma: Vma, writable: boolean): number {
  let lo = PTE_PRESENT | PTE_HUGE | PTE_ACCESSED | PTE_DIRTY | PTE_SOFT_DIRTY;
  if (writable && (vma.flags & VM.WRITE) !== 0) lo |= PTE_WRITE;
  return lo;
}

function putHugetlb(sys: System, pfn: number): void {
  const phys = sys.phys;
  if (phys.refcount[pfn] === 1) hugetlbPageFreed(sys);
  phys.put(pfn);
}

export function putHugetlbPage(sys: System, pfn: number): void {
  putHugetlb(sys, pfn);
}

/** Models hugetlb_fault(): hugetlb_no_page() for an empty entry, hugetlb_wp() for a write to a read-only one. */
export function* hugetlbFault(vma: Vma, addr: number, flags: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const phys = sys.phys;
  const base = addr - (addr % PMD_SIZE);
  // An unshare fault (FAULT_FLAG_UNSHARE, 1 << 10) breaks COW like a write; the copy is mapped writable here.
  const write = (flags & (1 | (1 << 10))) !== 0;
  const shared = (vma.flags & VM.SHARED) !== 0;
  const pmd = mm.pgt.pmdTableAlloc(base);
  const i = indexAt(base, 1);
  const lo = pmd.words[2 * i];
  if (lo === 0) {
    let pfn: number;
    if (vma.file !== null) {
      // hugetlb_no_page(): file pages come from the page cache (past i_size is SIGBUS). A private
      // mapping maps the cache page read-only, or on a write fault gets its own anonymous copy.
      const inode = vma.file.inode;
      const index = vma.pageIndex(base);
      if (index * PAGE_SIZE >= inode.size) return VM_FAULT.SIGBUS;
      let cached = inode.pages.load(index);
      if (cached === undefined) {
        cached = allocHugetlbPage(sys);
        if (cached < 0) return VM_FAULT.OOM;
        phys.mapping[cached] = inode.mappingId;
        phys.setIndex(cached, index);
        inode.pages.store(index, cached);
      }
      if (shared || !write) {
        pfn = cached;
        phys.get(pfn);
      } else {
        anonVmaPrepare(sys, vma);
        pfn = allocHugetlbPage(sys);
        if (pfn < 0) return VM_FAULT.OOM;
        for (let k = 0; k < HPAGE_PMD_NR; k++) phys.copyPage(pfn + k, cached + k);
        phys.flags[pfn] |= PG.anon | PG.anonExclusive;
        phys.mapping[pfn] = vma.anonVma!.mappingId;
        phys.setIndex(pfn, index);
      }
    } else {
      anonVmaPrepare(sys, vma);
      pfn = allocHugetlbPage(sys);
      if (pfn < 0) return VM_FAULT.OOM;
      phys.flags[pfn] |= PG.anon | PG.anonExclusive;
      phys.mapping[pfn] = vma.anonVma!.mappingId;
      phys.setIndex(pfn, vma.pageIndex(base));
    }
    yield* mm.ptl.lock();
    if (pmd.words[2 * i] === 0) {
      phys.entireMapcount.set(pfn, (phys.entireMapcount.get(pfn) ?? 0) + 1);
      mm.pgt.setUpperWords(pmd, i, hugePte(vma, shared || write), pfn);
    } else {
      putHugetlb(sys, pfn);
    }
    yield* mm.ptl.unlock();
    sys.trace.count('fault.hugetlb');
    return 0;
  }
  if (!write || (lo & PTE_WRITE) !== 0) {
    pmd.words[2 * i] = (lo | PTE_ACCESSED | (write ? PTE_DIRTY : 0)) >>> 0;
    return 0;
  }
  const old = pmd.words[2 * i + 1];
  if (shared || ((phys.flags[old] & PG.anonExclusive) !== 0 && (phys.entireMapcount.get(old) ?? 0) === 1)) {
    pmd.words[2 * i] = (lo | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED) >>> 0;
    return 0;
  }
  // hugetlb_wp(): copy the whole huge page.
  anonVmaPrepare(sys, vma);
  const pfn = allocHugetlbPage(sys);
  if (pfn < 0) return VM_FAULT.OOM;
  for (let k = 0; k < HPAGE_PMD_NR; k++) phys.copyPage(pfn + k, old + k);
  phys.flags[pfn] |= PG.anon | PG.anonExclusive;
  phys.mapping[pfn] = vma.anonVma!.mappingId;
  phys.setIndex(pfn, vma.pageIndex(base));
  const range = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, base, base + PMD_SIZE);
  yield* mmuNotifierInvalidateRangeStart(range);
  yield* mm.ptl.lock();
  const em = (phys.entireMapcount.get(old) ?? 1) - 1;
  if (em <= 0) phys.entireMapcount.delete(old);
  else phys.entireMapcount.set(old, em);
  phys.entireMapcount.set(pfn, 1);
  mm.pgt.setUpperWords(pmd, i, hugePte(vma, true), pfn);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  putHugetlb(sys, old);
  sys.trace.count('fault.hugetlb_cow');
  return 0;
}

export const HUGETLB_PAGE_SIZE = PAGE_SIZE * HPAGE_PMD_NR;
