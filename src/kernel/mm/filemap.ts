/**
 * Models the folio lock of mm/filemap.c (folio_lock, folio_trylock, folio_unlock) for the paths
 * that need it here: migration locks source and destination pages, make_device_exclusive()
 * returns its page locked, and a CPU fault on a device-private or device-exclusive entry locks
 * the page before acting on it. The lock is PG.locked on the folio head; sleepers wait on one
 * wait queue per System (the kernel hashes folios onto a table of queues; one queue is the same
 * thing with more spurious wake-ups, which wait_event tolerates).
 *
 * The lock is also visible to the lock-order checks, as lock class 'folio_lock': a folio locked
 * by a thread is on its held list, so a lock taken under it orders after it, and a sleeping
 * folio_lock() under a lock orders after that lock (mutex -> folio_lock here and folio_lock ->
 * mutex there is the cycle lockdep reports). Trylocks add no edge into the class, and folio locks
 * may nest (the kernel keeps them apart by address order and trylock), so a thread's held list
 * carries the class once with a count of the folios (a migration locks one per page). The owner
 * is remembered per folio so the unlock counts it off the right thread, whoever unlocks it.
 */
import { lockdepOf, popHeldInstance, pushHeldInstance, WaitQueue } from '../../sched/locks.ts';
import type { Thread } from '../../sched/thread.ts';
import type { KGen } from '../../sched/types.ts';
import type { System } from '../system.ts';
import { PG } from './page_alloc.ts';

/** The queue folio-lock sleepers of `sys` wait on (folio_waitqueue()). */
export function folioWaitqueue(sys: System): WaitQueue {
  return folioLocksOf(sys).waitqueue(sys);
}

/** Models folio_test_locked(). */
export function folioTestLocked(sys: System, pfn: number): boolean {
  const phys = sys.phys;
  return (phys.flags[phys.head(pfn)] & PG.locked) !== 0;
}

export const FOLIO_LOCK_CLASS = 'folio_lock';

/**
 * The folio locks of one System: the queue their sleepers wait on, and who locked each locked
 * folio, by head PFN: a typed array of small numbers into a table of the owning threads, so
 * locking a folio per page of a migration stores no object per folio. A row of the table is free
 * again once its thread holds no folio. One object, a field of the System, holds both, so a lock
 * or an unlock looks nothing up.
 */
export class FolioLocks {
  /** Made on first use (folio_waitqueue()). */
  private wq: WaitQueue | null = null;
  /** Per head PFN: 0 (no owner recorded) or 1 + the owner's row. */
  private rowOf = new Uint16Array(0);
  private readonly threads: (Thread | null)[] = [];
  /** Per row: the folios its thread holds. */
  private readonly held: number[] = [];

  waitqueue(sys: System): WaitQueue {
    this.wq ??= new WaitQueue(sys.sched, 'folio_lock');
    return this.wq;
  }

  /** Records `t` as the owner of the folio `head`. */
  set(head: number, t: Thread): void {
    let row = this.threads.indexOf(t);
    if (row < 0) {
      row = this.threads.indexOf(null);
      if (row < 0) {
        row = this.threads.length;
        if (row === 0xffff) throw new Error('folio lock owners: too many threads');
        this.threads.push(null);
        this.held.push(0);
      }
      this.threads[row] = t;
    }
    if (head >= this.rowOf.length) {
      const next = new Uint16Array(Math.max(head + 1, 2 * this.rowOf.length, 1024));
      next.set(this.rowOf);
      this.rowOf = next;
    }
    this.rowOf[head] = row + 1;
    this.held[row]++;
  }

  /** The recorded owner of the folio `head`, or null. */
  ownerOf(head: number): Thread | null {
    const row = head < this.rowOf.length ? this.rowOf[head] - 1 : -1;
    return row < 0 ? null : this.threads[row];
  }

  /** Moves the owner recorded for the folio `from` to the folio `to` (a split folio's lock). */
  move(from: number, to: number): void {
    const t = this.take(from);
    if (t !== null) this.set(to, t);
  }

  /** Forgets the owner of the folio `head` and returns it, if one was recorded. */
  take(head: number): Thread | null {
    const row = head < this.rowOf.length ? this.rowOf[head] - 1 : -1;
    if (row < 0) return null;
    this.rowOf[head] = 0;
    const t = this.threads[row];
    if (--this.held[row] === 0) this.threads[row] = null;
    return t;
  }
}

function folioLocksOf(sys: System): FolioLocks {
  return (sys.folioLocks ??= new FolioLocks());
}

/**
 * After the locked folio `head` of `n` pages was split: the folio of page `keep` stays locked (its
 * owner's record moves there), every other page is unlocked and sleepers are woken, as
 * __folio_split() unlocks the new folios but one (migrate_vma_split_folio() keeps the faulting
 * page's folio locked).
 */
export function folioSplitUnlock(sys: System, head: number, n: number, keep: number): void {
  const phys = sys.phys;
  let unlocked = false;
  for (let p = head; p < head + n; p++) {
    if (p !== keep && phys.isUsed(p) && (phys.flags[p] & PG.locked) !== 0) {
      phys.flags[p] &= ~PG.locked;
      unlocked = true;
    }
  }
  const locks = folioLocksOf(sys);
  if (keep !== head) locks.move(head, keep);
  if (unlocked) locks.waitqueue(sys).wakeUpAll();
}

/** Models folio_trylock(): takes the lock if it is free; never sleeps. */
export function folioTrylock(sys: System, pfn: number): boolean {
  const phys = sys.phys;
  const h = phys.head(pfn);
  if ((phys.flags[h] & PG.locked) !== 0) return false;
  phys.flags[h] |= PG.locked;
  const t = sys.sched.current;
  if (t !== null) {
    pushHeldInstance(t, FOLIO_LOCK_CLASS);
    folioLocksOf(sys).set(h, t);
  }
  return true;
}

/** Models folio_lock(): sleeps until the lock is free, then takes it. */
export function* folioLock(sys: System, pfn: number): KGen {
  const wq = folioWaitqueue(sys);
  // No footprint: folio_trylock() and folio_unlock() are atomic bit operations that run inside
  // their callers' steps (under a page-table lock, or none), so no object this step could
  // declare is declared by every step that changes PG_locked (test/sched/explore/
  // primitive_footprints.test.ts found the order of a folio_lock() and a trylock under a mutex
  // tried one way only while it declared the wait queue).
  yield { kind: 'step', label: 'folio_lock' };
  lockdepOf(sys.sched).acquire(sys.sched.cur(), FOLIO_LOCK_CLASS, FOLIO_LOCK_CLASS, true);
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
  const locks = folioLocksOf(sys);
  const owner = locks.take(h);
  if (owner !== null) popHeldInstance(owner, FOLIO_LOCK_CLASS);
  locks.waitqueue(sys).wakeUpAll();
}

/** Models folio_wait_locked(): sleeps until the folio is unlocked, without taking the lock. */
export function* folioWaitLocked(sys: System, pfn: number): KGen {
  yield* folioWaitqueue(sys).waitEvent(() => !folioTestLocked(sys, pfn), 'folio_wait_locked');
}
