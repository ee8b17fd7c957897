import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mmgetNotZero, mmput } from '../../src/kernel/exit.ts';
import { mmdrop, mmgrab } from '../../src/kernel/mm/mmu_notifier.ts';
import { System } from '../../src/kernel/system.ts';
import { checkTeardown } from '../../src/oracles/index.ts';

function sys(): System {
  return new System({ ram: 16 * 1024 * 1024, swap: 0 });
}

/** A driver that takes an mm reference when a device is bound and forgets it on unbind. */
function bindDevice(mm: Parameters<typeof mmgetNotZero>[0]): boolean {
  return mmgetNotZero(mm);
}

describe('leak oracle', () => {
  it('an mmget() without mmput() no longer hides teardown: it is reported with where it was taken', () => {
    const s = sys();
    const p = s.createProcess('p');
    const mm = p.mm!;
    assert.ok(bindDevice(mm));
    assert.equal(s.exit(p), 0);
    const v = checkTeardown(s);
    assert.ok(v.length > 0, 'silent');
    assert.equal(v[0].oracle, 'leak');
    assert.match(v[0].message, /mm \d+ \(p\): mm_users is 1 after every process exited/);
    assert.match(v[0].message, /taken at bindDevice \(leaks\.test\.ts:\d+\)/);
  });

  it('an mmgrab() without mmdrop() leaks the mm_struct', () => {
    const s = sys();
    const p = s.createProcess('p');
    mmgrab(p.mm!);
    assert.equal(s.exit(p), 0);
    const v = checkTeardown(s);
    assert.equal(v.length, 1, JSON.stringify(v));
    assert.equal(v[0].oracle, 'leak');
    assert.match(v[0].message, /mm_count is 1 .*taken at .*leaks\.test\.ts/);
  });

  it('balanced references leave nothing', () => {
    const s = sys();
    const p = s.createProcess('p');
    const mm = p.mm!;
    assert.ok(mmgetNotZero(mm));
    mmgrab(mm);
    s.sched.run('put', mmput(mm));
    mmdrop(mm);
    assert.equal(s.exit(p), 0);
    assert.deepEqual(checkTeardown(s), []);
    assert.equal(s.mmStructs.size, 0);
  });
});
