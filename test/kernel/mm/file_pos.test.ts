/*
 * The file position of an open file: read(2), write(2) and lseek(2) on memfds. The expected values
 * are what Linux 6.18 gives: each sequence was run on a live 6.18 kernel as an ordinary user.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  F_ADD_SEALS,
  F_SEAL_GROW,
  F_SEAL_WRITE,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_HUGETLB,
  O_APPEND,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  PROT_READ,
  PROT_WRITE,
  SEEK_CUR,
  SEEK_DATA,
  SEEK_END,
  SEEK_HOLE,
  SEEK_SET,
} from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { assertOracles } from '../../../src/oracles/index.ts';
import { MiB, PAGE, setup } from './mm_helpers.ts';

const reopen = (sys: System, p: Process, fd: number, flags: number): number =>
  sys.open(p, `/proc/self/fd/${fd}`, flags);
const pos = (sys: System, fd: number): number => sys.lseek(fd, 0, SEEK_CUR);
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

describe('read() and write() at the file position', () => {
  it('advance the position; dup() shares it, a second open() has its own', () => {
    const { sys, p } = setup({ ram: 64 * MiB });
    const fd = sys.memfdCreate('t', 0);
    assert.equal(sys.fdWrite(fd, bytes(1, 2, 3, 4)), 4);
    assert.equal(pos(sys, fd), 4);
    const d = sys.dup(fd);
    assert.equal(pos(sys, d), 4, 'dup() shares the position');
    assert.equal(sys.lseek(fd, 1, SEEK_SET), 1);
    const r = sys.fdRead(d, 10);
    assert.equal(r.ret, 3, 'a read stops at the end of the file');
    assert.deepEqual([...r.data], [2, 3, 4]);
    assert.equal(pos(sys, fd), 4, 'a read through the dup moved the shared position');
    const o = reopen(sys, p, fd, O_RDWR);
    assert.equal(pos(sys, o), 0, 'a second open file starts at 0');
    assert.deepEqual([...sys.fdRead(o, 2).data], [1, 2]);
    assert.equal(pos(sys, fd), 4);
    assert.equal(sys.fdRead(fd, 8).ret, 0, 'at the end, a read returns 0');
    assertOracles(sys);
  });

  it('pread() and pwrite() leave the position', () => {
    const { sys } = setup({ ram: 64 * MiB });
    const fd = sys.memfdCreate('t', 0);
    assert.equal(sys.pwrite(fd, bytes(5, 6), 100), 2);
    assert.equal(sys.pread(fd, 2, 100).ret, 2);
    assert.equal(pos(sys, fd), 0);
    assert.deepEqual([...sys.fdRead(fd, 1).data], [0], 'the hole before the write reads as zero');
  });

  it('O_APPEND writes at the end, and so does its pwrite() whatever the offset', () => {
    const { sys, p } = setup({ ram: 64 * MiB });
    const fd = sys.memfdCreate('t', 0);
    assert.equal(sys.ftruncate(fd, 5 * PAGE), 0);
    const a = reopen(sys, p, fd, O_RDWR | O_APPEND);
    assert.equal(sys.fdWrite(a, bytes(7, 7)), 2);
    assert.equal(pos(sys, a), 5 * PAGE + 2);
    assert.equal(sys.lseek(fd, 0, SEEK_END), 5 * PAGE + 2);
    assert.equal(sys.pwrite(a, bytes(8), 0), 1);
    assert.equal(sys.lseek(fd, 0, SEEK_END), 5 * PAGE + 3);
    assert.deepEqual([...sys.pread(fd, 1, 0).data], [0], 'offset 0 was not written');
  });

  it('the access mode, O_PATH, seals and hugetlbfs refuse as the kernel does', () => {
    const { sys, p } = setup({ ram: 64 * MiB, hugetlbPages: 2 });
    const fd = sys.memfdCreate('t', MFD_ALLOW_SEALING);
    assert.equal(sys.fdWrite(reopen(sys, p, fd, O_RDONLY), bytes(1)), -Errno.EBADF);
    assert.equal(sys.fdRead(reopen(sys, p, fd, O_WRONLY), 1).ret, -Errno.EBADF);
    const path = reopen(sys, p, fd, O_PATH);
    assert.equal(sys.fdRead(path, 1).ret, -Errno.EBADF);
    assert.equal(sys.lseek(path, 0, SEEK_SET), -Errno.EBADF);
    assert.equal(sys.fdRead(fd, -1).ret, -Errno.EINVAL);
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), 0);
    assert.equal(sys.fdWrite(fd, bytes(1)), -Errno.EPERM, 'F_SEAL_GROW: nothing past the end');
    assert.equal(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
    assert.equal(sys.fdWrite(fd, bytes()), 0, 'a write of nothing is no write');
    assert.equal(pos(sys, fd), 0);
    const h = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.fdWrite(h, bytes(1)), -Errno.EINVAL, 'hugetlbfs has no write()');
    assert.equal(sys.fdRead(h, 4).ret, 0);
    assert.equal(sys.fdRead(12345, 1).ret, -Errno.EBADF);
  });
});

describe('pread() of a hugetlbfs file', () => {
  it('reads what was written through a mapping, at any offset in a huge page', () => {
    const { sys, p } = setup({ ram: 64 * MiB, hugetlbPages: 2 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.ftruncate(fd, 4 * MiB), 0);
    const m = sys.mmap(p, 0, 4 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert.ok(m > 0);
    assert.equal(sys.write(p, m + PAGE, bytes(9, 9, 9, 9)), 4);
    assert.equal(sys.write(p, m + 2 * MiB + 2 * PAGE, bytes(7, 7, 7, 7)), 4);
    const read = (off: number): number[] => {
      const r = sys.pread(fd, 8, off);
      return [r.ret, ...r.data];
    };
    assert.deepEqual(read(0), [8, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(read(PAGE), [8, 9, 9, 9, 9, 0, 0, 0, 0]);
    assert.deepEqual(read(PAGE - 2), [8, 0, 0, 9, 9, 9, 9, 0, 0]);
    assert.deepEqual(read(2 * MiB + 2 * PAGE), [8, 7, 7, 7, 7, 0, 0, 0, 0]);
    assert.deepEqual(read(3 * MiB), [8, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(read(4 * MiB - 2), [2, 0, 0]);
    assertOracles(sys);
  });
});

describe('lseek()', () => {
  it('SEEK_DATA and SEEK_HOLE walk a tmpfs file: a reserved page nothing wrote is a hole', () => {
    const { sys } = setup({ ram: 64 * MiB });
    const fd = sys.memfdCreate('t', 0);
    assert.equal(sys.fdWrite(fd, bytes(1, 2, 3, 4)), 4);
    assert.equal(sys.ftruncate(fd, 5 * PAGE), 0);
    assert.equal(sys.fallocate(fd, 0, 2 * PAGE, PAGE), 0);
    assert.equal(sys.pwrite(fd, bytes(9), 4 * PAGE), 1);
    // Page 0 written, 1 empty, 2 reserved, 3 empty, 4 written; the file ends at 5 pages.
    const offsets = [0, 1, 4095, 4096, 8192, 12288, 16384, 16385, 20479, 20480, -1];
    const data = [0, 1, 4095, 16384, 16384, 16384, 16384, 16385, 20479, -Errno.ENXIO, -Errno.ENXIO];
    const hole = [4096, 4096, 4096, 4096, 8192, 12288, 20480, 20480, 20480, -Errno.ENXIO, -Errno.ENXIO];
    assert.deepEqual(
      offsets.map((o) => sys.lseek(fd, o, SEEK_DATA)),
      data,
    );
    assert.deepEqual(
      offsets.map((o) => sys.lseek(fd, o, SEEK_HOLE)),
      hole,
    );
    assert.equal(pos(sys, fd), 20480, 'the last lseek that found something moved the position');
  });

  it('SEEK_SET, SEEK_CUR and SEEK_END; a whence past SEEK_HOLE and a position below 0 are -EINVAL', () => {
    const { sys } = setup({ ram: 64 * MiB });
    const fd = sys.memfdCreate('t', 0);
    assert.equal(sys.ftruncate(fd, 5 * PAGE), 0);
    assert.equal(sys.lseek(fd, 0, 5), -Errno.EINVAL);
    assert.equal(sys.lseek(fd, -1, SEEK_SET), -Errno.EINVAL);
    assert.equal(sys.lseek(fd, -1, SEEK_END), 5 * PAGE - 1);
    assert.equal(sys.lseek(fd, 10, SEEK_CUR), 5 * PAGE + 9);
    assert.equal(sys.lseek(fd, -(5 * PAGE + 10), SEEK_CUR), -Errno.EINVAL);
    assert.equal(pos(sys, fd), 5 * PAGE + 9, 'a refused lseek leaves the position');
    assert.equal(sys.lseek(fd, 2 ** 52, SEEK_SET), 2 ** 52, 'past the end is allowed');
  });

  it('a hugetlbfs file: before the end it is all data (default_llseek)', () => {
    const { sys } = setup({ ram: 64 * MiB, hugetlbPages: 2 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.ftruncate(fd, 4 * MiB), 0);
    const offsets = [0, 4096, 2 * MiB, 4 * MiB - 1, 4 * MiB, -1];
    assert.deepEqual(
      offsets.map((o) => sys.lseek(fd, o, SEEK_DATA)),
      [0, 4096, 2 * MiB, 4 * MiB - 1, -Errno.ENXIO, -Errno.EINVAL],
    );
    assert.deepEqual(
      offsets.map((o) => sys.lseek(fd, o, SEEK_HOLE)),
      [4 * MiB, 4 * MiB, 4 * MiB, 4 * MiB, -Errno.ENXIO, 4 * MiB],
    );
  });
});
