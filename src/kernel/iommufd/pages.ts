/**
 * Models drivers/iommu/iommufd/pages.c: struct iopt_pages, the pinned-PFN bookkeeping shared by
 * every area, domain and access that maps the same user memory, and the RLIMIT_MEMLOCK
 * accounting of what is pinned.
 *
 * A page index of an iopt_pages is pinned exactly once while it is covered by access_itree
 * (accesses; PFN kept in pinned_pfns) or domains_itree (areas whose storage domain holds the
 * PFN). PFNs are read back from, in order of preference, the pinned_pfns xarray, a storage
 * domain, and the origin (user VA or memfd), where reading means pinning. Per-page loops run
 * inside one scheduling step; the locks (pages.mutex, mmap_lock) are scheduling points.
 */
import { endOf, lastOf } from '../../lib/u64.ts';
import { IntervalTree, type IntervalNode } from '../../lib/interval_tree.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import { Mutex } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { File, MmStruct, UserStruct } from '../mm/mm_types.ts';
import { hasCapIpcLock, setCapIpcLock } from '../mm/mlock.ts';
import { fput } from '../mm/mmap.ts';
import type { Process, System } from '../system.ts';
import { iommuIovaToPhys, iommuMap, iommuUnmap, type IommuDomain } from './iommu.ts';
import { accessRemote, memfdPinPages, pinUserPages, unpinPages } from './mm_glue.ts';
import { markFreed, usedAfterFree } from '../uaf.ts';
import { dropRef, takeRef } from '../refs.ts';
import { sideTable } from '../../lib/snapshot.ts';

export { hasCapIpcLock, setCapIpcLock };

export const IOPT_PAGES_ACCOUNT_NONE = 0;
export const IOPT_PAGES_ACCOUNT_USER = 1;
export const IOPT_PAGES_ACCOUNT_MM = 2;

/** Default TEMP_MEMORY_LIMIT: the cap on one temporary PFN batch (64 KiB). */
export const TEMP_MEMORY_LIMIT = 65536;
/** Bytes one page pointer of the GUP array costs. */
const UPAGE_BYTES = 8;

const tempLimits = sideTable<System, number>();

/** The test-settable iommufd_test_memory_limit (IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT). */
export function tempMemoryLimit(sys: System): number {
  return tempLimits.get(sys) ?? TEMP_MEMORY_LIMIT;
}

export function setTempMemoryLimit(sys: System, limit: number): void {
  tempLimits.set(sys, limit);
}

/** Models struct iopt_pages_access: an interval lock keeping PFNs pinned in pinned_pfns. */
export interface IoptPagesAccess {
  node: IntervalNode<IoptPagesAccess> | null;
  users: number;
}

/** Models struct iopt_pages. */
export class IoptPages {
  kref = 1;
  readonly mutex: Mutex;
  npinned = 0;
  lastNpinned = 0;
  /** pinned_pfns: index -> pfn, only for indexes an access covers. */
  readonly pinnedPfns = new Map<number, number>();
  readonly accessItree = new IntervalTree<IoptPagesAccess>();
  /** pages_node of every area whose storage domain holds its PFNs. */
  readonly domainsItree = new IntervalTree<IoptArea>();
  accountMode: number;
  readonly id: number;

  constructor(
    readonly sys: System,
    readonly npages: number,
    readonly type: 'user' | 'file',
    /** USER: the page-aligned user address; FILE: the page-aligned file offset. */
    readonly base: number,
    readonly file: File | null,
    readonly writable: boolean,
    public sourceTask: Process,
    public sourceMm: MmStruct,
    public sourceUser: UserStruct,
  ) {
    this.id = sys.nextId('iopt_pages');
    this.mutex = new Mutex(sys.sched, `iopt_pages[${this.id}].mutex`, 'iopt_pages.mutex');
    this.accountMode = hasCapIpcLock(sourceTask) ? IOPT_PAGES_ACCOUNT_NONE : IOPT_PAGES_ACCOUNT_USER;
    if (file !== null) {
      file.refs++;
      takeRef(sys, file, 'iopt_alloc_file_pages');
    }
  }
}

