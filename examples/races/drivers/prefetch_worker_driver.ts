/**
 * A GPU written on the driver SDK whose files mirror their process through an
 * mmu_interval_notifier registered at open, with an asynchronous prefetch: GPU_PREFETCH queues a
 * work item that faults the range in on a worker (hmm_range_fault under the notifier's seq
 * protocol) and maps it on the device, and returns at once, as SVM drivers' prefetch and
 * deferred-fault workers do.
 *
 * The bug (config `fixed: false`): release() removes the notifier and tears the page table down
 * without stopping the work first. A prefetch still queued when the file is closed then runs
 * against the removed notifier (mmu_interval_read_begin on a notifier its driver may already
 * have freed): a use-after-free. The fix (config `fixed: true`) is the order every driver with
 * such a worker needs: cancel_work_sync() before mmu_interval_notifier_remove().
 */
import {
  DEV_PTE,
  DevicePageTable,
  Errno,
  HMM_PFN_REQ_FAULT,
  MmuIntervalNotifier,
  cancelWorkSync,
  defineIoctl,
  hmmRangeFaultLocked,
  initWork,
  invalidateUnderLock,
  mirrorOpen,
  mmgetNotZero,
  mmput,
  mmuIntervalNotifierRemove,
  queueWork,
  type Device,
  type DeviceDriver,
  type DriverMutex,
  type HmmRange,
  type KGen,
  type MmuIntervalNotifierOps,
  type WorkStruct,
} from 'hetmem';

const PAGE = 4096;

interface Gpu {
  readonly fixed: boolean;
  nextFile: number;
}

/** One open file: the notifier is the file's state (container_of), with its table and worker. */
class GpuFile extends MmuIntervalNotifier {
  pt: DevicePageTable | null = null;
  /** The page GPU_PREFETCH asked for. */
  prefetchAddr = 0;
  work: WorkStruct | null = null;
  constructor(
    readonly dev: Device<Gpu, GpuFile>,
    readonly lock: DriverMutex,
  ) {
    super();
  }
}

/** mmu_interval_notifier_ops.invalidate: zap the range's device PTEs under the page-table lock. */
const mirrorOps: MmuIntervalNotifierOps<GpuFile> = {
  invalidate: (file, range, curSeq) =>
    invalidateUnderLock(file, file.lock, range, curSeq, (start, end) => {
      file.pt?.zap(start, end);
    }),
};

/** The prefetch worker: fault the page in on the CPU side, then map it on the device. */
function* prefetch(file: GpuFile): KGen {
  if (!mmgetNotZero(file.mm)) return;
  const range: HmmRange = {
    notifier: file,
    notifierSeq: 0,
    start: file.prefetchAddr,
    end: file.prefetchAddr + PAGE,
    hmmPfns: new Uint32Array(2),
    defaultFlags: HMM_PFN_REQ_FAULT,
    pfnFlagsMask: 0,
    devPrivateOwner: file.dev,
  };
  if ((yield* hmmRangeFaultLocked(range, file.lock)) === 0) {
    file.pt?.map(range.start, range.hmmPfns[0], DEV_PTE.READ);
    yield* file.lock.unlock();
  }
  yield* mmput(file.mm);
}

const GPU_PREFETCH = defineIoctl<GpuFile, { addr: 'u64' }>({
  doc: 'Queues a prefetch of the page at addr onto the device; returns before it runs.',
  in: { addr: 'u64' },
  *handler(file, arg) {
    yield* [];
    const f = file.priv;
    if (f.work === null || arg.addr % PAGE !== 0) return -Errno.EINVAL;
    f.prefetchAddr = arg.addr;
    queueWork(f.work);
    return 0;
  },
});

export const prefetchWorkerDriver: DeviceDriver<Gpu, GpuFile> = {
  name: 'pfgpu',
  *probe(_dev, config) {
    yield* [];
    return { fixed: config.fixed === true, nextFile: 0 };
  },
  *open(dev, proc) {
    const n = dev.drvdata.nextFile++;
    const file = yield* mirrorOpen(dev, proc, {
      lock: {
        name: `pt_lock${n}`,
        lockClass: 'pfgpu.pt_lock',
        guards: "the device page table and the mirror's read_retry",
      },
      create: (lock) => new GpuFile(dev, lock),
      ops: mirrorOps,
    });
    if (typeof file === 'number') return file;
    file.pt = new DevicePageTable(dev, `${dev.name} pt${n}`, file.mm, file.lock);
    file.work = initWork(dev.sys.sched, `${dev.name}.prefetch${n}`, () => prefetch(file));
    return file;
  },
  *release(dev, file) {
    const f = file.priv;
    // The fix: no prefetch may run once the notifier is gone.
    if (dev.drvdata.fixed && f.work !== null) yield* cancelWorkSync(f.work);
    yield* mmuIntervalNotifierRemove(f);
    f.pt?.destroy();
    f.pt = null;
  },
  ioctls: { GPU_PREFETCH },
};
