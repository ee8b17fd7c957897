/**
 * Models drivers/iommu/iommufd/hw_pagetable.c: paging HW pagetables (an iommu_domain linked to
 * an IOAS), IOMMU_HWPT_ALLOC, and dirty tracking (SET_DIRTY_TRACKING / GET_DIRTY_BITMAP).
 * Nested HWPTs, vIOMMUs and fault queues are not modelled: their ioctls answer -EOPNOTSUPP once
 * their arguments pass the checks the model does make.
 */
import { ULONG_MAX } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { IommuDomain } from './iommu.ts';
import { tableAddDomain, tableRemoveDomain } from './io_pagetable.ts';
import { ioasOf, type Ioas } from './ioas.ts';
import { IommufdObject, registerIoctl, respond, type IommufdCtx, type Ucmd } from './main.ts';
import { deviceOf, type IommufdDevice } from './device.ts';
import { accessRemote } from './mm_glue.ts';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  U64_MAX,
} from './uapi.ts';

/** Models struct iommufd_hwpt_paging. */
export class HwptPaging {
  readonly obj: IommufdObject;
  autoDomain = false;
  /** The domain is in ioas.iopt.domains. */
  inIopt = false;
  readonly devices = new Set<IommufdDevice>();
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

const hwptObjects = new WeakMap<IommufdObject, HwptPaging>();

export function hwptOf(obj: IommufdObject): HwptPaging {
  return hwptObjects.get(obj)!;
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
): KGen<HwptPaging | number> {
  const valid = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID;
  if ((flags & ~valid) !== 0) return -Errno.EOPNOTSUPP;
  if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0 && !idev.ops.dirtyCapable()) return -Errno.EOPNOTSUPP;
  const domain = idev.ops.domainAllocPaging(flags);
  if (typeof domain === 'number') return domain;
  const hwpt = new HwptPaging(ictx, ioas, domain, (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0);
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

function* hwptAllocIoctl(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const flags = cmd.flags as number;
  const valid =
    IOMMU_HWPT_ALLOC_NEST_PARENT |
    IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
    IOMMU_HWPT_FAULT_ID_VALID |
    IOMMU_HWPT_ALLOC_PASID;
  if ((flags & ~valid) !== 0 || cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  if (cmd.data_type === IOMMU_HWPT_DATA_NONE && cmd.data_len !== 0) return -Errno.EINVAL;
  const devObj = ictx.getObject(cmd.dev_id as number, 'DEVICE');
  if (typeof devObj === 'number') return devObj;
  const idev = deviceOf(devObj);
  const pt = ictx.getObject(cmd.pt_id as number, 'ANY');
  let rc: number;
  if (typeof pt === 'number') rc = pt;
  else {
    if (pt.type === 'IOAS') {
      if (cmd.data_type !== IOMMU_HWPT_DATA_NONE) rc = -Errno.EINVAL;
      else if ((flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0) rc = -Errno.EOPNOTSUPP;
      else {
        const ioas = ioasOf(pt);
        yield* ioas.mutex.lock();
        const hwpt = yield* hwptPagingAlloc(ictx, ioas, idev, flags, false);
        if (typeof hwpt === 'number') rc = hwpt;
        else {
          cmd.out_hwpt_id = hwpt.obj.id;
          ictx.finalize(hwpt.obj);
          rc = respond(ucmd);
        }
        yield* ioas.mutex.unlock();
      }
    } else if (pt.type === 'HWPT_PAGING') {
      // Nested HWPTs on a nesting parent are not modelled.
      rc = hwptOf(pt).nestParent ? -Errno.EOPNOTSUPP : -Errno.EINVAL;
    } else rc = -Errno.EINVAL;
    ictx.putObject(pt);
  }
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
    // Clearing stale dirty bits before enabling passes no bitmap, which the mock never refuses.
    if (enable) for (const a of iopt.areas()) ops.readAndClearDirty(a.iova, a.length, false, () => {});
    rc = ops.setDirtyTracking(enable);
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
  const mm = ictx.current.mm!;
  const bitmap = new Uint8Array(nbytes);
  let rc = yield* accessRemote(ictx.sys, mm, Number(data), bitmap, false);
  if (rc !== nbytes) return -Errno.EFAULT;
  yield* iopt.iovaRwsem.downRead();
  let cur = iova;
  const last = iova + length - 1;
  // Walk contiguous areas; a hole ends the walk (and, as in the kernel, is not reported).
  for (const area of iopt.areas(iova, last)) {
    if (area.iova > cur) break;
    const s = Math.max(cur, area.iova);
    const e = Math.min(last, area.last);
    // iommu_read_and_clear_dirty() stops at the first error from the domain and returns it.
    const err = ops.readAndClearDirty(s, e - s + 1, noClear, (diova, dlen) => {
      const from = Math.max(diova, iova);
      const to = Math.min(diova + dlen - 1, last);
      for (let b = Math.floor((from - iova) / pageSize); b <= Math.floor((to - iova) / pageSize); b++) {
        bitmap[b >> 3] |= 1 << (b & 7);
      }
    });
    if (err !== 0) {
      yield* iopt.iovaRwsem.upRead();
      return err;
    }
    cur = e + 1;
    if (cur > last) break;
  }
  yield* iopt.iovaRwsem.upRead();
  rc = yield* accessRemote(ictx.sys, mm, Number(data), bitmap, true);
  return rc === nbytes ? 0 : -Errno.EFAULT;
}

function* hwptInvalidate(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  if (cmd.__reserved !== 0) return -Errno.EOPNOTSUPP;
  const num = cmd.entry_num as number;
  if (num !== 0 && (cmd.data_uptr === 0n || cmd.entry_len === 0)) return -Errno.EINVAL;
  const obj = ictx.getObject(cmd.hwpt_id as number, 'ANY');
  if (typeof obj === 'number') return obj;
  ictx.putObject(obj);
  cmd.entry_num = 0;
  respond(ucmd);
  return obj.type === 'HWPT_PAGING' ? -Errno.EINVAL : -Errno.ENOENT;
}

/** vIOMMU and vDEVICE objects are not modelled; lookups still give the kernel's -ENOENT first. */
function* viommuAlloc(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  if (cmd.flags !== 0) return -Errno.EOPNOTSUPP;
  const dev = ictx.getObject(cmd.dev_id as number, 'DEVICE');
  if (typeof dev === 'number') return dev;
  ictx.putObject(dev);
  const pt = ictx.getObject(cmd.hwpt_id as number, 'HWPT_PAGING');
  if (typeof pt === 'number') return pt;
  ictx.putObject(pt);
  return hwptOf(pt).nestParent ? -Errno.EOPNOTSUPP : -Errno.EINVAL;
}

function* vdeviceAlloc(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const obj = ictx.getObject(cmd.viommu_id as number, 'ANY');
  if (typeof obj === 'number') return obj;
  ictx.putObject(obj);
  return -Errno.ENOENT;
}

registerIoctl('IOMMU_HWPT_ALLOC', hwptAllocIoctl);
registerIoctl('IOMMU_HWPT_SET_DIRTY_TRACKING', setDirtyTracking);
registerIoctl('IOMMU_HWPT_GET_DIRTY_BITMAP', getDirtyBitmap);
registerIoctl('IOMMU_HWPT_INVALIDATE', hwptInvalidate);
registerIoctl('IOMMU_VIOMMU_ALLOC', viommuAlloc);
registerIoctl('IOMMU_VDEVICE_ALLOC', vdeviceAlloc);
registerIoctl('IOMMU_FAULT_QUEUE_ALLOC', function* (ucmd) {
  if (ucmd.cmd.flags !== 0) return -Errno.EOPNOTSUPP;
  return -Errno.EOPNOTSUPP;
});
