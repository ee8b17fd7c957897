/**
 * Synthetic workloads: the page-level access patterns of GPU kernels, after the benchmarks the
 * UVM literature uses (STREAM, Rodinia's hotspot and bfs, stencils, tiled matrix multiply).
 * A workload splits its footprint into arrays and gives each warp a program: a sequence of page
 * accesses, each encoded as `page * 4 + kind` (kind 0 read, 1 write, 2 atomic). Repeated accesses
 * within one page are one access: the model works at page granularity, as faults do.
 *
 * Every warp walks its own part of the data (the usual thread-block decomposition). With
 * `group` > 1, that many warps share one part and interleave over it page by page (a
 * grid-stride loop inside the group), which puts more faults of one region in one batch.
 */
import { Prng } from '../lib/prng.ts';

export const READ = 0;
export const WRITE = 1;
export const ATOMIC = 2;

export interface WorkloadParams {
  /** Pages of the footprint. */
  readonly pages: number;
  readonly warps: number;
  /** Warps that share one part of the data (grid-stride inside the group). @defaultValue 1 */
  readonly group: number;
  /** Times the kernel runs. */
  readonly iterations: number;
  readonly seed: number;
  /** strided: distance between consecutive accesses, in pages. */
  readonly stride: number;
  /** matmul: tile edge, in pages. */
  readonly tile: number;
}

/** A warp program: the encoded accesses it makes, in order. */
export type WarpProgram = () => Iterator<number, undefined>;

export interface Workload {
  readonly name: string;
  readonly doc: string;
  /** Kernels one iteration launches, one after another (default 1). */
  readonly launches?: number;
  /** One GPU kernel: a program per warp. `launch` counts kernels from 0 over all iterations. */
  kernel(p: WorkloadParams, launch: number): WarpProgram[];
}

const enc = (page: number, kind: number): number => page * 4 + kind;

/** [lo, hi) of part `i` of `n` items split in `parts`. */
function part(n: number, parts: number, i: number): [number, number] {
  return [Math.floor((n * i) / parts), Math.floor((n * (i + 1)) / parts)];
}

/** For warp w: the item indexes of its part, grid-strided within its group. */
function* items(n: number, p: WorkloadParams, w: number): Generator<number, undefined> {
  const group = Math.max(1, Math.min(p.group, p.warps));
  const groups = Math.ceil(p.warps / group);
  const [lo, hi] = part(n, groups, Math.floor(w / group));
  for (let i = lo + (w % group); i < hi; i += group) yield i;
  return undefined;
}

function perWarp(p: WorkloadParams, f: (w: number) => Generator<number, undefined>): WarpProgram[] {
  const out: WarpProgram[] = [];
  for (let w = 0; w < p.warps; w++) out.push(() => f(w));
  return out;
}

const stream: Workload = {
  name: 'stream',
  doc: 'STREAM triad a[i] = b[i] + s*c[i] over three arrays: each warp reads b and c and writes a, page by page',
  kernel(p) {
    const n = Math.floor(p.pages / 3);
    return perWarp(p, function* (w) {
      for (const i of items(n, p, w)) {
        yield enc(n + i, READ);
        yield enc(2 * n + i, READ);
        yield enc(i, WRITE);
      }
      return undefined;
    });
  },
};

const linear: Workload = {
  name: 'linear',
  doc: "one array read in order (the linear microbenchmark of Allen & Ge, SC'21)",
  kernel(p) {
    return perWarp(p, function* (w) {
      for (const i of items(p.pages, p, w)) yield enc(i, READ);
      return undefined;
    });
  },
};

const strided: Workload = {
  name: 'strided',
  doc: 'one array read with a stride of `stride` pages, wrapping until every page is read',
  kernel(p) {
    const s = Math.max(1, p.stride);
    const rows = Math.ceil(p.pages / s);
    return perWarp(p, function* (w) {
      for (const j of items(p.pages, p, w)) {
        const page = (j % rows) * s + Math.floor(j / rows);
        if (page < p.pages) yield enc(page, READ);
      }
      return undefined;
    });
  },
};

const random: Workload = {
  name: 'random',
  doc: 'each warp reads pages drawn uniformly from the footprint (as many accesses as pages, split among warps)',
  kernel(p, it) {
    return perWarp(p, function* (w) {
      const rng = new Prng(`random:${p.seed}:${it}:${w}`);
      const [lo, hi] = part(p.pages, p.warps, w);
      for (let i = lo; i < hi; i++) yield enc(rng.int(p.pages), READ);
      return undefined;
    });
  },
};

