/**
 * The mm syscalls with unsigned long arguments of 2^53 and more, through the library API (bigints,
 * exact). Every expectation below was checked against a live Linux 6.18 kernel by a C program
 * making the same calls in the same order on the same layout (one 1 MiB private anonymous mapping
 * at BASE); the model gives the same errno for each.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Errno, mman, System } from '../../../src/index.ts';

const BASE = 0x600000000000;
const A = mman.MAP_PRIVATE | mman.MAP_ANONYMOUS;
const NAMES = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));
const res = (r: number): string => (r >= 0 ? 'ok' : (NAMES.get(-r) ?? String(r)));

/**
 * Per value: the errnos of the calls in `calls` below. The kernel's reasons, in short:
 * - mmap length: PAGE_ALIGN() wraps a length within a page of 2^64 to 0, and any length above
 *   TASK_SIZE is -ENOMEM, before the mapping type is looked at (so a bad type is -ENOMEM too);
 *   hugetlb aligns to 2 MiB first (ksys_mmap_pgoff()) and a wrap to 0 is do_mmap()'s -EINVAL.
 * - mmap MAP_FIXED address: get_unmapped_area() returns it as is; 2^64 - 1 looks like the error
 *   pointer -EPERM; other addresses past TASK_SIZE - len are -ENOMEM before the alignment check.
 *   A hint past TASK_SIZE is ignored. The offset of an anonymous private mapping must be
 *   page-aligned and is otherwise unused.
 * - munmap: do_vmi_munmap() refuses an address above TASK_SIZE or a length above TASK_SIZE - start.
 * - mprotect: the aligned length and start + length are u64 sums; an end not above the start is
 *   -ENOMEM, and so is a range that runs into the hole above the user space.
 * - madvise: a length that page-aligns to 0, or a range that wraps, is -EINVAL; a range beyond the
 *   mappings is -ENOMEM.
 * - mremap: both lengths are page-aligned modulo 2^64; a new length of 0 or above TASK_SIZE is
 *   -EINVAL, and so is an old one that wraps to 0 on a private mapping; a shrink by more than
 *   TASK_SIZE fails do_vmi_munmap(); an aligned address with no VMA is -EFAULT.
 */
const TABLE: [bigint, string, string[]][] = [
  [
    2n ** 64n - 1n,
    '2^64-1',
    [
      'ENOMEM',
      'EINVAL',
      'ENOMEM',
      'EPERM',
      'ok',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
    ],
  ],
  [
    2n ** 64n - 4096n,
    '2^64-4096',
    [
      'ENOMEM',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'ok',
      'ok',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'EINVAL',
      'ENOMEM',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EFAULT',
      'EINVAL',
    ],
  ],
  [
    2n ** 63n,
    '2^63',
    [
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ok',
      'ok',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'EINVAL',
      'EINVAL',
      'EFAULT',
      'EINVAL',
    ],
  ],
  [
    2n ** 53n + 1n,
    '2^53+1',
    [
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ok',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
    ],
  ],
  [
    2n ** 47n,
    'TASK_SIZE+4096 (2^47)',
    [
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ok',
      'ok',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'EINVAL',
      'EINVAL',
      'EFAULT',
      'EINVAL',
    ],
  ],
  [
    2n ** 47n - 4096n,
    'TASK_SIZE',
    [
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ok',
      'ok',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'EINVAL',
      'ENOMEM',
      'EFAULT',
      'EINVAL',
    ],
  ],
  [
    2n ** 64n - 2n ** 21n,
    '2^64-2MiB',
    [
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ENOMEM',
      'ok',
      'ok',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'EINVAL',
      'EINVAL',
      'EFAULT',
      'EINVAL',
    ],
  ],
  [
    2n ** 64n - 2n ** 21n + 4095n,
    '2^64-2MiB+4095',
    [
      'ENOMEM',
      'EINVAL',
      'ENOMEM',
      'ENOMEM',
      'ok',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'EINVAL',
      'EINVAL',
      'ENOMEM',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      'EINVAL',
    ],
  ],
];

