/**
 * The driver SDK's hooks, each through a small driver: notifier ops and their events, whole-mm
 * release and young queries, migrate_to_ram on a CPU fault, fault-buffer delivery order, workers
 * and timers in virtual time, and an iommufd access's unmap callback.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Completion,
  DEV_PTE,
  Device,
  DevicePageTable,
  Errno,
  FaultBuffer,
  MMU_NOTIFY,
  MmuIntervalNotifier,
  MmuNotifier,
  System,
  VM_FAULT,
  cancelDelayedWorkSync,
  deviceAccess,
  deviceMemoryRemove,
  folioUnlock,
  deviceRegister,
  devmMemremapPages,
  dmaFenceInit,
  dmaFenceSignal,
  dmaFenceWaitTimeout,
  dmaMapPage,
  dmaUnmapPage,
  flushWork,
  initDelayedWork,
  initWork,
  kthreadRun,
  kthreadShouldStop,
  kthreadStop,
  lockdepAssertHeld,
  mman,
  sleepNs,
  migrateToDevice,
  migrateToRamOne,
  migratePfnToPage,
  mmuIntervalNotifierInsert,
  mmuIntervalSetSeq,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  modTimer,
  queueDelayedWork,
  queueWork,
  timerDelete,
  timerSetup,
  type DeviceDriver,
  type DeviceFault,
  type DeviceMemory,
  type KGen,
  type VmFault,
  type MmuNotifierOps,
  type MmuNotifierRange,
  type Process,
} from '../../../src/index.ts';
import { checkAll } from '../../../src/oracles/index.ts';

const PAGE = 4096;
const RW = mman.PROT_READ | mman.PROT_WRITE;
const ANON = mman.MAP_PRIVATE | mman.MAP_ANONYMOUS;

interface Empty {
  readonly none?: undefined;
}
const plainDriver: DeviceDriver<Empty, Empty> = {
  name: 'plain',
  *probe() {
    yield* [];
    return {};
  },
};

function setup(swap = 0): { sys: System; dev: Device<Empty, Empty>; p: Process } {
  const sys = new System({ ram: 16 * 1024 * 1024, swap });
  const dev = sys.run('probe', deviceRegister(sys, 'dev0', plainDriver));
  assert.ok(dev instanceof Device);
  return { sys, dev, p: sys.createProcess('p') };
}

/**
 * Device memory whose folio_free gives each page back to its own allocator, as a driver's does,
 * telling `onFree` first; `migrateToRam` (private memory) gets the memory too.
 */
function selfFreeingMemory(
  dev: Device<Empty, Empty>,
  opts: {
    type: 'private' | 'coherent';
    nrPages: number;
    folioOrder?: number;
    onFree?: (pfn: number, order: number) => void;
    migrateToRam?: (mem: DeviceMemory, vmf: VmFault) => KGen<number>;
  },
): DeviceMemory {
  let memRef: DeviceMemory | null = null;
  const migrate = opts.migrateToRam;
  const mem = devmMemremapPages(dev, {
    type: opts.type,
    nrPages: opts.nrPages,
    ...(opts.folioOrder !== undefined ? { folioOrder: opts.folioOrder } : {}),
    ops: {
      folioFree(pfn, order) {
        opts.onFree?.(pfn, order);
        memRef?.freePage(pfn, order);
      },
      ...(migrate !== undefined
        ? {
            *migrateToRam(vmf: VmFault) {
              return memRef === null ? VM_FAULT.SIGBUS : yield* migrate(memRef, vmf);
            },
          }
        : {}),
    },
  });
  assert.ok(typeof mem !== 'number');
  memRef = mem;
  return mem;
}

function filled(sys: System, p: Process, pages: number): number {
  const addr = sys.mmap(p, 0, pages * PAGE, RW, ANON);
  const data = new Uint8Array(pages * PAGE);
  for (let i = 0; i < pages; i++) data[i * PAGE] = i + 1;
  assert.equal(sys.write(p, addr, data), pages * PAGE);
  return addr;
}

/** An interval mirror that records every invalidation and zaps its table. */
class Mirror extends MmuIntervalNotifier {
  readonly events: { event: number; start: number; end: number }[] = [];
  constructor(readonly pt: () => DevicePageTable) {
    super();
  }
}

