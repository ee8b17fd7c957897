/**
 * The HMM paths of the UVM-style driver (after kernel-open/nvidia-uvm/uvm_hmm.c): one
 * mmu_interval_notifier per 2 MiB VA block, its invalidate callback, servicing a VA block's GPU
 * faults (prefetch, thrashing hints, migrate_vma to GPU memory, hmm_range_fault and mapping under
 * the read_retry protocol, make_device_exclusive for atomics on system memory), the CPU fault on
 * a GPU page (dev_pagemap_ops.migrate_to_ram) and eviction of a root chunk.
 *
 *   CPU0 munmap / migrate / mprotect        CPU1 fault worker (uvmHmmServiceBlock)
 *                                           changed0 = block.changed
 *                                           migrate_vma (own MIGRATE event: ignored)
 *                                           seq = read_begin; hmm_range_fault
 *   invalidate: lock; changed++;
 *   set_seq; unmap GPU; unlock
 *                                           lock; read_retry(seq) -> retry
 *                                           ... else map GPU PTEs; unlock
 */
import { PAGE_SIZE } from '../../../lib/units.ts';
import { sleepNs } from '../../../sched/locks.ts';
import type { KGen } from '../../../sched/types.ts';
import { folioTrylock, folioUnlock } from '../../mm/filemap.ts';
import { makeDeviceExclusive } from '../../mm/device_exclusive.ts';
import {
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  type HmmRange,
} from '../../mm/hmm.ts';
import { zoneDevicePageInit } from '../../mm/memremap.ts';
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migratePfn,
  migratePfnFlags,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
} from '../../mm/migrate_device.ts';
import { VM, VM_FAULT, type Vma, type VmFault } from '../../mm/mm_types.ts';
import {
  MMU_NOTIFY,
  type MmuIntervalNotifierOps,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierInsertLocked,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
} from '../../mm/mmu_notifier.ts';
import { allocPageReclaim } from '../../mm/vmscan.ts';
import { DEV_PTE } from '../sdk/device_pagetable.ts';
import { migrateToRamOne, migrateVmaInit } from '../sdk/devmem.ts';
import { hmmRangeFaultLocked } from '../sdk/hmm_mirror.ts';
import type { DeviceAccessKind as GpuAccessKind } from '../sdk/device_pagetable.ts';
import type { UvmGpu } from './uvm_gpu.ts';
import { uvmPerfPrefetchFarFaults, uvmPerfPrefetchRegion } from './uvm_perf_prefetch.ts';
import { uvmPerfThrashingGetHint } from './uvm_perf_thrashing.ts';
import type { UvmHmmInsert, UvmRootChunk } from './uvm_types.ts';
import { UVM_PAGES_PER_BLOCK, UVM_VA_BLOCK_SIZE, UvmVaBlock, type UvmVaSpace } from './uvm_types.ts';
import { sideTable } from '../../../lib/snapshot.ts';

/** How often a block's service starts over when its migration raced with an invalidation. */
const SERVICE_RETRIES = 4;
/** Victims tried before a fault gives up on GPU memory and maps system memory remotely. */
const EVICT_TRIES = 8;

/**
 * Models hmm_invalidate() (uvm_hmm.c). SOFT_DIRTY and RELEASE are ignored (unmap_vmas sends a
 * full UNMAP after release anyway); a non-blockable invalidation (the OOM reaper) is refused;
 * MIGRATE and EXCLUSIVE events this driver started itself (owner == the GPU) are ignored, since
 * the migration keeps the GPU mappings right. Otherwise: bump `changed`, set the seq, unmap the
 * range from the GPU, all under the block lock.
 */
