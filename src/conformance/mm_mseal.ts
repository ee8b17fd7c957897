/**
 * tools/testing/selftests/mm/mseal_test.c ported to the model: every test its main() runs, in
 * that order, each asserting the conditions the C test checks with FAIL_TEST_IF_FALSE().
 *
 * main() runs most tests twice, as test_x(false) and then test_x(true), the second run sealing
 * part of the range before the calls it checks. Both runs print the same line (the function's
 * name), so each case is named after the call main() makes: `mseal_test.test_x(false)` is the
 * run without a seal, `mseal_test.test_x(true)` the run with one. A test main() calls without an
 * argument keeps its bare name. test_seal_mprotect_two_vma_with_gap() takes no argument in the
 * form ported, which calls it once (the 6.17 form, which had just dropped its unused argument,
 * calls it twice, the two runs alike): one case here.
 *
 * The C test runs every test in one process and never unmaps what it maps; each case here runs
 * in a fresh process, so no mapping of an earlier test lies next to a later test's. No
 * assertion depends on those. get_vma_size() reads /proc/self/maps, here System.maps().
 *
 * Not modelled: both runs of test_seal_discard_ro_anon_on_pkey(), which need memory protection
 * keys (the C test itself skips them where pkey_alloc() fails), and the two tests that put a
 * mapping at address 0 without a seal: the C test runs as root, and CAP_SYS_RAWIO lets it map
 * below mmap_min_addr, a capability the model gives no process.
 * test_seal_mremap_move_fixed_zero(true) runs: check_prep_vma() refuses the sealed source
 * (-EPERM) before the destination is looked at, whatever the caller may map.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { Errno } from '../kernel/errno.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, mmCase, show } from './mm_env.ts';

const pageSize = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_ANONYMOUS | MAP_PRIVATE;
/** UINT64_MAX / page_size, exact as a double (below 2^53). */
const U64_MAX_PAGES = Number((2n ** 64n - 1n) / BigInt(pageSize));

/** FAIL_TEST_IF_FALSE(): the condition, with the call it is about in the failure message. */
function check(cond: boolean, what: string): void {
  assert.ok(cond, what);
}

/**
 * setup_single_address(), a read-only mapping of anonymous private memory, or with `rw`
 * setup_single_address_rw(), a writable one.
 */
function setup(env: MmEnv, size: number, rw = false): number {
  const ptr = env.mmap(0, size, rw ? RW : PROT_READ, ANON);
  check(ptr >= 0, `mmap(NULL, ${size}) = ${show(ptr)}`);
  return ptr;
}

function mseal(env: MmEnv, addr: number, len: number, flags = 0): number {
  return env.sys.mseal(env.p, addr, len, flags);
}

/** ret == 0 without the seal, ret < 0 with it: the `if (seal) ... else ...` of most tests. */
function refusedIfSealed(seal: boolean, ret: number, what: string): void {
  if (seal) check(ret < 0, `${what} = ${show(ret)} on a sealed range`);
  else check(ret === 0, `${what} = ${show(ret)}`);
}

/** MAP_FAILED and errno EPERM, as the C test checks an mmap() or mremap() that a seal refuses. */
function refusedEperm(ret: number, what: string): void {
  check(ret < 0, `${what} = ${show(ret)}, not MAP_FAILED`);
  check(ret === -Errno.EPERM, `${what}: errno ${show(ret)}, not EPERM`);
}

/** A call that must succeed (FAIL_TEST_IF_FALSE(!ret)). */
function ok(ret: number, what: string): void {
  check(ret === 0, `${what} = ${show(ret)}`);
}

/** A call that must fail (FAIL_TEST_IF_FALSE(ret < 0)). */
function fails(ret: number, what: string): void {
  check(ret < 0, `${what} = ${show(ret)}, expected to fail`);
}

/**
 * get_vma_size(): the length of the /proc/self/maps entry that starts at `addr` (0 when none
 * does), and its permissions as r = 4, w = 2, x = 1.
 */
function getVmaSize(env: MmEnv, addr: number): { size: number; prot: number } {
  const maps = env.sys.maps(env.p);
  if (typeof maps === 'number') return { size: 0, prot: 0 };
  const e = maps.find((m) => m.start === addr);
  if (e === undefined) return { size: 0, prot: 0 };
  const prot = (e.perms[0] === 'r' ? 4 : 0) | (e.perms[1] === 'w' ? 2 : 0) | (e.perms[2] === 'x' ? 1 : 0);
  return { size: e.end - e.start, prot };
}

/** get_vma_size(addr) > 0 and prot == 0x4: a read-only VMA still starts at addr. */
function expectReadOnlyVmaAt(env: MmEnv, addr: number): void {
  const v = getVmaSize(env, addr);
  check(v.size > 0, `get_vma_size(${addr.toString(16)}) = 0`);
  check(v.prot === 0x4, `get_vma_size(${addr.toString(16)}): prot ${v.prot}, not 4 (r--)`);
}

