/**
 * The fuzz program generator writes valid scenario files: every name a step uses is bound by an
 * earlier step (its own included neither), in fresh programs, thread programs and mutations, and
 * every u64 value above 2^53 is a hex string, never a rounded number.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mutate } from '../../src/fuzz/engine.ts';
import { programText } from '../../src/fuzz/execute.ts';
import { Generator, OP_GROUPS, type OpGroup, type Program, u64Hex } from '../../src/fuzz/generate.ts';
import { Prng } from '../../src/lib/prng.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';

const groupSets = fc.subarray([...OP_GROUPS] as OpGroup[], { minLength: 1 });

/** Numbers a scenario file could not read back exactly. */
function inexactNumbers(v: unknown, path = ''): string[] {
  if (typeof v === 'number') return Number.isSafeInteger(v) || !Number.isInteger(v) ? [] : [path];
  if (Array.isArray(v)) return v.flatMap((x, i) => inexactNumbers(x, `${path}[${i}]`));
  if (v !== null && typeof v === 'object')
    return Object.entries(v).flatMap(([k, x]) => inexactNumbers(x, `${path}.${k}`));
  return [];
}

/** Asserts `p` is a scenario file `hetmem run` accepts, names bound before use included. */
function assertValid(p: Program, what: string): void {
  assert.doesNotThrow(() => parseScenarioText(programText(p), `${what}.yaml`), what);
  assert.deepEqual(inexactNumbers(p), [], `${what}: u64 values above 2^53 are hex strings`);
}

describe('fuzz programs use only bound names', () => {
  it('fresh programs, with threads or without', () => {
    fc.assert(
      fc.property(fc.string(), groupSets, fc.integer({ min: 1, max: 40 }), (seed, groups, len) => {
        assertValid(new Generator(new Prng(`g:${seed}`), groups).program(len), `program ${seed}`);
      }),
      { numRuns: 300 },
    );
  });

  it('mutations of a program, one after another', () => {
    fc.assert(
      fc.property(fc.string(), groupSets, (seed, groups) => {
        let p = new Generator(new Prng(`m:${seed}`), groups).program(20);
        if (p.threads !== undefined) return;
        for (let i = 0; i < 8; i++) {
          p = mutate(new Prng(`m:${seed}:${i}`), groups, p);
          assertValid(p, `mutation ${i} of ${seed}`);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a MIGRATE_TO_DEV range is one a fuzz world walks quickly, or wraps', () => {
    // dmirror_migrate_to_device() tries a device page for every page of a hole: 2^40 pages over
    // a 1 TiB mapping would run for minutes, and the fuzz run would report it as a hang.
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const p = new Generator(new Prng(`migrate:${i}`), ['dmirror']).program(40);
      const steps = [...p.steps, ...Object.values(p.threads ?? {}).flat()];
      for (const s of steps) {
        if (s.op !== 'HMM_DMIRROR_MIGRATE_TO_DEV') continue;
        const n = s.npages as number;
        seen.add(n);
        assert.ok(n <= 2 ** 14 || n >= 2 ** 52 - 1, `program ${i}: MIGRATE_TO_DEV of ${n} pages`);
      }
    }
    for (const n of [0, 2 ** 14, 2 ** 52 - 1]) assert.ok(seen.has(n), `${n} pages is generated`);
  });

  it('u64Hex writes the u64 a value stands for', () => {
    assert.equal(u64Hex(-1n), '0xffffffffffffffff');
    assert.equal(u64Hex(-4096n), '0xfffffffffffff000');
    assert.equal(u64Hex(2n ** 53n + 1n), '0x20000000000001');
  });
});
