/**
 * GPU figures: GPU page faults serviced per second through the xe driver model, each a GPU read
 * that misses, goes through the fault queue and its worker (drm_gpusvm range creation,
 * get_pages, bind) and is replayed.
 *  - gpu.xe_faults.4k: 4 KiB ranges (every other page read-only, so no larger chunk fits),
 *    system pages DMA-mapped (an integrated GPU: no VRAM);
 *  - gpu.xe_faults.2m: 2 MiB ranges over THP-less memory, system pages DMA-mapped;
 *  - gpu.xe_faults.2m_vram: 2 MiB ranges migrated to VRAM on the fault (512 pages copied each).
 * Each figure is the median of the timed runs; a run is one fresh VM faulting every range once.
 *
 * And through the NVIDIA-UVM-style driver (uvm_hmm.ts), driven by the simulator's stream workload
 * with one warp, so every replayable fault is serviced on its own (cost model `none`):
 *  - gpu.uvm_faults.4k: on-demand policy, each fault migrates one 4 KiB page to the GPU;
 *  - gpu.uvm_faults.2m: tree prefetch at threshold 0, each fault migrates its whole 2 MiB VA block.
 */
import { SZ_2M, SZ_4K, XeHarness, type XeClient } from '../src/conformance/xe_harness.ts';
import { PROT_READ } from '../src/kernel/mm/mman.ts';
import { runSim, SIM_DEFAULTS } from '../src/sim/engine.ts';
import { type BenchContext, type Figure, type Suite, median, nowNs, round } from './figure.ts';

interface Setup {
  readonly h: XeHarness;
  readonly c: XeClient;
  /** The address of each fault. */
  readonly addrs: number[];
}

function setup4k(n: number): Setup {
  const h = new XeHarness({ vram: 0, ram: 2 * n * SZ_4K + 64 * 1024 * 1024 });
  const c = h.client();
  c.bindSystemAllocator();
  const base = c.mmap(2 * n * SZ_4K);
  c.memset(base, 1, 2 * n * SZ_4K);
  for (let i = 0; i < n; i++) h.sys.mprotect(c.proc, base + (2 * i + 1) * SZ_4K, SZ_4K, PROT_READ);
  return { h, c, addrs: Array.from({ length: n }, (_, i) => base + 2 * i * SZ_4K) };
}

function setup2m(n: number, vram: boolean): Setup {
  const len = n * SZ_2M;
  const h = new XeHarness({ vram: vram ? len : 0, ram: 2 * len + 64 * 1024 * 1024 });
  const c = h.client();
  c.bindSystemAllocator();
  const base = c.alignedAlloc(SZ_2M, len);
  c.memset(base, 1, len);
  return { h, c, addrs: Array.from({ length: n }, (_, i) => base + i * SZ_2M) };
}

/** Faults per second of one run: every address read once by the GPU. */
function faultsPerSecond(s: Setup): number {
  const buf = new Uint8Array(4);
  const t0 = nowNs();
  for (const a of s.addrs) if (s.c.gpu(a, 'read', buf) !== 0) throw new Error('GPU read failed');
  const ns = nowNs() - t0;
  const serviced = s.h.sys.trace.counters.get('xe_svm_pagefault') ?? 0;
  if (serviced !== s.addrs.length) throw new Error(`${serviced} faults for ${s.addrs.length} reads`);
  return (serviced * 1e9) / ns;
}

function figure(ctx: BenchContext, name: string, runs: number, make: () => Setup): Figure {
  ctx.progress(name);
  faultsPerSecond(make()); // warm-up
  const xs: number[] = [];
  for (let r = 0; r < runs; r++) xs.push(faultsPerSecond(make()));
  return {
    name,
    value: round(median(xs)),
    unit: 'faults/s',
    goal: 'reported (no goal in the issue)',
    pass: true,
  };
}

/** Faults per second through the UVM-style driver: one simulator run over `footprint` bytes. */
function uvmFaultsPerSecond(footprint: number, twoMeg: boolean): number {
  const t0 = nowNs();
  const r = runSim({
    ...SIM_DEFAULTS,
    footprint,
    warps: 1,
    cost: 'none',
    policy: twoMeg ? 'tree' : 'ondemand',
    driver: twoMeg ? { prefetch_threshold: 0 } : {},
  });
  const ns = nowNs() - t0;
  const per = r.migrated_bytes / r.faults;
  if (Math.abs(per - (twoMeg ? SZ_2M : SZ_4K)) > SZ_4K)
    throw new Error(`uvm: ${per} bytes migrated per fault`);
  return (r.faults * 1e9) / ns;
}

function uvmFigure(
  ctx: BenchContext,
  name: string,
  runs: number,
  footprint: number,
  twoMeg: boolean,
): Figure {
  ctx.progress(name);
  uvmFaultsPerSecond(footprint, twoMeg); // warm-up
  const xs: number[] = [];
  for (let r = 0; r < runs; r++) xs.push(uvmFaultsPerSecond(footprint, twoMeg));
  return {
    name,
    value: round(median(xs)),
    unit: 'faults/s',
    goal: 'reported (no goal in the issue)',
    pass: true,
  };
}

export const gpuSuite: Suite = {
  name: 'gpu',
  run(ctx) {
    const n4k = ctx.smoke ? 64 : 4096;
    const n2m = ctx.smoke ? 4 : 64;
    const runs = ctx.smoke ? 2 : 5;
    return Promise.resolve([
      figure(ctx, 'gpu.xe_faults.4k', runs, () => setup4k(n4k)),
      figure(ctx, 'gpu.xe_faults.2m', runs, () => setup2m(n2m, false)),
      figure(ctx, 'gpu.xe_faults.2m_vram', runs, () => setup2m(n2m, true)),
      uvmFigure(ctx, 'gpu.uvm_faults.4k', runs, n4k * SZ_4K, false),
      uvmFigure(ctx, 'gpu.uvm_faults.2m', runs, n2m * SZ_2M, true),
    ]);
  },
};
