import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bitmap } from '../../src/lib/bitmap.ts';

function naiveNext(bits: readonly boolean[], from: number, want: boolean): number {
  for (let i = from; i < bits.length; i++) if (bits[i] === want) return i;
  return bits.length;
}

function naiveZeroArea(bits: readonly boolean[], from: number, n: number): number {
  for (let s = from; s + n <= bits.length; s++) {
    let ok = true;
    for (let i = s; i < s + n && ok; i++) if (bits[i]) ok = false;
    if (ok) return s;
  }
  return bits.length;
}

type Op =
  | { t: 'set' | 'clear'; i: number }
  | { t: 'setRange' | 'clearRange'; a: number; b: number }
  | { t: 'query'; a: number; b: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constantFrom('set' as const, 'clear' as const), i: fc.nat() }),
  fc.record({ t: fc.constantFrom('setRange' as const, 'clearRange' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ t: fc.constant('query' as const), a: fc.nat(), b: fc.nat() }),
);

void describe('Bitmap', () => {
  void it('matches a boolean[] under random operations', () => {
    fc.assert(
      fc.property(fc.nat(200), fc.array(opArb, { maxLength: 60, size: 'max' }), (nbits, ops) => {
        const bm = new Bitmap(nbits);
        const ref = new Array<boolean>(nbits).fill(false);
        // Maps an arbitrary natural onto a valid [start, start + n) inside the bitmap.
        const span = (a: number, b: number): [number, number] => {
          const start = a % (nbits + 1);
          return [start, b % (nbits - start + 1)];
        };
        for (const op of ops) {
          switch (op.t) {
            case 'set':
            case 'clear':
              if (nbits === 0) break;
              bm[op.t](op.i % nbits);
              ref[op.i % nbits] = op.t === 'set';
              break;
            case 'setRange':
            case 'clearRange': {
              const [s, n] = span(op.a, op.b);
              bm[op.t](s, n);
              ref.fill(op.t === 'setRange', s, s + n);
              break;
            }
            case 'query': {
              const [s, n] = span(op.a, op.b);
              assert.equal(bm.countRange(s, n), ref.slice(s, s + n).filter((x) => x).length);
              assert.equal(bm.findNextZeroArea(s, n), naiveZeroArea(ref, s, n));
              break;
            }
          }
          assert.equal(bm.count(), ref.filter((x) => x).length);
          for (let i = 0; i <= nbits + 1; i++) {
            if (i < nbits) assert.equal(bm.test(i), ref[i]);
            assert.equal(bm.findNextSet(i), naiveNext(ref, i, true));
            assert.equal(bm.findNextZero(i), naiveNext(ref, i, false));
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  void it('word-boundary ranges', () => {
    for (const nbits of [1, 31, 32, 33, 63, 64, 65, 96, 200]) {
      for (let start = 0; start < nbits; start += 7) {
        for (const n of [0, 1, 31, 32, 33, 64, nbits - start]) {
          if (start + n > nbits) continue;
          const bm = new Bitmap(nbits);
          bm.setRange(start, n);
          assert.equal(bm.count(), n);
          assert.equal(bm.findNextSet(0), n === 0 ? nbits : start);
          assert.equal(bm.findNextZero(start), start + n);
          bm.clearRange(start, n);
          assert.equal(bm.count(), 0);
        }
      }
    }
  });

  void it('a full bitmap has no zero, and the tail of the last word stays clear', () => {
    const bm = new Bitmap(70);
    bm.setRange(0, 70);
    assert.equal(bm.count(), 70);
    assert.equal(bm.findNextZero(0), 70);
    assert.equal(bm.findNextZero(69), 70);
    assert.equal(bm.findNextZeroArea(0, 1), 70);
    bm.clear(69);
    assert.equal(bm.findNextZero(0), 69);
    assert.equal(bm.findNextZeroArea(0, 2), 70);
    assert.equal(bm.findNextZeroArea(0, 1), 69);
  });

  void it('empty bitmap and out-of-range arguments', () => {
    const empty = new Bitmap(0);
    assert.equal(empty.count(), 0);
    assert.equal(empty.findNextSet(0), 0);
    assert.equal(empty.findNextZero(0), 0);
    assert.equal(empty.countRange(0, 0), 0);
    empty.setRange(0, 0);
    assert.throws(() => empty.test(0), RangeError);

    const bm = new Bitmap(10);
    assert.throws(() => new Bitmap(-1), RangeError);
    assert.throws(() => new Bitmap(1.5), RangeError);
    assert.throws(() => new Bitmap(2 ** 32), RangeError);
    for (const bad of [-1, 10, 1.5, Number.NaN]) {
      assert.throws(() => bm.test(bad), RangeError);
      assert.throws(() => {
        bm.set(bad);
      }, RangeError);
      assert.throws(() => {
        bm.clear(bad);
      }, RangeError);
    }
    assert.throws(() => {
      bm.setRange(5, 6);
    }, RangeError);
    assert.throws(() => {
      bm.clearRange(-1, 2);
    }, RangeError);
    assert.throws(() => bm.countRange(0, 11), RangeError);
    assert.throws(() => bm.findNextSet(-1), RangeError);
    assert.throws(() => bm.findNextZeroArea(0, -1), RangeError);
    // Searching from at or past the end is allowed and finds nothing.
    assert.equal(bm.findNextSet(10), 10);
    assert.equal(bm.findNextZero(1000), 10);
  });

  void it('scans large sparse bitmaps quickly', () => {
    const n = 1 << 24;
    const bm = new Bitmap(n);
    bm.set(n - 1);
    assert.equal(bm.findNextSet(0), n - 1);
    bm.setRange(0, n - 1);
    assert.equal(bm.findNextZero(0), n);
    assert.equal(bm.count(), n);
    assert.equal(bm.countRange(5, n - 10), n - 10);
  });
});
