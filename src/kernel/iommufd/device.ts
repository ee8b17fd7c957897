/**
 * Models drivers/iommu/iommufd/device.c: bound devices (struct iommufd_device) and their
 * attach / replace / detach to HW pagetables, the automatic domain of an IOAS, and in-kernel
 * accesses (struct iommufd_access) with pin/unpin/rw and the unmap notification protocol.
 */
import { markFreed, usedAfterFree } from '../uaf.ts';
import { dropRef, takeRef } from '../refs.ts';
import { endOf, lastOf, rangeOverflows } from '../../lib/u64.ts';
import { PAGE_SIZE, ULONG_MAX } from '../../lib/units.ts';
import { Mutex } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { IommuDomain, IommuUserData } from './iommu.ts';
import { addAccess, removeAccess, tableAddDomain, type IoPagetable } from './io_pagetable.ts';
import { getIoas, ioasOf, type Ioas } from './ioas.ts';
import { ctxGet, ctxPut, IommufdObject, registerIoctl, respond, type IommufdCtx, type Ucmd } from './main.ts';
import {
  areaAddAccess,
  areaRemoveAccess,
  IOMMUFD_ACCESS_RW_WRITE,
  pagesRwAccess,
  type IoptArea,
} from './pages.ts';
import { anyHwptOf, hwptPagingAlloc, hwptPagingOf, type Hwpt } from './hw_pagetable.ts';
import { autoResponseFaults } from './fault.ts';
import { accessRemote } from './mm_glue.ts';
import type { Vdevice, Viommu } from './viommu.ts';
import { IOMMU_HW_INFO_FLAG_INPUT_TYPE, IOMMU_READ, IOMMU_WRITE, u32, u64 } from './uapi.ts';
import { sideTable } from '../../lib/snapshot.ts';

/** What a device's IOMMU driver provides (a slice of struct iommu_ops). */
export interface IommuDeviceOps {
  readonly name: string;
  /** The owner of the domains this driver allocates (domain->owner == dev_iommu_ops(dev)). */
  readonly domainOwner: string;
  /**
   * Models domain_alloc_paging_flags(): a new paging domain or -errno. `user`: the driver data
   * of IOMMU_HWPT_ALLOC with a data_type on an IOAS, or null.
   */
  domainAllocPaging(flags: number, user: IommuUserData | null): IommuDomain | number;
  /** Models domain_alloc_nested(): a nested domain over `parent` from the user's data, or -errno. */
  domainAllocNested?(parent: IommuDomain, flags: number, user: IommuUserData): KGen<IommuDomain | number>;
  /** Models attach_dev(): 0 or -errno (-EINVAL: incompatible domain). */
  attachDev(domain: IommuDomain): number;
  /** Models capable(IOMMU_CAP_DIRTY_TRACKING). */
  dirtyCapable(): boolean;
  /**
   * Models hw_info(): the driver data of the requested `type` (IOMMU_HW_INFO_TYPE_DEFAULT: the
   * driver's own), its type, and the max PASID width; or -errno (a type the driver lacks).
   */
  hwInfo(type: number): { data: Uint8Array; type: number; maxPasidLog2: number } | number;
  /** Reserved IOVA regions of the device ([start, last] pairs). */
  resvRegions(): [number, number][];
  /** The physical IOMMU behind the device (dev->iommu->iommu_dev), compared by identity. */
  readonly iommuDev: object;
  /** Models dev->iommu->max_pasids (0: no PASID support). */
  readonly maxPasids: number;
  /**
   * Models iommu_attach_device_pasid() / iommu_replace_device_pasid() down to the domain's
   * set_dev_pasid(): 0 or -errno (`old` is the domain the PASID had, for a replace).
   */
  setDevPasid?(domain: IommuDomain, pasid: number, old: IommuDomain | null): number;
  /** Models iommu_detach_device_pasid(): the blocked domain's set_dev_pasid(). */
  removeDevPasid?(pasid: number, old: IommuDomain): void;
  /** Models get_viommu_size(): non-zero if the driver supports vIOMMUs of `type`. */
  getViommuSize?(type: number): number;
  /** Models viommu_init(): the driver sets viommu.ops; 0 or -errno. */
  viommuInit?(viommu: Viommu, parent: IommuDomain, user: IommuUserData | null): KGen<number>;
}

