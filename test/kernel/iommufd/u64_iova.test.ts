/**
 * IOVAs and uAPI lengths anywhere in the 64-bit space: exact through the ioctls, the area tree,
 * accesses and IOMMU_IOAS_IOVA_RANGES, with the kernel's check_add_overflow() limits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Env, type Args } from '../../../src/conformance/iommufd_harness.ts';
import {
  IOMMU_TEST_OP_ACCESS_RW,
  MOCK_ACCESS_RW_WRITE,
} from '../../../src/kernel/drivers/iommufd_selftest.ts';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from '../../../src/kernel/iommufd/uapi.ts';
import { ceilDouble, endOf, floorDouble, lastOf, lastToU64 } from '../../../src/lib/u64.ts';
import { assertOracles } from '../../../src/oracles/index.ts';

const PAGE = 4096;
const U64_MAX = (1n << 64n) - 1n;
const FIXED_RW = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

function mapAt(
  env: Env,
  ioas: number,
  iova: bigint,
  length: bigint,
  uva = env.buffer,
): { rc: number; iova: unknown } {
  const cmd: Args = { size: 40, flags: FIXED_RW, ioas_id: ioas, user_va: uva, length, iova };
  const rc = env.ioctl('IOMMU_IOAS_MAP', cmd);
  return { rc, iova: cmd.iova };
}

function unmap(env: Env, ioas: number, iova: bigint, length: bigint): { rc: number; length: unknown } {
  const cmd: Args = { size: 24, ioas_id: ioas, iova, length };
  const rc = env.ioctl('IOMMU_IOAS_UNMAP', cmd);
  return { rc, length: cmd.length };
}

function ranges(env: Env, ioas: number): { start: bigint; last: bigint }[] {
  const out: { start: bigint; last: bigint }[] = [];
  const cmd: Args = { size: 32, ioas_id: ioas, num_iovas: 8, allowed_iovas: out };
  assert.equal(env.ioctl('IOMMU_IOAS_IOVA_RANGES', cmd), 0);
  return out;
}

test('floor lasts and exact ends round-trip at 2^53 - 1, 2^53, 2^53 + 1 and 2^64 - 1', () => {
  assert.equal(lastOf(2 ** 53), 2 ** 53 - 1);
  assert.equal(endOf(2 ** 53 - 1), 2 ** 53);
  assert.equal(lastToU64(floorDouble(2n ** 53n + 1n)), 2n ** 53n + 1n);
  assert.equal(lastToU64(floorDouble(U64_MAX)), U64_MAX);
  assert.equal(ceilDouble(2n ** 53n + 1n), 2 ** 53 + 2);
  // A start just above an exact last byte compares above it.
  const last = floorDouble(2n ** 63n + 8191n);
  assert.ok(2 ** 63 + 8192 > last && 2 ** 63 + 4096 <= last);
});

test('adjacent areas high in the IOVA space: exact lengths, no false overlap, unmap-all', () => {
  const env = new Env({ ram: 64 * 1024 * 1024, bufferSize: 16 * PAGE });
  const ioas = env.ioasAlloc();
  const hi = 1n << 63n;
  for (const iova of [2n ** 53n - 4096n, 2n ** 53n, 2n ** 53n + 4096n, hi + 4096n, hi + 8192n]) {
    assert.equal(mapAt(env, ioas, iova, 4096n).rc, 0, `map at 0x${iova.toString(16)}`);
  }
  // The top page: its last byte is 2^64 - 1, which check_add_overflow() allows.
  assert.equal(mapAt(env, ioas, U64_MAX - 4095n, 4096n).rc, 0);
  assert.equal(mapAt(env, ioas, U64_MAX - 4095n, 8192n).rc, -Errno.EOVERFLOW);
  assert.equal(mapAt(env, ioas, hi + 4096n, 4096n).rc, -Errno.EEXIST);
  // The holes between the areas come back exact.
  const r = ranges(env, ioas);
  assert.deepEqual(r.at(-1), { start: 0n, last: U64_MAX });
  // Unmapping one page reports exactly 4096 bytes; a range that cuts an area is ENOENT.
  assert.deepEqual(unmap(env, ioas, hi + 4096n, 4096n), { rc: 0, length: 4096n });
  assert.equal(unmap(env, ioas, hi + 8192n, 2048n).rc, -Errno.ENOENT);
  assert.deepEqual(unmap(env, ioas, 2n ** 53n, 4096n), { rc: 0, length: 4096n });
  // The unmap-all form (iova 0, length U64_MAX) takes the rest, top page included.
  assert.deepEqual(unmap(env, ioas, 0n, U64_MAX), { rc: 0, length: 4n * 4096n });
  assert.deepEqual(unmap(env, ioas, 0n, U64_MAX), { rc: 0, length: 0n });
  // A ranged unmap reaching past 2^64 - 1 overflows.
  assert.equal(unmap(env, ioas, hi, hi).rc, -Errno.EOVERFLOW);
  for (const fd of [...env.sys.files.keys()]) env.sys.close(fd);
  assertOracles(env.sys, { teardown: true });
});

test('an access reads and writes exact bytes of an area at 2^63', () => {
  const env = new Env({ ram: 64 * 1024 * 1024, bufferSize: 16 * PAGE });
  const ioas = env.ioasAlloc();
  const base = 1n << 63n;
  assert.equal(mapAt(env, ioas, base, 2n * 4096n).rc, 0);
  const accessFd = env.createAccess(ioas, 0);
  const uptr = env.mmap(PAGE, 0x22);
  const data = new Uint8Array(PAGE).map((_, i) => i & 0xff);
  env.sys.write(env.p, uptr, data);
  // Write one page through the access at base + 4096, read it back from the buffer.
  const w = env.test(IOMMU_TEST_OP_ACCESS_RW, accessFd, 'access_rw', {
    iova: base + 4096n,
    length: PAGE,
    uptr,
    flags: MOCK_ACCESS_RW_WRITE,
  });
  assert.equal(w.rc, 0);
  assert.deepEqual(env.sys.read(env.p, env.buffer + PAGE, PAGE).data, data);
  // A length that runs past the area is ENOENT; one past 2^64 - 1 is EOVERFLOW.
  const past = env.test(IOMMU_TEST_OP_ACCESS_RW, accessFd, 'access_rw', {
    iova: base + 4096n,
    length: 2 * PAGE,
    uptr,
  });
  assert.equal(past.rc, -Errno.ENOENT);
  const wrap = env.test(IOMMU_TEST_OP_ACCESS_RW, accessFd, 'access_rw', {
    iova: U64_MAX - 2047n,
    length: PAGE,
    uptr,
  });
  assert.equal(wrap.rc, -Errno.EOVERFLOW);
  env.destroyAccess(accessFd);
  assert.deepEqual(unmap(env, ioas, base, 8192n), { rc: 0, length: 8192n });
  for (const fd of [...env.sys.files.keys()]) env.sys.close(fd);
  assertOracles(env.sys, { teardown: true });
});
