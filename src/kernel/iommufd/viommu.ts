/**
 * Models drivers/iommu/iommufd/viommu.c: the vIOMMU object (IOMMU_VIOMMU_ALLOC), a slice of a
 * physical IOMMU given to a guest over a NEST_PARENT paging HWPT; its vDEVICEs
 * (IOMMU_VDEVICE_ALLOC), the guest's IDs of the devices behind it; the nested HWPTs a vIOMMU
 * allocates (IOMMU_HWPT_ALLOC with pt_id a vIOMMU) and its cache invalidation
 * (IOMMU_HWPT_INVALIDATE with a vIOMMU id).
 */
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { sideTable } from '../../lib/snapshot.ts';
import {
  accessAttachInternal,
  accessCreateInternal,
  accessDetachInternal,
  accessPinPages,
  accessUnpinPages,
  deviceOf,
  type IommufdAccess,
  type IommufdDevice,
} from './device.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import { U64_MAX_BIG } from '../../lib/u64.ts';
import { hwptOf, HwptNested, rawPointer, registerNested, userData, type HwptPaging } from './hw_pagetable.ts';
import type { IommuDomain, IommuUserData, IommuUserDataArray } from './iommu.ts';
import { IommufdObject, registerIoctl, respond, type IommufdCtx, type Ucmd } from './main.ts';
import type { Veventq } from './veventq.ts';
import { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_FAULT_ID_VALID, u64 } from './uapi.ts';

/** IOMMU_HW_QUEUE_TYPE_DEFAULT: no driver HW queue. */
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
/** IOMMU_VIOMMU_TYPE_DEFAULT: no driver vIOMMU. */
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
/** ULONG_MAX as a u64: virt_id indexes an xarray. */
const ULONG_MAX_BIG = (1n << 64n) - 1n;

/** Models struct iommufd_viommu_ops, as the driver's viommu_init() set them. */
export interface ViommuOps {
  /** Models destroy(). */
  readonly destroy?: () => void;
  /** Models alloc_domain_nested(): a nested domain of this vIOMMU from the user's data, or -errno. */
  readonly allocDomainNested?: (flags: number, user: IommuUserData) => KGen<IommuDomain | number>;
  /** Models get_hw_queue_size(): non-zero if the driver makes HW queues of `type`. */
  readonly getHwQueueSize?: (type: number) => number;
  /**
   * Models hw_queue_init_phys(): sets up `hwQueue` at `index` whose guest queue starts at the
   * physical address `basePa`; 0 or -errno.
   */
  readonly hwQueueInitPhys?: (hwQueue: HwQueue, index: number, basePa: number) => number;
  /** Models cache_invalidate(): the guest's invalidation requests; array.entryNum = handled. */
  readonly cacheInvalidate?: (array: IommuUserDataArray) => KGen<number>;
}

/** Models struct iommufd_viommu. */
export class Viommu {
  readonly obj: IommufdObject;
  ops: ViommuOps | null = null;
  /** Models viommu->vdevs: virt_id -> vDEVICE. */
  readonly vdevs = new Map<bigint, Vdevice>();
  /** Models viommu->veventqs: at most one vEVENTQ per type. */
  readonly veventqs: Veventq[] = [];
  constructor(
    readonly ictx: IommufdCtx,
    readonly hwpt: HwptPaging,
    readonly type: number,
    /** Models viommu->iommu_dev: the physical IOMMU (its devices may get vDEVICEs). */
    readonly iommuDev: object,
  ) {
    this.obj = new IommufdObject('VIOMMU', ictx, () => this.destroy());
  }

  /** Models iommufd_viommu_destroy(). */
  *destroy(): KGen {
    yield* [];
    this.ops?.destroy?.();
    this.hwpt.obj.users--;
    this.vdevs.clear();
  }
}

/** Models struct iommufd_vdevice: the guest's ID (virt_id) of a device behind a vIOMMU. */
export class Vdevice {
  readonly obj: IommufdObject;
  constructor(
    readonly ictx: IommufdCtx,
    readonly viommu: Viommu,
    readonly idev: IommufdDevice,
    readonly virtId: bigint,
  ) {
    this.obj = new IommufdObject('VDEVICE', ictx, () => this.destroy());
  }

