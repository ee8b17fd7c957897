/**
 * Models drivers/iommu/iommufd/vfio_compat.c: the VFIO type1 container ioctls iommufd answers
 * on its own fd, served from the compat IOAS (IOMMU_VFIO_IOAS). Arguments are plain objects
 * with the VFIO field names (argsz, flags, vaddr, iova, size).
 */
import { PAGE_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { cutIova, disableLargePages, unmapAll, unmapIovaRange } from './io_pagetable.ts';
import { mapUserPages, type Ioas } from './ioas.ts';
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
    const start = Number(iova);
    const last = Number(iova + size - 1n);
    if (ioas.iopt.disableLargePages) {
      // type1 may cut a mapping: split at both ends first.
      const cuts = start !== 0 ? [start - 1, last] : [last];
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

function* getInfo(ictx: IommufdCtx, arg: unknown): KGen<number> {
  if (arg === null || typeof arg !== 'object') return -Errno.EFAULT;
  const a = arg as Record<string, unknown>;
  if (u32(a.argsz) < 16) return -Errno.EINVAL;
  const ioas = getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  yield* ioas.iopt.iovaRwsem.downRead();
  a.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
  a.iova_pgsizes = BigInt(ioas.iopt.disableLargePages ? PAGE_SIZE : PAGE_SIZE | (2 * 1024 * 1024));
  yield* ioas.iopt.iovaRwsem.upRead();
  ictx.putObject(ioas.obj);
  return 0;
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