/** Models struct iommufd_device. */
export class IommufdDevice {
  readonly obj: IommufdObject;
  hwpt: Hwpt | null = null;
  /** Models idev->iopf_enabled: attachments to HWPTs with a fault queue. */
  iopfEnabled = 0;
  /** Models idev->vdev: the vDEVICE of this device, if any. */
  vdev: Vdevice | null = null;
  /** Models igroup->pasid_attach for PASIDs other than IOMMU_NO_PASID: pasid -> HWPT. */
  readonly pasids = new Map<number, Hwpt>();
  constructor(
    readonly ictx: IommufdCtx,
    readonly ops: IommuDeviceOps,
  ) {
    this.obj = new IommufdObject('DEVICE', ictx, () => this.destroy());
  }

  *destroy(): KGen {
    if (this.hwpt !== null) yield* deviceDetach(this);
  }
}

const devObjects = sideTable<IommufdObject, IommufdDevice>();

export function deviceOf(obj: IommufdObject): IommufdDevice {
  return devObjects.get(obj)!;
}

/** Models iommufd_device_bind(): the device object, with an extra user reference held by the driver. */
export function deviceBind(ictx: IommufdCtx, ops: IommuDeviceOps): IommufdDevice | number {
  const idev = new IommufdDevice(ictx, ops);
  const rc = ictx.objectAlloc(idev.obj);
  if (rc < 0) return rc;
  devObjects.set(idev.obj, idev);
  idev.obj.users++;
  takeRef(ictx.sys, idev.obj, 'iommufd_device_bind');
  ictx.finalize(idev.obj);
  return idev;
}

/** Models iommufd_device_unbind(): detaches and destroys the device object. */
export function* deviceUnbind(idev: IommufdDevice): KGen {
  // Models iommufd_device_pre_destroy(): the device's vDEVICE goes first.
  const vdev = idev.vdev;
  if (vdev !== null) yield* idev.ictx.objectRemove(vdev.obj.id, vdev.obj);
  for (const pasid of [...idev.pasids.keys()]) devicePasidDetach(idev, pasid);
  if (idev.hwpt !== null) yield* deviceDetach(idev);
  idev.obj.users--;
  dropRef(idev.ictx.sys, idev.obj);
  yield* idev.ictx.objectRemove(idev.obj.id, idev.obj);
}

function* enforceResv(idev: IommufdDevice, iopt: IoPagetable): KGen<number> {
  if (idev.ictx.sys.inject.shouldFail('iommufd_enforce_resv')) return -Errno.ENOMEM;
  yield* iopt.iovaRwsem.downWrite();
  let rc = 0;
  for (const [s, l] of idev.ops.resvRegions()) {
    if (iopt.areaItree.firstOverlap(s, l) !== null || iopt.allowedItree.firstOverlap(s, l) !== null) {
      rc = -Errno.EADDRINUSE;
      break;
    }
    iopt.reservedItree.insert(s, l, { owner: idev });
  }
  if (rc < 0) {
    for (const n of [...iopt.reservedItree.overlapping(0, ULONG_MAX)])
      if (n.value.owner === idev) iopt.reservedItree.remove(n);
  }
  yield* iopt.iovaRwsem.upWrite();
  return rc;
}

function* removeResv(idev: IommufdDevice, iopt: IoPagetable): KGen {
  yield* iopt.iovaRwsem.downWrite();
  for (const n of [...iopt.reservedItree.overlapping(0, ULONG_MAX)])
    if (n.value.owner === idev) iopt.reservedItree.remove(n);
  yield* iopt.iovaRwsem.upWrite();
}

/** Models iommufd_fault_iopf_enable() / _disable() around a HWPT with a fault queue. */
function iopfEnable(idev: IommufdDevice, hwpt: Hwpt): void {
  if (hwpt.fault !== null) idev.iopfEnabled++;
}

function* iopfDisable(idev: IommufdDevice, hwpt: Hwpt): KGen {
  if (hwpt.fault === null) return;
  // Page requests of this device still pending in the queue are answered for it.
  yield* autoResponseFaults(idev, hwpt);
  idev.iopfEnabled--;
}

/**
 * Models iommufd_hwpt_pasid_compat() for IOMMU_NO_PASID: while a PASID of the device is attached,
 * the RID may only use a PASID-compatible HWPT.
 */
function ridPasidCompat(idev: IommufdDevice, hwpt: Hwpt): boolean {
  return hwpt.pasidCompat || idev.pasids.size === 0;
}

