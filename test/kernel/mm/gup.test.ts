import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FOLL_LONGTERM, FOLL_WRITE, pinUserPagesFast, unpinUserPages } from '../../../src/kernel/mm/gup.ts';
import { MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/kernel/mm/mman.ts';
import { PG } from '../../../src/kernel/mm/page_alloc.ts';
import { ANON_PRIVATE, PAGE, mapOk, pattern, readOk, setup, teardown, writeOk } from './mm_helpers.ts';

/** The PFN a process' page table maps at `addr` (pagemap), or -1. */
function pfnAt(sys: ReturnType<typeof setup>['sys'], p: ReturnType<typeof setup>['p'], addr: number): number {
  const [e] = sys.pagemap(p, addr, 1);
  return e.present ? e.pfn : -1;
}

describe('GUP unsharing (gup_must_unshare)', () => {
  test('a read-only long-term pin of a page shared with a fork child gets an exclusive copy', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE);
    writeOk(sys, p, a, pattern(1, PAGE));
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    const shared = pfnAt(sys, p, a);
    assert.equal(pfnAt(sys, child, a), shared, 'fork shares the page');
    const out: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_LONGTERM, out)), 1);
    assert.notEqual(out[0], shared, 'the pin does not land on the page the child still maps');
    assert.equal(pfnAt(sys, p, a), out[0], 'the parent now maps the pinned copy');
    assert.ok((sys.phys.flags[out[0]] & PG.anonExclusive) !== 0);
    assert.deepEqual(readOk(sys, p, a, PAGE), pattern(1, PAGE));
    // A later write by the parent must land in the pinned page, not a new COW copy.
    writeOk(sys, p, a, pattern(2, PAGE));
    assert.equal(pfnAt(sys, p, a), out[0]);
    assert.deepEqual(readOk(sys, child, a, PAGE), pattern(1, PAGE), 'the child keeps the old data');
    unpinUserPages(sys, out, 1, false);
    sys.exit(child);
    sys.exit(p);
    teardown(sys);
  });

  test('a read-only long-term pin of a private file mapping replaces the page-cache page (ro_unshare)', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('file');
    assert.equal(sys.pwrite(fd, pattern(3, PAGE), 0), PAGE);
    const a = mapOk(sys, p, PAGE, MAP_PRIVATE, PROT_READ | PROT_WRITE, fd, 0);
    assert.deepEqual(readOk(sys, p, a, PAGE), pattern(3, PAGE));
    const cachePfn = pfnAt(sys, p, a);
    const out: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_LONGTERM, out)), 1);
    assert.notEqual(out[0], cachePfn, 'the pin is on an anonymous copy, not the page cache');
    assert.ok((sys.phys.flags[out[0]] & PG.anon) !== 0);
    writeOk(sys, p, a, pattern(4, PAGE));
    assert.equal(pfnAt(sys, p, a), out[0], 'writing after the pin keeps the pinned PFN');
    assert.deepEqual(sys.pread(fd, PAGE, 0).data, pattern(3, PAGE), 'the file is untouched');
    unpinUserPages(sys, out, 1, false);
    sys.exit(p);
    sys.close(fd);
    teardown(sys);
  });

  test('a long-term pin of the zero page is replaced by an exclusive zeroed page', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE, ANON_PRIVATE);
    assert.deepEqual(readOk(sys, p, a, 8), new Uint8Array(8));
    assert.equal(sys.pagemap(p, a, 1)[0].kind, 'zero');
    const out: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_LONGTERM, out)), 1);
    assert.equal(sys.pagemap(p, a, 1)[0].kind, 'ram');
    assert.equal(pfnAt(sys, p, a), out[0]);
    writeOk(sys, p, a, pattern(5, PAGE));
    assert.equal(pfnAt(sys, p, a), out[0], 'the write reuses the exclusive page');
    unpinUserPages(sys, out, 1, true);
    sys.exit(p);
    teardown(sys);
  });

  test('a writable pin of a read-only mapping fails with EFAULT', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE, ANON_PRIVATE, PROT_READ);
    const out: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_LONGTERM | FOLL_WRITE, out)), -14);
    sys.exit(p);
    teardown(sys);
  });
});
