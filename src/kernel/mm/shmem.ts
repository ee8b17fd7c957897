import { HPAGE_PMD_NR, PAGE_SIZE } from '../../lib/units.ts';
import { RwSem } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { folioTestLocked } from './filemap.ts';
import { hugetlbUnreserveInode, hugetlbfsAddPage } from './hugetlb.ts';
import { mapFilePte, mkPte } from './memory.ts';
import { File, Inode, type ShmemFalloc, VM, VM_FAULT, type Vma } from './mm_types.ts';
import {
  FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_INSERT_RANGE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_MODE_MASK,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_UNSHARE_RANGE,
  FALLOC_FL_WRITE_ZEROES,
  FALLOC_FL_ZERO_RANGE,
  F_SEAL_GROW,
  F_SEAL_SHRINK,
  O_RDWR,
} from './mman.ts';
import { isWriteSealed } from './memfd.ts';
import { PG } from './page_alloc.ts';
import { pteNone } from './pgtable.ts';
import { pteSlot, setPte } from './pte.ts';
import { addNewAnonRmap, anonVmaPrepare } from './rmap.ts';
import { zapPageRangeSingle } from './mmap.ts';
import { allocPageReclaim, folioMarkAccessed } from './vmscan.ts';

/**
 * The largest file the model holds, its s_maxbytes: a page's index has 40 bits here (PhysMem keeps
 * its high byte apart). The kernel's is MAX_LFS_FILESIZE, 2^63 - 1; sizes and ranges between the
 * two are refused here as past the largest file.
 */
export const SHMEM_MAX_BYTES = 2 ** 52;

/** The inode's i_rwsem (inode_lock()), made the first time a path takes it. */
export function inodeLockOf(sys: System, inode: Inode): RwSem {
  if (inode.lock === null) inode.lock = new RwSem(sys.sched, `inode[${inode.mappingId}].i_rwsem`, 'i_rwsem');
  return inode.lock;
}

/** Creates an unlinked shmem file (memfd_create, O_TMPFILE, or the backing of a MAP_SHARED|MAP_ANONYMOUS mapping). */
export function shmemFileSetup(
  sys: System,
  name: string,
  size: number,
  kind: 'shmem' | 'hugetlb' = 'shmem',
): File {
  const inode = new Inode(sys.nextId('mapping'), kind, name);
  inode.size = size;
  sys.registerMapping(inode);
  return shmemOpenFile(sys, inode, O_RDWR);
}

/** A new open file (struct file) of a tmpfs or hugetlbfs inode, opened with `mode` (O_* flags). */
export function shmemOpenFile(sys: System, inode: Inode, mode: number): File {
  inode.openFiles++;
  return new File(sys.nextId('file'), inode, mode, null, null);
}

/** How shmemGetPage() is asked (the kernel's sgp_type): for a write, an fallocate() or a fault. */
type Sgp = 'write' | 'falloc' | 'cache';

/**
 * Models shmem_get_folio(): the page cache page at `index`, swapped in or allocated (zeroed)
 * when absent. The page cache holds one reference. Returns a PFN or -errno.
 *
 * A page fallocate() adds (`sgp` 'falloc', SGP_FALLOC) is not up to date: it is zero, but it
 * stands for a hole until someone uses it, so fault-around does not map it and an undo after
 * -ENOMEM takes it out again. Any other caller that finds it (a fault, a write, a later fallocate)
 * makes it up to date, as shmem_get_folio_gfp() clears and marks a fallocated folio.
 *
 * A fault asks with 'cache' (SGP_CACHE): a page it allocated, or a fallocated one it made up to
 * date, at or past the end of the file is refused with -EINVAL (and one it allocated leaves the
 * cache again). The file may have been truncated after the fault looked at its size, while the
 * allocation slept in reclaim. A page that was up to date already is returned as it is.
 *
 * A write ('write', SGP_WRITE) uses the page as folio_mark_accessed() counts a use: a page it
 * adds (allocated or swapped in) starts with PG_referenced, and one the cache held is marked
 * accessed (vmscan.ts folioMarkAccessed()).
 */
