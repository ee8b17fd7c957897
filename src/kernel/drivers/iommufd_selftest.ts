/**
 * Models drivers/iommu/iommufd/selftest.c: the mock IOMMU (sub-page IO page size, a fixed
 * aperture, a PFN table that checks unmaps are supersets of maps), mock devices, and the
 * IOMMU_TEST_CMD operations the kernel selftests drive iommufd with.
 *
 * Both drivers of the module are on the public SDK. The mock IOMMU is an IOMMU driver: mock_ops
 * (struct iommu_ops) registered with iommu_device_register() on first use, as module init does,
 * its paging and nested domains with their iommu_domain_ops and dirty_ops, and the mock devices
 * probed onto it and bound to iommufd with iommufd_device_bind(). The access users the selftest
 * creates (IOMMU_TEST_OP_CREATE_ACCESS) are a device driver: the platform device
 * "iommufd_selftest", whose files are the accesses (anon_inode_getfd), with the SDK's
 * iommufd_access calls and the kernel's two static iommufd_access_ops. The IOMMU_TEST_CMD
 * handlers themselves are part of iommufd (selftest.c is built into it) and look objects up in
 * the context as the kernel's do.
 *
 * The command is a plain object { size, op, id, <union member>: {...} } with the kernel's field
 * names (e.g. { op: IOMMU_TEST_OP_MOCK_DOMAIN, id, mock_domain: {} }). User pointers (uptr) are
 * addresses in the calling process.
 */
import { ceilDouble, floorDouble, U64_MAX_BIG } from '../../lib/u64.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { File } from '../mm/mm_types.ts';
import type { System } from '../system.ts';
import {
  type Device,
  type DeviceDriver,
  deviceAnonFile,
  deviceByName,
  deviceFileOf,
  deviceRegister,
} from './sdk/device.ts';
import {
  IOMMUFD_ACCESS_RW_SLOW_PATH,
  IOMMUFD_ACCESS_RW_WRITE,
  type IommufdAccess,
  type IommufdAccessOps,
  iommufdAccessAttach,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessDetach,
  iommufdAccessPinPages,
  iommufdAccessReplace,
  iommufdAccessRw,
  iommufdAccessUnpinPages,
} from './sdk/iommufd_access.ts';
import type { DriverMutex } from './sdk/locks.ts';
import { allocPageReclaim } from './sdk/kernel_api.ts';
import {
  IOMMU_CAP_CACHE_COHERENCY,
  IOMMU_CAP_DIRTY_TRACKING,
  IOMMU_DIRTY_NO_CLEAR,
  type IommuDev,
  type IommuDevice,
  type IommuDirtyOps,
  type IommuDomain,
  type IommuDomainOps,
  type IommuOps,
  type IommufdDevice,
  type IommuUserData,
  type IommuUserDataArray,
  iommuDeviceByName,
  iommuDeviceRegister,
  iommuDomainHasDirtyOps,
  iommuDomainInit,
  iommuDomainPriv,
  iommuProbeDevice,
  iommufdCtxGet,
  iommufdCtxPut,
  iommufdDeviceAttach,
  iommufdDeviceBind,
  iommufdDeviceDev,
  iommufdDevicePasidAttach,
  iommufdDevicePasidDetach,
  iommufdDevicePasidReplace,
  iommufdDeviceReplace,
  iommufdDeviceUnbind,
  iommufdHwQueueDepend,
  iommufdHwQueueUndepend,
  iommufdViommuAllocMmap,
  iommufdViommuDestroyMmap,
  iommufdViommuFindDev,
  iommufdViommuGetVdevId,
  iommufdViommuReportEvent,
  viommuSetOps,
  type IommufdHwQueue,
  type IommufdViommu,
  type IommufdViommuOps,
} from './sdk/iommu.ts';
import { reserveIova } from '../iommufd/io_pagetable.ts';
import { getIoas } from '../iommufd/ioas.ts';
import { IommufdObject, registerIoctl, respond, type IommufdCtx, type Ucmd } from '../iommufd/main.ts';
import { deviceOf } from '../iommufd/device.ts';
import { anyHwptOf, hwptOf } from '../iommufd/hw_pagetable.ts';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  reportDeviceFault,
} from '../iommufd/fault.ts';
import { accessRemote, lookupPfn } from '../iommufd/mm_glue.ts';
import { setTempMemoryLimit } from '../iommufd/pages.ts';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  u32,
  u64,
} from '../iommufd/uapi.ts';
import '../iommufd/index.ts';
import { sideTable } from '../../lib/snapshot.ts';

export const IOMMU_TEST_OP_ADD_RESERVED = 1;
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
export const IOMMU_TEST_OP_MD_CHECK_MAP = 3;
export const IOMMU_TEST_OP_MD_CHECK_REFS = 4;
export const IOMMU_TEST_OP_CREATE_ACCESS = 5;
export const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES = 6;
export const IOMMU_TEST_OP_ACCESS_PAGES = 7;
export const IOMMU_TEST_OP_ACCESS_RW = 8;
export const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9;
export const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10;
export const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS = 11;
export const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12;
export const IOMMU_TEST_OP_DIRTY = 13;
export const IOMMU_TEST_OP_MD_CHECK_IOTLB = 14;
export const IOMMU_TEST_OP_TRIGGER_IOPF = 15;
export const IOMMU_TEST_OP_DEV_CHECK_CACHE = 16;
export const IOMMU_TEST_OP_TRIGGER_VEVENT = 17;
export const IOMMU_TEST_OP_PASID_ATTACH = 18;
export const IOMMU_TEST_OP_PASID_REPLACE = 19;
export const IOMMU_TEST_OP_PASID_DETACH = 20;
export const IOMMU_TEST_OP_PASID_CHECK_HWPT = 21;
/** iommufd_test.h: the PASID whose replace the mock fails. */
export const IOMMU_TEST_PASID_RESERVED = 1024;

export const MOCK_APERTURE_START = 1 << 24;
export const MOCK_APERTURE_LAST = 2 ** 31 - 1;
export const MOCK_IO_PAGE_SIZE = PAGE_SIZE / 2;
export const MOCK_HUGE_PAGE_SIZE = 512 * MOCK_IO_PAGE_SIZE;
export const MOCK_PASID_WIDTH = 20;

export const MOCK_FLAGS_ACCESS_WRITE = 1 << 0;
export const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;
export const MOCK_ACCESS_RW_WRITE = 1 << 0;
export const MOCK_ACCESS_RW_SLOW_PATH = 1 << 2;
export const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0;
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;
export const IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;
export const MOCK_DEV_CACHE_NUM = 4;
/** iommufd_test.h: nested mock domains and their user invalidation data. */
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
export const MOCK_NESTED_DOMAIN_IOTLB_NUM = 4;
export const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = MOCK_NESTED_DOMAIN_IOTLB_NUM - 1;
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
export const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1 << 0;
/** iommufd_test.h: the mock vIOMMU. */
export const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
export const MOCK_DEV_CACHE_ID_MAX = 3;
export const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
export const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
export const IOMMU_TEST_HW_QUEUE_MAX = 2;
/** sizeof(struct iommu_viommu_invalidate_selftest): { flags, vdev_id, cache_id }. */
export const VIOMMU_INVALIDATE_SELFTEST_SIZE = 12;
/** sizeof(struct iommu_viommu_selftest). */
export const VIOMMU_SELFTEST_SIZE = 24;
/** sizeof(struct iommu_hwpt_selftest): { iotlb }. */
export const HWPT_SELFTEST_SIZE = 4;
/** sizeof(struct iommu_hwpt_invalidate_selftest): { flags, iotlb_id }. */
export const HWPT_INVALIDATE_SELFTEST_SIZE = 8;
/** IOMMU_NO_PASID. */
const IOMMU_NO_PASID = 0;
const EBADE = 52;

/** Entry flag bits above the PFN (the kernel packs them into the xarray value). */
const MOCK_PFN_START_IOVA = 1;
const MOCK_PFN_LAST_IOVA = 1;
const MOCK_PFN_DIRTY_IOVA = 2;
const MOCK_PFN_HUGE_IOVA = 4;
const FLAG_MUL = 8;

