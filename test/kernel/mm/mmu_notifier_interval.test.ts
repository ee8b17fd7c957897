import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { System } from '../../../src/kernel/system.ts';
import { Errno } from '../../../src/kernel/errno.ts';
import type { MmStruct } from '../../../src/kernel/mm/mm_types.ts';
import {
  MMU_NOTIFY,
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
  type MmuNotifierRange,
  type MmuNotifierSubscriptions,
  mmuIntervalCheckRetry,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from '../../../src/kernel/mm/mmu_notifier.ts';
import { ULONG_MAX } from '../../../src/lib/units.ts';
import { Completion, Mutex } from '../../../src/sched/locks.ts';
import type { Thread } from '../../../src/sched/thread.ts';
import type { KGen } from '../../../src/sched/types.ts';

const PAGE = 4096;

function setup(): { sys: System; mm: MmStruct } {
  const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
  const p = sys.createProcess('p');
  return { sys, mm: p.mm! };
}

/** A mirror in the style of lib/test_hmm.c: invalidate() takes the driver lock and sets the seq. */
class Mirror extends MmuIntervalNotifier {
  readonly seen: { event: number; start: number; end: number; curSeq: number }[] = [];
  constructor(
    readonly name: string,
    readonly userLock: Mutex,
  ) {
    super();
  }
}

const mirrorOps: MmuIntervalNotifierOps<Mirror> = {
  *invalidate(m, range, curSeq) {
    yield* m.userLock.lock();
    mmuIntervalSetSeq(m, curSeq);
    m.seen.push({ event: range.event, start: range.start, end: range.end, curSeq });
    yield* m.userLock.unlock();
    return true;
  },
};

function* insert(sub: Mirror, mm: MmStruct, start: number, length: number): KGen {
  const ret = yield* mmuIntervalNotifierInsert(sub, mm, start, length, mirrorOps);
  assert.equal(ret, 0);
}

function unmap(mm: MmStruct, start: number, end: number): MmuNotifierRange {
  return mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, start, end);
}

/** Steps `t` alone until `cond` holds: a scripted interleaving, one phase at a time. */
function stepUntil(t: Thread, sys: System, cond: () => boolean, max = 10_000): void {
  for (let n = 0; !cond(); n++) {
    if (t.state !== 'runnable') throw new Error(`${t.name} cannot run (${t.state}) before its phase ended`);
    if (n >= max) throw new Error(`${t.name}: phase did not end`);
    sys.sched.step(t);
  }
}

/** A thread that starts invalidating `r`, then waits at `gate` before it ends the range. */
interface GatedInvalidation {
  readonly thread: Thread;
  readonly gate: Completion;
  /** invalidate_range_start() has returned. */
  readonly started: () => boolean;
}

function gatedInvalidation(sys: System, name: string, r: MmuNotifierRange): GatedInvalidation {
  const gate = new Completion(sys.sched, `${name}.gate`);
  let started = false;
  const thread = sys.sched.spawn(
    name,
    (function* () {
      yield* mmuNotifierInvalidateRangeStart(r);
      started = true;
      yield* gate.wait();
      yield* mmuNotifierInvalidateRangeEnd(r);
    })(),
  );
  // Started: inside the invalidation and asleep on the gate (wait_for_completion() has a point of
  // its own before it sleeps).
  return { thread, gate, started: () => started && thread.state === 'blocked' };
}

function noViolations(sys: System): void {
  assert.deepEqual(sys.sched.violations, []);
}

function subsOf(mm: MmStruct): MmuNotifierSubscriptions {
  const s = mm.notifierSubscriptions;
  assert.ok(s !== null);
  return s;
}