export function* shmemGetPage(sys: System, inode: Inode, index: number, sgp: Sgp = 'write'): KGen<number> {
  const have = inode.pages.load(index);
  if (have !== undefined) return claimCached(sys, inode, index, have, sgp);
  const pfn = yield* allocPageReclaim(sys, 0, 'shmem_alloc_folio');
  if (pfn < 0) return pfn;
  // Another thread may have filled the slot while reclaim ran.
  const raced = inode.pages.load(index);
  if (raced !== undefined) {
    sys.phys.put(pfn);
    return claimCached(sys, inode, index, raced, sgp);
  }
  const falloc = sgp === 'falloc';
  const slot = inode.swapped.load(index);
  if (slot !== undefined) swapIn(sys, inode, index, slot, pfn);
  else {
    sys.phys.clearPage(pfn);
    // A new page is up to date unless fallocate() adds it (one swapped in always is).
    addToCache(sys, inode, index, pfn, !falloc);
  }
  if (sgp === 'write') sys.phys.flags[pfn] |= PG.referenced;
  if (sgp === 'cache' && index * PAGE_SIZE >= inode.size) {
    dropRange(sys, inode, index, index);
    return -Errno.EINVAL;
  }
  return pfn;
}

/**
 * shmem_swapin_folio() into the new page `pfn`: the data of swap slot `slot` goes to the page, which
 * takes the slot's place in the file's cache. The slot is freed, so the page is the only copy:
 * dirty.
 */
function swapIn(sys: System, inode: Inode, index: number, slot: number, pfn: number): void {
  const data = sys.swap.read(slot);
  if (data !== null) sys.phys.contents.set(pfn, data);
  else sys.phys.clearPage(pfn);
  inode.swapped.erase(index);
  sys.swap.free(slot);
  sys.phys.flags[pfn] |= PG.dirty;
  sys.trace.count('shmem.swapin');
  sys.trace.faultMajor();
  addToCache(sys, inode, index, pfn, true);
}

/** Puts the new page `pfn` in the file's cache at `index`, on the LRU (swap-backed). */
function addToCache(sys: System, inode: Inode, index: number, pfn: number, uptodate: boolean): void {
  const phys = sys.phys;
  phys.flags[pfn] |= PG.lru | PG.swapbacked | (uptodate ? PG.uptodate : 0);
  phys.mapping[pfn] = inode.mappingId;
  phys.setIndex(pfn, index);
  inode.pages.store(index, pfn);
}

/** shmemGetPage() for a page the cache holds: a fallocated one is made up to date first. */
function claimCached(sys: System, inode: Inode, index: number, pfn: number, sgp: Sgp): number {
  const flags = sys.phys.flags;
  if (sgp === 'write') folioMarkAccessed(sys, pfn);
  if ((flags[pfn] & PG.uptodate) !== 0) return pfn;
  flags[pfn] |= PG.uptodate;
  return sgp === 'cache' && index * PAGE_SIZE >= inode.size ? -Errno.EINVAL : pfn;
}

/** fault_around_bytes' default (64 KiB) in pages: how many PTEs a read fault may fill at once. */
export const FAULT_AROUND_PAGES = 16;

const PTRS_PER_PTE = 512;

/**
 * Models do_fault_around() over shmem's map_pages (filemap_map_pages()): before a read fault
 * reaches ->fault, it maps the pages of an aligned 16-page window around the address (clamped to
 * the VMA, its PTE table and the file's end) that are already in the page cache, up to date and
 * unlocked, wherever the PTE is still empty. Nothing is allocated or read in; a page that is
 * swapped out or absent stays unmapped. Returns true when the faulting page itself got mapped (the
 * kernel's VM_FAULT_NOPAGE: ->fault is skipped).
 */
