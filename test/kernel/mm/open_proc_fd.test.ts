/*
 * open(2) of /proc/self/fd/N: a new open file of the same inode with its own access mode, unlike
 * dup(). The expected values are what Linux 6.18 does: each case was run on a live 6.18 kernel as
 * an ordinary user, on memfds (tmpfs and hugetlbfs). Device files: test/kernel/drivers/sdk_device.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_SEAL_GROW,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_HUGETLB,
  O_ACCMODE,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TMPFILE,
  O_TRUNC,
  O_WRONLY,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { assertOracles } from '../../../src/oracles/index.ts';
import { MiB, PAGE, RW, setup } from './mm_helpers.ts';

const reopen = (sys: System, p: Process, fd: number, flags: number): number =>
  sys.open(p, `/proc/self/fd/${fd}`, flags);

function memfd(sys: System, size: number, flags = MFD_ALLOW_SEALING): number {
  const fd = sys.memfdCreate('t', flags);
  assert.ok(fd >= 0, `memfd_create: ${fd}`);
  assert.equal(sys.ftruncate(fd, size), 0);
  return fd;
}

const size = (sys: System, fd: number): number => sys.fileOf(fd)!.inode.size;

describe('open() of /proc/self/fd/N', () => {
  it('opens the same inode anew: seals are shared, the access mode is the new one', () => {
    const { sys, p } = setup();
    const fd = memfd(sys, 8192);
    const ro = reopen(sys, p, fd, O_RDONLY);
    assert.ok(ro >= 0);
    assert.notEqual(sys.fileOf(ro), sys.fileOf(fd));
    assert.equal(sys.fileOf(ro)!.inode, sys.fileOf(fd)!.inode);
    assert.equal(sys.fcntl(ro, F_ADD_SEALS, F_SEAL_SHRINK), -Errno.EPERM);
    assert.equal(sys.fcntl(ro, F_GET_SEALS), 0);
    assert.equal(sys.ftruncate(ro, 0), -Errno.EINVAL);
    assert.equal(sys.pwrite(ro, Uint8Array.of(1), 0), -Errno.EBADF);
    assert.equal(sys.fallocate(ro, 0, 0, PAGE), -Errno.EBADF);
    assert.equal(sys.mmap(p, 0, PAGE, RW, MAP_SHARED, ro, 0), -Errno.EACCES);
    assert.ok(sys.mmap(p, 0, PAGE, RW, MAP_PRIVATE, ro, 0) > 0);
    const shared = sys.mmap(p, 0, PAGE, PROT_READ, MAP_SHARED, ro, 0);
    assert.ok(shared > 0);
    assert.equal(sys.mprotect(p, shared, PAGE, RW), -Errno.EACCES);
    // The seal a read-write reopen adds is the inode's.
    const rw = reopen(sys, p, ro, O_RDWR);
    assert.equal(sys.fcntl(rw, F_ADD_SEALS, F_SEAL_GROW), 0);
    assert.equal(sys.fcntl(fd, F_GET_SEALS), F_SEAL_GROW);
    assertOracles(sys);
  });

  it('O_WRONLY may write and seal but not read or map; O_ACCMODE may neither read nor write', () => {
    const { sys, p } = setup();
    const fd = memfd(sys, 8192);
    const wo = reopen(sys, p, fd, O_WRONLY);
    assert.equal(sys.pread(wo, 1, 0).ret, -Errno.EBADF);
    assert.equal(sys.mmap(p, 0, PAGE, PROT_READ, MAP_PRIVATE, wo, 0), -Errno.EACCES);
    assert.equal(sys.mmap(p, 0, PAGE, PROT_WRITE, MAP_SHARED, wo, 0), -Errno.EACCES);
    assert.equal(sys.fcntl(wo, F_GET_SEALS), 0);
    assert.equal(sys.fcntl(wo, F_ADD_SEALS, F_SEAL_GROW), 0);
    assert.equal(sys.pwrite(wo, Uint8Array.of(1), 0), 1);

    const none = reopen(sys, p, fd, O_ACCMODE);
    assert.ok(none >= 0);
    assert.equal(sys.pwrite(none, Uint8Array.of(1), 0), -Errno.EBADF);
    assert.equal(sys.pread(none, 1, 0).ret, -Errno.EBADF);
    assert.equal(sys.mmap(p, 0, PAGE, PROT_READ, MAP_SHARED, none, 0), -Errno.EACCES);
    assert.equal(sys.fcntl(none, F_GET_SEALS), F_SEAL_GROW);
    assert.equal(sys.fcntl(none, F_ADD_SEALS, F_SEAL_SHRINK), -Errno.EPERM);
    assert.equal(sys.ftruncate(none, 0), -Errno.EINVAL);
    assert.equal(sys.fallocate(none, 0, 0, PAGE), -Errno.EBADF);
    assertOracles(sys);
  });

  it('an O_PATH file takes close(), dup() and open() only; O_PATH drops O_TRUNC and O_CREAT | O_EXCL', () => {
    const { sys, p } = setup();
    const fd = memfd(sys, 8192);
    const path = reopen(sys, p, fd, O_PATH | O_TRUNC);
    assert.ok(path >= 0);
    assert.equal(size(sys, fd), 8192);
    assert.equal(sys.fcntl(path, F_GET_SEALS), -Errno.EBADF);
    assert.equal(sys.fcntl(path, F_ADD_SEALS, F_SEAL_SHRINK), -Errno.EBADF);
    assert.equal(sys.mmap(p, 0, PAGE, PROT_READ, MAP_SHARED, path, 0), -Errno.EBADF);
    assert.equal(sys.ftruncate(path, 0), -Errno.EBADF);
    assert.equal(sys.pread(path, 1, 0).ret, -Errno.EBADF);
    assert.ok(sys.dup(path) >= 0);
    const rw = reopen(sys, p, path, O_RDWR);
    assert.equal(sys.pwrite(rw, Uint8Array.of(7), 0), 1);
    assert.ok(reopen(sys, p, fd, O_PATH | O_CREAT | O_EXCL) >= 0);
    assert.equal(reopen(sys, p, fd, O_PATH | O_DIRECTORY), -Errno.ENOTDIR);
    // O_PATH | O_NOFOLLOW opens the magic link itself: a path through it stops at the link.
    const link = reopen(sys, p, fd, O_PATH | O_NOFOLLOW);
    assert.ok(link >= 0);
    assert.equal(reopen(sys, p, link, O_RDWR), -Errno.ELOOP);
    assert.equal(reopen(sys, p, link, O_RDONLY), -Errno.ELOOP);
    const again = reopen(sys, p, link, O_PATH);
    assert.ok(again >= 0);
    assert.equal(reopen(sys, p, again, O_RDWR), -Errno.ELOOP);
    assert.equal(sys.close(path), 0);
    assertOracles(sys);
  });

  it('refuses what a path walk to a magic link of a regular file refuses', () => {
    const { sys, p } = setup();
    const fd = memfd(sys, 8192);
    assert.equal(reopen(sys, p, fd, O_RDWR | O_CREAT | O_EXCL), -Errno.EEXIST);
    assert.equal(reopen(sys, p, fd, O_RDONLY | O_DIRECTORY), -Errno.ENOTDIR);
    assert.equal(reopen(sys, p, fd, O_CREAT | O_DIRECTORY), -Errno.EINVAL);
    assert.equal(reopen(sys, p, fd, O_TMPFILE | O_RDWR), -Errno.ENOTDIR);
    assert.equal(reopen(sys, p, fd, O_TMPFILE | O_RDONLY), -Errno.EINVAL);
    assert.equal(reopen(sys, p, fd, O_RDWR | O_NOFOLLOW), -Errno.ELOOP);
    // Flags open() does not know are ignored; O_CREAT of an existing file opens it.
    assert.ok(reopen(sys, p, fd, O_RDWR | 0x40000000) >= 0);
    assert.ok(reopen(sys, p, fd, O_RDWR | O_CREAT | O_CLOEXEC) >= 0);
    assert.equal(sys.open(p, `/proc/self/fd/0${fd}`, O_RDONLY), -Errno.ENOENT);
    assert.equal(sys.open(p, `/proc/self/fd/+${fd}`, O_RDONLY), -Errno.ENOENT);
    assert.equal(sys.open(p, '/proc/self/fd/99', O_RDONLY), -Errno.ENOENT);
    assert.equal(sys.open(p, '/proc/self/fd/99999999999999999999', O_RDONLY), -Errno.ENOENT);
    assert.equal(sys.open(p, `/proc/self/fd/${fd}/`, O_RDONLY), -Errno.ENOTDIR);
    assert.ok(sys.open(p, `/proc/self/fd//${fd}`, O_RDONLY) >= 0);
    assert.equal(sys.open(p, 'proc/self/fd/3', O_RDONLY), -Errno.ENOENT);
    // The path ends at a NUL; PATH_MAX counts its bytes (from the source: getname()).
    assert.ok(sys.open(p, `/proc/self/fd/${fd}\0/x`, O_RDONLY) >= 0);
    assert.equal(sys.open(p, `/proc/self/fd/${'é'.repeat(2048)}`, O_RDONLY), -Errno.ENAMETOOLONG);
    assert.equal(sys.open(p, `/proc/self/fd/${'e'.repeat(2048)}`, O_RDONLY), -Errno.ENOENT);
  });

  it('O_TRUNC truncates to 0, even with O_RDONLY and under F_SEAL_WRITE; F_SEAL_SHRINK refuses it', () => {
    const { sys, p } = setup();
    const a = memfd(sys, 8192);
    assert.ok(reopen(sys, p, a, O_RDONLY | O_TRUNC) >= 0);
    assert.equal(size(sys, a), 0);
    assert.equal(sys.fcntl(a, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    // Nothing to shrink: the seal does not stand in the way.
    assert.ok(reopen(sys, p, a, O_RDWR | O_TRUNC) >= 0);

    const b = memfd(sys, 8192);
    assert.equal(sys.fcntl(b, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    assert.equal(reopen(sys, p, b, O_RDWR | O_TRUNC), -Errno.EPERM);
    assert.equal(reopen(sys, p, b, O_RDONLY | O_TRUNC), -Errno.EPERM);
    assert.equal(size(sys, b), 8192);

    const c = memfd(sys, 8192);
    assert.equal(sys.fcntl(c, F_ADD_SEALS, F_SEAL_WRITE), 0);
    assert.ok(reopen(sys, p, c, O_RDWR | O_TRUNC) >= 0);
    assert.equal(size(sys, c), 0);

    const d = memfd(sys, 8192);
    assert.ok(reopen(sys, p, d, O_ACCMODE | O_TRUNC) >= 0);
    assert.equal(size(sys, d), 0);
    assertOracles(sys);
  });

  it('truncates a hugetlbfs file to 0 with O_TRUNC', () => {
    const { sys, p } = setup({ ram: 64 * MiB, hugetlbPages: 4 });
    const h = memfd(sys, 2 * MiB, MFD_HUGETLB | MFD_ALLOW_SEALING);
    assert.ok(reopen(sys, p, h, O_RDWR | O_TRUNC) >= 0);
    assert.equal(size(sys, h), 0);
    assertOracles(sys);
  });

  it('keeps the file and its data while any open file of it is left', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('t', 0);
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    const a = sys.mmap(p, 0, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    assert.equal(sys.write(p, a + 100, Uint8Array.of(1)), 1);
    const ro = reopen(sys, p, fd, O_RDONLY);
    const inode = sys.fileOf(ro)!.inode;
    assert.equal(sys.close(fd), 0);
    assert.equal(sys.munmap(p, a, 2 * PAGE), 0);
    assert.ok(sys.mappings.has(inode.mappingId));
    const r = sys.pread(ro, 1, 100);
    assert.equal(r.ret, 1);
    assert.equal(r.data[0], 1);
    const used = sys.stats().used;
    assert.equal(sys.close(ro), 0);
    // The last close dropped the file and its page.
    assert.ok(!sys.mappings.has(inode.mappingId));
    assert.equal(sys.stats().used, used - PAGE);
    assertOracles(sys);
  });
});
