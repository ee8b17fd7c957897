/**
 * Models the fault queue of drivers/iommu/iommufd/eventq.c (IOMMU_FAULT_QUEUE_ALLOC): an object
 * plus an anonymous file. A HWPT allocated with IOMMU_HWPT_FAULT_ID_VALID routes the I/O page
 * faults (page requests) of the devices attached to it into the queue; userspace read()s them as
 * struct iommu_hwpt_pgfault records, each group getting a cookie, and write()s back struct
 * iommu_hwpt_page_response with that cookie. Groups still pending when a device leaves the HWPT,
 * or when the queue is destroyed, are answered IOMMU_PAGE_RESP_INVALID by the kernel.
 *
 * read() and write() on the fd are iommufdFaultRead() / iommufdFaultWrite() (the model's File
 * has no read/write ops): the byte buffer stands for the user's buffer.
 */
import { Mutex } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { System } from '../system.ts';
import { IommufdObject, registerIoctl, respond, type IommufdCtx, type Ucmd } from './main.ts';
import type { IommufdDevice } from './device.ts';
import { Eventq, eventqInit, eventqOfFd, initEventqFops } from './eventq.ts';
import { sideTable } from '../../lib/snapshot.ts';

/** struct iommu_hwpt_pgfault: flags, dev_id, pasid, grpid, perm, __reserved, addr, length, cookie. */
export const PGFAULT_SIZE = 40;
/** struct iommu_hwpt_page_response: cookie, code. */
export const PAGE_RESPONSE_SIZE = 8;
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
export const IOMMUFD_PAGE_RESP_INVALID = 1;
/** enum iommu_page_response_code of the IOMMU core (FAILURE is what the core answers on its own). */
export const IOMMU_PAGE_RESP_SUCCESS = 0;
export const IOMMU_PAGE_RESP_INVALID = 1;
export const IOMMU_PAGE_RESP_FAILURE = 2;
/** struct iommu_fault_page_request flags (same bits as IOMMU_PGFAULT_FLAGS_*). */
export const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
export const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;

/** Models struct iommu_fault_page_request. */
export interface PageRequest {
  flags: number;
  pasid: number;
  grpid: number;
  perm: number;
  addr: bigint;
}

/** Models struct iopf_group with its attach handle: the faults of one page request group. */
export interface IopfGroup {
  readonly faults: PageRequest[];
  readonly idev: IommufdDevice;
  /** The HWPT whose domain handled the fault (the attach handle's domain). */
  readonly hwpt: { readonly fault: FaultQueue | null };
  cookie: number;
  /** The response given, once answered (iopf_group_response). */
  response: number | null;
}

/**
 * Models struct iommufd_fault: the common event queue (its deliver list holds the groups not yet
 * read), the groups read and awaiting a response, and `mutex`, which serialises read(), write()
 * and the automatic responses.
 */
export class FaultQueue extends Eventq<IopfGroup> {
  /** Groups read and waiting for a response, by cookie (xarray, XA_FLAGS_ALLOC1). */
  readonly response = new Map<number, IopfGroup>();
  private nextCookie = 1;
  readonly mutex: Mutex;

  constructor(ictx: IommufdCtx) {
    super(ictx, 'FAULT', 'fault');
    this.mutex = new Mutex(ictx.sys.sched, `fault[${this.seqno}].mutex`, 'fault.mutex');
  }

  allocCookie(group: IopfGroup): void {
    group.cookie = this.nextCookie++;
    this.response.set(group.cookie, group);
  }

  /** Models iommufd_fault_destroy(): every group still pending is answered INVALID. */
  *destroy(): KGen {
    for (const g of this.deliver.splice(0)) groupResponse(this.ictx.sys, g, IOMMU_PAGE_RESP_INVALID);
    for (const g of this.response.values()) groupResponse(this.ictx.sys, g, IOMMU_PAGE_RESP_INVALID);
    this.response.clear();
  }
}

