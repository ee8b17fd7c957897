/**
 * tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_device_pasid): a PASID-capable mock
 * device attached to an IOAS and, in the no_pasid variant, a second mock device without PASIDs.
 * PASID attach, replace and detach through IOMMU_TEST_OP_PASID_*, with the kernel's names and
 * assertions.
 */
import assert from 'node:assert/strict';
import { Errno } from '../kernel/errno.ts';
import {
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_FLAGS_DEVICE_PASID,
} from '../kernel/drivers/iommufd_selftest.ts';
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
} from '../kernel/iommufd/index.ts';
import type { ConformanceCase } from './types.ts';
import { Env, expectErrno, expectOk } from './iommufd_harness.ts';
import { hwptSelftestData, viommuAlloc } from './iommufd_viommu.ts';

const { EINVAL, EBUSY, ENOMEM } = Errno;

interface Variant {
  readonly pasidCapable: boolean;
}

interface Self {
  ioasId: number;
  hwptId: number;
  stdevId: number;
  deviceId: number;
  noPasidStdevId: number;
  noPasidDeviceId: number;
}

/** FIXTURE_SETUP(iommufd_device_pasid). */
function setup(env: Env, v: Variant): Self {
  const ioasId = env.ioasAlloc();
  const d = env.cmdMockDomain(ioasId, MOCK_FLAGS_DEVICE_PASID);
  const self: Self = {
    ioasId,
    hwptId: d.hwpt,
    stdevId: d.stdev,
    deviceId: d.idev,
    noPasidStdevId: 0,
    noPasidDeviceId: 0,
  };
  if (!v.pasidCapable) {
    const n = env.cmdMockDomain(ioasId, 0);
    self.noPasidStdevId = n.stdev;
    self.noPasidDeviceId = n.idev;
  }
  return self;
}

/** _test_cmd_pasid_attach() / _replace(): the rc. */
function pasidAttach(env: Env, stdevId: number, pasid: number, ptId: number): number {
  return env.test(IOMMU_TEST_OP_PASID_ATTACH, stdevId, 'pasid_attach', { pasid, pt_id: ptId }).rc;
}

function pasidReplace(env: Env, stdevId: number, pasid: number, ptId: number): number {
  return env.test(IOMMU_TEST_OP_PASID_REPLACE, stdevId, 'pasid_replace', { pasid, pt_id: ptId }).rc;
}

function pasidDetach(env: Env, stdevId: number, pasid: number): number {
  return env.test(IOMMU_TEST_OP_PASID_DETACH, stdevId, 'pasid_detach', { pasid }).rc;
}

/** test_cmd_pasid_check_hwpt(): 0 if `pasid` translates through HWPT `hwptId` (none for 0). */
function pasidCheckHwpt(env: Env, stdevId: number, pasid: number, hwptId: number): number {
  return env.test(IOMMU_TEST_OP_PASID_CHECK_HWPT, stdevId, 'pasid_check', { pasid, hwpt_id: hwptId }).rc;
}

