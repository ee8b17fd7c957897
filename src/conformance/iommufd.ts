/**
 * tools/testing/selftests/iommu/iommufd.c ported: every TEST_F of the fixtures iommufd,
 * change_process, iommufd_ioas, iommufd_mock_domain, iommufd_dirty_tracking and
 * vfio_compat_mock_domain with their FIXTURE_VARIANTs here, iommufd_viommu in iommufd_viommu.ts
 * and iommufd_device_pasid in iommufd_device_pasid.ts. Each body follows the kernel test step by
 * step with the same expected errnos.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { Errno } from '../kernel/errno.ts';
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import {
  HWPT_INVALIDATE_SELFTEST_SIZE,
  HWPT_SELFTEST_SIZE,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_DIRTY,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  MOCK_NESTED_DOMAIN_IOTLB_NUM,
  MOCK_PASID_WIDTH,
} from '../kernel/drivers/iommufd_selftest.ts';
import {
  fileClose,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IOPT_PAGES_ACCOUNT_MM,
  IOPT_PAGES_ACCOUNT_NONE,
  IOPT_PAGES_ACCOUNT_USER,
  setCapIpcLock,
  U64_MAX,
  VFIO_API_VERSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from '../kernel/iommufd/index.ts';
import { umExit, umFork, umFtruncate, umMemfdCreate, umMmap, umMunmap } from '../kernel/iommufd/mm_glue.ts';
import type { ConformanceCase } from './types.ts';
import { UAPI_STRUCT_SIZES } from './iommufd_uapi_sizes.ts';
import { viommuCases } from './iommufd_viommu.ts';
import { devicePasidCases } from './iommufd_device_pasid.ts';
import {
  BUFFER_SIZE,
  Env,
  expectErrno,
  expectOk,
  HUGEPAGE_SIZE,
  lcg,
  MOCK_PAGE_SIZE,
  sizeOf,
  type Args,
} from './iommufd_harness.ts';

const {
  ENOENT,
  EFAULT,
  ENOTTY,
  EINVAL,
  E2BIG,
  EBUSY,
  EEXIST,
  EOPNOTSUPP,
  EADDRINUSE,
  EMSGSIZE,
  ENODEV,
  ENOSPC,
} = Errno;
const SIZE_MAX = U64_MAX;

type Body<S> = (env: Env, self: S) => void;

function fixtureCase<V, S>(
  fixture: string,
  test: string,
  variants: [string, V][],
  setup: (env: Env, v: V) => S,
  body: (env: Env, self: S, v: V) => void,
  teardown: (env: Env, self: S, v: V) => void = (env) => {
    env.teardown();
  },
  notModelled?: (v: V, name: string) => string | undefined,
): ConformanceCase[] {
  return variants.map(([vname, v]) => {
    const nm = notModelled?.(v, vname);
    if (nm !== undefined)
      return { suite: 'iommufd', name: `${fixture}.${test}`, variant: vname, notModelled: nm };
    return {
      suite: 'iommufd',
      name: `${fixture}.${test}`,
      variant: vname,
      run: () => {
        const env = new Env();
        const self = setup(env, v);
        body(env, self, v);
        teardown(env, self, v);
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd)

function iommufdCase(test: string, body: Body<null>): ConformanceCase[] {
  return fixtureCase(
    'iommufd',
    test,
    [['', null]],
    () => null,
    (env) => {
      body(env, null);
    },
  );
}

/** TEST_LENGTH(): short -> EINVAL, non-zero tail -> E2BIG, zero tail behaves like the exact size. */
/**
 * TEST_LENGTH(): the caller's buffer is the struct followed by one extra byte. Sizes come from the
 * uAPI header's table, not the model's, so a wrong struct size in the model fails here.
 */
function testLength(env: Env, name: string): void {
  const { size, minSize } = UAPI_STRUCT_SIZES[name];
  const cmd = (userSize: number, extra: number): Args => ({
    size: userSize,
    __tail: [extra],
    __tailAt: size,
  });
  expectErrno(EINVAL, env.ioctl(name, cmd(minSize - 1, 0xff)), `${name} short`);
  expectErrno(E2BIG, env.ioctl(name, cmd(size + 1, 0xff)), `${name} tail`);
  const rc = env.ioctl(name, cmd(size, 0xff));
  const rc2 = env.ioctl(name, cmd(size + 1, 0));
  if (rc !== 0) expectErrno(-rc, rc2, `${name} zero tail`);
  else expectOk(rc2, `${name} zero tail`);
}

const plainCases: ConformanceCase[] = [
  ...iommufdCase('simple_close', () => {}),
  ...iommufdCase('cmd_fail', (env) => {
    expectErrno(ENOENT, env.destroy(0));
    expectErrno(EFAULT, env.ioctl('IOMMU_DESTROY', null));
    expectErrno(ENOTTY, env.ioctl(0x80 - 1, { size: 8, id: 0 }));
  }),
  ...iommufdCase('cmd_length', (env) => {
    for (const n of [
      'IOMMU_DESTROY',
      'IOMMU_GET_HW_INFO',
      'IOMMU_HWPT_ALLOC',
      'IOMMU_HWPT_INVALIDATE',
      'IOMMU_IOAS_ALLOC',
      'IOMMU_IOAS_IOVA_RANGES',
      'IOMMU_IOAS_ALLOW_IOVAS',
      'IOMMU_IOAS_MAP',
      'IOMMU_IOAS_COPY',
      'IOMMU_IOAS_UNMAP',
      'IOMMU_OPTION',
      'IOMMU_VFIO_IOAS',
      'IOMMU_IOAS_MAP_FILE',
      'IOMMU_VIOMMU_ALLOC',
      'IOMMU_VDEVICE_ALLOC',
      'IOMMU_IOAS_CHANGE_PROCESS',
    ])
      testLength(env, n);
  }),
  ...iommufdCase('cmd_ex_fail', (env) => {
    expectErrno(ENOENT, env.ioctl('IOMMU_DESTROY', { size: 16, id: 0, __tail: [0, 0, 0, 0, 0, 0, 0, 0] }));
    expectErrno(E2BIG, env.ioctl('IOMMU_DESTROY', { size: 16, id: 0, __tail: [1, 0, 0, 0, 0, 0, 0, 0] }));
    expectErrno(ENOENT, env.ioctl('IOMMU_DESTROY', { size: 8, id: 0 }));
    expectErrno(EINVAL, env.ioctl('IOMMU_DESTROY', { size: 7, id: 0 }));
  }),
  ...iommufdCase('global_options', (env) => {
    const cmd: Args = {
      size: sizeOf('IOMMU_OPTION'),
      option_id: IOMMU_OPTION_RLIMIT_MODE,
      op: IOMMU_OPTION_OP_GET,
      val64: 1,
    };
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'get');
    assert.equal(cmd.val64, 0n);
    cmd.op = IOMMU_OPTION_OP_SET;
    cmd.val64 = 1;
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'set 1');
    cmd.val64 = 2;
    expectErrno(EINVAL, env.ioctl('IOMMU_OPTION', cmd));
    cmd.op = IOMMU_OPTION_OP_GET;
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'get');
    assert.equal(cmd.val64, 1n);
    cmd.op = IOMMU_OPTION_OP_SET;
    cmd.val64 = 0;
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'set 0');
    cmd.op = IOMMU_OPTION_OP_GET;
    cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
    expectErrno(ENOENT, env.ioctl('IOMMU_OPTION', cmd));
    cmd.op = IOMMU_OPTION_OP_SET;
    expectErrno(ENOENT, env.ioctl('IOMMU_OPTION', cmd));
  }),
  ...iommufdCase('simple_ioctls', (env) => {
    assert.equal(env.ioctl('VFIO_GET_API_VERSION', 0), VFIO_API_VERSION);
    assert.equal(env.ioctl('VFIO_CHECK_EXTENSION', VFIO_TYPE1v2_IOMMU), 1);
  }),
  ...iommufdCase('unmap_cmd', (env) => {
    const c: Args = { argsz: 1, iova: MOCK_APERTURE_START, size: PAGE_SIZE, flags: 0 };
    expectErrno(EINVAL, env.ioctl('VFIO_IOMMU_UNMAP_DMA', c));
    c.argsz = 24;
    c.flags = 2 ** 31;
    expectErrno(EINVAL, env.ioctl('VFIO_IOMMU_UNMAP_DMA', c));
    c.flags = 0;
    expectErrno(ENODEV, env.ioctl('VFIO_IOMMU_UNMAP_DMA', c));
  }),
  ...iommufdCase('map_cmd', (env) => {
    const c: Args = { argsz: 1, iova: MOCK_APERTURE_START, size: PAGE_SIZE, vaddr: env.buffer, flags: 0 };
    expectErrno(EINVAL, env.ioctl('VFIO_IOMMU_MAP_DMA', c));
    c.argsz = 32;
    c.flags = 2 ** 31;
    expectErrno(EINVAL, env.ioctl('VFIO_IOMMU_MAP_DMA', c));
    c.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    expectErrno(ENODEV, env.ioctl('VFIO_IOMMU_MAP_DMA', c));
  }),
  ...iommufdCase('info_cmd', (env) => {
    const c: Args = { argsz: 1 };
    expectErrno(EINVAL, env.ioctl('VFIO_IOMMU_GET_INFO', c));
    c.argsz = 24;
    expectErrno(ENODEV, env.ioctl('VFIO_IOMMU_GET_INFO', c));
  }),
  ...iommufdCase('set_iommu_cmd', (env) => {
    expectErrno(ENODEV, env.ioctl('VFIO_SET_IOMMU', VFIO_TYPE1v2_IOMMU));
    expectErrno(ENODEV, env.ioctl('VFIO_SET_IOMMU', VFIO_TYPE1_IOMMU));
  }),
  ...iommufdCase('vfio_ioas', (env) => {
    const c: Args = { size: sizeOf('IOMMU_VFIO_IOAS'), op: IOMMU_VFIO_IOAS_GET };
    expectErrno(ENODEV, env.ioctl('IOMMU_VFIO_IOAS', c));
    c.op = IOMMU_VFIO_IOAS_SET;
    expectErrno(ENOENT, env.ioctl('IOMMU_VFIO_IOAS', c));
    const id = env.ioasAlloc();
    c.ioas_id = id;
    expectOk(env.ioctl('IOMMU_VFIO_IOAS', c), 'set');
    c.op = IOMMU_VFIO_IOAS_GET;
    expectOk(env.ioctl('IOMMU_VFIO_IOAS', c), 'get');
    assert.equal(c.ioas_id, id);
    c.op = IOMMU_VFIO_IOAS_CLEAR;
    expectOk(env.ioctl('IOMMU_VFIO_IOAS', c), 'clear');
    c.op = IOMMU_VFIO_IOAS_GET;
    expectErrno(ENODEV, env.ioctl('IOMMU_VFIO_IOAS', c));
  }),
];