/** The grid a 2-D kernel works on: `arrays` grids of dim x dim pages. */
function grid(p: WorkloadParams, arrays: number): { n: number; dim: number } {
  const n = Math.floor(p.pages / arrays);
  return { n, dim: Math.max(1, Math.floor(Math.sqrt(n))) };
}

const stencil2d: Workload = {
  name: 'stencil2d',
  doc: '5-point 2-D stencil: read a cell and its four neighbours of the input grid, write the output grid; grids swap each iteration',
  kernel(p, it) {
    const { n, dim } = grid(p, 2);
    const [src, dst] = it % 2 === 0 ? [0, n] : [n, 0];
    return perWarp(p, function* (w) {
      for (const r of items(dim, p, w)) {
        for (let c = 0; c < dim; c++) {
          const at = (rr: number, cc: number): number => src + rr * dim + cc;
          yield enc(at(r, c), READ);
          if (r > 0) yield enc(at(r - 1, c), READ);
          if (r + 1 < dim) yield enc(at(r + 1, c), READ);
          if (c > 0) yield enc(at(r, c - 1), READ);
          if (c + 1 < dim) yield enc(at(r, c + 1), READ);
          yield enc(dst + r * dim + c, WRITE);
        }
      }
      return undefined;
    });
  },
};

const hotspot: Workload = {
  name: 'hotspot',
  doc: 'Rodinia hotspot-like: a 5-point stencil over the temperature grid plus the power grid, writing the output grid',
  kernel(p, it) {
    const { n, dim } = grid(p, 3);
    const [tin, tout] = it % 2 === 0 ? [0, 2 * n] : [2 * n, 0];
    return perWarp(p, function* (w) {
      for (const r of items(dim, p, w)) {
        for (let c = 0; c < dim; c++) {
          const cell = r * dim + c;
          yield enc(tin + cell, READ);
          if (r > 0) yield enc(tin + cell - dim, READ);
          if (r + 1 < dim) yield enc(tin + cell + dim, READ);
          yield enc(n + cell, READ);
          yield enc(tout + cell, WRITE);
        }
      }
      return undefined;
    });
  },
};

const matmul: Workload = {
  name: 'matmul',
  doc: 'tiled C = A x B over three dim x dim page matrices: each warp computes C tiles, reading a row of A tiles and a column of B tiles',
  kernel(p) {
    const { n, dim } = grid(p, 3);
    const t = Math.max(1, Math.min(p.tile, dim));
    const tiles = Math.ceil(dim / t);
    return perWarp(p, function* (w) {
      for (const ct of items(tiles * tiles, p, w)) {
        const ti = Math.floor(ct / tiles);
        const tj = ct % tiles;
        for (let tk = 0; tk < tiles; tk++) {
          for (let r = ti * t; r < Math.min(dim, ti * t + t); r++)
            for (let c = tk * t; c < Math.min(dim, tk * t + t); c++) yield enc(r * dim + c, READ);
          for (let r = tk * t; r < Math.min(dim, tk * t + t); r++)
            for (let c = tj * t; c < Math.min(dim, tj * t + t); c++) yield enc(n + r * dim + c, READ);
        }
        for (let r = ti * t; r < Math.min(dim, ti * t + t); r++)
          for (let c = tj * t; c < Math.min(dim, tj * t + t); c++) yield enc(2 * n + r * dim + c, WRITE);
      }
      return undefined;
    });
  },
};

/** Fraction of the vertices in the frontier at each BFS level (a frontier that grows, then dies). */
const BFS_FRONTIER = [0.002, 0.02, 0.1, 0.3, 0.35, 0.15, 0.06, 0.018];

const bfs: Workload = {
  name: 'bfs',
  doc: 'BFS-like frontier: per level, each frontier vertex reads its vertex page and edge pages and marks random neighbours (atomics) in the visited array',
  kernel(p, it) {
    const nv = Math.max(1, Math.floor(p.pages / 4));
    const ne = Math.max(1, p.pages - 2 * nv);
    return perWarp(p, function* (w) {
      const rng = new Prng(`bfs:${p.seed}:${it}:${w}`);
      for (const frac of BFS_FRONTIER) {
        const [lo, hi] = part(Math.max(1, Math.round(nv * frac)), p.warps, w);
        for (let i = lo; i < hi; i++) {
          const v = rng.int(nv);
          yield enc(v, READ);
          yield enc(2 * nv + Math.floor((v * ne) / nv), READ);
          yield enc(nv + rng.int(nv), ATOMIC);
        }
      }
      return undefined;
    });
  },
};

