/**
 * A driver's device memory: memremap_pages() of DEVICE_PRIVATE or DEVICE_COHERENT pages with the
 * driver's dev_pagemap_ops, a page allocator over them, eviction of every page back to system
 * RAM (migrate_device_range), and the two migrations a driver writes around migrate_vma: system
 * pages to device pages, and a device page back on a CPU fault (the usual migrate_to_ram body).
 *
 * The model keeps a device page's data in the device frame itself (the kernel's device has its
 * own memory; test_hmm's backing pages are a detail of that one test module).
 *
 * The pgmap owner is the Device unless the driver names another: hmm_range_fault and
 * migrate_vma compare it to tell the driver's own pages from everyone else's.
 */
import { PAGE_SIZE, vpn } from '../../../lib/units.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { VM_FAULT, type Vma, type VmFault } from '../../mm/mm_types.ts';
import {
  type DevPagemap,
  type DevPagemapOps,
  memremapPages,
  memunmapPages,
  pageDevPagemap,
  zoneDevicePageInit,
} from '../../mm/memremap.ts';
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  type MigrateVma,
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
import { folioTrylock } from '../../mm/filemap.ts';
import { allocPageReclaim } from '../../mm/vmscan.ts';
import type { Device } from './device.ts';
import type { System } from '../../system.ts';
import type { DriverSpinLock } from './locks.ts';
import { sideTable } from '../../../lib/snapshot.ts';
import { FreeList } from '../../../lib/free_list.ts';

const memories = sideTable<DevPagemap, DeviceMemory>();
/** The largest folio order a device memory hands out (PUD-sized). */
const MAX_FOLIO_ORDER = 18;

/**
 * One memremap'ed range of device pages and its free lists: order-0 pages and, when the driver
 * asked for them (DeviceMemoryOptions.folioOrder), naturally aligned folios of that order.
 */
export class DeviceMemory {
  private readonly free: FreeList;
  /** Free folios (head PFNs), when folioOrder > 0. */
  private readonly freeFolios: FreeList;
  /** Pages handed out by allocPage() and given back by folio_free. */
  allocated = 0;
  freed = 0;
  /** The memory is going away (deviceMemoryRemove): freed pages are no longer recycled. */
  removed = false;

  constructor(
    readonly dev: Device,
    readonly pgmap: DevPagemap,
    /** Guards the free lists (the driver's allocator lock). */
    readonly lock: DriverSpinLock,
    /** The order of the folios the allocator hands out besides single pages; 0 for none. */
    readonly folioOrder = 0,
  ) {
    const first = pgmap.firstPfn;
    const last = first + pgmap.nrPages;
    const nr = 2 ** folioOrder;
    // Whole aligned blocks [lo, hi) become free folios, what is left over below and above them
    // single pages; the lowest PFNs are handed out first, the single pages below the blocks
    // before those above.
    const lo = Math.ceil(first / nr) * nr;
    const hi = Math.floor(last / nr) * nr;
    if (folioOrder > 0 && lo < hi) {
      this.free = new FreeList(first, lo, hi, last, 1);
      this.freeFolios = new FreeList(lo, hi, hi, hi, nr);
    } else {
      this.free = new FreeList(first, last, last, last, 1);
      this.freeFolios = new FreeList(last, last, last, last, nr);
    }
  }

  get type(): 'private' | 'coherent' {
    return this.pgmap.type;
  }

  get owner(): unknown {
    return this.pgmap.owner;
  }

  /** Whether any page is free (cheaper than freePages > 0). */
  get hasFree(): boolean {
    return this.free.length > 0 || this.freeFolios.length > 0;
  }

  /** Free pages, counting those of free folios. */
  get freePages(): number {
    return this.free.length + this.freeFolios.length * 2 ** this.folioOrder;
  }