function* shmemFaultAround(vma: Vma, addr: number, index: number): KGen<boolean> {
  const mm = vma.mm;
  const sys = mm.sys;
  const inode = vma.file!.inode;
  const pteOff = Math.floor(addr / PAGE_SIZE) % PTRS_PER_PTE;
  const vmaOff = (addr - vma.start) / PAGE_SIZE;
  const fromPte = Math.max(pteOff - (pteOff % FAULT_AROUND_PAGES), pteOff - Math.min(pteOff, vmaOff));
  const toPte = Math.min(fromPte + FAULT_AROUND_PAGES, PTRS_PER_PTE, pteOff + vma.pages - vmaOff) - 1;
  const first = index + fromPte - pteOff;
  const last = Math.min(index + toPte - pteOff, Math.ceil(inode.size / PAGE_SIZE) - 1);
  // filemap_map_pages() takes the page-table lock only once it has found a cached page.
  const cached = [...inode.pages.range(first, last)];
  if (cached.length === 0) return false;
  const shared = (vma.flags & VM.SHARED) !== 0;
  let mapped = false;
  yield* mm.ptl.lock();
  for (const [i, pfn] of cached) {
    // The lock may have slept: a page that left the cache meanwhile is not mapped.
    if (inode.pages.load(i) !== pfn) continue;
    if ((sys.phys.flags[pfn] & PG.uptodate) === 0 || folioTestLocked(sys, pfn)) continue;
    const a = addr + (i - index) * PAGE_SIZE;
    const t = mm.pgt.pteTableAlloc(a);
    const s = pteSlot(a);
    if (!pteNone(t.words[s], t.words[s + 1])) continue;
    // As in the fault below: a shared mapping's protection is writable without write notification.
    mapFilePte(sys, vma, a, pfn, shared, false);
    if (i === index) mapped = true;
  }
  yield* mm.ptl.unlock();
  return mapped;
}

/** Models shmem's fault path (do_read_fault / do_cow_fault / do_shared_fault over shmem_fault). */
export function* shmemFault(vma: Vma, addr: number, flags: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  const inode = vma.file!.inode;
  const index = vma.pageIndex(addr);
  const write = (flags & 1) !== 0;
  const shared = (vma.flags & VM.SHARED) !== 0;
  // do_read_fault() tries map_pages first; ->fault runs only if the page was not in the cache.
  // Fault-around comes before the size check: a read past the end maps the cached pages below it
  // and then gets SIGBUS from ->fault.
  if (!write && inode.kind === 'shmem' && (yield* shmemFaultAround(vma, addr, index))) {
    sys.trace.faultKind('file_read');
    sys.trace.count('fault.file');
    return 0;
  }
  if (index * PAGE_SIZE >= inode.size) {
    // do_cow_fault() prepares the anon_vma before ->fault finds the page past the end, so the
    // VMA keeps it (and fork copies its page tables from then on).
    if (write && !shared) anonVmaPrepare(sys, vma);
    return VM_FAULT.SIGBUS;
  }
  sys.trace.faultKind(!write ? 'file_read' : shared ? 'file_shared' : 'file_cow');
  const page = yield* shmemGetPage(sys, inode, index, 'cache');
  // vmf_error(): -EINVAL (truncated meanwhile) is SIGBUS, anything else out of memory.
  if (page < 0) return page === -Errno.EINVAL ? VM_FAULT.SIGBUS : VM_FAULT.OOM;
  // shmem_get_folio() hands the fault its own reference: the page must survive the sleeps below
  // (allocation, the page-table lock) even if reclaim or truncation takes it out of the cache.
  sys.phys.get(page);
  if (!shared && write) {
    // do_cow_fault(): the private copy is an anonymous page.
    anonVmaPrepare(sys, vma);
    const copy = yield* allocPageReclaim(sys, 0, 'cow_alloc');
    if (copy < 0) {
      sys.phys.put(page);
      return VM_FAULT.OOM;
    }
    sys.phys.copyPage(copy, page);
    yield* mm.ptl.lock();
    const t = mm.pgt.pteTableAlloc(addr);
    const s = pteSlot(addr);
    // The kernel maps the copy holding the cache page's lock, so a truncation that removes the
    // page comes after the copy is mapped and zaps it. A copy of a page that left the cache
    // meanwhile is dropped here and the fault is taken again.
    if (pteNone(t.words[s], t.words[s + 1]) && inode.pages.load(index) === page) {
      addNewAnonRmap(sys, vma, copy, addr, false);
      setPte(t, s, mkPte(vma, true, true), copy);
    } else {
      sys.phys.put(copy);
    }
    yield* mm.ptl.unlock();
    sys.phys.put(page);
    sys.trace.count('fault.file_cow');
    return 0;
  }
  yield* mm.ptl.lock();
  const t = mm.pgt.pteTableAlloc(addr);
  const s = pteSlot(addr);
  // A page that left the cache meanwhile (pageout, truncation) is not mapped: the kernel sees
  // the folio's mapping gone once it holds the folio lock and retries the fault.
  if (pteNone(t.words[s], t.words[s + 1]) && inode.pages.load(index) === page) {
    // Shared writable shmem needs no write notification, so even a read fault maps it writable.
    mapFilePte(sys, vma, addr, page, shared, shared && write);
    if (shared && write) sys.phys.flags[page] |= PG.dirty;
  }
  yield* mm.ptl.unlock();
  sys.phys.put(page);
  sys.trace.count('fault.file');
  return 0;
}

