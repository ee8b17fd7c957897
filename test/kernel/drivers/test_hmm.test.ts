import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  DEVMEM_CHUNK_SIZE,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_PROT_WRITE,
  createDmirrorDevice,
  defaultDmirrorDriver,
  dmirrorDevice,
  dmirrorDriver,
  dmirrorOpen,
  type DmirrorDriver,
} from '../../../src/kernel/drivers/test_hmm.ts';
import {
  DevicePageTable,
  checkDriver,
  deviceByName,
  sdkDevices,
} from '../../../src/kernel/drivers/sdk/index.ts';
import { MMU_NOTIFY, mmuIntervalSetSeq } from '../../../src/kernel/mm/mmu_notifier.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/kernel/mm/mman.ts';
import { System } from '../../../src/kernel/system.ts';
import { assertOracles, checkAll } from '../../../src/oracles/index.ts';

const PAGE = 4096;

function setup(driver?: Partial<DmirrorDriver>) {
  const sys = new System({ ram: 64 * 1024 * 1024 });
  createDmirrorDevice(sys, 'gpu0', 'private', driver === undefined ? {} : { driver });
  const p = sys.createProcess('p');
  const fd = sys.run('open', dmirrorOpen(sys, 'gpu0', p));
  assert.ok(fd >= 0);
  return { sys, p, fd };
}

function finish(sys: System, p: ReturnType<System['createProcess']>, fd: number): void {
  assert.equal(sys.close(fd), 0);
  sys.exit(p);
  assertOracles(sys, { teardown: true });
}

test('the device is an SDK device: registered, probed, and refuses a duplicate name', () => {
  const sys = new System({ ram: 64 * 1024 * 1024 });
  const d = createDmirrorDevice(sys, 'gpu0', 'coherent');
  checkDriver(dmirrorDriver);
  const dev = deviceByName(sys, 'gpu0');
  assert.ok(dev !== null);
  assert.equal(dev.driver, dmirrorDriver);
  assert.equal(dev.state, 'bound');
  assert.equal(dev.drvdata, d);
  assert.deepEqual(sdkDevices(sys), [dev]);
  assert.equal(dmirrorDevice(sys, 'gpu0'), d);
  assert.throws(() => createDmirrorDevice(sys, 'gpu0', 'private'));
  const p = sys.createProcess('p');
  assert.equal(sys.run('open', dmirrorOpen(sys, 'nope', p)), -Errno.ENODEV);
});

test('ioctl argument checks: unaligned addr, empty or wrapping range, unknown command', () => {
  const { sys, p, fd } = setup();
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, { addr: 1, npages: 1 }), -Errno.EINVAL);
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, { addr: PAGE, npages: 0 }), -Errno.EINVAL);
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, { addr: 2 ** 63, npages: 2 ** 52 }), -Errno.EINVAL);
  assert.equal(sys.ioctl(fd, 'HMM_DMIRROR_BOGUS', { addr: PAGE, npages: 1 }), -Errno.EINVAL);
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, { addr: -1, npages: 1 }), -Errno.EFAULT);
  finish(sys, p, fd);
});

test('READ of a hole is -EFAULT and leaves cpages untouched; SNAPSHOT reports a written page WRITE', () => {
  const { sys, p, fd } = setup();
  const arg: Record<string, unknown> = { addr: 0x10000, npages: 1, buf: new Uint8Array(PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, arg), -Errno.EFAULT);
  assert.equal(arg.cpages, undefined);
  const a = sys.mmap(p, 0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.equal(sys.write(p, a, new Uint8Array([7])), 1);
  const snap: Record<string, unknown> = { addr: a, npages: 1, buf: new Uint8Array(1) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_SNAPSHOT, snap), 0);
  assert.equal(snap.cpages, 1);
  assert.equal((snap.buf as Uint8Array)[0], HMM_DMIRROR_PROT_WRITE);
  const rd: Record<string, unknown> = { addr: a, npages: 1, buf: new Uint8Array(PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, rd), 0);
  assert.equal(rd.faults, 1);
  assert.equal((rd.buf as Uint8Array)[0], 7);
  assertOracles(sys);
  finish(sys, p, fd);
});

