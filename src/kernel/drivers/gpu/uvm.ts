/**
 * The NVIDIA-UVM-style HMM driver as an SDK device: probe memremaps the GPU memory as
 * DEVICE_PRIVATE pages and sets up the root-chunk allocator and the replayable fault buffer;
 * opening the device creates the process' va_space (its GPU page table and HMM blocks). The
 * device kind 'uvm' in the GPU registry wraps it for scenarios (gpu_access, gpu_snapshot) and
 * the simulator.
 *
 * Modelled after kernel-open/nvidia-uvm/ (uvm_hmm.c, uvm_gpu_replayable_faults.c,
 * uvm_perf_prefetch.c, uvm_perf_thrashing.c, uvm_pmm_gpu.c). What is left out: UVM-managed
 * (non-HMM) allocations, read duplication, access counters, peer GPU mappings (each GPU is its
 * own page owner here, so another GPU's pages come back through the CPU) and the lapse
 * self-tuning of thrashing detection.
 */
import { PAGE_SIZE } from '../../../lib/units.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { __mmuNotifierRegister, mmuIntervalNotifierRemove } from '../../mm/mmu_notifier.ts';
import type { Process } from '../../system.ts';
import { type Device, type DeviceDriver, deviceOpen, deviceRegister } from '../sdk/device.ts';
import { DEV_PTE, DevicePageTable, FaultBuffer, deviceAccess } from '../sdk/device_pagetable.ts';
import { deviceMemoryRemove, devmMemremapPages } from '../sdk/devmem.ts';
import { queueWork } from '../sdk/workqueue.ts';
import type { GpuAccessResult, GpuDevice, GpuSnapshot } from './gpu_device.ts';
import { registerGpuKind } from './registry.ts';
import { uvmTunablesFromConfig, UVM_TUNABLE_KEYS } from './uvm_config.ts';
import { UvmGpu } from './uvm_gpu.ts';
import { uvmGpuServiceReplayableFaults } from './uvm_gpu_replayable_faults.ts';
import { uvmHmmFolioFree, uvmHmmMigrateToRam, uvmVaSpaceSetGpu } from './uvm_hmm.ts';
import { UvmPmm } from './uvm_pmm_gpu.ts';
import { UVM_CHUNK_SIZE_MAX, UVM_PAGES_PER_BLOCK, UvmVaSpace } from './uvm_types.ts';

/** GPU memory when the config gives none. */
export const UVM_DEFAULT_MEMORY = 64 * 1024 * 1024;

/** Models uvm_va_space_create() + uvm_hmm_va_space_initialize() for the opener's mm. */
function* uvmVaSpaceCreate(dev: Device<UvmGpu, UvmVaSpace>, proc: Process): KGen<UvmVaSpace | number> {
  const gpu = dev.drvdata;
  const mm = proc.mm;
  if (mm === null) return -Errno.ESRCH;
  if (gpu.vaSpaces.has(mm)) return -Errno.EBUSY;
  // The driver registers on the mm up front (uvm_va_space_mm_register), so inserting block
  // notifiers later, under the mmap read lock, never needs the write lock.
  yield* mm.mmapLock.downWrite();
  const r = yield* __mmuNotifierRegister(null, mm);
  yield* mm.mmapLock.upWrite();
  if (r !== 0) return r;
  const lock = dev.mutex(`va_block_lock${gpu.vaSpaces.size}`, {
    lockClass: 'uvm.va_block_lock',
    guards: "the GPU page table, the blocks' residency and changed counters",
  });
  const pt = new DevicePageTable(dev, `${dev.name} pt${gpu.vaSpaces.size}`, mm, lock);
  const vs = new UvmVaSpace(mm, pt, lock);
  uvmVaSpaceSetGpu(vs, gpu);
  gpu.vaSpaces.set(mm, vs);
  gpu.byPt.set(pt, vs);
  return vs;
}

/** Models uvm_va_space_destroy(): remove every block's notifier, drop the GPU page table. */
function* uvmVaSpaceDestroy(gpu: UvmGpu, vs: UvmVaSpace): KGen {
  for (const list of vs.blocks.values()) for (const b of list) yield* mmuIntervalNotifierRemove(b);
  vs.blocks.clear();
  gpu.vaSpaces.delete(vs.mm);
  gpu.byPt.delete(vs.pt);
  vs.pt.destroy();
}

