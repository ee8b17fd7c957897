/**
 * An xe-style GPU driver model on the driver SDK: probe (VRAM as a drm_pagemap of
 * DEVICE_PRIVATE pages, a GPU page-fault queue with its worker), one file per process, the uAPI
 * ioctls DRM_IOCTL_XE_VM_CREATE / _VM_DESTROY / _VM_BIND / _MADVISE by their names, and the
 * GPU side of the generic scenario ops (gpu_access, gpu_snapshot).
 *
 * The fault path models xe_gt_pagefault.c / xe_pagefault.c: a GPU access that misses (or lacks
 * the right: write, atomic) posts a fault record and stalls; the fault queue's worker takes
 * vm->lock, services the fault (xe_svm_handle_pagefault, or a userptr repin) and replays the
 * GPU. A fault that cannot be serviced leaves the GPU refaulting until it gives up (-EFAULT).
 */
import { parseSize } from '../../../lib/size.ts';
import { PAGE_SIZE } from '../../../lib/units.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import type { Process } from '../../system.ts';
import { type Device, type DeviceDriver, ioctlFor } from '../sdk/device.ts';
import { DEV_PTE, FaultBuffer, deviceAccess } from '../sdk/device_pagetable.ts';
import { isDevicePrivatePage } from '../sdk/kernel_api.ts';
import { drmGpusvmNotifiersIn, drmGpusvmRangesIn } from './drm_gpusvm.ts';
import { drmPagemapInit } from './drm_pagemap.ts';
import type { GpuDeviceOps, GpuPteView, GpuRangeView, GpuSnapshot } from './gpu_device.ts';
import { xePagemapOps, xeSvmHandlePagefault, xeVmFindMirror } from './xe_svm.ts';
import type { XeConfig, XeDevice, XeFile } from './xe_types.ts';
import {
  DRM_XE_MEM_RANGE_ATTR,
  DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM_FD,
  DRM_XE_VM_BIND_FLAG,
  DRM_XE_VM_BIND_OP,
  DRM_XE_VM_CREATE_FLAG,
  xeUserptrRepin,
  xeVmBind,
  xeVmClose,
  xeVmCreate,
  xeVmLookup,
  xeVmMadvise,
  xeVmOfProcess,
} from './xe_vm.ts';
import { XE_ATOMIC } from './xe_types.ts';

const MiB = 1024 * 1024;

function configOf(c: Readonly<Record<string, unknown>>): XeConfig | number {
  const num = (k: string, d: number): number => {
    const v = c[k];
    if (v === undefined) return d;
    if (typeof v !== 'number' && typeof v !== 'string') return -1;
    try {
      return parseSize(v);
    } catch {
      return -1;
    }
  };
  for (const k of Object.keys(c))
    if (!['vram', 'fault_queue', 'strict_atomic', 'atomic_timeslice_ms'].includes(k)) return -Errno.EINVAL;
  const vram = num('vram', 64 * MiB);
  const faultQueue = num('fault_queue', 64);
  const atomicTimesliceMs = num('atomic_timeslice_ms', 5);
  const strict = c.strict_atomic ?? true;
  if (
    vram < 0 ||
    vram % PAGE_SIZE !== 0 ||
    faultQueue <= 0 ||
    atomicTimesliceMs < 0 ||
    typeof strict !== 'boolean'
  )
    return -Errno.EINVAL;
  return { vram, faultQueue, strictAtomic: strict, atomicTimesliceMs };
}

/**
 * The fault queue's bottom half (xe_pagefault_queue_work): services every queued fault, then
 * replays the GPU.
 */
function* xePagefaultQueueWork(xe: XeDevice, buf: FaultBuffer): KGen {
  for (let f = buf.pop(); f !== undefined; f = buf.pop()) {
    const vm = xe.vmOfPt.get(f.pt);
    if (vm === undefined) continue;
    yield* vm.lock.downWrite();
    if (!vm.closed) {
      const ret = yield* xeHandlePagefault(vm, f.va, f.access === 'atomic');
      if (ret !== 0) xe.dev.sys.trace.count('xe_pagefault_failed');
    }
    yield* vm.lock.upWrite();
  }
  buf.replay();
}

/** Models xe_pagefault_service() for one fault; caller holds vm->lock for write. */
function* xeHandlePagefault(vm: import('./xe_types.ts').XeVm, va: number, atomic: boolean): KGen<number> {
  const gv = xeVmFindMirror(vm, va);
  if (gv !== undefined) return yield* xeSvmHandlePagefault(vm, gv, va, atomic);
  const u = vm.userptrs.find((x) => va >= x.start && va < x.end);
  if (u !== undefined) return atomic ? -Errno.EACCES : yield* xeUserptrRepin(vm, u);
  return -Errno.EACCES;
}

/** The ioctls of an xe file: struct members inferred from each `in` and `out`. */
const xeIoctl = ioctlFor<XeFile>();

