/**
 * The public API as a program uses it: the first write of each page through `sys.write` on a
 * fresh System (at 10k and 1M pages, to show the cost does not grow with the resident pages), a
 * one-byte load and store to pages already mapped, and the replay of a CPU access trace of
 * mostly hits through `sys.replay`.
 */
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_POPULATE, PROT_READ, PROT_WRITE } from '../src/kernel/mm/mman.ts';
import { System, type Process } from '../src/kernel/system.ts';
import { Prng } from '../src/lib/prng.ts';
import { PAGE_SIZE } from '../src/lib/units.ts';
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

const RW = PROT_READ | PROT_WRITE;
const MiB = 1024 * 1024;

function freshSystem(npages: number): { sys: System; p: Process; addr: number } {
  const len = npages * PAGE_SIZE;
  const sys = new System({ ram: len + 64 * MiB, swap: 0, thp: 'never' });
  const p = sys.createProcess('bench');
  const addr = check(sys.mmap(p, 0, len, RW, MAP_PRIVATE | MAP_ANONYMOUS), 'mmap');
  return { sys, p, addr };
}

/**
 * The timed loop of firstWriteNs(), a function of its own as a program's loop over its pages would
 * be. In the caller's body it shared the caller's optimised code, which the harness around it
 * deoptimised from run to run (the first push to `times` after the warm-up, among others): the
 * next run's loop then started unoptimised again.
 */
function writeEachPage(sys: System, p: Process, addr: number, npages: number, one: Uint8Array): number {
  const t0 = nowNs();
  for (let i = 0; i < npages; i++)
    if (sys.write(p, addr + i * PAGE_SIZE, one) !== 1) throw new Error('write');
  return nowNs() - t0;
}

/** ns per page of the first one-byte write to each of `npages` pages of a fresh System. */
function firstWriteNs(npages: number, runs: number, warmup: number): number {
  const one = Uint8Array.of(1);
  const times: number[] = [];
  for (let r = 0; r < warmup + runs; r++) {
    const { sys, p, addr } = freshSystem(npages);
    const t = writeEachPage(sys, p, addr, npages, one);
    if (r >= warmup) times.push(t / npages);
  }
  return median(times);
}

/** ns per one-byte access to pages already mapped (cycling over `npages` resident pages). */
function hitNs(write: boolean, npages: number, accesses: number, runs: number): number {
  const len = npages * PAGE_SIZE;
  const sys = new System({ ram: len + 64 * MiB, swap: 0, thp: 'never' });
  const p = sys.createProcess('bench');
  const addr = check(sys.mmap(p, 0, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE), 'mmap');
  const one = Uint8Array.of(7);
  const times: number[] = [];
  for (let r = 0; r < runs + 1; r++) {
    const t0 = nowNs();
    for (let i = 0; i < accesses; i++) {
      const a = addr + (i % npages) * PAGE_SIZE + (i & 0xff);
      if (write) sys.write(p, a, one);
      else sys.read(p, a, 1);
    }
    const t = nowNs() - t0;
    if (r > 0) times.push(t / accesses);
  }
  return median(times);
}

/**
 * Accesses per second replaying a trace of `accesses` one-byte loads and stores (one in four a
 * store): 99% to `hot` pages already resident, 1% to pages of a cold region touched for the first
 * time (they fault).
 */
function replayPerSecond(hot: number, accesses: number, runs: number): number {
  const times: number[] = [];
  for (let r = 0; r < runs + 1; r++) {
    const cold = Math.ceil(accesses / 100) + 16;
    const sys = new System({ ram: (hot + cold) * PAGE_SIZE + 64 * MiB, swap: 0, thp: 'never' });
    const p = sys.createProcess('bench');
    const hotAddr = check(
      sys.mmap(p, 0, hot * PAGE_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE),
      'mmap',
    );
    const coldAddr = check(sys.mmap(p, 0, cold * PAGE_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS), 'mmap');
    const rng = new Prng(r + 1);
    const addrs = new Float64Array(accesses);
    const writes = new Uint8Array(accesses);
    let nextCold = 0;
    for (let i = 0; i < accesses; i++) {
      const toCold = rng.nextU32() % 100 === 0;
      const page = toCold ? nextCold++ : rng.nextU32() % hot;
      addrs[i] = (toCold ? coldAddr : hotAddr) + page * PAGE_SIZE + (rng.nextU32() % PAGE_SIZE);
      writes[i] = rng.nextU32() % 4 === 0 ? 1 : 0;
    }
    const t0 = nowNs();
    const res = sys.replay(p, addrs, writes);
    const t = nowNs() - t0;
    if (res.ret !== 0 || res.count !== accesses)
      throw new Error(`replay stopped at ${res.count}: ${res.ret}`);
    if (r > 0) times.push(t);
  }
  return accesses / (median(times) / 1e9);
}

export const apiSuite: Suite = {
  name: 'api',
  run(ctx: BenchContext): Promise<Figure[]> {
    const small = ctx.smoke ? 2_000 : 10_000;
    const large = ctx.smoke ? 20_000 : 1_000_000;
    const sizeName = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);
    ctx.progress(`api.first_write.${sizeName(small)}`);
    // The 10k runs are also the JIT's warm-up for the whole path: two runs of 10k pages left the
    // third still several times slower than the steady state, so the figure measured the tier-up.
    const smallNs = firstWriteNs(small, ctx.smoke ? 2 : 5, ctx.smoke ? 2 : 10);
    ctx.progress(`api.first_write.${sizeName(large)}`);
    const largeNs = firstWriteNs(large, ctx.smoke ? 1 : 3, 0);
    const figures: Figure[] = [
      {
        name: `api.first_write.${sizeName(small)}`,
        value: round(smallNs),
        unit: 'ns/page',
        goal: '<= 500 ns/page',
        pass: smallNs <= 500,
      },
      ratioFigure(
        {
          name: `api.first_write.${sizeName(large)}`,
          value: largeNs,
          unit: 'ns/page',
          anchor: smallNs,
          goal: `<= 500 ns/page and <= 1.3x the cost at ${sizeName(small)} pages`,
        },
        (ratio) => ratio <= 1.3 && largeNs <= 500,
      ),
    ];
    const hitPages = ctx.smoke ? 1024 : 65_536;
    const hits = ctx.smoke ? 100_000 : 2_000_000;
    for (const write of [false, true]) {
      const name = write ? 'api.hit_store' : 'api.hit_load';
      ctx.progress(name);
      const ns = hitNs(write, hitPages, hits, ctx.smoke ? 1 : 5);
      figures.push({ name, value: round(ns), unit: 'ns/access', goal: '<= 100 ns', pass: ns <= 100 });
    }
    ctx.progress('api.trace_replay');
    const perSecond = replayPerSecond(hitPages, ctx.smoke ? 200_000 : 4_000_000, ctx.smoke ? 1 : 3);
    figures.push({
      name: 'api.trace_replay',
      value: round(perSecond),
      unit: 'accesses/s',
      goal: '>= 10M accesses/s (99% hits)',
      pass: perSecond >= 10_000_000,
    });
    return Promise.resolve(figures);
  },
};
