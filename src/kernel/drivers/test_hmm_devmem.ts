/**
 * Device memory of the dmirror device (lib/test_hmm.c): chunks of ZONE_DEVICE pages added on
 * demand, the page allocator over them, folio_free and migrate_to_ram, and the ioctls that
 * migrate (MIGRATE_TO_DEV, MIGRATE_TO_SYS, RELEASE).
 *
 * A device-private page has no memory the CPU can reach; the simulated device keeps its data in
 * a system "backing" page (the kernel's BACKING_PAGE(), in zone_device_data). A device-coherent
 * page holds its data itself.
 */
import type { KGen } from '../../sched/types.ts';
import type { System } from '../system.ts';
import { Errno } from '../errno.ts';
import { type DeviceMemory, deviceMemoryRemove, devmMemremapPages, migrateVmaInit } from './sdk/devmem.ts';
import {
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  type MigrateVma,
  PAGE_SIZE,
  VM,
  VM_FAULT,
  type Vma,
  type VmFault,
  allocPageReclaim,
  folioTrylock,
  folioUnlock,
  isDeviceCoherentPage,
  isDevicePrivatePage,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migratePfn,
  migratePfnFlags,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  mmgetNotZero,
  mmput,
  pageDevPagemap,
  vmfPmdMapped,
  warn,
} from './sdk/kernel_api.ts';
import { bounceFree, bounceInitSparse, copyBounceToUser, dmirrorDoRead, dptStore } from './test_hmm.ts';
import { DPT_TAG_READ, DPT_TAG_WRITE, Dmirror, DmirrorDevice } from './test_hmm_types.ts';
import { HMM_DMIRROR_FLAG_FAIL_ALLOC, type HmmDmirrorCmd } from './test_hmm_uapi.ts';

/**
 * Bytes of device memory per chunk. The kernel uses 256MB; the model uses 64MiB (16384 pages,
 * 32 PMD folios) so every ported test, whose private pages need system backing pages, fits in
 * the default 1GiB of RAM, and evicting a chunk walks fewer frames.
 */
export const DEVMEM_CHUNK_SIZE = 64 * 1024 * 1024;
const DEVMEM_CHUNK_PAGES = DEVMEM_CHUNK_SIZE / PAGE_SIZE;
/**
 * Chunks of a coherent device. Its memory is one fixed region (the kernel's 256 MB at
 * spm_addr_devN), so it never grows past the chunks that region holds.
 */
export const DEVMEM_COHERENT_CHUNKS = (256 * 1024 * 1024) / DEVMEM_CHUNK_SIZE;
/** Pages migrated per migrate_vma_setup() call (PTRS_PER_PTE). */
const MIGRATE_CHUNK = 512;
function has(m: number, flag: number): boolean {
  return (migratePfnFlags(m) & flag) !== 0;
}

/** The dmirror device whose chunk `pfn` belongs to, or null. */
export function dmirrorPageToDevice(sys: System, pfn: number): DmirrorDevice | null {
  const owner = pageDevPagemap(sys, pfn)?.owner;
  return owner instanceof DmirrorDevice ? owner : null;
}

/** The index in mdevice.chunks of the chunk `pfn` belongs to, or -1 (the chunks' PFNs are disjoint). */
function pageToChunkIndex(mdevice: DmirrorDevice, pfn: number): number {
  const chunks = mdevice.chunks;
  const hint = mdevice.chunkHint;
  if (hint < chunks.length && chunks[hint].contains(pfn)) return hint;
  for (let i = 0; i < chunks.length; i++) {
    if (chunks[i].contains(pfn)) {
      mdevice.chunkHint = i;
      return i;
    }
  }
  return -1;
}

/** BACKING_PAGE(): where the data of device page `pfn` lives. */
function backingPage(mdevice: DmirrorDevice, pfn: number): number {
  if (!isDevicePrivatePage(mdevice.sys, pfn)) return pfn;
  const phys = mdevice.sys.phys;
  const head = phys.head(pfn);
  const r = mdevice.backing.get(head);
  return r === undefined ? -1 : r + (pfn - head);
}

/** lock_page() on a page nobody else can see yet. */
function lockPage(sys: System, pfn: number): void {
  folioTrylock(sys, pfn);
}

/** Copies 2^order pages (copy_highpage per page). */
function copyPages(sys: System, dst: number, src: number, nr: number): void {
  for (let i = 0; i < nr; i++) sys.phys.copyPage(dst + i, src + i);
}