/**
 * Models shmem_setattr() size changes: truncation unmaps (CLEAR) and drops the pages past the end.
 * The new size is set first, as i_size_write() comes before the truncation: a fault that looks
 * at the size from then on gets SIGBUS. One that looked before and is still on its way (asleep in
 * an allocation, or waiting for the page-table lock) finds its page gone from the cache, or mapped
 * it in time for the second unmap, which takes the private copies such faults made too.
 */
export function* shmemSetSize(sys: System, inode: Inode, size: number): KGen<number> {
  if (size < 0) return -Errno.EINVAL;
  // inode_newsize_ok()
  if (size > SHMEM_MAX_BYTES) return -Errno.EFBIG;
  if (
    (size < inode.size && (inode.seals & F_SEAL_SHRINK) !== 0) ||
    (size > inode.size && (inode.seals & F_SEAL_GROW) !== 0)
  )
    return -Errno.EPERM;
  const oldSize = inode.size;
  inode.size = size;
  if (inode.kind === 'hugetlb') {
    // hugetlbfs_setattr() runs hugetlb_vmtruncate() whichever way the size moves (a size inside a
    // huge page was refused before): every mapping, page and reservation at or past the new end
    // goes, the pages fallocate() put past the old end too. remove_inode_hugepages() unmaps a
    // page a fault mapped after the unmap.
    const firstGone = size / PAGE_SIZE;
    hugetlbUnreserveInode(sys, inode, firstGone);
    yield* unmapMappingRange(sys, inode, firstGone, Infinity);
    if (dropRange(sys, inode, firstGone, Infinity)) yield* unmapMappingRange(sys, inode, firstGone, Infinity);
    return 0;
  }
  if (size < oldSize) {
    const firstGone = Math.ceil(size / PAGE_SIZE);
    const lastIdx = Math.ceil(oldSize / PAGE_SIZE) - 1;
    if (firstGone <= lastIdx) yield* unmapMappingRange(sys, inode, firstGone, lastIdx);
    // To the end: pages past the old size (a fallocate with FALLOC_FL_KEEP_SIZE) go too, and
    // nothing maps them (a fault past the size is SIGBUS).
    dropRange(sys, inode, firstGone, Infinity);
    // The partial page past the new end reads as zeros again (swapped in first if it is out).
    const tail = size % PAGE_SIZE;
    if (tail !== 0) yield* zeroPartial(sys, inode, Math.floor(size / PAGE_SIZE), tail, PAGE_SIZE);
    // shmem_setattr() unmaps again, which takes the private copies faults made meanwhile.
    if (firstGone <= lastIdx) yield* unmapMappingRange(sys, inode, firstGone, lastIdx);
  }
  return 0;
}

/**
 * Models unmap_mapping_range(): zaps every mapping of page indexes [first, last] of the file.
 * Without `evenCows` (a punched hole), the private copies MAP_PRIVATE mappings made stay.
 */