/** Keys (IOVA pages) per chunk of the mock PFN table. */
const PFN_CHUNK_SHIFT = 12;
const PFN_CHUNK = 1 << PFN_CHUNK_SHIFT;
const PFN_CHUNK_MASK = PFN_CHUNK - 1;
/** Largest entry value the typed-array chunks hold exactly (they store value + 1). */
const PFN_VALUE_MAX = 2 ** 53 - 2;
/** Emptied chunks a table keeps for reuse (1 MiB of Float64Array). */
const PFN_SPARE_CHUNKS = 32;

/**
 * The mock domain's PFN table, keyed by IOVA page (iova / MOCK_IO_PAGE_SIZE), with the Map
 * operations it used to be (get/has/set/delete/size). Entries live in Float64Array chunks of
 * PFN_CHUNK keys (stored as value + 1; 0 means empty), so the map and unmap paths fill and clear
 * contiguous runs in one loop. Keys or values the chunks cannot hold exactly (non-integer,
 * negative, key >= 2^32) go to a side Map, which the bulk paths leave to the generic code.
 */
export class MockPfnTable {
  private readonly chunks: (Float64Array | undefined)[] = [];
  /** Live entries per chunk; a chunk is dropped when it empties. */
  private readonly used: number[] = [];
  private readonly other = new Map<number, number>();
  /** Emptied chunks kept for reuse (all zero). */
  private readonly spare: Float64Array[] = [];
  private count = 0;

  get size(): number {
    return this.count + this.other.size;
  }

  /** True if `key` can live in the chunks. */
  static fastKey(key: number): boolean {
    return key >>> 0 === key;
  }

  get(key: number): number | undefined {
    if (key >>> 0 === key) {
      const c = this.chunks[key >>> PFN_CHUNK_SHIFT];
      if (c !== undefined) {
        const v = c[key & PFN_CHUNK_MASK];
        if (v !== 0) return v - 1;
      }
    }
    return this.other.size === 0 ? undefined : this.other.get(key);
  }

  has(key: number): boolean {
    return this.get(key) !== undefined;
  }

  set(key: number, value: number): this {
    if (key >>> 0 === key && Number.isInteger(value) && value >= 0 && value <= PFN_VALUE_MAX) {
      if (this.other.size !== 0) this.other.delete(key);
      const c = this.chunkFor(key >>> PFN_CHUNK_SHIFT);
      const off = key & PFN_CHUNK_MASK;
      if (c[off] === 0) {
        this.used[key >>> PFN_CHUNK_SHIFT]++;
        this.count++;
      }
      c[off] = value + 1;
    } else {
      this.clearSlot(key);
      this.other.set(key, value);
    }
    return this;
  }

  delete(key: number): boolean {
    return this.clearSlot(key) || (this.other.size !== 0 && this.other.delete(key));
  }

  /**
   * Sets keys key0 .. key0+n-1 to v0 + 8*i + flags, calling onExisting(i) first for each key that
   * already had an entry. Returns false, changing nothing, if the run needs the generic path.
   */
  fillRun(key0: number, n: number, v0: number, flags: number, onExisting: (i: number) => void): boolean {
    if (this.other.size !== 0 || !MockPfnTable.fastKey(key0) || !MockPfnTable.fastKey(key0 + n - 1))
      return false;
    if (!Number.isInteger(v0) || v0 < 0 || v0 + (n + 1) * FLAG_MUL > PFN_VALUE_MAX) return false;
    let i = 0;
    while (i < n) {
      const key = key0 + i;
      const ci = key >>> PFN_CHUNK_SHIFT;
      const off = key & PFN_CHUNK_MASK;
      const c = this.chunkFor(ci);
      const m = Math.min(PFN_CHUNK - off, n - i);
      let added = 0;
      // Stored values are value + 1.
      let v = v0 + i * FLAG_MUL + flags + 1;
      for (let j = off, end = off + m; j < end; j++) {
        if (c[j] === 0) added++;
        else onExisting(i + j - off);
        c[j] = v;
        v += FLAG_MUL;
      }
      this.used[ci] += added;
      this.count += added;
      i += m;
    }
    return true;
  }

  /**
   * Erases keys key0 .. key0+n-1 in order, stopping at the first absent key. Returns the number
   * erased, or -1, changing nothing, if the range needs the generic path.
   */
  eraseRun(key0: number, n: number): number {
    if (this.other.size !== 0 || !MockPfnTable.fastKey(key0) || !MockPfnTable.fastKey(key0 + n - 1))
      return -1;
    let i = 0;
    while (i < n) {
      const key = key0 + i;
      const ci = key >>> PFN_CHUNK_SHIFT;
      const off = key & PFN_CHUNK_MASK;
      const c = this.chunks[ci];
      if (c === undefined) return i;
      const end = off + Math.min(PFN_CHUNK - off, n - i);
      let j = off;
      while (j < end && c[j] !== 0) c[j++] = 0;
      const removed = j - off;
      this.count -= removed;
      if ((this.used[ci] -= removed) === 0) this.dropChunk(ci);
      i += removed;
      if (j < end) return i;
    }
    return i;
  }

  private chunkFor(ci: number): Float64Array {
    let c = this.chunks[ci];
    if (c === undefined) {
      while (this.chunks.length < ci) {
        this.chunks.push(undefined);
        this.used.push(0);
      }
      c = this.spare.pop() ?? new Float64Array(PFN_CHUNK);
      if (ci === this.chunks.length) {
        this.chunks.push(c);
        this.used.push(0);
      } else {
        this.chunks[ci] = c;
        this.used[ci] = 0;
      }
    }
    return c;
  }

  /** Erases `key` from the chunks; true if it was there. */
  private clearSlot(key: number): boolean {
    if (key >>> 0 !== key) return false;
    const ci = key >>> PFN_CHUNK_SHIFT;
    const c = this.chunks[ci];
    if (c === undefined) return false;
    const off = key & PFN_CHUNK_MASK;
    if (c[off] === 0) return false;
    c[off] = 0;
    this.count--;
    if (--this.used[ci] === 0) this.dropChunk(ci);
    return true;
  }

  /** An emptied chunk (all zero) is kept for reuse, up to PFN_SPARE_CHUNKS of them. */
  private dropChunk(ci: number): void {
    const c = this.chunks[ci]!;
    this.chunks[ci] = undefined;
    if (this.spare.length < PFN_SPARE_CHUNKS) this.spare.push(c);
  }
}

/** Models struct mock_iommu_domain: one entry per MOCK_IO_PAGE_SIZE of IOVA. */
export class MockDomain {
  /** iova / MOCK_IO_PAGE_SIZE -> (paddr / MOCK_IO_PAGE_SIZE) * FLAG_MUL + flags. */
  readonly pfns = new MockPfnTable();
  dirtyTracking = false;
  readonly domain: IommuDomain;
  readonly sys: System;
  constructor(
    iommu: IommuDevice<MockDev>,
    readonly huge: boolean,
    dirty: boolean,
  ) {
    this.sys = iommu.sys;
    this.domain = iommuDomainInit(iommu, this, {
      type: 'paging',
      pgsizeBitmap: MOCK_IO_PAGE_SIZE | (huge ? MOCK_HUGE_PAGE_SIZE : 0),
      geometry: { apertureStart: MOCK_APERTURE_START, apertureEnd: MOCK_APERTURE_LAST },
      ops: mockDomainOps,
      dirtyOps: dirty ? mockDirtyOps : undefined,
    });
  }

  private warn(message: string): void {
    this.sys.sched.report({ oracle: 'iommufd', message: `mock domain ${this.domain.id}: ${message}` });
  }