// ---------------------------------------------------------------------------------------------
// FIXTURE(change_process)

interface CpSelf {
  ioasId: number;
}

const changeProcessCases = fixtureCase<number, CpSelf>(
  'change_process',
  'basic',
  [
    ['account_none', IOPT_PAGES_ACCOUNT_NONE],
    ['account_user', IOPT_PAGES_ACCOUNT_USER],
    ['account_mm', IOPT_PAGES_ACCOUNT_MM],
  ],
  (env, accounting) => {
    setCapIpcLock(env.p, false);
    if (accounting !== IOPT_PAGES_ACCOUNT_NONE) {
      const c: Args = {
        size: sizeOf('IOMMU_OPTION'),
        option_id: IOMMU_OPTION_RLIMIT_MODE,
        op: IOMMU_OPTION_OP_SET,
        val64: accounting === IOPT_PAGES_ACCOUNT_MM ? 1 : 0,
      };
      expectOk(env.ioctl('IOMMU_OPTION', c), 'rlimit mode');
    }
    const ioasId = env.ioasAlloc();
    env.cmdMockDomain(ioasId);
    return { ioasId };
  },
  (env, self, accounting) => {
    const cmd: Args = { size: sizeOf('IOMMU_IOAS_CHANGE_PROCESS') };
    const m = env.map(self.ioasId, env.buffer, PAGE_SIZE);
    expectOk(m.rc, 'map');
    expectErrno(EINVAL, env.ioctl('IOMMU_IOAS_CHANGE_PROCESS', cmd));
    expectOk(env.unmap(self.ioasId, m.iova, PAGE_SIZE).rc, 'unmap');
    expectOk(env.mapFile(self.ioasId, env.mfd, 0, PAGE_SIZE).rc, 'map file');
    expectOk(env.ioctl('IOMMU_IOAS_CHANGE_PROCESS', cmd), 'change in same process');
    // What was accounting "VmPin" / "VmLck" in kB is mm->pinned_vm / locked_vm in pages here.
    const nlock = 1;
    const parent = env.p;
    const child = umFork(env.sys, parent);
    setCapIpcLock(child, false);
    // The child is not this model's mm owner of the pages: the model's counters are per mm.
    assert.equal(parent.mm!.pinnedVm, nlock);
    if (accounting === IOPT_PAGES_ACCOUNT_MM) assert.equal(parent.mm!.lockedVm, nlock);
    assert.equal(child.mm!.pinnedVm, 0);
    assert.equal(child.mm!.lockedVm, 0);
    expectOk(env.ioctl('IOMMU_IOAS_CHANGE_PROCESS', cmd, child), 'change in child');
    assert.equal(parent.mm!.pinnedVm, 0);
    assert.equal(parent.mm!.lockedVm, 0);
    assert.equal(child.mm!.pinnedVm, nlock);
    if (accounting === IOPT_PAGES_ACCOUNT_MM) assert.equal(child.mm!.lockedVm, nlock);
    umExit(env.sys, child);
  },
);

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd_ioas)

interface IoasVariant {
  mockDomains: number;
  memoryLimit: number;
  pasidCapable: boolean;
}

interface IoasSelf {
  ioasId: number;
  stdevId: number;
  hwptId: number;
  deviceId: number;
  baseIova: number;
  devicePasidId: number;
}

const ioasVariants: [string, IoasVariant][] = [
  ['no_domain', { mockDomains: 0, memoryLimit: 0, pasidCapable: false }],
  ['mock_domain', { mockDomains: 1, memoryLimit: 0, pasidCapable: true }],
  ['two_mock_domain', { mockDomains: 2, memoryLimit: 0, pasidCapable: false }],
  ['mock_domain_limit', { mockDomains: 1, memoryLimit: 16, pasidCapable: false }],
];

function ioasSetup(env: Env, v: IoasVariant): IoasSelf {
  const self: IoasSelf = {
    ioasId: env.ioasAlloc(),
    stdevId: 0,
    hwptId: 0,
    deviceId: 0,
    baseIova: 0,
    devicePasidId: 0,
  };
  expectOk(env.setTempMemoryLimit(v.memoryLimit === 0 ? 65536 : v.memoryLimit), 'memory limit');
  for (let i = 0; i < v.mockDomains; i++) {
    const d = env.cmdMockDomain(self.ioasId);
    self.stdevId = d.stdev;
    self.hwptId = d.hwpt;
    self.deviceId = d.idev;
    env.devCheckCacheAll(self.deviceId);
    self.baseIova = MOCK_APERTURE_START;
  }
  if (v.pasidCapable) self.devicePasidId = env.cmdMockDomain(self.ioasId, MOCK_FLAGS_DEVICE_PASID).idev;
  return self;
}

function ioasTeardown(env: Env): void {
  expectOk(env.setTempMemoryLimit(65536), 'memory limit');
  env.teardown();
}

function ioasCase(
  test: string,
  body: (env: Env, self: IoasSelf, v: IoasVariant) => void,
  nm?: (v: IoasVariant, name: string) => string | undefined,
): ConformanceCase[] {
  return fixtureCase('iommufd_ioas', test, ioasVariants, ioasSetup, body, ioasTeardown, nm);
}

/** check_access_rw(): byte-granular reads and writes around a page boundary, fast and slow. */
function checkAccessRw(env: Env, accessFd: number, iova: number, defFlags: number): void {
  const rand = lcg(iova + defFlags);
  const buf = new Uint8Array(BUFFER_SIZE);
  for (let i = 0; i < BUFFER_SIZE; i++) buf[i] = rand() & 0xff;
  env.write(env.buffer, buf);
  const tmp = env.mmap(PAGE_SIZE, MAP_SHARED | MAP_ANONYMOUS);
  for (let a = iova + PAGE_SIZE - 50; a < iova + PAGE_SIZE + 50; a++) {
    for (let len = 1; len < 64; len++) {
      const c: Args = { iova: a, length: len, uptr: tmp, flags: defFlags };
      expectOk(env.test(IOMMU_TEST_OP_ACCESS_RW, accessFd, 'access_rw', c).rc, 'access read');
      assert.deepEqual(env.read(tmp, len), env.read(env.buffer + (a - iova), len));
      const data = new Uint8Array(64);
      for (let i = 0; i < 64; i++) data[i] = rand() & 0xff;
      env.write(tmp, data);
      c.flags = defFlags | MOCK_ACCESS_RW_WRITE;
      expectOk(env.test(IOMMU_TEST_OP_ACCESS_RW, accessFd, 'access_rw', c).rc, 'access write');
      assert.deepEqual(env.read(env.buffer + (a - iova), len), data.subarray(0, len));
    }
  }
  const tmp2 = env.mmap(BUFFER_SIZE, MAP_SHARED | MAP_ANONYMOUS);
  expectOk(
    env.test(IOMMU_TEST_OP_ACCESS_RW, accessFd, 'access_rw', {
      iova,
      length: BUFFER_SIZE,
      uptr: tmp2,
      flags: defFlags,
    }).rc,
    'multi-page',
  );
  assert.deepEqual(env.read(tmp2, BUFFER_SIZE), env.read(env.buffer, BUFFER_SIZE));
  umMunmap(env.sys, env.p, tmp, PAGE_SIZE);
  umMunmap(env.sys, env.p, tmp2, BUFFER_SIZE);
}

function optionCmd(objectId: number, op: number, val64: number): Args {
  return { size: sizeOf('IOMMU_OPTION'), option_id: IOMMU_OPTION_HUGE_PAGES, op, val64, object_id: objectId };
}

function rangesCmd(ioasId: number, n: number, out: { start: bigint; last: bigint }[]): Args {
  return { size: sizeOf('IOMMU_IOAS_IOVA_RANGES'), ioas_id: ioasId, num_iovas: n, allowed_iovas: out };
}

function zeroRanges(n: number): { start: bigint; last: bigint }[] {
  return Array.from({ length: n }, () => ({ start: 0n, last: 0n }));
}

const ffsLen = (length: number): number => length & -length;

