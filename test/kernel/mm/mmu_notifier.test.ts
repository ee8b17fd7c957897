import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { System } from '../../../src/kernel/system.ts';
import { Errno, ModelBug } from '../../../src/kernel/errno.ts';
import type { MmStruct } from '../../../src/kernel/mm/mm_types.ts';
import {
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  MMU_NOTIFY,
  MmuIntervalNotifier,
  MmuNotifier,
  type MmuIntervalNotifierOps,
  type MmuNotifierOps,
  type MmuNotifierRange,
  UINT_MAX,
  mmHasNotifiers,
  mmdrop,
  mmuIntervalNotifierInsert,
  mmuIntervalSetSeq,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierClearFlushYoung,
  mmuNotifierClearYoung,
  mmuNotifierGet,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierInvalidateRangeStartNonblock,
  mmuNotifierPut,
  mmuNotifierRangeBlockable,
  mmuNotifierRangeInit,
  mmuNotifierRangeInitOwner,
  mmuNotifierRegister,
  __mmuNotifierRegister,
  mmuNotifierRelease,
  mmuNotifierSynchronize,
  mmuNotifierTestYoung,
  mmuNotifierUnregister,
} from '../../../src/kernel/mm/mmu_notifier.ts';
import { ULONG_MAX } from '../../../src/lib/units.ts';
import { Completion } from '../../../src/sched/locks.ts';
import type { Thread } from '../../../src/sched/thread.ts';

const PAGE = 4096;

function setup(): { sys: System; mm: MmStruct } {
  const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
  const p = sys.createProcess('p');
  return { sys, mm: p.mm! };
}

function stepUntil(t: Thread, sys: System, cond: () => boolean, max = 10_000): void {
  for (let n = 0; !cond(); n++) {
    if (t.state !== 'runnable') throw new Error(`${t.name} cannot run (${t.state}) before its phase ended`);
    if (n >= max) throw new Error(`${t.name}: phase did not end`);
    sys.sched.step(t);
  }
}

function warnings(sys: System): string[] {
  return sys.sched.violations.filter((v) => v.oracle === 'warn').map((v) => v.message);
}

/** A whole-mm subscriber that logs every callback, optionally failing or blocking its start. */
function loggingOps(
  name: string,
  log: string[],
  opts: { fail?: number; noEnd?: boolean; gate?: Completion } = {},
): MmuNotifierOps {
  const ops: MmuNotifierOps = {
    *release() {
      log.push(`${name}.release`);
    },
    *invalidateRangeStart(sub, range) {
      log.push(
        `${name}.start ${MMU_NOTIFY_NAMES[range.event]} blockable=${mmuNotifierRangeBlockable(range)}`,
      );
      if (opts.gate !== undefined) {
        yield* opts.gate.wait();
        log.push(`${name}.start done`);
      }
      return opts.fail ?? 0;
    },
  };
  if (opts.noEnd !== true) {
    ops.invalidateRangeEnd = function* () {
      log.push(`${name}.end`);
    };
  }
  return ops;
}

const MMU_NOTIFY_NAMES = Object.keys(MMU_NOTIFY);

function* register(sub: MmuNotifier, mm: MmStruct) {
  const ret = yield* mmuNotifierRegister(sub, mm);
  assert.equal(ret, 0);
}

