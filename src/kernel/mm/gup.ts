import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, handleMmFault, vmFaultToErrno } from './memory.ts';
import type { File, Inode, MmStruct, Vma } from './mm_types.ts';
import { VM } from './mm_types.ts';
import { GUP_PIN_COUNTING_BIAS, PG } from './page_alloc.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_SOFT_DIRTY,
  PTE_WRITE,
  pteNone,
  pteProtnone,
  pteSpecial,
} from './pgtable.ts';
import { pmdIsLeaf, pmdTableOf, pteSlot } from './pte.ts';
import { hugetlbfsAddPage, isHugetlbFolio } from './hugetlb.ts';
import { schedPoint } from '../../sched/locks.ts';
import { shmemGetPage } from './shmem.ts';
import { folioMarkAccessed } from './vmscan.ts';
import { indexAt } from '../../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, TASK_SIZE } from '../../lib/units.ts';

/** gup_flags (include/linux/mm_types.h and mm/internal.h). */
export const FOLL_WRITE = 1 << 0;
export const FOLL_NOWAIT = 1 << 1;
export const FOLL_PIN = 1 << 2;
export const FOLL_LONGTERM = 1 << 5;
export const FOLL_SPLIT_PMD = 1 << 6;
/** Marks what it follows accessed, and a folio written through a clean entry dirty (mm/internal.h). */
export const FOLL_TOUCH = 1 << 16;
export const FOLL_GET = 1 << 20;
export const FOLL_FORCE = 1 << 21;

/** Models check_vma_flags(). */
function checkVmaFlags(vma: Vma, gupFlags: number): number {
  const write = (gupFlags & FOLL_WRITE) !== 0;
  if ((vma.flags & (VM.IO | VM.PFNMAP)) !== 0) return -Errno.EFAULT;
  if (write) {
    if ((vma.flags & VM.WRITE) === 0) {
      if ((gupFlags & FOLL_FORCE) === 0 || (vma.flags & VM.MAYWRITE) === 0 || (vma.flags & VM.SHARED) !== 0) {
        return -Errno.EFAULT;
      }
    }
  } else if ((vma.flags & VM.READ) === 0 && (gupFlags & FOLL_FORCE) === 0) {
    return -Errno.EFAULT;
  }
  return 0;
}

/**
 * Models follow_page_mask(): the page mapped at `addr` if the mapping allows this access without a
 * fault, else -1. A pin of a shared anonymous page needs an unshare fault first (gup_must_unshare).
 */
export function followPage(sys: System, vma: Vma, addr: number, gupFlags: number): number {
  const mm = vma.mm;
  const write = (gupFlags & FOLL_WRITE) !== 0;
  const pmd = pmdTableOf(mm, addr);
  if (pmd === null) return -1;
  let lo: number;
  let pfn: number;
  // The page whose PageAnonExclusive counts: a PMD's first page for the whole PMD (follow_huge_pmd()
  // asks pmd_page()), each page for itself under a PTE.
  let excl: number;
  const huge = pmdIsLeaf(pmd, addr);
  if (huge) {
    const i = 2 * (Math.floor(addr / (PAGE_SIZE * HPAGE_PMD_NR)) % 512);
    lo = pmd.words[i];
    if ((lo & PTE_PRESENT) === 0) return -1;
    excl = pmd.words[i + 1];
    pfn = excl + (Math.floor(addr / PAGE_SIZE) % HPAGE_PMD_NR);
  } else {
    const t = mm.pgt.pteTable(addr);
    if (t === null) return -1;
    const s = pteSlot(addr);
    lo = t.words[s];
    if (pteNone(lo, t.words[s + 1]) || (lo & PTE_PRESENT) === 0) return -1;
    pfn = t.words[s + 1];
    excl = pfn;
  }
  if (write && !canFollowWrite(sys, vma, lo, pfn, excl, gupFlags)) return -1;
  if ((lo & PTE_WRITE) === 0 && gupMustUnshare(sys, vma, gupFlags, pfn, excl)) return -2;
  if ((gupFlags & FOLL_TOUCH) !== 0 && sys.phys.isRam(pfn) && !sys.phys.isZeroPfn(pfn)) {
    if (huge) {
      // touch_pmd(): the entry made young, and dirty (soft-dirty too) for a write. x86's
      // pmdp_set_access_flags() writes the entry back only for a write.
      if (write) {
        const k = Math.floor(addr / (PAGE_SIZE * HPAGE_PMD_NR)) % 512;
        const young = (lo | PTE_ACCESSED | PTE_DIRTY | PTE_SOFT_DIRTY) >>> 0;
        if (young !== lo) mm.pgt.setUpperWords(pmd, k, young, pmd.words[2 * k + 1]);
      }
    } else {
      // follow_page_pte(): a write through an entry that is not dirty marks the folio dirty
      // instead (the entry stays clean), and the page is marked accessed.
      if (write && (lo & PTE_DIRTY) === 0) sys.phys.flags[sys.phys.head(pfn)] |= PG.dirty;
      folioMarkAccessed(sys, pfn);
    }
  }
  return pfn;
}

