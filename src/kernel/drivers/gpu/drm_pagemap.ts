/**
 * Models drivers/gpu/drm/drm_pagemap.c and include/drm/drm_pagemap.h: device memory behind
 * dev_pagemap for DRM drivers. A drm_pagemap populates CPU address ranges with its
 * DEVICE_PRIVATE pages (migrate_vma_setup / pages / finalize) and takes them back: on a CPU fault
 * the whole device allocation the faulting page belongs to returns to system RAM, and on device
 * memory pressure an allocation is evicted with migrate_device_pfns.
 *
 * Each device page points at a "zdd" (its zone_device_data): a refcounted link to the device
 * memory allocation (drm_pagemap_devmem) it was populated from. Every page holds a reference;
 * when the last page is freed (folio_free) the allocation is released and its `detached`
 * completes.
 *
 * Migration timeslice: an allocation records when it was populated plus `timesliceMs`; a CPU
 * fault before that leaves the pages where they are, so a GPU that just migrated them gets to
 * use them before the CPU takes them back (no ping-pong livelock). The kernel returns from the
 * fault and the CPU faults again until the time is up; the model sleeps the faulting thread
 * until the expiry, which is what that loop amounts to in virtual time.
 *
 * Locking: the mmap lock (read) is held across migrate_to_devmem and migrate_to_ram, as
 * migrate_vma_* require; the device memory free list is guarded by the DeviceMemory's lock.
 */
import { PAGE_SIZE } from '../../../lib/units.ts';
import { sleepNs } from '../../../sched/locks.ts';
import { NSEC_PER_MSEC } from '../../../sched/clock.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { VM_FAULT, type MmStruct, type VmFault } from '../../mm/mm_types.ts';
import type { Device } from '../sdk/device.ts';
import { DeviceMemory, devmMemremapPages } from '../sdk/devmem.ts';
import type { DmaDataDirection } from '../sdk/dma_mapping.ts';
import {
  type DevPagemap,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  allocPageReclaim,
  folioTrylock,
  folioUnlock,
  isZoneDevicePage,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDevicePfns,
  migratePfn,
  migratePfnFlags,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  mmgetNotZero,
  mmput,
  pageDevPagemap,
} from '../sdk/kernel_api.ts';
import { copyDevicePagesToRam, migrateVmaInit } from '../sdk/devmem.ts';
import { sideTable } from '../../../lib/snapshot.ts';

/** Models struct drm_pagemap_addr: one DMA or device address a GPU maps, for one CPU mapping. */
export interface DrmPagemapAddr {
  /** DRM_INTERCONNECT_SYSTEM (DMA-mapped RAM) or the driver's device interconnect. */
  readonly proto: 'system' | 'device';
  /** First frame of the mapping. */
  readonly pfn: number;
  readonly order: number;
  readonly dir: DmaDataDirection;
  /** The CPU maps it writable (HMM_PFN_WRITE): the GPU may write. */
  readonly writable: boolean;
  /** Bus addresses of the system pages (one per 4 KiB page); empty for device pages. */
  readonly busAddrs: number[];
}

/** Models struct drm_pagemap_ops. */
export interface DrmPagemapOps {
  /** The address the device uses for device page `pfn` (no DMA mapping is needed). */
  deviceMap(
    dp: DrmPagemap,
    dev: Device,
    pfn: number,
    order: number,
    dir: DmaDataDirection,
    writable: boolean,
  ): DrmPagemapAddr;
  deviceUnmap?(dp: DrmPagemap, dev: Device, addr: DrmPagemapAddr): void;
  /**
   * Populate [start, end) of `mm` with device pages (the caller holds the mmap lock for read):
   * allocate device memory and drm_pagemap_migrate_to_devmem(). 0 or -errno.
   */
  populateMm(dp: DrmPagemap, start: number, end: number, mm: MmStruct, timesliceMs: number): KGen<number>;
}

