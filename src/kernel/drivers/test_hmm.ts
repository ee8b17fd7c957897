/**
 * Models lib/test_hmm.c, the "dmirror" device: a simulated device that mirrors the address space
 * of the process that opened it, through one mmu_interval_notifier and hmm_range_fault(), and
 * that owns device memory (ZONE_DEVICE private or coherent pages) it migrates pages to and from.
 *
 * This file holds the device and file lifetime, the device page table, the invalidate and fault
 * paths, and the ioctls that only mirror (READ, WRITE, SNAPSHOT, EXCLUSIVE, CHECK_EXCLUSIVE,
 * FLAGS). Device memory and migration live in test_hmm_devmem.ts; the uAPI in test_hmm_uapi.ts.
 */
import { PAGE_SIZE, ULONG_MAX, vpn } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { mmgetNotZero, mmput } from '../exit.ts';
import { accessRemoteVm } from '../mm/memory.ts';
import { File, Inode, type FileOps, type Vma } from '../mm/mm_types.ts';
import {
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmmPfnToMapOrder,
  type HmmRange,
} from '../mm/hmm.ts';
import { isDeviceCoherentPage, isDevicePrivatePage, pageDevPagemap } from '../mm/memremap.ts';
import { makeDeviceExclusive } from '../mm/device_exclusive.ts';
import { folioUnlock } from '../mm/filemap.ts';
import { vmInsertPage } from '../mm/memory.ts';
import {
  MMU_NOTIFY,
  type MmuIntervalNotifierOps,
  type MmuNotifierRange,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
  warn,
} from '../mm/mmu_notifier.ts';
import { allocPageReclaim } from '../mm/vmscan.ts';
import { hmmRangeFaultLocked } from './sdk/hmm_mirror.ts';
import type { Process, System } from '../system.ts';
import {
  dmirrorDeviceEvictChunk,
  dmirrorDeviceRemoveChunks,
  dmirrorMigrateToDevice,
  dmirrorMigrateToSystem,
  dmirrorPageToDevice,
} from './test_hmm_devmem.ts';
import {
  DPT_TAG_ATOMIC,
  DPT_TAG_READ,
  DPT_TAG_WRITE,
  Dmirror,
  DmirrorDevice,
  DmirrorInterval,
  type DmirrorDriver,
} from './test_hmm_types.ts';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE,
  HMM_DMIRROR_PROT_ERROR,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_PUD,
  HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
  type HmmDmirrorCmd,
} from './test_hmm_uapi.ts';

export * from './test_hmm_uapi.ts';
export {
  DPT_TAG_ATOMIC,
  DPT_TAG_READ,
  DPT_TAG_WRITE,
  Dmirror,
  DmirrorChunk,
  DmirrorDevice,
  type DmirrorDriver,
  type DptEntry,
} from './test_hmm_types.ts';
import { sideTable } from '../../lib/snapshot.ts';
export { DEVMEM_CHUNK_SIZE } from './test_hmm_devmem.ts';

/** Pages faulted per hmm_range_fault() call (the pfns[] array of dmirror_fault; 64 in older kernels). */
export const DMIRROR_FAULT_CHUNK = 32;
/** Pages snapshotted per temporary notifier (dmirror_snapshot's pfns[]). */
export const DMIRROR_SNAPSHOT_CHUNK = 32;
/**
 * Virtual time one pass of the fault loop costs. The loop's timeout is measured in virtual time,
 * which otherwise only moves while every thread waits; charging each pass keeps a loop that
 * keeps colliding with invalidations bounded (1000 ms / this many passes) as in the kernel.
 */
export const DMIRROR_FAULT_PASS_NS = 10_000;
/** The largest bounce buffer the model allocates (vmalloc failing beyond it). */
const MAX_BOUNCE_BYTES = 2 ** 31;
/** The interval the per-file notifier covers: [0, ULONG_MAX & PAGE_MASK). */
const MIRROR_INTERVAL_LENGTH = ULONG_MAX - (ULONG_MAX % PAGE_SIZE);

export interface CreateDmirrorOptions {
  /** Replaces some or all of the built-in invalidate and fault handlers. */
  readonly driver?: Partial<DmirrorDriver>;
}

/** The devices of one System. */
interface Registry {
  readonly devices: DmirrorDevice[];
  nextMirror: number;
}
const registries = sideTable<System, Registry>();

