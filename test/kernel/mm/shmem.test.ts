import { hugetlbPagesFree } from '../../../src/kernel/mm/hugetlb.ts';
import { lockdepOf } from '../../../src/sched/locks.ts';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { createDmirrorDevice, dmirrorOpen } from '../../../src/kernel/drivers/test_hmm.ts';
import {
  FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  MADV,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_HUGETLB,
  PROT_READ,
  SEEK_DATA,
} from '../../../src/kernel/mm/mman.ts';
import { PG } from '../../../src/kernel/mm/page_alloc.ts';
import {
  HPAGE,
  PAGE,
  RW,
  mapOk,
  pattern,
  readOk,
  referenced,
  setup,
  teardown,
  writeOk,
} from './mm_helpers.ts';

describe('memfd_create + ftruncate + pwrite/pread + mmap', () => {
  it('memfd_create rejects unknown flags and over-long names with EINVAL', () => {
    const { sys } = setup();
    assert.equal(sys.memfdCreate('x', 0x100), -Errno.EINVAL);
    assert.equal(sys.memfdCreate('n'.repeat(250)), -Errno.EINVAL);
    assert.equal(sys.files.size, 0);
    teardown(sys);
  });

  it('ftruncate, pwrite and pread errors: bad fd EBADF, negative sizes and offsets EINVAL', () => {
    const { sys } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(99, PAGE), -Errno.EBADF);
    assert.equal(sys.ftruncate(fd, -1), -Errno.EINVAL);
    assert.equal(sys.pwrite(99, Uint8Array.of(1), 0), -Errno.EBADF);
    assert.equal(sys.pwrite(fd, Uint8Array.of(1), -1), -Errno.EINVAL);
    assert.equal(sys.pread(99, 1, 0).ret, -Errno.EBADF);
    assert.equal(sys.pread(fd, 1, -1).ret, -Errno.EINVAL);
    assert.equal(sys.close(99), -Errno.EBADF);
    teardown(sys);
  });

  it('dup: both descriptors name one open file, which lasts until the last of them is closed', () => {
    const { sys } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.dup(999), -Errno.EBADF);
    const fd2 = sys.dup(fd);
    assert.ok(fd2 > fd);
    assert.equal(sys.pwrite(fd, pattern(3, PAGE), 0), PAGE);
    assert.equal(sys.close(fd), 0);
    assert.deepEqual(sys.pread(fd2, PAGE, 0).data, pattern(3, PAGE));
    assert.equal(sys.pread(fd, 1, 0).ret, -Errno.EBADF);
    assert.equal(sys.close(fd2), 0);
    assert.equal(sys.close(fd2), -Errno.EBADF);
    teardown(sys);
  });

  it('a hugetlbfs memfd has no write(): pwrite is EINVAL at any length; pread reads it (live 6.18)', () => {
    const { sys } = setup({ hugetlbPages: 2 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.ftruncate(fd, HPAGE), 0);
    assert.equal(sys.pwrite(fd, new Uint8Array(4), 0), -Errno.EINVAL);
    assert.equal(sys.pwrite(fd, new Uint8Array(0), 0), -Errno.EINVAL);
    assert.equal(sys.pwrite(999, new Uint8Array(4), 0), -Errno.EBADF);
    assert.equal(sys.pread(fd, 4, 0).ret, 4);
    teardown(sys);
  });

  it('pwrite data is visible through a shared mapping and writes through the mapping reach pread', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 3 * PAGE), 0);
    assert.equal(sys.pwrite(fd, pattern(1, 100), PAGE + 10), 100);
    const a = mapOk(sys, p, 3 * PAGE, MAP_SHARED, RW, fd);
    assert.deepEqual(readOk(sys, p, a + PAGE + 10, 100), pattern(1, 100));
    assert.deepEqual(readOk(sys, p, a, 16), new Uint8Array(16));
    writeOk(sys, p, a + 2 * PAGE, pattern(2, 50));
    const r = sys.pread(fd, 50, 2 * PAGE);
    assert.equal(r.ret, 50);
    assert.deepEqual(r.data, pattern(2, 50));
    // Pages 0 and 1 were read, page 2 written: three shmem pages mapped.
    assert.equal(sys.stats(p).rss_shmem, 3 * PAGE);
    // A second mapping of the file maps the same page cache page.
    const b = mapOk(sys, p, 3 * PAGE, MAP_SHARED, PROT_READ, fd);
    assert.deepEqual(readOk(sys, p, b + 2 * PAGE, 50), pattern(2, 50));
    assert.equal(sys.pagemap(p, a + 2 * PAGE, 1)[0].pfn, sys.pagemap(p, b + 2 * PAGE, 1)[0].pfn);
    teardown(sys);
  });

  it('pagemap: a page of the file is PM_FILE, a private copy is not; exclusive while mapped once', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, RW, fd);
    const b = mapOk(sys, p, 2 * PAGE, MAP_PRIVATE, RW, fd);
    writeOk(sys, p, a, Uint8Array.of(1));
    writeOk(sys, p, b + PAGE, Uint8Array.of(2));
    const bits = (e: { present: boolean; file: boolean; exclusive: boolean }) => [
      e.present,
      e.file,
      e.exclusive,
    ];
    assert.deepEqual(sys.pagemap(p, a, 2).map(bits), [
      [true, true, true],
      [false, false, false],
    ]);
    assert.deepEqual(sys.pagemap(p, b + PAGE, 1).map(bits), [[true, false, true]], 'the private copy');
    readOk(sys, p, b, 1);
    assert.deepEqual(sys.pagemap(p, a, 1).map(bits), [[true, true, false]], 'mapped twice now');
    teardown(sys);
  });

  it('a private mapping sees the file until it writes; then only its copy changes', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(3, 2 * PAGE), 0), 2 * PAGE);
    const a = mapOk(sys, p, 2 * PAGE, MAP_PRIVATE, RW, fd);
    assert.deepEqual(readOk(sys, p, a, 2 * PAGE), pattern(3, 2 * PAGE));
    writeOk(sys, p, a, Uint8Array.of(0xab));
    assert.equal(sys.pread(fd, 1, 0).data[0], pattern(3, 1)[0], 'the file is unchanged');
    assert.equal(sys.stats(p).rss_anon, PAGE);
    // A later pwrite shows in the pages not yet copied, not in the copied one.
    assert.equal(sys.pwrite(fd, Uint8Array.of(1, 2), 0), 2);
    assert.equal(sys.pwrite(fd, Uint8Array.of(3), PAGE), 1);
    assert.equal(readOk(sys, p, a, 1)[0], 0xab);
    assert.equal(readOk(sys, p, a + PAGE, 1)[0], 3);
    teardown(sys);
  });

  it('access past the end of the file is SIGBUS (EFAULT); growing the file makes it valid', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, PAGE), 0);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, RW, fd);
    assert.equal(sys.read(p, a + PAGE, 1).ret, -Errno.EFAULT);
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    writeOk(sys, p, a + PAGE, Uint8Array.of(5));
    assert.equal(sys.pread(fd, 1, PAGE).data[0], 5);
    teardown(sys);
  });

  it('a read past the end maps the cached pages below it (fault-around), then fails', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(1, 10), PAGE), 10);
    const a = mapOk(sys, p, 4 * PAGE, MAP_SHARED, RW, fd);
    assert.equal(sys.read(p, a + 2 * PAGE, 1).ret, -Errno.EFAULT);
    assert.deepEqual(
      sys.pagemap(p, a, 3).map((e) => e.present),
      [false, true, false],
    );
    teardown(sys);
  });

  it('a private write past the end fails but leaves the VMA an anon_vma: fork then copies its page tables', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, PAGE), 0);
    const a = mapOk(sys, p, 2 * PAGE, MAP_PRIVATE, RW, fd);
    readOk(sys, p, a, 1);
    assert.equal(sys.write(p, a + PAGE, Uint8Array.of(1)), -Errno.EFAULT);
    const c = sys.fork(p, 'c').child!;
    assert.equal(sys.pagemap(c, a, 1)[0].present, true, 'the child got the PTE at fork');
    assert.equal(sys.pagemap(p, a, 1)[0].exclusive, false, 'mapped in both processes');
    teardown(sys);
  });

  it('truncation unmaps and frees the pages past the new end and zeros the partial tail', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(4, 3 * PAGE), 0), 3 * PAGE);
    const a = mapOk(sys, p, 3 * PAGE, MAP_SHARED, RW, fd);
    readOk(sys, p, a + 2 * PAGE, 1);
    const used = sys.stats().used;
    assert.equal(sys.ftruncate(fd, PAGE + 100), 0);
    assert.equal(sys.stats().used, used - PAGE);
    assert.equal(sys.read(p, a + 2 * PAGE, 1).ret, -Errno.EFAULT);
    assert.deepEqual(readOk(sys, p, a + PAGE + 100, 10), new Uint8Array(10));
    assert.deepEqual(readOk(sys, p, a + PAGE, 100), pattern(4, 3 * PAGE).subarray(PAGE, PAGE + 100));
    assert.equal(sys.pread(fd, 4 * PAGE, 0).ret, PAGE + 100);
    teardown(sys);
  });

  it('truncation zeros a swapped-out partial tail too, and leaves the partial page dirty', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(5, 2 * PAGE), 0), 2 * PAGE);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, PROT_READ, fd);
    readOk(sys, p, a, 2 * PAGE);
    // Page 1 goes to swap; page 0 is clean in the page cache.
    assert.equal(sys.madvise(p, a + PAGE, PAGE, MADV.PAGEOUT), 0);
    assert.equal(sys.swap.used, 1);
    assert.equal(sys.ftruncate(fd, PAGE + 10), 0);
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    const back = sys.pread(fd, 2 * PAGE, 0);
    assert.deepEqual(back.data.subarray(PAGE, PAGE + 10), pattern(5, 2 * PAGE).subarray(PAGE, PAGE + 10));
    assert.deepEqual(
      back.data.subarray(PAGE + 10),
      new Uint8Array(PAGE - 10),
      'the bytes past the cut read as zeros',
    );
    assert.equal(sys.ftruncate(fd, 10), 0);
    const smaps = sys.smaps(p, a, a + 1);
    assert.ok(Array.isArray(smaps));
    assert.equal(
      smaps[0].sharedDirty + smaps[0].privateDirty,
      PAGE,
      'the partial page is dirty (shmem_undo_range())',
    );
    teardown(sys);
  });

  it('closing the fd keeps a mapped file alive; the last munmap frees its pages', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(5, PAGE), 0), PAGE);
    const a = mapOk(sys, p, PAGE, MAP_SHARED, RW, fd);
    assert.equal(sys.close(fd), 0);
    assert.deepEqual(readOk(sys, p, a, 8), pattern(5, 8));
    assert.equal(sys.munmap(p, a, PAGE), 0);
    assert.equal(sys.stats().used, 0);
    teardown(sys);
  });

  it('MFD_HUGETLB files: sizes must be huge-page multiples; shared mappings share the huge page', () => {
    const { sys, p } = setup({ hugetlbPages: 4 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.ok(fd > 0);
    assert.equal(sys.ftruncate(fd, PAGE), -Errno.EINVAL);
    assert.equal(sys.ftruncate(fd, HPAGE), 0);
    const a = mapOk(sys, p, HPAGE, MAP_SHARED, RW, fd);
    const b = mapOk(sys, p, HPAGE, MAP_SHARED, RW, fd);
    writeOk(sys, p, a + 7 * PAGE, pattern(6, 16));
    assert.deepEqual(readOk(sys, p, b + 7 * PAGE, 16), pattern(6, 16));
    assert.ok(sys.pagemap(p, a, 1)[0].thp);
    teardown(sys);
  });

  it('a private mapping of an MFD_HUGETLB file reads the file and copies on write', () => {
    const { sys, p } = setup({ hugetlbPages: 4 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.ftruncate(fd, HPAGE), 0);
    const s = mapOk(sys, p, HPAGE, MAP_SHARED, RW, fd);
    writeOk(sys, p, s + 3 * PAGE, pattern(8, 16));
    const v = mapOk(sys, p, HPAGE, MAP_PRIVATE, RW, fd);
    assert.deepEqual(readOk(sys, p, v + 3 * PAGE, 16), pattern(8, 16));
    writeOk(sys, p, v + 3 * PAGE, Uint8Array.of(1));
    assert.equal(readOk(sys, p, s + 3 * PAGE, 1)[0], pattern(8, 1)[0]);
    assert.deepEqual(readOk(sys, p, v + 3 * PAGE + 1, 15), pattern(8, 16).subarray(1));
    teardown(sys);
  });

  it('a private mapping of a hole in an MFD_HUGETLB file gets its own anonymous page, as hugetlb_no_page() does', () => {
    const { sys, p } = setup({ hugetlbPages: 4 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.ftruncate(fd, HPAGE), 0);
    const v = mapOk(sys, p, HPAGE, MAP_PRIVATE, RW, fd);
    // The read fault on the hole takes the private mapping's reserved page; the file stays empty.
    assert.deepEqual(readOk(sys, p, v + 3 * PAGE, 4), new Uint8Array(4));
    const s = mapOk(sys, p, HPAGE, MAP_SHARED, RW, fd);
    writeOk(sys, p, s + 3 * PAGE, pattern(9, 16));
    // The shared write allocated a second huge page for the file; the private page still reads zero.
    assert.deepEqual(readOk(sys, p, v + 3 * PAGE, 4), new Uint8Array(4));
    assert.equal(hugetlbPagesFree(sys), 2);
    teardown(sys);
  });
});

describe('fallocate on tmpfs and hugetlbfs', () => {
  const KEEP = FALLOC_FL_KEEP_SIZE;
  const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

  it('checks its arguments as vfs_fallocate() does', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.fallocate(99, 0, 0, PAGE), -Errno.EBADF);
    assert.equal(sys.fallocate(fd, 0, -1, PAGE), -Errno.EINVAL);
    assert.equal(sys.fallocate(fd, 0, 0, 0), -Errno.EINVAL);
    assert.equal(
      sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, PAGE),
      -Errno.EOPNOTSUPP,
      'a hole needs KEEP_SIZE',
    );
    assert.equal(sys.fallocate(fd, FALLOC_FL_COLLAPSE_RANGE | KEEP, 0, PAGE), -Errno.EOPNOTSUPP);
    assert.equal(
      sys.fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, PAGE),
      -Errno.EOPNOTSUPP,
      'tmpfs has no ZERO_RANGE',
    );
    assert.equal(sys.fallocate(fd, 0x100, 0, PAGE), -Errno.EOPNOTSUPP);
    assert.equal(sys.fallocate(fd, 0, 2 ** 52, PAGE), -Errno.EFBIG);
    assert.equal(sys.fallocate(fd, 0, 2n ** 63n - 1n, 2n), -Errno.EFBIG);
    assert.equal(sys.fallocate(fd, 0, -(2n ** 60n), 1), -Errno.EINVAL);
    createDmirrorDevice(sys, 'gpu0', 'private');
    const dev = sys.run('open', dmirrorOpen(sys, 'gpu0', p));
    assert.equal(sys.fallocate(dev, 0, 0, PAGE), -Errno.ENODEV);
    assert.equal(sys.stats().used, 0, 'nothing allocated');
    teardown(sys);
  });

  it('allocates the pages of the range; the size grows unless KEEP_SIZE', () => {
    const { sys } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.fallocate(fd, KEEP, 0, 3 * PAGE), 0);
    assert.equal(sys.stats().used, 3 * PAGE);
    assert.equal(sys.pread(fd, PAGE, 0).ret, 0, 'KEEP_SIZE: the size is still 0');
    assert.equal(sys.fallocate(fd, 0, PAGE + 1, 2 * PAGE), 0, 'an unaligned range covers its pages');
    assert.equal(sys.stats().used, 4 * PAGE);
    assert.equal(sys.pread(fd, 4 * PAGE, 0).ret, 3 * PAGE + 1);
    teardown(sys);
  });

  it('an allocation that runs out of memory takes back the pages it added, not the ones there before', () => {
    const { sys } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(1, PAGE), 0), PAGE);
    sys.inject.arm(3);
    assert.equal(sys.fallocate(fd, 0, 0, 8 * PAGE), -Errno.ENOMEM);
    assert.equal(sys.stats().used, PAGE);
    assert.deepEqual(sys.pread(fd, PAGE, 0).data, pattern(1, PAGE));
    teardown(sys);
  });

  it('pages allocated past the size with KEEP_SIZE go when the file is truncated', () => {
    const { sys } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    assert.equal(sys.fallocate(fd, KEEP, 0, 8 * PAGE), 0);
    assert.equal(sys.stats().used, 8 * PAGE);
    assert.equal(sys.ftruncate(fd, PAGE), 0);
    assert.equal(sys.stats().used, PAGE);
    teardown(sys);
  });

  it('reclaim keeps the pages an allocation in progress added, so the call runs out of memory and fails', () => {
    const { sys } = setup({ ram: 8 * 1024 * 1024, swap: 8 * 1024 * 1024 });
    const fd = sys.memfdCreate('m');
    const used = sys.stats().used;
    // A terabyte: RAM runs out long before. Reclaim swaps none of the call's pages out (nor frees
    // them as clean zero pages), so the call stops instead of going on.
    assert.equal(sys.fallocate(fd, 0, 0, 2 ** 40), -Errno.ENOMEM);
    assert.equal(sys.stats().used, used, 'the pages it added went again');
    assert.equal(sys.stats().swap_used, 0, 'none is in swap');
    assert.equal(sys.trace.counters.get('reclaim.pageout') ?? 0, 0, 'none was ever written out');
    assert.equal(sys.pread(fd, 1, 0).ret, 0, 'the size is unchanged');
    teardown(sys);
  });

  it('once the call is over, reclaim swaps its pages out: they are dirty, not clean zero pages', () => {
    const { sys } = setup({ ram: 8 * 1024 * 1024, swap: 8 * 1024 * 1024 });
    const fd = sys.memfdCreate('m');
    assert.equal(sys.fallocate(fd, 0, 0, 4 * PAGE), 0);
    assert.equal(sys.reclaim(), 4);
    assert.equal(sys.stats().swap_used, 4 * PAGE);
    assert.deepEqual(sys.pread(fd, 4 * PAGE, 0).data, new Uint8Array(4 * PAGE));
    teardown(sys);
  });

  it('fault-around maps the pages a fallocate added only once something used them', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 8 * PAGE), 0);
    assert.equal(sys.fallocate(fd, 0, 0, 4 * PAGE), 0);
    assert.equal(sys.pwrite(fd, pattern(1, 10), 2 * PAGE), 10);
    const a = mapOk(sys, p, 8 * PAGE, MAP_SHARED, RW, fd);
    readOk(sys, p, a, 1);
    // Page 0 faulted, page 2 written: up to date. Pages 1 and 3 stand for holes still.
    assert.deepEqual(
      sys.pagemap(p, a, 4).map((e) => e.present),
      [true, false, true, false],
    );
    teardown(sys);
  });

  it('a hole that ends inside the first page unmaps the file from there to its end (u64 bounds)', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(3, 3 * PAGE), 0), 3 * PAGE);
    const a = mapOk(sys, p, 3 * PAGE, MAP_SHARED, RW, fd);
    readOk(sys, p, a, 3 * PAGE);
    const present = () => sys.pagemap(p, a, 3).map((e) => e.present);
    // Inside page 0, past its start: pages 1 and 2 are unmapped (nothing of them is punched).
    assert.equal(sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 200), 0);
    assert.deepEqual(present(), [true, false, false]);
    // From 0: every page is unmapped. The page cache keeps them all.
    assert.equal(sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 200), 0);
    assert.deepEqual(present(), [false, false, false]);
    const want = pattern(3, 3 * PAGE);
    want.fill(0, 0, 300);
    assert.deepEqual(readOk(sys, p, a, 3 * PAGE), want);
    teardown(sys);
  });

  it('a hole zeroes the partial pages at its edges, frees the whole ones and keeps private copies', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(2, 4 * PAGE), 0), 4 * PAGE);
    const shared = mapOk(sys, p, 4 * PAGE, MAP_SHARED, RW, fd);
    const priv = mapOk(sys, p, 4 * PAGE, MAP_PRIVATE, RW, fd);
    writeOk(sys, p, priv + 2 * PAGE, Uint8Array.of(7));
    const used = sys.stats().used;
    assert.equal(sys.fallocate(fd, PUNCH, 100, 3 * PAGE), 0);
    // Pages 1 and 2 leave the file; pages 0 and 3 are only zeroed in part.
    assert.equal(sys.stats().used, used - 2 * PAGE);
    const want = pattern(2, 4 * PAGE);
    want.fill(0, 100, 3 * PAGE + 100);
    assert.deepEqual(readOk(sys, p, shared, 4 * PAGE), want);
    assert.deepEqual(sys.pread(fd, 4 * PAGE, 0).data, want);
    // The private copy of page 2 stays; its other pages read the file again.
    assert.equal(readOk(sys, p, priv + 2 * PAGE, 1)[0], 7);
    assert.deepEqual(readOk(sys, p, priv + PAGE, PAGE), new Uint8Array(PAGE));
    teardown(sys);
  });

  it('MADV_REMOVE of a shared tmpfs mapping punches the hole and keeps the private copies', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    const shared = mapOk(sys, p, 2 * PAGE, MAP_SHARED, RW, fd);
    const priv = mapOk(sys, p, 2 * PAGE, MAP_PRIVATE, RW, fd);
    writeOk(sys, p, shared, pattern(3, 2 * PAGE));
    writeOk(sys, p, priv, Uint8Array.of(9));
    assert.equal(sys.madvise(p, shared, 2 * PAGE, MADV.REMOVE), 0);
    assert.deepEqual(readOk(sys, p, shared, 2 * PAGE), new Uint8Array(2 * PAGE));
    assert.equal(readOk(sys, p, priv, 1)[0], 9);
    teardown(sys);
  });

  it('MADV_REMOVE drops the mmap lock around the punch, which takes the inode lock, and walks on', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 4 * PAGE), 0);
    const a = mapOk(sys, p, 4 * PAGE, MAP_SHARED, RW, fd);
    writeOk(sys, p, a, pattern(5, 4 * PAGE));
    // Two VMAs (the middle page read-only splits them off) and a hole after them.
    assert.equal(sys.mprotect(p, a + PAGE, PAGE, PROT_READ), 0);
    assert.equal(sys.munmap(p, a + 3 * PAGE, PAGE), 0);
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.REMOVE), -Errno.ENOMEM);
    // Every mapped part was punched before the hole ended the walk.
    assert.deepEqual(sys.pread(fd, 3 * PAGE, 0).data, new Uint8Array(3 * PAGE));
    assert.deepEqual(sys.pread(fd, PAGE, 3 * PAGE).data, pattern(5, 4 * PAGE).subarray(3 * PAGE));
    // The inode lock was never taken under the mmap lock.
    const edges = lockdepOf(sys.sched).orderEdges();
    assert.ok(!edges.some(([x, y]) => x === 'mmap_lock' && y === 'i_rwsem'), JSON.stringify(edges));
    teardown(sys);
  });

  it('hugetlbfs: allocation takes huge pages from the pool; a hole frees them and the private copies', () => {
    const { sys, p } = setup({ hugetlbPages: 8 });
    const fd = sys.memfdCreate('h', MFD_HUGETLB);
    assert.equal(sys.fallocate(fd, 0, 0, 2 * HPAGE), 0);
    assert.equal(hugetlbPagesFree(sys), 6);
    const priv = mapOk(sys, p, 2 * HPAGE, MAP_PRIVATE, RW, fd);
    writeOk(sys, p, priv, Uint8Array.of(5));
    assert.equal(hugetlbPagesFree(sys), 5);
    // A hole of less than a huge page only zeroes.
    const shared = mapOk(sys, p, 2 * HPAGE, MAP_SHARED, RW, fd);
    writeOk(sys, p, shared + HPAGE, pattern(4, PAGE));
    assert.equal(sys.fallocate(fd, PUNCH, HPAGE + 10, 20), 0);
    const want = pattern(4, PAGE);
    want.fill(0, 10, 30);
    assert.deepEqual(readOk(sys, p, shared + HPAGE, PAGE), want);
    assert.equal(hugetlbPagesFree(sys), 5);
    assert.equal(sys.fallocate(fd, PUNCH, 0, 2 * HPAGE), 0);
    assert.equal(hugetlbPagesFree(sys), 8, 'the private copy went with the file pages');
    // A private read of the hole gets an anonymous page (its reservation); the other stays reserved.
    assert.equal(readOk(sys, p, priv, 1)[0], 0);
    assert.equal(hugetlbPagesFree(sys), 7);
    // More than the pool can give: the pages it got stay, and the call fails with ENOSPC.
    assert.equal(sys.fallocate(fd, 0, 0, 10 * HPAGE), -Errno.ENOSPC);
    assert.equal(hugetlbPagesFree(sys), 1, 'the reserved page is not taken');
    teardown(sys);
  });
});

