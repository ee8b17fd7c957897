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
import { parseSize } from '../../../lib/size.ts';
import { PAGE_SIZE } from '../../../lib/units.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { __mmuNotifierRegister, mmuIntervalNotifierRemove } from '../../mm/mmu_notifier.ts';
import type { Process, System } from '../../system.ts';
import { type Device, type DeviceDriver, deviceOpen, deviceRegister } from '../sdk/device.ts';
import { DEV_PTE, DevicePageTable, FaultBuffer, deviceAccess } from '../sdk/device_pagetable.ts';
import { deviceMemoryRemove, devmMemremapPages } from '../sdk/devmem.ts';
import { queueWork } from '../sdk/workqueue.ts';
import type { GpuAccessRequest, GpuDeviceOps, GpuPteView, GpuRangeView, GpuSnapshot } from './gpu_device.ts';
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
  // The driver registers on the mm up front (uvm_va_space_mm_register), so inserting block
  // notifiers later, under the mmap read lock, never needs the write lock. The check for an
  // existing va_space is made under the same lock, and the new one is in place before it is
  // dropped: two opens by one mm cannot both pass the check.
  yield* mm.mmapLock.downWrite();
  if (gpu.vaSpaces.has(mm)) {
    yield* mm.mmapLock.upWrite();
    return -Errno.EBUSY;
  }
  const r = yield* __mmuNotifierRegister(null, mm);
  if (r !== 0) {
    yield* mm.mmapLock.upWrite();
    return r;
  }
  const lock = dev.mutex(`va_block_lock${gpu.vaSpaces.size}`, {
    lockClass: 'uvm.va_block_lock',
    guards: "the GPU page table, the blocks' residency and changed counters",
  });
  const pt = new DevicePageTable(dev, `${dev.name} pt${gpu.vaSpaces.size}`, mm, lock);
  const vs = new UvmVaSpace(mm, pt, lock);
  uvmVaSpaceSetGpu(vs, gpu);
  gpu.vaSpaces.set(mm, vs);
  gpu.byPt.set(pt, vs);
  yield* mm.mmapLock.upWrite();
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
    for (const k of Object.keys(config)) if (k !== 'memory' && !(k in UVM_TUNABLE_KEYS)) return -Errno.EINVAL;
    const t = uvmTunablesFromConfig(config);
    if (typeof t === 'string') return -Errno.EINVAL;
    let bytes: number;
    try {
      const m = config.memory ?? UVM_DEFAULT_MEMORY;
      bytes = typeof m === 'number' || typeof m === 'string' ? parseSize(m) : -1;
    } catch {
      return -Errno.EINVAL;
    }
    if (bytes < UVM_CHUNK_SIZE_MAX) return -Errno.EINVAL;
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

/** The va_space of `proc` on `dev` (null: the only one), creating it (opening the device) if needed. */
function* uvmVaSpaceOf(dev: Device<UvmGpu, UvmVaSpace>, proc: Process | null): KGen<UvmVaSpace | number> {
  const gpu = dev.drvdata;
  if (proc === null) {
    if (gpu.vaSpaces.size !== 1) return -Errno.EINVAL;
    return [...gpu.vaSpaces.values()][0];
  }
  const mm = proc.mm;
  if (mm === null) return -Errno.ESRCH;
  const vs = gpu.vaSpaces.get(mm);
  if (vs !== undefined) return vs;
  const fd = yield* deviceOpen(dev.sys, dev.name, proc);
  // Another thread of the process may have opened it meanwhile (our open then fails -EBUSY).
  const now = gpu.vaSpaces.get(mm);
  if (now !== undefined) return now;
  return fd < 0 ? fd : -Errno.ENODEV;
}

/** A GPU access through the va_space's page table, faulting through the replayable buffer. */
function* uvmGpuAccess(dev: Device, req: GpuAccessRequest): KGen<number> {
  const d = dev as Device<UvmGpu, UvmVaSpace>;
  const vs = yield* uvmVaSpaceOf(d, req.proc);
  if (typeof vs === 'number') return vs;
  for (let off = 0; off < req.buf.length;) {
    const va = req.addr + off;
    const n = Math.min(req.buf.length - off, PAGE_SIZE - (va % PAGE_SIZE));
    const ret = yield* deviceAccess(vs.pt, va, req.access, req.buf.subarray(off, off + n), d.drvdata.faults);
    if (ret !== 0) return ret;
    off += n;
  }
  return 0;
}

