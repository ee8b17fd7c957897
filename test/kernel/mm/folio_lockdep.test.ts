import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { folioLock, folioTrylock, folioUnlock } from '../../../src/kernel/mm/filemap.ts';
import { System } from '../../../src/kernel/system.ts';
import { checkLocks } from '../../../src/oracles/index.ts';
import { Mutex } from '../../../src/sched/locks.ts';
import type { KGen } from '../../../src/sched/types.ts';

function world(): { sys: System; pfn: number; mutex: Mutex } {
  const sys = new System({ ram: 16 << 20, swap: 0 });
  const pfn = sys.phys.alloc(0, 'test');
  assert.ok(pfn >= 0);
  return { sys, pfn, mutex: new Mutex(sys.sched, 'drv.mutex', 'drv.mutex') };
}

describe('the folio lock in the lock-order checks', () => {
  it('driver mutex -> folio_lock on one path and folio_lock -> mutex on another is a cycle', () => {
    const { sys, pfn, mutex } = world();
    function* invalidate(): KGen {
      yield* mutex.lock();
      yield* folioLock(sys, pfn);
      folioUnlock(sys, pfn);
      yield* mutex.unlock();
    }
    function* migrateToRam(): KGen {
      assert.ok(folioTrylock(sys, pfn)); // do_swap_page locks the page, then calls the driver
      yield* mutex.lock();
      yield* mutex.unlock();
      folioUnlock(sys, pfn);
    }
    sys.sched.run('inv', invalidate());
    assert.deepEqual(checkLocks(sys), []);
    sys.sched.run('fault', migrateToRam());
    const v = checkLocks(sys);
    assert.equal(v.length, 1, JSON.stringify(v));
    assert.match(v[0].message, /lock order cycle: folio_lock -> drv\.mutex -> folio_lock/);
  });

  it('folio locks taken together, and a folio unlocked by another thread, are not findings', () => {
    const { sys, pfn } = world();
    const other = sys.phys.alloc(0, 'test');
    function* lockTwo(): KGen {
      yield* folioLock(sys, pfn);
      yield* folioLock(sys, other);
      folioUnlock(sys, other);
    }
    sys.sched.run('a', lockTwo());
    sys.sched.run(
      'b',
      (function* (): KGen {
        yield { kind: 'step', label: 'x' };
        folioUnlock(sys, pfn);
      })(),
    );
    assert.deepEqual(checkLocks(sys), []);
  });
});
