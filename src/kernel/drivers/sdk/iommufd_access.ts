/**
 * In-kernel iommufd access users (drivers/iommu/iommufd/device.c, the API VFIO mdev drivers such
 * as the Intel GVT-g or s390 vfio-ap use): a driver reads and pins pages of an IOAS through an
 * iommufd_access and must drop every pin of a range when iommufd calls its unmap callback.
 *
 * The driver's ops get its own data first, as the kernel passes the `data` pointer given to
 * iommufd_access_create().
 */
import type { KGen } from '../../../sched/types.ts';
import {
  accessAttach,
  accessCreate,
  accessDestroy,
  accessDetach,
  accessPinPages,
  accessReplace,
  accessRw,
  accessUnpinPages,
  IommufdAccess,
} from '../../iommufd/device.ts';
import { iommufdCtxOf, type IommufdCtx } from '../../iommufd/main.ts';
import {
  IOMMUFD_ACCESS_RW_READ,
  IOMMUFD_ACCESS_RW_SLOW_PATH,
  IOMMUFD_ACCESS_RW_WRITE,
} from '../../iommufd/pages.ts';
import type { System } from '../../system.ts';

export {
  IommufdAccess,
  IOMMUFD_ACCESS_RW_READ,
  IOMMUFD_ACCESS_RW_SLOW_PATH,
  IOMMUFD_ACCESS_RW_WRITE,
  type IommufdCtx,
};

/** Models struct iommufd_access_ops. `P` is the driver's data passed to iommufd_access_create(). */
export interface IommufdAccessOps<P> {
  /** The driver pins pages (iommufd_access_pin_pages); it then must implement unmap. */
  readonly needsPinPages: boolean;
  /**
   * [iova, iova + length) is being unmapped from the IOAS: unpin every page of it the driver
   * pinned, before returning. It may sleep.
   */
  unmap(data: P, iova: number, length: number): KGen;
}

/** Models iommufd_ctx_from_fd(): the context behind an iommufd file descriptor, or null. */
export function iommufdCtxFromFd(sys: System, fd: number): IommufdCtx | null {
  return iommufdCtxOf(sys, fd);
}

/** Models iommufd_access_create(): an access of `ictx` whose callbacks get `data`; or -errno. */
export function iommufdAccessCreate<P>(
  ictx: IommufdCtx,
  ops: IommufdAccessOps<P>,
  data: P,
): IommufdAccess | number {
  return accessCreate(ictx, {
    needsPinPages: ops.needsPinPages,
    unmap: (iova, length) => ops.unmap(data, iova, length),
  });
}

/** Models iommufd_access_destroy(). */
export function* iommufdAccessDestroy(access: IommufdAccess): KGen {
  yield* accessDestroy(access);
}

/** Models iommufd_access_attach(). */
export function* iommufdAccessAttach(access: IommufdAccess, ioasId: number): KGen<number> {
  return yield* accessAttach(access, ioasId);
}

/** Models iommufd_access_replace(). */
export function* iommufdAccessReplace(access: IommufdAccess, ioasId: number): KGen<number> {
  return yield* accessReplace(access, ioasId);
}

/** Models iommufd_access_detach(): the unmap callback runs for the whole IOAS first. */
export function* iommufdAccessDetach(access: IommufdAccess): KGen {
  yield* accessDetach(access);
}

/** Models iommufd_access_pin_pages(): the PFNs of [iova, iova + length) into `out`; 0 or -errno. */
export function* iommufdAccessPinPages(
  access: IommufdAccess,
  iova: number,
  length: number,
  out: number[],
  flags: number,
): KGen<number> {
  return yield* accessPinPages(access, iova, length, out, flags);
}

/** Models iommufd_access_unpin_pages(): must match an earlier pin exactly. */
export function* iommufdAccessUnpinPages(access: IommufdAccess, iova: number, length: number): KGen {
  yield* accessUnpinPages(access, iova, length);
}

/** Models iommufd_access_rw(): copies between `data` and the IOAS at `iova`; 0 or -errno. */
export function* iommufdAccessRw(
  access: IommufdAccess,
  iova: number,
  data: Uint8Array,
  flags: number,
): KGen<number> {
  return yield* accessRw(access, iova, data, flags);
}
