/**
 * The state of the NVIDIA-UVM-style HMM driver (after kernel-open/nvidia-uvm/: uvm_hmm.c,
 * uvm_va_block_types.h, uvm_gpu_replayable_faults.h, uvm_perf_prefetch.c, uvm_perf_thrashing.c,
 * uvm_pmm_gpu.c), and the tunables with that driver's defaults.
 *
 * Locking summary (what protects what):
 *  - `UvmVaSpace.lock` (a mutex, class 'uvm.va_block_lock') stands for the driver's per-VA-block
 *    mutexes: it guards the GPU page table of the va_space, every block's `resident`, `mapped`,
 *    `changed` and thrashing state, and is the "user lock" under which the fault path checks
 *    mmu_interval_read_retry(). One lock for all blocks of a va_space is coarser than the
 *    driver's, never finer.
 *  - `UvmVaBlock.changed` is bumped by the invalidate callback under that lock; the fault path
 *    samples it before migrating and compares after, as uvm_hmm.c does with hmm.changed.
 *  - The root-chunk lists of the GPU (UvmPmm) are touched only by the fault worker and by
 *    folio_free (atomic context, one step): they need no sleeping lock.
 */
import { MmuIntervalNotifier } from '../../mm/mmu_notifier.ts';
import type { MmStruct } from '../../mm/mm_types.ts';
import type { DevicePageTable } from '../sdk/device_pagetable.ts';
import type { DriverMutex } from '../sdk/locks.ts';

/** UVM_VA_BLOCK_SIZE: 2 MiB, "matches the largest Pascal GPU page size". */
export const UVM_VA_BLOCK_SIZE = 2 * 1024 * 1024;
/** Pages of 4 KiB in a VA block (PAGES_PER_UVM_VA_BLOCK). */
export const UVM_PAGES_PER_BLOCK = 512;
/** The GPU big page: 64 KiB. */
export const UVM_BIG_PAGE_SIZE = 64 * 1024;
/** The PMM's root chunk: 2 MiB of GPU memory, the unit of eviction. */
export const UVM_CHUNK_SIZE_MAX = UVM_VA_BLOCK_SIZE;

export type UvmReplayPolicy = 'block' | 'batch' | 'batch_flush' | 'once';
export type UvmPrefetchPolicy = 'ondemand' | 'random4k' | 'seq64k' | 'tree';
export type UvmEvictionPolicy = 'alloc' | 'access' | 'random';

/** Every tunable of the driver model, with the open driver's defaults. */
export interface UvmTunables {
  /** uvm_perf_fault_batch_count: faults fetched per batch. @defaultValue 256 */
  readonly batchSize: number;
  /** uvm_perf_fault_replay_policy. @defaultValue 'batch_flush' */
  readonly replayPolicy: UvmReplayPolicy;
  /** Batches serviced per bottom-half pass (UVM_PERF_FAULT_MAX_BATCHES_PER_SERVICE). @defaultValue 20 */
  readonly maxBatchesPerPass: number;
  /** uvm_perf_fault_coalesce: duplicate faults on one page are serviced once. @defaultValue true */
  readonly coalesce: boolean;
  /** Entries of the replayable fault buffer. @defaultValue 8192 */
  readonly faultBufferEntries: number;
  /** The prefetch policy ('tree' is uvm_perf_prefetch.c). @defaultValue 'tree' */
  readonly prefetch: UvmPrefetchPolicy;
  /** uvm_perf_prefetch_threshold: % of a subtree resident or faulted to prefetch it. @defaultValue 51 */
  readonly prefetchThreshold: number;
  /** uvm_perf_prefetch_min_faults. @defaultValue 1 */
  readonly prefetchMinFaults: number;
  /** The sequential-local prefetch granule (bytes). @defaultValue 64 KiB */
  readonly seqGranule: number;
  /** Random pages prefetched per faulted page by 'random4k'. @defaultValue 1 */
  readonly randomPages: number;
  /** uvm_perf_thrashing_enable. @defaultValue true */
  readonly thrashingEnable: boolean;
  /** uvm_perf_thrashing_lapse_usec. @defaultValue 500 */
  readonly thrashingLapseUs: number;
  /** uvm_perf_thrashing_threshold: events before THROTTLE. @defaultValue 3 */
  readonly thrashingThreshold: number;
  /** uvm_perf_thrashing_pin_threshold: throttles before PIN. @defaultValue 10 */
  readonly thrashingPinThreshold: number;
  /** uvm_perf_thrashing_nap: nap in lapses. @defaultValue 1 */
  readonly thrashingNapLapses: number;
  /** Pin duration in lapses (uvm_perf_thrashing_max_resets derived 300 x lapse). @defaultValue 300 */
  readonly thrashingPinLapses: number;
  /** Root-chunk victim order. @defaultValue 'alloc' (the driver's LRU by allocation) */
  readonly eviction: UvmEvictionPolicy;
  /** Evict ahead when more than this fraction of GPU memory is in use (0 = off). @defaultValue 0 */
  readonly preEvictThreshold: number;
  /** Migrate on GPU fault; false maps system memory remotely. @defaultValue true */
  readonly migrateOnFault: boolean;
  /** Seed of the random choices (random prefetch, random eviction). @defaultValue 1 */
  readonly seed: number;
  /**
   * How the fault path inserts a new HMM VA block's interval notifier: `unlocked` drops the mmap
   * lock around mmu_interval_notifier_insert(); `mmap_read` keeps it held for read, as
   * hmm_va_block_find_create() in NVIDIA's open driver does (lockdep: the insert's
   * might_lock(mmap_lock) under the read lock); `mmap_write` takes it for write and uses
   * mmu_interval_notifier_insert_locked(). @defaultValue 'unlocked'
   */
  readonly hmmInsert: UvmHmmInsert;
}

