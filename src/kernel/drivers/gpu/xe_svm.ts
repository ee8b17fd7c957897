/**
 * Models drivers/gpu/drm/xe/xe_svm.c: the xe driver on drm_gpusvm and drm_pagemap. A GPU page
 * fault in a CPU-address-mirror binding finds or creates the gpusvm range around the address
 * (chunks of 2 MiB, 64 KiB or 4 KiB inside 512 MiB notifiers), migrates it to VRAM when the
 * binding prefers VRAM (always, for an atomic fault under the strict policy), collects its
 * pages with drm_gpusvm_range_get_pages() and binds them in the GPU page table under the
 * notifier lock once drm_gpusvm_range_pages_valid() says nothing changed meanwhile.
 *
 * The invalidate callback zaps the GPU PTEs of every range the CPU change touches and unmaps
 * their pages; a range the CPU unmapped (fully or partly) goes to the garbage collector, which
 * evicts what is left of a partly unmapped range from VRAM and removes it. The collector runs
 * from a worker and at the start of every fault, so the fault path sees the current ranges.
 */
import { PAGE_SIZE } from '../../../lib/units.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { DEV_PTE } from '../sdk/device_pagetable.ts';
import { MMU_NOTIFY, folioUnlock, type MmStruct, type MmuNotifierRange } from '../sdk/kernel_api.ts';
import { queueWork } from '../sdk/workqueue.ts';
import {
  type DrmGpusvm,
  type DrmGpusvmCtx,
  type DrmGpusvmNotifier,
  type DrmGpusvmOps,
  type DrmGpusvmRange,
  drmGpusvmRangeEvict,
  drmGpusvmRangeFindOrInsert,
  drmGpusvmRangeGetPages,
  drmGpusvmRangePagesValid,
  drmGpusvmRangeRemove,
  drmGpusvmRangeSetUnmapped,
  drmGpusvmRangeUnmapPages,
  drmGpusvmRangesIn,
} from './drm_gpusvm.ts';
import {
  type DrmPagemap,
  type DrmPagemapDevmem,
  type DrmPagemapDevmemOps,
  type DrmPagemapOps,
  drmPagemapDevmemInit,
  drmPagemapEvictToRam,
  drmPagemapMigrateToDevmem,
  drmPagemapPopulateMm,
} from './drm_pagemap.ts';
import {
  XE_ATOMIC,
  XE_PREFERRED_LOC,
  type XeDevice,
  type XeMirrorVma,
  type XeSvmRange,
  type XeVm,
} from './xe_types.ts';
import { sideTable } from '../../../lib/snapshot.ts';

/** xe's SVM chunk sizes, largest first. */
export const XE_SVM_CHUNK_SIZES = [2 * 1024 * 1024, 64 * 1024, PAGE_SIZE] as const;
/** xe's notifier size (512 MiB). */
export const XE_SVM_NOTIFIER_SIZE = 512 * 1024 * 1024;
/** A fault retries this many times before it gives up (the model's bound; the kernel loops). */
const XE_SVM_MAX_RETRIES = 32;

const vmOfGpusvm = sideTable<DrmGpusvm, XeVm>();

/** Links a VM to its gpusvm (container_of). */
export function xeSvmAttach(vm: XeVm): void {
  vmOfGpusvm.set(vm.gpusvm, vm);
}

/** The driver part of a range, created on first use. */
export function xeRange(range: DrmGpusvmRange): XeSvmRange {
  if (range.priv === null) range.priv = { bound: false, queued: false, devmem: null } satisfies XeSvmRange;
  return range.priv as XeSvmRange;
}

/** Zaps the GPU PTEs of [start, end). Caller holds the notifier lock. */
function xeSvmRangeZap(vm: XeVm, range: DrmGpusvmRange): void {
  vm.pt.zap(range.start, range.end);
  xeRange(range).bound = false;
}

/**
 * Models xe_svm_invalidate(), drm_gpusvm_ops.invalidate: zap the GPU PTEs of every range the
 * change touches (the TLB invalidation), unmap their pages, and for an UNMAP mark them unmapped
 * and queue them for the garbage collector. Called with the notifier lock held for write.
 */
function* xeSvmInvalidate(gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier, mmuRange: MmuNotifierRange): KGen {
  const vm = vmOfGpusvm.get(gpusvm);
  if (vm === undefined) return;
  const ctx: DrmGpusvmCtx = { inNotifier: true };
  for (const range of drmGpusvmRangesIn(notifier, mmuRange.start, mmuRange.end)) {
    xeSvmRangeZap(vm, range);
    yield* drmGpusvmRangeUnmapPages(gpusvm, range, ctx);
    if (mmuRange.event !== MMU_NOTIFY.UNMAP) continue;
    drmGpusvmRangeSetUnmapped(range, mmuRange);
    yield* xeSvmGarbageCollectorAdd(vm, range);
  }
  vm.xe.dev.sys.trace.count('xe_svm_invalidate');
}

