/**
 * tools/testing/selftests/mm/madv_populate.c, soft-dirty.c and mkdirty.c ported to the model. Each
 * case is one of the C file's test functions under its own name; the case asserts every
 * ksft_test_result() the function reports, in order.
 *
 * Where the C tests use the C library's heap (aligned_alloc(), memalign()), the port maps private
 * anonymous memory of the same size and alignment; soft-dirty.c's file test uses a tmpfs file
 * (a memfd) where the C test creates one in the current directory.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { Errno } from '../kernel/errno.ts';
import { FOLL_FORCE, FOLL_WRITE, getUserPagesRemote, putUserPages } from '../kernel/mm/gup.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, PMD_SIZE, alignDown, expectRet, mmCase } from './mm_env.ts';

const pagesize = PAGE_SIZE;

// ---- madv_populate.c ----

/** All tests use 2 MiB of private anonymous memory. */
const SIZE = 2 * 1024 * 1024;

/** ksft_test_result(cond, msg): the case fails on the first result that is not a pass. */
function result(ok: boolean, msg: string): void {
  if (!ok) assert.fail(msg);
}

function rangeIsPopulated(env: MmEnv, start: number, size: number): boolean {
  for (let a = start; a < start + size; a += pagesize) if (!env.isPopulated(a)) return false;
  return true;
}

function rangeIsNotPopulated(env: MmEnv, start: number, size: number): boolean {
  for (let a = start; a < start + size; a += pagesize) if (env.isPopulated(a)) return false;
  return true;
}

function rangeIsSoftdirty(env: MmEnv, start: number, size: number): boolean {
  for (let a = start; a < start + size; a += pagesize) if (!env.isSoftDirty(a)) return false;
  return true;
}

function rangeIsNotSoftdirty(env: MmEnv, start: number, size: number): boolean {
  for (let a = start; a < start + size; a += pagesize) if (env.isSoftDirty(a)) return false;
  return true;
}

/** sense_support(): both advices exist (the C test skips everything otherwise). */
function senseSupport(env: MmEnv): void {
  const addr = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, 0);
  expectRet(env.madvise(addr, pagesize, MADV.POPULATE_READ), 0, 'MADV_POPULATE_READ is not available');
  expectRet(env.madvise(addr, pagesize, MADV.POPULATE_WRITE), 0, 'MADV_POPULATE_WRITE is not available');
  env.munmap(addr, pagesize);
}

