/**
 * The policy simulator: runs a workload's warps (or an imported trace) on UVM-style GPUs over
 * the real model — each GPU access looks up the GPU page table; a miss posts a record to the
 * GPU's replayable fault buffer and stalls the warp; the driver's bottom half
 * (uvmGpuServiceReplayableFaults) batches, coalesces and services the faults with
 * hmm_range_fault, migrate_vma and device-private pages, evicting root chunks when GPU memory is
 * full; CPU phases fault GPU pages back through migrate_to_ram. The cost model prices what
 * happened, batch by batch, and that modelled time is also the clock thrashing detection reads.
 *
 * Order is reproducible: each round the warps issue in a rotation drawn from the seeded PRNG;
 * a warp runs until it faults, finishes, or has made `QUANTUM` accesses.
 *
 * Nothing else runs while the bottom half services faults (the warps wait, the CPU phases come
 * between kernels), so the scheduler is solo then and each pass is a plain pass
 * (uvmGpuServiceReplayableFaultsNow): the same steps without a scheduler round each.
 */
import { Prng } from '../lib/prng.ts';
import { PAGE_SIZE } from '../lib/units.ts';
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../kernel/mm/mman.ts';
import { System, MAX_RAM_BYTES, type Process } from '../kernel/system.ts';
import { DEV_PTE, type DeviceAccessKind } from '../kernel/drivers/sdk/device_pagetable.ts';
import { UvmGpuDevice } from '../kernel/drivers/gpu/uvm.ts';
import type { UvmGpu } from '../kernel/drivers/gpu/uvm_gpu.ts';
import { uvmGpuServiceReplayableFaultsNow } from '../kernel/drivers/gpu/uvm_gpu_replayable_faults.ts';
import type { UvmPrefetchPolicy, UvmVaSpace } from '../kernel/drivers/gpu/uvm_types.ts';
import { checkAll } from '../oracles/index.ts';
import { COST_MODELS, TimeBreakdown, type CostModel } from './cost.ts';
import { WORKLOADS, type WarpProgram, type WorkloadParams } from './workloads.ts';

/** Replays of one access before the simulator calls it fatal and moves the warp on. */
const SIM_MAX_REPLAYS = 64;
/** Accesses a warp makes per turn before the next warp's turn. */
const QUANTUM = 64;
const KINDS: readonly DeviceAccessKind[] = ['read', 'write', 'atomic'];
const NEEDS = [DEV_PTE.READ, DEV_PTE.WRITE, DEV_PTE.ATOMIC];
/** System RAM the model keeps beyond the footprints (page tables, evicted copies' slack). */
const RAM_SLACK = 64 * 1024 * 1024;

/** One access of an imported trace: a page of the footprint, the side and the kind. */
export interface TraceAccess {
  readonly page: number;
  readonly kind: number;
  readonly cpu: boolean;
}

export interface SimOptions {
  readonly workload: string;
  readonly footprint: number;
  readonly gpuMemory: number;
  readonly policy: UvmPrefetchPolicy;
  readonly cost: CostModel['name'];
  readonly seed: number;
  readonly warps: number;
  readonly group: number;
  readonly iterations: number;
  readonly stride: number;
  readonly tile: number;
  readonly processes: number;
  readonly gpus: number;
  /** Fraction of the pages the CPU writes after each GPU kernel (0: no CPU phase). */
  readonly cpuTouch: number;
  /** Modelled GPU compute per access (ns). */
  readonly computeNs: number;
  /** UVM driver tunables by their config names (uvm_config.ts). */
  readonly driver: Readonly<Record<string, unknown>>;
  /** Replay this trace instead of the workload (one process, one GPU). */
  readonly trace?: readonly TraceAccess[];
  /** Keep a per-batch timeline. */
  readonly timeline?: boolean;
  /** Run every oracle at the end and report how many violations they found. */
  readonly check?: boolean;
}

export const SIM_DEFAULTS: SimOptions = {
  workload: 'stream',
  footprint: 64 * 1024 * 1024,
  gpuMemory: 1024 * 1024 * 1024,
  policy: 'tree',
  cost: 'uvmsmart',
  seed: 1,
  warps: 64,
  group: 1,
  iterations: 1,
  stride: 16,
  tile: 4,
  processes: 1,
  gpus: 1,
  cpuTouch: 0,
  computeNs: 0,
  driver: {},
};

/** The run's counters after one fault batch (all GPUs summed), for `--plot`. */
export interface TimelinePoint {
  /** Batches serviced so far. */
  readonly batch: number;
  readonly time_us: number;
  readonly faults: number;
  readonly pages_to_gpu: number;
  readonly pages_to_cpu: number;
  readonly evictions: number;
  readonly resident_mib: number;
}

