/**
 * Models the folio lock of mm/filemap.c (folio_lock, folio_trylock, folio_unlock) for the paths
 * that need it here: migration locks source and destination pages, make_device_exclusive()
 * returns its page locked, and a CPU fault on a device-private or device-exclusive entry locks
 * the page before acting on it. The lock is PG.locked on the folio head; sleepers wait on one
 * wait queue per System (the kernel hashes folios onto a table of queues; one queue is the same
 * thing with more spurious wake-ups, which wait_event tolerates).
 */
import { WaitQueue } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import type { System } from '../system.ts';
import { PG } from './page_alloc.ts';

const queues = new WeakMap<System, WaitQueue>();

/** The queue folio-lock sleepers of `sys` wait on (folio_waitqueue()). */
export function folioWaitqueue(sys: System): WaitQueue {
  let wq = queues.get(sys);
  if (wq === undefined) {
    wq = new WaitQueue(sys.sched, 'folio_lock');
    queues.set(sys, wq);
  }
  return wq;
}

/** Models folio_test_locked(). */
export function folioTestLocked(sys: System, pfn: number): boolean {
  const phys = sys.phys;
  return (phys.flags[phys.head(pfn)] & PG.locked) !== 0;
}

/** Models folio_trylock(): takes the lock if it is free; never sleeps. */
export function folioTrylock(sys: System, pfn: number): boolean {
  const phys = sys.phys;
  const h = phys.head(pfn);
  if ((phys.flags[h] & PG.locked) !== 0) return false;
  phys.flags[h] |= PG.locked;
  return true;
}

/** Models folio_lock(): sleeps until the lock is free, then takes it. */
export function* folioLock(sys: System, pfn: number): KGen {
  const wq = folioWaitqueue(sys);
  yield { kind: 'step', label: 'folio_lock', access: { obj: wq, write: true } };
  while (!folioTrylock(sys, pfn)) {
    yield* wq.waitEvent(() => !folioTestLocked(sys, pfn), 'folio_lock');
  }
}

/** Models folio_unlock(): releases the lock and wakes its sleepers. */
export function folioUnlock(sys: System, pfn: number): void {
  const phys = sys.phys;
  const h = phys.head(pfn);
  if ((phys.flags[h] & PG.locked) === 0) throw new Error(`folio_unlock of unlocked pfn ${h}`);
  phys.flags[h] &= ~PG.locked;
  folioWaitqueue(sys).wakeUpAll();
}

/** Models folio_wait_locked(): sleeps until the folio is unlocked, without taking the lock. */
export function* folioWaitLocked(sys: System, pfn: number): KGen {
  yield* folioWaitqueue(sys).waitEvent(() => !folioTestLocked(sys, pfn), 'folio_wait_locked');
}
