/**
 * The state of the dmirror test device (lib/test_hmm.c): one DmirrorDevice per /dev/hmm_dmirrorN,
 * one Dmirror per open file, and the small driver interface users can replace.
 *
 * Locking (as in the kernel module):
 *  - `Dmirror.mutex` is the "user lock" of the mirror: it guards the device page table `pt`
 *    against invalidations, and the fault path checks mmu_interval_read_retry() under it.
 *  - `DmirrorDevice.devmemLock` (a mutex) guards the chunk list; `DmirrorDevice.lock` (a spinlock)
 *    guards the free lists and counters.
 */
import { XArray } from '../../lib/xarray.ts';
import { Mutex, SpinLock } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import type { File } from '../mm/mm_types.ts';
import type { HmmRange } from '../mm/hmm.ts';
import type { DevPagemap } from '../mm/memremap.ts';
import { MmuIntervalNotifier, type MmuNotifierRange } from '../mm/mmu_notifier.ts';
import type { System } from '../system.ts';

/** Device page-table tags (DPT_XA_TAG_*): how the device may use the page. */
export const DPT_TAG_READ = 0;
export const DPT_TAG_ATOMIC = 1;
export const DPT_TAG_WRITE = 3;

/**
 * One device page-table entry. `pfn` is the page the CPU page table refers to for this address:
 * a system page, a device-coherent page, or a device-private page (whose data lives in its
 * backing page; the kernel module stores the backing page here instead, the model keeps the
 * device page so the mirror oracle can compare it with the CPU PTE directly). `gen` is the
 * frame generation when the entry was stored, so a stale entry to a freed frame is detectable.
 */
export interface DptEntry {
  readonly pfn: number;
  readonly tag: number;
  readonly gen: number;
}

/**
 * The callbacks a device driver supplies to the mirror machinery. The built-in ones model
 * dmirror_interval_invalidate() and dmirror_range_fault(); a user module can provide its own
 * (createDmirrorDevice(sys, name, memory, { driver })) to check them against every
 * interleaving the explorer tries. Missing members fall back to the built-in ones.
 */
export interface DmirrorDriver {
  /**
   * The interval-notifier callback for the mirror's whole-address-space subscription. It must
   * call mmuIntervalSetSeq(mirror, curSeq) and clear every device PT entry in
   * [range.start, range.end) under mirror.mutex before returning true; when the range is not
   * blockable it may only trylock, and returns false if it cannot get the lock. It may ignore
   * MIGRATE events whose owner is the mirror's device (the migration code updates the PT).
   */
  invalidate(mirror: Dmirror, range: MmuNotifierRange, curSeq: number): KGen<boolean>;
  /**
   * The device fault path for one chunk of at most DMIRROR_FAULT_CHUNK pages: fault
   * [range.start, range.end) with hmm_range_fault() and program the device PT from
   * range.hmmPfns under mirror.mutex after a successful mmu_interval_read_retry() check.
   * Returns 0 or -errno (-EBUSY once the timeout expired).
   */
  rangeFault(mirror: Dmirror, range: HmmRange): KGen<number>;
}

/** Models struct dmirror_chunk: one memremap'ed range of device pages. */
export class DmirrorChunk {
  /** Set while the chunk is being torn down: freed pages no longer return to the free lists. */
  remove = false;
  constructor(
    readonly pagemap: DevPagemap,
    readonly mdevice: DmirrorDevice,
  ) {}
}

/** Models struct dmirror_device: one /dev/hmm_dmirrorN. */
export class DmirrorDevice {
  readonly chunks: DmirrorChunk[] = [];
  readonly devmemLock: Mutex;
  readonly lock: SpinLock;
  /** Free order-0 device pages (the kernel chains them through zone_device_data). */
  freePages: number[] = [];
  /** Free PMD-order device folios (head PFNs). */
  freeFolios: number[] = [];
  /** Device pages handed out and given back, in pages. */
  calloc = 0;
  cfree = 0;
  /** zone_device_data of a private device folio head: the head of its system backing folio. */
  readonly backing = new Map<number, number>();
  /** zone_device_data of a backing head (private) or device head (coherent): the mirror that placed it. */
  readonly placedBy = new Map<number, Dmirror>();
  /** Every open file of this device. */
  readonly mirrors = new Set<Dmirror>();
  readonly driver: DmirrorDriver;

  constructor(
    readonly sys: System,
    readonly name: string,
    readonly memory: 'private' | 'coherent',
    driver: DmirrorDriver,
  ) {
    this.devmemLock = new Mutex(sys.sched, `${name}.devmem_lock`, 'dmirror_device.devmem_lock');
    this.lock = new SpinLock(sys.sched, `${name}.lock`, 'dmirror_device.lock');
    this.driver = driver;
  }

  get zoneDeviceType(): number {
    return this.memory === 'private' ? 1 : 2;
  }
}

/**
 * Models struct dmirror: the state of one open file, which mirrors the address space of the
 * process that opened it through one interval notifier (the kernel embeds the notifier; here
 * the mirror is the notifier's subclass, the kernel's container_of).
 */
export class Dmirror extends MmuIntervalNotifier {
  /** The device page table, indexed by virtual page number. */
  readonly pt = new XArray<DptEntry>();
  readonly mutex: Mutex;
  /** HMM_DMIRROR_FLAGS value. */
  flags = 0;
  file: File | null = null;
  /** Set when release() starts: the file is gone and the page table is no longer used. */
  released = false;

  constructor(
    readonly mdevice: DmirrorDevice,
    readonly id: number,
  ) {
    super();
    this.mutex = new Mutex(mdevice.sys.sched, `${mdevice.name}.mirror${id}.mutex`, 'dmirror.mutex');
  }
}

/** Models struct dmirror_interval: the temporary notifier SNAPSHOT inserts over one chunk. */
export class DmirrorInterval extends MmuIntervalNotifier {
  constructor(readonly dmirror: Dmirror) {
    super();
  }
}