export function* unmapMappingRange(
  sys: System,
  inode: Inode,
  first: number,
  last: number,
  evenCows = true,
): KGen {
  for (const vma of [...inode.iMmap]) {
    const vFirst = Math.max(first, vma.pgoff);
    const vLast = Math.min(last, vma.pgoff + vma.pages - 1);
    if (vFirst > vLast) continue;
    const start = vma.start + (vFirst - vma.pgoff) * PAGE_SIZE;
    const end = vma.start + (vLast - vma.pgoff + 1) * PAGE_SIZE;
    yield* zapPageRangeSingle(vma, start, end, evenCows);
  }
  sys.trace.count('shmem.unmap_mapping_range');
}

/**
 * Drops the page cache pages and swapped-out pages of indexes [first, last]. Returns true when a
 * page it dropped was still mapped: a fault mapped it after the caller's unmap.
 */
function dropRange(sys: System, inode: Inode, first: number, last: number): boolean {
  let mapped = false;
  for (const [idx, pfn] of [...inode.pages.range(first, last)]) {
    inode.pages.erase(idx);
    if (sys.phys.mapcount[pfn] > 0 || sys.phys.entireMapcount.has(pfn)) mapped = true;
    sys.phys.put(pfn);
  }
  for (const [idx, slot] of [...inode.swapped.range(first, last)]) {
    inode.swapped.erase(idx);
    sys.swap.free(slot);
  }
  return mapped;
}

/**
 * Zeroes bytes [from, to) of the page at `index` if the file has it (a hole stays a hole): a
 * swapped-out page is read back first, as SGP_READ reads it (shmem_get_partial_folio()); a page
 * that cannot be had, or is at or past the end of the file, is left as it is. shmem_undo_range()
 * marks the page dirty: its zeroed bytes must not be lost.
 */
function* zeroPartial(sys: System, inode: Inode, index: number, from: number, to: number): KGen {
  if (to <= from || (!inode.pages.has(index) && !inode.swapped.has(index))) return;
  const pfn = inode.pages.load(index) ?? (yield* shmemReadPage(sys, inode, index));
  if (pfn === null || pfn < 0) return;
  sys.phys.flags[sys.phys.head(pfn)] |= PG.dirty;
  const head = inode.kind === 'hugetlb' ? HPAGE_PMD_NR * PAGE_SIZE : PAGE_SIZE;
  for (let pos = from; pos < to;) {
    const k = Math.floor(pos / PAGE_SIZE);
    const end = Math.min(to, (k + 1) * PAGE_SIZE, head);
    const d = sys.phys.data(pfn + k);
    if (d !== null) d.fill(0, pos % PAGE_SIZE, (pos % PAGE_SIZE) + (end - pos));
    pos = end;
  }
}

/**
 * Models vfs_fallocate() on a file: the mode must be one of the exclusive modes, FALLOC_FL_KEEP_SIZE
 * or'ed with it where that mode allows; the file must be open for writing, regular (a device file
 * is -ENODEV) and the range within the largest file size (-EFBIG). tmpfs and hugetlbfs implement
 * allocation and hole punching only (-EOPNOTSUPP for the other modes).
 */
export function* vfsFallocate(sys: System, f: File, mode: number, offset: number, len: number): KGen<number> {
  if (offset < 0 || len <= 0) return -Errno.EINVAL;
  if ((mode & ~(FALLOC_FL_MODE_MASK | FALLOC_FL_KEEP_SIZE)) !== 0) return -Errno.EOPNOTSUPP;
  switch (mode & FALLOC_FL_MODE_MASK) {
    case 0:
    case FALLOC_FL_UNSHARE_RANGE:
    case FALLOC_FL_ZERO_RANGE:
      break;
    case FALLOC_FL_PUNCH_HOLE:
      if ((mode & FALLOC_FL_KEEP_SIZE) === 0) return -Errno.EOPNOTSUPP;
      break;
    case FALLOC_FL_COLLAPSE_RANGE:
    case FALLOC_FL_INSERT_RANGE:
    case FALLOC_FL_WRITE_ZEROES:
      if ((mode & FALLOC_FL_KEEP_SIZE) !== 0) return -Errno.EOPNOTSUPP;
      break;
    default:
      return -Errno.EOPNOTSUPP;
  }
  if (!f.writable) return -Errno.EBADF;
  if (f.inode.kind === 'device') return -Errno.ENODEV;
  if (offset + len > SHMEM_MAX_BYTES) return -Errno.EFBIG;
  if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) !== 0) return -Errno.EOPNOTSUPP;
  // shmem_fallocate() and hugetlbfs_fallocate() hold the inode lock throughout.
  const lock = inodeLockOf(sys, f.inode);
  yield* lock.downWrite();
  const r = yield* shmemFallocate(sys, f.inode, mode, offset, len);
  yield* lock.upWrite();
  return r;
}

