/**
 * IOMMU drivers (include/linux/iommu.h): the driver implements struct iommu_ops for its IOMMU,
 * struct iommu_domain_ops for the domains it allocates and struct iommu_dirty_ops for dirty
 * tracking, and registers the IOMMU with iommu_device_register(). Devices behind it are probed
 * onto it (iommu_probe_device()), and a bus driver such as VFIO hands such a device to iommufd
 * with iommufd_device_bind() and attaches it to an IOAS or a HW pagetable.
 *
 * Every op gets the driver's own object first, as the kernel's ops get the iommu_domain or the
 * device the driver reaches its state from (container_of). The iommufd core calls them: a device
 * attached to an IOAS gets an automatic domain from domainAllocPagingFlags(), then map_pages /
 * unmap_pages for every IOAS_MAP / IOAS_UNMAP.
 */
import { sideTable } from '../../../lib/snapshot.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import {
  deviceAttach,
  deviceBind,
  deviceDetach,
  devicePasidAttach,
  devicePasidDetach,
  devicePasidReplace,
  deviceReplace,
  deviceUnbind,
  type IommufdDevice,
  type IommuDeviceOps,
} from '../../iommufd/device.ts';
import { IommuDomain, pickPgsize, type IommuUserData, type IommuUserDataArray } from '../../iommufd/iommu.ts';
import { allocMmap, ctxGet, ctxPut, destroyMmap, type IommufdCtx } from '../../iommufd/main.ts';
import type { System } from '../../system.ts';
import {
  hwQueueDepend,
  hwQueueUndepend,
  viommuFindDev,
  type HwQueue as IommufdHwQueue,
  type Viommu as IommufdViommu,
} from '../../iommufd/viommu.ts';
import { viommuReportEvent } from '../../iommufd/veventq.ts';

export {
  IommuDomain,
  type IommufdDevice,
  type IommufdHwQueue,
  type IommufdViommu,
  type IommuUserData,
  type IommuUserDataArray,
};
/** Models IOMMU_READ / IOMMU_WRITE: the prot bits map_pages() gets. */
export { IOMMU_READ, IOMMU_WRITE } from '../../iommufd/uapi.ts';

/** Models enum iommu_cap (the capabilities iommufd asks capable() about). */
export const IOMMU_CAP_CACHE_COHERENCY = 0;
export const IOMMU_CAP_ENFORCE_CACHE_COHERENCY = 3;
export const IOMMU_CAP_DIRTY_TRACKING = 5;
/** Models IOMMU_DIRTY_NO_CLEAR: read_and_clear_dirty() reports without clearing. */
export const IOMMU_DIRTY_NO_CLEAR = 1 << 0;

/** Models struct iommu_dirty_bitmap: where read_and_clear_dirty() records dirty IOVA ranges. */
export interface IommuDirtyBitmap {
  /**
   * Models dirty->bitmap != NULL: false when the core only clears dirty bits (before it enables
   * tracking), so a driver that refuses reads while tracking is off can still be asked to clear.
   */
  readonly bitmap: boolean;
  /** Models iommu_dirty_bitmap_record() (a no-op without a bitmap). */
  record(iova: number, length: number): void;
}

/**
 * Models struct iommu_domain_ops. `D` is the driver's domain object given to iommuDomainInit();
 * `P` the driver data of its devices (iommuProbeDevice()).
 */
export interface IommuDomainOps<D, P = unknown> {
  /** Models attach_dev(): 0, or -errno (-EINVAL: this device cannot use this domain). */
  attachDev(domain: D, dev: IommuDev<P>): number;
  /**
   * Models set_dev_pasid(): the device's `pasid` now translates through this domain; `old` is the
   * domain it had (a replace) or null. 0, or -errno leaving the PASID on `old`.
   */
  setDevPasid?(domain: D, dev: IommuDev<P>, pasid: number, old: IommuDomain | null): number;
  /**
   * Models map_pages(): maps `pgcount` pages of `pgsize` bytes at iova -> paddr with `prot`
   * (IOMMU_READ | IOMMU_WRITE). 0, or -errno having mapped nothing.
   */
  mapPages?(domain: D, iova: number, paddr: number, pgsize: number, pgcount: number, prot: number): number;
  /** Models unmap_pages(): unmaps `pgcount` pages of `pgsize` at iova; returns the bytes unmapped. */
  unmapPages?(domain: D, iova: number, pgsize: number, pgcount: number): number;
  /** Models iova_to_phys(): the physical address `iova` translates to, or -1 if none. */
  iovaToPhys?(domain: D, iova: number): number;
  /**
   * Models cache_invalidate_user() of a nested domain: handles the user's invalidation requests
   * in order, stores how many it handled in array.entryNum, and returns 0 or the first error.
   */
  cacheInvalidateUser?(domain: D, array: IommuUserDataArray): KGen<number>;
  /** Models free(): the domain is no longer used by anything. */
  free(domain: D): void;
}

