/**
 * tools/testing/selftests/mm/cow.c ported to the model: every test case of its three tables
 * (anonymous memory, anonymous THP collapse, non-anonymous memory), under the kernel's
 * description as the case name and the kernel's "... with <memory>" run as the variant, asserting
 * what the C test checks ("No leak from parent into child", "Longterm R/O pin is reliable", ...).
 *
 * The machine the port describes, as cow.c's main() detects it: 4 KiB pages, one THP size (the
 * 2048 kB PMD size: the model has no multi-size THP, so thp_supported_orders() is empty), one
 * hugetlb size (2048 kB), the huge zeropage enabled, swap on, /sys/kernel/debug/gup_test present
 * and io_uring built in (LOCAL_CONFIG_HAVE_LIBURING). Where the C test skips because a feature is
 * missing ("Did not get a THP populated", "MADV_PAGEOUT did not work"), the port fails instead:
 * the model has the feature, so a skip would hide a defect.
 *
 * The model has no pipes and no io_uring; the port does what they do to the pages. vmsplice()
 * takes a FOLL_GET reference on up to PIPE_DEF_BUFFERS pages and a pipe read copies from them;
 * io_uring_register_buffers() pins the range FOLL_WRITE | FOLL_PIN | FOLL_LONGTERM and
 * IORING_OP_WRITE_FIXED copies from the pinned pages (its file round trip is left out).
 * tmpfile() is a file on tmpfs (a memfd).
 *
 * The four vmsplice() cases with hugetlb leak in the model as in the kernel (hugetlb_wp() reuses a
 * page mapped once whatever references a pipe holds); cow.c reports them as expected failures
 * (ksft_test_result_xfail), which kselftest counts as passing, and so does the port.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_HUGETLB,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { Process, SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, PMD_SIZE, alignDown, expectRet, sameBytes, show, type PageRefs } from './mm_env.ts';

const pagesize = PAGE_SIZE;
const pmdsize = PMD_SIZE;
const hugetlbsize = PMD_SIZE;
/** MAP_HUGE_SHIFT / MFD_HUGE_SHIFT, and log2 of the 2048 kB hugetlb size the runs ask for. */
const HUGE_SHIFT = 26;
const HUGE_2MB = 21 << HUGE_SHIFT;

type TestFn = (env: MmEnv, mem: number, size: number, isHugetlb: boolean) => void;
type NonAnonFn = (env: MmEnv, mem: number, smem: number, size: number) => void;

/** The child's half of do_test_cow_in_parent(): its setup now, its verdict (0 = same) later. */
type ChildFn = (env: MmEnv, child: Process, mem: number, size: number) => () => number;

/** child_memcmp_fn(): back up the memory, then compare after the parent wrote. */
const childMemcmp: ChildFn = (env, child, mem, size) => {
  const old = env.load(mem, size, child);
  return () => (sameBytes(old, env.load(mem, size, child)) < 0 ? 0 : 1);
};

/** child_vmsplice_memcmp_fn(): a R/O GUP reference through vmsplice(), then unmap, then read the pipe. */
const childVmspliceMemcmp: ChildFn = (env, child, mem, size) => {
  const old = env.load(mem, size, child);
  const { ret, refs } = env.vmsplice(mem, size, child);
  if (ret < 0) return () => ret;
  if (ret === 0 || refs === null) return () => -22;
  const r = env.munmap(mem, size, child);
  if (r < 0) return () => r;
  return () => {
    const now = env.readRefs(refs);
    env.release(refs);
    return sameBytes(old, now, ret) < 0 ? 0 : 1;
  };
};

/** do_test_cow_in_parent(): the child must not see what the parent writes after fork(). */
function doTestCowInParent(
  env: MmEnv,
  mem: number,
  size: number,
  doMprotect: boolean,
  fn: ChildFn,
  xfail: boolean,
): void {
  const child = env.fork();
  const verdict = fn(env, child, mem, size);
  if (doMprotect) {
    expectRet(env.mprotect(mem, size, PROT_READ), 0, 'mprotect(PROT_READ)');
    expectRet(env.mprotect(mem, size, PROT_READ | PROT_WRITE), 0, 'mprotect(PROT_READ|PROT_WRITE)');
  }
  env.memset(mem, 0xff, size);
  const ret = verdict();
  env.exit(child);
  // With hugetlb, vmsplice() leaks are an expected failure (ksft_test_result_xfail) in the kernel too.
  if (ret !== 0 && !xfail) assert.fail(`Leak from parent into child (child returned ${ret})`);
}