/**
 * Models can_follow_write_pte() / can_follow_write_pmd(): a write needs a writable entry, except
 * that a FOLL_FORCE write (ptrace, /proc/pid/mem) may go through a read-only entry of a private
 * mapping without VM_WRITE once the fault has given this mm its own exclusive anonymous page (and
 * soft-dirty tracking, if on, has seen the write). The entry stays read-only.
 */
function canFollowWrite(
  sys: System,
  vma: Vma,
  lo: number,
  pfn: number,
  excl: number,
  gupFlags: number,
): boolean {
  if ((lo & PTE_WRITE) !== 0) return true;
  if ((gupFlags & FOLL_FORCE) === 0) return false;
  if ((vma.flags & (VM.MAYSHARE | VM.SHARED)) !== 0 || (vma.flags & VM.MAYWRITE) === 0) return false;
  if ((vma.flags & VM.WRITE) !== 0) return false;
  const phys = sys.phys;
  if (phys.isZeroPfn(pfn) || !phys.isRam(pfn)) return false;
  if ((phys.flags[phys.head(pfn)] & PG.anon) === 0) return false;
  if ((phys.flags[excl] & PG.anonExclusive) === 0) return false;
  // vma_soft_dirty_enabled(): tracking is on while the VMA's VM_SOFTDIRTY is clear.
  return (vma.flags & VM.SOFTDIRTY) !== 0 || (lo & PTE_SOFT_DIRTY) !== 0;
}

/**
 * Models gup_must_unshare(): a read-only pin must not see a page that a later write would
 * replace. A shared anonymous page must become exclusive first; a file page (or the zero page)
 * in a private mapping must be replaced by an anonymous copy before a long-term pin. Without a
 * VMA (the lockless walk of gup_fast()), every file page of a long-term pin is sent to the slow
 * path, which can tell.
 */
function gupMustUnshare(sys: System, vma: Vma | null, gupFlags: number, pfn: number, excl: number): boolean {
  if ((gupFlags & (FOLL_WRITE | FOLL_PIN)) !== FOLL_PIN) return false;
  const phys = sys.phys;
  const anon = !phys.isZeroPfn(pfn) && (phys.flags[phys.head(pfn)] & PG.anon) !== 0;
  if (!anon) {
    if ((gupFlags & FOLL_LONGTERM) === 0) return false;
    if (vma === null) return true;
    return (vma.flags & (VM.SHARED | VM.MAYWRITE)) === VM.MAYWRITE;
  }
  return (phys.flags[excl] & PG.anonExclusive) === 0;
}

/** Takes the reference a GUP caller asked for (try_grab_folio). */
export function grabPage(sys: System, pfn: number, gupFlags: number): void {
  const phys = sys.phys;
  const h = phys.head(pfn);
  if ((gupFlags & FOLL_PIN) !== 0) {
    phys.addPins(h, 1);
    phys.refcount[h] += phys.order[h] === 0 ? GUP_PIN_COUNTING_BIAS : 1;
    sys.trace.count('gup.pin');
  } else {
    phys.refcount[h]++;
  }
}

/**
 * Models __get_user_pages(): faults in and takes a reference (FOLL_GET) or a pin (FOLL_PIN) on each
 * page, or, with no `out` (no pages asked for, as populate_vma_page_range() calls it), only faults
 * them in. The caller holds mm.mmapLock for reading. Returns the number of pages done (fewer than
 * asked when a later page fails) or -errno when the first one fails.
 */
