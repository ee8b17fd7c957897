/**
 * Behaviours the ported mm selftests (cow.c, madv_populate.c, mkdirty.c) found the model getting
 * wrong, each checked here on its own.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  FOLL_FORCE,
  FOLL_LONGTERM,
  FOLL_WRITE,
  getUserPagesRemote,
  pinUserPagesFast,
  putUserPages,
  unpinUserPages,
} from '../../../src/kernel/mm/gup.ts';
import {
  MADV,
  MAP_HUGETLB,
  MFD_HUGETLB,
  MFD_HUGE_SHIFT,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { ANON_PRIVATE, HPAGE, PAGE, mapOk, pattern, readOk, setup, teardown, writeOk } from './mm_helpers.ts';

/** A /proc/pid/mem write: FOLL_FORCE | FOLL_WRITE GUP, a store into the page, put_page(). */
function forceWrite(sys: System, p: Process, addr: number, byte: number): number {
  const mm = p.mm!;
  const out: number[] = [];
  const n = sys.run(
    'access_remote_vm',
    (function* () {
      yield* mm.mmapLock.downRead();
      const r = yield* getUserPagesRemote(mm, addr - (addr % PAGE), 1, FOLL_FORCE | FOLL_WRITE, out);
      yield* mm.mmapLock.upRead();
      return r;
    })(),
  );
  if (n !== 1) return n;
  sys.phys.write(out[0], addr % PAGE, Uint8Array.of(byte), 0, 1);
  putUserPages(sys, out, 1);
  return 1;
}

describe('FOLL_FORCE writes into read-only private mappings (can_follow_write_pte, maybe_mkwrite)', () => {
  test('the write lands in an anonymous copy that stays read-only', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE, ANON_PRIVATE, PROT_READ);
    assert.equal(readOk(sys, p, a, 1)[0], 0);
    assert.equal(forceWrite(sys, p, a, 7), 1);
    assert.equal(readOk(sys, p, a, 1)[0], 7);
    const e = sys.pagemap(p, a, 1)[0];
    assert.ok(e.present && e.kind === 'ram');
    assert.equal(sys.write(p, a, Uint8Array.of(8)), -Errno.EFAULT, 'a CPU store still faults');
    assert.equal(readOk(sys, p, a, 1)[0], 7);
    teardown(sys);
  });

  test('a THP placed by the forced write stays PMD-mapped and read-only', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = mapOk(sys, p, 2 * HPAGE, ANON_PRIVATE, PROT_READ);
    assert.equal(a % HPAGE, 0);
    assert.equal(forceWrite(sys, p, a, 9), 1);
    assert.ok(sys.pagemap(p, a + HPAGE - PAGE, 1)[0].thp);
    assert.equal(sys.write(p, a, Uint8Array.of(1)), -Errno.EFAULT);
    assert.equal(readOk(sys, p, a, 1)[0], 9);
    teardown(sys);
  });
});

describe('hugetlb and fork (copy_hugetlb_page_range, hugetlb_wp)', () => {
  test('a pinned exclusive hugetlb page stays the parent’s; the child gets a copy', () => {
    const { sys, p } = setup({ ram: 64 * 1024 * 1024 });
    const a = mapOk(sys, p, HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    writeOk(sys, p, a, pattern(4, PAGE));
    const out: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_LONGTERM | FOLL_WRITE, out)), 1);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.notEqual(sys.pagemap(child, a, 1)[0].pfn, sys.pagemap(p, a, 1)[0].pfn);
    writeOk(sys, p, a, pattern(5, PAGE));
    assert.equal(sys.pagemap(p, a, 1)[0].pfn, out[0], 'the parent still maps the pinned page');
    assert.deepEqual(readOk(sys, child, a, PAGE), pattern(4, PAGE));
    unpinUserPages(sys, out, 1, false);
    sys.exit(child);
    teardown(sys);
  });

  test('a page shared by fork is reused by the parent once the child unmaps it', () => {
    const { sys, p } = setup({ ram: 64 * 1024 * 1024 });
    const a = mapOk(sys, p, HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    writeOk(sys, p, a, pattern(6, PAGE));
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    const pfn = sys.pagemap(p, a, 1)[0].pfn;
    assert.equal(sys.munmap(child, a, HPAGE), 0);
    writeOk(sys, p, a, pattern(7, PAGE));
    assert.equal(sys.pagemap(p, a, 1)[0].pfn, pfn);
    sys.exit(child);
    teardown(sys);
  });
});

describe('madvise() and memfd_create() details', () => {
  test('MADV_POPULATE_READ needs PROT_READ (EINVAL on a PROT_WRITE-only mapping)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE, ANON_PRIVATE, PROT_WRITE);
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.POPULATE_READ), -Errno.EINVAL);
    assert.equal(sys.madvise(p, a, 4 * PAGE, MADV.POPULATE_WRITE), 0);
    teardown(sys);
  });

  test('MADV_COLLAPSE takes pages shared with a child, refuses pinned ones (EAGAIN)', () => {
    const { sys, p } = setup();
    const raw = mapOk(sys, p, 2 * HPAGE);
    const a = raw + ((HPAGE - (raw % HPAGE)) % HPAGE);
    assert.equal(sys.madvise(p, a, HPAGE, MADV.NOHUGEPAGE), 0);
    writeOk(sys, p, a, pattern(8, HPAGE));
    assert.equal(sys.madvise(p, a, HPAGE, MADV.HUGEPAGE), 0);
    const out: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_LONGTERM, out)), 1);
    assert.equal(sys.madvise(p, a, HPAGE, MADV.COLLAPSE), -Errno.EAGAIN);
    unpinUserPages(sys, out, 1, false);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.equal(sys.madvise(p, a, HPAGE, MADV.COLLAPSE), 0);
    assert.ok(sys.pagemap(p, a, 1)[0].thp);
    writeOk(sys, p, a, pattern(9, PAGE));
    assert.deepEqual(readOk(sys, child, a, PAGE), pattern(8, HPAGE).subarray(0, PAGE));
    sys.exit(child);
    teardown(sys);
  });

  test('memfd_create(MFD_HUGETLB) takes a 2 MiB size in its flags; other sizes are ENODEV', () => {
    const { sys } = setup();
    assert.ok(sys.memfdCreate('a', MFD_HUGETLB | (21 << MFD_HUGE_SHIFT)) >= 0);
    assert.equal(sys.memfdCreate('b', MFD_HUGETLB | (30 << MFD_HUGE_SHIFT)), -Errno.ENODEV);
    assert.equal(sys.memfdCreate('c', 21 << MFD_HUGE_SHIFT), -Errno.EINVAL);
    teardown(sys);
  });
});