function registryOf(sys: System): Registry {
  let r = registries.get(sys);
  if (r === undefined) {
    const reg: Registry = { devices: [], nextMirror: 0 };
    registries.set(sys, reg);
    r = reg;
  }
  return r;
}

/** Every dmirror device of `sys`. */
export function dmirrorDevices(sys: System): readonly DmirrorDevice[] {
  return registries.get(sys)?.devices ?? [];
}

/** The device named `name` (as registered in sys.devices), or null. */
export function dmirrorDevice(sys: System, name: string): DmirrorDevice | null {
  const d = sys.devices.get(name);
  return d instanceof DmirrorDevice ? d : null;
}

/**
 * Models dmirror_device_init() for one /dev/hmm_dmirrorN: registers the device in sys.devices.
 * Device memory is added on demand, one chunk at a time (the kernel adds one chunk at init; the
 * model defers it to the first allocation so a device that never migrates costs nothing).
 */
export function createDmirrorDevice(
  sys: System,
  name: string,
  memory: 'private' | 'coherent',
  opts: CreateDmirrorOptions = {},
): DmirrorDevice {
  if (sys.devices.has(name)) throw new RangeError(`device ${name} already exists`);
  const driver: DmirrorDriver = { ...defaultDmirrorDriver, ...(opts.driver ?? {}) };
  const dev = new DmirrorDevice(sys, name, memory, driver);
  sys.devices.set(name, dev);
  registryOf(sys).devices.push(dev);
  return dev;
}

/** The file operations of a dmirror device file. */
const dmirrorFops: FileOps<Dmirror> = {
  name: 'hmm_dmirror',
  ioctl: dmirrorFopsIoctl,
  release: dmirrorFopsRelease,
  mmap: dmirrorFopsMmap,
};

/** The interval-notifier ops of the per-file mirror: the device's (possibly replaced) invalidate. */
const dmirrorMinOps: MmuIntervalNotifierOps<Dmirror> = {
  invalidate: (mirror, range, curSeq) => mirror.mdevice.driver.invalidate(mirror, range, curSeq),
};

/**
 * Models open("/dev/hmm_dmirrorN") by `proc` (dmirror_fops_open): a new mirror of the opener's mm
 * through one interval notifier over the whole address space. Returns the fd or -errno.
 */
export function* dmirrorOpen(sys: System, deviceName: string, proc: Process): KGen<number> {
  const mdevice = dmirrorDevice(sys, deviceName);
  if (mdevice === null) return -Errno.ENODEV;
  const mm = proc.mm;
  if (mm === null) return -Errno.ESRCH;
  if (sys.inject.shouldFail('dmirror_open')) return -Errno.ENOMEM;
  const dmirror = new Dmirror(mdevice, registryOf(sys).nextMirror++);
  const ret = yield* mmuIntervalNotifierInsert(dmirror, mm, 0, MIRROR_INTERVAL_LENGTH, dmirrorMinOps);
  if (ret !== 0) return ret;
  const inode = new Inode(sys.nextId('mapping'), 'device', deviceName);
  const file = new File(sys.nextId('file'), inode, 2, dmirrorFops, dmirror);
  dmirror.file = file;
  mdevice.mirrors.add(dmirror);
  return sys.installFd(file);
}

/**
 * Models dmirror_fops_release(): stop mirroring, evict every page of the device's memory back
 * to system memory (newest kernels do this so nothing outlives the file), drop the device PT.
 */
function* dmirrorFopsRelease(file: File<Dmirror>): KGen {
  const dmirror = file.priv;
  const mdevice = dmirror.mdevice;
  // Once the notifier is removed no invalidation reaches this mirror, so its page table goes
  // stale while the chunks are evicted, as in the kernel (xa_destroy comes last). Nothing can use
  // it any more (the file is gone), so it counts as released from the start: the oracles skip it.
  dmirror.released = true;
  yield* mmuIntervalNotifierRemove(dmirror);
  for (const chunk of [...mdevice.chunks]) yield* dmirrorDeviceEvictChunk(chunk);
  dmirror.pt.clear();
  mdevice.mirrors.delete(dmirror);
}