/** The gpusvm ops of every xe VM. */
export const xeGpusvmOps: DrmGpusvmOps = { invalidate: xeSvmInvalidate };

/** Models xe_svm_garbage_collector_add_range(). */
function* xeSvmGarbageCollectorAdd(vm: XeVm, range: DrmGpusvmRange): KGen {
  yield* vm.gcLock.lock();
  const r = xeRange(range);
  if (!r.queued) {
    r.queued = true;
    vm.gcList.push(range);
  }
  yield* vm.gcLock.unlock();
  queueWork(vm.gcWork);
}

/**
 * Models xe_svm_garbage_collector(): removes every range the CPU unmapped; a partly unmapped
 * range first has the rest of its VRAM pages evicted. Caller holds vm->lock for write.
 */
export function* xeSvmGarbageCollector(vm: XeVm): KGen<number> {
  for (;;) {
    yield* vm.gcLock.lock();
    // Unlinked with list_del(), not list_del_init(): the range's link stays non-empty, so an
    // UNMAP invalidation while the collector works on it (its eviction sleeps) does not queue
    // it again, to be collected a second time after drm_gpusvm_range_remove() freed it.
    const range = vm.gcList.shift();
    yield* vm.gcLock.unlock();
    if (range === undefined) return 0;
    if (range.pages.flags.partialUnmap) yield* drmGpusvmRangeEvict(vm.gpusvm, range);
    yield* vm.gpusvm.notifierLock.downWrite();
    xeSvmRangeZap(vm, range);
    yield* vm.gpusvm.notifierLock.upWrite();
    yield* drmGpusvmRangeRemove(vm.gpusvm, range);
  }
}

/** The garbage-collector worker (xe_svm_garbage_collector_work_func). */
export function* xeSvmGarbageCollectorWork(vm: XeVm): KGen {
  if (vm.closed) return;
  yield* vm.lock.downWrite();
  if (!vm.closed) yield* xeSvmGarbageCollector(vm);
  yield* vm.lock.upWrite();
}

/** Evicts the oldest VRAM allocation other than `keep`. false when there is none. */
function* xeEvictOne(xe: XeDevice, keep: DrmPagemapDevmem): KGen<boolean> {
  yield* xe.evictLock.lock();
  const victim = xe.lru.find((a) => a !== keep);
  yield* xe.evictLock.unlock();
  if (victim === undefined) return false;
  yield* drmPagemapEvictToRam(victim);
  xe.dev.sys.trace.count('xe_svm_evict');
  return true;
}

/** Models xe's drm_pagemap_devmem_ops (the VRAM buffer object behind an allocation). */
function xeDevmemOps(xe: XeDevice): DrmPagemapDevmemOps {
  return {
    devmemRelease(alloc) {
      const i = xe.lru.indexOf(alloc);
      if (i >= 0) xe.lru.splice(i, 1);
    },
    *populateDevmemPfn(alloc, npages, pfns) {
      const mem = alloc.dpagemap.mem;
      const sys = xe.dev.sys;
      while (pfns.length < npages) {
        const got = yield* mem.allocPages(npages - pfns.length);
        pfns.push(...got);
        if (pfns.length === npages) break;
        if (yield* xeEvictOne(xe, alloc)) continue;
        for (const p of pfns.splice(0)) {
          folioUnlock(sys, p);
          sys.phys.put(p);
        }
        return -Errno.ENOMEM;
      }
      return 0;
    },
  };
}

/**
 * Models xe_drm_pagemap_populate_mm(), drm_pagemap_ops.populate_mm: a VRAM allocation for
 * [start, end) (evicting older ones when VRAM is full) and the migration into it.
 */
function xePagemapOps(xe: () => XeDevice): DrmPagemapOps {
  return {
    deviceMap(_dp, _dev, pfn, order, dir, writable) {
      return { proto: 'device', pfn, order, dir, writable, busAddrs: [] };
    },
    *populateMm(dp, start, end, mm, timesliceMs) {
      const x = xe();
      const alloc = drmPagemapDevmemInit(x.dev, mm, xeDevmemOps(x), dp, end - start);
      yield* x.evictLock.lock();
      x.lru.push(alloc);
      yield* x.evictLock.unlock();
      const err = yield* drmPagemapMigrateToDevmem(alloc, mm, start, end, timesliceMs);
      if (err === 0) x.dev.sys.trace.count('xe_svm_migrate_to_vram');
      return err;
    },
  };
}

export { xePagemapOps };

