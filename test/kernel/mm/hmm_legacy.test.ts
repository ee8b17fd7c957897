import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import * as mman from '../../../src/kernel/mm/mman.ts';
import type { MmStruct } from '../../../src/kernel/mm/mm_types.ts';
import {
  DmaDevice,
  HMM_FAULT_SNAPSHOT,
  HmmMirror,
  type HmmMirrorOps,
  type LegacyHmmRange,
  hmmDeviceEntryToPfn,
  hmmMirrorRegister,
  hmmMirrorUnregister,
  hmmRangeDmaMap,
  hmmRangeDmaUnmap,
  hmmRangeRegister,
  hmmRangeUnregister,
  hmmRangeValid,
  hmmRangeWaitUntilValid,
  legacyHmmRangeFault,
} from '../../../src/kernel/mm/hmm_legacy.ts';
import { HMM_PFN_VALID, type HmmRange, hmmPfnPfn, hmmRangeFault } from '../../../src/kernel/mm/hmm.ts';
import { mmuIntervalReadBegin, mmuIntervalReadRetry } from '../../../src/kernel/mm/mmu_notifier.ts';
import { tlbLookup } from '../../../src/kernel/mm/memory.ts';
import { sysMunmap } from '../../../src/kernel/syscalls.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { checkFrameRefs, checkMirror } from '../../../src/oracles/mirror.ts';
import { assertOracles } from '../../../src/oracles/index.ts';
import { Mutex } from '../../../src/sched/locks.ts';
import type { KGen } from '../../../src/sched/types.ts';
import { PAGE, type Recorder, insertRecorder, newSystem, removeRecorders, pattern } from './hmm_testdev.ts';

const RW = mman.PROT_READ | mman.PROT_WRITE;
const ANON = mman.MAP_PRIVATE | mman.MAP_ANONYMOUS;
const FLAGS = [1 << 0, 1 << 1, 1 << 2];
const VALUES = [1 << 3, 0, 1 << 4];

/** A v5.4-style driver: a device page table keyed by VA, guarded by `update`. */
class LegacyDriver extends HmmMirror {
  readonly pt = new Map<number, { pfn: number; gen: number }>();
  readonly update: Mutex;
  syncs = 0;
  constructor(readonly sys: System) {
    super(legacyOps);
    this.update = new Mutex(sys.sched, 'driver->update');
  }
}

const legacyOps: HmmMirrorOps = {
  *release() {},
  *syncCpuDevicePagetables(m, range) {
    if (!(m instanceof LegacyDriver)) return 0;
    const d = m;
    yield* d.update.lock();
    d.syncs++;
    for (const va of [...d.pt.keys()]) if (va >= range.start && va < range.end) d.pt.delete(va);
    yield* d.update.unlock();
    return 0;
  },
};

function newRange(start: number, npages: number): LegacyHmmRange {
  return {
    hmm: null,
    start,
    end: start + npages * PAGE,
    pfns: new Float64Array(npages),
    flags: FLAGS,
    values: VALUES,
    defaultFlags: 0,
    pfnFlagsMask: 0,
    pfnShift: 6,
    valid: false,
  };
}

function register(sys: System, mm: MmStruct, d: LegacyDriver): void {
  const r = sys.run(
    'register',
    (function* () {
      yield* mm.mmapLock.downWrite();
      const ret = yield* hmmMirrorRegister(d, mm);
      yield* mm.mmapLock.upWrite();
      return ret;
    })(),
  );
  assert.equal(r, 0);
}

function teardown(sys: System): void {
  removeRecorders(sys);
  for (const p of [...sys.processes.values()]) sys.exit(p);
  assertOracles(sys, { teardown: true });
}

