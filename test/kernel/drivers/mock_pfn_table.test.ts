import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MockPfnTable } from '../../../src/kernel/drivers/iommufd_selftest.ts';

/** MockPfnTable must behave exactly like the Map<number, number> it replaced, bulk paths included. */
void describe('MockPfnTable', () => {
  void it('matches a Map under random get/set/delete and run fills/erases', () => {
    const key = fc.oneof(
      fc.integer({ min: 0, max: 20_000 }),
      fc.integer({ min: 2 ** 32 - 10, max: 2 ** 32 + 10 }),
      fc.constantFrom(-1, 0.5, 4095, 4096, 8191),
    );
    const value = fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), fc.constantFrom(-3, 1.5));
    const op = fc.oneof(
      fc.record({ t: fc.constant('set' as const), k: key, v: value }),
      fc.record({ t: fc.constant('del' as const), k: key }),
      fc.record({
        t: fc.constant('fill' as const),
        k: fc.integer({ min: 0, max: 20_000 }),
        n: fc.integer({ min: 1, max: 9000 }),
        v: fc.integer({ min: 0, max: 2 ** 30 }),
        f: fc.constantFrom(0, 4),
      }),
      fc.record({
        t: fc.constant('erase' as const),
        k: fc.integer({ min: 0, max: 20_000 }),
        n: fc.integer({ min: 1, max: 9000 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const t = new MockPfnTable();
        const m = new Map<number, number>();
        const probe = new Set<number>();
        for (const o of ops) {
          switch (o.t) {
            case 'set':
              t.set(o.k, o.v);
              m.set(o.k, o.v);
              probe.add(o.k);
              break;
            case 'del':
              assert.equal(t.delete(o.k), m.delete(o.k));
              probe.add(o.k);
              break;
            case 'fill': {
              const existing: number[] = [];
              const ok = t.fillRun(o.k, o.n, o.v, o.f, (i) => existing.push(i));
              const expected: number[] = [];
              if (ok) {
                for (let i = 0; i < o.n; i++) {
                  if (m.has(o.k + i)) expected.push(i);
                  m.set(o.k + i, o.v + 8 * i + o.f);
                }
              }
              assert.deepEqual(existing, expected);
              probe
                .add(o.k)
                .add(o.k + o.n - 1)
                .add(o.k + o.n);
              break;
            }
            case 'erase': {
              const erased = t.eraseRun(o.k, o.n);
              if (erased >= 0) {
                let e = 0;
                while (e < o.n && m.delete(o.k + e)) e++;
                assert.equal(erased, e);
              }
              probe.add(o.k).add(o.k + o.n - 1);
              break;
            }
          }
          assert.equal(t.size, m.size);
          for (const k of probe) {
            assert.equal(t.get(k), m.get(k));
            assert.equal(t.has(k), m.has(k));
          }
        }
        for (const [k, v] of m) assert.equal(t.get(k), v);
      }),
      { numRuns: 200 },
    );
  });
});