/** Models struct iommu_dirty_ops. */
export interface IommuDirtyOps<D> {
  /** Models set_dirty_tracking(): 0 or -errno. */
  setDirtyTracking(domain: D, enable: boolean): number;
  /**
   * Models read_and_clear_dirty(): records every dirty range of [iova, iova + size) in `dirty`,
   * clearing the dirty bits unless `flags` has IOMMU_DIRTY_NO_CLEAR. 0 or -errno.
   */
  readAndClearDirty(domain: D, iova: number, size: number, flags: number, dirty: IommuDirtyBitmap): number;
}

/** What iommuDomainInit() sets in the struct iommu_domain a driver allocates. */
export interface IommuDomainSpec<D, P> {
  /** IOMMU_DOMAIN_UNMANAGED (a paging domain) or IOMMU_DOMAIN_NESTED (stage 1 over a parent). */
  readonly type: 'paging' | 'nested';
  /** Models domain->pgsize_bitmap: the IO page sizes map_pages() takes (paging domains). */
  readonly pgsizeBitmap?: number;
  /** Models domain->geometry: the IOVA aperture [apertureStart, apertureEnd] (paging domains). */
  readonly geometry?: { readonly apertureStart: number; readonly apertureEnd: number };
  readonly ops: IommuDomainOps<D, P>;
  /** Models domain->dirty_ops: set for a domain that tracks dirty IOVAs. */
  readonly dirtyOps?: IommuDirtyOps<D>;
}

/** Models struct iommu_ops. `P` is the driver data of the devices behind the IOMMU. */
export interface IommuOps<P> {
  /** The driver's name; domains are owned by it (domain->owner). */
  readonly name: string;
  /** Models capable(): whether `dev` has the capability (IOMMU_CAP_*). */
  capable?(dev: IommuDev<P>, cap: number): boolean;
  /**
   * Models hw_info(): the driver's hardware information for IOMMU_GET_HW_INFO and its type.
   * `type` is the type user space asked for (IOMMU_HW_INFO_TYPE_DEFAULT, 0: the driver's
   * choice); a driver without that type returns -EOPNOTSUPP.
   */
  hwInfo?(dev: IommuDev<P>, type: number): { data: Uint8Array; type: number } | number;
  /**
   * Models domain_alloc_paging_flags(): a new paging domain (iommuDomainInit()) for `dev`, or
   * -errno. `flags` are IOMMU_HWPT_ALLOC_*; `userData` is the driver data of IOMMU_HWPT_ALLOC, or
   * null.
   */
  domainAllocPagingFlags(
    dev: IommuDev<P>,
    flags: number,
    userData: IommuUserData | null,
  ): IommuDomain | number;
  /** Models domain_alloc_nested(): a nested domain over `parent` from the user's data, or -errno. */
  domainAllocNested?(
    dev: IommuDev<P>,
    parent: IommuDomain,
    flags: number,
    userData: IommuUserData,
  ): KGen<IommuDomain | number>;
  /** Models get_resv_regions(): the device's reserved IOVA ranges, as [start, last] pairs. */
  getResvRegions?(dev: IommuDev<P>): [number, number][];
  /**
   * Models blocked_domain->ops->set_dev_pasid(): `pasid` of `dev` stops translating (a PASID
   * detach, leaving `old`). A driver without it supports no PASID attach (-EOPNOTSUPP).
   */
  blockedSetDevPasid?(dev: IommuDev<P>, pasid: number, old: IommuDomain): void;
  /**
   * Models get_viommu_size(): non-zero if the driver makes vIOMMUs of `viommuType` for `dev` (the
   * kernel's size of the driver's vIOMMU structure), 0 if not (IOMMU_VIOMMU_ALLOC: -EOPNOTSUPP).
   */
  getViommuSize?(dev: IommuDev<P>, viommuType: number): number;
  /**
   * Models viommu_init(): sets up a vIOMMU over the nesting parent domain `parent`, from the
   * user's data or null; it must give the vIOMMU its ops with viommuSetOps(). 0 or -errno.
   */
  viommuInit?(
    dev: IommuDev<P>,
    viommu: IommufdViommu,
    parent: IommuDomain,
    userData: IommuUserData | null,
  ): KGen<number>;
}

