import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mman from '../../../src/kernel/mm/mman.ts';
import { MMU_NOTIFY } from '../../../src/kernel/mm/mmu_notifier.ts';
import { SwpType, isMigrationEntry, swpType } from '../../../src/kernel/mm/pgtable.ts';
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  migratePfn,
  migratePfnFlags,
  migratePfnToPage,
} from '../../../src/kernel/mm/migrate_device.ts';
import { FOLL_LONGTERM, pinUserPagesFast, unpinUserPages } from '../../../src/kernel/mm/gup.ts';
import {
  isDeviceCoherentPage,
  isDevicePrivatePage,
  pageDevPagemap,
} from '../../../src/kernel/mm/memremap.ts';
import { tlbLookup } from '../../../src/kernel/mm/memory.ts';
import { cpuRead } from '../../../src/kernel/syscalls.ts';
import type { System } from '../../../src/kernel/system.ts';
import type { Thread } from '../../../src/sched/thread.ts';
import { assertOracles, checkCounts } from '../../../src/oracles/index.ts';
import { PAGE, TestDev, insertRecorder, newSystem, removeRecorders, pattern, pteAt } from './hmm_testdev.ts';

const RW = mman.PROT_READ | mman.PROT_WRITE;
const ANON = mman.MAP_PRIVATE | mman.MAP_ANONYMOUS;

function teardown(sys: System): void {
  removeRecorders(sys);
  for (const p of [...sys.processes.values()]) sys.exit(p);
  assertOracles(sys, { teardown: true });
}

/**
 * A CPU read of a page while a driver migrates it to the device: the driver runs until the page
 * is under a migration entry (after setup, before finalize), the reader until it blocks on it,
 * then both to the end.
 */
function readDuringMigration(trace: boolean): { sys: System; reader: Thread } {
  const { sys, p, mm } = newSystem({ trace });
  const dev = new TestDev(sys, 8);
  const a = sys.mmap(p, 0, PAGE, RW, ANON);
  sys.write(p, a, pattern(PAGE, 12));
  const sched = sys.sched;
  const migrator = sched.spawn('driver', dev.migrateToDevice(mm, a, 1));
  while (!isMigrationEntry(pteAt(mm, a)[0])) sched.step(migrator);
  const reader = sched.spawn('cpu', cpuRead(sys, p, a, 16));
  for (let k = 0; k < 200 && reader.state === 'runnable'; k++) sched.step(reader);
  assert.equal(reader.state, 'blocked', 'the CPU waits on the migration entry');
  sched.runAll();
  return { sys, reader };
}

