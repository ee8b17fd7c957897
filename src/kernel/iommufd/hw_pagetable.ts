/**
 * Models drivers/iommu/iommufd/hw_pagetable.c: paging HW pagetables (an iommu_domain linked to
 * an IOAS), nested HW pagetables (a driver stage-1 domain over a NEST_PARENT paging HWPT, with
 * user cache invalidation), IOMMU_HWPT_ALLOC (optionally bound to a fault queue),
 * IOMMU_HWPT_INVALIDATE, and dirty tracking (SET_DIRTY_TRACKING / GET_DIRTY_BITMAP).
 * vIOMMUs and their nested HWPTs are in viommu.ts.
 */
import { endOf, lastOf } from '../../lib/u64.ts';
import { ULONG_MAX } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { IommuDomain, IommuUserData, IommuUserDataArray } from './iommu.ts';
import { tableAddDomain, tableRemoveDomain } from './io_pagetable.ts';
import { ioasOf, type Ioas } from './ioas.ts';
import { IommufdObject, registerIoctl, respond, type IommufdCtx, type Ucmd } from './main.ts';
import { deviceOf, type IommufdDevice } from './device.ts';
import { accessRemote } from './mm_glue.ts';
import { faultOf, type FaultQueue } from './fault.ts';
import { viommuAllocHwptNested, viommuOf, type Viommu } from './viommu.ts';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  u64,
  U64_MAX,
} from './uapi.ts';
import { sideTable } from '../../lib/snapshot.ts';

/** Models struct iommufd_hwpt_paging. */
export class HwptPaging {
  readonly obj: IommufdObject;
  autoDomain = false;
  /** The domain is in ioas.iopt.domains. */
  inIopt = false;
  readonly devices = new Set<IommufdDevice>();
  /** The fault queue faults of attached devices go to (hwpt->fault), holding a user reference. */
  fault: FaultQueue | null = null;
  /** Models hwpt->pasid_compat: allocated with IOMMU_HWPT_ALLOC_PASID (automatic domains are not). */
  pasidCompat = false;
  constructor(
    readonly ictx: IommufdCtx,
    readonly ioas: Ioas,
    readonly domain: IommuDomain,
    readonly nestParent: boolean,
  ) {
    this.obj = new IommufdObject('HWPT_PAGING', ictx, () => this.destroy());
  }

  /** Models iommufd_hwpt_paging_destroy(). */
  *destroy(): KGen {
    if (this.fault !== null) this.fault.obj.users--;
    if (this.inIopt) {
      yield* tableRemoveDomain(this.ioas.iopt, this.domain);
      this.inIopt = false;
    }
    const i = this.ioas.hwptList.indexOf(this);
    if (i >= 0) this.ioas.hwptList.splice(i, 1);
    this.ioas.obj.users--;
    this.domain.ops.free();
  }

  /** Models iommufd_object_abort_and_destroy() for a HWPT that was never finalized. */
  *destroyUnfinalized(): KGen {
    this.ictx.abort(this.obj);
    yield* this.destroy();
  }
}

/**
 * Models struct iommufd_hwpt_nested: a driver stage-1 domain translating through the domain of a
 * NEST_PARENT paging HWPT, which it keeps referenced (so the parent cannot be destroyed first).
 */
export class HwptNested {
  readonly obj: IommufdObject;
  readonly autoDomain = false;
  readonly devices = new Set<IommufdDevice>();
  fault: FaultQueue | null = null;
  /** Models hwpt->pasid_compat. */
  pasidCompat = false;
  /** The vIOMMU that allocated it (which it then holds instead of the parent), or null. */
  viommu: Viommu | null = null;
  /** Set once the driver allocated it (the object exists before the domain). */
  domain!: IommuDomain;
  hasDomain = false;
  constructor(
    readonly ictx: IommufdCtx,
    readonly parent: HwptPaging,
  ) {
    this.obj = new IommufdObject('HWPT_NESTED', ictx, () => this.destroy());
  }

  /** Models iommufd_hwpt_nested_destroy(). */
  *destroy(): KGen {
    if (this.fault !== null) this.fault.obj.users--;
    if (this.hasDomain) this.domain.ops.free();
    if (this.viommu !== null) this.viommu.obj.users--;
    else this.parent.obj.users--;
  }
}

/** A HW pagetable a device can be attached to (struct iommufd_hw_pagetable). */
export type Hwpt = HwptPaging | HwptNested;