void describe('mmu_interval_notifier sequence state machine', () => {
  void it('goes idle(2) -> fully excluded(3, shared by nested ranges) -> idle(4)', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    sys.run('insert', insert(a, mm, 0x10000, 4 * PAGE));
    const subs = subsOf(mm);
    assert.equal(subs.invalidateSeq, 2, 'idle seq is even and starts at 2');
    assert.equal(subs.activeInvalidateRanges, 0);
    assert.equal(a.invalidateSeq, 1, 'inserted while idle: odd and different from the current seq');
    assert.equal(subs.intervals()[0], a);

    const states: [string, number, number][] = [];
    const snap = (what: string): void => {
      states.push([what, subs.invalidateSeq, subs.activeInvalidateRanges]);
    };
    sys.run(
      'cpu',
      (function* () {
        const outer = unmap(mm, 0x11000, 0x12000);
        yield* mmuNotifierInvalidateRangeStart(outer);
        snap('outer started');
        const inner = unmap(mm, 0x10000, 0x20000);
        yield* mmuNotifierInvalidateRangeStart(inner);
        snap('inner started');
        yield* mmuNotifierInvalidateRangeEnd(inner);
        snap('inner ended');
        yield* mmuNotifierInvalidateRangeEnd(outer);
        snap('outer ended');
      })(),
    );
    assert.deepEqual(states, [
      ['outer started', 3, 1],
      ['inner started', 3, 2],
      ['inner ended', 3, 1],
      ['outer ended', 4, 0],
    ]);
    assert.deepEqual(
      a.seen.map((s) => s.curSeq),
      [3, 3],
      'nested invalidations share one cur_seq',
    );
    assert.equal(a.invalidateSeq, 3);
    assert.equal(a.seen[0].start, 0x11000);
    assert.equal(a.seen[0].end, 0x12000);
    noViolations(sys);
  });

  void it('an invalidation that hits no interval keeps the seq even and never blocks readers', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    sys.run('insert', insert(a, mm, 0x10000, PAGE));
    const subs = subsOf(mm);
    let readerSeq = -1;
    const g = gatedInvalidation(sys, 'inv', unmap(mm, 0x20000, 0x30000)); // [0x10000, 0x10fff] is not in it
    const inv = g.thread;
    const reader = sys.sched.spawn(
      'reader',
      (function* () {
        readerSeq = yield* mmuIntervalReadBegin(a);
      })(),
    );
    stepUntil(inv, sys, g.started);
    assert.equal(subs.activeInvalidateRanges, 1, 'partially excluded: a range is active');
    assert.equal(subs.invalidateSeq, 2, '... but the seq stays even');
    stepUntil(reader, sys, () => reader.done);
    assert.equal(readerSeq, 1, 'read_begin returned without waiting for the range to end');
    assert.equal(inv.state, 'blocked', 'the invalidation is still in progress');
    g.gate.complete();
    sys.sched.runAll();
    assert.equal(subs.invalidateSeq, 2);
    assert.equal(subs.activeInvalidateRanges, 0);
    assert.equal(a.seen.length, 0, 'the interval callback never ran');
    assert.equal(mmuIntervalReadRetry(a, readerSeq), false);
    noViolations(sys);
  });

  void it('read_begin sleeps only for a subscriber already told about the current exclusion', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    const b = new Mirror('b', new Mutex(sys.sched, 'b.lock'));
    sys.run('insert', insert(a, mm, 0x10000, PAGE));
    sys.run('insert', insert(b, mm, 0x40000, PAGE));
    const subs = subsOf(mm);
    const g = gatedInvalidation(sys, 'inv', unmap(mm, 0x10000, 0x11000)); // hits a only
    const inv = g.thread;
    let seqA = -1;
    let seqB = -1;
    const readA = sys.sched.spawn(
      'readA',
      (function* () {
        seqA = yield* mmuIntervalReadBegin(a);
      })(),
    );
    const readB = sys.sched.spawn(
      'readB',
      (function* () {
        seqB = yield* mmuIntervalReadBegin(b);
      })(),
    );

    stepUntil(inv, sys, g.started);
    assert.equal(subs.invalidateSeq, 3, 'fully excluded');
    assert.equal(a.invalidateSeq, 3, 'a was told the current epoch');
    assert.equal(b.invalidateSeq, 1, 'b was not');

    stepUntil(readB, sys, () => readB.done);
    assert.equal(seqB, 1, 'b is outside the range: no sleep even though the seq is odd');

    stepUntil(readA, sys, () => readA.state === 'blocked');
    assert.equal(seqA, -1, 'a sleeps until the exclusion ends');

    g.gate.complete();
    stepUntil(inv, sys, () => inv.done);
    assert.equal(subs.invalidateSeq, 4);
    assert.equal(readA.state, 'runnable', 'the final inv_end woke the reader');
    sys.sched.runAll();
    assert.equal(seqA, 3);
    assert.equal(mmuIntervalReadRetry(a, seqA), false, 'no invalidation after the wait');
    assert.equal(mmuIntervalReadRetry(b, seqB), false);
    noViolations(sys);
  });

  void it('read_retry catches a whole start/end cycle between read_begin and the check', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    sys.run('insert', insert(a, mm, 0x10000, 2 * PAGE));
    const subs = subsOf(mm);
    const seq = sys.run('read', mmuIntervalReadBegin(a));
    assert.equal(seq, 1);
    assert.equal(mmuIntervalReadRetry(a, seq), false);
    sys.run(
      'inv',
      (function* () {
        const r = unmap(mm, 0x11000, 0x12000);
        yield* mmuNotifierInvalidateRangeStart(r);
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    assert.equal(subs.invalidateSeq, 4, 'idle again: a boolean "valid" flag would have missed it');
    assert.equal(mmuIntervalCheckRetry(a, seq), true);
    assert.equal(mmuIntervalReadRetry(a, seq), true);
    const again = sys.run('read', mmuIntervalReadBegin(a));
    assert.equal(again, 3);
    assert.equal(mmuIntervalReadRetry(a, again), false);
    noViolations(sys);
  });

  void it('an insert during a partial exclusion makes the seq odd and its readers wait for the end', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    sys.run('insert', insert(a, mm, 0x10000, PAGE));
    const subs = subsOf(mm);
    const g = gatedInvalidation(sys, 'inv', unmap(mm, 0x80000, 0x90000));
    const inv = g.thread;
    stepUntil(inv, sys, g.started);
    assert.equal(subs.invalidateSeq, 2);
    const b = new Mirror('b', new Mutex(sys.sched, 'b.lock'));
    let inserted = false;
    let seqB = -1;
    const ins = sys.sched.spawn(
      'ins',
      (function* () {
        yield* insert(b, mm, 0x80000, PAGE);
        inserted = true;
        seqB = yield* mmuIntervalReadBegin(b);
      })(),
    );
    stepUntil(ins, sys, () => inserted);
    assert.equal(subs.invalidateSeq, 3, 'the unknown in-flight range may cover b: exclusion begins');
    assert.ok(b.node !== null, 'the tree was not frozen, so b is linked at once');
    assert.equal(b.invalidateSeq, 3);
    stepUntil(ins, sys, () => ins.state === 'blocked');
    g.gate.complete();
    sys.sched.runAll();
    assert.equal(subs.invalidateSeq, 4);
    assert.equal(seqB, 3);
    assert.equal(b.seen.length, 0, 'the range started before b existed: b is not called');
    noViolations(sys);
  });
});

