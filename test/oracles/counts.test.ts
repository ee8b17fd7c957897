import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { census, checkCounts } from '../../src/oracles/index.ts';
import { System } from '../../src/kernel/system.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/kernel/mm/mman.ts';
import {
  PTE_HUGE,
  PTE_SPECIAL,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isSwapEntry,
  pteNone,
  ptePresent,
} from '../../src/kernel/mm/pgtable.ts';
import { indexAt } from '../../src/lib/pgtable_store.ts';
import { TASK_SIZE } from '../../src/lib/units.ts';

const PAGE = 4096;

function populated(): { sys: System; pfn: number; addr: number } {
  const sys = new System({ ram: 16 * 1024 * 1024, swap: 16 * 1024 * 1024 });
  const p = sys.createProcess('p');
  const addr = sys.mmap(p, 0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.equal(sys.write(p, addr, Uint8Array.of(1)), 1);
  return { sys, pfn: sys.pagemap(p, addr, 1)[0].pfn, addr };
}

describe('page-count oracle', () => {
  it('is silent on a consistent system', () => {
    assert.deepEqual(checkCounts(populated().sys), []);
  });

  it('catches a mapcount that disagrees with the PTEs', () => {
    const { sys, pfn } = populated();
    sys.phys.mapcount[pfn]++;
    const v = checkCounts(sys);
    assert.equal(v.length, 1);
    assert.match(v[0].message, new RegExp(`pfn ${pfn}: mapcount 2 but 1 PTEs`));
  });

  it('catches a refcount below the mappings', () => {
    const { sys, pfn } = populated();
    sys.phys.refcount[pfn] = 0;
    assert.ok(checkCounts(sys).some((x) => x.message.includes(`folio ${pfn}: refcount 0`)));
  });

  it('catches a swap slot whose count disagrees with the entries', () => {
    const { sys } = populated();
    const slot = sys.swap.alloc();
    assert.ok(checkCounts(sys).some((x) => x.message.includes(`swap slot ${slot}`)));
  });

  it('catches a mapped frame that the allocator thinks is free', () => {
    const { sys, pfn } = populated();
    sys.phys.flags[pfn] = 0;
    assert.ok(checkCounts(sys).some((x) => x.message.includes(`free pfn ${pfn}`)));
  });

  it('catches a negative RSS counter', () => {
    const { sys } = populated();
    [...sys.mms][0].rss[1] = -1;
    assert.ok(checkCounts(sys).some((x) => x.message.includes('negative RSS')));
  });

  it('catches a PTE that maps a frame never allocated, high in a big machine', () => {
    const sys = new System();
    const p = sys.createProcess('p');
    const addr = sys.mmap(p, 0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    assert.equal(sys.write(p, addr, Uint8Array.of(1)), 1);
    const leaf = [...sys.mms][0].pgt.pteTable(addr)!;
    const i = (addr / PAGE) % 512;
    const far = sys.phys.ramFrames - 4 * 512;
    assert.equal(sys.phys.isUsed(far), false);
    leaf.words[2 * i + 1] = far;
    assert.ok(checkCounts(sys).some((x) => x.message.includes(`free pfn ${far} is mapped`)));
  });

  it('checks the frames no page table names: an allocated, a free and a device frame', () => {
    const { sys, pfn } = populated();
    const lone = sys.phys.alloc(0, null);
    assert.equal(checkCounts(sys).length, 0);
    sys.phys.mapcount[lone] = 1;
    const free = sys.phys.alloc(0, null);
    sys.phys.put(free);
    assert.equal(sys.phys.isUsed(free), false);
    sys.phys.mapcount[free] = 2;
    const dev = sys.phys.addDeviceRange(64, { folioFree: () => {} }).firstPfn + 5;
    sys.phys.mapcount[dev] = 3;
    sys.phys.mapcount[pfn]++;
    // In frame order, whether the census names the frame or not.
    assert.deepEqual(
      checkCounts(sys).map((x) => x.message),
      [
        `pfn ${pfn}: mapcount 2 but 1 PTEs map it`,
        `pfn ${lone}: mapcount 1 but 0 PTEs map it`,
        `free pfn ${free} is mapped 0 times (mapcount 2)`,
        `pfn ${dev}: mapcount 3 but 0 PTEs map it`,
      ].sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0])),
    );
  });

  it('catches pins beyond the refcount of a frame nothing maps', () => {
    const { sys } = populated();
    const lone = sys.phys.alloc(0, null);
    sys.phys.addPins(lone, 1);
    const v = checkCounts(sys);
    assert.equal(v.length, 1);
    assert.match(
      v[0].message,
      new RegExp(`folio ${lone}: refcount 1 below mappings 0 \\+ cache \\+ pins \\(1024\\)`),
    );
    sys.phys.get(lone, 1024);
    assert.deepEqual(checkCounts(sys), []);
  });

  it('walks only the swap slots handed out: a big device costs nothing until used', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 4 * 1024 * 1024 * 1024 });
    assert.ok(sys.swap.highWater <= 64);
    const slots: number[] = [];
    for (let i = 0; i < 200; i++) slots.push(sys.swap.alloc());
    assert.deepEqual(slots.slice(0, 3), [1, 2, 3]);
    assert.ok(sys.swap.highWater > 200 && sys.swap.highWater <= 512);
    for (const s of slots) if (s !== 150) sys.swap.free(s);
    const v = checkCounts(sys);
    assert.equal(v.length, 1);
    assert.match(v[0].message, /swap slot 150: count 1 but 0 entries/);
    sys.swap.free(150);
    assert.deepEqual(checkCounts(sys), []);
  });

  it('counts the entries PageTableStore.walk() visits, in its order, wherever they are', () => {
    // Entry words of every kind census() tells apart (present, special, swap, device-private and
    // -exclusive PTEs; huge, migration or non-huge PMD entries), from address 0 to the top of
    // user space.
    const entry = fc.record({
      page: fc.oneof(fc.nat(4096), fc.integer({ min: TASK_SIZE / PAGE - 4096, max: TASK_SIZE / PAGE - 1 })),
      huge: fc.boolean(),
      lo: fc.nat(0xffff),
      hi: fc.nat(5000),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), (entries) => {
        const sys = new System({ ram: 16 * 1024 * 1024, swap: 16 * 1024 * 1024 });
        sys.createProcess('p');
        const mm = [...sys.mms][0];
        for (const e of entries) {
          const addr = e.page * PAGE;
          const pmd = mm.pgt.pmdTableAlloc(addr);
          const i = indexAt(addr, 1);
          if (e.huge) {
            if (pmd.children[i] === null)
              mm.pgt.setUpperWords(pmd, i, e.lo | (e.lo % 3 === 0 ? 0 : PTE_HUGE), e.hi);
          } else if (pmd.words[2 * i] === 0 && pmd.words[2 * i + 1] === 0) {
            const leaf = mm.pgt.pteTableAlloc(addr);
            const j = indexAt(addr, 0);
            leaf.words[2 * j] = e.lo;
            leaf.words[2 * j + 1] = e.hi;
          }
        }
        const got = census(sys);
        const want = walkedCensus(sys);
        assert.deepEqual([...got.pte], [...want.pte]);
        assert.deepEqual([...got.pmd], [...want.pmd]);
        assert.deepEqual([...got.swap], [...want.swap]);
      }),
      { numRuns: 200, seed: 41 },
    );
  });
});

