/**
 * Where each ported selftest comes from: the kernel file and the torvalds/linux commit the port
 * was made from. The model follows Linux 6.18 (docs/fidelity.md); the selftests were ported from
 * mainline snapshots around that release, and a case whose behaviour changed between releases
 * says which one it checks in its own comment.
 */
export interface SelftestSource {
  /** The selftest file in the kernel tree. */
  readonly file: string;
  /** The torvalds/linux commit the port was made from, or what is known of it. */
  readonly commit: string;
}

export const SELFTEST_SOURCES = {
  hmm: {
    file: 'tools/testing/selftests/mm/hmm-tests.c',
    commit: '0eaed89c18aeedf0898baf2dbf5ff027c6795152',
  },
  iommufd: {
    file: 'tools/testing/selftests/iommu/iommufd.c',
    commit: '80478a2b450e984b5d270d0d7088912d64e84303',
  },
  iommufd_fail_nth: {
    file: 'tools/testing/selftests/iommu/iommufd_fail_nth.c',
    // The revision was not written down when it was ported; it has basic_fail_nth.map_file_domain,
    // so it is at least the 6.13 one that added IOMMU_IOAS_MAP_FILE.
    commit: 'mainline, 6.13 or later (exact commit not recorded)',
  },
} as const satisfies Record<string, SelftestSource>;

/**
 * The mm suite's files, by the prefix of their case names (`cow.Basic COW after fork()`). The
 * revisions are those of the torvalds/linux snapshots the ports were made from, current with 6.18.
 */
export const MM_SELFTEST_SOURCES = {
  cow: {
    file: 'tools/testing/selftests/mm/cow.c',
    commit: '49850bd02658181f235e3f3fd0a9884f812f0914',
  },
  madv_populate: {
    file: 'tools/testing/selftests/mm/madv_populate.c',
    commit: '0183d777c29ab12c2b0c19f3d4f5c6df016815fb',
  },
  'soft-dirty': {
    file: 'tools/testing/selftests/mm/soft-dirty.c',
    commit: '1260ed77798502de9c98020040d2995008de10cc',
  },
  mremap_test: {
    file: 'tools/testing/selftests/mm/mremap_test.c',
    // The 6.17 form with the multiple-VMA move tests (its exact revision was not recorded).
    commit: 'mainline, 6.17 or later (exact commit not recorded)',
  },
  mkdirty: {
    file: 'tools/testing/selftests/mm/mkdirty.c',
    commit: '254a142007114cad7b0a901215c1558e4315d46f',
  },
} as const satisfies Record<string, SelftestSource>;

/** The source a case was ported from, by its suite and its FIXTURE name. */
export function sourceOf(suite: 'hmm' | 'iommufd' | 'mm', name: string): SelftestSource {
  if (suite === 'hmm') return SELFTEST_SOURCES.hmm;
  if (suite === 'mm') {
    const file = name.slice(0, name.indexOf('.'));
    return file in MM_SELFTEST_SOURCES
      ? MM_SELFTEST_SOURCES[file as keyof typeof MM_SELFTEST_SOURCES]
      : { file: 'tools/testing/selftests/mm/', commit: 'unknown' };
  }
  return name.startsWith('basic_fail_nth.') ? SELFTEST_SOURCES.iommufd_fail_nth : SELFTEST_SOURCES.iommufd;
}