/** Models struct drm_pagemap_devmem_ops. */
export interface DrmPagemapDevmemOps {
  /** The allocation has no page left in use (the driver drops its buffer object). */
  devmemRelease(alloc: DrmPagemapDevmem): void;
  /** The device frames of the allocation, `npages` of them, into `pfns`. 0 or -errno. */
  populateDevmemPfn(alloc: DrmPagemapDevmem, npages: number, pfns: number[]): KGen<number>;
}

/** Models struct drm_pagemap: device memory a GPU exposes to SVM. */
export class DrmPagemap {
  /** zone_device_data of each device page in use. */
  readonly zdd = new Map<number, DrmPagemapZdd>();
  mem!: DeviceMemory;

  constructor(
    readonly dev: Device,
    readonly ops: DrmPagemapOps,
  ) {}

  get pagemap(): DevPagemap {
    return this.mem.pgmap;
  }
}

/** Models struct drm_pagemap_devmem: one device memory allocation backing a range. */
export class DrmPagemapDevmem {
  /** When a CPU fault may take the pages back (virtual ns). */
  timesliceExpiration = 0;
  /** Completes once no page of the allocation is in use. */
  detached = false;
  /** The device frames, filled by populateDevmemPfn. */
  readonly pfns: number[] = [];

  constructor(
    readonly dev: Device,
    readonly mm: MmStruct,
    readonly ops: DrmPagemapDevmemOps,
    readonly dpagemap: DrmPagemap,
    readonly size: number,
  ) {}
}

/** Models struct drm_pagemap_zdd. */
export class DrmPagemapZdd {
  refcount = 1;
  constructor(
    readonly devmem: DrmPagemapDevmem,
    readonly dpagemap: DrmPagemap,
  ) {}
}

const byPgmap = sideTable<DevPagemap, DrmPagemap>();

/** Models drm_pagemap_page_to_dpagemap() through the page's pgmap: the drm_pagemap of `pgmap`, or null. */
export function drmPagemapOfPgmap(pgmap: DevPagemap): DrmPagemap | null {
  return byPgmap.get(pgmap) ?? null;
}

/** Models drm_pagemap_zdd_put(): the last reference releases the allocation. */
function zddPut(zdd: DrmPagemapZdd): void {
  if (--zdd.refcount > 0) return;
  zdd.devmem.detached = true;
  zdd.devmem.ops.devmemRelease(zdd.devmem);
}

/**
 * Models drm_pagemap_init() over devm_memremap_pages(): `nrPages` DEVICE_PRIVATE pages of
 * `dev` whose dev_pagemap_ops are drm_pagemap's (folio_free drops the page's zdd reference;
 * migrate_to_ram moves its whole allocation back). Returns the pagemap or -errno.
 */
export function drmPagemapInit(
  dev: Device,
  nrPages: number,
  owner: unknown,
  ops: DrmPagemapOps,
): DrmPagemap | number {
  const dp = new DrmPagemap(dev, ops);
  const mem = devmMemremapPages(dev, {
    type: 'private',
    nrPages,
    owner,
    ops: {
      folioFree(pfn, order) {
        for (let i = 0; i < 1 << order; i++) {
          const zdd = dp.zdd.get(pfn + i);
          dp.zdd.delete(pfn + i);
          dp.mem.freePage(pfn + i);
          if (zdd !== undefined) zddPut(zdd);
        }
      },
      migrateToRam: (vmf) => drmPagemapMigrateToRam(dp, vmf),
    },
  });
  if (typeof mem === 'number') return mem;
  dp.mem = mem;
  byPgmap.set(mem.pgmap, dp);
  return dp;
}

/** Models drm_pagemap_devmem_init(). */
export function drmPagemapDevmemInit(
  dev: Device,
  mm: MmStruct,
  ops: DrmPagemapDevmemOps,
  dpagemap: DrmPagemap,
  size: number,
): DrmPagemapDevmem {
  return new DrmPagemapDevmem(dev, mm, ops, dpagemap, size);
}

