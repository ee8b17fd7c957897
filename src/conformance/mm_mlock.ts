/**
 * tools/testing/selftests/mm/mlock-random-test.c ported to the model: mlock() and
 * mlock2(MLOCK_ONFAULT) on random ranges of a buffer, with RLIMIT_MEMLOCK at two chunks and
 * CAP_IPC_LOCK dropped. Within the limit every call succeeds and VmLck ends within the buffer's
 * pages; past it every call fails and VmLck does not move.
 *
 * The C test seeds rand() with the time; the port draws from a PRNG with a fixed seed, so each run
 * tries the same 100 ranges. malloc() of these sizes is glibc's: a mapping of its own, the pointer
 * 16 bytes in (its chunk header before it), which the port reproduces so that the ranges start
 * anywhere in a page as in C. get_proc_page_size() reads MMUPageSize of the buffer's smaps entry,
 * the base page size for this memory: PAGE_SIZE.
 */
import assert from 'node:assert/strict';
import { Prng } from '../lib/prng.ts';
import { PAGE_SIZE, pageAlignUp } from '../lib/units.ts';
import { setCapIpcLock } from '../kernel/mm/mlock.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, MLOCK_ONFAULT, PROT_READ, PROT_WRITE } from '../kernel/mm/mman.ts';
import type { SystemConfig } from '../kernel/system.ts';
import { MmEnv, show } from './mm_env.ts';
import type { ConformanceCase } from './types.ts';

const CHUNK_UNIT = 128 * 1024;
const MLOCK_RLIMIT_SIZE = CHUNK_UNIT * 2;
const MLOCK_WITHIN_LIMIT_SIZE = CHUNK_UNIT;
const MLOCK_OUTOF_LIMIT_SIZE = CHUNK_UNIT * 3;
const TEST_LOOP = 100;

/** glibc's malloc() of `size` bytes (above its mmap threshold): its own mapping, the pointer 16 bytes in. */
function malloc(env: MmEnv, size: number): { p: number; base: number; len: number } {
  const len = pageAlignUp(size + 32);
  const base = env.mmapOk(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  return { p: base + 16, base, len };
}

/** VmLck of /proc/self/status, in bytes (get_proc_locked_vm_size()). */
function getProcLockedVmSize(env: MmEnv): number {
  return env.sys.stats(env.p).locked_vm;
}

/** rand(): the port's fixed-seed stand-in for the C test's time-seeded one. */
function rand(r: Prng): number {
  return r.int(2 ** 31);
}

function mlockOrMlock2(env: MmEnv, isMlock: boolean, start: number, len: number): number {
  return env.sys.mlock(env.p, start, len, isMlock ? 0 : MLOCK_ONFAULT);
}

/** test_mlock_within_limit(): every call succeeds; VmLck ends within the buffer's pages and one more. */
function testMlockWithinLimit(env: MmEnv, r: Prng, p: number, allocSize: number): void {
  assert.ok(env.p.rlimitMemlock >= allocSize, `alloc_size[${allocSize}] < rlimit, lead to mlock failure`);
  for (let i = 0; i < TEST_LOOP; i++) {
    const isMlock = rand(r) % 2 !== 0;
    const lockSize = rand(r) % allocSize;
    const startOffset = rand(r) % (allocSize - lockSize);
    const ret = mlockOrMlock2(env, isMlock, p + startOffset, lockSize);
    assert.equal(
      ret,
      0,
      `${isMlock ? 'mlock' : 'mlock2'}() failure (${show(ret)}) at |${p}(${allocSize})| mlock:|${p + startOffset}(${lockSize})|`,
    );
  }
  const lockedVmSize = getProcLockedVmSize(env);
  const pageSize = PAGE_SIZE;
  assert.ok(
    lockedVmSize <= pageAlignUp(allocSize) + pageSize,
    `test_mlock_within_limit left VmLck:${lockedVmSize} on ${allocSize} chunk`,
  );
}

/** test_mlock_outof_limit(): every call fails; VmLck stays as it was. */
function testMlockOutofLimit(env: MmEnv, r: Prng, p: number, allocSize: number): void {
  const rlim = env.p.rlimitMemlock;
  assert.ok(rlim < allocSize, `alloc_size[${allocSize}] > rlimit, violates test condition`);
  const oldLockedVmSize = getProcLockedVmSize(env);
  for (let i = 0; i < TEST_LOOP; i++) {
    const isMlock = rand(r) % 2 !== 0;
    const lockSize = (rand(r) % (allocSize - rlim)) + rlim;
    const startOffset = rand(r) % (allocSize - lockSize);
    const ret = mlockOrMlock2(env, isMlock, p + startOffset, lockSize);
    assert.notEqual(
      ret,
      0,
      `${isMlock ? 'mlock' : 'mlock2'}() succeeds? on ${p}(${allocSize}) mlock${p + startOffset}(${lockSize})`,
    );
  }
  const lockedVmSize = getProcLockedVmSize(env);
  assert.equal(
    lockedVmSize,
    oldLockedVmSize,
    `tests leads to new mlocked page: old[${oldLockedVmSize}], new[${lockedVmSize}]`,
  );
}

/** main() up to and including the test `upTo`: set_cap_limits(), then the tests in order. */
function mlockRandomTest(config: SystemConfig, upTo: 'within' | 'outof'): void {
  // set_cap_limits(MLOCK_RLIMIT_SIZE): RLIMIT_MEMLOCK set, every capability dropped.
  const env = new MmEnv({ ...config, rlimitMemlock: MLOCK_RLIMIT_SIZE });
  setCapIpcLock(env.p, false);
  const r = new Prng('mlock-random-test');
  let m = malloc(env, MLOCK_WITHIN_LIMIT_SIZE);
  testMlockWithinLimit(env, r, m.p, MLOCK_WITHIN_LIMIT_SIZE);
  env.sys.munlock(env.p, m.p, MLOCK_WITHIN_LIMIT_SIZE);
  env.munmap(m.base, m.len);
  if (upTo === 'outof') {
    m = malloc(env, MLOCK_OUTOF_LIMIT_SIZE);
    testMlockOutofLimit(env, r, m.p, MLOCK_OUTOF_LIMIT_SIZE);
    env.sys.munlock(env.p, m.p, MLOCK_OUTOF_LIMIT_SIZE);
    env.munmap(m.base, m.len);
  }
  env.teardown();
}

/** mlock-random-test.c's two results, each a case. */
export function mlockRandomCases(config: SystemConfig = {}): ConformanceCase[] {
  return (
    [
      ['test_mlock_within_limit', 'within'],
      ['test_mlock_outof_limit', 'outof'],
    ] as const
  ).map(([name, upTo]) => ({
    suite: 'mm',
    name: `mlock-random-test.${name}`,
    variant: '',
    run: () => {
      mlockRandomTest(config, upTo);
    },
  }));
}