const MADV_POPULATE_TESTS: readonly [string, (env: MmEnv) => void][] = [
  [
    'test_prot_read',
    (env) => {
      const addr = env.mmapOk(SIZE, PROT_READ, MAP_ANONYMOUS | MAP_PRIVATE, 0);
      result(env.madvise(addr, SIZE, MADV.POPULATE_READ) === 0, 'MADV_POPULATE_READ with PROT_READ');
      result(
        env.madvise(addr, SIZE, MADV.POPULATE_WRITE) === -Errno.EINVAL,
        'MADV_POPULATE_WRITE with PROT_READ',
      );
      env.munmap(addr, SIZE);
    },
  ],
  [
    'test_prot_write',
    (env) => {
      const addr = env.mmapOk(SIZE, PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, 0);
      result(
        env.madvise(addr, SIZE, MADV.POPULATE_READ) === -Errno.EINVAL,
        'MADV_POPULATE_READ with PROT_WRITE',
      );
      result(env.madvise(addr, SIZE, MADV.POPULATE_WRITE) === 0, 'MADV_POPULATE_WRITE with PROT_WRITE');
      env.munmap(addr, SIZE);
    },
  ],
  [
    'test_holes',
    (env) => {
      const addr = env.mmapOk(SIZE, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, 0);
      expectRet(env.munmap(addr + pagesize, pagesize), 0, 'munmap failed');
      const enomem = (r: number): boolean => r === -Errno.ENOMEM;
      result(
        enomem(env.madvise(addr, SIZE, MADV.POPULATE_READ)),
        'MADV_POPULATE_READ with holes in the middle',
      );
      result(
        enomem(env.madvise(addr, SIZE, MADV.POPULATE_WRITE)),
        'MADV_POPULATE_WRITE with holes in the middle',
      );
      result(
        enomem(env.madvise(addr, 2 * pagesize, MADV.POPULATE_READ)),
        'MADV_POPULATE_READ with holes at the end',
      );
      result(
        enomem(env.madvise(addr, 2 * pagesize, MADV.POPULATE_WRITE)),
        'MADV_POPULATE_WRITE with holes at the end',
      );
      result(
        enomem(env.madvise(addr + pagesize, pagesize, MADV.POPULATE_READ)),
        'MADV_POPULATE_READ with holes at the beginning',
      );
      result(
        enomem(env.madvise(addr + pagesize, pagesize, MADV.POPULATE_WRITE)),
        'MADV_POPULATE_WRITE with holes at the beginning',
      );
      env.munmap(addr, SIZE);
    },
  ],
  [
    'test_populate_read',
    (env) => {
      const addr = env.mmapOk(SIZE, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, 0);
      result(rangeIsNotPopulated(env, addr, SIZE), 'range initially not populated');
      result(env.madvise(addr, SIZE, MADV.POPULATE_READ) === 0, 'MADV_POPULATE_READ');
      result(rangeIsPopulated(env, addr, SIZE), 'range is populated');
      env.munmap(addr, SIZE);
    },
  ],
  [
    'test_populate_write',
    (env) => {
      const addr = env.mmapOk(SIZE, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, 0);
      result(rangeIsNotPopulated(env, addr, SIZE), 'range initially not populated');
      result(env.madvise(addr, SIZE, MADV.POPULATE_WRITE) === 0, 'MADV_POPULATE_WRITE');
      result(rangeIsPopulated(env, addr, SIZE), 'range is populated');
      env.munmap(addr, SIZE);
    },
  ],
  [
    'test_softdirty',
    (env) => {
      const addr = env.mmapOk(SIZE, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, 0);
      env.clearSoftDirty();
      result(rangeIsNotSoftdirty(env, addr, SIZE), 'range is not softdirty');
      // Populating for reading must not set softdirty; populating for writing must.
      result(env.madvise(addr, SIZE, MADV.POPULATE_READ) === 0, 'MADV_POPULATE_READ');
      result(rangeIsNotSoftdirty(env, addr, SIZE), 'range is not softdirty');
      result(env.madvise(addr, SIZE, MADV.POPULATE_WRITE) === 0, 'MADV_POPULATE_WRITE');
      result(rangeIsSoftdirty(env, addr, SIZE), 'range is softdirty');
      env.munmap(addr, SIZE);
    },
  ],
];

// ---- soft-dirty.c ----

const TEST_ITERATIONS = 10000;

/** map[0]++ */
function incrementFirstByte(env: MmEnv, map: number): void {
  const b = env.load(map, 1);
  expectRet(env.store(map, Uint8Array.of((b[0] + 1) & 0xff)), 1, 'map[0]++');
}

/** The loop test_simple() and test_hugepage() share; returns how many iterations passed. */
function dirtyLoop(env: MmEnv, map: number): number {
  env.clearSoftDirty();
  let i = 0;
  for (; i < TEST_ITERATIONS; i++) {
    if (env.isSoftDirty(map)) break; // "dirty bit was 1, but should be 0"
    env.clearSoftDirty();
    incrementFirstByte(env, map);
    if (!env.isSoftDirty(map)) break; // "dirty bit was 0, but should be 1"
    env.clearSoftDirty();
  }
  return i;
}