const ioasCases: ConformanceCase[] = [
  ...ioasCase('ioas_auto_destroy', () => {}),
  ...ioasCase('ioas_destroy', (env, self) => {
    if (self.stdevId !== 0) expectErrno(EBUSY, env.destroy(self.ioasId));
    else expectOk(env.destroy(self.ioasId), 'destroy');
  }),
  ...ioasCase('alloc_hwpt_nested', (env, self) => {
    // struct iommu_hwpt_selftest { iotlb } and two struct iommu_hwpt_invalidate_selftest.
    const data = new Uint8Array(HWPT_SELFTEST_SIZE);
    new DataView(data.buffer).setUint32(0, IOMMU_TEST_IOTLB_DEFAULT, true);
    const minDataLen = HWPT_SELFTEST_SIZE;
    const invSize = HWPT_INVALIDATE_SELFTEST_SIZE;
    const invReqs = new Uint8Array(2 * invSize);
    const inv = new DataView(invReqs.buffer);
    const setReq = (i: number, flags: number, iotlbId?: number): void => {
      inv.setUint32(i * invSize, flags >>> 0, true);
      if (iotlbId !== undefined) inv.setUint32(i * invSize + 4, iotlbId, true);
    };
    const dev = self.deviceId;
    const nested = (pt: number, flags: number, type: number, d: Uint8Array | 0, len: number, faultId = 0) =>
      env.hwptAllocData(dev, pt, flags, type, d, len, faultId);
    const invalidate = (hwpt: number, reqs: Uint8Array | 0, type: number, len: number, num: number) =>
      env.hwptInvalidate(hwpt, reqs, type, len, num);
    const checkIotlb = (hwpt: number, id: number, v: number): void => {
      expectOk(env.checkIotlb(hwpt, id, v), `check_iotlb(${hwpt}, ${id}, ${v.toString(16)})`);
    };
    const checkIotlbAll = (hwpt: number, v: number): void => {
      for (let i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++) checkIotlb(hwpt, i, v);
    };
    const nestedIds = [0, 0];
    if (dev !== 0) {
      // Negative tests.
      expectErrno(ENOENT, env.hwptAlloc(self.ioasId, dev, 0).rc);
      expectErrno(EINVAL, env.hwptAlloc(dev, dev, 0).rc);
      expectErrno(
        EOPNOTSUPP,
        env.hwptAlloc(dev, self.ioasId, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID).rc,
      );
      const parent = env.hwptAlloc(dev, self.ioasId, IOMMU_HWPT_ALLOC_NEST_PARENT);
      expectOk(parent.rc, 'alloc parent');
      const notWork = env.hwptAlloc(dev, self.ioasId, 0);
      expectOk(notWork.rc, 'alloc non-parent');
      const parentId = parent.id;

      // Negative nested tests.
      expectErrno(EINVAL, nested(parentId, 0, IOMMU_HWPT_DATA_NONE, data, data.length).rc);
      expectErrno(EOPNOTSUPP, nested(parentId, 0, IOMMU_HWPT_DATA_SELFTEST + 1, data, data.length).rc);
      expectErrno(EINVAL, nested(parentId, 0, IOMMU_HWPT_DATA_SELFTEST, data, minDataLen - 1).rc);
      expectErrno(EFAULT, nested(parentId, 0, IOMMU_HWPT_DATA_SELFTEST, 0, data.length).rc);
      expectErrno(
        EOPNOTSUPP,
        nested(parentId, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_SELFTEST, data, data.length).rc,
      );
      expectErrno(EINVAL, nested(notWork.id, 0, IOMMU_HWPT_DATA_SELFTEST, data, data.length).rc);

      // Two nested HWPTs sharing one parent, and one reporting faults to a queue.
      const { faultId, faultFd } = env.faultAlloc();
      for (let i = 0; i < 2; i++) {
        const r = nested(parentId, 0, IOMMU_HWPT_DATA_SELFTEST, data, data.length);
        expectOk(r.rc, `alloc nested ${i}`);
        nestedIds[i] = r.id;
      }
      expectErrno(
        ENOENT,
        nested(parentId, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_HWPT_DATA_SELFTEST, data, data.length, 0xffffffff)
          .rc,
      );
      const iopf = nested(
        parentId,
        IOMMU_HWPT_FAULT_ID_VALID,
        IOMMU_HWPT_DATA_SELFTEST,
        data,
        data.length,
        faultId,
      );
      expectOk(iopf.rc, 'alloc iopf');
      checkIotlbAll(nestedIds[0], IOMMU_TEST_IOTLB_DEFAULT);
      checkIotlbAll(nestedIds[1], IOMMU_TEST_IOTLB_DEFAULT);

      // A nested HWPT on top of a nested HWPT.
      expectErrno(EINVAL, nested(nestedIds[0], 0, IOMMU_HWPT_DATA_SELFTEST, data, data.length).rc);
      // The parent cannot be freed now.
      expectErrno(EBUSY, env.destroy(parentId));

      const SELFTEST = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
      // HWPT_INVALIDATE does not take a parent HWPT.
      let r = invalidate(parentId, invReqs, SELFTEST, invSize, 1);
      expectErrno(EINVAL, r.rc);
      assert.equal(r.num, 0);
      // The data type is checked with a zero-length array.
      r = invalidate(nestedIds[0], invReqs, SELFTEST, invSize, 0);
      expectOk(r.rc, 'empty invalidate');
      assert.equal(r.num, 0);
      // Invalid data type.
      r = invalidate(nestedIds[0], invReqs, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, invSize, 1);
      expectErrno(EINVAL, r.rc);
      assert.equal(r.num, 0);
      // Structure size sanity.
      r = invalidate(nestedIds[0], invReqs, SELFTEST, invSize + 1, 1);
      expectErrno(EINVAL, r.rc);
      assert.equal(r.num, 0);
      r = invalidate(nestedIds[0], invReqs, SELFTEST, 1, 1);
      expectErrno(EINVAL, r.rc);
      assert.equal(r.num, 0);
      // Invalid flag.
      setReq(0, 0xffffffff);
      r = invalidate(nestedIds[0], invReqs, SELFTEST, invSize, 1);
      expectErrno(EOPNOTSUPP, r.rc);
      assert.equal(r.num, 0);
      // NULL data_uptr with a non-empty array.
      setReq(0, 0);
      r = invalidate(nestedIds[0], 0, SELFTEST, invSize, 1);
      expectErrno(EINVAL, r.rc);
      assert.equal(r.num, 0);
      // entry_len 0 with a non-empty array.
      r = invalidate(nestedIds[0], invReqs, SELFTEST, 0, 1);
      expectErrno(EINVAL, r.rc);
      assert.equal(r.num, 0);
      // Invalid iotlb_id.
      setReq(0, 0, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1);
      r = invalidate(nestedIds[0], invReqs, SELFTEST, invSize, 1);
      expectErrno(EINVAL, r.rc);
      assert.equal(r.num, 0);

      const expectIotlb = (vals: number[]): void => {
        for (let i = 0; i < vals.length; i++) checkIotlb(nestedIds[0], i, vals[i]);
      };
      const D = IOMMU_TEST_IOTLB_DEFAULT;
      // The 1st entry is invalidated, the 2nd request fails on its flags.
      setReq(0, 0, 0);
      setReq(1, 0xffffffff, 1);
      r = invalidate(nestedIds[0], invReqs, SELFTEST, invSize, 2);
      expectErrno(EOPNOTSUPP, r.rc);
      assert.equal(r.num, 1);
      expectIotlb([0, D, D, D]);
      // The 1st entry is invalidated, the 2nd request fails on its iotlb_id.
      setReq(0, 0, 0);
      setReq(1, 0, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1);
      r = invalidate(nestedIds[0], invReqs, SELFTEST, invSize, 2);
      expectErrno(EINVAL, r.rc);
      assert.equal(r.num, 1);
      expectIotlb([0, D, D, D]);
      // Invalidate the 2nd entry.
      setReq(0, 0, 1);
      r = invalidate(nestedIds[0], invReqs, SELFTEST, invSize, 1);
      expectOk(r.rc, 'invalidate 1');
      assert.equal(r.num, 1);
      expectIotlb([0, 0, D, D]);
      // Invalidate the 3rd and 4th entries.
      setReq(0, 0, 2);
      setReq(1, 0, 3);
      r = invalidate(nestedIds[0], invReqs, SELFTEST, invSize, 2);
      expectOk(r.rc, 'invalidate 2,3');
      assert.equal(r.num, 2);
      checkIotlbAll(nestedIds[0], 0);
      // Invalidate everything of nested[1].
      setReq(0, IOMMU_TEST_INVALIDATE_FLAG_ALL);
      r = invalidate(nestedIds[1], invReqs, SELFTEST, invSize, 1);
      expectOk(r.rc, 'invalidate all');
      assert.equal(r.num, 1);
      checkIotlbAll(nestedIds[1], 0);

      // Attaching the device to nested[0] makes it busy.
      expectOk(env.mockDomainReplace(self.stdevId, nestedIds[0]), 'replace nested 0');
      expectErrno(EBUSY, env.destroy(nestedIds[0]));
      // Switch to nested[1].
      expectOk(env.mockDomainReplace(self.stdevId, nestedIds[1]), 'replace nested 1');
      expectErrno(EBUSY, env.destroy(nestedIds[1]));
      expectOk(env.destroy(nestedIds[0]), 'destroy nested 0');
      // Switch to the IOPF HWPT and take a page request through the fault queue.
      expectOk(env.mockDomainReplace(self.stdevId, iopf.id), 'replace iopf');
      expectErrno(EBUSY, env.destroy(iopf.id));
      expectOk(env.triggerIopf(dev, faultFd), 'trigger iopf');
      // Back to the parent: the nested HWPTs can go.
      expectOk(env.mockDomainReplace(self.stdevId, parentId), 'replace parent');
      expectOk(env.destroy(nestedIds[1]), 'destroy nested 1');
      expectOk(env.destroy(iopf.id), 'destroy iopf');
      // Back to the IOAS: the paging HWPTs can go.
      expectOk(env.mockDomainReplace(self.stdevId, self.ioasId), 'replace ioas');
      expectOk(env.destroy(parentId), 'destroy parent');
      expectOk(env.destroy(notWork.id), 'destroy non-parent');
      env.closeFile(faultFd);
      expectOk(env.destroy(faultId), 'destroy fault');
    } else {
      expectErrno(ENOENT, env.hwptAlloc(dev, self.ioasId, 0).rc);
      for (let i = 0; i < 2; i++)
        expectErrno(ENOENT, nested(0, 0, IOMMU_HWPT_DATA_SELFTEST, data, data.length).rc);
      expectErrno(ENOENT, env.mockDomainReplace(self.stdevId, nestedIds[0]));
      expectErrno(ENOENT, env.mockDomainReplace(self.stdevId, nestedIds[1]));
    }
  }),
  ...ioasCase('hwpt_attach', (env, self) => {
    if (self.stdevId !== 0) env.cmdMockDomain(self.hwptId);
    else expectErrno(ENOENT, env.mockDomain(self.hwptId).rc);
  }),
  ...ioasCase('ioas_area_destroy', (env, self) => {
    expectOk(env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE, self.baseIova), 'map');
    if (self.stdevId !== 0) expectErrno(EBUSY, env.destroy(self.ioasId));
    else expectOk(env.destroy(self.ioasId), 'destroy');
  }),
  ...ioasCase('ioas_area_auto_destroy', (env, self) => {
    for (let i = 0; i < 10; i++)
      expectOk(env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE, self.baseIova + i * PAGE_SIZE), 'map');
  }),
  ...ioasCase('get_hw_info', (env, self, v) => {
    // _test_cmd_get_hw_info(): a type other than IOMMU_HW_INFO_TYPE_DEFAULT (0) goes in
    // in_data_type with IOMMU_HW_INFO_FLAG_INPUT_TYPE.
    const hwInfo = (dev: number, len: number, type = 0): { rc: number; cmd: Args; data: Uint8Array } => {
      const data = new Uint8Array(len).fill(0x5a);
      const cmd: Args = {
        size: sizeOf('IOMMU_GET_HW_INFO'),
        dev_id: dev,
        data_len: len,
        data_uptr: len > 0 ? data : 0,
        in_data_type: type,
        flags: type !== 0 ? IOMMU_HW_INFO_FLAG_INPUT_TYPE : 0,
      };
      const rc = env.ioctl('IOMMU_GET_HW_INFO', cmd);
      return { rc, cmd, data };
    };
    if (self.deviceId !== 0) {
      for (const len of [0, 8, 16, 4]) {
        const r = hwInfo(self.deviceId, len);
        expectOk(r.rc, 'hw info');
        assert.equal(r.cmd.out_data_type, 0xfeedbeef);
        assert.equal(r.cmd.data_len, 8);
        for (let i = 8; i < len; i++) assert.equal(r.data[i], 0);
        const dv = new DataView(r.data.buffer);
        if (len >= 8) assert.equal(dv.getUint32(4, true), 0xdeadbeef);
        if (len >= 4) assert.equal(dv.getUint32(0, true), 0);
      }
      // Request for a wrong data_type, and a correct one.
      expectErrno(EOPNOTSUPP, hwInfo(self.deviceId, 8, IOMMU_HW_INFO_TYPE_SELFTEST + 1).rc);
      const typed = hwInfo(self.deviceId, 8, IOMMU_HW_INFO_TYPE_SELFTEST);
      expectOk(typed.rc, 'hw info of the selftest type');
      assert.equal(typed.cmd.in_data_type, IOMMU_HW_INFO_TYPE_SELFTEST);
      assert.equal(new DataView(typed.data.buffer).getUint32(4, true), 0xdeadbeef);
      assert.equal(hwInfo(self.deviceId, 0).cmd.out_max_pasid_log2, 0);
      if (v.pasidCapable)
        assert.equal(hwInfo(self.devicePasidId, 0).cmd.out_max_pasid_log2, MOCK_PASID_WIDTH);
    } else {
      expectErrno(ENOENT, hwInfo(self.deviceId, 8).rc);
      expectErrno(ENOENT, hwInfo(self.deviceId, 16).rc);
    }
  }),
  ...ioasCase('area', (env, self) => {
    const b = self.baseIova;
    for (let i = 0; i < 10; i++) expectErrno(ENOENT, env.unmap(self.ioasId, i * PAGE_SIZE, PAGE_SIZE).rc);
    for (let i = 0; i < 10; i++)
      expectOk(env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE, b + i * PAGE_SIZE), 'map');
    for (let i = 0; i < 10; i++) expectOk(env.unmap(self.ioasId, b + i * PAGE_SIZE, PAGE_SIZE).rc, 'unmap');
    expectOk(env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE * 2, b + 16 * PAGE_SIZE), 'map 2');
    expectErrno(ENOENT, env.unmap(self.ioasId, b + 16 * PAGE_SIZE, PAGE_SIZE).rc);
    expectErrno(ENOENT, env.unmap(self.ioasId, b + 17 * PAGE_SIZE, PAGE_SIZE).rc);
    expectErrno(EEXIST, env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE * 2, b + 16 * PAGE_SIZE));
    expectErrno(EEXIST, env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE, b + 16 * PAGE_SIZE));
    expectErrno(EEXIST, env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE, b + 17 * PAGE_SIZE));
    expectErrno(EEXIST, env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE * 2, b + 15 * PAGE_SIZE));
    expectErrno(EEXIST, env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE * 3, b + 15 * PAGE_SIZE));
    expectOk(env.unmap(self.ioasId, 0, U64_MAX).rc, 'unmap all');
    expectOk(env.unmap(self.ioasId, 0, U64_MAX).rc, 'unmap all empty');
  }),
  ...ioasCase('unmap_fully_contained_areas', (env, self) => {
    const b = self.baseIova + 4 * PAGE_SIZE;
    for (let i = 0; i < 4; i++)
      expectOk(env.mapFixed(self.ioasId, env.buffer, 8 * PAGE_SIZE, b + i * 16 * PAGE_SIZE), 'map');
    expectErrno(ENOENT, env.unmap(self.ioasId, b - 4 * PAGE_SIZE, 8 * PAGE_SIZE).rc);
    expectErrno(
      ENOENT,
      env.unmap(self.ioasId, b + 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE - 4 * PAGE_SIZE, 8 * PAGE_SIZE).rc,
    );
    const r = env.unmap(self.ioasId, b - 4 * PAGE_SIZE, 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE + 4 * PAGE_SIZE);
    expectOk(r.rc, 'unmap');
    assert.equal(r.length, 32 * PAGE_SIZE);
  }),
  ...ioasCase('reserved_overflow', (env, self) => {
    expectOk(env.addReserved(self.ioasId, 6, 0xffffffffffff8001n), 'add reserved');
    expectErrno(ENOSPC, env.map(self.ioasId, env.buffer, 0x5000).rc);
  }),
  ...ioasCase('area_auto_iova', (env, self) => {
    const iovas: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = env.map(self.ioasId, env.buffer, PAGE_SIZE);
      expectOk(r.rc, 'map');
      iovas[i] = r.iova;
    }
    for (let i = 0; i < 10; i++) expectOk(env.unmap(self.ioasId, iovas[i], PAGE_SIZE).rc, 'unmap');
    for (let i = 0; i < 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      const r = env.map(self.ioasId, self.stdevId !== 0 ? env.buffer : 2 ** 31, length);
      expectOk(r.rc, 'map');
      iovas[i] = r.iova;
      assert.equal(iovas[i] % ffsLen(length), 0);
    }
    for (let i = 0; i < 10; i++) expectOk(env.unmap(self.ioasId, iovas[i], PAGE_SIZE * (i + 1)).rc, 'unmap');
    const rs = PAGE_SIZE * 4;
    const rl = PAGE_SIZE * 100;
    expectOk(env.addReserved(self.ioasId, rs, rl), 'add reserved');
    for (let i = 0; i < 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      const r = env.map(self.ioasId, env.buffer, length);
      expectOk(r.rc, 'map');
      iovas[i] = r.iova;
      assert.equal(iovas[i] % ffsLen(length), 0);
      assert.equal(iovas[i] > rs && iovas[i] < rs + rl, false);
    }
    for (let i = 0; i < 10; i++) expectOk(env.unmap(self.ioasId, iovas[i], PAGE_SIZE * (i + 1)).rc, 'unmap');
    const ranges = [{ start: PAGE_SIZE, last: PAGE_SIZE * 600 }];
    const allow: Args = {
      size: sizeOf('IOMMU_IOAS_ALLOW_IOVAS'),
      ioas_id: self.ioasId,
      num_iovas: 1,
      allowed_iovas: ranges,
    };
    expectErrno(EADDRINUSE, env.ioctl('IOMMU_IOAS_ALLOW_IOVAS', allow));
    if (self.stdevId !== 0)
      ranges[0] = { start: MOCK_APERTURE_START + PAGE_SIZE, last: MOCK_APERTURE_START + PAGE_SIZE * 600 - 1 };
    else ranges[0] = { start: PAGE_SIZE * 200, last: PAGE_SIZE * 600 - 1 };
    expectOk(env.ioctl('IOMMU_IOAS_ALLOW_IOVAS', allow), 'allow');
    for (let i = 0; i < 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      const r = env.map(self.ioasId, env.buffer, length);
      expectOk(r.rc, 'map');
      iovas[i] = r.iova;
      assert.equal(iovas[i] % ffsLen(length), 0);
      assert.ok(iovas[i] >= ranges[0].start && iovas[i] <= ranges[0].last);
      assert.ok(iovas[i] + length > ranges[0].start && iovas[i] + length <= ranges[0].last + 1);
    }
    for (let i = 0; i < 10; i++) expectOk(env.unmap(self.ioasId, iovas[i], PAGE_SIZE * (i + 1)).rc, 'unmap');
  }),
  ...ioasCase('area_allowed', (env, self) => {
    const ranges = [{ start: self.baseIova, last: self.baseIova + PAGE_SIZE * 600 }];
    const allow: Args = {
      size: sizeOf('IOMMU_IOAS_ALLOW_IOVAS'),
      ioas_id: self.ioasId,
      num_iovas: 1,
      allowed_iovas: ranges,
    };
    expectOk(env.ioctl('IOMMU_IOAS_ALLOW_IOVAS', allow), 'allow');
    expectErrno(EADDRINUSE, env.addReserved(self.ioasId, ranges[0].start + PAGE_SIZE, PAGE_SIZE));
    allow.num_iovas = 0;
    expectOk(env.ioctl('IOMMU_IOAS_ALLOW_IOVAS', allow), 'clear');
    expectOk(env.addReserved(self.ioasId, ranges[0].start + PAGE_SIZE, PAGE_SIZE), 'reserve');
    allow.num_iovas = 1;
    expectErrno(EADDRINUSE, env.ioctl('IOMMU_IOAS_ALLOW_IOVAS', allow));
  }),
  ...ioasCase('copy_area', (env, self) => {
    const copy: Args = {
      size: sizeOf('IOMMU_IOAS_COPY'),
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
      dst_ioas_id: self.ioasId,
      src_ioas_id: self.ioasId,
      length: PAGE_SIZE,
    };
    expectOk(env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE, self.baseIova), 'map');
    copy.src_iova = self.baseIova;
    copy.dst_iova = self.baseIova + PAGE_SIZE;
    expectOk(env.ioctl('IOMMU_IOAS_COPY', copy), 'copy same');
    copy.src_iova = self.baseIova;
    copy.dst_iova = 0;
    copy.dst_ioas_id = env.ioasAlloc();
    expectOk(env.ioctl('IOMMU_IOAS_COPY', copy), 'copy other');
  }),
  ...ioasCase('iova_ranges', (env, self) => {
    let ranges = zeroRanges(BUFFER_SIZE / 16);
    const cmd = rangesCmd(self.ioasId, BUFFER_SIZE / 16, ranges);
    expectOk(env.ioctl('IOMMU_IOAS_IOVA_RANGES', cmd), 'ranges');
    assert.equal(cmd.num_iovas, 1);
    if (self.stdevId === 0) {
      assert.equal(ranges[0].start, 0n);
      assert.equal(ranges[0].last, SIZE_MAX);
      assert.equal(cmd.out_iova_alignment, 1n);
    } else {
      assert.equal(ranges[0].start, BigInt(MOCK_APERTURE_START));
      assert.equal(ranges[0].last, BigInt(MOCK_APERTURE_LAST));
      assert.equal(cmd.out_iova_alignment, BigInt(MOCK_PAGE_SIZE));
    }
    ranges = zeroRanges(BUFFER_SIZE / 16);
    cmd.allowed_iovas = ranges;
    cmd.num_iovas = 0;
    expectErrno(EMSGSIZE, env.ioctl('IOMMU_IOAS_IOVA_RANGES', cmd));
    assert.equal(cmd.num_iovas, 1);
    assert.equal(ranges[0].start, 0n);
    assert.equal(ranges[0].last, 0n);
    expectOk(env.addReserved(self.ioasId, PAGE_SIZE, PAGE_SIZE), 'reserve');
    cmd.num_iovas = BUFFER_SIZE / 16;
    expectOk(env.ioctl('IOMMU_IOAS_IOVA_RANGES', cmd), 'ranges');
    if (self.stdevId === 0) {
      assert.equal(cmd.num_iovas, 2);
      assert.equal(ranges[0].start, 0n);
      assert.equal(ranges[0].last, BigInt(PAGE_SIZE - 1));
      assert.equal(ranges[1].start, BigInt(PAGE_SIZE * 2));
      assert.equal(ranges[1].last, SIZE_MAX);
    } else {
      assert.equal(cmd.num_iovas, 1);
      assert.equal(ranges[0].start, BigInt(MOCK_APERTURE_START));
      assert.equal(ranges[0].last, BigInt(MOCK_APERTURE_LAST));
    }
    ranges = zeroRanges(BUFFER_SIZE / 16);
    cmd.allowed_iovas = ranges;
    cmd.num_iovas = 1;
    if (self.stdevId === 0) {
      expectErrno(EMSGSIZE, env.ioctl('IOMMU_IOAS_IOVA_RANGES', cmd));
      assert.equal(cmd.num_iovas, 2);
      assert.equal(ranges[0].start, 0n);
      assert.equal(ranges[0].last, BigInt(PAGE_SIZE - 1));
    } else {
      expectOk(env.ioctl('IOMMU_IOAS_IOVA_RANGES', cmd), 'ranges');
      assert.equal(cmd.num_iovas, 1);
      assert.equal(ranges[0].start, BigInt(MOCK_APERTURE_START));
      assert.equal(ranges[0].last, BigInt(MOCK_APERTURE_LAST));
    }
    assert.equal(ranges[1].start, 0n);
    assert.equal(ranges[1].last, 0n);
  }),
  ...ioasCase('access_domain_destory', (env, self) => {
    const bufSize = 2 * HUGEPAGE_SIZE;
    const buf = env.mmap(bufSize, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE);
    expectOk(env.mapFixed(self.ioasId, buf, bufSize, self.baseIova), 'map');
    const acc = env.createAccess(self.ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const r = env.accessPages(acc, self.baseIova + PAGE_SIZE, PAGE_SIZE, buf + PAGE_SIZE);
    expectOk(r.rc, 'access pages');
    if (self.stdevId !== 0) expectOk(env.destroy(self.stdevId), 'destroy stdev');
    expectOk(env.destroyAccessPages(acc, r.id), 'destroy access pages');
    env.destroyAccess(acc);
    expectOk(umMunmap(env.sys, env.p, buf, bufSize), 'munmap');
  }),
  ...ioasCase('access_pin', (env, self) => {
    const acc = env.createAccess(self.ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    for (let npages = 1; npages < BUFFER_SIZE / PAGE_SIZE; npages++) {
      const len = npages * PAGE_SIZE;
      expectOk(env.mapFixed(self.ioasId, env.buffer, BUFFER_SIZE, MOCK_APERTURE_START), 'map');
      let r = env.accessPages(acc, MOCK_APERTURE_START, len, env.buffer);
      expectOk(r.rc, 'pin');
      expectOk(env.destroyAccessPages(acc, r.id), 'unpin');
      r = env.accessPages(acc, MOCK_APERTURE_START, len, env.buffer);
      expectOk(r.rc, 'pin 1');
      const first = r.id;
      r = env.accessPages(acc, MOCK_APERTURE_START, len, env.buffer);
      expectOk(r.rc, 'pin 2');
      expectOk(env.destroyAccessPages(acc, r.id), 'unpin 2');
      expectOk(env.destroyAccessPages(acc, first), 'unpin 1');
      r = env.accessPages(acc, MOCK_APERTURE_START, len, env.buffer);
      expectOk(r.rc, 'pin 3');
      const d = env.cmdMockDomain(self.ioasId);
      expectOk(env.checkMap(d.hwpt, MOCK_APERTURE_START, BUFFER_SIZE, env.buffer), 'check map');
      expectOk(env.destroy(d.stdev), 'destroy stdev');
      expectOk(env.destroyAccessPages(acc, r.id), 'unpin 3');
      expectOk(env.unmap(self.ioasId, MOCK_APERTURE_START, BUFFER_SIZE).rc, 'unmap');
    }
    env.destroyAccess(acc);
  }),
  ...ioasCase('access_pin_unmap', (env, self) => {
    const acc = env.createAccess(self.ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    expectOk(env.mapFixed(self.ioasId, env.buffer, BUFFER_SIZE, MOCK_APERTURE_START), 'map');
    const r = env.accessPages(acc, MOCK_APERTURE_START, BUFFER_SIZE, env.buffer);
    expectOk(r.rc, 'pin');
    expectOk(env.unmap(self.ioasId, MOCK_APERTURE_START, BUFFER_SIZE).rc, 'unmap');
    expectErrno(ENOENT, env.destroyAccessPages(acc, r.id));
  }),
  ...ioasCase('access_rw', (env, self) => {
    const acc = env.createAccess(self.ioasId, 0);
    const r = env.map(self.ioasId, env.buffer, BUFFER_SIZE);
    expectOk(r.rc, 'map');
    checkAccessRw(env, acc, r.iova, 0);
    checkAccessRw(env, acc, r.iova, MOCK_ACCESS_RW_SLOW_PATH);
    expectOk(env.unmap(self.ioasId, r.iova, BUFFER_SIZE).rc, 'unmap');
    env.destroyAccess(acc);
  }),
  ...ioasCase('access_rw_unaligned', (env, self) => {
    const acc = env.createAccess(self.ioasId, 0);
    const iova = self.baseIova + MOCK_PAGE_SIZE;
    expectOk(env.mapFixed(self.ioasId, env.buffer, BUFFER_SIZE, iova), 'map');
    checkAccessRw(env, acc, iova, 0);
    expectOk(env.unmap(self.ioasId, iova, BUFFER_SIZE).rc, 'unmap');
    env.destroyAccess(acc);
  }),
  ...ioasCase('fork_gone', (env, self) => {
    const acc = env.createAccess(self.ioasId, 0);
    const child = umFork(env.sys, env.p);
    setCapIpcLock(child, true);
    expectOk(env.mapFixed(self.ioasId, env.buffer, BUFFER_SIZE, MOCK_APERTURE_START, child), 'child map');
    umExit(env.sys, child);
    if (self.stdevId !== 0) {
      env.cmdMockDomain(self.ioasId);
      checkAccessRw(env, acc, MOCK_APERTURE_START, 0);
    } else {
      expectErrno(EFAULT, env.mockDomain(self.ioasId).rc);
    }
    env.destroyAccess(acc);
  }),
  ...ioasCase('fork_present', (env, self) => {
    const acc = env.createAccess(self.ioasId, 0);
    const child = umFork(env.sys, env.p);
    setCapIpcLock(child, true);
    expectOk(env.mapFixed(self.ioasId, env.buffer, BUFFER_SIZE, MOCK_APERTURE_START, child), 'child map');
    env.cmdMockDomain(self.ioasId);
    checkAccessRw(env, acc, MOCK_APERTURE_START, 0);
    umExit(env.sys, child);
    env.destroyAccess(acc);
  }),
  ...ioasCase('ioas_option_huge_pages', (env, self) => {
    const cmd = optionCmd(self.ioasId, IOMMU_OPTION_OP_GET, 3);
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'get');
    assert.equal(cmd.val64, 1n);
    cmd.op = IOMMU_OPTION_OP_SET;
    cmd.val64 = 0;
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'set 0');
    cmd.op = IOMMU_OPTION_OP_GET;
    cmd.val64 = 3;
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'get');
    assert.equal(cmd.val64, 0n);
    cmd.op = IOMMU_OPTION_OP_SET;
    cmd.val64 = 2;
    expectErrno(EINVAL, env.ioctl('IOMMU_OPTION', cmd));
    cmd.val64 = 1;
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'set 1');
  }),
  ...ioasCase('ioas_iova_alloc', (env, self, v) => {
    for (let length = 1; length !== PAGE_SIZE * 2; length++) {
      if (v.mockDomains !== 0 && length % MOCK_PAGE_SIZE !== 0) {
        expectErrno(EINVAL, env.map(self.ioasId, env.buffer, length).rc, `len ${length}`);
      } else {
        const r = env.map(self.ioasId, env.buffer, length);
        expectOk(r.rc, `map ${length}`);
        expectOk(env.unmap(self.ioasId, r.iova, length).rc, 'unmap');
      }
    }
  }),
  ...ioasCase('ioas_align_change', (env, self, v) => {
    const cmd = optionCmd(self.ioasId, IOMMU_OPTION_OP_SET, 0);
    if (v.mockDomains !== 0) return;
    expectOk(env.mapFixed(self.ioasId, env.buffer, PAGE_SIZE, MOCK_APERTURE_START), 'map');
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'set 0');
    expectErrno(
      EINVAL,
      env.mapFixed(self.ioasId, env.buffer + MOCK_PAGE_SIZE, PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE),
    );
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'set 0 again');
    cmd.val64 = 1;
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'set 1');
    expectOk(
      env.mapFixed(self.ioasId, env.buffer + MOCK_PAGE_SIZE, PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE),
      'map misaligned',
    );
    cmd.val64 = 0;
    expectErrno(EADDRINUSE, env.ioctl('IOMMU_OPTION', cmd));
    expectOk(env.unmap(self.ioasId, MOCK_APERTURE_START + PAGE_SIZE, PAGE_SIZE).rc, 'unmap');
    expectOk(env.unmap(self.ioasId, MOCK_APERTURE_START, PAGE_SIZE).rc, 'unmap');
  }),
  ...ioasCase('copy_sweep', (env, self, v) => {
    const dst = env.ioasAlloc();
    const copy: Args = {
      size: sizeOf('IOMMU_IOAS_COPY'),
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
      src_ioas_id: self.ioasId,
      dst_ioas_id: dst,
      dst_iova: MOCK_APERTURE_START,
      length: MOCK_PAGE_SIZE,
    };
    const lastIova =
      v.mockDomains !== 0 ? MOCK_APERTURE_START + BUFFER_SIZE - 1 : MOCK_APERTURE_START + BUFFER_SIZE - 2;
    expectOk(
      env.mapFixed(self.ioasId, env.buffer, lastIova - MOCK_APERTURE_START + 1, MOCK_APERTURE_START),
      'map',
    );
    for (let iova = MOCK_APERTURE_START - PAGE_SIZE; iova <= lastIova; iova += 511) {
      copy.src_iova = iova;
      if (iova < MOCK_APERTURE_START || iova + MOCK_PAGE_SIZE - 1 > lastIova) {
        expectErrno(ENOENT, env.ioctl('IOMMU_IOAS_COPY', copy), `copy ${iova}`);
      } else {
        expectOk(env.ioctl('IOMMU_IOAS_COPY', copy), `copy ${iova}`);
        expectOk(env.unmap(dst, MOCK_APERTURE_START, MOCK_PAGE_SIZE).rc, 'unmap dst');
      }
    }
    expectOk(env.destroy(dst), 'destroy dst');
  }),
];

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd_mock_domain)

