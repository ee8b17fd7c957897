/**
 * Models drivers/iommu/iommufd/ioas.c: the IOAS object and the IOMMU_IOAS_* / IOMMU_OPTION
 * ioctls. Values arrive as bigints from the dispatcher so the ULONG_MAX / overflow checks are
 * exact; they become numbers once validated.
 */
import { ceilDouble, endOf, floorDouble, lastOf, lastToU64, U64_END } from '../../lib/u64.ts';
import { PAGE_SIZE, ULONG_MAX } from '../../lib/units.ts';
import { Mutex } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { Process } from '../system.ts';
import {
  destroyTable,
  disableLargePages,
  enableLargePages,
  getPages,
  IoPagetable,
  mapPages,
  setAllowIova,
  unmapAll,
  unmapIovaRange,
  type PagesListElem,
} from './io_pagetable.ts';
import { IommufdObject, registerIoctl, respond, type IommufdCtx, type Ucmd } from './main.ts';
import {
  chargeAccount,
  IOPT_PAGES_ACCOUNT_MM,
  IOPT_PAGES_ACCOUNT_NONE,
  IOPT_PAGES_ACCOUNT_USER,
  IoptPages,
  putPages,
} from './pages.ts';
import {
  IOMMU_CACHE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_READ,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IOMMU_WRITE,
  U64_MAX,
} from './uapi.ts';
import type { HwptPaging } from './hw_pagetable.ts';
import { accessNotifyUnmap } from './device.ts';
import { sideTable } from '../../lib/snapshot.ts';

const ULONG_MAX_BIG = U64_MAX;

/** Models struct iommufd_ioas. */
export class Ioas {
  readonly obj: IommufdObject;
  readonly iopt: IoPagetable;
  readonly mutex: Mutex;
  readonly hwptList: HwptPaging[] = [];
  constructor(readonly ictx: IommufdCtx) {
    this.obj = new IommufdObject('IOAS', ictx, () => this.destroy());
    const n = ictx.sys.nextId('ioas');
    this.iopt = new IoPagetable(ictx.sys, n);
    this.mutex = new Mutex(ictx.sys.sched, `ioas[${n}].mutex`, 'ioas.mutex');
    this.iopt.notifyUnmap = (iova, length) => accessNotifyUnmap(this.iopt, iova, length);
  }

  /** Models iommufd_ioas_destroy(). */
  *destroy(): KGen {
    const r = yield* unmapAll(this.iopt);
    if (r.rc < 0)
      this.ictx.sys.sched.report({ oracle: 'iommufd', message: `ioas destroy: unmap_all ${r.rc}` });
    destroyTable(this.iopt);
  }
}

const ioasObjects = sideTable<IommufdObject, Ioas>();

export function ioasOf(obj: IommufdObject): Ioas {
  return ioasObjects.get(obj)!;
}

/** Models iommufd_get_ioas(). */
export function getIoas(ictx: IommufdCtx, id: number): Ioas | number {
  const obj = ictx.getObject(id, 'IOAS');
  if (typeof obj === 'number') return obj;
  return ioasOf(obj);
}

/** Models iommufd_ioas_alloc(). */
export function ioasAlloc(ictx: IommufdCtx): Ioas | number {
  const ioas = new Ioas(ictx);
  const rc = ictx.objectAlloc(ioas.obj);
  if (rc < 0) return rc;
  ioasObjects.set(ioas.obj, ioas);
  return ioas;
}

function num(v: number | bigint): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

function* ioasAllocIoctl(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  if (cmd.flags !== 0) return -Errno.EOPNOTSUPP;
  const ioas = ioasAlloc(ictx);
  if (typeof ioas === 'number') return ioas;
  cmd.out_ioas_id = ioas.obj.id;
  yield* ictx.ioasCreationLock.downRead();
  ictx.finalize(ioas.obj);
  yield* ictx.ioasCreationLock.upRead();
  return respond(ucmd);
}

