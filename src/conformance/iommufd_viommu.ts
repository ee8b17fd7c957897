/**
 * tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_viommu): a mock device attached to an
 * IOAS, a NEST_PARENT HWPT, a vIOMMU over it and a nested HWPT of the vIOMMU (variant
 * mock_viommu), or nothing (variant no_viommu, where every id is 0). Names and assertions are the
 * kernel's.
 */
import assert from 'node:assert/strict';
import { Errno } from '../kernel/errno.ts';
import {
  HWPT_SELFTEST_SIZE,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_TEST_HW_QUEUE_MAX,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
  MOCK_APERTURE_START,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_DEV_CACHE_ID_MAX,
  MOCK_DEV_CACHE_NUM,
  VIOMMU_INVALIDATE_SELFTEST_SIZE,
  VIOMMU_SELFTEST_SIZE,
} from '../kernel/drivers/iommufd_selftest.ts';
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  iommufdVeventqRead,
  VEVENT_HEADER_SIZE,
} from '../kernel/iommufd/index.ts';
import type { ConformanceCase } from './types.ts';
import { Env, expectErrno, expectOk, RW, sizeOf, type Args } from './iommufd_harness.ts';
import { PAGE_SIZE } from '../lib/units.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../kernel/mm/mman.ts';
import { umMmap, umMunmap } from '../kernel/iommufd/mm_glue.ts';
import { IOMMU_HW_QUEUE_TYPE_DEFAULT } from '../kernel/iommufd/viommu.ts';

const { ENOENT, EINVAL, EBUSY, EEXIST, EFAULT, EIO, ENXIO, EOPNOTSUPP, EOVERFLOW } = Errno;
/** ~(uint64_t)0. */
const U64_MAX = (1n << 64n) - 1n;
const UINT32_MAX = 0xffffffff;

interface Variant {
  readonly viommu: number;
}

interface Self {
  ioasId: number;
  stdevId: number;
  hwptId: number;
  nestedHwptId: number;
  deviceId: number;
  viommuId: number;
}

/** struct iommu_hwpt_selftest { .iotlb = IOMMU_TEST_IOTLB_DEFAULT }. */
export function hwptSelftestData(): Uint8Array {
  const data = new Uint8Array(HWPT_SELFTEST_SIZE);
  new DataView(data.buffer).setUint32(0, IOMMU_TEST_IOTLB_DEFAULT, true);
  return data;
}

/** _test_cmd_viommu_alloc(): the rc and out_viommu_id. */
export function viommuAlloc(
  env: Env,
  devId: number,
  hwptId: number,
  type: number,
  data: Uint8Array | 0,
  dataLen: number,
): { rc: number; id: number } {
  const cmd: Args = {
    size: sizeOf('IOMMU_VIOMMU_ALLOC'),
    flags: 0,
    type,
    dev_id: devId,
    hwpt_id: hwptId,
    data_uptr: data,
    data_len: dataLen,
  };
  const rc = env.ioctl('IOMMU_VIOMMU_ALLOC', cmd);
  return { rc, id: (cmd.out_viommu_id as number | undefined) ?? 0 };
}

/** _test_cmd_vdevice_alloc(): the rc and out_vdevice_id. */
function vdeviceAlloc(env: Env, viommuId: number, devId: number, virtId: number): { rc: number; id: number } {
  const cmd: Args = {
    size: sizeOf('IOMMU_VDEVICE_ALLOC'),
    viommu_id: viommuId,
    dev_id: devId,
    virt_id: virtId,
  };
  const rc = env.ioctl('IOMMU_VDEVICE_ALLOC', cmd);
  return { rc, id: (cmd.out_vdevice_id as number | undefined) ?? 0 };
}