/** Models struct iopt_area: one mapping of part of an iopt_pages at an IOVA range. */
export class IoptArea {
  /** Node in iopt.area_itree, or null before insertion / after removal. */
  node: IntervalNode<IoptArea> | null = null;
  /** Node in pages.domains_itree while a storage domain holds the PFNs. */
  pagesNode: IntervalNode<IoptArea> | null = null;
  pages: IoptPages | null = null;
  /** The System of the io_pagetable the area was made for (null for a bare area of a unit test). */
  sys: System | null = null;
  storageDomain: IommuDomain | null = null;
  preventAccess = false;
  numAccesses = 0;
  /** Models area->num_locks: pins of internal accesses, which make IOAS_UNMAP fail with -EBUSY. */
  numLocks = 0;
  iova = 0;
  last = 0;
  constructor(
    /** First and last page index of the iopt_pages this area covers. */
    readonly pagesStart: number,
    readonly pagesLast: number,
    /** Byte offset into the first page where the area starts. */
    readonly pageOffset: number,
    readonly iommuProt: number,
  ) {}

  /** Bytes the area spans (`last` is kept as lib/u64.ts describes, so the end comes from endOf()). */
  get length(): number {
    return endOf(this.last) - this.iova;
  }

  /** IOVA where index `idx` starts (the first index starts at the area's IOVA). */
  indexIova(idx: number): number {
    return idx === this.pagesStart
      ? this.iova
      : this.iova - this.pageOffset + (idx - this.pagesStart) * PAGE_SIZE;
  }

  /** Last IOVA of index `idx`. */
  indexLastIova(idx: number): number {
    return Math.min(this.last, lastOf(this.iova - this.pageOffset + (idx - this.pagesStart + 1) * PAGE_SIZE));
  }

  /** Models iopt_area_start_byte(). */
  startByte(iova: number): number {
    return iova - this.iova + this.pageOffset + this.pagesStart * PAGE_SIZE;
  }

  /** Models iopt_area_iova_to_index(). */
  iovaToIndex(iova: number): number {
    return Math.floor(this.startByte(iova) / PAGE_SIZE);
  }

  /** iopt_area_iova_to_index() of a last byte `last` (kept as lib/u64.ts describes). */
  lastIndex(last: number): number {
    return Math.floor((this.startByte(endOf(last)) - 1) / PAGE_SIZE);
  }
}

/**
 * Whether `area` (or the iopt_pages it points at) was freed before `kernelFn` uses it; reports
 * the use-after-free when so.
 */
export function areaUsedAfterFree(area: IoptArea, kernelFn: string): boolean {
  const sys = area.sys ?? area.pages?.sys ?? null;
  if (sys === null) return false;
  if (usedAfterFree(sys, area, kernelFn)) return true;
  return area.pages !== null && usedAfterFree(sys, area.pages, kernelFn);
}

function covered(pages: IoptPages, idx: number, exceptArea: IoptArea | null = null): boolean {
  if (pages.accessItree.firstOverlap(idx, idx) !== null) return true;
  const t = pages.domainsItree;
  for (let n = t.firstOverlap(idx, idx); n !== null; n = t.nextOverlap(n, idx, idx))
    if (n.value !== exceptArea) return true;
  return false;
}

/** A PFN for `idx` from the xarray or a storage domain, or -1 if only the origin has it. */
function pfnFromStorage(pages: IoptPages, idx: number): number {
  const x = pages.pinnedPfns.get(idx);
  if (x !== undefined) return x;
  const n = pages.domainsItree.firstOverlap(idx, idx);
  if (n !== null) {
    const area = n.value;
    const phys = iommuIovaToPhys(area.storageDomain!, area.indexIova(idx));
    if (phys >= 0) return Math.floor(phys / PAGE_SIZE);
  }
  return -1;
}

/**
 * Pins [first, first+n) of the origin into out[off..]. Models pfn_reader_user_pin() /
 * the memfd_pin_folios() path, batch by batch (batch size from the temp memory limit).
 */