/**
 * Models shmem_fallocate() and hugetlbfs_fallocate() after vfs_fallocate()'s checks: `mode` is 0
 * or FALLOC_FL_KEEP_SIZE, with or without FALLOC_FL_PUNCH_HOLE. A punched hole unmaps the file's
 * pages from every mapping, zeroes the partial pages at its edges and drops the whole ones; on
 * hugetlbfs the private copies go with them (hugetlb_vmdelete_list() zaps the whole range), on
 * tmpfs they stay. Allocation fills the range's holes; tmpfs takes back what it added when it
 * runs out of memory (-ENOMEM), hugetlbfs keeps the pages it got and fails with -ENOSPC.
 */
export function* shmemFallocate(
  sys: System,
  inode: Inode,
  mode: number,
  offset: number,
  len: number,
): KGen<number> {
  const huge = inode.kind === 'hugetlb';
  const unit = huge ? HPAGE_PMD_NR * PAGE_SIZE : PAGE_SIZE;
  const end = offset + len;
  if ((mode & FALLOC_FL_PUNCH_HOLE) !== 0) {
    // A hole changes the file's contents: no write seal may be set.
    if (isWriteSealed(inode.seals)) return -Errno.EPERM;
    // The whole pages inside the hole, as page indexes [first, last].
    const holeStart = Math.ceil(offset / unit) * unit;
    const holeEnd = Math.floor(end / unit) * unit;
    if (huge) {
      if (offset < holeStart) {
        const b = Math.floor(offset / unit) * unit;
        yield* zeroPartial(sys, inode, b / PAGE_SIZE, offset - b, Math.min(end, holeStart) - b);
      }
      if (holeEnd > holeStart)
        yield* unmapMappingRange(sys, inode, holeStart / PAGE_SIZE, holeEnd / PAGE_SIZE - 1);
      if (end > holeEnd && end > holeStart)
        yield* zeroPartial(sys, inode, holeEnd / PAGE_SIZE, 0, end - holeEnd);
      if (holeEnd > holeStart) {
        const first = holeStart / PAGE_SIZE;
        const last = holeEnd / PAGE_SIZE - 1;
        // remove_inode_hugepages() unmaps a page a fault mapped after the unmap above. It gives
        // back reservations only for the pages it removes, whose faults used them already: a
        // hole keeps the reservations of its empty pages.
        if (dropRange(sys, inode, first, last)) yield* unmapMappingRange(sys, inode, first, last);
      }
      return 0;
    }
    if (holeEnd > holeStart)
      yield* unmapMappingRange(sys, inode, holeStart / PAGE_SIZE, holeEnd / PAGE_SIZE - 1, false);
    else if (holeEnd === 0) {
      // shmem_fallocate() compares the rounded bounds as u64: a hole that ends inside the first
      // page makes the end -1, so unmap_mapping_range() runs with a length of 0 from page 0 or of
      // -PAGE_SIZE from page 1, which unmap_mapping_pages() takes as "to the end of the file".
      // Every mapping of those pages goes (their private copies stay); the cache keeps them.
      yield* unmapMappingRange(sys, inode, holeStart / PAGE_SIZE, Infinity, false);
    }
    // shmem_truncate_range(): the partial pages at either edge are zeroed, the rest dropped.
    const firstIdx = Math.floor(offset / PAGE_SIZE);
    const lastIdx = Math.floor((end - 1) / PAGE_SIZE);
    if (firstIdx === lastIdx && offset % PAGE_SIZE !== 0 && end % PAGE_SIZE !== 0) {
      yield* zeroPartial(sys, inode, firstIdx, offset % PAGE_SIZE, ((end - 1) % PAGE_SIZE) + 1);
      return 0;
    }
    if (offset % PAGE_SIZE !== 0) yield* zeroPartial(sys, inode, firstIdx, offset % PAGE_SIZE, PAGE_SIZE);
    if (end % PAGE_SIZE !== 0) yield* zeroPartial(sys, inode, lastIdx, 0, end % PAGE_SIZE);
    if (holeEnd > holeStart) {
      const first = holeStart / PAGE_SIZE;
      const last = holeEnd / PAGE_SIZE - 1;
      // truncate_inode_folio() unmaps a page it removes that a fault mapped after the unmap
      // above (the fault held the page's lock until it was mapped).
      if (dropRange(sys, inode, first, last)) yield* unmapMappingRange(sys, inode, first, last, false);
    }
    return 0;
  }
  // F_SEAL_GROW refuses allocation past the end even with FALLOC_FL_KEEP_SIZE.
  if ((inode.seals & F_SEAL_GROW) !== 0 && end > inode.size) return -Errno.EPERM;
  const first = Math.floor(offset / unit);
  const stop = Math.ceil(end / unit);
  if (huge) {
    for (let u = first; u < stop; u++) {
      const index = (u * unit) / PAGE_SIZE;
      if (!inode.pages.has(index) && hugetlbfsAddPage(sys, inode, index) < 0) return -Errno.ENOSPC;
    }
    if ((mode & FALLOC_FL_KEEP_SIZE) === 0 && end > inode.size) inode.size = end;
    return 0;
  }
  // Reclaim keeps this call's pages rather than swap them out (pageoutPage()), and counts them:
  // once it has kept more than the call added, memory has run out and the call gives up.
  const falloc: ShmemFalloc = { start: first, next: first, nrFalloced: 0, nrUnswapped: 0 };
  inode.falloc ??= falloc;
  const added: number[] = [];
  let err = 0;
  for (let index = first; index < stop; index++) {
    const fresh = !inode.pages.has(index) && !inode.swapped.has(index);
    const pfn =
      falloc.nrUnswapped > falloc.nrFalloced
        ? -Errno.ENOMEM
        : yield* shmemGetPage(sys, inode, index, 'falloc');
    if (pfn < 0) {
      err = pfn;
      break;
    }
    if ((sys.phys.flags[pfn] & PG.uptodate) === 0) falloc.nrFalloced++;
    falloc.next = index + 1;
    // Dirty, the pages there before too: a page that stays must be swapped out once the call
    // is over, not freed as a clean zero page.
    sys.phys.flags[pfn] |= PG.dirty;
    if (fresh) added.push(index);
  }
  if (inode.falloc === falloc) inode.falloc = null;
  if (err < 0) {
    // shmem_undo_range(unfalloc): the pages this call added go again, unless someone used one
    // meanwhile (it is up to date now).
    for (const idx of added) {
      const p = inode.pages.load(idx);
      if (p !== undefined && (sys.phys.flags[p] & PG.uptodate) === 0) dropRange(sys, inode, idx, idx);
    }
    return err;
  }
  if ((mode & FALLOC_FL_KEEP_SIZE) === 0 && end > inode.size) inode.size = end;
  return 0;
}