  /** Models mock_domain_map_pages(). */
  mapPages(iova: number, paddr: number, pgsize: number, count: number): number {
    if (this.sys.inject.shouldFail('mock_map_pages')) return -Errno.ENOENT;
    // Fast path: the whole run in one loop over the table's chunks (same entries, same warnings).
    const n = count * (pgsize / MOCK_IO_PAGE_SIZE);
    if (Number.isInteger(n) && n > 0) {
      const key0 = iova / MOCK_IO_PAGE_SIZE;
      const ok = this.pfns.fillRun(
        key0,
        n,
        (paddr / MOCK_IO_PAGE_SIZE) * FLAG_MUL,
        pgsize !== MOCK_IO_PAGE_SIZE ? MOCK_PFN_HUGE_IOVA : 0,
        (i) => {
          this.warn(`map over an existing entry at ${iova + i * MOCK_IO_PAGE_SIZE}`);
        },
      );
      if (ok) {
        // MOCK_PFN_START_IOVA on the first entry, MOCK_PFN_LAST_IOVA on the last: the same bit,
        // which fillRun left clear, so adding it sets it.
        this.pfns.set(key0, this.pfns.get(key0)! + MOCK_PFN_START_IOVA);
        const lastKey = key0 + n - 1;
        if (n > 1) this.pfns.set(lastKey, this.pfns.get(lastKey)! + MOCK_PFN_LAST_IOVA);
        return 0;
      }
    }
    let flags = MOCK_PFN_START_IOVA;
    for (let c = count; c > 0; c--) {
      for (let cur = 0; cur !== pgsize; cur += MOCK_IO_PAGE_SIZE) {
        if (c === 1 && cur + MOCK_IO_PAGE_SIZE === pgsize) flags |= MOCK_PFN_LAST_IOVA;
        if (pgsize !== MOCK_IO_PAGE_SIZE) flags |= MOCK_PFN_HUGE_IOVA;
        const key = iova / MOCK_IO_PAGE_SIZE;
        if (this.pfns.has(key)) this.warn(`map over an existing entry at ${iova}`);
        this.pfns.set(key, (paddr / MOCK_IO_PAGE_SIZE) * FLAG_MUL + flags);
        iova += MOCK_IO_PAGE_SIZE;
        paddr += MOCK_IO_PAGE_SIZE;
        flags = 0;
      }
    }
    return 0;
  }

  /** Models mock_domain_unmap_pages() over the whole range the core unmaps. */
  unmapRange(iova: number, size: number): number {
    let done = 0;
    const n = size / MOCK_IO_PAGE_SIZE;
    if (Number.isInteger(n) && n > 0) {
      // Fast path: one loop over the table's chunks, then the warnings the generic loop gives, in
      // its order: the start mark (entry 0), then an empty entry or the end mark (entry n - 1).
      const key0 = iova / MOCK_IO_PAGE_SIZE;
      const first = this.pfns.get(key0);
      const last = this.pfns.get(key0 + n - 1);
      const erased = this.pfns.eraseRun(key0, n);
      if (erased >= 0) {
        if (erased > 0 && !this.huge && ((first! % FLAG_MUL) & MOCK_PFN_START_IOVA) === 0)
          this.warn(`unmap does not start at a map start (${iova})`);
        if (erased < n) this.warn(`unmap of an empty entry at ${iova + erased * MOCK_IO_PAGE_SIZE}`);
        else if (!this.huge && ((last! % FLAG_MUL) & MOCK_PFN_LAST_IOVA) === 0)
          this.warn(`unmap does not end at a map end (${iova + size})`);
        return erased * MOCK_IO_PAGE_SIZE;
      }
    }
    for (let i = 0; i < n; i++) {
      const key = iova / MOCK_IO_PAGE_SIZE + i;
      const ent = this.pfns.get(key);
      if (ent === undefined) {
        this.warn(`unmap of an empty entry at ${iova + i * MOCK_IO_PAGE_SIZE}`);
        break;
      }
      this.pfns.delete(key);
      if (!this.huge) {
        // iommufd must unmap exactly what it mapped: first and last entries carry the marks.
        if (i === 0 && ((ent % FLAG_MUL) & MOCK_PFN_START_IOVA) === 0)
          this.warn(`unmap does not start at a map start (${iova})`);
        if (i === n - 1 && ((ent % FLAG_MUL) & MOCK_PFN_LAST_IOVA) === 0)
          this.warn(`unmap does not end at a map end (${iova + size})`);
      }
      done += MOCK_IO_PAGE_SIZE;
    }
    return done;
  }

  /** Models mock_domain_iova_to_phys(). */
  iovaToPhys(iova: number): number {
    const ent = this.pfns.get(Math.floor(iova / MOCK_IO_PAGE_SIZE));
    if (ent === undefined) {
      this.warn(`iova_to_phys of an unmapped IOVA ${iova}`);
      return -1;
    }
    return Math.floor(ent / FLAG_MUL) * MOCK_IO_PAGE_SIZE + (iova % MOCK_IO_PAGE_SIZE);
  }

  /**
   * The physical address `iova` translates to and whether its dirty bit is set, or null if it is
   * not mapped. A read for views (the studio), unlike iova_to_phys() it reports nothing.
   */
  peek(iova: number): { phys: number; dirty: boolean } | null {
    const ent = this.pfns.get(Math.floor(iova / MOCK_IO_PAGE_SIZE));
    if (ent === undefined) return null;
    return {
      phys: Math.floor(ent / FLAG_MUL) * MOCK_IO_PAGE_SIZE + (iova % MOCK_IO_PAGE_SIZE),
      dirty: ((ent % FLAG_MUL) & MOCK_PFN_DIRTY_IOVA) !== 0,
    };
  }

  /** Models mock_domain_free(): anything still mapped is a leak. */
  free(): void {
    if (this.pfns.size > 0) this.warn(`freed with ${this.pfns.size} entries still mapped`);
  }

  setDirtyTracking(enable: boolean): number {
    this.dirtyTracking = enable;
    return 0;
  }

  /**
   * Models mock_domain_read_and_clear_dirty(): a read with a bitmap while tracking is off is
   * -EINVAL; without one (`record` null, the clear before enabling) the bits are cleared.
   */
  readAndClearDirty(
    iova: number,
    size: number,
    noClear: boolean,
    record: ((iova: number, len: number) => void) | null,
  ): number {
    if (!this.dirtyTracking && record !== null) return -Errno.EINVAL;
    let i = 0;
    while (i < size) {
      const cur = iova + i;
      const ent = this.pfns.get(cur / MOCK_IO_PAGE_SIZE);
      if (ent === undefined || ((ent % FLAG_MUL) & MOCK_PFN_DIRTY_IOVA) === 0) {
        i += MOCK_IO_PAGE_SIZE;
        continue;
      }
      const pg = ((ent % FLAG_MUL) & MOCK_PFN_HUGE_IOVA) !== 0 ? MOCK_HUGE_PAGE_SIZE : MOCK_IO_PAGE_SIZE;
      const head = cur - (cur % pg);
      record?.(head, pg);
      if (!noClear) {
        for (let a = head; a < head + pg; a += MOCK_IO_PAGE_SIZE) {
          const e = this.pfns.get(a / MOCK_IO_PAGE_SIZE);
          if (e !== undefined && ((e % FLAG_MUL) & MOCK_PFN_DIRTY_IOVA) !== 0)
            this.pfns.set(a / MOCK_IO_PAGE_SIZE, e - MOCK_PFN_DIRTY_IOVA);
        }
      }
      i = head + pg - iova;
    }
    return 0;
  }
}

