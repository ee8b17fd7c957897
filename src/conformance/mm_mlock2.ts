/**
 * tools/testing/selftests/mm/mlock2-tests.c ported to the model: mlock2() with and without
 * MLOCK_ONFAULT, munlock(), mlockall() with MCL_CURRENT, MCL_FUTURE and MCL_ONFAULT, and
 * munlockall(), each checked through /proc/self/smaps, and the splits and merges munlock() makes,
 * checked through /proc/self/maps. Each case is one of the tests main() runs, under its own name,
 * and asserts every ksft_test_result() it reports, in order; test_vma_management() runs twice,
 * named after main()'s calls: `test_vma_management(true)` (after mlock2(MLOCK_ONFAULT)) and
 * `test_mlockall` (the run without mlock2(), under mlockall(MCL_CURRENT | MCL_ONFAULT |
 * MCL_FUTURE)).
 *
 * The test decides "locked" from smaps alone: `lo` (VM_LOCKED) in VmFlags, found as the C test
 * finds it (strstr() on the line), and Rss against Size: equal for a locked, populated VMA, Rss
 * below Size for a lock-on-fault VMA with one page touched. It defines PRESENT_BIT, PFN_MASK and
 * UNEVICTABLE_BIT but reads neither pagemap nor /proc/kpageflags: no assertion needs page
 * state the model lacks (PG_mlocked, the unevictable LRU). System.smaps() stands for
 * seek_to_smaps_entry() (the entry whose range holds the address) and System.maps() for
 * get_vm_area().
 *
 * The C test runs every test in one process, as whoever runs it; it sets no limit. Each case here
 * runs in a fresh process with the model's default RLIMIT_MEMLOCK (8 MiB, the kernel's default)
 * and without CAP_IPC_LOCK: every test locks a few pages, well within it. main()'s probe for
 * mlock2() (ENOSYS) reports nothing and is not ported. Where test_vma_management() reports a
 * failure and goes on (ksft_test_result_fail() without a return), the case stops at the first.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MCL_CURRENT,
  MCL_FUTURE,
  MCL_ONFAULT,
  MLOCK_ONFAULT,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { SmapsEntry } from '../kernel/fs/task_mmu.ts';
import type { SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, mmCase, show } from './mm_env.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_ANONYMOUS | MAP_PRIVATE;
/** LOCKED: VM_LOCKED's mnemonic in VmFlags. */
const LOCKED = 'lo';
/** get_value_for_name()'s -1UL, where no smaps entry holds the address. */
const ULONG_MAX = 2 ** 64 - 1;

/** ksft_test_result(cond, msg): the case fails on the first result that is not a pass. */
function result(ok: boolean, msg: string): void {
  if (!ok) assert.fail(msg);
}

/** mlock2_(): the raw mlock2 syscall. */
function mlock2(env: MmEnv, addr: number, len: number, flags: number): number {
  return env.sys.mlock(env.p, addr, len, flags);
}

/** seek_to_smaps_entry(): the /proc/self/smaps entry whose range holds `addr`, if any. */
function seekToSmapsEntry(env: MmEnv, addr: number): SmapsEntry | undefined {
  const smaps = env.sys.smaps(env.p, addr, addr + 1);
  assert.ok(typeof smaps !== 'number', `fopen smaps: ${show(smaps as number)}`);
  return smaps.find((e) => e.start <= addr && addr < e.end);
}

/** is_vmflag_set(): `vmflag` is in the VmFlags line of the entry holding `addr`. */
function isVmflagSet(env: MmEnv, addr: number, vmflag: string): boolean {
  const e = seekToSmapsEntry(env, addr);
  return e !== undefined && e.vmFlags.includes(vmflag);
}

/** get_value_for_name() for "Size:" or "Rss:": the entry's value in kB. */
function getValueForName(env: MmEnv, addr: number, name: 'Size:' | 'Rss:'): number {
  const e = seekToSmapsEntry(env, addr);
  if (e === undefined) return ULONG_MAX;
  return (name === 'Size:' ? e.size : e.rss) / 1024;
}

/** is_vma_lock_on_fault(): VM_LOCKED, and only part of the VMA faulted in (Rss < Size). */
function isVmaLockOnFault(env: MmEnv, addr: number): boolean {
  if (!isVmflagSet(env, addr, LOCKED)) return false;
  const vmaSize = getValueForName(env, addr, 'Size:');
  const vmaRss = getValueForName(env, addr, 'Rss:');
  // only one page is faulted in
  return vmaRss < vmaSize;
}

