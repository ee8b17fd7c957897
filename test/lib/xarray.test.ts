import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { XArray } from '../../src/lib/xarray.ts';
import { Prng } from '../../src/lib/prng.ts';

const MAX = Number.MAX_SAFE_INTEGER;

/** The reference: a Map plus a sort of its keys on demand. */
class NaiveSparse<T> {
  map = new Map<number, T>();
  keys(): number[] {
    return [...this.map.keys()].sort((a, b) => a - b);
  }
  range(first: number, last: number): [number, T][] {
    return this.keys()
      .filter((k) => k >= first && k <= last)
      .map((k) => [k, this.map.get(k)!]);
  }
}

/** Indices clustered where the radix arithmetic is most likely to go wrong. */
const indexArb: fc.Arbitrary<number> = fc.oneof(
  fc.nat(300),
  fc.nat(300).map((x) => 2 ** 31 - 150 + x),
  fc.nat(300).map((x) => 2 ** 32 - 150 + x),
  fc.nat(300).map((x) => 2 ** 48 - 150 + x),
  fc.nat(300).map((x) => MAX - x),
  fc.maxSafeNat(),
  fc.constantFrom(0, 63, 64, 4095, 4096, 2 ** 36 - 1, 2 ** 36, 2 ** 42, MAX),
);

type Op =
  | { t: 'store'; i: number; v: number }
  | { t: 'erase'; i: number }
  | { t: 'find'; a: number; b: number }
  | { t: 'eraseRange'; a: number; b: number }
  | { t: 'clear' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('store' as const), i: indexArb, v: fc.integer() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('erase' as const), i: indexArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('find' as const), a: indexArb, b: indexArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('eraseRange' as const), a: indexArb, b: indexArb }) },
  { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
);

function checkAll(xa: XArray<number>, model: NaiveSparse<number>): void {
  xa.checkInvariants();
  assert.equal(xa.size, model.map.size);
  assert.deepEqual([...xa], model.range(0, MAX));
}

