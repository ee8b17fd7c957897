/**
 * Models mm/memremap.c and include/linux/memremap.h for the two ZONE_DEVICE types HMM drivers
 * use: MEMORY_DEVICE_PRIVATE (struct pages the CPU cannot address; mapped in CPU page tables only
 * as device-private swap entries) and MEMORY_DEVICE_COHERENT (CPU-addressable device memory mapped
 * with ordinary PTEs, which must never be pinned long-term).
 *
 * The frames live in PhysMem beyond RAM (addDeviceRange). A device page is idle at refcount 0,
 * owned by its driver; zoneDevicePageInit() hands it out with one reference and locked, ready to
 * be a migration destination; when its last reference goes, PhysMem calls ops.folioFree and the
 * driver takes it back.
 */
import { callSite } from '../uaf.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { WaitQueue } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import type { VmFault } from './mm_types.ts';
import type { PagemapHooks, PagemapRef } from './page_alloc.ts';
import { folioTrylock } from './filemap.ts';
import { migrateDeviceCoherentPage } from './migrate_device.ts';
import { sideTable } from '../../lib/snapshot.ts';

/** Models struct dev_pagemap_ops. */
export interface DevPagemapOps {
  /** The last reference to a device folio went (folio_free, was page_free). */
  folioFree(pfn: number, order: number): void;
  /** A CPU fault on a device-private entry of this pagemap: migrate the page back. Returns vm_fault_t. */
  migrateToRam?(vmf: VmFault): KGen<number>;
  /** A large device folio was split: `tail` is one of the new order-0 folios (folio_split). */
  folioSplit?(head: number, tail: number): void;
}

/** Models struct dev_pagemap. */
export class DevPagemap {
  /** memunmap_pages() has run: no page of it may be handed out again. */
  dead = false;
  /** memunmap_pages() sleeps here until the last page is freed (pgmap->done). */
  done: WaitQueue | null = null;
  constructor(
    readonly type: 'private' | 'coherent',
    readonly owner: unknown,
    readonly ops: DevPagemapOps,
    readonly firstPfn: number,
    readonly nrPages: number,
    readonly ref: PagemapRef,
  ) {}
}

const pagemaps = sideTable<PagemapRef, DevPagemap>();

/**
 * Models memremap_pages(): creates the struct pages of a device memory range. Returns the pagemap
 * or -ENOMEM (injectable at 'memremap_pages').
 */
export function memremapPages(
  sys: System,
  type: 'private' | 'coherent',
  owner: unknown,
  nrPages: number,
  ops: DevPagemapOps,
): DevPagemap | number {
  if (!Number.isInteger(nrPages) || nrPages <= 0) return -Errno.EINVAL;
  if (type === 'private' && ops.migrateToRam === undefined) return -Errno.EINVAL;
  if (sys.inject.shouldFail('memremap_pages')) return -Errno.ENOMEM;
  const hooks: PagemapHooks = {
    folioFree: (pfn, order) => {
      ops.folioFree(pfn, order);
      // The page's pgmap reference goes with it: wake memunmap_pages() if it waits.
      pgmap?.done?.wakeUpAll();
    },
    migrateToRam: ops.migrateToRam === undefined ? undefined : (vmf) => ops.migrateToRam!(vmf),
    folioSplit:
      ops.folioSplit === undefined
        ? undefined
        : (head, tail) => {
            ops.folioSplit!(head, tail);
          },
    owner,
    type,
  };
  let pgmap: DevPagemap | null = null;
  let ref: PagemapRef;
  try {
    ref = sys.phys.addDeviceRange(nrPages, hooks);
  } catch {
    return -Errno.ENOMEM;
  }
  pgmap = new DevPagemap(type, owner, ops, ref.firstPfn, nrPages, ref);
  pagemaps.set(ref, pgmap);
  // Long-term GUP pins must move coherent pages to RAM first; this is the routine that does it.
  if (type === 'coherent') sys.longtermMigrate = migrateDeviceCoherentPage;
  sys.trace.count('memremap_pages');
  return pgmap;
}

/** Device pages of `pgmap` still referenced. */
function busyPages(sys: System, pgmap: DevPagemap): number {
  let busy = 0;
  for (let p = pgmap.firstPfn; p < pgmap.firstPfn + pgmap.nrPages; p++) if (sys.phys.refcount[p] > 0) busy++;
  return busy;
}

/**
 * Models memunmap_pages(): kills the pagemap's reference and sleeps until every page of the range
 * has been freed (each referenced page holds the pagemap), then the range is gone. Drivers evict
 * their pages first (migrate_device_range); a page another thread still holds, such as one a CPU
 * fault is migrating back, is waited for, as the kernel does. A page nobody will ever put keeps
 * it asleep for good: the explorer reports that as a deadlock.
 */
export function* memunmapPages(sys: System, pgmap: DevPagemap): KGen {
  if (busyPages(sys, pgmap) > 0) {
    pgmap.done ??= new WaitQueue(sys.sched, `pgmap ${pgmap.firstPfn}`);
    yield* pgmap.done.waitEvent(() => busyPages(sys, pgmap) === 0, 'memunmap_pages: wait for device pages');
  }
  pgmap.dead = true;
  sys.freed.markReleased(pgmap.ref, callSite(sys, 'memunmap_pages'));
  sys.trace.count('memunmap_pages');
}

/**
 * Models zone_device_page_init() / zone_device_folio_init(): an idle device page becomes a folio
 * of 2^order pages with one reference, locked, ready to be a migration destination (migrate
 * finalize unlocks it and drops that reference once the page is mapped).
 */
export function zoneDevicePageInit(sys: System, pfn: number, order = 0): void {
  const phys = sys.phys;
  const pm = phys.pagemapOf(pfn);
  if (pm === null) throw new Error(`zone_device_page_init of non-device pfn ${pfn}`);
  if (phys.refcount[pfn] !== 0) throw new Error(`zone_device_page_init of busy device pfn ${pfn}`);
  if (pagemaps.get(pm)?.dead === true) throw new Error(`zone_device_page_init on an unmapped pagemap`);
  phys.initDevicePage(pfn, order);
  folioTrylock(sys, pfn);
}

/** Models page_pgmap(): the pagemap a device page belongs to, or null for RAM. */
export function pageDevPagemap(sys: System, pfn: number): DevPagemap | null {
  if (pfn < 0 || pfn >= sys.phys.nr) return null;
  const ref = sys.phys.pagemapOf(pfn);
  return ref === null ? null : (pagemaps.get(ref) ?? null);
}

/** Models is_device_private_page(). */
export function isDevicePrivatePage(sys: System, pfn: number): boolean {
  if (pfn < 0 || pfn >= sys.phys.nr) return false;
  return sys.phys.pagemapOf(pfn)?.hooks.type === 'private';
}

/** Models is_device_coherent_page(). */
export function isDeviceCoherentPage(sys: System, pfn: number): boolean {
  if (pfn < 0 || pfn >= sys.phys.nr) return false;
  return sys.phys.pagemapOf(pfn)?.hooks.type === 'coherent';
}

/** Models is_zone_device_page(). */
export function isZoneDevicePage(sys: System, pfn: number): boolean {
  return pfn >= 0 && pfn < sys.phys.nr && sys.phys.isDevice(pfn);
}

/** The pgmap owner of a device page (pgmap->owner), or undefined for RAM. */
export function pageOwner(sys: System, pfn: number): unknown {
  return sys.phys.pagemapOf(pfn)?.hooks.owner;
}
