/**
 * tools/testing/selftests/mm/guard-regions.c ported to the model: the kselftest_harness fixture
 * guard_regions, each of its tests run once per fixture variant (anon: private anonymous memory,
 * shmem: a shared mapping of a memfd, file: a shared mapping of a file the test creates in the
 * current directory). The harness reports a run as `guard_regions.<variant>.<test>`; the cases
 * here are named `guard-regions.<variant>.<test>`, the file's name standing for the fixture's as
 * in the suite's other files. They come in the harness's order: every test of one variant, then
 * the next variant.
 *
 * The C test tells a guard page by the SIGSEGV an access to it raises, caught around a one-byte
 * read or write (try_read_buf(), try_write_buf()). Here that access is a one-byte System.read()
 * or System.write(), whose -EFAULT stands for the signal; any other failure fails the case.
 * PM_GUARD_REGION of /proc/self/pagemap is a pagemap entry of kind 'guard'.
 *
 * A test that skips itself for a variant (fork_cow, fork_wipeonfork and lazyfree outside anon,
 * the file-backed tests on anon, readonly_file outside file, memfd_write_seal outside shmem,
 * uffd and anon_zeropage on file) has no case for that variant: the harness reports SKIP there
 * and the test asserts nothing. Every run of the file variant is listed as not modelled: the
 * model has no disk filesystem. Also not modelled: userfaultfd, memfd seals and the PAGEMAP_SCAN
 * ioctl, which the model does not have, and MADV_COLLAPSE of shmem memory, which the model
 * refuses whatever the range holds. The model has no pidfds: process_madvise() on PIDFD_SELF is
 * System.processMadvise() with the calling process as its target.
 *
 * check_vmflag_guard() looks for `gu` among the VmFlags of the /proc/self/smaps entry of the VMA
 * that starts at the address: here the entry's vmFlags, which leave out `sd` (a flag the test
 * does not read). find_vma_procmap() (the PROCMAP_QUERY ioctl on /proc/self/maps, no flags) is
 * the /proc/self/maps entry of the VMA that contains the address.
 *
 * The ported form is the linux-mm mirror's (docs/fidelity.md): 6.18's tests, basic to
 * pagemap_scan, then collapse and smaps, which came with the series that made guard regions set
 * VM_MAYBE_GUARD, a flag the 6.18 kernel the model follows has.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { Errno } from '../kernel/errno.ts';
import {
  F_ADD_SEALS,
  F_SEAL_WRITE,
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { MapsEntry } from '../kernel/syscalls.ts';
import type { Process, SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, PMD_SIZE, expectRet, mmCase, show } from './mm_env.ts';

const pageSize = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
/** vm_util.h HPAGE_SIZE (1 << 21). */
const HPAGE_SIZE = PMD_SIZE;

type Backing = 'anon' | 'shmem' | 'file';

/** FIXTURE(guard_regions) and its variant, as FIXTURE_SETUP() leaves them. */
interface Fixture {
  readonly env: MmEnv;
  readonly backing: Backing;
  /** The memfd of the shmem variant, -1 for anon. */
  readonly fd: number;
}

const chr = (c: string): number => c.charCodeAt(0);
const hex = (a: number): string => `0x${a.toString(16)}`;

/** mmap_(): private anonymous memory, or a shared mapping of the fixture's file at `offset`. */
function mmap_(
  f: Fixture,
  addr: number,
  length: number,
  prot: number,
  extraFlags: number,
  offset = 0,
): number {
  if (f.backing === 'anon') return f.env.mmap(addr, length, prot, extraFlags | MAP_PRIVATE | MAP_ANONYMOUS);
  return f.env.mmap(addr, length, prot, extraFlags | MAP_SHARED, f.fd, offset);
}

/** ASSERT_NE(ptr, MAP_FAILED). */
function mapped(ptr: number, what: string): number {
  assert.ok(ptr >= 0, `${what}: MAP_FAILED (${show(ptr)})`);
  return ptr;
}

/**
 * try_access_buf(): whether a one-byte access completes. A write stores 'x', as the C test
 * does. -EFAULT is the fatal signal the C test catches; any other error fails the case.
 */
function tryAccess(f: Fixture, addr: number, write: boolean, proc: Process): boolean {
  const ret = write ? f.env.store(addr, Uint8Array.of(chr('x')), proc) : f.env.sys.read(proc, addr, 1).ret;
  if (ret === 1) return true;
  if (ret === -Errno.EFAULT) return false;
  assert.fail(`${write ? 'write to' : 'read from'} ${hex(addr)}: ${show(ret)}`);
}

const tryReadBuf = (f: Fixture, addr: number, proc = f.env.p): boolean => tryAccess(f, addr, false, proc);
const tryWriteBuf = (f: Fixture, addr: number, proc = f.env.p): boolean => tryAccess(f, addr, true, proc);
/** try_read_write_buf(): the read, then the write only if the read completed. */
const tryReadWriteBuf = (f: Fixture, addr: number, proc = f.env.p): boolean =>
  tryReadBuf(f, addr, proc) && tryWriteBuf(f, addr, proc);

/** ASSERT_EQ(access(page i), expected) for pages [from, to) of `base`. */
function expectAccess(
  access: (f: Fixture, addr: number) => boolean,
  f: Fixture,
  base: number,
  from: number,
  to: number,
  expected: (i: number) => boolean,
  what: string,
): void {
  for (let i = from; i < to; i++) {
    const got = access(f, base + i * pageSize);
    assert.equal(got, expected(i), `${what}: page ${i} ${got ? 'accessible' : 'faults'}`);
  }
}

const guarded = (): boolean => false;
const accessible = (): boolean => true;
const odd = (i: number): boolean => i % 2 !== 0;

function madvise(
  f: Fixture,
  addr: number,
  len: number,
  advice: number,
  expected: number,
  what: string,
): void {
  expectRet(f.env.madvise(addr, len, advice), expected, what);
}

/** A byte of the mapping, read as the C test dereferences a pointer (a fault fails the case). */
function byteAt(f: Fixture, addr: number, proc = f.env.p): number {
  return f.env.load(addr, 1, proc)[0];
}