/** Models struct iommufd_viommu_ops. `V` is the driver's vIOMMU object given to viommuSetOps(). */
export interface IommufdViommuOps<V> {
  /** Models destroy(): the vIOMMU object is being destroyed. */
  destroy?(viommu: V): void;
  /** Models alloc_domain_nested(): a nested domain (iommuDomainInit, type 'nested') or -errno. */
  allocDomainNested?(viommu: V, flags: number, userData: IommuUserData): KGen<IommuDomain | number>;
  /**
   * Models cache_invalidate(): the guest's invalidation requests of IOMMU_HWPT_INVALIDATE on the
   * vIOMMU; store how many were handled in array.entryNum. 0 or -errno.
   */
  cacheInvalidate?(viommu: V, array: IommuUserDataArray): KGen<number>;
  /** Models get_hw_queue_size(): non-zero if the driver makes HW queues of `type`. */
  getHwQueueSize?(viommu: V, type: number): number;
  /**
   * Models hw_queue_init_phys(): sets up `hwQueue` as queue `index`, whose guest memory the core
   * pinned and found contiguous from the physical address `basePa`. 0 or -errno. The driver may
   * set hwQueue.driverDestroy (hw_queue->destroy).
   */
  hwQueueInitPhys?(viommu: V, hwQueue: IommufdHwQueue, index: number, basePa: number): number;
}

/**
 * Models iommufd_viommu_alloc_mmap(): lets userspace mmap() `length` bytes of physical memory
 * from `physStart` through the iommufd, at the returned offset; the mapping holds the vIOMMU.
 */
export function iommufdViommuAllocMmap(viommu: IommufdViommu, physStart: number, length: number): number {
  return allocMmap(viommu.ictx, viommu.obj, physStart, length);
}

/** Models iommufd_viommu_destroy_mmap(). */
export function iommufdViommuDestroyMmap(viommu: IommufdViommu, offset: number): void {
  destroyMmap(viommu.ictx, offset);
}

/** Models iommufd_hw_queue_depend(): `hwQueue` keeps `on` from being destroyed before it. */
export function iommufdHwQueueDepend(hwQueue: IommufdHwQueue, on: IommufdHwQueue): void {
  hwQueueDepend(hwQueue, on);
}

/** Models iommufd_hw_queue_undepend(). */
export function iommufdHwQueueUndepend(hwQueue: IommufdHwQueue, on: IommufdHwQueue): void {
  hwQueueUndepend(hwQueue, on);
}

/** Models struct iommu_device: one registered IOMMU and its ops. */
export class IommuDevice<P = unknown> {
  constructor(
    readonly sys: System,
    readonly name: string,
    readonly ops: IommuOps<P>,
  ) {}
}

/** Models a struct device behind an IOMMU (dev->iommu after iommu_probe_device()). */
export class IommuDev<P = unknown> {
  constructor(
    readonly iommu: IommuDevice<P>,
    readonly name: string,
    /** The driver's per-device data. */
    readonly priv: P,
    /** Models dev->iommu->max_pasids (0: the device has no PASID support). */
    readonly maxPasids: number,
  ) {}
}

const viommus = sideTable<
  IommufdViommu,
  { readonly ops: IommufdViommuOps<unknown>; readonly data: unknown }
>();

/**
 * Models viommu->ops = ops in the driver's viommu_init(): `data` is the driver's own vIOMMU object
 * (the structure the kernel's driver embeds the core vIOMMU in), which the ops get first.
 */