function* pinFromOrigin(
  pages: IoptPages,
  first: number,
  n: number,
  out: Float64Array,
  off: number,
): KGen<number> {
  const sys = pages.sys;
  if (sys.inject.shouldFail('iommufd_temp_kmalloc')) {
    // temp_kmalloc() falls back to a page and then the stack, so this only shrinks the batch.
  }
  // The page-pointer array handed to GUP is one temp allocation too.
  const batch = Math.max(1, Math.floor(tempMemoryLimit(sys) / UPAGE_BYTES));
  let done = 0;
  // Reused for every batch: GUP fills tmp[0..rc) and only those are read.
  const tmp: number[] = [];
  while (done < n) {
    const want = Math.min(batch, n - done);
    if (sys.inject.shouldFail('iommufd_pin_pages')) {
      undoOrigin(pages, out, off, done);
      return -Errno.EFAULT;
    }
    let rc: number;
    if (pages.type === 'file') {
      rc = yield* memfdPinPages(sys, pages.file!, pages.base / PAGE_SIZE + first + done, want, tmp);
    } else {
      rc = yield* pinUserPages(
        sys,
        pages.sourceMm,
        pages.base + (first + done) * PAGE_SIZE,
        want,
        pages.writable,
        tmp,
      );
    }
    if (rc === 0) rc = -Errno.EFAULT;
    if (rc < 0) {
      undoOrigin(pages, out, off, done);
      return rc;
    }
    for (let i = 0; i < rc; i++) out[off + done + i] = tmp[i];
    done += rc;
    pages.npinned += rc;
  }
  return 0;
}

function undoOrigin(pages: IoptPages, out: Float64Array, off: number, done: number): void {
  if (done === 0) return;
  unpinPages(pages.sys, out.slice(off, off + done), done, false);
  pages.npinned -= done;
}

/**
 * Models the pfn_reader: fills out[i] with the PFN of index first+i for i < n, preferring the
 * xarray, then a storage domain, then pinning from the origin. `fresh[i]` tells which indexes
 * this call pinned (npinned was raised for them). 0 or -errno; on error nothing stays pinned.
 */
export function* readPfns(
  pages: IoptPages,
  first: number,
  n: number,
  out: Float64Array,
  fresh: Uint8Array,
): KGen<number> {
  if (pages.pinnedPfns.size === 0 && pages.domainsItree.size === 0) {
    // Nothing is stored anywhere (pfnFromStorage would miss on every index): pin it all.
    const rc = yield* pinFromOrigin(pages, first, n, out, 0);
    if (rc < 0) return rc;
    fresh.fill(1, 0, n);
    return 0;
  }
  let i = 0;
  while (i < n) {
    const p = pfnFromStorage(pages, first + i);
    if (p >= 0) {
      out[i] = p;
      fresh[i] = 0;
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && pfnFromStorage(pages, first + j) < 0) j++;
    const rc = yield* pinFromOrigin(pages, first + i, j - i, out, i);
    if (rc < 0) {
      unpinFresh(pages, out, fresh, i);
      return rc;
    }
    fresh.fill(1, i, j);
    i = j;
  }
  return 0;
}

/** Unpins the indexes below `upTo` that readPfns pinned. */
export function unpinFresh(pages: IoptPages, out: Float64Array, fresh: Uint8Array, upTo: number): void {
  const list: number[] = [];
  for (let k = 0; k < upTo; k++) if (fresh[k] !== 0) list.push(out[k]);
  if (list.length > 0) {
    unpinPages(pages.sys, list, list.length, pages.writable);
    pages.npinned -= list.length;
  }
}

/**
 * Models incr_user_locked_vm() / __account_locked_vm() for one owner: charge (n > 0) or credit
 * (n < 0) `n` pages. mm->pinned_vm moves in every mode (it is what VmPin shows).
 */