/** set_pattern(): page i of the buffer filled with 'a' + i % 26. */
function setPattern(f: Fixture, ptr: number, numPages: number): void {
  for (let i = 0; i < numPages; i++) f.env.memset(ptr + i * pageSize, chr('a') + (i % 26), pageSize);
}

/** check_pattern_offset(): numPages pages from page pgoff hold set_pattern()'s bytes. */
function checkPatternOffset(f: Fixture, ptr: number, numPages: number, pgoff: number): boolean {
  const data = f.env.load(ptr + pgoff * pageSize, numPages * pageSize);
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== chr('a') + ((pgoff + Math.floor(i / pageSize)) % 26)) return false;
  }
  return true;
}

const checkPattern = (f: Fixture, ptr: number, numPages: number): boolean =>
  checkPatternOffset(f, ptr, numPages, 0);

/** is_buf_eq(). */
function isBufEq(f: Fixture, addr: number, size: number, c: number): boolean {
  return f.env.load(addr, size).every((b) => b === c);
}

/** The 10-page mmap_() most tests start with. */
function map10(f: Fixture): number {
  return mapped(mmap_(f, 0, 10 * pageSize, RW, 0), 'mmap_()');
}

/** The munmap() of those 10 pages most tests end with. */
function unmap10(f: Fixture, ptr: number): void {
  expectRet(f.env.munmap(ptr, 10 * pageSize), 0, 'munmap()');
}