describe('mm syscalls with u64 arguments (library)', () => {
  it("give the live kernel's errno at 2^64-1, 2^64-4096, 2^63, 2^53+1 and the TASK_SIZE edges", () => {
    const sys = new System({ ram: 64 * 1024 * 1024 });
    const p = sys.createProcess('p');
    assert.equal(sys.mmap(p, BASE, 1 << 20, 3, A | mman.MAP_FIXED_NOREPLACE), BASE);
    const end = BASE + (1 << 20);
    const calls: [string, (v: bigint) => number][] = [
      ['mmap length', (v) => sys.mmap(p, 0, v, 3, A)],
      ['mmap length hugetlb', (v) => sys.mmap(p, 0, v, 3, A | mman.MAP_HUGETLB)],
      ['mmap length, bad type', (v) => sys.mmap(p, 0, v, 3, mman.MAP_ANONYMOUS | 0x0f)],
      ['mmap MAP_FIXED addr', (v) => sys.mmap(p, v, 4096, 3, A | mman.MAP_FIXED)],
      ['mmap hint addr', (v) => sys.mmap(p, v, 4096, 3, A)],
      ['mmap offset', (v) => sys.mmap(p, 0, 4096, 3, A, -1, v)],
      ['munmap length', (v) => sys.munmap(p, end, v)],
      ['munmap addr', (v) => sys.munmap(p, v, 4096)],
      ['mprotect length', (v) => sys.mprotect(p, end, v, mman.PROT_READ)],
      ['mprotect addr', (v) => sys.mprotect(p, v, 4096, mman.PROT_READ)],
      ['madvise length', (v) => sys.madvise(p, end, v, mman.MADV.NORMAL)],
      ['madvise length from 0', (v) => sys.madvise(p, 0, v, mman.MADV.NORMAL)],
      ['madvise addr', (v) => sys.madvise(p, v, 4096, mman.MADV.NORMAL)],
      ['mremap old_len', (v) => sys.mremap(p, BASE, v, 4096, 0, 0)],
      ['mremap new_len', (v) => sys.mremap(p, BASE, 4096, v, mman.MREMAP_MAYMOVE, 0)],
      ['mremap addr', (v) => sys.mremap(p, v, 4096, 8192, mman.MREMAP_MAYMOVE, 0)],
      ['mremap new_addr', (v) => sys.mremap(p, BASE, 4096, 4096, mman.MREMAP_MAYMOVE | mman.MREMAP_FIXED, v)],
    ];
    for (const [v, name, want] of TABLE) {
      const got = calls.map(([, f]) => res(f(v)));
      assert.deepEqual(
        Object.fromEntries(calls.map(([c], i) => [c, got[i]])),
        Object.fromEntries(calls.map(([c], i) => [c, want[i]])),
        name,
      );
    }
  });

  it('mprotect with a length of 2^63 changes the mapping before failing with -ENOMEM', () => {
    const sys = new System({ ram: 64 * 1024 * 1024 });
    const p = sys.createProcess('p');
    assert.equal(sys.mmap(p, BASE, 1 << 20, 3, A | mman.MAP_FIXED_NOREPLACE), BASE);
    assert.equal(sys.write(p, BASE, new Uint8Array([5])), 1);
    // do_mprotect_pkey(): no wrap, so the VMAs from start on change up to the first hole.
    assert.equal(sys.mprotect(p, BASE, 2n ** 63n, mman.PROT_READ), -Errno.ENOMEM);
    assert.equal(sys.write(p, BASE, new Uint8Array([6])), -Errno.EFAULT);
    // The wrap is checked before the prot bits; an address past the user space after them.
    assert.equal(sys.mprotect(p, BASE, 2n ** 64n - 4096n, 0x100), -Errno.ENOMEM);
    assert.equal(sys.mprotect(p, 2n ** 63n, 4096, 0x100), -Errno.EINVAL);
  });

  it('mmap: error-pointer addresses, hugetlb wraps, and file offsets past MAX_LFS_FILESIZE', () => {
    const sys = new System({ ram: 64 * 1024 * 1024 });
    const p = sys.createProcess('p');
    // MAP_FIXED_NOREPLACE implies MAP_FIXED: 2^64 - 6 comes back from get_unmapped_area() as -ENXIO.
    assert.equal(sys.mmap(p, 2n ** 64n - 6n, 4096, 1, A | mman.MAP_FIXED_NOREPLACE), -Errno.ENXIO);
    // hugetlb checks the huge-page alignment of a fixed address first.
    assert.equal(sys.mmap(p, 2n ** 64n - 6n, 4096, 1, A | mman.MAP_FIXED | mman.MAP_HUGETLB), -Errno.EINVAL);
    assert.equal(sys.mmap(p, 2n ** 63n, 4096, 1, A | mman.MAP_FIXED | mman.MAP_HUGETLB), -Errno.ENOMEM);
    assert.equal(
      sys.mmap(p, 0, 2n ** 64n - 1n, 1, mman.MAP_SHARED | mman.MAP_ANONYMOUS | mman.MAP_HUGETLB),
      -Errno.EINVAL,
    );
    // An unaligned fixed address past TASK_SIZE - len is -ENOMEM before its alignment is checked,
    // and so is one with a bad mapping type (the type is looked at after the address).
    assert.equal(sys.mmap(p, 2 ** 47 - 100, 4096, 1, A | mman.MAP_FIXED), -Errno.ENOMEM);
    assert.equal(
      sys.mmap(p, 2 ** 47 - 100, 4096, 1, mman.MAP_ANONYMOUS | 0x0f | mman.MAP_FIXED),
      -Errno.ENOMEM,
    );
    // file_mmap_ok(): a memfd maps up to MAX_LFS_FILESIZE, so the last page must be below 2^51.
    const fd = sys.memfdCreate('x', 0);
    assert.ok(fd >= 0);
    assert.ok(sys.mmap(p, 0, 4096, 1, mman.MAP_SHARED, fd, 2n ** 62n) > 0);
    assert.ok(sys.mmap(p, 0, 4096, 1, mman.MAP_SHARED, fd, 2n ** 63n - 8192n) > 0);
    assert.equal(sys.mmap(p, 0, 4096, 1, mman.MAP_SHARED, fd, 2n ** 63n - 4096n), -Errno.EOVERFLOW);
  });

  it('mremap: lengths page-aligned modulo 2^64, and the wrapped overlap check', () => {
    const sys = new System({ ram: 64 * 1024 * 1024 });
    const p = sys.createProcess('p');
    assert.equal(sys.mmap(p, BASE, 1 << 20, 3, A | mman.MAP_FIXED_NOREPLACE), BASE);
    // A shrink by more than TASK_SIZE: do_vmi_munmap() of the tail is -EINVAL.
    assert.equal(sys.mremap(p, BASE, 2n ** 63n, 4096, 0, 0), -Errno.EINVAL);
    // An old length within a page of 2^64 aligns to 0: duplicating a private mapping is -EINVAL.
    assert.equal(sys.mremap(p, BASE, 2n ** 64n - 1n, 4096, mman.MREMAP_MAYMOVE, 0), -Errno.EINVAL);
  });
});
