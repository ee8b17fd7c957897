/**
 * A plain path's step points (inlineYield() in src/sched/plain.ts, Scheduler.inlineStep()) take a
 * short way while the run is solo, and the scheduler's way once anything else could see or take a
 * step: a hook added or a chooser set in the middle of the run, a wait, another thread. Each program here runs once as a
 * generator on the scheduler and once as a plain body under runPlain(), and everything the
 * scheduler reports must be the same: what each yield returns, what hooks see, step counts, the
 * order in which threads step, virtual time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Channel, lockdepOf } from '../../src/sched/locks.ts';
import { Mutex$lock, Mutex$unlock, SpinLock$lock, SpinLock$unlock } from '../../src/sched/locks.plain.ts';
import { Mutex, SpinLock } from '../../src/sched/locks.ts';
import { inlineYield } from '../../src/sched/plain.ts';
import { runToCompletion, Scheduler, type Chooser } from '../../src/sched/scheduler.ts';
import type { Thread } from '../../src/sched/thread.ts';
import type { KGen, SchedPoint } from '../../src/sched/types.ts';

/** A point to yield, or something to do between two points (given the scheduler and the log). */
type Item = SchedPoint | ((sched: Scheduler, log: string[]) => void);

function step(label: string): SchedPoint {
  return { kind: 'step', label };
}

function* asGenerator(sched: Scheduler, items: readonly Item[], log: string[]): KGen<number> {
  for (const it of items) {
    if (typeof it === 'function') it(sched, log);
    else log.push(`${sched.cur().name} ${it.label} -> ${String(yield it)}`);
  }
  return items.length;
}

function asPlain(sched: Scheduler, items: readonly Item[], log: string[]): number {
  for (const it of items) {
    if (typeof it === 'function') it(sched, log);
    else log.push(`${sched.cur().name} ${it.label} -> ${String(inlineYield(it))}`);
  }
  return items.length;
}

interface Outcome {
  result: number;
  log: string[];
  steps: number;
  totalSteps: number;
  now: number;
  last: string | null;
  threads: number;
}

/** Runs `items` as a path of its own on a fresh scheduler, in the form `plain` says. */
function runOnce(items: readonly Item[], plain: boolean, before?: (sched: Scheduler) => void): Outcome {
  const sched = new Scheduler();
  before?.(sched);
  const log: string[] = [];
  let self: Thread | null = null;
  const record = (s: Scheduler): void => {
    self = s.cur();
  };
  const all: Item[] = [record, ...items];
  const result = plain
    ? sched.runPlain('p', () => asPlain(sched, all, log))
    : sched.run('p', asGenerator(sched, all, log));
  const t = self as Thread | null;
  assert.ok(t !== null);
  return {
    result,
    log,
    steps: t.steps,
    totalSteps: sched.totalSteps,
    now: sched.clock.now,
    last: sched.last?.name ?? null,
    threads: sched.threads.length,
  };
}

function sameEitherWay(items: readonly Item[], before?: (sched: Scheduler) => void): Outcome {
  const gen = runOnce(items, false, before);
  const plain = runOnce(items, true, before);
  assert.deepEqual(plain, gen);
  return plain;
}

const afterHook = (sched: Scheduler, log: string[]): void => {
  sched.afterStep.push((t) => log.push(`after ${t.name} #${t.steps} total ${sched.totalSteps}`));
};

const beforeHook = (sched: Scheduler, log: string[]): void => {
  sched.beforeStep.push((t, p) => log.push(`before ${t.name} ${p.label} #${t.steps}`));
};

/** Picks a thread other than the one that ran last, when there is one. */
const alternate: Chooser = {
  choose(runnable, sched) {
    return runnable.find((t) => t !== sched.last) ?? runnable[0];
  },
};

function* other(sched: Scheduler, log: string[]): KGen {
  log.push('other starts');
  yield step('x');
  log.push('other after x');
  yield step('y');
  log.push(`other ends at ${sched.totalSteps}`);
}

