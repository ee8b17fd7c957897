import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memfdTestCases } from '../../src/conformance/memfd.ts';
import { sourceOf } from '../../src/conformance/sources.ts';
import { runCase } from '../../src/conformance/types.ts';

const cases = memfdTestCases();

test('the memfd suite ports memfd_test.c, with at least 20 cases that run', () => {
  for (const c of cases) {
    assert.ok(c.name.startsWith('memfd_test.'), c.name);
    assert.equal(sourceOf(c.suite, c.name).file, 'tools/testing/selftests/memfd/memfd_test.c');
  }
  assert.deepEqual(
    [...new Set(cases.map((c) => c.variant))],
    ['', 'shared file-table', 'hugetlbfs', 'hugetlbfs, shared file-table'],
  );
  assert.ok(cases.filter((c) => c.run !== undefined).length >= 20);
  const keys = cases.map((c) => `${c.name} [${c.variant}]`);
  assert.equal(new Set(keys).size, keys.length, 'case names are unique');
});

for (const c of cases) {
  const name = c.variant === '' ? c.name : `${c.name} [${c.variant}]`;
  if (c.notModelled !== undefined || c.run === undefined) {
    test(name, { skip: `not modelled: ${c.notModelled ?? 'no body'}` }, () => {});
  } else if (c.kernelFails !== undefined) {
    // Fails on the kernel: the model must fail at the same assertion.
    test(`${name} fails as on the kernel`, async () => {
      const r = await runCase(c);
      assert.equal(r.status, 'kernel-fails', r.reason);
    });
  } else {
    test(name, async () => {
      await c.run!();
    });
  }
}