/** Models iommufd_hwpt_pasid_compat() for a PASID: both the HWPT and the RID's must be compatible. */
function pasidCompat(idev: IommufdDevice, hwpt: Hwpt): boolean {
  return hwpt.pasidCompat && (idev.hwpt === null || idev.hwpt.pasidCompat);
}

/** The HWPT `ptId` names for a PASID attach, or -errno (an IOAS's automatic domains are never PASID-compatible). */
function pasidHwpt(idev: IommufdDevice, ptId: number): { obj: IommufdObject; hwpt: Hwpt } | number {
  const obj = idev.ictx.getObject(ptId, 'ANY');
  if (typeof obj === 'number') return obj;
  if (obj.type !== 'HWPT_PAGING' && obj.type !== 'HWPT_NESTED') {
    idev.ictx.putObject(obj);
    return -Errno.EINVAL;
  }
  return { obj, hwpt: anyHwptOf(obj) };
}

/** Models iommufd_device_attach() with a PASID: 0 or -errno. */
export function* devicePasidAttach(idev: IommufdDevice, pasid: number, ptId: number): KGen<number> {
  const pt = pasidHwpt(idev, ptId);
  if (typeof pt === 'number') return pt;
  const { obj, hwpt } = pt;
  let rc = 0;
  if (!pasidCompat(idev, hwpt)) rc = -Errno.EINVAL;
  else if (idev.pasids.has(pasid)) rc = -Errno.EBUSY;
  else if (idev.ops.setDevPasid === undefined) rc = -Errno.EOPNOTSUPP;
  else {
    iopfEnable(idev, hwpt);
    rc = idev.ops.setDevPasid(hwpt.domain, pasid, null);
    if (rc < 0) {
      if (hwpt.fault !== null) idev.iopfEnabled--;
    } else {
      idev.pasids.set(pasid, hwpt);
      hwpt.obj.users++;
    }
  }
  idev.ictx.putObject(obj);
  return rc;
}

/** Models iommufd_device_replace() with a PASID: 0 or -errno; on failure the PASID keeps its HWPT. */
export function* devicePasidReplace(idev: IommufdDevice, pasid: number, ptId: number): KGen<number> {
  const pt = pasidHwpt(idev, ptId);
  if (typeof pt === 'number') return pt;
  const { obj, hwpt } = pt;
  const old = idev.pasids.get(pasid);
  let rc = 0;
  if (old === undefined) rc = -Errno.EINVAL;
  else if (!pasidCompat(idev, hwpt)) rc = -Errno.EINVAL;
  else if (old !== hwpt) {
    if (idev.ops.setDevPasid === undefined) rc = -Errno.EOPNOTSUPP;
    else {
      iopfEnable(idev, hwpt);
      rc = idev.ops.setDevPasid(hwpt.domain, pasid, old.domain);
      if (rc < 0) {
        if (hwpt.fault !== null) idev.iopfEnabled--;
      } else {
        // The new handle is in place before the old queue's requests are answered, so a page
        // request raised from here on reaches the new HWPT (iommufd_fault_domain_replace_dev()).
        idev.pasids.set(pasid, hwpt);
        yield* iopfDisable(idev, old);
        hwpt.obj.users++;
        old.obj.users--;
      }
    }
  }
  idev.ictx.putObject(obj);
  return rc;
}

/** Models iommufd_device_detach() with a PASID: nothing happens if the PASID is not attached. */
export function* devicePasidDetach(idev: IommufdDevice, pasid: number): KGen {
  const old = idev.pasids.get(pasid);
  if (old === undefined) return;
  idev.ops.removeDevPasid?.(pasid, old.domain);
  // Detached first (iommu_detach_device_pasid()), then the old queue's requests answered.
  idev.pasids.delete(pasid);
  yield* iopfDisable(idev, old);
  old.obj.users--;
}

/** Models iommufd_hw_pagetable_attach() + iommufd_device_do_attach(). */
function* doAttach(idev: IommufdDevice, hwpt: Hwpt): KGen<number> {
  if (idev.hwpt !== null) return -Errno.EINVAL;
  if (!ridPasidCompat(idev, hwpt)) return -Errno.EINVAL;
  const iopt = hwptPagingOf(hwpt).ioas.iopt;
  let rc = yield* enforceResv(idev, iopt);
  if (rc < 0) return rc;
  iopfEnable(idev, hwpt);
  rc = idev.ops.attachDev(hwpt.domain);
  if (rc < 0) {
    if (hwpt.fault !== null) idev.iopfEnabled--;
    yield* removeResv(idev, iopt);
    return rc;
  }
  hwpt.devices.add(idev);
  hwpt.obj.users++;
  idev.hwpt = hwpt;
  idev.obj.users++;
  return 0;
}