/** The mirror binding covering `addr`, or undefined. */
export function xeVmFindMirror(vm: XeVm, addr: number): XeMirrorVma | undefined {
  return vm.mirrors.find((m) => addr >= m.start && addr < m.end);
}

/** Whether an atomic access in `gv` needs device memory (xe_vma_need_vram_for_atomic). */
function needsVramForAtomic(xe: XeDevice, gv: XeMirrorVma): boolean {
  if (xe.dpagemap === null) return false;
  return (
    gv.attr.atomic === XE_ATOMIC.UNDEFINED ||
    gv.attr.atomic === XE_ATOMIC.DEVICE ||
    gv.attr.atomic === XE_ATOMIC.GLOBAL
  );
}

/** Models xe_svm_range_needs_migrate_to_vram(). */
function needsMigrateToVram(
  xe: XeDevice,
  range: DrmGpusvmRange,
  gv: XeMirrorVma,
  devmemOnly: boolean,
): boolean {
  if (xe.dpagemap === null || !range.pages.flags.migrateDevmem) return false;
  if (range.pages.flags.hasDevmemPages) return false;
  return devmemOnly || gv.attr.preferredLoc === XE_PREFERRED_LOC.DEFAULT_DEVICE;
}

/**
 * Models xe_svm_range_is_valid(): the range is bound and its pages are current (and in VRAM
 * when the fault needs device memory). Read without the notifier lock, as an early exit only.
 */
function rangeIsValid(range: DrmGpusvmRange, devmemOnly: boolean): boolean {
  const f = range.pages.flags;
  return xeRange(range).bound && (f.hasDmaMapping || f.hasDevmemPages) && (!devmemOnly || f.hasDevmemPages);
}

/**
 * Binds the range's pages in the GPU page table (xe_vm_range_rebind + the commit): under the
 * notifier lock, and only if drm_gpusvm_range_pages_valid() still holds. System pages get read
 * and write (as the CPU grants); VRAM pages also get atomics unless the binding allows only CPU
 * atomics. Returns 0 or -EAGAIN.
 */
function* xeSvmRangeBind(
  vm: XeVm,
  gv: XeMirrorVma,
  range: DrmGpusvmRange,
  devmemOnly: boolean,
): KGen<number> {
  const gpusvm = vm.gpusvm;
  yield* gpusvm.notifierLock.downRead();
  const valid = drmGpusvmRangePagesValid(gpusvm, range) && (!devmemOnly || range.pages.flags.hasDevmemPages);
  if (!valid) {
    yield* gpusvm.notifierLock.upRead();
    return -Errno.EAGAIN;
  }
  let va = range.start;
  for (const a of range.pages.dmaAddr ?? []) {
    const atomic = a.proto === 'device' && a.writable && gv.attr.atomic !== XE_ATOMIC.CPU;
    const prot = DEV_PTE.READ | (a.writable ? DEV_PTE.WRITE : 0) | (atomic ? DEV_PTE.ATOMIC : 0);
    for (let k = 0; k < 1 << a.order; k++, va += PAGE_SIZE) vm.pt.map(va, a.pfn + k, prot);
  }
  xeRange(range).bound = true;
  yield* gpusvm.notifierLock.upRead();
  vm.xe.dev.sys.trace.count('xe_svm_range_bind');
  return 0;
}

/**
 * Models xe_svm_alloc_vram(): populates the range with VRAM through the device's drm_pagemap.
 * Caller holds vm->lock.
 */
export function* xeSvmAllocVram(vm: XeVm, range: DrmGpusvmRange, timesliceMs: number): KGen<number> {
  const dp: DrmPagemap | null = vm.xe.dpagemap;
  if (dp === null) return -Errno.EOPNOTSUPP;
  return yield* drmPagemapPopulateMm(dp, range.start, range.end, vm.mm, timesliceMs);
}

/**
 * The gpusvm ctx of a fault (or prefetch) in `gv`. A binding that prefers system memory names
 * no device-private owner, so hmm_range_fault migrates its VRAM pages back (xe's force_smem),
 * unless the fault needs device memory.
 */
function faultCtx(vm: XeVm, gv: XeMirrorVma, devmemOnly: boolean, timesliceMs: number): DrmGpusvmCtx {
  const forceSmem = gv.attr.preferredLoc === XE_PREFERRED_LOC.DEFAULT_SYSTEM && !devmemOnly;
  return {
    readOnly: false,
    devmemPossible: vm.xe.dpagemap !== null,
    devmemOnly,
    checkPagesThreshold: vm.xe.dpagemap !== null ? 64 * 1024 : 0,
    timesliceMs,
    devicePrivatePageOwner: forceSmem ? null : vm.xe.dev,
  };
}

