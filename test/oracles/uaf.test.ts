/**
 * The use-after-free oracle for kernel objects other than page frames: each kind is used once
 * after it was freed (found, naming where it was freed and where it was used) and once in the
 * right order (clean).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Env } from '../../src/conformance/iommufd_harness.ts';
import {
  DEV_PTE,
  Device,
  DevicePageTable,
  Errno,
  MmuIntervalNotifier,
  System,
  VM_FAULT,
  deviceAccess,
  deviceDmaRw,
  deviceRegister,
  devmMemremapPages,
  dmaMapPage,
  dmaSyncSingleForCpu,
  dmaUnmapPage,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessPinPages,
  iommufdCtxFromFd,
  mman,
  migratePfnToPage,
  migrateToDevice,
  migrateToRamOne,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalSetSeq,
  type DeviceDriver,
  type DeviceMemory,
  type KGen,
  type Process,
} from '../../src/index.ts';
import { areaRemoveAccess, putPages, type IoptArea } from '../../src/kernel/iommufd/pages.ts';
import { getIoas } from '../../src/kernel/iommufd/ioas.ts';
import { iommufdCtxOf } from '../../src/kernel/iommufd/main.ts';
import { checkAll } from '../../src/oracles/index.ts';
import type { Violation } from '../../src/sched/types.ts';

const PAGE = 4096;
const RW = mman.PROT_READ | mman.PROT_WRITE;
const ANON = mman.MAP_PRIVATE | mman.MAP_ANONYMOUS;

const plainDriver: DeviceDriver = {
  name: 'plain',
  *probe() {
    yield* [];
    return {};
  },
};

function setup(): { sys: System; dev: Device; p: Process } {
  const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
  const dev = sys.run('probe', deviceRegister(sys, 'dev0', plainDriver));
  assert.ok(dev instanceof Device);
  return { sys, dev, p: sys.createProcess('p') };
}

function filled(sys: System, p: Process, pages: number): number {
  const addr = sys.mmap(p, 0, pages * PAGE, RW, ANON);
  assert.equal(sys.write(p, addr, new Uint8Array(pages * PAGE).fill(7)), pages * PAGE);
  return addr;
}

function uafs(sys: System): Violation[] {
  return sys.sched.violations.filter((v) => v.oracle === 'use-after-free');
}

/** The one use-after-free reported, checked to name the object, the use and the free. */
function theUaf(vs: readonly Violation[], what: RegExp, used: RegExp, freed: RegExp): void {
  assert.equal(vs.length, 1, JSON.stringify(vs));
  const m = vs[0].message;
  assert.match(m, what);
  assert.match(m, /used after it was freed: used by /);
  const [use, free] = m.split('; freed by ');
  assert.match(use, used);
  assert.match(free, freed);
}

describe('use-after-free oracle: interval notifiers', () => {
  function inserted(): { sys: System; sub: MmuIntervalNotifier; p: Process; addr: number } {
    const { sys, p } = setup();
    const addr = filled(sys, p, 1);
    const sub = new MmuIntervalNotifier();
    const ops = {
      *invalidate(s: MmuIntervalNotifier, _r: unknown, cur: number): KGen<boolean> {
        yield* [];
        mmuIntervalSetSeq(s, cur);
        return true;
      },
    };
    assert.equal(sys.run('insert', mmuIntervalNotifierInsert(sub, p.mm!, addr, PAGE, ops)), 0);
    return { sys, sub, p, addr };
  }

  it('found: read_begin on a removed notifier names the remove and the read_begin', () => {
    const { sys, sub } = inserted();
    sys.run('remove', mmuIntervalNotifierRemove(sub));
    assert.deepEqual(uafs(sys), []);
    sys.run('fault', mmuIntervalReadBegin(sub));
    theUaf(
      uafs(sys),
      /^mmu_interval_notifier \[0x[0-9a-f]+, 0x[0-9a-f]+\] used after/,
      /mmu_interval_read_begin called from .*uaf\.test\.ts:\d+/,
      /mmu_interval_notifier_remove called from .*uaf\.test\.ts:\d+/,
    );
  });

  it('found: removing twice', () => {
    const { sys, sub } = inserted();
    sys.run('remove', mmuIntervalNotifierRemove(sub));
    sys.run('remove', mmuIntervalNotifierRemove(sub));
    assert.equal(uafs(sys).length, 1);
  });

  it('clean: read_begin before remove, and a notifier inserted again is live', () => {
    const { sys, sub, p, addr } = inserted();
    sys.run('fault', mmuIntervalReadBegin(sub));
    sys.run('remove', mmuIntervalNotifierRemove(sub));
    const ops = {
      *invalidate(): KGen<boolean> {
        yield* [];
        return true;
      },
    };
    assert.equal(sys.run('insert', mmuIntervalNotifierInsert(sub, p.mm!, addr, PAGE, ops)), 0);
    sys.run('fault', mmuIntervalReadBegin(sub));
    sys.run('remove', mmuIntervalNotifierRemove(sub));
    assert.deepEqual(uafs(sys), []);
  });
});

