/**
 * The footprints of the kernel's waiting primitives (docs/explorer.md, "What counts as the same
 * schedule"): completions, SRCU, work items, dma fences, folio locks, timeouts. For each, a small
 * program whose final state depends on the order of its threads, searched with DPOR, with sleep
 * sets alone, with DPOR at preemption bound 2 and with no reduction (unbounded and at bound 2):
 * every reduced search must reach every final state the search without reduction reaches.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explore } from '../../../src/sched/explore/index.ts';
import type { ExploreOptions, ExploreTarget } from '../../../src/sched/explore/index.ts';
import { Completion, Mutex, point, Scheduler, Srcu, type KGen } from '../../../src/sched/index.ts';
import { schedPoint } from '../../../src/sched/locks.ts';
import {
  cancelWorkSync,
  dmaFenceInit,
  dmaFenceSignal,
  dmaFenceWaitTimeout,
  flushWork,
  initWork,
  kthreadRun,
  kthreadShouldStop,
  kthreadStop,
  queueWork,
} from '../../../src/kernel/drivers/sdk/workqueue.ts';
import { System } from '../../../src/kernel/system.ts';
import { folioLock, folioTrylock, folioUnlock } from '../../../src/kernel/mm/filemap.ts';

/** A program: threads over a scheduler (of a System with `sys`), and the final state as a log. */
type Program = (sched: Scheduler, log: string[], sys: System | null) => void;

function target(program: Program, seen: Set<string>, sys = false): ExploreTarget {
  return {
    create() {
      const system = sys ? new System({ ram: 8 * 1024 * 1024, swap: 0 }) : null;
      const s = system?.sched ?? new Scheduler();
      const log: string[] = [];
      program(s, log, system);
      return {
        sched: s,
        checkFinal: () => {
          seen.add(log.join(' '));
          return null;
        },
      };
    },
  };
}

const SEARCHES: [string, Partial<ExploreOptions>][] = [
  ['dpor', {}],
  ['sleep sets', { reduction: 'sleep' }],
  ['dpor at bound 2', { preemptionBound: 2 }],
];

/** Every search reaches the final states the search without reduction reaches; returns them. */
function assertSameFinals(program: Program, sys = false): Set<string> {
  const finals = (o: Partial<ExploreOptions>): Set<string> => {
    const seen = new Set<string>();
    const r = explore(target(program, seen, sys), { strategy: 'dfs', preemptionBound: Infinity, ...o });
    assert.equal(r.exhausted, true, JSON.stringify(o));
    assert.equal(r.violation, null, r.violation?.message);
    return seen;
  };
  const plain = [...finals({ por: false })].sort();
  assert.ok(plain.length > 1, `only one final state: ${plain.join(' / ')}`);
  for (const [name, o] of SEARCHES) {
    const bounded = o.preemptionBound === 2;
    const want = bounded ? [...finals({ por: false, preemptionBound: 2 })].sort() : plain;
    assert.deepEqual([...finals(o)].sort(), want, name);
  }
  return new Set(plain);
}

/** A thread that takes `n` steps on an object of its own (what DPOR commutes). */
function* busy(name: string, n: number): KGen {
  const own = {};
  for (let i = 0; i < n; i++) yield point(`${name}${i}`, own);
}

