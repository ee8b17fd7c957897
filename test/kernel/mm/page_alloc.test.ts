/*
 * The frame allocator: a huge page comes from the free 2 MiB block highest in RAM, and an
 * allocation fails when, and only when, no frame (or no free block) is left. A snapshot of it
 * (which copies and writes back only the frames ever used) puts every frame back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Errno } from '../../../src/kernel/errno.ts';
import { FaultInjector } from '../../../src/kernel/fault_inject.ts';
import { PhysMem } from '../../../src/kernel/mm/page_alloc.ts';
import { Snapshot } from '../../../src/lib/snapshot.ts';
import { HPAGE_PMD_NR, PAGE_SIZE } from '../../../src/lib/units.ts';

/** The block a huge allocation must take: the highest whole block of RAM all of whose frames are free. */
function highestFreeBlock(phys: PhysMem): number {
  for (let b = Math.floor(phys.ramFrames / HPAGE_PMD_NR) - 1; b >= 0; b--) {
    let free = true;
    for (let pfn = b * HPAGE_PMD_NR; pfn < (b + 1) * HPAGE_PMD_NR && free; pfn++) free = !phys.isUsed(pfn);
    if (free) return b * HPAGE_PMD_NR;
  }
  return -Errno.ENOMEM;
}

function freeFrameCount(phys: PhysMem): number {
  let n = 0;
  for (let pfn = 0; pfn < phys.ramFrames; pfn++) if (!phys.isUsed(pfn)) n++;
  return n;
}