/** Models mock_domain_nop_attach(): a device without dirty tracking refuses a dirty-tracking domain. */
function mockDomainNopAttach(domain: IommuDomain, dev: IommuDev<MockDev>): number {
  if (iommuDomainHasDirtyOps(domain) && (dev.priv.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0)
    return -Errno.EINVAL;
  // A nested domain of a vIOMMU needs the device's vDEVICE there: the guest's ID of the device.
  let viommu: MockViommu | null = null;
  let vdevId = 0n;
  const nested = mockNestedOf(domain);
  if (nested?.mockViommu != null) {
    viommu = nested.mockViommu;
    const id = iommufdViommuGetVdevId(viommu.core, dev);
    if (typeof id === 'number') return id;
    vdevId = id;
  }
  dev.priv.viommu = viommu;
  dev.priv.vdevId = vdevId;
  return 0;
}

/** The mock's default_domain_ops: mock_domain_map_pages, _unmap_pages, _iova_to_phys, _free. */
const mockDomainOps: IommuDomainOps<MockDomain, MockDev> = {
  attachDev: (mock, dev) => mockDomainNopAttach(mock.domain, dev),
  setDevPasid: (_mock, dev, pasid) => mockSetDevPasidNop(dev, pasid),
  mapPages: (mock, iova, paddr, pgsize, pgcount) => mock.mapPages(iova, paddr, pgsize, pgcount),
  unmapPages: (mock, iova, pgsize, pgcount) => mock.unmapRange(iova, pgsize * pgcount),
  iovaToPhys: (mock, iova) => mock.iovaToPhys(iova),
  free: (mock) => {
    mock.free();
  },
};

/** The mock's dirty_ops: mock_domain_set_dirty_tracking and mock_domain_read_and_clear_dirty. */
const mockDirtyOps: IommuDirtyOps<MockDomain> = {
  setDirtyTracking: (mock, enable) => mock.setDirtyTracking(enable),
  readAndClearDirty: (mock, iova, size, flags, dirty) =>
    mock.readAndClearDirty(
      iova,
      size,
      (flags & IOMMU_DIRTY_NO_CLEAR) !== 0,
      dirty.bitmap
        ? (a, l) => {
            dirty.record(a, l);
          }
        : null,
    ),
};

/** The mock behind a domain, or null for other drivers' domains. */
export function mockDomainOf(d: IommuDomain): MockDomain | null {
  return d.type === 'paging' ? iommuDomainPriv(d, mockDomainOps) : null;
}

/** Models struct mock_iommu_domain_nested: a stage-1 domain with a mock IOTLB of four entries. */
export class MockNestedDomain {
  readonly iotlb: number[];
  readonly domain: IommuDomain;
  constructor(
    iommu: IommuDevice<MockDev>,
    readonly parent: MockDomain,
    iotlb: number,
    /** The mock vIOMMU that allocated it (mock_nested->mock_viommu), or null. */
    readonly mockViommu: MockViommu | null = null,
  ) {
    this.iotlb = new Array<number>(MOCK_NESTED_DOMAIN_IOTLB_NUM).fill(iotlb);
    // A nested domain has no map/unmap of its own: the parent holds the IOVA space.
    this.domain = iommuDomainInit(iommu, this, { type: 'nested', ops: mockNestedOps });
  }

  /**
   * Models mock_domain_cache_invalidate_user(): each request zeroes one IOTLB entry (or all with
   * IOMMU_TEST_INVALIDATE_FLAG_ALL); the first bad request stops the walk, and entryNum says how
   * many were handled.
   */
  *cacheInvalidateUser(array: IommuUserDataArray): KGen<number> {
    let processed = 0;
    let rc = 0;
    if (array.type !== IOMMU_HWPT_INVALIDATE_DATA_SELFTEST) rc = -Errno.EINVAL;
    else {
      for (let i = 0; i < array.entryNum; i++) {
        // offsetofend(struct iommu_hwpt_invalidate_selftest, iotlb_id) is the whole struct.
        const got = yield* array.copyEntry(
          IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
          i,
          HWPT_INVALIDATE_SELFTEST_SIZE,
          HWPT_INVALIDATE_SELFTEST_SIZE,
        );
        if (typeof got === 'number') {
          rc = got;
          break;
        }
        const v = new DataView(got.buffer);
        const flags = v.getUint32(0, true);
        const id = v.getUint32(4, true);
        if ((flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) {
          rc = -Errno.EOPNOTSUPP;
          break;
        }
        if (id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX) {
          rc = -Errno.EINVAL;
          break;
        }
        if ((flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) this.iotlb.fill(0);
        else this.iotlb[id] = 0;
        processed++;
      }
    }
    array.entryNum = processed;
    return rc;
  }
}

/** The nested mock's domain_nested_ops: mock_domain_nop_attach, the user IOTLB invalidation. */
const mockNestedOps: IommuDomainOps<MockNestedDomain, MockDev> = {
  attachDev: (nested, dev) => mockDomainNopAttach(nested.domain, dev),
  setDevPasid: (_nested, dev, pasid) => mockSetDevPasidNop(dev, pasid),
  cacheInvalidateUser: (nested, array) => nested.cacheInvalidateUser(array),
  free: () => {},
};

/** The nested mock behind a domain, or null for other drivers' domains. */
function mockNestedOf(d: IommuDomain): MockNestedDomain | null {
  return d.type === 'nested' ? iommuDomainPriv(d, mockNestedOps) : null;
}

/** Models struct mock_dev: the driver data of a device on the mock bus. */
class MockDev {
  readonly cache: number[] = new Array<number>(MOCK_DEV_CACHE_NUM).fill(IOMMU_TEST_DEV_CACHE_DEFAULT);
  /** The vIOMMU of the nested domain the device is attached to, and its ID there. */
  viommu: MockViommu | null = null;
  vdevId = 0n;
  /** Models mdev->pasid_1024_fake_error: the second set_dev_pasid of PASID 1024 fails. */
  pasid1024FakeError = false;
  constructor(readonly flags: number) {}
}

/**
 * Models mock_domain_set_dev_pasid_nop(): PASID 1024 is the selftest's failing replace: its first
 * attach arms a fake error that the next set_dev_pasid returns (-ENOMEM) and clears.
 */
function mockSetDevPasidNop(dev: IommuDev<MockDev>, pasid: number): number {
  const mdev = dev.priv;
  if (pasid === IOMMU_TEST_PASID_RESERVED) {
    if (mdev.pasid1024FakeError) {
      mdev.pasid1024FakeError = false;
      return -Errno.ENOMEM;
    }
    mdev.pasid1024FakeError = true;
  }
  return 0;
}

/** Models struct mock_hw_queue. */
class MockHwQueue {
  constructor(
    readonly core: IommufdHwQueue,
    readonly index: number,
    readonly prev: MockHwQueue | null,
  ) {}
}

/** Models struct mock_viommu: a vIOMMU of the mock IOMMU over a mock nesting parent. */
class MockViommu {
  /** Models mock_viommu->page and mmap_offset: the two loopback pages userspace may mmap(). */
  page = -1;
  mmapOffset = 0;
  /** Models mock_viommu->hw_queue[IOMMU_TEST_HW_QUEUE_MAX]. */
  readonly hwQueue: (MockHwQueue | null)[] = new Array<MockHwQueue | null>(IOMMU_TEST_HW_QUEUE_MAX).fill(
    null,
  );
  constructor(
    readonly core: IommufdViommu,
    readonly iommu: IommuDevice<MockDev>,
    readonly s2Parent: MockDomain,
  ) {}
}

/** Models mock_viommu_alloc_domain_nested(). */
function* mockViommuAllocDomainNested(
  mv: MockViommu,
  flags: number,
  user: IommuUserData,
): KGen<IommuDomain | number> {
  if ((flags & ~IOMMU_HWPT_ALLOC_PASID) !== 0) return -Errno.EOPNOTSUPP;
  if (user.type !== IOMMU_HWPT_DATA_SELFTEST) return -Errno.EOPNOTSUPP;
  const cfg = yield* user.copyStruct(IOMMU_HWPT_DATA_SELFTEST, HWPT_SELFTEST_SIZE, HWPT_SELFTEST_SIZE);
  if (typeof cfg === 'number') return cfg;
  return new MockNestedDomain(mv.iommu, mv.s2Parent, new DataView(cfg.buffer).getUint32(0, true), mv).domain;
}

/**
 * Models mock_viommu_cache_invalidate(): every request is copied first (a bad array handles
 * none), then each zeroes one cache entry of the device the guest calls vdev_id (or all of them
 * with IOMMU_TEST_INVALIDATE_FLAG_ALL) until the first bad one.
 */
function* mockViommuCacheInvalidate(mv: MockViommu, array: IommuUserDataArray): KGen<number> {
  if (array.entryNum === 0 && array.type === IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST) {
    array.entryNum = 0;
    return 0;
  }
  const reqs: { flags: number; vdevId: number; cacheId: number }[] = [];
  for (let i = 0; i < array.entryNum; i++) {
    const got = yield* array.copyEntry(
      IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
      i,
      VIOMMU_INVALIDATE_SELFTEST_SIZE,
      1,
    );
    if (typeof got === 'number') {
      array.entryNum = 0;
      return got;
    }
    const v = new DataView(got.buffer);
    reqs.push({ flags: v.getUint32(0, true), vdevId: v.getUint32(4, true), cacheId: v.getUint32(8, true) });
  }
  let done = 0;
  let rc = 0;
  for (const req of reqs) {
    if ((req.flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) {
      rc = -Errno.EOPNOTSUPP;
      break;
    }
    if (req.cacheId > MOCK_DEV_CACHE_ID_MAX) {
      rc = -Errno.EINVAL;
      break;
    }
    const dev = iommufdViommuFindDev(mv.core, BigInt(req.vdevId));
    if (dev === null || dev.iommu.ops !== (mockOps as IommuOps<unknown>)) {
      rc = -Errno.EINVAL;
      break;
    }
    const mdev = dev.priv as MockDev;
    if ((req.flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) mdev.cache.fill(0);
    else mdev.cache[req.cacheId] = 0;
    done++;
  }
  array.entryNum = done;
  return rc;
}

/**
 * Models mock_hw_queue_init_phys(): queues are set up in index order, each depending on the one
 * before, and the core's physical address must be what the nesting parent translates the queue's
 * IOVA to.
 */
function mockHwQueueInitPhys(mv: MockViommu, hwQueue: IommufdHwQueue, index: number, basePa: number): number {
  if (index >= IOMMU_TEST_HW_QUEUE_MAX) return -Errno.EINVAL;
  if (mv.hwQueue[index] !== null) return -Errno.EEXIST;
  let prev: MockHwQueue | null = null;
  if (index > 0) {
    prev = mv.hwQueue[index - 1];
    if (prev === null) return -Errno.EIO;
  }
  if (basePa !== mv.s2Parent.iovaToPhys(Number(hwQueue.baseAddr))) return -Errno.EINVAL;
  const mq = new MockHwQueue(hwQueue, index, prev);
  if (prev !== null) iommufdHwQueueDepend(hwQueue, prev.core);
  mv.hwQueue[index] = mq;
  // Models mock_hw_queue_destroy().
  hwQueue.driverDestroy = () => {
    mv.hwQueue[index] = null;
    if (mq.prev !== null) iommufdHwQueueUndepend(hwQueue, mq.prev.core);
  };
  return 0;
}

/** Models mock_viommu_ops. */
const mockViommuOps: IommufdViommuOps<MockViommu> = {
  destroy: mockViommuDestroy,
  allocDomainNested: mockViommuAllocDomainNested,
  cacheInvalidate: mockViommuCacheInvalidate,
  /** Models mock_viommu_get_hw_queue_size(). */
  getHwQueueSize: (_mv, type) => (type === IOMMU_HW_QUEUE_TYPE_SELFTEST ? 1 : 0),
  hwQueueInitPhys: mockHwQueueInitPhys,
};

/**
 * Models mock_viommu_init(): with user data (struct iommu_viommu_selftest { in_data, out_data,
 * out_mmap_offset, out_mmap_length }) a page holding in_data is offered for mmap() and in_data
 * is looped back as out_data.
 */
function* mockViommuInit(
  dev: IommuDev<MockDev>,
  viommu: IommufdViommu,
  parent: IommuDomain,
  userData: IommuUserData | null,
): KGen<number> {
  const s2 = mockDomainOf(parent);
  if (s2 === null) return -Errno.EINVAL;
  const mv = new MockViommu(viommu, dev.iommu, s2);
  if (userData !== null) {
    // offsetofend(struct iommu_viommu_selftest, out_data).
    const got = yield* userData.copyStruct(IOMMU_VIOMMU_TYPE_SELFTEST, VIOMMU_SELFTEST_SIZE, 8);
    if (typeof got === 'number') return got;
    const v = new DataView(got.buffer);
    const inData = v.getUint32(0, true);
    const sys = dev.iommu.sys;
    // Two pages (__get_free_pages(..., 1)).
    const page = yield* allocPageReclaim(sys, 1, 'mock_viommu_init');
    if (page < 0) return -Errno.ENOMEM;
    sys.phys.clearPage(page);
    sys.phys.clearPage(page + 1);
    sys.phys.write(page, 0, got, 0, 4);
    mv.page = page;
    mv.mmapOffset = iommufdViommuAllocMmap(viommu, page * PAGE_SIZE, 2 * PAGE_SIZE);
    v.setUint32(4, inData, true);
    v.setBigUint64(8, BigInt(mv.mmapOffset), true);
    v.setBigUint64(16, BigInt(2 * PAGE_SIZE), true);
    const rc = yield* userData.copyStructToUser(IOMMU_VIOMMU_TYPE_SELFTEST, got, 8);
    if (rc < 0) {
      mockViommuDestroy(mv);
      return rc;
    }
  }
  viommuSetOps(viommu, mockViommuOps, mv);
  return 0;
}

/** Models mock_viommu_destroy(): the mmap region and its page go. */
function mockViommuDestroy(mv: MockViommu): void {
  if (mv.page < 0) return;
  iommufdViommuDestroyMmap(mv.core, mv.mmapOffset);
  mv.core.ictx.sys.phys.put(mv.page);
  mv.page = -1;
}

/** Models mock_domain_alloc_paging_flags(). */
function mockDomainAllocPagingFlags(
  dev: IommuDev<MockDev>,
  flags: number,
  userData: IommuUserData | null,
): IommuDomain | number {
  const dirty = (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
  const paging = IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID;
  if ((flags & ~paging) !== 0 || userData !== null) return -Errno.EOPNOTSUPP;
  if (dirty && (dev.priv.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0) return -Errno.EOPNOTSUPP;
  if (dev.iommu.sys.inject.shouldFail('mock_domain_alloc')) return -Errno.ENOMEM;
  return new MockDomain(dev.iommu, (dev.priv.flags & MOCK_FLAGS_DEVICE_HUGE_IOVA) !== 0, dirty).domain;
}

/** Models mock_domain_alloc_nested() / __mock_domain_alloc_nested(). */
function* mockDomainAllocNested(
  dev: IommuDev<MockDev>,
  parent: IommuDomain,
  flags: number,
  user: IommuUserData,
): KGen<IommuDomain | number> {
  if ((flags & ~IOMMU_HWPT_ALLOC_PASID) !== 0) return -Errno.EOPNOTSUPP;
  const mockParent = mockDomainOf(parent);
  if (mockParent === null) return -Errno.EINVAL;
  if (user.type !== IOMMU_HWPT_DATA_SELFTEST) return -Errno.EOPNOTSUPP;
  const cfg = yield* user.copyStruct(IOMMU_HWPT_DATA_SELFTEST, HWPT_SELFTEST_SIZE, HWPT_SELFTEST_SIZE);
  if (typeof cfg === 'number') return cfg;
  return new MockNestedDomain(dev.iommu, mockParent, new DataView(cfg.buffer).getUint32(0, true)).domain;
}

/** Models mock_ops: the mock IOMMU's struct iommu_ops. */
const mockOps: IommuOps<MockDev> = {
  name: 'iommufd_selftest',
  /** Models mock_domain_capable(). */
  capable(dev, cap) {
    if (cap === IOMMU_CAP_CACHE_COHERENCY) return true;
    if (cap === IOMMU_CAP_DIRTY_TRACKING) return (dev.priv.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) === 0;
    return false;
  },
  /**
   * Models mock_domain_hw_info(): struct iommu_test_hw_info { flags, test_reg }, for the default
   * type or IOMMU_HW_INFO_TYPE_SELFTEST; any other requested type is -EOPNOTSUPP.
   */
  hwInfo(_dev, type) {
    if (type !== 0 && type !== IOMMU_HW_INFO_TYPE_SELFTEST) return -Errno.EOPNOTSUPP;
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(4, 0xdeadbeef, true);
    return { data, type: IOMMU_HW_INFO_TYPE_SELFTEST };
  },
  domainAllocPagingFlags: mockDomainAllocPagingFlags,
  domainAllocNested: mockDomainAllocNested,
  /** Models mock_get_viommu_size(). */
  getViommuSize: (_dev, type) => (type === IOMMU_VIOMMU_TYPE_SELFTEST ? 1 : 0),
  /** The blocked domain's set_dev_pasid (a PASID detach) disarms the PASID 1024 fake error. */
  blockedSetDevPasid(dev, pasid) {
    if (pasid === IOMMU_TEST_PASID_RESERVED) dev.priv.pasid1024FakeError = false;
  },
  viommuInit: mockViommuInit,
};

const MOCK_IOMMU = 'iommufd_selftest_iommu';

/**
 * The mock IOMMU (mock_iommu_device), registered with mock_ops by the first test command that
 * needs it, as iommufd_test_init() does at module load.
 */
function mockIommu(sys: System): IommuDevice<MockDev> | number {
  const cur = iommuDeviceByName(sys, MOCK_IOMMU);
  if (cur !== null) return cur.ops === (mockOps as IommuOps<unknown>) ? cur : -Errno.ENODEV;
  return iommuDeviceRegister(sys, MOCK_IOMMU, mockOps);
}

/** Models struct selftest_obj (TYPE_IDEV): the handle userspace destroys to unplug the mock device. */
class SelftestObj {
  readonly obj: IommufdObject;
  idev: IommufdDevice | null = null;
  constructor(
    ictx: IommufdCtx,
    readonly mdev: IommuDev<MockDev>,
  ) {
    this.obj = new IommufdObject('SELFTEST', ictx, () => this.destroy());
  }

  *destroy(): KGen {
    if (this.idev !== null) yield* iommufdDeviceUnbind(this.idev);
    this.idev = null;
  }
}

const selftestObjs = sideTable<IommufdObject, SelftestObj>();

function sub(cmd: Record<string, unknown>, name: string): Record<string, unknown> {
  let s = cmd[name] as Record<string, unknown> | undefined;
  if (s === undefined || s === null || typeof s !== 'object') {
    s = {};
    cmd[name] = s;
  }
  return s;
}

/** Models iommufd_test_mock_domain() (MOCK_DOMAIN and MOCK_DOMAIN_FLAGS). */
function* testMockDomain(ucmd: Ucmd, member: string): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, member);
  const devFlags = member === 'mock_domain_flags' ? u32(m.dev_flags) : 0;
  if (
    (devFlags & ~(MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA | MOCK_FLAGS_DEVICE_PASID)) !==
    0
  )
    return -Errno.EINVAL;
  const iommu = mockIommu(ictx.sys);
  if (typeof iommu === 'number') return iommu;
  // Models mock_dev_create(): a device on the mock bus, probed onto the mock IOMMU.
  const mdev = iommuProbeDevice(iommu, `iommufd_mock${ictx.sys.nextId('mock_dev')}`, new MockDev(devFlags), {
    maxPasids: (devFlags & MOCK_FLAGS_DEVICE_PASID) !== 0 ? 2 ** MOCK_PASID_WIDTH : 0,
  });
  const sobj = new SelftestObj(ictx, mdev);
  let rc = ictx.objectAlloc(sobj.obj);
  if (rc < 0) return rc;
  selftestObjs.set(sobj.obj, sobj);
  const idev = iommufdDeviceBind(ictx, mdev);
  if (typeof idev === 'number') {
    ictx.abort(sobj.obj);
    return idev;
  }
  sobj.idev = idev;
  rc = yield* iommufdDeviceAttach(idev, u32(ucmd.cmd.id));
  if (rc < 0) {
    yield* iommufdDeviceUnbind(idev);
    ictx.abort(sobj.obj);
    return rc;
  }
  m.out_stdev_id = sobj.obj.id;
  m.out_hwpt_id = rc;
  m.out_idev_id = idev.obj.id;
  ictx.finalize(sobj.obj);
  return 0;
}

function getSelftest(ictx: IommufdCtx, id: number): SelftestObj | number {
  const obj = ictx.getObject(id, 'SELFTEST');
  if (typeof obj === 'number') return obj;
  return selftestObjs.get(obj)!;
}

function* testMockDomainReplace(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'mock_domain_replace');
  const sobj = getSelftest(ictx, u32(ucmd.cmd.id));
  if (typeof sobj === 'number') return sobj;
  const rc = sobj.idev === null ? -Errno.ENOENT : yield* iommufdDeviceReplace(sobj.idev, u32(m.pt_id));
  ictx.putObject(sobj.obj);
  if (rc < 0) return rc;
  m.pt_id = rc;
  return 0;
}

function* testAddReserved(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'add_reserved');
  const ioas = getIoas(ictx, u32(ucmd.cmd.id));
  if (typeof ioas === 'number') return ioas;
  const start = u64(m.start);
  const length = u64(m.length);
  yield* ioas.iopt.iovaRwsem.downWrite();
  // start + length - 1 in u64 arithmetic: a zero length at 0 wraps to ULONG_MAX (all of it).
  const last = (start + length - 1n) & U64_MAX_BIG;
  // A last below start (a zero length above 0, or a wrap) makes the kernel insert a node no
  // ordinary range can hold; the model records nothing for it (docs/fidelity.md).
  const rc = last < start ? 0 : reserveIova(ioas.iopt, ceilDouble(start), floorDouble(last), null);
  yield* ioas.iopt.iovaRwsem.upWrite();
  ictx.putObject(ioas.obj);
  return rc;
}

/** Models get_md_pagetable(): a paging HWPT whose domain is a mock domain. */
function getMdPagetable(ictx: IommufdCtx, id: number): { obj: IommufdObject; mock: MockDomain } | number {
  const obj = ictx.getObject(id, 'HWPT_PAGING');
  if (typeof obj === 'number') return obj;
  const mock = mockDomainOf(hwptOf(obj).domain);
  if (mock === null) {
    ictx.putObject(obj);
    return -Errno.EINVAL;
  }
  return { obj, mock };
}

/** Models iommufd_test_md_check_pa(). */
function* testMdCheckMap(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'check_map');
  let iova = Number(u64(m.iova));
  let length = Number(u64(m.length));
  let uptr = Number(u64(m.uptr));
  if (iova % MOCK_IO_PAGE_SIZE !== 0 || length % MOCK_IO_PAGE_SIZE !== 0 || uptr % MOCK_IO_PAGE_SIZE !== 0)
    return -Errno.EINVAL;
  const md = getMdPagetable(ictx, u32(ucmd.cmd.id));
  if (typeof md === 'number') return md;
  let rc = 0;
  for (; length > 0; length -= MOCK_IO_PAGE_SIZE) {
    const pfn = yield* lookupPfn(ictx.sys, ictx.current.mm, uptr);
    if (pfn < 0) {
      rc = pfn;
      break;
    }
    const ent = md.mock.pfns.get(iova / MOCK_IO_PAGE_SIZE);
    if (
      ent === undefined ||
      Math.floor(ent / FLAG_MUL) * MOCK_IO_PAGE_SIZE !== pfn * PAGE_SIZE + (uptr % PAGE_SIZE)
    ) {
      rc = -Errno.EINVAL;
      break;
    }
    iova += MOCK_IO_PAGE_SIZE;
    uptr += MOCK_IO_PAGE_SIZE;
  }
  ictx.putObject(md.obj);
  return rc;
}

/** Models iommufd_test_md_check_refs(): each non-compound page's pin count is `refs`. */
function* testMdCheckRefs(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'check_refs');
  let length = Number(u64(m.length));
  let uptr = Number(u64(m.uptr));
  const refs = u32(m.refs);
  if (length % PAGE_SIZE !== 0 || uptr % PAGE_SIZE !== 0) return -Errno.EINVAL;
  const phys = ictx.sys.phys;
  for (; length > 0; length -= PAGE_SIZE) {
    const pfn = yield* lookupPfn(ictx.sys, ictx.current.mm, uptr);
    if (pfn < 0) return pfn;
    const h = phys.head(pfn);
    if (phys.order[h] === 0 && Math.floor(phys.refcount[pfn] / 1024) !== refs) return -Errno.EIO;
    uptr += PAGE_SIZE;
  }
  return 0;
}

/** Models struct selftest_access: the private data of one access file. */
class SelftestAccess {
  access: IommufdAccess | null = null;
  readonly items = new Map<number, { iova: number; length: number }>();
  nextId = 0;
  constructor(
    readonly ictx: IommufdCtx,
    readonly lock: DriverMutex,
  ) {}
}

/**
 * Models iommufd_test_access_unmap() (iommufd_access_ops.unmap): drop every pinned item the
 * unmapped range touches.
 */
function* selftestAccessUnmap(st: SelftestAccess, iova: number, length: number): KGen {
  const last = iova + length - 1;
  yield* st.lock.lock();
  for (const [id, item] of [...st.items]) {
    if (iova > item.iova + item.length - 1 || last < item.iova) continue;
    st.items.delete(id);
    if (st.access !== null) yield* iommufdAccessUnpinPages(st.access, item.iova, item.length);
  }
  yield* st.lock.unlock();
}

/** The kernel's selftest_access_ops_pin and selftest_access_ops. */
const selftestAccessOpsPin: IommufdAccessOps<SelftestAccess> = {
  needsPinPages: true,
  unmap: selftestAccessUnmap,
};
const selftestAccessOps: IommufdAccessOps<SelftestAccess> = {
  needsPinPages: false,
  unmap: selftestAccessUnmap,
};

/** Models iommufd_test_staccess_release(): the last close of an access file. */
function* staccessRelease(_dev: Device<SelftestDevice, SelftestAccess>, file: File<SelftestAccess>): KGen {
  const st = file.priv;
  if (st.access !== null) {
    // Items left pinned are dropped by the detach's unmap callback.
    yield* iommufdAccessDetach(st.access);
    yield* iommufdAccessDestroy(st.access);
    st.access = null;
  }
  yield* iommufdCtxPut(st.ictx);
}

/** The driver data of the "iommufd_selftest" platform device. */
interface SelftestDevice {
  nextAccess: number;
}

/** The selftest module's platform device driver: its files are the accesses. */
const selftestDriver: DeviceDriver<SelftestDevice, SelftestAccess> = {
  name: 'iommufd_selftest',
  *probe() {
    yield* [];
    return { nextAccess: 0 };
  },
  release: staccessRelease,
};

const SELFTEST_DEVICE = 'iommufd_selftest';

/**
 * The "iommufd_selftest" platform device, registered by the first test command (the module's
 * init, run when the model first needs it). -ENODEV if the name is another device's.
 */
function* selftestDevice(sys: System): KGen<Device<SelftestDevice, SelftestAccess> | number> {
  const dev = deviceByName(sys, SELFTEST_DEVICE);
  if (dev !== null) {
    if (dev.driver !== (selftestDriver as DeviceDriver) || dev.state !== 'bound') return -Errno.ENODEV;
    return dev as Device<SelftestDevice, SelftestAccess>;
  }
  const r = yield* deviceRegister(sys, SELFTEST_DEVICE, selftestDriver);
  return typeof r === 'number' ? -Errno.ENODEV : r;
}

/** The access behind an access file's fd; -EBADF for any other fd. */
function getAccess(ictx: IommufdCtx, fd: number): SelftestAccess | number {
  const dev = deviceByName(ictx.sys, SELFTEST_DEVICE);
  if (dev?.driver !== (selftestDriver as DeviceDriver)) return -Errno.EBADF;
  const f = deviceFileOf(dev as Device<SelftestDevice, SelftestAccess>, fd);
  if (f === null || f.priv.access === null) return -Errno.EBADF;
  return f.priv;
}

/** Models iommufd_test_create_access(). */
function* testCreateAccess(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'create_access');
  const flags = u32(m.flags);
  if ((flags & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0) return -Errno.EOPNOTSUPP;
  const dev = yield* selftestDevice(ictx.sys);
  if (typeof dev === 'number') return dev;
  const n = dev.drvdata.nextAccess++;
  const lock = dev.mutex(`staccess${n}.lock`, {
    lockClass: 'staccess.lock',
    guards: 'the pinned items of the access',
  });
  const st = new SelftestAccess(ictx, lock);
  const ops = flags !== 0 ? selftestAccessOpsPin : selftestAccessOps;
  const access = iommufdAccessCreate(ictx, ops, st);
  if (typeof access === 'number') return access;
  st.access = access;
  const rc = yield* iommufdAccessAttach(access, u32(ucmd.cmd.id));
  if (rc < 0) {
    yield* iommufdAccessDestroy(access);
    return rc;
  }
  iommufdCtxGet(ictx);
  m.out_access_fd = deviceAnonFile(dev, '[iommufd_test_staccess]', st);
  return 0;
}

function* testAccessReplaceIoas(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'access_replace_ioas');
  const st = getAccess(ictx, u32(ucmd.cmd.id));
  if (typeof st === 'number') return st;
  return yield* iommufdAccessReplace(st.access!, u32(m.ioas_id));
}

