/**
 * A GPU with replayable faults, written on the driver SDK: each open file mirrors its process
 * through an mmu_interval_notifier registered at open, and device accesses that miss post a
 * record to the fault buffer and stall until the driver replays. The buffer's interrupt (top
 * half) queues the fault handler (bottom half) on a worker; the handler services each record
 * with hmm_range_fault (hmmRangeFaultLocked: read_begin, fault, lock, read_retry) and replays.
 *
 * The bug (config `fixed: false`): the driver keeps its own "handler is running" flag so the
 * interrupt does not queue the work again, and clears the flag after the last replay without
 * looking at the ring once more. A fault that lands between the handler's final drain and the
 * flag reset finds the flag set, so nobody queues the handler: the access stalls for ever. It is
 * the lost-interrupt race every fault or IH ring consumer must close; amdgpu_ih_process() closes
 * it by re-reading the write pointer before it returns (its restart_ih label), which is what the
 * fixed variant (config `fixed: true`) does: it clears the flag, then re-checks the ring under
 * the same lock and queues itself again if anything arrived.
 */
import {
  DEV_PTE,
  Errno,
  DevicePageTable,
  FaultBuffer,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_WRITE,
  MmuIntervalNotifier,
  defineIoctl,
  deviceAccess,
  hmmRangeFaultLocked,
  invalidateUnderLock,
  mirrorOpen,
  mmgetNotZero,
  mmput,
  mmuIntervalNotifierRemove,
  queueWork,
  type Device,
  type DeviceDriver,
  type DeviceFault,
  type DriverMutex,
  type DriverSpinLock,
  type HmmRange,
  type KGen,
  type MmuIntervalNotifierOps,
  type Process,
} from 'hetmem';

interface Gpu {
  readonly faults: FaultBuffer;
  /** Guards `handling`. */
  readonly irqLock: DriverSpinLock;
  /** The handler is queued or running: the interrupt does not queue it again. */
  handling: boolean;
  readonly fixed: boolean;
  /** The open file of each page table (a fault record names the page table). */
  readonly files: Map<DevicePageTable, GpuFile>;
}

/** One open file: its mirror of the opener's mm (the notifier is the file's state, container_of). */
class GpuFile extends MmuIntervalNotifier {
  constructor(
    readonly dev: Device<Gpu, GpuFile>,
    readonly lock: DriverMutex,
    public pt: DevicePageTable | null = null,
  ) {
    super();
  }
}

/** mmu_interval_notifier_ops.invalidate: zap the range's device PTEs under the page-table lock. */
const gpuMirrorOps: MmuIntervalNotifierOps<GpuFile> = {
  invalidate: (file, range, curSeq) =>
    invalidateUnderLock(file, file.lock, range, curSeq, (start, end) => {
      file.pt?.zap(start, end);
    }),
};

/** Services one fault record: fault the page in on the CPU side and map it on the device. */
function* serviceFault(gpu: Gpu, f: DeviceFault): KGen {
  const file = gpu.files.get(f.pt);
  if (file === undefined || !mmgetNotZero(file.mm)) return;
  const write = f.access !== 'read';
  const range: HmmRange = {
    notifier: file,
    notifierSeq: 0,
    start: f.va,
    end: f.va + 4096,
    hmmPfns: new Uint32Array(2),
    defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    pfnFlagsMask: 0,
    devPrivateOwner: file.dev,
  };
  if ((yield* hmmRangeFaultLocked(range, file.lock)) === 0) {
    const writable = (range.hmmPfns[1] & HMM_PFN_WRITE) !== 0;
    f.pt.map(f.va, range.hmmPfns[0], DEV_PTE.READ | (writable ? DEV_PTE.WRITE | DEV_PTE.ATOMIC : 0));
    yield* file.lock.unlock();
  }
  yield* mmput(file.mm);
}

/** The bottom half: drain the ring, replay, and hand the ring back to the interrupt. */
function* faultHandler(gpu: Gpu, buf: FaultBuffer): KGen {
  for (let f = buf.pop(); f !== undefined; f = buf.pop()) yield* serviceFault(gpu, f);
  buf.replay();
  yield* gpu.irqLock.lock();
  gpu.handling = false;
  // The fix: a record that arrived after the drain above found `handling` set and raised no work.
  const more = gpu.fixed && buf.length > 0;
  if (more) gpu.handling = true;
  yield* gpu.irqLock.unlock();
  if (more) queueWork(buf.work);
}

/** The top half (atomic context): queue the handler unless the driver thinks it is running. */
function faultInterrupt(gpu: () => Gpu, buf: FaultBuffer): void {
  const g = gpu();
  if (g.handling) return;
  g.handling = true;
  queueWork(buf.work);
}

const GPU_READ = defineIoctl<GpuFile, { addr: 'u64' }, { value: 'u32' }>({
  doc: 'The device reads the 32-bit word at addr through its page table, faulting through the buffer.',
  in: { addr: 'u64' },
  out: { value: 'u32' },
  *handler(file, arg) {
    if (file.priv.pt === null) return -Errno.EINVAL;
    const word = new Uint8Array(4);
    const ret = yield* deviceAccess(file.priv.pt, arg.addr, 'read', word, file.priv.dev.drvdata.faults);
    arg.value = new DataView(word.buffer).getUint32(0, true);
    return ret;
  },
});

export const faultBufferDriver: DeviceDriver<Gpu, GpuFile> = {
  name: 'fbgpu',
  *probe(dev, config) {
    yield* [];
    // eslint-disable-next-line prefer-const -- the closures below need the binding before it is set
    let gpu: Gpu;
    const faults = new FaultBuffer(
      dev,
      'fault_buffer',
      16,
      (buf) => faultHandler(gpu, buf),
      (buf) => {
        faultInterrupt(() => gpu, buf);
      },
    );
    gpu = {
      faults,
      irqLock: dev.spinlock('irq_lock', { lockClass: 'fbgpu.irq_lock', guards: 'the handler-running flag' }),
      handling: false,
      fixed: config.fixed === true,
      files: new Map(),
    };
    return gpu;
  },
  *open(dev, proc: Process) {
    // The mirror is registered when the file is opened, before any device access can fault.
    const file = yield* mirrorOpen(dev, proc, {
      lock: {
        name: `pt_lock${dev.drvdata.files.size}`,
        lockClass: 'fbgpu.pt_lock',
        guards: "the device page table and the mirror's read_retry",
      },
      create: (lock) => new GpuFile(dev, lock),
      ops: gpuMirrorOps,
    });
    if (typeof file === 'number') return file;
    file.pt = new DevicePageTable(dev, `${dev.name} pt`, file.mm, file.lock);
    dev.drvdata.files.set(file.pt, file);
    return file;
  },
  *release(dev, file) {
    const f = file.priv;
    yield* mmuIntervalNotifierRemove(f);
    if (f.pt !== null) {
      dev.drvdata.files.delete(f.pt);
      f.pt.destroy();
      f.pt = null;
    }
  },
  ioctls: { GPU_READ },
};
