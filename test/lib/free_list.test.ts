import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FreeList } from '../../src/lib/free_list.ts';

/** The list as an array used as a stack: the high run pushed first, highest first, then the low run. */
function naive(lo: number, loEnd: number, hi: number, hiEnd: number, step: number): number[] {
  const a: number[] = [];
  for (let f = hiEnd - step; f >= hi; f -= step) a.push(f);
  for (let f = loEnd - step; f >= lo; f -= step) a.push(f);
  return a;
}

describe('FreeList', () => {
  it('hands out the low run, then the high run, lowest first', () => {
    const l = new FreeList(3, 6, 10, 12, 1);
    assert.equal(l.length, 5);
    const got: (number | undefined)[] = [];
    for (let i = 0; i < 6; i++) got.push(l.pop());
    assert.deepEqual(got, [3, 4, 5, 10, 11, undefined]);
    assert.equal(l.length, 0);
  });

  it('takes frames given back before frames never handed out, the last given back first', () => {
    const l = new FreeList(0, 1024, 1024, 1024, 512);
    assert.equal(l.pop(), 0);
    l.push(7);
    l.push(9);
    assert.equal(l.length, 3);
    assert.deepEqual([l.pop(), l.pop(), l.pop(), l.pop()], [9, 7, 512, undefined]);
  });

  it('costs nothing for a huge range', () => {
    const l = new FreeList(2 ** 40, 2 ** 41, 2 ** 41, 2 ** 41, 1);
    assert.equal(l.length, 2 ** 40);
    assert.equal(l.pop(), 2 ** 40);
  });

  it('rejects runs that are not whole steps', () => {
    assert.throws(() => new FreeList(0, 3, 3, 3, 2), RangeError);
    assert.throws(() => new FreeList(4, 0, 0, 0, 1), RangeError);
    assert.throws(() => new FreeList(0, 0, 0, 0, 0), RangeError);
  });

  it('behaves as the array it replaces, under any pushes and pops', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.nat({ max: 50 }),
        fc.nat({ max: 6 }),
        fc.nat({ max: 6 }),
        fc.nat({ max: 6 }),
        fc.array(fc.option(fc.nat({ max: 1000 }), { nil: undefined }), { maxLength: 60 }),
        (log2, base, nLo, gap, nHi, ops) => {
          const step = 2 ** log2;
          const lo = base * step;
          const loEnd = lo + nLo * step;
          const hi = loEnd + gap * step;
          const hiEnd = hi + nHi * step;
          const l = new FreeList(lo, loEnd, hi, hiEnd, step);
          const a = naive(lo, loEnd, hi, hiEnd, step);
          for (const op of ops) {
            if (op === undefined) assert.equal(l.pop(), a.pop());
            else {
              l.push(op);
              a.push(op);
            }
            assert.equal(l.length, a.length);
          }
        },
      ),
    );
  });
});
