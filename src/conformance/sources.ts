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
  'xe-svm': {
    // IGT, not the kernel tree: the xe SVM test lives in igt-gpu-tools (intel-gpu/igt-gpu-tools).
    file: 'igt-gpu-tools: tests/intel/xe_exec_system_allocator.c',
    commit: '45fb3889af7bac1e469add73e0429a4654633812',
  },
} as const satisfies Record<string, SelftestSource>;

/** The source a case was ported from, by its suite and its FIXTURE name. */
export function sourceOf(suite: 'hmm' | 'iommufd' | 'xe-svm', name: string): SelftestSource {
  if (suite === 'hmm') return SELFTEST_SOURCES.hmm;
  if (suite === 'xe-svm') return SELFTEST_SOURCES['xe-svm'];
  return name.startsWith('basic_fail_nth.') ? SELFTEST_SOURCES.iommufd_fail_nth : SELFTEST_SOURCES.iommufd;
}