describe('read() of tmpfs: SGP_READ and folio_mark_accessed()', () => {
  it('a swapped-out page is read back into the file: its slot is freed and the page is resident and dirty', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(9, 2 * PAGE), 0), 2 * PAGE);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, PROT_READ, fd);
    readOk(sys, p, a, 2 * PAGE);
    assert.equal(sys.madvise(p, a + PAGE, PAGE, MADV.PAGEOUT), 0);
    assert.equal(sys.swap.used, 1);
    const vec = new Uint8Array(2);
    assert.equal(sys.mincore(p, a, 2 * PAGE, vec), 0);
    assert.deepEqual([...vec], [1, 0]);
    const r = sys.pread(fd, 100, PAGE + 7);
    assert.equal(r.ret, 100);
    assert.deepEqual(r.data, pattern(9, 2 * PAGE).subarray(PAGE + 7, PAGE + 107));
    assert.equal(sys.swap.used, 0, 'the slot is freed');
    assert.equal(sys.mincore(p, a, 2 * PAGE, vec), 0);
    assert.deepEqual([...vec], [1, 1], 'the page is in the file again');
    const s = sys.smaps(p, a, a + 1);
    assert.ok(Array.isArray(s));
    assert.equal(s[0].swap, 0);
    assert.equal(s[0].rss, PAGE, 'read() does not map it');
    const back = sys.files.get(fd)!.inode.pages.load(1)!;
    assert.ok((sys.phys.flags[back] & PG.dirty) !== 0, 'the only copy now: dirty');
    teardown(sys);
  });

  it('a read that cannot have a page for the swap-in returns what it read before, or -ENOMEM', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(4, 2 * PAGE), 0), 2 * PAGE);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, PROT_READ, fd);
    readOk(sys, p, a, 2 * PAGE);
    assert.equal(sys.madvise(p, a + PAGE, PAGE, MADV.PAGEOUT), 0);
    sys.inject.failSite('shmem_alloc_folio');
    const r = sys.pread(fd, 2 * PAGE, 0);
    assert.equal(r.ret, PAGE, 'the page before the swapped-out one');
    assert.deepEqual(r.data, pattern(4, PAGE));
    sys.inject.failSite('shmem_alloc_folio');
    assert.equal(sys.pread(fd, 10, PAGE).ret, -Errno.ENOMEM);
    assert.equal(sys.swap.used, 1, 'still in swap');
    assert.deepEqual(sys.pread(fd, 10, PAGE).data, pattern(4, 2 * PAGE).subarray(PAGE, PAGE + 10));
    teardown(sys);
  });

  it('a fallocated page reads as zeros and stays a hole to SEEK_DATA (live 6.18)', () => {
    const { sys } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 4 * PAGE), 0);
    assert.equal(sys.fallocate(fd, 0, PAGE, 2 * PAGE), 0);
    assert.equal(sys.lseek(fd, 0, SEEK_DATA), -Errno.ENXIO);
    const used = sys.stats().used;
    const r = sys.pread(fd, 2 * PAGE, PAGE);
    assert.equal(r.ret, 2 * PAGE);
    assert.deepEqual(r.data, new Uint8Array(2 * PAGE));
    assert.equal(sys.lseek(fd, 0, SEEK_DATA), -Errno.ENXIO, 'still not up to date');
    assert.equal(sys.pread(fd, 100, 4 * PAGE - 50).ret, 50);
    assert.equal(sys.pread(fd, 100, 4 * PAGE).ret, 0);
    assert.equal(sys.pread(fd, PAGE, 3 * PAGE).ret, PAGE, 'a hole');
    assert.equal(sys.stats().used, used, 'nothing allocated');
    teardown(sys);
  });

  // The sequence, and what smaps showed, as on Linux 6.18.44 (no MGLRU): clear_refs 1 clears
  // the young bits and PG_referenced, then the file is read and written through its descriptor.
  it('a read from the first byte of a page and any write mark it accessed: smaps Referenced (live 6.18)', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    for (let i = 0; i < 4; i++) assert.equal(sys.pwrite(fd, pattern(i, PAGE), i * PAGE), PAGE);
    const a = mapOk(sys, p, 4 * PAGE, MAP_SHARED, RW, fd);
    readOk(sys, p, a, 4 * PAGE);
    assert.equal(referenced(sys, p, a), 4 * PAGE);
    assert.equal(sys.clearRefs(p, 1), 0);
    assert.equal(referenced(sys, p, a), 0);
    assert.equal(sys.pread(fd, PAGE, 0).ret, PAGE);
    assert.equal(referenced(sys, p, a), PAGE, 'read from its first byte');
    assert.equal(sys.clearRefs(p, 1), 0);
    assert.equal(sys.pread(fd, 100, PAGE + 10).ret, 100);
    assert.equal(referenced(sys, p, a), 0, 'read from within the page');
    assert.equal(sys.clearRefs(p, 1), 0);
    assert.equal(sys.pwrite(fd, pattern(7, 100), 2 * PAGE + 10), 100);
    assert.equal(referenced(sys, p, a), PAGE, 'a write, wherever it starts');
    assert.equal(sys.clearRefs(p, 1), 0);
    assert.equal(sys.pread(fd, 3 * PAGE, 0).ret, 3 * PAGE);
    assert.equal(referenced(sys, p, a), 3 * PAGE);
    assert.equal(sys.clearRefs(p, 1), 0);
    assert.equal(sys.pread(fd, PAGE, 3 * PAGE).ret, PAGE);
    assert.equal(sys.pread(fd, PAGE, 3 * PAGE).ret, PAGE);
    assert.equal(referenced(sys, p, a), 0, 'the second read activates the page and clears PG_referenced');
    teardown(sys);
  });

  it('unmapping a young PTE of a file page marks the page accessed, but not from a VMA with MADV_SEQUENTIAL (live 6.18)', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 2 * PAGE), 0);
    const b = mapOk(sys, p, 2 * PAGE, MAP_SHARED, PROT_READ, fd);
    readOk(sys, p, b, 2 * PAGE);
    assert.equal(sys.clearRefs(p, 1), 0);
    assert.equal(referenced(sys, p, b), 0);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, PROT_READ, fd);
    // The read fault maps the other page too (fault-around), young as well.
    readOk(sys, p, a, 1);
    assert.equal(referenced(sys, p, b), 0);
    assert.equal(sys.munmap(p, a, 2 * PAGE), 0);
    assert.equal(referenced(sys, p, b), 2 * PAGE);
    assert.equal(sys.clearRefs(p, 1), 0);
    const r = mapOk(sys, p, 2 * PAGE, MAP_SHARED, PROT_READ, fd);
    assert.equal(sys.madvise(p, r, 2 * PAGE, MADV.SEQUENTIAL), 0);
    readOk(sys, p, r + PAGE, 1);
    assert.equal(sys.munmap(p, r, 2 * PAGE), 0);
    assert.equal(referenced(sys, p, b), 0, 'a VMA without recency');
    teardown(sys);
  });

  it('an mlocked page keeps PG_referenced: the unevictable list is not aged (live 6.18)', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(1, 2 * PAGE), 0), 2 * PAGE);
    const a = mapOk(sys, p, 2 * PAGE, MAP_SHARED, RW, fd);
    assert.equal(sys.mlock(p, a, 2 * PAGE), 0);
    assert.equal(sys.clearRefs(p, 1), 0);
    for (let i = 0; i < 3; i++) assert.equal(sys.pread(fd, PAGE, 0).ret, PAGE);
    assert.equal(referenced(sys, p, a), PAGE);
    teardown(sys);
  });

  it('reclaim takes a page read once before one read twice (activated)', () => {
    const { sys } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.pwrite(fd, pattern(2, 2 * PAGE), 0), 2 * PAGE);
    const [first, second] = [
      sys.files.get(fd)!.inode.pages.load(0)!,
      sys.files.get(fd)!.inode.pages.load(1)!,
    ];
    // Both written once: PG_referenced. Page 0 is read once more (activated), page 1 is not.
    assert.equal(sys.pread(fd, PAGE, 0).ret, PAGE);
    assert.ok((sys.phys.flags[first] & PG.active) !== 0);
    assert.ok((sys.phys.flags[second] & PG.active) === 0);
    assert.equal(sys.reclaim(1), 1);
    assert.equal(sys.swap.used, 1);
    const inode = sys.files.get(fd)!.inode;
    assert.equal(inode.pages.load(0), first, 'the active page stays');
    assert.ok(inode.swapped.has(1), 'the other went to swap');
    teardown(sys);
  });
});
