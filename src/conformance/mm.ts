/**
 * The mm suite: tools/testing/selftests/mm/ cow.c, madv_populate.c, soft-dirty.c, mremap_test.c
 * (its correctness tests), mkdirty.c and khugepaged.c (its MADV_COLLAPSE tests on anonymous
 * memory), ported to the model under the kernel's test names (`<file>.<test>`, with cow.c's
 * "... with <memory>" runs and khugepaged.c's "context:memory" runs as variants). sources.ts names
 * the revision each file was ported from.
 */
import type { SystemConfig } from '../kernel/system.ts';
import { cowCases } from './mm_cow.ts';
import { khugepagedCases } from './mm_khugepaged.ts';
import { mremapTestCases } from './mm_mremap.ts';
import { madvPopulateCases, mkdirtyCases, softDirtyCases } from './mm_small.ts';
import type { ConformanceCase } from './types.ts';

/** Every case of the mm suite, file by file. `config` reaches every System the cases build. */
export function mmCases(config: SystemConfig = {}): ConformanceCase[] {
  return [
    ...cowCases(config),
    ...madvPopulateCases(config),
    ...softDirtyCases(config),
    ...mremapTestCases(config),
    ...mkdirtyCases(config),
    ...khugepagedCases(config),
  ];
}
