import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sideTable, Snapshot, SnapshotError } from '../../src/lib/snapshot.ts';

/** A structural description of a graph with object identities numbered in visit order. */
function describeGraph(root: unknown, table: WeakMap<object, unknown>): string {
  const ids = new Map<object, number>();
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const known = ids.get(v);
    if (known !== undefined) return { ref: known };
    ids.set(v, ids.size);
    const side = table.has(v) ? walk(table.get(v)) : undefined;
    if (v instanceof Uint8Array) return { bytes: [...v] };
    if (v instanceof Map) return { map: [...v].map(([a, b]) => [walk(a), walk(b)]), side };
    if (v instanceof Set) return { set: [...v].map(walk), side };
    if (Array.isArray(v)) return { array: v.map(walk), side };
    return { object: Object.entries(v).map(([k, x]) => [k, walk(x)]), side };
  };
  return JSON.stringify(walk(root));
}

type Node = Record<string, unknown>;

/** Mutations applied after the capture, by a script of small numbers. */
function mutate(
  nodes: Node[],
  extra: Map<number, number>,
  bytes: Uint8Array,
  arr: unknown[],
  side: WeakMap<object, unknown>,
  ops: number[][],
): void {
  for (const [kind, a, b] of ops) {
    const n = nodes[a % nodes.length];
    const m = nodes[b % nodes.length];
    switch (kind % 9) {
      case 0:
        n[`k${b % 3}`] = b;
        break;
      case 1:
        n[`k${b % 3}`] = m;
        break;
      case 2:
        Reflect.deleteProperty(n, `k${b % 3}`);
        break;
      case 3:
        n[`k${b % 3}`] = { fresh: b, back: n };
        break;
      case 4:
        extra.set(a % 5, b);
        break;
      case 5:
        extra.delete(a % 5);
        break;
      case 6:
        bytes[a % bytes.length] = b & 0xff;
        break;
      case 7:
        arr.push(m);
        if (b % 2 === 0) arr.splice(0, 1);
        break;
      case 8:
        if (b % 2 === 0) side.set(n, { tag: b });
        else side.delete(n);
        break;
    }
  }
}

const script = fc.array(
  fc.tuple(fc.nat(8), fc.nat(20), fc.nat(300)).map((t) => [...t]),
  { maxLength: 40 },
);

