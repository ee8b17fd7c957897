/*
 * mincore(2) (mm/mincore.c, Linux 6.18). The cases a live kernel can show are in
 * test/fixtures/difftest/mincore-residency.yaml; these are the ones it cannot show on a machine
 * without swap, or that are about the model's own buffer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { MADV } from '../../../src/kernel/mm/mman.ts';
import { HPAGE, PAGE, mapOk, setup, teardown, writeOk } from './mm_helpers.ts';

describe('mincore(2)', () => {
  it("writes a byte a page into the caller's buffer; one too short is -EFAULT", () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a + 2 * PAGE, Uint8Array.of(1));
    const vec = new Uint8Array(4).fill(7);
    assert.equal(sys.mincore(p, a, 4 * PAGE, vec), 0);
    assert.deepEqual([...vec], [0, 0, 1, 0]);
    // access_ok(vec, pages) fails before anything is written.
    const short = new Uint8Array(3).fill(7);
    assert.equal(sys.mincore(p, a, 3 * PAGE + 1, short), -Errno.EFAULT);
    assert.deepEqual([...short], [7, 7, 7]);
    // A hole ends the call with -ENOMEM after the pages before it are written.
    const past = new Uint8Array(6).fill(7);
    assert.equal(sys.mincore(p, a, 6 * PAGE, past), -Errno.ENOMEM);
    assert.deepEqual([...past], [0, 0, 1, 0, 7, 7]);
    teardown(sys);
  });

  it('a PMD-mapped THP is in memory for each of its pages', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = mapOk(sys, p, 2 * HPAGE);
    const at = a + ((HPAGE - (a % HPAGE)) % HPAGE);
    writeOk(sys, p, at, Uint8Array.of(1));
    assert.equal(sys.pagemap(p, at, 1)[0].thp, true);
    const vec = new Uint8Array(HPAGE / PAGE);
    assert.equal(sys.mincore(p, at, HPAGE, vec), 0);
    assert.ok(vec.every((b) => b === 1));
    teardown(sys);
  });

  it('a page swapped out is not in memory (mincore_swap(): no swap cache folio)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    writeOk(sys, p, a, Uint8Array.of(1, 2));
    writeOk(sys, p, a + PAGE, Uint8Array.of(3));
    assert.equal(sys.madvise(p, a, PAGE, MADV.PAGEOUT), 0);
    assert.equal(sys.pagemap(p, a, 1)[0].swap, true);
    const vec = new Uint8Array(2);
    assert.equal(sys.mincore(p, a, 2 * PAGE, vec), 0);
    assert.deepEqual([...vec], [0, 1]);
    teardown(sys);
  });
});