/** Models dmirror_fops_mmap(): every page of the VMA is a fresh zeroed page, vm_insert_page'd. */
function* dmirrorFopsMmap(_file: File<Dmirror>, vma: Vma): KGen<number> {
  const sys = vma.mm.sys;
  for (let addr = vma.start; addr < vma.end; addr += PAGE_SIZE) {
    const pfn = yield* allocPageReclaim(sys, 0, 'dmirror_mmap');
    if (pfn < 0) return -Errno.ENOMEM;
    sys.phys.clearPage(pfn);
    const ret = vmInsertPage(vma, addr, pfn);
    // vm_insert_page took its own reference; ours goes either way.
    sys.phys.put(pfn);
    if (ret !== 0) return ret;
  }
  return 0;
}

// --- device page table ---------------------------------------------------------------------

/** Stores one device PT entry (xa_store with a tagged page pointer). */
export function dptStore(mirror: Dmirror, index: number, pfn: number, tag: number): void {
  const sys = mirror.mdevice.sys;
  mirror.pt.store(index, { pfn, tag, gen: sys.phys.gen[pfn] });
}

/** Models dmirror_do_update(): erases the PT entries of [start, end] (inclusive upper index, as the kernel). */
export function dmirrorDoUpdate(mirror: Dmirror, start: number, end: number): void {
  mirror.pt.eraseRange(vpn(start), vpn(end));
}

/**
 * The frame that holds the data of `pfn` for the device: a device-private page's backing page,
 * otherwise the page itself. -1 if a device-private page has no backing page (a freed page).
 */
export function dmirrorDataPfn(sys: System, pfn: number): number {
  if (!isDevicePrivatePage(sys, pfn)) return pfn;
  const mdevice = dmirrorPageToDevice(sys, pfn);
  if (mdevice === null) return -1;
  const head = sys.phys.head(pfn);
  const r = mdevice.backing.get(head);
  return r === undefined ? -1 : r + (pfn - head);
}

// --- the built-in driver ---------------------------------------------------------------------

/** Models dmirror_interval_invalidate(). */
export function* dmirrorIntervalInvalidate(
  mirror: Dmirror,
  range: MmuNotifierRange,
  curSeq: number,
): KGen<boolean> {
  // The migration code keeps the PT right for its own MIGRATE events.
  if (range.event === MMU_NOTIFY.MIGRATE && range.owner === mirror.mdevice) return true;
  if (mmuNotifierRangeBlockable(range)) {
    yield* mirror.mutex.lock();
  } else if (!(yield* mirror.mutex.trylock())) {
    return false;
  }
  mmuIntervalSetSeq(mirror, curSeq);
  dmirrorDoUpdate(mirror, range.start, range.end);
  yield* mirror.mutex.unlock();
  return true;
}

/**
 * Models dmirror_do_fault(): programs the device PT from a successful hmm_range_fault(). The
 * caller holds mirror.mutex and has checked read_retry.
 */
export function dmirrorDoFault(mirror: Dmirror, range: HmmRange): number {
  const sys = mirror.mdevice.sys;
  const words = range.hmmPfns;
  const first = vpn(range.start);
  const n = vpn(range.end) - first;
  for (let i = 0; i < n; i++) {
    const flags = words[2 * i + 1];
    // Every page was asked to be faulted in, so no error and no invalid entry can come back.
    if ((flags & HMM_PFN_ERROR) !== 0) warn(sys, `dmirror_do_fault: HMM_PFN_ERROR at page ${first + i}`);
    if ((flags & HMM_PFN_VALID) === 0) warn(sys, `dmirror_do_fault: invalid pfn at page ${first + i}`);
    let tag = DPT_TAG_READ;
    if ((flags & HMM_PFN_WRITE) !== 0) tag = DPT_TAG_WRITE;
    else if ((range.defaultFlags & HMM_PFN_REQ_WRITE) !== 0) {
      warn(sys, `dmirror_do_fault: write fault returned a read-only page at page ${first + i}`);
      return -Errno.EFAULT;
    }
    dptStore(mirror, first + i, words[2 * i], tag);
  }
  return 0;
}

/**
 * Models dmirror_range_fault(): the canonical read_begin / hmm_range_fault / read_retry loop (the
 * SDK's hmmRangeFaultLocked), then the device PT update under the mirror's mutex.
 */