const vmCreate = xeIoctl({
  in: { flags: 'u32' },
  out: { vm_id: 'u32' },
  doc: 'Creates a VM (flags: DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE); SVM needs FAULT_MODE.',
  *handler(file, arg, dev) {
    const vm = xeVmCreate((dev as Device<XeDevice, XeFile>).drvdata, file.priv, arg.flags);
    if (typeof vm === 'number') return vm;
    arg.vm_id = vm.id;
    return 0;
  },
});

const vmDestroy = xeIoctl({
  in: { vm_id: 'u32' },
  doc: 'Destroys a VM of this file.',
  *handler(file, arg, dev) {
    const vm = xeVmLookup((dev as Device<XeDevice, XeFile>).drvdata, file.priv, arg.vm_id);
    if (vm === undefined) return -Errno.ENOENT;
    file.priv.vms.delete(vm);
    yield* xeVmClose(vm);
    return 0;
  },
});

const vmBind = xeIoctl({
  in: {
    vm_id: 'u32',
    bind_op: 'u32',
    flags: 'u32',
    addr: 'u64',
    range: 'u64',
    userptr: 'u64',
    prefetch_mem_region_instance: 'u32',
  },
  doc: 'One bind op (struct drm_xe_vm_bind_op; its `op` member is `bind_op` here): MAP (0) with flags DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR, UNMAP (1), MAP_USERPTR (2), PREFETCH (4, region 0 system, 1 VRAM).',
  *handler(file, arg, dev) {
    const vm = xeVmLookup((dev as Device<XeDevice, XeFile>).drvdata, file.priv, arg.vm_id);
    if (vm === undefined) return -Errno.ENOENT;
    return yield* xeVmBind(vm, {
      op: arg.bind_op,
      flags: arg.flags,
      addr: arg.addr,
      range: arg.range,
      userptr: arg.userptr,
      prefetchRegion: arg.prefetch_mem_region_instance,
    });
  },
});

const madvise = xeIoctl({
  in: {
    vm_id: 'u32',
    start: 'u64',
    range: 'u64',
    type: 'u32',
    preferred_mem_loc_devmem_fd: 'u32',
    atomic_val: 'u32',
    pat_index_val: 'u32',
  },
  doc: 'Sets a memory attribute: type PREFERRED_LOC (0; devmem_fd 0 = VRAM, 0xffffffff = system), ATOMIC (1; val UNDEFINED 0, DEVICE 1, GLOBAL 2, CPU 3), PAT (2, accepted, no effect).',
  *handler(file, arg, dev) {
    const vm = xeVmLookup((dev as Device<XeDevice, XeFile>).drvdata, file.priv, arg.vm_id);
    if (vm === undefined) return -Errno.ENOENT;
    return yield* xeVmMadvise(vm, {
      start: arg.start,
      range: arg.range,
      type: arg.type,
      devmemFd: arg.preferred_mem_loc_devmem_fd,
      atomic: arg.atomic_val,
      patIndex: arg.pat_index_val,
    });
  },
});

/** The xe driver (struct pci_driver xe_pci_driver + drm_driver, with one tile). */
export const xeDriver: DeviceDriver<XeDevice, XeFile> = {
  name: 'xe',
  // xe_driver_fops' noop_llseek.
  llseek: 'noop',
  *probe(dev, config) {
    const cfg = configOf(config);
    if (typeof cfg === 'number') return cfg;
    let xe: XeDevice | null = null;
    const dpagemap =
      cfg.vram === 0
        ? null
        : drmPagemapInit(
            dev,
            cfg.vram / PAGE_SIZE,
            dev,
            xePagemapOps(() => xe!),
          );
    if (typeof dpagemap === 'number') return dpagemap;
    const faults = new FaultBuffer(dev, 'pagefault_queue', cfg.faultQueue, (buf) =>
      xePagefaultQueueWork(xe!, buf),
    );
    xe = {
      dev,
      config: cfg,
      dpagemap,
      faults,
      vms: new Map(),
      nextVmId: 1,
      lru: [],
      evictLock: dev.mutex('evict_lock', { lockClass: 'xe.evict_lock', guards: 'the VRAM allocation LRU' }),
      vmOfPt: new Map(),
    };
    yield* [];
    return xe;
  },
  *remove(dev) {
    const xe = dev.drvdata;
    for (const vm of [...xe.vms.values()]) yield* xeVmClose(vm);
  },
  *open(_dev, proc) {
    yield* [];
    return { proc, vms: new Set() };
  },
  *release(_dev, file) {
    for (const vm of [...file.priv.vms]) yield* xeVmClose(vm);
    file.priv.vms.clear();
  },
  ioctls: {
    DRM_IOCTL_XE_VM_CREATE: vmCreate,
    DRM_IOCTL_XE_VM_DESTROY: vmDestroy,
    DRM_IOCTL_XE_VM_BIND: vmBind,
    DRM_IOCTL_XE_MADVISE: madvise,
  },
};