test('a replaced driver: its invalidate and range fault are the ones called', () => {
  let invalidations = 0;
  let faults = 0;
  const { sys, p, fd } = setup({
    *invalidate(mirror, range, seq) {
      invalidations++;
      return yield* defaultDmirrorDriver.invalidate(mirror, range, seq);
    },
    *rangeFault(mirror, range) {
      faults++;
      return yield* defaultDmirrorDriver.rangeFault(mirror, range);
    },
  });
  const a = sys.mmap(p, 0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const arg: Record<string, unknown> = { addr: a, npages: 4, buf: new Uint8Array(4 * PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, arg), 0);
  assert.equal(faults, 1);
  assert.equal(sys.munmap(p, a, 4 * PAGE), 0);
  assert.ok(invalidations > 0);
  finish(sys, p, fd);
});

test("files and page tables are the SDK's: the open file is the device's, its PT is in sys.deviceMirrors", () => {
  const { sys, p, fd } = setup();
  const dev = deviceByName(sys, 'gpu0');
  assert.ok(dev !== null);
  const file = sys.fileOf(fd);
  assert.ok(file !== null && [...dev.files].some((f) => f === file));
  assert.equal(file.fops, dev.fops);
  const mirror = dmirrorDevice(sys, 'gpu0')?.mirrors.values().next().value;
  assert.ok(mirror !== undefined && mirror.pt instanceof DevicePageTable);
  assert.ok(sys.deviceMirrors.has(mirror.pt));
  assert.equal(mirror.mutex.lockClass, 'dmirror.mutex');
  assert.ok(dev.locks.includes(mirror.mutex));
  const a = sys.mmap(p, 0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const arg: Record<string, unknown> = { addr: a, npages: 2, buf: new Uint8Array(2 * PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, arg), 0);
  assert.equal(mirror.pt.size, 2);
  assert.equal(sys.close(fd), 0);
  assert.ok(!sys.deviceMirrors.has(mirror.pt), 'release tears the page table down');
  assert.equal(dev.files.size, 0);
  sys.exit(p);
  assertOracles(sys, { teardown: true });
});

test("the SDK's mirror oracle checks the built-in device: an invalidate that zaps nothing is caught", () => {
  const { sys, p, fd } = setup({
    // BUG: bumps the sequence but leaves the device PT as it is.
    *invalidate(mirror, range, seq) {
      if (range.event === MMU_NOTIFY.MIGRATE && range.owner === mirror.mdevice) return true;
      yield* mirror.mutex.lock();
      mmuIntervalSetSeq(mirror, seq);
      yield* mirror.mutex.unlock();
      return true;
    },
  });
  const a = sys.mmap(p, 0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.equal(sys.write(p, a, new Uint8Array([1])), 1);
  const arg: Record<string, unknown> = { addr: a, npages: 1, buf: new Uint8Array(PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, arg), 0);
  assert.deepEqual(checkAll(sys), []);
  assert.equal(sys.munmap(p, a, PAGE), 0);
  // The page went back to the allocator while the device still maps it.
  const v = checkAll(sys).filter((x) => x.oracle === 'frame-refs');
  assert.ok(v.length > 0, 'the stale device PTE is reported');
  assert.match(v[0].message, /gpu0 mirror \d+ page table/);
  assert.equal(sys.close(fd), 0);
  sys.exit(p);
});

test('a read after another gets only its own pages: no byte of the earlier read is left over', () => {
  const { sys, p, fd } = setup();
  const a = sys.mmap(p, 0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.equal(sys.write(p, a, new Uint8Array(PAGE).fill(0xaa)), PAGE);
  assert.equal(sys.write(p, a + PAGE + 7, new Uint8Array([5])), 1);
  const read = (addr: number, npages: number): Uint8Array => {
    const buf = new Uint8Array(npages * PAGE).fill(0x11);
    assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, { addr, npages, buf }), 0);
    return buf;
  };
  const second = new Uint8Array(PAGE);
  second[7] = 5;
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(read(a, 1), new Uint8Array(PAGE).fill(0xaa));
    assert.deepEqual(read(a + PAGE, 1), second);
  }
  const both = read(a, 2);
  assert.deepEqual(both.subarray(0, PAGE), new Uint8Array(PAGE).fill(0xaa));
  assert.deepEqual(both.subarray(PAGE), second);
  finish(sys, p, fd);
});

test('a coherent device has one 256 MB region: the allocation past it fails with the memremap_pages WARN, reported once', () => {
  const sys = new System({ ram: 64 * 1024 * 1024 });
  const d = createDmirrorDevice(sys, 'gpu1', 'coherent');
  const p = sys.createProcess('p');
  const fd = sys.run('open', dmirrorOpen(sys, 'gpu1', p));
  // 260 MiB of untouched read-only memory: every page migrates as a new zeroed device page.
  const len = 260 * 1024 * 1024;
  const a = sys.mmap(p, 0, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
  const arg: Record<string, unknown> = { addr: a, npages: len / PAGE };
  sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, arg);
  assert.equal(d.chunks.length * DEVMEM_CHUNK_SIZE, 256 * 1024 * 1024);
  const warns = sys.sched.violations.filter((v) => v.oracle === 'warn');
  assert.deepEqual(
    warns.map((v) => v.message),
    ["memremap_pages: conflicting mapping in same section (all of gpu1's coherent memory is in use)"],
  );
  // What the region holds stays on the device; the rest stays in system memory.
  const snap: Record<string, unknown> = { addr: a, npages: len / PAGE, buf: new Uint8Array(len / PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_SNAPSHOT, snap), 0);
  const perm = snap.buf as Uint8Array;
  const onDevice = perm.filter((b) => (b & 0xf0) === HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL).length;
  assert.equal(onDevice, (256 * 1024 * 1024) / PAGE);
  assert.equal(sys.close(fd), 0);
  sys.exit(p);
  assert.deepEqual(
    checkAll(sys, { teardown: true }).filter((v) => v.oracle !== 'warn'),
    [],
  );
});