function pasidAttachCase(v: Variant, env: Env, self: Self): void {
  const data = hwptSelftestData();
  const nestedHwptId = [0, 0, 0];
  let pasid = 100;
  const stdev = self.stdevId;
  const attach = (p: number, pt: number): number => pasidAttach(env, stdev, p, pt);
  const replace = (p: number, pt: number): number => pasidReplace(env, stdev, p, pt);
  const detach = (p: number): void => {
    expectOk(pasidDetach(env, stdev, p), `pasid_detach(${p})`);
  };
  const check = (p: number, hwpt: number): void => {
    assert.equal(pasidCheckHwpt(env, stdev, p, hwpt), 0, `pasid_check_hwpt(${p}, ${hwpt})`);
  };

  // Negative, detach pasid without attaching, this is not expected. But it should not result in
  // failure anyway.
  detach(pasid);

  // Allocate two nested hwpts sharing one common parent hwpt.
  const parent = env.hwptAlloc(self.deviceId, self.ioasId, IOMMU_HWPT_ALLOC_NEST_PARENT);
  expectOk(parent.rc, 'parent');
  const parentHwptId = parent.id;
  for (const i of [0, 1]) {
    const n = env.hwptAllocData(
      self.deviceId,
      parentHwptId,
      IOMMU_HWPT_ALLOC_PASID,
      IOMMU_HWPT_DATA_SELFTEST,
      data,
      data.length,
    );
    expectOk(n.rc, `nested ${i}`);
    nestedHwptId[i] = n.id;
  }

  // Fault related preparation.
  const { faultId, faultFd } = env.faultAlloc();
  const iopf = env.hwptAllocData(
    self.deviceId,
    parentHwptId,
    IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
    IOMMU_HWPT_DATA_SELFTEST,
    data,
    data.length,
    faultId,
  );
  expectOk(iopf.rc, 'hwpt_alloc_iopf');
  const iopfHwptId = iopf.id;

  // Allocate a regular nested hwpt based on viommu.
  const viommu = viommuAlloc(env, self.deviceId, parentHwptId, IOMMU_VIOMMU_TYPE_SELFTEST, 0, 0);
  expectOk(viommu.rc, 'viommu');
  const n2 = env.hwptAllocData(
    self.deviceId,
    viommu.id,
    IOMMU_HWPT_ALLOC_PASID,
    IOMMU_HWPT_DATA_SELFTEST,
    data,
    data.length,
  );
  expectOk(n2.rc, 'nested 2');
  nestedHwptId[2] = n2.id;

  const s2 = env.hwptAlloc(self.deviceId, self.ioasId, IOMMU_HWPT_ALLOC_PASID);
  expectOk(s2.rc, 's2');
  const s2HwptId = s2.id;

  // Attach RID to non-pasid compat domain,
  expectOk(env.mockDomainReplace(stdev, parentHwptId), 'RID to parent');
  // then attach to pasid should fail.
  expectErrno(EINVAL, attach(pasid, s2HwptId));

  // Attach RID to pasid compat domain,
  expectOk(env.mockDomainReplace(stdev, s2HwptId), 'RID to s2');
  // then attach to pasid should succeed,
  expectOk(attach(pasid, nestedHwptId[0]), 'pasid attach nested 0');
  // but attach RID to non-pasid compat domain should fail now.
  expectErrno(EINVAL, env.mockDomainReplace(stdev, parentHwptId));
  // Detach hwpt from pasid 100, and check if the pasid 100 has null domain.
  detach(pasid);
  check(pasid, 0);
  // RID is attached to pasid-comapt domain, pasid path is not used.

  if (!v.pasidCapable) {
    // PASID-compatible domain can be used by non-PASID-capable device.
    expectOk(env.mockDomainReplace(self.noPasidStdevId, nestedHwptId[0]), 'no_pasid RID to nested 0');
    expectOk(env.mockDomainReplace(self.noPasidStdevId, self.ioasId), 'no_pasid RID to ioas');
    // Attach hwpt to pasid 100 of non-PASID-capable device, should fail, no matter domain is
    // pasid-comapt or not.
    expectErrno(EINVAL, pasidAttach(env, self.noPasidStdevId, pasid, parentHwptId));
    expectErrno(EINVAL, pasidAttach(env, self.noPasidStdevId, pasid, s2HwptId));
  }

  // Attach non pasid compat hwpt to pasid-capable device, should fail, and have null domain.
  expectErrno(EINVAL, attach(pasid, parentHwptId));
  check(pasid, 0);

  // Attach ioas to pasid 100, should fail, domain should be null.
  expectErrno(EINVAL, attach(pasid, self.ioasId));
  check(pasid, 0);

  // Attach the s2_hwpt to pasid 100, should succeed, domain should be valid.
  expectOk(attach(pasid, s2HwptId), 'pasid attach s2');
  check(pasid, s2HwptId);

  // Try attach pasid 100 with another hwpt, should FAIL as attach does not allow overwrite, use
  // REPLACE instead.
  expectErrno(EBUSY, attach(pasid, nestedHwptId[0]));

  // Detach hwpt from pasid 100 for next test, should succeed, and have null domain.
  detach(pasid);
  check(pasid, 0);

  // Attach nested hwpt to pasid 100, should succeed, domain should be valid.
  expectOk(attach(pasid, nestedHwptId[0]), 'pasid attach nested 0');
  check(pasid, nestedHwptId[0]);

  // Attach to pasid 100 which has been attached, should fail.
  expectErrno(EBUSY, attach(pasid, nestedHwptId[0]));

  // cleanup pasid 100
  detach(pasid);

  // Replace tests.

  pasid = 200;
  // Replace pasid 200 without attaching it, should fail with -EINVAL.
  expectErrno(EINVAL, replace(pasid, s2HwptId));

  // Attach the s2 hwpt to pasid 200, should succeed, domain should be valid.
  expectOk(attach(pasid, s2HwptId), 'pasid attach s2');
  check(pasid, s2HwptId);

  // Replace pasid 200 with self->ioas_id, should fail and domain should be the prior s2 hwpt.
  expectErrno(EINVAL, replace(pasid, self.ioasId));
  check(pasid, s2HwptId);

  // Replace a nested hwpt for pasid 200, should succeed, and have valid domain.
  expectOk(replace(pasid, nestedHwptId[0]), 'pasid replace nested 0');
  check(pasid, nestedHwptId[0]);

  // Replace with another nested hwpt for pasid 200, should succeed, and have valid domain.
  expectOk(replace(pasid, nestedHwptId[1]), 'pasid replace nested 1');
  check(pasid, nestedHwptId[1]);

  // cleanup pasid 200
  detach(pasid);

  // Negative Tests for pasid replace, use pasid 1024.

  // Attach the s2 hwpt to pasid 1024, should succeed, domain should be valid.
  pasid = 1024;
  expectOk(attach(pasid, s2HwptId), 'pasid attach s2');
  check(pasid, s2HwptId);

  // Replace pasid 1024 with nested_hwpt_id[0], should fail, but have the old valid domain. This
  // is a designed negative case. Normally, this shall succeed.
  expectErrno(ENOMEM, replace(pasid, nestedHwptId[0]));
  check(pasid, s2HwptId);

  // cleanup pasid 1024
  detach(pasid);

  // Attach to iopf-capable hwpt.

  // Attach an iopf hwpt to pasid 2048, should succeed, domain should be valid.
  pasid = 2048;
  expectOk(attach(pasid, iopfHwptId), 'pasid attach iopf');
  check(pasid, iopfHwptId);

  expectOk(env.triggerIopf(self.deviceId, faultFd, pasid), 'trigger_iopf_pasid');

  // Replace with s2_hwpt_id for pasid 2048, should succeed, and have valid domain.
  expectOk(replace(pasid, s2HwptId), 'pasid replace s2');
  check(pasid, s2HwptId);

  // cleanup pasid 2048
  detach(pasid);

  expectOk(env.destroy(iopfHwptId), 'destroy iopf hwpt');
  env.closeFile(faultFd);
  expectOk(env.destroy(faultId), 'destroy fault');

  // Detach the s2_hwpt_id from RID.
  expectOk(env.mockDomainReplace(stdev, self.ioasId), 'RID to ioas');
}

const VARIANTS: [string, Variant][] = [
  ['no_pasid', { pasidCapable: false }],
  ['has_pasid', { pasidCapable: true }],
];

export const devicePasidCases: ConformanceCase[] = VARIANTS.map(([vname, v]) => ({
  suite: 'iommufd',
  name: 'iommufd_device_pasid.pasid_attach',
  variant: vname,
  run: () => {
    const env = new Env();
    const self = setup(env, v);
    pasidAttachCase(v, env, self);
    env.teardown();
  },
}));
