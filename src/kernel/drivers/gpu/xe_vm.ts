/**
 * Models the SVM parts of drivers/gpu/drm/xe/xe_vm.c and xe_vm_madvise.c: creating and
 * destroying fault-mode VMs, VM_BIND of CPU-address-mirror ranges (DRM_XE_VM_BIND_FLAG_
 * CPU_ADDR_MIRROR), userptrs on the gpusvm pages API, prefetch, unbind, and the memory
 * attributes of DRM_IOCTL_XE_MADVISE (preferred location, atomic access). A changed attribute
 * drops the GPU mapping and the collected pages of the ranges it covers, so the next fault
 * applies it (migrating to or from VRAM as it now prefers).
 */
import { PAGE_SIZE } from '../../../lib/units.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { mmdrop, mmgrab } from '../../mm/mmu_notifier_types.ts';
import type { Process } from '../../system.ts';
import type { Device } from '../sdk/device.ts';
import { DEV_PTE, DevicePageTable } from '../sdk/device_pagetable.ts';
import {
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
  mmgetNotZero,
  mmput,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
} from '../sdk/kernel_api.ts';
import { cancelWorkSync, initWork } from '../sdk/workqueue.ts';
import {
  DrmGpusvmPages,
  drmGpusvmDriverSetLock,
  drmGpusvmFini,
  drmGpusvmFreePages,
  drmGpusvmGetPages,
  drmGpusvmInit,
  drmGpusvmNotifiersIn,
  drmGpusvmPagesValid,
  drmGpusvmRangeRemove,
  drmGpusvmRangeUnmapPages,
  drmGpusvmRangesIn,
  drmGpusvmUnmapPages,
} from './drm_gpusvm.ts';
import {
  XE_SVM_CHUNK_SIZES,
  XE_SVM_NOTIFIER_SIZE,
  xeGpusvmOps,
  xeRange,
  xeSvmAttach,
  xeSvmGarbageCollectorWork,
  xeSvmPrefetch,
} from './xe_svm.ts';
import {
  XE_ATOMIC,
  XE_PREFERRED_LOC,
  type XeDevice,
  type XeFile,
  type XeMemAttr,
  type XeUserptr,
  type XeVm,
} from './xe_types.ts';

/** DRM_XE_VM_CREATE_FLAG_*. */
export const DRM_XE_VM_CREATE_FLAG = { SCRATCH_PAGE: 1 << 0, LR_MODE: 1 << 1, FAULT_MODE: 1 << 2 } as const;
/** DRM_XE_VM_BIND_OP_*. */
export const DRM_XE_VM_BIND_OP = { MAP: 0, UNMAP: 1, MAP_USERPTR: 2, UNMAP_ALL: 3, PREFETCH: 4 } as const;
/** DRM_XE_VM_BIND_FLAG_*. */
export const DRM_XE_VM_BIND_FLAG = {
  READONLY: 1 << 0,
  IMMEDIATE: 1 << 1,
  NULL: 1 << 2,
  DUMPABLE: 1 << 3,
  CHECK_PXP: 1 << 4,
  CPU_ADDR_MIRROR: 1 << 5,
} as const;
/** DRM_XE_MEM_RANGE_ATTR_*: what a DRM_IOCTL_XE_MADVISE sets. */
export const DRM_XE_MEM_RANGE_ATTR = { PREFERRED_LOC: 0, ATOMIC: 1, PAT: 2 } as const;
/** The GPU VA space (va_bits = 48). */
export const XE_VA_SPACE = 2 ** 48;
/** DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM as the u32 devmem_fd member holds it (-1). */
export const DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM_FD = 0xffffffff;

const defaultAttr = (): XeMemAttr => ({
  preferredLoc: XE_PREFERRED_LOC.DEFAULT_DEVICE,
  atomic: XE_ATOMIC.UNDEFINED,
});

/**
 * Models xe_vm_create() of a fault-mode VM: its GPU page table, its gpusvm over the opener's mm
 * (the whole GPU VA space, 512 MiB notifiers, chunks of 2 MiB / 64 KiB / 4 KiB) and its garbage
 * collector. Returns the VM, or -EINVAL (no FAULT_MODE: SVM needs recoverable faults).
 */