/**
 * Models dmirror_allocate_chunk(): memremap one more chunk (the SDK's device memory, whose
 * allocator hands out single pages and PMD folios) and add it to the chunk list.
 */
function* dmirrorAllocateChunk(mdevice: DmirrorDevice): KGen<number> {
  const sys = mdevice.sys;
  if (mdevice.memory === 'coherent' && mdevice.chunks.length >= DEVMEM_COHERENT_CHUNKS) {
    // Every chunk of a coherent device starts at the same physical address: once its region is
    // in use, memremap_pages() finds that address already mapped (pagemap_range()'s conflict
    // check WARNs) and fails with -ENOMEM. The kernel WARNs at every attempt; the model reports
    // the first, so that a migration of millions of pages does not pile up millions of reports.
    if (!mdevice.regionFullWarned) {
      mdevice.regionFullWarned = true;
      warn(
        sys,
        `memremap_pages: conflicting mapping in same section (all of ${mdevice.name}'s coherent memory is in use)`,
      );
    }
    return -Errno.ENOMEM;
  }
  const mem = devmMemremapPages(mdevice.dev, {
    type: mdevice.memory,
    nrPages: DEVMEM_CHUNK_PAGES,
    owner: mdevice,
    folioOrder: HPAGE_PMD_ORDER,
    ops: {
      folioFree: (pfn: number, order: number) => {
        dmirrorDevmemFree(mdevice, pfn, order);
      },
      migrateToRam:
        mdevice.memory === 'private' ? (vmf: VmFault) => dmirrorDevmemFault(mdevice, vmf) : undefined,
      folioSplit: (head: number, tail: number) => {
        dmirrorDevmemFolioSplit(mdevice, head, tail);
      },
    },
  });
  if (typeof mem === 'number') return mem;
  yield* mdevice.devmemLock.lock();
  mdevice.chunks.push(mem);
  yield* mdevice.devmemLock.unlock();
  const first = mem.pgmap.firstPfn;
  sys.trace.emit(
    'device',
    'dmirror chunk added',
    'i',
    { device: mdevice.name, first, pages: mem.pgmap.nrPages },
    `device:${mdevice.name}`,
  );
  return 0;
}

/**
 * A free device page (or PMD folio) from the first chunk that has one; -1 if none has. The
 * kernel keeps one free list per device under one lock; here each chunk has its own, and a chunk
 * whose lists are empty is passed over without taking its lock (as a list_empty() check would),
 * so an allocation takes one allocator lock however many chunks are full.
 */
function* takeFree(mdevice: DmirrorDevice, order: number): KGen<number> {
  const chunks = mdevice.chunks;
  let skipping = true;
  for (let i = Math.min(mdevice.freeHint, chunks.length); i < chunks.length; i++) {
    const chunk = chunks[i];
    if (!chunk.hasFree) {
      if (skipping) mdevice.freeHint = i + 1;
      continue;
    }
    skipping = false;
    const p = yield* chunk.allocPage(order);
    if (p >= 0) return p;
  }
  return -1;
}

/**
 * Models dmirror_devmem_alloc_page(): a device page (or PMD folio) with refcount 1, and for
 * private memory a system backing page of the same order. Returns the device PFN or -1.
 */
export function* dmirrorDevmemAllocPage(mirror: Dmirror, large: boolean): KGen<number> {
  const mdevice = mirror.mdevice;
  const sys = mdevice.sys;
  const order = large ? HPAGE_PMD_ORDER : 0;
  let rpage = -1;
  if (mdevice.memory === 'private') {
    rpage = yield* allocPageReclaim(sys, order, 'dmirror_backing');
    if (rpage < 0) return -1;
  }
  let dpage = yield* takeFree(mdevice, order);
  if (dpage < 0 && (yield* dmirrorAllocateChunk(mdevice)) === 0) dpage = yield* takeFree(mdevice, order);
  if (dpage < 0) {
    if (rpage >= 0) sys.phys.put(rpage);
    return -1;
  }
  mdevice.calloc += 1 << order;
  if (rpage >= 0) mdevice.backing.set(dpage, rpage);
  return dpage;
}

/** Records which mirror placed a device page (rpage->zone_device_data = dmirror). */
function setPlacedBy(mirror: Dmirror, dpage: number): void {
  const mdevice = mirror.mdevice;
  const key = mdevice.memory === 'private' ? mdevice.backing.get(dpage) : dpage;
  if (key !== undefined) mdevice.placedBy.set(key, mirror);
}

