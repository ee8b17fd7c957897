/**
 * The userspace side of tools/testing/selftests/iommu/iommufd_utils.h for the ported cases: a
 * System with one root process, the global `buffer` (16 pages, shared anonymous, huge-page
 * aligned) and `mfd_buffer` (a memfd of the same size), and helpers named after the kernel's
 * test_* macros. Every helper returns what the ioctl returned; the cases assert like the
 * kernel's EXPECT_ERRNO / ASSERT_EQ.
 */
import { UAPI_STRUCT_SIZES } from './iommufd_uapi_sizes.ts';
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { Errno, errnoName } from '../kernel/errno.ts';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../kernel/mm/mman.ts';
import { System } from '../kernel/system.ts';
import type { Process } from '../kernel/system.ts';
import {
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  MOCK_DEV_CACHE_NUM,
} from '../kernel/drivers/iommufd_selftest.ts';
import {
  fileClose,
  iommufdFaultRead,
  iommufdFaultWrite,
  IOMMUFD_PAGE_RESP_SUCCESS,
  iommufdIoctl,
  iommufdOpen,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  setCapIpcLock,
  STRUCTS,
} from '../kernel/iommufd/index.ts';
import {
  umFtruncate,
  umMemfdCreate,
  umMmap,
  umRead,
  umWrite,
  umCloseFile,
} from '../kernel/iommufd/mm_glue.ts';
import { checkIommufd } from '../oracles/iommufd.ts';

export const HUGEPAGE_SIZE = 2 * 1024 * 1024;
export const BUFFER_SIZE = PAGE_SIZE * 16;
export const MOCK_PAGE_SIZE = PAGE_SIZE / 2;
export const RW = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
export const TEST_CMD_SIZE = STRUCTS.IOMMU_TEST_CMD.size;

export type Args = Record<string, unknown>;

/** IOMMU_PGFAULT_PERM_READ / _WRITE and sizeof(struct iommu_hwpt_pgfault). */
const IOMMU_PGFAULT_PERM_READ = 1 << 0;
const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
const PGFAULT_SIZE = 40;

/** sizeof(struct ...) of a command: the uAPI header's value where the table has it. */
export function sizeOf(name: string): number {
  return name in UAPI_STRUCT_SIZES ? UAPI_STRUCT_SIZES[name].size : STRUCTS[name].size;
}

/** One test's world: the System, the test process, /dev/iommu fd, and the global buffers. */
export class Env {
  readonly sys: System;
  readonly p: Process;
  fd: number;
  readonly buffer: number;
  readonly mfd: number;
  readonly mfdBuffer: number;
  readonly bufferSize: number;

  constructor(opts: { ram?: number; bufferSize?: number } = {}) {
    this.sys = new System({ ram: opts.ram ?? 1024 * 1024 * 1024, rlimitMemlock: 64 * 1024 * 1024 });
    this.bufferSize = opts.bufferSize ?? BUFFER_SIZE;
    this.p = this.sys.createProcess('selftest', 0);
    // The kernel selftests run as root.
    setCapIpcLock(this.p, true);
    this.buffer = this.mmap(this.bufferSize, MAP_SHARED | MAP_ANONYMOUS);
    this.mfd = umMemfdCreate(this.sys, 'buffer', 0);
    assert.ok(this.mfd >= 0);
    assert.equal(umFtruncate(this.sys, this.mfd, this.bufferSize), 0);
    this.mfdBuffer = umMmap(
      this.sys,
      this.p,
      0,
      this.bufferSize,
      PROT_READ | PROT_WRITE,
      MAP_SHARED,
      this.mfd,
      0,
    );
    this.fd = iommufdOpen(this.sys, this.p);
  }

  mmap(length: number, flags: number, prot = PROT_READ | PROT_WRITE, proc: Process = this.p): number {
    const a = umMmap(this.sys, proc, 0, length, prot, flags & ~MAP_FIXED);
    assert.ok(a >= 0, `mmap failed: ${a}`);
    return a;
  }

  ioctl(name: string | number, arg: unknown, proc?: Process, fd = this.fd): number {
    return iommufdIoctl(this.sys, fd, name, arg, proc);
  }