function* testAccessPages(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'access_pages');
  const st = getAccess(ictx, u32(ucmd.cmd.id));
  if (typeof st === 'number') return st;
  const flags = u32(m.flags);
  if ((flags & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ)) !== 0) return -Errno.EOPNOTSUPP;
  if (!st.access!.ops.needsPinPages) return -Errno.EOPNOTSUPP;
  const iova = Number(u64(m.iova));
  const length = Number(u64(m.length));
  const uptr = Number(u64(m.uptr));
  if (length > 16 * 1024 * 1024) return -Errno.ENOMEM;
  if (ictx.sys.inject.shouldFail('selftest_access_pages_alloc')) return -Errno.ENOMEM;
  yield* st.lock.lock();
  const pfns: number[] = [];
  let rc = yield* iommufdAccessPinPages(
    st.access!,
    iova,
    length,
    pfns,
    (flags & MOCK_FLAGS_ACCESS_WRITE) !== 0 ? IOMMUFD_ACCESS_RW_WRITE : 0,
  );
  if (rc === 0 && uptr !== 0) {
    for (let i = 0; i < pfns.length; i++) {
      const p = yield* lookupPfn(ictx.sys, ictx.current.mm, uptr + i * PAGE_SIZE);
      if (p < 0) {
        rc = p;
        break;
      }
      if (p !== pfns[i]) {
        rc = -EBADE;
        break;
      }
    }
    if (rc < 0) yield* iommufdAccessUnpinPages(st.access!, iova, length);
  }
  if (rc === 0) {
    const id = st.nextId++;
    st.items.set(id, { iova, length });
    m.out_access_pages_id = id;
  }
  yield* st.lock.unlock();
  return rc;
}