interface MdVariant {
  mockDomains: number;
  hugepages: boolean;
  file: boolean;
}

interface MdSelf {
  ioasId: number;
  hwptId: number;
  hwptIds: number[];
  stdevIds: number[];
  idevIds: number[];
  mmapFlags: number;
  mmapBufSize: number;
}

const mdVariants: [string, MdVariant][] = [
  ['one_domain', { mockDomains: 1, hugepages: false, file: false }],
  ['two_domains', { mockDomains: 2, hugepages: false, file: false }],
  ['one_domain_hugepage', { mockDomains: 1, hugepages: true, file: false }],
  ['two_domains_hugepage', { mockDomains: 2, hugepages: true, file: false }],
  ['one_domain_file', { mockDomains: 1, hugepages: false, file: true }],
  ['one_domain_file_hugepage', { mockDomains: 1, hugepages: true, file: true }],
];

function mdSetup(env: Env, v: MdVariant): MdSelf {
  const self: MdSelf = {
    ioasId: env.ioasAlloc(),
    hwptId: 0,
    hwptIds: [0, 0],
    stdevIds: [0, 0],
    idevIds: [0, 0],
    mmapFlags: MAP_SHARED | MAP_ANONYMOUS,
    mmapBufSize: PAGE_SIZE * 8,
  };
  for (let i = 0; i < v.mockDomains; i++) {
    const d = env.cmdMockDomain(self.ioasId);
    self.stdevIds[i] = d.stdev;
    self.hwptIds[i] = d.hwpt;
    self.idevIds[i] = d.idev;
    env.devCheckCacheAll(self.idevIds[0]);
  }
  self.hwptId = self.hwptIds[0];
  if (v.hugepages) {
    self.mmapFlags |= MAP_HUGETLB | MAP_POPULATE;
    self.mmapBufSize = HUGEPAGE_SIZE * 2;
  }
  return self;
}