// ---------------------------------------------------------------------------------------------
// The four benchmarks of UVMSmart's prefetcher comparison (Ganguly et al., ISCA'19), as the page
// accesses their kernels make: Rodinia backprop, bfs and hotspot, PolyBench fdtd-2d, in the
// managed-memory versions UVMSmart runs (benchmarks/Managed/ of gpgpu-sim_UVMSmart). The arrays,
// their sizes relative to each other, the thread-block shapes and each block's loads and stores
// follow the kernels' code; the arithmetic is not modelled. The footprint sets the problem size.
//
// A GPU runs the blocks of a grid in blockIdx order (x fastest) on its resident slots as they
// free up; the blocks of these kernels all take about the same time, so here each of the
// `warps` programs is one resident block slot, and slot s runs blocks s, s + warps, ...: the
// blocks in flight at any time are a window sliding over the grid. UVMSmart's GTX 1080 Ti has 28
// SMs, each holding 2048 threads: 224 blocks of 256 threads (`--warps 224`).
// ---------------------------------------------------------------------------------------------

/** Array placement: each array starts on a 2 MiB boundary (cudaMallocManaged rounds so) when
 * the footprint holds them that way, else on the next page. Sizes in bytes; returns first pages. */
function place(pages: number, bytes: readonly number[]): number[] {
  const BLOCK = 512;
  const pagesOf = (b: number): number => Math.max(1, Math.ceil(b / 4096));
  const aligned = bytes.reduce((a, b) => a + Math.ceil(pagesOf(b) / BLOCK) * BLOCK, 0) <= pages;
  const out: number[] = [];
  let at = 0;
  for (const b of bytes) {
    out.push(at);
    at += aligned ? Math.ceil(pagesOf(b) / BLOCK) * BLOCK : pagesOf(b);
  }
  return out;
}

/**
 * A grid of `blocks` thread blocks on the `p.warps` resident slots (slot s runs blocks s,
 * s + slots, ...). `body(b, acc)` lists block b's accesses as (page, kind) by `acc`; a block's
 * repeated access of one page with one kind is made once (its threads run together).
 */
function blocksOnSlots(
  p: WorkloadParams,
  blocks: number,
  body: (b: number, acc: (page: number, kind: number) => void) => void,
): WarpProgram[] {
  return perWarp(p, function* (w) {
    const seen = new Set<number>();
    const list: number[] = [];
    const acc = (page: number, kind: number): void => {
      const e = enc(page, kind);
      if (page >= 0 && page < p.pages && !seen.has(e)) {
        seen.add(e);
        list.push(e);
      }
    };
    for (let b = w; b < blocks; b += Math.max(1, p.warps)) {
      seen.clear();
      list.length = 0;
      body(b, acc);
      yield* list;
    }
    return undefined;
  });
}

/** The pages of bytes [from, to) of an array starting at page `base`. */
function bytePages(
  base: number,
  from: number,
  to: number,
  kind: number,
  acc: (page: number, kind: number) => void,
): void {
  for (let pg = Math.floor(from / 4096); pg * 4096 < to; pg++) acc(base + pg, kind);
}

/**
 * Rodinia backprop (bpnn_train_cuda): in = input nodes, 16 hidden. Kernel 1,
 * bpnn_layerforward_CUDA, grid (1, in/16) of 16x16 threads: block `by` reads input_units[16by+1..]
 * and the 16 rows of 17 floats of input_weights from row 16by+1, writes the rows back and 16
 * floats of hidden_partial_sum. Kernel 2, bpnn_adjust_weights_cuda, same grid: reads
 * input_units (ly) and the same rows of input_weights2 and input_prev_weights, writes both.
 */
