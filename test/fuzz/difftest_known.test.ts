/*
 * The known differences difftest counts instead of reporting: each must take the outcomes it is
 * written for and leave any other disagreement to be reported.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/kernel/errno.ts';
import { O_APPEND, O_WRONLY } from '../../src/kernel/mm/mman.ts';
import { type DiffOp, type HostConfig, runModel } from '../../src/fuzz/difftest.ts';
import { knownDifference } from '../../src/fuzz/difftest_known.ts';

const host: HostConfig = {
  thp: 'madvise',
  swap: false,
  softDirty: false,
  files: true,
  zeroPage: true,
  hugePages: 0,
};

const O_WRONLY_APPEND = O_WRONLY | O_APPEND;

describe('difftest known differences', () => {
  const fwrite: DiffOp = { op: 'fwrite', slot: 0, len: 5153, byte: 26 };

  it("file-size-limit: write() past the model's 2^52 bytes, whatever the kernel then does", () => {
    assert.equal(knownDifference(fwrite, { ret: -Errno.EFBIG }, { ret: 5153 }, host), 'file-size-limit');
    // A F_SEAL_FUTURE_WRITE memfd: the kernel's size check passes, and the seal refuses.
    assert.equal(
      knownDifference(fwrite, { ret: -Errno.EFBIG }, { ret: -Errno.EPERM }, host),
      'file-size-limit',
    );
  });

  it("file-size-limit: a write() across the model's 2^52 bytes, which the model cuts short there", () => {
    // difftest seed 153: an O_APPEND write of 7,444 bytes to a file 1,846 bytes short of 2^52.
    // The live kernel wrote them all.
    const ops: DiffOp[] = [
      { op: 'memfd', slot: 0, flags: 0 },
      { op: 'open', slot: 1, from: 0, flags: O_WRONLY_APPEND },
      { op: 'pwrite', slot: 0, foff: 2 ** 52 - 4096, len: 2250, byte: 35 },
      { op: 'fwrite', slot: 1, len: 7444, byte: 21 },
    ];
    const model = runModel(ops, host);
    assert.deepEqual(model[3], { ret: 1846, at: 2 ** 52 - 1846 });
    assert.equal(knownDifference(ops[3], model[3], { ret: 7444 }, host), 'file-size-limit');
  });

  it('file-size-limit: not a write the model refused for another reason', () => {
    assert.equal(knownDifference(fwrite, { ret: -Errno.EPERM }, { ret: 5153 }, host), null);
    assert.equal(knownDifference(fwrite, { ret: 100 }, { ret: 5153 }, host), null);
    // Short, but not where 2^52 would cut it, or not across it at all.
    assert.equal(knownDifference(fwrite, { ret: 100, at: 2 ** 52 - 1846 }, { ret: 5153 }, host), null);
    assert.equal(knownDifference(fwrite, { ret: 100, at: 4096 }, { ret: 5153 }, host), null);
    // Cut at 2^52 where the live kernel cut it too.
    assert.equal(knownDifference(fwrite, { ret: 1846, at: 2 ** 52 - 1846 }, { ret: 1846 }, host), null);
  });
});