function checkMockIova(env: Env, self: MdSelf, ptr: number, iova: number, length: number): void {
  expectOk(env.checkMap(self.hwptId, iova, length, ptr), 'check_mock_iova');
  if (self.hwptIds[1] !== 0) expectOk(env.checkMap(self.hwptIds[1], iova, length, ptr), 'check_mock_iova[1]');
}

function mdCase(
  test: string,
  body: (env: Env, self: MdSelf, v: MdVariant) => void,
  nm?: (v: MdVariant) => string | undefined,
): ConformanceCase[] {
  return fixtureCase(
    'iommufd_mock_domain',
    test,
    mdVariants,
    mdSetup,
    body,
    (env) => {
      env.teardown();
    },
    nm,
  );
}

function allAligns(env: Env, self: MdSelf, v: MdVariant, copy: boolean): void {
  const step = v.hugepages ? self.mmapBufSize / 16 : MOCK_PAGE_SIZE;
  const bufSize = self.mmapBufSize;
  let buf: number;
  let mfd = -1;
  if (v.file) {
    const m = env.memfdMmap(bufSize);
    buf = m.buf;
    mfd = m.fd;
  } else buf = env.mmap(bufSize, self.mmapFlags);
  env.checkRefs(buf, bufSize, 0);
  for (let start = 0; start < bufSize; start += step) {
    let end = v.hugepages ? bufSize : start + MOCK_PAGE_SIZE;
    for (; end < bufSize; end += MOCK_PAGE_SIZE) {
      const length = end - start;
      const r = v.file
        ? env.mapFile(self.ioasId, mfd, start, length)
        : env.map(self.ioasId, buf + start, length);
      expectOk(r.rc, `map ${start}+${length}`);
      let mockStdev = 0;
      const oldId = self.hwptIds[1];
      if (copy) {
        const d = env.cmdMockDomain(self.ioasId);
        mockStdev = d.stdev;
        self.hwptIds[1] = d.hwpt;
      }
      checkMockIova(env, self, buf + start, r.iova, length);
      const lo = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
      env.checkRefs(buf + lo, Math.floor(end / PAGE_SIZE) * PAGE_SIZE - lo, 1);
      if (copy) {
        expectOk(env.destroy(mockStdev), 'destroy');
        self.hwptIds[1] = oldId;
      }
      expectOk(env.unmap(self.ioasId, r.iova, length).rc, 'unmap');
    }
  }
  env.checkRefs(buf, bufSize, 0);
  expectOk(umMunmap(env.sys, env.p, buf, bufSize), 'munmap');
  if (v.file) env.closeFile(mfd);
}