const rodiniaBackprop: Workload = {
  name: 'rodinia-backprop',
  doc: 'Rodinia backprop: layerforward (input units, weights read and written, partial sums) then adjust_weights (units, a second weight matrix and the previous weights read and written); 2 kernels an iteration',
  launches: 2,
  kernel(p, launch) {
    // Bytes per input node: units 4, partial sums 4, three weight matrices of 17 floats.
    const input = Math.max(16, Math.floor((p.pages * 4096) / 212 / 16) * 16);
    const row = 17 * 4;
    const [units, weights, partial, weights2, prev] = place(p.pages, [
      (input + 1) * 4,
      (input + 1) * row,
      input * 4,
      (input + 1) * row,
      (input + 1) * row,
    ]);
    const rows = (
      by: number,
      base: number,
      kind: number,
      acc: (page: number, kind: number) => void,
    ): void => {
      bytePages(base, (16 * by + 1) * row, (16 * by + 17) * row, kind, acc);
    };
    return blocksOnSlots(p, input / 16, (by, acc) => {
      bytePages(units, (16 * by + 1) * 4, (16 * by + 17) * 4, READ, acc);
      if (launch % 2 === 0) {
        rows(by, weights, READ, acc);
        rows(by, weights, WRITE, acc);
        bytePages(partial, 16 * by * 4, 16 * (by + 1) * 4, WRITE, acc);
      } else {
        rows(by, weights2, READ, acc);
        rows(by, prev, READ, acc);
        rows(by, weights2, WRITE, acc);
        rows(by, prev, WRITE, acc);
      }
    });
  },
};

/**
 * Rodinia hotspot (calculate_temp): an n x n grid of floats in three arrays (temperature in,
 * power, temperature out, swapped each launch), pyramid height 2, 16x16 blocks each computing a
 * 12x12 tile: block (bx, by) reads 16 rows of 16 floats of the temperature and the power around
 * its tile (clamped at the edges) and writes its 12 rows of the output.
 */
const rodiniaHotspot: Workload = {
  name: 'rodinia-hotspot',
  doc: 'Rodinia hotspot (pyramid height 2): 16x16 blocks read a 16-row halo tile of the temperature and power grids and write a 12-row tile of the output grid; the grids swap each kernel',
  kernel(p, launch) {
    const n = Math.max(16, Math.floor(Math.sqrt((p.pages * 4096) / 12)));
    const [t0, power, t1] = place(p.pages, [n * n * 4, n * n * 4, n * n * 4]);
    const [src, dst] = launch % 2 === 0 ? [t0, t1] : [t1, t0];
    const tile = 12;
    const cols = Math.ceil(n / tile);
    return blocksOnSlots(p, cols * cols, (b, acc) => {
      const bx = b % cols;
      const by = Math.floor(b / cols);
      const x0 = Math.max(0, bx * tile - 2);
      const x1 = Math.min(n, bx * tile - 2 + 16);
      for (let r = Math.max(0, by * tile - 2); r < Math.min(n, by * tile - 2 + 16); r++) {
        bytePages(src, (r * n + x0) * 4, (r * n + x1) * 4, READ, acc);
        bytePages(power, (r * n + x0) * 4, (r * n + x1) * 4, READ, acc);
      }
      for (let r = by * tile; r < Math.min(n, by * tile + tile); r++)
        bytePages(dst, (r * n + bx * tile) * 4, (r * n + Math.min(n, bx * tile + tile)) * 4, WRITE, acc);
    });
  },
};

/**
 * PolyBench/GPU fdtd-2d: ex, ey, hz (nx x ny floats) and _fict_; each time step launches three
 * kernels on 32x8 blocks (j = column, i = row): ey[i][j] -= 0.5(hz[i][j] - hz[i-1][j]) (row 0
 * from _fict_[t]); ex[i][j] -= 0.5(hz[i][j] - hz[i][j-1]); hz[i][j] -= 0.7(ex[i][j+1] - ex[i][j]
 * + ey[i+1][j] - ey[i][j]).
 */
