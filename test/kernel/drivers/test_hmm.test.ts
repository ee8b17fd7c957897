import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_PROT_WRITE,
  createDmirrorDevice,
  defaultDmirrorDriver,
  dmirrorDevice,
  dmirrorOpen,
  type DmirrorDriver,
} from '../../../src/kernel/drivers/test_hmm.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/kernel/mm/mman.ts';
import { System } from '../../../src/kernel/system.ts';
import { assertOracles } from '../../../src/oracles/index.ts';

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

test('the device registers in sys.devices and refuses a duplicate name', () => {
  const sys = new System({ ram: 64 * 1024 * 1024 });
  const d = createDmirrorDevice(sys, 'gpu0', 'coherent');
  assert.equal(sys.devices.get('gpu0'), d);
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
