/**
 * Models drivers/gpu/drm/drm_gpusvm.c and include/drm/drm_gpusvm.h: DRM's GPU shared-virtual-
 * memory layer, the common code under a driver that lets a GPU use plain CPU pointers.
 *
 * Shape:
 *  - a DrmGpusvm mirrors one mm over [mmStart, mmStart + mmRange);
 *  - notifiers are mmu_interval_notifiers of `notifierSize` bytes, aligned to that size, inserted
 *    on the first fault that lands in them and removed with their last range;
 *  - each notifier keeps a tree of ranges; a range is one chunk (the largest of `chunkSizes` that
 *    fits the VMA, the notifier and the GPU VA window without overlapping another range) and
 *    carries its pages: one DMA (or device) address per CPU mapping, valid between a successful
 *    get_pages and the next invalidation.
 *
 * Locking (what protects what):
 *  - `notifierLock` (an rw_semaphore, the `driver->update` lock of Documentation/mm/hmm.rst)
 *    guards every notifier's range tree, each range's DMA addresses and flags, and the seq check
 *    of get_pages; the invalidate callback takes it for write, readers take it for read;
 *  - the driver's own lock (`driverLock`, xe's vm->lock) serialises find_or_insert and remove,
 *    which change the trees: the caller holds it, as the kernel's drm_gpusvm_driver_lock_held()
 *    asserts;
 *  - DMA mappings are made only under `notifierLock` after mmu_interval_read_retry() said the
 *    pages are still current, so an invalidation either waits for the lock or unmaps them.
 *
 *   CPU0 invalidate (munmap)              CPU1 GPU fault (get_pages)
 *                                         seq = read_begin(); hmm_range_fault()
 *   down_write(notifier_lock)
 *   set_seq(cur); ops.invalidate():
 *     unmap DMA, zap GPU PTEs
 *   up_write(notifier_lock)
 *                                         down_read(notifier_lock)
 *                                         read_retry(seq) === true -> up_read, again
 */
import { IntervalTree, type IntervalNode } from '../../../lib/interval_tree.ts';
import { PAGE_SIZE } from '../../../lib/units.ts';
import { NSEC_PER_MSEC } from '../../../sched/clock.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { MAX_RAM_BYTES } from '../../system.ts';
import type { Device } from '../sdk/device.ts';
import { DMA, type DmaDataDirection, dmaMapPage, dmaMappingError, dmaUnmapPage } from '../sdk/dma_mapping.ts';
import { type DriverLock, type DriverRwSem, lockdepAssertHeld } from '../sdk/locks.ts';
import {
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  HMM_RANGE_DEFAULT_TIMEOUT_MS,
  type HmmRange,
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
  type MmuNotifierRange,
  type MmStruct,
  hmmPfnFlags,
  hmmPfnPfn,
  hmmPfnToMapOrder,
  hmmRangeFault,
  isDeviceCoherentPage,
  isDevicePrivatePage,
  isZoneDevicePage,
  mmgetNotZero,
  mmput,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
  pageDevPagemap,
} from '../sdk/kernel_api.ts';
import { VM } from '../../mm/mm_types.ts';
import { type DrmPagemap, type DrmPagemapAddr, drmPagemapOfPgmap } from './drm_pagemap.ts';

/** Models struct drm_gpusvm_ops. */
export interface DrmGpusvmOps {
  /**
   * Called with notifierLock held for write, after set_seq: unmap the GPU's view of every range
   * of `notifier` that overlaps `mmuRange` (drm_gpusvm_range_unmap_pages with inNotifier) and,
   * for an UNMAP, mark them unmapped and hand them to the garbage collector.
   */
  invalidate(gpusvm: DrmGpusvm, notifier: DrmGpusvmNotifier, mmuRange: MmuNotifierRange): KGen;
}

/** Models struct drm_gpusvm_ctx: what one operation wants. */
export interface DrmGpusvmCtx {
  /** Only map what the CPU maps readable (no write fault, DMA_TO_DEVICE). */
  readonly readOnly?: boolean;
  /** The range may be migrated to device memory (the device has some). */
  readonly devmemPossible?: boolean;
  /** get_pages fails with -EFAULT unless every page is device memory (atomics). */
  readonly devmemOnly?: boolean;
  /** Ranges at most this big are created only over pages the CPU has faulted in. */
  readonly checkPagesThreshold?: number;
  /** How long migrated pages stay in device memory before a CPU fault may take them back. */
  readonly timesliceMs?: number;
  /** The caller is the invalidate callback: notifierLock is held for write. */
  readonly inNotifier?: boolean;
  /** hmm_range.dev_private_owner: device-private pages of this owner are returned as they are. */
  readonly devicePrivatePageOwner?: unknown;
  /** A range may mix system and device pages. */
  readonly allowMixed?: boolean;
}