/** Models shmem write_iter: pwrite through the page cache. Returns bytes written or -errno. */
export function* shmemWrite(sys: System, inode: Inode, data: Uint8Array, offset: number): KGen<number> {
  if (offset < 0) return -Errno.EINVAL;
  if (data.length === 0) return 0;
  // generic_write_check_limits(): nothing at or past the largest file, a short write up to it.
  if (offset >= SHMEM_MAX_BYTES) return -Errno.EFBIG;
  const count = Math.min(data.length, SHMEM_MAX_BYTES - offset);
  // The write holds the inode lock, under which seals are added: they stay as they are now.
  const seals = inode.seals;
  let done = 0;
  while (done < count) {
    const pos = offset + done;
    const index = Math.floor(pos / PAGE_SIZE);
    const off = pos % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, count - done);
    // shmem_write_begin(), page by page: a write seal refuses every page, F_SEAL_GROW a page that
    // would reach past the end; what was written before stays (a short write).
    if (isWriteSealed(seals) || ((seals & F_SEAL_GROW) !== 0 && pos + n > inode.size))
      return done > 0 ? done : -Errno.EPERM;
    const pfn = yield* shmemGetPage(sys, inode, index);
    if (pfn < 0) return done > 0 ? done : pfn;
    sys.phys.write(pfn, off, data, done, n);
    sys.phys.flags[pfn] |= PG.dirty;
    done += n;
  }
  if (offset + done > inode.size) inode.size = offset + done;
  return done;
}