/** lock_check(): VM_LOCKED, and the whole VMA faulted in (Rss == Size). */
function lockCheck(env: MmEnv, addr: number): boolean {
  if (!isVmflagSet(env, addr, LOCKED)) return false;
  const vmaSize = getValueForName(env, addr, 'Size:');
  const vmaRss = getValueForName(env, addr, 'Rss:');
  return vmaRss === vmaSize;
}

/** unlock_lock_check(): 1 while VM_LOCKED is still set on the VMA holding `map`. */
function unlockLockCheck(env: MmEnv, map: number): number {
  return isVmflagSet(env, map, LOCKED) ? 1 : 0;
}

/** onfault_check(): writes the first byte, then 1 unless the VMA is lock on fault. */
function onfaultCheck(env: MmEnv, map: number): number {
  env.memset(map, 'a'.charCodeAt(0), 1);
  return isVmaLockOnFault(env, map) ? 0 : 1;
}

/** unlock_onfault_check(): 1 while either page's VMA is still lock on fault. */
function unlockOnfaultCheck(env: MmEnv, map: number): number {
  return isVmaLockOnFault(env, map) || isVmaLockOnFault(env, map + PAGE_SIZE) ? 1 : 0;
}

/** get_vm_area(): the /proc/self/maps range holding `addr`, or null (ret 1). */
function getVmArea(env: MmEnv, addr: number): { start: number; end: number } | null {
  const maps = env.sys.maps(env.p, addr, addr + 1);
  if (typeof maps === 'number') return null;
  const e = maps.find((m) => m.start <= addr && m.end > addr);
  return e === undefined ? null : { start: e.start, end: e.end };
}

/** A call whose failure ends the test (ksft_exit_fail_msg()). */
function ok(ret: number, what: string): void {
  assert.equal(ret, 0, `${what}: ${show(ret)}`);
}

function mapAnon(env: MmEnv, len: number): number {
  const map = env.mmap(0, len, RW, ANON);
  assert.ok(map >= 0, `mmap error: ${show(map)}`);
  return map;
}

function testMlockLock(env: MmEnv): void {
  const map = mapAnon(env, 2 * PAGE_SIZE);
  ok(mlock2(env, map, 2 * PAGE_SIZE, 0), 'mlock2(0)');
  result(lockCheck(env, map), 'test_mlock_lock: Locked');
  // Now unlock and recheck attributes
  ok(env.sys.munlock(env.p, map, 2 * PAGE_SIZE), 'munlock()');
  result(unlockLockCheck(env, map) === 0, 'test_mlock_lock: Unlocked');
  env.munmap(map, 2 * PAGE_SIZE);
}

function testMlockOnfault(env: MmEnv): void {
  const map = mapAnon(env, 2 * PAGE_SIZE);
  ok(mlock2(env, map, 2 * PAGE_SIZE, MLOCK_ONFAULT), 'mlock2(MLOCK_ONFAULT)');
  result(onfaultCheck(env, map) === 0, 'test_mlock_onfault: VMA marked for lock on fault');
  // Now unlock and recheck attributes
  ok(env.sys.munlock(env.p, map, 2 * PAGE_SIZE), 'munlock()');
  result(unlockOnfaultCheck(env, map) === 0, 'VMA open lock after fault');
  env.munmap(map, 2 * PAGE_SIZE);
}

function testLockOnfaultOfPresent(env: MmEnv): void {
  const map = mapAnon(env, 2 * PAGE_SIZE);
  env.memset(map, 'a'.charCodeAt(0), 1);
  const ret = mlock2(env, map, 2 * PAGE_SIZE, MLOCK_ONFAULT);
  result(ret === 0, `mlock2(MLOCK_ONFAULT) error: ${show(ret)}`);
  result(
    isVmaLockOnFault(env, map) || isVmaLockOnFault(env, map + PAGE_SIZE),
    'VMA with present pages is not marked lock on fault',
  );
  env.munmap(map, 2 * PAGE_SIZE);
}

