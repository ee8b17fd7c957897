/**
 * Interval-notifier dispatch: munmap of one page with N = 100, 10k and 100k interval
 * subscriptions on the mm (the cost must grow like log N), and the query cost of
 * src/lib/interval_tree.ts against @flatten-js/interval-tree and sorted-btree on one workload.
 */
import FlattenIntervalTreeModule from '@flatten-js/interval-tree';
import { measure } from 'mitata';
import sortedBtree from 'sorted-btree';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src/kernel/mm/mman.ts';
import { mmuIntervalNotifierInsert } from '../src/kernel/mm/mmu_notifier.ts';
import { System, type Process } from '../src/kernel/system.ts';
import { IntervalTree } from '../src/lib/interval_tree.ts';
import { Prng } from '../src/lib/prng.ts';
import { PAGE_SIZE } from '../src/lib/units.ts';
import type { KGen } from '../src/sched/types.ts';
import {
  type BenchContext,
  type Figure,
  type Suite,
  check,
  median,
  nowNs,
  ratioFigure,
  round,
} from './figure.ts';
import { BenchMirror, benchMirrorOps } from './mirror.ts';

/** Where the subscribed pages start: far from anything mmap(0, ...) hands out first. */
const BASE = 2 ** 32;
/** sorted-btree is CommonJS with `exports.default`: under NodeNext the default import is module.exports. */
const BTree = sortedBtree.default;

/**
 * The part of @flatten-js/interval-tree used here. Its declarations import their siblings without
 * file extensions, which NodeNext resolution cannot follow, so the type is declared here.
 */
interface FlattenTree {
  insert(key: [number, number], value: number): unknown;
  search(key: [number, number]): number[];
}
const FlattenIntervalTree = FlattenIntervalTreeModule as unknown as new () => FlattenTree;
/** Pages unmapped one by one in each timed run. */
const UNMAPS = 100;

/** A process whose mm has `n` one-page subscriptions at BASE, BASE + 4K, ... */
interface SubscribedMm {
  readonly n: number;
  readonly sys: System;
  readonly p: Process;
  readonly mirrors: BenchMirror[];
  readonly perOp: number[];
}

function subscribe(n: number): SubscribedMm {
  const sys = new System({ ram: 64 * 1024 * 1024, swap: 0, thp: 'never' });
  const p = sys.createProcess('bench');
  const mm = p.mm!;
  const mirrors: BenchMirror[] = [];
  check(
    sys.run(
      'subscribe',
      (function* (): KGen<number> {
        for (let i = 0; i < n; i++) {
          const m = new BenchMirror(sys, `m${i}`);
          mirrors.push(m);
          const r = yield* mmuIntervalNotifierInsert(m, mm, BASE + i * PAGE_SIZE, PAGE_SIZE, benchMirrorOps);
          if (r < 0) return r;
        }
        return 0;
      })(),
    ),
    'subscribe',
  );
  return { n, sys, p, mirrors, perOp: [] };
}

/** One timed run: UNMAPS single-page munmaps, each hitting exactly one subscription. */
function munmapRun(w: SubscribedMm): number {
  const { sys, p } = w;
  const one = new Uint8Array(1);
  const len = UNMAPS * PAGE_SIZE;
  check(sys.mmap(p, BASE, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED), 'mmap');
  for (let i = 0; i < UNMAPS; i++) check(sys.write(p, BASE + i * PAGE_SIZE, one), 'write');
  const before = w.mirrors[0].invalidations;
  const t0 = nowNs();
  for (let i = 0; i < UNMAPS; i++) check(sys.munmap(p, BASE + i * PAGE_SIZE, PAGE_SIZE), 'munmap');
  const ns = (nowNs() - t0) / UNMAPS;
  if (w.mirrors[0].invalidations === before) throw new Error('munmap did not reach the subscribed mirror');
  return ns;
}

/**
 * Median ns of one single-page munmap for each N. The sizes are measured in interleaved rounds
 * after a warm-up round, so JIT warm-up and machine noise do not favour whichever runs last.
 */
function munmapCosts(sizes: readonly number[], runs: number): number[] {
  const worlds = sizes.map(subscribe);
  for (const w of worlds) munmapRun(w);
  for (let r = 0; r < runs; r++) for (const w of worlds) w.perOp.push(munmapRun(w));
  return worlds.map((w) => median(w.perOp));
}

interface Workload {
  starts: Float64Array;
  lasts: Float64Array;
  maxLen: number;
  queries: Float64Array;
}

/**
 * `n` intervals of 1..16 pages at distinct page-aligned random starts over a 2^36-byte space
 * (they may overlap, like notifiers of several devices), and point-or-small-range queries.
 */