/** Models iommufd_device_do_replace(): reserved regions follow the IOAS of the paging HWPT. */
function* doReplace(idev: IommufdDevice, hwpt: Hwpt): KGen<number> {
  const old = idev.hwpt;
  if (old === null) return -Errno.EINVAL;
  if (!ridPasidCompat(idev, hwpt)) return -Errno.EINVAL;
  if (old === hwpt) return 0;
  const oldIoas = hwptPagingOf(old).ioas;
  const newIoas = hwptPagingOf(hwpt).ioas;
  if (oldIoas !== newIoas) {
    const rc = yield* enforceResv(idev, newIoas.iopt);
    if (rc < 0) return rc;
  }
  iopfEnable(idev, hwpt);
  const rc = idev.ops.attachDev(hwpt.domain);
  if (rc < 0) {
    if (hwpt.fault !== null) idev.iopfEnabled--;
    if (oldIoas !== newIoas) yield* removeResv(idev, newIoas.iopt);
    return rc;
  }
  // The new handle is in place before the old queue's requests are answered
  // (iommufd_fault_domain_replace_dev()): a page request raised meanwhile goes to the new HWPT.
  old.devices.delete(idev);
  hwpt.devices.add(idev);
  hwpt.obj.users++;
  idev.hwpt = hwpt;
  yield* iopfDisable(idev, old);
  if (oldIoas !== newIoas) yield* removeResv(idev, oldIoas.iopt);
  yield* dropHwptUser(old);
  return 0;
}

function* dropHwptUser(hwpt: Hwpt): KGen {
  if (hwpt.autoDomain) yield* hwpt.ictx.putAndTryDestroy(hwpt.obj);
  else hwpt.obj.users--;
}

type AttachFn = (idev: IommufdDevice, hwpt: Hwpt) => KGen<number>;

/** Models iommufd_device_auto_get_domain(): reuse a compatible automatic domain of the IOAS, or make one. */
function* autoGetDomain(idev: IommufdDevice, ioas: Ioas, attach: AttachFn): KGen<number> {
  yield* ioas.mutex.lock();
  let rc = 0;
  let done = false;
  for (const hwpt of [...ioas.hwptList]) {
    if (!hwpt.autoDomain || hwpt.obj.users === 0) continue;
    rc = yield* attach(idev, hwpt);
    if (rc === -Errno.EINVAL) continue;
    if (rc === 0) rc = hwpt.obj.id;
    done = true;
    break;
  }
  if (!done) {
    const hwpt = yield* hwptPagingAlloc(idev.ictx, ioas, idev, 0, true);
    if (typeof hwpt === 'number') rc = hwpt;
    else {
      rc = yield* attach(idev, hwpt);
      if (rc === 0) {
        rc = yield* tableAddDomain(ioas.iopt, hwpt.domain);
        if (rc === 0) hwpt.inIopt = true;
        else {
          // Undo the attach: the device goes back to having no pagetable.
          hwpt.devices.delete(idev);
          hwpt.obj.users--;
          idev.hwpt = null;
          idev.obj.users--;
          yield* removeResv(idev, ioas.iopt);
        }
      }
      if (rc < 0) {
        yield* hwpt.destroyUnfinalized();
      } else {
        hwpt.autoDomain = true;
        ioas.hwptList.push(hwpt);
        idev.ictx.finalize(hwpt.obj);
        rc = hwpt.obj.id;
      }
    }
  }
  yield* ioas.mutex.unlock();
  return rc;
}

function* changePt(idev: IommufdDevice, ptId: number, attach: AttachFn): KGen<number> {
  const ictx = idev.ictx;
  const obj = ictx.getObject(ptId, 'ANY');
  if (typeof obj === 'number') return obj;
  let rc: number;
  if (obj.type === 'IOAS') rc = yield* autoGetDomain(idev, ioasOf(obj), attach);
  else if (obj.type === 'HWPT_PAGING' || obj.type === 'HWPT_NESTED') {
    rc = yield* attach(idev, anyHwptOf(obj));
    if (rc === 0) rc = obj.id;
  } else rc = -Errno.EINVAL;
  ictx.putObject(obj);
  return rc;
}

