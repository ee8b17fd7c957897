/**
 * An in-kernel iommufd access user written on the driver SDK, shaped like a VFIO mdev driver:
 * the device attaches an access to an IOAS of the user's iommufd, pins IOVA ranges with
 * iommufd_access_pin_pages() for its DMA, and keeps the pins in a list under its lock.
 * iommufd calls the driver's unmap callback with each IOVA range it is about to unmap, and the
 * callback must drop every pin that overlaps it: the unmap cannot go on (and retries, then fails
 * with -EDEADLK) while any pinned page of the range remains.
 *
 * The bug (config `fixed: false`): the callback unpins only the pins contained in the range it
 * is given. iommufd reports the range one mapping (iopt area) at a time, so a pin that straddles
 * two adjacent mappings is contained in neither and is never dropped: the unmap of those
 * mappings gets stuck. The fix (config `fixed: true`) unpins every pin that overlaps the range,
 * as iommufd's contract asks (unpin any page in the range; an unpin must match its pin exactly,
 * so the whole pin goes).
 */
import {
  Errno,
  iommufdAccessAttach,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessDetach,
  iommufdAccessPinPages,
  iommufdAccessUnpinPages,
  iommufdCtxFromFd,
  defineIoctl,
  type DeviceDriver,
  type DriverMutex,
  type IommufdAccess,
  type IommufdAccessOps,
  type KGen,
} from 'hetmem';

interface Mdev {
  readonly fixed: boolean;
  nextFile: number;
}

interface Pin {
  readonly iova: number;
  readonly length: number;
}

/** One open file: its access and the pins it holds. */
interface MdevFile {
  readonly fixed: boolean;
  /** Guards `pins`; held across a pin and its recording, and by the unmap callback. */
  readonly lock: DriverMutex;
  readonly pins: Pin[];
  access: IommufdAccess | null;
}

/** iommufd_access_ops.unmap */
const accessOps: IommufdAccessOps<MdevFile> = {
  needsPinPages: true,
  *unmap(f, iova, length): KGen {
    yield* f.lock.lock();
    const end = iova + length;
    for (let i = f.pins.length - 1; i >= 0; i--) {
      const p = f.pins[i];
      const hit = f.fixed
        ? p.iova < end && p.iova + p.length > iova // overlaps the range
        : p.iova >= iova && p.iova + p.length <= end; // the bug: only pins inside it
      if (!hit || f.access === null) continue;
      yield* iommufdAccessUnpinPages(f.access, p.iova, p.length);
      f.pins.splice(i, 1);
    }
    yield* f.lock.unlock();
  },
};

const MDEV_ATTACH = defineIoctl<MdevFile, { iommufd: 'u64'; ioas_id: 'u32' }>({
  doc: "Creates the device's access on the iommufd `iommufd` and attaches it to IOAS ioas_id.",
  in: { iommufd: 'u64', ioas_id: 'u32' },
  *handler(file, arg, dev) {
    const f = file.priv;
    if (f.access !== null) return -Errno.EBUSY;
    const ictx = iommufdCtxFromFd(dev.sys, arg.iommufd);
    if (ictx === null) return -Errno.EBADF;
    const access = iommufdAccessCreate(ictx, accessOps, f);
    if (typeof access === 'number') return access;
    const ret = yield* iommufdAccessAttach(access, arg.ioas_id);
    if (ret !== 0) {
      yield* iommufdAccessDestroy(access);
      return ret;
    }
    f.access = access;
    return 0;
  },
});

const MDEV_PIN = defineIoctl<MdevFile, { iova: 'u64'; length: 'u64' }>({
  doc: 'Pins [iova, iova + length) of the IOAS for DMA.',
  in: { iova: 'u64', length: 'u64' },
  *handler(file, arg) {
    const f = file.priv;
    if (f.access === null) return -Errno.EINVAL;
    const pfns: number[] = [];
    yield* f.lock.lock();
    const ret = yield* iommufdAccessPinPages(f.access, arg.iova, arg.length, pfns, 0);
    if (ret === 0) f.pins.push({ iova: arg.iova, length: arg.length });
    yield* f.lock.unlock();
    return ret;
  },
});

export const accessUserDriver: DeviceDriver<Mdev, MdevFile> = {
  name: 'mdev',
  *probe(_dev, config) {
    yield* [];
    return { fixed: config.fixed === true, nextFile: 0 };
  },
  *open(dev) {
    yield* [];
    return {
      fixed: dev.drvdata.fixed,
      lock: dev.mutex(`file${dev.drvdata.nextFile++}.lock`, {
        lockClass: 'mdev.pins_lock',
        guards: 'the list of pins',
      }),
      pins: [],
      access: null,
    };
  },
  *release(_dev, file) {
    const f = file.priv;
    if (f.access === null) return;
    // Detaching calls the unmap callback over the whole IOVA space first.
    yield* iommufdAccessDetach(f.access);
    yield* iommufdAccessDestroy(f.access);
    f.access = null;
  },
  ioctls: { MDEV_ATTACH, MDEV_PIN },
};
