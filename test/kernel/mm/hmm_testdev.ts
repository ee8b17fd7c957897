/**
 * A minimal device-memory driver for the hmm / migrate / device tests, on the driver SDK: a
 * device whose memory is the SDK's (devmMemremapPages), pages whose contents live in their own frames, migration to and from it with migrate_vma,
 * migrate_to_ram for CPU faults, eviction by PFN, and an interval-notifier mirror that records
 * what it is told. (The full dmirror device is src/kernel/drivers/test_hmm.ts.)
 */
import assert from 'node:assert/strict';
import { System } from '../../../src/kernel/system.ts';
import type { Process } from '../../../src/kernel/system.ts';
import { Errno } from '../../../src/kernel/errno.ts';
import { VM_FAULT, type MmStruct, type VmFault } from '../../../src/kernel/mm/mm_types.ts';
import type { DevPagemap } from '../../../src/kernel/mm/memremap.ts';
import { Device, type DeviceDriver, deviceRegister } from '../../../src/kernel/drivers/sdk/device.ts';
import { type DeviceMemory, devmMemremapPages } from '../../../src/kernel/drivers/sdk/devmem.ts';
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  type MigrateVma,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migratePfn,
  migratePfnFlags,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
} from '../../../src/kernel/mm/migrate_device.ts';
import { folioTrylock } from '../../../src/kernel/mm/filemap.ts';
import {
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalSetSeq,
} from '../../../src/kernel/mm/mmu_notifier.ts';
import { Mutex } from '../../../src/sched/locks.ts';
import type { KGen } from '../../../src/sched/types.ts';
import { pteSlot } from '../../../src/kernel/mm/pte.ts';

export const PAGE = 4096;

export function newSystem(extra: ConstructorParameters<typeof System>[0] = {}): {
  sys: System;
  p: Process;
  mm: MmStruct;
} {
  const sys = new System({ ram: 64 * 1024 * 1024, swap: 0, ...extra });
  const p = sys.createProcess('p');
  return { sys, p, mm: p.mm! };
}

/** The CPU PTE words at `addr` ([0, 0] when there is no PTE table). */
export function pteAt(mm: MmStruct, addr: number): [number, number] {
  const t = mm.pgt.pteTable(addr);
  if (t === null) return [0, 0];
  const s = pteSlot(addr);
  return [t.words[s], t.words[s + 1]];
}

export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

const testDevDriver: DeviceDriver = {
  name: 'testdev',
  *probe() {
    yield* [];
    return {};
  },
};

/** A device with `nrPages` pages of device memory of the given type. */
export class TestDev {
  readonly dev: Device;
  readonly mem: DeviceMemory;
  migrateToRamCalls = 0;

  constructor(
    readonly sys: System,
    nrPages: number,
    readonly type: 'private' | 'coherent' = 'private',
    readonly name = 'dev',
  ) {
    const dev = sys.run('probe', deviceRegister(sys, name, testDevDriver));
    assert.ok(dev instanceof Device, 'probe failed');
    this.dev = dev;
    const mem = devmMemremapPages(dev, {
      type,
      nrPages,
      owner: this,
      ops: {
        folioFree: (pfn) => {
          this.sys.phys.clearPage(pfn);
          this.mem.freePage(pfn);
        },
        migrateToRam: (vmf) => this.migrateToRam(vmf),
      },
    });
    assert.ok(typeof mem !== 'number', 'memremap_pages failed');
    this.mem = mem;
  }

  get pgmap(): DevPagemap {
    return this.mem.pgmap;
  }

  /** A free device page made a migration destination, or -1. */
  *allocPage(): KGen<number> {
    const pfn = yield* this.mem.allocPage();
    return pfn < 0 ? -1 : pfn;
  }

  private selectOwn(): number {
    return this.type === 'private' ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
  }

  /** dmirror_devmem_fault(): migrate the faulting page back to system memory. */
  *migrateToRam(vmf: VmFault): KGen<number> {
    this.migrateToRamCalls++;
    const src = new Float64Array(1);
    const dst = new Float64Array(1);
    const args: MigrateVma = {
      vma: vmf.vma,
      src,
      dst,
      cpages: 0,
      npages: 0,
      start: vmf.address,
      end: vmf.address + PAGE,
      pgmapOwner: this,
      flags: this.selectOwn(),
      faultPage: vmf.page,
    };
    if ((yield* migrateVmaSetup(args)) !== 0) return VM_FAULT.SIGBUS;
    const ret = this.copyToSys(src, dst, 1);
    yield* migrateVmaPages(args);
    yield* migrateVmaFinalize(args);
    return ret;
  }

  private copyToSys(src: Float64Array, dst: Float64Array, n: number): number {
    const phys = this.sys.phys;
    for (let i = 0; i < n; i++) {
      const spage = migratePfnToPage(src[i]);
      if (spage < 0 || (migratePfnFlags(src[i]) & MIGRATE_PFN_MIGRATE) === 0) continue;
      const d = phys.alloc(0, null);
      if (d < 0) return VM_FAULT.OOM;
      folioTrylock(this.sys, d);
      phys.copyPage(d, spage);
      dst[i] = migratePfn(d) + (migratePfnFlags(src[i]) & MIGRATE_PFN_WRITE);
    }
    return 0;
  }