/** _test_cmd_veventq_alloc(): a vEVENTQ of depth 2; the rc, out_veventq_id and out_veventq_fd. */
function veventqAlloc(env: Env, viommuId: number, type: number): { rc: number; id: number; fd: number } {
  const cmd: Args = { size: sizeOf('IOMMU_VEVENTQ_ALLOC'), type, veventq_depth: 2, viommu_id: viommuId };
  const rc = env.ioctl('IOMMU_VEVENTQ_ALLOC', cmd);
  return {
    rc,
    id: (cmd.out_veventq_id as number | undefined) ?? 0,
    fd: (cmd.out_veventq_fd as number | undefined) ?? 0,
  };
}

/** _test_cmd_trigger_vevents(): 0, or the first failing command's rc. */
function triggerVevents(env: Env, devId: number, nvevents: number): number {
  for (let i = 0; i < nvevents; i++) {
    const rc = env.test(IOMMU_TEST_OP_TRIGGER_VEVENT, 0, 'trigger_vevent', { dev_id: devId }).rc;
    if (rc < 0) return rc;
  }
  return 0;
}

/**
 * _test_cmd_read_vevents(): one read() of room for `nvevents` events (header and struct
 * iommu_viommu_event_selftest each); -EOVERFLOW at a lost-events header or a gap in the sequence
 * (in u32 arithmetic, as the kernel's test compares), -EINVAL if the first event's virt_id is not
 * `virtId`. `prevSeq` carries the last sequence seen across calls.
 */