/** Models find_hwpt_paging(): the paging HWPT that owns the IOVA space of `hwpt`. */
export function hwptPagingOf(hwpt: Hwpt): HwptPaging {
  return hwpt instanceof HwptNested ? hwpt.parent : hwpt;
}

const hwptObjects = sideTable<IommufdObject, HwptPaging>();
const nestedObjects = sideTable<IommufdObject, HwptNested>();

export function hwptOf(obj: IommufdObject): HwptPaging {
  return hwptObjects.get(obj)!;
}

/** Records a nested HWPT allocated elsewhere (a vIOMMU's) for anyHwptOf(). */
export function registerNested(hwpt: HwptNested): void {
  nestedObjects.set(hwpt.obj, hwpt);
}

/** The HWPT behind an HWPT_PAGING or HWPT_NESTED object. */
export function anyHwptOf(obj: IommufdObject): Hwpt {
  return obj.type === 'HWPT_NESTED' ? nestedObjects.get(obj)! : hwptObjects.get(obj)!;
}

/** copy_from_user(): `len` bytes at `off` past a user pointer (a byte buffer, or an address). */
export function* copyFromUser(
  ictx: IommufdCtx,
  uptr: unknown,
  off: number,
  len: number,
): KGen<Uint8Array | number> {
  if (uptr instanceof Uint8Array) {
    if (off < 0 || off + len > uptr.length) return -Errno.EFAULT;
    return uptr.slice(off, off + len);
  }
  const addr = Number(u64(uptr));
  const buf = new Uint8Array(len);
  if (len === 0) return buf;
  if (addr === 0) return -Errno.EFAULT;
  const n = yield* accessRemote(ictx.sys, ictx.current.mm, addr + off, buf, false);
  return n === len ? buf : -Errno.EFAULT;
}

/**
 * Models __iommu_copy_struct_from_user(): the type must match, the length must cover the
 * struct's first version and not exceed the kernel's struct; the copy is zero-extended.
 */
function* copyStruct(
  ictx: IommufdCtx,
  type: number,
  uptr: unknown,
  off: number,
  len: number,
  dataType: number,
  ksize: number,
  minLen: number,
): KGen<Uint8Array | number> {
  if (type !== dataType) return -Errno.EINVAL;
  if (len < minLen || ksize < len) return -Errno.EINVAL;
  const got = yield* copyFromUser(ictx, uptr, off, len);
  if (typeof got === 'number') return got;
  const out = new Uint8Array(ksize);
  out.set(got);
  return out;
}

/** struct iommu_user_data for a command's data_type / data_uptr / data_len. */
export function userData(ictx: IommufdCtx, type: number, uptr: unknown, len: number): IommuUserData {
  return {
    type,
    len,
    copyStruct: (dataType, ksize, minLen) => copyStruct(ictx, type, uptr, 0, len, dataType, ksize, minLen),
    // Models iommu_copy_struct_to_user(): min(len, the kernel's size) bytes back to the user.
    *copyStructToUser(dataType, data, minLen) {
      if (type !== dataType || len < minLen) return -Errno.EINVAL;
      const n = Math.min(len, data.length);
      if (uptr instanceof Uint8Array) {
        if (n > uptr.length) return -Errno.EFAULT;
        uptr.set(data.subarray(0, n));
        return 0;
      }
      const addr = Number(u64(uptr));
      if (addr === 0) return -Errno.EFAULT;
      const wrote = yield* accessRemote(ictx.sys, ictx.current.mm, addr, data.slice(0, n), true);
      return wrote === n ? 0 : -Errno.EFAULT;
    },
  };
}

/** struct iommu_user_data_array for a command's data_type / data_uptr / entry_len / entry_num. */
export function userDataArray(
  ictx: IommufdCtx,
  type: number,
  uptr: unknown,
  entryLen: number,
  entryNum: number,
): IommuUserDataArray {
  const array: IommuUserDataArray = {
    type,
    entryLen,
    entryNum,
    // Models __iommu_copy_struct_from_user_array().
    *copyEntry(dataType, index, ksize, minLen) {
      if (index >= array.entryNum || array.entryNum === 0) return -Errno.EINVAL;
      return yield* copyStruct(ictx, type, uptr, entryLen * index, entryLen, dataType, ksize, minLen);
    },
  };
  return array;
}

/** A user pointer as the command carries it: a byte buffer the caller passed, or the u64 value. */
export function rawPointer(ucmd: Ucmd, field: string): unknown {
  const raw = ucmd.user[field];
  return raw instanceof Uint8Array ? raw : ucmd.cmd[field];
}