/** Models struct drm_gpusvm_pages_flags. */
export interface DrmGpusvmPagesFlags {
  migrateDevmem: boolean;
  unmapped: boolean;
  partialUnmap: boolean;
  hasDevmemPages: boolean;
  hasDmaMapping: boolean;
}

/** Models struct drm_gpusvm_pages: the GPU's view of the pages of a CPU range. */
export class DrmGpusvmPages {
  /** One entry per CPU mapping (a huge mapping is one entry of its order); null when not allocated. */
  dmaAddr: DrmPagemapAddr[] | null = null;
  /** The device memory the pages are in, when they are device pages. */
  dpagemap: DrmPagemap | null = null;
  /** The notifier seq these pages were collected under (LONG_MAX before the first get_pages). */
  notifierSeq = Number.MAX_SAFE_INTEGER;
  readonly flags: DrmGpusvmPagesFlags = {
    migrateDevmem: false,
    unmapped: false,
    partialUnmap: false,
    hasDevmemPages: false,
    hasDmaMapping: false,
  };
}

/** Models struct drm_gpusvm_notifier: one notifierSize-aligned interval and its ranges. */
export class DrmGpusvmNotifier extends MmuIntervalNotifier {
  /** Ranges by CPU address (notifier->root); guarded by notifierLock. */
  readonly ranges = new IntervalTree<DrmGpusvmRange>();
  itree: IntervalNode<DrmGpusvmNotifier> | null = null;
  /** mmu_interval_notifier_remove() already ran (drm_gpusvm_fini). */
  removed = false;

  constructor(
    readonly gpusvm: DrmGpusvm,
    /** Inclusive start and exclusive end of the interval (itree.start, itree.last + 1). */
    readonly startAddr: number,
    readonly endAddr: number,
  ) {
    super();
  }
}

/** Models struct drm_gpusvm_range: one chunk of a notifier, the unit of GPU mapping and migration. */
export class DrmGpusvmRange {
  node: IntervalNode<DrmGpusvmRange> | null = null;
  refcount = 1;
  readonly pages = new DrmGpusvmPages();
  /** Driver data (the kernel embeds the range in the driver's struct). */
  priv: unknown = null;

  constructor(
    readonly gpusvm: DrmGpusvm,
    readonly notifier: DrmGpusvmNotifier,
    readonly start: number,
    readonly end: number,
  ) {}

  get npages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }
}

/** Models struct drm_gpusvm. */
export class DrmGpusvm {
  /** Notifiers by CPU address (gpusvm->root); changed under the driver lock. */
  readonly notifiers = new IntervalTree<DrmGpusvmNotifier>();
  /** drm_gpusvm_driver_set_lock(): the driver lock find_or_insert and remove assert. */
  driverLock: DriverLock | null = null;

  constructor(
    readonly name: string,
    readonly dev: Device,
    readonly mm: MmStruct,
    readonly mmStart: number,
    readonly mmRange: number,
    readonly notifierSize: number,
    readonly ops: DrmGpusvmOps,
    readonly chunkSizes: readonly number[],
    readonly notifierLock: DriverRwSem,
  ) {}
}

/**
 * Models drm_gpusvm_init(). `chunkSizes` are powers of two, largest first, ending with 4 KiB.
 * The caller keeps an mm reference for the gpusvm's life (the kernel's mmgrab). Returns the
 * gpusvm, or -EINVAL (no chunk sizes, a chunk size that is not a power of two).
 */
export function drmGpusvmInit(
  name: string,
  dev: Device,
  mm: MmStruct,
  mmStart: number,
  mmRange: number,
  notifierSize: number,
  ops: DrmGpusvmOps,
  chunkSizes: readonly number[],
): DrmGpusvm | number {
  if (chunkSizes.length === 0 || chunkSizes.some((c) => c < PAGE_SIZE || (c & (c - 1)) !== 0))
    return -Errno.EINVAL;
  if (chunkSizes[chunkSizes.length - 1] !== PAGE_SIZE) return -Errno.EINVAL;
  const lock = dev.rwsem(`${name}.notifier_lock`, {
    lockClass: 'drm_gpusvm.notifier_lock',
    guards: 'the range trees, each range\u2019s DMA addresses and flags, and the get_pages seq check',
  });
  return new DrmGpusvm(name, dev, mm, mmStart, mmRange, notifierSize, ops, chunkSizes, lock);
}