/** test_mprotect(): the soft-dirty bit across clear_refs and a read-only round trip. */
function testMprotect(env: MmEnv, anon: boolean): void {
  const type = anon ? 'anon' : 'file';
  let map: number;
  let fd = -1;
  if (anon) {
    map = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE);
  } else {
    fd = env.sys.memfdCreate('soft-dirty-test-file', 0);
    assert.ok(fd >= 0, 'open() file failed');
    expectRet(env.sys.ftruncate(fd, pagesize), 0, 'ftruncate()');
    map = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
  }
  expectRet(env.store(map, Uint8Array.of(1)), 1, '*map = 1');
  result(env.isSoftDirty(map), `Test test_mprotect-${type} dirty bit of new written page`);
  env.clearSoftDirty();
  result(!env.isSoftDirty(map), `Test test_mprotect-${type} soft-dirty clear after clear_refs`);
  env.mprotect(map, pagesize, PROT_READ);
  result(!env.isSoftDirty(map), `Test test_mprotect-${type} soft-dirty clear after marking RO`);
  env.mprotect(map, pagesize, PROT_READ | PROT_WRITE);
  result(!env.isSoftDirty(map), `Test test_mprotect-${type} soft-dirty clear after marking RW`);
  expectRet(env.store(map, Uint8Array.of(2)), 1, '*map = 2');
  result(env.isSoftDirty(map), `Test test_mprotect-${type} soft-dirty after rewritten`);
  env.munmap(map, pagesize);
  if (!anon) expectRet(env.sys.close(fd), 0, 'close()');
}

const SOFT_DIRTY_TESTS: readonly [string, (env: MmEnv) => void][] = [
  [
    'test_simple',
    (env) => {
      const map = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE);
      result(dirtyLoop(env, map) === TEST_ITERATIONS, 'Test test_simple');
      env.munmap(map, pagesize);
    },
  ],
  [
    'test_vma_reuse',
    (env) => {
      const map = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      // The kernel always marks new regions as soft dirty.
      result(env.isSoftDirty(map), 'Test test_vma_reuse dirty bit of allocated page');
      env.clearSoftDirty();
      env.munmap(map, pagesize);
      const map2 = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      // Dirty bit is set for new regions even if they are reused (the C test skips when the
      // address differs; the model's layout is deterministic, so it must be the same).
      assert.equal(map2, map, 'Test test_vma_reuse dirty bit of reused address page: not reused');
      result(env.isSoftDirty(map2), 'Test test_vma_reuse dirty bit of reused address page');
      env.munmap(map2, pagesize);
    },
  ],
  [
    'test_hugepage',
    (env) => {
      const hpageLen = PMD_SIZE;
      const raw = env.mmapOk(2 * hpageLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const map = alignDown(raw + hpageLen - 1, hpageLen);
      expectRet(env.madvise(map, hpageLen, MADV.HUGEPAGE), 0, 'madvise failed');
      const data = new Uint8Array(hpageLen);
      for (let i = 0; i < hpageLen; i++) data[i] = i & 0xff;
      expectRet(env.store(map, data), hpageLen, 'map[i] = (char)i');
      // check_huge_anon(map, 1, hpage_len): the range is one anonymous THP.
      const e = env.pagemap(map);
      result(e.present && e.thp && e.kind === 'ram', 'Test test_hugepage huge page allocation');
      result(dirtyLoop(env, map) === TEST_ITERATIONS, 'Test test_hugepage huge page dirty bit');
      env.munmap(raw, 2 * hpageLen);
    },
  ],
  [
    'test_mprotect_anon',
    (env) => {
      testMprotect(env, true);
    },
  ],
  [
    'test_mprotect_file',
    (env) => {
      testMprotect(env, false);
    },
  ],
  ['test_merge', testMerge],
];

/**
 * test_merge() (c7ba92bcfea3, in 6.18.y): a VMA that merges with a soft-dirty neighbour, after
 * mremap() or mprotect(), is soft-dirty as a whole.
 */
