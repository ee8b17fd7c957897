/**
 * tools/testing/selftests/iommu/iommufd_fail_nth.c ported. Each case runs its body once per
 * injection point: first with the n-th fault site failing for n = 1, 2, ... until a run
 * passes every site, exactly like fail_nth_first()/fail_nth_next(). The kernel test only
 * checks integrity (no WARN, no leak); here, after every run, the fixture teardown closes
 * everything and asserts oracle 4, no model warning, and that no page of the buffers is left
 * pinned.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import {
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  HWPT_SELFTEST_SIZE,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_TYPE_SELFTEST,
} from '../kernel/drivers/iommufd_selftest.ts';
import {
  fileClose,
  iommufdOpen,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_MAP_FIXED_IOVA,
} from '../kernel/iommufd/index.ts';
import type { ConformanceCase } from './types.ts';
import { Env, RW, sizeOf, TEST_CMD_SIZE, type Args } from './iommufd_harness.ts';

const FAIL_BUFFER_SIZE = 2 * 1024 * 1024;
/**
 * The kernel caps the sweep at 400 iterations ("an arbitrary limit based on the current kernel
 * situation"). Its buffers are mapped once per process, so from the second run on they are
 * already populated; `setup(true)` does the same for the model's fresh system, and the page
 * allocations of a faulting pin are then no longer fault sites.
 */
const MAX_ITERATIONS = 400;

interface NthSelf {
  env: Env;
  fd: number;
  accessId: number;
  /** The device and PASID FIXTURE_TEARDOWN detaches when a run stopped after attaching. */
  stdevId: number;
  pasid: number;
}

/** A body returns 0 on success and -1 at the first failing step, like the kernel's test_nth_*. */
type NthBody = (self: NthSelf, enable: () => void) => number;

function setup(populated: boolean): NthSelf {
  const env = new Env({ ram: 256 * 1024 * 1024, bufferSize: FAIL_BUFFER_SIZE });
  if (populated) {
    // What the clean run left behind in the kernel test's process: both buffers faulted in
    // (their contents stay zero).
    const zeros = new Uint8Array(FAIL_BUFFER_SIZE);
    env.write(env.buffer, zeros);
    env.write(env.mfdBuffer, zeros);
  }
  // The body opens its own fd.
  fileClose(env.sys, env.fd);
  env.fd = -1;
  return { env, fd: -1, accessId: 0, stdevId: 0, pasid: 0 };
}

function teardown(self: NthSelf): void {
  const env = self.env;
  env.sys.inject.disarm();
  if (self.accessId !== 0) assert.equal(fileClose(env.sys, self.accessId), 0);
  if (self.pasid !== 0 && self.stdevId !== 0)
    env.test(IOMMU_TEST_OP_PASID_DETACH, self.stdevId, 'pasid_detach', { pasid: self.pasid });
  if (self.fd >= 0) {
    assert.equal(fileClose(env.sys, self.fd), 0);
    env.fd = iommufdOpen(env.sys, env.p);
    env.checkRefs(env.buffer, env.bufferSize, 0);
    env.checkRefs(env.mfdBuffer, env.bufferSize, 0);
    assert.equal(fileClose(env.sys, env.fd), 0);
    env.fd = -1;
  }
  let pinned = 0;
  for (const [, n] of env.sys.phys.pinnedHeads()) pinned += n;
  assert.equal(pinned, 0, 'pages left pinned after close');
  env.teardown();
}

function open(self: NthSelf): number {
  self.fd = iommufdOpen(self.env.sys, self.env.p);
  self.env.fd = self.fd;
  return self.fd;
}

function ioasAlloc(self: NthSelf): number {
  const cmd: Args = { size: sizeOf('IOMMU_IOAS_ALLOC') };
  return self.env.ioctl('IOMMU_IOAS_ALLOC', cmd) === 0 ? (cmd.out_ioas_id as number) : -1;
}

function failNthCase(name: string, body: NthBody): ConformanceCase {
  return {
    suite: 'iommufd',
    name: `basic_fail_nth.${name}`,
    variant: '',
    run: () => {
      // fail_nth_first(): one clean run.
      let self = setup(false);
      assert.equal(
        body(self, () => {}),
        0,
        'clean run',
      );
      teardown(self);
      for (let nth = 1; ; nth++) {
        assert.ok(nth < MAX_ITERATIONS, `more than ${MAX_ITERATIONS} fault sites`);
        self = setup(true);
        const inject = self.env.sys.inject;
        const rc = body(self, () => {
          inject.arm(nth);
        });
        const injected = inject.injected;
        const site = inject.injectedAt;
        try {
          teardown(self);
        } catch (e) {
          throw new Error(
            `after failing site #${nth} (${site ?? 'none'}): ${e instanceof Error ? e.message : String(e)}`,
          );
        }
        if (!injected) {
          assert.equal(rc, 0, 'run without injection must succeed');
          return;
        }
      }
    },
  };
}