export function* getUserPagesLocked(
  mm: MmStruct,
  start: number,
  npages: number,
  gupFlags: number,
  out: number[] | null,
): KGen<number> {
  const sys = mm.sys;
  if (start % PAGE_SIZE !== 0) return -Errno.EINVAL;
  if (npages <= 0) return 0;
  if (mm.exited) return -Errno.EFAULT;
  // The VMA of the previous page is reused while addr stays inside it and nothing has yielded
  // since it was looked up (a fault or migration yields: the VMA is then looked up again). On
  // failure the result is the pages taken so far, or the error if none were.
  let vma: Vma | null = null;
  for (let i = 0; i < npages; i++) {
    const addr = start + i * PAGE_SIZE;
    if (vma === null || addr >= vma.end || addr < vma.start) {
      vma = mm.vmaLookup(addr);
      if (vma === null) return i > 0 ? i : -Errno.EFAULT;
      const bad = checkVmaFlags(vma, gupFlags);
      if (bad < 0) return i > 0 ? i : bad;
    }
    const v: Vma = vma;
    let pfn = followPage(sys, v, addr, gupFlags);
    if (pfn < 0) {
      vma = null; // faulting yields: the next page looks its VMA up afresh
      let tries = 0;
      while (pfn < 0) {
        if (++tries > 8) return i > 0 ? i : -Errno.EFAULT;
        let flags = (gupFlags & FOLL_WRITE) !== 0 ? FAULT_FLAG_WRITE : 0;
        if (pfn === -2) flags |= FAULT_FLAG_UNSHARE;
        const r = yield* handleMmFault(v, addr, flags);
        const e = vmFaultToErrno(r);
        if (e < 0) return i > 0 ? i : e;
        pfn = followPage(sys, v, addr, gupFlags);
      }
    }
    if ((gupFlags & FOLL_LONGTERM) !== 0 && sys.phys.pagemapOf(pfn)?.hooks.type === 'coherent') {
      vma = null; // migrating yields too
      // Long-term pins must not land on memory that has to stay movable.
      if (sys.longtermMigrate === null) return i > 0 ? i : -Errno.ENOMEM;
      const moved = yield* sys.longtermMigrate(sys, v, addr, pfn);
      if (moved < 0) return i > 0 ? i : moved;
      pfn = moved;
    }
    if (out === null) continue;
    grabPage(sys, pfn, gupFlags);
    out[i] = pfn;
  }
  return npages;
}

/**
 * Models pin_user_pages_remote() with FOLL_LONGTERM, as iommufd and VFIO use it; it adds FOLL_TOUCH
 * as the kernel's does. Caller holds the mmap read lock.
 */
export function* pinUserPagesRemote(
  mm: MmStruct,
  start: number,
  npages: number,
  gupFlags: number,
  out: number[],
): KGen<number> {
  return yield* getUserPagesLocked(
    mm,
    start,
    npages,
    (gupFlags | FOLL_PIN | FOLL_LONGTERM | FOLL_TOUCH) & ~FOLL_GET,
    out,
  );
}

/**
 * Models gup_fast_folio_allowed(): whether the lockless walk may take folio `h` (it holds a
 * reference on it by then). A write long-term pin of a file folio other than tmpfs' waits for the
 * slow path, and so does a small folio that is neither anonymous nor in a page cache (truncated
 * under the walk, or never in one). Every file the model maps is tmpfs or hugetlbfs, and none is
 * secretmem.
 */
function gupFastFolioAllowed(sys: System, h: number, gupFlags: number): boolean {
  const phys = sys.phys;
  const all = FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE;
  if ((gupFlags & all) !== all && phys.order[h] !== 0) return true;
  if (isHugetlbFolio(sys, h) || (phys.flags[h] & PG.anon) !== 0) return true;
  return phys.mapping[h] !== 0;
}