function testMerge(env: MmEnv): void {
  const rw = PROT_READ | PROT_WRITE;
  const fixed = MAP_ANONYMOUS | MAP_PRIVATE | MAP_FIXED;
  // Five pages of room; the last stays mapped so nothing merges from beyond it.
  const reserved = env.mmapOk(5 * pagesize, PROT_NONE, MAP_ANONYMOUS | MAP_PRIVATE);
  env.munmap(reserved, 4 * pagesize);
  let map = env.mmap(reserved + pagesize, pagesize, rw, fixed);
  assert.equal(map, reserved + pagesize, 'mmap failed');
  // This clears VM_SOFTDIRTY too.
  env.clearSoftDirty();
  // A new mapping, soft-dirty, away from map ...
  let map2 = env.mmap(reserved + 3 * pagesize, pagesize, rw, fixed);
  assert.equal(map2, reserved + 3 * pagesize, 'mmap failed');
  // ... moved next to it: the merged VMA is soft-dirty throughout.
  map2 = env.mremap(map2, pagesize, pagesize, MREMAP_FIXED | MREMAP_MAYMOVE, reserved + 2 * pagesize);
  assert.equal(map2, reserved + 2 * pagesize, 'mremap failed');
  result(env.isSoftDirty(map), 'Test test_merge-anon soft-dirty after remap merge 1st pg');
  result(env.isSoftDirty(map2), 'Test test_merge-anon soft-dirty after remap merge 2nd pg');
  env.munmap(map, 2 * pagesize);
  map = env.mmap(reserved + pagesize, pagesize, rw, fixed);
  assert.equal(map, reserved + pagesize, 'mmap failed');
  env.clearSoftDirty();
  // An adjacent VMA that cannot merge (PROT_EXEC), soft-dirty ...
  map2 = env.mmap(reserved + 2 * pagesize, pagesize, rw | PROT_EXEC, fixed);
  assert.equal(map2, reserved + 2 * pagesize, 'mmap failed');
  // ... until mprotect() makes map like it, and they merge.
  expectRet(env.mprotect(map, pagesize, rw | PROT_EXEC), 0, 'mprotect failed');
  result(env.isSoftDirty(map), 'Test test_merge-anon soft-dirty after mprotect merge 1st pg');
  result(env.isSoftDirty(map2), 'Test test_merge-anon soft-dirty after mprotect merge 2nd pg');
  env.munmap(map, 2 * pagesize);
  env.munmap(reserved + 4 * pagesize, pagesize);
}

// ---- mkdirty.c ----

/**
 * A write through /proc/self/mem: access_remote_vm() takes the page with FOLL_FORCE | FOLL_WRITE
 * (so a read-only private mapping gets its own anonymous copy), stores into it and lets it go.
 * Returns the bytes written or -errno.
 */
function procMemWrite(env: MmEnv, addr: number, data: Uint8Array): number {
  const mm = env.p.mm!;
  const page = alignDown(addr, pagesize);
  const out: number[] = [];
  const n = env.sys.run(
    'access_remote_vm',
    (function* () {
      yield* mm.mmapLock.downRead();
      const r = yield* getUserPagesRemote(mm, page, 1, FOLL_FORCE | FOLL_WRITE, out);
      yield* mm.mmapLock.upRead();
      return r;
    })(),
  );
  if (n !== 1) return n < 0 ? n : -Errno.EFAULT;
  env.sys.phys.write(out[0], addr - page, data, 0, data.length);
  putUserPages(env.sys, out, 1);
  return data.length;
}

/** do_test_write_sigsegv(): a store must raise SIGSEGV and leave the byte as it was. */
function doTestWriteSigsegv(env: MmEnv, mem: number): void {
  const orig = env.load(mem, 1)[0];
  const ret = env.store(mem, Uint8Array.of((orig + 1) & 0xff));
  result(ret === -Errno.EFAULT && env.load(mem, 1)[0] === orig, 'SIGSEGV generated, page not modified');
}

/** mmap_thp_range(): a THP-aligned, MADV_HUGEPAGE range inside a mapping twice its size. */
function mmapThpRange(env: MmEnv, prot: number): { mem: number; mmapMem: number; mmapSize: number } {
  const mmapSize = 2 * PMD_SIZE;
  const mmapMem = env.mmapOk(mmapSize, prot, MAP_PRIVATE | MAP_ANONYMOUS);
  const mem = alignDown(mmapMem + PMD_SIZE, PMD_SIZE);
  expectRet(env.madvise(mem, PMD_SIZE, MADV.HUGEPAGE), 0, 'MADV_HUGEPAGE failed');
  return { mem, mmapMem, mmapSize };
}

