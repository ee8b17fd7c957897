import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { System } from '../../src/kernel/system.ts';
import type { MmStruct } from '../../src/kernel/mm/mm_types.ts';
import {
  MMU_NOTIFY,
  MmuIntervalNotifier,
  MmuNotifier,
  type MmuIntervalNotifierOps,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalSetSeq,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierInvalidateRangeStartNonblock,
  mmuNotifierRangeBlockable,
  mmuNotifierRangeInit,
  mmuNotifierRegister,
} from '../../src/kernel/mm/mmu_notifier.ts';
import { checkLocks } from '../../src/oracles/locks.ts';
import { Mutex } from '../../src/sched/locks.ts';
import type { KGen } from '../../src/sched/types.ts';

const PAGE = 4096;

function setup(): { sys: System; mm: MmStruct } {
  const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
  return { sys, mm: sys.createProcess('p').mm! };
}

function* invalidate(mm: MmStruct, start: number, end: number): KGen {
  const r = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, start, end);
  yield* mmuNotifierInvalidateRangeStart(r);
  yield* mmuNotifierInvalidateRangeEnd(r);
}

/** An interval subscriber whose invalidate takes `first` then `second`. */
function nestedLockOps(first: Mutex, second: Mutex): MmuIntervalNotifierOps {
  return {
    *invalidate(sub, _range, cur) {
      yield* first.lock();
      yield* second.lock();
      mmuIntervalSetSeq(sub, cur);
      yield* second.unlock();
      yield* first.unlock();
      return true;
    },
  };
}

void describe('checkLocks', () => {
  void it('is empty for a run that respects one lock order', () => {
    const { sys, mm } = setup();
    const a = new Mutex(sys.sched, 'A');
    const b = new Mutex(sys.sched, 'B');
    const sub = new MmuIntervalNotifier();
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(sub, mm, 0, PAGE, nestedLockOps(a, b))), 0);
    sys.run('cpu', invalidate(mm, 0, PAGE));
    sys.run(
      'driver',
      (function* () {
        yield* a.lock();
        yield* b.lock();
        yield* b.unlock();
        yield* a.unlock();
      })(),
    );
    assert.deepEqual(checkLocks(sys), []);
  });

  void it('reports a subscriber taking A then B while another path takes B then A', () => {
    const { sys, mm } = setup();
    const a = new Mutex(sys.sched, 'A');
    const b = new Mutex(sys.sched, 'B');
    const sub = new MmuIntervalNotifier();
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(sub, mm, 0, PAGE, nestedLockOps(a, b))), 0);
    sys.run('cpu', invalidate(mm, 0, PAGE));
    assert.deepEqual(checkLocks(sys), [], 'one order alone is fine');
    // The two paths never run at the same time here: lockdep still sees the inversion.
    sys.run(
      'driver',
      (function* () {
        yield* b.lock();
        yield* a.lock();
        yield* a.unlock();
        yield* b.unlock();
      })(),
    );
    const v = checkLocks(sys);
    assert.equal(v.length, 1);
    assert.match(v[0].message, /lock order cycle/);
    assert.match(v[0].message, /\bA\b/);
    assert.match(v[0].message, /\bB\b/);
    assert.equal(v[0].thread, 'driver');
  });

  void it('reports removing an interval notifier while holding a lock its callback takes', () => {
    const { sys, mm } = setup();
    const userLock = new Mutex(sys.sched, 'user_lock');
    const sub = new MmuIntervalNotifier();
    const ops: MmuIntervalNotifierOps = {
      *invalidate(s, _range, cur) {
        yield* userLock.lock();
        mmuIntervalSetSeq(s, cur);
        yield* userLock.unlock();
        return true;
      },
    };
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(sub, mm, 0, PAGE, ops)), 0);
    sys.run('cpu', invalidate(mm, 0, PAGE));
    sys.run(
      'driver',
      (function* () {
        yield* userLock.lock();
        yield* mmuIntervalNotifierRemove(sub); // may wait for callbacks that take user_lock
        yield* userLock.unlock();
      })(),
    );
    const v = checkLocks(sys);
    assert.equal(v.length, 1);
    assert.match(v[0].message, /lock order cycle/);
    assert.match(v[0].message, /mmu_notifier_invalidate_range_start/);
  });

  void it('reports a subscriber that sleeps (Mutex.lock) inside a non-blockable invalidation', () => {
    const { sys, mm } = setup();
    const devLock = new Mutex(sys.sched, 'dev_lock');
    const sub = new MmuNotifier({
      *invalidateRangeStart() {
        yield* devLock.lock(); // should have been a trylock returning -EAGAIN
        yield* devLock.unlock();
        return 0;
      },
    });
    assert.equal(sys.run('reg', mmuNotifierRegister(sub, mm)), 0);
    sys.run('cpu', invalidate(mm, 0, PAGE));
    assert.deepEqual(checkLocks(sys), [], 'sleeping in a blockable invalidation is allowed');
    const ret = sys.run(
      'oom_reaper',
      mmuNotifierInvalidateRangeStartNonblock(mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, PAGE)),
    );
    assert.equal(ret, 0);
    const v = checkLocks(sys);
    assert.equal(v.length, 1);
    assert.match(v[0].message, /mutex_lock\(dev_lock\) may sleep inside a non-blockable invalidation/);
    assert.equal(v[0].thread, 'oom_reaper');
  });

  void it('accepts an interval subscriber that uses trylock when it may not block', () => {
    const { sys, mm } = setup();
    const userLock = new Mutex(sys.sched, 'user_lock');
    const sub = new MmuIntervalNotifier();
    const ops: MmuIntervalNotifierOps = {
      *invalidate(s, range, cur) {
        if (mmuNotifierRangeBlockable(range)) yield* userLock.lock();
        else if (!(yield* userLock.trylock())) return false;
        mmuIntervalSetSeq(s, cur);
        yield* userLock.unlock();
        return true;
      },
    };
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(sub, mm, 0, PAGE, ops)), 0);
    const ret = sys.run(
      'oom_reaper',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, PAGE);
        const ret = yield* mmuNotifierInvalidateRangeStartNonblock(r);
        if (ret === 0) yield* mmuNotifierInvalidateRangeEnd(r);
        return ret;
      })(),
    );
    assert.equal(ret, 0);
    assert.deepEqual(checkLocks(sys), []);
  });

  void it('reports a thread that finished with a lock held', () => {
    const { sys } = setup();
    const m = new Mutex(sys.sched, 'leaked');
    const other = sys.sched.spawn(
      'other',
      (function* () {
        yield* m.lock();
      })(),
    );
    sys.sched.runAll();
    assert.equal(other.done, true);
    const v = checkLocks(sys);
    assert.equal(v.length, 1);
    assert.match(v[0].message, /other finished holding leaked/);
  });
});