/** Models iommufd_device_attach(): returns the HWPT id or -errno. */
export function* deviceAttach(idev: IommufdDevice, ptId: number): KGen<number> {
  return yield* changePt(idev, ptId, doAttach);
}

/** Models iommufd_device_replace(): returns the HWPT id or -errno. */
export function* deviceReplace(idev: IommufdDevice, ptId: number): KGen<number> {
  return yield* changePt(idev, ptId, doReplace);
}

/** Models iommufd_device_detach(). */
export function* deviceDetach(idev: IommufdDevice): KGen {
  const hwpt = idev.hwpt;
  if (hwpt === null) return;
  // Detached first (iommu_detach_group_handle()), then the queue's requests answered
  // (iommufd_fault_domain_detach_dev()).
  hwpt.devices.delete(idev);
  idev.hwpt = null;
  yield* iopfDisable(idev, hwpt);
  idev.obj.users--;
  yield* removeResv(idev, hwptPagingOf(hwpt).ioas.iopt);
  yield* dropHwptUser(hwpt);
}

// -------------------------------------------------------------------------------------------
// Accesses

/** Models struct iommufd_access_ops. */
export interface AccessOps {
  readonly needsPinPages: boolean;
  /** Called when [iova, iova+length) is being unmapped: must unpin it before returning. */
  unmap(iova: number, length: number): KGen;
}

/** Models struct iommufd_access. */
export class IommufdAccess {
  readonly obj: IommufdObject;
  ioas: Ioas | null = null;
  ioasUnpin: Ioas | null = null;
  readonly ioasLock: Mutex;
  readonly iovaAlignment: number;
  ioptAccessListId = 0;
  /** Made by iommufd_access_create_internal(): no object id, no ops, its pins lock the areas. */
  internal = false;
  constructor(
    readonly ictx: IommufdCtx,
    readonly ops: AccessOps,
  ) {
    this.obj = new IommufdObject('ACCESS', ictx, () => this.destroyObj());
    this.ioasLock = new Mutex(
      ictx.sys.sched,
      `access[${ictx.sys.nextId('access')}].ioas_lock`,
      'access.ioas_lock',
    );
    this.iovaAlignment = ops.needsPinPages ? PAGE_SIZE : 1;
  }

  *destroyObj(): KGen {
    if (this.ioas !== null) yield* accessChangeIoas(this, null);
  }
}

/** Models iommufd_access_create(): the driver keeps an extra user reference. */
export function accessCreate(ictx: IommufdCtx, ops: AccessOps): IommufdAccess | number {
  const access = new IommufdAccess(ictx, ops);
  const rc = ictx.objectAlloc(access.obj);
  if (rc < 0) return rc;
  access.obj.users++;
  takeRef(ictx.sys, access.obj, 'iommufd_access_create');
  // The access keeps the iommufd file open until it is destroyed.
  ctxGet(ictx, 'iommufd_access_create');
  ictx.finalize(access.obj);
  return access;
}

/**
 * Models iommufd_access_create_internal(): an access iommufd itself uses (a HW queue's), with no
 * object id and no context reference; its pins lock the areas against unmap.
 */
export function accessCreateInternal(ictx: IommufdCtx): IommufdAccess {
  const access = new IommufdAccess(ictx, {
    needsPinPages: true,
    *unmap() {
      yield* [];
    },
  });
  access.internal = true;
  return access;
}

/** Models iommufd_access_attach_internal(). */
export function* accessAttachInternal(access: IommufdAccess, ioas: Ioas): KGen<number> {
  return yield* accessChangeIoas(access, ioas);
}

/** Models iommufd_access_detach_internal(). */
export function* accessDetachInternal(access: IommufdAccess): KGen {
  yield* accessChangeIoas(access, null);
}

/** Models iommufd_access_destroy(). */
export function* accessDestroy(access: IommufdAccess): KGen {
  const sys = access.ictx.sys;
  if (usedAfterFree(sys, access, 'iommufd_access_destroy')) return;
  access.obj.users--;
  dropRef(sys, access.obj);
  yield* access.ictx.objectRemove(access.obj.id, access.obj);
  markFreed(sys, access, `iommufd access ${access.obj.id}`, 'iommufd_access_destroy');
  yield* ctxPut(access.ictx);
}

