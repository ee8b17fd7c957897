import { test } from 'node:test';
import { hmmCases } from '../../src/conformance/hmm.ts';

for (const c of hmmCases()) {
  const name = `${c.name} [${c.variant}]`;
  if (c.notModelled !== undefined || c.run === undefined) {
    test(name, { skip: `not modelled: ${c.notModelled ?? 'no body'}` }, () => {});
  } else {
    test(name, async () => {
      await c.run!();
    });
  }
}
