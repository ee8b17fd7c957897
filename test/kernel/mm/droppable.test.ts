/*
 * MAP_DROPPABLE: private anonymous memory that reclaim drops instead of swapping, written or
 * not. The expected values are what Linux 6.18 does: each case was run on a live 6.18 kernel.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { VM } from '../../../src/kernel/mm/mm_types.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_DROPPABLE,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MCL_FUTURE,
} from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { PAGE, RW, setup, teardown, writeOk } from './mm_helpers.ts';

const W = 0x6000_0000_0000;
const DROPPABLE = MAP_DROPPABLE | MAP_ANONYMOUS;

function mapAt(sys: System, p: Process, addr: number, len: number, flags = DROPPABLE): number {
  return sys.mmap(p, addr, len, RW, flags | MAP_FIXED_NOREPLACE);
}

function pages(sys: System, p: Process, addr: number, n: number): string {
  return sys
    .pagemap(p, addr, n)
    .map((e) => (e.present ? 'p' : '-'))
    .join(',');
}

describe('MAP_DROPPABLE', () => {
  it('pageout drops its pages, written ones too; they read back as zeros', () => {
    const { sys, p } = setup({ swap: 0 });
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    writeOk(sys, p, W, new Uint8Array(4 * PAGE).fill(7));
    assert.equal(sys.madvise(p, W, 4 * PAGE, MADV.PAGEOUT), 0);
    assert.equal(pages(sys, p, W, 4), '-,-,-,-');
    assert.deepEqual(sys.read(p, W, 4 * PAGE).data, new Uint8Array(4 * PAGE));
    // Ordinary private memory, without swap, stays.
    assert.equal(mapAt(sys, p, W + 8 * PAGE, 4 * PAGE, MAP_PRIVATE | MAP_ANONYMOUS), W + 8 * PAGE);
    writeOk(sys, p, W + 8 * PAGE, new Uint8Array(4 * PAGE).fill(7));
    assert.equal(sys.madvise(p, W + 8 * PAGE, 4 * PAGE, MADV.PAGEOUT), 0);
    assert.equal(pages(sys, p, W + 8 * PAGE, 4), 'p,p,p,p');
    teardown(sys);
  });

  it('takes no lock and is wiped on fork', () => {
    const { sys, p } = setup({ rlimitMemlock: 1 << 20 });
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    writeOk(sys, p, W, new Uint8Array(4 * PAGE).fill(7));
    assert.equal(sys.mlock(p, W, 4 * PAGE), 0);
    assert.equal(p.mm!.lockedVm, 0);
    assert.equal(p.mm!.vmasIn(W, W + 4 * PAGE).length, 1, 'mlock did not split it either');
    assert.equal(sys.madvise(p, W, PAGE, MADV.KEEPONFORK), -Errno.EINVAL);
    assert.equal(sys.madvise(p, W, PAGE, MADV.DODUMP), -Errno.EINVAL);
    assert.equal(sys.madvise(p, W, PAGE, MADV.WIPEONFORK), 0);
    const { child } = sys.fork(p, 'c');
    assert.ok(child !== null);
    assert.deepEqual(sys.read(child, W, 4 * PAGE).data, new Uint8Array(4 * PAGE));
    // A mapping made after mlockall(MCL_FUTURE) is not locked either.
    assert.equal(sys.mlockall(p, MCL_FUTURE), 0);
    assert.equal(mapAt(sys, p, W + 16 * PAGE, 4 * PAGE, DROPPABLE | MAP_POPULATE), W + 16 * PAGE);
    assert.equal(pages(sys, p, W + 16 * PAGE, 4), 'p,p,p,p');
    assert.equal(p.mm!.lockedVm, 0);
    assert.equal((p.mm!.vmaLookup(W + 16 * PAGE)!.flags & VM.LOCKED) !== 0, false);
    teardown(sys);
  });

  it('is anonymous only, and not locked, growing or hugetlb (EINVAL)', () => {
    const { sys, p } = setup({ hugetlbPages: 2 });
    assert.equal(mapAt(sys, p, W, PAGE, DROPPABLE | MAP_LOCKED), -Errno.EINVAL);
    assert.equal(mapAt(sys, p, W, PAGE, DROPPABLE | MAP_GROWSDOWN), -Errno.EINVAL);
    assert.equal(mapAt(sys, p, W, 2 * 1024 * 1024, DROPPABLE | MAP_HUGETLB), -Errno.EINVAL);
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, PAGE), 0);
    assert.equal(sys.mmap(p, W, PAGE, RW, MAP_DROPPABLE | MAP_FIXED_NOREPLACE, fd, 0), -Errno.EINVAL);
    teardown(sys);
  });
});