function* testDestroyAccessPages(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'destroy_access_pages');
  const st = getAccess(ictx, u32(ucmd.cmd.id));
  if (typeof st === 'number') return st;
  const id = u32(m.access_pages_id);
  yield* st.lock.lock();
  const item = st.items.get(id);
  let rc = 0;
  if (item === undefined) rc = -Errno.ENOENT;
  else {
    st.items.delete(id);
    yield* iommufdAccessUnpinPages(st.access!, item.iova, item.length);
  }
  yield* st.lock.unlock();
  return rc;
}

function* testAccessRw(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'access_rw');
  const st = getAccess(ictx, u32(ucmd.cmd.id));
  if (typeof st === 'number') return st;
  const flags = u32(m.flags);
  if ((flags & ~(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ)) !== 0)
    return -Errno.EOPNOTSUPP;
  const iova = Number(u64(m.iova));
  const length = Number(u64(m.length));
  const uptr = Number(u64(m.uptr));
  if (length > 16 * 1024 * 1024) return -Errno.ENOMEM;
  const buf = new Uint8Array(length);
  let kflags = 0;
  if ((flags & MOCK_ACCESS_RW_WRITE) !== 0) kflags |= IOMMUFD_ACCESS_RW_WRITE;
  if ((flags & MOCK_ACCESS_RW_SLOW_PATH) !== 0) kflags |= IOMMUFD_ACCESS_RW_SLOW_PATH;
  const mm = ictx.current.mm;
  if (mm === null) return -Errno.EFAULT;
  let rc: number;
  if ((kflags & IOMMUFD_ACCESS_RW_WRITE) !== 0) {
    if ((yield* accessRemote(ictx.sys, mm, uptr, buf, false)) !== length) return -Errno.EFAULT;
    rc = yield* iommufdAccessRw(st.access!, iova, buf, kflags);
  } else {
    rc = yield* iommufdAccessRw(st.access!, iova, buf, kflags);
    if (rc === 0 && (yield* accessRemote(ictx.sys, mm, uptr, buf, true)) !== length) rc = -Errno.EFAULT;
  }
  return rc;
}

