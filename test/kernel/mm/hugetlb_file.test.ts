/*
 * hugetlbfs files and private huge pages where they differ from tmpfs and from small pages. Each
 * expected value is what Linux 6.18 gave for the same calls (hetmem difftest's huge-page programs,
 * test/fuzz/difftest.test.ts and C programs, run against a live kernel with a pool of huge pages
 * the size each test sets up).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  hugetlbPagesAvailable,
  hugetlbPagesFree,
  hugetlbPagesReserved,
} from '../../../src/kernel/mm/hugetlb.ts';
import {
  FALLOC_FL_KEEP_SIZE,
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_HUGETLB,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import { assertOracles } from '../../../src/oracles/index.ts';
import { HPAGE as H, PAGE, RW, mapOk, readOk, setup, writeOk } from './mm_helpers.ts';

const W = 0x600000000000;

describe('hugetlbfs files', () => {
  it('an offset inside a huge page is -EINVAL; a writable mapping makes the file longer', () => {
    const { sys, p } = setup({ hugetlbPages: 8 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.mmap(p, 0, H, RW, MAP_SHARED, fd, PAGE), -Errno.EINVAL);
    assert.equal(sys.pread(fd, 8, H + 5).ret, 0, 'the file is empty');
    const ro = mapOk(sys, p, 2 * H, MAP_SHARED, PROT_READ, fd);
    assert.equal(sys.pread(fd, 8, H + 5).ret, 0, 'a read-only mapping leaves the size');
    const m = mapOk(sys, p, 2 * H, MAP_SHARED, RW, fd);
    assert.equal(sys.pread(fd, 8, H + 5).ret, 8, 'a writable one makes it 4 MiB');
    writeOk(sys, p, m + H + 5, Uint8Array.of(7, 7));
    assert.deepEqual([...sys.pread(fd, 2, H + 5).data], [7, 7]);
    assert.deepEqual([...readOk(sys, p, ro + H + 5, 2)], [7, 7]);
    assertOracles(sys);
  });

  it('a fault maps a page fallocate() put past the end; ftruncate() to the same size drops it', () => {
    const { sys, p } = setup({ hugetlbPages: 8 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.ftruncate(fd, 2 * H), 0);
    assert.equal(sys.fallocate(fd, FALLOC_FL_KEEP_SIZE, 2 * H, H), 0);
    const m = mapOk(sys, p, H, MAP_SHARED, PROT_READ, fd, 2 * H);
    assert.equal(sys.read(p, m + 3, 8).ret, 8, 'hugetlb_no_page() looks at the size only for a hole');
    assert.equal(sys.ftruncate(fd, 2 * H), 0);
    assert.equal(sys.read(p, m + 3, 8).ret, -Errno.EFAULT, 'hugetlb_vmtruncate() ran: the page is gone');
    assertOracles(sys);
  });

  it('mincore() of a hole: the page cache where no PMD table is there, else not in core', () => {
    const { sys, p } = setup({ hugetlbPages: 8 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.fallocate(fd, 0, 0, 2 * H), 0);
    const m = sys.mmap(p, W, 2 * H, RW, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    assert.equal(m, W);
    const vec = new Uint8Array(512);
    assert.equal(sys.mincore(p, m, H, vec), 0);
    assert.ok(
      vec.every((b) => b === 1),
      'cached, and no table yet',
    );
    readOk(sys, p, m + H, 1);
    assert.equal(sys.mincore(p, m, H, vec), 0);
    assert.ok(
      vec.every((b) => b === 0),
      'the table is there now, and the entry is empty',
    );
    assertOracles(sys);
  });

  it('a size that ends inside a huge page leaves that page past the end for a fault', () => {
    // hugetlb_no_page() counts the size in whole huge pages (i_size >> huge_page_shift). Live
    // (6.18.44): after fallocate() to 6 MiB + 17 and a hole punched over [6 MiB, 8 MiB), a read
    // of the mapping there is -EFAULT (SIGBUS), where a read of the page still cached works.
    const { sys, p } = setup({ hugetlbPages: 8 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.ftruncate(fd, 2 * H), 0);
    const m = W + 4 * H;
    assert.equal(sys.mmap(p, m, H, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 3 * H), m);
    assert.equal(sys.fallocate(fd, 0, H + 17, 2 * H), 0);
    assert.equal(sys.read(p, m + 627215, 1).ret, 1);
    assert.equal(sys.madvise(p, m, H, MADV.REMOVE), 0);
    assert.equal(sys.read(p, m + 627215, 1).ret, -Errno.EFAULT);
    assertOracles(sys);
  });

  it('a private copy of a file page uses the mapping reservation, even with the pool all reserved', () => {
    const { sys, p } = setup({ hugetlbPages: 8 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    const m = mapOk(sys, p, 2 * H, MAP_PRIVATE, RW, fd);
    assert.equal(sys.fallocate(fd, 0, 0, 2 * H), 0);
    assert.equal(sys.madvise(p, m, 2 * H, MADV.POPULATE_READ), 0);
    mapOk(sys, p, 2 * H, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB);
    assert.equal(sys.fallocate(fd, FALLOC_FL_KEEP_SIZE, 3 * H, 2 * H), 0);
    assert.equal(hugetlbPagesAvailable(sys), 0);
    writeOk(sys, p, m + H + 6, Uint8Array.of(53));
    assertOracles(sys);
  });

  it('a private copy the pool cannot give leaves the file page mapped read-only', () => {
    // hugetlb_no_page() maps the cache page, then hugetlb_wp() fails to copy it: SIGBUS, and the
    // page stays mapped. No anon_vma was made, so a fork does not copy that mapping.
    const { sys, p } = setup({ hugetlbPages: 3 });
    const free = (): number => hugetlbPagesFree(sys);
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.ftruncate(fd, 2 * H), 0);
    assert.equal(sys.fallocate(fd, FALLOC_FL_KEEP_SIZE, H, H), 0);
    const q = mapOk(sys, p, 2 * H, MAP_PRIVATE, RW, fd);
    const n = mapOk(sys, p, 2 * H, MAP_PRIVATE | MAP_NORESERVE, RW, fd);
    assert.deepEqual([free(), hugetlbPagesReserved(sys)], [2, 2]);
    assert.equal(sys.write(p, n + H, Uint8Array.of(5)), -Errno.EFAULT);
    assert.deepEqual([free(), hugetlbPagesReserved(sys)], [2, 2]);
    const e = sys.smaps(p, n, n + 2 * H);
    assert.ok(typeof e !== 'number');
    assert.deepEqual([e[0].sharedHugetlb, e[0].privateHugetlb], [0, H]);
    const pm = sys.pagemap(p, n + H, 1)[0];
    assert.deepEqual([pm.present, pm.exclusive], [true, true]);
    assert.equal(readOk(sys, p, n + H, 1)[0], 0);
    // The same copy asked for by a write to the page a read mapped.
    const n2 = mapOk(sys, p, 2 * H, MAP_PRIVATE | MAP_NORESERVE, RW, fd);
    assert.equal(readOk(sys, p, n2 + H, 1)[0], 0);
    assert.equal(sys.write(p, n2 + H, Uint8Array.of(7)), -Errno.EFAULT);
    assert.deepEqual(
      [sys.pagemap(p, n2 + H, 1)[0].present, sys.pagemap(p, n2 + H, 1)[0].exclusive],
      [true, false],
    );
    const c = sys.fork(p, 'c').child!;
    assert.equal(sys.pagemap(c, n + H, 1)[0].present, false);
    assert.equal(sys.pagemap(c, n2 + H, 1)[0].present, false);
    // The mapping that owns its reservations copies the page with the one for its index.
    writeOk(sys, p, q + H, Uint8Array.of(6));
    assert.deepEqual([free(), hugetlbPagesReserved(sys)], [1, 1]);
    assertOracles(sys);
  });

  it('fork copies no page table of a shared mapping without anonymous pages', () => {
    // vma_needs_copy(): hugetlb is no exception (older kernels made it one). The parent's page is
    // mapped once, so smaps counts it as private and pagemap calls it exclusive; the child maps
    // it when it faults.
    const { sys, p } = setup({ hugetlbPages: 8 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    const s = mapOk(sys, p, 2 * H, MAP_SHARED, RW, fd);
    writeOk(sys, p, s + H - PAGE, new Uint8Array(PAGE).fill(225));
    const c = sys.fork(p, 'c').child!;
    const hugetlbOf = (q: typeof p): [number, number] => {
      const e = sys.smaps(q, s, s + 2 * H);
      assert.ok(typeof e !== 'number');
      return [e[0].sharedHugetlb, e[0].privateHugetlb];
    };
    assert.deepEqual(hugetlbOf(p), [0, H]);
    assert.deepEqual(hugetlbOf(c), [0, 0]);
    assert.equal(sys.pagemap(p, s, 1)[0].exclusive, true);
    assert.equal(sys.pagemap(c, s, 1)[0].present, false);
    assert.equal(readOk(sys, c, s + H - PAGE, 1)[0], 225);
    assert.deepEqual(hugetlbOf(p), [H, 0]);
    assert.deepEqual(hugetlbOf(c), [H, 0]);
    assertOracles(sys);
  });

  it("fork gives the child the parent's PMD table over a copied hugetlb VMA, empty entries too", () => {
    // copy_hugetlb_page_range() allocates the child's entry before it looks at the parent's. A
    // private mapping with an anon_vma (written, then MADV_DONTNEED) is copied; its PMD table is
    // the one the shared mapping 8 MiB below uses, so the child's mincore() of that mapping finds
    // an empty entry there, not the page cache. Live (6.18.44): "00" in the child, "11" in the
    // parent; without the private mapping, "11" in the child too.
    const { sys, p } = setup({ hugetlbPages: 8 });
    const at = MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED_NOREPLACE;
    const pr = W + 6 * H;
    assert.equal(sys.mmap(p, pr, H, RW, MAP_PRIVATE | at), pr);
    writeOk(sys, p, pr, Uint8Array.of(13));
    assert.equal(sys.madvise(p, pr, H, MADV.DONTNEED), 0);
    const sh = W + 2 * H;
    assert.equal(sys.mmap(p, sh, H, RW, MAP_SHARED | at), sh);
    assert.equal(sys.madvise(p, sh, H, MADV.POPULATE_WRITE), 0);
    const c = sys.fork(p, 'c').child!;
    const core = (q: typeof p): string => {
      const vec = new Uint8Array(2);
      assert.equal(sys.mincore(q, sh, 2 * PAGE, vec), 0);
      return vec.join('');
    };
    assert.equal(core(c), '00');
    assert.equal(core(p), '11');
    assertOracles(sys);
  });
});

describe('private huge pages', () => {
  it('are mapped at the offset asked, which must be a huge-page one, as their hugetlbfs file is', () => {
    const { sys, p } = setup({ hugetlbPages: 8 });
    const anon = MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE;
    assert.equal(sys.mmap(p, 0, H, RW, MAP_PRIVATE | anon, -1, PAGE), -Errno.EINVAL);
    assert.equal(sys.mmap(p, 0, H, RW, MAP_SHARED | anon, -1, PAGE), -Errno.EINVAL);
    assert.equal(sys.mmap(p, W, H, RW, MAP_PRIVATE | anon | MAP_FIXED_NOREPLACE, -1, H), W);
    const maps = sys.maps(p);
    assert.ok(Array.isArray(maps));
    assert.deepEqual(
      maps.map((e) => [e.start - W, e.offset, e.name]),
      [[0, H, '/anon_hugepage (deleted)']],
    );
    writeOk(sys, p, W, Uint8Array.of(1));
    assertOracles(sys);
  });

  it('an mprotect() that ends inside a huge page is -EINVAL and keeps the split at its start', () => {
    const { sys, p } = setup({ hugetlbPages: 8 });
    const a = sys.mmap(
      p,
      W,
      3 * H,
      RW,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED_NOREPLACE,
      -1,
      0,
    );
    assert.equal(a, W);
    writeOk(sys, p, a + H, Uint8Array.of(1));
    assert.equal(sys.mprotect(p, a + H, PAGE, PROT_READ), -Errno.EINVAL);
    assert.equal(sys.mprotect(p, a + PAGE, H, PROT_READ), -Errno.EINVAL, 'a start inside one splits nothing');
    const maps = sys.maps(p);
    assert.ok(Array.isArray(maps));
    assert.deepEqual(
      maps.map((e) => [e.start - W, e.end - W, e.offset, e.name]),
      [
        [0, H, 0, '/anon_hugepage (deleted)'],
        [H, 3 * H, H, '/anon_hugepage (deleted)'],
      ],
    );
    assert.equal(sys.madvise(p, a, H, MADV.REMOVE), -Errno.EACCES, 'a file mapping, not shared');
    assertOracles(sys);
  });
});
