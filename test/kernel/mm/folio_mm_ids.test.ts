/*
 * CONFIG_MM_ID: a large folio counts its mappings in two MM slots and keeps a "maybe mapped
 * shared" bit, which the write fault's reuse of a PTE-mapped THP asks
 * (__wp_can_reuse_large_anon_folio()). A third MM takes no slot, and the bit it leaves set stays
 * set while that MM maps the folio alone. Each case is a PTE-mapped THP in a parent that forks;
 * whether a write then reuses the page or copies it (its PFN in pagemap) is what Linux 6.18
 * (6.18.44, THP `madvise`) gave for the same sequence.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MADV, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ } from '../../../src/kernel/mm/mman.ts';
import { folioMaybeMappedShared } from '../../../src/kernel/mm/rmap.ts';
import { System, type Process } from '../../../src/kernel/system.ts';
import { PAGE, RW, teardown } from './mm_helpers.ts';

const MB = 1024 * 1024;

/** A written THP mapped by PTEs (mprotect of one page and back splits the PMD). */
function pteMappedThp(): { sys: System; p: Process; a: number } {
  const sys = new System({ ram: 64 * MB, swap: 0, thp: 'madvise' });
  const p = sys.createProcess('p');
  const raw = sys.mmap(p, 0, 4 * MB, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  const a = Math.ceil(raw / (2 * MB)) * 2 * MB;
  assert.equal(sys.madvise(p, a, 2 * MB, MADV.HUGEPAGE), 0);
  assert.equal(sys.write(p, a, new Uint8Array(2 * MB).fill(1)), 2 * MB);
  assert.equal(sys.mprotect(p, a, PAGE, PROT_READ), 0);
  assert.equal(sys.mprotect(p, a, PAGE, RW), 0);
  assert.equal(sys.pagemap(p, a + 2 * PAGE, 1)[0].pfn, sys.pagemap(p, a, 1)[0].pfn + 2, 'one folio');
  return { sys, p, a };
}

/** Whether a write by `q` at `addr` keeps the page it had there. */
function writeReuses(sys: System, q: Process, addr: number): boolean {
  const before = sys.pagemap(q, addr, 1)[0].pfn;
  assert.equal(sys.write(q, addr, Uint8Array.of(7)), 1);
  return sys.pagemap(q, addr, 1)[0].pfn === before;
}

function fork(sys: System, p: Process, name: string): Process {
  const { child } = sys.fork(p, name);
  assert.ok(child !== null);
  return child;
}

describe('the MM slots of a large folio (CONFIG_MM_ID)', () => {
  it('a folio two MMs mapped is exclusive again once one of them unmaps it: the other reuses it', () => {
    const { sys, p, a } = pteMappedThp();
    const child = fork(sys, p, 'child');
    assert.equal(sys.madvise(p, a, 2 * MB, MADV.DONTNEED), 0);
    assert.equal(writeReuses(sys, child, a + 2 * PAGE), true);
    teardown(sys);
  });

  it('a third MM takes no slot: left alone with the folio, it still copies on write', () => {
    const { sys, p, a } = pteMappedThp();
    const c1 = fork(sys, p, 'c1');
    const c2 = fork(sys, p, 'c2');
    assert.equal(sys.madvise(p, a, 2 * MB, MADV.DONTNEED), 0);
    assert.equal(sys.exit(c1), 0);
    const h = sys.pagemap(c2, a, 1)[0].pfn;
    assert.equal(folioMaybeMappedShared(sys.phys, h), true, 'one MM maps it, and the bit says shared');
    assert.equal(writeReuses(sys, c2, a + 2 * PAGE), false);
    teardown(sys);
  });

  it('the slot-less MM leaving first, then the second slot: the first MM reuses', () => {
    const { sys, p, a } = pteMappedThp();
    const c1 = fork(sys, p, 'c1');
    const c2 = fork(sys, p, 'c2');
    assert.equal(sys.exit(c2), 0);
    assert.equal(sys.exit(c1), 0);
    assert.equal(writeReuses(sys, p, a + 2 * PAGE), true);
    teardown(sys);
  });

  it('the second slot leaving while the slot-less MM stays: a copy, then reuse once it is gone', () => {
    const { sys, p, a } = pteMappedThp();
    const c1 = fork(sys, p, 'c1');
    const c2 = fork(sys, p, 'c2');
    assert.equal(sys.exit(c1), 0);
    assert.equal(writeReuses(sys, p, a + 2 * PAGE), false);
    assert.equal(sys.exit(c2), 0);
    assert.equal(writeReuses(sys, p, a + 3 * PAGE), true);
    teardown(sys);
  });
});