function testSealAddseal(env: MmEnv): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(mseal(env, ptr, size), 'mseal(ptr, size)');
}

function testSealUnmappedStart(env: MmEnv): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.munmap(ptr, 2 * pageSize), 'munmap(ptr, 2 pages)');
  fails(env.mprotect(ptr, size, RW), 'mprotect(ptr, size) over the hole');
  fails(mseal(env, ptr, size), 'mseal(ptr, size) over the hole');
  ok(mseal(env, ptr + 2 * pageSize, 2 * pageSize), 'mseal(ptr + 2 pages, 2 pages)');
}

function testSealUnmappedMiddle(env: MmEnv): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.munmap(ptr + pageSize, 2 * pageSize), 'munmap(ptr + 1 page, 2 pages)');
  fails(env.mprotect(ptr, size, RW), 'mprotect(ptr, size) over the hole');
  fails(mseal(env, ptr, size), 'mseal(ptr, size) over the hole');
  ok(mseal(env, ptr, pageSize), 'mseal(ptr, 1 page)');
  ok(mseal(env, ptr + 3 * pageSize, pageSize), 'mseal(ptr + 3 pages, 1 page)');
}

function testSealUnmappedEnd(env: MmEnv): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.munmap(ptr + 2 * pageSize, 2 * pageSize), 'munmap(ptr + 2 pages, 2 pages)');
  fails(env.mprotect(ptr, size, RW), 'mprotect(ptr, size) over the hole');
  fails(mseal(env, ptr, size), 'mseal(ptr, size) over the hole');
  ok(mseal(env, ptr, 2 * pageSize), 'mseal(ptr, 2 pages)');
}

function testSealMultipleVmas(env: MmEnv): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.mprotect(ptr + pageSize, 2 * pageSize, RW), 'mprotect(ptr + 1 page, 2 pages, RW)');
  ok(env.mprotect(ptr, size, PROT_READ), 'mprotect(ptr, size, READ) over 3 VMAs');
  ok(env.mprotect(ptr + pageSize, 2 * pageSize, RW), 'mprotect(ptr + 1 page, 2 pages, RW)');
  ok(mseal(env, ptr, size), 'mseal(ptr, size) over 3 VMAs');
}

function testSealSplitStart(env: MmEnv): void {
  const ptr = setup(env, 4 * pageSize);
  ok(env.mprotect(ptr, 2 * pageSize, RW), 'mprotect(ptr, 2 pages, RW)');
  ok(mseal(env, ptr, pageSize), 'mseal(ptr, 1 page)');
  ok(mseal(env, ptr + pageSize, 3 * pageSize), 'mseal(ptr + 1 page, 3 pages)');
}

function testSealSplitEnd(env: MmEnv): void {
  const ptr = setup(env, 4 * pageSize);
  ok(env.mprotect(ptr, 2 * pageSize, RW), 'mprotect(ptr, 2 pages, RW)');
  ok(mseal(env, ptr + 3 * pageSize, pageSize), 'mseal(ptr + 3 pages, 1 page)');
  ok(mseal(env, ptr, 3 * pageSize), 'mseal(ptr, 3 pages)');
}

function testSealInvalidInput(env: MmEnv): void {
  const size = 4 * pageSize;
  const ptr = setup(env, 8 * pageSize);
  ok(env.munmap(ptr + 4 * pageSize, 4 * pageSize), 'munmap(ptr + 4 pages, 4 pages)');
  fails(mseal(env, ptr, size, 0x20), 'mseal(ptr, size, 0x20)');
  fails(mseal(env, ptr + 1, 2 * pageSize), 'mseal(ptr + 1, 2 pages)');
  fails(mseal(env, ptr, 5 * pageSize), 'mseal(ptr, 5 pages)');
  fails(mseal(env, ptr, U64_MAX_PAGES), 'mseal(ptr, UINT64_MAX / page_size)');
  fails(mseal(env, ptr - pageSize, 5 * pageSize), 'mseal(ptr - 1 page, 5 pages)');
}

function testSealZeroLength(env: MmEnv): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.mprotect(ptr, 0, RW), 'mprotect(ptr, 0, RW)');
  ok(mseal(env, ptr, 0), 'mseal(ptr, 0)');
  ok(env.mprotect(ptr, size, RW), 'mprotect(ptr, size, RW) after mseal(ptr, 0)');
}

function testSealTwice(env: MmEnv): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  ok(mseal(env, ptr, size), 'mseal(ptr, size) again');
}

