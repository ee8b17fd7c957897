import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Env } from '../../../src/conformance/iommufd_harness.ts';
import {
  IOMMU_TEST_OP_ACCESS_RW,
  MOCK_ACCESS_RW_WRITE,
} from '../../../src/kernel/drivers/iommufd_selftest.ts';
import { Errno } from '../../../src/kernel/errno.ts';
import { assertOracles } from '../../../src/oracles/index.ts';

test('ACCESS_RW on behalf of a process that has exited fails with EFAULT and leaks nothing', () => {
  const env = new Env({ ram: 64 * 1024 * 1024, bufferSize: 16 * 4096 });
  const ioas = env.ioasAlloc();
  const { rc, iova } = env.map(ioas, env.buffer, 4 * 4096);
  assert.equal(rc, 0);
  const accessFd = env.createAccess(ioas, 0);
  const uptr = env.mmap(4096, 0x21);
  env.sys.exit(env.p);
  for (const flags of [0, MOCK_ACCESS_RW_WRITE]) {
    const r = env.test(IOMMU_TEST_OP_ACCESS_RW, accessFd, 'access_rw', { iova, length: 64, uptr, flags });
    assert.equal(r.rc, -Errno.EFAULT);
  }
  env.destroyAccess(accessFd);
  for (const fd of [...env.sys.files.keys()]) env.sys.close(fd);
  assertOracles(env.sys, { teardown: true });
});