describe('page allocator', () => {
  it('gives a huge page the highest free block, through any order of allocations and frees', () => {
    fc.assert(
      fc.property(
        // RAM of 8 to 12 MiB, now and then not a whole number of 2 MiB blocks.
        fc.integer({ min: 4 * HPAGE_PMD_NR, max: 6 * HPAGE_PMD_NR }),
        fc.array(fc.tuple(fc.constantFrom('small', 'huge', 'free'), fc.nat()), { maxLength: 3000 }),
        (frames, ops) => {
          const phys = new PhysMem(frames * PAGE_SIZE, new FaultInjector());
          const held: number[] = [];
          for (const [op, k] of ops) {
            if (op === 'free') {
              if (held.length === 0) continue;
              const [pfn] = held.splice(k % held.length, 1);
              phys.put(pfn);
            } else if (op === 'huge') {
              const want = highestFreeBlock(phys);
              const got = phys.alloc(9, null);
              assert.equal(got, want);
              if (got >= 0) held.push(got);
            } else {
              const got = phys.alloc(0, null);
              assert.equal(got < 0, freeFrameCount(phys) === 0);
              if (got >= 0) held.push(got);
            }
            assert.equal(phys.freeFrames, freeFrameCount(phys));
          }
        },
      ),
      { numRuns: 40, seed: 23 },
    );
  });

  it('fails a huge page once no block is free throughout, and a page once no frame is free', () => {
    const phys = new PhysMem(8 << 20, new FaultInjector());
    // The zero page and the huge zero page are taken: one whole block and a frame of another.
    const pages: number[] = [];
    for (let pfn = phys.alloc(0, null); pfn >= 0; pfn = phys.alloc(0, null)) pages.push(pfn);
    assert.equal(pages.length, 4 * HPAGE_PMD_NR - 1 - HPAGE_PMD_NR);
    assert.equal(phys.alloc(9, null), -Errno.ENOMEM);
    // Every frame of the block above the zero page's given back but one: still no huge page.
    const block = pages.filter((pfn) => pfn >= HPAGE_PMD_NR && pfn < 2 * HPAGE_PMD_NR);
    for (const pfn of block.slice(1)) phys.put(pfn);
    assert.equal(phys.alloc(9, null), -Errno.ENOMEM);
    phys.put(block[0]);
    assert.equal(phys.alloc(9, null), HPAGE_PMD_NR);
    assert.equal(phys.alloc(0, null), -Errno.ENOMEM);
  });

  it('is put back whole by snapshots taken alongside each other, restored in any order', () => {
    // A picture of every frame: its fields, whether it is free, and its pins.
    const picture = (phys: PhysMem): string =>
      JSON.stringify([
        [...phys.refcount],
        [...phys.mapcount],
        [...phys.flags],
        [...phys.order],
        [...phys.gen],
        [...phys.mapping],
        [...phys.indexLo],
        [...phys.indexHi],
        Array.from({ length: phys.nr }, (_, pfn) => [phys.isUsed(pfn), phys.pinCount(pfn)]),
        phys.freeFrames,
        phys.touchedRanges(),
      ]);
    const op = fc.tuple(fc.constantFrom('small', 'huge', 'free', 'map', 'pin', 'index', 'device'), fc.nat());
    const script = fc.array(op, { maxLength: 200 });
    fc.assert(
      fc.property(script, script, script, fc.array(fc.nat(2), { maxLength: 6 }), (a, b, c, order) => {
        const phys = new PhysMem(6 * HPAGE_PMD_NR * PAGE_SIZE, new FaultInjector());
        let held: number[] = [];
        const run = (ops: [string, number][]): void => {
          for (const [kind, k] of ops) {
            const pfn = held.length > 0 ? held[k % held.length] : -1;
            if (kind === 'small' || kind === 'huge') {
              const got = phys.alloc(kind === 'huge' ? 9 : 0, null);
              if (got >= 0) held.push(got);
            } else if (kind === 'device') {
              // Device memory beyond RAM (the tables grow, now and then into new arrays), its
              // first page taken by its driver.
              if (phys.pagemaps.length >= 6) continue;
              const ref = phys.addDeviceRange(1 + (k % 700), { folioFree() {} });
              phys.initDevicePage(ref.firstPfn);
              held.push(ref.firstPfn);
            } else if (pfn < 0) continue;
            else if (kind === 'free') {
              held = held.filter((x) => x !== pfn);
              phys.addPins(pfn, -phys.pinCount(pfn));
              phys.put(pfn);
            } else if (kind === 'map') phys.mapcount[pfn]++;
            else if (kind === 'pin') phys.addPins(pfn, 1 + (k % 300));
            else phys.setIndex(pfn, k);
          }
        };
        // The frames the allocator hands out next (its free bitmap, which no picture shows).
        const probe = (): number[] => [
          ...Array.from({ length: 40 }, () => phys.alloc(0, null)),
          phys.alloc(9, null),
          phys.alloc(9, null),
        ];
        const pictures: string[] = [];
        const nexts: number[][] = [];
        const helds: number[][] = [];
        const snaps: Snapshot[] = [];
        for (const ops of [a, b, c]) {
          run(ops);
          pictures.push(picture(phys));
          helds.push([...held]);
          const snap = new Snapshot([phys], [], { alongside: true });
          snaps.push(snap);
          nexts.push(probe());
          snap.restore();
        }
        for (const k of order) {
          snaps[k].restore();
          assert.equal(picture(phys), pictures[k]);
          assert.deepEqual(probe(), nexts[k]);
          // Moving on from there (frames allocated beyond what was used so far among them) is
          // undone by the next restore, whichever it is.
          held = [...helds[k]];
          run([...c, ...a.map(([, n]): [string, number] => ['small', n]), ['huge', 0]]);
        }
        for (const s of snaps) s.release();
      }),
      { numRuns: 60, seed: 29 },
    );
  });

  it('checks every frame ever allocated but the huge zero folio (checkedRanges)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0, 9), { maxLength: 40 }), (orders) => {
        const phys = new PhysMem(8 * HPAGE_PMD_NR * PAGE_SIZE, new FaultInjector());
        for (const order of orders) phys.alloc(order, null);
        const inAny = (ranges: [number, number][], pfn: number): boolean =>
          ranges.some(([lo, hi]) => pfn >= lo && pfn < hi);
        const touched = phys.touchedRanges();
        const checked = phys.checkedRanges();
        const zero = phys.hugeZeroPfn;
        for (let pfn = 0; pfn < phys.nr; pfn++) {
          const huge = pfn >= zero && pfn < zero + HPAGE_PMD_NR;
          assert.equal(inAny(checked, pfn), inAny(touched, pfn) && !huge, `pfn ${pfn}`);
        }
      }),
      { numRuns: 50, seed: 31 },
    );
  });
});