function testSealMprotect(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  refusedIfSealed(seal, env.mprotect(ptr, size, RW), 'mprotect(ptr, size, RW)');
}

function testSealStartMprotect(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  if (seal) ok(mseal(env, ptr, pageSize), 'mseal(ptr, 1 page)');
  refusedIfSealed(seal, env.mprotect(ptr, pageSize, RW), 'mprotect(ptr, 1 page, RW)');
  ok(env.mprotect(ptr + pageSize, 3 * pageSize, RW), 'mprotect(ptr + 1 page, 3 pages, RW)');
}

function testSealEndMprotect(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  if (seal) ok(mseal(env, ptr + pageSize, 3 * pageSize), 'mseal(ptr + 1 page, 3 pages)');
  ok(env.mprotect(ptr, pageSize, RW), 'mprotect(ptr, 1 page, RW)');
  refusedIfSealed(
    seal,
    env.mprotect(ptr + pageSize, 3 * pageSize, RW),
    'mprotect(ptr + 1 page, 3 pages, RW)',
  );
}

function testSealMprotectUnalignLen(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  if (seal) ok(mseal(env, ptr, 2 * pageSize - 1), 'mseal(ptr, 2 pages - 1)');
  refusedIfSealed(seal, env.mprotect(ptr, 2 * pageSize, RW), 'mprotect(ptr, 2 pages, RW)');
  ok(env.mprotect(ptr + 2 * pageSize, pageSize, RW), 'mprotect(ptr + 2 pages, 1 page, RW)');
}

function testSealMprotectUnalignLenVariant2(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  if (seal) ok(mseal(env, ptr, 2 * pageSize + 1), 'mseal(ptr, 2 pages + 1)');
  refusedIfSealed(seal, env.mprotect(ptr, 3 * pageSize, RW), 'mprotect(ptr, 3 pages, RW)');
  ok(env.mprotect(ptr + 3 * pageSize, pageSize, RW), 'mprotect(ptr + 3 pages, 1 page, RW)');
}

function testSealMprotectTwoVma(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  ok(env.mprotect(ptr, 2 * pageSize, RW), 'mprotect(ptr, 2 pages, RW)');
  if (seal) ok(mseal(env, ptr, 4 * pageSize), 'mseal(ptr, 4 pages)');
  refusedIfSealed(seal, env.mprotect(ptr, 2 * pageSize, RW), 'mprotect(ptr, 2 pages, RW)');
  refusedIfSealed(
    seal,
    env.mprotect(ptr + 2 * pageSize, 2 * pageSize, RW),
    'mprotect(ptr + 2 pages, 2 pages, RW)',
  );
}

function testSealMprotectTwoVmaWithSplit(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  ok(env.mprotect(ptr, 2 * pageSize, RW), 'mprotect(ptr, 2 pages, RW)');
  if (seal) ok(mseal(env, ptr + pageSize, 2 * pageSize), 'mseal(ptr + 1 page, 2 pages)');
  ok(env.mprotect(ptr, pageSize, RW), 'mprotect(ptr, 1 page, RW)');
  refusedIfSealed(seal, env.mprotect(ptr + pageSize, pageSize, RW), 'mprotect(ptr + 1 page, 1 page, RW)');
  refusedIfSealed(
    seal,
    env.mprotect(ptr + 2 * pageSize, pageSize, RW),
    'mprotect(ptr + 2 pages, 1 page, RW)',
  );
  ok(env.mprotect(ptr + 3 * pageSize, pageSize, RW), 'mprotect(ptr + 3 pages, 1 page, RW)');
}

function testSealMprotectPartialMprotect(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  if (seal) ok(mseal(env, ptr, pageSize), 'mseal(ptr, 1 page)');
  refusedIfSealed(seal, env.mprotect(ptr, 2 * pageSize, RW), 'mprotect(ptr, 2 pages, RW)');
}

function testSealMprotectPartialMprotectTail(env: MmEnv, seal: boolean): void {
  const size = 2 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr + pageSize, pageSize), 'mseal(ptr + 1 page, 1 page)');
  refusedIfSealed(seal, env.mprotect(ptr, size, PROT_EXEC), 'mprotect(ptr, 2 pages, EXEC)');
  // The first page has become PROT_EXEC before mprotect() reached the sealed one.
  if (seal) expectReadOnlyVmaAt(env, ptr + pageSize);
}