/** Models dmirror_devmem_free() (dev_pagemap_ops.folio_free): drop the backing page, recycle the device page. */
function dmirrorDevmemFree(mdevice: DmirrorDevice, pfn: number, order: number): void {
  const sys = mdevice.sys;
  const rpage = mdevice.backing.get(pfn);
  if (rpage !== undefined) {
    mdevice.backing.delete(pfn);
    mdevice.placedBy.delete(rpage);
    sys.phys.put(rpage);
  }
  mdevice.placedBy.delete(pfn);
  // folio_free runs from a put in plain code, which cannot yield: the chunk's allocator takes the
  // page back in this one step (no other path holds its free lists across a scheduling point).
  const i = pageToChunkIndex(mdevice, pfn);
  if (i < 0) return;
  const chunk = mdevice.chunks[i];
  if (!chunk.removed) mdevice.cfree += 1 << order;
  chunk.freePage(pfn, order);
  if (i < mdevice.freeHint) mdevice.freeHint = i;
}

/**
 * Models dmirror_devmem_folio_split() (dev_pagemap_ops.folio_split): a device folio was split, so
 * its backing folio is split too and every new device page points at its own backing page (and
 * that page at the mirror that placed it).
 */
function dmirrorDevmemFolioSplit(mdevice: DmirrorDevice, head: number, tail: number): void {
  const sys = mdevice.sys;
  if (mdevice.memory !== 'private') {
    const mirror = mdevice.placedBy.get(head);
    if (mirror !== undefined && tail !== head) mdevice.placedBy.set(tail, mirror);
    return;
  }
  const rpage = mdevice.backing.get(head);
  if (rpage === undefined) return;
  if (tail === head) {
    // Each backing page becomes a folio of its own with the one reference its device page holds.
    if (sys.phys.order[rpage] > 0) sys.phys.splitFolio(rpage, 1);
    return;
  }
  const r = rpage + (tail - head);
  mdevice.backing.set(tail, r);
  const mirror = mdevice.placedBy.get(rpage);
  if (mirror !== undefined) mdevice.placedBy.set(r, mirror);
}