/** Models iommufd_test_dirty(): marks the entries the user bitmap names as dirty. */
function* testDirty(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'dirty');
  const iova = Number(u64(m.iova));
  const length = Number(u64(m.length));
  const pageSize = Number(u64(m.page_size));
  const uptr = Number(u64(m.uptr));
  if (pageSize === 0 || length === 0 || iova % pageSize !== 0 || length % pageSize !== 0 || uptr === 0)
    return -Errno.EINVAL;
  const md = getMdPagetable(ictx, u32(ucmd.cmd.id));
  if (typeof md === 'number') return md;
  let rc = 0;
  if (!md.mock.dirtyTracking) rc = -Errno.EINVAL;
  else {
    const nbits = length / pageSize;
    const bitmap = new Uint8Array(Math.ceil(nbits / 8));
    if ((yield* accessRemote(ictx.sys, ictx.current.mm, uptr, bitmap, false)) !== bitmap.length)
      rc = -Errno.EFAULT;
    else {
      let count = 0;
      for (let b = 0; b < nbits; b++) {
        if ((bitmap[b >> 3] & (1 << (b & 7))) === 0) continue;
        const key = (iova + b * pageSize) / MOCK_IO_PAGE_SIZE;
        const ent = md.mock.pfns.get(key);
        if (ent === undefined) continue;
        if (((ent % FLAG_MUL) & MOCK_PFN_DIRTY_IOVA) === 0) md.mock.pfns.set(key, ent + MOCK_PFN_DIRTY_IOVA);
        count++;
      }
      m.out_nr_dirty = BigInt(count);
    }
  }
  ictx.putObject(md.obj);
  return rc;
}

