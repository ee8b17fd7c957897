/**
 * tools/testing/selftests/mm/mremap_dontunmap.c, map_fixed_noreplace.c and map_populate.c ported
 * to the model.
 *
 * mremap_dontunmap.c: its five tests under their own
 * names, each after the support probe main() runs first (kernel_support_for_mremap_dontunmap()).
 * A BUG_ON() that fires ends the C program with its description; the port fails the case with it.
 * The C test skips the whole file when the probe fails; the model supports MREMAP_DONTUNMAP, so
 * the port fails instead (a skip would hide a defect), and likewise for the shmem test's early
 * return on an old kernel's -EINVAL.
 *
 * map_fixed_noreplace.c is one main() that reports nine results; each is a case under its
 * message, which runs main() up to that result.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_CLOEXEC,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { Process, SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, show } from './mm_env.ts';

const pageSize = PAGE_SIZE;

/** BUG_ON(condition, description). */
function bugOn(condition: boolean, description: string): void {
  if (condition) assert.fail(`[FAIL] ${description}`);
}

/** mmap() of private anonymous read-write memory; MAP_FAILED is a BUG_ON. */
function mapAnon(env: MmEnv, len: number): number {
  const p = env.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  bugOn(p < 0, `mmap: ${show(p)}`);
  return p;
}

/** mremap(); MAP_FAILED is a BUG_ON. */
function remap(env: MmEnv, addr: number, oldLen: number, newLen: number, flags: number, newAddr = 0): number {
  const r = env.mremap(addr, oldLen, newLen, flags, newAddr);
  bugOn(r < 0, `mremap: ${show(r)}`);
  return r;
}

function unmap(env: MmEnv, addr: number, len: number, what: string): void {
  bugOn(env.munmap(addr, len) !== 0, `unable to unmap ${what} mapping`);
}

/** check_region_contains_byte(): 0 when every page holds only `byte`, else nonzero. */
function checkRegionContainsByte(env: MmEnv, addr: number, size: number, byte: number): number {
  bugOn(size % pageSize !== 0, 'check_region_contains_byte expects page multiples');
  bugOn(addr % pageSize !== 0, 'check_region_contains_byte expects page alignment');
  for (let i = 0; i < size / pageSize; i++) {
    if (env.load(addr + i * pageSize, pageSize).some((b) => b !== byte)) return 1;
  }
  return 0;
}

