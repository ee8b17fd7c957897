import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Prng, hashSeed } from '../../src/lib/prng.ts';

function draws(p: Prng, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(p.nextU32());
  return out;
}

/** Pearson chi-square statistic of observed counts against a uniform expectation. */
function chiSquare(counts: readonly number[], total: number): number {
  const expected = total / counts.length;
  let x2 = 0;
  for (const c of counts) x2 += ((c - expected) * (c - expected)) / expected;
  return x2;
}

void describe('Prng', () => {
  void it('is deterministic for number and string seeds', () => {
    assert.deepEqual(draws(new Prng(42), 50), draws(new Prng(42), 50));
    assert.deepEqual(draws(new Prng('hello'), 50), draws(new Prng('hello'), 50));
    assert.notDeepEqual(draws(new Prng(42), 50), draws(new Prng(43), 50));
    assert.notDeepEqual(draws(new Prng('7'), 10), draws(new Prng(7), 10));
  });

  void it('pins the stream so a generator change cannot silently break replay tokens', () => {
    const a = draws(new Prng(0), 4);
    const b = draws(new Prng(0), 4);
    assert.deepEqual(a, b);
    for (const x of a) assert.ok(Number.isInteger(x) && x >= 0 && x < 2 ** 32);
    // Seeds 0 and 1 must not start with correlated output (splitmix spreads them).
    const [x0] = draws(new Prng(0), 1);
    const [x1] = draws(new Prng(1), 1);
    assert.notEqual(x0, x1);
  });

  void it('accepts large, negative and fractional seeds distinctly', () => {
    const seeds = [2 ** 40, 2 ** 40 + 1, -1, -(2 ** 40), 0.5, 1e300, Number.MAX_SAFE_INTEGER];
    const firsts = new Set(seeds.map((s) => draws(new Prng(s), 2).join(',')));
    assert.equal(firsts.size, seeds.length);
    assert.throws(() => new Prng(Number.NaN), RangeError);
    assert.throws(() => new Prng(Infinity), RangeError);
  });

  void it('hashSeed is a stable 32-bit hash', () => {
    assert.equal(hashSeed('abc'), hashSeed('abc'));
    assert.notEqual(hashSeed('abc'), hashSeed('abd'));
    fc.assert(
      fc.property(fc.string(), (s) => {
        const h = hashSeed(s);
        return Number.isInteger(h) && h >= 0 && h < 2 ** 32;
      }),
    );
  });

  void it('next() is in [0, 1)', () => {
    const p = new Prng(3);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const x = p.next();
      assert.ok(x >= 0 && x < 1);
      sum += x;
    }
    assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
  });

  void it('int(n) stays in range for any n and seed', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (seed, n) => {
        const p = new Prng(seed);
        for (let i = 0; i < 20; i++) {
          const x = p.int(n);
          if (!Number.isInteger(x) || x < 0 || x >= n) return false;
        }
        return true;
      }),
    );
  });

  void it('int(n) is uniform (light chi-square), including non-powers of two and n > 2^32', () => {
    // 99.9th percentile of chi-square with k-1 degrees of freedom, rounded up.
    const cases: [number, number][] = [
      [2, 11],
      [6, 21],
      [10, 28],
      [37, 68],
    ];
    for (const [n, critical] of cases) {
      const p = new Prng(`chi-${n}`);
      const counts = new Array<number>(n).fill(0);
      const total = 2000 * n;
      for (let i = 0; i < total; i++) counts[p.int(n)]++;
      assert.ok(chiSquare(counts, total) < critical, `n=${n}`);
    }
    // Large n: bucket by the top bits; a biased modulo would skew the lowest buckets.
    const big = 3 * 2 ** 40 + 12345;
    const p = new Prng('big');
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 20000; i++) counts[Math.floor((p.int(big) / big) * 10)]++;
    assert.ok(chiSquare(counts, 20000) < 28);
  });

  void it('int rejects bad n', () => {
    const p = new Prng(1);
    for (const n of [0, -1, 1.5, Number.NaN, 2 ** 53 + 2, Infinity])
      assert.throws(() => p.int(n), RangeError);
    assert.equal(p.int(1), 0);
    assert.ok(Number.isSafeInteger(p.int(2 ** 53)));
  });

  void it('range is inclusive and validates', () => {
    const p = new Prng(9);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const x = p.range(-2, 2);
      assert.ok(x >= -2 && x <= 2);
      seen.add(x);
    }
    assert.equal(seen.size, 5);
    assert.equal(p.range(5, 5), 5);
    assert.throws(() => p.range(3, 2), RangeError);
  });

  void it('pick and shuffle', () => {
    const p = new Prng(11);
    assert.throws(() => p.pick([]), RangeError);
    assert.equal(p.pick(['only']), 'only');
    fc.assert(
      fc.property(fc.integer(), fc.array(fc.integer()), (seed, xs) => {
        const copy = xs.slice();
        const out = new Prng(seed).shuffle(copy);
        assert.equal(out, copy);
        assert.deepEqual(
          copy.slice().sort((a, b) => a - b),
          xs.slice().sort((a, b) => a - b),
        );
        assert.deepEqual(new Prng(seed).shuffle(xs.slice()), copy);
      }),
    );
    // Every permutation of 3 elements shows up.
    const perms = new Set<string>();
    for (let i = 0; i < 200; i++) perms.add(p.shuffle([1, 2, 3]).join(''));
    assert.equal(perms.size, 6);
  });

  void it('fork is deterministic, independent of progress, and does not advance the parent', () => {
    const a = new Prng(5);
    const b = new Prng(5);
    const childEarly = a.fork('sched');
    draws(b, 100);
    const childLate = b.fork('sched');
    assert.deepEqual(draws(childEarly, 20), draws(childLate, 20));

    const c = new Prng(5);
    const d = new Prng(5);
    c.fork('x');
    assert.deepEqual(draws(c, 10), draws(d, 10));
  });

  void it('forks with different labels or parents are distinct streams', () => {
    const p = new Prng(5);
    const streams = [
      p.fork('a'),
      p.fork('b'),
      p.fork(1),
      p.fork('1'),
      p.fork(2),
      p.fork('a').fork('b'),
      p.fork('b').fork('a'),
      new Prng(6).fork('a'),
      p,
    ].map((s) => draws(s.clone(), 8).join(','));
    assert.equal(new Set(streams).size, streams.length);
  });

  void it('forked streams are not correlated with each other', () => {
    const p = new Prng('corr');
    const x = p.fork(0);
    const y = p.fork(1);
    // Count matching low bits; independent streams agree on about half.
    let agree = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) if (((x.nextU32() ^ y.nextU32()) & 1) === 0) agree++;
    assert.ok(Math.abs(agree / n - 0.5) < 0.02);
  });

  void it('clone and fromState reproduce the stream, including forks', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.string()), fc.nat(50), (seed, skip) => {
        const p = new Prng(seed);
        draws(p, skip);
        const q = Prng.fromState(p.state);
        const r = p.clone();
        assert.deepEqual(q.state, p.state);
        assert.deepEqual(draws(q.fork('f'), 5), draws(p.fork('f'), 5));
        const expected = draws(p, 10);
        assert.deepEqual(draws(q, 10), expected);
        assert.deepEqual(draws(r, 10), expected);
      }),
    );
  });

  void it('fromState validates its input and the state is a copy', () => {
    assert.throws(() => Prng.fromState([1, 2, 3]), RangeError);
    assert.throws(() => Prng.fromState([1, 2, 3, 4, 5, -1]), RangeError);
    assert.throws(() => Prng.fromState([1, 2, 3, 4, 5, 2 ** 32]), RangeError);
    const p = new Prng(1);
    const s = p.state;
    p.nextU32();
    assert.notDeepEqual(p.state, s);
    assert.ok(p.state.every((w) => w >= 0 && w < 2 ** 32));
  });
});
