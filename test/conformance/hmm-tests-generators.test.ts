// hmm-tests.c once more with every kernel path in its generator form (plainPaths: false): both
// executable forms of the kernel paths must pass the conformance suite.
import { test } from 'node:test';
import { hmmCases } from '../../src/conformance/hmm.ts';

for (const c of hmmCases({ plainPaths: false })) {
  const name = `${c.name} [${c.variant}, generator form]`;
  if (c.notModelled !== undefined || c.run === undefined) {
    test(name, { skip: `not modelled: ${c.notModelled ?? 'no body'}` }, () => {});
  } else {
    test(name, async () => {
      await c.run!();
    });
  }
}