describe('driver SDK: notifiers', () => {
  it('an interval notifier inserted by a driver sees UNMAP and zaps its page table under its lock', () => {
    const { sys, dev, p } = setup();
    const addr = filled(sys, p, 2);
    const lock = dev.mutex('pt_lock', { lockClass: 'test.pt_lock', guards: 'the page table' });
    const pt = new DevicePageTable(dev, 'dev0 pt', p.mm!, lock);
    const m = new Mirror(() => pt);
    const ret = sys.run(
      'insert',
      mmuIntervalNotifierInsert(m, p.mm!, addr, 2 * PAGE, {
        *invalidate(sub, range, curSeq) {
          sub.events.push({ event: range.event, start: range.start, end: range.end });
          yield* lock.lock();
          mmuIntervalSetSeq(sub, curSeq);
          sub.pt().zap(range.start, range.end);
          yield* lock.unlock();
          return true;
        },
      }),
    );
    assert.equal(ret, 0);
    const pfn = sys.pagemap(p, addr, 1)[0].pfn;
    sys.run(
      'map',
      (function* (): KGen {
        yield* lock.lock();
        pt.map(addr, pfn, DEV_PTE.READ);
        yield* lock.unlock();
      })(),
    );
    assert.equal(pt.size, 1);
    assert.equal(sys.munmap(p, addr, PAGE), 0);
    assert.deepEqual(m.events, [{ event: MMU_NOTIFY.UNMAP, start: addr, end: addr + PAGE }]);
    assert.equal(pt.size, 0);
    assert.deepEqual(checkAll(sys), []);
  });

  it('a whole-mm subscriber gets range start/end with their events, release at exit, and young queries', () => {
    // Swap, so that reclaim scans the anonymous page and asks the subscriber whether it is young.
    const { sys, p } = setup(16 * 1024 * 1024);
    const addr = filled(sys, p, 1);
    const seen: string[] = [];
    class Sub extends MmuNotifier {}
    const ops: MmuNotifierOps<Sub> = {
      *invalidateRangeStart(_s, r: MmuNotifierRange) {
        yield* [];
        seen.push(`start ${r.event}`);
        return 0;
      },
      *invalidateRangeEnd(_s, r) {
        yield* [];
        seen.push(`end ${r.event}`);
      },
      *release() {
        yield* [];
        seen.push('release');
      },
      *clearFlushYoung() {
        yield* [];
        seen.push('clear_flush_young');
        return true;
      },
      *clearYoung() {
        yield* [];
        seen.push('clear_young');
        return false;
      },
      *testYoung() {
        yield* [];
        seen.push('test_young');
        return false;
      },
    };
    const sub = new Sub(ops);
    assert.equal(sys.run('register', mmuNotifierRegister(sub, p.mm!)), 0);
    assert.equal(sys.mprotect(p, addr, PAGE, mman.PROT_READ), 0);
    assert.ok(seen.includes(`start ${MMU_NOTIFY.PROTECTION_VMA}`), seen.join(','));
    assert.ok(seen.includes(`end ${MMU_NOTIFY.PROTECTION_VMA}`), seen.join(','));
    sys.reclaim();
    assert.ok(
      seen.some((s) => s.endsWith('young')),
      `reclaim asked no young question: ${seen.join(',')}`,
    );
    seen.length = 0;
    const mm = p.mm!;
    assert.equal(sys.exit(p), 0);
    assert.equal(seen[0], 'release', seen.join(','));
    sys.run('unregister', mmuNotifierUnregister(sub, mm));
    assert.equal(seen.filter((s) => s === 'release').length, 1, 'release runs once');
  });
});