function makeWorkload(n: number, q: number): Workload {
  const rng = new Prng(42);
  const span = 2 ** 24; // pages
  const seen = new Set<number>();
  const starts = new Float64Array(n);
  const lasts = new Float64Array(n);
  let maxLen = 0;
  for (let i = 0; i < n; i++) {
    let s: number;
    do s = rng.int(span) * PAGE_SIZE;
    while (seen.has(s));
    seen.add(s);
    const len = (1 + rng.int(16)) * PAGE_SIZE;
    starts[i] = s;
    lasts[i] = s + len - 1;
    if (len > maxLen) maxLen = len;
  }
  const queries = new Float64Array(2 * q);
  for (let i = 0; i < q; i++) {
    const s = rng.int(span) * PAGE_SIZE;
    queries[2 * i] = s;
    queries[2 * i + 1] = s + (1 + rng.int(4)) * PAGE_SIZE - 1;
  }
  return { starts, lasts, maxLen, queries };
}

/** ns per query (median of mitata's samples of one pass over every query). */
async function queryCost(
  w: Workload,
  query: (s: number, l: number) => number,
): Promise<{ ns: number; hits: number }> {
  const q = w.queries.length / 2;
  let hits = 0;
  const pass = (): number => {
    let k = 0;
    for (let i = 0; i < q; i++) k += query(w.queries[2 * i], w.queries[2 * i + 1]);
    return k;
  };
  hits = pass();
  const stats = await measure(pass, { min_samples: 20, min_cpu_time: 300e6 });
  return { ns: stats.p50 / q, hits };
}

async function treeComparison(ctx: BenchContext): Promise<Figure[]> {
  const n = ctx.smoke ? 10_000 : 100_000;
  const w = makeWorkload(n, 1000);

  const ours = new IntervalTree<number>();
  const flat = new FlattenIntervalTree();
  const btree = new BTree<number, number>();
  for (let i = 0; i < n; i++) {
    ours.insert(w.starts[i], w.lasts[i], i);
    flat.insert([w.starts[i], w.lasts[i]], i);
    btree.set(w.starts[i], w.lasts[i]);
  }
  const maxLen = w.maxLen;

  ctx.progress('notifier.itree_query (hetmem)');
  const a = await queryCost(w, (s, l) => ours.countOverlapping(s, l));
  ctx.progress('notifier.itree_query (@flatten-js/interval-tree)');
  const b = await queryCost(w, (s, l) => flat.search([s, l]).length);
  ctx.progress('notifier.itree_query (sorted-btree)');
  // Sorted starts: only intervals starting in [s - maxLen + 1, l] can reach s; keep those that do.
  const c = await queryCost(w, (s, l) => {
    let k = 0;
    btree.forRange(s - maxLen + 1, l, true, (_start, last) => {
      if (last >= s) k++;
    });
    return k;
  });
  if (a.hits !== b.hits || a.hits !== c.hits) {
    throw new Error(`interval indexes disagree: ${a.hits} / ${b.hits} / ${c.hits} overlaps`);
  }
  const goal = 'hetmem IntervalTree faster (ratio < 1)';
  return [
    ratioFigure(
      { name: 'notifier.itree_query_vs_flatten_js', value: a.ns, unit: 'ns/query', anchor: b.ns, goal },
      (r) => r < 1,
    ),
    ratioFigure(
      { name: 'notifier.itree_query_vs_sorted_btree', value: a.ns, unit: 'ns/query', anchor: c.ns, goal },
      (r) => r < 1,
    ),
  ];
}

export const notifierSuite: Suite = {
  name: 'notifier',
  async run(ctx: BenchContext): Promise<Figure[]> {
    const runs = ctx.smoke ? 3 : 15;
    const sizes = ctx.smoke ? [100, 1000, 10_000] : [100, 10_000, 100_000];
    const label = (n: number): string => (n >= 1000 ? `${n / 1000}k` : String(n));
    ctx.progress(`notifier.munmap_1page (N = ${sizes.map(label).join(', ')})`);
    const costs = munmapCosts(sizes, runs);
    const figures: Figure[] = [
      {
        name: `notifier.munmap_1page.n${label(sizes[0])}`,
        value: round(costs[0]),
        unit: 'ns/munmap',
        goal: 'anchor of the larger N',
        pass: true,
      },
    ];
    for (let i = 1; i < sizes.length; i++) {
      figures.push(
        ratioFigure(
          {
            name: `notifier.munmap_1page.n${label(sizes[i])}`,
            value: costs[i],
            unit: 'ns/munmap',
            anchor: costs[0],
            goal: `cost(${label(sizes[i])}) <= 3x cost(${label(sizes[0])})`,
          },
          (r) => r <= 3,
        ),
      );
    }
    figures.push(...(await treeComparison(ctx)));
    return figures;
  },
};
