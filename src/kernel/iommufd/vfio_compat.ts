/**
 * Models drivers/iommu/iommufd/vfio_compat.c: the VFIO type1 container ioctls iommufd answers
 * on its own fd, served from the compat IOAS (IOMMU_VFIO_IOAS). Arguments are plain objects
 * with the VFIO field names (argsz, flags, vaddr, iova, size).
 */
import { PAGE_SIZE, ULONG_MAX } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { ceilDouble, floorDouble, lastOf, lastToU64 } from '../../lib/u64.ts';
import { cutIova, disableLargePages, unmapAll, unmapIovaRange } from './io_pagetable.ts';
import { mapUserPages, toU64, type Ioas } from './ioas.ts';
import { accessRemote } from './mm_glue.ts';
import { registerRawIoctl, type IommufdCtx } from './main.ts';
import {
  IOMMU_CACHE,
  IOMMU_READ,
  IOMMU_WRITE,
  u32,
  u64,
  U64_MAX,
  VFIO_API_VERSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
} from './uapi.ts';

/** Models get_compat_ioas(): the compat IOAS with a user reference, or -ENODEV. */
function getCompatIoas(ictx: IommufdCtx): Ioas | number {
  const ioas = ictx.vfioIoas;
  if (ioas === null || ioas.obj.users === 0) return -Errno.ENODEV;
  ioas.obj.users++;
  ioas.obj.shorttermUsers++;
  return ioas;
}