/** Models drm_gpusvm_driver_set_lock(). */
export function drmGpusvmDriverSetLock(gpusvm: DrmGpusvm, lock: DriverLock): void {
  gpusvm.driverLock = lock;
}

function driverLockHeld(gpusvm: DrmGpusvm): void {
  if (gpusvm.driverLock !== null) lockdepAssertHeld(gpusvm.driverLock);
}

/** Models drm_gpusvm_notifier_lock() (down_read of the notifier lock). */
export function* drmGpusvmNotifierLock(gpusvm: DrmGpusvm): KGen {
  yield* gpusvm.notifierLock.downRead();
}

/** Models drm_gpusvm_notifier_unlock(). */
export function* drmGpusvmNotifierUnlock(gpusvm: DrmGpusvm): KGen {
  yield* gpusvm.notifierLock.upRead();
}

/** Models drm_gpusvm_notifier_find(): the notifier overlapping [start, end), or null. */
export function drmGpusvmNotifierFind(
  gpusvm: DrmGpusvm,
  start: number,
  end: number,
): DrmGpusvmNotifier | null {
  return gpusvm.notifiers.firstOverlap(start, end - 1)?.value ?? null;
}

/** Models drm_gpusvm_range_find(): the first range of `notifier` overlapping [start, end), or null. */
export function drmGpusvmRangeFind(
  notifier: DrmGpusvmNotifier,
  start: number,
  end: number,
): DrmGpusvmRange | null {
  return notifier.ranges.firstOverlap(start, end - 1)?.value ?? null;
}

/** Models drm_gpusvm_for_each_range(): the ranges of `notifier` overlapping [start, end), in order. */
export function drmGpusvmRangesIn(notifier: DrmGpusvmNotifier, start: number, end: number): DrmGpusvmRange[] {
  const out: DrmGpusvmRange[] = [];
  for (let n = notifier.ranges.firstOverlap(start, end - 1); n !== null;) {
    out.push(n.value);
    n = notifier.ranges.nextOverlap(n, start, end - 1);
  }
  return out;
}

/** Every notifier of `gpusvm` overlapping [start, end) (drm_gpusvm_for_each_notifier). */
export function drmGpusvmNotifiersIn(gpusvm: DrmGpusvm, start: number, end: number): DrmGpusvmNotifier[] {
  const out: DrmGpusvmNotifier[] = [];
  for (let n = gpusvm.notifiers.firstOverlap(start, end - 1); n !== null;) {
    out.push(n.value);
    n = gpusvm.notifiers.nextOverlap(n, start, end - 1);
  }
  return out;
}

/**
 * Models drm_gpusvm_notifier_invalidate(): the interval notifier callback. A non-blockable
 * invalidation (the OOM reaper) gets false, since the driver must sleep to unmap; otherwise it
 * takes notifierLock for write, sets the seq and lets the driver unmap.
 */
const drmGpusvmNotifierOps: MmuIntervalNotifierOps<DrmGpusvmNotifier> = {
  *invalidate(notifier, mmuRange, curSeq) {
    const gpusvm = notifier.gpusvm;
    if (!mmuNotifierRangeBlockable(mmuRange)) return false;
    yield* gpusvm.notifierLock.downWrite();
    mmuIntervalSetSeq(notifier, curSeq);
    yield* gpusvm.ops.invalidate(gpusvm, notifier, mmuRange);
    yield* gpusvm.notifierLock.upWrite();
    return true;
  },
};

function alignDown(a: number, size: number): number {
  return a - (a % size);
}

function alignUp(a: number, size: number): number {
  return alignDown(a + size - 1, size);
}

/** The most pages one drm_gpusvm_get_pages() takes: 16 GiB, the most RAM a System has. */
export const MAX_GET_PAGES = MAX_RAM_BYTES / PAGE_SIZE;

