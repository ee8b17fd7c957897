/**
 * Declared driver locks. A driver names each lock it owns with a lock class and a line saying
 * what it guards; the SDK creates the lock, so lockdep sees the class under a stable name (the
 * same for every device of the driver, as a static lock_class_key gives in the kernel), the
 * explorer's reduction sees the lock object, and a helper can assert it is held before touching
 * what it guards (lockdep_assert_held).
 */
import { Mutex, RwSem, SpinLock } from '../../../sched/locks.ts';
import { Mutex$lock, Mutex$trylock, Mutex$unlock } from '../../../sched/locks.plain.ts';
import type { Scheduler } from '../../../sched/scheduler.ts';
import { DriverError } from './driver_error.ts';

export interface LockDecl {
  /** The lock class lockdep reports ('nouveau_svm.mutex'). Every device of the driver shares it. */
  readonly lockClass: string;
  /** What the lock protects, in a few words ('the device page table and its seq checks'). */
  readonly guards: string;
}

/**
 * The lock's own copy of its declaration, frozen: it never changes, so a snapshot of the world
 * leaves it out, and the driver's object (which may carry more, as a mirror's lock does) stays
 * as the driver made it.
 */
function ownDecl(decl: LockDecl): LockDecl {
  return Object.freeze({ lockClass: decl.lockClass, guards: decl.guards });
}

/** A mutex a driver declared. */
export class DriverMutex extends Mutex {
  readonly decl: LockDecl;

  constructor(sched: Scheduler, name: string, decl: LockDecl) {
    super(sched, name, decl.lockClass);
    this.decl = ownDecl(decl);
  }

  /** mutex_lock() in the plain form of a path (a caller that takes any UserLock finds it). */
  lock$(): void {
    Mutex$lock(this);
  }

  /** mutex_trylock() in the plain form of a path. */
  trylock$(): boolean {
    return Mutex$trylock(this);
  }

  /** mutex_unlock() in the plain form of a path. */
  unlock$(): void {
    Mutex$unlock(this);
  }
}

/** A spinlock a driver declared. */
export class DriverSpinLock extends SpinLock {
  readonly decl: LockDecl;

  constructor(sched: Scheduler, name: string, decl: LockDecl) {
    super(sched, name, decl.lockClass);
    this.decl = ownDecl(decl);
  }
}

/** An rw_semaphore a driver declared. */
export class DriverRwSem extends RwSem {
  readonly decl: LockDecl;

  constructor(sched: Scheduler, name: string, decl: LockDecl) {
    super(sched, name, decl.lockClass);
    this.decl = ownDecl(decl);
  }
}

export type DriverLock = DriverMutex | DriverSpinLock | DriverRwSem;

/** Models lockdep_assert_held(): raises DriverError lock_not_held unless the current thread holds `lock`. */
export function lockdepAssertHeld(lock: DriverLock): void {
  if (!lock.heldByCurrent())
    throw new DriverError({ code: 'lock_not_held', path: ['lock', lock.name], guards: lock.decl.guards });
}
