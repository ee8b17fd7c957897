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
import { deviceOf, type IommufdDevice } from './device.ts';
import { hwptOf, HwptNested, rawPointer, registerNested, userData, type HwptPaging } from './hw_pagetable.ts';
import type { IommuDomain, IommuUserData, IommuUserDataArray } from './iommu.ts';
import { IommufdObject, registerIoctl, respond, type IommufdCtx, type Ucmd } from './main.ts';
import type { Veventq } from './veventq.ts';
import { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_FAULT_ID_VALID, u64 } from './uapi.ts';

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

registerIoctl('IOMMU_VIOMMU_ALLOC', viommuAllocIoctl);
registerIoctl('IOMMU_VDEVICE_ALLOC', vdeviceAllocIoctl);
