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
  /** One GPU kernel: a program per warp. */
  kernel(p: WorkloadParams, iteration: number): WarpProgram[];
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

export const WORKLOADS: Readonly<Record<string, Workload>> = Object.fromEntries(
  [stream, linear, strided, random, stencil2d, hotspot, matmul, bfs].map((w) => [w.name, w]),
);