/** A struct hmm_range over [start, end) of `notifier`. */
function hmmRangeOf(
  notifier: MmuIntervalNotifier,
  start: number,
  end: number,
  defaultFlags: number,
  owner: unknown,
): HmmRange {
  return {
    notifier,
    notifierSeq: 0,
    start,
    end,
    hmmPfns: new Uint32Array(((end - start) / PAGE_SIZE) * 2),
    defaultFlags,
    pfnFlagsMask: 0,
    devPrivateOwner: owner ?? null,
  };
}

/**
 * Models drm_gpusvm_hmm_pfn_to_order(): the order of the CPU mapping of entry i, cut so that it
 * neither starts before the entry's page nor runs past the end of the range.
 */
export function drmGpusvmHmmPfnToOrder(words: Uint32Array, i: number, npages: number): number {
  let size = 2 ** hmmPfnToMapOrder(words, i);
  size -= hmmPfnPfn(words, i) % size;
  if (i + size > npages) size -= i + size - npages;
  return Math.floor(Math.log2(size));
}

/** Virtual time one hmm_range_fault pass costs, so a loop that keeps colliding can time out. */
const PASS_NS = 10_000;

/**
 * hmm_range_fault() under the mmap read lock, retried on -EBUSY with a fresh read_begin until
 * the HMM timeout passes. The caller holds an mm reference.
 */
function* faultRetrying(range: HmmRange, deadline: number, takeMmap: boolean): KGen<number> {
  const mm = range.notifier.mm;
  const clock = mm.sys.sched.clock;
  for (;;) {
    clock.advanceBy(PASS_NS);
    if (takeMmap) yield* mm.mmapLock.downRead();
    const err = yield* hmmRangeFault(range);
    if (takeMmap) yield* mm.mmapLock.upRead();
    if (err !== -Errno.EBUSY) return err;
    if (clock.now > deadline) return err;
    range.notifierSeq = yield* mmuIntervalReadBegin(range.notifier);
  }
}

/**
 * Models drm_gpusvm_check_pages(): whether every page of [start, end) is present on the CPU
 * (faulting nothing). The caller holds the mmap lock.
 */
function* drmGpusvmCheckPages(
  gpusvm: DrmGpusvm,
  notifier: DrmGpusvmNotifier,
  start: number,
  end: number,
  owner: unknown,
): KGen<boolean> {
  const range = hmmRangeOf(notifier, start, end, 0, owner);
  const deadline = gpusvm.mm.sys.sched.clock.now + HMM_RANGE_DEFAULT_TIMEOUT_MS * NSEC_PER_MSEC;
  range.notifierSeq = yield* mmuIntervalReadBegin(notifier);
  if ((yield* faultRetrying(range, deadline, false)) !== 0) return false;
  const npages = (end - start) / PAGE_SIZE;
  for (let i = 0; i < npages;) {
    if ((hmmPfnFlags(range.hmmPfns, i) & HMM_PFN_VALID) === 0) return false;
    i += 2 ** drmGpusvmHmmPfnToOrder(range.hmmPfns, i, npages);
  }
  return true;
}

/**
 * Models drm_gpusvm_range_chunk_size(): the largest chunk around `faultAddr` that lies inside
 * the VMA, the notifier and [gpuvaStart, gpuvaEnd) and, when bigger than a page, overlaps no
 * other range and (up to checkPagesThreshold) covers only pages the CPU has. -1 if none fits.
 */
function* drmGpusvmRangeChunkSize(
  gpusvm: DrmGpusvm,
  notifier: DrmGpusvmNotifier,
  vmaStart: number,
  vmaEnd: number,
  faultAddr: number,
  gpuvaStart: number,
  gpuvaEnd: number,
  ctx: DrmGpusvmCtx,
): KGen<number> {
  for (const chunk of gpusvm.chunkSizes) {
    const start = alignDown(faultAddr, chunk);
    const end = alignUp(faultAddr + 1, chunk);
    const fits =
      start >= vmaStart &&
      end <= vmaEnd &&
      start >= notifier.startAddr &&
      end <= notifier.endAddr &&
      start >= gpuvaStart &&
      end <= gpuvaEnd;
    if (!fits) continue;
    if (end - start === PAGE_SIZE) return PAGE_SIZE;
    if (drmGpusvmRangeFind(notifier, start, end) !== null) continue;
    if (
      end - start <= (ctx.checkPagesThreshold ?? 0) &&
      !(yield* drmGpusvmCheckPages(gpusvm, notifier, start, end, ctx.devicePrivatePageOwner))
    )
      continue;
    return end - start;
  }
  return -1;
}

