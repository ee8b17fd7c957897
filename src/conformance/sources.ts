/**
 * Where each ported selftest comes from: the kernel file and the torvalds/linux commit the port
 * was made from. The model follows Linux 6.18 (docs/fidelity.md); the selftests were ported from
 * mainline snapshots around that release, and a case whose behaviour changed between releases
 * says which one it checks in its own comment.
 */
export interface SelftestSource {
  /** The selftest file in the kernel tree. */
  readonly file: string;
  /** The commit the port was made from or checked against (40 hex digits). */
  readonly commit: string;
  /**
   * The repository that commit was read from when it is not torvalds/linux (a mainline fork
   * whose snapshot the source index holds where it holds no torvalds/linux copy of that form).
   */
  readonly repo?: string;
}

/**
 * The mainline snapshot, as held by the Kingxukai/linux fork, that both iommufd_fail_nth.c and
 * mremap_test.c were matched against. The source index's only torvalds/linux copies of these two
 * files are older: iommufd_fail_nth.c at 6867849aac96 ends `device` at the fault-queue HWPT
 * (no vEVENTQ, HW queue or PASID steps), and mremap_test.c at 6fc38fe451a5 has none of the
 * multiple-VMA tests. This snapshot has every case the ports run, in their order: `device` with
 * the 6.17 IOMMU_HW_INFO_TYPE_DEFAULT argument, the HW queue on the nesting parent's IOVA, the
 * vEVENTQ and the PASID attach/replace/detach last; mremap_test's main() with the shrink and
 * move multiple-VMA tests and `mremap move multiple invalid vmas` (6.17). It is the newest form
 * of either file the index holds. The fork rewords some comments, so its commit is the fork's,
 * not a mainline one; the code of each `device` step was checked against the patches that added
 * it upstream (vEVENTQ, HW queue, PASID, the 6.17 GET_HW_INFO type argument). Whether the form is
 * exactly v6.18's could not be checked here; no change to either file between 6.17 and 6.18 is
 * known to the port. Compared since against every copy the index holds (docs/fidelity.md lists
 * them): the newer iommufd_fail_nth.c of analogdevicesinc/linux 7d5410cb8c31 makes the same
 * `device` ioctls in the same order and adds only a main() that skips without the mock bus; no newer mremap_test.c is held, and pongo1231/linux
 * aef917f25b6d holds the form just before this one (without `mremap move multiple invalid vmas`).
 */
const MAINLINE_617_SNAPSHOT = {
  repo: 'Kingxukai/linux',
  commit: '0291023e7330da28f2f7453c87c2ab7082d8360f',
} as const;

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
    ...MAINLINE_617_SNAPSHOT,
  },
  'xe-svm': {
    // IGT, not the kernel tree: the xe SVM test lives in igt-gpu-tools (intel-gpu/igt-gpu-tools).
    file: 'igt-gpu-tools: tests/intel/xe_exec_system_allocator.c',
    commit: '45fb3889af7bac1e469add73e0429a4654633812',
  },
  memfd: {
    // The index's newest torvalds/linux form, with test_seal_write_map_read_shared() and the
    // pid-namespace check before the sysctl tests (its older 0c8ea05e9b3d has neither).
    // Kingxukai/linux 9b44fff655e2 has the same code; memfd.ts says what a later form changes.
    file: 'tools/testing/selftests/memfd/memfd_test.c',
    commit: '6867849aac964c47532897b4f843dfb2311216db',
  },
} as const satisfies Record<string, SelftestSource>;