export function* chargeAccount(
  sys: System,
  mode: number,
  task: Process,
  mm: MmStruct,
  user: UserStruct,
  n: number,
): KGen<number> {
  if (n === 0) return 0;
  if (n > 0 && sys.inject.shouldFail('iommufd_update_pinned')) return -Errno.ENOMEM;
  const limit = Math.floor(task.rlimitMemlock / PAGE_SIZE);
  if (mode === IOPT_PAGES_ACCOUNT_USER) {
    const next = user.lockedVm + n;
    if (n > 0 && next > limit) return -Errno.ENOMEM;
    user.lockedVm = next;
  } else if (mode === IOPT_PAGES_ACCOUNT_MM) {
    // The kernel drops mmap_read_lock and takes the write side for this.
    yield* mm.mmapLock.downWrite();
    const next = mm.lockedVm + n;
    if (n > 0 && next > limit && !hasCapIpcLock(task)) {
      yield* mm.mmapLock.upWrite();
      return -Errno.ENOMEM;
    }
    mm.lockedVm = next;
    yield* mm.mmapLock.upWrite();
  }
  mm.pinnedVm += n;
  return 0;
}

function* accountPages(pages: IoptPages, n: number): KGen<number> {
  return yield* chargeAccount(
    pages.sys,
    pages.accountMode,
    pages.sourceTask,
    pages.sourceMm,
    pages.sourceUser,
    n,
  );
}

/** Models pfn_reader_update_pinned(): brings the accounting up to npinned. */
export function* updatePinned(pages: IoptPages): KGen<number> {
  const diff = pages.npinned - pages.lastNpinned;
  const rc = yield* accountPages(pages, diff);
  if (rc < 0) return rc;
  pages.lastNpinned = pages.npinned;
  return 0;
}

/** Models iopt_pages_update_pinned() on unpin paths: crediting never fails. */
function* updateUnpinned(pages: IoptPages): KGen {
  yield* updatePinned(pages);
}

/** Maps PFNs of [first, first+n) of `area` into `domain`, merging contiguous PFN runs. */
function mapIntoDomain(
  area: IoptArea,
  domain: IommuDomain,
  first: number,
  pfns: Float64Array,
  small: boolean,
): number {
  const n = pfns.length;
  let i = 0;
  while (i < n) {
    let j = i + 1;
    if (!small) while (j < n && pfns[j] === pfns[j - 1] + 1) j++;
    const idx = first + i;
    const iova = area.indexIova(idx);
    const last = area.indexLastIova(first + j - 1);
    const paddr = pfns[i] * PAGE_SIZE + (idx === area.pagesStart ? area.pageOffset : 0);
    const rc = iommuMap(domain, iova, paddr, endOf(last) - iova, area.iommuProt);
    if (rc < 0) {
      if (i > 0) iommuUnmap(domain, area.iova, area.indexIova(first + i) - area.iova);
      return rc;
    }
    i = j;
  }
  return 0;
}

function areaPfnsFromDomain(area: IoptArea, domain: IommuDomain): Float64Array {
  const start = area.pagesStart;
  const out = new Float64Array(area.pagesLast - start + 1);
  for (let k = 0; k < out.length; k++) {
    const phys = iommuIovaToPhys(domain, area.indexIova(start + k));
    out[k] = phys < 0 ? -1 : Math.floor(phys / PAGE_SIZE);
  }
  return out;
}

/**
 * Models iopt_area_fill_domains(): a new area's PFNs are pinned (or found) and mapped into every
 * domain; the first domain becomes the storage domain. Caller holds domains_rwsem for read.
 */
export function* areaFillDomains(
  area: IoptArea,
  pages: IoptPages,
  domains: readonly IommuDomain[],
  small: boolean,
): KGen<number> {
  if (areaUsedAfterFree(area, 'iopt_area_fill_domains')) return -Errno.EINVAL;
  if (domains.length === 0) return 0;
  yield* pages.mutex.lock();
  const n = area.pagesLast - area.pagesStart + 1;
  const pfns = new Float64Array(n);
  const fresh = new Uint8Array(n);
  let rc = yield* readPfns(pages, area.pagesStart, n, pfns, fresh);
  if (rc === 0) {
    let d = 0;
    for (; d < domains.length; d++) {
      rc = mapIntoDomain(area, domains[d], area.pagesStart, pfns, small);
      if (rc < 0) break;
    }
    if (rc === 0) rc = yield* updatePinned(pages);
    if (rc < 0) {
      for (let k = 0; k < d; k++) iommuUnmap(domains[k], area.iova, area.length);
      unpinFresh(pages, pfns, fresh, n);
    }
  }
  if (rc === 0) {
    area.storageDomain = domains[0];
    area.pagesNode = pages.domainsItree.insert(area.pagesStart, area.pagesLast, area);
  }
  yield* pages.mutex.unlock();
  return rc;
}