  /**
   * Takes a free device page (order 0) or folio (order = folioOrder) and makes it a migration
   * destination (zone_device_page_init: one reference, locked). A single page is split off a
   * free folio when no single page is left. Returns the PFN, or -ENOMEM when the device memory
   * has none (or is being removed); -EINVAL for an order the memory does not hand out.
   */
  *allocPage(order = 0): KGen<number> {
    if (order !== 0 && order !== this.folioOrder) return -Errno.EINVAL;
    yield* this.lock.lock();
    const pfn = this.removed ? undefined : this.take(order);
    yield* this.lock.unlock();
    if (pfn === undefined) return -Errno.ENOMEM;
    this.allocated += 2 ** order;
    zoneDevicePageInit(this.dev.sys, pfn, order);
    return pfn;
  }

  /**
   * Pops a free page or folio; the caller holds `lock`. Internal to the allocator (public only
   * for the plain form of allocPage(), devmem.plain.ts).
   */
  take(order: number): number | undefined {
    if (order > 0) return this.freeFolios.pop();
    const p = this.free.pop();
    if (p !== undefined) return p;
    const f = this.freeFolios.pop();
    if (f === undefined) return undefined;
    for (let i = 2 ** this.folioOrder - 1; i >= 1; i--) this.free.push(f + i);
    return f;
  }

  /**
   * Takes up to `n` free device pages under one hold of the lock (a driver's bulk allocation,
   * as a buffer object's backing store is allocated at once), each made a migration destination
   * like allocPage()'s. Returns the PFNs; fewer than `n` when the device memory runs short.
   */
  *allocPages(n: number): KGen<number[]> {
    yield* this.lock.lock();
    const pfns: number[] = [];
    while (!this.removed && pfns.length < n) {
      const pfn = this.take(0);
      if (pfn === undefined) break;
      pfns.push(pfn);
    }
    yield* this.lock.unlock();
    for (const pfn of pfns) {
      this.allocated++;
      zoneDevicePageInit(this.dev.sys, pfn, 0);
    }
    return pfns;
  }

  /**
   * Gives a page or folio back to the free lists. Call it from dev_pagemap_ops.folioFree, which
   * runs in atomic context from the put that dropped the last reference: it cannot take the lock
   * with a scheduling point, and does the list update in that one step.
   */
  freePage(pfn: number, order = 0): void {
    this.freed += 2 ** order;
    if (this.removed) return;
    if (order > 0 && order === this.folioOrder) this.freeFolios.push(pfn);
    else for (let i = 2 ** order - 1; i >= 0; i--) this.free.push(pfn + i);
  }

  /** Whether `pfn` belongs to this memory. */
  contains(pfn: number): boolean {
    return pfn >= this.pgmap.firstPfn && pfn < this.pgmap.firstPfn + this.pgmap.nrPages;
  }
}

export interface DeviceMemoryOptions {
  readonly type: 'private' | 'coherent';
  readonly nrPages: number;
  /** The driver's dev_pagemap_ops. DEVICE_PRIVATE memory needs migrateToRam. */
  readonly ops: DevPagemapOps;
  /** pgmap->owner. @defaultValue the device */
  readonly owner?: unknown;
  /**
   * Also hand out folios of this order (HPAGE_PMD_ORDER for THP-sized device folios), from the
   * whole aligned blocks of the range. @defaultValue 0 (single pages only)
   */
  readonly folioOrder?: number;
}

/**
 * Models devm_memremap_pages() for a driver: `nrPages` device pages with the driver's ops, and
 * an allocator over them. Returns the memory, or -EINVAL (bad size or folio order, private
 * memory without migrateToRam) / -ENOMEM.
 */