describe('migrate_pfn encoding', () => {
  it('keeps exact integers and flags', () => {
    const m = migratePfn(123456) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_WRITE;
    assert.equal(migratePfnToPage(m), 123456);
    assert.equal(migratePfnFlags(m), MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
    assert.equal(migratePfnToPage(MIGRATE_PFN_MIGRATE), -1);
  });
});

describe('migrate_vma', () => {
  it('round trip to device-private memory and back keeps the data and the counts', () => {
    const { sys, p, mm } = newSystem();
    const dev = new TestDev(sys, 32);
    const n = 16;
    const a = sys.mmap(p, 0, n * PAGE, RW, ANON);
    const data = pattern(n * PAGE, 9);
    sys.write(p, a, data);
    const usedBefore = sys.phys.usedRamFrames();
    const m = sys.run('to-dev', dev.migrateToDevice(mm, a, n));
    assert.equal(m.ret, 0);
    assert.equal(m.cpages, n);
    for (let i = 0; i < n; i++) {
      const [lo, hi] = pteAt(mm, a + i * PAGE);
      assert.equal(swpType(lo), SwpType.DEVICE_PRIVATE_WRITE);
      assert.ok(isDevicePrivatePage(sys, hi));
      assert.equal(pageDevPagemap(sys, hi), dev.pgmap);
      assert.equal(sys.phys.refcount[hi], 1);
      assert.equal(sys.phys.mapcount[hi], 1);
    }
    assert.equal(sys.phys.usedRamFrames(), usedBefore - n, 'the system pages were freed');
    assert.equal(sys.stats(p).rss_anon, n * PAGE, 'RSS still counts the device pages');
    assert.deepEqual(checkCounts(sys), []);
    // CPU access faults each page back through migrate_to_ram.
    assert.deepEqual(sys.read(p, a, n * PAGE).data, data);
    assert.equal(dev.migrateToRamCalls, n);
    assert.equal(dev.mem.freePages, 32, 'every device page went back to the driver');
    assert.ok(sys.phys.isRam(tlbLookup(mm, a, false)));
    teardown(sys);
  });

  it('migrates holes and zero pages of an anonymous VMA (cpages counts them) and MIGRATE_TO_SYS brings them back', () => {
    const { sys, p, mm } = newSystem();
    const dev = new TestDev(sys, 8);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    sys.read(p, a, PAGE); // zero page at page 0; pages 1..3 untouched
    const m = sys.run('to-dev', dev.migrateToDevice(mm, a, 4));
    assert.equal(m.cpages, 4);
    for (let i = 0; i < 4; i++) {
      assert.equal(migratePfnToPage(m.src[i]), -1, 'no source page');
      assert.equal(swpType(pteAt(mm, a + i * PAGE)[0]), SwpType.DEVICE_PRIVATE_WRITE);
    }
    const back = sys.run('to-sys', dev.migrateToSys(mm, a, 4));
    assert.equal(back, 4);
    assert.deepEqual(sys.read(p, a, 4 * PAGE).data, new Uint8Array(4 * PAGE));
    assert.equal(dev.mem.freePages, 8);
    teardown(sys);
  });

  it('leaves a pinned page where it is', () => {
    const { sys, p, mm } = newSystem();
    const dev = new TestDev(sys, 8);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    sys.write(p, a, pattern(4 * PAGE, 5));
    const pinned: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(mm, a, 1, FOLL_LONGTERM, pinned)), 1);
    const m = sys.run('to-dev', dev.migrateToDevice(mm, a, 4));
    assert.equal(m.cpages, 3);
    assert.equal(m.src[0], 0);
    assert.equal(tlbLookup(mm, a, false), pinned[0]);
    assert.equal(swpType(pteAt(mm, a + PAGE)[0]), SwpType.DEVICE_PRIVATE_WRITE);
    unpinUserPages(sys, pinned, 1, false);
    assert.deepEqual(sys.read(p, a, 4 * PAGE).data, pattern(4 * PAGE, 5));
    teardown(sys);
  });

  it('MIGRATE events carry the owner, so a driver can skip its own', () => {
    const { sys, p, mm } = newSystem();
    const rec = insertRecorder(sys, mm);
    const dev = new TestDev(sys, 8);
    const a = sys.mmap(p, 0, 2 * PAGE, RW, ANON);
    sys.write(p, a, pattern(2 * PAGE, 6));
    rec.events.length = 0;
    sys.run('to-dev', dev.migrateToDevice(mm, a, 2));
    const migrate = rec.events.filter((e) => e.event === MMU_NOTIFY.MIGRATE);
    assert.ok(migrate.length >= 1);
    assert.ok(migrate.every((e) => e.owner === dev));
    assert.deepEqual({ start: migrate[0].start, end: migrate[0].end }, { start: a, end: a + 2 * PAGE });
    teardown(sys);
  });

  it('does not move shmem pages to device-private memory', () => {
    const { sys, p, mm } = newSystem();
    const dev = new TestDev(sys, 8);
    const a = sys.mmap(p, 0, 2 * PAGE, RW, mman.MAP_SHARED | mman.MAP_ANONYMOUS);
    sys.write(p, a, pattern(2 * PAGE, 7));
    const before = tlbLookup(mm, a, false);
    sys.run('to-dev', dev.migrateToDevice(mm, a, 2));
    assert.equal(tlbLookup(mm, a, false), before, 'still the same page cache page');
    assert.equal(dev.mem.freePages, 8, 'destination pages were given back');
    assert.deepEqual(sys.read(p, a, 2 * PAGE).data, pattern(2 * PAGE, 7));
    teardown(sys);
  });

  it('fork shares device-private entries read-only; writes after that are private', () => {
    const { sys, p, mm } = newSystem();
    const dev = new TestDev(sys, 8);
    const a = sys.mmap(p, 0, 2 * PAGE, RW, ANON);
    sys.write(p, a, pattern(2 * PAGE, 8));
    sys.run('to-dev', dev.migrateToDevice(mm, a, 2));
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    const [plo, dpfn] = pteAt(mm, a);
    assert.equal(swpType(plo), SwpType.DEVICE_PRIVATE_READ);
    assert.equal(swpType(pteAt(child.mm!, a)[0]), SwpType.DEVICE_PRIVATE_READ);
    assert.equal(sys.phys.mapcount[dpfn], 2);
    assert.equal(sys.phys.refcount[dpfn], 2);
    assert.deepEqual(checkCounts(sys), []);
    sys.write(p, a, new Uint8Array([1, 2, 3]));
    assert.deepEqual(sys.read(child, a, 3).data, pattern(3, 8));
    assert.deepEqual(sys.read(p, a, 3).data, new Uint8Array([1, 2, 3]));
    assert.deepEqual(sys.read(child, a + PAGE, PAGE).data, pattern(2 * PAGE, 8).slice(PAGE));
    assert.deepEqual(checkCounts(sys), []);
    teardown(sys);
  });

  it('migrate_device_range evicts every device page back to system memory', () => {
    const { sys, p, mm } = newSystem();
    const dev = new TestDev(sys, 8);
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON);
    sys.write(p, a, pattern(4 * PAGE, 10));
    sys.run('to-dev', dev.migrateToDevice(mm, a, 4));
    const moved = sys.run('evict', dev.evictAll());
    assert.equal(moved, 4);
    assert.equal(dev.mem.freePages, 8);
    for (let i = 0; i < 4; i++) assert.ok(sys.phys.isRam(tlbLookup(mm, a + i * PAGE, true)));
    assert.equal(dev.migrateToRamCalls, 0);
    assert.deepEqual(sys.read(p, a, 4 * PAGE).data, pattern(4 * PAGE, 10));
    teardown(sys);
  });

  it('device-coherent pages are CPU-mapped, and a FOLL_LONGTERM pin moves them to RAM', () => {
    const { sys, p, mm } = newSystem();
    const dev = new TestDev(sys, 8, 'coherent');
    const a = sys.mmap(p, 0, 2 * PAGE, RW, ANON);
    sys.write(p, a, pattern(2 * PAGE, 11));
    const m = sys.run('to-dev', dev.migrateToDevice(mm, a, 2));
    assert.equal(m.cpages, 2);
    const cpfn = tlbLookup(mm, a, false);
    assert.ok(isDeviceCoherentPage(sys, cpfn), 'a present PTE maps the coherent page');
    assert.deepEqual(sys.read(p, a, 2 * PAGE).data, pattern(2 * PAGE, 11));
    const pinned: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(mm, a, 1, FOLL_LONGTERM, pinned)), 1);
    assert.ok(sys.phys.isRam(pinned[0]));
    assert.equal(tlbLookup(mm, a, false), pinned[0]);
    unpinUserPages(sys, pinned, 1, false);
    assert.deepEqual(sys.read(p, a, 2 * PAGE).data, pattern(2 * PAGE, 11));
    assert.equal(sys.run('to-sys', dev.migrateToSys(mm, a, 2)), 1);
    assert.equal(dev.mem.freePages, 8);
    teardown(sys);
  });

  it('a CPU fault on a page under migration sleeps until finalize', () => {
    const { sys, reader } = readDuringMigration(false);
    const r = reader.result as { ret: number; data: Uint8Array };
    assert.equal(r.ret, 16);
    assert.deepEqual(r.data, pattern(16, 12));
    teardown(sys);
  });

  it('the fault that waits on a migration entry is traced as migration_entry_wait', () => {
    const { sys } = readDuringMigration(true);
    const spans = sys.trace.events.filter((e) => e.cat === 'fault' && e.ph === 'B' && e.thread === 'cpu');
    // It waits, then the retried access faults again on the device-private entry it finds.
    assert.deepEqual(
      spans.map((e) => [e.name, e.args?.kind]),
      [
        ['migration_entry_wait', 'migration_wait'],
        ['do_swap_page (migrate_to_ram)', 'device_private'],
      ],
    );
    teardown(sys);
  });
});