void describe('mmu_notifier ranges', () => {
  void it('range init and the fast path with no subscriptions', () => {
    const { sys, mm } = setup();
    const r = mmuNotifierRangeInitOwner(MMU_NOTIFY.MIGRATE, 0, mm, 0x1000, 0x3000, 'me');
    assert.deepEqual(
      { start: r.start, end: r.end, event: r.event, owner: r.owner, flags: r.flags },
      { start: 0x1000, end: 0x3000, event: MMU_NOTIFY.MIGRATE, owner: 'me', flags: 0 },
    );
    assert.equal(mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, 1).owner, null);
    assert.equal(mmHasNotifiers(mm), false);
    // With no subscriptions, start/end are not even scheduling points.
    for (const g of [mmuNotifierInvalidateRangeStart(r), mmuNotifierInvalidateRangeEnd(r)]) {
      assert.equal(g.next().done, true);
    }
    assert.equal(mmuNotifierInvalidateRangeStartNonblock(r).next().value, 0);
    assert.equal(r.flags, 0, 'the flags are not touched either');
    assert.equal(sys.trace.counters.size, 0);
  });

  void it('counts events and emits begin/end trace events', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0, trace: true });
    const mm = sys.createProcess('p').mm!;
    const log: string[] = [];
    sys.run('reg', register(new MmuNotifier(loggingOps('a', log)), mm));
    sys.run(
      'cpu',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.PROTECTION_VMA, 0, mm, 0x1000, 0x2000);
        yield* mmuNotifierInvalidateRangeStart(r);
        assert.equal(r.flags & MMU_NOTIFIER_RANGE_BLOCKABLE, MMU_NOTIFIER_RANGE_BLOCKABLE);
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    assert.equal(sys.trace.counters.get('invalidate.PROTECTION_VMA'), 1);
    const ev = sys.trace.events.filter((e) => e.cat === 'notifier' && e.name === 'invalidate_range');
    assert.deepEqual(
      ev.map((e) => [e.ph, e.args?.event, e.args?.start, e.args?.end]),
      [
        ['B', 'PROTECTION_VMA', 0x1000, 0x2000],
        ['E', 'PROTECTION_VMA', 0x1000, 0x2000],
      ],
    );
    assert.deepEqual(log, ['a.start PROTECTION_VMA blockable=true', 'a.end']);
  });

  void it('calls interval subscribers before whole-mm subscribers', () => {
    const { sys, mm } = setup();
    const log: string[] = [];
    const iv = new MmuIntervalNotifier();
    const ops: MmuIntervalNotifierOps = {
      *invalidate(sub, _range, cur) {
        mmuIntervalSetSeq(sub, cur);
        log.push('interval');
        return true;
      },
    };
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(iv, mm, 0, PAGE, ops)), 0);
    sys.run('reg', register(new MmuNotifier(loggingOps('h', log)), mm));
    sys.run(
      'cpu',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, 0, PAGE);
        yield* mmuNotifierInvalidateRangeStart(r);
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    assert.deepEqual(log, ['interval', 'h.start CLEAR blockable=true', 'h.end']);
    assert.deepEqual(sys.sched.violations, []);
  });
});