export const uvmHmmNotifierOps: MmuIntervalNotifierOps<UvmVaBlock> = {
  *invalidate(block, range, curSeq) {
    if (range.event === MMU_NOTIFY.SOFT_DIRTY || range.event === MMU_NOTIFY.RELEASE) return true;
    if (!mmuNotifierRangeBlockable(range)) return false;
    const gpu = uvmGpuOfBlock(block);
    if (
      (range.event === MMU_NOTIFY.MIGRATE || range.event === MMU_NOTIFY.EXCLUSIVE) &&
      gpu !== null &&
      range.owner === gpu
    )
      return true;
    const vs = block.vaSpace;
    yield* vs.lock.lock();
    const start = Math.max(range.start, block.vaStart);
    const end = Math.min(range.end, block.vaEnd);
    if (start < end) {
      block.changed++;
      mmuIntervalSetSeq(block, curSeq);
      vs.pt.zap(start, end);
    }
    yield* vs.lock.unlock();
    return true;
  },
};

const blockGpus = sideTable<UvmVaSpace, UvmGpu>();

/** Records which GPU a va_space belongs to (each va_space here has one GPU). */
export function uvmVaSpaceSetGpu(vs: UvmVaSpace, gpu: UvmGpu): void {
  blockGpus.set(vs, gpu);
}

function uvmGpuOfBlock(block: UvmVaBlock): UvmGpu | null {
  return blockGpus.get(block.vaSpace) ?? null;
}

/** The HMM block holding `va`, or null (uvm_hmm_va_block_find). */
export function uvmHmmVaBlockFind(vs: UvmVaSpace, va: number): UvmVaBlock | null {
  const list = vs.blocks.get(Math.floor(va / UVM_VA_BLOCK_SIZE));
  if (list === undefined) return null;
  for (const b of list) if (va >= b.vaStart && va < b.vaEnd) return b;
  return null;
}

/**
 * The bounds hmm_va_block_find_create() gives a new block for `va`: the 2 MiB window clipped to
 * the VMA and to the blocks already in the window. Caller holds the mmap lock.
 */
function uvmHmmVaBlockBounds(vs: UvmVaSpace, va: number, vma: Vma): [number, number] {
  const window = Math.floor(va / UVM_VA_BLOCK_SIZE) * UVM_VA_BLOCK_SIZE;
  let start = Math.max(window, vma.start);
  let end = Math.min(window + UVM_VA_BLOCK_SIZE, vma.end);
  for (const b of vs.blocks.get(window / UVM_VA_BLOCK_SIZE) ?? []) {
    if (b.vaEnd <= va) start = Math.max(start, b.vaEnd);
    else if (b.vaStart > va) end = Math.min(end, b.vaStart);
  }
  return [start, end];
}

/**
 * Creates the block [start, end) and inserts its interval notifier (the second half of
 * hmm_va_block_find_create()), with the mmap lock as the `hmm_insert` tunable says the caller
 * holds it: none (`unlocked`), for read (`mmap_read`) or for write (`mmap_write`, where the
 * insert is mmu_interval_notifier_insert_locked()). mmu_interval_notifier_insert() declares
 * might_lock(mmap_lock), so under the read lock, as uvm_hmm.c inserts, lockdep reports
 * recursive locking. Returns the block (an existing one if another path created it meanwhile),
 * or -errno.
 */
function* uvmHmmVaBlockCreate(
  vs: UvmVaSpace,
  start: number,
  end: number,
  how: UvmHmmInsert,
): KGen<UvmVaBlock | number> {
  const existing = uvmHmmVaBlockFind(vs, start);
  if (existing !== null) return existing;
  const w = Math.floor(start / UVM_VA_BLOCK_SIZE);
  const block = new UvmVaBlock(vs, w * UVM_VA_BLOCK_SIZE, start, end);
  const ret =
    how === 'mmap_write'
      ? yield* mmuIntervalNotifierInsertLocked(block, vs.mm, start, end - start, uvmHmmNotifierOps)
      : yield* mmuIntervalNotifierInsert(block, vs.mm, start, end - start, uvmHmmNotifierOps);
  if (ret !== 0) return ret;
  const list = vs.blocks.get(w) ?? [];
  list.push(block);
  vs.blocks.set(w, list);
  return block;
}

/** One fault of a batch, after coalescing: its page and the strongest access seen. */
export interface UvmFaultEntry {
  readonly va: number;
  access: GpuAccessKind;
}

const RANK: Record<GpuAccessKind, number> = { read: 0, write: 1, atomic: 2 };

