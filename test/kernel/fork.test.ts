import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/kernel/errno.ts';
import { FOLL_WRITE, pinUserPagesFast, unpinUserPages } from '../../src/kernel/mm/gup.ts';
import { MADV, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED } from '../../src/kernel/mm/mman.ts';
import { assertOracles } from '../../src/oracles/index.ts';
import {
  ANON_PRIVATE,
  ANON_SHARED,
  HPAGE,
  PAGE,
  expectedTags,
  mapOk,
  pattern,
  readOk,
  readTags,
  setup,
  tagPages,
  teardown,
  writeOk,
} from './mm/mm_helpers.ts';

describe('fork() copy-on-write isolation', () => {
  it('private anonymous pages are shared read-only after fork and copied on the first write', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    tagPages(sys, p, a, 4, 1);
    const used = sys.stats().used;
    const { ret, child } = sys.fork(p, 'c');
    assert.ok(ret > 0 && child !== null);
    assert.equal(sys.stats().used, used, 'fork copies no page');
    const pp = sys.pagemap(p, a, 4);
    const cp = sys.pagemap(child, a, 4);
    assert.deepEqual(
      pp.map((e) => e.pfn),
      cp.map((e) => e.pfn),
    );
    assert.ok(
      pp.every((e) => !e.exclusive),
      'shared pages are not exclusive',
    );
    writeOk(sys, child, a, Uint8Array.of(200));
    writeOk(sys, p, a + PAGE, Uint8Array.of(201));
    assert.equal(sys.stats().used, used + 2 * PAGE);
    assert.deepEqual(readTags(sys, p, a, 4), [1, 201, 3, 4]);
    assert.deepEqual(readTags(sys, child, a, 4), [200, 2, 3, 4]);
    assert.notEqual(sys.pagemap(child, a, 1)[0].pfn, pp[0].pfn);
    assert.equal(sys.pagemap(p, a, 1)[0].pfn, pp[0].pfn);
    assert.equal(sys.stats(child).rss_anon, 4 * PAGE);
    assertOracles(sys);
    teardown(sys);
  });

  it('after the child exits the parent reuses its pages on write instead of copying', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE);
    writeOk(sys, p, a, Uint8Array.of(1));
    const pfn = sys.pagemap(p, a, 1)[0].pfn;
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.exit(child!), 0);
    const used = sys.stats().used;
    writeOk(sys, p, a, Uint8Array.of(2));
    assert.equal(sys.pagemap(p, a, 1)[0].pfn, pfn);
    assert.equal(sys.stats().used, used);
    teardown(sys);
  });

  it('grandchildren stay isolated from both ancestors', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE);
    writeOk(sys, p, a, Uint8Array.of(1));
    const c = sys.fork(p, 'c').child!;
    const g = sys.fork(c, 'g').child!;
    writeOk(sys, c, a, Uint8Array.of(2));
    writeOk(sys, g, a, Uint8Array.of(3));
    assert.deepEqual(
      [p, c, g].map((x) => readOk(sys, x, a, 1)[0]),
      [1, 2, 3],
    );
    assert.equal(sys.exit(c), 0);
    assert.deepEqual(
      [p, g].map((x) => readOk(sys, x, a, 1)[0]),
      [1, 3],
    );
    teardown(sys);
  });

  it('MAP_SHARED memory stays shared across fork in both directions', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_SHARED);
    writeOk(sys, p, a, Uint8Array.of(1));
    const { child } = sys.fork(p, 'c');
    writeOk(sys, child!, a, Uint8Array.of(2));
    assert.equal(readOk(sys, p, a, 1)[0], 2);
    writeOk(sys, p, a + PAGE, Uint8Array.of(3));
    assert.equal(readOk(sys, child!, a + PAGE, 1)[0], 3);
    assert.equal(sys.pagemap(p, a, 1)[0].pfn, sys.pagemap(child!, a, 1)[0].pfn);
    teardown(sys);
  });

  it('a shared memfd mapping stays shared; a private one of the same file is copied on write', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('f');
    assert.equal(sys.pwrite(fd, pattern(1, PAGE), 0), PAGE);
    const s = mapOk(sys, p, PAGE, MAP_SHARED, 3, fd);
    const v = mapOk(sys, p, PAGE, MAP_PRIVATE, 3, fd);
    writeOk(sys, p, v, Uint8Array.of(9));
    const { child } = sys.fork(p, 'c');
    writeOk(sys, child!, s, Uint8Array.of(8));
    writeOk(sys, child!, v, Uint8Array.of(7));
    assert.equal(readOk(sys, p, s, 1)[0], 8);
    assert.equal(readOk(sys, p, v, 1)[0], 9);
    assert.equal(sys.pread(fd, 1, 0).data[0], 8);
    teardown(sys);
  });

  it('zero-page mappings: each side gets its own page on write, the other still reads zeros', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    writeOk(sys, p, a + PAGE, Uint8Array.of(1)); // gives the VMA an anon_vma so fork copies tables
    readOk(sys, p, a, 1);
    assert.equal(sys.pagemap(p, a, 1)[0].kind, 'zero');
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.pagemap(child!, a, 1)[0].kind, 'zero');
    writeOk(sys, child!, a, Uint8Array.of(5));
    assert.equal(readOk(sys, p, a, 1)[0], 0);
    writeOk(sys, p, a, Uint8Array.of(6));
    assert.equal(readOk(sys, child!, a, 1)[0], 5);
    assert.notEqual(sys.pagemap(p, a, 1)[0].pfn, sys.pagemap(child!, a, 1)[0].pfn);
    teardown(sys);
  });

  it('THP (thp=always, PMD-aligned): fork shares the huge page; a write splits and copies one 4k page', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = mapOk(sys, p, 2 * HPAGE);
    assert.equal(a % HPAGE, 0);
    writeOk(sys, p, a, pattern(1, 2 * PAGE));
    assert.ok(sys.pagemap(p, a, 1)[0].thp);
    const head = sys.pagemap(p, a, 1)[0].pfn;
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.pagemap(child!, a, 1)[0].pfn, head);
    writeOk(sys, child!, a + PAGE, Uint8Array.of(0xcc));
    assert.deepEqual(readOk(sys, p, a, 2 * PAGE), pattern(1, 2 * PAGE));
    const c = readOk(sys, child!, a, 2 * PAGE);
    assert.equal(c[PAGE], 0xcc);
    assert.deepEqual(c.subarray(0, PAGE), pattern(1, 2 * PAGE).subarray(0, PAGE));
    assert.notEqual(sys.pagemap(child!, a + PAGE, 1)[0].pfn, head + 1);
    assert.equal(sys.pagemap(child!, a, 1)[0].pfn, head, 'untouched subpages stay shared');
    writeOk(sys, p, a, Uint8Array.of(0xdd));
    assert.equal(readOk(sys, child!, a, 1)[0], pattern(1, 1)[0]);
    teardown(sys);
  });

  it('THP via MADV_HUGEPAGE with thp=madvise behaves the same', () => {
    const { sys, p } = setup({ thp: 'madvise' });
    const a = mapOk(sys, p, 2 * HPAGE);
    assert.equal(sys.madvise(p, a, 2 * HPAGE, MADV.HUGEPAGE), 0);
    writeOk(sys, p, a + HPAGE, Uint8Array.of(1));
    assert.ok(sys.pagemap(p, a + HPAGE, 1)[0].thp);
    const { child } = sys.fork(p, 'c');
    writeOk(sys, child!, a + HPAGE, Uint8Array.of(2));
    assert.equal(readOk(sys, p, a + HPAGE, 1)[0], 1);
    assert.equal(readOk(sys, child!, a + HPAGE, 1)[0], 2);
    teardown(sys);
  });

  it('pages pinned with FOLL_PIN are copied for the child at fork time, so the pin keeps the parent page', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    tagPages(sys, p, a, 2, 40);
    const pfns: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_WRITE, pfns)), 1);
    assert.equal(pfns[0], sys.pagemap(p, a, 1)[0].pfn);
    const used = sys.stats().used;
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.stats().used, used + PAGE, 'exactly the pinned page is copied');
    const cp = sys.pagemap(child!, a, 2);
    assert.notEqual(cp[0].pfn, pfns[0], 'the child got a copy of the pinned page');
    assert.equal(cp[1].pfn, sys.pagemap(p, a + PAGE, 1)[0].pfn, 'the unpinned page is shared');
    assert.deepEqual(readTags(sys, child!, a, 2), expectedTags(2, 40));
    // The parent writes through its (still writable) PTE into the pinned page: the child never sees it.
    const before = sys.stats().used;
    writeOk(sys, p, a, Uint8Array.of(99));
    assert.equal(sys.stats().used, before, 'the pinned page was not COW-broken in the parent');
    assert.equal(sys.pagemap(p, a, 1)[0].pfn, pfns[0]);
    assert.equal(readOk(sys, child!, a, 1)[0], 40);
    unpinUserPages(sys, pfns, 1, true);
    teardown(sys);
  });

  it('a pinned THP is split at fork and every pinned subpage copied', () => {
    const { sys, p } = setup({ thp: 'always' });
    const a = mapOk(sys, p, 2 * HPAGE);
    writeOk(sys, p, a + 3 * PAGE, Uint8Array.of(3));
    const pfns: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_WRITE, pfns)), 1);
    const { child } = sys.fork(p, 'c');
    assert.notEqual(sys.pagemap(child!, a, 1)[0].pfn, pfns[0]);
    writeOk(sys, p, a + 3 * PAGE, Uint8Array.of(4));
    assert.equal(readOk(sys, child!, a + 3 * PAGE, 1)[0], 3);
    unpinUserPages(sys, pfns, 1, false);
    teardown(sys);
  });

  it('hugetlb private memory: fork shares the huge page and a write copies all of it', () => {
    const { sys, p } = setup({ hugetlbPages: 4 });
    const a = mapOk(sys, p, HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    writeOk(sys, p, a + 10 * PAGE, pattern(2, 8));
    const head = sys.pagemap(p, a, 1)[0].pfn;
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.pagemap(child!, a, 1)[0].pfn, head);
    writeOk(sys, child!, a, Uint8Array.of(1));
    const ch = sys.pagemap(child!, a, 1)[0].pfn;
    assert.notEqual(ch, head);
    assert.deepEqual(readOk(sys, child!, a + 10 * PAGE, 8), pattern(2, 8));
    assert.equal(readOk(sys, p, a, 1)[0], 0);
    teardown(sys);
  });

  it('fork of an exited process fails with ESRCH and creates nothing', () => {
    const { sys } = setup();
    const q = sys.createProcess('q');
    assert.equal(sys.exit(q), 0);
    const n = sys.processes.size;
    const r = sys.fork(q, 'x');
    assert.equal(r.ret, -Errno.ESRCH);
    assert.equal(r.child, null);
    assert.equal(sys.processes.size, n);
    teardown(sys);
  });

  it('fork failing in dup_mm (fault injection) returns ENOMEM and leaks nothing', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE);
    tagPages(sys, p, a, 2, 3);
    const used = sys.stats().used;
    sys.inject.failSite('dup_mm');
    assert.equal(sys.fork(p, 'c').ret, -Errno.ENOMEM);
    assert.equal(sys.stats().used, used);
    assert.equal(sys.processes.size, 1);
    // A failure half way through copying (the pinned page copy) tears the half-built mm down.
    const pfns: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_WRITE, pfns)), 1);
    sys.inject.failSite('fork_copy_page');
    assert.equal(sys.fork(p, 'c').ret, -Errno.ENOMEM);
    assert.equal(sys.stats().used, used);
    assertOracles(sys);
    writeOk(sys, p, a + PAGE, Uint8Array.of(1)); // parent still works (its page may have been write-protected)
    unpinUserPages(sys, pfns, 1, false);
    teardown(sys);
  });
});