  /** The MIGRATE_TO_DEV path: returns cpages after finalize, or -errno. */
  *migrateToDevice(
    mm: MmStruct,
    start: number,
    npages: number,
    opts: { skip?: number[] } = {},
  ): KGen<{ ret: number; src: Float64Array; cpages: number }> {
    const src = new Float64Array(npages);
    const dst = new Float64Array(npages);
    yield* mm.mmapLock.downRead();
    try {
      const vma = mm.vmaLookup(start);
      if (vma === null) return { ret: -Errno.EINVAL, src, cpages: 0 };
      const args: MigrateVma = {
        vma,
        src,
        dst,
        cpages: 0,
        npages: 0,
        start,
        end: start + npages * PAGE,
        pgmapOwner: this,
        flags: MIGRATE_VMA_SELECT_SYSTEM,
        faultPage: -1,
      };
      const r = yield* migrateVmaSetup(args);
      if (r !== 0) return { ret: r, src, cpages: 0 };
      const phys = this.sys.phys;
      for (let i = 0; i < args.npages; i++) {
        if ((migratePfnFlags(src[i]) & MIGRATE_PFN_MIGRATE) === 0) continue;
        if (opts.skip?.includes(i) === true) continue;
        const d = yield* this.allocPage();
        if (d < 0) continue;
        const s = migratePfnToPage(src[i]);
        if (s >= 0) phys.copyPage(d, s);
        else phys.clearPage(d);
        dst[i] = migratePfn(d) + (migratePfnFlags(src[i]) & MIGRATE_PFN_WRITE);
      }
      yield* migrateVmaPages(args);
      const cpages = args.cpages;
      yield* migrateVmaFinalize(args);
      return { ret: 0, src, cpages };
    } finally {
      yield* mm.mmapLock.upRead();
    }
  }

  /** The MIGRATE_TO_SYS path. */
  *migrateToSys(mm: MmStruct, start: number, npages: number): KGen<number> {
    const src = new Float64Array(npages);
    const dst = new Float64Array(npages);
    yield* mm.mmapLock.downRead();
    try {
      const vma = mm.vmaLookup(start);
      if (vma === null) return -Errno.EINVAL;
      const args: MigrateVma = {
        vma,
        src,
        dst,
        cpages: 0,
        npages: 0,
        start,
        end: start + npages * PAGE,
        pgmapOwner: this,
        flags: this.selectOwn(),
        faultPage: -1,
      };
      const r = yield* migrateVmaSetup(args);
      if (r !== 0) return r;
      const e = this.copyToSys(src, dst, args.npages);
      if (e !== 0) return -Errno.ENOMEM;
      yield* migrateVmaPages(args);
      let n = 0;
      for (let i = 0; i < args.npages; i++) if ((migratePfnFlags(src[i]) & MIGRATE_PFN_MIGRATE) !== 0) n++;
      yield* migrateVmaFinalize(args);
      return n;
    } finally {
      yield* mm.mmapLock.upRead();
    }
  }

  /** Evicts every device page to system memory (dmirror_device_evict_chunk). */
  *evictAll(): KGen<number> {
    const n = this.pgmap.nrPages;
    const src = new Float64Array(n);
    const dst = new Float64Array(n);
    yield* migrateDeviceRange(this.sys, src, this.pgmap.firstPfn, n);
    const e = this.copyToSys(src, dst, n);
    if (e !== 0) return -Errno.ENOMEM;
    yield* migrateDevicePages(this.sys, src, dst, n);
    let moved = 0;
    for (let i = 0; i < n; i++) if ((migratePfnFlags(src[i]) & MIGRATE_PFN_MIGRATE) !== 0) moved++;
    yield* migrateDeviceFinalize(this.sys, src, dst, n);
    return moved;
  }
}

/** An interval notifier that records every event and keeps the read_retry protocol. */
export class Recorder extends MmuIntervalNotifier {
  readonly events: { event: number; start: number; end: number; owner: unknown }[] = [];
  readonly lock: Mutex;
  constructor(sys: System) {
    super();
    this.lock = new Mutex(sys.sched, 'recorder');
  }
}

export const recorderOps: MmuIntervalNotifierOps<Recorder> = {
  *invalidate(r, range, curSeq) {
    yield* r.lock.lock();
    mmuIntervalSetSeq(r, curSeq);
    r.events.push({ event: range.event, start: range.start, end: range.end, owner: range.owner });
    yield* r.lock.unlock();
    return true;
  },
};

const recorders = new WeakMap<System, Recorder[]>();

/** Inserts a Recorder over the whole user address space of `mm` (removeRecorders() takes it out). */
export function insertRecorder(sys: System, mm: MmStruct): Recorder {
  const r = new Recorder(sys);
  const ret = sys.run('insert', mmuIntervalNotifierInsert(r, mm, 0, 2 ** 47, recorderOps));
  assert.equal(ret, 0);
  recorders.set(sys, [...(recorders.get(sys) ?? []), r]);
  return r;
}

/** Removes every Recorder of `sys`: each holds an mm_count reference the leak oracle would report. */
export function removeRecorders(sys: System): void {
  for (const r of recorders.get(sys) ?? []) sys.run('remove', mmuIntervalNotifierRemove(r));
  recorders.delete(sys);
}