const mdCases: ConformanceCase[] = [
  ...mdCase('basic', (env, self, v) => {
    const bufSize = self.mmapBufSize;
    if (v.file) {
      const r = env.mapFile(self.ioasId, env.mfd, 0, PAGE_SIZE);
      expectOk(r.rc, 'map file');
      checkMockIova(env, self, env.mfdBuffer, r.iova, PAGE_SIZE);
      const m = env.memfdMmap(bufSize);
      expectErrno(EINVAL, env.mapFile(self.ioasId, m.fd, 0, bufSize + 1).rc);
      expectOk(umFtruncate(env.sys, m.fd, 0), 'ftruncate');
      expectErrno(EINVAL, env.mapFile(self.ioasId, m.fd, 0, bufSize).rc);
      env.closeFile(m.fd);
    } else {
      const r = env.map(self.ioasId, env.buffer, PAGE_SIZE);
      expectOk(r.rc, 'map');
      checkMockIova(env, self, env.buffer, r.iova, PAGE_SIZE);
      const buf = env.mmap(bufSize, self.mmapFlags);
      expectOk(umMunmap(env.sys, env.p, buf + bufSize / 2, bufSize / 2), 'munmap');
      expectErrno(EFAULT, env.map(self.ioasId, buf, bufSize).rc);
      expectOk(umMunmap(env.sys, env.p, buf, bufSize / 2), 'munmap');
      expectErrno(EFAULT, env.map(self.ioasId, buf, bufSize).rc);
    }
  }),
  ...mdCase('ro_unshare', (env, self) => {
    // The kernel test maps one page of /proc/self/exe MAP_PRIVATE; a memfd with written contents
    // is the regular file here. A read-only long-term pin of that page-cache page must unshare it
    // (an exclusive anonymous copy mapped read-only), so a later write keeps the pinned PFN.
    const fd = umMemfdCreate(env.sys, 'exe', 0);
    assert.ok(fd >= 0);
    const text = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < PAGE_SIZE; i++) text[i] = (i * 7 + 3) & 0xff;
    assert.equal(env.sys.pwrite(fd, text, 0), PAGE_SIZE);
    const buf = umMmap(env.sys, env.p, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    assert.ok(buf >= 0, `mmap failed: ${buf}`);
    env.closeFile(fd);
    const r = env.map(self.ioasId, buf, PAGE_SIZE, IOMMU_IOAS_MAP_READABLE);
    expectOk(r.rc, 'map readable');
    checkMockIova(env, self, buf, r.iova, PAGE_SIZE);
    env.write(buf, new Uint8Array(PAGE_SIZE).fill(1));
    checkMockIova(env, self, buf, r.iova, PAGE_SIZE);
    expectOk(umMunmap(env.sys, env.p, buf, PAGE_SIZE), 'munmap');
  }),
  ...mdCase('all_aligns', (env, self, v) => {
    allAligns(env, self, v, false);
  }),
  ...mdCase('all_aligns_copy', (env, self, v) => {
    allAligns(env, self, v, true);
  }),
  ...mdCase('user_copy', (env, self, v) => {
    const buf = v.file ? env.mfdBuffer : env.buffer;
    const copy: Args = {
      size: sizeOf('IOMMU_IOAS_COPY'),
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
      dst_ioas_id: self.ioasId,
      dst_iova: MOCK_APERTURE_START,
      length: BUFFER_SIZE,
    };
    const ioasId = env.ioasAlloc();
    let r = v.file ? env.mapFile(ioasId, env.mfd, 0, BUFFER_SIZE) : env.map(ioasId, buf, BUFFER_SIZE);
    expectOk(r.rc, 'map');
    copy.src_iova = r.iova;
    const acc = env.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    let p = env.accessPages(acc, r.iova, BUFFER_SIZE, buf);
    expectOk(p.rc, 'pin');
    copy.src_ioas_id = ioasId;
    expectOk(env.ioctl('IOMMU_IOAS_COPY', copy), 'copy');
    checkMockIova(env, self, buf, MOCK_APERTURE_START, BUFFER_SIZE);
    const newIoas = env.ioasAlloc();
    r = v.file ? env.mapFile(newIoas, env.mfd, 0, BUFFER_SIZE) : env.map(newIoas, buf, BUFFER_SIZE);
    expectOk(r.rc, 'map new');
    copy.src_iova = r.iova;
    expectOk(env.accessReplaceIoas(acc, newIoas), 'replace');
    expectOk(env.unmap(self.ioasId, MOCK_APERTURE_START, BUFFER_SIZE).rc, 'unmap');
    expectOk(env.destroy(ioasId), 'destroy old');
    p = env.accessPages(acc, r.iova, BUFFER_SIZE, buf);
    expectOk(p.rc, 'pin new');
    copy.src_ioas_id = newIoas;
    expectOk(env.ioctl('IOMMU_IOAS_COPY', copy), 'copy new');
    checkMockIova(env, self, buf, MOCK_APERTURE_START, BUFFER_SIZE);
    expectOk(env.destroyAccessPages(acc, p.id), 'unpin');
    env.destroyAccess(acc);
    expectOk(env.destroy(newIoas), 'destroy new');
  }),
  ...mdCase('replace', (env, self, v) => {
    const ioasId = env.ioasAlloc();
    expectOk(env.mockDomainReplace(self.stdevIds[0], ioasId), 'replace');
    if (v.mockDomains === 1) expectErrno(ENOENT, env.mockDomainReplace(self.stdevIds[0], self.hwptIds[0]));
    expectOk(env.mockDomainReplace(self.stdevIds[0], ioasId), 'replace again');
    if (v.mockDomains >= 2) {
      expectOk(env.mockDomainReplace(self.stdevIds[0], self.hwptIds[1]), 'to hwpt1');
      expectOk(env.mockDomainReplace(self.stdevIds[0], self.hwptIds[1]), 'to hwpt1 again');
      expectOk(env.mockDomainReplace(self.stdevIds[0], self.hwptIds[0]), 'to hwpt0');
    }
    expectOk(env.mockDomainReplace(self.stdevIds[0], self.ioasId), 'back');
    expectOk(env.destroy(ioasId), 'destroy');
  }),
  ...mdCase('alloc_hwpt', (env, self, v) => {
    for (let i = 0; i < v.mockDomains; i++) {
      expectErrno(
        EOPNOTSUPP,
        env.hwptAlloc(self.idevIds[i], self.ioasId, ~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0).rc,
      );
      const h0 = env.hwptAlloc(self.idevIds[i], self.ioasId, 0);
      expectOk(h0.rc, 'alloc 0');
      const h1 = env.hwptAlloc(self.idevIds[i], self.ioasId, IOMMU_HWPT_ALLOC_NEST_PARENT);
      expectOk(h1.rc, 'alloc parent');
      expectOk(env.mockDomainReplace(self.stdevIds[i], h0.id), 'replace h0');
      expectErrno(EBUSY, env.destroy(h0.id));
      expectOk(env.mockDomainReplace(self.stdevIds[i], h1.id), 'replace h1');
      expectErrno(EBUSY, env.destroy(h1.id));
      expectOk(env.mockDomainReplace(self.stdevIds[i], self.ioasId), 'replace ioas');
      expectOk(env.destroy(h1.id), 'destroy h1');
      const d = env.cmdMockDomain(h0.id);
      expectOk(env.destroy(d.stdev), 'destroy stdev');
      expectOk(env.destroy(h0.id), 'destroy h0');
    }
  }),
];

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd_dirty_tracking)