export function* dmirrorRangeFault(mirror: Dmirror, range: HmmRange): KGen<number> {
  const ret = yield* hmmRangeFaultLocked(range, mirror.mutex, { passNs: DMIRROR_FAULT_PASS_NS });
  if (ret !== 0) return ret;
  const r = dmirrorDoFault(mirror, range);
  yield* mirror.mutex.unlock();
  return r;
}

/** The built-in handlers, used for every member a device's options do not replace. */
export const defaultDmirrorDriver: DmirrorDriver = {
  invalidate: dmirrorIntervalInvalidate,
  rangeFault: dmirrorRangeFault,
};

/** A fresh hmm_range for `mirror`'s notifier over at most `chunk` pages. */
function newRange(mirror: Dmirror, chunk: number, defaultFlags: number): HmmRange {
  return {
    notifier: mirror,
    notifierSeq: 0,
    start: 0,
    end: 0,
    hmmPfns: new Uint32Array(2 * chunk),
    defaultFlags,
    pfnFlagsMask: 0,
    devPrivateOwner: mirror.mdevice,
  };
}

/** Models dmirror_fault(): faults [start, end) in chunks through the driver's range fault. */
export function* dmirrorFault(mirror: Dmirror, start: number, end: number, write: boolean): KGen<number> {
  const mm = mirror.mm;
  const range = newRange(mirror, DMIRROR_FAULT_CHUNK, HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0));
  // The mm belongs to the mirrored process: pin it, or there is nothing to fault.
  if (!mmgetNotZero(mm)) return 0;
  let ret = 0;
  for (let addr = start; addr < end; addr = range.end) {
    range.start = addr;
    range.end = Math.min(addr + DMIRROR_FAULT_CHUNK * PAGE_SIZE, end);
    range.hmmPfns.fill(0);
    ret = yield* mirror.mdevice.driver.rangeFault(mirror, range);
    if (ret !== 0) break;
  }
  yield* mmput(mm);
  return ret;
}

/** A bounce buffer (struct dmirror_bounce). */
export interface DmirrorBounce {
  readonly data: Uint8Array;
  readonly addr: number;
  cpages: number;
}

function bounceInit(addr: number, size: number): DmirrorBounce | null {
  if (size > MAX_BOUNCE_BYTES) return null;
  return { data: new Uint8Array(size), addr, cpages: 0 };
}

/** Models dmirror_do_read(): copies PT-mapped pages into the bounce buffer; -ENOENT at the first hole. */
export function dmirrorDoRead(mirror: Dmirror, start: number, end: number, bounce: DmirrorBounce): number {
  const sys = mirror.mdevice.sys;
  let off = start - bounce.addr;
  for (let p = vpn(start); p < vpn(end); p++) {
    const e = mirror.pt.load(p);
    if (e === undefined) return -Errno.ENOENT;
    const data = dmirrorDataPfn(sys, e.pfn);
    if (data < 0) bounce.data.fill(0, off, off + PAGE_SIZE);
    else sys.phys.read(data, 0, bounce.data, off, PAGE_SIZE);
    off += PAGE_SIZE;
    bounce.cpages++;
  }
  return 0;
}

/** Models dmirror_do_write(): copies the bounce buffer into writable PT-mapped pages. */
function dmirrorDoWrite(mirror: Dmirror, start: number, end: number, bounce: DmirrorBounce): number {
  const sys = mirror.mdevice.sys;
  let off = start - bounce.addr;
  for (let p = vpn(start); p < vpn(end); p++) {
    const e = mirror.pt.load(p);
    if (e === undefined || e.tag !== DPT_TAG_WRITE) return -Errno.ENOENT;
    const data = dmirrorDataPfn(sys, e.pfn);
    if (data >= 0) sys.phys.write(data, 0, bounce.data, off, PAGE_SIZE);
    off += PAGE_SIZE;
    bounce.cpages++;
  }
  return 0;
}

/** copy_to_user(): into `cmd.ptr` of the mirrored process, or into `cmd.buf`. */
export function* copyToUser(mirror: Dmirror, cmd: HmmDmirrorCmd, data: Uint8Array): KGen<number> {
  if (cmd.ptr === undefined) {
    if (cmd.buf === undefined) return 0;
    if (cmd.buf.length < data.length) return -Errno.EFAULT;
    cmd.buf.set(data);
    return 0;
  }
  const n = yield* accessRemoteVm(mirror.mm, cmd.ptr, data, true);
  return n === data.length ? 0 : -Errno.EFAULT;
}