/**
 * Models gup_fast(): the walk of the page tables that pin_user_pages_fast() tries first, without
 * the mmap lock and with interrupts off. It is one step here: with interrupts off, the unmap that
 * cleared an entry it read cannot free that page (nor a table it walks) before it ends, so
 * re-reading each entry after taking its page finds it unchanged. It takes the pages mapped as
 * asked, in order, and stops at the first one it cannot take (nothing present, PROT_NONE, a
 * read-only entry for a write, the zero page and other special entries, a page a long-term pin
 * must not hold, one that must be unshared first). Each folio taken is marked referenced, no more:
 * neither the entry nor the LRU is touched. A pin gives up at once while fork() is
 * write-protecting this mm (its `writeProtectSeq` is odd). Returns how many pages it took.
 */
function gupFast(mm: MmStruct, start: number, npages: number, gupFlags: number, out: number[]): number {
  if ((gupFlags & FOLL_PIN) !== 0 && (mm.writeProtectSeq & 1) !== 0) return 0;
  const sys = mm.sys;
  const phys = sys.phys;
  const write = (gupFlags & FOLL_WRITE) !== 0;
  const longterm = (gupFlags & (FOLL_PIN | FOLL_LONGTERM)) === (FOLL_PIN | FOLL_LONGTERM);
  let nr = 0;
  while (nr < npages) {
    const addr = start + nr * PAGE_SIZE;
    const pmd = pmdTableOf(mm, addr);
    if (pmd === null) break;
    let lo: number;
    let pfn: number;
    let excl: number;
    // Pages taken from this entry: the rest of a PMD leaf within the range, or one.
    let refs = 1;
    if (pmdIsLeaf(pmd, addr)) {
      const k = indexAt(addr, 1);
      lo = pmd.words[2 * k];
      excl = pmd.words[2 * k + 1];
      pfn = excl + (Math.floor(addr / PAGE_SIZE) % HPAGE_PMD_NR);
      refs = Math.min(npages - nr, HPAGE_PMD_NR - (Math.floor(addr / PAGE_SIZE) % HPAGE_PMD_NR));
    } else {
      const t = mm.pgt.pteTable(addr);
      if (t === null) break;
      const i = pteSlot(addr);
      lo = t.words[i];
      pfn = t.words[i + 1];
      excl = pfn;
    }
    if ((lo & PTE_PRESENT) === 0 || pteProtnone(lo)) break;
    if (write && (lo & PTE_WRITE) === 0) break;
    if (pteSpecial(lo) || phys.isZeroPfn(pfn) || !phys.isRam(pfn)) break;
    const h = phys.head(pfn);
    // try_grab_folio_fast(): a folio being freed, or one a long-term pin must not hold.
    if (phys.refcount[h] === 0) break;
    if (longterm && phys.pagemapOf(pfn)?.hooks.type === 'coherent') break;
    if (!gupFastFolioAllowed(sys, h, gupFlags)) break;
    if ((lo & PTE_WRITE) === 0 && gupMustUnshare(sys, null, gupFlags, pfn, excl)) break;
    for (let j = 0; j < refs; j++) {
      grabPage(sys, pfn + j, gupFlags);
      out[nr + j] = pfn + j;
    }
    phys.flags[h] |= PG.referenced;
    nr += refs;
  }
  return nr;
}

/**
 * Models gup_fast_fallback(): gup_fast() first, then the pages it did not take the slow way, under
 * the mmap lock (with FOLL_TOUCH). `start` is rounded down to its page. Returns the pages taken,
 * or -errno when none were.
 */
function* gupFastFallback(
  mm: MmStruct,
  start: number,
  npages: number,
  flags: number,
  out: number[],
): KGen<number> {
  if (npages <= 0) return 0;
  const from = start - (start % PAGE_SIZE);
  if (from + npages * PAGE_SIZE > TASK_SIZE) return -Errno.EFAULT;
  // The walk holds no lock: a point that declares nothing, as it reads page tables that any
  // other thread may be changing.
  yield* schedPoint('gup_fast');
  const nr = gupFast(mm, from, npages, flags, out);
  if (nr === npages) return nr;
  const rest: number[] = [];
  yield* mm.mmapLock.downRead();
  const r = yield* getUserPagesLocked(mm, from + nr * PAGE_SIZE, npages - nr, flags | FOLL_TOUCH, rest);
  yield* mm.mmapLock.upRead();
  for (let i = 0; i < r; i++) out[nr + i] = rest[i];
  // Pages already taken are the caller's to release: they are reported rather than an error.
  if (r < 0) return nr > 0 ? nr : r;
  return nr + r;
}