/**
 * Models drm_gpusvm_range_find_or_insert(): the range holding `faultAddr`, created (and its
 * notifier with it) if there is none. The caller holds the driver lock. Returns the range, or
 * -EINVAL (outside the gpusvm, or no chunk fits), -EFAULT (the mm is gone), -ENOENT (no VMA),
 * -EPERM (a read-only VMA for a writable mapping), or the notifier insert's error.
 */
export function* drmGpusvmRangeFindOrInsert(
  gpusvm: DrmGpusvm,
  faultAddr: number,
  gpuvaStart: number,
  gpuvaEnd: number,
  ctx: DrmGpusvmCtx,
): KGen<DrmGpusvmRange | number> {
  driverLockHeld(gpusvm);
  const mm = gpusvm.mm;
  if (faultAddr < gpusvm.mmStart || faultAddr > gpusvm.mmStart + gpusvm.mmRange) return -Errno.EINVAL;
  if (!mmgetNotZero(mm)) return -Errno.EFAULT;
  let notifier = drmGpusvmNotifierFind(gpusvm, faultAddr, faultAddr + 1);
  let notifierAlloc = false;
  if (notifier === null) {
    const start = alignDown(faultAddr, gpusvm.notifierSize);
    notifier = new DrmGpusvmNotifier(gpusvm, start, alignUp(faultAddr + 1, gpusvm.notifierSize));
    notifierAlloc = true;
    const err = yield* mmuIntervalNotifierInsert(
      notifier,
      mm,
      start,
      gpusvm.notifierSize,
      drmGpusvmNotifierOps,
    );
    if (err !== 0) {
      yield* mmput(mm);
      return err;
    }
  }
  yield* mm.mmapLock.downRead();
  const fail = function* (err: number): KGen<number> {
    yield* mm.mmapLock.upRead();
    if (notifierAlloc) yield* mmuIntervalNotifierRemove(notifier);
    yield* mmput(mm);
    return err;
  };
  const vma = mm.vmaLookup(faultAddr);
  if (vma === null) return yield* fail(-Errno.ENOENT);
  if (ctx.readOnly !== true && (vma.flags & VM.WRITE) === 0) return yield* fail(-Errno.EPERM);
  let range = drmGpusvmRangeFind(notifier, faultAddr, faultAddr + 1);
  if (range === null) {
    const migrateDevmem = ctx.devmemPossible === true && vma.isAnon() && (vma.flags & VM.HUGETLB) === 0;
    const chunk = yield* drmGpusvmRangeChunkSize(
      gpusvm,
      notifier,
      vma.start,
      vma.end,
      faultAddr,
      gpuvaStart,
      gpuvaEnd,
      ctx,
    );
    if (chunk < 0) return yield* fail(-Errno.EINVAL);
    range = new DrmGpusvmRange(gpusvm, notifier, alignDown(faultAddr, chunk), alignUp(faultAddr + 1, chunk));
    range.pages.flags.migrateDevmem = migrateDevmem;
    yield* gpusvm.notifierLock.downRead();
    range.node = notifier.ranges.insert(range.start, range.end - 1, range);
    yield* gpusvm.notifierLock.upRead();
    if (notifierAlloc)
      notifier.itree = gpusvm.notifiers.insert(notifier.startAddr, notifier.endAddr - 1, notifier);
    gpusvm.dev.sys.trace.count('drm_gpusvm_range_insert');
  }
  yield* mm.mmapLock.upRead();
  yield* mmput(mm);
  return range;
}

/**
 * Models __drm_gpusvm_unmap_pages(): undoes the DMA mappings of `pages`. Caller holds
 * notifierLock (for write when called from the invalidate callback).
 */
function unmapPagesLocked(gpusvm: DrmGpusvm, pages: DrmGpusvmPages): void {
  lockdepAssertHeld(gpusvm.notifierLock);
  if (!pages.flags.hasDmaMapping) return;
  for (const a of pages.dmaAddr ?? []) {
    if (a.proto === 'system') dmaUnmapPages(gpusvm.dev, a);
    else pages.dpagemap?.ops.deviceUnmap?.(pages.dpagemap, gpusvm.dev, a);
  }
  pages.flags.hasDevmemPages = false;
  pages.flags.hasDmaMapping = false;
  pages.dpagemap = null;
}

function dmaUnmapPages(dev: Device, a: DrmPagemapAddr): void {
  for (const addr of a.busAddrs) dmaUnmapPage(dev, addr);
}