/** copy_from_user(): from `cmd.ptr` of the mirrored process, or from `cmd.buf`. */
function* copyFromUser(mirror: Dmirror, cmd: HmmDmirrorCmd, into: Uint8Array): KGen<number> {
  if (cmd.ptr === undefined) {
    if (cmd.buf === undefined || cmd.buf.length < into.length) return -Errno.EFAULT;
    into.set(cmd.buf.subarray(0, into.length));
    return 0;
  }
  const n = yield* accessRemoteVm(mirror.mm, cmd.ptr, into, false);
  return n === into.length ? 0 : -Errno.EFAULT;
}

/** Models dmirror_read(). */
function* dmirrorRead(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  const size = cmd.npages * PAGE_SIZE;
  let start = cmd.addr;
  const end = start + size;
  const bounce = bounceInit(start, size);
  if (bounce === null) return -Errno.ENOMEM;
  let ret: number;
  for (;;) {
    yield* mirror.mutex.lock();
    ret = dmirrorDoRead(mirror, start, end, bounce);
    yield* mirror.mutex.unlock();
    if (ret !== -Errno.ENOENT) break;
    start = cmd.addr + bounce.cpages * PAGE_SIZE;
    ret = yield* dmirrorFault(mirror, start, end, false);
    if (ret !== 0) break;
    cmd.faults = (cmd.faults ?? 0) + 1;
  }
  if (ret === 0) ret = yield* copyToUser(mirror, cmd, bounce.data);
  cmd.cpages = bounce.cpages;
  return ret;
}

/** Models dmirror_write(). */
function* dmirrorWrite(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  const size = cmd.npages * PAGE_SIZE;
  let start = cmd.addr;
  const end = start + size;
  const bounce = bounceInit(start, size);
  if (bounce === null) return -Errno.ENOMEM;
  let ret = yield* copyFromUser(mirror, cmd, bounce.data);
  if (ret !== 0) return ret;
  for (;;) {
    yield* mirror.mutex.lock();
    ret = dmirrorDoWrite(mirror, start, end, bounce);
    yield* mirror.mutex.unlock();
    if (ret !== -Errno.ENOENT) break;
    start = cmd.addr + bounce.cpages * PAGE_SIZE;
    ret = yield* dmirrorFault(mirror, start, end, true);
    if (ret !== 0) break;
    cmd.faults = (cmd.faults ?? 0) + 1;
  }
  cmd.cpages = bounce.cpages;
  return ret;
}

/** Models dmirror_mkentry(): the SNAPSHOT byte for one hmm_pfns entry. */
export function dmirrorMkentry(mirror: Dmirror, words: Uint32Array, i: number): number {
  const sys = mirror.mdevice.sys;
  const flags = words[2 * i + 1];
  if ((flags & HMM_PFN_ERROR) !== 0) return HMM_DMIRROR_PROT_ERROR;
  if ((flags & HMM_PFN_VALID) === 0) return HMM_DMIRROR_PROT_NONE;
  const pfn = words[2 * i];
  let perm: number;
  if (isDevicePrivatePage(sys, pfn)) {
    const local = dmirrorPageToDevice(sys, pfn) === mirror.mdevice;
    perm = local ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
  } else if (isDeviceCoherentPage(sys, pfn)) {
    const local = dmirrorPageToDevice(sys, pfn) === mirror.mdevice;
    perm = local ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL : HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
  } else if (sys.phys.isZeroPfn(pfn)) {
    perm = HMM_DMIRROR_PROT_ZERO;
  } else {
    perm = HMM_DMIRROR_PROT_NONE;
  }
  perm |= (flags & HMM_PFN_WRITE) !== 0 ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
  const order = hmmPfnToMapOrder(words, i);
  if (order === 9) perm |= HMM_DMIRROR_PROT_PMD;
  else if (order === 18) perm |= HMM_DMIRROR_PROT_PUD;
  return perm;
}

/** The temporary notifier of one SNAPSHOT chunk: any invalidation only bumps the sequence. */
const dmirrorMrnOps: MmuIntervalNotifierOps<DmirrorInterval> = {
  *invalidate(sub, range, curSeq) {
    const mirror = sub.dmirror;
    if (mmuNotifierRangeBlockable(range)) {
      yield* mirror.mutex.lock();
    } else if (!(yield* mirror.mutex.trylock())) {
      return false;
    }
    mmuIntervalSetSeq(sub, curSeq);
    yield* mirror.mutex.unlock();
    return true;
  },
};