describe('driver SDK: device memory', () => {
  it('a CPU touch of a migrated page calls the driver migrate_to_ram; folio_free gives the page back', () => {
    const { sys, dev, p } = setup();
    const addr = filled(sys, p, 1);
    let faults = 0;
    const mem = selfFreeingMemory(dev, {
      type: 'private',
      nrPages: 4,
      *migrateToRam(m, vmf) {
        faults++;
        return yield* migrateToRamOne(m, vmf);
      },
    });
    let dpage = -1;
    const moved = sys.run(
      'migrate',
      (function* (): KGen<number> {
        const mm = p.mm!;
        yield* mm.mmapLock.downRead();
        const n = yield* migrateToDevice(mem, mm.vmaLookup(addr)!, addr, addr + PAGE, function* (args) {
          yield* [];
          dpage = migratePfnToPage(args.dst[0]);
        });
        yield* mm.mmapLock.upRead();
        return n;
      })(),
    );
    assert.equal(moved, 1);
    assert.ok(mem.contains(dpage));
    assert.equal(mem.freePages, 3);
    const entry = sys.pagemap(p, addr, 1)[0];
    assert.equal(entry.kind, 'device-private');
    assert.equal(entry.exclusive, false, 'PM_MMAP_EXCLUSIVE: present pages only');
    const r = sys.read(p, addr, 1);
    assert.equal(r.data[0], 1, 'the data came back');
    assert.equal(faults, 1);
    assert.equal(sys.pagemap(p, addr, 1)[0].kind, 'ram');
    assert.equal(mem.freePages, 4, 'folio_free returned the device page');
  });

  it('allocPages takes up to n pages under one lock hold, each a locked migration destination', () => {
    const { sys, dev } = setup();
    const mem = selfFreeingMemory(dev, {
      type: 'private',
      nrPages: 4,
      *migrateToRam() {
        yield* [];
        return VM_FAULT.SIGBUS;
      },
    });
    const got = sys.run('alloc', mem.allocPages(3));
    assert.equal(got.length, 3);
    assert.equal(new Set(got).size, 3);
    for (const pfn of got) assert.ok(mem.contains(pfn) && sys.phys.refcount[pfn] === 1);
    assert.equal(mem.freePages, 1);
    assert.deepEqual(sys.run('alloc', mem.allocPages(3)).length, 1, 'fewer when memory runs short');
    assert.equal(mem.freePages, 0);
    for (const pfn of got) {
      folioUnlock(sys, pfn);
      sys.phys.put(pfn);
    }
    assert.equal(mem.freePages, 3, 'folio_free gave them back');
  });

  it('folioOrder: whole aligned blocks are folios; single pages split off a folio; folio_free takes folios back', () => {
    const { sys, dev } = setup();
    const freed: [number, number][] = [];
    const mem = selfFreeingMemory(dev, {
      type: 'coherent',
      nrPages: 1024,
      folioOrder: 9,
      onFree: (pfn, order) => freed.push([pfn, order]),
    });
    assert.equal(mem.folioOrder, 9);
    assert.equal(mem.freePages, 1024);
    const folio = sys.run('alloc', mem.allocPage(9));
    assert.ok(folio >= 0 && folio % 512 === 0, `a PMD-aligned folio head: ${folio}`);
    assert.equal(sys.phys.order[folio], 9);
    assert.equal(mem.allocated, 512);
    assert.equal(sys.run('alloc', mem.allocPage(3)), -Errno.EINVAL, 'only 0 and folioOrder');
    // How much is left over depends on where the range starts; every page is handed out in the end.
    const pages: number[] = [];
    for (let p = sys.run('alloc', mem.allocPage(0)); p >= 0; p = sys.run('alloc', mem.allocPage(0)))
      pages.push(p);
    assert.equal(pages.length, 1024 - 512);
    assert.equal(sys.run('alloc', mem.allocPage(9)), -Errno.ENOMEM);
    sys.phys.put(folio);
    assert.deepEqual(freed, [[folio, 9]]);
    assert.equal(mem.freePages, 512, 'the folio is free again');
    assert.equal(sys.run('alloc', mem.allocPage(9)), folio);
  });

  it('deviceMemoryRemove runs the driver eviction after the allocator stopped, then unmaps the pages', () => {
    const { sys, dev } = setup();
    const mem = selfFreeingMemory(dev, { type: 'coherent', nrPages: 4 });
    const pfn = sys.run('alloc', mem.allocPage());
    assert.ok(pfn >= 0);
    let evicted = false;
    sys.run(
      'remove',
      deviceMemoryRemove(mem, function* (m) {
        evicted = true;
        assert.equal(m.removed, true);
        assert.equal(yield* m.allocPage(), -Errno.ENOMEM, 'nothing is handed out while it goes');
        sys.phys.put(pfn);
        return 0;
      }),
    );
    assert.ok(evicted);
    assert.equal(mem.freed, 1);
    assert.equal(mem.freePages, 3, 'a page freed while the memory goes is not recycled');
  });

  it('device private memory without migrate_to_ram is -EINVAL', () => {
    const { dev } = setup();
    assert.equal(
      devmMemremapPages(dev, { type: 'private', nrPages: 1, ops: { folioFree() {} } }),
      -Errno.EINVAL,
    );
  });
});