/** Models dmirror_migrate_alloc_and_copy(): allocate device pages and copy the sources in. */
function* dmirrorMigrateAllocAndCopy(args: MigrateVma, mirror: Dmirror): KGen {
  const sys = mirror.mdevice.sys;
  const src = args.src;
  const dst = args.dst;
  const n = args.npages;
  for (let i = 0; i < n;) {
    const s = src[i];
    if (!has(s, MIGRATE_PFN_MIGRATE)) {
      i++;
      continue;
    }
    const large = has(s, MIGRATE_PFN_COMPOUND);
    const write = has(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0;
    // No source page: an unpopulated PTE or the zero page, which reads as zeros.
    const spage = migratePfnToPage(s);
    if (spage >= 0 && sys.phys.isDevice(spage)) {
      warn(sys, `dmirror: page already in device memory, pfn ${spage}`);
      i++;
      continue;
    }
    let dpage: number;
    if ((mirror.flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) !== 0) {
      mirror.flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
      dpage = -1;
    } else {
      dpage = yield* dmirrorDevmemAllocPage(mirror, large);
    }
    if (dpage < 0) {
      if (!large) {
        i++;
        continue;
      }
      // A huge allocation failed: fall back to single device pages for the whole folio.
      const nr = spage < 0 ? HPAGE_PMD_NR : sys.phys.folioNr(spage);
      for (let j = 0; j < nr && i < n; j++, i++) {
        const d = yield* dmirrorDevmemAllocPage(mirror, false);
        if (d < 0) continue;
        setPlacedBy(mirror, d);
        dst[i] = migratePfn(d) + write;
        const data = backingPage(mirror.mdevice, d);
        if (spage >= 0) sys.phys.copyPage(data, spage + j);
        else sys.phys.clearPage(data);
      }
      continue;
    }
    setPlacedBy(mirror, dpage);
    dst[i] = migratePfn(dpage) + write;
    const data = backingPage(mirror.mdevice, dpage);
    if (large) {
      dst[i] += MIGRATE_PFN_COMPOUND;
      const nr = sys.phys.folioNr(dpage);
      if (nr > 1) {
        for (let j = 0; j < nr; j++) {
          if (spage >= 0) sys.phys.copyPage(data + j, spage + j);
          else sys.phys.clearPage(data + j);
        }
        i += nr;
        continue;
      }
    }
    if (spage >= 0) sys.phys.copyPage(data, spage);
    else sys.phys.clearPage(data);
    i++;
  }
}

/** Models dmirror_migrate_finalize_and_map(): map the migrated pages in the device PT. */
function* dmirrorMigrateFinalizeAndMap(args: MigrateVma, mirror: Dmirror): KGen<number> {
  const sys = mirror.mdevice.sys;
  yield* mirror.mutex.lock();
  for (let i = 0; i < args.npages; i++) {
    if (!has(args.src[i], MIGRATE_PFN_MIGRATE)) continue;
    const d = args.dst[i];
    const dpage = migratePfnToPage(d);
    if (dpage < 0) continue;
    const nr = has(d, MIGRATE_PFN_COMPOUND) ? sys.phys.folioNr(dpage) : 1;
    const tag = has(d, MIGRATE_PFN_WRITE) ? DPT_TAG_WRITE : DPT_TAG_READ;
    for (let j = 0; j < nr && i + j < args.npages; j++) {
      dptStore(mirror, args.start + (i + j) * PAGE_SIZE, dpage + j, tag);
    }
  }
  yield* mirror.mutex.unlock();
  return 0;
}

function newMigrate(vma: Vma, mirror: Dmirror, start: number, end: number, flags: number): MigrateVma {
  return migrateVmaInit(vma, start, end, mirror.mdevice, flags);
}

function selectDevice(mdevice: DmirrorDevice): number {
  return mdevice.memory === 'private'
    ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE
    : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
}

/** Models dmirror_migrate_to_device(). */
export function* dmirrorMigrateToDevice(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  const mm = mirror.mm;
  const start = cmd.addr;
  const size = cmd.npages * PAGE_SIZE;
  const end = start + size;
  if (!mmgetNotZero(mm)) return -Errno.EINVAL;
  let ret = 0;
  yield* mm.mmapLock.downRead();
  for (let addr = start, next = 0; addr < end; addr = next) {
    const vma = mm.vmaLookup(addr);
    if (vma === null || (vma.flags & VM.READ) === 0) {
      ret = -Errno.EINVAL;
      break;
    }
    next = Math.min(end, addr + MIGRATE_CHUNK * PAGE_SIZE, vma.end);
    const args = newMigrate(vma, mirror, addr, next, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
    ret = yield* migrateVmaSetup(args);
    if (ret !== 0) break;
    yield* dmirrorMigrateAllocAndCopy(args, mirror);
    yield* migrateVmaPages(args);
    yield* dmirrorMigrateFinalizeAndMap(args, mirror);
    yield* migrateVmaFinalize(args);
  }
  yield* mm.mmapLock.upRead();
  yield* mmput(mm);
  if (ret !== 0) return ret;
  // Read back what the device now holds: -ENOENT if some page did not move.
  const bounce = bounceInitSparse(start, size);
  if (bounce === null) return -Errno.ENOMEM;
  yield* mirror.mutex.lock();
  ret = dmirrorDoRead(mirror, start, end, bounce);
  yield* mirror.mutex.unlock();
  if (ret === 0) ret = yield* copyBounceToUser(mirror, cmd, bounce);
  bounceFree(bounce);
  cmd.cpages = bounce.cpages;
  return ret;
}

/**
 * Models dmirror_devmem_fault_alloc_and_copy(): system pages for device pages on their way
 * back, dropping their device PT entries. Returns 0 or VM_FAULT_OOM.
 */
function* dmirrorDevmemFaultAllocAndCopy(args: MigrateVma, mirror: Dmirror): KGen<number> {
  const mdevice = mirror.mdevice;
  const sys = mdevice.sys;
  const src = args.src;
  const dst = args.dst;
  let addr = args.start;
  for (let i = 0; i < args.npages;) {
    const s = src[i];
    let spage = migratePfnToPage(s);
    if (spage < 0 || !has(s, MIGRATE_PFN_MIGRATE)) {
      addr += PAGE_SIZE;
      i++;
      continue;
    }
    if (!isDevicePrivatePage(sys, spage) && !isDeviceCoherentPage(sys, spage)) {
      warn(sys, `dmirror: migrating a page that is not device memory back, pfn ${spage}`);
      addr += PAGE_SIZE;
      i++;
      continue;
    }
    const srcMdevice = dmirrorPageToDevice(sys, spage) ?? mdevice;
    spage = backingPage(srcMdevice, spage);
    const order = spage < 0 ? 0 : sys.phys.folioOrder(spage);
    const write = has(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0;
    let compound = order > 0 ? MIGRATE_PFN_COMPOUND : 0;
    let dpage: number;
    if ((mirror.flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) !== 0) {
      mirror.flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
      compound = 0;
      dpage = -1;
    } else {
      dpage = yield* allocPageReclaim(sys, order, order > 0 ? 'dmirror_fault_folio' : 'dmirror_fault_page');
    }
    if (dpage < 0 && order === 0) return VM_FAULT.OOM;
    dst[i] = compound + write;
    if (dpage >= 0) {
      lockPage(sys, dpage);
      dst[i] += migratePfn(dpage);
    }
    const nr = 1 << order;
    for (let j = 0; j < nr; j++) {
      let dstPage: number;
      if (dpage < 0) {
        // The huge allocation failed: one system page per subpage. (The kernel drops the WRITE
        // bit of these entries; the model keeps it, which only spares a later write fault.)
        const d = yield* allocPageReclaim(sys, 0, 'dmirror_fault_page');
        if (d < 0) {
          for (let k = 0; k < j; k++) {
            const f = migratePfnToPage(dst[i + k]);
            if (f >= 0) {
              folioUnlock(sys, f);
              sys.phys.put(f);
            }
            dst[i + k] = 0;
          }
          for (let k = j; k < nr; k++) dst[i + k] = 0;
          return VM_FAULT.OOM;
        }
        lockPage(sys, d);
        dst[i + j] = migratePfn(d) + write;
        dstPage = d;
      } else {
        dstPage = dpage + j;
      }
      // The device stops using the page; its own MIGRATE invalidation did not zap it.
      mirror.pt.erase(addr);
      addr += PAGE_SIZE;
      if (spage >= 0) sys.phys.copyPage(dstPage, spage + j);
      else sys.phys.clearPage(dstPage);
    }
    i += nr;
  }
  return 0;
}

/** Models dmirror_successful_migrated_pages(). */
function successfulMigratedPages(args: MigrateVma): number {
  let n = 0;
  for (let i = 0; i < args.npages; i++) {
    if (has(args.src[i], MIGRATE_PFN_VALID) && has(args.src[i], MIGRATE_PFN_MIGRATE)) n++;
  }
  return n;
}

/** Models dmirror_migrate_to_system(). */
export function* dmirrorMigrateToSystem(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  const mm = mirror.mm;
  const start = cmd.addr;
  const end = start + cmd.npages * PAGE_SIZE;
  if (!mmgetNotZero(mm)) return -Errno.EINVAL;
  let ret = 0;
  let cpages = 0;
  yield* mm.mmapLock.downRead();
  for (let addr = start, next = 0; addr < end; addr = next) {
    const vma = mm.vmaLookup(addr);
    if (vma === null || (vma.flags & VM.READ) === 0) {
      ret = -Errno.EINVAL;
      break;
    }
    next = Math.min(end, addr + MIGRATE_CHUNK * PAGE_SIZE, vma.end);
    const args = newMigrate(
      vma,
      mirror,
      addr,
      next,
      selectDevice(mirror.mdevice) | MIGRATE_VMA_SELECT_COMPOUND,
    );
    ret = yield* migrateVmaSetup(args);
    if (ret !== 0) break;
    if ((yield* dmirrorDevmemFaultAllocAndCopy(args, mirror)) !== 0) {
      yield* migrateVmaFinalize(args);
      ret = -Errno.ENOMEM;
      break;
    }
    yield* migrateVmaPages(args);
    cpages += successfulMigratedPages(args);
    yield* migrateVmaFinalize(args);
  }
  yield* mm.mmapLock.upRead();
  yield* mmput(mm);
  cmd.cpages = cpages;
  return ret;
}

/**
 * Models dmirror_devmem_fault() (dev_pagemap_ops.migrate_to_ram): a CPU fault on a device-private
 * entry migrates the page (the whole folio when a PMD maps it) back to system memory.
 */
export function* dmirrorDevmemFault(mdevice: DmirrorDevice, vmf: VmFault): KGen<number> {
  const sys = mdevice.sys;
  const head = sys.phys.head(vmf.page);
  const rpage = mdevice.backing.get(head);
  const mirror = rpage === undefined ? undefined : mdevice.placedBy.get(rpage);
  if (mirror === undefined) {
    warn(sys, `dmirror_devmem_fault: device page ${vmf.page} has no mirror`);
    return VM_FAULT.SIGBUS;
  }
  let order = sys.phys.folioOrder(vmf.page);
  // A PTE-mapped part of a device folio migrates alone.
  if (!vmfPmdMapped(vmf)) order = 0;
  const len = PAGE_SIZE << order;
  const start = vmf.address - (vmf.address % len);
  const flags = selectDevice(mdevice) | (order > 0 ? MIGRATE_VMA_SELECT_COMPOUND : 0);
  const args = newMigrate(vmf.vma, mirror, start, start + len, flags);
  args.faultPage = vmf.page;
  if ((yield* migrateVmaSetup(args)) !== 0) return VM_FAULT.SIGBUS;
  const ret = yield* dmirrorDevmemFaultAllocAndCopy(args, mirror);
  if (ret !== 0) {
    yield* migrateVmaFinalize(args);
    return ret;
  }
  yield* migrateVmaPages(args);
  yield* migrateVmaFinalize(args);
  return 0;
}

/** Models dmirror_device_evict_chunk(): every page of the chunk still in use goes back to system memory. */
export function* dmirrorDeviceEvictChunk(chunk: DeviceMemory): KGen {
  const mdevice = chunk.owner as DmirrorDevice;
  const sys = mdevice.sys;
  const first = chunk.pgmap.firstPfn;
  const npages = chunk.pgmap.nrPages;
  const src = new Float64Array(npages);
  const dst = new Float64Array(npages);
  yield* migrateDeviceRange(sys, src, first, npages);
  let nofailReported = false;
  for (let i = 0; i < npages; i++) {
    const s = src[i];
    const spage = migratePfnToPage(s);
    if (spage < 0 || !has(s, MIGRATE_PFN_MIGRATE)) continue;
    if (!isDevicePrivatePage(sys, spage) && !isDeviceCoherentPage(sys, spage)) {
      warn(sys, `dmirror: evicting a page that is not device memory, pfn ${spage}`);
      continue;
    }
    // The kernel would still be retrying the allocation reported below: the rest of the chunk
    // stays on the device without another futile reclaim per page.
    if (nofailReported) continue;
    let order = sys.phys.folioOrder(spage);
    const data = backingPage(mdevice, spage);
    let dpage: number;
    if (has(s, MIGRATE_PFN_COMPOUND)) {
      dpage = yield* allocPageReclaim(sys, order, 'dmirror_evict_folio');
    } else {
      dpage = yield* allocPageReclaim(sys, 0, 'dmirror_evict_page');
      order = 0;
    }
    if (dpage < 0) {
      // The kernel allocates with __GFP_NOFAIL here: with nothing left to reclaim its allocator
      // retries for ever (the device's memory is backed by system RAM, so evicting it needs as
      // much free RAM again, and the OOM killer cannot free the pages this eviction holds). The
      // model reports that hang once and leaves the page on the device (the entry is restored).
      if (!nofailReported) {
        nofailReported = true;
        sys.sched.report({
          oracle: 'livelock',
          message: `__GFP_NOFAIL allocation never succeeds: dmirror_device_evict_chunk() of ${mdevice.name} needs an order-${order} page and no memory is left to reclaim`,
          thread: sys.sched.current?.name,
        });
      }
      continue;
    }
    lockPage(sys, dpage);
    dst[i] = migratePfn(dpage) + (has(s, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
    if (order > 0) dst[i] += MIGRATE_PFN_COMPOUND;
    if (data >= 0) copyPages(sys, dpage, data, 1 << order);
    else for (let j = 0; j < 1 << order; j++) sys.phys.clearPage(dpage + j);
  }
  yield* migrateDevicePages(sys, src, dst, npages);
  yield* migrateDeviceFinalize(sys, src, dst, npages);
}

/** Models dmirror_device_remove_chunks() (HMM_DMIRROR_RELEASE): evict and unmap all device memory. */
export function* dmirrorDeviceRemoveChunks(mdevice: DmirrorDevice): KGen {
  yield* mdevice.devmemLock.lock();
  for (const chunk of mdevice.chunks) yield* deviceMemoryRemove(chunk, dmirrorDeviceEvictChunk);
  mdevice.chunks.length = 0;
  mdevice.freeHint = 0;
  yield* mdevice.devmemLock.unlock();
}