/** The v5.4 Documentation/vm/hmm.rst driver loop, with a hook after the fault section. */
function* legacyDriverFault(
  d: LegacyDriver,
  mm: MmStruct,
  range: LegacyHmmRange,
  afterFault: { reached: boolean },
): KGen<number> {
  for (let tries = 0; tries < 4; tries++) {
    if (!(yield* hmmRangeWaitUntilValid(range, 1000))) continue;
    yield* mm.mmapLock.downRead();
    const ret = yield* legacyHmmRangeFault(range, HMM_FAULT_SNAPSHOT);
    yield* mm.mmapLock.upRead();
    if (ret === -Errno.EBUSY) continue;
    if (ret < 0) return ret;
    afterFault.reached = true;
    yield* d.update.lock();
    if (!hmmRangeValid(range)) {
      yield* d.update.unlock();
      continue;
    }
    const n = (range.end - range.start) / PAGE;
    for (let i = 0; i < n; i++) {
      const pfn = hmmDeviceEntryToPfn(range, range.pfns[i]);
      if (pfn >= 0) d.pt.set(range.start + i * PAGE, { pfn, gen: d.sys.phys.gen[pfn] });
    }
    yield* d.update.unlock();
    return 0;
  }
  return -Errno.EBUSY;
}

/** The same driver on the current API: read_begin / hmm_range_fault / read_retry under the lock. */
function* intervalDriverFault(
  d: LegacyDriver,
  sub: Recorder,
  mm: MmStruct,
  start: number,
  npages: number,
  afterFault: { reached: boolean; retries: number },
): KGen<number> {
  const words = new Uint32Array(2 * npages);
  for (let tries = 0; tries < 4; tries++) {
    const range: HmmRange = {
      notifier: sub,
      notifierSeq: yield* mmuIntervalReadBegin(sub),
      start,
      end: start + npages * PAGE,
      hmmPfns: words,
      defaultFlags: 0,
      pfnFlagsMask: 0,
      devPrivateOwner: d,
    };
    yield* mm.mmapLock.downRead();
    const ret = yield* hmmRangeFault(range);
    yield* mm.mmapLock.upRead();
    if (ret === -Errno.EBUSY) continue;
    if (ret < 0) return ret;
    afterFault.reached = true;
    yield* sub.lock.lock();
    if (mmuIntervalReadRetry(sub, range.notifierSeq)) {
      afterFault.retries++;
      yield* sub.lock.unlock();
      continue;
    }
    for (let i = 0; i < npages; i++) {
      if ((words[2 * i + 1] & HMM_PFN_VALID) === 0) continue;
      const pfn = hmmPfnPfn(words, i);
      d.pt.set(start + i * PAGE, { pfn, gen: d.sys.phys.gen[pfn] });
    }
    yield* sub.lock.unlock();
    return 0;
  }
  return -Errno.EBUSY;
}

/** Runs `driver` until its fault section is over, then a whole munmap, then the rest. */
function raceWithMunmap(
  sys: System,
  p: Process,
  addr: number,
  len: number,
  driver: KGen<number>,
  mark: { reached: boolean },
): number {
  const sched = sys.sched;
  const t = sched.spawn('driver', driver);
  while (!mark.reached) sched.step(t);
  const cpu = sched.spawn('munmap', sysMunmap(sys, p, addr, len));
  while (!cpu.done) sched.step(cpu);
  sched.runAll();
  return t.result as number;
}

function mirrorEntries(d: LegacyDriver): { va: number; pfn: number; write: boolean }[] {
  return [...d.pt].map(([va, e]) => ({ va, pfn: e.pfn, write: false }));
}

