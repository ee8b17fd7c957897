/**
 * /proc/PID/smaps (show_smap()) and the page-table bits it reads: what fork and MADV_FREE leave in
 * the PTEs, seen through Rss, Pss, Shared/Private Clean/Dirty, Referenced, LazyFree and Swap.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SmapsEntry } from '../../../src/kernel/fs/task_mmu.ts';
import { MADV, MAP_FIXED_NOREPLACE } from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { ANON_PRIVATE, ANON_SHARED, PAGE, RW, readOk, setup, teardown, writeOk } from './mm_helpers.ts';

const A = 0x600000000000;

/** An mmap at `addr` that must succeed. */
function mapAt(sys: System, p: Process, addr: number, len: number, flags = ANON_PRIVATE): void {
  assert.equal(sys.mmap(p, addr, len, RW, flags | MAP_FIXED_NOREPLACE, -1, 0), addr);
}

/** The smaps entry of the VMA that starts at `addr`. */
function smapsAt(sys: System, p: Process, addr: number): SmapsEntry {
  const all = sys.smaps(p);
  assert.ok(Array.isArray(all));
  const e = all.find((v) => v.start === addr);
  assert.ok(e !== undefined, `no VMA at 0x${addr.toString(16)}`);
  return e;
}

/** The fields a test compares, by smaps' names, in pages. */
function pages(e: SmapsEntry, keys: (keyof SmapsEntry)[]): Record<string, number> {
  return Object.fromEntries(keys.map((k) => [k, (e[k] as number) / PAGE]));
}

describe('/proc/PID/smaps (show_smap())', () => {
  it('counts private anonymous pages: dirty after a write, the zero page not at all, swap entries as Swap', () => {
    const { sys, p } = setup();
    mapAt(sys, p, A, 4 * PAGE);
    writeOk(sys, p, A, new Uint8Array(2 * PAGE).fill(1));
    readOk(sys, p, A + 2 * PAGE, 1);
    assert.equal(sys.madvise(p, A + PAGE, PAGE, MADV.PAGEOUT), 0);
    const e = smapsAt(sys, p, A);
    assert.equal(e.size, 4 * PAGE);
    assert.deepEqual(
      pages(e, ['rss', 'pss', 'privateDirty', 'privateClean', 'anonymous', 'swap', 'swapPss']),
      {
        rss: 1,
        pss: 1,
        privateDirty: 1,
        privateClean: 0,
        anonymous: 1,
        swap: 1,
        swapPss: 1,
      },
    );
    teardown(sys);
  });

  it('after fork both processes count the pages as shared, each with half the Pss', () => {
    const { sys, p } = setup();
    mapAt(sys, p, A, 2 * PAGE);
    writeOk(sys, p, A, new Uint8Array(2 * PAGE).fill(1));
    const { child } = sys.fork(p, 'c');
    for (const proc of [p, child!]) {
      assert.deepEqual(pages(smapsAt(sys, proc, A), ['rss', 'pss', 'sharedDirty', 'privateDirty']), {
        rss: 2,
        pss: 1,
        sharedDirty: 2,
        privateDirty: 0,
      });
    }
    teardown(sys);
  });

  it("fork makes the child's PTEs old (Referenced), and clean in a shared mapping", () => {
    const { sys, p } = setup();
    mapAt(sys, p, A, 2 * PAGE);
    writeOk(sys, p, A, new Uint8Array(2 * PAGE).fill(1));
    const B = A + 16 * PAGE;
    mapAt(sys, p, B, PAGE, ANON_SHARED);
    writeOk(sys, p, B, Uint8Array.of(7));
    const { child } = sys.fork(p, 'c');
    assert.equal(smapsAt(sys, p, A).referenced, 2 * PAGE);
    assert.equal(smapsAt(sys, child!, A).referenced, 0);
    const pte = (proc: Process, addr: number) => {
      const t = proc.mm!.pgt.pteTable(addr)!;
      return t.words[((addr / PAGE) % 512) * 2];
    };
    const DIRTY = 1 << 6;
    assert.notEqual(pte(p, B) & DIRTY, 0, "the parent's entry keeps its dirty bit");
    assert.equal(pte(child!, B) & DIRTY, 0, "the child's entry of a shared mapping is clean");
    assert.notEqual(pte(child!, A) & DIRTY, 0, "the child's entry of a private mapping stays dirty");
    teardown(sys);
  });
});

describe('MADV_FREE as madvise_free_pte_range() does it', () => {
  it('a page shared after fork (folio not dirty) is cleaned in the calling process and made lazy-free', () => {
    const { sys, p } = setup();
    mapAt(sys, p, A, 2 * PAGE);
    writeOk(sys, p, A, new Uint8Array(2 * PAGE).fill(1));
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.madvise(child!, A, 2 * PAGE, MADV.FREE), 0);
    assert.deepEqual(pages(smapsAt(sys, child!, A), ['rss', 'sharedClean', 'sharedDirty', 'lazyFree']), {
      rss: 2,
      sharedClean: 2,
      sharedDirty: 0,
      lazyFree: 2,
    });
    // The parent's entries are its own: still dirty.
    assert.equal(smapsAt(sys, p, A).sharedDirty, 2 * PAGE);
    teardown(sys);
  });

  it("another process's unmap leaves the freed page clean (an anonymous folio takes no PTE dirty bit)", () => {
    const { sys, p } = setup();
    mapAt(sys, p, A, 2 * PAGE);
    writeOk(sys, p, A, new Uint8Array(2 * PAGE).fill(1));
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.madvise(p, A, PAGE, MADV.FREE), 0);
    assert.equal(sys.munmap(child!, A, 2 * PAGE), 0);
    assert.deepEqual(pages(smapsAt(sys, p, A), ['rss', 'privateClean', 'privateDirty']), {
      rss: 2,
      privateClean: 1,
      privateDirty: 1,
    });
    teardown(sys);
  });

  it('drops the swap entries of the range: the slots are freed and the pages read as zeros', () => {
    const { sys, p } = setup();
    mapAt(sys, p, A, 2 * PAGE);
    writeOk(sys, p, A, new Uint8Array(2 * PAGE).fill(9));
    assert.equal(sys.madvise(p, A, 2 * PAGE, MADV.PAGEOUT), 0);
    assert.equal(sys.swap.used, 2);
    assert.equal(sys.madvise(p, A, PAGE, MADV.FREE), 0);
    assert.equal(sys.swap.used, 1);
    assert.deepEqual(
      sys.pagemap(p, A, 2).map((e) => e.kind),
      ['none', 'swap'],
    );
    assert.equal(sys.stats(p).swap_ents, PAGE);
    assert.equal(readOk(sys, p, A, 1)[0], 0);
    assert.equal(readOk(sys, p, A + PAGE, 1)[0], 9);
    teardown(sys);
  });
});