const MKDIRTY_TESTS: readonly [string, ((env: MmEnv) => void) | string][] = [
  [
    'test_ptrace_write',
    (env) => {
      const data = 1;
      const mem = env.mmapOk(pagesize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
      // Fault in the shared zeropage.
      assert.equal(env.load(mem, 1)[0], 0, 'Memory not zero');
      // Unshare it with a FOLL_FORCE write, which may map the fresh page dirty.
      const ret = procMemWrite(env, mem, Uint8Array.of(data));
      assert.ok(ret === 1 && env.load(mem, 1)[0] === data, `write() failed: ${ret}`);
      doTestWriteSigsegv(env, mem);
      env.munmap(mem, pagesize);
    },
  ],
  [
    'test_ptrace_write_thp',
    (env) => {
      const data = 1;
      const { mem, mmapMem, mmapSize } = mmapThpRange(env, PROT_READ);
      const ret = procMemWrite(env, mem, Uint8Array.of(data));
      assert.ok(ret === 1 && env.load(mem, 1)[0] === data, `write() failed: ${ret}`);
      assert.ok(env.isPopulated(mem + PMD_SIZE - pagesize), 'Did not get a THP populated');
      doTestWriteSigsegv(env, mem);
      env.munmap(mmapMem, mmapSize);
    },
  ],
  [
    'test_page_migration',
    'needs mbind(MPOL_MF_MOVE) page migration; the model has no NUMA policy or mbind()',
  ],
  [
    'test_page_migration_thp',
    'needs mbind(MPOL_MF_MOVE) page migration; the model has no NUMA policy or mbind()',
  ],
  [
    'test_pte_mapped_thp',
    (env) => {
      const { mem, mmapMem, mmapSize } = mmapThpRange(env, PROT_READ | PROT_WRITE);
      env.memset(mem, 1, pagesize);
      expectRet(env.mprotect(mem, PMD_SIZE, PROT_READ), 0, 'mprotect() failed');
      assert.ok(env.isPopulated(mem + PMD_SIZE - pagesize), 'Did not get a THP populated');
      // PTE-map the THP by mprotect'ing its last subpage.
      expectRet(
        env.mprotect(mem + PMD_SIZE - pagesize, pagesize, PROT_READ | PROT_WRITE),
        0,
        'mprotect() failed',
      );
      doTestWriteSigsegv(env, mem);
      env.munmap(mmapMem, mmapSize);
    },
  ],
  ['test_uffdio_copy', 'needs userfaultfd (UFFDIO_COPY), which the model does not have'],
];

/** madv_populate.c's test functions in its main()'s order (sense_support() runs first in each). */
export function madvPopulateCases(config: SystemConfig = {}): ConformanceCase[] {
  return MADV_POPULATE_TESTS.map(([name, body]) =>
    mmCase(
      'madv_populate',
      name,
      (env) => {
        senseSupport(env);
        body(env);
      },
      config,
    ),
  );
}

/** soft-dirty.c's test functions in its main()'s order. */
export function softDirtyCases(config: SystemConfig = {}): ConformanceCase[] {
  return SOFT_DIRTY_TESTS.map(([name, body]) => mmCase('soft-dirty', name, body, config));
}

/** mkdirty.c's test functions in its main()'s order; those needing NUMA or userfaultfd are not modelled. */
export function mkdirtyCases(config: SystemConfig = {}): ConformanceCase[] {
  return MKDIRTY_TESTS.map(([name, body]) =>
    typeof body === 'string'
      ? { suite: 'mm', name: `mkdirty.${name}`, variant: '', notModelled: body }
      : mmCase('mkdirty', name, body, config),
  );
}