export function viommuSetOps<V>(viommu: IommufdViommu, ops: IommufdViommuOps<V>, data: V): void {
  viommus.set(viommu, { ops: ops, data });
  viommu.ops = {
    destroy: () => {
      ops.destroy?.(data);
    },
    allocDomainNested:
      ops.allocDomainNested === undefined
        ? undefined
        : function* (flags, user) {
            if (ops.allocDomainNested === undefined) return -Errno.EOPNOTSUPP;
            return yield* ops.allocDomainNested(data, flags, user);
          },
    getHwQueueSize: (type) => ops.getHwQueueSize?.(data, type) ?? 0,
    hwQueueInitPhys: (hq, index, basePa) =>
      ops.hwQueueInitPhys === undefined ? -Errno.EOPNOTSUPP : ops.hwQueueInitPhys(data, hq, index, basePa),
    cacheInvalidate:
      ops.cacheInvalidate === undefined
        ? undefined
        : function* (array) {
            if (ops.cacheInvalidate === undefined) return -Errno.EOPNOTSUPP;
            return yield* ops.cacheInvalidate(data, array);
          },
  };
}

/** The driver's object behind `viommu` if its ops are `ops` (container_of), or null. */
export function iommufdViommuPriv<V>(viommu: IommufdViommu, ops: IommufdViommuOps<V>): V | null {
  const e = viommus.get(viommu);
  return e !== undefined && e.ops === (ops as IommufdViommuOps<unknown>) ? (e.data as V) : null;
}

/** Models iommufd_viommu_find_dev(): the device the guest calls `vdevId` behind `viommu`, or null. */
export function iommufdViommuFindDev(viommu: IommufdViommu, vdevId: bigint): IommuDev | null {
  const idev = viommuFindDev(viommu, vdevId);
  return idev === null ? null : (idevDevs.get(idev) ?? null);
}

/** Models iommufd_viommu_get_vdev_id(): the guest's ID of `dev` behind `viommu`, or -ENOENT. */
export function iommufdViommuGetVdevId(viommu: IommufdViommu, dev: IommuDev): bigint | number {
  for (const vdev of viommu.vdevs.values()) if (idevDevs.get(vdev.idev) === dev) return vdev.virtId;
  return -Errno.ENOENT;
}

/**
 * Models iommufd_viommu_report_event(): queues `data` (the driver's event struct) on the vIOMMU's
 * vEVENTQ of `type` for the guest to read; 0, or -EOPNOTSUPP if the vIOMMU has no such queue.
 */
export function* iommufdViommuReportEvent(
  viommu: IommufdViommu,
  type: number,
  data: Uint8Array,
): KGen<number> {
  return yield* viommuReportEvent(viommu, type, data);
}

interface DomainEntry {
  readonly ops: IommuDomainOps<unknown>;
  readonly priv: unknown;
}

const registered = sideTable<System, Map<string, IommuDevice>>();
const domains = sideTable<IommuDomain, DomainEntry>();
const idevDevs = sideTable<IommufdDevice, IommuDev>();

/**
 * Models iommu_device_register(): registers an IOMMU named `name` whose ops the core calls.
 * -EEXIST if an IOMMU of that name is registered, -EINVAL for ops without a name.
 */
export function iommuDeviceRegister<P>(sys: System, name: string, ops: IommuOps<P>): IommuDevice<P> | number {
  if (typeof ops.name !== 'string' || ops.name === '') return -Errno.EINVAL;
  let m = registered.get(sys);
  if (m === undefined) {
    m = new Map();
    registered.set(sys, m);
  }
  if (m.has(name)) return -Errno.EEXIST;
  const iommu = new IommuDevice(sys, name, ops);
  m.set(name, iommu);
  return iommu;
}

/** Models iommu_device_unregister(). */
export function iommuDeviceUnregister(iommu: IommuDevice<never>): void {
  registered.get(iommu.sys)?.delete(iommu.name);
}

/** The registered IOMMU named `name`, or null. */
export function iommuDeviceByName(sys: System, name: string): IommuDevice | null {
  return registered.get(sys)?.get(name) ?? null;
}

/**
 * Models iommu_probe_device(): `name` (with the driver's data `priv`) is now a device behind
 * `iommu`. `maxPasids` is dev->iommu->max_pasids.
 */
export function iommuProbeDevice<P>(
  iommu: IommuDevice<P>,
  name: string,
  priv: P,
  opts: { maxPasids?: number } = {},
): IommuDev<P> {
  return new IommuDev(iommu, name, priv, opts.maxPasids ?? 0);
}