interface DtVariant {
  bufferSize: number;
  hugepages: boolean;
}

interface DtSelf {
  ioasId: number;
  hwptId: number;
  stdevId: number;
  idevId: number;
  pageSize: number;
  bitmapSize: number;
  bitmap: number;
  buffer: number;
}

const KiB = 1024;
const MiB = 1024 * 1024;
const dtVariants: [string, DtVariant][] = [
  ['domain_dirty8k', { bufferSize: 8 * KiB, hugepages: false }],
  ['domain_dirty16k', { bufferSize: 16 * KiB, hugepages: false }],
  ['domain_dirty64k', { bufferSize: 64 * KiB, hugepages: false }],
  ['domain_dirty128k', { bufferSize: 128 * KiB, hugepages: false }],
  ['domain_dirty320k', { bufferSize: 320 * KiB, hugepages: false }],
  ['domain_dirty64M', { bufferSize: 64 * MiB, hugepages: false }],
  ['domain_dirty64M_huge', { bufferSize: 64 * MiB, hugepages: true }],
  ['domain_dirty128M', { bufferSize: 128 * MiB, hugepages: false }],
  ['domain_dirty128M_huge', { bufferSize: 128 * MiB, hugepages: true }],
];

function dtSetup(env: Env, v: DtVariant): DtSelf {
  let flags = MAP_SHARED | MAP_ANONYMOUS;
  if (v.hugepages) flags |= MAP_HUGETLB | MAP_POPULATE;
  const buffer = env.mmap(v.bufferSize, flags);
  const pageSize = MOCK_PAGE_SIZE;
  const bitmapSize = v.bufferSize / pageSize;
  const bitmap = env.mmap(Math.ceil(bitmapSize / 8) + PAGE_SIZE, MAP_SHARED | MAP_ANONYMOUS);
  const ioasId = env.ioasAlloc();
  const d = env.cmdMockDomain(ioasId, v.hugepages ? MOCK_FLAGS_DEVICE_HUGE_IOVA : undefined);
  return { ioasId, hwptId: d.hwpt, stdevId: d.stdev, idevId: d.idev, pageSize, bitmapSize, bitmap, buffer };
}

function dtCase(test: string, body: (env: Env, self: DtSelf, v: DtVariant) => void): ConformanceCase[] {
  return fixtureCase('iommufd_dirty_tracking', test, dtVariants, dtSetup, body, (env) => {
    env.teardown();
  });
}

function setDirtyTracking(env: Env, hwptId: number, enabled: boolean): number {
  return env.ioctl('IOMMU_HWPT_SET_DIRTY_TRACKING', {
    size: sizeOf('IOMMU_HWPT_SET_DIRTY_TRACKING'),
    flags: enabled ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
    hwpt_id: hwptId,
  });
}

function getDirtyBitmap(
  env: Env,
  hwptId: number,
  length: number,
  iova: number,
  pageSize: number,
  bitmap: number,
  flags: number,
): number {
  return env.ioctl('IOMMU_HWPT_GET_DIRTY_BITMAP', {
    size: sizeOf('IOMMU_HWPT_GET_DIRTY_BITMAP'),
    hwpt_id: hwptId,
    flags,
    iova,
    length,
    page_size: pageSize,
    data: bitmap,
  });
}