  test(op: number, id: number, member: string, fields: Args, proc?: Process): { rc: number; out: Args } {
    const cmd: Args = { size: TEST_CMD_SIZE, op, id, [member]: { ...fields } };
    const rc = this.ioctl('IOMMU_TEST_CMD', cmd, proc);
    return { rc, out: cmd[member] as Args };
  }

  ioasAlloc(): number {
    const cmd: Args = { size: sizeOf('IOMMU_IOAS_ALLOC') };
    assert.equal(this.ioctl('IOMMU_IOAS_ALLOC', cmd), 0);
    assert.notEqual(cmd.out_ioas_id, 0);
    return cmd.out_ioas_id as number;
  }

  map(
    ioasId: number,
    buf: number,
    length: number,
    flags = RW,
    iova = 0,
    proc?: Process,
  ): { rc: number; iova: number } {
    const cmd: Args = { size: sizeOf('IOMMU_IOAS_MAP'), flags, ioas_id: ioasId, user_va: buf, length };
    if ((flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0) cmd.iova = iova;
    const rc = this.ioctl('IOMMU_IOAS_MAP', cmd, proc);
    return { rc, iova: Number(cmd.iova ?? 0) };
  }

  mapFixed(ioasId: number, buf: number, length: number, iova: number, proc?: Process): number {
    return this.map(ioasId, buf, length, IOMMU_IOAS_MAP_FIXED_IOVA | RW, iova, proc).rc;
  }

  mapFile(
    ioasId: number,
    mfd: number,
    start: number,
    length: number,
    flags = RW,
    iova = 0,
  ): { rc: number; iova: number } {
    const cmd: Args = { size: sizeOf('IOMMU_IOAS_MAP_FILE'), flags, ioas_id: ioasId, fd: mfd, start, length };
    if ((flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0) cmd.iova = iova;
    const rc = this.ioctl('IOMMU_IOAS_MAP_FILE', cmd);
    return { rc, iova: Number(cmd.iova ?? 0) };
  }

  unmap(ioasId: number, iova: number | bigint, length: number | bigint): { rc: number; length: number } {
    const cmd: Args = { size: sizeOf('IOMMU_IOAS_UNMAP'), ioas_id: ioasId, iova, length };
    const rc = this.ioctl('IOMMU_IOAS_UNMAP', cmd);
    return { rc, length: Number(cmd.length) };
  }

  destroy(id: number): number {
    return this.ioctl('IOMMU_DESTROY', { size: sizeOf('IOMMU_DESTROY'), id });
  }

  mockDomain(ptId: number, devFlags?: number): { rc: number; stdev: number; hwpt: number; idev: number } {
    const r =
      devFlags === undefined
        ? this.test(IOMMU_TEST_OP_MOCK_DOMAIN, ptId, 'mock_domain', {})
        : this.test(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, ptId, 'mock_domain_flags', { dev_flags: devFlags });
    return {
      rc: r.rc,
      stdev: r.out.out_stdev_id as number,
      hwpt: r.out.out_hwpt_id as number,
      idev: r.out.out_idev_id as number,
    };
  }

  /** test_cmd_mock_domain(): must succeed. */
  cmdMockDomain(ptId: number, devFlags?: number): { stdev: number; hwpt: number; idev: number } {
    const r = this.mockDomain(ptId, devFlags);
    expectOk(r.rc, 'mock domain');
    return r;
  }

  mockDomainReplace(stdev: number, ptId: number): number {
    return this.test(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev, 'mock_domain_replace', { pt_id: ptId }).rc;
  }

  hwptAlloc(devId: number, ptId: number, flags: number): { rc: number; id: number } {
    const cmd: Args = { size: sizeOf('IOMMU_HWPT_ALLOC'), flags, dev_id: devId, pt_id: ptId };
    const rc = this.ioctl('IOMMU_HWPT_ALLOC', cmd);
    return { rc, id: (cmd.out_hwpt_id as number | undefined) ?? 0 };
  }

  /** _test_cmd_hwpt_alloc() with every argument: fault id, driver data type, data and length. */
  hwptAllocData(
    devId: number,
    ptId: number,
    flags: number,
    dataType: number,
    data: Uint8Array | 0,
    dataLen: number,
    faultId = 0,
  ): { rc: number; id: number } {
    const cmd: Args = {
      size: sizeOf('IOMMU_HWPT_ALLOC'),
      flags,
      dev_id: devId,
      pt_id: ptId,
      data_type: dataType,
      data_len: dataLen,
      data_uptr: data,
      fault_id: faultId,
    };
    const rc = this.ioctl('IOMMU_HWPT_ALLOC', cmd);
    return { rc, id: (cmd.out_hwpt_id as number | undefined) ?? 0 };
  }

  /** _test_cmd_hwpt_invalidate(): `reqs` is the request array (NULL as 0); returns entry_num too. */
  hwptInvalidate(
    hwptId: number,
    reqs: Uint8Array | 0,
    dataType: number,
    entryLen: number,
    entryNum: number,
  ): { rc: number; num: number } {
    const cmd: Args = {
      size: sizeOf('IOMMU_HWPT_INVALIDATE'),
      hwpt_id: hwptId,
      data_type: dataType,
      data_uptr: reqs,
      entry_len: entryLen,
      entry_num: entryNum,
    };
    const rc = this.ioctl('IOMMU_HWPT_INVALIDATE', cmd);
    return { rc, num: cmd.entry_num as number };
  }

  /** test_cmd_hwpt_check_iotlb(). */
  checkIotlb(hwptId: number, iotlbId: number, expected: number): number {
    return this.test(IOMMU_TEST_OP_MD_CHECK_IOTLB, hwptId, 'check_iotlb', { id: iotlbId, iotlb: expected })
      .rc;
  }

  /** test_ioctl_fault_alloc(). */
  faultAlloc(): { faultId: number; faultFd: number } {
    const cmd: Args = { size: sizeOf('IOMMU_FAULT_QUEUE_ALLOC') };
    expectOk(this.ioctl('IOMMU_FAULT_QUEUE_ALLOC', cmd), 'fault alloc');
    assert.notEqual(cmd.out_fault_id, 0);
    assert.notEqual(cmd.out_fault_fd, 0);
    return { faultId: cmd.out_fault_id as number, faultFd: cmd.out_fault_fd as number };
  }

  /**
   * _test_cmd_trigger_iopf(): the mock device raises a page request (pasid 1 unless given, group
   * 2, read and write), then the fault is read from the queue and answered with its cookie
   * (_test_cmd_trigger_iopf_pasid() with a `pasid`).
   */
  triggerIopf(devId: number, faultFd: number, pasid = 1): number {
    const rc = this.test(IOMMU_TEST_OP_TRIGGER_IOPF, 0, 'trigger_iopf', {
      dev_id: devId,
      pasid,
      grpid: 2,
      perm: IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE,
      addr: 0xdeadbeaf,
    }).rc;
    if (rc !== 0) return rc;
    const fault = new Uint8Array(PGFAULT_SIZE);
    if (iommufdFaultRead(this.sys, faultFd, fault) <= 0) return -Errno.EIO;
    const response = new Uint8Array(8);
    const v = new DataView(response.buffer);
    v.setUint32(0, new DataView(fault.buffer).getUint32(36, true), true);
    v.setUint32(4, IOMMUFD_PAGE_RESP_SUCCESS, true);
    if (iommufdFaultWrite(this.sys, faultFd, response) <= 0) return -Errno.EIO;
    return 0;
  }

  devCheckCacheAll(idev: number): void {
    for (let c = 0; c < MOCK_DEV_CACHE_NUM; c++) {
      expectOk(
        this.test(IOMMU_TEST_OP_DEV_CHECK_CACHE, idev, 'check_dev_cache', {
          id: c,
          cache: IOMMU_TEST_DEV_CACHE_DEFAULT,
        }).rc,
        'dev cache',
      );
    }
  }

  setTempMemoryLimit(limit: number): number {
    return this.test(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0, 'memory_limit', { limit }).rc;
  }

  addReserved(ioasId: number, start: number | bigint, length: number | bigint): number {
    return this.test(IOMMU_TEST_OP_ADD_RESERVED, ioasId, 'add_reserved', { start, length }).rc;
  }

  checkMap(hwptId: number, iova: number, length: number, uptr: number): number {
    return this.test(IOMMU_TEST_OP_MD_CHECK_MAP, hwptId, 'check_map', { iova, length, uptr }).rc;
  }

  checkRefs(uptr: number, length: number, refs: number): void {
    expectOk(
      this.test(IOMMU_TEST_OP_MD_CHECK_REFS, 0, 'check_refs', { uptr, length, refs }).rc,
      `check_refs(${refs})`,
    );
  }

  createAccess(ioasId: number, flags: number): number {
    const r = this.test(IOMMU_TEST_OP_CREATE_ACCESS, ioasId, 'create_access', { flags });
    expectOk(r.rc, 'create access');
    return r.out.out_access_fd as number;
  }

  destroyAccess(accessFd: number): void {
    expectOk(fileClose(this.sys, accessFd), 'close access');
  }

  accessPages(
    accessFd: number,
    iova: number,
    length: number,
    uptr = 0,
    flags = 0,
  ): { rc: number; id: number } {
    const r = this.test(IOMMU_TEST_OP_ACCESS_PAGES, accessFd, 'access_pages', { iova, length, uptr, flags });
    return { rc: r.rc, id: (r.out.out_access_pages_id as number | undefined) ?? -1 };
  }

  destroyAccessPages(accessFd: number, id: number): number {
    return this.test(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, accessFd, 'destroy_access_pages', {
      access_pages_id: id,
    }).rc;
  }

  accessReplaceIoas(accessFd: number, ioasId: number): number {
    return this.test(IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, accessFd, 'access_replace_ioas', { ioas_id: ioasId })
      .rc;
  }

  write(addr: number, data: Uint8Array, proc: Process = this.p): void {
    assert.equal(umWrite(this.sys, proc, addr, data), data.length);
  }

  read(addr: number, len: number, proc: Process = this.p): Uint8Array {
    return umRead(this.sys, proc, addr, len);
  }

  memfdMmap(length: number, flags = MAP_SHARED, mfdFlags = 0): { fd: number; buf: number } {
    const fd = umMemfdCreate(this.sys, 'buffer', mfdFlags);
    assert.equal(umFtruncate(this.sys, fd, length), 0);
    const buf = umMmap(this.sys, this.p, 0, length, PROT_READ | PROT_WRITE, flags, fd, 0);
    assert.ok(buf >= 0);
    return { fd, buf };
  }

  closeFile(fd: number): void {
    umCloseFile(this.sys, fd);
  }

  /**
   * teardown_iommufd(): close the fd, reopen, and check that nothing in `buffer` is still
   * pinned; then oracle 4 and the model's own warnings.
   */
  teardown(): void {
    if (this.fd >= 0) {
      expectOk(fileClose(this.sys, this.fd), 'close');
      this.fd = iommufdOpen(this.sys, this.p);
      this.checkRefs(this.buffer, this.bufferSize, 0);
      expectOk(fileClose(this.sys, this.fd), 'close');
      this.fd = -1;
    }
    const v = [...checkIommufd(this.sys), ...this.sys.sched.violations];
    assert.deepEqual(
      v.map((x) => x.message),
      [],
      'oracle / WARN violations',
    );
  }
}

export function expectOk(rc: number, what: string): void {
  assert.equal(rc, 0, `${what}: expected success, got ${rc < 0 ? `-${errnoName(-rc)}` : rc}`);
}

/** EXPECT_ERRNO(e, cmd). */
export function expectErrno(errno: number, rc: number, what = ''): void {
  assert.equal(
    rc,
    -errno,
    `${what}: expected -${errnoName(errno)}, got ${rc < 0 ? `-${errnoName(-rc)}` : rc}`,
  );
}

/** Deterministic rand() for tests that fill buffers with random data. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 8;
  };
}