/**
 * The body access_pin and access_pin_domain share: create a pinning access, then (with fault
 * injection on) pin the buffer through it, unpin and destroy it. 0, or -1 at the first failure.
 */
function accessPinAndRelease(self: NthSelf, ioasId: number, iova: number, enable: () => void): number {
  const env = self.env;
  const r = env.test(IOMMU_TEST_OP_CREATE_ACCESS, ioasId, 'create_access', {
    flags: MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  });
  if (r.rc !== 0) return -1;
  self.accessId = r.out.out_access_fd as number;
  enable();
  const cmd: Args = {
    size: TEST_CMD_SIZE,
    op: IOMMU_TEST_OP_ACCESS_PAGES,
    id: self.accessId,
    access_pages: { iova, length: FAIL_BUFFER_SIZE, uptr: env.buffer },
  };
  if (env.ioctl('IOMMU_TEST_CMD', cmd) !== 0) return -1;
  const id = (cmd.access_pages as Args).out_access_pages_id as number;
  if (env.destroyAccessPages(self.accessId, id) !== 0) return -1;
  if (fileClose(env.sys, self.accessId) !== 0) return -1;
  self.accessId = 0;
  return 0;
}

function mapBuffer(self: NthSelf, ioasId: number, length: number): number {
  const r = self.env.map(ioasId, self.env.buffer, length, RW);
  return r.rc === 0 ? r.iova : -1;
}