/** Guards over all 10 pages, every one of which then faults on a read and on a write. */
function guardAll(f: Fixture, ptr: number): void {
  madvise(f, ptr, 10 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of the range');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, guarded, 'the range');
}

function basic(f: Fixture): void {
  const NUM_PAGES = 10;
  const ptr = mapped(mmap_(f, 0, NUM_PAGES * pageSize, RW, 0), 'mmap_()');
  const last = ptr + (NUM_PAGES - 1) * pageSize;

  assert.ok(tryReadWriteBuf(f, ptr), 'the first page is accessible');
  madvise(f, ptr, pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of page 0');
  assert.ok(!tryReadWriteBuf(f, ptr), 'page 0 faults');
  expectAccess(tryReadWriteBuf, f, ptr, 1, NUM_PAGES, accessible, 'the other pages');

  madvise(f, last, pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of the last page');
  assert.ok(!tryReadWriteBuf(f, ptr), 'page 0 faults');
  assert.ok(!tryReadWriteBuf(f, last), 'the last page faults');

  madvise(f, ptr, pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of page 0');
  assert.ok(tryReadWriteBuf(f, ptr), 'page 0 is accessible again');
  madvise(f, last, pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the last page');
  assert.ok(tryReadWriteBuf(f, last), 'the last page is accessible again');

  // A range of three, the first of them populated by now.
  madvise(f, ptr, 3 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of pages 0-2');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 3, guarded, 'pages 0-2');
  expectAccess(tryReadWriteBuf, f, ptr, 3, NUM_PAGES, accessible, 'pages 3-9');

  madvise(f, ptr, NUM_PAGES * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the range');
  expectAccess(tryReadWriteBuf, f, ptr, 0, NUM_PAGES, accessible, 'after the removal');

  // A removal where no guard is left must not touch what is mapped.
  madvise(f, ptr, NUM_PAGES * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE again');
  for (let i = 0; i < NUM_PAGES; i++) {
    assert.equal(byteAt(f, ptr + i * pageSize), chr('x'), `page ${i} keeps 'x'`);
  }

  expectRet(f.env.munmap(ptr, NUM_PAGES * pageSize), 0, 'munmap()');
}

/** A read-write VMA of `count` pages mapped MAP_FIXED at page `first` of a reserved region. */
function mapPages(f: Fixture, region: number, first: number, count: number, extraFlags = 0): number {
  const addr = region + first * pageSize;
  const ptr = mmap_(f, addr, count * pageSize, RW, MAP_FIXED | extraFlags);
  return mapped(ptr, `mmap_() of pages ${first}-${first + count - 1}`);
}

function multiVma(f: Fixture): void {
  const region = mapped(mmap_(f, 0, 100 * pageSize, PROT_NONE, 0), 'mmap_() of the reserve');
  const ptr1 = mapPages(f, region, 0, 10);
  const ptr2 = mapPages(f, region, 50, 5);
  const ptr3 = mapPages(f, region, 80, 20);
  expectRet(f.env.munmap(region + 10 * pageSize, 40 * pageSize), 0, 'munmap() of pages 10-49');
  expectRet(f.env.munmap(region + 55 * pageSize, 25 * pageSize), 0, 'munmap() of pages 55-79');

  // Over the gaps the advice still applies to every VMA, and the call reports -ENOMEM.
  madvise(f, region, 100 * pageSize, MADV.GUARD_INSTALL, -Errno.ENOMEM, 'MADV_GUARD_INSTALL over the gaps');
  expectAccess(tryReadWriteBuf, f, ptr1, 0, 10, guarded, 'the first VMA');
  expectAccess(tryReadWriteBuf, f, ptr2, 0, 5, guarded, 'the second VMA');
  expectAccess(tryReadWriteBuf, f, ptr3, 0, 20, guarded, 'the third VMA');

  madvise(f, region, 100 * pageSize, MADV.GUARD_REMOVE, -Errno.ENOMEM, 'MADV_GUARD_REMOVE over the gaps');
  expectAccess(tryReadWriteBuf, f, ptr1, 0, 10, accessible, 'the first VMA');
  expectAccess(tryReadWriteBuf, f, ptr2, 0, 5, accessible, 'the second VMA');
  expectAccess(tryReadWriteBuf, f, ptr3, 0, 20, accessible, 'the third VMA');

  // Executable VMAs in the gaps, which cannot merge with their neighbours.
  const RWX = RW | PROT_EXEC;
  mapped(mmap_(f, region + 10 * pageSize, 40 * pageSize, RWX, MAP_FIXED), 'mmap_() of pages 10-49');
  mapped(mmap_(f, region + 55 * pageSize, 25 * pageSize, RWX, MAP_FIXED), 'mmap_() of pages 55-79');

  madvise(f, region, 100 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL over five VMAs');
  expectAccess(tryReadWriteBuf, f, region, 0, 100, guarded, 'the five VMAs');
  madvise(f, region, 100 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE over five VMAs');
  expectAccess(tryReadWriteBuf, f, region, 0, 100, accessible, 'the five VMAs');

  expectRet(f.env.munmap(region, 100 * pageSize), 0, 'munmap()');
}

/**
 * Guards at both ends of three VMAs in one process_madvise() call, then removed in another.
 * PIDFD_SELF is the calling process itself (the model has no pidfds). The test's SKIP on EPERM
 * cannot arise: 6.18 asks for CAP_SYS_NICE only to advise another process's memory, and so does
 * the model; an EPERM here fails the ASSERT_EQ() on the count.
 */
function processMadviseTest(f: Fixture): void {
  const { env } = f;
  const region = mapped(mmap_(f, 0, 100 * pageSize, PROT_NONE, 0), 'mmap_() of the reserve');

  // MAP_POPULATE, so that the install overwrites populated entries.
  const ptr1 = mapPages(f, region, 1, 10, MAP_POPULATE);
  const ptr2 = mapPages(f, region, 50, 5);
  const ptr3 = mapPages(f, region, 79, 20);
  // The first and last page of each VMA.
  const ends = [ptr1, ptr1 + 9 * pageSize, ptr2, ptr2 + 4 * pageSize, ptr3, ptr3 + 19 * pageSize];
  const vec = ends.map((base) => ({ base, len: pageSize }));

  expectRet(env.munmap(region, pageSize), 0, 'munmap() of page 0');
  expectRet(env.munmap(region + 11 * pageSize, 39 * pageSize), 0, 'munmap() of pages 11-49');
  expectRet(env.munmap(region + 55 * pageSize, 24 * pageSize), 0, 'munmap() of pages 55-78');
  expectRet(env.munmap(region + 99 * pageSize, pageSize), 0, 'munmap() of page 99');

  const count = env.sys.processMadvise(env.p, env.p, vec, MADV.GUARD_INSTALL, 0);
  expectRet(count, 6 * pageSize, 'process_madvise(MADV_GUARD_INSTALL) of six pages');
  for (const addr of ends) assert.ok(!tryReadWriteBuf(f, addr), `${hex(addr)} faults`);

  // The test does not check this call's count.
  env.sys.processMadvise(env.p, env.p, vec, MADV.GUARD_REMOVE, 0);
  for (const addr of ends) assert.ok(tryReadWriteBuf(f, addr), `${hex(addr)} is accessible again`);

  expectRet(env.munmap(ptr1, 10 * pageSize), 0, 'munmap() of the first VMA');
  expectRet(env.munmap(ptr2, 5 * pageSize), 0, 'munmap() of the second VMA');
  expectRet(env.munmap(ptr3, 20 * pageSize), 0, 'munmap() of the third VMA');
}

function munmapTest(f: Fixture): void {
  const ptr = map10(f);
  const last = ptr + 9 * pageSize;
  madvise(f, ptr, pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of page 0');
  madvise(f, last, pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of page 9');
  assert.ok(!tryReadWriteBuf(f, ptr), 'page 0 faults');
  assert.ok(!tryReadWriteBuf(f, last), 'page 9 faults');

  expectRet(f.env.munmap(ptr, pageSize), 0, 'munmap() of page 0');
  expectRet(f.env.munmap(last, pageSize), 0, 'munmap() of page 9');
  const new1 = mapped(mmap_(f, ptr, pageSize, RW, MAP_FIXED), 'mmap_() over page 0');
  const new2 = mapped(mmap_(f, last, pageSize, RW, MAP_FIXED), 'mmap_() over page 9');
  assert.ok(tryReadWriteBuf(f, new1), 'the new page 0 is accessible: munmap() dropped its marker');
  assert.ok(tryReadWriteBuf(f, new2), 'the new page 9 is accessible: munmap() dropped its marker');

  unmap10(f, ptr);
}

function mprotectTest(f: Fixture): void {
  const ptr = map10(f);
  const mid = ptr + 5 * pageSize;
  madvise(f, mid, 2 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of pages 5-6');
  expectAccess(tryReadWriteBuf, f, ptr, 5, 7, guarded, 'pages 5-6');

  expectRet(f.env.mprotect(mid, 2 * pageSize, PROT_READ), 0, 'mprotect(PROT_READ) of pages 5-6');
  expectAccess(tryReadBuf, f, ptr, 5, 7, guarded, 'read-only pages 5-6');

  madvise(f, mid, 2 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of pages 5-6 again');
  expectAccess(tryReadBuf, f, ptr, 5, 7, guarded, 'read-only pages 5-6');

  madvise(f, ptr, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the range');
  expectAccess(tryReadBuf, f, ptr, 0, 10, accessible, 'after the removal');

  unmap10(f, ptr);
}

function splitMerge(f: Fixture): void {
  const ptr = map10(f);
  guardAll(f, ptr);

  for (const i of [2, 5, 8]) {
    expectRet(f.env.munmap(ptr + i * pageSize, pageSize), 0, `munmap() of page ${i}`);
  }
  for (const [from, to] of [
    [0, 2],
    [2, 5],
    [6, 8],
    [9, 10],
  ]) {
    expectAccess(tryReadWriteBuf, f, ptr, from, to, guarded, 'after the split');
  }

  // Mapped again, the unmapped pages come without markers.
  for (const i of [2, 5, 8]) {
    mapped(mmap_(f, ptr + i * pageSize, pageSize, RW, MAP_FIXED), `mmap_() over page ${i}`);
  }
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, (i) => i === 2 || i === 5 || i === 8, 'after the remap');

  madvise(f, ptr, 10 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of the range again');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, guarded, 'the range');

  const split = (prot: number, what: string): void => {
    expectRet(f.env.mprotect(ptr, 3 * pageSize, prot), 0, `mprotect(${what}) of pages 0-2`);
    expectRet(f.env.mprotect(ptr + 7 * pageSize, 3 * pageSize, prot), 0, `mprotect(${what}) of pages 7-9`);
  };
  split(PROT_READ, 'PROT_READ');
  expectAccess(tryReadBuf, f, ptr, 0, 10, guarded, 'split in three');
  split(RW, 'PROT_READ | PROT_WRITE');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, guarded, 'merged again');

  split(PROT_READ, 'PROT_READ');
  madvise(f, ptr, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE over three VMAs');
  expectAccess(tryReadBuf, f, ptr, 0, 10, accessible, 'split, after the removal');
  split(RW, 'PROT_READ | PROT_WRITE');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, accessible, 'merged, after the removal');

  unmap10(f, ptr);
}

function dontneed(f: Fixture): void {
  const ptr = map10(f);
  for (let i = 0; i < 10; i++) f.env.memcpy(ptr + i * pageSize, Uint8Array.of(chr('y')));
  for (let i = 0; i < 10; i += 2) {
    madvise(f, ptr + i * pageSize, pageSize, MADV.GUARD_INSTALL, 0, `MADV_GUARD_INSTALL of page ${i}`);
  }
  madvise(f, ptr, 10 * pageSize, MADV.DONTNEED, 0, 'MADV_DONTNEED of the range');

  for (let i = 0; i < 10; i++) {
    const curr = ptr + i * pageSize;
    const result = tryReadBuf(f, curr);
    if (i % 2 === 0) {
      assert.ok(!result, `page ${i} still faults on a read`);
    } else {
      assert.ok(result, `page ${i} is readable`);
      // Anonymous memory reads back as zeroes; a file's pages keep their data.
      const expected = f.backing === 'anon' ? 0 : chr('y');
      assert.equal(byteAt(f, curr), expected, `page ${i} after MADV_DONTNEED`);
    }
    assert.equal(tryWriteBuf(f, curr), i % 2 !== 0, `page ${i} on a write`);
  }

  unmap10(f, ptr);
}

function mlockTest(f: Fixture): void {
  const { env } = f;
  const ptr = map10(f);
  for (let i = 0; i < 10; i++) env.memcpy(ptr + i * pageSize, Uint8Array.of(chr('y')));

  expectRet(env.sys.mlock(env.p, ptr, 10 * pageSize), 0, 'mlock()');
  madvise(f, ptr, 10 * pageSize, MADV.GUARD_INSTALL, -Errno.EINVAL, 'MADV_GUARD_INSTALL on a locked range');
  expectRet(env.sys.munlock(env.p, ptr, 10 * pageSize), 0, 'munlock()');

  madvise(f, ptr, 5 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of pages 0-4');
  for (let i = 0; i < 10; i++) {
    const curr = ptr + i * pageSize;
    const result = tryReadWriteBuf(f, curr);
    if (i < 5) {
      assert.ok(!result, `page ${i} faults`);
    } else {
      assert.ok(result, `page ${i} is accessible`);
      assert.equal(byteAt(f, curr), chr('x'), `page ${i} holds the 'x' just written`);
    }
  }

  // Only the unguarded half can be locked (locking populates); removal works on locked pages.
  expectRet(env.sys.mlock(env.p, ptr + 5 * pageSize, 5 * pageSize), 0, 'mlock() of pages 5-9');
  madvise(f, ptr, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE over a partly locked range');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, accessible, 'after the removal');

  unmap10(f, ptr);
}

/** Guards on the first and last page of a 5-page mapping, as the mremap tests start. */
function guardBothEnds(f: Fixture, ptr: number): void {
  madvise(f, ptr, pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of page 0');
  madvise(f, ptr + 4 * pageSize, pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of page 4');
  assert.ok(!tryReadWriteBuf(f, ptr), 'page 0 faults');
  assert.ok(!tryReadWriteBuf(f, ptr + 4 * pageSize), 'page 4 faults');
}

function mremapMove(f: Fixture): void {
  const ptr = mapped(mmap_(f, 0, 5 * pageSize, RW, 0), 'mmap_()');
  guardBothEnds(f, ptr);

  const ptrNew = mapped(mmap_(f, 0, 5 * pageSize, PROT_NONE, 0), 'mmap_() of the target');
  expectRet(
    f.env.mremap(ptr, 5 * pageSize, 5 * pageSize, MREMAP_MAYMOVE | MREMAP_FIXED, ptrNew),
    ptrNew,
    'mremap(MREMAP_MAYMOVE | MREMAP_FIXED)',
  );
  assert.ok(!tryReadWriteBuf(f, ptrNew), 'page 0 faults after the move');
  assert.ok(!tryReadWriteBuf(f, ptrNew + 4 * pageSize), 'page 4 faults after the move');

  f.env.munmap(ptrNew, 5 * pageSize);
}

function mremapExpand(f: Fixture): void {
  let ptr = map10(f);
  expectRet(f.env.munmap(ptr + 5 * pageSize, 5 * pageSize), 0, 'munmap() of pages 5-9');
  guardBothEnds(f, ptr);

  ptr = mapped(f.env.mremap(ptr, 5 * pageSize, 10 * pageSize, 0), 'mremap() to 10 pages in place');
  assert.ok(!tryReadWriteBuf(f, ptr), 'page 0 faults after the expansion');
  assert.ok(!tryReadWriteBuf(f, ptr + 4 * pageSize), 'page 4 faults after the expansion');

  const ptrNew = mapped(mmap_(f, 0, 20 * pageSize, PROT_NONE, 0), 'mmap_() of the target');
  ptr = f.env.mremap(ptr, 10 * pageSize, 20 * pageSize, MREMAP_MAYMOVE | MREMAP_FIXED, ptrNew);
  expectRet(ptr, ptrNew, 'mremap() to 20 pages at the target');
  assert.ok(!tryReadWriteBuf(f, ptr), 'page 0 faults after the move');
  assert.ok(!tryReadWriteBuf(f, ptr + 4 * pageSize), 'page 4 faults after the move');

  f.env.munmap(ptr, 20 * pageSize);
}

function mremapShrink(f: Fixture): void {
  let ptr = mapped(mmap_(f, 0, 5 * pageSize, RW, 0), 'mmap_()');
  guardBothEnds(f, ptr);

  ptr = mapped(f.env.mremap(ptr, 5 * pageSize, 3 * pageSize, MREMAP_MAYMOVE), 'mremap() to 3 pages');
  assert.ok(!tryReadWriteBuf(f, ptr), 'page 0 keeps its marker');
  expectAccess(tryReadWriteBuf, f, ptr, 1, 3, accessible, 'pages 1-2');

  // Grown back, the pages shrunk away come back without the marker page 4 had.
  ptr = mapped(f.env.mremap(ptr, 3 * pageSize, 5 * pageSize, 0), 'mremap() back to 5 pages');
  assert.ok(!tryReadWriteBuf(f, ptr), 'page 0 keeps its marker');
  expectAccess(tryReadWriteBuf, f, ptr, 1, 5, accessible, 'pages 1-4');

  f.env.munmap(ptr, 5 * pageSize);
}

/** fork(): the child's steps run first and it exits; then the parent's, as after its waitpid(). */
function forkTest(f: Fixture): void {
  const { env } = f;
  const ptr = map10(f);
  madvise(f, ptr, 5 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of pages 0-4');

  const child = env.fork();
  for (let i = 0; i < 10; i++) {
    assert.equal(tryReadWriteBuf(f, ptr + i * pageSize, child), i >= 5, `the child's page ${i}`);
  }
  expectRet(env.madvise(ptr, 10 * pageSize, MADV.GUARD_REMOVE, child), 0, "the child's MADV_GUARD_REMOVE");
  env.exit(child);

  // The child's removal leaves the parent's page tables alone.
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, (i) => i >= 5, "the parent's pages");

  unmap10(f, ptr);
}

/** The bytes fork_cow writes: byte i holds 'a' + i % 26. */
function alphabet(len: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => chr('a') + (i % 26));
}

function forkCow(f: Fixture): void {
  const { env } = f;
  const size = 10 * pageSize;
  const ptr = mapped(mmap_(f, 0, size, RW, 0), 'mmap_()');
  const expected = alphabet(size);
  env.memcpy(ptr, expected);

  const child = env.fork();
  assert.deepEqual(env.load(ptr, size, child), expected, "the child's copy");
  expectRet(env.madvise(ptr, size, MADV.GUARD_INSTALL, child), 0, "the child's MADV_GUARD_INSTALL");
  expectRet(env.madvise(ptr, size, MADV.GUARD_REMOVE, child), 0, "the child's MADV_GUARD_REMOVE");
  // The install zapped the child's PTEs: what it reads now is the zero page.
  assert.ok(
    env.load(ptr, size, child).every((b) => b === 0),
    'the child reads zeroes',
  );
  env.exit(child);

  assert.deepEqual(env.load(ptr, size), expected, "the parent's range is unchanged");
  expectRet(env.munmap(ptr, size), 0, 'munmap()');
}

function forkWipeonfork(f: Fixture): void {
  const { env } = f;
  const ptr = map10(f);
  madvise(f, ptr, 10 * pageSize, MADV.WIPEONFORK, 0, 'MADV_WIPEONFORK');
  madvise(f, ptr, 5 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of pages 0-4');

  const child = env.fork();
  for (let i = 0; i < 10; i++) {
    assert.ok(tryReadWriteBuf(f, ptr + i * pageSize, child), `the child's page ${i}: its markers were wiped`);
  }
  env.exit(child);

  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, (i) => i >= 5, "the parent's pages");
  unmap10(f, ptr);
}

function lazyfree(f: Fixture): void {
  const ptr = map10(f);
  guardAll(f, ptr);
  madvise(f, ptr, 10 * pageSize, MADV.FREE, 0, 'MADV_FREE of the range');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, guarded, 'after MADV_FREE');
  unmap10(f, ptr);
}

function populate(f: Fixture): void {
  const ptr = map10(f);
  madvise(f, ptr, 10 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of the range');
  madvise(f, ptr, 10 * pageSize, MADV.POPULATE_READ, -Errno.EFAULT, 'MADV_POPULATE_READ over guards');
  madvise(f, ptr, 10 * pageSize, MADV.POPULATE_WRITE, -Errno.EFAULT, 'MADV_POPULATE_WRITE over guards');
  unmap10(f, ptr);
}

function coldPageout(f: Fixture): void {
  const ptr = map10(f);
  guardAll(f, ptr);
  madvise(f, ptr, 10 * pageSize, MADV.COLD, 0, 'MADV_COLD of the range');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, guarded, 'after MADV_COLD');
  madvise(f, ptr, 10 * pageSize, MADV.PAGEOUT, 0, 'MADV_PAGEOUT of the range');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, guarded, 'after MADV_PAGEOUT');
  unmap10(f, ptr);
}

/**
 * MADV_SEQUENTIAL only sets VM_SEQ_READ in the model, which has no read-ahead; on shmem, the one
 * variant that runs here, a fault does not read ahead in the kernel either (shmem_fault()).
 */
function madviseSequential(f: Fixture): void {
  const ptr = map10(f);
  setPattern(f, ptr, 10);
  assert.ok(checkPattern(f, ptr, 10), 'the pattern reads back');
  madvise(f, ptr, 10 * pageSize, MADV.SEQUENTIAL, 0, 'MADV_SEQUENTIAL');
  for (let i = 0; i < 10; i += 2) {
    madvise(f, ptr + i * pageSize, pageSize, MADV.GUARD_INSTALL, 0, `MADV_GUARD_INSTALL of page ${i}`);
  }
  madvise(f, ptr, 10 * pageSize, MADV.PAGEOUT, 0, 'MADV_PAGEOUT of the range');

  for (let i = 0; i < 10; i++) {
    const chrp = ptr + i * pageSize;
    if (i % 2 === 0) assert.ok(!tryReadWriteBuf(f, chrp), `page ${i} faults`);
    else assert.equal(byteAt(f, chrp), chr('a') + i, `page ${i}'s first byte`);
  }

  madvise(f, ptr, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the range');
  assert.ok(checkPattern(f, ptr, 10), 'the pattern is whole after the removal');
  unmap10(f, ptr);
}

function mapPrivate(f: Fixture): void {
  const { env } = f;
  const shared = mapped(mmap_(f, 0, 10 * pageSize, RW, 0), 'mmap_() shared');
  const priv = mapped(env.mmap(0, 10 * pageSize, RW, MAP_PRIVATE, f.fd, 0), 'mmap(MAP_PRIVATE) of the file');
  const sharedPage = (i: number): number => shared + i * pageSize;
  const privPage = (i: number): number => priv + i * pageSize;

  /** Every page of both mappings read once, each against its expectation. */
  const expectReads = (
    sharedOk: (i: number) => boolean,
    privOk: (i: number) => boolean,
    what: string,
  ): void => {
    for (let i = 0; i < 10; i++) {
      assert.equal(tryReadBuf(f, sharedPage(i)), sharedOk(i), `${what}: shared page ${i}`);
      assert.equal(tryReadBuf(f, privPage(i)), privOk(i), `${what}: private page ${i}`);
    }
  };

  setPattern(f, shared, 10);
  for (let i = 0; i < 10; i += 2) {
    madvise(f, sharedPage(i), pageSize, MADV.GUARD_INSTALL, 0, `MADV_GUARD_INSTALL of shared page ${i}`);
  }
  expectReads(odd, accessible, 'guards in the shared mapping');

  for (let i = 0; i < 10; i += 2) {
    madvise(f, privPage(i), pageSize, MADV.GUARD_INSTALL, 0, `MADV_GUARD_INSTALL of private page ${i}`);
  }
  expectReads(odd, odd, 'guards in both');

  madvise(f, shared, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the shared mapping');
  expectReads(accessible, odd, 'guards in the private mapping');

  madvise(f, priv, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the private mapping');
  expectReads(accessible, accessible, 'no guards');

  assert.ok(checkPattern(f, shared, 10), 'the shared pattern');
  assert.ok(checkPattern(f, priv, 10), 'the private pattern');

  // Even pages get copies of their own (the same bytes): S P S P ... by page.
  for (let i = 0; i < 10; i += 2) env.memset(privPage(i), chr('a') + i, pageSize);

  madvise(f, priv, 5 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of private pages 0-4');
  for (let i = 0; i < 10; i++) {
    assert.equal(tryReadBuf(f, privPage(i)), i >= 5, `private page ${i}`);
    assert.ok(tryReadBuf(f, sharedPage(i)), `shared page ${i}`);
  }

  // The install zapped the private copies of pages 0-4: they read the file again.
  madvise(f, priv, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the private mapping');
  for (let i = 0; i < 10; i++) {
    const p = env.load(privPage(i), pageSize);
    if (i < 5 || i % 2 === 0) {
      assert.deepEqual(p, env.load(sharedPage(i), pageSize), `private page ${i} is the file's`);
    } else {
      assert.ok(isBufEq(f, privPage(i), pageSize, chr('a') + i), `private page ${i} is its copy`);
    }
  }

  expectRet(env.munmap(shared, 10 * pageSize), 0, 'munmap() shared');
  expectRet(env.munmap(priv, 10 * pageSize), 0, 'munmap() private');
}

/** Guards on the even pages of a 10-page mapping. */
function guardEvenPages(f: Fixture, ptr: number): void {
  for (let i = 0; i < 10; i += 2) {
    madvise(f, ptr + i * pageSize, pageSize, MADV.GUARD_INSTALL, 0, `MADV_GUARD_INSTALL of page ${i}`);
  }
}

function faultAround(f: Fixture): void {
  let ptr = map10(f);
  setPattern(f, ptr, 10);
  // Out of the page cache, so that the faults below are major ones.
  madvise(f, ptr, 10 * pageSize, MADV.PAGEOUT, 0, 'MADV_PAGEOUT of the range');
  unmap10(f, ptr);
  ptr = mapped(mmap_(f, 0, 10 * pageSize, RW, 0), 'mmap_() again');

  guardEvenPages(f, ptr);
  // Each odd page's read fault maps what it can around it, but never over a marker.
  for (let i = 1; i < 10; i += 2) assert.ok(tryReadBuf(f, ptr + i * pageSize), `page ${i} is readable`);
  expectAccess(tryReadBuf, f, ptr, 0, 10, odd, 'after the faults');

  unmap10(f, ptr);
}

function truncation(f: Fixture): void {
  const { env } = f;
  const ptr = map10(f);
  setPattern(f, ptr, 10);
  guardEvenPages(f, ptr);
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, odd, 'guards on the even pages');

  expectRet(env.sys.ftruncate(f.fd, 10 * pageSize), 0, 'ftruncate() to 10 pages');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, odd, 'after the truncation to 10 pages');

  expectRet(env.sys.ftruncate(f.fd, 5 * pageSize), 0, 'ftruncate() to 5 pages');
  expectRet(env.sys.ftruncate(f.fd, 10 * pageSize), 0, 'ftruncate() back to 10 pages');
  expectAccess(tryReadWriteBuf, f, ptr, 0, 10, odd, 'after shrinking and growing the file');

  unmap10(f, ptr);
}

function holePunch(f: Fixture): void {
  const ptr = map10(f);
  setPattern(f, ptr, 10);
  const outside = (i: number): boolean => i < 3 || i >= 7;

  madvise(f, ptr + 3 * pageSize, 4 * pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of pages 3-6');
  expectAccess(tryReadBuf, f, ptr, 0, 10, outside, 'guards on pages 3-6');

  madvise(f, ptr + 3 * pageSize, 4 * pageSize, MADV.REMOVE, 0, 'MADV_REMOVE of pages 3-6');
  expectAccess(tryReadBuf, f, ptr, 0, 10, outside, 'after the hole punch');

  madvise(f, ptr, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the range');
  assert.ok(checkPattern(f, ptr, 3), 'pages 0-2 keep the pattern');
  assert.ok(isBufEq(f, ptr + 3 * pageSize, 4 * pageSize, 0), 'the punched pages 3-6 read zeroes');
  assert.ok(checkPatternOffset(f, ptr, 3, 7), 'pages 7-9 keep the pattern');

  unmap10(f, ptr);
}

/**
 * A write-sealed memfd mapped read-only takes guards and gives them up, and the seal still holds:
 * no page of the mapping can be written.
 */
function memfdWriteSeal(fx: Fixture): void {
  const sys = fx.env.sys;
  expectRet(sys.close(fx.fd), 0, 'close() of the fixture memfd');
  const fd = sys.memfdCreate('guard_regions_memfd_seals_test', MFD_ALLOW_SEALING);
  assert.ok(fd >= 0, `memfd_create(MFD_ALLOW_SEALING) failed (${show(fd)})`);
  const f: Fixture = { ...fx, fd };
  expectRet(sys.ftruncate(fd, 10 * pageSize), 0, 'ftruncate() to 10 pages');
  let ptr = map10(f);
  setPattern(f, ptr, 10);
  unmap10(f, ptr);
  expectRet(sys.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0, 'fcntl(F_ADD_SEALS, F_SEAL_WRITE)');
  ptr = mapped(mmap_(f, 0, 10 * pageSize, PROT_READ, 0), 'mmap_(PROT_READ) of the sealed memfd');
  assert.ok(checkPattern(f, ptr, 10), 'the pattern reads back');
  guardEvenPages(f, ptr);
  expectAccess(tryReadBuf, f, ptr, 0, 10, odd, 'guards on the even pages');
  madvise(f, ptr, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the range');
  assert.ok(checkPattern(f, ptr, 10), 'the pattern reads back after the removal');
  expectAccess(tryWriteBuf, f, ptr, 0, 10, () => false, 'the write seal holds');
  unmap10(f, ptr);
}

/** A read-only mapping of anonymous memory (the zero page) or of the memfd reads zeroes around guards. */
function anonZeropage(f: Fixture): void {
  const ptr = mapped(mmap_(f, 0, 10 * pageSize, PROT_READ, 0), 'mmap_(PROT_READ)');
  guardEvenPages(f, ptr);
  expectAccess(tryReadBuf, f, ptr, 0, 10, odd, 'guards on the even pages');
  madvise(f, ptr, 10 * pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of the range');
  expectAccess(tryReadBuf, f, ptr, 0, 10, accessible, 'after the removal');
  assert.ok(isBufEq(f, ptr, 10 * pageSize, 0), 'the range reads zeroes');
  unmap10(f, ptr);
}

/** PM_GUARD_REGION of each page: pagemap entries of kind 'guard'. */
function pagemap(f: Fixture): void {
  const ptr = map10(f);
  const expectGuardBits = (isGuard: (i: number) => boolean, what: string): void => {
    for (let i = 0; i < 10; i++) {
      const e = f.env.pagemap(ptr + i * pageSize);
      assert.equal(e.kind === 'guard', isGuard(i), `${what}: PM_GUARD_REGION of page ${i} (kind ${e.kind})`);
    }
  };
  expectGuardBits(guarded, 'before any guard');
  guardEvenPages(f, ptr);
  expectGuardBits((i) => i % 2 === 0, 'guards on the even pages');
  unmap10(f, ptr);
}

/**
 * thp_available() holds: the model has THP. MADV_NOHUGEPAGE keeps the read faults from mapping a
 * huge zero page; MADV_COLLAPSE then meets a guard in every other PTE.
 */
function collapse(f: Fixture): void {
  const size = 2 * HPAGE_SIZE;
  const numPages = size / pageSize;
  const ptr = mapped(mmap_(f, 0, size, PROT_READ, 0), 'mmap_()');
  madvise(f, ptr, size, MADV.NOHUGEPAGE, 0, 'MADV_NOHUGEPAGE');
  madvise(f, ptr, size, MADV.POPULATE_READ, 0, 'MADV_POPULATE_READ');
  for (let i = 0; i < numPages; i += 2) {
    const page = ptr + i * pageSize;
    madvise(f, page, pageSize, MADV.GUARD_INSTALL, 0, `MADV_GUARD_INSTALL of page ${i}`);
    assert.ok(!tryReadBuf(f, page), `page ${i} faults`);
  }
  madvise(f, ptr, size, MADV.HUGEPAGE, 0, 'MADV_HUGEPAGE');

  // EXPECT_NE(): a collapse that succeeds fails the test, which still checks the markers first.
  const ret = f.env.madvise(ptr, size, MADV.COLLAPSE);
  for (let i = 0; i < numPages; i += 2) {
    assert.ok(
      !tryReadBuf(f, ptr + i * pageSize),
      `page ${i} still faults after MADV_COLLAPSE (${show(ret)})`,
    );
  }
  assert.notEqual(ret, 0, 'MADV_COLLAPSE over guards fails');
}

/** check_vmflag_guard(): `gu` in the VmFlags of the smaps entry of the VMA starting at `addr`. */
function checkVmflagGuard(f: Fixture, addr: number): boolean {
  const entries = f.env.sys.smaps(f.env.p, addr, addr + 1);
  if (typeof entries === 'number') assert.fail(`/proc/self/smaps: ${show(entries)}`);
  const entry = entries.find((e) => e.start === addr);
  assert.ok(entry !== undefined, `check_vmflag: No VmFlags for ${hex(addr)}`);
  return entry.vmFlags.split(' ').includes('gu');
}

/** find_vma_procmap(): the VMA that contains `addr`, or null (-ENOENT). */
function findVmaProcmap(f: Fixture, addr: number): MapsEntry | null {
  const entries = f.env.sys.maps(f.env.p, addr, addr + 1);
  if (typeof entries === 'number') assert.fail(`/proc/self/maps: ${show(entries)}`);
  return entries.find((e) => e.start <= addr && addr < e.end) ?? null;
}

function smaps(f: Fixture): void {
  const ptr = map10(f);
  assert.ok(!checkVmflagGuard(f, ptr), 'no gu before any guard');

  madvise(f, ptr, pageSize, MADV.GUARD_INSTALL, 0, 'MADV_GUARD_INSTALL of page 0');
  assert.ok(checkVmflagGuard(f, ptr), 'gu once a guard is installed');

  // The flag stays: the kernel cannot tell when the last guard of a VMA goes.
  madvise(f, ptr, pageSize, MADV.GUARD_REMOVE, 0, 'MADV_GUARD_REMOVE of page 0');
  assert.ok(checkVmflagGuard(f, ptr), 'gu after the removal');

  for (let i = 0; i < 10; i++) {
    madvise(f, ptr + i * pageSize, pageSize, MADV.GUARD_INSTALL, 0, `MADV_GUARD_INSTALL of page ${i}`);
    assert.ok(checkVmflagGuard(f, ptr), `gu after the guard on page ${i}`);
  }

  expectRet(f.env.munmap(ptr + 4 * pageSize, pageSize), 0, 'munmap() of page 4');
  assert.ok(checkVmflagGuard(f, ptr), 'gu on pages 0-3');
  assert.ok(checkVmflagGuard(f, ptr + 5 * pageSize), 'gu on pages 5-9');

  // local_fs_has_sane_mmap() is true but on the file variant, which does not run here.
  mapped(mmap_(f, ptr + 4 * pageSize, pageSize, RW, MAP_FIXED, 4 * pageSize), 'mmap_() over page 4');

  // The sticky flag keeps nothing apart: the new VMA merges with both halves.
  const vma = findVmaProcmap(f, ptr);
  assert.ok(vma !== null, `find_vma_procmap(${hex(ptr)})`);
  assert.equal(vma.start, ptr, 'procmap.query.vma_start');
  assert.equal(vma.end, ptr + 10 * pageSize, 'procmap.query.vma_end');
  assert.ok(checkVmflagGuard(f, ptr), 'gu on the merged VMA');
}

/** Which variants a test runs on: the others skip it (SKIP() on the variant's backing). */
const ALL: readonly Backing[] = ['anon', 'shmem', 'file'];
const ANON_ONLY: readonly Backing[] = ['anon'];
const FILE_BACKED: readonly Backing[] = ['shmem', 'file'];
const ANON_OR_SHMEM: readonly Backing[] = ['anon', 'shmem'];

interface Test {
  readonly name: string;
  readonly variants: readonly Backing[];
  readonly body?: (f: Fixture) => void;
  /** Why the model cannot run the test, on every variant it runs on (set when `body` is not). */
  readonly notModelled?: string;
  /** Why the model cannot run the test on one variant, where `body` runs on the others. */
  readonly notModelledOn?: Partial<Record<Backing, string>>;
}

const LOCAL_FILE =
  'a file on a disk filesystem (mkstemp() in the current directory): the model has only tmpfs and hugetlbfs';

/** The TEST_F()s of guard-regions.c, in the file's order. */
const TESTS: readonly Test[] = [
  { name: 'basic', variants: ALL, body: basic },
  { name: 'multi_vma', variants: ALL, body: multiVma },
  { name: 'process_madvise', variants: ALL, body: processMadviseTest },
  { name: 'munmap', variants: ALL, body: munmapTest },
  { name: 'mprotect', variants: ALL, body: mprotectTest },
  { name: 'split_merge', variants: ALL, body: splitMerge },
  { name: 'dontneed', variants: ALL, body: dontneed },
  { name: 'mlock', variants: ALL, body: mlockTest },
  { name: 'mremap_move', variants: ALL, body: mremapMove },
  { name: 'mremap_expand', variants: ALL, body: mremapExpand },
  { name: 'mremap_shrink', variants: ALL, body: mremapShrink },
  { name: 'fork', variants: ALL, body: forkTest },
  { name: 'fork_cow', variants: ANON_ONLY, body: forkCow },
  { name: 'fork_wipeonfork', variants: ANON_ONLY, body: forkWipeonfork },
  { name: 'lazyfree', variants: ANON_ONLY, body: lazyfree },
  { name: 'populate', variants: ALL, body: populate },
  { name: 'cold_pageout', variants: ALL, body: coldPageout },
  { name: 'uffd', variants: ANON_OR_SHMEM, notModelled: 'userfaultfd: the model has none' },
  { name: 'madvise_sequential', variants: FILE_BACKED, body: madviseSequential },
  { name: 'map_private', variants: FILE_BACKED, body: mapPrivate },
  { name: 'readonly_file', variants: ['file'], notModelled: LOCAL_FILE },
  { name: 'fault_around', variants: FILE_BACKED, body: faultAround },
  { name: 'truncation', variants: FILE_BACKED, body: truncation },
  { name: 'hole_punch', variants: FILE_BACKED, body: holePunch },
  { name: 'memfd_write_seal', variants: ['shmem'], body: memfdWriteSeal },
  { name: 'anon_zeropage', variants: ANON_OR_SHMEM, body: anonZeropage },
  { name: 'pagemap', variants: ALL, body: pagemap },
  {
    name: 'pagemap_scan',
    variants: ALL,
    notModelled: 'the PAGEMAP_SCAN ioctl of /proc/self/pagemap: the model reads pagemap entries only',
  },
  {
    name: 'collapse',
    variants: ALL,
    body: collapse,
    notModelledOn: {
      shmem:
        'MADV_COLLAPSE of shmem memory: the model refuses it on every non-anonymous VMA (-EINVAL), guards or none',
    },
  },
  { name: 'smaps', variants: ALL, body: smaps },
];

/** FIXTURE_SETUP(): the shmem variant's memfd, 100 pages long. */
function setUp(env: MmEnv, backing: Backing): Fixture {
  if (backing === 'anon') return { env, backing, fd: -1 };
  const fd = env.sys.memfdCreate('', 0);
  assert.ok(fd >= 0, `memfd_create() failed (${show(fd)})`);
  expectRet(env.sys.ftruncate(fd, 100 * pageSize), 0, 'ftruncate() to 100 pages');
  return { env, backing, fd };
}

/** Every run of guard-regions.c, in the harness's order: each variant, each test. */
export function guardRegionsCases(config: SystemConfig = {}): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const backing of ALL) {
    for (const t of TESTS) {
      if (!t.variants.includes(backing)) continue;
      const test = `${backing}.${t.name}`;
      const notModelled = backing === 'file' ? LOCAL_FILE : (t.notModelledOn?.[backing] ?? t.notModelled);
      const body = t.body;
      if (notModelled !== undefined || body === undefined) {
        out.push({
          suite: 'mm',
          name: `guard-regions.${test}`,
          variant: '',
          notModelled: notModelled ?? 'no body',
        });
        continue;
      }
      out.push(
        mmCase(
          'guard-regions',
          test,
          (env) => {
            body(setUp(env, backing));
          },
          config,
        ),
      );
    }
  }
  return out;
}
