/**
 * Toy worlds for the explorer tests. Exported as factories (args) => ExploreTarget so the same
 * worlds can be rebuilt inside worker threads from a TargetDescriptor.
 */
import {
  Channel,
  Mutex,
  point,
  Scheduler,
  type KGen,
  type Thread,
  type WaitChannel,
} from '../../../src/sched/index.ts';
import { isMainThread } from 'node:worker_threads';
import type { ExploreTarget, ExploreWorld } from '../../../src/sched/explore/index.ts';

/**
 * Takes every thread's first step (the code before its first yield), which has no declared
 * footprint and so would count as dependent with everything for partial-order reduction.
 */
function prime(sched: Scheduler): void {
  for (const t of [...sched.threads]) sched.step(t);
}

function* noise(n: number, obj: object, who: string): KGen {
  for (let i = 0; i < n; i++) yield point(`${who} local work ${i}`, obj);
}

export interface CounterArgs {
  /** Steps on private objects before the read-modify-write. */
  noise?: number;
  /** Protect the read-modify-write with a mutex. */
  mutex?: boolean;
  threads?: number;
}

/** Two (or more) threads increment a shared counter: read, yield, write. */
export function counterTarget(args: CounterArgs = {}): ExploreTarget {
  const n = args.threads ?? 2;
  return {
    create(): ExploreWorld {
      const sched = new Scheduler();
      const counter = { value: 0 };
      const m = new Mutex(sched, 'counter_lock');
      for (let i = 0; i < n; i++) {
        const own = {};
        sched.spawn(
          `inc${i}`,
          (function* (): KGen {
            yield point('begin', own);
            yield* noise(args.noise ?? 0, own, `inc${i}`);
            if (args.mutex === true) yield* m.lock();
            yield point('read counter', counter, false);
            const seen = counter.value;
            yield point('write counter', counter, true);
            counter.value = seen + 1;
            if (args.mutex === true) yield* m.unlock();
          })(),
        );
      }
      prime(sched);
      return {
        sched,
        checkFinal: () =>
          counter.value === n
            ? null
            : { oracle: 'race', message: `lost update: counter is ${counter.value}, expected ${n}` },
      };
    },
  };
}

/** Two threads taking two locks, A and B, in opposite orders. */
function abbaTarget(
  makeLock: (sched: Scheduler, name: string) => { lock(): KGen; unlock(): KGen },
): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      const [a, b] = [makeLock(sched, 'A'), makeLock(sched, 'B')];
      const body = (first: typeof a, second: typeof a) =>
        function* (): KGen {
          yield* first.lock();
          yield* second.lock();
          yield* second.unlock();
          yield* first.unlock();
        };
      sched.spawn('ab', body(a, b)());
      sched.spawn('ba', body(b, a)());
      return { sched, checkFinal: () => null };
    },
  };
}

/** ABBA on two mutexes: lockdep sees the cycle on any schedule. */
export function abbaMutexTarget(): ExploreTarget {
  return abbaTarget((sched, name) => new Mutex(sched, name));
}

/**
 * A hand-rolled sleeping lock lockdep does not know (like a driver's bit lock), so an ABBA order
 * on two of them is found only as a real deadlock, and only in interleavings where both threads
 * hold their first lock.
 */
class BitLock {
  held = false;
  readonly ch: WaitChannel;
  constructor(
    private readonly sched: Scheduler,
    readonly name: string,
  ) {
    this.ch = new Channel(`bitlock ${name}`);
  }
  *lock(): KGen {
    yield point(`bit_lock(${this.name})`, this);
    while (this.held) yield { kind: 'wait', label: `bit_lock(${this.name})`, channel: this.ch };
    this.held = true;
  }
  *unlock(): KGen {
    yield point(`bit_unlock(${this.name})`, this);
    this.held = false;
    this.sched.wakeOne(this.ch);
  }
}

/** ABBA on two bit locks: a real deadlock, in the interleavings where both hold their first. */
export function abbaDeadlockTarget(): ExploreTarget {
  return abbaTarget((sched, name) => new BitLock(sched, name));
}

/** One thread spins on a flag that the other never sets (it sets a different one). */
export function livelockTarget(): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      const flag = { set: false };
      const other = { set: false };
      sched.spawn(
        'spinner',
        (function* (): KGen {
          for (;;) {
            yield point('READ_ONCE(flag)', flag, false);
            if (flag.set) return;
          }
        })(),
      );
      sched.spawn(
        'setter',
        (function* (): KGen {
          yield point('WRITE_ONCE(other)', other);
          other.set = true;
        })(),
      );
      return { sched, checkFinal: () => null };
    },
  };
}

/** Threads that share nothing: every interleaving is equivalent. */
export function independentTarget(args: { steps: number; threads?: number }): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      for (let i = 0; i < (args.threads ?? 2); i++) {
        const own = {};
        sched.spawn(`t${i}`, noise(args.steps, own, `t${i}`));
      }
      prime(sched);
      return { sched, checkFinal: () => null };
    },
  };
}

/** A thread that throws: a model bug (plain Error) or an expected kernel error (errno). */
export function throwingTarget(args: { errno: boolean }): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      sched.spawn(
        'thrower',
        (function* (): KGen {
          yield point('about to fail');
          if (args.errno) throw Object.assign(new Error('EBUSY: device busy'), { errno: 16 });
          throw new Error('BUG: list corrupted');
        })(),
      );
      sched.spawn(
        'bystander',
        (function* (): KGen {
          yield point('idle');
        })(),
      );
      return { sched, checkFinal: () => null, threadName: (t: Thread) => `${t.name}#${t.id}` };
    },
  };
}

/** Builds in the main thread only, to check that a worker's failure surfaces instead of hanging. */
export function mainThreadOnlyTarget(): ExploreTarget {
  if (!isMainThread) throw new Error('cannot build this target in a worker');
  return counterTarget();
}

export interface OrderArgs {
  threads?: number;
  /** Steps on private objects before each thread appends its number to a shared log. */
  noise?: number;
  /** The log order that counts as a violation; default the reverse of the thread order. */
  forbidden?: number[];
}

/**
 * Threads append their numbers to a shared log after some private work; one final order is a
 * violation. The reverse order needs the last thread to go first, a choice DFS backtracks to
 * last, so the failure sits deep in the search order.
 */
export function orderTarget(args: OrderArgs = {}): ExploreTarget {
  const n = args.threads ?? 3;
  const forbidden = args.forbidden ?? Array.from({ length: n }, (_, i) => n - 1 - i);
  return {
    create() {
      const sched = new Scheduler();
      const log: number[] = [];
      for (let i = 0; i < n; i++) {
        const own = {};
        sched.spawn(
          `t${i}`,
          (function* (): KGen {
            yield point('begin', own);
            yield* noise(args.noise ?? 0, own, `t${i}`);
            yield point('append', log, true);
            log.push(i);
          })(),
        );
      }
      prime(sched);
      return {
        sched,
        checkFinal: () =>
          log.join(',') === forbidden.join(',')
            ? { oracle: 'order', message: `log is [${log.join(', ')}]` }
            : null,
      };
    },
  };
}