void describe('non-blockable invalidation', () => {
  void it('returns -EAGAIN; started whole-mm subscribers get their end; no range_end follows', () => {
    const { sys, mm } = setup();
    const log: string[] = [];
    const depths: number[] = [];
    const iv = new MmuIntervalNotifier();
    const ivOps: MmuIntervalNotifierOps = {
      *invalidate(sub, range, cur) {
        depths.push(sys.sched.cur().nonBlockDepth);
        mmuIntervalSetSeq(sub, cur);
        log.push(`interval blockable=${mmuNotifierRangeBlockable(range)}`);
        return true;
      },
    };
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(iv, mm, 0x10000, PAGE, ivOps)), 0);
    // List order is newest first: s3, s2, s1.
    sys.run('reg', register(new MmuNotifier(loggingOps('s1', log)), mm));
    sys.run(
      'reg',
      register(new MmuNotifier(loggingOps('s2', log, { fail: -Errno.EAGAIN, noEnd: true })), mm),
    );
    sys.run('reg', register(new MmuNotifier(loggingOps('s3', log)), mm));
    const subs = mm.notifierSubscriptions!;

    const ret = sys.run(
      'oom_reaper',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, 0, 0x100000);
        const ret = yield* mmuNotifierInvalidateRangeStartNonblock(r);
        assert.equal(mmuNotifierRangeBlockable(r), false, 'the nonblock form clears BLOCKABLE');
        assert.equal(sys.sched.cur().nonBlockDepth, 0, 'balanced after the callbacks');
        return ret;
      })(),
    );
    assert.equal(ret, -Errno.EAGAIN);
    assert.deepEqual(log, [
      'interval blockable=false',
      's3.start UNMAP blockable=false',
      's2.start UNMAP blockable=false',
      's1.start UNMAP blockable=false',
      // unwinding: every subscriber with an end, none for s2 which failed
      's3.end',
      's1.end',
    ]);
    assert.deepEqual(depths, [1], 'callbacks of a non-blockable range run inside non_block_start');
    assert.deepEqual(warnings(sys), [], '-EAGAIN from a non-blockable range is legitimate');
    assert.equal(sys.trace.counters.get('invalidate.eagain'), 1);
    // As in the kernel: the interval side started and is not ended when a later whole-mm
    // subscriber fails, since the caller may not call range_end.
    assert.equal(subs.activeInvalidateRanges, 1);
    assert.equal(subs.invalidateSeq, 3);
  });

  void it('an interval subscriber refusing ends the interval side itself and skips whole-mm subscribers', () => {
    const { sys, mm } = setup();
    const log: string[] = [];
    const mk = (name: string, ok: boolean): MmuIntervalNotifierOps => ({
      *invalidate(sub, _range, cur) {
        log.push(name);
        if (ok) mmuIntervalSetSeq(sub, cur);
        return ok;
      },
    });
    const a = new MmuIntervalNotifier();
    const b = new MmuIntervalNotifier();
    const c = new MmuIntervalNotifier();
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(a, mm, 0x1000, PAGE, mk('a', true))), 0);
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(b, mm, 0x2000, PAGE, mk('b', false))), 0);
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(c, mm, 0x3000, PAGE, mk('c', true))), 0);
    sys.run('reg', register(new MmuNotifier(loggingOps('h', log)), mm));
    const subs = mm.notifierSubscriptions!;
    const ret = sys.run(
      'oom_reaper',
      mmuNotifierInvalidateRangeStartNonblock(mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, 0x10000)),
    );
    assert.equal(ret, -Errno.EAGAIN);
    assert.deepEqual(log, ['a', 'b'], 'the walk stops at the refusal; c and h are never called');
    assert.equal(subs.activeInvalidateRanges, 0, 'the interval side was ended inside');
    assert.equal(subs.invalidateSeq, 4, 'and the exclusion is over');
  });

  void it('a refusal in a blockable range is a WARN and the walk goes on', () => {
    const { sys, mm } = setup();
    const log: string[] = [];
    const a = new MmuIntervalNotifier();
    const b = new MmuIntervalNotifier();
    const refuse: MmuIntervalNotifierOps = {
      *invalidate() {
        log.push('a');
        return false;
      },
    };
    const accept: MmuIntervalNotifierOps = {
      *invalidate(sub, _r, cur) {
        log.push('b');
        mmuIntervalSetSeq(sub, cur);
        return true;
      },
    };
    sys.run('ins', mmuIntervalNotifierInsert(a, mm, 0x1000, PAGE, refuse));
    sys.run('ins', mmuIntervalNotifierInsert(b, mm, 0x2000, PAGE, accept));
    sys.run(
      'cpu',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, 0x10000);
        yield* mmuNotifierInvalidateRangeStart(r);
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    assert.deepEqual(log, ['a', 'b']);
    assert.equal(warnings(sys).length, 1);
    assert.equal(mm.notifierSubscriptions!.invalidateSeq, 4);
  });
});

void describe('two-pass interval subscribers', () => {
  void it('run every finish pass after all first passes, in visiting order', () => {
    const { sys, mm } = setup();
    const log: string[] = [];
    const twoPass = (name: string, withFinish: boolean): MmuIntervalNotifierOps => ({
      *invalidateStart(sub, _range, cur) {
        mmuIntervalSetSeq(sub, cur);
        log.push(`${name}.start`);
        return withFinish ? { ok: true, finish: { name, cur } } : { ok: true };
      },
      *invalidateFinish(_sub, finish) {
        const f = finish as { name: string; cur: number };
        log.push(`${f.name}.finish cur=${f.cur}`);
      },
    });
    const onePass: MmuIntervalNotifierOps = {
      *invalidate(sub, _range, cur) {
        mmuIntervalSetSeq(sub, cur);
        log.push('t2.invalidate');
        return true;
      },
    };
    const subs = [new MmuIntervalNotifier(), new MmuIntervalNotifier(), new MmuIntervalNotifier()];
    const extra = new MmuIntervalNotifier();
    sys.run('ins', mmuIntervalNotifierInsert(subs[0], mm, 0x1000, PAGE, twoPass('t1', true)));
    sys.run('ins', mmuIntervalNotifierInsert(subs[1], mm, 0x2000, PAGE, onePass));
    sys.run('ins', mmuIntervalNotifierInsert(subs[2], mm, 0x3000, PAGE, twoPass('t3', true)));
    sys.run('ins', mmuIntervalNotifierInsert(extra, mm, 0x4000, PAGE, twoPass('t4', false)));
    sys.run(
      'cpu',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, 0x10000);
        yield* mmuNotifierInvalidateRangeStart(r);
        log.push('start returned');
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    assert.deepEqual(log, [
      't1.start',
      't2.invalidate',
      't3.start',
      't4.start',
      't1.finish cur=3',
      't3.finish cur=3',
      'start returned',
    ]);
    assert.deepEqual(sys.sched.violations, []);
  });
});