function testSealMprotectTwoVmaWithGap(env: MmEnv): void {
  const ptr = setup(env, 4 * pageSize);
  ok(env.mprotect(ptr, pageSize, RW), 'mprotect(ptr, 1 page, RW)');
  ok(env.mprotect(ptr + 3 * pageSize, pageSize, RW), 'mprotect(ptr + 3 pages, 1 page, RW)');
  ok(env.munmap(ptr + pageSize, 2 * pageSize), 'munmap(ptr + 1 page, 2 pages)');
  // Fails on the hole, after changing the first page.
  fails(env.mprotect(ptr, 4 * pageSize, PROT_READ), 'mprotect(ptr, 4 pages, READ) over the hole');
  fails(mseal(env, ptr, 4 * pageSize), 'mseal(ptr, 4 pages) over the hole');
  ok(env.mprotect(ptr, pageSize, PROT_READ), 'mprotect(ptr, 1 page, READ)');
  ok(env.mprotect(ptr + 3 * pageSize, pageSize, PROT_READ), 'mprotect(ptr + 3 pages, 1 page, READ)');
}

function testSealMprotectSplit(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  ok(env.mprotect(ptr, pageSize, RW), 'mprotect(ptr, 1 page, RW)');
  if (seal) ok(mseal(env, ptr, 4 * pageSize), 'mseal(ptr, 4 pages)');
  refusedIfSealed(seal, env.mprotect(ptr, 2 * pageSize, PROT_READ), 'mprotect(ptr, 2 pages, READ)');
  refusedIfSealed(
    seal,
    env.mprotect(ptr + 2 * pageSize, 2 * pageSize, PROT_READ),
    'mprotect(ptr + 2 pages, 2 pages, READ)',
  );
}

function testSealMprotectMerge(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  ok(env.mprotect(ptr, pageSize, RW), 'mprotect(ptr, 1 page, RW)');
  if (seal) ok(mseal(env, ptr, 2 * pageSize), 'mseal(ptr, 2 pages)');
  refusedIfSealed(seal, env.mprotect(ptr, 2 * pageSize, PROT_READ), 'mprotect(ptr, 2 pages, READ)');
  ok(env.mprotect(ptr + 2 * pageSize, 2 * pageSize, PROT_READ), 'mprotect(ptr + 2 pages, 2 pages, READ)');
}

function testSealMunmap(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  refusedIfSealed(seal, env.munmap(ptr, size), 'munmap(ptr, size)');
}

function testSealMunmapTwoVma(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.mprotect(ptr, 2 * pageSize, RW), 'mprotect(ptr, 2 pages, RW)');
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  refusedIfSealed(seal, env.munmap(ptr, 2 * pageSize), 'munmap(ptr, 2 pages)');
  refusedIfSealed(seal, env.munmap(ptr + pageSize, 2 * pageSize), 'munmap(ptr + 1 page, 2 pages)');
}

function testSealMunmapVmaWithGap(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.munmap(ptr + pageSize, 2 * pageSize), 'munmap(ptr + 1 page, 2 pages)');
  if (seal) fails(mseal(env, ptr, size), 'mseal(ptr, size) over the hole');
  ok(env.munmap(ptr, pageSize), 'munmap(ptr, 1 page)');
  ok(env.munmap(ptr + 2 * pageSize, pageSize), 'munmap(ptr + 2 pages, 1 page)');
  ok(env.munmap(ptr, size), 'munmap(ptr, size)');
}

function testSealMunmapPartialAcrossVmas(env: MmEnv, seal: boolean): void {
  const size = 2 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr + pageSize, pageSize), 'mseal(ptr + 1 page, 1 page)');
  refusedIfSealed(seal, env.munmap(ptr, size), 'munmap(ptr, 2 pages)');
  if (seal) expectReadOnlyVmaAt(env, ptr + pageSize);
}

function testMunmapStartFreed(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.munmap(ptr, pageSize), 'munmap(ptr, 1 page)');
  if (seal) ok(mseal(env, ptr + pageSize, 3 * pageSize), 'mseal(ptr + 1 page, 3 pages)');
  const ret = env.munmap(ptr, size);
  const after = getVmaSize(env, ptr + pageSize).size;
  if (seal) {
    fails(ret, 'munmap(ptr, size)');
    check(after === 3 * pageSize, `get_vma_size(ptr + 1 page) = ${after}, not 3 pages`);
  } else {
    // The hole at the start does not make munmap() fail.
    ok(ret, 'munmap(ptr, size)');
    check(after === 0, `get_vma_size(ptr + 1 page) = ${after}, not 0`);
  }
}

function testMunmapEndFreed(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.munmap(ptr + 3 * pageSize, pageSize), 'munmap(ptr + 3 pages, 1 page)');
  if (seal) ok(mseal(env, ptr, 3 * pageSize), 'mseal(ptr, 3 pages)');
  refusedIfSealed(seal, env.munmap(ptr, size), 'munmap(ptr, size)');
}

