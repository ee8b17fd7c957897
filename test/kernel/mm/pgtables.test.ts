/**
 * VmPTE (mm_pgtables_bytes()): the page tables below the PGD and the PTE table deposited with each
 * PMD entry of an anonymous VMA. Each figure is what the live kernel (6.18, x86-64) printed in
 * /proc/self/status for the same calls at the same addresses, less what the process had before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
} from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { HPAGE, PAGE, RW, setup, teardown } from './mm_helpers.ts';

const BASE = 0x600000000000;
const KB = 1024;

function vmPte(sys: System, p: Process): number {
  return sys.stats(p).pgtables / KB;
}

describe('VmPTE', () => {
  it('a THP and the huge zero page each deposit a table; a split keeps it, a zap frees it', () => {
    const { sys, p } = setup({ thp: 'madvise' });
    const a = sys.mmap(p, BASE, 4 * HPAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
    assert.equal(a, BASE);
    assert.equal(vmPte(sys, p), 0);
    assert.equal(sys.madvise(p, a, 4 * HPAGE, MADV.HUGEPAGE), 0);
    sys.write(p, a, new Uint8Array([1]));
    assert.equal(vmPte(sys, p), 12, 'PUD and PMD tables, and the THP deposit');
    sys.read(p, a + HPAGE, 1);
    assert.equal(vmPte(sys, p), 16, 'the huge zero page deposits one too');
    sys.write(p, a + HPAGE + 5, new Uint8Array([1]));
    assert.equal(vmPte(sys, p), 16, 'the THP that replaces it keeps that one');
    assert.equal(sys.munmap(p, a + PAGE, PAGE), 0);
    assert.equal(vmPte(sys, p), 16, 'the split makes the deposit its PTE table');
    sys.write(p, a + 2 * HPAGE + PAGE, new Uint8Array([1]));
    assert.equal(vmPte(sys, p), 20);
    assert.equal(sys.madvise(p, a + 2 * HPAGE, HPAGE, MADV.DONTNEED), 0);
    assert.equal(vmPte(sys, p), 16, 'zap_huge_pmd() frees the deposit');
    assert.equal(sys.munmap(p, a, 4 * HPAGE), 0);
    assert.equal(vmPte(sys, p), 0);
    teardown(sys);
  });

  it('a file fault that fails leaves the PUD and PMD tables but no PTE table', () => {
    // (hetmem difftest, seed 7, program 40.) A read past the end of the file: SIGBUS.
    const { sys, p } = setup();
    const fd = sys.memfdCreate('f');
    const a = sys.mmap(p, BASE, 64 * PAGE, RW, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 4 * PAGE);
    assert.equal(a, BASE);
    assert.ok(sys.read(p, a + 5 * PAGE, 6 * PAGE).ret < 0);
    assert.equal(vmPte(sys, p), 8);
    assert.equal(sys.munmap(p, a, 64 * PAGE), 0);
    sys.close(fd);
    teardown(sys);
  });

  it('mremap gives the new range the tables the old range has above its entries, moved or not', () => {
    // (hetmem difftest, seed 7.) One page written in the PMD the moved range lies in, none in the
    // range itself: the destination still gets a PTE table.
    const { sys, p } = setup({ thp: 'madvise' });
    const a = sys.mmap(p, BASE, 4 * HPAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
    assert.equal(a, BASE);
    sys.write(p, a + 0x699000, new Uint8Array([0xf0]));
    assert.equal(vmPte(sys, p), 12);
    const moved = sys.mremap(
      p,
      a + 0x7ad000,
      40 * PAGE,
      40 * PAGE,
      MREMAP_MAYMOVE | MREMAP_FIXED,
      a + 0xa00000,
    );
    assert.equal(moved, a + 0xa00000);
    assert.equal(vmPte(sys, p), 16);
    teardown(sys);
  });

  it('fork gives the child the tables above every entry level the parent has over a VMA it copies', () => {
    // Live, a forked child's VmPTE less that of a child forked before the window was mapped.
    const { sys, p } = setup();
    const a = sys.mmap(p, BASE, 4 * HPAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
    assert.equal(a, BASE);
    sys.write(p, a, new Uint8Array([1]));
    sys.write(p, a + 5 * 0x100000, new Uint8Array([1]));
    const childPte = (): number => {
      const { child } = sys.fork(p, 'child');
      assert.ok(child !== null);
      const kb = vmPte(sys, child);
      assert.equal(sys.exit(child), 0);
      return kb;
    };
    assert.equal(vmPte(sys, p), 16);
    assert.equal(childPte(), 16);
    // MADV_DONTNEED frees the emptied PTE tables; the PUD and PMD tables stay, and the child
    // gets them too although there is no entry under them to copy.
    assert.equal(sys.madvise(p, a, 4 * HPAGE, MADV.DONTNEED), 0);
    assert.equal(vmPte(sys, p), 8);
    assert.equal(childPte(), 8);
    assert.equal(sys.munmap(p, a, 4 * HPAGE), 0);
    assert.equal(vmPte(sys, p), 0);
    assert.equal(childPte(), 0);
    teardown(sys);
  });
});