describe('use-after-free oracle: iommufd accesses, iopt areas and pages', () => {
  const ops = {
    needsPinPages: true,
    *unmap(): KGen {
      yield* [];
    },
  };

  function mapped(): { env: Env; ioas: number; iova: number } {
    const env = new Env({ ram: 64 * 1024 * 1024, bufferSize: 4 * PAGE });
    const ioas = env.ioasAlloc();
    const { rc, iova } = env.map(ioas, env.buffer, 2 * PAGE);
    assert.equal(rc, 0);
    return { env, ioas, iova };
  }

  it('found: pinning through a destroyed access names iommufd_access_destroy', () => {
    const { env } = mapped();
    const ictx = iommufdCtxFromFd(env.sys, env.fd);
    assert.ok(ictx !== null);
    const access = iommufdAccessCreate(ictx, ops, null);
    assert.ok(typeof access !== 'number');
    env.sys.run('destroy', iommufdAccessDestroy(access));
    const rc = env.sys.run('pin', iommufdAccessPinPages(access, 0, PAGE, [], 0));
    assert.equal(rc, -Errno.ENOENT);
    theUaf(
      uafs(env.sys),
      /^iommufd access \d+ used after/,
      /iommufd_access_pin_pages called from .*uaf\.test\.ts/,
      /iommufd_access_destroy called from .*uaf\.test\.ts/,
    );
  });

  it('clean: an access destroyed after its last use', () => {
    const { env } = mapped();
    const ictx = iommufdCtxFromFd(env.sys, env.fd);
    assert.ok(ictx !== null);
    const access = iommufdAccessCreate(ictx, ops, null);
    assert.ok(typeof access !== 'number');
    assert.equal(env.sys.run('pin', iommufdAccessPinPages(access, 0, PAGE, [], 0)), -Errno.ENOENT);
    env.sys.run('destroy', iommufdAccessDestroy(access));
    assert.deepEqual(uafs(env.sys), []);
  });

  function theArea(env: Env, ioas: number, iova: number): IoptArea {
    const ictx = iommufdCtxOf(env.sys, env.fd);
    assert.ok(ictx !== null);
    const obj = getIoas(ictx, ioas);
    assert.ok(typeof obj !== 'number');
    const n = obj.iopt.areaItree.firstOverlap(iova, iova);
    assert.ok(n !== null);
    ictx.putObject(obj.obj);
    return n.value;
  }

  it('found: an iopt area and its pages used after the unmap freed them', () => {
    const { env, ioas, iova } = mapped();
    const area = theArea(env, ioas, iova);
    const pages = area.pages;
    assert.ok(pages !== null);
    assert.equal(env.unmap(ioas, iova, 2 * PAGE).rc, 0);
    assert.deepEqual(uafs(env.sys), []);
    assert.equal(env.sys.run('unpin', areaRemoveAccess(area, 0, 0)), false);
    theUaf(
      uafs(env.sys),
      /^iopt_area \[0x[0-9a-f]+, 0x[0-9a-f]+\] used after/,
      /iopt_area_remove_access/,
      /iopt_abort_area/,
    );
    putPages(pages);
    const [, second] = uafs(env.sys);
    assert.match(second.message, /^iopt_pages \d+ used after it was freed: used by iopt_put_pages/);
    assert.match(second.message, /freed by iopt_release_pages/);
  });

  it('clean: map, unmap and teardown touch no freed area or pages', () => {
    const { env, ioas, iova } = mapped();
    assert.equal(env.unmap(ioas, iova, 2 * PAGE).rc, 0);
    env.teardown();
    assert.deepEqual(uafs(env.sys), []);
  });
});