function* mapDma(ictx: IommufdCtx, arg: unknown): KGen<number> {
  if (arg === null || typeof arg !== 'object') return -Errno.EFAULT;
  const a = arg as Record<string, unknown>;
  if (u32(a.argsz) < 32) return -Errno.EINVAL;
  const flags = u32(a.flags);
  if ((flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) !== 0) return -Errno.EINVAL;
  const ioas = getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  let prot = IOMMU_CACHE;
  if ((flags & VFIO_DMA_MAP_FLAG_READ) !== 0) prot |= IOMMU_READ;
  if ((flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0) prot |= IOMMU_WRITE;
  const iova = u64(a.iova);
  const size = u64(a.size);
  let rc: number;
  if (iova >= U64_MAX || size >= U64_MAX) rc = -Errno.EOVERFLOW;
  else rc = yield* mapUserPages(ictx, ioas, Number(iova), u64(a.vaddr), size, prot, true);
  ictx.putObject(ioas.obj);
  return rc < 0 ? rc : 0;
}

function* unmapDma(ictx: IommufdCtx, arg: unknown): KGen<number> {
  if (arg === null || typeof arg !== 'object') return -Errno.EFAULT;
  const a = arg as Record<string, unknown>;
  if (u32(a.argsz) < 24) return -Errno.EINVAL;
  const flags = u32(a.flags);
  if ((flags & ~VFIO_DMA_UNMAP_FLAG_ALL) !== 0) return -Errno.EINVAL;
  const ioas = getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  const iova = u64(a.iova);
  const size = u64(a.size);
  let rc = 0;
  let unmapped = 0;
  if ((flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0) {
    if (iova !== 0n || size !== 0n) rc = -Errno.EINVAL;
    else {
      const r = yield* unmapAll(ioas.iopt);
      rc = r.rc;
      unmapped = r.unmapped;
    }
  } else if (size === 0n || iova + size - 1n >= U64_MAX) rc = -Errno.EINVAL;
  else {
    const start = ceilDouble(iova);
    const last = floorDouble(iova + size - 1n);
    if (ioas.iopt.disableLargePages) {
      // type1 may cut a mapping: split at both ends first.
      const cuts = start !== 0 ? [lastOf(start), last] : [last];
      rc = yield* cutIova(ioas.iopt, cuts);
    }
    if (rc === 0) {
      const r = yield* unmapIovaRange(ioas.iopt, start, last);
      rc = r.rc;
      unmapped = r.unmapped;
    }
  }
  ictx.putObject(ioas.obj);
  if (rc < 0) return rc;
  a.size = BigInt(unmapped);
  return 0;
}

function* setIommu(ictx: IommufdCtx, arg: unknown): KGen<number> {
  const type = u32(arg);
  if (type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU) return -Errno.EINVAL;
  const ioas = getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  let rc = 0;
  // Type1 can cut mappings, which needs every IOPTE to be PAGE_SIZE.
  if (type === VFIO_TYPE1_IOMMU) rc = yield* disableLargePages(ioas.iopt);
  ictx.putObject(ioas.obj);
  return rc;
}

/** sizeof(struct vfio_iommu_type1_info): argsz, flags, iova_pgsizes, cap_offset, pad. */
const INFO_SIZE = 24;
/** offsetofend(struct vfio_iommu_type1_info, iova_pgsizes): the pre-capability ABI. */
const INFO_MINSZ = 16;
/** sizeof(struct vfio_iommu_type1_info_dma_avail): header (id u16, version u16, next u32) + avail. */
const CAP_DMA_AVAIL_SIZE = 12;
/** sizeof(struct vfio_iommu_type1_info_cap_iova_range) without its flexible iova_ranges[]. */
const CAP_IOVA_HDR_SIZE = 16;
/** sizeof(struct vfio_iova_range): start, end (u64 each). */
const IOVA_RANGE_SIZE = 16;
const U32_MAX = 0xffffffff;

/**
 * Models iommufd_get_pagesizes(): the IO page sizes every domain of the IOAS supports; sizes
 * below PAGE_SIZE collapse to PAGE_SIZE (as VFIO does), and never less than the IOVA alignment.
 */
function getPagesizes(ioas: Ioas): bigint {
  const pageMask = ~BigInt(PAGE_SIZE - 1) & U64_MAX;
  let bitmap = U64_MAX;
  for (const d of ioas.iopt.domains) bitmap &= BigInt(d.pgsizeBitmap);
  if ((bitmap & ~pageMask & U64_MAX) !== 0n) {
    bitmap &= pageMask;
    bitmap |= BigInt(PAGE_SIZE);
  }
  const align = BigInt(ioas.iopt.iovaAlignment);
  return bitmap > align ? bitmap : align;
}

/** The holes of reserved_itree over [0, ULONG_MAX] (interval_tree_for_each_span, is_hole). */
function iovaHoles(ioas: Ioas): [bigint, bigint][] {
  const holes: [bigint, bigint][] = [];
  let cur = 0n;
  for (const n of ioas.iopt.reservedItree.overlapping(0, ULONG_MAX)) {
    const s = toU64(n.start);
    const l = lastToU64(n.last);
    if (s > cur) holes.push([cur, s - 1n]);
    if (l >= cur) cur = l + 1n;
    if (cur > U64_MAX) break;
  }
  if (cur <= U64_MAX) holes.push([cur, U64_MAX]);
  return holes;
}

/** A header of struct vfio_info_cap_header: id (u16), version (u16), next (u32). */
function capHeader(bytes: DataView, off: number, id: number, next: number): void {
  bytes.setUint16(off, id, true);
  bytes.setUint16(off + 2, 1, true);
  bytes.setUint32(off + 4, next, true);
}

/** What VFIO_IOMMU_GET_INFO stores: the info fields and the byte writes of the capability chain. */
interface InfoResult {
  argsz: number;
  flags: number;
  iovaPgsizes: bigint;
  capOffset: number;
  /** [offset from the user's struct, bytes]: the capability bytes, in the order they are stored. */
  writes: [number, Uint8Array][];
}

/**
 * Models the body of iommufd_vfio_iommu_get_info() under iova_rwsem: the DMA_AVAIL capability
 * then the IOVA_RANGE capability follow the struct, each stored only if the user's argsz has room
 * for it; the previous capability's `next` is linked only if argsz covers everything so far. The
 * returned argsz is what the whole chain needs, and cap_offset is set only when it all fit.
 */
function buildInfo(ioas: Ioas, argsz: number): InfoResult {
  const writes: [number, Uint8Array][] = [];
  let total = INFO_SIZE;
  let lastCap = -1;
  const fills: ((off: number, avail: number) => number)[] = [
    (off, avail) => {
      if (avail >= CAP_DMA_AVAIL_SIZE) {
        const b = new Uint8Array(CAP_DMA_AVAIL_SIZE);
        const v = new DataView(b.buffer);
        capHeader(v, 0, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 0);
        // iommufd has no fixed mapping limit; it reports U32_MAX as VFIO's largest value.
        v.setUint32(8, U32_MAX, true);
        writes.push([off, b]);
      }
      return CAP_DMA_AVAIL_SIZE;
    },
    (off, avail) => {
      const holes = iovaHoles(ioas);
      let nr = 0;
      for (const [start, last] of holes) {
        if (avail >= CAP_IOVA_HDR_SIZE + IOVA_RANGE_SIZE * (nr + 1)) {
          const b = new Uint8Array(IOVA_RANGE_SIZE);
          const v = new DataView(b.buffer);
          v.setBigUint64(0, start, true);
          v.setBigUint64(8, last, true);
          writes.push([off + CAP_IOVA_HDR_SIZE + IOVA_RANGE_SIZE * nr, b]);
        }
        nr++;
      }
      const size = CAP_IOVA_HDR_SIZE + IOVA_RANGE_SIZE * nr;
      if (avail >= size) {
        const b = new Uint8Array(CAP_IOVA_HDR_SIZE);
        const v = new DataView(b.buffer);
        capHeader(v, 0, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 0);
        v.setUint32(8, nr, true);
        writes.push([off, b]);
      }
      return size;
    },
  ];
  for (const fill of fills) {
    const capSize = argsz > total ? fill(total, argsz - total) : fill(total, 0);
    if (lastCap >= 0 && argsz >= total) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, total, true);
      writes.push([lastCap + 4, b]);
    }
    lastCap = total;
    total += capSize;
  }
  return {
    argsz: total,
    flags: VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
    iovaPgsizes: getPagesizes(ioas),
    capOffset: argsz >= total ? INFO_SIZE : 0,
    writes,
  };
}