describe('Snapshot', () => {
  it('restores every object it captured to its captured contents, in place', () => {
    fc.assert(
      fc.property(script, script, (before, after) => {
        const side = sideTable<object, unknown>();
        const nodes: Node[] = Array.from({ length: 6 }, (_, i) => ({ i }));
        const extra = new Map<number, number>();
        const bytes = new Uint8Array(8);
        const arr: unknown[] = [];
        const root = { nodes, extra, bytes, arr, set: new Set(nodes.slice(0, 3)) };
        mutate(nodes, extra, bytes, arr, side, before);
        const picture = describeGraph(root, side);
        const kept = [...nodes];
        const snap = new Snapshot([root]);
        for (let round = 0; round < 2; round++) {
          mutate(nodes, extra, bytes, arr, side, after);
          snap.restore();
          assert.equal(describeGraph(root, side), picture);
          // Identity is kept: the same objects, not copies.
          assert.ok(root.nodes === nodes && nodes.every((n, i) => n === kept[i]));
        }
        snap.release();
      }),
      { numRuns: 300, seed: 18 },
    );
  });

  it('restores a long array of mostly one value (filled, then the others written) exactly', () => {
    const value = fc.oneof(
      fc.constant(null),
      fc.constant(undefined),
      fc.constant(0),
      fc.constant(-0),
      fc.constant(Number.NaN),
      fc.nat(3),
    );
    const op = fc.tuple(fc.nat(3), fc.nat(80), value);
    fc.assert(
      fc.property(
        fc.array(value, { minLength: 30, maxLength: 80 }),
        fc.array(op, { maxLength: 20 }),
        fc.nat(2),
        (start, ops, fillWith) => {
          const objs = [{ a: 1 }, { b: 2 }];
          // Mostly one value, some objects, and maybe a hole.
          const arr: unknown[] = start.map((v, i) =>
            i % 7 === 3 ? objs[i % 2] : fillWith === 0 ? null : fillWith === 1 ? v : 0,
          );
          // A hole (what `delete` leaves).
          if (arr.length > 40) Reflect.deleteProperty(arr, 40);
          // The elements as read (a hole reads, and comes back, as undefined, as from any restore).
          const kept = [...arr];
          const snap = new Snapshot([{ arr }]);
          for (let round = 0; round < 2; round++) {
            for (const [kind, i, v] of ops) {
              if (kind === 0) arr[i] = v;
              else if (kind === 1) arr.push(objs[i % 2]);
              else if (kind === 2) arr.length = Math.min(arr.length, i);
              else arr[i % Math.max(1, arr.length)] = objs[0];
            }
            snap.restore();
            assert.equal(arr.length, kept.length);
            // The same values, -0, NaN and the identity of objects told apart.
            arr.forEach((v, i) => {
              assert.ok(Object.is(v, kept[i]), `element ${i}: ${String(v)} for ${String(kept[i])}`);
            });
          }
          snap.release();
        },
      ),
      { numRuns: 300, seed: 23 },
    );
  });

  it('puts back the bytes of every typed array and ArrayBuffer it captured, views of one buffer too', () => {
    const buf = new ArrayBuffer(16);
    const whole = new Uint8Array(buf);
    whole.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    const words = new Uint32Array(buf, 4, 2);
    const doubles = Float64Array.of(1.5, -0, Number.NaN);
    const empty = new Int32Array(0);
    const before = [[...whole], [...words], [...doubles]];
    const snap = new Snapshot([{ buf, words, doubles, empty, again: whole }]);
    for (let round = 0; round < 2; round++) {
      whole.fill(0xee);
      words[1] = 7;
      doubles.set([2, 3, 4]);
      snap.restore();
      assert.deepEqual([[...whole], [...words], [...doubles]], before);
      assert.ok(Object.is(doubles[1], -0));
    }
    snap.release();
  });

  it('snapshots taken alongside each other restore in any order (checkpoints)', () => {
    fc.assert(
      fc.property(script, script, script, fc.array(fc.nat(2), { maxLength: 8 }), (a, b, c, order) => {
        const side = sideTable<object, unknown>();
        const nodes: Node[] = Array.from({ length: 6 }, (_, i) => ({ i }));
        const extra = new Map<number, number>();
        const bytes = new Uint8Array(8);
        const arr: unknown[] = [];
        const root = { nodes, extra, bytes, arr };
        const step = (ops: number[][]): void => {
          mutate(nodes, extra, bytes, arr, side, ops);
        };
        const pictures: string[] = [];
        const snaps: Snapshot[] = [];
        for (const ops of [a, b, c]) {
          step(ops);
          pictures.push(describeGraph(root, side));
          snaps.push(new Snapshot([root], [], { alongside: true }));
        }
        for (const k of order) {
          snaps[k].restore();
          assert.equal(describeGraph(root, side), pictures[k]);
          // Moving on from there is undone by the next restore, whichever it is.
          step(c);
        }
        assert.ok(snaps.every((x) => x.valid));
        new Snapshot([{}]).release();
        assert.ok(
          snaps.every((x) => !x.valid),
          'a capture not alongside disarms them all',
        );
      }),
      { numRuns: 200, seed: 19 },
    );
  });

  it('captures an object that holds a side table as a field, with the entries of what it walked', () => {
    const table = sideTable<object, number>();
    const key = { k: 1 };
    const holder = { table, key };
    table.set(key, 1);
    const snap = new Snapshot([holder]);
    table.set(key, 2);
    snap.restore();
    assert.equal(table.get(key), 1);
    assert.equal(holder.table, table);
    snap.release();
  });

  it('refuses a state that holds a generator or an untracked WeakMap', () => {
    const gen = (function* () {
      yield 1;
    })();
    assert.throws(() => new Snapshot([{ thread: gen }]), SnapshotError);
    assert.throws(() => new Snapshot([{ table: new WeakMap() }]), SnapshotError);
  });

  it('drops a symbol or a non-enumerable key added since, and puts back a key deleted and re-added', () => {
    const tag = Symbol('tag');
    const plain: Record<PropertyKey, unknown> = { a: 1, b: 2 };
    const hidden: Record<PropertyKey, unknown> = { a: 1 };
    Object.defineProperty(hidden, 'h', { value: 1, writable: true, enumerable: false, configurable: true });
    const snap = new Snapshot([{ plain, hidden }]);
    plain[tag] = 'x';
    Object.defineProperty(plain, 'secret', { value: 3, enumerable: false, configurable: true });
    Object.defineProperty(hidden, 'more', { value: 4, enumerable: false, configurable: true });
    snap.restore();
    assert.deepEqual(Reflect.ownKeys(plain), ['a', 'b']);
    assert.deepEqual(Reflect.ownKeys(hidden), ['a', 'h']);
    delete plain.a;
    plain.a = 5;
    snap.restore();
    assert.deepEqual(Object.entries(plain), [
      ['a', 1],
      ['b', 2],
    ]);
    snap.release();
  });

  it('puts back the prototype of an object, with its keys as captured or not', () => {
    class Base {
      kind = 'base';
    }
    const other = { kind: 'other' };
    const kept = new Base();
    const rekeyed = new Base();
    const snap = new Snapshot([{ kept, rekeyed }]);
    for (let round = 0; round < 2; round++) {
      Object.setPrototypeOf(kept, other);
      kept.kind = 'changed';
      Object.setPrototypeOf(rekeyed, null);
      (rekeyed as unknown as Record<string, unknown>).added = 1;
      snap.restore();
      assert.equal(Object.getPrototypeOf(kept), Base.prototype);
      assert.equal(Object.getPrototypeOf(rekeyed), Base.prototype);
      assert.equal(kept.kind, 'base');
      assert.deepEqual(Reflect.ownKeys(rekeyed), ['kind']);
    }
    snap.release();
  });

  it('puts back the named and symbol-keyed properties an array had at the capture', () => {
    const tag = Symbol('tag');
    type Named = unknown[] & Record<PropertyKey, unknown>;
    const arr = [1, 2, 3] as unknown as Named;
    arr.name = 'first';
    arr[tag] = 'x';
    // A hole (what `delete` leaves) before the named property.
    const holey = [1, 2, 3] as unknown as Named;
    Reflect.deleteProperty(holey, 1);
    holey.name = 'holey';
    const snap = new Snapshot([{ arr, holey }]);
    for (let round = 0; round < 2; round++) {
      arr.name = 'second';
      arr[tag] = 'y';
      arr.push(4);
      arr[0] = 9;
      holey.name = 'other';
      holey[1] = 2;
      snap.restore();
      assert.deepEqual([...arr], [1, 2, 3]);
      assert.equal(arr.name, 'first');
      assert.equal(arr[tag], 'x');
      assert.equal(holey.name, 'holey');
      assert.equal(holey.length, 3);
    }
    snap.release();
  });

  it('puts back values under keys that are not identifiers, and objects of one shape apart', () => {
    const odd: Record<string, unknown> = {
      'a"b': 1,
      'back\\slash': 2,
      'line\nbreak': 3,
      '\u2028': 4,
      '0': 5,
      x: 6,
    };
    const twinA = { p: 1, q: 'a' };
    const twinB = { p: 2, q: 'b' };
    const snap = new Snapshot([{ odd, twinA, twinB }]);
    for (const k of Object.keys(odd)) odd[k] = `changed ${k}`;
    twinA.p = 10;
    twinB.q = 'z';
    snap.restore();
    assert.deepEqual(Object.entries(odd), [
      ['0', 5],
      ['a"b', 1],
      ['back\\slash', 2],
      ['line\nbreak', 3],
      ['\u2028', 4],
      ['x', 6],
    ]);
    assert.deepEqual(twinA, { p: 1, q: 'a' });
    assert.deepEqual(twinB, { p: 2, q: 'b' });
    snap.release();
  });

  it('puts back the order of Map and Set entries, and tells -0 from 0 in values and keys', () => {
    const m = new Map<unknown, unknown>([
      ['a', 1],
      ['b', -0],
      [NaN, 'n'],
    ]);
    const s = new Set<unknown>([1, 2, 0]);
    const o: Record<string, unknown> = { z: 0, n: NaN };
    const arr: unknown[] = [1, 2, 3];
    const snap = new Snapshot([{ m, s, o, arr }]);
    // The same entries in another order.
    m.delete('a');
    m.set('a', 1);
    s.delete(1);
    s.add(1);
    snap.restore();
    assert.deepEqual([...m.keys()], ['a', 'b', NaN]);
    assert.deepEqual([...s], [1, 2, 0]);
    // The same keys, a value that differs only in its sign.
    m.set('b', 0);
    o.z = -0;
    s.delete(0);
    s.add(-0);
    snap.restore();
    assert.ok(Object.is(m.get('b'), -0));
    assert.ok(Object.is(o.z, 0));
    assert.ok(Number.isNaN(o.n));
    // An array that shrank, and one that grew.
    arr.length = 1;
    snap.restore();
    assert.deepEqual(arr, [1, 2, 3]);
    arr.push(4);
    snap.restore();
    assert.deepEqual(arr, [1, 2, 3]);
    snap.release();
  });

  it('is no longer valid once another snapshot was captured', () => {
    const a = new Snapshot([{ x: 1 }]);
    assert.equal(a.valid, true);
    const b = new Snapshot([{ y: 1 }]);
    assert.equal(a.valid, false);
    assert.equal(b.valid, true);
    assert.throws(() => {
      a.restore();
    }, SnapshotError);
    b.release();
  });
});

describe('side tables', () => {
  it('hold all the per-object state the kernel, the scheduler and the oracles keep off an object', () => {
    // A plain WeakMap there would escape the snapshot the explorer restores between schedules.
    const root = fileURLToPath(new URL('../../src/', import.meta.url));
    const offenders: string[] = [];
    for (const dir of ['kernel', 'sched', 'lib', 'oracles']) {
      for (const f of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })) {
        if (!f.endsWith('.ts')) continue;
        const text = readFileSync(join(root, dir, f), 'utf8');
        if (/new Weak(Map|Set)\b/.test(text) && !f.endsWith('snapshot.ts')) offenders.push(`${dir}/${f}`);
      }
    }
    assert.deepEqual(offenders, []);
  });
});
