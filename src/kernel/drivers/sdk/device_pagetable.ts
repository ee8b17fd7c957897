/**
 * A device page table that mirrors a process' address space, typed device accesses through it,
 * and the replayable-fault path: a device access that misses posts a fault record to a fault
 * buffer and stalls; the buffer's "interrupt" queues the driver's fault handler on a worker; the
 * handler drains the buffer, services each fault, and tells the device to replay.
 *
 * Locking: the table is guarded by a lock the driver declares (its "user lock" in HMM terms: the
 * one its invalidate callback takes and under which its fault path checks
 * mmu_interval_read_retry). map() and zap() assert that lock is held. The device itself reads the
 * table without the lock, as a hardware walker does, at a scheduling point of its own.
 *
 * The table registers itself in System.deviceMirrors, so the mirror oracle (the device maps only
 * what the CPU maps, never with more rights) and the frame-reference oracle (no entry outlives
 * its frame) check it after every step.
 */
import { PAGE_SIZE, vpn } from '../../../lib/units.ts';
import { grow } from '../../../lib/typed_array.ts';
import { XArray } from '../../../lib/xarray.ts';
import { WaitQueue } from '../../../sched/locks.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import type { MmStruct } from '../../mm/mm_types.ts';
import type { DeviceMirrorView, System } from '../../system.ts';
import type { Device } from './device.ts';
import { callSite, devicePageFreed, uafViolation } from '../../uaf.ts';
import { type DriverLock, lockdepAssertHeld } from './locks.ts';
import { initWork, queueWork, type WorkStruct } from './workqueue.ts';

/** Rights of a device PTE. */
export const DEV_PTE = { READ: 1, WRITE: 2, ATOMIC: 4 } as const;

/** One device PTE: the frame, the rights, and the frame's generation when it was stored. */
export interface DevPte {
  readonly pfn: number;
  readonly prot: number;
  readonly gen: number;
}

/** Slots a device page table has before it first grows its arrays. */
const INITIAL_SLOTS = 64;

/** Records what happened to a device page table as an instant on its device's own track. */
function traceDevice(pt: DevicePageTable, name: string, args: Record<string, unknown>): void {
  const trace = pt.sys.trace;
  if (trace.enabled) trace.emit('device', name, 'i', { pt: pt.name, ...args }, `device:${pt.dev.name}`);
}

/**
 * A device page table over one mm, guarded by `lock`. The table maps a page index to a slot, and
 * a slot's frame, rights and generation live in typed arrays: storing an entry allocates no
 * object that lives as long as the entry (one per page mapped cost the garbage collector more
 * than the store itself), and a DevPte is built only when an entry is read.
 */
export class DevicePageTable implements DeviceMirrorView {
  private readonly pt = new XArray<number>();
  // Room for the first entries from the start: a table built during an explorer's setup is
  // restored with its arrays (src/lib/snapshot.ts), so its schedules store entries without
  // allocating arrays of their own.
  private pfns = new Float64Array(INITIAL_SLOTS);
  private prots = new Uint8Array(INITIAL_SLOTS);
  private gens = new Uint16Array(INITIAL_SLOTS);
  /** Slots made so far; the free ones are on `freeSlots`. */
  private slots = 0;
  private readonly freeSlots: number[] = [];
  live = true;
  readonly sys: System;

  constructor(
    readonly dev: Device,
    readonly name: string,
    readonly mm: MmStruct,
    readonly lock: DriverLock,
  ) {
    this.sys = dev.sys;
    this.sys.deviceMirrors.add(this);
  }

  /** Installs the PTE of the page at `va`. Caller holds `lock`. */
  map(va: number, pfn: number, prot: number): void {
    lockdepAssertHeld(this.lock);
    const phys = this.sys.phys;
    // A device folio keeps its references on the head page; a tail page is free with its folio.
    if (phys.isDevice(pfn) && phys.refcount[phys.head(pfn)] === 0) {
      // A free device page: the driver maps memory it (or memunmap_pages) already gave back.
      reportDevicePageUse(this, va, pfn, -1, 'a device PTE store');
    }
    const index = vpn(va);
    const gen = this.sys.phys.gen[pfn];
    // Drivers map a whole serviced span again and again: an entry that is already there as it
    // would be stored stays (no new object per page).
    let slot = this.pt.load(index);
    if (
      slot !== undefined &&
      this.pfns[slot] === pfn &&
      this.prots[slot] === prot &&
      this.gens[slot] === gen
    ) {
      return;
    }
    if (slot === undefined) {
      slot = this.takeSlot();
      this.pt.store(index, slot);
    }
    this.pfns[slot] = pfn;
    this.prots[slot] = prot;
    this.gens[slot] = gen;
    // Checked here, so that an untraced run builds no arguments object per page.
    if (this.sys.trace.enabled)
      traceDevice(this, 'device pte map', { va, pfn, write: (prot & DEV_PTE.WRITE) !== 0 });
  }