function isNullPointer(p: unknown): boolean {
  return !(p instanceof Uint8Array) && u64(p) === 0n;
}

/**
 * Models iommufd_hwpt_paging_alloc(): allocates a domain for the device and links it to the IOAS.
 * With immediateAttach the caller attaches the device and then adds the domain to the IOAS;
 * otherwise the domain is added (and filled) now. Caller holds ioas.mutex; the object is not
 * finalized.
 */
export function* hwptPagingAlloc(
  ictx: IommufdCtx,
  ioas: Ioas,
  idev: IommufdDevice,
  flags: number,
  immediateAttach: boolean,
  user: IommuUserData | null = null,
): KGen<HwptPaging | number> {
  const valid =
    IOMMU_HWPT_ALLOC_NEST_PARENT |
    IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
    IOMMU_HWPT_FAULT_ID_VALID |
    IOMMU_HWPT_ALLOC_PASID;
  if ((flags & ~valid) !== 0) return -Errno.EOPNOTSUPP;
  if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0 && !idev.ops.dirtyCapable()) return -Errno.EOPNOTSUPP;
  // A nesting parent cannot take I/O page faults.
  if ((flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0 && (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0)
    return -Errno.EOPNOTSUPP;
  const domain = idev.ops.domainAllocPaging(flags & ~IOMMU_HWPT_FAULT_ID_VALID, user);
  if (typeof domain === 'number') return domain;
  const hwpt = new HwptPaging(ictx, ioas, domain, (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0);
  hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  const rc = ictx.objectAlloc(hwpt.obj);
  if (rc < 0) {
    domain.ops.free();
    return rc;
  }
  hwptObjects.set(hwpt.obj, hwpt);
  ioas.obj.users++;
  if (!immediateAttach) {
    const r = yield* tableAddDomain(ioas.iopt, domain);
    if (r < 0) {
      yield* hwpt.destroyUnfinalized();
      return r;
    }
    hwpt.inIopt = true;
    ioas.hwptList.push(hwpt);
  }
  return hwpt;
}

/**
 * Models iommufd_hwpt_nested_alloc(): a nested HWPT over a NEST_PARENT paging HWPT of the same
 * driver (not an automatic domain). The object takes a reference on the parent before the driver
 * allocates the domain; the caller finalizes or aborts it.
 */
export function* hwptNestedAlloc(
  ictx: IommufdCtx,
  parent: HwptPaging,
  idev: IommufdDevice,
  flags: number,
  user: IommuUserData,
): KGen<HwptNested | number> {
  const ops = idev.ops;
  if (
    (flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)) !== 0 ||
    user.len === 0 ||
    ops.domainAllocNested === undefined
  )
    return -Errno.EOPNOTSUPP;
  if (parent.autoDomain || !parent.nestParent || parent.domain.owner !== idev.ops.domainOwner)
    return -Errno.EINVAL;
  const hwpt = new HwptNested(ictx, parent);
  hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  const rc = ictx.objectAlloc(hwpt.obj);
  if (rc < 0) return rc;
  nestedObjects.set(hwpt.obj, hwpt);
  parent.obj.users++;
  const domain = yield* ops.domainAllocNested(parent.domain, flags & ~IOMMU_HWPT_FAULT_ID_VALID, user);
  if (typeof domain === 'number') {
    ictx.abort(hwpt.obj);
    yield* hwpt.destroy();
    return domain;
  }
  hwpt.domain = domain;
  hwpt.hasDomain = true;
  if (domain.owner !== idev.ops.domainOwner) {
    ictx.abort(hwpt.obj);
    yield* hwpt.destroy();
    return -Errno.EINVAL;
  }
  return hwpt;
}

/** Models iommufd_hwpt_alloc() (IOMMU_HWPT_ALLOC). */
function* hwptAllocIoctl(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const flags = cmd.flags as number;
  const dataType = cmd.data_type as number;
  const dataLen = cmd.data_len as number;
  if (cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  if (
    (dataType === IOMMU_HWPT_DATA_NONE && dataLen !== 0) ||
    (dataType !== IOMMU_HWPT_DATA_NONE && dataLen === 0)
  )
    return -Errno.EINVAL;
  const user = userData(ictx, dataType, rawPointer(ucmd, 'data_uptr'), dataLen);
  const devObj = ictx.getObject(cmd.dev_id as number, 'DEVICE');
  if (typeof devObj === 'number') return devObj;
  const idev = deviceOf(devObj);
  const pt = ictx.getObject(cmd.pt_id as number, 'ANY');
  if (typeof pt === 'number') {
    ictx.putObject(devObj);
    return pt;
  }
  let ioas: Ioas | null = null;
  let hwpt: Hwpt | number;
  if (pt.type === 'IOAS') {
    ioas = ioasOf(pt);
    yield* ioas.mutex.lock();
    hwpt = yield* hwptPagingAlloc(ictx, ioas, idev, flags, false, dataLen !== 0 ? user : null);
  } else if (pt.type === 'HWPT_PAGING') {
    hwpt = yield* hwptNestedAlloc(ictx, hwptOf(pt), idev, flags, user);
  } else if (pt.type === 'VIOMMU') {
    hwpt = yield* viommuAllocHwptNested(ictx, viommuOf(pt), flags, user);
  } else hwpt = -Errno.EINVAL;
  let rc: number;
  if (typeof hwpt === 'number') rc = hwpt;
  else {
    rc = 0;
    if ((flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0) {
      const fobj = ictx.getObject(cmd.fault_id as number, 'FAULT');
      if (typeof fobj === 'number') rc = fobj;
      else {
        hwpt.fault = faultOf(fobj);
        hwpt.domain.iopfHandler = true;
        fobj.users++;
        ictx.putObject(fobj);
      }
    }
    if (rc === 0) {
      cmd.out_hwpt_id = hwpt.obj.id;
      rc = respond(ucmd);
    }
    if (rc === 0) ictx.finalize(hwpt.obj);
    else if (hwpt instanceof HwptNested) {
      ictx.abort(hwpt.obj);
      yield* hwpt.destroy();
    } else yield* hwpt.destroyUnfinalized();
  }
  if (ioas !== null) yield* ioas.mutex.unlock();
  ictx.putObject(pt);
  ictx.putObject(devObj);
  return rc;
}

function* setDirtyTracking(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  if (((cmd.flags as number) & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0 || cmd.__reserved !== 0)
    return -Errno.EOPNOTSUPP;
  const obj = ictx.getObject(cmd.hwpt_id as number, 'HWPT_PAGING');
  if (typeof obj === 'number') return obj;
  const hwpt = hwptOf(obj);
  const enable = ((cmd.flags as number) & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
  let rc = 0;
  const ops = hwpt.domain.dirtyOps;
  if (ops === null) rc = -Errno.EOPNOTSUPP;
  else {
    const iopt = hwpt.ioas.iopt;
    yield* iopt.iovaRwsem.downRead();
    // iopt_clear_dirty_data(): before enabling, clear stale dirty bits of every area with pages,
    // passing no bitmap; the first error stops it and is returned without enabling.
    if (enable) {
      for (const a of iopt.areas()) {
        if (a.pages === null) continue;
        rc = ops.readAndClearDirty(a.iova, a.length, false, null);
        if (rc !== 0) break;
      }
    }
    if (rc === 0) rc = ops.setDirtyTracking(enable);
    yield* iopt.iovaRwsem.upRead();
  }
  ictx.putObject(obj);
  return rc;
}

/** Models iommufd_hwpt_get_dirty_bitmap() / iopt_read_and_clear_dirty_data(). */
function* getDirtyBitmap(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const flags = cmd.flags as number;
  if ((flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0 || cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  const obj = ictx.getObject(cmd.hwpt_id as number, 'HWPT_PAGING');
  if (typeof obj === 'number') return obj;
  const hwpt = hwptOf(obj);
  const rc = yield* readAndClearDirty(
    ictx,
    hwpt,
    cmd.iova as bigint,
    cmd.length as bigint,
    cmd.page_size as bigint,
    cmd.data as bigint,
    (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0,
  );
  ictx.putObject(obj);
  return rc;
}

function* readAndClearDirty(
  ictx: IommufdCtx,
  hwpt: HwptPaging,
  iovaB: bigint,
  lengthB: bigint,
  pageSizeB: bigint,
  data: bigint,
  noClear: boolean,
): KGen<number> {
  const ops = hwpt.domain.dirtyOps;
  if (ops === null) return -Errno.EOPNOTSUPP;
  const iopt = hwpt.ioas.iopt;
  const lastB = iovaB + lengthB - 1n;
  if (lengthB === 0n || lastB > U64_MAX || lastB >= BigInt(ULONG_MAX)) return -Errno.EOVERFLOW;
  const align = BigInt(iopt.iovaAlignment);
  if (iovaB % align !== 0n || (lastB + 1n) % align !== 0n) return -Errno.EINVAL;
  if (pageSizeB === 0n) return -Errno.EINVAL;
  if (iovaB % pageSizeB !== 0n || (lastB + 1n) % pageSizeB !== 0n) return -Errno.EINVAL;
  const iova = Number(iovaB);
  const length = Number(lengthB);
  const pageSize = Number(pageSizeB);
  const nbits = length / pageSize;
  const nbytes = Math.ceil(nbits / 8);
  const mm = ictx.current.mm;
  if (mm === null) return -Errno.EFAULT;
  const bitmap = new Uint8Array(nbytes);
  let rc = yield* accessRemote(ictx.sys, mm, Number(data), bitmap, false);
  if (rc !== nbytes) return -Errno.EFAULT;
  yield* iopt.iovaRwsem.downRead();
  let cur = iova;
  const last = lastOf(iova + length);
  // Walk contiguous areas; a hole ends the walk (and, as in the kernel, is not reported).
  for (const area of iopt.areas(iova, last)) {
    if (area.iova > cur) break;
    const s = Math.max(cur, area.iova);
    const e = Math.min(last, area.last);
    // iommu_read_and_clear_dirty() stops at the first error from the domain and returns it.
    const err = ops.readAndClearDirty(s, endOf(e) - s, noClear, (diova, dlen) => {
      const from = Math.max(diova, iova);
      const to = Math.min(lastOf(diova + dlen), last);
      for (let b = Math.floor((from - iova) / pageSize); b <= Math.floor((to - iova) / pageSize); b++) {
        bitmap[b >> 3] |= 1 << (b & 7);
      }
    });
    if (err !== 0) {
      yield* iopt.iovaRwsem.upRead();
      return err;
    }
    cur = endOf(e);
    if (cur > last) break;
  }
  yield* iopt.iovaRwsem.upRead();
  rc = yield* accessRemote(ictx.sys, mm, Number(data), bitmap, true);
  return rc === nbytes ? 0 : -Errno.EFAULT;
}

/**
 * Models iommufd_hwpt_invalidate() (IOMMU_HWPT_INVALIDATE): the request array goes to the nested
 * domain's driver, which reports in entry_num how many entries it handled, also on error. Paging
 * HWPTs (including nesting parents) take no user invalidations: -EINVAL.
 */
function* hwptInvalidate(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const uptr = rawPointer(ucmd, 'data_uptr');
  const entryNum = cmd.entry_num as number;
  let done = 0;
  let rc = 0;
  if (cmd.__reserved !== 0) rc = -Errno.EOPNOTSUPP;
  else if (entryNum !== 0 && (isNullPointer(uptr) || cmd.entry_len === 0)) rc = -Errno.EINVAL;
  else {
    const obj = ictx.getObject(cmd.hwpt_id as number, 'ANY');
    if (typeof obj === 'number') rc = obj;
    else {
      if (obj.type === 'HWPT_NESTED') {
        const hwpt = anyHwptOf(obj);
        const inv = hwpt.domain.cacheInvalidateUser;
        if (inv === null) rc = -Errno.EOPNOTSUPP;
        else {
          const array = userDataArray(ictx, cmd.data_type as number, uptr, cmd.entry_len as number, entryNum);
          rc = yield* inv(array);
          done = array.entryNum;
        }
      } else if (obj.type === 'VIOMMU') {
        const inv = viommuOf(obj).ops?.cacheInvalidate;
        if (inv === undefined) rc = -Errno.EOPNOTSUPP;
        else {
          const array = userDataArray(ictx, cmd.data_type as number, uptr, cmd.entry_len as number, entryNum);
          rc = yield* inv(array);
          done = array.entryNum;
        }
      } else rc = -Errno.EINVAL;
      ictx.putObject(obj);
    }
  }
  cmd.entry_num = done;
  if (respond(ucmd) !== 0) return -Errno.EFAULT;
  return rc;
}

registerIoctl('IOMMU_HWPT_ALLOC', hwptAllocIoctl);
registerIoctl('IOMMU_HWPT_SET_DIRTY_TRACKING', setDirtyTracking);
registerIoctl('IOMMU_HWPT_GET_DIRTY_BITMAP', getDirtyBitmap);
registerIoctl('IOMMU_HWPT_INVALIDATE', hwptInvalidate);
