import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../../../src/lib/units.ts';
import { Prng } from '../../../src/lib/prng.ts';
import { Errno } from '../../../src/kernel/errno.ts';
import { Env, RW, sizeOf } from '../../../src/conformance/iommufd_harness.ts';
import { MOCK_APERTURE_START } from '../../../src/kernel/drivers/iommufd_selftest.ts';
import { IOMMU_IOAS_MAP_FIXED_IOVA } from '../../../src/kernel/iommufd/index.ts';
import { iommufdCtxOf, iommufdDispatch } from '../../../src/kernel/iommufd/main.ts';
import { checkIommufd } from '../../../src/oracles/iommufd.ts';

/** Runs MAP and UNMAP of the same range, and a domain attach, on three threads in random orders. */
describe('map / unmap / attach races', () => {
  for (let seed = 1; seed <= 25; seed++) {
    it(`seed ${seed}`, () => {
      const env = new Env({ ram: 64 * 1024 * 1024 });
      const ioas = env.ioasAlloc();
      const ctx = iommufdCtxOf(env.sys, env.fd)!;
      const rng = new Prng(seed);
      env.sys.sched.chooser = { choose: (runnable) => runnable[rng.int(runnable.length)] };
      const map = {
        size: sizeOf('IOMMU_IOAS_MAP'),
        flags: IOMMU_IOAS_MAP_FIXED_IOVA | RW,
        ioas_id: ioas,
        user_va: env.buffer,
        length: 4 * PAGE_SIZE,
        iova: MOCK_APERTURE_START,
      };
      const unmap = {
        size: sizeOf('IOMMU_IOAS_UNMAP'),
        ioas_id: ioas,
        iova: MOCK_APERTURE_START,
        length: 4 * PAGE_SIZE,
      };
      const md = { size: sizeOf('IOMMU_TEST_CMD'), op: 2, id: ioas, mock_domain: {} };
      const tMap = env.sys.sched.spawn('map', iommufdDispatch(ctx, 'IOMMU_IOAS_MAP', map));
      const tUnmap = env.sys.sched.spawn('unmap', iommufdDispatch(ctx, 'IOMMU_IOAS_UNMAP', unmap));
      const tAttach = env.sys.sched.spawn('attach', iommufdDispatch(ctx, 'IOMMU_TEST_CMD', md));
      env.sys.sched.runAll();
      assert.equal(tMap.result, 0);
      assert.equal(tAttach.result, 0);
      assert.ok(
        [0, -Errno.ENOENT, -Errno.EBUSY].includes(tUnmap.result as number),
        `unmap ${String(tUnmap.result)}`,
      );
      assert.deepEqual(checkIommufd(env.sys), []);
      env.sys.sched.chooser = { choose: (r) => r[0] };
      env.teardown();
    });
  }
});