export function xeVmCreate(xe: XeDevice, file: XeFile, flags: number): XeVm | number {
  if ((flags & DRM_XE_VM_CREATE_FLAG.FAULT_MODE) === 0) return -Errno.EINVAL;
  const mm = file.proc.mm;
  if (mm === null) return -Errno.EINVAL;
  const dev = xe.dev as Device;
  const id = xe.nextVmId++;
  const gpusvm = drmGpusvmInit(
    `vm${id}`,
    dev,
    mm,
    0,
    XE_VA_SPACE,
    XE_SVM_NOTIFIER_SIZE,
    xeGpusvmOps,
    XE_SVM_CHUNK_SIZES,
  );
  if (typeof gpusvm === 'number') return gpusvm;
  mmgrab(mm);
  const lock = dev.rwsem(`vm${id}.lock`, {
    lockClass: 'xe.vm_lock',
    guards: 'the VM bindings and its gpusvm trees',
  });
  drmGpusvmDriverSetLock(gpusvm, lock);
  const vm: XeVm = {
    id,
    xe,
    mm,
    proc: file.proc,
    lock,
    gpusvm,
    pt: new DevicePageTable(dev, `vm${id}.pt`, mm, gpusvm.notifierLock),
    gcLock: dev.spinlock(`vm${id}.gc_lock`, {
      lockClass: 'xe.svm_gc_lock',
      guards: 'the garbage-collector list',
    }),
    gcList: [],
    gcWork: initWork(dev.sys.sched, `xe_svm_gc.vm${id}`, () => xeSvmGarbageCollectorWork(vm)),
    mirrors: [],
    userptrs: [],
    closed: false,
  };
  xeSvmAttach(vm);
  xe.vms.set(id, vm);
  xe.vmOfPt.set(vm.pt, vm);
  file.vms.add(vm);
  return vm;
}

/** Models xe_vm_close_and_put(): tears the VM down (file close or DRM_IOCTL_XE_VM_DESTROY). */
export function* xeVmClose(vm: XeVm): KGen {
  if (vm.closed) return;
  vm.closed = true;
  yield* cancelWorkSync(vm.gcWork);
  yield* vm.lock.downWrite();
  yield* vm.gpusvm.notifierLock.downWrite();
  vm.pt.zap(0, XE_VA_SPACE);
  yield* vm.gpusvm.notifierLock.upWrite();
  for (const u of vm.userptrs.splice(0)) yield* xeUserptrRemove(vm, u);
  vm.gcList.length = 0;
  yield* drmGpusvmFini(vm.gpusvm);
  vm.mirrors.length = 0;
  yield* vm.lock.upWrite();
  vm.pt.destroy();
  vm.xe.vms.delete(vm.id);
  vm.xe.vmOfPt.delete(vm.pt);
  mmdrop(vm.mm);
}

/** Removes the mirror bindings' parts in [start, end) (splitting where they straddle). */
function cutMirrors(vm: XeVm, start: number, end: number): void {
  const keep = [];
  for (const m of vm.mirrors) {
    if (m.end <= start || m.start >= end) keep.push(m);
    else {
      if (m.start < start) keep.push({ start: m.start, end: start, attr: { ...m.attr } });
      if (m.end > end) keep.push({ start: end, end: m.end, attr: { ...m.attr } });
    }
  }
  vm.mirrors.splice(0, vm.mirrors.length, ...keep.sort((a, b) => a.start - b.start));
}

/** Unbinds every SVM range and userptr in [start, end). Caller holds vm->lock for write. */
function* unbindRange(vm: XeVm, start: number, end: number): KGen {
  for (const notifier of drmGpusvmNotifiersIn(vm.gpusvm, start, end)) {
    for (const range of drmGpusvmRangesIn(notifier, start, end)) {
      yield* vm.gpusvm.notifierLock.downWrite();
      vm.pt.zap(range.start, range.end);
      xeRange(range).bound = false;
      yield* vm.gpusvm.notifierLock.upWrite();
      yield* drmGpusvmRangeRemove(vm.gpusvm, range);
    }
  }
  for (const u of vm.userptrs.filter((x) => x.start < end && x.end > start)) {
    vm.userptrs.splice(vm.userptrs.indexOf(u), 1);
    yield* xeUserptrRemove(vm, u);
  }
}

/** The members of a DRM_IOCTL_XE_VM_BIND with one bind op (struct drm_xe_vm_bind_op). */
export interface XeBindOp {
  readonly op: number;
  readonly flags: number;
  readonly addr: number;
  readonly range: number;
  readonly userptr: number;
  readonly prefetchRegion: number;
}

/**
 * Models xe_vm_bind_ioctl() for one op on a fault-mode VM: MAP with CPU_ADDR_MIRROR binds a
 * mirror range (faults populate it), MAP_USERPTR binds user memory at once, UNMAP removes
 * bindings, PREFETCH populates mirror ranges ahead of the GPU. Returns 0 or -errno (-EINVAL for
 * a misaligned or wrapping range, a BO map (not modelled), or an op the VM cannot do).
 */