const faultObjects = sideTable<IommufdObject, FaultQueue>();

export function faultOf(obj: IommufdObject): FaultQueue {
  return faultObjects.get(obj)!;
}

/** Models iopf_group_response(): the answer goes to the device (the mock ignores it). */
function groupResponse(sys: System, group: IopfGroup, code: number): void {
  group.response = code;
  sys.trace.count(code === IOMMU_PAGE_RESP_SUCCESS ? 'iopf.response.success' : 'iopf.response.error');
}

/**
 * Models iommu_report_device_fault() for a last-page page request, as the mock device raises it:
 * the group goes to the fault queue of the HWPT the device is attached to (the RID handle is used
 * for PASID faults too: the mock has a user-managed PASID table). Without IOPF enabled on the
 * device, or without a fault handler on the domain, the core answers FAILURE itself.
 */
export function* reportDeviceFault(idev: IommufdDevice, fault: PageRequest): KGen {
  const sys = idev.ictx.sys;
  // The PASID's attach handle if it has one, else the RID's (the mock's user PASID table).
  const pasidHwpt =
    (fault.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) !== 0 ? idev.pasids.get(fault.pasid) : undefined;
  const hwpt = pasidHwpt ?? idev.hwpt;
  const group: IopfGroup = {
    faults: [fault],
    idev,
    hwpt: hwpt ?? { fault: null },
    cookie: 0,
    response: null,
  };
  if (idev.iopfEnabled === 0 || hwpt === null || !hwpt.domain.iopfHandler || hwpt.fault === null) {
    groupResponse(sys, group, IOMMU_PAGE_RESP_FAILURE);
    return;
  }
  // iommufd_fault_iopf_handler(): queue for delivery (under the queue's spinlock) and wake readers.
  yield* hwpt.fault.deliverQueue(group);
}

/**
 * Models iommufd_auto_response_faults(): when `idev` leaves `hwpt`, its groups still queued or
 * awaiting a response are answered INVALID. Under the queue's mutex; the queued ones are moved off
 * the deliver list under its spinlock first, then answered.
 */
export function* autoResponseFaults(idev: IommufdDevice, hwpt: { readonly fault: FaultQueue | null }): KGen {
  const fault = hwpt.fault;
  if (fault === null) return;
  const sys = idev.ictx.sys;
  yield* fault.mutex.lock();
  yield* fault.lock.lock();
  const freeList: IopfGroup[] = [];
  for (let i = 0; i < fault.deliver.length;) {
    const g = fault.deliver[i];
    if (g.idev === idev && g.hwpt === hwpt) {
      fault.deliver.splice(i, 1);
      freeList.push(g);
    } else i++;
  }
  yield* fault.lock.unlock();
  for (const g of freeList) groupResponse(sys, g, IOMMU_PAGE_RESP_INVALID);
  for (const [cookie, g] of [...fault.response]) {
    if (g.idev !== idev || g.hwpt !== hwpt) continue;
    fault.response.delete(cookie);
    groupResponse(sys, g, IOMMU_PAGE_RESP_INVALID);
  }
  yield* fault.mutex.unlock();
}

/** Models iommufd_compose_fault_message(): one struct iommu_hwpt_pgfault. */
function composeFaultMessage(f: PageRequest, idev: IommufdDevice, cookie: number): Uint8Array {
  const b = new Uint8Array(PGFAULT_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, f.flags, true);
  v.setUint32(4, idev.obj.id, true);
  v.setUint32(8, f.pasid, true);
  v.setUint32(12, f.grpid, true);
  v.setUint32(16, f.perm, true);
  v.setBigUint64(24, f.addr, true);
  v.setUint32(32, 0, true);
  v.setUint32(36, cookie, true);
  return b;
}