/** _test_mock_dirty_bitmaps(). */
function mockDirtyBitmaps(
  env: Env,
  hwptId: number,
  length: number,
  iova: number,
  pageSize: number,
  pteSize: number,
  bitmap: number,
  nbits: number,
  flags: number,
): void {
  const npte = pteSize / pageSize;
  const pteset = 2 * npte;
  const nr = Math.floor(nbits / pteset) || 1;
  const bytes = Math.ceil(nbits / 8);
  const bits = new Uint8Array(bytes);
  for (let i = 0; i < nbits; i += pteset) bits[i >> 3] |= 1 << (i & 7);
  env.write(bitmap, bits);
  const r = env.test(IOMMU_TEST_OP_DIRTY, hwptId, 'dirty', {
    iova,
    length,
    page_size: pageSize,
    uptr: bitmap,
  });
  expectOk(r.rc, 'set dirty');
  assert.equal(Number(r.out.out_nr_dirty), nr);
  env.write(bitmap, new Uint8Array(bytes));
  expectOk(getDirtyBitmap(env, hwptId, length, iova, pageSize, bitmap, flags), 'get dirty');
  let got = env.read(bitmap, bytes);
  const test = (b: number): boolean => (got[b >> 3] & (1 << (b & 7))) !== 0;
  for (let i = 0; i < nbits; i += pteset) {
    for (let j = 0; j < pteset && i + j < nbits; j++) assert.equal(test(i + j), j < npte, `bit ${i + j}`);
  }
  env.write(bitmap, new Uint8Array(bytes));
  expectOk(getDirtyBitmap(env, hwptId, length, iova, pageSize, bitmap, flags), 'get dirty 2');
  got = env.read(bitmap, bytes);
  for (let i = 0; i < nbits; i += pteset) {
    for (let j = 0; j < pteset && i + j < nbits; j++) {
      assert.equal(
        test(i + j),
        j < npte && (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0,
        `bit ${i + j} second read`,
      );
    }
  }
}

function dirtyBitmapTest(env: Env, self: DtSelf, v: DtVariant, flags: number): void {
  const pteSize = v.hugepages ? MOCK_HUGE_PAGE_SIZE : MOCK_PAGE_SIZE;
  const ioasId = env.ioasAlloc();
  expectOk(env.mapFixed(ioasId, self.buffer, v.bufferSize, MOCK_APERTURE_START), 'map');
  const h = env.hwptAlloc(self.idevId, ioasId, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
  expectOk(h.rc, 'hwpt alloc');
  expectOk(setDirtyTracking(env, h.id, true), 'enable');
  for (const off of [0, MOCK_PAGE_SIZE, 0xff1]) {
    mockDirtyBitmaps(
      env,
      h.id,
      v.bufferSize,
      MOCK_APERTURE_START,
      self.pageSize,
      pteSize,
      self.bitmap + off,
      self.bitmapSize,
      flags,
    );
  }
  expectOk(env.destroy(h.id), 'destroy hwpt');
}

const dtCases: ConformanceCase[] = [
  ...dtCase('enforce_dirty', (env, self) => {
    const h = env.hwptAlloc(self.idevId, self.ioasId, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expectOk(h.rc, 'alloc');
    const d = env.cmdMockDomain(h.id);
    expectErrno(EINVAL, env.mockDomain(h.id, MOCK_FLAGS_DEVICE_NO_DIRTY).rc);
    expectOk(env.destroy(d.stdev), 'destroy stdev');
    expectOk(env.destroy(h.id), 'destroy hwpt');
    const ioasId = env.ioasAlloc();
    const d2 = env.cmdMockDomain(ioasId, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expectErrno(EOPNOTSUPP, env.hwptAlloc(d2.idev, ioasId, IOMMU_HWPT_ALLOC_DIRTY_TRACKING).rc);
    expectOk(env.destroy(d2.stdev), 'destroy stdev');
  }),
  ...dtCase('set_dirty_tracking', (env, self) => {
    const h = env.hwptAlloc(self.idevId, self.ioasId, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expectOk(h.rc, 'alloc');
    const d = env.cmdMockDomain(h.id);
    expectOk(setDirtyTracking(env, h.id, true), 'enable');
    expectOk(setDirtyTracking(env, h.id, false), 'disable');
    expectOk(env.destroy(d.stdev), 'destroy stdev');
    expectOk(env.destroy(h.id), 'destroy hwpt');
  }),
  ...dtCase('device_dirty_capability', (env, self) => {
    const h = env.hwptAlloc(self.idevId, self.ioasId, 0);
    expectOk(h.rc, 'alloc');
    const d = env.cmdMockDomain(h.id);
    const cmd: Args = { size: sizeOf('IOMMU_GET_HW_INFO'), dev_id: self.idevId, data_len: 0 };
    expectOk(env.ioctl('IOMMU_GET_HW_INFO', cmd), 'hw info');
    assert.equal(Number(cmd.out_capabilities) & IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_DIRTY_TRACKING);
    expectOk(env.destroy(d.stdev), 'destroy stdev');
    expectOk(env.destroy(h.id), 'destroy hwpt');
  }),
  ...dtCase('get_dirty_bitmap', (env, self, v) => {
    dirtyBitmapTest(env, self, v, 0);
  }),
  ...dtCase('get_dirty_bitmap_no_clear', (env, self, v) => {
    dirtyBitmapTest(env, self, v, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
  }),
];

// ---------------------------------------------------------------------------------------------
// FIXTURE(vfio_compat_mock_domain)

function vfioSetup(env: Env, version: number): { ioasId: number } {
  const ioasId = env.ioasAlloc();
  env.cmdMockDomain(ioasId);
  expectOk(
    env.ioctl('IOMMU_VFIO_IOAS', {
      size: sizeOf('IOMMU_VFIO_IOAS'),
      op: IOMMU_VFIO_IOAS_SET,
      ioas_id: ioasId,
    }),
    'vfio ioas',
  );
  expectOk(env.ioctl('VFIO_SET_IOMMU', version), 'set iommu');
  return { ioasId };
}

function vfioCase(
  test: string,
  body: (env: Env, self: { ioasId: number }, version: number) => void,
  nm?: string,
): ConformanceCase[] {
  return fixtureCase(
    'vfio_compat_mock_domain',
    test,
    [
      ['Ver1v2', VFIO_TYPE1v2_IOMMU],
      ['Ver1v0', VFIO_TYPE1_IOMMU],
    ],
    vfioSetup,
    body,
    (env) => {
      env.teardown();
    },
    nm === undefined ? undefined : () => nm,
  );
}

function shuffle(a: number[], rand: () => number): void {
  for (let i = 0; i < a.length; i++) {
    const tmp = a[i];
    const other = rand() % (a.length - i);
    a[i] = a[other];
    a[other] = tmp;
  }
}

const vfioCases: ConformanceCase[] = [
  ...vfioCase('simple_close', () => {}),
  ...vfioCase('option_huge_pages', (env, self, version) => {
    const cmd = optionCmd(self.ioasId, IOMMU_OPTION_OP_GET, 3);
    expectOk(env.ioctl('IOMMU_OPTION', cmd), 'get');
    assert.equal(cmd.val64, version === VFIO_TYPE1_IOMMU ? 0n : 1n);
  }),
  ...vfioCase('get_info', (env) => {
    // The struct lives at `buffer` (the caps follow it there), as in the C test.
    const infoSize = 24;
    const setArgsz = (argsz: number): void => {
      const head = new Uint8Array(infoSize);
      new DataView(head.buffer).setUint32(0, argsz, true);
      env.write(env.buffer, head);
    };
    const info = (): { argsz: number; flags: number; pgsizes: bigint; capOffset: number } => {
      const v = new DataView(env.read(env.buffer, infoSize).buffer);
      return {
        argsz: v.getUint32(0, true),
        flags: v.getUint32(4, true),
        pgsizes: v.getBigUint64(8, true),
        capOffset: v.getUint32(16, true),
      };
    };
    const flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
    // ioctl_check_buf(): the kernel must not store past argsz.
    const checkBuf = (): void => {
      const cmdLen = info().argsz;
      env.write(env.buffer + cmdLen, new Uint8Array(BUFFER_SIZE - cmdLen).fill(0xaa));
      expectOk(env.ioctl('VFIO_IOMMU_GET_INFO', env.buffer), `get_info argsz ${cmdLen}`);
      const after = env.read(env.buffer + cmdLen, BUFFER_SIZE - cmdLen);
      assert.ok(
        after.every((b) => b === 0xaa),
        `get_info argsz ${cmdLen} wrote past argsz`,
      );
    };
    /** check_vfio_info_cap_chain(). */
    const checkCapChain = (): void => {
      const i = info();
      const hdr = 8;
      assert.ok(i.argsz >= i.capOffset + hdr);
      const bytes = env.read(env.buffer, i.argsz);
      const v = new DataView(bytes.buffer);
      let cap = i.capOffset;
      for (;;) {
        const id = v.getUint16(cap, true);
        const version = v.getUint16(cap + 2, true);
        const next = v.getUint32(cap + 4, true);
        const capSize = next !== 0 ? next - cap : i.argsz - cap;
        if (id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
          assert.equal(version, 1);
          assert.equal(v.getUint32(cap + 8, true), 1);
          assert.equal(v.getBigUint64(cap + 16, true), BigInt(MOCK_APERTURE_START));
          assert.equal(v.getBigUint64(cap + 24, true), BigInt(MOCK_APERTURE_LAST));
        } else if (id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
          assert.equal(version, 1);
          assert.equal(capSize, 12);
        } else assert.fail(`unknown capability id ${id}`);
        if (next === 0) break;
        assert.ok(i.argsz >= next + hdr);
        assert.ok(next >= cap);
        cap = next;
      }
    };
    // Pre-cap ABI: argsz = offsetof(cap_offset).
    setArgsz(16);
    checkBuf();
    assert.notEqual(info().pgsizes, 0n);
    assert.equal(info().flags, flags);
    // Read the cap chain size.
    setArgsz(infoSize);
    checkBuf();
    assert.notEqual(info().pgsizes, 0n);
    assert.equal(info().flags, flags);
    assert.equal(info().capOffset, 0);
    assert.ok(infoSize < info().argsz);
    // Read the caps at every argsz below the full size: never a corrupted chain.
    const caplen = info().argsz;
    for (let i = infoSize; i < caplen; i++) {
      setArgsz(i);
      checkBuf();
      assert.equal(info().flags, flags);
      if (info().capOffset === 0) continue;
      checkCapChain();
    }
  }),
  ...vfioCase('map', (env) => {
    const map: Args = {
      argsz: 32,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      vaddr: env.buffer,
      size: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
    };
    const unmap: Args = { argsz: 24, size: BUFFER_SIZE, iova: MOCK_APERTURE_START, flags: 0 };
    expectOk(env.ioctl('VFIO_IOMMU_MAP_DMA', map), 'map');
    expectOk(env.ioctl('VFIO_IOMMU_UNMAP_DMA', unmap), 'unmap');
    assert.equal(Number(unmap.size), BUFFER_SIZE);
    // Unmapping an empty range succeeds like type1 (6.18+).
    unmap.size = BUFFER_SIZE;
    expectOk(env.ioctl('VFIO_IOMMU_UNMAP_DMA', unmap), 'unmap empty');
    expectOk(env.ioctl('VFIO_IOMMU_MAP_DMA', map), 'map');
    unmap.flags = VFIO_DMA_UNMAP_FLAG_ALL;
    unmap.size = BUFFER_SIZE;
    expectErrno(EINVAL, env.ioctl('VFIO_IOMMU_UNMAP_DMA', unmap));
    unmap.iova = 0;
    unmap.size = 0;
    expectOk(env.ioctl('VFIO_IOMMU_UNMAP_DMA', unmap), 'unmap all');
    assert.equal(Number(unmap.size), BUFFER_SIZE);
    const pages: number[] = [];
    for (let i = 0; i < BUFFER_SIZE / PAGE_SIZE; i++) {
      pages[i] = MOCK_APERTURE_START + i * PAGE_SIZE;
      map.iova = pages[i];
      map.vaddr = env.buffer + i * PAGE_SIZE;
      map.size = PAGE_SIZE;
      expectOk(env.ioctl('VFIO_IOMMU_MAP_DMA', map), 'map page');
    }
    shuffle(pages, lcg(1));
    unmap.flags = 0;
    for (const iova of pages) {
      unmap.iova = iova;
      unmap.size = PAGE_SIZE;
      expectOk(env.ioctl('VFIO_IOMMU_UNMAP_DMA', unmap), 'unmap page');
    }
  }),
  ...vfioCase('huge_map', (env, _self, version) => {
    const bufSize = HUGEPAGE_SIZE * 2;
    const buf = env.mmap(bufSize, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE);
    const map: Args = {
      argsz: 32,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      size: bufSize,
      iova: MOCK_APERTURE_START,
      vaddr: buf,
    };
    expectOk(env.ioctl('VFIO_IOMMU_MAP_DMA', map), 'map');
    const chunk = bufSize / 16;
    const pages: number[] = [];
    for (let i = 0; i < 16; i++) pages[i] = MOCK_APERTURE_START + i * chunk;
    shuffle(pages, lcg(2));
    for (const iova of pages) {
      const unmap: Args = { argsz: 24, flags: 0, iova, size: chunk };
      if (version === VFIO_TYPE1_IOMMU) expectOk(env.ioctl('VFIO_IOMMU_UNMAP_DMA', unmap), 'cut unmap');
      else expectErrno(ENOENT, env.ioctl('VFIO_IOMMU_UNMAP_DMA', unmap));
    }
  }),
];

/** Every case of tools/testing/selftests/iommu/iommufd.c. */
export function iommufdCases(): ConformanceCase[] {
  return [
    ...plainCases,
    ...changeProcessCases,
    ...ioasCases,
    ...mdCases,
    ...dtCases,
    ...vfioCases,
    ...viommuCases,
    ...devicePasidCases,
  ];
}

export { fileClose };