void describe('registration', () => {
  void it('arch_invalidate_secondary_tlbs together with start/end is -EINVAL', () => {
    const { sys, mm } = setup();
    const bad = new MmuNotifier({
      *archInvalidateSecondaryTlbs() {},
      *invalidateRangeStart() {
        return 0;
      },
    });
    assert.equal(sys.run('reg', mmuNotifierRegister(bad, mm)), -Errno.EINVAL);
    assert.equal(warnings(sys).length, 1);
    assert.equal(bad.hashed, false);
    assert.equal(mm.notifierSubscriptions, null, 'refused before allocating anything');
    assert.equal(mm.mmCount, 1);

    const calls: [number, number][] = [];
    const good = new MmuNotifier({
      *archInvalidateSecondaryTlbs(_s, _mm, start, end) {
        calls.push([start, end]);
      },
    });
    assert.equal(sys.run('reg', mmuNotifierRegister(good, mm)), 0);
    assert.equal(mm.mmCount, 2, 'a registered subscriber holds the mm');
    sys.run('flush', mmuNotifierArchInvalidateSecondaryTlbs(mm, 0x1000, 0x5000));
    assert.deepEqual(calls, [[0x1000, 0x5000]]);
  });

  void it('__mmu_notifier_register without the mmap write lock is reported', () => {
    const { sys, mm } = setup();
    assert.equal(sys.run('reg', __mmuNotifierRegister(new MmuNotifier({}), mm)), 0);
    assert.ok(sys.sched.violations.some((v) => v.oracle === 'locks' && /mmap_lock/.test(v.message)));
  });

  void it('get returns one notifier per ops with a users count; put frees after the grace period', () => {
    const { sys, mm } = setup();
    const log: string[] = [];
    const gate = new Completion(sys.sched, 'gate');
    class Dev extends MmuNotifier {}
    const ops: MmuNotifierOps = {
      allocNotifier() {
        log.push('alloc');
        return new Dev(ops);
      },
      freeNotifier() {
        log.push('free');
      },
      *invalidateRangeStart() {
        log.push('start enter');
        yield* gate.wait();
        log.push('start exit');
        return 0;
      },
    };
    const other: MmuNotifierOps = { allocNotifier: () => new Dev(other) };
    const a = sys.run('get', mmuNotifierGet(ops, mm));
    const b = sys.run('get', mmuNotifierGet(ops, mm));
    const c = sys.run('get', mmuNotifierGet(other, mm));
    assert.ok(a instanceof Dev && c instanceof Dev);
    assert.equal(a, b, 'same ops: same notifier');
    assert.notEqual(a, c);
    assert.equal(a.users, 2);
    assert.equal(a.mm, mm);
    assert.deepEqual(log, ['alloc']);
    assert.equal(mm.mmCount, 3, 'each registered notifier holds the mm once');

    // A CPU is inside a's callback when the last user goes away.
    const cpu = sys.sched.spawn(
      'cpu',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.CLEAR, 0, mm, 0, PAGE);
        yield* mmuNotifierInvalidateRangeStart(r);
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    stepUntil(cpu, sys, () => cpu.state === 'blocked');
    mmuNotifierPut(a);
    assert.equal(a.users, 1);
    assert.equal(a.hashed, true);
    mmuNotifierPut(a);
    assert.equal(a.users, 0);
    assert.equal(a.hashed, false, 'unhooked at once: no new callbacks');
    let synced = false;
    sys.sched.spawn(
      'module_exit',
      (function* () {
        yield* mmuNotifierSynchronize(sys);
        synced = true;
      })(),
    );
    while (sys.sched.runnable().length > 0) sys.sched.runOne();
    assert.deepEqual(log, ['alloc', 'start enter'], 'free waits for the running callback');
    assert.equal(synced, false, 'so does mmu_notifier_synchronize');
    assert.equal(mm.mmCount, 3);
    gate.complete();
    sys.sched.runAll();
    assert.deepEqual(log, ['alloc', 'start enter', 'start exit', 'free']);
    assert.equal(synced, true);
    assert.equal(mm.mmCount, 2, 'the free dropped the mm');
    assert.deepEqual(warnings(sys), []);
  });

  void it('get fails with -EOVERFLOW when the users count would wrap', () => {
    const { sys, mm } = setup();
    const ops: MmuNotifierOps = { allocNotifier: () => new MmuNotifier(ops) };
    const a = sys.run('get', mmuNotifierGet(ops, mm));
    assert.ok(a instanceof MmuNotifier);
    a.users = UINT_MAX;
    assert.equal(sys.run('get', mmuNotifierGet(ops, mm)), -Errno.EOVERFLOW);
    assert.equal(a.users, UINT_MAX);
  });

  void it('get propagates an alloc_notifier error and frees on a registration error', () => {
    const { sys, mm } = setup();
    const failing: MmuNotifierOps = { allocNotifier: () => -Errno.ENOMEM };
    assert.equal(sys.run('get', mmuNotifierGet(failing, mm)), -Errno.ENOMEM);
    const freed: MmuNotifier[] = [];
    const bad: MmuNotifierOps = {
      allocNotifier: () => new MmuNotifier(bad),
      freeNotifier: (s) => freed.push(s),
      *archInvalidateSecondaryTlbs() {},
      *invalidateRangeEnd() {},
    };
    assert.equal(sys.run('get', mmuNotifierGet(bad, mm)), -Errno.EINVAL);
    assert.equal(freed.length, 1);
  });

  void it('unregister calls ->release and waits for a running callback', () => {
    const { sys, mm } = setup();
    const log: string[] = [];
    const gate = new Completion(sys.sched, 'gate');
    const sub = new MmuNotifier(loggingOps('s', log, { gate }));
    sys.run('reg', register(sub, mm));
    const cpu = sys.sched.spawn(
      'cpu',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, PAGE);
        yield* mmuNotifierInvalidateRangeStart(r);
        yield* mmuNotifierInvalidateRangeEnd(r);
        log.push('cpu done');
      })(),
    );
    let unregistered = false;
    const un = sys.sched.spawn(
      'unregister',
      (function* () {
        yield* mmuNotifierUnregister(sub, mm);
        unregistered = true;
      })(),
    );
    stepUntil(cpu, sys, () => cpu.state === 'blocked');
    stepUntil(un, sys, () => un.state === 'blocked');
    assert.equal(sub.hashed, false, 'unhooked before waiting');
    assert.equal(unregistered, false, 'synchronize_srcu waits for the callback in progress');
    assert.deepEqual(log, ['s.start UNMAP blockable=true', 's.release']);
    assert.equal(mm.mmCount, 2);
    gate.complete();
    sys.sched.runAll();
    assert.equal(unregistered, true);
    assert.equal(mm.mmCount, 1);
    // The running invalidation had already passed s when unregister unhooked it: no end for s.
    assert.deepEqual(log, ['s.start UNMAP blockable=true', 's.release', 's.start done', 'cpu done']);
  });
});