/**
 * Models iommufd_vfio_iommu_get_info(). `arg` is the address of the user's struct (the C ABI:
 * the caps follow it in the same buffer), or a plain object { argsz, ... } which receives the
 * info fields only.
 */
function* getInfo(ictx: IommufdCtx, arg: unknown): KGen<number> {
  const mm = ictx.current.mm;
  if (mm === null) return -Errno.EFAULT;
  const uptr = typeof arg === 'number' || typeof arg === 'bigint' ? Number(arg) : -1;
  if (uptr < 0 && (arg === null || typeof arg !== 'object')) return -Errno.EFAULT;
  let argsz: number;
  if (uptr >= 0) {
    const head = new Uint8Array(INFO_MINSZ);
    if ((yield* accessRemote(ictx.sys, mm, uptr, head, false)) !== INFO_MINSZ) return -Errno.EFAULT;
    argsz = new DataView(head.buffer).getUint32(0, true);
  } else argsz = u32((arg as Record<string, unknown>).argsz);
  if (argsz < INFO_MINSZ) return -Errno.EINVAL;
  const minsz = Math.min(argsz, INFO_SIZE);
  const ioas = getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  yield* ioas.iopt.iovaRwsem.downRead();
  const info = buildInfo(ioas, argsz);
  let rc = 0;
  if (uptr >= 0) {
    for (const [off, bytes] of info.writes) {
      if ((yield* accessRemote(ictx.sys, mm, uptr + off, bytes, true)) !== bytes.length) {
        rc = -Errno.EFAULT;
        break;
      }
    }
    if (rc === 0) {
      const out = new Uint8Array(INFO_SIZE);
      const v = new DataView(out.buffer);
      v.setUint32(0, info.argsz, true);
      v.setUint32(4, info.flags, true);
      v.setBigUint64(8, info.iovaPgsizes, true);
      v.setUint32(16, info.capOffset, true);
      const part = out.subarray(0, minsz);
      if ((yield* accessRemote(ictx.sys, mm, uptr, part, true)) !== minsz) rc = -Errno.EFAULT;
    }
  } else {
    const a = arg as Record<string, unknown>;
    a.argsz = info.argsz;
    a.flags = info.flags;
    a.iova_pgsizes = info.iovaPgsizes;
    if (minsz >= 20) a.cap_offset = info.capOffset;
  }
  yield* ioas.iopt.iovaRwsem.upRead();
  ictx.putObject(ioas.obj);
  return rc;
}

function* checkExtension(ictx: IommufdCtx, arg: unknown): KGen<number> {
  switch (u32(arg)) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      return 1;
    case VFIO_DMA_CC_IOMMU: {
      const ioas = getCompatIoas(ictx);
      if (typeof ioas === 'number') return 0;
      ictx.putObject(ioas.obj);
      return 1;
    }
    default:
      return 0;
  }
}

registerRawIoctl('VFIO_GET_API_VERSION', function* () {
  return VFIO_API_VERSION;
});
registerRawIoctl('VFIO_CHECK_EXTENSION', checkExtension);
registerRawIoctl('VFIO_SET_IOMMU', setIommu);
registerRawIoctl('VFIO_IOMMU_MAP_DMA', mapDma);
registerRawIoctl('VFIO_IOMMU_UNMAP_DMA', unmapDma);
registerRawIoctl('VFIO_IOMMU_GET_INFO', getInfo);
