/**
 * Models drivers/iommu/iommufd/io_pagetable.c: struct io_pagetable, the IOVA space of an IOAS.
 * It owns the areas (area_itree), the allowed and reserved ranges, the attached iommu_domains
 * and the IOVA alignment they and the accesses impose.
 *
 * Lock order (as documented in the kernel): domains_rwsem, then iova_rwsem, then pages.mutex.
 *
 * IOVAs are doubles kept as lib/u64.ts describes: starts and exclusive ends aligned to 2 KiB are
 * exact anywhere in the 64-bit space, and a range's last byte is kept as the largest double not
 * above it, so every overlap test against exact bounds is exact; `endOf(last)` gives the end back
 * and lengths are `end - start`. Overflow checks are done on bigints. ULONG_MAX, the double 2^64,
 * serves as the bound of the whole space.
 */
import { IntervalTree, type IntervalNode } from '../../lib/interval_tree.ts';
import { PAGE_SIZE, PMD_SIZE, ULONG_MAX } from '../../lib/units.ts';
import { endOf, lastOf, rangeOverflows, U64_END } from '../../lib/u64.ts';
import { RwSem } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { EDEADLOCK, Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { minPgsize, type IommuDomain } from './iommu.ts';
import {
  areaFillDomain,
  areaFillDomains,
  areaUnfillDomain,
  areaUnfillDomains,
  IoptArea,
  type IoptPages,
  putPages,
} from './pages.ts';
import { IOMMU_WRITE } from './uapi.ts';
import { markFreed } from '../uaf.ts';

/** Unmap retries before -EDEADLOCK when accesses do not let go (iopt_unmap_iova_range). */
export const UNMAP_MAX_TRIES = 100;

/** Who owns a reserved range: a domain (its aperture), a device, or null (test ADD_RESERVED). */
export type ReservedOwner = object | null;

export interface IoptReserved {
  readonly owner: ReservedOwner;
}

/** One element of an iopt_pages_list: which pages, from which byte, how long. */
export interface PagesListElem {
  pages: IoptPages;
  startByte: number;
  length: number;
  area?: IoptArea;
}

/** What accesses attached to this IOAS need from the table (device.ts provides it). */
export interface IoptAccessRef {
  readonly iovaAlignment: number;
}

/** Models struct io_pagetable. */
export class IoPagetable {
  readonly domainsRwsem: RwSem;
  readonly iovaRwsem: RwSem;
  readonly areaItree = new IntervalTree<IoptArea>();
  readonly allowedItree = new IntervalTree<null>();
  readonly reservedItree = new IntervalTree<IoptReserved>();
  /** Kept dense: removal moves the last domain into the hole, so domains[0] is always a storage candidate. */
  readonly domains: IommuDomain[] = [];
  readonly accessList = new Map<number, IoptAccessRef>();
  nextAccessId = 1;
  disableLargePages = false;
  iovaAlignment = 1;
  /** iommufd_access_notify_unmap(), installed by the IOAS owner. */
  notifyUnmap: (iova: number, length: number) => KGen = function* () {};

  constructor(
    readonly sys: System,
    readonly id: number,
  ) {
    this.domainsRwsem = new RwSem(sys.sched, `iopt[${id}].domains_rwsem`, 'iopt.domains_rwsem');
    this.iovaRwsem = new RwSem(sys.sched, `iopt[${id}].iova_rwsem`, 'iopt.iova_rwsem');
  }

  /** Areas overlapping [start, last], in IOVA order. */
  areas(start = 0, last = ULONG_MAX): IoptArea[] {
    const out: IoptArea[] = [];
    for (const n of this.areaItree.overlapping(start, last)) out.push(n.value);
    return out;
  }
}

function roundupPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** 1 << __ffs(addr): the largest power of two dividing addr. */
function lowestBit(addr: number): number {
  let p = 1;
  while (addr % (p * 2) === 0 && p < 2 ** 52) p *= 2;
  return p;
}

/** Holes of the union of `trees` inside [lo, hi], in order. */
function holes(trees: IntervalTree<unknown>[], lo: number, hi: number): [number, number][] {
  const used: [number, number][] = [];
  for (const t of trees) for (const n of t.overlapping(lo, hi)) used.push([n.start, n.last]);
  used.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  let cur = lo;
  for (const [s, l] of used) {
    if (s > cur) out.push([cur, lastOf(s)]);
    if (endOf(l) > cur) cur = endOf(l);
    if (cur > hi) return out;
  }
  if (cur <= hi) out.push([cur, hi]);
  return out;
}

/** Models iopt_alloc_iova(): first fit, never IOVA 0. Returns the IOVA or -errno. Caller holds iova_rwsem W. */
export function allocIova(iopt: IoPagetable, addr: number, length: number): number {
  if (length === 0 || length >= ULONG_MAX / 2) return -Errno.EOVERFLOW;
  const pageOffset = addr % PAGE_SIZE;
  let align = addr === 0 ? roundupPow2(length) : Math.min(roundupPow2(length), lowestBit(addr));
  // Larger alignment than a huge page buys nothing; keep THP-sized alignment at most.
  align = Math.min(align, PMD_SIZE);
  if (align < iopt.iovaAlignment) return -Errno.EINVAL;
  const lo = PAGE_SIZE;
  const hi = lastOf(U64_END - PAGE_SIZE);
  const spans: [number, number][] = [];
  if (iopt.allowedItree.first() === null) spans.push([lo, hi]);
  else
    for (const n of iopt.allowedItree.overlapping(lo, hi))
      spans.push([Math.max(n.start, lo), Math.min(n.last, hi)]);
  for (const [ss, sl] of spans) {
    for (const [hs, hl] of holes([iopt.reservedItree, iopt.areaItree] as IntervalTree<unknown>[], ss, sl)) {
      let cand = Math.ceil(hs / align) * align;
      cand += pageOffset;
      if (cand < hs) cand += align;
      if (cand >= hl || rangeOverflows(cand, length) || lastOf(cand + length) > hl) continue;
      return cand;
    }
  }
  return -Errno.ENOSPC;
}

/** Models iopt_check_iova() for FIXED_IOVA maps. Caller holds iova_rwsem. */
export function checkIova(iopt: IoPagetable, iova: number, length: number): number {
  if (iova % iopt.iovaAlignment !== 0) return -Errno.EINVAL;
  if (rangeOverflows(iova, length)) return -Errno.EOVERFLOW;
  const last = lastOf(iova + length);
  if (iopt.reservedItree.firstOverlap(iova, last) !== null) return -Errno.EINVAL;
  if (iopt.areaItree.firstOverlap(iova, last) !== null) return -Errno.EEXIST;
  return 0;
}

/** Models iopt_insert_area(). */
function insertArea(
  iopt: IoPagetable,
  area: IoptArea,
  pages: IoptPages,
  iova: number,
  startByte: number,
  length: number,
): number {
  if ((area.iommuProt & IOMMU_WRITE) !== 0 && !pages.writable) return -Errno.EPERM;
  if ((startByte % PAGE_SIZE) % iopt.iovaAlignment !== 0) return -Errno.EINVAL;
  area.iova = iova;
  area.last = lastOf(iova + length);
  area.node = iopt.areaItree.insert(area.iova, area.last, area);
  return 0;
}

function newArea(iopt: IoPagetable, elm: PagesListElem, prot: number): IoptArea | null {
  if (iopt.sys.inject.shouldFail('iopt_area_alloc')) return null;
  const first = Math.floor(elm.startByte / PAGE_SIZE);
  const last = Math.floor((elm.startByte + elm.length - 1) / PAGE_SIZE);
  const area = new IoptArea(first, last, elm.startByte % PAGE_SIZE, prot);
  area.sys = iopt.sys;
  return area;
}

/** Models iopt_abort_area(): unlinks an area that never got (or lost) its pages. */
function* abortArea(iopt: IoPagetable, area: IoptArea): KGen {
  if (area.node !== null) {
    yield* iopt.iovaRwsem.downWrite();
    iopt.areaItree.remove(area.node);
    area.node = null;
    yield* iopt.iovaRwsem.upWrite();
  }
  markFreed(iopt.sys, area, areaName(area), 'iopt_abort_area');
}

/** How a use-after-free report names an area. */
function areaName(area: IoptArea): string {
  return `iopt_area [0x${area.iova.toString(16)}, 0x${area.last.toString(16)}]`;
}

/**
 * Models iopt_map_pages(): creates one area per list element at consecutive IOVAs starting at
 * `iova` (or an allocated one), fills every domain, then publishes area.pages. Takes one kref
 * on each element's pages for its area. Returns the IOVA or -errno.
 */
export function* mapPages(
  iopt: IoPagetable,
  list: PagesListElem[],
  iovaIn: number,
  fixed: boolean,
  prot: number,
): KGen<number> {
  let length = 0;
  for (const e of list) length += e.length;
  for (const e of list) {
    const a = newArea(iopt, e, prot);
    if (a === null) return -Errno.ENOMEM;
    e.area = a;
  }
  yield* iopt.iovaRwsem.downWrite();
  let rc = 0;
  let iova = iovaIn;
  if (length === 0 || length % iopt.iovaAlignment !== 0) rc = -Errno.EINVAL;
  else if (!fixed) {
    const addr =
      list[0].pages.type === 'user'
        ? list[0].pages.base + list[0].startByte
        : list[0].pages.base + list[0].startByte;
    rc = allocIova(iopt, addr, length);
    if (rc >= 0) {
      iova = rc;
      rc = 0;
    }
  } else rc = checkIova(iopt, iova, length);
  if (rc === 0) {
    let cur = iova;
    for (const e of list) {
      rc = insertArea(iopt, e.area!, e.pages, cur, e.startByte, e.length);
      if (rc < 0) break;
      cur += e.length;
    }
  }
  yield* iopt.iovaRwsem.upWrite();
  if (rc < 0) {
    for (const e of list) yield* abortArea(iopt, e.area!);
    return rc;
  }

  yield* iopt.domainsRwsem.downRead();
  let filled = 0;
  for (const e of list) {
    rc = yield* areaFillDomains(e.area!, e.pages, iopt.domains, iopt.disableLargePages);
    if (rc < 0) break;
    filled++;
  }
  if (rc < 0) {
    for (let i = 0; i < filled; i++) yield* areaUnfillDomains(list[i].area!, list[i].pages, iopt.domains);
    yield* iopt.domainsRwsem.upRead();
    for (const e of list) yield* abortArea(iopt, e.area!);
    return rc;
  }
  // area.pages is set inside domains_rwsem so any domain added later sees and fills it.
  yield* iopt.iovaRwsem.downWrite();
  for (const e of list) {
    e.pages.kref++;
    e.area!.pages = e.pages;
  }
  yield* iopt.iovaRwsem.upWrite();
  yield* iopt.domainsRwsem.upRead();
  return iova;
}

/**
 * Models iopt_get_pages(): the list of (pages, start byte, length) that covers
 * [iova, iova+length-1] through contiguous areas; -ENOENT if anything is missing.
 */
export function* getPages(iopt: IoPagetable, iova: number, length: number): KGen<PagesListElem[] | number> {
  if (length === 0) return -Errno.EINVAL;
  if (rangeOverflows(iova, length)) return -Errno.EOVERFLOW;
  const last = lastOf(iova + length);
  yield* iopt.iovaRwsem.downRead();
  const out: PagesListElem[] = [];
  let cur = iova;
  let ok = false;
  for (const area of iopt.areas(iova, last)) {
    if (area.iova > cur || area.pages === null) break;
    const end = Math.min(last, area.last);
    out.push({ pages: area.pages, startByte: area.startByte(cur), length: endOf(end) - cur });
    area.pages.kref++;
    if (end === last) {
      ok = true;
      break;
    }
    cur = endOf(end);
  }
  yield* iopt.iovaRwsem.upRead();
  if (!ok) {
    for (const e of out) putPages(e.pages);
    return -Errno.ENOENT;
  }
  return out;
}

/**
 * Models iopt_unmap_iova_range(): removes every area fully inside [start, last]; never splits.
 * Accesses on an area are told to let go (with no iopt lock held) and the unmap retries.
 * Returns { rc, unmapped } with the bytes removed even when it fails part way.
 */
export function* unmapIovaRange(
  iopt: IoPagetable,
  start: number,
  last: number,
): KGen<{ rc: number; unmapped: number }> {
  let unmapped = 0;
  let tries = 0;
  let lastArea: IoptArea | null = null;
  let rc = 0;
  yield* iopt.domainsRwsem.downRead();
  yield* iopt.iovaRwsem.downWrite();
  for (;;) {
    const n: IntervalNode<IoptArea> | null = iopt.areaItree.firstOverlap(start, last);
    if (n === null) break;
    const area = n.value;
    if (area.pages === null) {
      rc = -Errno.EBUSY;
      break;
    }
    // The area is locked by an object that has not been destroyed (a HW queue).
    if (area.numLocks > 0) {
      rc = -Errno.EBUSY;
      break;
    }
    if (area.iova < start || area.last > last) {
      rc = -Errno.ENOENT;
      break;
    }
    if (area !== lastArea) {
      tries = 0;
      lastArea = area;
    }
    if (area.numAccesses > 0) {
      area.preventAccess = true;
      const aIova = area.iova;
      const aLen = area.length;
      yield* iopt.iovaRwsem.upWrite();
      yield* iopt.domainsRwsem.upRead();
      yield* iopt.notifyUnmap(aIova, aLen);
      if (++tries >= UNMAP_MAX_TRIES) {
        iopt.sys.sched.report({
          oracle: 'iommufd',
          message: `unmap of [${aIova}, +${aLen}) stuck on accesses`,
        });
        area.preventAccess = false;
        return { rc: -EDEADLOCK, unmapped };
      }
      yield* iopt.domainsRwsem.downRead();
      yield* iopt.iovaRwsem.downWrite();
      continue;
    }
    const pages = area.pages;
    area.pages = null;
    yield* iopt.iovaRwsem.upWrite();
    yield* areaUnfillDomains(area, pages, iopt.domains);
    yield* abortArea(iopt, area);
    putPages(pages);
    unmapped += area.length;
    yield* iopt.iovaRwsem.downWrite();
  }
  yield* iopt.iovaRwsem.upWrite();
  yield* iopt.domainsRwsem.upRead();
  return { rc, unmapped };
}

/** Models iopt_unmap_all(). */
export function* unmapAll(iopt: IoPagetable): KGen<{ rc: number; unmapped: number }> {
  return yield* unmapIovaRange(iopt, 0, ULONG_MAX);
}

/** Models iopt_reserve_iova(). Caller holds iova_rwsem W. */
export function reserveIova(iopt: IoPagetable, start: number, last: number, owner: ReservedOwner): number {
  if (iopt.areaItree.firstOverlap(start, last) !== null) return -Errno.EADDRINUSE;
  if (iopt.allowedItree.firstOverlap(start, last) !== null) return -Errno.EADDRINUSE;
  if (iopt.sys.inject.shouldFail('iopt_reserved_alloc')) return -Errno.ENOMEM;
  iopt.reservedItree.insert(start, last, { owner });
  return 0;
}

/** Models iopt_remove_reserved_iova(): drops every range `owner` reserved. Caller holds iova_rwsem W. */
export function removeReservedIova(iopt: IoPagetable, owner: ReservedOwner): void {
  for (const n of [...iopt.reservedItree.overlapping(0, ULONG_MAX)]) {
    if (n.value.owner === owner) iopt.reservedItree.remove(n);
  }
}

/** Models iopt_set_allow_iova(): atomically replaces the allowed ranges. */
export function* setAllowIova(iopt: IoPagetable, ranges: [number, number][]): KGen<number> {
  yield* iopt.iovaRwsem.downWrite();
  const old: [number, number][] = [];
  for (const n of iopt.allowedItree.overlapping(0, ULONG_MAX)) old.push([n.start, n.last]);
  iopt.allowedItree.clear();
  let rc = 0;
  for (const [s, l] of ranges) {
    if (iopt.reservedItree.firstOverlap(s, l) !== null) {
      rc = -Errno.EADDRINUSE;
      break;
    }
    iopt.allowedItree.insert(s, l, null);
  }
  if (rc < 0) {
    iopt.allowedItree.clear();
    for (const [s, l] of old) iopt.allowedItree.insert(s, l, null);
  }
  yield* iopt.iovaRwsem.upWrite();
  return rc;
}

/** Models iopt_check_iova_alignment(): -EADDRINUSE if any area breaks `align`. */
function checkIovaAlignment(iopt: IoPagetable, align: number): number {
  for (const a of iopt.areas()) {
    if (a.iova % align !== 0 || endOf(a.last) % align !== 0 || a.pageOffset % align !== 0)
      return -Errno.EADDRINUSE;
  }
  return 0;
}

/** Models iopt_calculate_iova_alignment(). */
export function calculateIovaAlignment(iopt: IoPagetable): number {
  let align = iopt.disableLargePages ? PAGE_SIZE : 1;
  for (const d of iopt.domains) align = Math.max(align, minPgsize(d));
  for (const acc of iopt.accessList.values()) align = Math.max(align, acc.iovaAlignment);
  return align;
}

/** Models iopt_table_add_domain(): reserves the aperture complement and fills the domain. */
export function* tableAddDomain(iopt: IoPagetable, domain: IommuDomain): KGen<number> {
  yield* iopt.domainsRwsem.downWrite();
  yield* iopt.iovaRwsem.downWrite();
  const rc = yield* addDomainLocked(iopt, domain);
  yield* iopt.iovaRwsem.upWrite();
  yield* iopt.domainsRwsem.upWrite();
  return rc;
}

function* addDomainLocked(iopt: IoPagetable, domain: IommuDomain): KGen<number> {
  if (iopt.domains.includes(domain)) return -Errno.EEXIST;
  const newAlign = Math.max(minPgsize(domain), iopt.iovaAlignment);
  if (newAlign > PAGE_SIZE) return -Errno.EINVAL;
  if (newAlign !== iopt.iovaAlignment) {
    const rc = checkIovaAlignment(iopt, newAlign);
    if (rc < 0) return rc;
  }
  let rc = 0;
  if (domain.apertureStart > 0) rc = reserveIova(iopt, 0, lastOf(domain.apertureStart), domain);
  if (rc === 0 && domain.apertureEnd < ULONG_MAX)
    rc = reserveIova(iopt, endOf(domain.apertureEnd), ULONG_MAX, domain);
  if (rc === 0 && iopt.sys.inject.shouldFail('iopt_domains_xa_reserve')) rc = -Errno.ENOMEM;
  if (rc < 0) {
    removeReservedIova(iopt, domain);
    return rc;
  }
  const filled: IoptArea[] = [];
  for (const area of iopt.areas()) {
    if (area.pages === null) continue;
    rc = yield* areaFillDomain(area, domain, iopt.disableLargePages);
    if (rc < 0) break;
    filled.push(area);
  }
  if (rc < 0) {
    for (const area of filled) yield* areaUnfillDomain(area, domain, iopt.domains);
    removeReservedIova(iopt, domain);
    return rc;
  }
  iopt.iovaAlignment = newAlign;
  iopt.domains.push(domain);
  return 0;
}

/** Models iopt_table_remove_domain(). */
export function* tableRemoveDomain(iopt: IoPagetable, domain: IommuDomain): KGen {
  yield* iopt.domainsRwsem.downWrite();
  yield* iopt.iovaRwsem.downWrite();
  const i = iopt.domains.indexOf(domain);
  if (i >= 0) {
    const lastD = iopt.domains.pop()!;
    if (lastD !== domain) iopt.domains[i] = lastD;
    for (const area of iopt.areas()) {
      if (area.pages === null) continue;
      yield* areaUnfillDomain(area, domain, iopt.domains);
    }
    removeReservedIova(iopt, domain);
    iopt.iovaAlignment = calculateIovaAlignment(iopt);
  }
  yield* iopt.iovaRwsem.upWrite();
  yield* iopt.domainsRwsem.upWrite();
}

/** Models iopt_add_access(): registers an access and raises the alignment it needs. */
export function* addAccess(iopt: IoPagetable, access: IoptAccessRef): KGen<number> {
  yield* iopt.domainsRwsem.downWrite();
  yield* iopt.iovaRwsem.downWrite();
  let rc = 0;
  if (iopt.sys.inject.shouldFail('iopt_access_list_alloc')) rc = -Errno.ENOMEM;
  else {
    const align = Math.max(iopt.iovaAlignment, access.iovaAlignment);
    if (align !== iopt.iovaAlignment) rc = checkIovaAlignment(iopt, align);
    if (rc === 0) {
      const id = iopt.nextAccessId++;
      iopt.accessList.set(id, access);
      iopt.iovaAlignment = align;
      rc = id;
    }
  }
  yield* iopt.iovaRwsem.upWrite();
  yield* iopt.domainsRwsem.upWrite();
  return rc;
}

/** Models iopt_remove_access(). */
export function* removeAccess(iopt: IoPagetable, id: number): KGen {
  yield* iopt.domainsRwsem.downWrite();
  yield* iopt.iovaRwsem.downWrite();
  iopt.accessList.delete(id);
  iopt.iovaAlignment = calculateIovaAlignment(iopt);
  yield* iopt.iovaRwsem.upWrite();
  yield* iopt.domainsRwsem.upWrite();
}

/** Models iopt_disable_large_pages(). */
export function* disableLargePages(iopt: IoPagetable): KGen<number> {
  yield* iopt.domainsRwsem.downWrite();
  yield* iopt.iovaRwsem.downWrite();
  let rc = 0;
  if (!iopt.disableLargePages) {
    if (iopt.domains.length > 0 && iopt.areaItree.first() !== null) rc = -Errno.EINVAL;
    else {
      iopt.disableLargePages = true;
      const align = calculateIovaAlignment(iopt);
      rc = checkIovaAlignment(iopt, align);
      if (rc < 0) iopt.disableLargePages = false;
      else iopt.iovaAlignment = align;
    }
  }
  yield* iopt.iovaRwsem.upWrite();
  yield* iopt.domainsRwsem.upWrite();
  return rc;
}

/** Models iopt_enable_large_pages(). */
export function* enableLargePages(iopt: IoPagetable): KGen<number> {
  yield* iopt.domainsRwsem.downWrite();
  yield* iopt.iovaRwsem.downWrite();
  iopt.disableLargePages = false;
  iopt.iovaAlignment = calculateIovaAlignment(iopt);
  yield* iopt.iovaRwsem.upWrite();
  yield* iopt.domainsRwsem.upWrite();
  return 0;
}

/**
 * Models iopt_area_split(): `iova` becomes the last byte of the left part. Both halves share
 * the pages (one more kref) and nothing is re-pinned. Caller holds iova_rwsem W.
 */
function areaSplit(iopt: IoPagetable, area: IoptArea, iova: number): number {
  if (iova === area.last) return 0;
  const pages = area.pages;
  if (pages === null || area.preventAccess) return -Errno.EBUSY;
  const newStart = endOf(iova);
  if (newStart % iopt.iovaAlignment !== 0) return -Errno.EINVAL;
  const startByte = area.startByte(newStart);
  if ((startByte % PAGE_SIZE) % iopt.iovaAlignment !== 0) return -Errno.EINVAL;
  if (area.numAccesses > 0) return -Errno.EINVAL;
  if (area.storageDomain !== null && !iopt.disableLargePages) return -Errno.EINVAL;
  const leftLastByte = startByte - 1;
  const lhs = new IoptArea(
    area.pagesStart,
    Math.floor(leftLastByte / PAGE_SIZE),
    area.pageOffset,
    area.iommuProt,
  );
  const rhs = new IoptArea(
    Math.floor(startByte / PAGE_SIZE),
    area.pagesLast,
    startByte % PAGE_SIZE,
    area.iommuProt,
  );
  iopt.areaItree.remove(area.node!);
  area.node = null;
  lhs.iova = area.iova;
  lhs.last = iova;
  rhs.iova = newStart;
  rhs.last = area.last;
  lhs.node = iopt.areaItree.insert(lhs.iova, lhs.last, lhs);
  rhs.node = iopt.areaItree.insert(rhs.iova, rhs.last, rhs);
  for (const half of [lhs, rhs]) {
    half.sys = iopt.sys;
    half.pages = pages;
    half.storageDomain = area.storageDomain;
    if (area.pagesNode !== null)
      half.pagesNode = pages.domainsItree.insert(half.pagesStart, half.pagesLast, half);
  }
  if (area.pagesNode !== null) {
    pages.domainsItree.remove(area.pagesNode);
    area.pagesNode = null;
  }
  pages.kref++;
  markFreed(iopt.sys, area, areaName(area), 'iopt_area_split');
  return 0;
}

/** Models iopt_cut_iova(): splits the areas containing each IOVA (VFIO type1 cut semantics). */
export function* cutIova(iopt: IoPagetable, iovas: number[]): KGen<number> {
  yield* iopt.iovaRwsem.downWrite();
  let rc = 0;
  for (const iova of iovas) {
    const n = iopt.areaItree.firstOverlap(iova, iova);
    if (n === null) continue;
    rc = areaSplit(iopt, n.value, iova);
    if (rc < 0) break;
  }
  yield* iopt.iovaRwsem.upWrite();
  return rc;
}

/** Models iopt_destroy_table() after unmap-all: anything left is a leak. */
export function destroyTable(iopt: IoPagetable): void {
  removeReservedIova(iopt, null);
  iopt.allowedItree.clear();
  if (iopt.areaItree.first() !== null || iopt.domains.length > 0 || iopt.accessList.size > 0) {
    iopt.sys.sched.report({
      oracle: 'iommufd',
      message: `io_pagetable ${iopt.id} destroyed while not empty`,
    });
  }
}
