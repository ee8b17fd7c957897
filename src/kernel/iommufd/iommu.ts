/**
 * The slice of the IOMMU core (drivers/iommu/iommu.c) iommufd relies on: struct iommu_domain
 * with its page-size bitmap and aperture, iommu_map()/iommu_unmap() splitting a range into the
 * page sizes the driver supports, iommu_iova_to_phys(), and the dirty-tracking ops.
 */
import type { KGen } from '../../sched/types.ts';
import type { System } from '../system.ts';

/** Models struct iommu_dirty_ops. */
export interface IommuDirtyOps {
  setDirtyTracking(enable: boolean): number;
  /**
   * Reports dirty IOVA ranges in [iova, iova+size) through `record`; clears them unless noClear.
   * `record` null is a struct iommu_dirty_bitmap without a bitmap (iopt_clear_dirty_data()
   * before tracking is enabled): the bits are only cleared.
   */
  readAndClearDirty(
    iova: number,
    size: number,
    noClear: boolean,
    record: ((iova: number, len: number) => void) | null,
  ): number;
}

/** Models struct iommu_domain_ops, as implemented by a driver. */
export interface IommuDomainOps {
  /** Models map_pages(): maps `count` pages of `pgsize` at iova -> paddr. 0 or -errno. */
  mapPages(iova: number, paddr: number, pgsize: number, count: number, prot: number): number;
  /** Models unmap_pages() over a whole range the core asks to unmap; returns bytes unmapped. */
  unmapRange(iova: number, size: number): number;
  /** Models iova_to_phys(): the physical address, or -1 if nothing is mapped there. */
  iovaToPhys(iova: number): number;
  /** Models domain_free(). */
  free(): void;
}

/**
 * Models struct iommu_user_data: driver data userspace passed with an allocation. copyStruct()
 * is iommu_copy_struct_from_user(): `ksize` bytes (zero-extended) or -errno.
 */
export interface IommuUserData {
  readonly type: number;
  readonly len: number;
  copyStruct(dataType: number, ksize: number, minLen: number): KGen<Uint8Array | number>;
  /** Models iommu_copy_struct_to_user(): the driver's struct back to the user; 0 or -errno. */
  copyStructToUser(dataType: number, data: Uint8Array, minLen: number): KGen<number>;
}

/**
 * Models struct iommu_user_data_array: an array of driver entries (cache invalidation requests).
 * copyEntry() is iommu_copy_struct_from_user_array(); the driver stores how many entries it
 * handled in entryNum.
 */
export interface IommuUserDataArray {
  readonly type: number;
  readonly entryLen: number;
  entryNum: number;
  copyEntry(dataType: number, index: number, ksize: number, minLen: number): KGen<Uint8Array | number>;
}

/** Models struct iommu_domain (paging domains, and the nested domains of HWPT_NESTED). */
export class IommuDomain {
  dirtyOps: IommuDirtyOps | null = null;
  /** IOMMU_DOMAIN_UNMANAGED (a paging domain) or IOMMU_DOMAIN_NESTED (stage-1 over a parent). */
  type: 'paging' | 'nested' = 'paging';
  /** Models domain->iopf_handler: the HWPT has a fault queue (iommufd_fault_iopf_handler). */
  iopfHandler = false;
  /** Models the cache_invalidate_user op of a nested domain, or null. */
  cacheInvalidateUser: ((array: IommuUserDataArray) => KGen<number>) | null = null;
  constructor(
    readonly sys: System,
    readonly id: number,
    /** Bitmap of supported IO page sizes (each a power of two). */
    readonly pgsizeBitmap: number,
    readonly apertureStart: number,
    readonly apertureEnd: number,
    readonly ops: IommuDomainOps,
    readonly owner: string,
  ) {}
}

function pgsizes(bitmap: number): number[] {
  const out: number[] = [];
  for (let s = 1; s <= bitmap && s > 0 && s <= 2 ** 40; s *= 2)
    if (Math.floor(bitmap / s) % 2 === 1) out.push(s);
  return out;
}

/** Smallest page size of a domain (1 << __ffs(pgsize_bitmap)). */
export function minPgsize(d: IommuDomain): number {
  return pgsizes(d.pgsizeBitmap)[0];
}

/**
 * Models iommu_pgsize(): the largest supported size that `iova | paddr` is aligned to and that fits
 * in `size`, and how many of them to map before a larger size could take over.
 */
export function pickPgsize(
  d: IommuDomain,
  iova: number,
  paddr: number,
  size: number,
): { pgsize: number; count: number } {
  const sizes = pgsizes(d.pgsizeBitmap);
  let pg = sizes[0];
  let next = 0;
  for (const s of sizes) {
    if (s <= size && iova % s === 0 && paddr % s === 0) pg = s;
    else if (s > pg && next === 0) next = s;
  }
  let count = Math.floor(size / pg);
  if (next !== 0) {
    // Stop where iova and paddr would both be aligned to the next bigger size.
    const off = next - (iova % next);
    if ((iova + off) % next === 0 && (paddr + off) % next === 0 && off < size && size - off >= next) {
      count = Math.min(count, Math.max(1, off / pg));
    }
  }
  return { pgsize: pg, count: Math.max(1, count) };
}

/** Models iommu_map(): 0 or -errno; on failure whatever was mapped by this call is unmapped. */
export function iommuMap(d: IommuDomain, iova: number, paddr: number, size: number, prot: number): number {
  let done = 0;
  while (done < size) {
    const { pgsize, count } = pickPgsize(d, iova + done, paddr + done, size - done);
    const rc = d.ops.mapPages(iova + done, paddr + done, pgsize, count, prot);
    if (rc < 0) {
      if (done > 0) d.ops.unmapRange(iova, done);
      return rc;
    }
    done += pgsize * count;
  }
  return 0;
}

/** Models iommu_unmap(): bytes unmapped. */
export function iommuUnmap(d: IommuDomain, iova: number, size: number): number {
  return d.ops.unmapRange(iova, size);
}

/** Models iommu_iova_to_phys(). */
export function iommuIovaToPhys(d: IommuDomain, iova: number): number {
  return d.ops.iovaToPhys(iova);
}