/** Models dmirror_range_snapshot(): one chunk, without faulting, under a temporary notifier. */
function* dmirrorRangeSnapshot(mirror: Dmirror, range: HmmRange, perm: Uint8Array): KGen<number> {
  const mm = mirror.mm;
  const notifier = new DmirrorInterval(mirror);
  range.notifier = notifier;
  let ret = yield* mmuIntervalNotifierInsert(
    notifier,
    mm,
    range.start,
    range.end - range.start,
    dmirrorMrnOps,
  );
  if (ret !== 0) return ret;
  ret = yield* hmmRangeFaultLocked(range, mirror.mutex, { passNs: DMIRROR_FAULT_PASS_NS });
  if (ret === 0) {
    const n = vpn(range.end) - vpn(range.start);
    for (let i = 0; i < n; i++) perm[i] = dmirrorMkentry(mirror, range.hmmPfns, i);
    yield* mirror.mutex.unlock();
  }
  yield* mmuIntervalNotifierRemove(notifier);
  return ret;
}

/** Models dmirror_snapshot(). */
function* dmirrorSnapshot(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  const mm = mirror.mm;
  const start = cmd.addr;
  const end = start + cmd.npages * PAGE_SIZE;
  if (!mmgetNotZero(mm)) return -Errno.EINVAL;
  const range = newRange(mirror, DMIRROR_SNAPSHOT_CHUNK, 0);
  const perm = new Uint8Array(DMIRROR_SNAPSHOT_CHUNK);
  const out = cmd.ptr === undefined && cmd.buf !== undefined ? cmd.buf : null;
  let ret = 0;
  let cpages = 0;
  for (let addr = start; addr < end; addr = range.end) {
    range.start = addr;
    range.end = Math.min(addr + DMIRROR_SNAPSHOT_CHUNK * PAGE_SIZE, end);
    range.hmmPfns.fill(0);
    ret = yield* dmirrorRangeSnapshot(mirror, range, perm);
    if (ret !== 0) break;
    const n = vpn(range.end) - vpn(range.start);
    if (cmd.ptr !== undefined) {
      const w = yield* accessRemoteVm(mm, cmd.ptr + cpages, perm.slice(0, n), true);
      if (w !== n) {
        ret = -Errno.EFAULT;
        break;
      }
    } else if (out !== null) {
      if (out.length < cpages + n) {
        ret = -Errno.EFAULT;
        break;
      }
      out.set(perm.subarray(0, n), cpages);
    }
    cpages += n;
  }
  cmd.cpages = cpages;
  yield* mmput(mm);
  return ret;
}

/** Models dmirror_check_atomic(): -EPERM while any page of the range is still mapped for atomics. */
function* dmirrorCheckAtomic(mirror: Dmirror, start: number, end: number): KGen<number> {
  yield { kind: 'step', label: 'dmirror_check_atomic', access: { obj: mirror.pt, write: false } };
  // Walk only the entries present: the range may span far more pages than the table holds.
  for (const [, e] of mirror.pt.range(vpn(start), vpn(end) - 1)) {
    if (e.tag === DPT_TAG_ATOMIC) return -Errno.EPERM;
  }
  return 0;
}

/** Models dmirror_exclusive(): make each page exclusive to the device, map it for atomics, read back. */
function* dmirrorExclusive(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  const sys = mirror.mdevice.sys;
  const mm = mirror.mm;
  const start = cmd.addr;
  const size = cmd.npages * PAGE_SIZE;
  const end = start + size;
  if (!mmgetNotZero(mm)) return -Errno.EINVAL;
  let ret = 0;
  yield* mm.mmapLock.downRead();
  for (let addr = start; ret === 0 && addr < end; addr += PAGE_SIZE) {
    const r = yield* makeDeviceExclusive(mm, addr, null);
    if (r.ret < 0) {
      ret = r.ret;
      break;
    }
    yield* mirror.mutex.lock();
    dptStore(mirror, vpn(addr), r.page, DPT_TAG_ATOMIC);
    yield* mirror.mutex.unlock();
    folioUnlock(sys, r.page);
    sys.phys.put(r.page);
  }
  yield* mm.mmapLock.upRead();
  yield* mmput(mm);
  if (ret !== 0) return ret;
  const bounce = bounceInit(start, size);
  if (bounce === null) return -Errno.ENOMEM;
  yield* mirror.mutex.lock();
  ret = dmirrorDoRead(mirror, start, end, bounce);
  yield* mirror.mutex.unlock();
  if (ret === 0) ret = yield* copyToUser(mirror, cmd, bounce.data);
  cmd.cpages = bounce.cpages;
  return ret;
}

