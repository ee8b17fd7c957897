/**
 * The limits on locking memory: CAP_IPC_LOCK, RLIMIT_MEMLOCK and mlock_future_ok(). Apart from
 * mlock.ts because the fault path asks them too (a VM_LOCKED stack growing down), and mlock.ts
 * depends on the fault path.
 */
import { sideTable } from '../../lib/snapshot.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import type { Process } from '../system.ts';
import { VM, type MmStruct } from './mm_types.ts';

const capIpcLock = sideTable<Process, boolean>();

/** capable(CAP_IPC_LOCK) for a process; ordinary users lack it unless granted. */
export function hasCapIpcLock(p: Process): boolean {
  return capIpcLock.get(p) ?? false;
}

export function setCapIpcLock(p: Process, v: boolean): void {
  capIpcLock.set(p, v);
}

/** RLIMIT_MEMLOCK of `p` in pages (rlimit() >> PAGE_SHIFT). */
export function lockLimit(p: Process): number {
  return Math.floor(p.rlimitMemlock / PAGE_SIZE);
}

/** Models can_do_mlock(): a non-zero RLIMIT_MEMLOCK or CAP_IPC_LOCK. */
export function canDoMlock(p: Process): boolean {
  return p.rlimitMemlock !== 0 || hasCapIpcLock(p);
}

/**
 * Models mlock_future_ok(): whether `bytes` more of a mapping with `flags` may be locked in
 * `mm`. Only a VM_LOCKED mapping is limited, and not for a task with CAP_IPC_LOCK.
 */
export function mlockFutureOk(p: Process, mm: MmStruct, flags: number, bytes: number): boolean {
  if ((flags & VM.LOCKED) === 0 || hasCapIpcLock(p)) return true;
  return Math.floor(bytes / PAGE_SIZE) + mm.lockedVm <= lockLimit(p);
}