function testMunmapMiddleFreed(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  ok(env.munmap(ptr + pageSize, 2 * pageSize), 'munmap(ptr + 1 page, 2 pages)');
  if (seal) ok(mseal(env, ptr, pageSize), 'mseal(ptr, 1 page)');
  const ret = env.munmap(ptr, size);
  const first = getVmaSize(env, ptr).size;
  const last = getVmaSize(env, ptr + 3 * pageSize).size;
  if (seal) {
    fails(ret, 'munmap(ptr, size)');
    check(first === pageSize, `get_vma_size(ptr) = ${first}, not 1 page`);
    check(last === pageSize, `get_vma_size(ptr + 3 pages) = ${last}, not 1 page`);
  } else {
    ok(ret, 'munmap(ptr, size)');
    check(first === 0, `get_vma_size(ptr) = ${first}, not 0`);
    check(last === 0, `get_vma_size(ptr + 3 pages) = ${last}, not 0`);
  }
}

function testSealMremapShrink(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  const ret2 = env.mremap(ptr, size, 2 * pageSize, 0);
  if (seal) refusedEperm(ret2, 'mremap(ptr, 4 pages -> 2 pages)');
  else check(ret2 >= 0, `mremap(ptr, 4 pages -> 2 pages) = ${show(ret2)}`);
}

function testSealMremapExpand(env: MmEnv, seal: boolean): void {
  const ptr = setup(env, 4 * pageSize);
  ok(env.munmap(ptr + 2 * pageSize, 2 * pageSize), 'munmap(ptr + 2 pages, 2 pages)');
  if (seal) ok(mseal(env, ptr, 2 * pageSize), 'mseal(ptr, 2 pages)');
  const ret2 = env.mremap(ptr, 2 * pageSize, 4 * pageSize, 0);
  if (seal) refusedEperm(ret2, 'mremap(ptr, 2 pages -> 4 pages)');
  else check(ret2 === ptr, `mremap(ptr, 2 pages -> 4 pages) = ${show(ret2)}, not ptr`);
}

function testSealMremapMove(env: MmEnv, seal: boolean): void {
  const size = pageSize;
  const ptr = setup(env, size);
  const newPtr = setup(env, size);
  ok(env.munmap(newPtr, size), 'munmap(newPtr, size)');
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  const ret2 = env.mremap(ptr, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, newPtr);
  if (seal) refusedEperm(ret2, 'mremap(ptr -> newPtr, FIXED)');
  else check(ret2 >= 0, `mremap(ptr -> newPtr, FIXED) = ${show(ret2)}`);
}

/** mmap(ptr, len, prot, MAP_FIXED) over the test's mapping: ptr, or MAP_FAILED with EPERM on a seal. */
function mmapOver(env: MmEnv, seal: boolean, ptr: number, len: number, prot: number): void {
  const ret2 = env.mmap(ptr, len, prot, ANON | MAP_FIXED);
  const what = `mmap(ptr, ${len / pageSize} pages, MAP_FIXED)`;
  if (seal) refusedEperm(ret2, what);
  else check(ret2 === ptr, `${what} = ${show(ret2)}, not ptr`);
}

function testSealMmapOverwriteProt(env: MmEnv, seal: boolean): void {
  const size = pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  mmapOver(env, seal, ptr, size, PROT_NONE);
}

function testSealMmapExpand(env: MmEnv, seal: boolean): void {
  const size = 12 * pageSize;
  const ptr = setup(env, size);
  ok(env.munmap(ptr + 8 * pageSize, 4 * pageSize), 'munmap(ptr + 8 pages, 4 pages)');
  if (seal) ok(mseal(env, ptr, 8 * pageSize), 'mseal(ptr, 8 pages)');
  mmapOver(env, seal, ptr, size, PROT_READ);
}

function testSealMmapShrink(env: MmEnv, seal: boolean): void {
  const size = 12 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  mmapOver(env, seal, ptr, 8 * pageSize, PROT_READ);
}

/** mremap(MREMAP_MAYMOVE | MREMAP_FIXED) to newAddr: newAddr, or MAP_FAILED with EPERM on a seal. */
function mremapToFixed(
  env: MmEnv,
  seal: boolean,
  ptr: number,
  oldLen: number,
  newLen: number,
  newAddr: number,
): void {
  const ret2 = env.mremap(ptr, oldLen, newLen, MREMAP_MAYMOVE | MREMAP_FIXED, newAddr);
  const what = `mremap(ptr, ${oldLen / pageSize} -> ${newLen / pageSize} pages, FIXED newAddr)`;
  if (seal) refusedEperm(ret2, what);
  else check(ret2 === newAddr, `${what} = ${show(ret2)}, not newAddr`);
}

function testSealMremapShrinkFixed(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  const newAddr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  mremapToFixed(env, seal, ptr, size, 2 * pageSize, newAddr);
}

