import { test } from 'node:test';
import { iommufdFailNthCases } from '../../src/conformance/iommufd_fail_nth.ts';

for (const c of iommufdFailNthCases()) {
  test(`${c.name} [${c.variant}]`, { timeout: 600_000 }, async () => {
    await c.run!();
  });
}
