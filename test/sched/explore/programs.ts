/**
 * Random programs for the property tests of the reductions and of shards: two or three threads,
 * each a few steps that read or write one of three shared objects, some of them under that
 * object's mutex (so threads block and are woken).
 */
import fc from 'fast-check';
import { Mutex, point, Scheduler, type KGen } from '../../../src/sched/index.ts';
import type { ExploreTarget } from '../../../src/sched/explore/index.ts';

export interface Op {
  obj: number;
  write: boolean;
  /** Under the object's mutex. */
  locked?: boolean;
}

export const programs = fc.oneof(
  fc.array(fc.array(fc.record({ obj: fc.nat(2), write: fc.boolean() }), { minLength: 1, maxLength: 3 }), {
    minLength: 2,
    maxLength: 3,
  }),
  // Under locks a step is three (lock, access, unlock): two threads of two keep the search
  // without reduction small.
  fc.array(
    fc.array(fc.record({ obj: fc.nat(2), write: fc.boolean(), locked: fc.boolean() }), {
      minLength: 1,
      maxLength: 2,
    }),
    { minLength: 2, maxLength: 2 },
  ),
);

/**
 * Runs `threads` from their start (a declared step of their own); the final states, with what
 * each thread read, go to `seen`.
 */
export function programTarget(threads: Op[][], seen: Set<string>): ExploreTarget {
  return {
    create() {
      const sched = new Scheduler();
      const objs = [{ v: 0 }, { v: 0 }, { v: 0 }];
      const locks = objs.map((_, i) => new Mutex(sched, `m${i}`));
      const logs: number[][] = threads.map(() => []);
      threads.forEach((ops, ti) => {
        sched.spawn(
          `t${ti}`,
          (function* (): KGen {
            for (const [k, o] of ops.entries()) {
              if (o.locked === true) yield* locks[o.obj].lock();
              yield point(`${o.write ? 'w' : 'r'}${o.obj}`, objs[o.obj], o.write);
              if (o.write) objs[o.obj].v = objs[o.obj].v * 7 + ti * 3 + k + 1;
              else logs[ti].push(objs[o.obj].v);
              if (o.locked === true) yield* locks[o.obj].unlock();
            }
          })(),
        );
      });
      return {
        sched,
        checkFinal: () => {
          seen.add(JSON.stringify([objs, logs]));
          return null;
        },
      };
    },
  };
}