/** The GPU PTEs of [start, end) and the VA blocks that overlap it. */
function uvmGpuSnapshot(dev: Device, proc: Process | null, start: number, end: number): GpuSnapshot | number {
  const gpu = (dev as Device<UvmGpu, UvmVaSpace>).drvdata;
  const vs =
    proc === null
      ? gpu.vaSpaces.size === 1
        ? [...gpu.vaSpaces.values()][0]
        : undefined
      : proc.mm === null
        ? undefined
        : gpu.vaSpaces.get(proc.mm);
  if (vs === undefined) return -Errno.EINVAL;
  const ptes: GpuPteView[] = [];
  // Walk the entries the table holds, not every page of [start, end): the range may be huge.
  for (const { va, pfn } of vs.pt.entries()) {
    if (va < start - (start % PAGE_SIZE) || va >= end) continue;
    const prot = vs.pt.lookup(va)?.prot ?? 0;
    ptes.push({
      va,
      pfn,
      write: (prot & DEV_PTE.WRITE) !== 0,
      atomic: (prot & DEV_PTE.ATOMIC) !== 0,
      mem: gpu.mem.contains(pfn) ? 'vram' : 'system',
    });
  }
  const ranges: GpuRangeView[] = [];
  const blocks = [...vs.blocks.values()].flat().sort((a, b) => a.vaStart - b.vaStart);
  for (const b of blocks) {
    if (b.vaEnd <= start || b.vaStart >= end) continue;
    const flags = [`changed=${b.changed}`, `resident=${b.resident.reduce((a, x) => a + x, 0)}`];
    if (b.chunk !== null) flags.push(`chunk=${b.chunk.index}`);
    ranges.push({ start: b.vaStart, end: b.vaEnd, flags });
  }
  return { ptes, ranges };
}

/** The uvm side of the generic GPU scenario ops (registry.ts). */
export const uvmGpuOps: GpuDeviceOps = { access: uvmGpuAccess, snapshot: uvmGpuSnapshot };

/** The config keys of a uvm device, with their docs. */
export const UVM_CONFIG_DOC: Readonly<Record<string, string>> = {
  memory: 'GPU memory in bytes, a multiple of 2 MiB (64 MiB)',
  ...Object.fromEntries(Object.entries(UVM_TUNABLE_KEYS).map(([k, v]) => [k, v[3]])),
};

/** A handle on one uvm device for the simulator and tests: attach processes, access, snapshot. */
export class UvmGpuDevice {
  constructor(readonly dev: Device<UvmGpu, UvmVaSpace>) {}

  get gpu(): UvmGpu {
    return this.dev.drvdata;
  }

  /** Registers uvm device `name` with `config`: the handle, or -errno from probe. */
  static *create(
    sys: System,
    name: string,
    config: Readonly<Record<string, unknown>>,
  ): KGen<UvmGpuDevice | number> {
    const dev = yield* deviceRegister(sys, name, uvmDriver, config);
    return typeof dev === 'number' ? dev : new UvmGpuDevice(dev);
  }

  /** Creates `proc`'s va_space on this GPU if it has none; 0 or -errno. */
  *attach(proc: Process): KGen<number> {
    const vs = yield* uvmVaSpaceOf(this.dev, proc);
    return typeof vs === 'number' ? vs : 0;
  }

  *access(
    proc: Process,
    va: number,
    length: number,
    access: 'read' | 'write' | 'atomic',
    data: Uint8Array | null,
  ): KGen<{ ret: number; data: Uint8Array }> {
    const buf = access === 'read' || data === null ? new Uint8Array(length) : data;
    const ret = yield* uvmGpuAccess(this.dev, { proc, addr: va, access, buf });
    return { ret, data: ret === 0 && access === 'read' ? buf : new Uint8Array(0) };
  }

  snapshot(proc: Process): GpuSnapshot {
    const s = uvmGpuSnapshot(this.dev, proc, 0, 2 ** 47);
    return typeof s === 'number' ? { ptes: [], ranges: [] } : s;
  }
}