/** The uAPI constants a scenario may name (bound as names in scenarios with an xe device). */
export const XE_UAPI_CONSTANTS: Readonly<Record<string, number>> = {
  DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE: DRM_XE_VM_CREATE_FLAG.SCRATCH_PAGE,
  DRM_XE_VM_CREATE_FLAG_LR_MODE: DRM_XE_VM_CREATE_FLAG.LR_MODE,
  DRM_XE_VM_CREATE_FLAG_FAULT_MODE: DRM_XE_VM_CREATE_FLAG.FAULT_MODE,
  DRM_XE_VM_BIND_OP_MAP: DRM_XE_VM_BIND_OP.MAP,
  DRM_XE_VM_BIND_OP_UNMAP: DRM_XE_VM_BIND_OP.UNMAP,
  DRM_XE_VM_BIND_OP_MAP_USERPTR: DRM_XE_VM_BIND_OP.MAP_USERPTR,
  DRM_XE_VM_BIND_OP_PREFETCH: DRM_XE_VM_BIND_OP.PREFETCH,
  DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR: DRM_XE_VM_BIND_FLAG.CPU_ADDR_MIRROR,
  DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC: DRM_XE_MEM_RANGE_ATTR.PREFERRED_LOC,
  DRM_XE_MEM_RANGE_ATTR_ATOMIC: DRM_XE_MEM_RANGE_ATTR.ATOMIC,
  DRM_XE_MEM_RANGE_ATTR_PAT: DRM_XE_MEM_RANGE_ATTR.PAT,
  DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE: 0,
  DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM: DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM_FD,
  DRM_XE_ATOMIC_UNDEFINED: XE_ATOMIC.UNDEFINED,
  DRM_XE_ATOMIC_DEVICE: XE_ATOMIC.DEVICE,
  DRM_XE_ATOMIC_GLOBAL: XE_ATOMIC.GLOBAL,
  DRM_XE_ATOMIC_CPU: XE_ATOMIC.CPU,
};

/**
 * A GPU access through `vm`'s page table, page by page; misses go through the fault queue.
 * (The GPU executing a batch that reads, stores or does an atomic at `addr`.)
 */
function* xeGpuAccess(
  dev: Device,
  proc: Process | null,
  context: number | undefined,
  addr: number,
  kind: 'read' | 'write' | 'atomic',
  buf: Uint8Array,
): KGen<number> {
  const xe = (dev as Device<XeDevice, XeFile>).drvdata;
  const vm = xeVmOfProcess(xe, proc, context);
  if (typeof vm === 'number') return vm;
  for (let off = 0; off < buf.length;) {
    const va = addr + off;
    const n = Math.min(buf.length - off, PAGE_SIZE - (va % PAGE_SIZE));
    const ret = yield* deviceAccess(vm.pt, va, kind, buf.subarray(off, off + n), xe.faults);
    if (ret !== 0) return ret;
    off += n;
  }
  return 0;
}

/** The GPU page tables and SVM ranges of [start, end). */
function xeGpuSnapshot(
  dev: Device,
  proc: Process | null,
  start: number,
  end: number,
  context?: number,
): GpuSnapshot | number {
  const xe = (dev as Device<XeDevice, XeFile>).drvdata;
  const vm = xeVmOfProcess(xe, proc, context);
  if (typeof vm === 'number') return vm;
  const ptes: GpuPteView[] = [];
  for (let va = start - (start % PAGE_SIZE); va < end; va += PAGE_SIZE) {
    const e = vm.pt.lookup(va);
    if (e === undefined) continue;
    ptes.push({
      va,
      pfn: e.pfn,
      write: (e.prot & DEV_PTE.WRITE) !== 0,
      atomic: (e.prot & DEV_PTE.ATOMIC) !== 0,
      mem: isDevicePrivatePage(dev.sys, e.pfn) ? 'vram' : 'system',
    });
  }
  const ranges: GpuRangeView[] = [];
  for (const n of drmGpusvmNotifiersIn(vm.gpusvm, start, end))
    for (const r of drmGpusvmRangesIn(n, start, end)) {
      const f = r.pages.flags;
      const flags = Object.entries({
        migrate_devmem: f.migrateDevmem,
        unmapped: f.unmapped,
        partial_unmap: f.partialUnmap,
        has_devmem_pages: f.hasDevmemPages,
        has_dma_mapping: f.hasDmaMapping,
      })
        .filter(([, v]) => v)
        .map(([k]) => k);
      ranges.push({ start: r.start, end: r.end, flags });
    }
  return { ptes, ranges };
}

/** xe's side of the generic GPU scenario ops. */
export const xeGpuOps: GpuDeviceOps = {
  access: (dev, req) => xeGpuAccess(dev, req.proc, req.context, req.addr, req.access, req.buf),
  snapshot: xeGpuSnapshot,
};
