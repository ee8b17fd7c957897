/**
 * When nothing else can be scheduled, kernel paths run in their plain-function form (derived by
 * scripts/derive-plain.mjs) and loads and stores to mapped pages take the MMU's hit path without
 * a thread. Either must give what the generator form on the scheduler gives: the same results,
 * memory, page tables, counters, step counts and trace. Each random program runs once each way
 * (`plainPaths: false` puts every call on the scheduler) and the two runs are compared.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Errno } from '../../src/kernel/errno.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '../../src/kernel/mm/mman.ts';
import { System, type Process } from '../../src/kernel/system.ts';
import { PAGE_SIZE } from '../../src/lib/units.ts';

const REGION_PAGES = 8;

type Op =
  | { kind: 'write'; proc: number; region: number; at: number; len: number; seed: number }
  | { kind: 'read'; proc: number; region: number; at: number; len: number }
  | {
      kind: 'replay';
      proc: number;
      accesses: { region: number; at: number; write: boolean; value: number }[];
    }
  | { kind: 'mprotect'; region: number; page: number; npages: number; writable: boolean }
  | { kind: 'dontneed'; region: number; page: number; npages: number }
  | { kind: 'fork' }
  | { kind: 'reclaim'; pages: number }
  | { kind: 'wild'; proc: number; addr: number; write: boolean };

const span = REGION_PAGES * PAGE_SIZE;
// Offsets cluster at page edges so accesses cross pages and stay inside one.
const atArb = fc.oneof(
  fc.nat(span - 1),
  fc.nat(REGION_PAGES - 1).map((p) => p * PAGE_SIZE),
  fc.nat(REGION_PAGES - 1).map((p) => p * PAGE_SIZE + PAGE_SIZE - 2),
);
const lenArb = fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 2 * PAGE_SIZE }));
const procArb = fc.nat(1);
// Private, shared, read-only, and a private 2 MiB region that faults in as one huge page.
const regionArb = fc.nat(3);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      proc: procArb,
      region: regionArb,
      at: atArb,
      len: lenArb,
      seed: fc.nat(255),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      proc: procArb,
      region: regionArb,
      at: atArb,
      len: lenArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('replay' as const),
      proc: procArb,
      accesses: fc.array(
        fc.record({ region: regionArb, at: atArb, write: fc.boolean(), value: fc.nat(255) }),
        { maxLength: 24 },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('mprotect' as const),
      region: regionArb,
      page: fc.nat(REGION_PAGES - 1),
      npages: fc.integer({ min: 1, max: 3 }),
      writable: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('dontneed' as const),
      region: regionArb,
      page: fc.nat(REGION_PAGES - 1),
      npages: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'fork' as const }) },
  {
    // Pages swapped out: later accesses fault them back in.
    weight: 1,
    arbitrary: fc.constantFrom(0, 1, 4, 16).map((pages) => ({ kind: 'reclaim' as const, pages })),
  },
  {
    // Addresses the entry checks refuse or that leave the user address space.
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('wild' as const),
      proc: procArb,
      addr: fc.constantFrom(-PAGE_SIZE, -1, 0.5, 2 ** 47 - 1, 2 ** 47, 2 ** 53, Number.NaN, 0),
      write: fc.boolean(),
    }),
  },
);

/** A private anonymous region on a 2 MiB boundary with MADV_HUGEPAGE: its first write maps a huge page. */
function hugeRegion(sys: System, p: Process): number {
  const huge = 2 * 1024 * 1024;
  const raw = sys.mmap(p, 0, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const base = Math.ceil(raw / huge) * huge;
  sys.madvise(p, base, huge, MADV.HUGEPAGE);
  return base;
}

interface Outcome {
  results: unknown[];
  memory: string[];
  steps: number;
  counters: [string, number][];
  events: string;
  stats: string;
}

function runProgram(ops: readonly Op[], onThreads: boolean): Outcome {
  const sys = new System({
    ram: 64 * 1024 * 1024,
    swap: 16 * 1024 * 1024,
    thp: 'madvise',
    trace: true,
    plainPaths: !onThreads,
  });
  const parent = sys.createProcess('parent');
  const procs: Process[] = [parent];
  const rw = PROT_READ | PROT_WRITE;
  const regions = [
    sys.mmap(parent, 0, span, rw, MAP_PRIVATE | MAP_ANONYMOUS),
    sys.mmap(parent, 0, span, rw, MAP_SHARED | MAP_ANONYMOUS),
    sys.mmap(parent, 0, span, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS),
    hugeRegion(sys, parent),
  ];
  const results: unknown[] = [];
  const procOf = (i: number): Process => procs[Math.min(i, procs.length - 1)];
  for (const op of ops) {
    switch (op.kind) {
      case 'write': {
        const data = new Uint8Array(op.len).map((_, i) => (op.seed + i) & 0xff);
        results.push(sys.write(procOf(op.proc), regions[op.region] + op.at, data));
        break;
      }
      case 'read': {
        const r = sys.read(procOf(op.proc), regions[op.region] + op.at, op.len);
        results.push([r.ret, Array.from(r.data)]);
        break;
      }
      case 'replay': {
        const addrs = Float64Array.from(op.accesses, (a) => regions[a.region] + a.at);
        const writes = Uint8Array.from(op.accesses, (a) => (a.write ? 1 : 0));
        const values = Uint8Array.from(op.accesses, (a) => a.value);
        results.push(sys.replay(procOf(op.proc), addrs, writes, values));
        break;
      }
      case 'mprotect':
        results.push(
          sys.mprotect(
            parent,
            regions[op.region] + op.page * PAGE_SIZE,
            op.npages * PAGE_SIZE,
            op.writable ? rw : PROT_READ,
          ),
        );
        break;
      case 'dontneed':
        results.push(
          sys.madvise(parent, regions[op.region] + op.page * PAGE_SIZE, op.npages * PAGE_SIZE, MADV.DONTNEED),
        );
        break;
      case 'wild':
        results.push(
          op.write
            ? sys.write(procOf(op.proc), op.addr, Uint8Array.of(1))
            : sys.read(procOf(op.proc), op.addr, 1).ret,
        );
        break;
      case 'reclaim':
        results.push(sys.reclaim(op.pages));
        break;
      case 'fork':
        if (procs.length < 2) {
          const { ret, child } = sys.fork(parent, 'child');
          results.push(ret);
          if (child !== null) procs.push(child);
        }
        break;
    }
  }
  const memory: string[] = [];
  for (const p of procs) {
    for (const base of regions) memory.push(JSON.stringify(sys.pagemap(p, base, REGION_PAGES)));
  }
  // Read everything back last, on threads in both runs, after the page tables were recorded.
  sys.config.plainPaths = false;
  for (const p of procs)
    for (const base of regions) memory.push(Array.from(sys.read(p, base, span).data).join(','));
  return {
    results,
    memory,
    steps: sys.sched.totalSteps,
    counters: [...sys.trace.counters].sort(),
    events: JSON.stringify(sys.trace.events),
    stats: JSON.stringify([sys.stats(), ...procs.map((p) => sys.stats(p))]),
  };
}

describe('paths run without a thread match the same calls on threads', () => {
  it('random programs of reads, writes, trace replays, mprotect, MADV_DONTNEED and fork', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        assert.deepEqual(runProgram(ops, false), runProgram(ops, true));
      }),
      { numRuns: 150 },
    );
  });

  it('a replay over huge, swapped, copy-on-write and read-only pages matches the same accesses on threads', () => {
    const accesses = (write: boolean) =>
      Array.from({ length: 4 * REGION_PAGES }, (_, i) => ({
        region: i % 4,
        at: ((i * 5) % REGION_PAGES) * PAGE_SIZE + i,
        write: write && i % 4 !== 2 && i % 5 !== 0,
        value: i,
      }));
    const ops: Op[] = [
      { kind: 'replay', proc: 0, accesses: accesses(true) },
      { kind: 'fork' },
      { kind: 'reclaim', pages: 0 },
      { kind: 'replay', proc: 1, accesses: accesses(false) },
      { kind: 'replay', proc: 0, accesses: accesses(true) },
      { kind: 'replay', proc: 1, accesses: accesses(true) },
    ];
    const mapped = (upTo: number): string => runProgram(ops.slice(0, upTo), false).memory.join('\n');
    assert.match(mapped(2), /"thp":true/, 'the fourth region is mapped by a huge page');
    assert.match(mapped(3), /"kind":"swap"/, 'pages were swapped out');
    const plain = runProgram(ops, false);
    assert.deepEqual(plain, runProgram(ops, true));
    const full = { count: 4 * REGION_PAGES, ret: 0 };
    assert.deepEqual(plain.results.slice(-3), [full, full, full]);
  });

  it('a replay stops at the first access that fails and returns its errno', () => {
    const sys = new System({ ram: 64 * 1024 * 1024 });
    const p = sys.createProcess('p');
    const a = sys.mmap(p, 0, 2 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    const r = sys.replay(p, Float64Array.of(a, a + PAGE_SIZE, a), Uint8Array.of(0, 0, 1));
    assert.deepEqual(r, { count: 2, ret: -Errno.EFAULT });
    assert.deepEqual(sys.replay(p, Float64Array.of(a), Uint8Array.of(0, 0)), {
      count: 0,
      ret: -Errno.EINVAL,
    });
  });
});