void describe('footprints of the waiting primitives: reduced searches reach every final state', () => {
  void it('completions: complete in a declared step, two waiters taking one each', () => {
    assertSameFinals((sched, log) => {
      const c = new Completion(sched, 'c');
      const m = new Mutex(sched, 'm');
      /** Written only in steps that declare the completion: who took which complete. */
      const taken = { n: 0 };
      const shared = { v: 0 };
      sched.spawn(
        'signal',
        (function* (): KGen {
          yield* schedPoint('complete', c);
          c.complete();
          yield* m.lock();
          shared.v = 1;
          yield* m.unlock();
          yield* schedPoint('complete', c);
          c.complete();
        })(),
      );
      for (const w of ['a', 'b'])
        sched.spawn(
          w,
          (function* (): KGen {
            yield* c.wait();
            const nth = ++taken.n;
            yield* m.lock();
            log.push(`${w}:${nth}:${shared.v}`);
            yield* m.unlock();
          })(),
        );
    });
  });

  void it('completions: complete inside a step that declares something else', () => {
    assertSameFinals((sched, log) => {
      const c = new Completion(sched, 'c');
      const m = new Mutex(sched, 'm');
      const shared = { v: 0 };
      sched.spawn(
        'signal',
        (function* (): KGen {
          yield* m.lock();
          c.complete();
          shared.v = 1;
          yield* m.unlock();
          yield* m.lock();
          shared.v = 2;
          yield* m.unlock();
        })(),
      );
      sched.spawn(
        'waiter',
        (function* (): KGen {
          yield* c.wait();
          yield* m.lock();
          log.push(`waiter saw ${shared.v}`);
          yield* m.unlock();
        })(),
      );
    });
  });

  void it('kthread_stop: the exit completion, and a kthread that tests kthread_should_stop() first', () => {
    assertSameFinals((sched, log) => {
      const k = kthreadRun(sched, 'kt', function* (kt): KGen<number> {
        let n = 0;
        // No point before the first kthread_should_stop(): the kthread's start declares nothing.
        while (!kthreadShouldStop(kt) && n < 3) {
          yield point('kt poll', kt);
          n++;
        }
        return n;
      });
      sched.spawn(
        'stopper',
        (function* (): KGen {
          yield point('stop', k);
          const r = yield* kthreadStop(k);
          log.push(`stopped ${r}`);
        })(),
      );
    });
  });

  void it('SRCU: readers, synchronize_srcu and an update', () => {
    assertSameFinals((sched, log) => {
      const srcu = new Srcu(sched, 's');
      const state = { v: 'old' };
      sched.spawn(
        'reader',
        (function* (): KGen {
          const idx = yield* srcu.readLock();
          yield point('read', state, false);
          log.push(`r:${state.v}`);
          yield* srcu.readUnlock(idx);
        })(),
      );
      sched.spawn(
        'updater',
        (function* (): KGen {
          yield point('publish', state);
          state.v = 'new';
          yield* srcu.synchronize();
          yield point('free', state);
          log.push(`freed`);
          state.v = 'freed';
        })(),
      );
    });
  });

  void it('work items: queue_work, flush_work and cancel_work_sync', () => {
    assertSameFinals((sched, log) => {
      const m = new Mutex(sched, 'm');
      const ran = { n: 0 };
      const work = initWork(sched, 'w', function* (): KGen {
        yield* m.lock();
        ran.n++;
        yield* m.unlock();
      });
      const seen: string[] = [];
      sched.spawn(
        'queuer',
        (function* (): KGen {
          // queue_work() runs inside its caller's step: an undeclared point before it.
          yield* schedPoint('queue_work');
          queueWork(work);
          const waited = yield* flushWork(work);
          yield* m.lock();
          seen.push(`flushed ${waited} after ${ran.n}`);
          yield* m.unlock();
        })(),
      );
      sched.spawn(
        'canceller',
        (function* (): KGen {
          yield* schedPoint('cancel_work_sync');
          const was = yield* cancelWorkSync(work);
          yield* m.lock();
          log.push(`cancelled ${was} after ${ran.n}`);
          yield* m.unlock();
        })(),
      );
      sched.spawn(
        'end',
        (function* (): KGen {
          yield* schedPoint('end');
          log.push(...seen);
        })(),
      );
    });
  });

  void it('dma fences: signalled in a declared step and inside another, waited with and without a timeout', () => {
    assertSameFinals((sched, log) => {
      const f = dmaFenceInit(sched, 'f');
      const g = dmaFenceInit(sched, 'g');
      const m = new Mutex(sched, 'm');
      const shared = { v: 0 };
      sched.spawn(
        'signal',
        (function* (): KGen {
          yield* schedPoint('dma_fence_signal', f);
          dmaFenceSignal(f, -5);
          yield* m.lock();
          shared.v = 1;
          dmaFenceSignal(g);
          yield* m.unlock();
          yield* m.lock();
          shared.v = 2;
          yield* m.unlock();
        })(),
      );
      sched.spawn(
        'waiter',
        (function* (): KGen {
          yield* dmaFenceWaitTimeout(f);
          const err = f.error;
          yield* m.lock();
          const before = shared.v;
          yield* m.unlock();
          const left = yield* dmaFenceWaitTimeout(g, 1000);
          yield* m.lock();
          log.push(`f:${err} saw ${before} g:${left > 0} then ${shared.v}`);
          yield* m.unlock();
        })(),
      );
    });
  });

  void it('folio locks: folio_lock sleeping, trylock and unlock inside other steps', () => {
    assertSameFinals((sched, log, sys) => {
      if (sys === null) throw new Error('needs a system');
      const a = sys.phys.alloc(0, 'test');
      const b = sys.phys.alloc(0, 'test');
      const m = new Mutex(sched, 'm');
      const mine: string[] = [];
      const theirs: string[] = [];
      sched.spawn(
        'end',
        (function* (): KGen {
          yield* schedPoint('end');
          log.push(...mine, '|', ...theirs);
        })(),
      );
      sched.spawn(
        'locker',
        (function* (): KGen {
          yield* folioLock(sys, a);
          mine.push('locker has a');
          yield* m.lock();
          const tookB = folioTrylock(sys, b);
          mine.push(`locker: b ${tookB ? 'taken' : 'busy'}`);
          yield* m.unlock();
          yield* busy('l', 1);
          yield* m.lock();
          if (tookB) folioUnlock(sys, b);
          folioUnlock(sys, a);
          yield* m.unlock();
        })(),
      );
      sched.spawn(
        'migrator',
        (function* (): KGen {
          yield* m.lock();
          const got = folioTrylock(sys, a);
          theirs.push(`migrator: a ${got ? 'taken' : 'busy'}`);
          yield* m.unlock();
          if (got) {
            yield* busy('g', 1);
            folioUnlock(sys, a);
          }
          yield* folioLock(sys, b);
          theirs.push('migrator has b');
          folioUnlock(sys, b);
        })(),
      );
    }, true);
  });
});