export function* xeVmBind(vm: XeVm, b: XeBindOp): KGen<number> {
  const { addr, range } = b;
  if (addr % PAGE_SIZE !== 0 || range % PAGE_SIZE !== 0 || range === 0 || addr + range > XE_VA_SPACE)
    return b.op === DRM_XE_VM_BIND_OP.UNMAP_ALL ? 0 : -Errno.EINVAL;
  const end = addr + range;
  yield* vm.lock.downWrite();
  let ret = 0;
  switch (b.op) {
    case DRM_XE_VM_BIND_OP.MAP:
      if ((b.flags & DRM_XE_VM_BIND_FLAG.CPU_ADDR_MIRROR) === 0) ret = -Errno.EINVAL;
      else {
        yield* unbindRange(vm, addr, end);
        cutMirrors(vm, addr, end);
        vm.mirrors.push({ start: addr, end, attr: defaultAttr() });
        vm.mirrors.sort((x, y) => x.start - y.start);
      }
      break;
    case DRM_XE_VM_BIND_OP.UNMAP:
      yield* unbindRange(vm, addr, end);
      cutMirrors(vm, addr, end);
      break;
    case DRM_XE_VM_BIND_OP.MAP_USERPTR:
      ret = yield* xeUserptrBind(vm, b.userptr, addr, range);
      break;
    case DRM_XE_VM_BIND_OP.PREFETCH:
      ret = yield* xeSvmPrefetch(vm, addr, end, b.prefetchRegion);
      break;
    default:
      ret = -Errno.EINVAL;
  }
  yield* vm.lock.upWrite();
  return ret;
}

/** The members of a DRM_IOCTL_XE_MADVISE. */
export interface XeMadvise {
  readonly start: number;
  readonly range: number;
  readonly type: number;
  readonly devmemFd: number;
  readonly atomic: number;
  readonly patIndex: number;
}

/**
 * Models xe_vm_madvise_ioctl(): sets a memory attribute on the mirror bindings of
 * [start, start + range), splitting them at the edges; ranges whose attribute changed lose their
 * GPU mapping so the next fault applies the new policy. Returns 0 or -EINVAL.
 */
export function* xeVmMadvise(vm: XeVm, m: XeMadvise): KGen<number> {
  if (m.start % PAGE_SIZE !== 0 || m.range % PAGE_SIZE !== 0 || m.range === 0) return -Errno.EINVAL;
  if (m.type === DRM_XE_MEM_RANGE_ATTR.ATOMIC && m.atomic > XE_ATOMIC.CPU) return -Errno.EINVAL;
  if (m.type > DRM_XE_MEM_RANGE_ATTR.PAT) return -Errno.EINVAL;
  const end = m.start + m.range;
  yield* vm.lock.downWrite();
  const parts = vm.mirrors.filter((g) => g.start < end && g.end > m.start);
  if (parts.length === 0) {
    yield* vm.lock.upWrite();
    return -Errno.EINVAL;
  }
  let changed = false;
  const next = [];
  for (const g of vm.mirrors) {
    if (g.end <= m.start || g.start >= end) {
      next.push(g);
      continue;
    }
    if (g.start < m.start) next.push({ start: g.start, end: m.start, attr: { ...g.attr } });
    const attr = { ...g.attr };
    if (m.type === DRM_XE_MEM_RANGE_ATTR.PREFERRED_LOC)
      attr.preferredLoc =
        m.devmemFd === DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM_FD
          ? XE_PREFERRED_LOC.DEFAULT_SYSTEM
          : XE_PREFERRED_LOC.DEFAULT_DEVICE;
    if (m.type === DRM_XE_MEM_RANGE_ATTR.ATOMIC) attr.atomic = m.atomic;
    if (attr.preferredLoc !== g.attr.preferredLoc || attr.atomic !== g.attr.atomic) changed = true;
    next.push({ start: Math.max(g.start, m.start), end: Math.min(g.end, end), attr });
    if (g.end > end) next.push({ start: end, end: g.end, attr: { ...g.attr } });
  }
  vm.mirrors.splice(0, vm.mirrors.length, ...next);
  if (changed) {
    yield* vm.gpusvm.notifierLock.downWrite();
    for (const n of drmGpusvmNotifiersIn(vm.gpusvm, m.start, end))
      for (const r of drmGpusvmRangesIn(n, m.start, end)) {
        vm.pt.zap(r.start, r.end);
        xeRange(r).bound = false;
        // The pages go too, so the next fault collects them under the new policy.
        yield* drmGpusvmRangeUnmapPages(vm.gpusvm, r, { inNotifier: true });
      }
    yield* vm.gpusvm.notifierLock.upWrite();
  }
  yield* vm.lock.upWrite();
  vm.xe.dev.sys.trace.count('xe_vm_madvise');
  return 0;
}

type UserptrNotifier = MmuIntervalNotifier & { userptr: XeUserptr; vm: XeVm };

/**
 * Models vma_userptr_invalidate(): zap the userptr's GPU PTEs and unmap its pages under the
 * notifier lock; the next GPU fault on it repins and rebinds.
 */
