/**
 * The oracles after each explored step include the checks drivers register in sys.checkHooks,
 * as checkAll() does at the end: a driver's own invariant that breaks in the middle of a schedule
 * is reported at the step that broke it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { System } from '../../src/kernel/system.ts';
import { checkStep } from '../../src/oracles/index.ts';
import { explore } from '../../src/sched/explore/index.ts';
import type { ExploreTarget } from '../../src/sched/explore/types.ts';
import type { KGen } from '../../src/sched/types.ts';

describe('checkStep and driver check hooks', () => {
  it('runs every hook, not final, and reports what it returns', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const calls: boolean[] = [];
    let broken = false;
    sys.checkHooks.push((final) => {
      calls.push(final);
      return broken ? [{ oracle: 'mirror', message: 'the device maps a page the CPU does not' }] : [];
    });
    assert.equal(checkStep(sys), null);
    broken = true;
    assert.deepEqual(checkStep(sys), {
      oracle: 'mirror',
      message: 'the device maps a page the CPU does not',
    });
    assert.deepEqual(calls, [false, false]);
  });

  it('an explored schedule stops at the step where a hook fires, not at the end', () => {
    /** Two threads: `a` breaks the driver's invariant for one step and mends it; `b` does nothing. */
    const target: ExploreTarget = {
      create() {
        const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
        let broken = false;
        sys.checkHooks.push(() => (broken ? [{ oracle: 'mirror', message: 'torn device PTE' }] : []));
        sys.sched.spawn(
          'a',
          (function* (): KGen {
            yield { kind: 'step', label: 'write half' };
            broken = true;
            yield { kind: 'step', label: 'write other half' };
            broken = false;
          })(),
        );
        sys.sched.spawn(
          'b',
          (function* (): KGen {
            yield { kind: 'step', label: 'idle' };
          })(),
        );
        return {
          sched: sys.sched,
          checkStep: () => checkStep(sys),
          checkFinal: () => null,
        };
      },
    };
    const r = explore(target, { strategy: 'dfs', seed: 1, budget: { schedules: 10 } });
    assert.equal(r.violation?.oracle, 'mirror');
    assert.equal(r.violation.message, 'torn device PTE');
  });
});
