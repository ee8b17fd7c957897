import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { indexAt, spanOf } from '../../src/lib/pgtable_store.ts';
import { plainUlong, standIn, ulong, ulongStandIn } from '../../src/kernel/ulong.ts';

describe('indexAt', () => {
  it('is the quotient by the level span, modulo 512, for every user address and beyond', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 3 }),
        (addr, level) => {
          assert.equal(indexAt(addr, level), Math.floor(addr / spanOf(level)) % 512);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('reads the PTE and PMD indexes from above 32 bits too', () => {
    const addr = 0x7f12_3456_7000;
    assert.equal(indexAt(addr, 0), Math.floor(addr / 4096) % 512);
    assert.equal(indexAt(addr, 1), Math.floor(addr / 2 ** 21) % 512);
    assert.equal(indexAt(2 ** 47 - 4096, 0), 511);
    assert.equal(indexAt(2 ** 47 - 4096, 1), 511);
  });
});

describe('ulongStandIn', () => {
  it('is standIn(ulong(v) ?? 0) for any argument', () => {
    const values: unknown[] = [
      0,
      1,
      4096,
      2 ** 47,
      2 ** 53 - 1,
      2 ** 53,
      -1,
      -4096,
      1.5,
      NaN,
      Infinity,
      2n ** 64n - 1n,
      5n,
      'x',
      null,
    ];
    for (const v of values) {
      assert.equal(ulongStandIn(v), standIn(ulong(v) ?? 0), String(v));
      assert.equal(plainUlong(v), typeof ulong(v) === 'number' && ulong(v) === v, String(v));
    }
  });
});
