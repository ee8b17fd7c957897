/**
 * tools/testing/selftests/mm/gup_longterm.c ported to the model: each of its ten test cases (the
 * eight gup_test pins and the two io_uring fixed buffers of a LOCAL_CONFIG_HAVE_LIBURING build),
 * under its description, with each file run_test_case() makes as the variant: "with memfd",
 * "with tmpfile", "with local tmpfile" and "with memfd hugetlb (2048 kB)", the one hugetlb size
 * the model has.
 *
 * The model's files are tmpfs (memfd) and hugetlbfs files, on which a R/W long-term pin of a
 * shared mapping must work (fs_supports_writable_longterm_pinning()). tmpfile() is a file on
 * tmpfs, as it is where /tmp is a tmpfs mount. "with local tmpfile" makes a file in the current
 * directory, on a disk filesystem (ext4, xfs, btrfs), where that pin must fail: the model has
 * none, so those runs are not modelled.
 *
 * gup_test's PIN_LONGTERM_TEST_START is MmEnv.pinLongterm(); io_uring_register_buffers() pins
 * the range FOLL_WRITE | FOLL_PIN | FOLL_LONGTERM, as it does in the kernel. Where the C test
 * skips because something may be missing (gup_test, io_uring, free huge pages, EINVAL from the
 * ioctl), the port fails instead: the model has it, so a skip would hide a defect.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { Errno } from '../kernel/errno.ts';
import {
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_HUGETLB,
  MFD_HUGE_SHIFT,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, PMD_SIZE, expectRet, show } from './mm_env.ts';

const pagesize = PAGE_SIZE;
const hugetlbsize = PMD_SIZE;

type TestType = 'ro' | 'ro_fast' | 'rw' | 'rw_fast' | 'iouring';

/** ksft_test_result(cond, msg). */
function result(ok: boolean, msg: string): void {
  if (!ok) assert.fail(msg);
}

/**
 * do_test(). Every file of the model is on tmpfs or hugetlbfs, where every pin must work
 * (should_work is true whatever the mapping and the pin).
 */
function doTest(env: MmEnv, fd: number, size: number, type: TestType, shared: boolean): void {
  const shouldWork = true;
  expectRet(env.sys.ftruncate(fd, size), 0, 'ftruncate()');
  expectRet(env.sys.fallocate(fd, 0, 0, size), 0, 'fallocate()');
  const mem = env.mmap(0, size, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd);
  assert.ok(mem >= 0, `mmap() failed (${show(mem)})`);
  // Fault in the page such that GUP-fast can pin it directly.
  env.memset(mem, 0, size);
  if (type === 'iouring') {
    // io_uring_register_buffers(): io_uring always pins writable.
    const { ret, refs } = env.pinLongterm(mem, size, false, true);
    if (ret === -Errno.ENOSPC || ret === -Errno.EOPNOTSUPP || ret === -Errno.EFAULT) {
      result(!shouldWork, `Should have failed (${show(ret)})`);
    } else {
      expectRet(ret, 0, 'io_uring_register_buffers()');
      result(shouldWork, 'Should have worked');
      env.release(refs);
    }
  } else {
    if (type === 'ro' || type === 'ro_fast') {
      // Long-term R/O pinning of a page mapped R/O covers more unsharing decisions.
      expectRet(env.mprotect(mem, size, PROT_READ), 0, 'mprotect()');
    }
    const fast = type === 'ro_fast' || type === 'rw_fast';
    const rw = type === 'rw' || type === 'rw_fast';
    const { ret, refs } = env.pinLongterm(mem, size, fast, rw);
    if (ret === -Errno.EFAULT) {
      result(!shouldWork, 'Should have failed');
    } else {
      expectRet(ret, 0, 'PIN_LONGTERM_TEST_START');
      env.release(refs);
      result(shouldWork, 'Should have worked');
    }
  }
  expectRet(env.munmap(mem, size), 0, 'munmap()');
}

/** test_cases[], in order: [description, test type, MAP_SHARED]. */
const TEST_CASES: readonly [string, TestType, boolean][] = [
  ['R/W longterm GUP pin in MAP_SHARED file mapping', 'rw', true],
  ['R/W longterm GUP-fast pin in MAP_SHARED file mapping', 'rw_fast', true],
  ['R/O longterm GUP pin in MAP_SHARED file mapping', 'ro', true],
  ['R/O longterm GUP-fast pin in MAP_SHARED file mapping', 'ro_fast', true],
  ['R/W longterm GUP pin in MAP_PRIVATE file mapping', 'rw', false],
  ['R/W longterm GUP-fast pin in MAP_PRIVATE file mapping', 'rw_fast', false],
  ['R/O longterm GUP pin in MAP_PRIVATE file mapping', 'ro', false],
  ['R/O longterm GUP-fast pin in MAP_PRIVATE file mapping', 'ro_fast', false],
  ['io_uring fixed buffer with MAP_SHARED file mapping', 'iouring', true],
  ['io_uring fixed buffer with MAP_PRIVATE file mapping', 'iouring', false],
];

/** run_test_case()'s files, as [variant, memfd_create() flags and size], null where not modelled. */
const RUNS: readonly [string, { flags: number; size: number } | null][] = [
  ['with memfd', { flags: 0, size: pagesize }],
  ['with tmpfile', { flags: 0, size: pagesize }],
  ['with local tmpfile', null],
  [
    `with memfd hugetlb (${hugetlbsize / 1024} kB)`,
    { flags: MFD_HUGETLB | (21 << MFD_HUGE_SHIFT), size: hugetlbsize },
  ],
];

/** Every case of gup_longterm.c, in the order its main() runs them. */
export function gupLongtermCases(config: SystemConfig = {}): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const [desc, type, shared] of TEST_CASES) {
    for (const [variant, file] of RUNS) {
      const name = `gup_longterm.${desc}`;
      if (file === null) {
        out.push({
          suite: 'mm',
          name,
          variant,
          notModelled:
            'a file on a disk filesystem (ext4, xfs, btrfs): the model has only tmpfs and hugetlbfs',
        });
        continue;
      }
      out.push({
        suite: 'mm',
        name,
        variant,
        run: () => {
          const env = new MmEnv(config);
          const fd = env.sys.memfdCreate('test', file.flags);
          assert.ok(fd >= 0, `memfd_create() failed (${show(fd)})`);
          doTest(env, fd, file.size, type, shared);
          expectRet(env.sys.close(fd), 0, 'close()');
          env.teardown();
        },
      });
    }
  }
  return out;
}