/** Models iommufd_access_change_ioas(): switch (or detach with null) the IOAS of an access. */
function* accessChangeIoas(access: IommufdAccess, newIoas: Ioas | null): KGen<number> {
  yield* access.ioasLock.lock();
  const cur = access.ioas;
  if (cur !== access.ioasUnpin) {
    yield* access.ioasLock.unlock();
    return -Errno.EBUSY;
  }
  if (cur === newIoas) {
    yield* access.ioasLock.unlock();
    return 0;
  }
  if (newIoas !== null) {
    const id = yield* addAccess(newIoas.iopt, access);
    if (id < 0) {
      yield* access.ioasLock.unlock();
      return id;
    }
    newIoas.obj.users++;
    takeRef(access.ictx.sys, newIoas.obj, 'iommufd_access_attach');
    access.ioas = newIoas;
    access.ioasUnpin = newIoas;
    const oldId = access.ioptAccessListId;
    access.ioptAccessListId = id;
    if (cur !== null) yield* detachOld(access, cur, oldId);
  } else {
    access.ioas = null;
    if (cur !== null) yield* detachOld(access, cur, access.ioptAccessListId);
    access.ioasUnpin = null;
  }
  yield* access.ioasLock.unlock();
  return 0;
}

function* detachOld(access: IommufdAccess, old: Ioas, oldId: number): KGen {
  const keepUnpin = access.ioasUnpin;
  access.ioasUnpin = old;
  // The driver must drop every pin of the old IOAS; ioas_lock is not held across the callback.
  yield* access.ioasLock.unlock();
  yield* access.ops.unmap(0, ULONG_MAX);
  yield* access.ioasLock.lock();
  access.ioasUnpin = keepUnpin === old ? null : keepUnpin;
  if (access.ioas !== null) access.ioasUnpin = access.ioas;
  yield* removeAccess(old.iopt, oldId);
  old.obj.users--;
  dropRef(access.ictx.sys, old.obj);
}

/** Models iommufd_access_attach(). */
export function* accessAttach(access: IommufdAccess, ioasId: number): KGen<number> {
  if (usedAfterFree(access.ictx.sys, access, 'iommufd_access_attach')) return -Errno.ENOENT;
  if (access.ioas !== null) return -Errno.EINVAL;
  return yield* accessReplace(access, ioasId);
}

/** Models iommufd_access_replace(). */
export function* accessReplace(access: IommufdAccess, ioasId: number): KGen<number> {
  if (usedAfterFree(access.ictx.sys, access, 'iommufd_access_replace')) return -Errno.ENOENT;
  const ioas = getIoas(access.ictx, ioasId);
  if (typeof ioas === 'number') return ioas;
  const rc = yield* accessChangeIoas(access, ioas);
  access.ictx.putObject(ioas.obj);
  return rc;
}

/** Models iommufd_access_detach(). */
export function* accessDetach(access: IommufdAccess): KGen {
  if (usedAfterFree(access.ictx.sys, access, 'iommufd_access_detach')) return;
  yield* accessChangeIoas(access, null);
}

/** Models iommufd_access_notify_unmap(): every access of the IOAS must drop pins in the range. */
export function* accessNotifyUnmap(iopt: IoPagetable, iova: number, length: number): KGen {
  for (const access of [...iopt.accessList.values()]) {
    if (!(access instanceof IommufdAccess)) continue;
    if (access.obj.users === 0) continue;
    access.obj.users++;
    yield* access.ops.unmap(iova, length);
    access.obj.users--;
  }
}

/** Walks contiguous areas over [iova, last]; stops at a gap or an area being set up. */
function contigAreas(
  iopt: IoPagetable,
  iova: number,
  last: number,
): { areas: IoptArea[]; complete: boolean } {
  const areas: IoptArea[] = [];
  let cur = iova;
  for (const area of iopt.areas(iova, last)) {
    if (area.iova > cur || area.pages === null) break;
    areas.push(area);
    if (area.last >= last) return { areas, complete: true };
    cur = endOf(area.last);
  }
  return { areas, complete: false };
}