/** do_test_vmsplice_in_parent(): the parent's pipe must not see what the child writes. */
function doTestVmspliceInParent(
  env: MmEnv,
  mem: number,
  size: number,
  beforeFork: boolean,
  xfail: boolean,
): void {
  const old = env.load(mem, size);
  let refs: PageRefs | null = null;
  let transferred = 0;
  const splice = (): void => {
    const r = env.vmsplice(mem, size, env.p);
    assert.ok(r.ret > 0, `vmsplice() failed: ${show(r.ret)}`);
    refs = r.refs;
    transferred = r.ret;
  };
  if (beforeFork) splice();
  const child = env.fork();
  if (!beforeFork) splice();
  expectRet(env.munmap(mem, size), 0, 'munmap()');
  env.memset(mem, 0xff, size, child);
  env.exit(child);
  const now = env.readRefs(refs!);
  env.release(refs);
  if (sameBytes(old, now, transferred) >= 0 && !xfail) assert.fail('Leak from child into parent');
}

/** do_test_iouring(): a R/W longterm pin must see every later write through the page table. */
function doTestIouring(env: MmEnv, mem: number, size: number, useFork: boolean): void {
  const { ret, refs } = env.pinLongterm(mem, size, false, true);
  expectRet(ret, 0, 'io_uring_register_buffers()');
  let child: Process | null = null;
  if (useFork) {
    child = env.fork();
  } else {
    expectRet(env.mprotect(mem, size, PROT_READ), 0, 'mprotect()');
    env.clearSoftDirty();
    expectRet(env.mprotect(mem, size, PROT_READ | PROT_WRITE), 0, 'mprotect()');
  }
  env.memset(mem, 0xff, size);
  const tmp = env.readRefs(refs!);
  const at = sameBytes(env.load(mem, size), tmp);
  if (child !== null) env.exit(child);
  env.release(refs);
  if (at >= 0) assert.fail(`Longterm R/W pin is not reliable (byte ${at})`);
}

const enum RoPinTest {
  RO_PIN_TEST,
  RO_PIN_TEST_SHARED,
  RO_PIN_TEST_PREVIOUSLY_SHARED,
  RO_PIN_TEST_RO_EXCLUSIVE,
}

/** do_test_ro_pin(): a R/O longterm pin must see writes made through the page table afterwards. */
function doTestRoPin(env: MmEnv, mem: number, size: number, test: RoPinTest, fast: boolean): void {
  let child: Process | null = null;
  switch (test) {
    case RoPinTest.RO_PIN_TEST:
      break;
    case RoPinTest.RO_PIN_TEST_SHARED:
    case RoPinTest.RO_PIN_TEST_PREVIOUSLY_SHARED:
      child = env.fork();
      if (test === RoPinTest.RO_PIN_TEST_PREVIOUSLY_SHARED) {
        env.exit(child);
        child = null;
      }
      break;
    case RoPinTest.RO_PIN_TEST_RO_EXCLUSIVE: {
      let r = env.mprotect(mem, size, PROT_READ);
      env.clearSoftDirty();
      r |= env.mprotect(mem, size, PROT_READ | PROT_WRITE);
      expectRet(r, 0, 'mprotect()');
      break;
    }
  }
  const { ret, refs } = env.pinLongterm(mem, size, fast);
  expectRet(ret, 0, 'PIN_LONGTERM_TEST_START');
  env.memset(mem, 0xff, size);
  const tmp = env.readRefs(refs!);
  const at = sameBytes(env.load(mem, size), tmp);
  env.release(refs);
  if (child !== null) env.exit(child);
  if (at >= 0) assert.fail(`Longterm R/O pin is not reliable (byte ${at})`);
}