void describe('XArray', () => {
  void it('matches a Map under random operations', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 150, size: 'max' }), (ops) => {
        const xa = new XArray<number>();
        const model = new NaiveSparse<number>();
        for (const op of ops) {
          switch (op.t) {
            case 'store':
              assert.equal(xa.store(op.i, op.v), model.map.get(op.i));
              model.map.set(op.i, op.v);
              break;
            case 'erase':
              assert.equal(xa.erase(op.i), model.map.get(op.i));
              model.map.delete(op.i);
              break;
            case 'find': {
              const [a, b] = op.a <= op.b ? [op.a, op.b] : [op.b, op.a];
              const expected = model.range(a, b);
              assert.deepEqual(xa.find(a, b), expected[0]);
              assert.deepEqual(xa.findLast(a, b), expected.at(-1));
              assert.deepEqual(xa.find(a), model.range(a, MAX)[0]);
              assert.deepEqual([...xa.range(a, b)], expected);
              assert.deepEqual(xa.entriesIn(a, b), expected);
              // Reversed bounds are an empty range, not an error.
              if (a < b) {
                assert.equal(xa.find(b, a), undefined);
                assert.equal(xa.findLast(b, a), undefined);
              }
              for (const i of [a, b]) {
                assert.equal(xa.load(i), model.map.get(i));
                assert.equal(xa.has(i), model.map.has(i));
              }
              break;
            }
            case 'eraseRange': {
              const [a, b] = op.a <= op.b ? [op.a, op.b] : [op.b, op.a];
              const doomed = model.range(a, b);
              assert.equal(xa.eraseRange(a, b), doomed.length);
              for (const [k] of doomed) model.map.delete(k);
              break;
            }
            case 'clear':
              xa.clear();
              model.map.clear();
              break;
          }
          checkAll(xa, model);
        }
      }),
      { numRuns: 200 },
    );
  });

  void it('dense runs across leaf and level boundaries', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 60, 4090, 2 ** 32 - 70, 2 ** 50 - 3),
        fc.nat(300),
        fc.nat(300),
        fc.nat(300),
        (base, n, a, b) => {
          const xa = new XArray<number>();
          const model = new NaiveSparse<number>();
          for (let i = 0; i < n; i++) {
            xa.store(base + i, i);
            model.map.set(base + i, i);
          }
          checkAll(xa, model);
          const [lo, hi] = a <= b ? [base + a, base + b] : [base + b, base + a];
          assert.deepEqual([...xa.range(lo, hi)], model.range(lo, hi));
          assert.deepEqual(xa.entriesIn(lo, hi), model.range(lo, hi));
          assert.deepEqual(xa.entriesIn(0, Infinity), model.range(0, MAX));
          assert.deepEqual(xa.findLast(0, hi), model.range(0, hi).at(-1));
          assert.equal(xa.eraseRange(lo, hi), model.range(lo, hi).length);
          for (const [k] of model.range(lo, hi)) model.map.delete(k);
          checkAll(xa, model);
        },
      ),
    );
  });

  void it('grows and shrinks its height and frees empty nodes', () => {
    const xa = new XArray<string>();
    assert.equal(xa.height, 0);
    xa.store(5, 'a');
    assert.equal(xa.height, 1);
    assert.equal(xa.nodeCount, 1);
    xa.store(2 ** 40, 'b');
    assert.equal(xa.height, 7);
    assert.equal(xa.nodeCount, 7 + 6);
    xa.checkInvariants();
    assert.equal(xa.erase(2 ** 40), 'b');
    xa.checkInvariants();
    assert.equal(xa.height, 1);
    assert.equal(xa.nodeCount, 1);
    assert.equal(xa.load(5), 'a');
    xa.store(MAX, 'top');
    assert.equal(xa.height, 9);
    assert.equal(xa.erase(5), 'a');
    // Only MAX remains: slot 0 of the root is empty, so the tree keeps its height.
    assert.equal(xa.height, 9);
    assert.equal(xa.nodeCount, 9);
    assert.equal(xa.erase(MAX), 'top');
    assert.equal(xa.height, 0);
    assert.equal(xa.nodeCount, 0);
    xa.checkInvariants();
  });

  void it('eraseRange frees whole subtrees', () => {
    const xa = new XArray<number>();
    for (let i = 0; i < 10_000; i++) xa.store(2 ** 33 + i, i);
    assert.equal(xa.eraseRange(0, Infinity), 10_000);
    assert.equal(xa.size, 0);
    assert.equal(xa.nodeCount, 0);
    for (let i = 0; i < 1000; i++) xa.store(i * 7, i);
    assert.equal(xa.eraseRange(100, 199), 14);
    assert.equal(xa.eraseRange(100, 199), 0);
    xa.checkInvariants();
  });

  void it('storing undefined erases; values may be falsy', () => {
    const xa = new XArray<number | null | undefined | string>();
    xa.store(1, 0);
    xa.store(2, null);
    xa.store(3, '');
    assert.equal(xa.size, 3);
    assert.deepEqual(
      [...xa],
      [
        [1, 0],
        [2, null],
        [3, ''],
      ],
    );
    assert.equal(xa.store(2, undefined), null);
    assert.equal(xa.size, 2);
    assert.ok(!xa.has(2));
    assert.equal(xa.store(9, undefined), undefined);
    assert.equal(xa.size, 2);
    xa.checkInvariants();
  });

  void it('rejects invalid indices', () => {
    const xa = new XArray<number>();
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, Infinity]) {
      assert.throws(() => xa.store(bad, 1), RangeError);
      assert.throws(() => xa.load(bad), RangeError);
      assert.throws(() => xa.erase(bad), RangeError);
      assert.throws(() => xa.find(bad), RangeError);
    }
    assert.throws(() => xa.find(0, Number.NaN), RangeError);
    assert.throws(() => xa.findLast(0, Number.NaN), RangeError);
  });

  void it('empty array queries', () => {
    const xa = new XArray<number>();
    assert.equal(xa.find(0), undefined);
    assert.equal(xa.findLast(0, MAX), undefined);
    assert.deepEqual([...xa.range(0, MAX)], []);
    assert.equal(xa.eraseRange(0, MAX), 0);
    assert.equal(xa.erase(7), undefined);
    assert.equal(xa.load(2 ** 50), undefined);
    xa.store(3, 3);
    assert.equal(xa.find(4), undefined);
    assert.equal(xa.find(2 ** 50), undefined);
    assert.deepEqual(xa.findLast(0, 2 ** 50), [3, 3]);
    assert.deepEqual(xa.findLast(0, Infinity), [3, 3]);
  });

  void it('range tolerates stores and erases by the caller while iterating', () => {
    const xa = new XArray<number>();
    for (let i = 0; i < 200; i++) xa.store(i * 3, i);
    const seen: number[] = [];
    for (const [k] of xa.range(0, 1000)) {
      seen.push(k);
      xa.erase(k);
      xa.erase(k + 3); // the next one disappears before we get to it
      xa.store(k + 1, -1); // a new one appears right after the cursor
    }
    // Strictly ascending: the iteration re-searches after each change instead of replaying a stale leaf.
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1]);
    xa.checkInvariants();
    assert.equal(xa.find(0, 1000), undefined);
  });

  void it('random workload against a Map at scale', () => {
    const rng = new Prng('xarray-scale');
    const xa = new XArray<number>();
    const map = new Map<number, number>();
    for (let step = 0; step < 50_000; step++) {
      const i = rng.int(4) === 0 ? rng.int(2 ** 53) : rng.int(20_000);
      if (rng.int(3) === 0) {
        assert.equal(xa.erase(i), map.get(i));
        map.delete(i);
      } else {
        assert.equal(xa.store(i, step), map.get(i));
        map.set(i, step);
      }
    }
    xa.checkInvariants();
    assert.equal(xa.size, map.size);
    assert.deepEqual(
      [...xa],
      [...map.entries()].sort((a, b) => a[0] - b[0]),
    );
  });
});