  /** Models iommufd_vdevice_abort(). */
  abort(): void {
    if (this.viommu.vdevs.get(this.virtId) === this) this.viommu.vdevs.delete(this.virtId);
    this.viommu.obj.users--;
    if (this.idev.vdev === this) this.idev.vdev = null;
  }

  /** Models iommufd_vdevice_destroy(): also drops the reference on the device. */
  *destroy(): KGen {
    yield* [];
    this.abort();
    this.idev.obj.users--;
  }
}

const viommuObjects = sideTable<IommufdObject, Viommu>();
const vdevObjects = sideTable<IommufdObject, Vdevice>();

export function viommuOf(obj: IommufdObject): Viommu {
  return viommuObjects.get(obj)!;
}

/** Models iommufd_viommu_find_dev(): the device whose vDEVICE has `vdevId`, or null. */
export function viommuFindDev(viommu: Viommu, vdevId: bigint): IommufdDevice | null {
  return viommu.vdevs.get(vdevId)?.idev ?? null;
}

/** Models iommufd_viommu_get_vdev_id(): the virt_id of `idev` behind `viommu`, or -ENOENT. */
export function viommuGetVdevId(viommu: Viommu, idev: IommufdDevice): bigint | number {
  const vdev = idev.vdev;
  if (vdev === null || vdev.viommu !== viommu) return -Errno.ENOENT;
  return vdev.virtId;
}

/** Models iommufd_viommu_alloc_ioctl() (IOMMU_VIOMMU_ALLOC). */
function* viommuAllocIoctl(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const type = cmd.type as number;
  if (cmd.flags !== 0 || type === IOMMU_VIOMMU_TYPE_DEFAULT) return -Errno.EOPNOTSUPP;
  const devObj = ictx.getObject(cmd.dev_id as number, 'DEVICE');
  if (typeof devObj === 'number') return devObj;
  const idev = deviceOf(devObj);
  const ops = idev.ops;
  let rc: number;
  if (ops.getViommuSize === undefined || ops.viommuInit === undefined || ops.getViommuSize(type) === 0)
    rc = -Errno.EOPNOTSUPP;
  else {
    const ptObj = ictx.getObject(cmd.hwpt_id as number, 'HWPT_PAGING');
    if (typeof ptObj === 'number') rc = ptObj;
    else {
      const hwpt = hwptOf(ptObj);
      if (!hwpt.nestParent) rc = -Errno.EINVAL;
      else {
        const viommu = new Viommu(ictx, hwpt, type, ops.iommuDev);
        rc = ictx.objectAlloc(viommu.obj);
        if (rc === 0) {
          viommuObjects.set(viommu.obj, viommu);
          hwpt.obj.users++;
          const dataLen = cmd.data_len as number;
          const user = userData(ictx, cmd.type as number, rawPointer(ucmd, 'data_uptr'), dataLen);
          rc = yield* ops.viommuInit(viommu, hwpt.domain, dataLen !== 0 ? user : null);
          if (rc === 0 && viommu.ops === null) rc = -Errno.EOPNOTSUPP;
          if (rc === 0) {
            cmd.out_viommu_id = viommu.obj.id;
            rc = respond(ucmd);
          }
          if (rc === 0) ictx.finalize(viommu.obj);
          else {
            ictx.abort(viommu.obj);
            yield* viommu.destroy();
          }
        }
      }
      ictx.putObject(ptObj);
    }
  }
  ictx.putObject(devObj);
  return rc;
}