export function devmMemremapPages(dev: Device, opts: DeviceMemoryOptions): DeviceMemory | number {
  const folioOrder = opts.folioOrder ?? 0;
  if (!Number.isInteger(folioOrder) || folioOrder < 0 || folioOrder > MAX_FOLIO_ORDER) return -Errno.EINVAL;
  const pgmap = memremapPages(dev.sys, opts.type, opts.owner ?? dev, opts.nrPages, opts.ops);
  if (typeof pgmap === 'number') return pgmap;
  const lock = dev.spinlock(`devmem${pgmap.firstPfn}.lock`, {
    lockClass: `${dev.driver.name}.devmem_lock`,
    guards: 'the free list of device pages',
  });
  const mem = new DeviceMemory(dev, pgmap, lock, folioOrder);
  memories.set(pgmap, mem);
  return mem;
}

/** The DeviceMemory a device page belongs to (page_pgmap() and back to the driver's struct), or null. */
export function pageDeviceMemory(dev: Device, pfn: number): DeviceMemory | null {
  const pgmap = pageDevPagemap(dev.sys, pfn);
  return pgmap === null ? null : (memories.get(pgmap) ?? null);
}

/**
 * The copy step of moving device pages back to system RAM, between migrate_device_range() (or
 * migrate_device_pfns()) and migrate_device_pages(), as drivers' eviction paths write it: each of
 * the `npages` entries of `src` the core isolated for migration, whose page `accept` keeps, gets
 * a new system page (allocated as `who`), locked, holding the device page's contents, in `dst`
 * with the source's write permission. When no system page can be had the result is -ENOMEM;
 * `stopAtFailure` ends the walk there (the caller then gives back what it got), otherwise the
 * entry is left and the walk goes on. Returns the pages copied, or -ENOMEM.
 */
export function* copyDevicePagesToRam(
  sys: System,
  src: Float64Array,
  dst: Float64Array,
  npages: number,
  who: string,
  opts: { readonly accept?: (spage: number) => boolean; readonly stopAtFailure?: boolean } = {},
): KGen<number> {
  let copied = 0;
  let ret = 0;
  for (let i = 0; i < npages; i++) {
    if ((migratePfnFlags(src[i]) & MIGRATE_PFN_MIGRATE) === 0) continue;
    const spage = migratePfnToPage(src[i]);
    if (spage < 0 || (opts.accept !== undefined && !opts.accept(spage))) continue;
    const dpage = yield* allocPageReclaim(sys, 0, who);
    if (dpage < 0) {
      ret = -Errno.ENOMEM;
      if (opts.stopAtFailure === true) break;
      continue;
    }
    folioTrylock(sys, dpage);
    sys.phys.copyPage(dpage, spage);
    dst[i] = migratePfn(dpage) + (migratePfnFlags(src[i]) & MIGRATE_PFN_WRITE);
    copied++;
  }
  return ret < 0 ? ret : copied;
}

/**
 * Evicts every page of `mem` back to system RAM (migrate_device_range, new pages, copy,
 * migrate_device_pages, migrate_device_finalize), as a driver does before memunmap_pages or when
 * its memory is needed elsewhere. Returns how many pages moved, or -ENOMEM.
 */
export function* deviceMemoryEvict(mem: DeviceMemory): KGen<number> {
  const sys = mem.dev.sys;
  const n = mem.pgmap.nrPages;
  const src = new Float64Array(n);
  const dst = new Float64Array(n);
  yield* migrateDeviceRange(sys, src, mem.pgmap.firstPfn, n);
  const ret = yield* copyDevicePagesToRam(sys, src, dst, n, 'devmem_evict');
  yield* migrateDevicePages(sys, src, dst, n);
  yield* migrateDeviceFinalize(sys, src, dst, n);
  return ret;
}

/**
 * Models the driver's teardown of its device memory: the allocator stops handing pages out and
 * stops recycling freed ones, every page still in use is evicted to system RAM (by `evict`, the
 * driver's own eviction when its pages need more than a copy), then memunmap_pages().
 */
export function* deviceMemoryRemove(
  mem: DeviceMemory,
  evict: (mem: DeviceMemory) => KGen<unknown> = deviceMemoryEvict,
): KGen {
  if (mem.removed) return;
  yield* mem.lock.lock();
  mem.removed = true;
  yield* mem.lock.unlock();
  yield* evict(mem);
  yield* memunmapPages(mem.dev.sys, mem.pgmap);
}