export type UvmHmmInsert = 'unlocked' | 'mmap_read' | 'mmap_write';

export const UVM_DEFAULT_TUNABLES: UvmTunables = {
  batchSize: 256,
  replayPolicy: 'batch_flush',
  maxBatchesPerPass: 20,
  coalesce: true,
  faultBufferEntries: 8192,
  prefetch: 'tree',
  prefetchThreshold: 51,
  prefetchMinFaults: 1,
  seqGranule: 64 * 1024,
  randomPages: 1,
  thrashingEnable: true,
  thrashingLapseUs: 500,
  thrashingThreshold: 3,
  thrashingPinThreshold: 10,
  thrashingNapLapses: 1,
  thrashingPinLapses: 300,
  eviction: 'alloc',
  preEvictThreshold: 0,
  migrateOnFault: true,
  seed: 1,
  hmmInsert: 'unlocked',
};

/** Counters of one GPU, read by the simulator and by `gpu_snapshot`. */
export class UvmStats {
  faults = 0;
  duplicates = 0;
  batches = 0;
  passes = 0;
  replays = 0;
  vaBlocksServiced = 0;
  /** Pages moved CPU -> GPU, and GPU -> CPU (CPU faults, eviction). */
  pagesToGpu = 0;
  pagesToCpu = 0;
  /** Pages moved to the GPU by prefetch rather than because they faulted. */
  pagesPrefetched = 0;
  /** Each contiguous run migrated to the GPU, in pages. */
  readonly runsToGpu: number[] = [];
  /**
   * The same runs cut after each faulted page, in pages: the transfers UVMSmart's GMMU issues
   * (it splits a migration at every faulted page, so each fault replays when its page is in).
   */
  readonly transfersToGpu: number[] = [];
  /**
   * Faults a fault-by-fault service would take: a faulted page that the prefetch of an earlier
   * fault of the same block service (in address order) has not already brought in. UVMSmart's
   * GMMU counts only these as far faults; it merges the others into the pending request.
   */
  farFaults = 0;
  readonly runsToCpu: number[] = [];
  evictions = 0;
  preEvictions = 0;
  thrashingEvents = 0;
  throttles = 0;
  /** Throttles of CPU faults (each a nap in migrate_to_ram); `throttles` counts them too. */
  cpuThrottles = 0;
  pins = 0;
  throttleNapNs = 0;
  remoteMaps = 0;
  exclusiveMaps = 0;
  changedRetries = 0;
  cpuFaults = 0;
  fatalFaults = 0;
  flushed = 0;
}

/** Models uvm_va_space_t for one process: its mm, GPU page table and HMM blocks. */
export class UvmVaSpace {
  /** HMM VA blocks by the index of their 2 MiB window (va / UVM_VA_BLOCK_SIZE). */
  readonly blocks = new Map<number, UvmVaBlock[]>();
  constructor(
    readonly mm: MmStruct,
    readonly pt: DevicePageTable,
    readonly lock: DriverMutex,
  ) {}
}

/**
 * Models uvm_va_block_t of an HMM range: one 2 MiB-aligned window clipped to its VMA, with its
 * own mmu_interval_notifier (the notifier is the block, container_of).
 */
export class UvmVaBlock extends MmuIntervalNotifier {
  /** hmm.changed: bumped by every invalidation that reached the block. */
  changed = 0;
  /** Page i of the window (not of the block) is resident in this GPU's memory. */
  readonly resident = new Uint8Array(UVM_PAGES_PER_BLOCK);
  /** The root chunk backing the resident pages (page i lives at chunk page i), or null. */
  chunk: UvmRootChunk | null = null;
  /** Thrashing state per page: last migration (ns of the model clock), events, throttles. */
  readonly lastMigrateNs = new Float64Array(UVM_PAGES_PER_BLOCK).fill(-Infinity);
  readonly thrashEvents = new Uint8Array(UVM_PAGES_PER_BLOCK);
  readonly throttles = new Uint8Array(UVM_PAGES_PER_BLOCK);
  /** Pinned (mapped remotely) until this time, per page. */
  readonly pinnedUntilNs = new Float64Array(UVM_PAGES_PER_BLOCK);

  constructor(
    readonly vaSpace: UvmVaSpace,
    /** The 2 MiB window's base. */
    readonly window: number,
    readonly vaStart: number,
    readonly vaEnd: number,
  ) {
    super();
  }
}

/** Models a root chunk of uvm_pmm_gpu: 2 MiB of GPU memory, wholly owned by one VA block. */
export class UvmRootChunk {
  block: UvmVaBlock | null = null;
  /** Device pages of the chunk still allocated. */
  used = 0;
  /** The order the chunk lists keep: last allocation from it, last access, both in ticks. */
  allocTick = 0;
  accessTick = 0;
  constructor(
    readonly index: number,
    readonly firstPfn: number,
  ) {}
}
