/**
 * The step bound that tells a kernel loop that never ends from a long one: it grows with the
 * System's memory and with the pages the op itself names, so an op over a large empty range (a
 * migration of 2^20 pages, a few steps each, no memory used) is not called a livelock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ScenarioContext } from '../../src/scenario/context.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario, stepBoundFor } from '../../src/scenario/runner.ts';
import type { StepT } from '../../src/scenario/schema.ts';

const FILE = fileURLToPath(new URL('../fixtures/inline.yaml', import.meta.url));

function world(): ScenarioContext {
  let ctx: ScenarioContext | null = null;
  runScenario(
    parseScenarioText(
      `version: 1
system: { ram: 8MiB, swap: 8MiB }
processes: [p]
steps:
  - { op: mmap, proc: p, length: 4KiB, prot: [read], flags: [private, anonymous], save: b }
`,
      FILE,
    ),
    kernel(),
    { onWorld: (c) => (ctx = c) },
  );
  return ctx!;
}

const step = (s: Record<string, unknown>): StepT => s as unknown as StepT;

describe('the step bound of one op', () => {
  const ctx = world();
  const base = stepBoundFor(ctx);

  it('is a million steps and 64 a page of RAM and swap for an op that names no size', () => {
    assert.equal(base, 1_000_000 + 64 * 4096);
    assert.equal(stepBoundFor(ctx, step({ op: 'check' })), base);
  });

  it('grows by 8 steps a page the op names: npages, length, new_length or range', () => {
    assert.equal(
      stepBoundFor(ctx, step({ op: 'HMM_DMIRROR_MIGRATE_TO_DEV', npages: 2 ** 20 })),
      base + 8 * 2 ** 20,
    );
    assert.equal(stepBoundFor(ctx, step({ op: 'madvise', length: '4MiB' })), base + 8 * 1024);
    assert.equal(
      stepBoundFor(ctx, step({ op: 'mremap', length: 4096, new_length: '8MiB' })),
      base + 8 * 2048,
    );
    assert.equal(stepBoundFor(ctx, step({ op: 'DRM_IOCTL_XE_VM_BIND', range: 8192 })), base + 16);
  });

  it('grows by at most 2^21 pages; sizes that do not resolve add nothing', () => {
    assert.equal(stepBoundFor(ctx, step({ op: 'madvise', length: 2 ** 50 })), base + 8 * 2 ** 21);
    assert.equal(stepBoundFor(ctx, step({ op: 'madvise', length: 'nosuchname' })), base);
    assert.equal(stepBoundFor(ctx, step({ op: 'madvise', length: -4096 })), base);
  });

  it('a bound the caller set (the fuzzer) replaces it', () => {
    const c = world();
    c.stepBound = 200_000;
    assert.equal(stepBoundFor(c, step({ op: 'HMM_DMIRROR_MIGRATE_TO_DEV', npages: 2 ** 20 })), 200_000);
  });
});