const ANON_TEST_CASES: readonly [string, TestFn][] = [
  [
    'Basic COW after fork()',
    (e, m, s) => {
      doTestCowInParent(e, m, s, false, childMemcmp, false);
    },
  ],
  [
    'Basic COW after fork() with mprotect() optimization',
    (e, m, s) => {
      doTestCowInParent(e, m, s, true, childMemcmp, false);
    },
  ],
  [
    'vmsplice() + unmap in child',
    (e, m, s, h) => {
      doTestCowInParent(e, m, s, false, childVmspliceMemcmp, h);
    },
  ],
  [
    'vmsplice() + unmap in child with mprotect() optimization',
    (e, m, s, h) => {
      doTestCowInParent(e, m, s, true, childVmspliceMemcmp, h);
    },
  ],
  [
    'vmsplice() before fork(), unmap in parent after fork()',
    (e, m, s, h) => {
      doTestVmspliceInParent(e, m, s, true, h);
    },
  ],
  [
    'vmsplice() + unmap in parent after fork()',
    (e, m, s, h) => {
      doTestVmspliceInParent(e, m, s, false, h);
    },
  ],
  [
    'R/O-mapping a page registered as iouring fixed buffer',
    (e, m, s) => {
      doTestIouring(e, m, s, false);
    },
  ],
  [
    'fork() with an iouring fixed buffer',
    (e, m, s) => {
      doTestIouring(e, m, s, true);
    },
  ],
  [
    'R/O GUP pin on R/O-mapped shared page',
    (e, m, s) => {
      doTestRoPin(e, m, s, RoPinTest.RO_PIN_TEST_SHARED, false);
    },
  ],
  [
    'R/O GUP-fast pin on R/O-mapped shared page',
    (e, m, s) => {
      doTestRoPin(e, m, s, RoPinTest.RO_PIN_TEST_SHARED, true);
    },
  ],
  [
    'R/O GUP pin on R/O-mapped previously-shared page',
    (e, m, s) => {
      doTestRoPin(e, m, s, RoPinTest.RO_PIN_TEST_PREVIOUSLY_SHARED, false);
    },
  ],
  [
    'R/O GUP-fast pin on R/O-mapped previously-shared page',
    (e, m, s) => {
      doTestRoPin(e, m, s, RoPinTest.RO_PIN_TEST_PREVIOUSLY_SHARED, true);
    },
  ],
  [
    'R/O GUP pin on R/O-mapped exclusive page',
    (e, m, s) => {
      doTestRoPin(e, m, s, RoPinTest.RO_PIN_TEST_RO_EXCLUSIVE, false);
    },
  ],
  [
    'R/O GUP-fast pin on R/O-mapped exclusive page',
    (e, m, s) => {
      doTestRoPin(e, m, s, RoPinTest.RO_PIN_TEST_RO_EXCLUSIVE, true);
    },
  ],
];

/** do_run_with_base_page(). */
function runWithBasePage(env: MmEnv, fn: TestFn, swapout: boolean): void {
  const mem = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  expectRet(env.madvise(mem, pagesize, MADV.NOHUGEPAGE), 0, 'MADV_NOHUGEPAGE');
  env.memset(mem, 1, pagesize);
  if (swapout) {
    env.madvise(mem, pagesize, MADV.PAGEOUT);
    assert.ok(env.isSwapped(mem), 'MADV_PAGEOUT did not work, is swap enabled?');
  }
  fn(env, mem, pagesize, false);
  env.munmap(mem, pagesize);
}

const enum ThpRun {
  PMD,
  PMD_SWAPOUT,
  PTE,
  PTE_SWAPOUT,
  SINGLE_PTE,
  SINGLE_PTE_SWAPOUT,
  PARTIAL_MREMAP,
  PARTIAL_SHARED,
}

