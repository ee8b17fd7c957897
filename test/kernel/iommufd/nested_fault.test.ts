import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { Env, expectErrno, expectOk, sizeOf } from '../../../src/conformance/iommufd_harness.ts';
import {
  HWPT_SELFTEST_SIZE,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
} from '../../../src/kernel/drivers/iommufd_selftest.ts';
import {
  iommufdFaultRead,
  iommufdFaultWrite,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_VFIO_IOAS_SET,
  VFIO_TYPE1v2_IOMMU,
} from '../../../src/kernel/iommufd/index.ts';

function selftestData(): Uint8Array {
  const d = new Uint8Array(HWPT_SELFTEST_SIZE);
  new DataView(d.buffer).setUint32(0, IOMMU_TEST_IOTLB_DEFAULT, true);
  return d;
}

/** A mock device on an IOAS, a fault queue, and an IOPF-capable nested HWPT. */
function iopfSetup(env: Env): {
  stdev: number;
  idev: number;
  ioas: number;
  iopf: number;
  faultId: number;
  faultFd: number;
} {
  const ioas = env.ioasAlloc();
  const d = env.cmdMockDomain(ioas);
  const parent = env.hwptAlloc(d.idev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  expectOk(parent.rc, 'parent');
  const { faultId, faultFd } = env.faultAlloc();
  const data = selftestData();
  const iopf = env.hwptAllocData(
    d.idev,
    parent.id,
    IOMMU_HWPT_FAULT_ID_VALID,
    IOMMU_HWPT_DATA_SELFTEST,
    data,
    data.length,
    faultId,
  );
  expectOk(iopf.rc, 'iopf hwpt');
  expectOk(env.mockDomainReplace(d.stdev, iopf.id), 'attach iopf');
  return { stdev: d.stdev, idev: d.idev, ioas, iopf: iopf.id, faultId, faultFd };
}

function trigger(env: Env, idev: number): void {
  const r = env.test(IOMMU_TEST_OP_TRIGGER_IOPF, 0, 'trigger_iopf', {
    dev_id: idev,
    pasid: 0,
    grpid: 7,
    perm: 1,
    addr: 0x1000,
  });
  expectOk(r.rc, 'trigger');
}

describe('iommufd fault queue', () => {
  it('delivers a page request once, with the device id and a cookie to answer', () => {
    const env = new Env();
    const s = iopfSetup(env);
    trigger(env, s.idev);
    // Reads must be whole records.
    expectErrno(Errno.ESPIPE, iommufdFaultRead(env.sys, s.faultFd, new Uint8Array(39)));
    const rec = new Uint8Array(40);
    assert.equal(iommufdFaultRead(env.sys, s.faultFd, rec), 40);
    const v = new DataView(rec.buffer);
    assert.equal(v.getUint32(4, true), s.idev);
    assert.equal(v.getUint32(12, true), 7);
    assert.equal(v.getBigUint64(24, true), 0x1000n);
    const cookie = v.getUint32(36, true);
    // Nothing more to read.
    assert.equal(iommufdFaultRead(env.sys, s.faultFd, new Uint8Array(40)), 0);
    const resp = new Uint8Array(8);
    const rv = new DataView(resp.buffer);
    // An unknown cookie, then a bad code, are refused.
    rv.setUint32(0, cookie + 1, true);
    expectErrno(Errno.EINVAL, iommufdFaultWrite(env.sys, s.faultFd, resp));
    rv.setUint32(0, cookie, true);
    rv.setUint32(4, 5, true);
    expectErrno(Errno.EINVAL, iommufdFaultWrite(env.sys, s.faultFd, resp));
    rv.setUint32(4, 0, true);
    assert.equal(iommufdFaultWrite(env.sys, s.faultFd, resp), 8);
    // Answered once only.
    expectErrno(Errno.EINVAL, iommufdFaultWrite(env.sys, s.faultFd, resp));
    expectOk(env.mockDomainReplace(s.stdev, s.ioas), 'detach');
    env.closeFile(s.faultFd);
    env.teardown();
  });

  it('answers pending requests when the device leaves the HWPT, and keeps the queue busy while open', () => {
    const env = new Env();
    const s = iopfSetup(env);
    trigger(env, s.idev);
    trigger(env, s.idev);
    // One read, one still queued: leaving the HWPT answers both.
    assert.equal(iommufdFaultRead(env.sys, s.faultFd, new Uint8Array(40)), 40);
    expectOk(env.mockDomainReplace(s.stdev, s.ioas), 'detach');
    assert.equal(iommufdFaultRead(env.sys, s.faultFd, new Uint8Array(80)), 0);
    assert.equal(env.sys.trace.counters.get('iopf.response.error'), 2);
    // Without a fault handler on the domain the core fails the request itself.
    trigger(env, s.idev);
    assert.equal(iommufdFaultRead(env.sys, s.faultFd, new Uint8Array(40)), 0);
    assert.equal(env.sys.trace.counters.get('iopf.response.error'), 3);
    // The HWPT and the fd hold the fault object.
    expectErrno(Errno.EBUSY, env.destroy(s.faultId));
    expectOk(env.destroy(s.iopf), 'destroy iopf hwpt');
    expectErrno(Errno.EBUSY, env.destroy(s.faultId));
    env.closeFile(s.faultFd);
    expectOk(env.destroy(s.faultId), 'destroy fault');
    env.teardown();
  });
});

describe('VFIO_IOMMU_GET_INFO', () => {
  it('returns the whole capability chain when argsz covers it', () => {
    const env = new Env();
    const ioas = env.ioasAlloc();
    env.cmdMockDomain(ioas);
    expectOk(
      env.ioctl('IOMMU_VFIO_IOAS', {
        size: sizeOf('IOMMU_VFIO_IOAS'),
        op: IOMMU_VFIO_IOAS_SET,
        ioas_id: ioas,
      }),
      'vfio ioas',
    );
    expectOk(env.ioctl('VFIO_SET_IOMMU', VFIO_TYPE1v2_IOMMU), 'set iommu');
    const head = new Uint8Array(24);
    new DataView(head.buffer).setUint32(0, 24, true);
    env.write(env.buffer, head);
    expectOk(env.ioctl('VFIO_IOMMU_GET_INFO', env.buffer), 'size query');
    const total = new DataView(env.read(env.buffer, 4).buffer).getUint32(0, true);
    // struct (24) + DMA_AVAIL (12) + IOVA_RANGE with one range (16 + 16).
    assert.equal(total, 68);
    new DataView(head.buffer).setUint32(0, total, true);
    env.write(env.buffer, head);
    expectOk(env.ioctl('VFIO_IOMMU_GET_INFO', env.buffer), 'full');
    const v = new DataView(env.read(env.buffer, total).buffer);
    // The mock domain has 2 KiB IO pages: VFIO reports PAGE_SIZE instead.
    assert.equal(v.getBigUint64(8, true), 4096n);
    assert.equal(v.getUint32(16, true), 24);
    assert.equal(v.getUint16(24, true), 3);
    assert.equal(v.getUint32(28, true), 36);
    assert.equal(v.getUint32(32, true), 0xffffffff);
    assert.equal(v.getUint16(36, true), 1);
    assert.equal(v.getUint32(40, true), 0);
    assert.equal(v.getUint32(44, true), 1);
    assert.equal(v.getBigUint64(52, true), BigInt(MOCK_APERTURE_START));
    assert.equal(v.getBigUint64(60, true), BigInt(MOCK_APERTURE_LAST));
    env.teardown();
  });
});