function isU64(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= ULONG_MAX;
}

/**
 * Models dmirror_fops_unlocked_ioctl(): checks the command, runs it on a private copy of the
 * struct, and copies cpages/faults back only when it succeeded.
 */
function* dmirrorFopsIoctl(file: File<Dmirror>, name: string, argIn: unknown): KGen<number> {
  const mirror = file.priv;
  if (mirror.released) return -Errno.EINVAL;
  if (typeof argIn !== 'object' || argIn === null) return -Errno.EFAULT;
  const arg = argIn as Partial<HmmDmirrorCmd>;
  const addr = arg.addr ?? 0;
  const npages = arg.npages ?? 0;
  if (!isU64(addr) || !isU64(npages)) return -Errno.EFAULT;
  if (arg.ptr !== undefined && !isU64(arg.ptr)) return -Errno.EFAULT;
  if (addr % PAGE_SIZE !== 0) return -Errno.EINVAL;
  // addr >= addr + (npages << PAGE_SHIFT) in 64-bit arithmetic: empty or wrapping ranges.
  const end = addr + npages * PAGE_SIZE;
  if (npages === 0 || end > ULONG_MAX) return -Errno.EINVAL;
  const cmd: HmmDmirrorCmd = { addr, npages, cpages: 0, faults: 0 };
  if (arg.ptr !== undefined) cmd.ptr = arg.ptr;
  if (arg.buf !== undefined) cmd.buf = arg.buf;
  let ret: number;
  switch (name) {
    case HMM_DMIRROR_READ:
      ret = yield* dmirrorRead(mirror, cmd);
      break;
    case HMM_DMIRROR_WRITE:
      ret = yield* dmirrorWrite(mirror, cmd);
      break;
    case HMM_DMIRROR_MIGRATE_TO_DEV:
      ret = yield* dmirrorMigrateToDevice(mirror, cmd);
      break;
    case HMM_DMIRROR_MIGRATE_TO_SYS:
      ret = yield* dmirrorMigrateToSystem(mirror, cmd);
      break;
    case HMM_DMIRROR_EXCLUSIVE:
      ret = yield* dmirrorExclusive(mirror, cmd);
      break;
    case HMM_DMIRROR_CHECK_EXCLUSIVE:
      ret = yield* dmirrorCheckAtomic(mirror, addr, end);
      break;
    case HMM_DMIRROR_SNAPSHOT:
      ret = yield* dmirrorSnapshot(mirror, cmd);
      break;
    case HMM_DMIRROR_RELEASE:
      yield* dmirrorDeviceRemoveChunks(mirror.mdevice);
      ret = 0;
      break;
    case HMM_DMIRROR_FLAGS:
      mirror.flags = npages;
      ret = 0;
      break;
    default:
      return -Errno.EINVAL;
  }
  if (ret !== 0) return ret;
  arg.cpages = cmd.cpages;
  arg.faults = cmd.faults;
  return 0;
}

// --- oracles ---------------------------------------------------------------------------------

/** The device PT of `mirror` as the mirror oracle sees it. */
export function dmirrorEntries(mirror: Dmirror): { va: number; pfn: number; write: boolean; gen: number }[] {
  const out: { va: number; pfn: number; write: boolean; gen: number }[] = [];
  for (const [index, e] of mirror.pt.range(0, Infinity)) {
    out.push({ va: index * PAGE_SIZE, pfn: e.pfn, write: e.tag === DPT_TAG_WRITE, gen: e.gen });
  }
  return out;
}

/** The dev_pagemap of `pfn` if it is one of this System's dmirror chunks. */
export function isDmirrorPage(sys: System, pfn: number): boolean {
  const pgmap = pageDevPagemap(sys, pfn);
  return pgmap !== null && pgmap.owner instanceof DmirrorDevice;
}