/**
 * Models iopt_area_fill_domain(): maps an existing area into a newly added domain, reading the
 * PFNs from the xarray, the storage domain or the origin. Caller holds domains_rwsem write.
 */
export function* areaFillDomain(area: IoptArea, domain: IommuDomain, small: boolean): KGen<number> {
  if (areaUsedAfterFree(area, 'iopt_area_fill_domain')) return -Errno.EINVAL;
  const pages = area.pages!;
  yield* pages.mutex.lock();
  const n = area.pagesLast - area.pagesStart + 1;
  const pfns = new Float64Array(n);
  const fresh = new Uint8Array(n);
  let rc = yield* readPfns(pages, area.pagesStart, n, pfns, fresh);
  if (rc === 0) {
    rc = mapIntoDomain(area, domain, area.pagesStart, pfns, small);
    if (rc === 0) {
      rc = yield* updatePinned(pages);
      // Accounting failed after the map went in: take it out again before unpinning.
      if (rc < 0) iommuUnmap(domain, area.iova, area.length);
    }
    if (rc < 0) {
      unpinFresh(pages, pfns, fresh, n);
    } else if (area.storageDomain === null) {
      area.storageDomain = domain;
      area.pagesNode = pages.domainsItree.insert(area.pagesStart, area.pagesLast, area);
    }
  }
  yield* pages.mutex.unlock();
  return rc;
}

/**
 * Models iopt_area_unfill_domain() for the storage domain going away: unmaps the area and
 * unpins every index nothing else covers. Must not unpin anything still mapped: the unmap is
 * done first. Caller holds pages.mutex.
 */
function* unfillStorage(area: IoptArea, pages: IoptPages, domain: IommuDomain): KGen {
  const pfns = areaPfnsFromDomain(area, domain);
  iommuUnmap(domain, area.iova, area.length);
  if (area.pagesNode !== null) {
    pages.domainsItree.remove(area.pagesNode);
    area.pagesNode = null;
  }
  area.storageDomain = null;
  // The PFNs to unpin are compacted to the front of pfns (never ahead of the read position).
  let ndrop = 0;
  // With no access and no other storage area left, no index is covered: skip the lookups.
  const anyCover = pages.accessItree.size !== 0 || pages.domainsItree.size !== 0;
  for (let idx = area.pagesStart; idx <= area.pagesLast; idx++) {
    if (anyCover && covered(pages, idx)) continue;
    const pfn = pfns[idx - area.pagesStart];
    if (pfn < 0)
      throw new Error(`iommufd: unfilling an index the domain did not map (pages ${pages.id} idx ${idx})`);
    pfns[ndrop++] = pfn;
  }
  if (ndrop > 0) {
    unpinPages(pages.sys, pfns, ndrop, pages.writable);
    pages.npinned -= ndrop;
  }
  yield* updateUnpinned(pages);
}

/**
 * Models iopt_area_unfill_domains(): an area is being destroyed; unmap it from every domain
 * and unpin through the storage domain. Caller holds domains_rwsem for read.
 */
export function* areaUnfillDomains(area: IoptArea, pages: IoptPages, domains: readonly IommuDomain[]): KGen {
  if (areaUsedAfterFree(area, 'iopt_area_unfill_domains')) return;
  if (domains.length === 0 || area.storageDomain === null) return;
  yield* pages.mutex.lock();
  for (const d of domains) if (d !== area.storageDomain) iommuUnmap(d, area.iova, area.length);
  yield* unfillStorage(area, pages, area.storageDomain);
  yield* pages.mutex.unlock();
}

/**
 * Models iopt_area_unfill_domain() on domain removal: if other domains remain the area just
 * switches its storage domain and `domain` is unmapped; otherwise the PFNs are unpinned.
 */
