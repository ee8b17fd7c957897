import { test } from 'node:test';
import { mmCases } from '../../src/conformance/mm.ts';

for (const c of mmCases()) {
  const name = c.variant === '' ? c.name : `${c.name} [${c.variant}]`;
  if (c.notModelled !== undefined || c.run === undefined) {
    test(name, { skip: `not modelled: ${c.notModelled ?? 'no body'}` }, () => {});
  } else {
    test(name, async () => {
      await c.run!();
    });
  }
}
