/**
 * The dmirror driver's ioctls (lib/test_hmm.c) have a plain form derived from their generator
 * source (test_hmm.plain.ts, test_hmm_devmem.plain.ts, with migrate_device.plain.ts and the SDK's
 * device_ioctl.plain.ts and devmem.plain.ts under them), which a system call takes when nothing
 * else can be scheduled. Each random program of CPU accesses and dmirror ioctls runs once with
 * every path on the scheduler (`plainPaths: false`) and once in plain form: results, memory, page
 * tables, device page tables, counters, step counts and the trace must be the same.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_FLAG_FAIL_ALLOC,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
  createDmirrorDevice,
  dmirrorOpen,
} from '../../../src/kernel/drivers/test_hmm.ts';
import { MADV, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/kernel/mm/mman.ts';
import { System } from '../../../src/kernel/system.ts';
import { PAGE_SIZE } from '../../../src/lib/units.ts';
import { assertOracles } from '../../../src/oracles/index.ts';

const REGION_PAGES = 8;
const span = REGION_PAGES * PAGE_SIZE;

const IOCTLS = [
  HMM_DMIRROR_READ,
  HMM_DMIRROR_WRITE,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_RELEASE,
] as const;

type Op =
  | {
      kind: 'ioctl';
      dev: number;
      name: (typeof IOCTLS)[number];
      region: number;
      page: number;
      npages: number;
      seed: number;
    }
  | { kind: 'write'; region: number; at: number; len: number; seed: number }
  | { kind: 'read'; region: number; at: number; len: number }
  | { kind: 'dontneed'; region: number; page: number; npages: number };

const pageArb = fc.nat(REGION_PAGES - 1);
const regionArb = fc.nat(1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('ioctl' as const),
      dev: fc.nat(1),
      name: fc.constantFrom(...IOCTLS),
      region: regionArb,
      page: pageArb,
      npages: fc.integer({ min: 1, max: REGION_PAGES }),
      seed: fc.nat(255),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      region: regionArb,
      at: fc.nat(span - 1),
      len: fc.integer({ min: 1, max: 2 * PAGE_SIZE }),
      seed: fc.nat(255),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      region: regionArb,
      at: fc.nat(span - 1),
      len: fc.integer({ min: 1, max: 2 * PAGE_SIZE }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('dontneed' as const),
      region: regionArb,
      page: pageArb,
      npages: fc.integer({ min: 1, max: 3 }),
    }),
  },
);

/** A digest of bytes: their sum and the offsets of the nonzero ones (the contents are sparse). */
function digest(b: Uint8Array): string {
  let sum = 0;
  const nz: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) continue;
    sum += b[i];
    if (nz.length < 64) nz.push(i);
  }
  return `${sum}:${nz.join(',')}`;
}

