/**
 * The mm suite: tools/testing/selftests/mm/ cow.c, madv_populate.c, soft-dirty.c, mremap_test.c
 * (its correctness tests), mkdirty.c, khugepaged.c (its MADV_COLLAPSE tests on anonymous memory),
 * mremap_dontunmap.c, map_fixed_noreplace.c, map_populate.c, gup_longterm.c, merge.c,
 * hugetlb-madvise.c, mlock-random-test.c, mlock2-tests.c, mseal_test.c and guard-regions.c,
 * ported to the model under the kernel's test names (`<file>.<test>`, with cow.c's and
 * gup_longterm.c's "... with <memory>" runs and khugepaged.c's "context:memory" runs as variants,
 * mseal_test.c's runs without and with a seal named after main()'s calls, `test_x(false)` and
 * `test_x(true)`, mlock2-tests.c's two runs of test_vma_management() after main()'s calls, and
 * guard-regions.c's fixture runs as the harness names them, `guard-regions.<variant>.<test>`).
 * sources.ts names the revision each file was ported from.
 */
import type { SystemConfig } from '../kernel/system.ts';
import { cowCases } from './mm_cow.ts';
import { gupLongtermCases } from './mm_gup_longterm.ts';
import { guardRegionsCases } from './mm_guard_regions.ts';
import { hugetlbMadviseCases } from './mm_hugetlb_madvise.ts';
import { khugepagedCases } from './mm_khugepaged.ts';
import { mremapTestCases } from './mm_mremap.ts';
import { mergeCases } from './mm_merge.ts';
import { mapFixedNoreplaceCases, mapPopulateCases, mremapDontunmapCases } from './mm_map_flags.ts';
import { mlockRandomCases } from './mm_mlock.ts';
import { mlock2Cases } from './mm_mlock2.ts';
import { msealCases } from './mm_mseal.ts';
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
    ...mremapDontunmapCases(config),
    ...mapFixedNoreplaceCases(config),
    ...mapPopulateCases(config),
    ...gupLongtermCases(config),
    ...mergeCases(config),
    ...hugetlbMadviseCases(config),
    ...mlockRandomCases(config),
    ...mlock2Cases(config),
    ...msealCases(config),
    ...guardRegionsCases(config),
  ];
}