void describe('plain step points', () => {
  void it('count steps as the scheduler does in a solo run', () => {
    const out = sameEitherWay([step('a'), step('b'), step('c')]);
    assert.equal(out.steps, 4);
    assert.equal(out.totalSteps, 4);
  });

  void it('run an afterStep hook added in the middle of the run for every later step', () => {
    const out = sameEitherWay([step('a'), afterHook, step('b'), step('c')]);
    assert.equal(out.log.filter((l) => l.startsWith('after')).length, 3);
  });

  void it('run a beforeStep hook added in the middle of the run for every later step', () => {
    const out = sameEitherWay([step('a'), beforeHook, step('b'), step('c')]);
    assert.equal(out.log.filter((l) => l.startsWith('before')).length, 2);
  });

  void it('go back to the short way once a hook added mid-run is removed again', () => {
    const removeAll = (sched: Scheduler): void => {
      sched.afterStep.length = 0;
    };
    sameEitherWay([step('a'), afterHook, step('b'), removeAll, step('c'), step('d')]);
  });

  void it('follow a chooser set in the middle of the run, with another thread to choose', () => {
    const spawnAndAlternate = (sched: Scheduler, log: string[]): void => {
      sched.spawn('q', other(sched, log));
      sched.chooser = alternate;
    };
    const out = sameEitherWay([step('a'), spawnAndAlternate, step('b'), step('c'), step('d')]);
    // The other thread ran between the path's steps, not after them.
    assert.ok(out.log.indexOf('other after x') < out.log.indexOf('p d -> undefined'));
  });

  void it('follow a chooser set back to runToCompletion in the middle of the run', () => {
    const spawnAndAlternate = (sched: Scheduler, log: string[]): void => {
      sched.spawn('q', other(sched, log));
      sched.chooser = alternate;
    };
    const back = (sched: Scheduler): void => {
      sched.chooser = runToCompletion;
    };
    sameEitherWay([step('a'), spawnAndAlternate, step('b'), back, step('c'), step('d')]);
  });

  void it('hand over the wake reason of a wait, and count the steps after it', () => {
    const ch = new Channel('c');
    const timeout: Item = (sched, log) => {
      // A wait ended by its deadline, then steps again.
      log.push(`now ${sched.clock.now}`);
    };
    const out = sameEitherWay([
      step('a'),
      timeout,
      { kind: 'wait', label: 'w', channel: ch, deadline: 10 },
      step('b'),
      step('c'),
    ]);
    assert.ok(out.log.includes('p w -> timeout'));
    assert.ok(out.log.includes('p b -> undefined'));
    assert.equal(out.now, 10);
  });

  void it('hand over a wake-up by another thread', () => {
    const ch = new Channel('c');
    const spawnWaker = (sched: Scheduler, log: string[]): void => {
      sched.spawn(
        'waker',
        (function* (): KGen {
          yield step('wake');
          log.push('waking');
          sched.wakeAll(ch);
        })(),
      );
    };
    const out = sameEitherWay([step('a'), spawnWaker, { kind: 'wait', label: 'w', channel: ch }, step('b')]);
    assert.ok(out.log.includes('p w -> woken'));
  });

  void it('count the same steps under hooks installed before the run', () => {
    sameEitherWay([step('a'), step('b')], (sched) => {
      afterHook(sched, []);
    });
  });
});

void describe('plain lock paths', () => {
  void it('make the lock-order checker at the first acquisition, with nothing held', () => {
    const sched = new Scheduler();
    const m = new Mutex(sched, 'm');
    sched.runPlain('p', () => {
      Mutex$lock(m);
      Mutex$unlock(m);
    });
    assert.ok(sched.lockdep !== null);
    assert.deepEqual(sched.lockdep.orderEdges(), []);
  });

  void it('record order edges and take off locks released out of order', () => {
    const sched = new Scheduler();
    const a = new Mutex(sched, 'a');
    const b = new SpinLock(sched, 'b');
    const held: string[][] = [];
    sched.runPlain('p', () => {
      const t = sched.cur();
      Mutex$lock(a);
      SpinLock$lock(b);
      held.push(t.held.map((h) => h.name));
      Mutex$unlock(a);
      held.push(t.held.map((h) => h.name));
      SpinLock$unlock(b);
      held.push(t.held.map((h) => h.name));
    });
    assert.deepEqual(held, [['a', 'b'], ['b'], []]);
    assert.deepEqual(lockdepOf(sched).orderEdges(), [['a', 'b']]);
    // The reverse order, on another run, closes a cycle.
    sched.runPlain('p', () => {
      SpinLock$lock(b);
      Mutex$lock(a);
      Mutex$unlock(a);
      SpinLock$unlock(b);
    });
    assert.ok(sched.violations.some((v) => v.message.startsWith('lock order cycle')));
  });
});
