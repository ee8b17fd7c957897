/*
 * process_madvise(2): advice over a vector of segments, on the caller's memory or another
 * process's. The expected values are what Linux 6.18 does: each case was run on a live 6.18
 * kernel, as a process without CAP_SYS_NICE.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { setCapSysNice } from '../../../src/kernel/mm/madvise.ts';
import { MADV, MAP_FIXED_NOREPLACE } from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { ANON_PRIVATE, PAGE, RW, setup, teardown, writeOk } from './mm_helpers.ts';

const W = 0x6000_0000_0000;

function pages(sys: System, p: Process, addr: number, n: number): string {
  return sys
    .pagemap(p, addr, n)
    .map((e) => (e.present ? 'p' : e.swap ? 's' : '-'))
    .join(',');
}

describe('process_madvise(2)', () => {
  it('advises each segment in turn and returns the bytes of those done', () => {
    const { sys, p } = setup();
    assert.equal(sys.mmap(p, W, 4 * PAGE, RW, ANON_PRIVATE | MAP_FIXED_NOREPLACE), W);
    writeOk(sys, p, W, new Uint8Array(4 * PAGE).fill(7));
    const seg = (base: number | bigint, len: number | bigint) => ({ base, len });
    // The second segment is a hole: the first one's bytes are what is returned.
    assert.equal(
      sys.processMadvise(p, p, [seg(W, 2 * PAGE), seg(W + 64 * PAGE, PAGE)], MADV.DONTNEED),
      2 * PAGE,
    );
    assert.equal(pages(sys, p, W, 4), '-,-,p,p');
    // A failing first segment is the error; a failing later one leaves the bytes before it.
    assert.equal(sys.processMadvise(p, p, [seg(W + 1, PAGE), seg(W, PAGE)], MADV.DONTNEED), -Errno.EINVAL);
    assert.equal(sys.processMadvise(p, p, [seg(W, PAGE), seg(W + 1, PAGE)], MADV.DONTNEED), PAGE);
    assert.equal(sys.processMadvise(p, p, [], MADV.DONTNEED), 0);
    assert.equal(sys.processMadvise(p, p, [seg(W, PAGE)], 999), -Errno.EINVAL);
    assert.equal(sys.processMadvise(p, p, [seg(W, PAGE)], MADV.DONTNEED, 1), -Errno.EINVAL);
    // Any advice on one's own memory; a zero length is skipped; lengths count as given.
    assert.equal(sys.processMadvise(p, p, [seg(W, PAGE), seg(W + 2 * PAGE, 0)], MADV.GUARD_INSTALL), PAGE);
    assert.equal(pages(sys, p, W, 4), 's,-,p,p');
    assert.equal(sys.processMadvise(p, p, [seg(W, 0), seg(W + 3 * PAGE, 1)], MADV.DONTNEED), 1);
    // With no bytes left, a segment is not even checked.
    assert.equal(sys.processMadvise(p, p, [seg(W + 1, 0)], MADV.DONTNEED), 0);
    assert.equal(sys.processMadvise(p, p, [seg(W, 0), seg(W + 1, PAGE)], MADV.DONTNEED), -Errno.EINVAL);
    assert.equal(pages(sys, p, W, 4), 's,-,p,-');
    // A length of 2^63 or more is refused with the vector; one past MAX_RW_COUNT is cut there.
    assert.equal(sys.processMadvise(p, p, [seg(W, 2n ** 63n)], MADV.DONTNEED), -Errno.EINVAL);
    assert.equal(sys.processMadvise(p, p, [seg(W, 2 ** 32)], MADV.DONTNEED), -Errno.ENOMEM);
    assert.equal(sys.processMadvise(p, p, [seg(W, PAGE), seg(W, PAGE)], MADV.PAGEOUT), 2 * PAGE);
    teardown(sys);
  });

  it("another process's memory takes only non-destructive advice, and CAP_SYS_NICE", () => {
    const { sys, p } = setup();
    assert.equal(sys.mmap(p, W, 4 * PAGE, RW, ANON_PRIVATE | MAP_FIXED_NOREPLACE), W);
    writeOk(sys, p, W, new Uint8Array(4 * PAGE).fill(7));
    const { child } = sys.fork(p, 'c');
    assert.ok(child !== null);
    const seg = [{ base: W, len: PAGE }];
    assert.equal(sys.processMadvise(p, child, seg, MADV.DONTNEED), -Errno.EINVAL);
    assert.equal(sys.processMadvise(p, child, seg, MADV.PAGEOUT), -Errno.EPERM);
    assert.equal(sys.processMadvise(p, child, seg, MADV.COLD), -Errno.EPERM);
    assert.equal(sys.processMadvise(p, child, seg, 999), -Errno.EINVAL);
    // From the source (process_madvise()): with CAP_SYS_NICE the advice is given.
    setCapSysNice(p, true);
    assert.equal(sys.processMadvise(p, child, seg, MADV.COLD), PAGE);
    assert.equal(sys.exit(child), 0);
    assert.equal(sys.processMadvise(p, child, seg, MADV.COLD), -Errno.ESRCH);
    teardown(sys);
  });
});