  /** Clears the PTEs of [start, end). Caller holds `lock`. */
  zap(start: number, end: number): void {
    lockdepAssertHeld(this.lock);
    if (end > start) {
      for (const [, slot] of this.pt.entriesIn(vpn(start), vpn(end - 1))) this.freeSlots.push(slot);
      this.pt.eraseRange(vpn(start), vpn(end - 1));
    }
    traceDevice(this, 'device pte zap', { start, end });
  }

  /** A slot for a new entry: a freed one, or a new one (the arrays doubling when full). */
  private takeSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.slots === this.pfns.length) {
      // Never 0: the arrays start with INITIAL_SLOTS.
      const n = 2 * this.slots;
      this.pfns = grow(this.pfns, n);
      this.prots = grow(this.prots, n);
      this.gens = grow(this.gens, n);
    }
    return this.slots++;
  }

  /** The entry in `slot`, as a DevPte (a copy: a later store does not change it). */
  private entry(slot: number): DevPte {
    return { pfn: this.pfns[slot], prot: this.prots[slot], gen: this.gens[slot] };
  }

  /**
   * Drops the PTE of the page at `va` without the driver's lock (xa_erase() under the table's
   * own xa_lock). Only for a path that takes a page away from the device and holds no lock the
   * invalidate side takes, e.g. a migrate_to_ram that collected the page (its MIGRATE
   * invalidation, filtered by owner, did not zap it). Installing an entry always needs the lock.
   */
  erase(va: number): void {
    const slot = this.pt.erase(vpn(va));
    if (slot !== undefined) this.freeSlots.push(slot);
  }

  /** The PTEs of [start, end) that are present, by VA (a walk over present entries only). */
  *lookupRange(start: number, end: number): IterableIterator<[number, DevPte]> {
    if (end <= start) return;
    for (const [index, slot] of this.pt.range(vpn(start), vpn(end - 1)))
      yield [index * PAGE_SIZE, this.entry(slot)];
  }

  /** The PTE of the page at `va` (what the device's walker sees; no lock). */
  lookup(va: number): DevPte | undefined {
    const slot = this.pt.load(vpn(va));
    return slot === undefined ? undefined : this.entry(slot);
  }

  /** The frame of the PTE of the page at `va`, or -1 when none (lookup() without the copy). */
  lookupPfn(va: number): number {
    const slot = this.pt.load(vpn(va));
    return slot === undefined ? -1 : this.pfns[slot];
  }

  get size(): number {
    return this.pt.size;
  }

  /** Every entry, by VA (an array: the mirror oracle reads them all after every step explored). */
  entries(): { va: number; pfn: number; write: boolean; gen: number }[] {
    const out: { va: number; pfn: number; write: boolean; gen: number }[] = [];
    // An index loop: a for-of with destructuring runs the iterator protocol per entry until
    // this is compiled, and the oracle calls it at every step while the device maps anything.
    const found = this.pt.entriesIn(0, Infinity);
    for (let i = 0; i < found.length; i++) {
      const index = found[i][0];
      const slot = found[i][1];
      const write = (this.prots[slot] & DEV_PTE.WRITE) !== 0;
      out.push({ va: index * PAGE_SIZE, pfn: this.pfns[slot], write, gen: this.gens[slot] });
    }
    return out;
  }

  /**
   * Tears the table down (the file is released): it no longer receives invalidations, so it
   * stops being checked, and every entry goes.
   */
  destroy(): void {
    this.live = false;
    this.pt.clear();
    this.freeSlots.length = 0;
    this.slots = 0;
    this.sys.deviceMirrors.delete(this);
  }
}

export type DeviceAccessKind = 'read' | 'write' | 'atomic';

const NEEDS: Record<DeviceAccessKind, number> = {
  read: DEV_PTE.READ,
  write: DEV_PTE.WRITE,
  atomic: DEV_PTE.ATOMIC,
};

/** One replayable fault record, as the device writes it into the buffer. */
export interface DeviceFault {
  readonly va: number;
  readonly access: DeviceAccessKind;
  readonly pt: DevicePageTable;
}

/**
 * A device's replayable fault buffer (the ring UVM, nouveau and amdgpu's IH read). The device
 * posts records; posting into an empty buffer raises the interrupt, whose bottom half is the
 * driver's handler on a worker. Faulting accesses stall until the driver replays.
 */
