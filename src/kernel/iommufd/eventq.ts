/**
 * Models the common event queue of drivers/iommu/iommufd/eventq.c (struct iommufd_eventq): what
 * the fault queue (IOMMU_FAULT_QUEUE_ALLOC, fault.ts) and the vEVENTQ (IOMMU_VEVENTQ_ALLOC,
 * veventq.ts) share — an iommufd object, an anonymous file whose read() drains a deliver list,
 * and the release that drops the file's references. Each kind keeps its own read loop, record
 * layout and destroy, as the kernel does; both fetch from and restore to the deliver list here.
 *
 * Locking: `lock` (eventq->lock, a spinlock) guards `deliver`: every fetch, restore and queueing
 * takes it for that one list operation, as eventq.c does, so a reader, a reporter and the fault
 * queue's automatic responses interleave between them. The fault queue's readers and writers
 * also serialise on its mutex (fault.ts).
 */
import { dropRef, takeRef } from '../refs.ts';
import { Inode, File, type FileOps } from '../mm/mm_types.ts';
import { SpinLock } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { fputGen, IommufdObject, type IommufdCtx } from './main.ts';

/** Models struct iommufd_eventq; `E` is what its deliver list holds. */
export abstract class Eventq<E> {
  readonly obj: IommufdObject;
  /** Entries not yet read, oldest first. */
  readonly deliver: E[] = [];
  readonly lock: SpinLock;
  /** Numbers this queue among its kind's, for lock names. */
  readonly seqno: number;
  /** The anonymous file (eventq->filep), once iommufd_eventq_init() made it. */
  file: File | null = null;

  constructor(
    readonly ictx: IommufdCtx,
    type: 'FAULT' | 'VEVENTQ',
    /** The name the kind's locks and ids are numbered under, e.g. 'fault'. */
    readonly kind: string,
  ) {
    this.obj = new IommufdObject(type, ictx, () => this.destroy());
    this.seqno = ictx.sys.nextId(kind);
    this.lock = new SpinLock(ictx.sys.sched, `${kind}[${this.seqno}].lock`, 'eventq.lock');
  }

  /** The kind's destroy op (iommufd_fault_destroy(), iommufd_veventq_destroy()). */
  abstract destroy(): KGen;

  /**
   * Models iommufd_fault_deliver_fetch() / iommufd_veventq_deliver_fetch(): takes the oldest entry
   * off the deliver list under `lock`, or returns null if it is empty.
   */
  *deliverFetch(): KGen<E | null> {
    yield* this.lock.lock();
    const e = this.deliver.shift() ?? null;
    yield* this.lock.unlock();
    return e;
  }

  /**
   * Models iommufd_fault_deliver_restore() / iommufd_veventq_deliver_restore(): puts an entry
   * that did not fit the reader's buffer back at the head, under `lock`.
   */
  *deliverRestore(e: E): KGen {
    yield* this.lock.lock();
    this.deliver.unshift(e);
    yield* this.lock.unlock();
  }

  /** Models the list_add_tail() of a report under `lock` (iommufd_fault_iopf_handler()). */
  *deliverQueue(e: E): KGen {
    yield* this.lock.lock();
    this.deliver.push(e);
    yield* this.lock.unlock();
  }
}

/**
 * Models INIT_EVENTQ_FOPS(): the file ops of one kind of event queue, each sharing
 * iommufd_eventq_fops_release(): the file held a user reference on the object and one on the
 * iommufd file, and drops both.
 */
export function initEventqFops<Q extends Eventq<unknown>>(name: string): FileOps<Q> {
  return {
    name,
    *release(file: File<Q>): KGen {
      const q = file.priv;
      q.obj.users--;
      const ictxFile = q.ictx.file!;
      dropRef(q.ictx.sys, ictxFile);
      yield* fputGen(ictxFile);
    },
  };
}

/**
 * Models iommufd_eventq_init() followed by fd_install(): the anonymous file `name` with `fops`,
 * a user reference on the object and one on the iommufd file; returns the installed fd.
 */
export function eventqInit<Q extends Eventq<unknown>>(
  q: Q,
  name: string,
  fops: FileOps<Q>,
  holder: string,
): number {
  const sys = q.ictx.sys;
  const inode = new Inode(sys.nextId('mapping'), 'device', name);
  const file = new File(sys.nextId('file'), inode, 2, fops, q);
  q.file = file;
  q.obj.users++;
  q.ictx.file!.refs++;
  takeRef(sys, q.ictx.file!, holder);
  return sys.installFd(file);
}

/** The event queue behind `fd` if its file has `fops` (fdget() and the fops check); else -errno. */
export function eventqOfFd<Q extends Eventq<unknown>>(sys: System, fd: number, fops: FileOps<Q>): Q | number {
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  if (f.fops !== fops) return -Errno.EINVAL;
  return (f as File<Q>).priv;
}
