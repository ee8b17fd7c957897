import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mmCases } from '../../src/conformance/mm.ts';

const cases = mmCases();

test('the mm suite ports every file it names, with at least 150 cases that run', () => {
  const files = new Set(cases.map((c) => c.name.slice(0, c.name.indexOf('.'))));
  assert.deepEqual(
    [...files],
    [
      'cow',
      'madv_populate',
      'soft-dirty',
      'mremap_test',
      'mkdirty',
      'khugepaged',
      'mremap_dontunmap',
      'map_fixed_noreplace',
      'map_populate',
      'gup_longterm',
      'merge',
      'hugetlb-madvise',
      'mlock-random-test',
      'mlock2-tests',
      'mseal_test',
      'guard-regions',
    ],
  );
  assert.ok(cases.filter((c) => c.run !== undefined).length >= 150);
  const keys = cases.map((c) => `${c.name} [${c.variant}]`);
  assert.equal(new Set(keys).size, keys.length, 'case names are unique');
});

for (const c of cases) {
  const name = c.variant === '' ? c.name : `${c.name} [${c.variant}]`;
  if (c.notModelled !== undefined || c.run === undefined) {
    test(name, { skip: `not modelled: ${c.notModelled ?? 'no body'}` }, () => {});
  } else {
    test(name, async () => {
      await c.run!();
    });
  }
}