function testSealMremapExpandFixed(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, pageSize);
  const newAddr = setup(env, size);
  if (seal) ok(mseal(env, newAddr, size), 'mseal(newAddr, size)');
  mremapToFixed(env, seal, ptr, pageSize, size, newAddr);
}

function testSealMremapMoveFixed(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  const newAddr = setup(env, size);
  if (seal) ok(mseal(env, newAddr, size), 'mseal(newAddr, size)');
  mremapToFixed(env, seal, ptr, size, size, newAddr);
}

function testSealMremapMoveFixedZero(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  mremapToFixed(env, seal, ptr, size, 2 * pageSize, 0);
}

function testSealMremapMoveDontunmap(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  const ret2 = env.mremap(ptr, size, size, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
  if (seal) refusedEperm(ret2, 'mremap(ptr, DONTUNMAP)');
  else check(ret2 >= 0, `mremap(ptr, DONTUNMAP) = ${show(ret2)}`);
}

function testSealMremapMoveDontunmapAnyaddr(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  // A free range: mapped, then unmapped.
  const ptr2 = setup(env, size);
  ok(env.munmap(ptr2, size), 'munmap(ptr2, size)');
  const ret2 = env.mremap(ptr, size, size, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, ptr2);
  if (seal) refusedEperm(ret2, 'mremap(ptr, DONTUNMAP, hint ptr2)');
  else check(ret2 === ptr2, `mremap(ptr, DONTUNMAP, hint ptr2) = ${show(ret2)}, not ptr2`);
}

function testSealMergeAndSplit(env: MmEnv): void {
  // Each step's layout in pages: NONE = PROT_NONE, RO = read-only, RO_SEAL = read-only and sealed.
  // (24 RO)
  const ptr = setup(env, 24 * pageSize);
  let prot = 0;
  const at = (pages: number): number => ptr + pages * pageSize;
  const expectVma = (pages: number, size: number): void => {
    const v = getVmaSize(env, at(pages));
    prot = v.prot;
    check(
      v.size === size * pageSize,
      `get_vma_size(ptr + ${pages} pages) = ${v.size / pageSize} pages, not ${size}`,
    );
  };
  const expectProtRead = (): void => {
    check(prot === 0x4, `prot ${prot}, not r (4)`);
  };
  // (1 NONE) (22 RO) (1 NONE)
  ok(env.mprotect(ptr, pageSize, PROT_NONE), 'mprotect(ptr, 1 page, NONE)');
  ok(env.mprotect(at(23), pageSize, PROT_NONE), 'mprotect(ptr + 23 pages, 1 page, NONE)');
  expectVma(1, 22);
  expectProtRead();
  // (1 NONE) (1 RO_SEAL) (21 RO) (1 NONE)
  ok(mseal(env, at(1), pageSize), 'mseal(ptr + 1 page, 1 page)');
  expectVma(1, 1);
  expectProtRead();
  expectVma(2, 21);
  expectProtRead();
  // (1 NONE) (1 RO_SEAL) (20 RO) (1 RO_SEAL) (1 NONE)
  ok(mseal(env, at(22), pageSize), 'mseal(ptr + 22 pages, 1 page)');
  expectVma(22, 1);
  expectProtRead();
  expectVma(2, 20);
  expectProtRead();
  // Merged with the sealed VMA before: (1 NONE) (2 RO_SEAL) (19 RO) (1 RO_SEAL) (1 NONE)
  ok(mseal(env, at(2), pageSize), 'mseal(ptr + 2 pages, 1 page)');
  expectVma(1, 2);
  expectProtRead();
  // Merged with the sealed VMA after: (1 NONE) (2 RO_SEAL) (18 RO) (2 RO_SEAL) (1 NONE)
  ok(mseal(env, at(21), pageSize), 'mseal(ptr + 21 pages, 1 page)');
  expectVma(21, 2);
  expectProtRead();
  // Split, merged with the one before: (1 NONE) (3 RO_SEAL) (17 RO) (2 RO_SEAL) (1 NONE)
  ok(mseal(env, at(2), 2 * pageSize), 'mseal(ptr + 2 pages, 2 pages)');
  expectVma(1, 3);
  expectProtRead();
  fails(env.munmap(at(1), pageSize), 'munmap(ptr + 1 page, 1 page)');
  fails(env.mprotect(at(2), pageSize, PROT_NONE), 'mprotect(ptr + 2 pages, 1 page, NONE)');
  // Split, merged with the one after: (1 NONE) (3 RO_SEAL) (16 RO) (3 RO_SEAL) (1 NONE)
  ok(mseal(env, at(20), 2 * pageSize), 'mseal(ptr + 20 pages, 2 pages)');
  // The C test checks the prot it read before this step once more here.
  expectProtRead();
  expectVma(20, 3);
  expectProtRead();
  // Both merged across the middle: (1 NONE) (22 RO_SEAL) (1 NONE)
  ok(mseal(env, at(2), 20 * pageSize), 'mseal(ptr + 2 pages, 20 pages)');
  expectVma(1, 22);
  expectProtRead();
}

/** The discard tests: MADV_DONTNEED on the mapping, then munmap() of it, which a seal refuses. */
function discardThenUnmap(
  env: MmEnv,
  seal: boolean,
  ptr: number,
  size: number,
  discardRefused: boolean,
): void {
  const what = `madvise(ptr, ${size / pageSize} pages, DONTNEED)`;
  const ret = env.madvise(ptr, size, MADV.DONTNEED);
  if (discardRefused) refusedIfSealed(seal, ret, what);
  else ok(ret, what);
  refusedIfSealed(seal, env.munmap(ptr, size), 'munmap(ptr, size)');
}

function testSealDiscardRoAnonOnRw(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size, true);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  // Writable memory may be discarded, sealed or not.
  discardThenUnmap(env, seal, ptr, size, false);
}

