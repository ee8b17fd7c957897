import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import * as mman from '../../../src/kernel/mm/mman.ts';
import { MMU_NOTIFY } from '../../../src/kernel/mm/mmu_notifier.ts';
import { SwpType, swpType } from '../../../src/kernel/mm/pgtable.ts';
import { makeDeviceExclusive } from '../../../src/kernel/mm/device_exclusive.ts';
import { folioTestLocked, folioUnlock } from '../../../src/kernel/mm/filemap.ts';
import type { MmStruct } from '../../../src/kernel/mm/mm_types.ts';
import { cpuRead } from '../../../src/kernel/syscalls.ts';
import type { System } from '../../../src/kernel/system.ts';
import { assertOracles, checkCounts } from '../../../src/oracles/index.ts';
import type { KGen } from '../../../src/sched/types.ts';
import { PAGE, insertRecorder, newSystem, removeRecorders, pattern, pteAt } from './hmm_testdev.ts';

const RW = mman.PROT_READ | mman.PROT_WRITE;
const ANON = mman.MAP_PRIVATE | mman.MAP_ANONYMOUS;
const OWNER = { name: 'gpu' };

function teardown(sys: System): void {
  removeRecorders(sys);
  for (const p of [...sys.processes.values()]) sys.exit(p);
  assertOracles(sys, { teardown: true });
}

/** The dmirror EXCLUSIVE ioctl for one page: returns ret, leaves the page locked if `keepLocked`. */
function* exclusive(
  sys: System,
  mm: MmStruct,
  addr: number,
  keepLocked = false,
): KGen<{ ret: number; page: number }> {
  yield* mm.mmapLock.downRead();
  const r = yield* makeDeviceExclusive(mm, addr, OWNER);
  yield* mm.mmapLock.upRead();
  if (r.ret === 0 && !keepLocked) {
    folioUnlock(sys, r.page);
    sys.phys.put(r.page);
  }
  return r;
}

describe('make_device_exclusive', () => {
  it('installs a device-exclusive entry; a CPU access restores the PTE', () => {
    const { sys, p, mm } = newSystem();
    const rec = insertRecorder(sys, mm);
    const a = sys.mmap(p, 0, 2 * PAGE, RW, ANON);
    sys.write(p, a, pattern(2 * PAGE, 1));
    const pfn = pteAt(mm, a)[1];
    rec.events.length = 0;
    const r = sys.run('excl', exclusive(sys, mm, a));
    assert.equal(r.ret, 0);
    assert.equal(r.page, pfn);
    const [lo, hi] = pteAt(mm, a);
    assert.equal(swpType(lo), SwpType.DEVICE_EXCLUSIVE);
    assert.equal(hi, pfn);
    assert.equal(sys.phys.mapcount[pfn], 1, 'the page stays mapped');
    assert.deepEqual(checkCounts(sys), []);
    assert.deepEqual(
      rec.events.map((e) => [e.event, e.owner]),
      [[MMU_NOTIFY.EXCLUSIVE, OWNER]],
    );
    rec.events.length = 0;
    assert.deepEqual(sys.read(p, a, 2 * PAGE).data, pattern(2 * PAGE, 1));
    assert.equal(pteAt(mm, a)[1], pfn);
    assert.equal(swpType(pteAt(mm, a)[0]), 0);
    assert.deepEqual(
      rec.events.map((e) => [e.event, e.owner]),
      [[MMU_NOTIFY.EXCLUSIVE, null]],
    );
    assert.equal(sys.write(p, a, new Uint8Array([9])), 1, 'still writable after the restore');
    teardown(sys);
  });

  it('errors: -EOPNOTSUPP for shmem, -EFAULT for holes and read-only VMAs', () => {
    const { sys, p, mm } = newSystem();
    const s = sys.mmap(p, 0, PAGE, RW, mman.MAP_SHARED | mman.MAP_ANONYMOUS);
    assert.equal(sys.run('x', exclusive(sys, mm, s)).ret, -Errno.EOPNOTSUPP);
    const ro = sys.mmap(p, 0, PAGE, mman.PROT_READ, ANON);
    assert.equal(sys.run('x', exclusive(sys, mm, ro)).ret, -Errno.EFAULT);
    sys.munmap(p, ro, PAGE);
    assert.equal(sys.run('x', exclusive(sys, mm, ro)).ret, -Errno.EFAULT);
    teardown(sys);
  });

  it('a CPU fault waits while the device still holds the page locked', () => {
    const { sys, p, mm } = newSystem();
    const a = sys.mmap(p, 0, PAGE, RW, ANON);
    sys.write(p, a, pattern(PAGE, 2));
    const r = sys.run('excl', exclusive(sys, mm, a, true));
    assert.equal(r.ret, 0);
    assert.ok(folioTestLocked(sys, r.page));
    const sched = sys.sched;
    const reader = sched.spawn('cpu', cpuRead(sys, p, a, 8));
    for (let k = 0; k < 200 && reader.state === 'runnable'; k++) sched.step(reader);
    assert.equal(reader.state, 'blocked');
    assert.equal(swpType(pteAt(mm, a)[0]), SwpType.DEVICE_EXCLUSIVE);
    folioUnlock(sys, r.page);
    sys.phys.put(r.page);
    sched.runAll();
    assert.deepEqual((reader.result as { data: Uint8Array }).data, pattern(8, 2));
    teardown(sys);
  });

  it('fork turns exclusive entries back into ordinary PTEs first', () => {
    const { sys, p, mm } = newSystem();
    const a = sys.mmap(p, 0, PAGE, RW, ANON);
    sys.write(p, a, pattern(PAGE, 3));
    assert.equal(sys.run('excl', exclusive(sys, mm, a)).ret, 0);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.notEqual(swpType(pteAt(mm, a)[0]), SwpType.DEVICE_EXCLUSIVE);
    assert.deepEqual(sys.read(child, a, 8).data, pattern(8, 3));
    teardown(sys);
  });
});
