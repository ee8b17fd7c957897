import { test } from 'node:test';
import { iommufdCases } from '../../src/conformance/iommufd.ts';

for (const c of iommufdCases()) {
  const name = `${c.name} [${c.variant}]`;
  if (c.notModelled !== undefined || c.run === undefined) {
    test(name, { skip: `not modelled: ${c.notModelled ?? 'no body'}` }, () => {});
  } else {
    test(name, async () => {
      await c.run!();
    });
  }
}