export function* areaUnfillDomain(
  area: IoptArea,
  domain: IommuDomain,
  remaining: readonly IommuDomain[],
): KGen {
  if (areaUsedAfterFree(area, 'iopt_area_unfill_domain')) return;
  const pages = area.pages!;
  yield* pages.mutex.lock();
  if (remaining.length > 0) {
    if (area.storageDomain === domain) area.storageDomain = remaining[0];
    iommuUnmap(domain, area.iova, area.length);
  } else {
    yield* unfillStorage(area, pages, domain);
  }
  yield* pages.mutex.unlock();
}

function findExactAccess(pages: IoptPages, first: number, last: number): IoptPagesAccess | null {
  for (const n of pages.accessItree.overlapping(first, last)) {
    if (n.start === first && n.last === last) return n.value;
  }
  return null;
}

/**
 * Models iopt_area_add_access(): pins [first, last] into pinned_pfns under an access interval
 * lock and returns the PFNs in out. 0 or -errno.
 */
export function* areaAddAccess(
  area: IoptArea,
  first: number,
  last: number,
  out: number[],
  lockArea = false,
): KGen<number> {
  if (areaUsedAfterFree(area, 'iopt_area_add_access')) return -Errno.EINVAL;
  const pages = area.pages!;
  yield* pages.mutex.lock();
  let rc = 0;
  if (area.preventAccess) rc = -Errno.EINVAL;
  else {
    const exact = findExactAccess(pages, first, last);
    if (exact !== null) {
      exact.users++;
      for (let i = first; i <= last; i++) out.push(pages.pinnedPfns.get(i)!);
    } else if (pages.sys.inject.shouldFail('iommufd_access_alloc')) {
      rc = -Errno.ENOMEM;
    } else {
      rc = yield* fillXarray(pages, first, last, out);
      if (rc === 0) {
        const acc: IoptPagesAccess = { node: null, users: 1 };
        acc.node = pages.accessItree.insert(first, last, acc);
      }
    }
    if (rc === 0) {
      area.numAccesses++;
      // An internal access (a HW queue's) locks the area against unmap.
      if (lockArea) area.numLocks++;
    }
  }
  yield* pages.mutex.unlock();
  return rc;
}

/** Models iopt_pages_fill_xarray(): makes every index of [first, last] present in pinned_pfns. */
function* fillXarray(pages: IoptPages, first: number, last: number, out: number[]): KGen<number> {
  const n = last - first + 1;
  const pfns = new Float64Array(n);
  const fresh = new Uint8Array(n);
  let rc = yield* readPfns(pages, first, n, pfns, fresh);
  if (rc < 0) return rc;
  const added: number[] = [];
  for (let i = 0; i < n; i++) {
    if (pages.pinnedPfns.has(first + i)) continue;
    if (i === Math.floor(n / 2) && pages.sys.inject.shouldFail('iommufd_pages_to_xarray')) {
      rc = -Errno.EINVAL;
      break;
    }
    pages.pinnedPfns.set(first + i, pfns[i]);
    added.push(first + i);
  }
  if (rc === 0) rc = yield* updatePinned(pages);
  if (rc < 0) {
    for (const idx of added) pages.pinnedPfns.delete(idx);
    unpinFresh(pages, pfns, fresh, n);
    return rc;
  }
  for (let i = 0; i < n; i++) out.push(pfns[i]);
  return 0;
}

/**
 * Models iopt_area_remove_access(): drops one user of the exact [first, last] access; the last
 * user erases the xarray entries nothing else needs and unpins what no domain holds.
 */