/** Models iommufd_access_pin_pages(): PFNs of [iova, iova+length) into out, or -errno. */
export function* accessPinPages(
  access: IommufdAccess,
  iova: number,
  length: number,
  out: number[],
  flags: number,
): KGen<number> {
  if (usedAfterFree(access.ictx.sys, access, 'iommufd_access_pin_pages')) return -Errno.ENOENT;
  if (length === 0) return -Errno.EINVAL;
  if (rangeOverflows(iova, length)) return -Errno.EOVERFLOW;
  const last = lastOf(iova + length);
  yield* access.ioasLock.lock();
  const ioas = access.ioas;
  if (ioas === null) {
    yield* access.ioasLock.unlock();
    return -Errno.ENOENT;
  }
  const iopt = ioas.iopt;
  yield* iopt.iovaRwsem.downRead();
  const { areas, complete } = contigAreas(iopt, iova, last);
  let rc = 0;
  const done: [IoptArea, number, number][] = [];
  for (const area of areas) {
    const s = Math.max(iova, area.iova);
    const e = Math.min(last, area.last);
    if (
      area.preventAccess ||
      area.startByte(s) % PAGE_SIZE !== 0 ||
      (e !== last && area.startByte(endOf(e)) % PAGE_SIZE !== 0)
    ) {
      rc = -Errno.EINVAL;
      break;
    }
    const need = (flags & IOMMUFD_ACCESS_RW_WRITE) !== 0 ? IOMMU_WRITE : IOMMU_READ;
    if ((area.iommuProt & need) === 0) {
      rc = -Errno.EPERM;
      break;
    }
    const first = area.iovaToIndex(s);
    const lastIdx = area.lastIndex(e);
    rc = yield* areaAddAccess(area, first, lastIdx, out, access.internal);
    if (rc < 0) break;
    done.push([area, first, lastIdx]);
  }
  if (rc === 0 && !complete) rc = -Errno.ENOENT;
  if (rc < 0) {
    for (const [area, f, l] of done) yield* areaRemoveAccess(area, f, l, access.internal);
    out.length = 0;
  }
  yield* iopt.iovaRwsem.upRead();
  yield* access.ioasLock.unlock();
  return rc;
}

/** Models iommufd_access_unpin_pages(): must match an earlier pin exactly. */
export function* accessUnpinPages(access: IommufdAccess, iova: number, length: number): KGen {
  if (usedAfterFree(access.ictx.sys, access, 'iommufd_access_unpin_pages')) return;
  if (length === 0) return;
  const last = lastOf(iova + length);
  yield* access.ioasLock.lock();
  const ioas = access.ioasUnpin;
  if (ioas === null) {
    yield* access.ioasLock.unlock();
    access.ictx.sys.sched.report({ oracle: 'iommufd', message: 'access unpin with no IOAS' });
    return;
  }
  const iopt = ioas.iopt;
  yield* iopt.iovaRwsem.downRead();
  const { areas, complete } = contigAreas(iopt, iova, last);
  for (const area of areas) {
    const s = Math.max(iova, area.iova);
    const e = Math.min(last, area.last);
    const ok = yield* areaRemoveAccess(area, area.iovaToIndex(s), area.lastIndex(e), access.internal);
    if (!ok)
      access.ictx.sys.sched.report({
        oracle: 'iommufd',
        message: `unpin of [${iova}, +${length}) matches no pin`,
      });
  }
  if (!complete)
    access.ictx.sys.sched.report({
      oracle: 'iommufd',
      message: `unpin of [${iova}, +${length}) not fully mapped`,
    });
  yield* iopt.iovaRwsem.upRead();
  yield* access.ioasLock.unlock();
}

/** Models iommufd_access_rw(). */
export function* accessRw(
  access: IommufdAccess,
  iova: number,
  data: Uint8Array,
  flags: number,
): KGen<number> {
  if (usedAfterFree(access.ictx.sys, access, 'iommufd_access_rw')) return -Errno.ENOENT;
  if (data.length === 0) return -Errno.EINVAL;
  if (rangeOverflows(iova, data.length)) return -Errno.EOVERFLOW;
  const last = lastOf(iova + data.length);
  yield* access.ioasLock.lock();
  const ioas = access.ioas;
  if (ioas === null) {
    yield* access.ioasLock.unlock();
    return -Errno.ENOENT;
  }
  const iopt = ioas.iopt;
  yield* iopt.iovaRwsem.downRead();
  const { areas, complete } = contigAreas(iopt, iova, last);
  let rc = 0;
  for (const area of areas) {
    const s = Math.max(iova, area.iova);
    const e = Math.min(last, area.last);
    if (area.preventAccess) {
      rc = -Errno.EINVAL;
      break;
    }
    const need = (flags & IOMMUFD_ACCESS_RW_WRITE) !== 0 ? IOMMU_WRITE : IOMMU_READ;
    if ((area.iommuProt & need) === 0) {
      rc = -Errno.EPERM;
      break;
    }
    rc = yield* pagesRwAccess(
      area.pages!,
      area.startByte(s),
      data.subarray(s - iova, endOf(e) - iova),
      flags,
      access.ictx.current.mm,
    );
    if (rc < 0) break;
  }
  if (rc === 0 && !complete) rc = -Errno.ENOENT;
  yield* iopt.iovaRwsem.upRead();
  yield* access.ioasLock.unlock();
  return rc;
}