/** Models drm_gpusvm_pages_valid(): caller holds notifierLock. */
export function drmGpusvmPagesValid(gpusvm: DrmGpusvm, pages: DrmGpusvmPages): boolean {
  lockdepAssertHeld(gpusvm.notifierLock);
  return pages.flags.hasDevmemPages || pages.flags.hasDmaMapping;
}

/**
 * Models drm_gpusvm_range_pages_valid(): whether the range's pages are still current. Call under
 * notifierLock as the last check before committing a GPU binding (the per-range form of
 * mmu_interval_read_retry, since one notifier spans many ranges).
 */
export function drmGpusvmRangePagesValid(gpusvm: DrmGpusvm, range: DrmGpusvmRange): boolean {
  return drmGpusvmPagesValid(gpusvm, range.pages);
}

/** Models drm_gpusvm_pages_valid_unlocked(). */
function* pagesValidUnlocked(gpusvm: DrmGpusvm, pages: DrmGpusvmPages): KGen<boolean> {
  if (pages.dmaAddr === null) return false;
  yield* gpusvm.notifierLock.downRead();
  const valid = drmGpusvmPagesValid(gpusvm, pages);
  if (!valid) pages.dmaAddr = null;
  yield* gpusvm.notifierLock.upRead();
  return valid;
}

/**
 * Models drm_gpusvm_get_pages(): faults in [start, end) of `mm` with hmm_range_fault (write
 * unless ctx.readOnly), then, under notifierLock and only if mmu_interval_read_retry() says
 * nothing changed meanwhile, DMA-maps each system page (device pages get a device address from
 * their drm_pagemap). Returns 0, -EBUSY (invalidations kept colliding past the HMM timeout),
 * -EFAULT (the mm is gone, the range was unmapped, or ctx.devmemOnly and a page is not device
 * memory), -EOPNOTSUPP (a mix of system and device pages, or device pages of another pagemap:
 * the caller evicts and retries), or hmm_range_fault's error.
 */
export function* drmGpusvmGetPages(
  gpusvm: DrmGpusvm,
  pages: DrmGpusvmPages,
  mm: MmStruct,
  notifier: MmuIntervalNotifier,
  start: number,
  end: number,
  ctx: DrmGpusvmCtx,
): KGen<number> {
  const sys = gpusvm.dev.sys;
  const clock = sys.sched.clock;
  const deadline = clock.now + HMM_RANGE_DEFAULT_TIMEOUT_MS * NSEC_PER_MSEC;
  const npages = (end - start) / PAGE_SIZE;
  // The pfn array is a kvmalloc_array() of 8-byte entries, which refuses more than INT_MAX bytes
  // (2^28 pages) with -ENOMEM (and a WARN_ON_ONCE, not modelled). The model also refuses more
  // pages than the largest System has RAM (MAX_GET_PAGES), whose array it would have to hold.
  if (npages > MAX_GET_PAGES) return -Errno.ENOMEM;
  const dir: DmaDataDirection = ctx.readOnly === true ? DMA.TO_DEVICE : DMA.BIDIRECTIONAL;
  const range = hmmRangeOf(
    notifier,
    start,
    end,
    HMM_PFN_REQ_FAULT | (ctx.readOnly === true ? 0 : HMM_PFN_REQ_WRITE),
    ctx.devicePrivatePageOwner,
  );
  retry: for (;;) {
    if (clock.now > deadline) return -Errno.EBUSY;
    range.notifierSeq = yield* mmuIntervalReadBegin(notifier);
    if (yield* pagesValidUnlocked(gpusvm, pages)) {
      pages.notifierSeq = range.notifierSeq;
      return 0;
    }
    if (!mmgetNotZero(mm)) return -Errno.EFAULT;
    const err = yield* faultRetrying(range, deadline, true);
    yield* mmput(mm);
    if (err !== 0) return err;

    yield* gpusvm.notifierLock.downRead();
    if (pages.flags.unmapped) {
      yield* gpusvm.notifierLock.upRead();
      return -Errno.EFAULT;
    }
    if (mmuIntervalReadRetry(notifier, range.notifierSeq)) {
      yield* gpusvm.notifierLock.upRead();
      continue retry;
    }
    const addrs: DrmPagemapAddr[] = [];
    pages.dmaAddr = addrs;
    let pagemap: unknown = null;
    let dpagemap: DrmPagemap | null = null;
    let failed = 0;
    for (let i = 0; i < npages;) {
      const order = drmGpusvmHmmPfnToOrder(range.hmmPfns, i, npages);
      const n = 2 ** order;
      const pfn = hmmPfnPfn(range.hmmPfns, i);
      const writable = (hmmPfnFlags(range.hmmPfns, i) & HMM_PFN_WRITE) !== 0;
      if (isDevicePrivatePage(sys, pfn) || isDeviceCoherentPage(sys, pfn)) {
        const pm = pageDevPagemap(sys, pfn);
        if (pagemap !== pm) {
          if (i > 0) {
            failed = -Errno.EOPNOTSUPP;
            break;
          }
          pagemap = pm;
          dpagemap = pm === null ? null : drmPagemapOfPgmap(pm);
          if (dpagemap === null) {
            failed = -Errno.EOPNOTSUPP;
            break;
          }
        }
        addrs.push(dpagemap!.ops.deviceMap(dpagemap!, gpusvm.dev, pfn, order, dir, writable));
      } else {
        if (isZoneDevicePage(sys, pfn) || (pagemap !== null && ctx.allowMixed !== true)) {
          failed = -Errno.EOPNOTSUPP;
          break;
        }
        if (ctx.devmemOnly === true) {
          failed = -Errno.EFAULT;
          break;
        }
        const a: DrmPagemapAddr = { proto: 'system', pfn, order, dir, writable, busAddrs: [] };
        addrs.push(a);
        for (let k = 0; k < n; k++) {
          const bus = dmaMapPage(gpusvm.dev, pfn + k, dir);
          if (dmaMappingError(bus)) {
            failed = -Errno.EFAULT;
            break;
          }
          a.busAddrs.push(bus);
        }
        if (failed !== 0) break;
      }
      i += n;
      pages.flags.hasDmaMapping = true;
    }
    if (failed !== 0) {
      pages.flags.hasDmaMapping = true;
      unmapPagesLocked(gpusvm, pages);
      yield* gpusvm.notifierLock.upRead();
      if (failed === -Errno.EAGAIN) continue retry;
      return failed;
    }
    if (pagemap !== null) {
      pages.flags.hasDevmemPages = true;
      pages.dpagemap = dpagemap;
    }
    yield* gpusvm.notifierLock.upRead();
    pages.notifierSeq = range.notifierSeq;
    sys.trace.count('drm_gpusvm_get_pages');
    return 0;
  }
}