/** kernel_support_for_mremap_dontunmap(): 0, or the errno of the probe's mremap(). */
function kernelSupportForMremapDontunmap(env: MmEnv): number {
  const source = env.mmap(0, pageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
  bugOn(source < 0, 'mmap');
  const dest = env.mremap(source, pageSize, pageSize, MREMAP_DONTUNMAP | MREMAP_MAYMOVE);
  let ret = 0;
  if (dest < 0) ret = -dest;
  else unmap(env, dest, pageSize, 'destination');
  unmap(env, source, pageSize, 'source');
  return ret;
}

const TESTS: readonly [string, (env: MmEnv) => void][] = [
  [
    'mremap_dontunmap_simple',
    (env) => {
      const n = 5;
      const source = mapAnon(env, n * pageSize);
      env.memset(source, 0x61, n * pageSize);
      const dest = remap(env, source, n * pageSize, n * pageSize, MREMAP_DONTUNMAP | MREMAP_MAYMOVE);
      bugOn(checkRegionContainsByte(env, dest, n * pageSize, 0x61) !== 0, 'pages did not migrate');
      bugOn(checkRegionContainsByte(env, source, n * pageSize, 0) !== 0, 'source should have no ptes');
      unmap(env, dest, n * pageSize, 'destination');
      unmap(env, source, n * pageSize, 'source');
    },
  ],
  [
    'mremap_dontunmap_simple_shmem',
    (env) => {
      const n = 5;
      const memFd = env.sys.memfdCreate('memfd', MFD_CLOEXEC);
      bugOn(memFd < 0, 'memfd_create');
      bugOn(env.sys.ftruncate(memFd, n * pageSize) < 0, 'ftruncate');
      const source = env.mmap(0, n * pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, memFd);
      bugOn(source < 0, 'mmap');
      bugOn(env.sys.close(memFd) < 0, 'close');
      env.memset(source, 0x61, n * pageSize);
      const dest = remap(env, source, n * pageSize, n * pageSize, MREMAP_DONTUNMAP | MREMAP_MAYMOVE);
      bugOn(checkRegionContainsByte(env, dest, n * pageSize, 0x61) !== 0, 'pages did not migrate');
      // Backed by shmem: the source still shows the same memory.
      bugOn(checkRegionContainsByte(env, source, n * pageSize, 0x61) !== 0, 'source should have no ptes');
      unmap(env, dest, n * pageSize, 'destination');
      unmap(env, source, n * pageSize, 'source');
    },
  ],
  [
    'mremap_dontunmap_simple_fixed',
    (env) => {
      const n = 5;
      const dest = mapAnon(env, n * pageSize);
      env.memset(dest, 0x58, n * pageSize);
      const source = mapAnon(env, n * pageSize);
      env.memset(source, 0x61, n * pageSize);
      const remapped = remap(
        env,
        source,
        n * pageSize,
        n * pageSize,
        MREMAP_FIXED | MREMAP_DONTUNMAP | MREMAP_MAYMOVE,
        dest,
      );
      bugOn(remapped !== dest, 'mremap should have placed the remapped mapping at dest_mapping');
      bugOn(checkRegionContainsByte(env, dest, n * pageSize, 0x61) !== 0, 'pages did not migrate');
      bugOn(checkRegionContainsByte(env, source, n * pageSize, 0) !== 0, 'source should have no ptes');
      unmap(env, dest, n * pageSize, 'destination');
      unmap(env, source, n * pageSize, 'source');
    },
  ],
  [
    'mremap_dontunmap_partial_mapping',
    (env) => {
      const n = 10;
      const source = mapAnon(env, n * pageSize);
      env.memset(source, 0x61, n * pageSize);
      const dest = remap(
        env,
        source + 5 * pageSize,
        5 * pageSize,
        5 * pageSize,
        MREMAP_DONTUNMAP | MREMAP_MAYMOVE,
      );
      bugOn(
        checkRegionContainsByte(env, source, 5 * pageSize, 0x61) !== 0,
        'first 5 pages of source should have original pages',
      );
      bugOn(
        checkRegionContainsByte(env, source + 5 * pageSize, 5 * pageSize, 0) !== 0,
        'final 5 pages of source should have no ptes',
      );
      bugOn(
        checkRegionContainsByte(env, dest, 5 * pageSize, 0x61) !== 0,
        'dest mapping should contain ptes from the source',
      );
      unmap(env, dest, 5 * pageSize, 'destination');
      unmap(env, source, n * pageSize, 'source');
    },
  ],
  [
    'mremap_dontunmap_partial_mapping_overwrite',
    (env) => {
      const source = mapAnon(env, 5 * pageSize);
      env.memset(source, 0x61, 5 * pageSize);
      const dest = mapAnon(env, 10 * pageSize);
      env.memset(dest, 0x58, 10 * pageSize);
      const remapped = remap(
        env,
        source,
        5 * pageSize,
        5 * pageSize,
        MREMAP_DONTUNMAP | MREMAP_MAYMOVE | MREMAP_FIXED,
        dest,
      );
      bugOn(dest !== remapped, 'expected to remap to dest_mapping');
      bugOn(
        checkRegionContainsByte(env, source, 5 * pageSize, 0) !== 0,
        'first 5 pages of source should have no ptes',
      );
      bugOn(
        checkRegionContainsByte(env, dest, 5 * pageSize, 0x61) !== 0,
        'dest mapping should contain ptes from the source',
      );
      bugOn(
        checkRegionContainsByte(env, dest + 5 * pageSize, 5 * pageSize, 0x58) !== 0,
        'dest mapping should have retained the last 5 pages',
      );
      unmap(env, dest, 10 * pageSize, 'destination');
      unmap(env, source, 5 * pageSize, 'source');
    },
  ],
];

/** mremap_dontunmap.c's tests in its main()'s order. */
export function mremapDontunmapCases(config: SystemConfig = {}): ConformanceCase[] {
  return TESTS.map(([name, body]) => ({
    suite: 'mm',
    name: `mremap_dontunmap.${name}`,
    variant: '',
    run: () => {
      const env = new MmEnv(config);
      assert.equal(kernelSupportForMremapDontunmap(env), 0, 'No kernel support for MREMAP_DONTUNMAP');
      body(env);
      env.teardown();
    },
  }));
}

// ---- map_fixed_noreplace.c ----

/**
 * map_fixed_noreplace.c's main(), as [ksft_test_result_pass() message, step] in order: each step
 * is one mmap() (or the final munmap()) and whether it must succeed. A step that does not do what
 * it must ends the C program (ksft_exit_fail_msg) before its result is reported.
 */
const NOREPLACE_STEPS: readonly [string, number, number, 'map' | 'fail' | 'unmap'][] = [
  // [message, first page from the base, pages, what must happen]
  ['mmap() 5*PAGE_SIZE at base', 0, 5, 'map'],
  ['mmap() 3*PAGE_SIZE at base+PAGE_SIZE', 1, 3, 'map'],
  ['Second mmap() 5*PAGE_SIZE at base', 0, 5, 'fail'],
  ['mmap() 2*PAGE_SIZE at base+PAGE_SIZE', 2, 1, 'fail'],
  ['mmap() 2*PAGE_SIZE  at base+(3*PAGE_SIZE)', 3, 2, 'fail'],
  ['mmap() 2*PAGE_SIZE bytes at base', 0, 2, 'fail'],
  ['mmap() PAGE_SIZE at base', 0, 1, 'map'],
  ['mmap() PAGE_SIZE at base+(4*PAGE_SIZE)', 4, 1, 'map'],
  ['Base Address unmap() successful', 0, 5, 'unmap'],
];

/** Runs main() up to and including the result at `upTo`. */
function mapFixedNoreplace(env: MmEnv, upTo: number): void {
  // find_base_addr(): a free range of five pages.
  const probe = env.mmap(0, 5 * pageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (probe < 0) assert.fail("Error: couldn't map the space we need for the test");
  if (env.munmap(probe, 5 * pageSize) !== 0) assert.fail('Error: munmap failed');
  const base = probe;
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
  for (let i = 0; i <= upTo; i++) {
    const [message, first, pages, must] = NOREPLACE_STEPS[i];
    const addr = base + first * pageSize;
    if (must === 'unmap') {
      if (env.munmap(addr, pages * pageSize) !== 0) assert.fail('Error: munmap failed!?');
      continue;
    }
    const p = env.mmap(addr, pages * pageSize, PROT_NONE, flags);
    if (must === 'map' && p < 0) assert.fail(`${message}: mmap() failed when it shouldn't have (${show(p)})`);
    if (must === 'fail' && p >= 0) assert.fail(`${message}: mmap() succeeded when it shouldn't have`);
    // The first step maps the whole range only to see it is free, and unmaps it again.
    if (i === 0 && env.munmap(addr, pages * pageSize) !== 0) assert.fail('Error: munmap failed!?');
  }
}

/** map_fixed_noreplace.c's nine results, each a case running main() up to it. */
export function mapFixedNoreplaceCases(config: SystemConfig = {}): ConformanceCase[] {
  return NOREPLACE_STEPS.map(([message], i) => ({
    suite: 'mm',
    name: `map_fixed_noreplace.${message}`,
    variant: '',
    run: () => {
      const env = new MmEnv(config);
      mapFixedNoreplace(env, i);
      env.teardown();
    },
  }));
}

// ---- map_populate.c ----

/**
 * map_populate.c's main(): a tmpfs file (tmpfile()) holds 0xdeadbabe; a child maps it MAP_PRIVATE
 * | MAP_POPULATE, then the parent writes 0x22222BAD through its MAP_SHARED mapping. The child's
 * two results: populating a private writable mapping broke COW, so the parent's write is not
 * seen. The socket pair only orders the two processes; the port runs them in that order. msync()
 * of a tmpfs mapping does nothing the model needs.
 */
function mapPopulate(env: MmEnv): { cow: boolean; state: boolean } {
  const MMAP_SZ = 4096;
  const word = (v: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    return b;
  };
  const read = (addr: number, proc: Process) => {
    const b = env.load(addr, 8, proc);
    return Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  };
  const fd = env.sys.memfdCreate('tmpfile', 0);
  bugOn(fd < 0, 'tmpfile()');
  bugOn(env.sys.ftruncate(fd, MMAP_SZ) !== 0, 'ftruncate()');
  const smap = env.mmap(0, MMAP_SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
  bugOn(smap < 0, 'mmap()');
  env.memcpy(smap, word(0xdeadbabe));
  const child = env.fork();
  // child_f(): its own private mapping, populated.
  const cmap = env.mmap(0, MMAP_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE, fd, 0, child);
  bugOn(cmap < 0, 'mmap()');
  bugOn(read(cmap, child) !== 0xdeadbabe, 'MAP_PRIVATE | MAP_POPULATE changed file');
  // parent_f(): the write through the shared mapping, after the child's populate.
  env.memcpy(smap, word(0x22222bad));
  const out = { cow: read(cmap, child) !== 0x22222bad, state: read(cmap, child) === 0xdeadbabe };
  env.exit(child);
  bugOn(env.sys.close(fd) !== 0, 'close()');
  return out;
}

/** map_populate.c's two results (both reported by the child), each a case. */
export function mapPopulateCases(config: SystemConfig = {}): ConformanceCase[] {
  return (
    [
      ['MAP_POPULATE COW private page', 'cow'],
      ['The mapping state', 'state'],
    ] as const
  ).map(([message, key]) => ({
    suite: 'mm',
    name: `map_populate.${message}`,
    variant: '',
    run: () => {
      const env = new MmEnv(config);
      assert.ok(mapPopulate(env)[key], message);
      env.teardown();
    },
  }));
}