// -------------------------------------------------------------------------------------------
// IOMMU_GET_HW_INFO

/**
 * The user copy of iommufd_get_hw_info(): copy_to_user() of what fits `len` bytes at `uptr`, then
 * clear_user() of the rest, a page at a time (it stops at the first page it cannot write, as the
 * kernel's does); 0 or -EFAULT.
 */
function* copyHwInfo(ictx: IommufdCtx, uptr: bigint, len: number, data: Uint8Array): KGen<number> {
  const mm = ictx.current.mm;
  if (uptr + BigInt(len) > BigInt(Number.MAX_SAFE_INTEGER)) return -Errno.EFAULT;
  const addr = Number(uptr);
  const n = Math.min(len, data.length);
  if (n > 0 && (yield* accessRemote(ictx.sys, mm, addr, data.slice(0, n), true)) !== n) return -Errno.EFAULT;
  for (let off = n; off < len;) {
    const chunk = Math.min(len - off, PAGE_SIZE - ((addr + off) % PAGE_SIZE));
    if ((yield* accessRemote(ictx.sys, mm, addr + off, new Uint8Array(chunk), true)) !== chunk)
      return -Errno.EFAULT;
    off += chunk;
  }
  return 0;
}

/** Models iommufd_get_hw_info(). */
function* getHwInfo(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd, user } = ucmd;
  const flags = cmd.flags as number;
  if ((flags & ~IOMMU_HW_INFO_FLAG_INPUT_TYPE) !== 0) return -Errno.EOPNOTSUPP;
  if (cmd.__reserved !== 0 || cmd.__reserved1 !== 0 || cmd.__reserved2 !== 0) return -Errno.EOPNOTSUPP;
  // in_data_type and out_data_type are one union member of the uAPI struct; without the flag
  // whatever the user left there is taken as IOMMU_HW_INFO_TYPE_DEFAULT.
  const inType =
    (flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE) === 0
      ? 0
      : user.in_data_type !== undefined
        ? u32(user.in_data_type)
        : (cmd.out_data_type as number);
  const obj = ictx.getObject(cmd.dev_id as number, 'DEVICE');
  if (typeof obj === 'number') return obj;
  const idev = deviceOf(obj);
  const info = idev.ops.hwInfo(inType);
  if (typeof info === 'number') {
    ictx.putObject(obj);
    return info;
  }
  const dataLen = cmd.data_len as number;
  const buf = user.data_uptr;
  if (dataLen > 0 && buf instanceof Uint8Array) {
    const n = Math.min(dataLen, info.data.length, buf.length);
    buf.set(info.data.subarray(0, n));
    if (dataLen > info.data.length) buf.fill(0, info.data.length, Math.min(dataLen, buf.length));
  } else if (dataLen > 0) {
    // copy_to_user() of min(data_len, the driver's length) bytes, then clear_user() of the rest
    // of the user's buffer; either faulting is -EFAULT.
    const rc = yield* copyHwInfo(ictx, u64(cmd.data_uptr), dataLen, info.data);
    if (rc < 0) {
      ictx.putObject(obj);
      return rc;
    }
  }
  cmd.data_len = info.data.length;
  cmd.out_data_type = info.type;
  cmd.out_max_pasid_log2 = info.maxPasidLog2;
  cmd.out_capabilities = idev.ops.dirtyCapable() ? 1n : 0n;
  ictx.putObject(obj);
  const rc = respond(ucmd);
  if (user.in_data_type !== undefined) user.in_data_type = cmd.out_data_type;
  return rc;
}

registerIoctl('IOMMU_GET_HW_INFO', getHwInfo);
