import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PageContents } from '../../../src/kernel/mm/page_contents.ts';
import { PAGE_SIZE } from '../../../src/lib/units.ts';

type Op =
  | { kind: 'write'; pfn: number; offset: number; bytes: number[] }
  | { kind: 'copy'; dst: number; src: number }
  | { kind: 'delete'; pfn: number }
  | { kind: 'get'; pfn: number };

const PFNS = 6;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc
    .record({
      pfn: fc.nat(PFNS - 1),
      // Mostly small writes near a few offsets, so records fill, overlap and overflow.
      offset: fc.oneof(fc.nat(24), fc.nat(PAGE_SIZE - 64)),
      bytes: fc.oneof(
        fc.array(fc.nat(255), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(255), { minLength: 7, maxLength: 40 }),
      ),
    })
    .map((r) => ({ kind: 'write' as const, ...r })),
  fc.record({ dst: fc.nat(PFNS - 1), src: fc.nat(PFNS - 1) }).map((r) => ({ kind: 'copy' as const, ...r })),
  fc.record({ pfn: fc.nat(PFNS - 1) }).map((r) => ({ kind: 'delete' as const, ...r })),
  fc.record({ pfn: fc.nat(PFNS - 1) }).map((r) => ({ kind: 'get' as const, ...r })),
);

function readAll(c: PageContents, pfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE).fill(0xee);
  c.read(pfn, 0, out, 0, PAGE_SIZE);
  return out;
}

/** The page read one byte at a time (a trace's loads: the one-byte paths of read()). */
function readBytewise(c: PageContents, pfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE).fill(0xee);
  for (let off = 0; off < PAGE_SIZE; off++) c.read(pfn, off, out, off, 1);
  return out;
}

/** The page read with byteAt(), one byte at a time (a trace replay's loads). */
function readByteAt(c: PageContents, pfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE).fill(0xee);
  for (let off = 0; off < PAGE_SIZE; off++) out[off] = c.byteAt(pfn, off);
  return out;
}

/** The first offset of each stretch of the page a sparse record's head word has a bit for. */
function stretchStarts(): number[] {
  const starts = [0];
  for (let off = 1; off < PAGE_SIZE; off++)
    if ((off * 27) >>> 12 !== ((off - 1) * 27) >>> 12) starts.push(off);
  return starts;
}