/**
 * The mm suite's files, by the prefix of their case names (`cow.Basic COW after fork()`). The
 * revisions are those of the torvalds/linux snapshots the ports were made from.
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
    ...MAINLINE_617_SNAPSHOT,
  },
  mkdirty: {
    file: 'tools/testing/selftests/mm/mkdirty.c',
    commit: '254a142007114cad7b0a901215c1558e4315d46f',
  },
  khugepaged: {
    file: 'tools/testing/selftests/mm/khugepaged.c',
    commit: '00679a183ac6d2584723cfc2a2c07c8285f802dc',
  },
  mremap_dontunmap: {
    file: 'tools/testing/selftests/mm/mremap_dontunmap.c',
    commit: '1605ce99afac80cd6080c821a664921c19eb3e00',
  },
  map_fixed_noreplace: {
    file: 'tools/testing/selftests/mm/map_fixed_noreplace.c',
    commit: '00c010e130e58301db2ea0cec1eadc931e1cb8cf',
  },
  'mlock-random-test': {
    file: 'tools/testing/selftests/mm/mlock-random-test.c',
    commit: '146cc263e457ff6055fe7829e4f4f4b0b5d5dd86',
  },
  'mlock2-tests': {
    // The 6.18 form: 13 results from seven tests. Newer forms add test_mlock_droppable() and
    // test_mlockall_future_droppable() (docs/fidelity.md), not ported.
    file: 'tools/testing/selftests/mm/mlock2-tests.c',
    commit: 'aedc8fa5141b2f1058c1bf986c75679dec04cdb6',
  },
  map_populate: {
    file: 'tools/testing/selftests/mm/map_populate.c',
    commit: '3ab7ae8e07f888f223027f0ef84d33e43919ad55',
  },
  gup_longterm: {
    file: 'tools/testing/selftests/mm/gup_longterm.c',
    commit: '109364fce504dae70b13eccc51a7bfc71528d154',
  },
  merge: {
    file: 'tools/testing/selftests/mm/merge.c',
    commit: '0ace8f2db6b3b4b0677e559d1a7ab7fd625d61ec',
  },
  'hugetlb-madvise': {
    file: 'tools/testing/selftests/mm/hugetlb-madvise.c',
    commit: '42d3b66d4cdbacfc9d120d2301b8de89cc29a914',
  },
  mseal_test: {
    // From the linux-mm/linux-mm mirror, newer than the index's torvalds/linux copy (3a39d672e7f4,
    // the 6.12 form, with the same tests); docs/fidelity.md says which copies were compared.
    file: 'tools/testing/selftests/mm/mseal_test.c',
    repo: 'linux-mm/linux-mm',
    commit: '59d61b6feef74bc2e1157a4a8c0b298928d39f3a',
  },
  'guard-regions': {
    // From the linux-mm/linux-mm mirror, a form newer than 6.18 whose first 28 tests are 6.18's;
    // its two later ones (collapse, smaps) check VM_MAYBE_GUARD, which the 6.18 kernel the model
    // follows has. docs/fidelity.md says which copies were compared.
    file: 'tools/testing/selftests/mm/guard-regions.c',
    repo: 'linux-mm/linux-mm',
    commit: '231fbeaeaa0e0cfcbc0767a7d8f5574927780f0f',
  },
} as const satisfies Record<string, SelftestSource>;

const SOFT_DIRTY_TEST_MERGE: SelftestSource = {
  file: 'tools/testing/selftests/mm/soft-dirty.c',
  commit: 'c7ba92bcfea34f6b4afc744c3b65c8f7420fefe0',
};

/** The source a case was ported from, by its suite and its FIXTURE name. */
export function sourceOf(suite: 'hmm' | 'iommufd' | 'memfd' | 'mm' | 'xe-svm', name: string): SelftestSource {
  if (suite === 'hmm') return SELFTEST_SOURCES.hmm;
  if (suite === 'memfd') return SELFTEST_SOURCES.memfd;
  if (suite === 'xe-svm') return SELFTEST_SOURCES['xe-svm'];
  if (suite === 'mm') {
    // soft-dirty.c's test_merge came after the rest of the file (and went to 6.18.y as well).
    if (name === 'soft-dirty.test_merge') return SOFT_DIRTY_TEST_MERGE;
    const file = name.slice(0, name.indexOf('.'));
    return file in MM_SELFTEST_SOURCES
      ? MM_SELFTEST_SOURCES[file as keyof typeof MM_SELFTEST_SOURCES]
      : { file: 'tools/testing/selftests/mm/', commit: 'unknown' };
  }
  return name.startsWith('basic_fail_nth.') ? SELFTEST_SOURCES.iommufd_fail_nth : SELFTEST_SOURCES.iommufd;
}