export const uvmDriver: DeviceDriver<UvmGpu, UvmVaSpace> = {
  name: 'uvm',
  *probe(dev, config) {
    yield* [];
    const t = uvmTunablesFromConfig(config);
    if (typeof t === 'string') return -Errno.EINVAL;
    const bytes = config.memory ?? UVM_DEFAULT_MEMORY;
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < UVM_CHUNK_SIZE_MAX)
      return -Errno.EINVAL;
    const nrChunks = Math.floor(bytes / UVM_CHUNK_SIZE_MAX);
    const gpu = new UvmGpu(dev, t);
    const mem = devmMemremapPages(dev, {
      type: 'private',
      nrPages: nrChunks * UVM_PAGES_PER_BLOCK,
      owner: gpu,
      ops: {
        folioFree: (pfn, order) => {
          uvmHmmFolioFree(gpu, pfn, order);
        },
        migrateToRam: (vmf) => uvmHmmMigrateToRam(gpu, vmf),
      },
    });
    if (typeof mem === 'number') return mem;
    gpu.mem = mem;
    gpu.pmm = new UvmPmm(mem.pgmap.firstPfn, nrChunks, gpu.rng);
    gpu.faults = new FaultBuffer(
      dev,
      'replayable_faults',
      t.faultBufferEntries,
      () => uvmGpuServiceReplayableFaults(gpu),
      (buf) => {
        if (!gpu.polled) queueWork(buf.work);
      },
    );
    return gpu;
  },
  *remove(dev) {
    const gpu = dev.drvdata;
    for (const vs of [...gpu.vaSpaces.values()]) yield* uvmVaSpaceDestroy(gpu, vs);
    yield* deviceMemoryRemove(gpu.mem);
  },
  open: uvmVaSpaceCreate,
  *release(dev, file) {
    yield* uvmVaSpaceDestroy(dev.drvdata, file.priv);
  },
};

/** The 'uvm' kind of the GPU registry. */
class UvmGpuDevice implements GpuDevice {
  readonly kind = 'uvm';
  private readonly fds = new Map<Process, number>();
  constructor(readonly dev: Device<UvmGpu, UvmVaSpace>) {}

  get gpu(): UvmGpu {
    return this.dev.drvdata;
  }

  *attach(proc: Process): KGen<number> {
    if (this.fds.has(proc)) return 0;
    const fd = yield* deviceOpen(this.dev.sys, this.dev.name, proc);
    if (fd < 0) return fd;
    this.fds.set(proc, fd);
    return 0;
  }

  vaSpace(proc: Process): UvmVaSpace | null {
    return proc.mm === null ? null : (this.gpu.vaSpaces.get(proc.mm) ?? null);
  }

  *access(
    proc: Process,
    va: number,
    length: number,
    access: 'read' | 'write' | 'atomic',
    data: Uint8Array | null,
  ): KGen<GpuAccessResult> {
    const r = yield* this.attach(proc);
    const vs = this.vaSpace(proc);
    if (r !== 0 || vs === null) return { ret: r !== 0 ? r : -Errno.ESRCH, data: new Uint8Array(0) };
    const buf = access === 'read' ? new Uint8Array(length) : (data ?? new Uint8Array(length));
    if (buf.length !== length) return { ret: -Errno.EINVAL, data: new Uint8Array(0) };
    for (let off = 0; off < length;) {
      const a = va + off;
      const n = Math.min(length - off, PAGE_SIZE - (a % PAGE_SIZE));
      const piece = buf.subarray(off, off + n);
      const ret = yield* deviceAccess(vs.pt, a, access, piece, this.gpu.faults);
      if (ret !== 0) return { ret, data: new Uint8Array(0) };
      off += n;
    }
    return { ret: 0, data: access === 'read' ? buf : new Uint8Array(0) };
  }

  snapshot(proc: Process): GpuSnapshot {
    const vs = this.vaSpace(proc);
    const gpu = this.gpu;
    const ptes = [];
    const ranges = [];
    if (vs !== null) {
      for (const e of vs.pt.entries()) {
        const prot = vs.pt.lookup(e.va)?.prot ?? 0;
        ptes.push({
          va: e.va,
          pfn: e.pfn,
          read: (prot & DEV_PTE.READ) !== 0,
          write: (prot & DEV_PTE.WRITE) !== 0,
          atomic: (prot & DEV_PTE.ATOMIC) !== 0,
          memory: gpu.mem.contains(e.pfn) ? ('device' as const) : ('system' as const),
        });
      }
      const blocks = [...vs.blocks.values()].flat().sort((a, b) => a.vaStart - b.vaStart);
      for (const b of blocks) {
        let resident = 0;
        for (const x of b.resident) resident += x;
        ranges.push({
          start: b.vaStart,
          end: b.vaEnd,
          kind: 'va_block',
          state: `resident ${resident}/${(b.vaEnd - b.vaStart) / PAGE_SIZE} changed ${b.changed}${b.chunk === null ? '' : ` chunk ${b.chunk.index}`}`,
        });
      }
    }
    return { device: this.dev.name, kind: this.kind, ptes, ranges };
  }
}

registerGpuKind({
  name: 'uvm',
  doc: 'NVIDIA-UVM-style HMM driver: 2 MiB VA blocks, replayable fault batches, prefetch, thrashing, eviction',
  config: {
    memory: 'GPU memory in bytes, a multiple of 2 MiB (64 MiB)',
    ...Object.fromEntries(Object.entries(UVM_TUNABLE_KEYS).map(([k, v]) => [k, v[3]])),
  },
  *create(sys, name, config) {
    const dev = yield* deviceRegister(sys, name, uvmDriver, config);
    if (typeof dev === 'number') return dev;
    return new UvmGpuDevice(dev);
  },
});

export { UvmGpuDevice };