function testSealDiscardRoAnonOnFilebacked(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const fd = env.sys.memfdCreate('test', 0);
  check(fd > 0, `memfd_create() = ${show(fd)}`);
  ok(env.sys.fallocate(fd, 0, 0, size), 'fallocate(fd, 0, 0, size)');
  const ptr = env.mmap(0, size, PROT_READ, MAP_PRIVATE, fd);
  check(ptr >= 0, `mmap(NULL, size, READ, MAP_PRIVATE, fd) = ${show(ptr)}`);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  // A file mapping may be discarded, sealed or not.
  discardThenUnmap(env, seal, ptr, size, false);
  env.sys.close(fd);
}

function testSealDiscardRoAnonOnShared(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = env.mmap(0, size, PROT_READ, MAP_ANONYMOUS | MAP_SHARED);
  check(ptr >= 0, `mmap(NULL, size, READ, MAP_ANONYMOUS | MAP_SHARED) = ${show(ptr)}`);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  // Shared memory may be discarded, sealed or not.
  discardThenUnmap(env, seal, ptr, size, false);
}

function testSealDiscardRoAnon(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  discardThenUnmap(env, seal, ptr, size, true);
}

function testSealDiscardAcrossVmas(env: MmEnv, seal: boolean): void {
  const size = 2 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr + pageSize, pageSize), 'mseal(ptr + 1 page, 1 page)');
  discardThenUnmap(env, seal, ptr, size, true);
}

function testSealMadviseNodiscard(env: MmEnv, seal: boolean): void {
  const size = 4 * pageSize;
  const ptr = setup(env, size);
  if (seal) ok(mseal(env, ptr, size), 'mseal(ptr, size)');
  // Advice that keeps the data is allowed on sealed memory.
  ok(env.madvise(ptr, size, MADV.RANDOM), 'madvise(ptr, size, RANDOM)');
  refusedIfSealed(seal, env.munmap(ptr, size), 'munmap(ptr, size)');
}

const NO_CAP_SYS_RAWIO =
  'puts a mapping at address 0, below mmap_min_addr: only root (CAP_SYS_RAWIO) may, and no process of the model is';
const NO_PKEYS = 'needs memory protection keys (pkey_alloc(), pkey_mprotect(), PKRU), which the model lacks';

/**
 * main()'s calls in order: a test it calls without an argument (`run`), or one it calls with
 * false and then true (`seal`). A string in place of a body says why the test is not modelled;
 * `withoutSeal` says why its run with false is not.
 */
type Entry =
  | { readonly name: string; readonly run: ((env: MmEnv) => void) | string }
  | {
      readonly name: string;
      readonly seal: ((env: MmEnv, seal: boolean) => void) | string;
      readonly withoutSeal?: string;
    };

