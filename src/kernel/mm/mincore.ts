/**
 * mincore(2) (mm/mincore.c): whether each page of a range is in memory, as the residency byte
 * do_mincore() writes for it (1 or 0).
 */
import { PAGE_SIZE, TASK_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { Process, System } from '../system.ts';
import { VM, type Vma } from './mm_types.ts';
import { PG } from './page_alloc.ts';
import { pagemapRange } from '../fs/task_mmu.ts';

/**
 * Models mincore_page(): a page of the VMA's file is in core when the page cache holds it up to
 * date. A shmem page swapped out would be in core only while in the swap cache, which the model
 * does not keep (a page written out leaves it), so it is not; nor is a page fallocate() added
 * and nothing has written yet (not up to date).
 */
function mincorePage(sys: System, vma: Vma, addr: number): number {
  const file = vma.file;
  if (file === null) return 0;
  const pfn = file.inode.pages.load(vma.pageIndex(addr));
  if (pfn === undefined) return 0;
  return (sys.phys.flags[sys.phys.head(pfn)] & PG.uptodate) !== 0 ? 1 : 0;
}

/**
 * An empty entry of a hugetlb VMA: walk_hugetlb_range() hands a range whose PMD table is not there
 * to the hole callback, which asks the file's page cache (the huge page holding the index); one
 * with the table goes to mincore_hugetlb(), which reads the empty entry as not in core.
 */
function mincoreHugetlbHole(sys: System, vma: Vma, addr: number): number {
  if (vma.mm.pgt.upperAt(addr, 1) !== null || vma.file === null) return 0;
  return vma.file.inode.pageAt(vma.pageIndex(addr)) !== undefined ? 1 : 0;
}

/**
 * Models do_mincore(): the bytes of up to `pages` pages from `addr`, within the VMA there; returns
 * how many, or -ENOMEM when no VMA holds `addr`. Caller holds the mmap lock for reading. A page
 * is read from its page-table entry as pagemap decodes it (mincore_pte_range(),
 * mincore_hugetlb()): present (PROT_NONE too) or a PMD leaf of any kind is 1; a swap entry is 0
 * (not in the swap cache, as above); a migration, device-private or device-exclusive entry is 1.
 * No entry, or a guard marker, asks the file's page cache (mincore_unmapped_range(); anonymous memory has none: 0);
 * in a hugetlb VMA only where the PMD table is not there (mincoreHugetlbHole()). walk_page_test() hands a VM_PFNMAP VMA to the hole callback whole.
 */
function doMincore(
  sys: System,
  p: Process,
  addr: number,
  pages: number,
  vec: Uint8Array,
  at: number,
): number {
  const mm = p.mm!;
  const vma = mm.vmaLookup(addr);
  if (vma === null) return -Errno.ENOMEM;
  const n = Math.min(pages, (vma.end - addr) / PAGE_SIZE);
  const hugetlb = (vma.flags & VM.HUGETLB) !== 0;
  const entries = (vma.flags & VM.PFNMAP) !== 0 ? [] : pagemapRange(sys, mm, addr, n);
  for (let j = 0; j < n; j++) {
    const e = entries.at(j);
    if (e?.present === true) vec[at + j] = 1;
    // pte_none_mostly(): a guard marker is looked up as an empty entry is.
    else if (e?.swap === true && e.kind !== 'guard') vec[at + j] = e.kind === 'swap' ? 0 : 1;
    else
      vec[at + j] = hugetlb
        ? mincoreHugetlbHole(sys, vma, addr + j * PAGE_SIZE)
        : mincorePage(sys, vma, addr + j * PAGE_SIZE);
  }
  return n;
}

/**
 * Models mincore(2): `vec` (the caller's buffer) gets one byte per page of [start, start + len),
 * a VMA (at most PAGE_SIZE pages) at a time, each under the mmap lock taken for reading. An
 * unaligned start is -EINVAL, a range past the user address space -ENOMEM (access_ok()), a `vec`
 * too short for the pages -EFAULT; a page with no VMA ends the call with -ENOMEM, the bytes before
 * it written. A mapping of a file the caller could not write would read all 1 (can_do_mincore());
 * the model's files are the caller's own, so every file mapping is looked up.
 */
export function* sysMincoreImpl(p: Process, start: number, len: number, vec: Uint8Array): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  if (start % PAGE_SIZE !== 0) return -Errno.EINVAL;
  if (len > TASK_SIZE || start > TASK_SIZE - len) return -Errno.ENOMEM;
  const pages = Math.floor(len / PAGE_SIZE) + (len % PAGE_SIZE !== 0 ? 1 : 0);
  if (vec.length < pages) return -Errno.EFAULT;
  const sys = mm.sys;
  sys.trace.count('mincore');
  for (let k = 0; k < pages;) {
    yield* mm.mmapLock.downRead();
    const n = doMincore(sys, p, start + k * PAGE_SIZE, Math.min(pages - k, PAGE_SIZE), vec, k);
    yield* mm.mmapLock.upRead();
    if (n < 0) return n;
    k += n;
  }
  return 0;
}