/** The page-table part of census(), as a PageTableStore.walk() with a call per table and PMD entry. */
function walkedCensus(sys: System): {
  pte: Map<number, number>;
  pmd: Map<number, number>;
  swap: Map<number, number>;
} {
  const c = {
    pte: new Map<number, number>(),
    pmd: new Map<number, number>(),
    swap: new Map<number, number>(),
  };
  const bump = (m: Map<number, number>, k: number): void => {
    m.set(k, (m.get(k) ?? 0) + 1);
  };
  for (const mm of sys.mms) {
    mm.pgt.walk(
      0,
      mm.taskSize,
      (t) => {
        for (let i = 0; i < 512; i++) {
          const lo = t.words[2 * i];
          const hi = t.words[2 * i + 1];
          if (pteNone(lo, hi)) continue;
          if (ptePresent(lo)) {
            if ((lo & PTE_SPECIAL) !== 0 || sys.phys.isZeroPfn(hi)) continue;
            bump(c.pte, hi);
          } else if (isSwapEntry(lo)) bump(c.swap, hi);
          else if (isDevicePrivateEntry(lo) || isDeviceExclusiveEntry(lo)) bump(c.pte, hi);
        }
      },
      (pmd, i) => {
        const lo = pmd.words[2 * i];
        const hi = pmd.words[2 * i + 1];
        if ((lo & PTE_HUGE) === 0 || sys.phys.isZeroPfn(hi)) return;
        if (ptePresent(lo) || isDevicePrivateEntry(lo)) bump(c.pmd, hi);
      },
    );
  }
  return c;
}