/**
 * Models shmem_file_read_iter() (and hugetlbfs_read_iter()): up to `len` bytes from `offset`, page
 * by page, without the inode lock. A hole, and a page fallocate() added that nothing wrote yet,
 * read as zeros without allocating; a page swapped out is read back into the file first (SGP_READ,
 * which may sleep in reclaim). The size is read again once the page is had, as a truncation may
 * have run meanwhile. A tmpfs page read from its first byte is marked accessed
 * (folioMarkAccessed()). Returns the bytes read, or -errno (-ENOMEM from the swap-in) when none
 * were.
 */
export function* shmemRead(
  sys: System,
  inode: Inode,
  len: number,
  offset: number,
): KGen<{ ret: number; data: Uint8Array }> {
  if (offset < 0 || len < 0) return { ret: -Errno.EINVAL, data: new Uint8Array(0) };
  const chunks: Uint8Array[] = [];
  let done = 0;
  let error = 0;
  while (done < len) {
    const pos = offset + done;
    if (pos >= inode.size) break;
    const index = Math.floor(pos / PAGE_SIZE);
    let pfn: number | null;
    if (inode.kind === 'shmem') {
      const r = yield* shmemReadPage(sys, inode, index);
      if (r !== null && r < 0) {
        // -EINVAL: the page is at or past the end of the file now (read as the end).
        if (r !== -Errno.EINVAL) error = r;
        break;
      }
      pfn = r;
    } else pfn = inode.pageAt(index) ?? null;
    if (pos >= inode.size) break;
    const off = pos % PAGE_SIZE;
    const c = Math.min(PAGE_SIZE - off, inode.size - pos, len - done);
    const chunk = new Uint8Array(c);
    if (pfn !== null) {
      if (off === 0 && inode.kind === 'shmem') folioMarkAccessed(sys, pfn);
      sys.phys.read(pfn, off, chunk, 0, c);
    }
    chunks.push(chunk);
    done += c;
  }
  if (done === 0) return { ret: error, data: new Uint8Array(0) };
  const data = new Uint8Array(done);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { ret: done, data };
}

/**
 * Models shmem_get_folio() with SGP_READ: the up-to-date page at `index`, or null for a hole (and
 * for a fallocated page not yet written); a swapped-out page is read back in. -EINVAL at or past
 * the end of the file, -ENOMEM when no page can be had for the swap-in.
 */
function* shmemReadPage(sys: System, inode: Inode, index: number): KGen<number | null> {
  for (;;) {
    if (index * PAGE_SIZE >= inode.size) return -Errno.EINVAL;
    const have = inode.pages.load(index);
    if (have !== undefined) return (sys.phys.flags[have] & PG.uptodate) !== 0 ? have : null;
    if (!inode.swapped.has(index)) return null;
    const pfn = yield* allocPageReclaim(sys, 0, 'shmem_alloc_folio');
    if (pfn < 0) return pfn;
    // While reclaim ran, another thread may have read the page in, or a truncation taken it: the
    // lookup starts again (shmem_swapin_folio()'s -EEXIST).
    const slot = inode.swapped.load(index);
    if (slot === undefined || inode.pages.has(index)) {
      sys.phys.put(pfn);
      continue;
    }
    swapIn(sys, inode, index, slot, pfn);
    return pfn;
  }
}

/** Drops a file's pages when its last reference goes (the inode is unlinked). */
export function shmemEvictInode(sys: System, inode: Inode): void {
  if (inode.iMmap.size > 0) return;
  if (inode.kind === 'hugetlb') hugetlbUnreserveInode(sys, inode, 0);
  dropRange(sys, inode, 0, Infinity);
  sys.mappings.delete(inode.mappingId);
}
