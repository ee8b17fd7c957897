/**
 * tools/testing/selftests/mm/hugetlb-madvise.c ported to the model: one main() that checks, step by
 * step, what MADV_DONTNEED, MADV_REMOVE and fallocate() (allocation and FALLOC_FL_PUNCH_HOLE) do
 * to the free huge pages, on anonymous and file hugetlb mappings, private and shared. Each
 * validate_free_pages() and each expected madvise() result is an assertion; the C program exits
 * at the first that fails, and the case fails with the line's description.
 *
 * The machine has a pool of 32 huge pages of 2 MiB, the default size (the C test needs at least
 * MIN_FREE_PAGES free ones). get_free_hugepages() reads HugePages_Free from /proc/meminfo: free
 * pages of the pool, reserved ones included.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE, PMD_SIZE } from '../lib/units.ts';
import { hugetlbPagesFree } from '../kernel/mm/hugetlb.ts';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  MADV,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_HUGETLB,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, show } from './mm_env.ts';

const MIN_FREE_PAGES = 20;
const NR_HUGE_PAGES = 10;
const hugePageSize = PMD_SIZE;
const basePageSize = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const ANON_HUGE = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;

function hugetlbMadvise(env: MmEnv): void {
  const sys = env.sys;
  const validateFreePages = (exp: number, where: string): void => {
    const fhp = hugetlbPagesFree(sys);
    if (fhp !== exp) assert.fail(`Unexpected number of free huge pages ${where}: ${fhp}, expected ${exp}`);
  };
  const mapOk = (len: number, flags: number, fd = -1): number => {
    const a = env.mmap(0, len, RW, flags, fd);
    if (a < 0) assert.fail(`mmap: ${show(a)}`);
    return a;
  };
  const madviseOk = (addr: number, len: number, advice: number, what: string): void => {
    const r = env.madvise(addr, len, advice);
    if (r !== 0) assert.fail(`madvise (${what}): ${show(r)}`);
  };
  const fallocateOk = (fd: number, mode: number, what: string): void => {
    const r = sys.fallocate(fd, mode, 0, NR_HUGE_PAGES * hugePageSize);
    if (r !== 0) assert.fail(`fallocate (${what}): ${show(r)}`);
  };
  // write_fault_pages(): an unsigned long stored at the start of each huge page.
  const writeFaultPages = (addr: number, nr: number): void => {
    for (let i = 0; i < nr; i++) {
      const v = new Uint8Array(8);
      new DataView(v.buffer).setBigUint64(0, BigInt(i), true);
      env.memcpy(addr + i * hugePageSize, v);
    }
  };
  // read_fault_pages(): force_read_pages(), a byte read from each huge page.
  const readFaultPages = (addr: number, nr: number): void => {
    for (let i = 0; i < nr; i++) env.load(addr + i * hugePageSize, 1);
  };
  const hugeLen = NR_HUGE_PAGES * hugePageSize;

  const freeHugepages = hugetlbPagesFree(sys);
  assert.ok(freeHugepages >= MIN_FREE_PAGES, 'Not enough free huge pages to test');
  const fd = sys.memfdCreate('hugetlb-madvise', MFD_HUGETLB);
  assert.ok(fd >= 0, `memfd_create() failed: ${show(fd)}`);

  // Validity of MADV_DONTNEED addr and length: nothing is mapped a page before or after.
  let addr = mapOk((NR_HUGE_PAGES + 2) * hugePageSize, ANON_HUGE);
  assert.equal(env.munmap(addr, hugePageSize), 0, 'munmap');
  assert.equal(env.munmap(addr + (NR_HUGE_PAGES + 1) * hugePageSize, hugePageSize), 0, 'munmap');
  addr += hugePageSize;
  writeFaultPages(addr, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after write faults');
  if (env.madvise(addr - basePageSize, hugeLen, MADV.DONTNEED) === 0)
    assert.fail('Unexpected success of madvise call with invalid addr');
  if (env.madvise(addr, hugeLen + basePageSize, MADV.DONTNEED) === 0)
    assert.fail('Unexpected success of madvise call with invalid length');
  env.munmap(addr, hugeLen);

  // Alignment of MADV_DONTNEED addr and length.
  addr = mapOk(hugeLen, ANON_HUGE);
  writeFaultPages(addr, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after write faults (alignment)');
  if (env.madvise(addr + basePageSize, hugeLen - basePageSize, MADV.DONTNEED) === 0)
    assert.fail('Unexpected success of madvise call with unaligned start address');
  // addr + length is aligned down to the huge page size.
  madviseOk(addr, (NR_HUGE_PAGES - 1) * hugePageSize + basePageSize, MADV.DONTNEED, 'aligned down');
  validateFreePages(freeHugepages - 1, 'after MADV_DONTNEED of all but the last page');
  env.munmap(addr, hugeLen);
  validateFreePages(freeHugepages, 'after munmap');

  // MADV_DONTNEED on an anonymous private mapping.
  addr = mapOk(hugeLen, ANON_HUGE);
  writeFaultPages(addr, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after write faults (anonymous)');
  madviseOk(addr, hugeLen, MADV.DONTNEED, 'anonymous private');
  validateFreePages(freeHugepages, 'after MADV_DONTNEED of the anonymous mapping');
  env.munmap(addr, hugeLen);

  // MADV_DONTNEED on a private mapping of a hugetlb file.
  fallocateOk(fd, 0, 'allocate');
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after fallocate');
  addr = mapOk(hugeLen, MAP_PRIVATE, fd);
  readFaultPages(addr, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after private read faults (no page consumed)');
  madviseOk(addr, hugeLen, MADV.DONTNEED, 'private file, read');
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after MADV_DONTNEED of read-only pages (none freed)');
  writeFaultPages(addr, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - 2 * NR_HUGE_PAGES, 'after private write faults');
  madviseOk(addr, hugeLen, MADV.DONTNEED, 'private file, written');
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after MADV_DONTNEED of the private copies');
  writeFaultPages(addr, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - 2 * NR_HUGE_PAGES, 'after private write faults again');
  // The hole punch frees the file's pages and, as it always has on hugetlbfs, the private ones.
  fallocateOk(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 'punch hole');
  validateFreePages(freeHugepages, 'after the hole punch');
  env.munmap(addr, hugeLen);

  // MADV_DONTNEED on a shared mapping of a hugetlb file.
  fallocateOk(fd, 0, 'allocate');
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after fallocate (shared)');
  addr = mapOk(hugeLen, MAP_SHARED, fd);
  writeFaultPages(addr, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after shared write faults (no page consumed)');
  madviseOk(addr, hugeLen, MADV.DONTNEED, 'shared file');
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after MADV_DONTNEED of the shared mapping (none freed)');

  // MADV_REMOVE on a shared mapping: a hole punch, all pages freed.
  madviseOk(addr, hugeLen, MADV.REMOVE, 'remove, shared');
  validateFreePages(freeHugepages, 'after MADV_REMOVE');
  env.munmap(addr, hugeLen);

  // MADV_REMOVE with a shared and a private mapping of the file.
  fallocateOk(fd, 0, 'allocate');
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after fallocate (shared and private)');
  addr = mapOk(hugeLen, MAP_SHARED, fd);
  writeFaultPages(addr, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after shared write faults (no page consumed) 2');
  const addr2 = mapOk(hugeLen, MAP_PRIVATE, fd);
  readFaultPages(addr2, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after private read faults (no page consumed) 2');
  writeFaultPages(addr2, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - 2 * NR_HUGE_PAGES, 'after private write faults 2');
  madviseOk(addr, hugeLen, MADV.DONTNEED, 'shared file 2');
  validateFreePages(freeHugepages - 2 * NR_HUGE_PAGES, 'after MADV_DONTNEED of the shared mapping 2');
  madviseOk(addr2, hugeLen, MADV.DONTNEED, 'private file 2');
  validateFreePages(freeHugepages - NR_HUGE_PAGES, 'after MADV_DONTNEED of the private copies 2');
  writeFaultPages(addr2, NR_HUGE_PAGES);
  validateFreePages(freeHugepages - 2 * NR_HUGE_PAGES, 'after private write faults 3');
  // Both the file's and the private pages go (see the hole punch above).
  madviseOk(addr, hugeLen, MADV.REMOVE, 'remove, shared and private');
  validateFreePages(freeHugepages, 'after MADV_REMOVE with a private mapping');
  env.munmap(addr, hugeLen);
  env.munmap(addr2, hugeLen);
  assert.equal(sys.close(fd), 0, 'close');
}

/** hugetlb-madvise.c: one case, its main(). */
export function hugetlbMadviseCases(config: SystemConfig = {}): ConformanceCase[] {
  return [
    {
      suite: 'mm',
      name: 'hugetlb-madvise.main',
      variant: '',
      run: () => {
        const env = new MmEnv({ ...config, hugetlbPages: 32 });
        hugetlbMadvise(env);
        env.teardown();
      },
    },
  ];
}