describe('driver SDK: device page tables, accesses and faults', () => {
  it('erase drops one PTE without the lock; lookupRange walks the present PTEs of a range', () => {
    const { sys, dev, p } = setup();
    const lock = dev.mutex('pt_lock', { lockClass: 'test.pt_lock', guards: 'the page table' });
    const pt = new DevicePageTable(dev, 'dev0 pt', p.mm!, lock);
    sys.run(
      'map',
      (function* (): KGen {
        yield* lock.lock();
        for (const i of [1, 2, 5]) pt.map(i * PAGE, i, DEV_PTE.READ);
        yield* lock.unlock();
      })(),
    );
    assert.deepEqual(
      [...pt.lookupRange(2 * PAGE, 6 * PAGE)].map(([va, e]) => [va / PAGE, e.pfn]),
      [
        [2, 2],
        [5, 5],
      ],
    );
    assert.deepEqual([...pt.lookupRange(3 * PAGE, 3 * PAGE)], []);
    pt.erase(2 * PAGE);
    assert.equal(pt.lookup(2 * PAGE), undefined);
    assert.equal(pt.size, 2);
  });

  it('map outside the declared lock is a DriverError lock_not_held', () => {
    const { dev, p } = setup();
    const lock = dev.mutex('pt_lock', { lockClass: 'test.pt_lock', guards: 'the page table' });
    const pt = new DevicePageTable(dev, 'dev0 pt', p.mm!, lock);
    assert.throws(() => {
      pt.map(0x1000, 1, DEV_PTE.READ);
    }, /lock_not_held|must be held/);
    assert.throws(() => {
      lockdepAssertHeld(lock);
    }, /must be held to touch the page table/);
  });

  it('faults reach the handler through the buffer in the order the device posted them; the access completes after replay', () => {
    const { sys, dev, p } = setup();
    const addr = filled(sys, p, 3);
    const lock = dev.mutex('pt_lock', { lockClass: 'test.pt_lock', guards: 'the page table' });
    const pt = new DevicePageTable(dev, 'dev0 pt', p.mm!, lock);
    const delivered: number[] = [];
    const buf = new FaultBuffer(dev, 'fb', 8, function* (b): KGen {
      for (let f: DeviceFault | undefined = b.pop(); f !== undefined; f = b.pop()) {
        delivered.push((f.va - addr) / PAGE);
        const pfn = sys.phys.nr > 0 ? pfnAt(f.va) : -1;
        yield* lock.lock();
        f.pt.map(f.va, pfn, DEV_PTE.READ);
        yield* lock.unlock();
      }
      b.replay();
    });
    const pfns = sys.pagemap(p, addr, 3).map((e) => e.pfn);
    const pfnAt = (va: number): number => pfns[(va - addr) / PAGE];
    const out = [new Uint8Array(1), new Uint8Array(1), new Uint8Array(1)];
    const threads = [2, 0, 1].map((i) =>
      sys.sched.spawn(`sm${i}`, deviceAccess(pt, addr + i * PAGE, 'read', out[i], buf)),
    );
    sys.sched.runAll();
    for (const t of threads) assert.equal(t.result, 0);
    assert.deepEqual(delivered, [2, 0, 1], 'FIFO in posting order');
    assert.deepEqual(
      out.map((o) => o[0]),
      [1, 2, 3],
    );
    assert.deepEqual(checkAll(sys), []);
  });

  it('an access that misses without a fault buffer is -EFAULT; a write needs a writable PTE', () => {
    const { sys, dev, p } = setup();
    const lock = dev.mutex('pt_lock', { lockClass: 'test.pt_lock', guards: 'the page table' });
    const pt = new DevicePageTable(dev, 'dev0 pt', p.mm!, lock);
    assert.equal(sys.run('a', deviceAccess(pt, 0x1000, 'read', new Uint8Array(4))), -Errno.EFAULT);
    assert.equal(sys.run('a', deviceAccess(pt, 0x1ffe, 'read', new Uint8Array(4))), -Errno.EINVAL);
  });

  it('a DMA mapping of a page that is then freed is a frame-refs violation; unmapping twice is a use-after-free, what was never mapped a dma violation', () => {
    const { sys, dev, p } = setup();
    const addr = filled(sys, p, 1);
    const pfn = sys.pagemap(p, addr, 1)[0].pfn;
    const bus = dmaMapPage(dev, pfn, 0);
    assert.ok(bus > 0);
    assert.deepEqual(checkAll(sys), []);
    assert.equal(sys.munmap(p, addr, PAGE), 0);
    assert.ok(checkAll(sys).some((v) => v.oracle === 'frame-refs'));
    dmaUnmapPage(dev, bus);
    assert.equal(sys.dma.size, 0);
    dmaUnmapPage(dev, bus);
    assert.equal(sys.sched.violations.at(-1)?.oracle, 'use-after-free');
    dmaUnmapPage(dev, 0x1000);
    assert.equal(sys.sched.violations.at(-1)?.oracle, 'dma');
  });
});