const cases: ConformanceCase[] = [
  failNthCase('basic', (self, enable) => {
    const env = self.env;
    enable();
    open(self);
    const ioasId = ioasAlloc(self);
    if (ioasId < 0) return -1;
    const ranges = Array.from({ length: 10 }, () => ({ start: 0n, last: 0n }));
    if (
      env.ioctl('IOMMU_IOAS_IOVA_RANGES', {
        size: sizeOf('IOMMU_IOAS_IOVA_RANGES'),
        num_iovas: 10,
        ioas_id: ioasId,
        allowed_iovas: ranges,
      }) !== 0
    )
      return -1;
    const allow = [{ start: 16 * 1024, last: FAIL_BUFFER_SIZE + 16 * 1024 * 600 - 1 }];
    if (
      env.ioctl('IOMMU_IOAS_ALLOW_IOVAS', {
        size: sizeOf('IOMMU_IOAS_ALLOW_IOVAS'),
        ioas_id: ioasId,
        num_iovas: 1,
        allowed_iovas: allow,
      }) !== 0
    )
      return -1;
    const iova = mapBuffer(self, ioasId, FAIL_BUFFER_SIZE);
    if (iova < 0) return -1;
    const copy: Args = {
      size: sizeOf('IOMMU_IOAS_COPY'),
      flags: RW,
      dst_ioas_id: ioasId,
      src_ioas_id: ioasId,
      src_iova: iova,
      length: 160,
    };
    if (env.ioctl('IOMMU_IOAS_COPY', copy) !== 0) return -1;
    if (env.unmap(ioasId, iova, FAIL_BUFFER_SIZE).rc !== 0) return -1;
    env.unmap(ioasId, iova, FAIL_BUFFER_SIZE);
    return 0;
  }),
  failNthCase('map_domain', (self, enable) => {
    const env = self.env;
    open(self);
    const ioasId = ioasAlloc(self);
    if (ioasId < 0 || env.setTempMemoryLimit(32) !== 0) return -1;
    enable();
    let d = env.mockDomain(ioasId);
    if (d.rc !== 0) return -1;
    if (mapBuffer(self, ioasId, 262144) < 0) return -1;
    if (env.destroy(d.stdev) !== 0) return -1;
    d = env.mockDomain(ioasId);
    return d.rc !== 0 ? -1 : 0;
  }),
  failNthCase('map_file_domain', (self, enable) => {
    const env = self.env;
    open(self);
    const ioasId = ioasAlloc(self);
    if (ioasId < 0 || env.setTempMemoryLimit(32) !== 0) return -1;
    enable();
    let d = env.mockDomain(ioasId);
    if (d.rc !== 0) return -1;
    if (env.mapFile(ioasId, env.mfd, 0, 262144).rc !== 0) return -1;
    if (env.destroy(d.stdev) !== 0) return -1;
    d = env.mockDomain(ioasId);
    return d.rc !== 0 ? -1 : 0;
  }),
  failNthCase('map_two_domains', (self, enable) => {
    const env = self.env;
    open(self);
    const ioasId = ioasAlloc(self);
    if (ioasId < 0 || env.setTempMemoryLimit(32) !== 0) return -1;
    let d1 = env.mockDomain(ioasId);
    if (d1.rc !== 0) return -1;
    enable();
    let d2 = env.mockDomain(ioasId);
    if (d2.rc !== 0) return -1;
    if (mapBuffer(self, ioasId, 262144) < 0) return -1;
    if (env.destroy(d1.stdev) !== 0) return -1;
    if (env.destroy(d2.stdev) !== 0) return -1;
    d1 = env.mockDomain(ioasId);
    if (d1.rc !== 0) return -1;
    d2 = env.mockDomain(ioasId);
    return d2.rc !== 0 ? -1 : 0;
  }),
  failNthCase('access_rw', (self, enable) => {
    const env = self.env;
    open(self);
    const ioasId = ioasAlloc(self);
    if (ioasId < 0 || env.setTempMemoryLimit(32) !== 0) return -1;
    const iova = mapBuffer(self, ioasId, 262144);
    if (iova < 0) return -1;
    const tmp = env.mmap(PAGE_SIZE, 0x21);
    const tmpBig = env.mmap(4096 * 8, 0x21);
    enable();
    const r = env.test(IOMMU_TEST_OP_CREATE_ACCESS, ioasId, 'create_access', { flags: 0 });
    if (r.rc !== 0) return -1;
    self.accessId = r.out.out_access_fd as number;
    for (const flags of [
      0,
      MOCK_ACCESS_RW_WRITE,
      MOCK_ACCESS_RW_SLOW_PATH,
      MOCK_ACCESS_RW_SLOW_PATH | MOCK_ACCESS_RW_WRITE,
    ]) {
      if (
        env.test(IOMMU_TEST_OP_ACCESS_RW, self.accessId, 'access_rw', { iova, length: 64, uptr: tmp, flags })
          .rc !== 0
      )
        return -1;
    }
    if (
      env.test(IOMMU_TEST_OP_ACCESS_RW, self.accessId, 'access_rw', {
        iova,
        length: 4096 * 8,
        uptr: tmpBig,
        flags: MOCK_ACCESS_RW_SLOW_PATH,
      }).rc !== 0
    )
      return -1;
    if (fileClose(env.sys, self.accessId) !== 0) return -1;
    self.accessId = 0;
    return 0;
  }),
  failNthCase('access_pin', (self, enable) => {
    const env = self.env;
    open(self);
    const ioasId = ioasAlloc(self);
    if (ioasId < 0 || env.setTempMemoryLimit(32) !== 0) return -1;
    const iova = mapBuffer(self, ioasId, FAIL_BUFFER_SIZE);
    if (iova < 0) return -1;
    return accessPinAndRelease(self, ioasId, iova, enable);
  }),
  failNthCase('access_pin_domain', (self, enable) => {
    const env = self.env;
    open(self);
    const ioasId = ioasAlloc(self);
    if (ioasId < 0 || env.setTempMemoryLimit(32) !== 0) return -1;
    const d = env.mockDomain(ioasId);
    if (d.rc !== 0) return -1;
    const iova = mapBuffer(self, ioasId, FAIL_BUFFER_SIZE);
    if (iova < 0) return -1;
    if (accessPinAndRelease(self, ioasId, iova, enable) !== 0) return -1;
    return env.destroy(d.stdev) !== 0 ? -1 : 0;
  }),
  // The 6.17/6.18 form: a PASID-capable device, HW info, a PASID-capable HWPT and two replaces,
  // then a nesting parent (PASID-capable too), a vIOMMU, a vDEVICE, a HW queue on the mapped
  // page, a fault queue with a nested HWPT on it, a vEVENTQ, and last a PASID attach, replace and
  // detach.
  failNthCase('device', (self, enable) => {
    const env = self.env;
    open(self);
    const ioasId = ioasAlloc(self);
    const ioasId2 = ioasAlloc(self);
    if (ioasId < 0 || ioasId2 < 0) return -1;
    const fixed = IOMMU_IOAS_MAP_FIXED_IOVA | RW;
    const iova = MOCK_APERTURE_START;
    if (env.map(ioasId, env.buffer, PAGE_SIZE, fixed, iova).rc !== 0) return -1;
    if (env.map(ioasId2, env.buffer, PAGE_SIZE, fixed, iova).rc !== 0) return -1;
    enable();
    const d = env.mockDomain(ioasId, MOCK_FLAGS_DEVICE_PASID);
    if (d.rc !== 0) return -1;
    self.stdevId = d.stdev;
    // IOMMU_HW_INFO_TYPE_DEFAULT: no input type flag, the same call as before 6.17.
    const info = new Uint8Array(8);
    if (
      env.ioctl('IOMMU_GET_HW_INFO', {
        size: sizeOf('IOMMU_GET_HW_INFO'),
        dev_id: d.idev,
        data_len: 8,
        data_uptr: info,
      }) !== 0
    )
      return -1;
    const h = env.hwptAlloc(d.idev, ioasId, IOMMU_HWPT_ALLOC_PASID);
    if (h.rc !== 0) return -1;
    if (env.mockDomainReplace(d.stdev, ioasId2) !== 0) return -1;
    if (env.mockDomainReplace(d.stdev, h.id) !== 0) return -1;
    const parent = env.hwptAlloc(d.idev, ioasId, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID);
    if (parent.rc !== 0) return -1;
    const viommu: Args = {
      size: sizeOf('IOMMU_VIOMMU_ALLOC'),
      type: IOMMU_VIOMMU_TYPE_SELFTEST,
      dev_id: d.idev,
      hwpt_id: parent.id,
    };
    if (env.ioctl('IOMMU_VIOMMU_ALLOC', viommu) !== 0) return -1;
    const viommuId = viommu.out_viommu_id as number;
    const vdev: Args = {
      size: sizeOf('IOMMU_VDEVICE_ALLOC'),
      viommu_id: viommuId,
      dev_id: d.idev,
      virt_id: 0,
    };
    if (env.ioctl('IOMMU_VDEVICE_ALLOC', vdev) !== 0) return -1;
    const hwQueue: Args = {
      size: sizeOf('IOMMU_HW_QUEUE_ALLOC'),
      viommu_id: viommuId,
      type: IOMMU_HW_QUEUE_TYPE_SELFTEST,
      index: 0,
      nesting_parent_iova: iova,
      length: PAGE_SIZE,
    };
    if (env.ioctl('IOMMU_HW_QUEUE_ALLOC', hwQueue) !== 0) return -1;
    const fault: Args = { size: sizeOf('IOMMU_FAULT_QUEUE_ALLOC') };
    if (env.ioctl('IOMMU_FAULT_QUEUE_ALLOC', fault) !== 0) return -1;
    env.closeFile(fault.out_fault_fd as number);
    const data = new Uint8Array(HWPT_SELFTEST_SIZE);
    new DataView(data.buffer).setUint32(0, IOMMU_TEST_IOTLB_DEFAULT, true);
    const faultHwpt = env.hwptAllocData(
      d.idev,
      parent.id,
      IOMMU_HWPT_FAULT_ID_VALID,
      IOMMU_HWPT_DATA_SELFTEST,
      data,
      data.length,
      fault.out_fault_id as number,
    );
    if (faultHwpt.rc !== 0) return -1;
    const veventq: Args = {
      size: sizeOf('IOMMU_VEVENTQ_ALLOC'),
      type: IOMMU_VEVENTQ_TYPE_SELFTEST,
      veventq_depth: 2,
      viommu_id: viommuId,
    };
    if (env.ioctl('IOMMU_VEVENTQ_ALLOC', veventq) !== 0) return -1;
    env.closeFile(veventq.out_veventq_fd as number);
    const testHwpt = env.hwptAlloc(d.idev, ioasId, IOMMU_HWPT_ALLOC_PASID);
    if (testHwpt.rc !== 0) return -1;
    // PASID attach, replace and detach; the fixture teardown detaches if a step fails between.
    self.pasid = 200;
    const pasidOp = (op: number, member: string, fields: Args): number =>
      env.test(op, d.stdev, member, { pasid: self.pasid, ...fields }).rc;
    if (pasidOp(IOMMU_TEST_OP_PASID_ATTACH, 'pasid_attach', { pt_id: parent.id }) !== 0) {
      self.pasid = 0;
      return -1;
    }
    if (pasidOp(IOMMU_TEST_OP_PASID_REPLACE, 'pasid_replace', { pt_id: testHwpt.id }) !== 0) return -1;
    if (pasidOp(IOMMU_TEST_OP_PASID_DETACH, 'pasid_detach', {}) !== 0) return -1;
    self.pasid = 0;
    return 0;
  }),
];

/** Every TEST_FAIL_NTH of tools/testing/selftests/iommu/iommufd_fail_nth.c. */
export function iommufdFailNthCases(): ConformanceCase[] {
  return cases;
}