/** iova_ranges: the holes of reserved_itree over [0, ULONG_MAX]. */
function* ioasIovaRanges(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd, user } = ucmd;
  if (cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  const ioas = getIoas(ictx, num(cmd.ioas_id));
  if (typeof ioas === 'number') return ioas;
  const iopt = ioas.iopt;
  const max = num(cmd.num_iovas);
  const out = user.allowed_iovas as { start: bigint; last: bigint }[] | undefined;
  yield* iopt.iovaRwsem.downRead();
  const ranges: [number, number][] = [];
  let cur = 0;
  for (const n of iopt.reservedItree.overlapping(0, ULONG_MAX)) {
    if (n.start > cur) ranges.push([cur, lastOf(n.start)]);
    if (endOf(n.last) > cur) cur = endOf(n.last);
  }
  if (cur < U64_END) ranges.push([cur, ULONG_MAX]);
  let rc = 0;
  for (let i = 0; i < ranges.length && i < max; i++) {
    if (!Array.isArray(out)) {
      rc = -Errno.EFAULT;
      break;
    }
    out[i] = { start: toU64(ranges[i][0]), last: lastToU64(ranges[i][1]) };
  }
  cmd.num_iovas = ranges.length;
  cmd.out_iova_alignment = BigInt(iopt.iovaAlignment);
  yield* iopt.iovaRwsem.upRead();
  ictx.putObject(ioas.obj);
  if (rc < 0) return rc;
  respond(ucmd);
  return ranges.length > max ? -Errno.EMSGSIZE : 0;
}

/** A model IOVA that starts a range, as a u64 (exact: starts are kept exact). */
export function toU64(v: number): bigint {
  if (v >= 2 ** 64 - 1) return ULONG_MAX_BIG;
  return BigInt(v);
}

function* ioasAllowIovas(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd, user } = ucmd;
  if (cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  const ioas = getIoas(ictx, num(cmd.ioas_id));
  if (typeof ioas === 'number') return ioas;
  const n = num(cmd.num_iovas);
  const list = user.allowed_iovas as { start: unknown; last: unknown }[] | undefined;
  const ranges: [bigint, bigint][] = [];
  let rc = 0;
  if (n > 0 && !Array.isArray(list)) rc = -Errno.EFAULT;
  for (let i = 0; rc === 0 && i < n; i++) {
    const r = list![i];
    if (r === undefined) {
      rc = -Errno.EFAULT;
      break;
    }
    const s = BigInt(r.start as bigint | number);
    const l = BigInt(r.last as bigint | number);
    if (s >= l) rc = -Errno.EINVAL;
    for (const [os, ol] of ranges) if (s <= ol && os <= l) rc = -Errno.EINVAL;
    ranges.push([s, l]);
  }
  if (rc === 0 && ictx.sys.inject.shouldFail('iopt_allowed_alloc')) rc = -Errno.ENOMEM;
  if (rc === 0)
    rc = yield* setAllowIova(
      ioas.iopt,
      ranges.map(([s, l]) => [ceilDouble(s), floorDouble(l)]),
    );
  ictx.putObject(ioas.obj);
  return rc;
}