/** Models iommufd_vdevice_alloc_ioctl() (IOMMU_VDEVICE_ALLOC). */
function* vdeviceAllocIoctl(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  yield* [];
  const virtId = u64(cmd.virt_id);
  if (virtId > ULONG_MAX_BIG) return -Errno.EINVAL;
  const vobj = ictx.getObject(cmd.viommu_id as number, 'VIOMMU');
  if (typeof vobj === 'number') return vobj;
  const viommu = viommuOf(vobj);
  const devObj = ictx.getObject(cmd.dev_id as number, 'DEVICE');
  if (typeof devObj === 'number') {
    ictx.putObject(vobj);
    return devObj;
  }
  const idev = deviceOf(devObj);
  let rc = 0;
  if (viommu.iommuDev !== idev.ops.iommuDev) rc = -Errno.EINVAL;
  else if (idev.vdev !== null) rc = -Errno.EEXIST;
  else {
    const vdev = new Vdevice(ictx, viommu, idev, virtId);
    rc = ictx.objectAlloc(vdev.obj);
    if (rc === 0) {
      vdevObjects.set(vdev.obj, vdev);
      viommu.obj.users++;
      idev.vdev = vdev;
      if (viommu.vdevs.has(virtId)) rc = -Errno.EEXIST;
      else viommu.vdevs.set(virtId, vdev);
      if (rc === 0) {
        cmd.out_vdevice_id = vdev.obj.id;
        rc = respond(ucmd);
      }
      if (rc === 0) ictx.finalize(vdev.obj);
      else {
        ictx.abort(vdev.obj);
        vdev.abort();
      }
    }
  }
  // On success the vDEVICE keeps the reference on the device it took with the lookup.
  if (rc !== 0) ictx.putObject(devObj);
  else devObj.shorttermUsers--;
  ictx.putObject(vobj);
  return rc;
}

/**
 * Models iommufd_viommu_alloc_hwpt_nested(): a nested HWPT of the vIOMMU's driver, over the
 * vIOMMU's nesting parent; it holds the vIOMMU (not the parent). The caller finalizes or aborts.
 */
export function* viommuAllocHwptNested(
  ictx: IommufdCtx,
  viommu: Viommu,
  flags: number,
  user: IommuUserData,
): KGen<HwptNested | number> {
  if ((flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)) !== 0) return -Errno.EOPNOTSUPP;
  if (user.len === 0) return -Errno.EOPNOTSUPP;
  const alloc = viommu.ops?.allocDomainNested;
  if (alloc === undefined) return -Errno.EOPNOTSUPP;
  const hwpt = new HwptNested(ictx, viommu.hwpt);
  hwpt.viommu = viommu;
  hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  const rc = ictx.objectAlloc(hwpt.obj);
  if (rc < 0) return rc;
  registerNested(hwpt);
  viommu.obj.users++;
  const domain = yield* alloc(flags & ~IOMMU_HWPT_FAULT_ID_VALID, user);
  if (typeof domain === 'number') {
    ictx.abort(hwpt.obj);
    yield* hwpt.destroy();
    return domain;
  }
  hwpt.domain = domain;
  hwpt.hasDomain = true;
  if (domain.type !== 'nested') {
    ictx.abort(hwpt.obj);
    yield* hwpt.destroy();
    return -Errno.EINVAL;
  }
  return hwpt;
}

/** Models struct iommufd_hw_queue: a guest queue the hardware reads by physical address. */
export class HwQueue {
  readonly obj: IommufdObject;
  /** The internal access pinning the queue's pages (so IOAS_UNMAP cannot pull them). */
  access: IommufdAccess | null = null;
  /** Models hw_queue->destroy, set by the driver's hw_queue_init_phys(). */
  driverDestroy: (() => void) | null = null;
  constructor(
    readonly viommu: Viommu,
    readonly type: number,
    /** Models hw_queue->base_addr: the queue's IOVA in the nesting parent. */
    readonly baseAddr: bigint,
    readonly length: bigint,
  ) {
    this.obj = new IommufdObject('HW_QUEUE', viommu.ictx, () => this.destroy());
  }

  /** Models iommufd_hw_queue_destroy(). */
  *destroy(): KGen {
    this.driverDestroy?.();
    this.driverDestroy = null;
    if (this.access !== null) {
      const aligned = this.baseAddr - (this.baseAddr % BigInt(PAGE_SIZE));
      yield* accessUnpinPages(this.access, Number(aligned), pageAlignedLength(this.baseAddr, this.length));
      yield* accessDetachInternal(this.access);
      this.access = null;
    }
    this.viommu.obj.users--;
  }
}

const hwQueueObjects = sideTable<IommufdObject, HwQueue>();

