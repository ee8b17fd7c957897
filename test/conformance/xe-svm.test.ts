import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XE_SVM_NOT_PORTED, xeSvmCases } from '../../src/conformance/xe_svm.ts';

const cases = xeSvmCases();

test('xe-svm ports at least 30 IGT subtests under their IGT names, each once', () => {
  assert.ok(cases.length >= 30, `${cases.length} cases`);
  assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
  for (const c of cases) assert.match(c.name, /^[a-z0-9-]+$/);
  assert.ok(XE_SVM_NOT_PORTED.length > 0);
});

for (const c of cases) {
  test(`xe_exec_system_allocator ${c.name}`, async () => {
    await c.run!();
  });
}