/** The stronger of two accesses (atomic > write > read). */
export function uvmStrongerAccess(a: GpuAccessKind, b: GpuAccessKind): GpuAccessKind {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * Services faults of one va_space that fall in one 2 MiB window (sorted by address): takes the
 * mmap lock for read, then services each block's faults. The caller holds an mm_users
 * reference (mmget_not_zero) for the batch. Returns how many blocks it serviced.
 * Faults outside any VMA are fatal to the access (counted, not serviced).
 */
export function* uvmHmmServiceWindow(
  gpu: UvmGpu,
  vs: UvmVaSpace,
  faults: readonly UvmFaultEntry[],
): KGen<number> {
  const mm = vs.mm;
  // First the blocks the faults need: bounds under the mmap lock, notifiers inserted as the
  // hmm_insert tunable says (uvmHmmVaBlockCreate).
  const how = gpu.tunables.hmmInsert;
  if (how === 'mmap_write') yield* mm.mmapLock.downWrite();
  else yield* mm.mmapLock.downRead();
  const create: [number, number][] = [];
  for (const f of faults) {
    if (uvmHmmVaBlockFind(vs, f.va) !== null || inBounds(create, f.va)) continue;
    const vma = mm.vmaLookup(f.va);
    if (vma !== null && (vma.flags & VM.READ) !== 0) create.push(uvmHmmVaBlockBounds(vs, f.va, vma));
  }
  if (how === 'unlocked') yield* mm.mmapLock.upRead();
  for (const [s, e] of create) yield* uvmHmmVaBlockCreate(vs, s, e, how);
  if (how === 'mmap_write') yield* mm.mmapLock.downgradeWrite();
  else if (how === 'unlocked') yield* mm.mmapLock.downRead();
  let blocks = 0;
  for (let i = 0; i < faults.length;) {
    const vma = mm.vmaLookup(faults[i].va);
    const block = uvmHmmVaBlockFind(vs, faults[i].va);
    if (
      block === null ||
      vma === null ||
      (vma.flags & VM.READ) === 0 ||
      vma.end < block.vaEnd ||
      vma.start > block.vaStart
    ) {
      gpu.stats.fatalFaults++;
      i++;
      continue;
    }
    let j = i;
    while (j < faults.length && faults[j].va < block.vaEnd) j++;
    yield* uvmHmmServiceBlock(gpu, block, vma, faults.slice(i, j));
    blocks++;
    i = j;
  }
  yield* mm.mmapLock.upRead();
  return blocks;
}

/** Whether `va` falls in one of the bounds `list` holds. */
function inBounds(list: readonly (readonly [number, number])[], va: number): boolean {
  for (const [s, e] of list) if (va >= s && va < e) return true;
  return false;
}

/**
 * The dense per-page masks of one block service, zero when not in use: page i of the window is
 * faulted, written, or (for the prefetch policies) wanted. A service takes a set from the pool
 * and clears what it set before giving it back, so it costs the pages of its faults, not the
 * block's 512 (a service that never finishes just leaves its set to the garbage collector).
 */
export interface UvmServiceMasks {
  readonly faulted: Uint8Array;
  readonly writes: Uint8Array;
  readonly want: Uint8Array;
}

const servicePool: UvmServiceMasks[] = [];

/** A cleared set of service masks, from the pool (exported: both forms of a service share it). */
export function uvmServiceMasksGet(): UvmServiceMasks {
  return (
    servicePool.pop() ?? {
      faulted: new Uint8Array(UVM_PAGES_PER_BLOCK),
      writes: new Uint8Array(UVM_PAGES_PER_BLOCK),
      want: new Uint8Array(UVM_PAGES_PER_BLOCK),
    }
  );
}

/** Gives a set back to the pool; the caller has cleared what it set. */
export function uvmServiceMasksPut(masks: UvmServiceMasks): void {
  servicePool.push(masks);
}

/**
 * Models the HMM arm of uvm_va_block_service_locked() for one block: the pages to bring (faulted
 * pages, grown by the prefetch policy, minus thrashing-pinned ones), a root chunk (evicting if
 * GPU memory is full), migrate_vma of each run, then hmm_range_fault over the serviced span and
 * mapping under the block lock once mmu_interval_read_retry() passes. Caller holds mmap read.
 * `faults` are in address order (a batch is sorted; uncoalesced duplicates are adjacent).
 */
export function* uvmHmmServiceBlock(
  gpu: UvmGpu,
  block: UvmVaBlock,
  vma: Vma,
  faults: readonly UvmFaultEntry[],
): KGen {
  const t = gpu.tunables;
  const stats = gpu.stats;
  const first = (block.vaStart - block.window) / PAGE_SIZE;
  const last = (block.vaEnd - block.window) / PAGE_SIZE;
  const masks = uvmServiceMasksGet();
  const { faulted, writes, want } = masks;
  // The faulted pages in address order, each once.
  const pages: number[] = [];
  for (const f of faults) {
    const p = (f.va - block.window) / PAGE_SIZE;
    if (faulted[p] === 0) {
      faulted[p] = 1;
      pages.push(p);
    }
    if (f.access !== 'read') writes[p] = 1;
  }
  if (!isAscending(pages)) pages.sort((a, b) => a - b);
  // Pages this service decided to map remotely (thrashing pins), kept across attempts.
  let remote: Set<number> | null = null;
  stats.vaBlocksServiced++;
  stats.farFaults += !t.migrateOnFault
    ? faults.length
    : t.prefetch === 'ondemand' || t.prefetch === 'random4k'
      ? pages.length
      : uvmPerfPrefetchFarFaults(t, faulted, block.resident);
  for (let attempt = 0; attempt < SERVICE_RETRIES; attempt++) {
    const now = gpu.clockNs();
    // The pages to bring in, in address order: the faulted ones, or the prefetch policy's mask.
    let cand: readonly number[] = [];
    if (t.migrateOnFault) {
      if (t.prefetch === 'ondemand') cand = pages;
      else {
        uvmPerfPrefetchRegion(t, faulted, block.resident, gpu.rng, want);
        const c: number[] = [];
        for (let p = 0; p < UVM_PAGES_PER_BLOCK; p++) if (want[p] !== 0) c.push(p);
        want.fill(0);
        cand = c;
      }
    }
    const wanted: number[] = [];
    for (const p of cand) {
      if (p < first || p >= last || block.resident[p] !== 0) continue;
      if (faulted[p] !== 0) {
        const hint = uvmPerfThrashingGetHint(t, block, p, now, stats);
        if (hint === 'pin') (remote ??= new Set()).add(p);
      } else if (block.pinnedUntilNs[p] > now) (remote ??= new Set()).add(p);
      if (remote?.has(p) !== true) wanted.push(p);
    }
    const changed0 = block.changed;
    if (wanted.length > 0) {
      const chunk = block.chunk ?? (yield* uvmPmmAllocChunkEvict(gpu, block));
      if (chunk !== null) yield* uvmHmmMigrateToGpu(gpu, block, vma, chunk, wanted, faulted, now);
    }
    const r = yield* uvmHmmMapFaulted(gpu, block, pages, writes, wanted);
    if (r === 'retry' || block.changed !== changed0) {
      stats.changedRetries++;
      if (r === 'retry') continue;
    }
    break;
  }
  for (const p of pages) faulted[p] = writes[p] = 0;
  uvmServiceMasksPut(masks);
  // Atomics on pages left in system memory need exclusive access: make_device_exclusive.
  for (const f of faults) {
    if (f.access !== 'atomic') continue;
    const p = (f.va - block.window) / PAGE_SIZE;
    if (block.resident[p] !== 0) continue;
    yield* uvmHmmMapExclusive(gpu, block, f.va);
  }
}

function isAscending(a: readonly number[]): boolean {
  for (let i = 1; i < a.length; i++) if (a[i] <= a[i - 1]) return false;
  return true;
}

/**
 * Migrates the pages `wanted` lists (in address order) to the block's root chunk, one
 * migrate_vma per contiguous run (as uvm_hmm_va_block_migrate_locked does per region), with this
 * GPU as the migration owner so its own MIGRATE invalidation is ignored.
 */
function* uvmHmmMigrateToGpu(
  gpu: UvmGpu,
  block: UvmVaBlock,
  vma: Vma,
  chunk: UvmRootChunk,
  wanted: readonly number[],
  faulted: Uint8Array,
  now: number,
): KGen {
  const sys = gpu.sys;
  const phys = sys.phys;
  const stats = gpu.stats;
  const writableVma = (vma.flags & VM.WRITE) !== 0;
  for (let k = 0; k < wanted.length;) {
    const p = wanted[k];
    let e = p + 1;
    k++;
    while (k < wanted.length && wanted[k] === e) {
      e++;
      k++;
    }
    const start = block.window + p * PAGE_SIZE;
    const args = migrateVmaInit(vma, start, block.window + e * PAGE_SIZE, gpu, MIGRATE_VMA_SELECT_SYSTEM);
    if ((yield* migrateVmaSetup(args)) === 0) {
      let moved = 0;
      let cut = 0;
      for (let i = 0; i < args.npages; i++) {
        const s = args.src[i];
        const page = p + i;
        const dpage = chunk.firstPfn + page;
        if ((migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) === 0 || phys.refcount[dpage] !== 0) continue;
        zoneDevicePageInit(sys, dpage, 0);
        const spage = migratePfnToPage(s);
        if (spage >= 0) phys.copyPage(dpage, spage);
        else phys.clearPage(dpage);
        const write = (migratePfnFlags(s) & MIGRATE_PFN_WRITE) !== 0 || (spage < 0 && writableVma);
        args.dst[i] = migratePfn(dpage) + (write ? MIGRATE_PFN_WRITE : 0);
        chunk.used++;
        block.resident[page] = 1;
        block.lastMigrateNs[page] = now;
        moved++;
        cut++;
        if (faulted[page] === 0) stats.pagesPrefetched++;
        else {
          stats.transfersToGpu.push(cut);
          cut = 0;
        }
      }
      if (cut > 0) stats.transfersToGpu.push(cut);
      if (moved > 0) {
        // uvm_va_block_make_resident_copy() unmaps the pages from every processor that maps
        // them before the copy. Our own MIGRATE invalidation is ignored, and the service remaps
        // only its span (which a retry narrows), so a GPU mapping of a source page left here
        // would outlive the page.
        const vs = block.vaSpace;
        yield* vs.lock.lock();
        for (let i = 0; i < args.npages; i++)
          if (args.dst[i] !== 0) vs.pt.zap(start + i * PAGE_SIZE, start + (i + 1) * PAGE_SIZE);
        yield* vs.lock.unlock();
      }
      yield* migrateVmaPages(args);
      yield* migrateVmaFinalize(args);
      if (moved > 0) {
        stats.pagesToGpu += moved;
        stats.runsToGpu.push(moved);
        chunk.allocTick = ++gpu.pmm.tick;
      }
    }
  }
}

/**
 * hmm_range_fault over the span of faulted and migrated pages (faulting only the faulted ones),
 * then maps every valid page under the block lock once read_retry passes. GPU pages get read,
 * write and atomic rights as the CPU entry allows; system pages are mapped remotely (no atomic).
 * `pages` and `wanted` are in address order.
 */
function* uvmHmmMapFaulted(
  gpu: UvmGpu,
  block: UvmVaBlock,
  pages: readonly number[],
  writes: Uint8Array,
  wanted: readonly number[],
): KGen<'ok' | 'retry' | 'error'> {
  let lo = UVM_PAGES_PER_BLOCK;
  let hi = -1;
  if (pages.length > 0) {
    lo = pages[0];
    hi = pages[pages.length - 1];
  }
  if (wanted.length > 0) {
    lo = Math.min(lo, wanted[0]);
    hi = Math.max(hi, wanted[wanted.length - 1]);
  }
  if (hi < 0) return 'ok';
  const n = hi - lo + 1;
  const range: HmmRange = {
    notifier: block,
    notifierSeq: 0,
    start: block.window + lo * PAGE_SIZE,
    end: block.window + (hi + 1) * PAGE_SIZE,
    hmmPfns: new Uint32Array(2 * n),
    defaultFlags: 0,
    pfnFlagsMask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
    devPrivateOwner: gpu,
  };
  for (const p of pages)
    range.hmmPfns[2 * (p - lo) + 1] = HMM_PFN_REQ_FAULT | (writes[p] !== 0 ? HMM_PFN_REQ_WRITE : 0);
  const vs = block.vaSpace;
  const changed0 = block.changed;
  const ret = yield* hmmRangeFaultLocked(range, vs.lock, { mmapLocked: true });
  if (ret !== 0) {
    gpu.stats.fatalFaults++;
    return 'error';
  }
  if (block.changed !== changed0) {
    // An invalidation ran between our migration and the walk; read_retry vouches for the walk,
    // but UVM starts the service over so its residency view is rebuilt.
    yield* vs.lock.unlock();
    return 'retry';
  }
  const sys = gpu.sys;
  for (let i = 0; i < n; i++) {
    const hiw = range.hmmPfns[2 * i + 1];
    if ((hiw & HMM_PFN_VALID) === 0) continue;
    const pfn = range.hmmPfns[2 * i];
    const writable = (hiw & HMM_PFN_WRITE) !== 0;
    const local = gpu.pmm.chunkOf(pfn) !== null && sys.phys.pagemapOf(pfn) !== null;
    const prot = DEV_PTE.READ | (writable ? DEV_PTE.WRITE | (local ? DEV_PTE.ATOMIC : 0) : 0);
    vs.pt.map(range.start + i * PAGE_SIZE, pfn, prot);
    if (!local) gpu.stats.remoteMaps++;
  }
  if (block.chunk !== null) block.chunk.accessTick = ++gpu.pmm.tick;
  yield* vs.lock.unlock();
  return 'ok';
}

/** make_device_exclusive() of one system page for a GPU atomic, then map it read/write/atomic. */
function* uvmHmmMapExclusive(gpu: UvmGpu, block: UvmVaBlock, va: number): KGen {
  const sys = gpu.sys;
  const { ret, page } = yield* makeDeviceExclusive(block.vaSpace.mm, va, gpu);
  if (ret !== 0) {
    gpu.stats.fatalFaults++;
    return;
  }
  const vs = block.vaSpace;
  yield* vs.lock.lock();
  vs.pt.map(va - (va % PAGE_SIZE), page, DEV_PTE.READ | DEV_PTE.WRITE | DEV_PTE.ATOMIC);
  yield* vs.lock.unlock();
  folioUnlock(sys, page);
  sys.phys.put(page);
  gpu.stats.exclusiveMaps++;
}

/**
 * Models uvm_pmm_gpu_alloc() with eviction: a free root chunk for `block`, else evict victims
 * (uvmPmmEvictRootChunk) until one frees; null when none could be freed.
 */
export function* uvmPmmAllocChunkEvict(gpu: UvmGpu, block: UvmVaBlock): KGen<UvmRootChunk | null> {
  for (let tries = 0; tries < EVICT_TRIES; tries++) {
    const c = gpu.pmm.alloc(block);
    if (c !== null) return c;
    const victim = gpu.pmm.pickVictim(gpu.tunables.eviction);
    if (victim === null) return null;
    yield* uvmPmmEvictRootChunk(gpu, victim);
    gpu.stats.evictions++;
  }
  return null;
}

/**
 * Evicts one root chunk (uvm_hmm_va_block_evict_chunks): unmap the owner block from the GPU,
 * then migrate_device_range over the chunk's frames back to new system pages. Returns the pages
 * moved.
 */
export function* uvmPmmEvictRootChunk(gpu: UvmGpu, chunk: UvmRootChunk): KGen<number> {
  const block = chunk.block;
  if (block === null) return 0;
  const sys = gpu.sys;
  const vs = block.vaSpace;
  yield* vs.lock.lock();
  vs.pt.zap(block.vaStart, block.vaEnd);
  yield* vs.lock.unlock();
  const n = UVM_PAGES_PER_BLOCK;
  const src = new Float64Array(n);
  const dst = new Float64Array(n);
  yield* migrateDeviceRange(sys, src, chunk.firstPfn, n);
  const now = gpu.clockNs();
  let moved = 0;
  for (let i = 0; i < n; i++) {
    const s = src[i];
    const spage = migratePfnToPage(s);
    if (spage < 0 || (migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) === 0) continue;
    const dpage = yield* allocPageReclaim(sys, 0, 'uvm_evict');
    if (dpage < 0) continue;
    folioTrylock(sys, dpage);
    sys.phys.copyPage(dpage, spage);
    dst[i] = migratePfn(dpage) + (migratePfnFlags(s) & MIGRATE_PFN_WRITE);
    block.lastMigrateNs[i] = now;
    moved++;
  }
  yield* migrateDevicePages(sys, src, dst, n);
  yield* migrateDeviceFinalize(sys, src, dst, n);
  gpu.stats.pagesToCpu += moved;
  if (moved > 0) gpu.stats.runsToCpu.push(moved);
  return moved;
}

/**
 * dev_pagemap_ops.migrate_to_ram of the GPU's memory (uvm_hmm_devmem_fault -> the CPU fault
 * service): the CPU touched a page resident on this GPU; unmap it from the GPU once collected,
 * and migrate it back. A page thrashing between the CPU and the GPU first makes the CPU nap
 * (uvm_va_space_cpu_fault's THROTTLE sleep), with the page left where it is.
 */
export function* uvmHmmMigrateToRam(gpu: UvmGpu, vmf: VmFault): KGen<number> {
  const vs = gpu.vaSpaces.get(vmf.vma.mm);
  const va = vmf.address - (vmf.address % PAGE_SIZE);
  const block = vs === undefined ? null : uvmHmmVaBlockFind(vs, va);
  if (block !== null) {
    const t = gpu.tunables;
    const hint = uvmPerfThrashingGetHint(t, block, (va - block.window) / PAGE_SIZE, gpu.clockNs(), gpu.stats);
    // The driver sleeps with only its VA-space lock dropped: mmap_lock and the device page's lock
    // (taken by do_swap_page) stay held, and the GPU may map the page meanwhile. After the nap
    // the CPU migrates: the driver exempts the processor that opens the next throttling period,
    // so one nap per fault is what it takes here (the model's hint has no periods).
    if (hint === 'throttle') {
      gpu.stats.cpuThrottles++;
      yield* sleepNs(gpu.sys.sched, t.thrashingNapLapses * t.thrashingLapseUs * 1000);
    }
  }
  const ret = yield* migrateToRamOne(gpu.mem, vmf, function* () {
    if (vs === undefined) return;
    yield* vs.lock.lock();
    // Our own MIGRATE invalidation was skipped (owner check), so nothing bumped the block's seq:
    // a GPU fault service that walked this page before we collected it would map the device
    // page we are about to free. UVM changes residency only under the block lock, and its
    // service rechecks under that lock; bumping `changed` here makes ours start over.
    if (block !== null) block.changed++;
    vs.pt.zap(va, va + PAGE_SIZE);
    yield* vs.lock.unlock();
  });
  if (ret === 0) {
    gpu.stats.cpuFaults++;
    gpu.stats.pagesToCpu++;
    gpu.stats.runsToCpu.push(1);
    if (block !== null) block.lastMigrateNs[(va - block.window) / PAGE_SIZE] = gpu.clockNs();
  }
  return ret === 0 ? 0 : ret === VM_FAULT.OOM ? VM_FAULT.OOM : VM_FAULT.SIGBUS;
}

/** dev_pagemap_ops.folio_free: a GPU page's last reference went; give it back to its chunk. */
export function uvmHmmFolioFree(gpu: UvmGpu, pfn: number, order: number): void {
  for (let i = 0; i < 1 << order; i++) {
    const chunk = gpu.pmm.chunkOf(pfn + i);
    if (chunk !== null) gpu.pmm.pageFreed(chunk, pfn + i - chunk.firstPfn);
  }
}