function readVevents(env: Env, fd: number, nvevents: number, virtId: number, prevSeq: { v: number }): number {
  const rec = VEVENT_HEADER_SIZE + 4;
  const data = new Uint8Array(nvevents * rec);
  const bytes = iommufdVeventqRead(env.sys, fd, data);
  if (bytes <= 0) return -EFAULT;
  const v = new DataView(data.buffer);
  for (let i = 0; i < nvevents; i++) {
    const flags = v.getUint32(i * rec, true);
    const seq = v.getUint32(i * rec + 4, true);
    if ((flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0 || (seq - prevSeq.v) >>> 0 > 1) {
      prevSeq.v = seq | 0;
      return -EOVERFLOW;
    }
    prevSeq.v = seq | 0;
    // The kernel's test checks the first event's data each time round.
    if (v.getUint32(VEVENT_HEADER_SIZE, true) !== virtId) return -EINVAL;
  }
  return 0;
}

/** _test_cmd_hw_queue_alloc(): the rc and out_hw_queue_id. */
function hwQueueAlloc(
  env: Env,
  viommuId: number,
  type: number,
  index: number,
  base: number | bigint,
  length: number,
): { rc: number; id: number } {
  const cmd: Args = {
    size: sizeOf('IOMMU_HW_QUEUE_ALLOC'),
    viommu_id: viommuId,
    type,
    index,
    nesting_parent_iova: base,
    length,
  };
  const rc = env.ioctl('IOMMU_HW_QUEUE_ALLOC', cmd);
  return { rc, id: (cmd.out_hw_queue_id as number | undefined) ?? 0 };
}

/** test_cmd_dev_check_cache(). */
function devCheckCache(env: Env, devId: number, cacheId: number, value: number): void {
  expectOk(
    env.test(IOMMU_TEST_OP_DEV_CHECK_CACHE, devId, 'check_dev_cache', { id: cacheId, cache: value }).rc,
    `dev_check_cache(${cacheId}, ${value.toString(16)})`,
  );
}

function devCheckCacheAll(env: Env, devId: number, value: number): void {
  for (let i = 0; i < MOCK_DEV_CACHE_NUM; i++) devCheckCache(env, devId, i, value);
}

/** FIXTURE_SETUP(iommufd_viommu). */
function setup(env: Env, v: Variant): Self {
  const self: Self = {
    ioasId: env.ioasAlloc(),
    stdevId: 0,
    hwptId: 0,
    nestedHwptId: 0,
    deviceId: 0,
    viommuId: 0,
  };
  if (v.viommu !== 0) {
    const d = env.cmdMockDomain(self.ioasId);
    self.stdevId = d.stdev;
    self.deviceId = d.idev;
    // A nesting parent HWPT.
    const parent = env.hwptAlloc(self.deviceId, self.ioasId, IOMMU_HWPT_ALLOC_NEST_PARENT);
    expectOk(parent.rc, 'nest parent');
    self.hwptId = parent.id;
    // A vIOMMU taking a reference on the parent.
    const viommu = viommuAlloc(env, self.deviceId, self.hwptId, IOMMU_VIOMMU_TYPE_SELFTEST, 0, 0);
    expectOk(viommu.rc, 'viommu alloc');
    self.viommuId = viommu.id;
    // A regular nested HWPT of the vIOMMU.
    const data = hwptSelftestData();
    const nested = env.hwptAllocData(
      self.deviceId,
      self.viommuId,
      0,
      IOMMU_HWPT_DATA_SELFTEST,
      data,
      data.length,
    );
    expectOk(nested.rc, 'nested hwpt');
    self.nestedHwptId = nested.id;
  }
  return self;
}

type Body = (env: Env, self: Self, v: Variant) => void;

const VARIANTS: [string, Variant][] = [
  ['no_viommu', { viommu: 0 }],
  ['mock_viommu', { viommu: 1 }],
];

function viommuCase(
  test: string,
  body: Body,
  notModelled?: (v: Variant) => string | undefined,
): ConformanceCase[] {
  return VARIANTS.map(([vname, v]) => {
    const nm = notModelled?.(v);
    if (nm !== undefined)
      return { suite: 'iommufd', name: `iommufd_viommu.${test}`, variant: vname, notModelled: nm };
    return {
      suite: 'iommufd',
      name: `iommufd_viommu.${test}`,
      variant: vname,
      run: () => {
        const env = new Env();
        const self = setup(env, v);
        body(env, self, v);
        env.teardown();
      },
    };
  });
}

/** One request of struct iommu_viommu_invalidate_selftest inv_reqs[2]. */
class InvReqs {
  readonly bytes = new Uint8Array(2 * VIOMMU_INVALIDATE_SELFTEST_SIZE);
  private readonly view = new DataView(this.bytes.buffer);
  set(i: number, f: { flags?: number; vdevId?: number; cacheId?: number }): void {
    const off = i * VIOMMU_INVALIDATE_SELFTEST_SIZE;
    if (f.flags !== undefined) this.view.setUint32(off, f.flags >>> 0, true);
    if (f.vdevId !== undefined) this.view.setUint32(off + 4, f.vdevId, true);
    if (f.cacheId !== undefined) this.view.setUint32(off + 8, f.cacheId, true);
  }
}

export const viommuCases: ConformanceCase[] = [
  ...viommuCase('viommu_auto_destroy', () => {}),

  ...viommuCase('viommu_negative_tests', (env, self) => {
    const deviceId = self.deviceId;
    const ioasId = self.ioasId;
    if (deviceId !== 0) {
      // Negative test -- invalid hwpt (hwpt_id=0).
      expectErrno(ENOENT, viommuAlloc(env, deviceId, 0, IOMMU_VIOMMU_TYPE_SELFTEST, 0, 0).rc);
      // Negative test -- not a nesting parent hwpt.
      const hwpt = env.hwptAlloc(deviceId, ioasId, 0);
      expectOk(hwpt.rc, 'hwpt alloc');
      expectErrno(EINVAL, viommuAlloc(env, deviceId, hwpt.id, IOMMU_VIOMMU_TYPE_SELFTEST, 0, 0).rc);
      expectOk(env.destroy(hwpt.id), 'destroy hwpt');
      // Negative test -- unsupported viommu type.
      expectErrno(EOPNOTSUPP, viommuAlloc(env, deviceId, self.hwptId, 0xdead, 0, 0).rc);
      expectErrno(EBUSY, env.destroy(self.hwptId));
      expectErrno(EBUSY, env.destroy(self.viommuId));
    } else {
      expectErrno(ENOENT, viommuAlloc(env, self.deviceId, self.hwptId, IOMMU_VIOMMU_TYPE_SELFTEST, 0, 0).rc);
    }
  }),

  ...viommuCase('viommu_alloc_nested_iopf', (env, self) => {
    const data = hwptSelftestData();
    const viommuId = self.viommuId;
    const devId = self.deviceId;
    if (self.deviceId !== 0) {
      const { faultId, faultFd } = env.faultAlloc();
      expectErrno(
        ENOENT,
        env.hwptAllocData(
          devId,
          viommuId,
          IOMMU_HWPT_FAULT_ID_VALID,
          IOMMU_HWPT_DATA_SELFTEST,
          data,
          data.length,
          UINT32_MAX,
        ).rc,
      );
      expectErrno(
        EOPNOTSUPP,
        env.hwptAllocData(
          devId,
          viommuId,
          (IOMMU_HWPT_FAULT_ID_VALID | (1 << 31)) >>> 0,
          IOMMU_HWPT_DATA_SELFTEST,
          data,
          data.length,
          faultId,
        ).rc,
      );
      const iopf = env.hwptAllocData(
        devId,
        viommuId,
        IOMMU_HWPT_FAULT_ID_VALID,
        IOMMU_HWPT_DATA_SELFTEST,
        data,
        data.length,
        faultId,
      );
      expectOk(iopf.rc, 'hwpt_alloc_iopf');
      const iopfHwptId = iopf.id;

      // Must allocate vdevice before attaching to a nested hwpt.
      expectErrno(ENOENT, env.mockDomainReplace(self.stdevId, iopfHwptId));
      expectOk(vdeviceAlloc(env, viommuId, devId, 0x99).rc, 'vdevice alloc');
      expectOk(env.mockDomainReplace(self.stdevId, iopfHwptId), 'replace to iopf hwpt');
      expectErrno(EBUSY, env.destroy(iopfHwptId));
      expectOk(env.triggerIopf(devId, faultFd), 'trigger_iopf');

      expectOk(env.mockDomainReplace(self.stdevId, self.ioasId), 'replace to ioas');
      expectOk(env.destroy(iopfHwptId), 'destroy iopf hwpt');
      env.closeFile(faultFd);
      expectOk(env.destroy(faultId), 'destroy fault');
    }
  }),

  ...viommuCase('viommu_alloc_with_data', (env, self) => {
    // struct iommu_viommu_selftest { .in_data = 0xbeef }.
    const data = new Uint8Array(VIOMMU_SELFTEST_SIZE);
    const dv = new DataView(data.buffer);
    dv.setUint32(0, 0xbeef, true);
    // SKIP: "Skipping test for variant no_viommu".
    if (self.deviceId === 0) return;

    const r = viommuAlloc(env, self.deviceId, self.hwptId, IOMMU_VIOMMU_TYPE_SELFTEST, data, data.length);
    expectOk(r.rc, 'viommu alloc with data');
    self.viommuId = r.id;
    assert.equal(dv.getUint32(4, true), dv.getUint32(0, true), 'out_data == in_data');
    const mmapOffset = Number(dv.getBigUint64(8, true));
    const mmapLength = Number(dv.getBigUint64(16, true));

    const map = (length: number, offset: number): number =>
      umMmap(env.sys, env.p, 0, length, PROT_READ | PROT_WRITE, MAP_SHARED, env.fd, offset);
    // Negative mmap tests -- offset and length cannot be changed.
    expectErrno(ENXIO, map(mmapLength, mmapOffset + PAGE_SIZE));
    expectErrno(ENXIO, map(mmapLength, mmapOffset + PAGE_SIZE * 2));
    expectErrno(ENXIO, map(mmapLength / 2, mmapOffset));
    expectErrno(ENXIO, map(mmapLength * 2, mmapOffset));

    // Now do a correct mmap for a loopback test.
    const test = map(mmapLength, mmapOffset);
    assert.ok(test > 0, `mmap: ${test}`);
    assert.equal(new DataView(env.read(test, 4).buffer).getUint32(0, true), dv.getUint32(0, true));

    // The owner of the mmap region should be blocked.
    expectErrno(EBUSY, env.destroy(self.viommuId));
    expectOk(umMunmap(env.sys, env.p, test, mmapLength), 'munmap');
  }),

  ...viommuCase('vdevice_alloc', (env, self) => {
    const viommuId = self.viommuId;
    const devId = self.deviceId;
    let vdevId = 0;
    const prevSeq = { v: -1 };
    if (devId !== 0) {
      // Must allocate vdevice before attaching to a nested hwpt.
      expectErrno(ENOENT, env.mockDomainReplace(self.stdevId, self.nestedHwptId));

      // Allocate a vEVENTQ with veventq_depth=2.
      const q = veventqAlloc(env, viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST);
      expectOk(q.rc, 'veventq alloc');
      expectErrno(EEXIST, veventqAlloc(env, viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST).rc);
      // Set vdev_id to 0x99, unset it, and set to 0x88.
      let vdev = vdeviceAlloc(env, viommuId, devId, 0x99);
      expectOk(vdev.rc, 'vdevice alloc 0x99');
      vdevId = vdev.id;
      expectOk(env.mockDomainReplace(self.stdevId, self.nestedHwptId), 'replace to nested');
      expectOk(triggerVevents(env, devId, 1), 'trigger_vevents');
      expectOk(readVevents(env, q.fd, 1, 0x99, prevSeq), 'read_vevents');
      expectErrno(EEXIST, vdeviceAlloc(env, viommuId, devId, 0x99).rc);
      expectOk(env.mockDomainReplace(self.stdevId, self.ioasId), 'replace to ioas');
      expectOk(env.destroy(vdevId), 'destroy vdevice');

      // Try again with 0x88.
      vdev = vdeviceAlloc(env, viommuId, devId, 0x88);
      expectOk(vdev.rc, 'vdevice alloc 0x88');
      vdevId = vdev.id;
      expectOk(env.mockDomainReplace(self.stdevId, self.nestedHwptId), 'replace to nested');
      // Trigger an overflow with three events.
      expectOk(triggerVevents(env, devId, 3), 'trigger_vevents');
      expectErrno(EOVERFLOW, readVevents(env, q.fd, 3, 0x88, prevSeq));
      // Overflow must be gone after the previous reads.
      expectOk(triggerVevents(env, devId, 1), 'trigger_vevents');
      expectOk(readVevents(env, q.fd, 1, 0x88, prevSeq), 'read_vevents');
      env.closeFile(q.fd);
      expectOk(env.mockDomainReplace(self.stdevId, self.ioasId), 'replace to ioas');
      expectOk(env.destroy(vdevId), 'destroy vdevice');
      expectOk(env.destroy(q.id), 'destroy veventq');
    } else {
      expectErrno(ENOENT, vdeviceAlloc(env, viommuId, devId, 0x99).rc);
    }
  }),

  ...viommuCase('vdevice_cache', (env, self) => {
    const viommuId = self.viommuId;
    const devId = self.deviceId;
    if (devId === 0) return;
    const inv = new InvReqs();
    const invalidate = (reqs: Uint8Array | 0, type: number, len: number, num: number) =>
      env.hwptInvalidate(viommuId, reqs, type, len, num);
    const size = VIOMMU_INVALIDATE_SELFTEST_SIZE;
    const vdev = vdeviceAlloc(env, viommuId, devId, 0x99);
    expectOk(vdev.rc, 'vdevice alloc');

    devCheckCacheAll(env, devId, IOMMU_TEST_DEV_CACHE_DEFAULT);

    // Check data_type by passing zero-length array.
    let r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 0);
    expectOk(r.rc, 'zero-length');
    assert.equal(r.num, 0);

    // Negative test: Invalid data_type.
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, size, 1);
    expectErrno(EINVAL, r.rc);
    assert.equal(r.num, 0);

    // Negative test: structure size sanity.
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size + 1, 1);
    expectErrno(EINVAL, r.rc);
    assert.equal(r.num, 0);
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, 1, 1);
    expectErrno(EINVAL, r.rc);
    assert.equal(r.num, 0);

    // Negative test: invalid flag is passed.
    inv.set(0, { flags: 0xffffffff, vdevId: 0x99 });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 1);
    expectErrno(EOPNOTSUPP, r.rc);
    assert.equal(r.num, 0);

    // Negative test: invalid data_uptr when array is not empty.
    inv.set(0, { flags: 0, vdevId: 0x99 });
    r = invalidate(0, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 1);
    expectErrno(EINVAL, r.rc);
    assert.equal(r.num, 0);

    // Negative test: invalid entry_len when array is not empty.
    inv.set(0, { flags: 0, vdevId: 0x99 });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, 0, 1);
    expectErrno(EINVAL, r.rc);
    assert.equal(r.num, 0);

    // Negative test: invalid cache_id.
    inv.set(0, { flags: 0, vdevId: 0x99, cacheId: MOCK_DEV_CACHE_ID_MAX + 1 });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 1);
    expectErrno(EINVAL, r.rc);
    assert.equal(r.num, 0);

    // Negative test: invalid vdev_id.
    inv.set(0, { flags: 0, vdevId: 0x9, cacheId: 0 });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 1);
    expectErrno(EINVAL, r.rc);
    assert.equal(r.num, 0);

    // Invalidate the 1st cache entry but fail the 2nd request due to invalid flags.
    inv.set(0, { flags: 0, vdevId: 0x99, cacheId: 0 });
    inv.set(1, { flags: 0xffffffff, vdevId: 0x99, cacheId: 1 });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 2);
    expectErrno(EOPNOTSUPP, r.rc);
    assert.equal(r.num, 1);
    devCheckCache(env, devId, 0, 0);
    devCheckCache(env, devId, 1, IOMMU_TEST_DEV_CACHE_DEFAULT);
    devCheckCache(env, devId, 2, IOMMU_TEST_DEV_CACHE_DEFAULT);
    devCheckCache(env, devId, 3, IOMMU_TEST_DEV_CACHE_DEFAULT);

    // Invalidate the 1st cache entry but fail the 2nd request due to invalid cache_id.
    inv.set(0, { flags: 0, vdevId: 0x99, cacheId: 0 });
    inv.set(1, { flags: 0, vdevId: 0x99, cacheId: MOCK_DEV_CACHE_ID_MAX + 1 });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 2);
    expectErrno(EINVAL, r.rc);
    assert.equal(r.num, 1);
    devCheckCache(env, devId, 0, 0);
    devCheckCache(env, devId, 1, IOMMU_TEST_DEV_CACHE_DEFAULT);
    devCheckCache(env, devId, 2, IOMMU_TEST_DEV_CACHE_DEFAULT);
    devCheckCache(env, devId, 3, IOMMU_TEST_DEV_CACHE_DEFAULT);

    // Invalidate the 2nd cache entry and verify.
    inv.set(0, { flags: 0, vdevId: 0x99, cacheId: 1 });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 1);
    expectOk(r.rc, 'invalidate 2nd');
    assert.equal(r.num, 1);
    devCheckCache(env, devId, 0, 0);
    devCheckCache(env, devId, 1, 0);
    devCheckCache(env, devId, 2, IOMMU_TEST_DEV_CACHE_DEFAULT);
    devCheckCache(env, devId, 3, IOMMU_TEST_DEV_CACHE_DEFAULT);

    // Invalidate the 3rd and 4th cache entries and verify.
    inv.set(0, { flags: 0, vdevId: 0x99, cacheId: 2 });
    inv.set(1, { flags: 0, vdevId: 0x99, cacheId: 3 });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 2);
    expectOk(r.rc, 'invalidate 3rd and 4th');
    assert.equal(r.num, 2);
    devCheckCacheAll(env, devId, 0);

    // Invalidate all cache entries for nested_dev_id[1] and verify.
    inv.set(0, { vdevId: 0x99, flags: IOMMU_TEST_INVALIDATE_FLAG_ALL });
    r = invalidate(inv.bytes, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size, 1);
    expectOk(r.rc, 'invalidate all');
    assert.equal(r.num, 1);
    devCheckCacheAll(env, devId, 0);
    expectOk(env.destroy(vdev.id), 'destroy vdevice');
  }),

  ...viommuCase('hw_queue', (env, self) => {
    let iova = MOCK_APERTURE_START;
    const viommuId = self.viommuId;
    const hwQueueId = [0, 0];
    // SKIP: "Skipping test for variant no_viommu".
    if (viommuId === 0) return;
    const alloc = (type: number, index: number, base: number | bigint, length: number): number => {
      const r = hwQueueAlloc(env, viommuId, type, index, base, length);
      if (r.rc === 0) hwQueueId[index] = r.id;
      return r.rc;
    };

    // Fail IOMMU_HW_QUEUE_TYPE_DEFAULT.
    expectErrno(EOPNOTSUPP, alloc(IOMMU_HW_QUEUE_TYPE_DEFAULT, 0, iova, PAGE_SIZE));
    // Fail queue addr and length.
    expectErrno(EINVAL, alloc(IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, 0));
    expectErrno(EOVERFLOW, alloc(IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, U64_MAX, PAGE_SIZE));
    // Fail missing iova.
    expectErrno(ENOENT, alloc(IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, PAGE_SIZE));

    // Map iova.
    const m1 = env.map(self.ioasId, env.buffer, PAGE_SIZE, RW);
    expectOk(m1.rc, 'map');
    iova = m1.iova;
    const m2 = env.map(self.ioasId, env.buffer + PAGE_SIZE, PAGE_SIZE, RW);
    expectOk(m2.rc, 'map');
    const iova2 = m2.iova;

    // Fail index=1 and =MAX; must start from index=0.
    expectErrno(EIO, alloc(IOMMU_HW_QUEUE_TYPE_SELFTEST, 1, iova, PAGE_SIZE));
    expectErrno(EINVAL, alloc(IOMMU_HW_QUEUE_TYPE_SELFTEST, IOMMU_TEST_HW_QUEUE_MAX, iova, PAGE_SIZE));

    // Allocate index=0, declare ownership of the iova.
    expectOk(alloc(IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, PAGE_SIZE), 'hw_queue 0');
    // Fail duplicated index.
    expectErrno(EEXIST, alloc(IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, PAGE_SIZE));
    // Fail unmap, due to iova ownership.
    expectErrno(EBUSY, env.unmap(self.ioasId, iova, PAGE_SIZE).rc);
    // The 2nd page is not pinned, so it can be unmmap.
    expectOk(env.unmap(self.ioasId, iova2, PAGE_SIZE).rc, 'unmap iova2');

    // Allocate index=1, with an unaligned case.
    expectOk(alloc(IOMMU_HW_QUEUE_TYPE_SELFTEST, 1, iova + PAGE_SIZE / 2, PAGE_SIZE / 2), 'hw_queue 1');
    // Fail to destroy, due to dependency.
    expectErrno(EBUSY, env.destroy(hwQueueId[0]));

    // Destroy in descending order.
    expectOk(env.destroy(hwQueueId[1]), 'destroy hw_queue 1');
    expectOk(env.destroy(hwQueueId[0]), 'destroy hw_queue 0');
    // Now it can unmap the first page.
    expectOk(env.unmap(self.ioasId, iova, PAGE_SIZE).rc, 'unmap iova');
  }),
];