void describe('exit: mmu_notifier_release', () => {
  void it('sends RELEASE to interval subscribers, then ->release, unhooks hlist, keeps the tree', () => {
    const { sys, mm } = setup();
    const log: string[] = [];
    const iv = new MmuIntervalNotifier();
    const ivOps: MmuIntervalNotifierOps = {
      *invalidate(sub, r: MmuNotifierRange, cur) {
        mmuIntervalSetSeq(sub, cur);
        log.push(
          `interval ${MMU_NOTIFY_NAMES[r.event]} [${r.start}, ${r.end === ULONG_MAX ? 'ULONG_MAX' : r.end}) blockable=${mmuNotifierRangeBlockable(r)}`,
        );
        return true;
      },
    };
    assert.equal(sys.run('ins', mmuIntervalNotifierInsert(iv, mm, 0x10000, PAGE, ivOps)), 0);
    const h1 = new MmuNotifier(loggingOps('h1', log));
    const h2 = new MmuNotifier(loggingOps('h2', log));
    sys.run('reg', register(h1, mm));
    sys.run('reg', register(h2, mm));
    const subs = mm.notifierSubscriptions!;
    mm.mmUsers = 0; // exit_mmap runs once the last user is gone
    sys.run('exit', mmuNotifierRelease(mm));
    assert.deepEqual(log, ['interval RELEASE [0, ULONG_MAX) blockable=true', 'h2.release', 'h1.release']);
    assert.equal(subs.hlistEmpty, true);
    assert.equal(h1.hashed || h2.hashed, false);
    assert.deepEqual(subs.intervals(), [iv], 'interval subscribers stay for the unmap that follows');
    assert.equal(subs.invalidateSeq, 4);
    assert.equal(subs.activeInvalidateRanges, 0);
    assert.equal(sys.trace.counters.get('invalidate.RELEASE'), 1);

    // The UNMAP from unmap_vmas still reaches the interval subscriber; whole-mm ones are gone.
    sys.run(
      'exit',
      (function* () {
        const r = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, ULONG_MAX);
        yield* mmuNotifierInvalidateRangeStart(r);
        yield* mmuNotifierInvalidateRangeEnd(r);
      })(),
    );
    assert.equal(log.length, 4);
    assert.equal(log[3], 'interval UNMAP [0, ULONG_MAX) blockable=true');

    // A later unregister does not call ->release again.
    sys.run('unreg', mmuNotifierUnregister(h1, mm));
    assert.equal(log.length, 4);
    assert.deepEqual(warnings(sys), []);
  });

  void it('the last mmdrop destroys the subscriptions, and BUGs if a notifier is still hooked', () => {
    const { sys, mm } = setup();
    const h = new MmuNotifier({});
    sys.run('reg', register(h, mm));
    assert.equal(mm.mmCount, 2);
    mmdrop(mm);
    assert.throws(() => {
      mmdrop(mm);
    }, ModelBug);

    const other = setup();
    const h2 = new MmuNotifier({});
    other.sys.run('reg', register(h2, other.mm));
    other.sys.run('unreg', mmuNotifierUnregister(h2, other.mm));
    const subs = other.mm.notifierSubscriptions!;
    mmdrop(other.mm);
    assert.equal(other.mm.mmCount, 0);
    assert.equal(other.mm.notifierSubscriptions, null);
    assert.equal(subs.destroyed, true);
  });
});