/**
 * Initializes the struct iommu_domain of a driver's domain object `priv` (what the driver fills in
 * before returning it from a domain_alloc op, and what the core sets: owner and ops).
 */
export function iommuDomainInit<D, P>(
  iommu: IommuDevice<P>,
  priv: D,
  spec: IommuDomainSpec<D, P>,
): IommuDomain {
  const { ops, dirtyOps } = spec;
  const sys = iommu.sys;
  const apStart = spec.geometry?.apertureStart ?? 0;
  const apEnd = spec.geometry?.apertureEnd ?? 0;
  let domain: IommuDomain | null = null;
  const d = new IommuDomain(
    sys,
    sys.nextId('iommu_domain'),
    spec.type === 'paging' ? (spec.pgsizeBitmap ?? 0) : 0,
    apStart,
    apEnd,
    {
      mapPages: (iova, paddr, pgsize, count, prot) =>
        ops.mapPages === undefined ? -Errno.EINVAL : ops.mapPages(priv, iova, paddr, pgsize, count, prot),
      // Models __iommu_unmap(): the range in the largest page sizes its alignment allows, until
      // the driver unmaps nothing more.
      unmapRange: (iova, size) => {
        if (ops.unmapPages === undefined || domain === null) return 0;
        let done = 0;
        while (done < size) {
          const { pgsize, count } = pickPgsize(domain, iova + done, iova + done, size - done);
          const n = ops.unmapPages(priv, iova + done, pgsize, count);
          if (n <= 0) break;
          done += n;
        }
        return done;
      },
      iovaToPhys: (iova) => (ops.iovaToPhys === undefined ? -1 : ops.iovaToPhys(priv, iova)),
      free: () => {
        ops.free(priv);
      },
    },
    iommu.ops.name,
  );
  domain = d;
  d.type = spec.type;
  if (dirtyOps !== undefined)
    d.dirtyOps = {
      setDirtyTracking: (enable) => dirtyOps.setDirtyTracking(priv, enable),
      readAndClearDirty: (iova, size, noClear, record) =>
        dirtyOps.readAndClearDirty(
          priv,
          iova,
          size,
          noClear ? IOMMU_DIRTY_NO_CLEAR : 0,
          record === null ? { bitmap: false, record: () => {} } : { bitmap: true, record },
        ),
    };
  if (ops.cacheInvalidateUser !== undefined)
    d.cacheInvalidateUser = function* (array) {
      if (ops.cacheInvalidateUser === undefined) return -Errno.EOPNOTSUPP;
      return yield* ops.cacheInvalidateUser(priv, array);
    };
  domains.set(d, { ops: ops, priv });
  return d;
}

/**
 * The driver's object behind `domain` if the domain's ops are `ops` (container_of after the
 * kernel's `domain->ops == &my_ops` check), or null for any other domain.
 */
export function iommuDomainPriv<D>(domain: IommuDomain, ops: IommuDomainOps<D, never>): D | null {
  const e = domains.get(domain);
  return e !== undefined && e.ops === (ops as unknown) ? (e.priv as D) : null;
}

/** Models domain->dirty_ops != NULL. */
export function iommuDomainHasDirtyOps(domain: IommuDomain): boolean {
  return domain.dirtyOps !== null;
}