/** Models iommufd_test_md_check_iotlb(): entry `id` of a nested mock domain's IOTLB is `iotlb`. */
function* testMdCheckIotlb(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'check_iotlb');
  const obj = ictx.getObject(u32(ucmd.cmd.id), 'HWPT_NESTED');
  if (typeof obj === 'number') return obj;
  const nested = mockNestedOf(anyHwptOf(obj).domain);
  let rc = 0;
  if (nested === null) rc = -Errno.EINVAL;
  else {
    const id = u32(m.id);
    if (id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX || nested.iotlb[id] !== u32(m.iotlb)) rc = -Errno.EINVAL;
  }
  ictx.putObject(obj);
  return rc;
}

/** Models iommufd_test_trigger_iopf(): the mock device raises a last-page page request. */
function* testTriggerIopf(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'trigger_iopf');
  const obj = ictx.getObject(u32(m.dev_id), 'DEVICE');
  if (typeof obj === 'number') return obj;
  const pasid = u32(m.pasid);
  let flags = IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
  if (pasid !== IOMMU_NO_PASID) flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
  yield* reportDeviceFault(deviceOf(obj), {
    flags,
    pasid,
    grpid: u32(m.grpid),
    perm: u32(m.perm),
    addr: u64(m.addr),
  });
  ictx.putObject(obj);
  return 0;
}

function* testDevCheckCache(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'check_dev_cache');
  const obj = ictx.getObject(u32(ucmd.cmd.id), 'DEVICE');
  if (typeof obj === 'number') return obj;
  const dev = iommufdDeviceDev(deviceOf(obj));
  const mdev = dev?.iommu.ops === (mockOps as IommuOps<unknown>) ? (dev.priv as MockDev) : null;
  const id = u32(m.id);
  let rc = 0;
  if (mdev === null || id >= MOCK_DEV_CACHE_NUM || mdev.cache[id] !== u32(m.cache)) rc = -Errno.EINVAL;
  ictx.putObject(obj);
  return rc;
}

/**
 * Models iommufd_test_trigger_vevent(): the mock device reports struct
 * iommu_viommu_event_selftest { virt_id } to the vIOMMU of the nested domain it is attached to.
 */
function* testTriggerVevent(ucmd: Ucmd): KGen<number> {
  const { ictx, user } = ucmd;
  const m = sub(user, 'trigger_vevent');
  const obj = ictx.getObject(u32(m.dev_id), 'DEVICE');
  if (typeof obj === 'number') return obj;
  const dev = iommufdDeviceDev(deviceOf(obj));
  const mdev = dev?.iommu.ops === (mockOps as IommuOps<unknown>) ? (dev.priv as MockDev) : null;
  let rc = -Errno.ENOENT;
  if (mdev?.viommu != null && mdev.vdevId !== 0n) {
    const event = new Uint8Array(4);
    new DataView(event.buffer).setUint32(0, Number(mdev.vdevId & 0xffffffffn), true);
    rc = yield* iommufdViommuReportEvent(mdev.viommu.core, IOMMU_VEVENTQ_TYPE_SELFTEST, event);
  }
  ictx.putObject(obj);
  return rc;
}

/** The bound device of the selftest object `id` (IOMMU_TEST_OP_PASID_*), or -errno. */
function pasidIdev(ictx: IommufdCtx, id: number): { sobj: SelftestObj; idev: IommufdDevice } | number {
  const sobj = getSelftest(ictx, id);
  if (typeof sobj === 'number') return sobj;
  if (sobj.idev === null) {
    ictx.putObject(sobj.obj);
    return -Errno.ENOENT;
  }
  return { sobj, idev: sobj.idev };
}

/** Models iommufd_test_pasid_attach() / _replace() / _detach(). */
function* testPasid(ucmd: Ucmd, op: 'attach' | 'replace' | 'detach'): KGen<number> {
  yield* [];
  const { ictx, user } = ucmd;
  const m = sub(user, `pasid_${op}`);
  const r = pasidIdev(ictx, u32(ucmd.cmd.id));
  if (typeof r === 'number') return r;
  const pasid = u32(m.pasid);
  let rc = 0;
  if (op === 'attach') rc = yield* iommufdDevicePasidAttach(r.idev, pasid, u32(m.pt_id));
  else if (op === 'replace') rc = yield* iommufdDevicePasidReplace(r.idev, pasid, u32(m.pt_id));
  else yield* iommufdDevicePasidDetach(r.idev, pasid);
  ictx.putObject(r.sobj.obj);
  return rc;
}

/**
 * Models iommufd_test_pasid_check_hwpt(): the domain `pasid` translates through is the one of
 * HWPT `hwpt_id`, or none for hwpt_id 0.
 */
function* testPasidCheckHwpt(ucmd: Ucmd): KGen<number> {
  yield* [];
  const { ictx, user } = ucmd;
  const m = sub(user, 'pasid_check');
  const r = pasidIdev(ictx, u32(ucmd.cmd.id));
  if (typeof r === 'number') return r;
  const attached = r.idev.pasids.get(u32(m.pasid)) ?? null;
  const hwptId = u32(m.hwpt_id);
  let rc = 0;
  if (hwptId === 0) {
    if (attached !== null) rc = -Errno.EINVAL;
  } else {
    const obj = ictx.getObject(hwptId, ['HWPT_PAGING', 'HWPT_NESTED']);
    if (typeof obj === 'number') rc = obj;
    else {
      if (attached?.domain !== anyHwptOf(obj).domain) rc = -Errno.EINVAL;
      ictx.putObject(obj);
    }
  }
  ictx.putObject(r.sobj.obj);
  return rc;
}

/** Models iommufd_test(): dispatch of IOMMU_TEST_CMD by op. */
function* iommufdTest(ucmd: Ucmd): KGen<number> {
  const { cmd, user } = ucmd;
  let rc: number;
  switch (cmd.op) {
    case IOMMU_TEST_OP_ADD_RESERVED:
      return yield* testAddReserved(ucmd);
    case IOMMU_TEST_OP_MOCK_DOMAIN:
      rc = yield* testMockDomain(ucmd, 'mock_domain');
      break;
    case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
      rc = yield* testMockDomain(ucmd, 'mock_domain_flags');
      break;
    case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
      return yield* testMockDomainReplace(ucmd);
    case IOMMU_TEST_OP_MD_CHECK_MAP:
      return yield* testMdCheckMap(ucmd);
    case IOMMU_TEST_OP_MD_CHECK_REFS:
      return yield* testMdCheckRefs(ucmd);
    case IOMMU_TEST_OP_CREATE_ACCESS:
      return yield* testCreateAccess(ucmd);
    case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS:
      return yield* testAccessReplaceIoas(ucmd);
    case IOMMU_TEST_OP_ACCESS_PAGES:
      return yield* testAccessPages(ucmd);
    case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES:
      return yield* testDestroyAccessPages(ucmd);
    case IOMMU_TEST_OP_ACCESS_RW:
      return yield* testAccessRw(ucmd);
    case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: {
      const limit = u32(sub(user, 'memory_limit').limit);
      if (limit < 12) return -Errno.EINVAL;
      setTempMemoryLimit(ucmd.ictx.sys, limit);
      return 0;
    }
    case IOMMU_TEST_OP_DIRTY:
      return yield* testDirty(ucmd);
    case IOMMU_TEST_OP_DEV_CHECK_CACHE:
      return yield* testDevCheckCache(ucmd);
    case IOMMU_TEST_OP_MD_CHECK_IOTLB:
      return yield* testMdCheckIotlb(ucmd);
    case IOMMU_TEST_OP_TRIGGER_IOPF:
      return yield* testTriggerIopf(ucmd);
    case IOMMU_TEST_OP_TRIGGER_VEVENT:
      return yield* testTriggerVevent(ucmd);
    case IOMMU_TEST_OP_PASID_ATTACH:
      return yield* testPasid(ucmd, 'attach');
    case IOMMU_TEST_OP_PASID_REPLACE:
      return yield* testPasid(ucmd, 'replace');
    case IOMMU_TEST_OP_PASID_DETACH:
      return yield* testPasid(ucmd, 'detach');
    case IOMMU_TEST_OP_PASID_CHECK_HWPT:
      return yield* testPasidCheckHwpt(ucmd);
    default:
      return -Errno.EOPNOTSUPP;
  }
  if (rc === 0) respond(ucmd);
  return rc;
}

registerIoctl('IOMMU_TEST_CMD', iommufdTest);
