/*
 * /proc/PID/clear_refs with 1, 2, 3 and 5 (4, soft-dirty, is tested with the soft-dirty
 * selftests): which VMAs lose their young bits and PG_referenced, as smaps' Referenced shows
 * right after. The values are what Linux 6.18 (6.18.44) gave for the same sequence. Accesses after
 * clear_refs are not compared: x86 does not flush the TLB there, so the kernel's young bits stay
 * clear while a cached translation is used, where the model, which has no TLB, sets them again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED } from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { RW, setup, teardown } from './mm_helpers.ts';

const LEN = 16384;

/** Referenced of the VMA at `a`, in kB. */
function referenced(sys: System, p: Process, a: number): number {
  const r = sys.smaps(p, a, a + 1);
  assert.ok(typeof r !== 'number' && r.length === 1);
  return r[0].referenced / 1024;
}

describe('clear_refs', () => {
  it('2 clears anonymous memory, 3 file-backed memory (shared anonymous memory too), 1 all', () => {
    const { sys, p } = setup();
    const priv = sys.mmap(p, 0, LEN, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    const shared = sys.mmap(p, 0, LEN, RW, MAP_SHARED | MAP_ANONYMOUS);
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, LEN), 0);
    const file = sys.mmap(p, 0, LEN, RW, MAP_SHARED, fd, 0);
    for (const a of [priv, shared, file]) assert.equal(sys.write(p, a, new Uint8Array(LEN).fill(1)), LEN);
    const all = () => [priv, shared, file].map((a) => referenced(sys, p, a));
    assert.deepEqual(all(), [16, 16, 16]);
    assert.equal(sys.clearRefs(p, 2), 0);
    assert.deepEqual(all(), [0, 16, 16]);
    assert.equal(sys.clearRefs(p, 3), 0);
    assert.deepEqual(all(), [0, 0, 0]);
    // The other way round, after a read of the file that marks its pages referenced.
    for (const a of [priv, shared, file]) assert.equal(sys.write(p, a, new Uint8Array(LEN).fill(1)), LEN);
    assert.equal(sys.pread(fd, LEN, 0).ret, LEN);
    assert.equal(sys.clearRefs(p, 3), 0);
    assert.deepEqual(all(), [16, 0, 0]);
    assert.equal(sys.clearRefs(p, 2), 0);
    assert.deepEqual(all(), [0, 0, 0]);
    assert.equal(sys.write(p, priv, new Uint8Array([2])), 1);
    assert.equal(sys.clearRefs(p, 1), 0);
    assert.deepEqual(all(), [0, 0, 0]);
    teardown(sys);
  });

  it('takes 1 to 5 and nothing else', () => {
    const { sys, p } = setup();
    for (const v of [0, 6, -1]) assert.equal(sys.clearRefs(p, v), -Errno.EINVAL);
    assert.equal(sys.clearRefs(p, 5), 0);
    teardown(sys);
  });
});
