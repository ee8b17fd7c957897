/**
 * Library callers with bad arguments: each gets the kernel's errno, and the System stays usable
 * (no lock left held by a kernel path that threw halfway).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Errno, mman, System } from '../../src/index.ts';

const RW = mman.PROT_READ | mman.PROT_WRITE;
const ANON = mman.MAP_PRIVATE | mman.MAP_ANONYMOUS;

describe('bad library arguments', () => {
  it('get the errno, and the next good call still works', () => {
    const sys = new System({ ram: 16 * 1024 * 1024 });
    const p = sys.createProcess('p');
    const cases: [string, () => number][] = [
      ['mmap NaN addr', () => sys.mmap(p, Number.NaN, 4096, RW, ANON)],
      ['mmap fractional length', () => sys.mmap(p, 0, 1.5, RW, ANON)],
      ['mmap NaN length', () => sys.mmap(p, 0, Number.NaN, RW, ANON)],
      ['mmap length -1 (u64 max)', () => sys.mmap(p, 0, -1, RW, ANON)],
      ['mmap BigInt above u64', () => sys.mmap(p, 0, 2n ** 64n, RW, ANON)],
      ['mmap NaN prot', () => sys.mmap(p, 0, 4096, Number.NaN, ANON)],
      ['munmap NaN', () => sys.munmap(p, Number.NaN, 4096)],
      ['munmap -4096', () => sys.munmap(p, -4096, 4096)],
      ['mprotect Infinity', () => sys.mprotect(p, Number.POSITIVE_INFINITY, 4096, RW)],
      ['madvise string', () => sys.madvise(p, '0x1000' as unknown as number, 4096, 4)],
      ['mremap NaN', () => sys.mremap(p, Number.NaN, 4096, 8192, 1, 0)],
      ['write NaN', () => sys.write(p, Number.NaN, new Uint8Array(4))],
      ['read -4096', () => sys.read(p, -4096, 16).ret],
      ['read 2^53-1 bytes', () => sys.read(p, 0x10000, Number.MAX_SAFE_INTEGER).ret],
    ];
    const got = cases.map(([name, f]) => [name, f()]);
    assert.deepEqual(got, [
      ['mmap NaN addr', -Errno.EINVAL],
      ['mmap fractional length', -Errno.EINVAL],
      ['mmap NaN length', -Errno.EINVAL],
      ['mmap length -1 (u64 max)', -Errno.ENOMEM],
      ['mmap BigInt above u64', -Errno.EINVAL],
      ['mmap NaN prot', -Errno.EINVAL],
      ['munmap NaN', -Errno.EINVAL],
      ['munmap -4096', -Errno.EINVAL],
      ['mprotect Infinity', -Errno.EINVAL],
      ['madvise string', -Errno.EINVAL],
      ['mremap NaN', -Errno.EINVAL],
      ['write NaN', -Errno.EFAULT],
      ['read -4096', -Errno.EFAULT],
      ['read 2^53-1 bytes', -Errno.EFAULT],
    ]);
    const addr = sys.mmap(p, 0, 4096, RW, ANON);
    assert.ok(addr > 0, `mmap after the bad calls: ${addr}`);
    assert.equal(sys.write(p, addr, new Uint8Array([1, 2, 3])), 3);
    assert.deepEqual([...sys.read(p, addr, 3).data], [1, 2, 3]);
  });

  it('a BigInt length that fits is taken as the u64 it is', () => {
    const sys = new System({ ram: 16 * 1024 * 1024 });
    const p = sys.createProcess('p');
    const addr = sys.mmap(p, 0, 8192n, RW, ANON);
    assert.ok(addr > 0);
    assert.equal(sys.munmap(p, BigInt(addr), 8192n), 0);
  });

  it('a System config the model cannot hold is -EINVAL naming the field', () => {
    assert.throws(() => new System({ ram: 0 }), { code: 'EINVAL', field: 'ram' });
    assert.throws(() => new System({ ram: 2 ** 44 }), { code: 'EINVAL', field: 'ram' });
    assert.throws(() => new System({ swap: Number.NaN }), { code: 'EINVAL', field: 'swap' });
  });
});