/** A fresh struct migrate_vma over [start, end) of `vma`. */
export function migrateVmaInit(
  vma: Vma,
  start: number,
  end: number,
  pgmapOwner: unknown,
  flags: number,
): MigrateVma {
  const npages = vpn(end) - vpn(start);
  return {
    vma,
    src: new Float64Array(npages),
    dst: new Float64Array(npages),
    cpages: 0,
    npages,
    start,
    end,
    pgmapOwner,
    flags,
    faultPage: -1,
  };
}

/**
 * Migrates the system pages of [start, end) of `vma` to device pages of `mem` (the caller holds
 * the mmap read lock). `onMapped(args)` runs between migrate_vma_pages and finalize so the driver
 * can map the new pages in its device page table. Returns the pages migrated, or -errno.
 */
export function* migrateToDevice(
  mem: DeviceMemory,
  vma: Vma,
  start: number,
  end: number,
  onMapped?: (args: MigrateVma) => KGen,
): KGen<number> {
  const sys = mem.dev.sys;
  const args = migrateVmaInit(vma, start, end, mem.owner, MIGRATE_VMA_SELECT_SYSTEM);
  const r = yield* migrateVmaSetup(args);
  if (r !== 0) return r;
  let moved = 0;
  for (let i = 0; i < args.npages; i++) {
    const s = args.src[i];
    if ((migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) === 0) continue;
    const dpage = yield* mem.allocPage();
    if (dpage < 0) continue;
    const spage = migratePfnToPage(s);
    if (spage >= 0) sys.phys.copyPage(dpage, spage);
    else sys.phys.clearPage(dpage);
    args.dst[i] = migratePfn(dpage) + (migratePfnFlags(s) & MIGRATE_PFN_WRITE);
    moved++;
  }
  yield* migrateVmaPages(args);
  if (onMapped !== undefined) yield* onMapped(args);
  yield* migrateVmaFinalize(args);
  return moved;
}

/**
 * The usual body of dev_pagemap_ops.migrate_to_ram: migrate the faulting device page back to a
 * new system page (migrate_vma_setup with the fault page, copy, pages, finalize). `onCollected`
 * runs once the page is collected and copied, before it is released. Returns 0 or a
 * VM_FAULT code (SIGBUS when the page could not be collected, OOM when no RAM page is left).
 */
export function* migrateToRamOne(
  mem: DeviceMemory,
  vmf: VmFault,
  onCollected?: (args: MigrateVma) => KGen,
): KGen<number> {
  const sys = mem.dev.sys;
  const start = vmf.address - (vmf.address % PAGE_SIZE);
  const select =
    mem.type === 'private' ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
  const args = migrateVmaInit(vmf.vma, start, start + PAGE_SIZE, mem.owner, select);
  args.faultPage = vmf.page;
  if ((yield* migrateVmaSetup(args)) !== 0) return VM_FAULT.SIGBUS;
  const s = args.src[0];
  if ((migratePfnFlags(s) & MIGRATE_PFN_MIGRATE) !== 0) {
    const dpage = yield* allocPageReclaim(sys, 0, 'devmem_migrate_to_ram');
    if (dpage < 0) {
      yield* migrateVmaFinalize(args);
      return VM_FAULT.OOM;
    }
    folioTrylock(sys, dpage);
    sys.phys.copyPage(dpage, migratePfnToPage(s));
    args.dst[0] = migratePfn(dpage) + (migratePfnFlags(s) & MIGRATE_PFN_WRITE);
  }
  // The device must stop using the page before migrate_vma_pages() lets it go: the driver's own
  // MIGRATE invalidation is filtered by owner, so this is where it drops its mapping.
  if (onCollected !== undefined) yield* onCollected(args);
  yield* migrateVmaPages(args);
  yield* migrateVmaFinalize(args);
  return 0;
}