export function* areaRemoveAccess(
  area: IoptArea,
  first: number,
  last: number,
  unlockArea = false,
): KGen<boolean> {
  if (areaUsedAfterFree(area, 'iopt_area_remove_access')) return false;
  const pages = area.pages!;
  yield* pages.mutex.lock();
  const acc = findExactAccess(pages, first, last);
  if (acc === null) {
    yield* pages.mutex.unlock();
    return false;
  }
  area.numAccesses--;
  if (unlockArea) area.numLocks--;
  if (--acc.users === 0) {
    pages.accessItree.remove(acc.node!);
    acc.node = null;
    const drop: number[] = [];
    for (let idx = first; idx <= last; idx++) {
      if (pages.accessItree.firstOverlap(idx, idx) !== null) continue;
      const pfn = pages.pinnedPfns.get(idx);
      pages.pinnedPfns.delete(idx);
      if (pages.domainsItree.firstOverlap(idx, idx) !== null) continue;
      if (pfn !== undefined) drop.push(pfn);
    }
    if (drop.length > 0) {
      unpinPages(pages.sys, drop, drop.length, pages.writable);
      pages.npinned -= drop.length;
    }
    yield* updateUnpinned(pages);
  }
  yield* pages.mutex.unlock();
  return true;
}

/** IOMMUFD_ACCESS_RW_* flags. */
export const IOMMUFD_ACCESS_RW_READ = 0;
export const IOMMUFD_ACCESS_RW_WRITE = 1 << 0;
export const IOMMUFD_ACCESS_RW_KTHREAD = 1 << 1;
export const IOMMUFD_ACCESS_RW_SLOW_PATH = 1 << 2;

/**
 * Models iopt_pages_rw_access(): copies between `data` and the pages at byte offset
 * `startByte`. Same-mm callers use the fast user-copy path; others (and FILE pages, and the
 * test-only SLOW_PATH flag) read PFNs through the pfn reader like a device would.
 */
export function* pagesRwAccess(
  pages: IoptPages,
  startByte: number,
  data: Uint8Array,
  flags: number,
  currentMm: MmStruct | null,
): KGen<number> {
  const write = (flags & IOMMUFD_ACCESS_RW_WRITE) !== 0;
  const sys = pages.sys;
  if (usedAfterFree(sys, pages, 'iopt_pages_rw_access')) return -Errno.EINVAL;
  if (write && !pages.writable) return -Errno.EPERM;
  if (pages.type === 'user' && (flags & IOMMUFD_ACCESS_RW_SLOW_PATH) === 0 && currentMm === pages.sourceMm) {
    const rc = yield* accessRemote(sys, pages.sourceMm, pages.base + startByte, data, write);
    if (rc !== data.length) return -Errno.EFAULT;
    return 0;
  }
  if (sys.inject.shouldFail('iommufd_rw_page')) return -Errno.EINVAL;
  const first = Math.floor(startByte / PAGE_SIZE);
  const last = Math.floor((startByte + data.length - 1) / PAGE_SIZE);
  const n = last - first + 1;
  yield* pages.mutex.lock();
  const pfns = new Float64Array(n);
  const fresh = new Uint8Array(n);
  const rc = yield* readPfns(pages, first, n, pfns, fresh);
  if (rc === 0) {
    let done = 0;
    for (let i = 0; i < n; i++) {
      const off = i === 0 ? startByte % PAGE_SIZE : 0;
      const len = Math.min(PAGE_SIZE - off, data.length - done);
      if (write) sys.phys.write(pfns[i], off, data, done, len);
      else sys.phys.read(pfns[i], off, data, done, len);
      done += len;
    }
    unpinFresh(pages, pfns, fresh, n);
  }
  yield* pages.mutex.unlock();
  return rc;
}

/** Models iopt_put_pages() / iopt_release_pages(). */
export function putPages(pages: IoptPages): void {
  if (usedAfterFree(pages.sys, pages, 'iopt_put_pages')) return;
  if (--pages.kref > 0) return;
  markFreed(pages.sys, pages, `iopt_pages ${pages.id}`, 'iopt_release_pages');
  if (pages.npinned !== 0 || pages.pinnedPfns.size !== 0 || pages.accessItree.first() !== null) {
    pages.sys.sched.report({
      oracle: 'iommufd',
      message: `iopt_pages ${pages.id} released with npinned=${pages.npinned} xarray=${pages.pinnedPfns.size}`,
    });
  }
  if (pages.file !== null) {
    dropRef(pages.sys, pages.file);
    // The last reference to a memfd closed before the mapping went away frees its pages here.
    fput(pages.sys, pages.file);
  }
}