/** Models drm_gpusvm_range_get_pages(). */
export function* drmGpusvmRangeGetPages(
  gpusvm: DrmGpusvm,
  range: DrmGpusvmRange,
  ctx: DrmGpusvmCtx,
): KGen<number> {
  return yield* drmGpusvmGetPages(
    gpusvm,
    range.pages,
    gpusvm.mm,
    range.notifier,
    range.start,
    range.end,
    ctx,
  );
}

/**
 * Models drm_gpusvm_unmap_pages(): with ctx.inNotifier the caller holds notifierLock for write
 * (the invalidate callback); otherwise it is taken for read here.
 */
export function* drmGpusvmUnmapPages(gpusvm: DrmGpusvm, pages: DrmGpusvmPages, ctx: DrmGpusvmCtx): KGen {
  if (ctx.inNotifier === true) {
    if (gpusvm.notifierLock.writer !== gpusvm.dev.sys.sched.current) lockdepAssertHeld(gpusvm.notifierLock);
    unmapPagesLocked(gpusvm, pages);
    return;
  }
  yield* gpusvm.notifierLock.downRead();
  unmapPagesLocked(gpusvm, pages);
  yield* gpusvm.notifierLock.upRead();
}

/** Models drm_gpusvm_range_unmap_pages(). */
export function* drmGpusvmRangeUnmapPages(gpusvm: DrmGpusvm, range: DrmGpusvmRange, ctx: DrmGpusvmCtx): KGen {
  yield* drmGpusvmUnmapPages(gpusvm, range.pages, ctx);
}

/** Models drm_gpusvm_free_pages(): unmaps and frees the DMA address array. */
export function* drmGpusvmFreePages(gpusvm: DrmGpusvm, pages: DrmGpusvmPages): KGen {
  yield* gpusvm.notifierLock.downRead();
  unmapPagesLocked(gpusvm, pages);
  pages.dmaAddr = null;
  yield* gpusvm.notifierLock.upRead();
}