describe('use-after-free oracle: DMA mappings', () => {
  it('found: a sync after dma_unmap_page names the unmap', () => {
    const { sys, dev, p } = setup();
    const addr = filled(sys, p, 1);
    const pfn = sys.pagemap(p, addr, 1)[0].pfn;
    const bus = dmaMapPage(dev, pfn, 0);
    dmaUnmapPage(dev, bus);
    dmaSyncSingleForCpu(dev, bus);
    theUaf(
      uafs(sys),
      /^DMA mapping 0x[0-9a-f]+ of pfn \d+ \(dev0\) used after/,
      /dma_sync_single_for_cpu called from .*uaf\.test\.ts/,
      /dma_unmap_page called from .*uaf\.test\.ts/,
    );
  });

  it('found: a device DMA read of a page freed while mapped names the put that freed it', () => {
    const { sys, dev, p } = setup();
    const addr = filled(sys, p, 1);
    const pfn = sys.pagemap(p, addr, 1)[0].pfn;
    const bus = dmaMapPage(dev, pfn, 0);
    assert.equal(sys.munmap(p, addr, PAGE), 0);
    assert.equal(deviceDmaRw(dev, bus, 0, new Uint8Array(8), false), -Errno.EFAULT);
    theUaf(
      uafs(sys),
      new RegExp(`^page ${pfn} of DMA mapping`),
      /device DMA read called from .*uaf\.test\.ts/,
      /folio_put called from .*uaf\.test\.ts/,
    );
  });

  it('clean: map, sync, device access, unmap', () => {
    const { sys, dev, p } = setup();
    const addr = filled(sys, p, 1);
    const pfn = sys.pagemap(p, addr, 1)[0].pfn;
    const bus = dmaMapPage(dev, pfn, 0);
    const buf = new Uint8Array(4);
    assert.equal(deviceDmaRw(dev, bus, 0, buf, false), 0);
    assert.deepEqual([...buf], [7, 7, 7, 7]);
    dmaSyncSingleForCpu(dev, bus);
    dmaUnmapPage(dev, bus);
    assert.deepEqual(sys.sched.violations, []);
  });
});

describe('use-after-free oracle: device PTEs to released device memory', () => {
  /** A page migrated to device memory and mapped by the device; `zap` says whether migrate_to_ram clears it. */
  function onDevice(zap: boolean): { sys: System; pt: DevicePageTable; p: Process; addr: number } {
    const { sys, dev, p } = setup();
    const addr = filled(sys, p, 1);
    const lock = dev.mutex('pt_lock', { lockClass: 'uaf.pt_lock', guards: 'the page table' });
    const pt = new DevicePageTable(dev, 'dev0 pt', p.mm!, lock);
    let memRef: DeviceMemory | null = null;
    const mem = devmMemremapPages(dev, {
      type: 'private',
      nrPages: 2,
      ops: {
        folioFree(pfn, order) {
          memRef?.freePage(pfn, order);
        },
        *migrateToRam(vmf) {
          if (zap) {
            yield* lock.lock();
            pt.zap(vmf.address, vmf.address + PAGE);
            yield* lock.unlock();
          }
          return memRef === null ? VM_FAULT.SIGBUS : yield* migrateToRamOne(memRef, vmf);
        },
      },
    });
    assert.ok(typeof mem !== 'number');
    memRef = mem;
    sys.run(
      'migrate',
      (function* (): KGen<number> {
        const mm = p.mm!;
        yield* mm.mmapLock.downRead();
        const n = yield* migrateToDevice(mem, mm.vmaLookup(addr)!, addr, addr + PAGE, function* (args) {
          yield* lock.lock();
          pt.map(addr, migratePfnToPage(args.dst[0]), DEV_PTE.READ);
          yield* lock.unlock();
        });
        yield* mm.mmapLock.upRead();
        return n;
      })(),
    );
    assert.equal(sys.pagemap(p, addr, 1)[0].kind, 'device-private');
    return { sys, pt, p, addr };
  }

  it('found: the page goes back to RAM and its device page is freed while the device PTE stays', () => {
    const { sys, pt, p, addr } = onDevice(false);
    assert.deepEqual(checkAll(sys), []);
    assert.equal(sys.read(p, addr, 1).data[0], 7);
    const state = checkAll(sys).filter((v) => v.oracle === 'use-after-free');
    theUaf(
      state,
      /^device page \d+ used after/,
      /the device PTE of 0x[0-9a-f]+ in dev0 pt/,
      /folio_put \(the device page goes back through folio_free\) called from/,
    );
    assert.equal(sys.run('dev', deviceAccess(pt, addr, 'read', new Uint8Array(1))), -Errno.EFAULT);
    theUaf(uafs(sys), /^device page \d+ used after/, /device_read at 0x[0-9a-f]+ of dev0 pt/, /folio_put/);
  });

  it('clean: migrate_to_ram zaps the device PTE first', () => {
    const { sys, p, addr } = onDevice(true);
    assert.equal(sys.read(p, addr, 1).data[0], 7);
    assert.deepEqual(checkAll(sys), []);
    assert.deepEqual(uafs(sys), []);
  });
});