const userptrNotifierOps: MmuIntervalNotifierOps<UserptrNotifier> = {
  *invalidate(n, range, curSeq) {
    if (!mmuNotifierRangeBlockable(range)) return false;
    const vm = n.vm;
    yield* vm.gpusvm.notifierLock.downWrite();
    mmuIntervalSetSeq(n, curSeq);
    vm.pt.zap(n.userptr.start, n.userptr.end);
    yield* drmGpusvmUnmapPages(vm.gpusvm, n.userptr.pages, { inNotifier: true });
    n.userptr.invalidated = true;
    yield* vm.gpusvm.notifierLock.upWrite();
    return true;
  },
};

/**
 * Models xe_vma_userptr_pin_pages() + the bind: collects the userptr's pages with
 * drm_gpusvm_get_pages() and maps them at the GPU address `gpuAddr` (equal to the CPU address
 * here: the model's GPU VA of a userptr is its CPU address). Caller holds vm->lock.
 */
export function* xeUserptrRepin(vm: XeVm, u: XeUserptr): KGen<number> {
  for (let tries = 0; tries < 32; tries++) {
    const err = yield* drmGpusvmGetPages(vm.gpusvm, u.pages, vm.mm, u.notifier, u.start, u.end, {
      readOnly: false,
      devicePrivatePageOwner: vm.xe.dev,
    });
    if (err !== 0) return err;
    yield* vm.gpusvm.notifierLock.downRead();
    if (!drmGpusvmPagesValid(vm.gpusvm, u.pages)) {
      yield* vm.gpusvm.notifierLock.upRead();
      continue;
    }
    let va = u.start;
    for (const a of u.pages.dmaAddr ?? []) {
      const prot = DEV_PTE.READ | (a.writable ? DEV_PTE.WRITE : 0);
      for (let k = 0; k < 1 << a.order; k++, va += PAGE_SIZE) vm.pt.map(va, a.pfn + k, prot);
    }
    u.invalidated = false;
    yield* vm.gpusvm.notifierLock.upRead();
    return 0;
  }
  return -Errno.EAGAIN;
}

/** Binds a userptr of [cpuAddr, cpuAddr + range) (the GPU address must equal it in the model). */
function* xeUserptrBind(vm: XeVm, cpuAddr: number, gpuAddr: number, range: number): KGen<number> {
  if (cpuAddr !== gpuAddr || cpuAddr % PAGE_SIZE !== 0) return -Errno.EINVAL;
  const notifier = new MmuIntervalNotifier() as UserptrNotifier;
  const u: XeUserptr = {
    start: cpuAddr,
    end: cpuAddr + range,
    notifier,
    pages: new DrmGpusvmPages(),
    invalidated: true,
  };
  notifier.userptr = u;
  notifier.vm = vm;
  // The kernel inserts the notifier on current->mm, the caller's own, which is live while it
  // calls; the model's caller is the VM's process, so the bind holds its mm (mmget_not_zero())
  // and fails as drm_gpusvm does once that process has exited.
  if (!mmgetNotZero(vm.mm)) return -Errno.EFAULT;
  let ret = yield* mmuIntervalNotifierInsert(notifier, vm.mm, cpuAddr, range, userptrNotifierOps);
  if (ret === 0) {
    ret = yield* xeUserptrRepin(vm, u);
    if (ret === 0) vm.userptrs.push(u);
    else yield* xeUserptrRemove(vm, u);
  }
  yield* mmput(vm.mm);
  return ret;
}

/** Removes a userptr: its notifier first (no invalidation races the teardown), then its pages. */
function* xeUserptrRemove(vm: XeVm, u: XeUserptr): KGen {
  yield* mmuIntervalNotifierRemove(u.notifier);
  yield* vm.gpusvm.notifierLock.downWrite();
  vm.pt.zap(u.start, u.end);
  yield* vm.gpusvm.notifierLock.upWrite();
  yield* drmGpusvmFreePages(vm.gpusvm, u.pages);
}

/** The VM `id` of `file`, or undefined. */
export function xeVmLookup(xe: XeDevice, file: XeFile, id: number): XeVm | undefined {
  const vm = xe.vms.get(id);
  return vm !== undefined && file.vms.has(vm) && !vm.closed ? vm : undefined;
}

/** The only live VM of `proc` on `xe` (gpu_access without a vm), or a -errno. */
export function xeVmOfProcess(xe: XeDevice, proc: Process | null, id?: number): XeVm | number {
  const vms = [...xe.vms.values()].filter(
    (v) => !v.closed && (proc === null || v.proc === proc) && (id === undefined || v.id === id),
  );
  if (vms.length === 0) return -Errno.ENOENT;
  if (vms.length > 1) return -Errno.EINVAL;
  return vms[0];
}