function runProgram(ops: readonly Op[], plain: boolean, coherent: boolean): unknown {
  const sys = new System({ ram: 256 * 1024 * 1024, swap: 0, trace: true, plainPaths: plain });
  const p = sys.createProcess('p');
  createDmirrorDevice(sys, 'hmm_dmirror0', coherent ? 'coherent' : 'private');
  createDmirrorDevice(sys, 'hmm_dmirror1', 'private');
  const fds = [
    sys.run('open', dmirrorOpen(sys, 'hmm_dmirror0', p)),
    sys.run('open', dmirrorOpen(sys, 'hmm_dmirror1', p)),
  ];
  const rw = PROT_READ | PROT_WRITE;
  const regions = [
    sys.mmap(p, 0, span, rw, MAP_PRIVATE | MAP_ANONYMOUS),
    sys.mmap(p, 0, span, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS),
  ];
  const results: unknown[] = [];
  for (const op of ops) {
    switch (op.kind) {
      case 'ioctl': {
        const npages = Math.min(op.npages, REGION_PAGES - op.page);
        const buf = new Uint8Array(npages * PAGE_SIZE).map((_, i) => (op.seed + i) & 0xff);
        const cmd: Record<string, unknown> = {
          addr: regions[op.region] + op.page * PAGE_SIZE,
          npages: op.name === HMM_DMIRROR_FLAGS ? HMM_DMIRROR_FLAG_FAIL_ALLOC : npages,
          buf,
        };
        const ret = sys.ioctl(fds[op.dev], op.name, cmd);
        results.push([op.name, ret, cmd.cpages, cmd.faults, digest(buf)]);
        break;
      }
      case 'write': {
        const data = new Uint8Array(op.len).map((_, i) => (op.seed + i) & 0xff);
        results.push(sys.write(p, regions[op.region] + op.at, data));
        break;
      }
      case 'read': {
        const r = sys.read(p, regions[op.region] + op.at, op.len);
        results.push([r.ret, digest(r.data)]);
        break;
      }
      case 'dontneed':
        results.push(
          sys.madvise(p, regions[op.region] + op.page * PAGE_SIZE, op.npages * PAGE_SIZE, MADV.DONTNEED),
        );
        break;
    }
  }
  const memory: string[] = [];
  for (const base of regions) memory.push(JSON.stringify(sys.pagemap(p, base, REGION_PAGES)));
  const snap = (fd: number, base: number): string => {
    const buf = new Uint8Array(REGION_PAGES);
    const ret = sys.ioctl(fd, HMM_DMIRROR_SNAPSHOT, { addr: base, npages: REGION_PAGES, buf });
    return `${ret}:${Array.from(buf).join(',')}`;
  };
  for (const fd of fds) for (const base of regions) memory.push(snap(fd, base));
  // Read everything back last, on threads in both runs.
  sys.config.plainPaths = false;
  for (const base of regions) memory.push(digest(sys.read(p, base, span).data));
  const out = {
    results,
    memory,
    steps: sys.sched.totalSteps,
    counters: [...sys.trace.counters].sort(),
    events: JSON.stringify(sys.trace.events),
    stats: JSON.stringify([sys.stats(), sys.stats(p)]),
  };
  for (const fd of fds) assert.equal(sys.close(fd), 0);
  sys.exit(p);
  assertOracles(sys, { teardown: true });
  return out;
}

describe('the dmirror ioctls in plain form match their generator form', () => {
  it('random programs of dmirror ioctls (device-private memory), CPU accesses and MADV_DONTNEED', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 24 }), (ops) => {
        assert.deepEqual(runProgram(ops, true, false), runProgram(ops, false, false));
      }),
      { numRuns: 40 },
    );
  });

  it('the same with device-coherent memory behind the first device', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 24 }), (ops) => {
        assert.deepEqual(runProgram(ops, true, true), runProgram(ops, false, true));
      }),
      { numRuns: 25 },
    );
  });

  it('a migration of 1024 pages to the device and back takes the same steps in both forms', () => {
    const steps = (plain: boolean): number => {
      const sys = new System({ ram: 256 * 1024 * 1024, swap: 0, plainPaths: plain });
      const p = sys.createProcess('p');
      createDmirrorDevice(sys, 'hmm_dmirror0', 'private');
      const fd = sys.run('open', dmirrorOpen(sys, 'hmm_dmirror0', p));
      const n = 1024;
      const addr = sys.mmap(p, 0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const buf = new Uint8Array(n * PAGE_SIZE);
      const before = sys.sched.totalSteps;
      const to: Record<string, unknown> = { addr, npages: n, buf };
      assert.equal(sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, to), 0);
      assert.equal(to.cpages, n);
      const back: Record<string, unknown> = { addr, npages: n, buf };
      assert.equal(sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_SYS, back), 0);
      assert.ok(typeof back.cpages === 'number' && back.cpages > 0);
      return sys.sched.totalSteps - before;
    };
    assert.equal(steps(true), steps(false));
  });
});