export class FaultBuffer {
  private readonly ring: DeviceFault[] = [];
  /** Records the device dropped because the ring was full (they fault again on replay). */
  overflows = 0;
  /** Bumped by each replay; a stalled access waits for it to change. */
  replaySeq = 0;
  readonly replayWq: WaitQueue;
  readonly work: WorkStruct;

  /**
   * `handler` is the bottom half, run on a worker. `interrupt` is the top half, run in atomic
   * context when a record lands in an empty ring; by default it queues the handler's work.
   */
  constructor(
    readonly dev: Device,
    readonly name: string,
    readonly capacity: number,
    handler: (buf: FaultBuffer) => KGen,
    private readonly interrupt: (buf: FaultBuffer) => void = (buf) => {
      queueWork(buf.work);
    },
  ) {
    this.replayWq = new WaitQueue(dev.sys.sched, `${dev.name}.${name} replay`);
    this.work = initWork(dev.sys.sched, `${dev.name}.${name}`, () => handler(this));
  }

  get length(): number {
    return this.ring.length;
  }

  /** The device side: writes a record; raises the interrupt if the ring was empty. False when full. */
  post(fault: DeviceFault): boolean {
    if (this.ring.length >= this.capacity) {
      this.overflows++;
      return false;
    }
    const wasEmpty = this.ring.length === 0;
    this.ring.push(fault);
    this.dev.sys.trace.count('device_fault');
    if (wasEmpty) this.interrupt(this);
    return true;
  }

  /** The driver side: takes the oldest record, or undefined when the ring is empty. */
  pop(): DeviceFault | undefined {
    return this.ring.shift();
  }

  /** The driver tells the device to replay every stalled access (a replay/ack doorbell). */
  replay(): void {
    this.replaySeq++;
    this.replayWq.wakeUpAll();
  }
}

/** How many times an access may fault and be replayed before the device gives up (a fatal fault). */
export const DEVICE_ACCESS_MAX_REPLAYS = 8;

/**
 * A device access of `buf.length` bytes at `va` (within one page) through `pt`: a read copies
 * the page's bytes into buf, a write or atomic copies buf into the page. On a miss or a PTE
 * without the right, with a fault buffer the access posts a fault and stalls until a replay, then
 * tries again; without one, or after DEVICE_ACCESS_MAX_REPLAYS replays, it fails with -EFAULT.
 */
export function* deviceAccess(
  pt: DevicePageTable,
  va: number,
  kind: DeviceAccessKind,
  buf: Uint8Array,
  faults: FaultBuffer | null = null,
): KGen<number> {
  const off = va % PAGE_SIZE;
  if (off + buf.length > PAGE_SIZE) return -Errno.EINVAL;
  const phys = pt.sys.phys;
  for (let replays = 0; ; replays++) {
    yield {
      kind: 'step',
      label: `device_${kind}(${pt.name} 0x${va.toString(16)})`,
      access: { obj: pt, write: false },
    };
    const e = pt.lookup(va);
    if (e !== undefined && phys.isDevice(e.pfn) && phys.gen[e.pfn] !== e.gen) {
      reportDevicePageUse(pt, va, e.pfn, e.gen, `device_${kind}`);
      return -Errno.EFAULT;
    }
    if (e !== undefined && (e.prot & NEEDS[kind]) !== 0) {
      if (kind === 'read') phys.read(e.pfn, off, buf, 0, buf.length);
      else phys.write(e.pfn, off, buf, 0, buf.length);
      pt.sys.trace.count(`device_${kind}`);
      traceDevice(pt, `device_${kind}`, { va, pfn: e.pfn });
      return 0;
    }
    traceDevice(pt, 'device fault', { va, access: kind, replays });
    if (faults === null || replays >= DEVICE_ACCESS_MAX_REPLAYS) return -Errno.EFAULT;
    const seq = faults.replaySeq;
    faults.post({ va: va - off, access: kind, pt });
    yield* faults.replayWq.waitEvent(() => faults.replaySeq !== seq, `device fault stall (${pt.name})`);
  }
}

/**
 * Reports a use of device page `pfn` through `pt` at `va` after the page went back to its driver
 * (folio_free) or its memory was released (memunmap_pages): a use-after-free naming both places.
 * `gen` is the page's generation the use expected.
 */
function reportDevicePageUse(
  pt: DevicePageTable,
  va: number,
  pfn: number,
  gen: number,
  kernelFn: string,
): void {
  const sys = pt.sys;
  sys.sched.report(
    uafViolation(
      sys,
      devicePageFreed(sys, pfn, gen),
      callSite(sys, `${kernelFn} at 0x${va.toString(16)} of ${pt.name}`),
    ),
  );
}