function conv(flags: number): number {
  let prot = IOMMU_CACHE;
  if ((flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0) prot |= IOMMU_WRITE;
  if ((flags & IOMMU_IOAS_MAP_READABLE) !== 0) prot |= IOMMU_READ;
  return prot;
}

const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/**
 * What an ioctl that records or charges current->mm returns when the calling process has exited.
 * In the kernel an ioctl always runs in a live task, so iopt_alloc_pages() and
 * iommufd_ioas_change_process() never see a NULL mm; the model lets a descriptor be used in the
 * name of its exited opener, whose mm is gone (mm_users 0). Every use of such an mm fails as
 * pfn_reader_user_pin() fails when mmget_not_zero() does: -EFAULT, as a copy from the user
 * memory of an exited caller does elsewhere here.
 */
const GONE_MM = -Errno.EFAULT;

/** Models iopt_alloc_pages() for a user VA: -errno or the new pages (kref 1). */
function allocUserPages(
  ictx: IommufdCtx,
  proc: Process,
  uptr: bigint,
  length: bigint,
  writable: boolean,
): IoptPages | number {
  if (length === 0n || length > ULONG_MAX_BIG - BigInt(PAGE_SIZE)) return -Errno.EINVAL;
  if (uptr + length > ULONG_MAX_BIG) return -Errno.EOVERFLOW;
  if (ictx.sys.inject.shouldFail('iopt_pages_alloc')) return -Errno.ENOMEM;
  const mm = proc.mm;
  if (mm === null) return GONE_MM;
  const u = Number(uptr);
  const len = Number(length);
  const base = u - (u % PAGE_SIZE);
  const npages = Math.ceil((len + (u - base)) / PAGE_SIZE);
  const pages = new IoptPages(ictx.sys, npages, 'user', base, null, writable, proc, mm, proc.user);
  return pages;
}

function upgradeAccount(ictx: IommufdCtx, pages: IoptPages): void {
  if (ictx.accountMode === IOPT_PAGES_ACCOUNT_MM && pages.accountMode === IOPT_PAGES_ACCOUNT_USER) {
    pages.accountMode = IOPT_PAGES_ACCOUNT_MM;
  }
}

/** Models iopt_map_user_pages() / iopt_map_common(): the IOVA or -errno. */
export function* mapUserPages(
  ictx: IommufdCtx,
  ioas: Ioas,
  iova: number,
  uptr: bigint,
  length: bigint,
  prot: number,
  fixed: boolean,
): KGen<number> {
  const pages = allocUserPages(ictx, ictx.current, uptr, length, (prot & IOMMU_WRITE) !== 0);
  if (typeof pages === 'number') return pages;
  upgradeAccount(ictx, pages);
  const elm: PagesListElem = { pages, startByte: Number(uptr) - pages.base, length: Number(length) };
  const rc = yield* mapPages(ioas.iopt, [elm], iova, fixed, prot);
  putPages(pages);
  return rc;
}

function* ioasMap(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const flags = num(cmd.flags);
  if ((flags & ~MAP_FLAGS) !== 0 || cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  const iova = cmd.iova as bigint;
  const length = cmd.length as bigint;
  if (iova >= ULONG_MAX_BIG || length >= ULONG_MAX_BIG) return -Errno.EOVERFLOW;
  if ((flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) return -Errno.EINVAL;
  const ioas = getIoas(ictx, num(cmd.ioas_id));
  if (typeof ioas === 'number') return ioas;
  const fixed = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  const rc = yield* mapUserPages(ictx, ioas, Number(iova), cmd.user_va as bigint, length, conv(flags), fixed);
  ictx.putObject(ioas.obj);
  if (rc < 0) return rc;
  cmd.iova = BigInt(rc);
  return respond(ucmd);
}

function* ioasMapFile(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const flags = num(cmd.flags);
  if ((flags & ~MAP_FLAGS) !== 0) return -Errno.EOPNOTSUPP;
  const iova = cmd.iova as bigint;
  const length = cmd.length as bigint;
  const start = cmd.start as bigint;
  if (iova >= ULONG_MAX_BIG || length >= ULONG_MAX_BIG) return -Errno.EOVERFLOW;
  if ((flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) return -Errno.EINVAL;
  const ioas = getIoas(ictx, num(cmd.ioas_id));
  if (typeof ioas === 'number') return ioas;
  let rc: number;
  const file = ictx.sys.fileOf(num(cmd.fd));
  const mm = ictx.current.mm;
  if (file === null) rc = -Errno.EBADF;
  else if (length === 0n || length > ULONG_MAX_BIG - BigInt(PAGE_SIZE)) rc = -Errno.EINVAL;
  else if (start + length - 1n > ULONG_MAX_BIG) rc = -Errno.EOVERFLOW;
  else if (ictx.sys.inject.shouldFail('iopt_pages_alloc')) rc = -Errno.ENOMEM;
  else if (mm === null) rc = GONE_MM;
  else {
    const s = Number(start);
    const len = Number(length);
    const base = s - (s % PAGE_SIZE);
    const npages = Math.ceil((len + (s - base)) / PAGE_SIZE);
    const proc = ictx.current;
    const pages = new IoptPages(
      ictx.sys,
      npages,
      'file',
      base,
      file,
      (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0,
      proc,
      mm,
      proc.user,
    );
    upgradeAccount(ictx, pages);
    rc = yield* mapPages(
      ioas.iopt,
      [{ pages, startByte: s - base, length: len }],
      Number(iova),
      (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0,
      conv(flags),
    );
    putPages(pages);
  }
  ictx.putObject(ioas.obj);
  if (rc < 0) return rc;
  cmd.iova = BigInt(rc);
  return respond(ucmd);
}

function* ioasCopy(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const flags = num(cmd.flags);
  if ((flags & ~MAP_FLAGS) !== 0) return -Errno.EOPNOTSUPP;
  const length = cmd.length as bigint;
  const dstIova = cmd.dst_iova as bigint;
  const srcIova = cmd.src_iova as bigint;
  if (length >= ULONG_MAX_BIG || srcIova >= ULONG_MAX_BIG || dstIova >= ULONG_MAX_BIG)
    return -Errno.EOVERFLOW;
  if ((flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) return -Errno.EINVAL;
  const src = getIoas(ictx, num(cmd.src_ioas_id));
  if (typeof src === 'number') return src;
  const list = yield* getPages(src.iopt, Number(srcIova), Number(length));
  ictx.putObject(src.obj);
  if (typeof list === 'number') return list;
  const dst = getIoas(ictx, num(cmd.dst_ioas_id));
  let rc: number;
  if (typeof dst === 'number') rc = dst;
  else {
    for (const e of list) upgradeAccount(ictx, e.pages);
    rc = yield* mapPages(
      dst.iopt,
      list,
      Number(dstIova),
      (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0,
      conv(flags),
    );
    ictx.putObject(dst.obj);
  }
  for (const e of list) putPages(e.pages);
  if (rc < 0) return rc;
  cmd.dst_iova = BigInt(rc);
  return respond(ucmd);
}

function* ioasUnmap(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const ioas = getIoas(ictx, num(cmd.ioas_id));
  if (typeof ioas === 'number') return ioas;
  const iova = cmd.iova as bigint;
  const length = cmd.length as bigint;
  let rc = 0;
  let unmapped = 0;
  if (iova === 0n && length === U64_MAX) {
    const r = yield* unmapAll(ioas.iopt);
    rc = r.rc;
    unmapped = r.unmapped;
  } else if (iova >= ULONG_MAX_BIG || length >= ULONG_MAX_BIG) rc = -Errno.EOVERFLOW;
  else if (length === 0n) rc = -Errno.EINVAL;
  else if (iova + length - 1n >= ULONG_MAX_BIG) rc = -Errno.EOVERFLOW;
  else {
    const r = yield* unmapIovaRange(ioas.iopt, ceilDouble(iova), floorDouble(iova + length - 1n));
    rc = r.rc;
    unmapped = r.unmapped;
    if (rc === 0 && unmapped === 0) rc = -Errno.ENOENT;
  }
  ictx.putObject(ioas.obj);
  if (rc < 0) return rc;
  cmd.length = BigInt(unmapped);
  return respond(ucmd);
}

function* optionRlimitMode(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  if (cmd.object_id !== 0) return -Errno.EINVAL;
  if (cmd.op === IOMMU_OPTION_OP_GET) {
    cmd.val64 = ictx.accountMode === IOPT_PAGES_ACCOUNT_MM ? 1n : 0n;
    return 0;
  }
  if (cmd.op === IOMMU_OPTION_OP_SET) {
    const v = cmd.val64 as bigint;
    if (ictx.objects.size > 0) return -Errno.EBUSY;
    if (v === 0n) ictx.accountMode = IOPT_PAGES_ACCOUNT_USER;
    else if (v === 1n) ictx.accountMode = IOPT_PAGES_ACCOUNT_MM;
    else return -Errno.EINVAL;
    return 0;
  }
  return -Errno.EOPNOTSUPP;
}

function* optionHugePages(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const ioas = getIoas(ictx, num(cmd.object_id));
  if (typeof ioas === 'number') return ioas;
  let rc = 0;
  if (cmd.op === IOMMU_OPTION_OP_GET) cmd.val64 = ioas.iopt.disableLargePages ? 0n : 1n;
  else if (cmd.op === IOMMU_OPTION_OP_SET) {
    const v = cmd.val64 as bigint;
    if (v === 0n) rc = yield* disableLargePages(ioas.iopt);
    else if (v === 1n) rc = yield* enableLargePages(ioas.iopt);
    else rc = -Errno.EINVAL;
  } else rc = -Errno.EOPNOTSUPP;
  ictx.putObject(ioas.obj);
  return rc;
}

function* ioctlOption(ucmd: Ucmd): KGen<number> {
  const { cmd } = ucmd;
  if (cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  let rc: number;
  if (cmd.option_id === IOMMU_OPTION_RLIMIT_MODE) rc = yield* optionRlimitMode(ucmd);
  else if (cmd.option_id === IOMMU_OPTION_HUGE_PAGES) rc = yield* optionHugePages(ucmd);
  else return -Errno.EOPNOTSUPP;
  if (rc < 0) return rc;
  return respond(ucmd);
}

function* vfioIoasIoctl(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  if (cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  switch (cmd.op) {
    case IOMMU_VFIO_IOAS_GET:
      if (ictx.vfioIoas === null) return -Errno.ENODEV;
      cmd.ioas_id = ictx.vfioIoas.obj.id;
      return respond(ucmd);
    case IOMMU_VFIO_IOAS_SET: {
      const ioas = getIoas(ictx, num(cmd.ioas_id));
      if (typeof ioas === 'number') return ioas;
      ictx.vfioIoas = ioas;
      ictx.putObject(ioas.obj);
      return 0;
    }
    case IOMMU_VFIO_IOAS_CLEAR:
      ictx.vfioIoas = null;
      return 0;
    default:
      return -Errno.EOPNOTSUPP;
  }
}

/**
 * down_write_nest_lock(): every IOAS's iova_rwsem is taken under ioas_creation_lock, which
 * serialises the nesting. The model's lockdep has no nest annotation, so the held entry is
 * given its own subclass, as lockdep would treat a nest_lock-protected acquisition.
 */
function markNested(ictx: IommufdCtx, name: string): void {
  const t = ictx.sys.sched.current;
  if (t === null) return;
  for (let i = t.held.length - 1; i >= 0; i--) {
    if (t.held[i].name === name) {
      t.held[i] = { lockClass: `${t.held[i].lockClass}/nest:${name}`, name };
      return;
    }
  }
}

/**
 * Models iommufd_ioas_change_process(): moves the accounting and the source of every FILE
 * mapping to the current process. Any user-VA mapping makes it -EINVAL.
 */
function* ioasChangeProcess(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  if (cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  const cur = ictx.current;
  const mm = cur.mm;
  if (mm === null) return GONE_MM;
  yield* ictx.ioasCreationLock.downWrite();
  const ioases: Ioas[] = [];
  for (const obj of [...ictx.objects.values()].sort((a, b) => (a?.id ?? 0) - (b?.id ?? 0))) {
    if (obj !== null && obj.type === 'IOAS') ioases.push(ioasOf(obj));
  }
  for (const ioas of ioases) {
    yield* ioas.iopt.iovaRwsem.downWrite();
    markNested(ictx, ioas.iopt.iovaRwsem.name);
  }
  let rc = 0;
  const all = new Set<IoptPages>();
  for (const ioas of ioases) {
    for (const area of ioas.iopt.areas()) {
      if (area.pages === null) continue;
      if (area.pages.type !== 'file') rc = -Errno.EINVAL;
      all.add(area.pages);
    }
  }
  const change: IoptPages[] = [];
  if (rc === 0) {
    for (const p of all) {
      const need =
        p.accountMode === IOPT_PAGES_ACCOUNT_MM
          ? p.sourceMm !== mm
          : p.sourceUser !== cur.user || p.sourceMm !== mm;
      if (need || p.sourceTask !== cur) change.push(p);
    }
    const sums = new Map<number, number>();
    for (const p of change) sums.set(p.accountMode, (sums.get(p.accountMode) ?? 0) + p.lastNpinned);
    const charged: [number, number][] = [];
    for (const mode of [IOPT_PAGES_ACCOUNT_NONE, IOPT_PAGES_ACCOUNT_USER, IOPT_PAGES_ACCOUNT_MM]) {
      const n = sums.get(mode) ?? 0;
      if (n === 0) continue;
      rc = yield* chargeAccount(ictx.sys, mode, cur, mm, cur.user, n);
      if (rc < 0) break;
      charged.push([mode, n]);
    }
    if (rc < 0) {
      for (const [mode, n] of charged) yield* chargeAccount(ictx.sys, mode, cur, mm, cur.user, -n);
    } else {
      for (const p of change) {
        yield* chargeAccount(ictx.sys, p.accountMode, p.sourceTask, p.sourceMm, p.sourceUser, -p.lastNpinned);
        p.sourceTask = cur;
        p.sourceMm = mm;
        p.sourceUser = cur.user;
      }
    }
  }
  for (const ioas of ioases.reverse()) yield* ioas.iopt.iovaRwsem.upWrite();
  yield* ictx.ioasCreationLock.upWrite();
  return rc;
}

registerIoctl('IOMMU_IOAS_ALLOC', ioasAllocIoctl);
registerIoctl('IOMMU_IOAS_IOVA_RANGES', ioasIovaRanges);
registerIoctl('IOMMU_IOAS_ALLOW_IOVAS', ioasAllowIovas);
registerIoctl('IOMMU_IOAS_MAP', ioasMap);
registerIoctl('IOMMU_IOAS_MAP_FILE', ioasMapFile);
registerIoctl('IOMMU_IOAS_COPY', ioasCopy);
registerIoctl('IOMMU_IOAS_UNMAP', ioasUnmap);
registerIoctl('IOMMU_OPTION', ioctlOption);
registerIoctl('IOMMU_VFIO_IOAS', vfioIoasIoctl);
registerIoctl('IOMMU_IOAS_CHANGE_PROCESS', ioasChangeProcess);
registerIoctl('IOMMU_DESTROY', function* (ucmd) {
  return yield* ucmd.ictx.objectRemove(num(ucmd.cmd.id));
});
