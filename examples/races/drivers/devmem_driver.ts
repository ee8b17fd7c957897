/**
 * A GPU with device-private memory, written on the driver SDK: probe() memremaps 64 pages with
 * the driver's dev_pagemap_ops; each open file mirrors its process through an interval notifier
 * registered at open; GPU_MIGRATE moves pages to device memory and maps them in the device page
 * table; a CPU touch of a migrated page calls the driver's migrate_to_ram, which moves it back.
 *
 * Like test_hmm and nouveau, the notifier ignores MIGRATE invalidations whose owner is this
 * device: the driver started those migrations and keeps its page table right itself. That makes
 * migrate_to_ram responsible for the device mapping of the page it sends back.
 *
 * The bug (config `fixed: false`): migrate_to_ram migrates the page but leaves the device PTE in
 * place. Once the migration completes, the CPU maps a new system page while the device still maps
 * the device page, which the migration then frees: the device reads stale, freed memory. The fix
 * (test_hmm's dmirror_devmem_fault_alloc_and_copy erases the device PTE of each page it copies
 * back) zaps the device PTE under the page-table lock after the page is collected and before
 * migrate_vma_pages() releases it.
 */
import {
  DEV_PTE,
  DevicePageTable,
  Errno,
  MMU_NOTIFY,
  MmuIntervalNotifier,
  VM_FAULT,
  defineIoctl,
  deviceAccess,
  deviceMemoryRemove,
  devmMemremapPages,
  migrateToDevice,
  migrateToRamOne,
  migratePfnToPage,
  invalidateUnderLock,
  mirrorOpen,
  mmgetNotZero,
  mmput,
  mmuIntervalNotifierRemove,
  type Device,
  type DeviceDriver,
  type DeviceMemory,
  type DriverMutex,
  type KGen,
  type MmStruct,
  type MmuIntervalNotifierOps,
  type VmFault,
} from 'hetmem';

const PAGE_SIZE = 4096;

interface Gpu {
  mem: DeviceMemory;
  readonly fixed: boolean;
  /** The open file mirroring each mm (migrate_to_ram finds the mirror by the faulting mm). */
  readonly mirrors: Map<MmStruct, GpuFile>;
}

class GpuFile extends MmuIntervalNotifier {
  pt: DevicePageTable | null = null;
  constructor(
    readonly dev: Device<Gpu, GpuFile>,
    readonly lock: DriverMutex,
  ) {
    super();
  }
}

const mirrorOps: MmuIntervalNotifierOps<GpuFile> = {
  *invalidate(file, range, curSeq) {
    // Our own migrations keep the page table right themselves.
    if (range.event === MMU_NOTIFY.MIGRATE && range.owner === file.dev) return true;
    return yield* invalidateUnderLock(file, file.lock, range, curSeq, (start, end) => {
      file.pt?.zap(start, end);
    });
  },
};

/** dev_pagemap_ops.migrate_to_ram: a CPU fault on one of our device-private pages. */
function* migrateToRam(gpu: Gpu, vmf: VmFault): KGen<number> {
  const file = gpu.mirrors.get(vmf.vma.mm);
  if (file === undefined) return VM_FAULT.SIGBUS;
  return yield* migrateToRamOne(gpu.mem, vmf, function* () {
    if (!gpu.fixed || file.pt === null) return;
    yield* file.lock.lock();
    file.pt.zap(vmf.address - (vmf.address % PAGE_SIZE), vmf.address - (vmf.address % PAGE_SIZE) + PAGE_SIZE);
    yield* file.lock.unlock();
  });
}

const GPU_MIGRATE = defineIoctl<GpuFile, { addr: 'u64'; npages: 'u64' }, { cpages: 'u64' }>({
  doc: 'Migrates npages at addr to device memory and maps them on the device.',
  in: { addr: 'u64', npages: 'u64' },
  out: { cpages: 'u64' },
  *handler(file, arg) {
    const f = file.priv;
    const mm = f.mm;
    if (arg.addr % PAGE_SIZE !== 0 || arg.npages === 0) return -Errno.EINVAL;
    if (!mmgetNotZero(mm)) return -Errno.EINVAL;
    yield* mm.mmapLock.downRead();
    const end = arg.addr + arg.npages * PAGE_SIZE;
    const vma = mm.vmaLookup(arg.addr);
    let ret = 0;
    if (vma === null || end > vma.end) ret = -Errno.EFAULT;
    else {
      const moved = yield* migrateToDevice(f.dev.drvdata.mem, vma, arg.addr, end, function* (args) {
        if (f.pt === null) return;
        yield* f.lock.lock();
        for (let i = 0; i < args.npages; i++) {
          const dpage = migratePfnToPage(args.dst[i]);
          if (dpage >= 0) f.pt.map(arg.addr + i * PAGE_SIZE, dpage, DEV_PTE.READ | DEV_PTE.WRITE);
        }
        yield* f.lock.unlock();
      });
      if (moved < 0) ret = moved;
      else arg.cpages = moved;
    }
    yield* mm.mmapLock.upRead();
    yield* mmput(mm);
    return ret;
  },
});

const GPU_READ = defineIoctl<GpuFile, { addr: 'u64' }, { value: 'u32' }>({
  doc: 'The device reads the 32-bit word at addr through its page table (-EFAULT if not mapped).',
  in: { addr: 'u64' },
  out: { value: 'u32' },
  *handler(file, arg) {
    if (file.priv.pt === null) return -Errno.EINVAL;
    const word = new Uint8Array(4);
    const ret = yield* deviceAccess(file.priv.pt, arg.addr, 'read', word);
    arg.value = new DataView(word.buffer).getUint32(0, true);
    return ret;
  },
});

export const devmemDriver: DeviceDriver<Gpu, GpuFile> = {
  name: 'dmgpu',
  *probe(dev, config) {
    yield* [];
    const gpu: Partial<Gpu> & { fixed: boolean; mirrors: Map<MmStruct, GpuFile> } = {
      fixed: config.fixed === true,
      mirrors: new Map(),
    };
    const mem = devmMemremapPages(dev, {
      type: 'private',
      nrPages: 64,
      ops: {
        folioFree(pfn, order) {
          gpu.mem?.freePage(pfn, order);
        },
        migrateToRam: (vmf) => migrateToRam(gpu as Gpu, vmf),
      },
    });
    if (typeof mem === 'number') return mem;
    gpu.mem = mem;
    return gpu as Gpu;
  },
  *remove(dev) {
    yield* deviceMemoryRemove(dev.drvdata.mem);
  },
  *open(dev, proc) {
    const file = yield* mirrorOpen(dev, proc, {
      lock: {
        name: `pt_lock${dev.drvdata.mirrors.size}`,
        lockClass: 'dmgpu.pt_lock',
        guards: "the device page table and the mirror's read_retry",
      },
      create: (lock) => new GpuFile(dev, lock),
      ops: mirrorOps,
    });
    if (typeof file === 'number') return file;
    file.pt = new DevicePageTable(dev, `${dev.name} pt`, file.mm, file.lock);
    dev.drvdata.mirrors.set(file.mm, file);
    return file;
  },
  *release(dev, file) {
    const f = file.priv;
    yield* mmuIntervalNotifierRemove(f);
    dev.drvdata.mirrors.delete(f.mm);
    f.pt?.destroy();
    f.pt = null;
  },
  ioctls: { GPU_MIGRATE, GPU_READ },
};
