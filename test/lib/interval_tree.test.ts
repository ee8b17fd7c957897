import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IntervalTree, type IntervalNode } from '../../src/lib/interval_tree.ts';
import { Prng } from '../../src/lib/prng.ts';

interface Entry {
  start: number;
  last: number;
  value: number;
  node: IntervalNode<number>;
}

/** The reference: entries in insertion order; a stable sort by start gives the tree's order. */
class NaiveIntervals {
  entries: Entry[] = [];
  sorted(): Entry[] {
    return this.entries.slice().sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }
  overlapping(start: number, last: number): Entry[] {
    return this.sorted().filter((e) => e.start <= last && start <= e.last);
  }
}

type Op =
  | { t: 'ins'; a: number; b: number }
  | { t: 'rm'; i: number }
  | { t: 'q'; a: number; b: number }
  | { t: 'clear' };

function opArb(key: fc.Arbitrary<number>): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ t: fc.constant('ins' as const), a: key, b: key }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('rm' as const), i: fc.nat() }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('q' as const), a: key, b: key }) },
    { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
  );
}

function checkAgainst(tree: IntervalTree<number>, model: NaiveIntervals): void {
  tree.checkInvariants();
  const expected = model.sorted().map((e) => e.node);
  assert.equal(tree.size, expected.length);
  assert.deepEqual([...tree], expected);
  assert.equal(tree.first(), expected[0] ?? null);
  assert.equal(tree.last(), expected.at(-1) ?? null);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(tree.has(expected[i]));
    assert.equal(tree.next(expected[i]), expected[i + 1] ?? null);
    assert.equal(tree.prev(expected[i]), expected[i - 1] ?? null);
  }
}

function checkQuery(tree: IntervalTree<number>, model: NaiveIntervals, a: number, b: number): void {
  const [start, last] = a <= b ? [a, b] : [b, a];
  const expected = model.overlapping(start, last).map((e) => e.node);
  assert.deepEqual([...tree.overlapping(start, last)], expected);
  assert.equal(tree.countOverlapping(start, last), expected.length);
  assert.equal(tree.firstOverlap(start, last), expected[0] ?? null);
  const viaNext: IntervalNode<number>[] = [];
  for (let n = tree.firstOverlap(start, last); n !== null; n = tree.nextOverlap(n, start, last))
    viaNext.push(n);
  assert.deepEqual(viaNext, expected);
  // nextOverlap from an arbitrary member (satisfying start <= last) finds the next overlap after it.
  const all = model.sorted();
  for (const e of all) {
    if (e.start > last) {
      assert.equal(tree.nextOverlap(e.node, start, last), null);
      continue;
    }
    const after = all.slice(all.indexOf(e) + 1).find((f) => f.start <= last && start <= f.last);
    assert.equal(tree.nextOverlap(e.node, start, last), after?.node ?? null);
  }
}

function runOps(ops: readonly Op[], offset: number, scale: number): void {
  const tree = new IntervalTree<number>();
  const model = new NaiveIntervals();
  let counter = 0;
  const key = (k: number): number => offset + k * scale;
  for (const op of ops) {
    switch (op.t) {
      case 'ins': {
        const [s, l] = op.a <= op.b ? [key(op.a), key(op.b)] : [key(op.b), key(op.a)];
        const value = counter++;
        const node = tree.insert(s, l, value);
        assert.equal(node.start, s);
        assert.equal(node.last, l);
        assert.equal(node.value, value);
        model.entries.push({ start: s, last: l, value, node });
        break;
      }
      case 'rm': {
        if (model.entries.length === 0) break;
        const [e] = model.entries.splice(op.i % model.entries.length, 1);
        tree.remove(e.node);
        assert.ok(!tree.has(e.node));
        assert.throws(() => {
          tree.remove(e.node);
        });
        break;
      }
      case 'q':
        checkQuery(tree, model, key(op.a), key(op.b));
        break;
      case 'clear': {
        const old = model.entries;
        tree.clear();
        model.entries = [];
        for (const e of old) assert.ok(!tree.has(e.node));
        break;
      }
    }
    checkAgainst(tree, model);
  }
}