/**
 * Models __xe_svm_handle_pagefault(): services a GPU fault at `addr` in mirror binding `gv`.
 * Caller holds vm->lock for write. Returns 0, -EACCES (an atomic where only CPU atomics are
 * allowed), -EAGAIN (gave up retrying), or the gpusvm / migration error.
 */
export function* xeSvmHandlePagefault(
  vm: XeVm,
  gv: XeMirrorVma,
  addr: number,
  atomic: boolean,
): KGen<number> {
  const xe = vm.xe;
  if (atomic && gv.attr.atomic === XE_ATOMIC.CPU) return -Errno.EACCES;
  const devmemOnly = atomic && xe.config.strictAtomic && needsVramForAtomic(xe, gv);
  let timesliceMs = atomic ? xe.config.atomicTimesliceMs : 0;
  let migrateTries = devmemOnly ? 3 : 1;
  xe.dev.sys.trace.count('xe_svm_pagefault');
  for (let retries = 0; retries < XE_SVM_MAX_RETRIES; retries++) {
    yield* xeSvmGarbageCollector(vm);
    const ctx = faultCtx(vm, gv, devmemOnly, timesliceMs);
    const r = yield* drmGpusvmRangeFindOrInsert(vm.gpusvm, addr, gv.start, gv.end, ctx);
    if (typeof r === 'number') return r;
    const range = r;
    if (rangeIsValid(range, devmemOnly)) return 0;
    const wantVram = needsMigrateToVram(xe, range, gv, devmemOnly);
    if (wantVram && migrateTries > 0) {
      migrateTries--;
      const err = yield* xeSvmAllocVram(vm, range, timesliceMs);
      if (err !== 0 && devmemOnly) {
        if (migrateTries === 0) return err;
        yield* drmGpusvmRangeEvict(vm.gpusvm, range);
        continue;
      }
    }
    const err = yield* drmGpusvmRangeGetPages(vm.gpusvm, range, ctx);
    if (err === -Errno.EOPNOTSUPP || err === -Errno.EFAULT || err === -Errno.EPERM) {
      timesliceMs *= 2;
      if (migrateTries > 0 || !devmemOnly) {
        if (err === -Errno.EOPNOTSUPP) yield* drmGpusvmRangeEvict(vm.gpusvm, range);
        continue;
      }
      return err;
    }
    if (err !== 0) return err;
    const bound = yield* xeSvmRangeBind(vm, gv, range, devmemOnly);
    if (bound === -Errno.EAGAIN) continue;
    return bound;
  }
  return -Errno.EAGAIN;
}

/**
 * Models the SVM part of xe_vm_bind's PREFETCH op: every chunk of [start, end) in mirror
 * bindings gets a range, is migrated to VRAM (region 1) or back to system RAM (region 0), and
 * bound. Caller holds vm->lock for write. Returns 0 or -errno.
 */
export function* xeSvmPrefetch(vm: XeVm, start: number, end: number, region: number): KGen<number> {
  for (let addr = start; addr < end;) {
    const gv = xeVmFindMirror(vm, addr);
    if (gv === undefined) return -Errno.EINVAL;
    yield* xeSvmGarbageCollector(vm);
    const ctx = faultCtx(vm, gv, false, 0);
    const r = yield* drmGpusvmRangeFindOrInsert(vm.gpusvm, addr, gv.start, gv.end, ctx);
    if (typeof r === 'number') return r;
    if (
      region === 1 &&
      vm.xe.dpagemap !== null &&
      r.pages.flags.migrateDevmem &&
      !r.pages.flags.hasDevmemPages
    ) {
      const err = yield* xeSvmAllocVram(vm, r, 0);
      if (err !== 0 && err !== -Errno.EBUSY) return err;
    } else if (region === 0 && r.pages.flags.hasDevmemPages) {
      yield* drmGpusvmRangeEvict(vm.gpusvm, r);
    }
    let err = 0;
    for (let tries = 0; tries < XE_SVM_MAX_RETRIES; tries++) {
      err = yield* drmGpusvmRangeGetPages(vm.gpusvm, r, ctx);
      if (err === -Errno.EOPNOTSUPP) {
        yield* drmGpusvmRangeEvict(vm.gpusvm, r);
        continue;
      }
      if (err !== 0) break;
      err = yield* xeSvmRangeBind(vm, gv, r, false);
      if (err !== -Errno.EAGAIN) break;
    }
    if (err !== 0) return err;
    vm.xe.dev.sys.trace.count('xe_svm_prefetch');
    addr = r.end;
  }
  return 0;
}

/** The mm a VM mirrors (for callers outside the SVM code). */
export function xeVmMm(vm: XeVm): MmStruct {
  return vm.mm;
}
