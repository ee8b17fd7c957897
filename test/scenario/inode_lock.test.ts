/**
 * The inode lock (i_rwsem) of a memfd: a write, a size change and fallocate() each hold it
 * throughout, so another of them never lands in the middle of one. An ftruncate() to 0 inside a
 * write whose allocations sleep in reclaim would drop the pages the write had filled, and the
 * write would then finish past them: a file of zeros and data that no order of the two calls
 * gives. Each test explores the two calls (the write's allocations yield part way), checks that
 * the search took the lock in both orders, and that every final file is one an order gives.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exploreClean, RAM_FULL_WITH_MEMFD } from './helpers.ts';

/** Explores at bound 1 and checks the two calls took the inode lock in both orders. */
function exhaustedClean(text: string): void {
  const r = exploreClean(text, 3000, 1);
  const both = (r.coverage?.both ?? []).map((pair) => pair.join(' / '));
  assert.ok(
    both.includes('a: down_write(inode[2].i_rwsem) / b: down_write(inode[2].i_rwsem)'),
    both.join('; '),
  );
}

describe('the inode lock of a memfd', () => {
  it('ftruncate() to 0 comes before or after a write, never inside it', () => {
    exhaustedClean(`${RAM_FULL_WITH_MEMFD}threads:
  a:
    - { op: pwrite, fd: mfd, offset: 0, length: 256KiB, data: { fill: 5 }, expect: { ret: 262144 } }
  b:
    - { op: ftruncate, fd: mfd, length: 0 }
final:
  - op: pread
    fd: mfd
    offset: 0
    length: 256KiB
    expect: { any: [{ ret: 0 }, { ret: 262144, data: { fill: 5 } }] }
  - { op: check }
`);
  });

  it('a hole punched during a write is punched before or after it', () => {
    exhaustedClean(`${RAM_FULL_WITH_MEMFD}  - { op: ftruncate, fd: mfd, length: 256KiB }
threads:
  a:
    - { op: pwrite, fd: mfd, offset: 0, length: 256KiB, data: { fill: 5 }, expect: { ret: 262144 } }
  b:
    - { op: fallocate, fd: mfd, mode: [punch_hole, keep_size], offset: 0, length: 256KiB }
final:
  - op: pread
    fd: mfd
    offset: 0
    length: 256KiB
    expect: { any: [{ ret: 262144, data: { fill: 0 } }, { ret: 262144, data: { fill: 5 } }] }
  - { op: check }
`);
  });
});