void describe('IntervalTree', () => {
  void it('matches a naive model under random inserts, removes and queries (small keys, many ties)', () => {
    fc.assert(
      fc.property(
        fc.array(opArb(fc.integer({ min: 0, max: 20 })), { maxLength: 120, size: 'max' }),
        (ops) => {
          runOps(ops, 0, 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  void it('matches a naive model with wide keys', () => {
    fc.assert(
      fc.property(
        fc.array(opArb(fc.integer({ min: 0, max: 1_000_000 })), { maxLength: 200, size: 'max' }),
        (ops) => {
          runOps(ops, 0, 1);
        },
      ),
      { numRuns: 100 },
    );
  });

  void it('works with keys near 2^64 (no bit operations on keys)', () => {
    fc.assert(
      fc.property(
        fc.array(opArb(fc.integer({ min: 0, max: 50 })), { maxLength: 100, size: 'max' }),
        (ops) => {
          // Spacing of 2^12 keeps the doubles distinct near 2^64 (their ulp there is 2^12).
          runOps(ops, 2 ** 64 - 2 ** 20, 2 ** 12);
        },
      ),
      { numRuns: 100 },
    );
    const t = new IntervalTree<string>();
    const n = t.insert(2 ** 63, 2 ** 64, 'top');
    t.insert(0, 2 ** 32, 'low');
    assert.equal(t.firstOverlap(2 ** 64, 2 ** 64), n);
    assert.deepEqual(
      [...t.overlapping(2 ** 32, 2 ** 63)].map((x) => x.value),
      ['low', 'top'],
    );
  });

  void it('keeps insertion order among equal starts through rebalancing', () => {
    const t = new IntervalTree<number>();
    const nodes: IntervalNode<number>[] = [];
    for (let i = 0; i < 1000; i++) nodes.push(t.insert(5, 5 + (i % 7), i));
    t.checkInvariants();
    assert.deepEqual(
      [...t].map((n) => n.value),
      nodes.map((n) => n.value),
    );
    for (let i = 0; i < 1000; i += 3) t.remove(nodes[i]);
    t.checkInvariants();
    assert.deepEqual(
      [...t].map((n) => n.value),
      nodes.filter((_, i) => i % 3 !== 0).map((n) => n.value),
    );
  });

  void it('rejects bad intervals and foreign nodes', () => {
    const t = new IntervalTree<null>();
    assert.throws(() => t.insert(5, 4, null), RangeError);
    assert.throws(() => t.insert(Number.NaN, 4, null), RangeError);
    assert.throws(() => t.insert(0, Number.NaN, null), RangeError);
    const other = new IntervalTree<null>();
    const foreign = other.insert(1, 2, null);
    assert.ok(!t.has(foreign));
    assert.throws(() => {
      t.remove(foreign);
    });
    assert.throws(() => t.next(foreign));
    assert.throws(() => t.prev(foreign));
    assert.throws(() => t.nextOverlap(foreign, 0, 10));
    const fake = { start: 1, last: 2, value: null };
    assert.ok(!t.has(fake));
    assert.throws(() => {
      t.remove(fake);
    });
    assert.equal(t.size, 0);
    assert.equal(other.size, 1);
  });

  void it('handles the empty tree and single points', () => {
    const t = new IntervalTree<number>();
    assert.equal(t.first(), null);
    assert.equal(t.last(), null);
    assert.equal(t.firstOverlap(0, Infinity), null);
    assert.deepEqual([...t.overlapping(0, 10)], []);
    assert.deepEqual([...t], []);
    t.checkInvariants();
    const p = t.insert(7, 7, 1);
    assert.equal(t.firstOverlap(7, 7), p);
    assert.equal(t.firstOverlap(6, 6), null);
    assert.equal(t.firstOverlap(8, 8), null);
    assert.equal(t.firstOverlap(-Infinity, Infinity), p);
    // Inclusive bounds: touching counts as overlapping.
    const q = t.insert(8, 10, 2);
    assert.deepEqual([...t.overlapping(7, 8)], [p, q]);
    assert.deepEqual([...t.overlapping(10, 12)], [q]);
    t.clear();
    assert.equal(t.size, 0);
    assert.ok(!t.has(p) && !t.has(q));
    t.checkInvariants();
  });

  void it('allows mutating value and removing the yielded node while iterating', () => {
    const t = new IntervalTree<number>();
    for (let i = 0; i < 50; i++) t.insert(i, i + 2, i);
    for (const n of t.overlapping(10, 20)) {
      n.value = -n.value;
      t.remove(n);
    }
    t.checkInvariants();
    assert.equal(t.size, 50 - 13); // starts 8..20 overlap [10, 20]
    assert.equal(t.countOverlapping(10, 20), 0);
    for (const n of t) t.remove(n);
    assert.equal(t.size, 0);
    t.checkInvariants();
  });

  void it('re-inserting a removed interval creates a new node', () => {
    const t = new IntervalTree<string>();
    const a = t.insert(1, 3, 'a');
    t.remove(a);
    const b = t.insert(a.start, a.last, a.value);
    assert.notEqual(a, b);
    assert.ok(t.has(b) && !t.has(a));
  });

  void it('a removed node stays dead after its storage is reused by a new node', () => {
    const t = new IntervalTree<string>();
    const nodes = Array.from({ length: 40 }, (_, i) => t.insert(i * 10, i * 10 + 5, `n${i}`));
    const dead = nodes.filter((_, i) => i % 2 === 0);
    for (const n of dead) t.remove(n);
    const fresh = Array.from({ length: 30 }, (_, i) => t.insert(i * 7, i * 7 + 1, `f${i}`));
    t.checkInvariants();
    for (const n of dead) {
      assert.ok(!t.has(n));
      assert.throws(() => t.next(n));
      assert.throws(() => {
        t.remove(n);
      });
    }
    for (const n of [...fresh, ...nodes.filter((_, i) => i % 2 === 1)]) assert.ok(t.has(n));
    assert.equal(t.size, 50);
    assert.deepEqual(
      dead.map((n) => [n.start, n.last, n.value]),
      dead.map((_, j) => [j * 20, j * 20 + 5, `n${2 * j}`]),
    );
  });

  void it('queries over 100k nodes visit O(log n + k) nodes, not n', () => {
    const n = 100_000;
    const rng = new Prng('interval-visits');
    const t = new IntervalTree<number>();
    const starts: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = rng.int(1e9);
      starts.push(s);
      t.insert(s, s + rng.int(10_000), i);
    }
    // One interval spanning everything, the classic way to defeat a naive "start in range" search.
    t.insert(0, 2e9, -1);
    t.checkInvariants();
    const logn = Math.log2(n);
    let maxRatio = 0;
    for (let q = 0; q < 500; q++) {
      const s = rng.int(1e9);
      const l = s + rng.int(200_000);
      const k = t.countOverlapping(s, l);
      const visits = t.lastQueryVisits;
      assert.ok(k >= 1);
      maxRatio = Math.max(maxRatio, visits / (2 * logn + 2 * k));
      assert.ok(visits <= 2 * (2 * logn + 2 * k), `k=${k} visits=${visits}`);
    }
    assert.ok(maxRatio > 0);
    // A miss (beyond every interval) is decided at the root.
    assert.equal(t.firstOverlap(3e9, 4e9), null);
    assert.ok(t.lastQueryVisits <= 1);
    // A point query in a dense region.
    t.firstOverlap(starts[0], starts[0]);
    assert.ok(t.lastQueryVisits <= 2 * logn + 2);
  });
});
