/**
 * The kernel entry points the scenario layer drives, gathered in one place. The modules are
 * imported statically, so a worker thread that require()s the explorer target gets the whole
 * kernel with it (importing the iommufd model and its selftest driver registers their ioctls).
 */
import * as test_hmm from '../kernel/drivers/test_hmm.ts';
import * as legacy_mirror from '../kernel/drivers/legacy_mirror.ts';
import * as iommufd_selftest from '../kernel/drivers/iommufd_selftest.ts';
import * as iommufd from '../kernel/iommufd/index.ts';
import * as syscalls from '../kernel/syscalls.ts';
import * as sdk from '../kernel/drivers/sdk/index.ts';
import * as oracles from '../oracles/index.ts';

export type { PagemapEntry } from '../kernel/syscalls.ts';

/** The modules a scenario runs against. */
export interface KernelApi {
  /** src/kernel/syscalls.ts: the generator forms of the modelled syscalls. */
  readonly syscalls: typeof syscalls;
  /** src/kernel/drivers/test_hmm.ts: the dmirror device. */
  readonly dmirror: typeof test_hmm;
  /** src/kernel/drivers/legacy_mirror.ts: a mirror device on the v5.4 hmm_mirror API. */
  readonly legacyMirror: typeof legacy_mirror;
  /** src/kernel/iommufd/index.ts: /dev/iommu. */
  readonly iommufd: typeof iommufd;
  /** src/kernel/drivers/iommufd_selftest.ts: IOMMU_TEST_CMD and its op numbers. */
  readonly iommufdSelftest: typeof iommufd_selftest;
  /** src/oracles/index.ts */
  readonly oracles: typeof oracles;
  /** src/kernel/drivers/sdk/: devices of user drivers. */
  readonly sdk: typeof sdk;
}

const KERNEL: KernelApi = {
  syscalls,
  dmirror: test_hmm,
  legacyMirror: legacy_mirror,
  iommufd,
  iommufdSelftest: iommufd_selftest,
  oracles,
  sdk,
};

/** The kernel (kept async for callers written when modules were loaded on demand). */
export function loadKernel(): Promise<KernelApi> {
  return Promise.resolve(KERNEL);
}

/** The kernel modules. */
export function kernel(): KernelApi {
  return KERNEL;
}