/** PAGE_ALIGN(length + offset in the page of `iova`), or -1 if it overflows. */
function pageAlignedLength(iova: bigint, length: bigint): number {
  const page = BigInt(PAGE_SIZE);
  const total = (iova % page) + length + page - 1n;
  if (total > U64_MAX_BIG) return -1;
  return Number((total / page) * page);
}

/** Models iommufd_hw_queue_depend(): `hwQueue` keeps `on` from being destroyed first. */
export function hwQueueDepend(_hwQueue: HwQueue, on: HwQueue): void {
  on.obj.users++;
}

/** Models iommufd_hw_queue_undepend(). */
export function hwQueueUndepend(_hwQueue: HwQueue, on: HwQueue): void {
  on.obj.users--;
}

/**
 * Models iommufd_hw_queue_alloc_phys(): pins the queue's pages through an internal access of the
 * vIOMMU's IOAS; they must be physically contiguous. The base physical address, or -errno.
 */
function* hwQueueAllocPhys(hq: HwQueue): KGen<number> {
  const page = BigInt(PAGE_SIZE);
  const aligned = hq.baseAddr - (hq.baseAddr % page);
  const length = pageAlignedLength(hq.baseAddr, hq.length);
  if (length < 0) return -Errno.ERANGE;
  const access = accessCreateInternal(hq.viommu.ictx);
  let rc = yield* accessAttachInternal(access, hq.viommu.hwpt.ioas);
  if (rc < 0) return rc;
  const pfns: number[] = [];
  rc = yield* accessPinPages(access, Number(aligned), length, pfns, 0);
  if (rc < 0) {
    yield* accessDetachInternal(access);
    return rc;
  }
  for (let i = 1; i < pfns.length; i++) {
    if (pfns[i] === pfns[i - 1] + 1) continue;
    yield* accessUnpinPages(access, Number(aligned), length);
    yield* accessDetachInternal(access);
    return -Errno.EFAULT;
  }
  hq.access = access;
  return pfns[0] * PAGE_SIZE + Number(hq.baseAddr - aligned);
}

/** Models iommufd_hw_queue_alloc_ioctl() (IOMMU_HW_QUEUE_ALLOC). */
function* hwQueueAllocIoctl(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  const type = cmd.type as number;
  if (cmd.flags !== 0 || type === IOMMU_HW_QUEUE_TYPE_DEFAULT) return -Errno.EOPNOTSUPP;
  const length = u64(cmd.length);
  const iova = u64(cmd.nesting_parent_iova);
  if (length === 0n) return -Errno.EINVAL;
  // check_add_overflow(nesting_parent_iova, length - 1) in u64.
  if (iova + length - 1n > U64_MAX_BIG) return -Errno.EOVERFLOW;
  const vobj = ictx.getObject(cmd.viommu_id as number, 'VIOMMU');
  if (typeof vobj === 'number') return vobj;
  const viommu = viommuOf(vobj);
  const ops = viommu.ops;
  let rc = 0;
  if (
    ops?.getHwQueueSize === undefined ||
    ops.hwQueueInitPhys === undefined ||
    ops.getHwQueueSize(type) === 0
  )
    rc = -Errno.EOPNOTSUPP;
  else {
    const hq = new HwQueue(viommu, type, iova, length);
    rc = ictx.objectAlloc(hq.obj);
    if (rc === 0) {
      hwQueueObjects.set(hq.obj, hq);
      viommu.obj.users++;
      const basePa = yield* hwQueueAllocPhys(hq);
      if (basePa < 0) rc = basePa;
      else rc = ops.hwQueueInitPhys(hq, cmd.index as number, basePa);
      if (rc === 0) {
        cmd.out_hw_queue_id = hq.obj.id;
        rc = respond(ucmd);
      }
      if (rc === 0) ictx.finalize(hq.obj);
      else {
        ictx.abort(hq.obj);
        yield* hq.destroy();
      }
    }
  }
  ictx.putObject(vobj);
  return rc;
}

registerIoctl('IOMMU_VIOMMU_ALLOC', viommuAllocIoctl);
registerIoctl('IOMMU_HW_QUEUE_ALLOC', hwQueueAllocIoctl);
registerIoctl('IOMMU_VDEVICE_ALLOC', vdeviceAllocIoctl);