/** Models drm_gpusvm_range_set_unmapped(): caller holds notifierLock for write (the invalidate callback). */
export function drmGpusvmRangeSetUnmapped(range: DrmGpusvmRange, mmuRange: MmuNotifierRange): void {
  lockdepAssertHeld(range.gpusvm.notifierLock);
  range.pages.flags.unmapped = true;
  if (range.start < mmuRange.start || range.end > mmuRange.end) range.pages.flags.partialUnmap = true;
}

/** Models drm_gpusvm_range_get(). */
export function drmGpusvmRangeGet(range: DrmGpusvmRange): DrmGpusvmRange {
  range.refcount++;
  return range;
}

/** Models drm_gpusvm_range_put(). */
export function drmGpusvmRangePut(range: DrmGpusvmRange): void {
  range.refcount--;
}

/**
 * Models drm_gpusvm_range_remove(): unmaps the range's pages, takes it out of its notifier and,
 * when that was the notifier's last range, removes the notifier too. The caller holds the
 * driver lock and must not hold notifierLock (the notifier removal may wait for an invalidation).
 */
export function* drmGpusvmRangeRemove(gpusvm: DrmGpusvm, range: DrmGpusvmRange): KGen {
  driverLockHeld(gpusvm);
  const notifier = drmGpusvmNotifierFind(gpusvm, range.start, range.start + 1);
  if (notifier === null) return;
  yield* gpusvm.notifierLock.downRead();
  unmapPagesLocked(gpusvm, range.pages);
  range.pages.dmaAddr = null;
  if (range.node !== null) notifier.ranges.remove(range.node);
  range.node = null;
  yield* gpusvm.notifierLock.upRead();
  drmGpusvmRangePut(range);
  gpusvm.dev.sys.trace.count('drm_gpusvm_range_remove');
  if (notifier.ranges.size === 0) {
    if (!notifier.removed) yield* mmuIntervalNotifierRemove(notifier);
    notifier.removed = true;
    if (notifier.itree !== null) gpusvm.notifiers.remove(notifier.itree);
    notifier.itree = null;
  }
}

/**
 * Models drm_gpusvm_range_evict(): faults the range in with no device-private owner, so
 * hmm_range_fault migrates every device page of it back to system RAM (through the pages'
 * migrate_to_ram). Returns 0, -EFAULT (mm gone), -ETIME, or hmm_range_fault's error.
 */
export function* drmGpusvmRangeEvict(gpusvm: DrmGpusvm, range: DrmGpusvmRange): KGen<number> {
  const mm = gpusvm.mm;
  if (!mmgetNotZero(mm)) return -Errno.EFAULT;
  const hr = hmmRangeOf(range.notifier, range.start, range.end, HMM_PFN_REQ_FAULT, null);
  const clock = mm.sys.sched.clock;
  const deadline = clock.now + HMM_RANGE_DEFAULT_TIMEOUT_MS * NSEC_PER_MSEC;
  let err = 0;
  while (clock.now <= deadline) {
    hr.notifierSeq = yield* mmuIntervalReadBegin(range.notifier);
    clock.advanceBy(PASS_NS);
    yield* mm.mmapLock.downRead();
    err = yield* hmmRangeFault(hr);
    yield* mm.mmapLock.upRead();
    if (err !== -Errno.EBUSY) break;
  }
  yield* mmput(mm);
  return err === -Errno.EBUSY ? -Errno.ETIME : err;
}

/** Models drm_gpusvm_has_mapping(): some range overlaps [start, end). */
export function drmGpusvmHasMapping(gpusvm: DrmGpusvm, start: number, end: number): boolean {
  return drmGpusvmNotifiersIn(gpusvm, start, end).some((n) => drmGpusvmRangesIn(n, start, end).length > 0);
}

/**
 * Models drm_gpusvm_fini(): removes every notifier (first, so no invalidation races with the
 * teardown) and then every range. The caller holds the driver lock.
 */
export function* drmGpusvmFini(gpusvm: DrmGpusvm): KGen {
  for (const notifier of drmGpusvmNotifiersIn(gpusvm, 0, Number.MAX_SAFE_INTEGER)) {
    if (!notifier.removed) yield* mmuIntervalNotifierRemove(notifier);
    notifier.removed = true;
    for (const range of drmGpusvmRangesIn(notifier, 0, Number.MAX_SAFE_INTEGER))
      yield* drmGpusvmRangeRemove(gpusvm, range);
  }
}