describe('driver SDK: workers in virtual time', () => {
  it('queued work runs on its own thread; queueing pending work again is false; flush waits for it', () => {
    const { sys } = setup();
    const ran: number[] = [];
    const w = initWork(sys.sched, 'w', function* () {
      yield { kind: 'step', label: 'work' };
      ran.push(sys.sched.clock.now);
    });
    const waited = sys.run(
      'q',
      (function* (): KGen<boolean> {
        assert.equal(queueWork(w), true);
        assert.equal(queueWork(w), false);
        return yield* flushWork(w);
      })(),
    );
    assert.equal(waited, true);
    assert.deepEqual(ran, [0]);
  });

  it('work queued again while it runs runs once that run ends, never beside it', () => {
    const { sys } = setup();
    const started = new Completion(sys.sched, 'started');
    const release = new Completion(sys.sched, 'release');
    let active = 0;
    let most = 0;
    let runs = 0;
    const w = initWork(sys.sched, 'w', function* () {
      active++;
      most = Math.max(most, active);
      runs++;
      if (runs === 1) {
        started.complete();
        yield* release.wait();
      }
      yield { kind: 'step', label: 'work' };
      active--;
    });
    sys.run(
      'q',
      (function* (): KGen {
        assert.equal(queueWork(w), true);
        yield* started.wait();
        // Running, no longer pending: queue_work() queues it again.
        assert.equal(queueWork(w), true);
        assert.equal(queueWork(w), false);
        // Every other thread gets to run while this one sleeps.
        yield* sleepNs(sys.sched, 1000);
        release.complete();
        yield* flushWork(w);
      })(),
    );
    assert.equal(runs, 2);
    assert.equal(most, 1);
  });

  it('delayed work runs when virtual time reaches its delay; cancel before that stops it', () => {
    const { sys } = setup();
    const ran: number[] = [];
    const dw = initDelayedWork(sys.sched, 'dw', function* () {
      yield* [];
      ran.push(sys.sched.clock.now);
    });
    const start = sys.sched.clock.now;
    queueDelayedWork(dw, 5_000_000);
    sys.sched.runAll();
    assert.deepEqual(ran, [start + 5_000_000]);
    const dw2 = initDelayedWork(sys.sched, 'dw2', function* () {
      yield* [];
      ran.push(-1);
    });
    queueDelayedWork(dw2, 1_000_000);
    assert.equal(sys.run('cancel', cancelDelayedWorkSync(dw2)), true);
    sys.sched.runAll();
    assert.equal(ran.includes(-1), false);
  });

  it('a timer fires at its expiry in atomic context; a deleted timer never fires', () => {
    const { sys } = setup();
    const fired: { at: number; atomic: number }[] = [];
    const t = timerSetup(sys.sched, 't', () => {
      fired.push({ at: sys.sched.clock.now, atomic: sys.sched.cur().atomicDepth });
    });
    modTimer(t, sys.sched.clock.now + 3_000);
    sys.sched.runAll();
    assert.equal(fired.length, 1);
    assert.equal(fired[0].atomic, 1, 'softirq context');
    const t2 = timerSetup(sys.sched, 't2', () => fired.push({ at: -1, atomic: 0 }));
    modTimer(t2, sys.sched.clock.now + 3_000);
    assert.equal(timerDelete(t2), true);
    sys.sched.runAll();
    assert.equal(fired.length, 1);
  });

  it('a kthread runs until kthread_stop; its return value comes back', () => {
    const { sys } = setup();
    let loops = 0;
    const k = kthreadRun(sys.sched, 'kt', function* (self): KGen<number> {
      while (!kthreadShouldStop(self)) {
        loops++;
        yield* self.wq.waitEvent(() => kthreadShouldStop(self));
      }
      return 7;
    });
    assert.equal(sys.run('stop', kthreadStop(k)), 7);
    assert.equal(loops, 1);
    assert.equal(k.exited, true);
  });

  it('a fence wait returns once signalled, or 0 at its timeout in virtual time', () => {
    const { sys } = setup();
    const f = dmaFenceInit(sys.sched, 'f');
    assert.equal(sys.run('wait', dmaFenceWaitTimeout(f, 1_000)), 0);
    const signaller = timerSetup(sys.sched, 'sig', () => {
      dmaFenceSignal(f);
    });
    modTimer(signaller, sys.sched.clock.now + 500);
    assert.ok(sys.run('wait', dmaFenceWaitTimeout(f, 10_000)) > 0);
    assert.equal(dmaFenceSignal(f), -Errno.EINVAL);
  });
});