describe('v5.4 hmm_mirror API', () => {
  it('snapshots a range and DMA-maps it with page references', () => {
    const { sys, p, mm } = newSystem();
    const d = new LegacyDriver(sys);
    register(sys, mm, d);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    sys.write(p, a, pattern(2 * PAGE, 1));
    const range = { ...newRange(a, 4), defaultFlags: FLAGS[0] };
    assert.equal(sys.run('reg', hmmRangeRegister(range, d)), 0);
    assert.equal(range.valid, true);
    const dev = new DmaDevice(sys, 'dma0');
    const daddrs = new Float64Array(4);
    const mapped = sys.run(
      'dma',
      (function* () {
        yield* mm.mmapLock.downRead();
        const r = yield* hmmRangeDmaMap(range, dev, daddrs, 0);
        yield* mm.mmapLock.upRead();
        return r;
      })(),
    );
    assert.equal(mapped, 4, 'two written pages and two zero pages (faulted in)');
    const pfn0 = hmmDeviceEntryToPfn(range, range.pfns[0]);
    assert.equal(pfn0, tlbLookup(mm, a, false));
    assert.equal(sys.phys.refcount[pfn0], 2, 'mapping + DMA reference');
    assert.deepEqual(checkFrameRefs(sys, dev.frameRefs(), 'dma0'), []);
    assert.equal(hmmRangeDmaUnmap(range, dev, daddrs, true), 4);
    assert.equal(sys.phys.refcount[pfn0], 1);
    sys.run('unreg', hmmRangeUnregister(range));
    sys.run('unreg', hmmMirrorUnregister(d));
    teardown(sys);
  });

  it('invalidation marks registered ranges invalid until the last one ends', () => {
    const { sys, p, mm } = newSystem();
    const d = new LegacyDriver(sys);
    register(sys, mm, d);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    sys.write(p, a, pattern(4 * PAGE, 2));
    const range = newRange(a, 4);
    sys.run('reg', hmmRangeRegister(range, d));
    sys.munmap(p, a + 3 * PAGE, PAGE);
    assert.equal(d.syncs, 1);
    assert.equal(range.valid, true, 'valid again once the invalidation ended');
    sys.run('unreg', hmmRangeUnregister(range));
    sys.run('unreg', hmmMirrorUnregister(d));
    teardown(sys);
  });

  it('the race fixed by 04ec32fbc2: a whole start/end cycle between fault and valid check goes unseen', () => {
    const { sys, p, mm } = newSystem();
    const d = new LegacyDriver(sys);
    register(sys, mm, d);
    const a = sys.mmap(p, 0, 2 * PAGE, RW, ANON);
    sys.write(p, a, pattern(2 * PAGE, 3));
    const stalePfn = tlbLookup(mm, a, false);
    const range = newRange(a, 2);
    sys.run('reg', hmmRangeRegister(range, d));
    const mark = { reached: false };
    const ret = raceWithMunmap(sys, p, a, 2 * PAGE, legacyDriverFault(d, mm, range, mark), mark);
    assert.equal(ret, 0);
    assert.equal(d.syncs, 1, 'the mirror was told, before it had programmed anything');
    // The device now maps a page the CPU unmapped and freed: oracle 2 sees it.
    assert.equal(d.pt.get(a)?.pfn, stalePfn);
    const refs = checkFrameRefs(sys, [...d.pt.values()], 'legacy mirror');
    assert.ok(refs.length >= 1, 'stale frame reference detected');
    assert.deepEqual(checkMirror(sys, mm, mirrorEntries(d), 'legacy'), [], 'the CPU maps nothing there now');
    d.pt.clear();
    sys.run('unreg', hmmRangeUnregister(range));
    sys.run('unreg', hmmMirrorUnregister(d));
    teardown(sys);
  });

  it('the same interleaving with mmu_interval_notifier + read_retry is caught and retried', () => {
    const { sys, p, mm } = newSystem();
    const d = new LegacyDriver(sys);
    const sub = insertRecorder(sys, mm);
    const a = sys.mmap(p, 0, 2 * PAGE, RW, ANON);
    sys.write(p, a, pattern(2 * PAGE, 4));
    const mark = { reached: false, retries: 0 };
    const ret = raceWithMunmap(sys, p, a, 2 * PAGE, intervalDriverFault(d, sub, mm, a, 2, mark), mark);
    assert.equal(ret, 0);
    assert.equal(mark.retries, 1, 'read_retry saw the invalidation');
    assert.equal(d.pt.size, 0, 'nothing stale was programmed');
    assert.deepEqual(checkFrameRefs(sys, [...d.pt.values()], 'mirror'), []);
    teardown(sys);
  });
});