/** The iommufd core's view of a device: its IOMMU driver's ops, bound to the device. */
function coreDeviceOps<P>(dev: IommuDev<P>): IommuDeviceOps {
  const ops = dev.iommu.ops;
  return {
    name: dev.name,
    domainOwner: ops.name,
    domainAllocPaging: (flags, user) => ops.domainAllocPagingFlags(dev, flags, user),
    domainAllocNested:
      ops.domainAllocNested === undefined
        ? undefined
        : function* (parent, flags, user) {
            if (ops.domainAllocNested === undefined) return -Errno.EOPNOTSUPP;
            return yield* ops.domainAllocNested(dev, parent, flags, user);
          },
    attachDev: (domain) => {
      const e = domains.get(domain);
      if (e === undefined || domain.owner !== ops.name) return -Errno.EINVAL;
      return e.ops.attachDev(e.priv, dev);
    },
    dirtyCapable: () => ops.capable?.(dev, IOMMU_CAP_DIRTY_TRACKING) ?? false,
    hwInfo: (type) => {
      const info = ops.hwInfo?.(dev, type) ?? { data: new Uint8Array(0), type: 0 };
      if (typeof info === 'number') return info;
      return {
        data: info.data,
        type: info.type,
        maxPasidLog2: dev.maxPasids > 0 ? Math.floor(Math.log2(dev.maxPasids)) : 0,
      };
    },
    resvRegions: () => ops.getResvRegions?.(dev) ?? [],
    iommuDev: dev.iommu,
    maxPasids: dev.maxPasids,
    // Models iommu_attach_device_pasid() / iommu_replace_device_pasid(): the core refuses a PASID
    // the device does not have, and a driver without set_dev_pasid on the domain or the blocked
    // domain.
    setDevPasid: (domain, pasid, old) => {
      if (dev.maxPasids === 0 || pasid === 0 || pasid >= dev.maxPasids) return -Errno.EINVAL;
      const e = domains.get(domain);
      if (e === undefined || domain.owner !== ops.name) return -Errno.EINVAL;
      if (e.ops.setDevPasid === undefined || ops.blockedSetDevPasid === undefined) return -Errno.EOPNOTSUPP;
      return e.ops.setDevPasid(e.priv, dev, pasid, old);
    },
    removeDevPasid: (pasid, old) => {
      ops.blockedSetDevPasid?.(dev, pasid, old);
    },
    getViommuSize: (type) => ops.getViommuSize?.(dev, type) ?? 0,
    viommuInit: function* (viommu, parent, user) {
      if (ops.viommuInit === undefined) return -Errno.EOPNOTSUPP;
      return yield* ops.viommuInit(dev, viommu, parent, user);
    },
  };
}

/**
 * Models iommufd_device_bind(): binds `dev` to the iommufd context; the returned device object
 * holds a reference the caller drops with iommufdDeviceUnbind(). -errno on failure.
 */
export function iommufdDeviceBind<P>(ictx: IommufdCtx, dev: IommuDev<P>): IommufdDevice | number {
  const idev = deviceBind(ictx, coreDeviceOps(dev));
  if (typeof idev !== 'number') idevDevs.set(idev, dev);
  return idev;
}

/** Models idev->dev: the device an iommufd device object was bound from. */
export function iommufdDeviceDev(idev: IommufdDevice): IommuDev | null {
  return idevDevs.get(idev) ?? null;
}

/** Models iommufd_device_attach(): attaches to an IOAS (automatic domain) or HW pagetable; its id or -errno. */
export function* iommufdDeviceAttach(idev: IommufdDevice, ptId: number): KGen<number> {
  return yield* deviceAttach(idev, ptId);
}

/** Models iommufd_device_replace(): the new pagetable's id or -errno. */
export function* iommufdDeviceReplace(idev: IommufdDevice, ptId: number): KGen<number> {
  return yield* deviceReplace(idev, ptId);
}

/** Models iommufd_device_detach(). */
export function* iommufdDeviceDetach(idev: IommufdDevice): KGen {
  yield* deviceDetach(idev);
}

/** Models iommufd_device_attach() with a PASID: `pasid` of the device to the HWPT `ptId`; 0 or -errno. */
export function* iommufdDevicePasidAttach(idev: IommufdDevice, pasid: number, ptId: number): KGen<number> {
  return yield* devicePasidAttach(idev, pasid, ptId);
}

/** Models iommufd_device_replace() with a PASID: 0 or -errno. */
export function* iommufdDevicePasidReplace(idev: IommufdDevice, pasid: number, ptId: number): KGen<number> {
  return yield* devicePasidReplace(idev, pasid, ptId);
}

/** Models iommufd_device_detach() with a PASID. */
export function* iommufdDevicePasidDetach(idev: IommufdDevice, pasid: number): KGen {
  yield* devicePasidDetach(idev, pasid);
}

/** Models iommufd_device_unbind(): detaches if attached and destroys the device object. */
export function* iommufdDeviceUnbind(idev: IommufdDevice): KGen {
  yield* deviceUnbind(idev);
}

/** Models iommufd_ctx_get(): keeps the context (its file) alive until iommufdCtxPut(). */
export function iommufdCtxGet(ictx: IommufdCtx): void {
  ctxGet(ictx, 'iommufd_ctx_get');
}

/** Models iommufd_ctx_put(): the last reference releases the context. */
export function* iommufdCtxPut(ictx: IommufdCtx): KGen {
  yield* ctxPut(ictx);
}