function testMunlockall0(env: MmEnv): void {
  const map = mapAnon(env, 2 * PAGE_SIZE);
  ok(env.sys.mlockall(env.p, MCL_CURRENT), 'mlockall(MCL_CURRENT)');
  result(lockCheck(env, map), 'test_munlockall0: Locked memory area');
  ok(env.sys.munlockall(env.p), 'munlockall()');
  result(unlockLockCheck(env, map) === 0, 'test_munlockall0: No locked memory');
  env.munmap(map, 2 * PAGE_SIZE);
}

function testMunlockall1(env: MmEnv): void {
  const map = mapAnon(env, 2 * PAGE_SIZE);
  ok(env.sys.mlockall(env.p, MCL_CURRENT | MCL_ONFAULT), 'mlockall(MCL_CURRENT | MCL_ONFAULT)');
  result(onfaultCheck(env, map) === 0, 'test_munlockall1: VMA marked for lock on fault');
  ok(env.sys.munlockall(env.p), 'munlockall()');
  result(unlockOnfaultCheck(env, map) === 0, 'test_munlockall1: Unlocked');
  ok(env.sys.mlockall(env.p, MCL_CURRENT | MCL_FUTURE), 'mlockall(MCL_CURRENT | MCL_FUTURE)');
  result(lockCheck(env, map), 'test_munlockall1: Locked');
  ok(env.sys.munlockall(env.p), 'munlockall()');
  result(unlockLockCheck(env, map) === 0, 'test_munlockall1: No locked memory');
  env.munmap(map, 2 * PAGE_SIZE);
}

/** get_vm_area() of each of the three pages; a page found in no range fails the test. */
function threeAreas(env: MmEnv, map: number): number[] {
  const areas = [0, 1, 2].map((i) => getVmArea(env, map + i * PAGE_SIZE));
  result(
    areas.every((a) => a !== null),
    "couldn't find mapping in /proc/self/maps",
  );
  return areas.map((a) => a!.start);
}

function testVmaManagement(env: MmEnv, callMlock: boolean): void {
  const map = mapAnon(env, 3 * PAGE_SIZE);
  if (callMlock) {
    const ret = mlock2(env, map, 3 * PAGE_SIZE, MLOCK_ONFAULT);
    result(ret === 0, `mlock error: ${show(ret)}`);
  }
  let [page1, page2, page3] = threeAreas(env, map);
  // Before we unlock a portion, we need to that all three pages are in the same VMA.
  result(page1 === page2 && page2 === page3, 'VMAs are not merged to start, aborting test');
  let ret = env.sys.munlock(env.p, map + PAGE_SIZE, PAGE_SIZE);
  result(ret === 0, `munlock(): ${show(ret)}`);
  [page1, page2, page3] = threeAreas(env, map);
  // All three VMAs should be different
  result(page1 !== page2 && page2 !== page3, 'failed to split VMA for munlock');
  // Now unlock the first and third page and check the VMAs again
  ret = env.sys.munlock(env.p, map, PAGE_SIZE * 3);
  result(ret === 0, `munlock(): ${show(ret)}`);
  [page1, page2, page3] = threeAreas(env, map);
  // Now all three VMAs should be the same
  result(page1 === page2 && page2 === page3, 'failed to merge VMAs after munlock');
  // ksft_test_result_pass("test_vma_management call_mlock %d")
  env.munmap(map, 3 * PAGE_SIZE);
}

function testMlockall(env: MmEnv): void {
  ok(env.sys.mlockall(env.p, MCL_CURRENT | MCL_ONFAULT | MCL_FUTURE), 'mlockall failed');
  testVmaManagement(env, false);
  env.sys.munlockall(env.p);
}

/** The tests main() runs, in its order, each under the name of main()'s call. */
const MLOCK2_TESTS: readonly (readonly [string, (env: MmEnv) => void])[] = [
  ['test_mlock_lock', testMlockLock],
  ['test_mlock_onfault', testMlockOnfault],
  ['test_munlockall0', testMunlockall0],
  ['test_munlockall1', testMunlockall1],
  ['test_lock_onfault_of_present', testLockOnfaultOfPresent],
  [
    'test_vma_management(true)',
    (env) => {
      testVmaManagement(env, true);
    },
  ],
  ['test_mlockall', testMlockall],
];

/** mlock2-tests.c's tests, each a case. */
export function mlock2Cases(config: SystemConfig = {}): ConformanceCase[] {
  return MLOCK2_TESTS.map(([name, body]) => mmCase('mlock2-tests', name, body, config));
}