void describe('deferred insert and remove', () => {
  void it('are applied at the last inv_end; remove waits; readers retry or wait', () => {
    const { sys, mm } = setup();
    const old = new Mirror('old', new Mutex(sys.sched, 'old.lock'));
    sys.run('insert', insert(old, mm, 0x10000, 4 * PAGE));
    const subs = subsOf(mm);
    const fresh = new Mirror('fresh', new Mutex(sys.sched, 'fresh.lock'));

    // A reader of `old` starts before any invalidation and checks after all of them.
    const readerGate = new Completion(sys.sched, 'readerGate');
    let oldSeq = -1;
    let oldRetry: boolean | null = null;
    const reader = sys.sched.spawn(
      'reader',
      (function* () {
        oldSeq = yield* mmuIntervalReadBegin(old);
        yield* readerGate.wait();
        yield* old.userLock.lock();
        oldRetry = mmuIntervalReadRetry(old, oldSeq);
        yield* old.userLock.unlock();
      })(),
    );
    stepUntil(reader, sys, () => reader.state === 'blocked');
    assert.equal(oldSeq, 1);

    // Two overlapping invalidations: inv1 hits `old`, inv2 hits nothing; inv1 ends first.
    const g1 = gatedInvalidation(sys, 'inv1', unmap(mm, 0x10000, 0x20000));
    const g2 = gatedInvalidation(sys, 'inv2', unmap(mm, 0x900000, 0x901000));
    const [inv1, inv2, gate1, gate2] = [g1.thread, g2.thread, g1.gate, g2.gate];
    stepUntil(inv1, sys, g1.started);
    stepUntil(inv2, sys, g2.started);
    assert.equal(subs.invalidateSeq, 3);
    assert.equal(subs.activeInvalidateRanges, 2);

    // Insert `fresh` (same interval as `old`) and remove `old` during the exclusion.
    let insertRet = -1;
    let freshSeq = -1;
    const ins = sys.sched.spawn(
      'ins',
      (function* () {
        insertRet = yield* mmuIntervalNotifierInsert(fresh, mm, 0x10000, 4 * PAGE, mirrorOps);
        freshSeq = yield* mmuIntervalReadBegin(fresh);
      })(),
    );
    let removed = false;
    const rem = sys.sched.spawn(
      'rem',
      (function* () {
        yield* mmuIntervalNotifierRemove(old);
        removed = true;
      })(),
    );
    stepUntil(ins, sys, () => insertRet === 0);
    assert.equal(fresh.node, null, 'the tree is frozen: the insert is deferred');
    assert.equal(fresh.invalidateSeq, 3, 'its seq equals the current odd seq');
    stepUntil(ins, sys, () => ins.state === 'blocked');
    assert.equal(freshSeq, -1, 'a reader of the deferred subscriber waits for the exclusion to end');
    stepUntil(rem, sys, () => rem.state === 'blocked');
    assert.equal(removed, false, 'remove waits for the exclusion to end');

    const tree = (): string[] => subs.intervals().map((s) => (s instanceof Mirror ? s.name : '?'));
    assert.deepEqual(tree(), ['old']);
    assert.deepEqual(
      subs.deferredList.map((s) => (s instanceof Mirror ? s.name : '?')),
      ['old', 'fresh'],
    );

    // inv1 ends, but inv2 is still active: nothing is applied yet.
    gate1.complete();
    stepUntil(inv1, sys, () => inv1.done);
    assert.equal(subs.invalidateSeq, 3);
    assert.equal(subs.activeInvalidateRanges, 1);
    assert.deepEqual(tree(), ['old']);
    assert.equal(rem.state, 'blocked');
    assert.equal(ins.state, 'blocked');

    // The last inv_end applies both changes and wakes everyone.
    gate2.complete();
    stepUntil(inv2, sys, () => inv2.done);
    assert.equal(subs.invalidateSeq, 4);
    assert.deepEqual(tree(), ['fresh']);
    assert.equal(subs.deferredList.length, 0);
    assert.equal(rem.state, 'runnable');
    assert.equal(ins.state, 'runnable');

    readerGate.complete();
    sys.sched.runAll();
    assert.equal(removed, true);
    assert.equal(old.node, null);
    assert.equal(freshSeq, 3);
    assert.equal(mmuIntervalReadRetry(fresh, freshSeq), false);
    assert.equal(oldRetry, true, 'the reader of old saw that an invalidation collided');
    assert.deepEqual(
      old.seen.map((s) => s.curSeq),
      [3],
    );
    noViolations(sys);
  });

  void it('a subscriber inserted and removed within one exclusion never reaches the tree', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    sys.run('insert', insert(a, mm, 0x10000, PAGE));
    const subs = subsOf(mm);
    const before = mm.mmCount;
    const b = new Mirror('b', new Mutex(sys.sched, 'b.lock'));
    sys.run(
      'cpu',
      (function* () {
        const r = unmap(mm, 0, 0x100000);
        yield* mmuNotifierInvalidateRangeStart(r);
        yield* insert(b, mm, 0x50000, PAGE);
        assert.deepEqual(subs.deferredList, [b]);
        // Not linked yet, so removal needs no wait (it would deadlock on our own range otherwise).
        yield* mmuIntervalNotifierRemove(b);
        assert.deepEqual(subs.deferredList, []);
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    assert.deepEqual(subs.intervals(), [a]);
    assert.equal(mm.mmCount, before, 'insert grabbed the mm and remove dropped it');
    noViolations(sys);
  });
});

void describe('mmu_interval_notifier_insert errors', () => {
  void it('-EOVERFLOW for an empty or wrapping interval', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(a, mm, 0x1000, 0, mirrorOps)), -Errno.EOVERFLOW);
    const top = 2 ** 64 - PAGE;
    assert.equal(
      sys.run('ins', mmuIntervalNotifierInsert(a, mm, top, 2 * PAGE, mirrorOps)),
      -Errno.EOVERFLOW,
    );
    assert.equal(a.node, null);
    // The last page of the address space is fine: last == ULONG_MAX.
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(a, mm, top, PAGE, mirrorOps)), 0);
    assert.equal(a.last, ULONG_MAX);
    assert.ok(a.node !== null);
  });

  void it('-EINVAL when the mm has no users left, with a WARN', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    sys.run('insert', insert(a, mm, 0x10000, PAGE));
    const count = mm.mmCount;
    mm.mmUsers = 0;
    const b = new Mirror('b', new Mutex(sys.sched, 'b.lock'));
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(b, mm, 0x20000, PAGE, mirrorOps)), -Errno.EINVAL);
    assert.equal(b.node, null);
    assert.equal(mm.mmCount, count, 'no mmgrab on failure');
    assert.ok(sys.sched.violations.some((v) => v.oracle === 'warn' && /mm_users/.test(v.message)));
  });

  void it('-EINVAL for invalidate_start without invalidate_finish, with a WARN', () => {
    const { sys, mm } = setup();
    const a = new MmuIntervalNotifier();
    const ops: MmuIntervalNotifierOps = {
      *invalidateStart() {
        return { ok: true };
      },
    };
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(a, mm, 0x10000, PAGE, ops)), -Errno.EINVAL);
    assert.equal(mm.notifierSubscriptions, null, 'rejected before anything was set up');
    assert.ok(sys.sched.violations.some((v) => v.oracle === 'warn' && /invalidate_finish/.test(v.message)));
  });

  void it('-ENOMEM when the subscriptions cannot be allocated', () => {
    const { sys, mm } = setup();
    const a = new Mirror('a', new Mutex(sys.sched, 'a.lock'));
    sys.inject.failSite('mmu_notifier_subscriptions');
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(a, mm, 0x10000, PAGE, mirrorOps)), -Errno.ENOMEM);
    assert.equal(mm.notifierSubscriptions, null);
    assert.equal(mm.mmapLock.isLocked(), false, 'the mmap lock was released on the error path');
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(a, mm, 0x10000, PAGE, mirrorOps)), 0);
  });
});
