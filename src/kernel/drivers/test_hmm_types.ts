/**
 * The state of the dmirror test device (lib/test_hmm.c), a driver on the public SDK: one Device
 * per /dev/hmm_dmirrorN whose driver data is a DmirrorDevice, one Dmirror per open file (the
 * file's private data), and the small driver interface users can replace.
 *
 * Locking (as in the kernel module):
 *  - `Dmirror.mutex` is the "user lock" of the mirror: it guards the device page table `pt`
 *    against invalidations, and the fault path checks mmu_interval_read_retry() under it.
 *  - `DmirrorDevice.devmemLock` (a mutex) guards the chunk list; each chunk's allocator lock
 *    (the SDK's DeviceMemory.lock, a spinlock) guards its free lists.
 */
import type { KGen } from '../../sched/types.ts';
import type { Device } from './sdk/device.ts';
import { DEV_PTE, DevicePageTable } from './sdk/device_pagetable.ts';
import type { DeviceMemory } from './sdk/devmem.ts';
import {
  type HmmRange,
  type MmStruct,
  MmuIntervalNotifier,
  type MmuNotifierRange,
} from './sdk/kernel_api.ts';
import type { DriverMutex } from './sdk/locks.ts';

/**
 * Device page-table rights of the kernel's DPT_XA_TAG_* tags: READ, WRITE (which reads too) and
 * ATOMIC (the page was made exclusive to the device; it reads, and writes only atomically).
 */
export const DPT_TAG_READ = DEV_PTE.READ;
export const DPT_TAG_WRITE = DEV_PTE.READ | DEV_PTE.WRITE;
export const DPT_TAG_ATOMIC = DEV_PTE.READ | DEV_PTE.ATOMIC;

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

/**
 * A value per PFN (a page's zone_device_data), in a typed array indexed by PFN and grown as
 * higher PFNs appear, instead of a Map: a migration sets, reads and clears it for every page,
 * and a Map of a few hundred thousand entries turning over hashes and allocates each time.
 * Values are interned: `values` holds the distinct ones (a device's mirrors, or for numbers
 * none: a number is stored as itself).
 */
class PfnSlots {
  /** Per PFN: 0 for none, else the stored value + 1 (numbers) or its index in `values` + 1. */
  protected slots = new Float64Array(0);

  protected slot(pfn: number): number {
    return pfn < this.slots.length ? this.slots[pfn] : 0;
  }

  protected put(pfn: number, v: number): void {
    if (pfn >= this.slots.length) {
      const grown = new Float64Array(Math.max(pfn + 1, 2 * this.slots.length, 1024));
      grown.set(this.slots);
      this.slots = grown;
    }
    this.slots[pfn] = v;
  }

  delete(pfn: number): void {
    if (pfn < this.slots.length) this.slots[pfn] = 0;
  }
}

/** PfnSlots of PFN-valued data (a device page's backing page). */
export class PfnNumbers extends PfnSlots {
  get(pfn: number): number | undefined {
    const s = this.slot(pfn);
    return s === 0 ? undefined : s - 1;
  }

  set(pfn: number, v: number): void {
    this.put(pfn, v + 1);
  }
}

/** PfnSlots of object-valued data (the mirror that placed a page). */
export class PfnRefs<V> extends PfnSlots {
  private readonly values: V[] = [];

  get(pfn: number): V | undefined {
    const s = this.slot(pfn);
    return s === 0 ? undefined : this.values[s - 1];
  }

  set(pfn: number, v: V): void {
    let i = this.values.indexOf(v);
    if (i < 0) i = this.values.push(v) - 1;
    this.put(pfn, i + 1);
  }
}

/** Models struct dmirror_device: the driver data of one /dev/hmm_dmirrorN. */
export class DmirrorDevice {
  /** The device memory chunks (struct dmirror_chunk), added on demand. */
  readonly chunks: DeviceMemory[] = [];
  /**
   * Where the allocator starts looking: every chunk before it had no free page when last looked
   * at, and a free into one of them moves it back (a migration fills the chunks in order, and
   * the full ones need not be looked at again for every page).
   */
  freeHint = 0;
  /** The chunk a page was found in last (an index into `chunks`; it is checked before use). */
  chunkHint = 0;
  readonly devmemLock: DriverMutex;
  /** A coherent device's allocation found its one region full and WARNed (reported once). */
  regionFullWarned = false;
  /** Device pages handed out and given back, in pages. */
  calloc = 0;
  cfree = 0;
  /** zone_device_data of a private device folio head: the head of its system backing folio. */
  readonly backing = new PfnNumbers();
  /** zone_device_data of a backing head (private) or device head (coherent): the mirror that placed it. */
  readonly placedBy = new PfnRefs<Dmirror>();
  /** Every open file of this device. */
  readonly mirrors = new Set<Dmirror>();

  constructor(
    readonly dev: Device<DmirrorDevice, Dmirror>,
    readonly memory: 'private' | 'coherent',
    readonly driver: DmirrorDriver,
  ) {
    this.devmemLock = dev.mutex('devmem_lock', {
      lockClass: 'dmirror_device.devmem_lock',
      guards: 'the list of device memory chunks',
    });
  }

  get sys(): Device['sys'] {
    return this.dev.sys;
  }

  get name(): string {
    return this.dev.name;
  }
}

/**
 * Models struct dmirror: the state of one open file, which mirrors the address space of the
 * process that opened it through one interval notifier (the kernel embeds the notifier; here
 * the mirror is the notifier's subclass, the kernel's container_of).
 */
export class Dmirror extends MmuIntervalNotifier {
  readonly mutex: DriverMutex;
  /** The device page table (the kernel's xarray `pt`), guarded by `mutex`. */
  readonly pt: DevicePageTable;
  /** HMM_DMIRROR_FLAGS value. */
  flags = 0;
  /** Set when release() starts: the file is gone and the page table is no longer used. */
  released = false;

  constructor(
    readonly mdevice: DmirrorDevice,
    readonly id: number,
    mm: MmStruct,
  ) {
    super();
    const dev = mdevice.dev;
    this.mutex = dev.mutex(`mirror${id}.mutex`, {
      lockClass: 'dmirror.mutex',
      guards: 'the device page table and its read_retry checks',
    });
    this.pt = new DevicePageTable(dev, `${dev.name} mirror ${id}`, mm, this.mutex);
  }
}

/** Models struct dmirror_interval: the temporary notifier SNAPSHOT inserts over one chunk. */
export class DmirrorInterval extends MmuIntervalNotifier {
  constructor(readonly dmirror: Dmirror) {
    super();
  }
}