/**
 * Models drm_pagemap_migrate_to_devmem(): migrates [start, end) of `mm` (one anonymous VMA; the
 * caller holds the mmap lock for read) into the device pages of `alloc`, all pages or none.
 * Returns 0, -ENOENT (no VMA), -EINVAL (the range leaves the VMA), -EBUSY (not anonymous, or
 * some page could not be collected or raced away), or populateDevmemPfn's error. On an error
 * the allocation is released (it consumed the caller's reference).
 */
export function* drmPagemapMigrateToDevmem(
  alloc: DrmPagemapDevmem,
  mm: MmStruct,
  start: number,
  end: number,
  timesliceMs: number,
): KGen<number> {
  const sys = alloc.dev.sys;
  const dp = alloc.dpagemap;
  const vma = mm.vmaLookup(start);
  if (vma === null) return release(alloc, -Errno.ENOENT);
  if (end > vma.end || start < vma.start) return release(alloc, -Errno.EINVAL);
  if (!vma.isAnon()) return release(alloc, -Errno.EBUSY);
  const npages = (end - start) / PAGE_SIZE;
  const zdd = new DrmPagemapZdd(alloc, dp);
  const args = migrateVmaInit(
    vma,
    start,
    end,
    dp.pagemap.owner,
    MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  );
  let err = yield* migrateVmaSetup(args);
  if (err !== 0) {
    zddPut(zdd);
    return err;
  }
  if (args.cpages === 0) {
    zddPut(zdd);
    return -Errno.EBUSY;
  }
  let migrated = 0;
  if (args.cpages !== npages) err = -Errno.EBUSY;
  else {
    err = yield* alloc.ops.populateDevmemPfn(alloc, npages, alloc.pfns);
    if (err === 0) {
      for (let i = 0; i < npages; i++) {
        const dpage = alloc.pfns[i];
        const spage = migratePfnToPage(args.src[i]);
        // drm_pagemap_get_devmem_page(): the page points at the zdd, holding a reference.
        zdd.refcount++;
        dp.zdd.set(dpage, zdd);
        if (spage >= 0) sys.phys.copyPage(dpage, spage);
        else sys.phys.clearPage(dpage);
        args.dst[i] = migratePfn(dpage) + (migratePfnFlags(args.src[i]) & MIGRATE_PFN_WRITE);
      }
      alloc.timesliceExpiration = sys.sched.clock.now + timesliceMs * NSEC_PER_MSEC;
    }
  }
  yield* migrateVmaPages(args);
  for (let i = 0; err === 0 && i < npages; i++)
    if ((migratePfnFlags(args.src[i]) & MIGRATE_PFN_MIGRATE) !== 0) migrated++;
  if (err === 0 && migrated < npages) err = -Errno.EBUSY;
  yield* migrateVmaFinalize(args);
  zddPut(zdd);
  if (err === 0) sys.trace.count('drm_pagemap_migrate_to_devmem');
  return err;
}

function release(alloc: DrmPagemapDevmem, err: number): number {
  alloc.ops.devmemRelease(alloc);
  return err;
}

/**
 * Models drm_pagemap_populate_mm(): takes an mm reference and the mmap read lock and lets the
 * pagemap populate [start, end). Returns its result, or -EFAULT when the mm is gone.
 */
export function* drmPagemapPopulateMm(
  dp: DrmPagemap,
  start: number,
  end: number,
  mm: MmStruct,
  timesliceMs: number,
): KGen<number> {
  if (!mmgetNotZero(mm)) return -Errno.EFAULT;
  yield* mm.mmapLock.downRead();
  const err = yield* dp.ops.populateMm(dp, start, end, mm, timesliceMs);
  yield* mm.mmapLock.upRead();
  yield* mmput(mm);
  return err;
}

/**
 * Models drm_pagemap_migrate_to_ram(), dev_pagemap_ops.migrate_to_ram of every drm_pagemap page:
 * migrates the whole allocation the faulting page belongs to back to system RAM, clipped to the
 * VMA (__drm_pagemap_migrate_to_ram). Returns 0, or VM_FAULT_SIGBUS on failure.
 */
