/*
 * The known differences difftest counts instead of reporting: each must take the outcomes it is
 * written for and leave any other disagreement to be reported.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/kernel/errno.ts';
import type { DiffOp, HostConfig } from '../../src/fuzz/difftest.ts';
import { knownDifference } from '../../src/fuzz/difftest_known.ts';

const host: HostConfig = {
  thp: 'madvise',
  swap: false,
  softDirty: false,
  files: true,
  zeroPage: true,
  hugePages: 0,
};

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

  it('file-size-limit: not a write the model refused for another reason', () => {
    assert.equal(knownDifference(fwrite, { ret: -Errno.EPERM }, { ret: 5153 }, host), null);
    assert.equal(knownDifference(fwrite, { ret: 100 }, { ret: 5153 }, host), null);
  });
});