const MAIN: readonly Entry[] = [
  { name: 'test_seal_addseal', run: testSealAddseal },
  { name: 'test_seal_unmapped_start', run: testSealUnmappedStart },
  { name: 'test_seal_unmapped_middle', run: testSealUnmappedMiddle },
  { name: 'test_seal_unmapped_end', run: testSealUnmappedEnd },
  { name: 'test_seal_multiple_vmas', run: testSealMultipleVmas },
  { name: 'test_seal_split_start', run: testSealSplitStart },
  { name: 'test_seal_split_end', run: testSealSplitEnd },
  { name: 'test_seal_invalid_input', run: testSealInvalidInput },
  { name: 'test_seal_zero_length', run: testSealZeroLength },
  { name: 'test_seal_twice', run: testSealTwice },
  { name: 'test_seal_mprotect', seal: testSealMprotect },
  { name: 'test_seal_start_mprotect', seal: testSealStartMprotect },
  { name: 'test_seal_end_mprotect', seal: testSealEndMprotect },
  { name: 'test_seal_mprotect_unalign_len', seal: testSealMprotectUnalignLen },
  { name: 'test_seal_mprotect_unalign_len_variant_2', seal: testSealMprotectUnalignLenVariant2 },
  { name: 'test_seal_mprotect_two_vma', seal: testSealMprotectTwoVma },
  { name: 'test_seal_mprotect_two_vma_with_split', seal: testSealMprotectTwoVmaWithSplit },
  { name: 'test_seal_mprotect_partial_mprotect', seal: testSealMprotectPartialMprotect },
  { name: 'test_seal_mprotect_two_vma_with_gap', run: testSealMprotectTwoVmaWithGap },
  { name: 'test_seal_mprotect_merge', seal: testSealMprotectMerge },
  { name: 'test_seal_mprotect_split', seal: testSealMprotectSplit },
  { name: 'test_seal_mprotect_partial_mprotect_tail', seal: testSealMprotectPartialMprotectTail },
  { name: 'test_seal_munmap', seal: testSealMunmap },
  { name: 'test_seal_munmap_two_vma', seal: testSealMunmapTwoVma },
  { name: 'test_seal_munmap_vma_with_gap', seal: testSealMunmapVmaWithGap },
  { name: 'test_seal_munmap_partial_across_vmas', seal: testSealMunmapPartialAcrossVmas },
  { name: 'test_munmap_start_freed', seal: testMunmapStartFreed },
  { name: 'test_munmap_middle_freed', seal: testMunmapMiddleFreed },
  { name: 'test_munmap_end_freed', seal: testMunmapEndFreed },
  { name: 'test_seal_mremap_shrink', seal: testSealMremapShrink },
  { name: 'test_seal_mremap_expand', seal: testSealMremapExpand },
  { name: 'test_seal_mremap_move', seal: testSealMremapMove },
  { name: 'test_seal_mremap_shrink_fixed', seal: testSealMremapShrinkFixed },
  { name: 'test_seal_mremap_expand_fixed', seal: testSealMremapExpandFixed },
  { name: 'test_seal_mremap_move_fixed', seal: testSealMremapMoveFixed },
  { name: 'test_seal_mremap_move_dontunmap', seal: testSealMremapMoveDontunmap },
  {
    name: 'test_seal_mremap_move_fixed_zero',
    seal: testSealMremapMoveFixedZero,
    withoutSeal: NO_CAP_SYS_RAWIO,
  },
  { name: 'test_seal_mremap_move_dontunmap_anyaddr', seal: testSealMremapMoveDontunmapAnyaddr },
  { name: 'test_seal_madvise_nodiscard', seal: testSealMadviseNodiscard },
  { name: 'test_seal_discard_ro_anon', seal: testSealDiscardRoAnon },
  { name: 'test_seal_discard_across_vmas', seal: testSealDiscardAcrossVmas },
  { name: 'test_seal_discard_ro_anon_on_rw', seal: testSealDiscardRoAnonOnRw },
  { name: 'test_seal_discard_ro_anon_on_shared', seal: testSealDiscardRoAnonOnShared },
  { name: 'test_seal_discard_ro_anon_on_filebacked', seal: testSealDiscardRoAnonOnFilebacked },
  { name: 'test_seal_mmap_overwrite_prot', seal: testSealMmapOverwriteProt },
  { name: 'test_seal_mmap_expand', seal: testSealMmapExpand },
  { name: 'test_seal_mmap_shrink', seal: testSealMmapShrink },
  { name: 'test_seal_merge_and_split', run: testSealMergeAndSplit },
  { name: 'test_seal_zero_address', run: NO_CAP_SYS_RAWIO },
  { name: 'test_seal_discard_ro_anon_on_pkey', seal: NO_PKEYS },
];

function msealCase(
  name: string,
  body: ((env: MmEnv) => void) | string,
  config: SystemConfig,
): ConformanceCase {
  if (typeof body !== 'string') return mmCase('mseal_test', name, body, config);
  return { suite: 'mm', name: `mseal_test.${name}`, variant: '', notModelled: body };
}

/** mseal_test.c's tests in the order its main() runs them, each run with a seal a case of its own. */
export function msealCases(config: SystemConfig = {}): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const e of MAIN) {
    if ('run' in e) {
      out.push(msealCase(e.name, e.run, config));
      continue;
    }
    const body = e.seal;
    for (const seal of [false, true]) {
      const why = typeof body === 'string' ? body : seal ? undefined : e.withoutSeal;
      const run = (env: MmEnv): void => {
        if (typeof body !== 'string') body(env, seal);
      };
      out.push(msealCase(`${e.name}(${seal})`, why ?? run, config));
    }
  }
  return out;
}
