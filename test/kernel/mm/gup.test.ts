import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Errno } from '../../../src/kernel/errno.ts';
import { doFork } from '../../../src/kernel/fork.ts';
import {
  FOLL_GET,
  FOLL_LONGTERM,
  FOLL_PIN,
  FOLL_WRITE,
  getUserPagesFast,
  pinUserPagesFast,
  putUserPages,
  unpinUserPages,
} from '../../../src/kernel/mm/gup.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { PTE_WRITE } from '../../../src/kernel/mm/pgtable.ts';
import { schedPoint } from '../../../src/sched/locks.ts';
import type { Thread } from '../../../src/sched/thread.ts';
import { pteAt } from './hmm_testdev.ts';
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

describe('pin_user_pages_fast(): the lockless walk first (gup_fast)', () => {
  /** A thread that takes `p`'s mmap lock for writing and keeps it until stepped on. */
  function holdMmapLock(sys: System, p: Process): Thread {
    const mm = p.mm!;
    const t = sys.sched.spawn(
      'holder',
      (function* () {
        yield* mm.mmapLock.downWrite();
        yield* schedPoint('hold');
        yield* mm.mmapLock.upWrite();
      })(),
    );
    for (let k = 0; k < 20 && mm.mmapLock.writer !== t; k++) sys.sched.step(t);
    assert.equal(mm.mmapLock.writer, t);
    return t;
  }

  test('pages already mapped are pinned while another thread holds the mmap lock for writing', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_PRIVATE);
    writeOk(sys, p, a, pattern(1, 2 * PAGE));
    const holder = holdMmapLock(sys, p);
    const out: number[] = [];
    const pin = sys.sched.spawn('pin', pinUserPagesFast(p.mm!, a, 2, FOLL_WRITE | FOLL_LONGTERM, out));
    for (let k = 0; k < 20 && pin.state === 'runnable'; k++) sys.sched.step(pin);
    assert.equal(pin.state, 'done', 'the pin did not wait for the mmap lock');
    assert.equal(pin.result, 2);
    assert.deepEqual(out, [pfnAt(sys, p, a), pfnAt(sys, p, a + PAGE)]);
    sys.sched.runAll();
    assert.equal(holder.state, 'done');
    unpinUserPages(sys, out, 2, true);
    teardown(sys);
  });

  test('the pages after the first it cannot take are pinned the slow way, under the mmap lock', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_PRIVATE);
    writeOk(sys, p, a, pattern(2, PAGE));
    // The second page was never touched: nothing is mapped there yet.
    const holder = holdMmapLock(sys, p);
    const out: number[] = [];
    const pin = sys.sched.spawn('pin', pinUserPagesFast(p.mm!, a, 2, FOLL_WRITE | FOLL_LONGTERM, out));
    for (let k = 0; k < 20 && pin.state === 'runnable'; k++) sys.sched.step(pin);
    assert.equal(pin.state, 'blocked', 'the slow path waits for the mmap lock');
    assert.equal(out[0], pfnAt(sys, p, a), 'the first page is pinned already');
    assert.equal(sys.phys.pinCount(out[0]), 1);
    sys.sched.runAll();
    assert.equal(holder.state, 'done');
    assert.equal(pin.result, 2);
    assert.equal(out[1], pfnAt(sys, p, a + PAGE), 'the fault mapped the second page and it was pinned');
    unpinUserPages(sys, out, 2, true);
    teardown(sys);
  });

  test('a page taken by the walk is marked referenced, not activated as the slow way does', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE, ANON_PRIVATE);
    writeOk(sys, p, a, pattern(3, PAGE));
    const pfn = pfnAt(sys, p, a);
    sys.phys.flags[pfn] &= ~(PG.referenced | PG.active);
    for (let i = 0; i < 3; i++) {
      const out: number[] = [];
      assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_WRITE, out)), 1);
      assert.equal(out[0], pfn);
      unpinUserPages(sys, out, 1, false);
    }
    assert.notEqual(sys.phys.flags[pfn] & PG.referenced, 0);
    assert.equal(sys.phys.flags[pfn] & PG.active, 0, 'folio_set_referenced(), not folio_mark_accessed()');
    teardown(sys);
  });

  test('while fork() write-protects the mapping, a pin leaves the walk and waits for fork', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE, ANON_PRIVATE);
    writeOk(sys, p, a, pattern(4, PAGE));
    const mm = p.mm!;
    const before = pfnAt(sys, p, a);
    const fork = sys.sched.spawn('fork', doFork(sys, p, 'child'));
    for (let k = 0; k < 200 && (mm.writeProtectSeq & 1) === 0; k++) sys.sched.step(fork);
    assert.equal(mm.writeProtectSeq & 1, 1, 'fork is inside copy_page_range()');
    assert.notEqual(pteAt(mm, a)[0] & PTE_WRITE, 0, 'the entry is still writable');
    const out: number[] = [];
    const pin = sys.sched.spawn('pin', pinUserPagesFast(mm, a, 1, FOLL_WRITE | FOLL_LONGTERM, out));
    for (let k = 0; k < 20 && pin.state === 'runnable'; k++) sys.sched.step(pin);
    assert.equal(pin.state, 'blocked', 'it gave up the walk and waits for the mmap lock');
    assert.equal(sys.phys.pinCount(before), 0, 'nothing was pinned meanwhile');
    sys.sched.runAll();
    const { child } = fork.result as { ret: number; child: Process | null };
    assert.ok(child !== null);
    assert.equal(pin.result, 1);
    // The write pin came after fork: its fault gave the parent a copy, and the child keeps the page.
    assert.equal(pfnAt(sys, child, a), before);
    assert.equal(out[0], pfnAt(sys, p, a));
    assert.notEqual(out[0], before);
    unpinUserPages(sys, out, 1, true);
    teardown(sys);
  });

  test('a pin that asks for FOLL_GET is refused (-EINVAL) and an unaligned start is rounded down', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE, ANON_PRIVATE);
    writeOk(sys, p, a, pattern(5, PAGE));
    const out: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, FOLL_GET, out)), -Errno.EINVAL);
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a + 100, 1, 0, out)), 1);
    assert.equal(out[0], pfnAt(sys, p, a));
    unpinUserPages(sys, out, 1, false);
    teardown(sys);
  });

  test('get_user_pages_fast() takes references, not pins, and takes a page shared with a fork child as it is', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE, ANON_PRIVATE);
    writeOk(sys, p, a, pattern(6, PAGE));
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    const shared = pfnAt(sys, p, a);
    const refs = sys.phys.refcount[shared];
    const got: number[] = [];
    assert.equal(sys.run('get', getUserPagesFast(p.mm!, a, 1, 0, got)), 1);
    assert.equal(got[0], shared, 'a reference needs no exclusive page');
    assert.equal(sys.phys.refcount[shared], refs + 1);
    assert.equal(sys.phys.pinCount(shared), 0);
    putUserPages(sys, got, 1);
    // A read pin of the same page must not share it: it goes the slow way and unshares.
    const pinned: number[] = [];
    assert.equal(sys.run('pin', pinUserPagesFast(p.mm!, a, 1, 0, pinned)), 1);
    assert.notEqual(pinned[0], shared);
    assert.equal(pfnAt(sys, child, a), shared);
    unpinUserPages(sys, pinned, 1, false);
    for (const bad of [FOLL_PIN, FOLL_LONGTERM])
      assert.equal(sys.run('get', getUserPagesFast(p.mm!, a, 1, bad, got)), -Errno.EINVAL);
    teardown(sys);
  });
});