/** Models iommufd_fault_fops_read(): whole groups into `buf`; bytes read, or -errno if none. */
function* faultRead(fault: FaultQueue, buf: Uint8Array): KGen<number> {
  const count = buf.length;
  if (count % PGFAULT_SIZE !== 0) return -Errno.ESPIPE;
  yield* fault.mutex.lock();
  let done = 0;
  let group: IopfGroup | null;
  while ((group = yield* fault.deliverFetch()) !== null) {
    if (done >= count || group.faults.length * PGFAULT_SIZE > count - done) {
      yield* fault.deliverRestore(group);
      break;
    }
    fault.allocCookie(group);
    for (const f of group.faults) {
      buf.set(composeFaultMessage(f, group.idev, group.cookie), done);
      done += PGFAULT_SIZE;
    }
  }
  yield* fault.mutex.unlock();
  return done;
}

/** Models iommufd_fault_fops_write(): responses from `buf`; bytes consumed, or -errno if none. */
function* faultWrite(fault: FaultQueue, buf: Uint8Array): KGen<number> {
  const count = buf.length;
  if (count % PAGE_RESPONSE_SIZE !== 0) return -Errno.ESPIPE;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  yield* fault.mutex.lock();
  let done = 0;
  let rc = 0;
  while (count > done) {
    const cookie = v.getUint32(done, true);
    const code = v.getUint32(done + 4, true);
    if (code !== IOMMUFD_PAGE_RESP_SUCCESS && code !== IOMMUFD_PAGE_RESP_INVALID) {
      rc = -Errno.EINVAL;
      break;
    }
    const group = fault.response.get(cookie);
    if (group === undefined) {
      rc = -Errno.EINVAL;
      break;
    }
    fault.response.delete(cookie);
    // The uAPI codes equal the core's SUCCESS / INVALID.
    groupResponse(fault.ictx.sys, group, code);
    done += PAGE_RESPONSE_SIZE;
  }
  yield* fault.mutex.unlock();
  return done === 0 ? rc : done;
}

/** Models iommufd_fault_fops (read and write are the two functions above). */
const faultFops = initEventqFops<FaultQueue>('iommufd-pgfault');

/** read(2) on a fault queue fd into `buf` (its length is the count), as a kernel path. */
export function* faultFdRead(sys: System, fd: number, buf: Uint8Array): KGen<number> {
  const fault = eventqOfFd(sys, fd, faultFops);
  if (typeof fault === 'number') return fault;
  return yield* faultRead(fault, buf);
}

/** write(2) on a fault queue fd from `buf`, as a kernel path. */
export function* faultFdWrite(sys: System, fd: number, buf: Uint8Array): KGen<number> {
  const fault = eventqOfFd(sys, fd, faultFops);
  if (typeof fault === 'number') return fault;
  return yield* faultWrite(fault, buf);
}

/** read(2) on a fault queue fd into `buf` (its length is the count). */
export function iommufdFaultRead(sys: System, fd: number, buf: Uint8Array): number {
  return sys.run('fault:read', faultFdRead(sys, fd, buf));
}

/** write(2) on a fault queue fd from `buf`. */
export function iommufdFaultWrite(sys: System, fd: number, buf: Uint8Array): number {
  return sys.run('fault:write', faultFdWrite(sys, fd, buf));
}

/** Models iommufd_fault_alloc() (IOMMU_FAULT_QUEUE_ALLOC). */
function* faultAlloc(ucmd: Ucmd): KGen<number> {
  const { ictx, cmd } = ucmd;
  if (cmd.flags !== 0) return -Errno.EOPNOTSUPP;
  const fault = new FaultQueue(ictx);
  const rc = ictx.objectAlloc(fault.obj);
  if (rc < 0) return rc;
  faultObjects.set(fault.obj, fault);
  cmd.out_fault_id = fault.obj.id;
  cmd.out_fault_fd = eventqInit(fault, '[iommufd-pgfault]', faultFops, 'iommufd_fault_alloc');
  respond(ucmd);
  ictx.finalize(fault.obj);
  return 0;
}

registerIoctl('IOMMU_FAULT_QUEUE_ALLOC', faultAlloc);