export function* drmPagemapMigrateToRam(dp: DrmPagemap, vmf: VmFault): KGen<number> {
  const sys = dp.dev.sys;
  const zdd = dp.zdd.get(vmf.page);
  if (zdd === undefined) return VM_FAULT.SIGBUS;
  const alloc = zdd.devmem;
  const wait = alloc.timesliceExpiration - sys.sched.clock.now;
  if (wait > 0) yield* sleepNs(sys.sched, wait);
  const size = alloc.size;
  let start = vmf.address - (vmf.address % size);
  let end = start + size;
  if (start < vmf.vma.start) start = vmf.vma.start;
  if (end > vmf.vma.end) end = vmf.vma.end;
  const args = migrateVmaInit(
    vmf.vma,
    start,
    end,
    dp.pagemap.owner,
    MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  );
  args.faultPage = vmf.page;
  if ((yield* migrateVmaSetup(args)) !== 0) return VM_FAULT.SIGBUS;
  if (args.cpages === 0) return 0;
  let err = 0;
  for (let i = 0; i < args.npages; i++) {
    const s = args.src[i];
    if ((migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) === 0) continue;
    const spage = migratePfnToPage(s);
    if (spage < 0 || dp.zdd.get(spage) !== zdd) continue;
    const dpage = yield* allocPageReclaim(sys, 0, 'drm_pagemap_migrate_to_ram');
    if (dpage < 0) {
      err = -Errno.ENOMEM;
      break;
    }
    folioTrylock(sys, dpage);
    sys.phys.copyPage(dpage, spage);
    args.dst[i] = migratePfn(dpage) + (migratePfnFlags(s) & MIGRATE_PFN_WRITE);
  }
  if (err !== 0) unlockPutPages(dp, args.dst, args.npages);
  yield* migrateVmaPages(args);
  yield* migrateVmaFinalize(args);
  if (err === 0) sys.trace.count('drm_pagemap_migrate_to_ram');
  return err === 0 ? 0 : VM_FAULT.SIGBUS;
}

/** Models drm_pagemap_migration_unlock_put_pages(): gives back destination pages not used. */
function unlockPutPages(dp: DrmPagemap, dst: Float64Array, npages: number): void {
  const sys = dp.dev.sys;
  for (let i = 0; i < npages; i++) {
    const page = migratePfnToPage(dst[i]);
    if (page < 0) continue;
    folioUnlock(sys, page);
    sys.phys.put(page);
    dst[i] = 0;
  }
}

/**
 * Models drm_pagemap_evict_to_ram(): moves every page of `alloc` back to system RAM without the
 * mmap lock (migrate_device_pfns, copy, migrate_device_pages / finalize). Returns 0, or
 * -EFAULT (the mm is gone), -EBUSY / -ENOMEM when pages stayed behind.
 */
export function* drmPagemapEvictToRam(alloc: DrmPagemapDevmem): KGen<number> {
  const sys = alloc.dev.sys;
  const dp = alloc.dpagemap;
  const npages = alloc.size / PAGE_SIZE;
  let err = 0;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (!mmgetNotZero(alloc.mm)) return -Errno.EFAULT;
    const src = new Float64Array(npages);
    const dst = new Float64Array(npages);
    for (let i = 0; i < npages; i++) src[i] = alloc.pfns[i];
    yield* migrateDevicePfns(sys, src, npages);
    const copied = yield* copyDevicePagesToRam(sys, src, dst, npages, 'drm_pagemap_evict_to_ram', {
      accept: (spage) => isZoneDevicePage(sys, spage) && pageDevPagemap(sys, spage) === dp.pagemap,
      stopAtFailure: true,
    });
    err = copied < 0 ? copied : 0;
    if (err !== 0) unlockPutPages(dp, dst, npages);
    yield* migrateDevicePages(sys, src, dst, npages);
    yield* migrateDeviceFinalize(sys, src, dst, npages);
    yield* mmput(alloc.mm);
    if (alloc.detached) {
      sys.trace.count('drm_pagemap_evict_to_ram');
      return 0;
    }
  }
  return err !== 0 ? err : -Errno.EBUSY;
}
