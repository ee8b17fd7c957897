/**
 * An on-demand-paging DMA device (shaped like an RDMA ODP driver) written on the driver SDK: each
 * open file mirrors its process through an mmu_interval_notifier, faults user pages in with
 * hmm_range_fault, DMA-maps them (dma_map_page) and keeps the bus addresses in a table under its
 * lock. The invalidate callback unmaps the DMA of every page in the range (dma_unmap_page)
 * before the core may free them.
 *
 * DEV_READ makes the device read a word of a user page by DMA. The bug (config `fixed: false`):
 * the driver looks the bus address up under its lock but starts the device's DMA after dropping
 * it, so an invalidation in that window unmaps the address first and the device reads through a
 * DMA mapping that no longer exists (with an IOMMU: a fault at best, another page at worst). The
 * fix (config `fixed: true`) keeps the lock until the DMA is done, as the invalidation must wait
 * for in-flight device access to the range it unmaps.
 */
import {
  DMA,
  Errno,
  HMM_PFN_REQ_FAULT,
  MmuIntervalNotifier,
  defineIoctl,
  deviceDmaRw,
  dmaMapPage,
  dmaMappingError,
  dmaUnmapPage,
  hmmRangeFaultLocked,
  invalidateUnderLock,
  mirrorOpen,
  mmgetNotZero,
  mmput,
  mmuIntervalNotifierRemove,
  type Device,
  type DeviceDriver,
  type DriverMutex,
  type HmmRange,
  type KGen,
  type MmuIntervalNotifierOps,
} from 'hetmem';

/** The user part of the address space the mirror covers (128 TiB). */
const USER_SPAN = 2 ** 47;
const PAGE = 4096;

interface Odp {
  readonly fixed: boolean;
  nextFile: number;
}

/** One open file: its mirror (container_of) and the bus address of each mapped page, by VA. */
class OdpFile extends MmuIntervalNotifier {
  /** Guards `dma`; the invalidate callback takes it. */
  readonly dma = new Map<number, number>();
  constructor(
    readonly dev: Device<Odp, OdpFile>,
    readonly lock: DriverMutex,
  ) {
    super();
  }
}

/** Unmaps the DMA of every page of [start, end). Caller holds the file's lock. */
function unmapRange(f: OdpFile, start: number, end: number): void {
  for (const [va, addr] of [...f.dma]) {
    if (va < start || va >= end) continue;
    dmaUnmapPage(f.dev, addr);
    f.dma.delete(va);
  }
}

/** mmu_interval_notifier_ops.invalidate: unmap the range's DMA under the lock. */
const odpOps: MmuIntervalNotifierOps<OdpFile> = {
  invalidate: (f, range, curSeq) =>
    invalidateUnderLock(f, f.lock, range, curSeq, (start, end) => {
      unmapRange(f, start, end);
    }),
};

/** Faults the page at `va` in and DMA-maps it. Returns the bus address with the lock HELD, or -errno. */
function* mapPage(f: OdpFile, va: number): KGen<number> {
  const range: HmmRange = {
    notifier: f,
    notifierSeq: 0,
    start: va,
    end: va + PAGE,
    hmmPfns: new Uint32Array(2),
    defaultFlags: HMM_PFN_REQ_FAULT,
    pfnFlagsMask: 0,
    devPrivateOwner: f.dev,
  };
  const ret = yield* hmmRangeFaultLocked(range, f.lock);
  if (ret !== 0) return ret;
  let addr = f.dma.get(va);
  if (addr === undefined) {
    addr = dmaMapPage(f.dev, range.hmmPfns[0], DMA.TO_DEVICE);
    if (dmaMappingError(addr)) {
      yield* f.lock.unlock();
      return -Errno.ENOMEM;
    }
    f.dma.set(va, addr);
  }
  return addr;
}

const DEV_READ = defineIoctl<OdpFile, { addr: 'u64' }, { value: 'u32' }>({
  doc: 'The device reads the 32-bit word at addr by DMA, faulting and mapping the page first.',
  in: { addr: 'u64' },
  out: { value: 'u32' },
  *handler(file, arg) {
    const f = file.priv;
    if (!mmgetNotZero(f.mm)) return -Errno.ESRCH;
    const off = arg.addr % PAGE;
    const addr = yield* mapPage(f, arg.addr - off);
    if (addr < 0) {
      yield* mmput(f.mm);
      return addr;
    }
    // The bug: the lock goes before the device is done with the address.
    if (!f.dev.drvdata.fixed) yield* f.lock.unlock();
    yield { kind: 'step', label: 'device starts its DMA' };
    const word = new Uint8Array(4);
    const ret = deviceDmaRw(f.dev, addr, off, word, false);
    if (f.dev.drvdata.fixed) yield* f.lock.unlock();
    arg.value = new DataView(word.buffer).getUint32(0, true);
    yield* mmput(f.mm);
    return ret;
  },
});

export const dmaWindowDriver: DeviceDriver<Odp, OdpFile> = {
  name: 'odp',
  *probe(_dev, config) {
    yield* [];
    return { fixed: config.fixed === true, nextFile: 0 };
  },
  open: (dev, proc) =>
    mirrorOpen(dev, proc, {
      lock: {
        name: `dma_lock${dev.drvdata.nextFile++}`,
        lockClass: 'odp.dma_lock',
        guards: "the table of DMA addresses and the mirror's read_retry",
      },
      create: (lock) => new OdpFile(dev, lock),
      ops: odpOps,
    }),
  *release(_dev, file) {
    const f = file.priv;
    yield* mmuIntervalNotifierRemove(f);
    yield* f.lock.lock();
    unmapRange(f, 0, USER_SPAN);
    yield* f.lock.unlock();
  },
  ioctls: { DEV_READ },
};
