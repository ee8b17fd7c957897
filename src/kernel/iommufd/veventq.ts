/**
 * Models the vEVENTQ of drivers/iommu/iommufd/eventq.c (IOMMU_VEVENTQ_ALLOC): a queue of one
 * type of events a vIOMMU reports for the guest (iommufd_viommu_report_event()), with an object
 * and an anonymous file. read() gives each event as struct iommufd_vevent_header { flags,
 * sequence } followed by the driver's event data. A queue holding veventq_depth events takes no
 * more: one lost-events header (IOMMU_VEVENTQ_FLAG_LOST_EVENTS) is queued instead, once, and
 * every queued entry, that header included, takes the next sequence number (modulo 2^31).
 *
 * read(2) on the fd is iommufdVeventqRead() (the model's File has no read op).
 */
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { IommufdObject, registerIoctl, respond, type Ucmd } from './main.ts';
import { viommuOf, type Viommu } from './viommu.ts';
import { Eventq, eventqInit, eventqOfFd, initEventqFops } from './eventq.ts';
import { sideTable } from '../../lib/snapshot.ts';

/** IOMMU_VEVENTQ_TYPE_DEFAULT: no vEVENTQ type. */
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
/** IOMMU_VEVENTQ_FLAG_LOST_EVENTS: events were dropped after this point. */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
/** sizeof(struct iommufd_vevent_header). */
export const VEVENT_HEADER_SIZE = 8;
const INT_MAX = 0x7fffffff;

/** Models struct iommufd_vevent: a header and the driver's event data. */
interface Vevent {
  flags: number;
  sequence: number;
  readonly data: Uint8Array;
}

/** Models struct iommufd_veventq: the common event queue, whose deliver list holds the events. */
export class Veventq extends Eventq<Vevent> {
  /** Events queued, the lost-events header excepted. */
  numEvents = 0;
  sequence = 0;
  /** Models veventq->lost_events_header: queued at most once. */
  readonly lostEvents: Vevent = {
    flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
    sequence: 0,
    data: new Uint8Array(0),
  };
  constructor(
    readonly viommu: Viommu,
    readonly type: number,
    readonly depth: number,
  ) {
    super(viommu.ictx, 'VEVENTQ', 'veventq');
  }

  /** Models iommufd_veventq_abort() / _destroy(): pending events are dropped. */
  *destroy(): KGen {
    yield* [];
    this.deliver.length = 0;
    this.numEvents = 0;
    const i = this.viommu.veventqs.indexOf(this);
    if (i >= 0) this.viommu.veventqs.splice(i, 1);
    this.viommu.obj.users--;
  }
}

const veventqObjects = sideTable<IommufdObject, Veventq>();

export function veventqOf(obj: IommufdObject): Veventq {
  return veventqObjects.get(obj)!;
}

/** Models iommufd_vevent_handler(): the entry takes the next sequence number and is queued. */
function veventHandler(q: Veventq, ev: Vevent): void {
  // The lost-events header is queued once, at the tail.
  if (ev === q.lostEvents && q.deliver.includes(ev)) return;
  ev.sequence = q.sequence;
  q.sequence = (q.sequence + 1) & INT_MAX;
  q.deliver.push(ev);
}

/**
 * Models iommufd_viommu_report_event(): queues `data` on the vIOMMU's vEVENTQ of `type`; 0, or
 * -EOPNOTSUPP if the vIOMMU has none.
 */
export function* viommuReportEvent(viommu: Viommu, type: number, data: Uint8Array): KGen<number> {
  const q = viommu.veventqs.find((x) => x.type === type);
  if (q === undefined) return -Errno.EOPNOTSUPP;
  yield* q.lock.lock();
  if (q.numEvents === q.depth) veventHandler(q, q.lostEvents);
  else {
    q.numEvents++;
    veventHandler(q, { flags: 0, sequence: 0, data: data.slice() });
  }
  yield* q.lock.unlock();
  return 0;
}

/**
 * Models iommufd_veventq_fops_read(): whole events into `buf`; bytes read, or -errno if none. Each
 * fetch and restore takes the queue's spinlock on its own, and so does the count of events
 * read, as in the kernel: a report can queue between two events read.
 */
function* veventqRead(q: Veventq, buf: Uint8Array): KGen<number> {
  const count = buf.length;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let done = 0;
  let ev: Vevent | null;
  while ((ev = yield* q.deliverFetch()) !== null) {
    const fits =
      done < count &&
      VEVENT_HEADER_SIZE <= count - done &&
      (ev === q.lostEvents || VEVENT_HEADER_SIZE + ev.data.length <= count - done);
    if (!fits) {
      yield* q.deliverRestore(ev);
      break;
    }
    v.setUint32(done, ev.flags, true);
    v.setUint32(done + 4, ev.sequence, true);
    done += VEVENT_HEADER_SIZE;
    buf.set(ev.data, done);
    done += ev.data.length;
    if (ev !== q.lostEvents) {
      yield* q.lock.lock();
      q.numEvents--;
      yield* q.lock.unlock();
    }
  }
  return done;
}

/** Models iommufd_veventq_fops (read only). */
const veventqFops = initEventqFops<Veventq>('iommufd-viommu-event');

/** read(2) on a vEVENTQ fd into `buf` (its length is the count), as a kernel path. */
export function* veventqFdRead(sys: System, fd: number, buf: Uint8Array): KGen<number> {
  const q = eventqOfFd(sys, fd, veventqFops);
  if (typeof q === 'number') return q;
  return yield* veventqRead(q, buf);
}

/** read(2) on a vEVENTQ fd into `buf` (its length is the count). */
export function iommufdVeventqRead(sys: System, fd: number, buf: Uint8Array): number {
  return sys.run('veventq:read', veventqFdRead(sys, fd, buf));
}

/** Models iommufd_veventq_alloc() (IOMMU_VEVENTQ_ALLOC). */
function* veventqAlloc(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  yield* [];
  const type = cmd.type as number;
  if (cmd.flags !== 0 || cmd.__reserved !== 0 || type === IOMMU_VEVENTQ_TYPE_DEFAULT)
    return -Errno.EOPNOTSUPP;
  const depth = cmd.veventq_depth as number;
  if (depth === 0) return -Errno.EINVAL;
  const vobj = ictx.getObject(cmd.viommu_id as number, 'VIOMMU');
  if (typeof vobj === 'number') return vobj;
  const viommu = viommuOf(vobj);
  let rc = 0;
  if (viommu.veventqs.some((x) => x.type === type)) rc = -Errno.EEXIST;
  else {
    const q = new Veventq(viommu, type, depth);
    rc = ictx.objectAlloc(q.obj);
    if (rc === 0) {
      veventqObjects.set(q.obj, q);
      viommu.obj.users++;
      viommu.veventqs.push(q);
      cmd.out_veventq_id = q.obj.id;
      cmd.out_veventq_fd = eventqInit(q, '[iommufd-viommu-event]', veventqFops, 'iommufd_veventq_alloc');
      respond(ucmd);
      ictx.finalize(q.obj);
    }
  }
  ictx.putObject(vobj);
  return rc;
}

registerIoctl('IOMMU_VEVENTQ_ALLOC', veventqAlloc);
