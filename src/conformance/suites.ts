import { hmmCases } from './hmm.ts';
import { iommufdCases } from './iommufd.ts';
import { iommufdFailNthCases } from './iommufd_fail_nth.ts';
import { memfdTestCases } from './memfd.ts';
import { mmCases } from './mm.ts';
import type { ConformanceCase } from './types.ts';
import { xeSvmCases } from './xe_svm.ts';

/** Every conformance suite by the name `hetmem conformance --suite` takes. */
export const suites: Record<string, () => ConformanceCase[]> = {
  hmm: hmmCases,
  iommufd: () => [...iommufdCases(), ...iommufdFailNthCases()],
  memfd: () => memfdTestCases(),
  mm: () => mmCases(),
  'xe-svm': xeSvmCases,
};