/** do_run_with_thp(). */
function doRunWithThp(env: MmEnv, fn: TestFn, run: ThpRun, thpsize: number): void {
  const mmapSize = 2 * thpsize;
  const mmapMem = env.mmapOk(mmapSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const mem = alignDown(mmapMem + thpsize, thpsize);
  let mremapMem = -1;
  let mremapSize = 0;
  expectRet(env.madvise(mem, thpsize, MADV.HUGEPAGE), 0, 'MADV_HUGEPAGE');
  env.memset(mem, 1, 1);
  assert.ok(env.isPopulated(mem + thpsize - pagesize), 'Did not get a THP populated');
  env.memset(mem, 1, thpsize);
  let size = thpsize;
  switch (run) {
    case ThpRun.PMD:
    case ThpRun.PMD_SWAPOUT:
      assert.equal(thpsize, pmdsize);
      break;
    case ThpRun.PTE:
    case ThpRun.PTE_SWAPOUT:
      expectRet(env.mprotect(mem + pagesize, pagesize, PROT_READ), 0, 'mprotect()');
      expectRet(env.mprotect(mem + pagesize, pagesize, PROT_READ | PROT_WRITE), 0, 'mprotect()');
      break;
    case ThpRun.SINGLE_PTE:
    case ThpRun.SINGLE_PTE_SWAPOUT:
      expectRet(env.madvise(mem + pagesize, thpsize - pagesize, MADV.DONTNEED), 0, 'MADV_DONTNEED');
      size = pagesize;
      break;
    case ThpRun.PARTIAL_MREMAP: {
      mremapSize = thpsize / 2;
      mremapMem = env.mmapOk(mremapSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
      const tmp = env.mremap(
        mem + mremapSize,
        mremapSize,
        mremapSize,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        mremapMem,
      );
      expectRet(tmp, mremapMem, 'mremap()');
      size = mremapSize;
      break;
    }
    case ThpRun.PARTIAL_SHARED: {
      expectRet(env.madvise(mem + pagesize, thpsize - pagesize, MADV.DONTFORK), 0, 'MADV_DONTFORK');
      env.exit(env.fork());
      expectRet(env.madvise(mem + pagesize, thpsize - pagesize, MADV.DOFORK), 0, 'MADV_DOFORK');
      break;
    }
  }
  if (run === ThpRun.PMD_SWAPOUT || run === ThpRun.PTE_SWAPOUT || run === ThpRun.SINGLE_PTE_SWAPOUT) {
    env.madvise(mem, size, MADV.PAGEOUT);
    for (let a = mem; a < mem + size; a += pagesize)
      assert.ok(env.isSwapped(a), 'MADV_PAGEOUT did not work, is swap enabled?');
  }
  fn(env, mem, size, false);
  env.munmap(mmapMem, mmapSize);
  if (mremapMem >= 0) env.munmap(mremapMem, mremapSize);
}

/** run_with_hugetlb(). */
function runWithHugetlb(env: MmEnv, fn: TestFn): void {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | HUGE_2MB;
  const mem = env.mmap(0, hugetlbsize, PROT_READ | PROT_WRITE, flags);
  assert.ok(mem >= 0, `need more free huge pages: ${show(mem)}`);
  env.memset(mem, 1, hugetlbsize);
  // Two hugetlb pages are needed so that COW and unsharing do not end in SIGBUS.
  const dummy = env.mmap(0, hugetlbsize, PROT_READ | PROT_WRITE, flags);
  assert.ok(dummy >= 0, `need more free huge pages: ${show(dummy)}`);
  env.munmap(dummy, hugetlbsize);
  fn(env, mem, hugetlbsize, true);
  env.munmap(mem, hugetlbsize);
}

const KB = (n: number): string => `${n / 1024} kB`;

/** run_anon_test_case(): the runs in the kernel's order, each as [variant, run, THP sysfs mode]. */
const ANON_RUNS: readonly [string, (env: MmEnv, fn: TestFn) => void, SystemConfig][] = [
  [
    'with base page',
    (e, f) => {
      runWithBasePage(e, f, false);
    },
    {},
  ],
  [
    'with swapped out base page',
    (e, f) => {
      runWithBasePage(e, f, true);
    },
    {},
  ],
  [
    `with THP (${KB(pmdsize)})`,
    (e, f) => {
      doRunWithThp(e, f, ThpRun.PMD, pmdsize);
    },
    { thp: 'always' },
  ],
  [
    `with swapped-out THP (${KB(pmdsize)})`,
    (e, f) => {
      doRunWithThp(e, f, ThpRun.PMD_SWAPOUT, pmdsize);
    },
    { thp: 'always' },
  ],
  [
    `with PTE-mapped THP (${KB(pmdsize)})`,
    (e, f) => {
      doRunWithThp(e, f, ThpRun.PTE, pmdsize);
    },
    { thp: 'always' },
  ],
  [
    `with swapped-out, PTE-mapped THP (${KB(pmdsize)})`,
    (e, f) => {
      doRunWithThp(e, f, ThpRun.PTE_SWAPOUT, pmdsize);
    },
    { thp: 'always' },
  ],
  [
    `with single PTE of THP (${KB(pmdsize)})`,
    (e, f) => {
      doRunWithThp(e, f, ThpRun.SINGLE_PTE, pmdsize);
    },
    { thp: 'always' },
  ],
  [
    `with single PTE of swapped-out THP (${KB(pmdsize)})`,
    (e, f) => {
      doRunWithThp(e, f, ThpRun.SINGLE_PTE_SWAPOUT, pmdsize);
    },
    { thp: 'always' },
  ],
  [
    `with partially mremap()'ed THP (${KB(pmdsize)})`,
    (e, f) => {
      doRunWithThp(e, f, ThpRun.PARTIAL_MREMAP, pmdsize);
    },
    { thp: 'always' },
  ],
  [
    `with partially shared THP (${KB(pmdsize)})`,
    (e, f) => {
      doRunWithThp(e, f, ThpRun.PARTIAL_SHARED, pmdsize);
    },
    { thp: 'always' },
  ],
  [
    `with hugetlb (${KB(hugetlbsize)})`,
    (e, f) => {
      runWithHugetlb(e, f);
    },
    {},
  ],
];

const enum Collapse {
  UNSHARED,
  FULLY_SHARED,
  LOWER_SHARED,
  UPPER_SHARED,
}

/** do_test_anon_thp_collapse(). */
function doTestAnonThpCollapse(env: MmEnv, mem: number, size: number, test: Collapse): void {
  expectRet(env.mprotect(mem + pagesize, pagesize, PROT_READ), 0, 'mprotect()');
  expectRet(env.mprotect(mem + pagesize, pagesize, PROT_READ | PROT_WRITE), 0, 'mprotect()');
  switch (test) {
    case Collapse.UNSHARED:
      expectRet(env.madvise(mem, size, MADV.COLLAPSE), 0, 'MADV_COLLAPSE');
      break;
    case Collapse.FULLY_SHARED:
      break;
    case Collapse.LOWER_SHARED:
      expectRet(env.madvise(mem + size / 2, size / 2, MADV.DONTFORK), 0, 'MADV_DONTFORK');
      break;
    case Collapse.UPPER_SHARED:
      expectRet(env.madvise(mem, size / 2, MADV.DONTFORK), 0, 'MADV_DONTFORK');
      break;
  }
  const child = env.fork();
  const verdict =
    test === Collapse.LOWER_SHARED
      ? childMemcmp(env, child, mem, size / 2)
      : test === Collapse.UPPER_SHARED
        ? childMemcmp(env, child, mem + size / 2, size / 2)
        : childMemcmp(env, child, mem, size);
  if (test === Collapse.LOWER_SHARED || test === Collapse.UPPER_SHARED) {
    expectRet(env.madvise(mem, size, MADV.DOFORK), 0, 'MADV_DOFORK');
  }
  if (test !== Collapse.UNSHARED) expectRet(env.madvise(mem, size, MADV.COLLAPSE), 0, 'MADV_COLLAPSE');
  env.memset(mem, 0xff, size);
  const ret = verdict();
  env.exit(child);
  if (ret !== 0) assert.fail('Leak from parent into child');
}

const ANON_THP_TEST_CASES: readonly [string, Collapse][] = [
  ['Basic COW after fork() when collapsing before fork()', Collapse.UNSHARED],
  ['Basic COW after fork() when collapsing after fork() (fully shared)', Collapse.FULLY_SHARED],
  ['Basic COW after fork() when collapsing after fork() (lower shared)', Collapse.LOWER_SHARED],
  ['Basic COW after fork() when collapsing after fork() (upper shared)', Collapse.UPPER_SHARED],
];

/** test_cow(): writing the private mapping must not change what the other mapping reads. */
const testCow: NonAnonFn = (env, mem, smem, size) => {
  const old = env.load(smem, size);
  env.memset(mem, 0xff, size);
  if (sameBytes(env.load(smem, size), old) >= 0) assert.fail('Other mapping modified');
};

const NON_ANON_TEST_CASES: readonly [string, NonAnonFn][] = [
  ['Basic COW', testCow],
  [
    'R/O longterm GUP pin',
    (env, mem, _smem, size) => {
      doTestRoPin(env, mem, size, RoPinTest.RO_PIN_TEST, false);
    },
  ],
  [
    'R/O longterm GUP-fast pin',
    (env, mem, _smem, size) => {
      doTestRoPin(env, mem, size, RoPinTest.RO_PIN_TEST, true);
    },
  ],
];

/** *mem + *smem: read faults on both mappings. */
function touch(env: MmEnv, mem: number, smem: number): void {
  env.load(mem, 1);
  env.load(smem, 1);
}

/** run_with_zeropage(). */
function runWithZeropage(env: MmEnv, fn: NonAnonFn): void {
  const mem = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const smem = env.mmapOk(pagesize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
  touch(env, mem, smem);
  fn(env, mem, smem, pagesize);
  env.munmap(mem, pagesize);
  env.munmap(smem, pagesize);
}

/** run_with_huge_zeropage(). */
function runWithHugeZeropage(env: MmEnv, fn: NonAnonFn): void {
  const mmapSize = 2 * pmdsize;
  const mmapMem = env.mmapOk(mmapSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const mmapSmem = env.mmapOk(mmapSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
  const mem = alignDown(mmapMem + pmdsize, pmdsize);
  const smem = alignDown(mmapSmem + pmdsize, pmdsize);
  let ret = env.madvise(mem, pmdsize, MADV.HUGEPAGE);
  ret |= env.madvise(smem, pmdsize, MADV.HUGEPAGE);
  expectRet(ret, 0, 'MADV_HUGEPAGE');
  touch(env, mem, smem);
  assert.ok(
    env.isPopulated(mem + pagesize) && env.isPopulated(smem + pagesize),
    'Did not get THPs populated',
  );
  fn(env, mem, smem, pmdsize);
  env.munmap(mmapMem, mmapSize);
  env.munmap(mmapSmem, mmapSize);
}

/** run_with_memfd() and run_with_tmpfile(): a private and a shared mapping of a one-page file. */
function runWithFile(env: MmEnv, fn: NonAnonFn, name: string): void {
  const fd = env.sys.memfdCreate(name, 0);
  assert.ok(fd >= 0, `memfd_create() failed: ${show(fd)}`);
  expectRet(env.sys.fallocate(fd, 0, 0, pagesize), 0, 'fallocate()');
  const mem = env.mmapOk(pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
  const smem = env.mmapOk(pagesize, PROT_READ, MAP_SHARED, fd);
  touch(env, mem, smem);
  fn(env, mem, smem, pagesize);
  env.munmap(mem, pagesize);
  env.munmap(smem, pagesize);
  expectRet(env.sys.close(fd), 0, 'close()');
}

/** run_with_memfd_hugetlb(). */
function runWithMemfdHugetlb(env: MmEnv, fn: NonAnonFn): void {
  const fd = env.sys.memfdCreate('test', MFD_HUGETLB | HUGE_2MB);
  assert.ok(fd >= 0, `memfd_create() failed: ${show(fd)}`);
  expectRet(env.sys.fallocate(fd, 0, 0, hugetlbsize), 0, 'fallocate()');
  const mem = env.mmapOk(hugetlbsize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
  const smem = env.mmapOk(hugetlbsize, PROT_READ, MAP_SHARED, fd);
  touch(env, mem, smem);
  fn(env, mem, smem, hugetlbsize);
  env.munmap(mem, hugetlbsize);
  env.munmap(smem, hugetlbsize);
  expectRet(env.sys.close(fd), 0, 'close()');
}

const NON_ANON_RUNS: readonly [string, (env: MmEnv, fn: NonAnonFn) => void, SystemConfig][] = [
  ['with shared zeropage', runWithZeropage, {}],
  [
    'with memfd',
    (e, f) => {
      runWithFile(e, f, 'test');
    },
    {},
  ],
  [
    'with tmpfile',
    (e, f) => {
      runWithFile(e, f, 'tmpfile');
    },
    {},
  ],
  ['with huge zeropage', runWithHugeZeropage, {}],
  [`with memfd hugetlb (${KB(hugetlbsize)})`, runWithMemfdHugetlb, {}],
];

function cowCase(
  name: string,
  variant: string,
  config: SystemConfig,
  body: (env: MmEnv) => void,
): ConformanceCase {
  return {
    suite: 'mm',
    name: `cow.${name}`,
    variant,
    run: () => {
      const env = new MmEnv(config);
      body(env);
      env.teardown();
    },
  };
}

/** Every case of cow.c in the order its main() runs them. */
export function cowCases(config: SystemConfig = {}): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const [desc, fn] of ANON_TEST_CASES) {
    for (const [variant, run, cfg] of ANON_RUNS)
      out.push(
        cowCase(desc, variant, { ...config, ...cfg }, (env) => {
          run(env, fn);
        }),
      );
  }
  for (const [desc, test] of ANON_THP_TEST_CASES) {
    out.push(
      cowCase(desc, '', { ...config, thp: 'always' }, (env) => {
        doRunWithThp(
          env,
          (e, m, s) => {
            doTestAnonThpCollapse(e, m, s, test);
          },
          ThpRun.PMD,
          pmdsize,
        );
      }),
    );
  }
  for (const [desc, fn] of NON_ANON_TEST_CASES) {
    for (const [variant, run, cfg] of NON_ANON_RUNS)
      out.push(
        cowCase(desc, variant, { ...config, ...cfg }, (env) => {
          run(env, fn);
        }),
      );
  }
  return out;
}