const polybenchFdtd2d: Workload = {
  name: 'polybench-fdtd2d',
  doc: 'PolyBench fdtd-2d: per time step three kernels on 32x8 blocks update ey from hz, ex from hz, then hz from ex and ey (row-major n x n grids); 3 kernels an iteration',
  launches: 3,
  kernel(p, launch) {
    const n = Math.max(32, Math.floor(Math.sqrt((p.pages * 4096 - 4096) / 12)));
    const [fict, ex, ey, hz] = place(p.pages, [4096, n * n * 4, n * n * 4, n * n * 4]);
    const bx = Math.ceil(n / 32);
    const by = Math.ceil(n / 8);
    const k = launch % 3;
    return blocksOnSlots(p, bx * by, (b, acc) => {
      const j0 = (b % bx) * 32;
      const j1 = Math.min(n, j0 + 32);
      const i0 = Math.floor(b / bx) * 8;
      const at = (base: number, i: number, kind: number, lo = j0, hi = j1): void => {
        if (i >= 0 && i < n)
          bytePages(base, (i * n + Math.max(0, lo)) * 4, (i * n + Math.min(n, hi)) * 4, kind, acc);
      };
      for (let i = i0; i < Math.min(n, i0 + 8); i++) {
        if (k === 0) {
          if (i === 0) acc(fict, READ);
          at(ey, i, READ);
          at(hz, i, READ);
          at(hz, i - 1, READ);
          at(ey, i, WRITE);
        } else if (k === 1) {
          at(ex, i, READ);
          at(hz, i, READ, j0 - 1, j1);
          at(ex, i, WRITE);
        } else {
          at(hz, i, READ);
          at(ex, i, READ, j0, j1 + 1);
          at(ey, i, READ);
          at(ey, i + 1, READ);
          at(hz, i, WRITE);
        }
      }
    });
  },
};

/** Fraction of the nodes in the frontier at each BFS level of Rodinia's random graph1M. */
const RODINIA_BFS_LEVELS = [1e-6, 6e-6, 4e-5, 2.4e-4, 1.4e-3, 8e-3, 0.045, 0.2, 0.45, 0.25, 0.04, 0.002];

/**
 * Rodinia bfs: nodes (start, degree: 8 bytes), edges (4 bytes, about 6 per node), mask,
 * updating mask, visited (a byte each) and cost (4 bytes). Each level launches Kernel (every
 * thread reads mask[tid]; a frontier node reads its node and edge list, then the visited flag of
 * each neighbour and writes its cost and updating flag) and Kernel2 (every thread reads
 * updating[tid]; a node reached this level writes mask, visited and updating). 512-thread blocks;
 * frontier and neighbours are drawn from the seed (a random graph).
 */
const rodiniaBfs: Workload = {
  name: 'rodinia-bfs',
  doc: "Rodinia bfs on a random graph (about 6 edges a node): per level, Kernel scans the mask and expands frontier nodes (node, edges, random neighbours' visited, cost and updating) and Kernel2 scans the updating mask; 512-thread blocks",
  launches: 2 * RODINIA_BFS_LEVELS.length,
  kernel(p, launch) {
    const n = Math.max(512, Math.floor((p.pages * 4096) / 39));
    const edges = 6 * n;
    const [nodes, edge, mask, updating, visited, cost] = place(p.pages, [8 * n, 4 * edges, n, n, n, 4 * n]);
    const level = Math.floor(launch / 2) % RODINIA_BFS_LEVELS.length;
    const frac = RODINIA_BFS_LEVELS[level];
    const second = launch % 2 === 1;
    return blocksOnSlots(p, Math.ceil(n / 512), (b, acc) => {
      const t0 = b * 512;
      const t1 = Math.min(n, t0 + 512);
      const rng = new Prng(`rodinia-bfs:${p.seed}:${level}:${b}`);
      bytePages(second ? updating : mask, t0, t1, READ, acc);
      // The block's frontier (Kernel) or nodes reached at this level (Kernel2).
      const k = Math.floor((t1 - t0) * frac) + (rng.next() < ((t1 - t0) * frac) % 1 ? 1 : 0);
      for (let i = 0; i < k; i++) {
        const tid = t0 + rng.int(t1 - t0);
        if (second) {
          acc(mask + Math.floor(tid / 4096), WRITE);
          acc(visited + Math.floor(tid / 4096), WRITE);
          acc(updating + Math.floor(tid / 4096), WRITE);
          continue;
        }
        acc(nodes + Math.floor((8 * tid) / 4096), READ);
        const start = 6 * tid;
        bytePages(edge, 4 * start, 4 * (start + 6), READ, acc);
        for (let e = 0; e < 6; e++) {
          const id = rng.int(n);
          acc(visited + Math.floor(id / 4096), READ);
          acc(cost + Math.floor((4 * id) / 4096), WRITE);
          acc(updating + Math.floor(id / 4096), WRITE);
        }
      }
    });
  },
};

export const WORKLOADS: Readonly<Record<string, Workload>> = Object.fromEntries(
  [
    stream,
    linear,
    strided,
    random,
    stencil2d,
    hotspot,
    matmul,
    bfs,
    rodiniaBackprop,
    rodiniaBfs,
    rodiniaHotspot,
    polybenchFdtd2d,
  ].map((w) => [w.name, w]),
);