/**
 * Models pin_user_pages_fast() (see gupFastFallback()). Unlike pin_user_pages_remote() here, it
 * adds no FOLL_LONGTERM: callers pass it. FOLL_GET is -EINVAL (is_valid_gup_args()).
 */
export function* pinUserPagesFast(
  mm: MmStruct,
  start: number,
  npages: number,
  gupFlags: number,
  out: number[],
): KGen<number> {
  if ((gupFlags & FOLL_GET) !== 0) return -Errno.EINVAL;
  return yield* gupFastFallback(mm, start, npages, gupFlags | FOLL_PIN, out);
}

/**
 * Models get_user_pages_fast(): as pin_user_pages_fast(), with references (FOLL_GET), which
 * putUserPages() drops. FOLL_PIN and FOLL_LONGTERM are -EINVAL (is_valid_gup_args()).
 */
export function* getUserPagesFast(
  mm: MmStruct,
  start: number,
  npages: number,
  gupFlags: number,
  out: number[],
): KGen<number> {
  if ((gupFlags & (FOLL_PIN | FOLL_LONGTERM)) !== 0) return -Errno.EINVAL;
  return yield* gupFastFallback(mm, start, npages, gupFlags | FOLL_GET, out);
}

/** Models get_user_pages_remote() (FOLL_GET references, FOLL_TOUCH). Caller holds the mmap read lock. */
export function* getUserPagesRemote(
  mm: MmStruct,
  start: number,
  npages: number,
  gupFlags: number,
  out: number[],
): KGen<number> {
  return yield* getUserPagesLocked(mm, start, npages, (gupFlags | FOLL_GET | FOLL_TOUCH) & ~FOLL_PIN, out);
}

/** Models unpin_user_page(s)(_dirty_lock). */
export function unpinUserPages(sys: System, pfns: ArrayLike<number>, n: number, makeDirty: boolean): void {
  const phys = sys.phys;
  for (let i = 0; i < n; i++) {
    const h = phys.head(pfns[i]);
    if (phys.pinCount(h) <= 0) throw new Error(`unpin of unpinned pfn ${pfns[i]}`);
    if (makeDirty) phys.flags[h] |= PG.dirty;
    phys.addPins(h, -1);
    phys.put(h, phys.order[h] === 0 ? GUP_PIN_COUNTING_BIAS : 1);
    sys.trace.count('gup.unpin');
  }
}

/** Models put_page() for FOLL_GET references. */
export function putUserPages(sys: System, pfns: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) sys.phys.put(pfns[i]);
}

/** The page at `idx` of a hugetlbfs file: a page of its huge page, added to the cache if absent. */
function hugetlbSubpage(sys: System, inode: Inode, idx: number): number {
  if (inode.pageAt(idx) === undefined && hugetlbfsAddPage(sys, inode, idx - (idx % HPAGE_PMD_NR)) < 0)
    return -Errno.ENOMEM;
  return inode.pageAt(idx)!;
}

/**
 * Models memfd_pin_folios() page by page: pins page-cache pages of a tmpfs or hugetlbfs file,
 * allocating holes.
 */
export function* memfdPinPages(
  sys: System,
  file: File,
  firstIndex: number,
  npages: number,
  out: number[],
): KGen<number> {
  const inode = file.inode;
  if (inode.kind !== 'shmem' && inode.kind !== 'hugetlb') return -Errno.EINVAL;
  for (let i = 0; i < npages; i++) {
    const idx = firstIndex + i;
    if (idx * PAGE_SIZE >= inode.size) return i > 0 ? i : -Errno.EINVAL;
    // memfd_alloc_folio() reads a hole in: a huge page added to a hugetlbfs file's cache, or as
    // shmem_read_folio() does (SGP_CACHE), where a page the file lost to a truncation while it
    // was allocated is -EINVAL.
    const pfn =
      inode.kind === 'hugetlb'
        ? hugetlbSubpage(sys, inode, idx)
        : yield* shmemGetPage(sys, inode, idx, 'cache');
    if (pfn < 0) return i > 0 ? i : pfn;
    grabPage(sys, pfn, FOLL_PIN);
    out[i] = pfn;
  }
  return npages;
}