export interface SimResult {
  workload: string;
  policy: string;
  cost: string;
  seed: number;
  footprint_bytes: number;
  gpu_memory_bytes: number;
  accesses: number;
  faults: number;
  /** Faults a fault-by-fault service would take (UVMSmart's far faults; see UvmStats.farFaults). */
  far_faults: number;
  duplicates: number;
  batches: number;
  va_blocks_per_batch: number;
  replays: number;
  pages_to_gpu: number;
  pages_to_cpu: number;
  pages_prefetched: number;
  migrated_bytes: number;
  evictions: number;
  pre_evictions: number;
  thrashing_events: number;
  throttles: number;
  pins: number;
  cpu_faults: number;
  fatal_faults: number;
  time_us: number;
  us_per_fault: number;
  time_by_component_us: Record<string, number>;
  wall_ms: number;
  timeline?: TimelinePoint[];
  /** With `check`: the oracle violations found at the end. */
  violations?: string[];
}

/** A GPU of the run and what the cost accounting has already seen of its counters. */
interface GpuCtx {
  readonly gpu: UvmGpu;
  seenFaults: number;
  seenTransfersToGpu: number;
  seenRunsToCpu: number;
  seenCpuFaults: number;
  seenNap: number;
  blocks: number;
}

interface ProcCtx {
  readonly proc: Process;
  readonly base: number;
  readonly g: GpuCtx;
  readonly vs: UvmVaSpace;
}

interface Warp {
  readonly ctx: ProcCtx;
  readonly it: Iterator<number, undefined>;
  pending: number;
  replays: number;
  done: boolean;
  stalled: boolean;
}

/** A usage error of the simulator (exit 2 at the CLI). */
export class SimError extends Error {}