void describe('accessed-bit queries', () => {
  void it('clear_(flush_)young ORs every answer; test_young stops at the first yes', () => {
    const { sys, mm } = setup();
    const asked: string[] = [];
    const mk = (name: string, young: boolean): MmuNotifier =>
      new MmuNotifier({
        *clearFlushYoung() {
          asked.push(`${name}.cfy`);
          return young;
        },
        *clearYoung() {
          asked.push(`${name}.cy`);
          return young;
        },
        *testYoung() {
          asked.push(`${name}.ty`);
          return young;
        },
      });
    assert.equal(sys.run('q', mmuNotifierTestYoung(mm, 0)), false, 'no subscriptions: not young');
    sys.run('reg', register(mk('old', false), mm));
    sys.run('reg', register(mk('young', true), mm));
    sys.run('reg', register(mk('old2', false), mm));
    assert.equal(sys.run('q', mmuNotifierClearFlushYoung(mm, 0, PAGE)), true);
    assert.equal(sys.run('q', mmuNotifierClearYoung(mm, 0, PAGE)), true);
    assert.equal(sys.run('q', mmuNotifierTestYoung(mm, 0)), true);
    assert.deepEqual(asked, [
      'old2.cfy',
      'young.cfy',
      'old.cfy',
      'old2.cy',
      'young.cy',
      'old.cy',
      'old2.ty',
      'young.ty',
    ]);
  });
});
