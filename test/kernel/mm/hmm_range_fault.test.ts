import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import type { MmStruct } from '../../../src/kernel/mm/mm_types.ts';
import * as mman from '../../../src/kernel/mm/mman.ts';
import {
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  type HmmRange,
  hmmPfnFlags,
  hmmPfnPfn,
  hmmPfnToMapOrder,
  hmmRangeFault,
} from '../../../src/kernel/mm/hmm.ts';
import {
  MMU_NOTIFY,
  type MmuIntervalNotifier,
  mmuIntervalReadBegin,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from '../../../src/kernel/mm/mmu_notifier.ts';
import { tlbLookup } from '../../../src/kernel/mm/memory.ts';
import type { System } from '../../../src/kernel/system.ts';
import { assertOracles } from '../../../src/oracles/index.ts';
import type { KGen } from '../../../src/sched/types.ts';
import { PAGE, TestDev, insertRecorder, newSystem, pattern, removeRecorders } from './hmm_testdev.ts';

const RW = mman.PROT_READ | mman.PROT_WRITE;
const ANON = mman.MAP_PRIVATE | mman.MAP_ANONYMOUS;

interface FaultOpts {
  defaultFlags?: number;
  mask?: number;
  owner?: unknown;
  inputs?: number[];
}

/** The canonical driver read section: read_begin, mmap read lock, hmm_range_fault. */
function* faultRange(
  mm: MmStruct,
  sub: MmuIntervalNotifier,
  start: number,
  npages: number,
  o: FaultOpts,
): KGen<{ ret: number; words: Uint32Array; seq: number }> {
  const words = new Uint32Array(2 * npages);
  o.inputs?.forEach((v, i) => (words[2 * i + 1] = v));
  const seq = yield* mmuIntervalReadBegin(sub);
  const range: HmmRange = {
    notifier: sub,
    notifierSeq: seq,
    start,
    end: start + npages * PAGE,
    hmmPfns: words,
    defaultFlags: o.defaultFlags ?? 0,
    pfnFlagsMask: o.mask ?? 0,
    devPrivateOwner: o.owner ?? null,
  };
  yield* mm.mmapLock.downRead();
  const ret = yield* hmmRangeFault(range);
  yield* mm.mmapLock.upRead();
  return { ret, words, seq };
}

/** One read section; -EBUSY is retried as the canonical driver loop does (a bounded number of times). */
function run(
  sys: System,
  mm: MmStruct,
  sub: MmuIntervalNotifier,
  start: number,
  n: number,
  o: FaultOpts = {},
) {
  for (let tries = 0; ; tries++) {
    const r = sys.run('hmm', faultRange(mm, sub, start, n, o));
    if (r.ret !== -Errno.EBUSY || tries > 8) return r;
  }
}

function teardown(sys: System): void {
  removeRecorders(sys);
  for (const p of [...sys.processes.values()]) sys.exit(p);
  assertOracles(sys, { teardown: true });
}

describe('hmm_range_fault', () => {
  it('snapshot reports none, zero page, writable pages, with the PFNs the CPU maps', () => {
    const { sys, p, mm } = newSystem();
    const sub = insertRecorder(sys, mm);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    sys.write(p, a + PAGE, pattern(8, 1));
    sys.read(p, a + 2 * PAGE, 8);
    const { ret, words } = run(sys, mm, sub, a, 4);
    assert.equal(ret, 0);
    assert.equal(hmmPfnFlags(words, 0), 0);
    assert.equal(hmmPfnFlags(words, 1), (HMM_PFN_VALID | HMM_PFN_WRITE) >>> 0);
    assert.equal(hmmPfnPfn(words, 1), tlbLookup(mm, a + PAGE, false));
    assert.equal(hmmPfnFlags(words, 2), HMM_PFN_VALID);
    assert.equal(hmmPfnPfn(words, 2), sys.phys.zeroPfn);
    assert.equal(hmmPfnToMapOrder(words, 1), 0);
    assert.equal(hmmPfnFlags(words, 3), 0);
    teardown(sys);
  });

  it('fault mode faults pages in: REQ_FAULT maps the zero page, REQ_WRITE a private copy', () => {
    const { sys, p, mm } = newSystem();
    const sub = insertRecorder(sys, mm);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    const r1 = run(sys, mm, sub, a, 2, { defaultFlags: HMM_PFN_REQ_FAULT });
    assert.equal(r1.ret, 0);
    assert.equal(hmmPfnFlags(r1.words, 0), HMM_PFN_VALID);
    assert.equal(hmmPfnPfn(r1.words, 0), sys.phys.zeroPfn);
    const r2 = run(sys, mm, sub, a, 2, { defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    assert.equal(r2.ret, 0);
    assert.equal(hmmPfnFlags(r2.words, 0), (HMM_PFN_VALID | HMM_PFN_WRITE) >>> 0);
    assert.notEqual(hmmPfnPfn(r2.words, 0), sys.phys.zeroPfn);
    assert.equal(hmmPfnPfn(r2.words, 1), tlbLookup(mm, a + PAGE, true));
    teardown(sys);
  });

  it('per-page requests through pfn_flags_mask', () => {
    const { sys, p, mm } = newSystem();
    const sub = insertRecorder(sys, mm);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    // With a PTE table present each entry is judged alone (a missing table is one hole whose
    // requests are or-ed together, so everything in it would be write-faulted).
    sys.read(p, a, 4 * PAGE);
    const inputs = [0, HMM_PFN_REQ_WRITE, 0, 0];
    const r = run(sys, mm, sub, a, 4, { defaultFlags: HMM_PFN_REQ_FAULT, mask: HMM_PFN_REQ_WRITE, inputs });
    assert.equal(r.ret, 0);
    assert.equal(hmmPfnFlags(r.words, 0), HMM_PFN_VALID, 'page 0 asked for read only');
    assert.equal(hmmPfnFlags(r.words, 1), (HMM_PFN_VALID | HMM_PFN_WRITE) >>> 0);
    teardown(sys);
  });

  it('holes, PROT_NONE and VM_IO: ERROR in a snapshot, -EFAULT when a fault is asked for', () => {
    const { sys, p, mm } = newSystem();
    const sub = insertRecorder(sys, mm);
    const a = sys.mmap(p, 0, 8 * PAGE, RW, ANON);
    sys.munmap(p, a + 2 * PAGE, 2 * PAGE);
    sys.mprotect(p, a + 4 * PAGE, 2 * PAGE, mman.PROT_NONE);
    sys.write(p, a, pattern(8, 2));
    const s = run(sys, mm, sub, a, 8);
    assert.equal(s.ret, 0);
    assert.equal(hmmPfnFlags(s.words, 0), (HMM_PFN_VALID | HMM_PFN_WRITE) >>> 0);
    for (const i of [2, 3, 4, 5]) assert.equal(hmmPfnFlags(s.words, i), HMM_PFN_ERROR, `page ${i}`);
    assert.equal(run(sys, mm, sub, a + 2 * PAGE, 1, { defaultFlags: HMM_PFN_REQ_FAULT }).ret, -Errno.EFAULT);
    assert.equal(run(sys, mm, sub, a + 4 * PAGE, 1, { defaultFlags: HMM_PFN_REQ_FAULT }).ret, -Errno.EFAULT);
    // On error, entries before the failing one are outputs.
    const f = run(sys, mm, sub, a, 4, { defaultFlags: HMM_PFN_REQ_FAULT });
    assert.equal(f.ret, -Errno.EFAULT);
    assert.equal(hmmPfnFlags(f.words, 1), HMM_PFN_VALID);
    teardown(sys);
  });

  it('-EPERM for a write request on a read-only VMA; read succeeds', () => {
    const { sys, p, mm } = newSystem();
    const sub = insertRecorder(sys, mm);
    const a = sys.mmap(p, 0, 2 * PAGE, mman.PROT_READ, ANON);
    assert.equal(
      run(sys, mm, sub, a, 2, { defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE }).ret,
      -Errno.EPERM,
    );
    const r = run(sys, mm, sub, a, 2, { defaultFlags: HMM_PFN_REQ_FAULT });
    assert.equal(r.ret, 0);
    assert.equal(hmmPfnFlags(r.words, 1), HMM_PFN_VALID);
    teardown(sys);
  });

  it('reports order 9 for a THP, the huge zero page and a hugetlb page', () => {
    const { sys, p, mm } = newSystem({ thp: 'always', hugetlbPages: 4 });
    const sub = insertRecorder(sys, mm);
    const huge = 2 * 1024 * 1024;
    const a = sys.mmap(p, 0, huge, RW, ANON);
    assert.equal(a % huge, 0);
    sys.write(p, a, pattern(16, 3));
    const t = run(sys, mm, sub, a, 512);
    assert.equal(t.ret, 0);
    for (const i of [0, 1, 511]) {
      assert.equal(hmmPfnToMapOrder(t.words, i), 9);
      assert.equal((hmmPfnFlags(t.words, i) & HMM_PFN_WRITE) >>> 0, HMM_PFN_WRITE);
    }
    assert.equal(hmmPfnPfn(t.words, 511), hmmPfnPfn(t.words, 0) + 511);
    const z = sys.mmap(p, 0, huge, RW, ANON);
    sys.read(p, z, 8);
    const zr = run(sys, mm, sub, z, 4);
    assert.equal(zr.ret, 0);
    assert.equal(hmmPfnToMapOrder(zr.words, 3), 9);
    assert.equal((hmmPfnFlags(zr.words, 3) & (HMM_PFN_VALID | HMM_PFN_WRITE)) >>> 0, HMM_PFN_VALID);
    const h = sys.mmap(p, 0, huge, RW, ANON | mman.MAP_HUGETLB);
    assert.ok(h > 0);
    const hr = run(sys, mm, sub, h, 4, { defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    assert.equal(hr.ret, 0);
    assert.equal(hmmPfnToMapOrder(hr.words, 2), 9);
    assert.equal(hmmPfnPfn(hr.words, 2), hmmPfnPfn(hr.words, 0) + 2);
    teardown(sys);
  });

  it('device-private pages: reported to their owner, faulted back for anyone else', () => {
    const { sys, p, mm } = newSystem();
    const sub = insertRecorder(sys, mm);
    const dev = new TestDev(sys, 16);
    const a = sys.mmap(p, 0, 2 * PAGE, RW, ANON);
    sys.write(p, a, pattern(2 * PAGE, 4));
    const m = sys.run('migrate', dev.migrateToDevice(mm, a, 2));
    assert.equal(m.cpages, 2);
    const mine = run(sys, mm, sub, a, 2, { defaultFlags: HMM_PFN_REQ_FAULT, owner: dev });
    assert.equal(mine.ret, 0);
    assert.equal(hmmPfnFlags(mine.words, 0), (HMM_PFN_VALID | HMM_PFN_WRITE) >>> 0);
    assert.equal(sys.phys.pagemapOf(hmmPfnPfn(mine.words, 0))?.hooks.owner, dev);
    assert.equal(dev.migrateToRamCalls, 0);
    const snap = run(sys, mm, sub, a, 2, { owner: 'someone else' });
    assert.equal(hmmPfnFlags(snap.words, 0), 0, 'another owner sees nothing in a snapshot');
    const other = run(sys, mm, sub, a, 2, { defaultFlags: HMM_PFN_REQ_FAULT, owner: 'someone else' });
    assert.equal(other.ret, 0);
    assert.equal(dev.migrateToRamCalls, 2);
    assert.ok(sys.phys.isRam(hmmPfnPfn(other.words, 1)));
    assert.deepEqual(sys.read(p, a, 2 * PAGE).data, pattern(2 * PAGE, 4));
    assert.equal(dev.mem.freePages, 16);
    teardown(sys);
  });

  it('-EBUSY when an invalidation runs while it faults (scripted interleaving)', () => {
    const { sys, p, mm } = newSystem();
    const sub = insertRecorder(sys, mm);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    const sched = sys.sched;
    const driver = sched.spawn(
      'driver',
      faultRange(mm, sub, a, 4, { defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE }),
    );
    // Run the driver until its first fault has mapped a page and it holds no lock but mmap_lock.
    while (!(sys.trace.counters.get('fault.anon') === 1 && driver.held.length === 1)) sched.step(driver);
    const inval = sched.spawn(
      'reclaimer',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, a, a + PAGE);
        yield* mmuNotifierInvalidateRangeStart(r);
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    while (!inval.done) sched.step(inval);
    sched.runAll();
    const out = driver.result as { ret: number; words: Uint32Array; seq: number };
    assert.equal(out.ret, -Errno.EBUSY);
    assert.notEqual(sub.invalidateSeq, out.seq);
    // A retry with a fresh sequence succeeds.
    assert.equal(run(sys, mm, sub, a, 4, { defaultFlags: HMM_PFN_REQ_FAULT }).ret, 0);
    teardown(sys);
  });

  it('a snapshot of resident pages is fast', () => {
    const { sys, p, mm } = newSystem({ ram: 256 * 1024 * 1024 });
    const sub = insertRecorder(sys, mm);
    const n = 16384;
    const a = sys.mmap(p, 0, n * PAGE, RW, ANON | mman.MAP_POPULATE);
    const words = new Uint32Array(2 * n);
    let best = Infinity;
    for (let round = 0; round < 6; round++) {
      const t0 = performance.now();
      for (let k = 0; k < 4; k++) {
        const r = sys.run(
          'snap',
          (function* () {
            const seq = yield* mmuIntervalReadBegin(sub);
            yield* mm.mmapLock.downRead();
            const ret = yield* hmmRangeFault({
              notifier: sub,
              notifierSeq: seq,
              start: a,
              end: a + n * PAGE,
              hmmPfns: words,
              defaultFlags: 0,
              pfnFlagsMask: 0,
              devPrivateOwner: null,
            });
            yield* mm.mmapLock.upRead();
            return ret;
          })(),
        );
        assert.equal(r, 0);
      }
      best = Math.min(best, ((performance.now() - t0) * 1e6) / (4 * n));
    }
    const perPage = best;
    assert.equal(hmmPfnFlags(words, n - 1), (HMM_PFN_VALID | HMM_PFN_WRITE) >>> 0);
    assert.ok(perPage < 250, `snapshot costs ${perPage.toFixed(1)} ns per page`);
    teardown(sys);
  });
});
