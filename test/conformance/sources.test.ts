import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MM_SELFTEST_SOURCES, SELFTEST_SOURCES, sourceOf } from '../../src/conformance/sources.ts';
import { suites } from '../../src/conformance/suites.ts';
import { runCase } from '../../src/conformance/types.ts';

test('every ported case names the kernel selftest file and commit it came from', async () => {
  const files = new Set<string>(
    [...Object.values(SELFTEST_SOURCES), ...Object.values(MM_SELFTEST_SOURCES)].map((s) => s.file),
  );
  for (const [suite, cases] of Object.entries(suites)) {
    for (const c of cases()) {
      const src = sourceOf(c.suite, c.name);
      assert.ok(files.has(src.file), `${suite} ${c.name}`);
      if (c.name.startsWith('basic_fail_nth.')) assert.equal(src, SELFTEST_SOURCES.iommufd_fail_nth);
      else if (c.suite === 'hmm') assert.equal(src, SELFTEST_SOURCES.hmm);
      else if (c.suite === 'xe-svm') assert.equal(src, SELFTEST_SOURCES['xe-svm']);
      else if (c.suite === 'memfd') assert.equal(src, SELFTEST_SOURCES.memfd);
      else if (c.suite === 'mm')
        assert.ok(c.name.startsWith(`${src.file.replace(/^.*\/(.*)\.c$/, '$1')}.`), c.name);
      else assert.equal(src, SELFTEST_SOURCES.iommufd);
    }
  }
  // Every source names an exact commit, not a description of one.
  for (const src of [...Object.values(SELFTEST_SOURCES), ...Object.values(MM_SELFTEST_SOURCES)])
    assert.match(src.commit, /^[0-9a-f]{40}$/, src.file);
  assert.equal(
    (await runCase({ suite: 'mm', name: 'mremap_test.x', variant: '', notModelled: 'why' })).portedFrom,
    'Kingxukai/linux:tools/testing/selftests/mm/mremap_test.c@0291023e7330da28f2f7453c87c2ab7082d8360f',
  );
  const r = await runCase({
    suite: 'iommufd',
    name: 'iommufd_ioas.example',
    variant: '',
    notModelled: 'why',
  });
  assert.equal(r.portedFrom, `${SELFTEST_SOURCES.iommufd.file}@${SELFTEST_SOURCES.iommufd.commit}`);
});

test('a case the kernel fails must fail in the model at the same assertion', async () => {
  const kernelFails = { message: /^fchmod\(\d+, 00777\) didn't fail/, reason: 'why' };
  const base = {
    suite: 'memfd',
    name: 'memfd_test.test_exec_seal',
    variant: 'hugetlbfs',
    kernelFails,
  } as const;
  const failing = (message: string) => () => {
    throw new Error(message);
  };
  const same = await runCase({ ...base, run: failing("fchmod(4, 00777) didn't fail as expected") });
  assert.equal(same.status, 'kernel-fails');
  assert.match(same.reason ?? '', /\(why\)$/);
  const other = await runCase({ ...base, run: failing('fstat(4) failed') });
  assert.equal(other.status, 'fail');
  const passes = await runCase({ ...base, run: () => {} });
  assert.equal(passes.status, 'fail');
  assert.match(passes.reason ?? '', /^passes, where the kernel fails at/);
});