describe('PageContents', () => {
  it('a page never written reads as zeros and stores nothing', () => {
    const c = new PageContents();
    assert.equal(c.has(7), false);
    assert.equal(c.get(7), undefined);
    assert.deepEqual(readAll(c, 7), new Uint8Array(PAGE_SIZE));
    assert.equal(c.size, 0);
    assert.equal(c.storedBytes, 0);
  });

  it('a one-byte write keeps a small record; writing many bytes moves the page to a whole slot', () => {
    const c = new PageContents();
    c.write(3, 100, Uint8Array.of(9), 0, 1);
    assert.equal(c.size, 1);
    assert.ok(c.storedBytes < PAGE_SIZE);
    const one = new Uint8Array(3);
    c.read(3, 99, one, 0, 3);
    assert.deepEqual(one, Uint8Array.of(0, 9, 0));
    c.write(3, 200, new Uint8Array(64).fill(5), 0, 64);
    assert.equal(c.storedBytes, PAGE_SIZE);
    const page = readAll(c, 3);
    assert.equal(page[100], 9);
    assert.equal(page[200], 5);
    assert.equal(page[263], 5);
    assert.equal(page[264], 0);
  });

  it('a page holding one byte takes no storage until a second byte comes', () => {
    const c = new PageContents();
    c.write(2, 4095, Uint8Array.of(0, 0x5a), 1, 1);
    c.write(2, 4095, Uint8Array.of(0xa5), 0, 1);
    assert.equal(c.size, 1);
    assert.equal(c.storedBytes, 0);
    const tail = new Uint8Array(2).fill(0xee);
    c.read(2, 4094, tail, 0, 2);
    assert.deepEqual(tail, Uint8Array.of(0, 0xa5));
    c.copy(5, 2);
    assert.equal(c.size, 2);
    assert.equal(c.storedBytes, 0);
    c.write(2, 0, Uint8Array.of(3), 0, 1);
    assert.equal(c.storedBytes, 128);
    assert.equal(readAll(c, 2)[0], 3);
    assert.equal(readAll(c, 2)[4095], 0xa5);
    const whole = c.get(5);
    assert.equal(whole?.[4095], 0xa5);
    assert.equal(c.storedBytes, 128 + PAGE_SIZE);
    assert.equal(c.delete(5), true);
    c.write(6, 7, Uint8Array.of(1), 0, 1);
    assert.equal(c.delete(6), true);
    assert.equal(c.has(6), false);
    assert.equal(c.size, 1);
  });

  it('freed storage is reused zeroed', () => {
    const c = new PageContents();
    c.forWrite(1).fill(0xab);
    c.delete(1);
    assert.deepEqual(c.forWrite(2), new Uint8Array(PAGE_SIZE));
    c.write(4, 0, Uint8Array.of(1, 2, 3), 0, 3);
    c.delete(4);
    c.write(5, 10, Uint8Array.of(7), 0, 1);
    const page = readAll(c, 5);
    assert.equal(page[0], 0);
    assert.equal(page[10], 7);
  });

  it('one-byte stores on both sides of every stretch boundary fill a record, replace its bytes and overflow it', () => {
    const starts = stretchStarts();
    assert.equal(starts.length, 27);
    // Around each boundary: the last byte of a stretch, the first of the next, and the one after.
    const offsets = starts.slice(1).flatMap((b) => [b - 1, b, b + 1]);
    for (let first = 0; first < offsets.length; first += 7) {
      const c = new PageContents();
      const model = new Uint8Array(PAGE_SIZE);
      const order = [...offsets.slice(first), ...offsets.slice(0, first)];
      let stored = 0;
      for (const [j, off] of order.entries()) {
        // A value of 0 is stored too: a recorded zero is still a recorded byte.
        const value = (j * 37) & 0xff;
        c.storeByte(2, off, value);
        model[off] = value;
        stored++;
        // Replacing a recorded byte (the last one, and the first) takes no room of its own.
        c.storeByte(2, off, value ^ 0x5a);
        model[off] = value ^ 0x5a;
        c.storeByte(2, order[0], model[order[0]] ^ 0xff);
        model[order[0]] ^= 0xff;
        assert.equal(c.size, 1);
        // One byte takes no storage, up to 31 a record, then the page gets its slot.
        assert.equal(c.storedBytes, stored === 1 ? 0 : stored <= 31 ? 128 : PAGE_SIZE, `${stored} bytes`);
        assert.deepEqual(readByteAt(c, 2), model);
        assert.deepEqual(readBytewise(c, 2), model);
      }
    }
  });

  it('storeByte() stores what a one-byte write() does, on any page and at any offset', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            pfn: fc.nat(3),
            offset: fc.nat(PAGE_SIZE - 1),
            value: fc.nat(255),
            wide: fc.boolean(),
          }),
        ),
        (stores) => {
          const c = new PageContents();
          const model = new Map<number, Uint8Array>();
          for (const { pfn, offset, value, wide } of stores) {
            // Now and then a two-byte write(), which takes the general path, in between.
            if (wide && offset < PAGE_SIZE - 1) c.write(pfn, offset, Uint8Array.of(value, value), 0, 2);
            else c.storeByte(pfn, offset, value);
            let m = model.get(pfn);
            if (m === undefined) model.set(pfn, (m = new Uint8Array(PAGE_SIZE)));
            m[offset] = value;
            if (wide && offset < PAGE_SIZE - 1) m[offset + 1] = value;
          }
          for (let pfn = 0; pfn < 4; pfn++) {
            assert.deepEqual(readByteAt(c, pfn), model.get(pfn) ?? new Uint8Array(PAGE_SIZE));
            assert.deepEqual(readAll(c, pfn), model.get(pfn) ?? new Uint8Array(PAGE_SIZE));
          }
          assert.equal(c.size, model.size);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('behaves like one 4 KiB array per page under any sequence of writes, copies, deletes and gets', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const c = new PageContents();
        const model = new Map<number, Uint8Array>();
        for (const op of ops) {
          switch (op.kind) {
            case 'write': {
              const src = Uint8Array.from([0, ...op.bytes]);
              c.write(op.pfn, op.offset, src, 1, op.bytes.length);
              let m = model.get(op.pfn);
              if (m === undefined) model.set(op.pfn, (m = new Uint8Array(PAGE_SIZE)));
              m.set(op.bytes, op.offset);
              break;
            }
            case 'copy': {
              c.copy(op.dst, op.src);
              const m = model.get(op.src);
              if (m === undefined) model.delete(op.dst);
              else model.set(op.dst, m.slice());
              break;
            }
            case 'delete':
              assert.equal(c.delete(op.pfn), model.delete(op.pfn));
              break;
            case 'get': {
              const d = c.get(op.pfn);
              assert.deepEqual(d, model.get(op.pfn));
              break;
            }
          }
          assert.equal(c.size, model.size);
          for (let pfn = 0; pfn < PFNS; pfn++) {
            assert.equal(c.has(pfn), model.has(pfn));
            assert.deepEqual(readAll(c, pfn), model.get(pfn) ?? new Uint8Array(PAGE_SIZE));
            assert.deepEqual(readBytewise(c, pfn), model.get(pfn) ?? new Uint8Array(PAGE_SIZE));
            assert.deepEqual(readByteAt(c, pfn), model.get(pfn) ?? new Uint8Array(PAGE_SIZE));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