/** Runs one simulation. `onProgress(done, total)` is called now and then. */
export function runSim(opts: SimOptions, onProgress?: (done: number, total: number) => void): SimResult {
  const t0 = performance.now();
  const o = opts;
  const workload = WORKLOADS[o.workload] as (typeof WORKLOADS)[string] | undefined;
  if (workload === undefined && o.trace === undefined) throw new SimError(`unknown workload ${o.workload}`);
  const pages = Math.floor(o.footprint / PAGE_SIZE);
  if (pages < 1) throw new SimError('footprint must be at least one page');
  const ram = o.footprint * o.processes + RAM_SLACK;
  if (ram > MAX_RAM_BYTES)
    throw new SimError(`footprint x processes must stay below ${MAX_RAM_BYTES / 2 ** 30}GiB of modelled RAM`);
  const cost = COST_MODELS[o.cost];
  const time = new TimeBreakdown();
  const sys = new System({ ram, swap: 0 });
  const gpus: GpuCtx[] = [];
  const devs: UvmGpuDevice[] = [];
  for (let i = 0; i < o.gpus; i++) {
    const cfg = { ...o.driver, memory: o.gpuMemory, prefetch: o.policy, seed: o.seed };
    const dev = sys.run('probe', UvmGpuDevice.create(sys, `gpu${i}`, cfg));
    if (!(dev instanceof UvmGpuDevice))
      throw new SimError(
        `the uvm driver refused the configuration (${typeof dev === 'number' ? dev : 'not a uvm device'})`,
      );
    const gpu = dev.gpu;
    gpu.polled = true;
    gpu.clockNs = () => time.totalNs;
    const g: GpuCtx = {
      gpu,
      seenFaults: 0,
      seenTransfersToGpu: 0,
      seenRunsToCpu: 0,
      seenCpuFaults: 0,
      seenNap: 0,
      blocks: 0,
    };
    gpu.onBatch = (_faults, blocks) => {
      g.blocks += blocks;
      account(g);
      if (timeline !== null) timeline.push(sample());
    };
    gpus.push(g);
    devs.push(dev);
  }
  const timeline: TimelinePoint[] | null = o.timeline === true ? [] : null;
  const procs: ProcCtx[] = [];
  for (let i = 0; i < o.processes; i++) {
    const proc = sys.createProcess(`p${i}`);
    const base = sys.mmap(
      proc,
      0,
      pages * PAGE_SIZE,
      PROT_READ | PROT_WRITE,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
    );
    if (base < 0) throw new SimError(`mmap of the footprint failed (${base})`);
    const g = gpus[i % gpus.length];
    const r = sys.run('attach', devs[i % gpus.length].attach(proc));
    const vs = proc.mm === null ? undefined : g.gpu.vaSpaces.get(proc.mm);
    if (r !== 0 || vs === undefined) throw new SimError(`attaching process ${proc.name} failed (${r})`);
    procs.push({ proc, base, g, vs });
  }

  function account(g: GpuCtx): void {
    const s = g.gpu.stats;
    time.faultNs += (s.farFaults - g.seenFaults) * cost.farFaultNs;
    g.seenFaults = s.farFaults;
    for (; g.seenTransfersToGpu < s.transfersToGpu.length; g.seenTransfersToGpu++)
      time.h2dNs += cost.transferNs(s.transfersToGpu[g.seenTransfersToGpu] * PAGE_SIZE);
    for (; g.seenRunsToCpu < s.runsToCpu.length; g.seenRunsToCpu++)
      time.d2hNs += cost.transferNs(s.runsToCpu[g.seenRunsToCpu] * PAGE_SIZE);
    time.cpuFaultNs += (s.cpuFaults - g.seenCpuFaults) * cost.cpuFaultNs;
    g.seenCpuFaults = s.cpuFaults;
    if (cost.name !== 'none') time.throttleNs += s.throttleNapNs - g.seenNap;
    g.seenNap = s.throttleNapNs;
  }

  function sample(): TimelinePoint {
    let batch = 0;
    let faults = 0;
    let toGpu = 0;
    let toCpu = 0;
    let evictions = 0;
    for (const g of gpus) {
      const s = g.gpu.stats;
      batch += s.batches;
      faults += s.faults;
      toGpu += s.pagesToGpu;
      toCpu += s.pagesToCpu;
      evictions += s.evictions;
    }
    return {
      batch,
      time_us: Math.round(time.totalNs) / 1000,
      faults,
      pages_to_gpu: toGpu,
      pages_to_cpu: toCpu,
      evictions,
      resident_mib: ((toGpu - toCpu) * PAGE_SIZE) / 2 ** 20,
    };
  }

  const rng = new Prng(`sim:${o.seed}`);
  let accesses = 0;
  let fatal = 0;

  /** One GPU kernel: every warp program runs to its end. */
  function runKernel(
    programs: { ctx: ProcCtx; prog: WarpProgram }[],
    progressBase: number,
    total: number,
  ): void {
    const warps: Warp[] = programs.map(({ ctx, prog }) => ({
      ctx,
      it: prog(),
      pending: -1,
      replays: 0,
      done: false,
      stalled: false,
    }));
    let active = warps.length;
    const n = warps.length;
    while (active > 0) {
      const start = rng.int(n);
      let posted = false;
      for (let k = 0; k < n; k++) {
        const w = warps[(start + k) % n];
        if (w.done || w.stalled) continue;
        const { base, vs, g } = w.ctx;
        for (let q = 0; q < QUANTUM; q++) {
          if (w.pending < 0) {
            const r = w.it.next();
            if (r.done === true) {
              w.done = true;
              active--;
              break;
            }
            w.pending = r.value;
            w.replays = 0;
          }
          const kind = w.pending & 3;
          const va = base + (w.pending >> 2) * PAGE_SIZE;
          const e = vs.pt.lookup(va);
          if (e !== undefined && (e.prot & NEEDS[kind]) !== 0) {
            accesses++;
            time.computeNs += o.computeNs;
            if (g.gpu.tunables.eviction === 'access') {
              const c = g.gpu.pmm.chunkOf(e.pfn);
              if (c !== null) c.accessTick = ++g.gpu.pmm.tick;
            }
            w.pending = -1;
            continue;
          }
          if (w.replays++ >= SIM_MAX_REPLAYS) {
            // The driver could not make this access succeed (a fatal fault, e.g. no VMA); a
            // record dropped by a buffer flush only faults again, so the bound is generous.
            fatal++;
            w.pending = -1;
            continue;
          }
          g.gpu.faults.post({ va, access: KINDS[kind], pt: vs.pt });
          w.stalled = true;
          posted = true;
          break;
        }
      }
      if (!posted) continue;
      for (const g of gpus) {
        while (g.gpu.faults.length > 0) uvmGpuServiceReplayableFaultsNow(g.gpu);
      }
      for (const w of warps) w.stalled = false;
      if (onProgress !== undefined) {
        let done = 0;
        for (const w of warps) if (w.done) done++;
        onProgress(progressBase + done, total);
      }
    }
  }

  /** A CPU phase: each process writes one byte to each page `pageList` names. */
  function runCpu(list: (ctx: ProcCtx) => Iterable<number>): void {
    const one = new Uint8Array([1]);
    for (const ctx of procs) {
      for (const page of list(ctx)) {
        sys.write(ctx.proc, ctx.base + page * PAGE_SIZE, one);
        accesses++;
      }
    }
    for (const g of gpus) account(g);
  }

  const params: WorkloadParams = {
    pages,
    warps: o.warps,
    group: o.group,
    iterations: o.iterations,
    seed: o.seed,
    stride: o.stride,
    tile: o.tile,
  };
  if (o.trace !== undefined) {
    runTrace(o.trace);
  } else if (workload !== undefined) {
    const launches = workload.launches ?? 1;
    const total = o.iterations * launches * o.processes * o.warps;
    for (let it = 0; it < o.iterations; it++) {
      for (let k = 0; k < launches; k++) {
        const launch = it * launches + k;
        const programs = procs.flatMap((ctx) =>
          workload.kernel(params, launch).map((prog) => ({ ctx, prog })),
        );
        runKernel(programs, launch * o.processes * o.warps, total);
      }
      if (o.cpuTouch > 0) {
        const step = Math.max(1, Math.round(1 / o.cpuTouch));
        runCpu(function* () {
          for (let p = 0; p < pages; p += step) yield p;
        });
      }
    }
  }

  /** Trace replay: consecutive GPU records form a kernel (split over the warps), CPU ones a CPU phase. */
  function runTrace(trace: readonly TraceAccess[]): void {
    for (let i = 0; i < trace.length;) {
      const cpu = trace[i].cpu;
      let j = i;
      while (j < trace.length && trace[j].cpu === cpu) j++;
      const slice = trace.slice(i, j);
      if (cpu) runCpu(() => slice.map((a) => a.page));
      else {
        const nw = Math.max(1, Math.min(o.warps, slice.length));
        const programs = [];
        for (let w = 0; w < nw; w++) {
          programs.push({
            ctx: procs[0],
            prog: function* (): Generator<number, undefined> {
              for (let k = w; k < slice.length; k += nw) yield slice[k].page * 4 + slice[k].kind;
              return undefined;
            },
          });
        }
        runKernel(programs, i, trace.length);
      }
      i = j;
    }
  }

  if (timeline !== null) {
    // The end of the run (after a last CPU phase the counters moved with no batch).
    const end = sample();
    const last = timeline.at(-1);
    if (last === undefined || last.time_us !== end.time_us || last.pages_to_cpu !== end.pages_to_cpu)
      timeline.push(end);
  }
  const sum = (f: (g: UvmGpu) => number): number => gpus.reduce((a, g) => a + f(g.gpu), 0);
  const faults = sum((g) => g.stats.faults);
  const batches = sum((g) => g.stats.batches);
  const blocks = gpus.reduce((a, g) => a + g.blocks, 0);
  const pagesToGpu = sum((g) => g.stats.pagesToGpu);
  const pagesToCpu = sum((g) => g.stats.pagesToCpu);
  const us = (ns: number): number => Math.round(ns) / 1000;
  return {
    workload: o.trace !== undefined ? 'trace' : o.workload,
    policy: o.policy,
    cost: o.cost,
    seed: o.seed,
    footprint_bytes: pages * PAGE_SIZE,
    gpu_memory_bytes: o.gpuMemory,
    accesses,
    faults,
    far_faults: sum((g) => g.stats.farFaults),
    duplicates: sum((g) => g.stats.duplicates),
    batches,
    va_blocks_per_batch: batches === 0 ? 0 : Math.round((blocks / batches) * 100) / 100,
    replays: sum((g) => g.stats.replays),
    pages_to_gpu: pagesToGpu,
    pages_to_cpu: pagesToCpu,
    pages_prefetched: sum((g) => g.stats.pagesPrefetched),
    migrated_bytes: (pagesToGpu + pagesToCpu) * PAGE_SIZE,
    evictions: sum((g) => g.stats.evictions),
    pre_evictions: sum((g) => g.stats.preEvictions),
    thrashing_events: sum((g) => g.stats.thrashingEvents),
    throttles: sum((g) => g.stats.throttles),
    pins: sum((g) => g.stats.pins),
    cpu_faults: sum((g) => g.stats.cpuFaults),
    fatal_faults: fatal + sum((g) => g.stats.fatalFaults),
    time_us: us(time.totalNs),
    us_per_fault: faults === 0 ? 0 : Math.round((time.totalNs / faults) * 1000) / 1e6,
    time_by_component_us: {
      far_faults: us(time.faultNs),
      h2d: us(time.h2dNs),
      d2h: us(time.d2hNs),
      cpu_faults: us(time.cpuFaultNs),
      throttle: us(time.throttleNs),
      compute: us(time.computeNs),
    },
    wall_ms: Math.round(performance.now() - t0),
    ...(timeline !== null ? { timeline } : {}),
    ...(o.check === true ? { violations: checkAll(sys).map((v) => `[${v.oracle}] ${v.message}`) } : {}),
  };
}
