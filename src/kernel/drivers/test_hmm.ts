/**
 * Models lib/test_hmm.c, the "dmirror" device: a simulated device that mirrors the address space
 * of the process that opened it, through one mmu_interval_notifier and hmm_range_fault(), and
 * that owns device memory (ZONE_DEVICE private or coherent pages) it migrates pages to and from.
 *
 * This file holds the device and file lifetime, the device page table, the invalidate and fault
 * paths, and the ioctls that only mirror (READ, WRITE, SNAPSHOT, EXCLUSIVE, CHECK_EXCLUSIVE,
 * FLAGS). Device memory and migration live in test_hmm_devmem.ts; the uAPI in test_hmm_uapi.ts.
 */
import type { KGen } from '../../sched/types.ts';
import type { Process, System } from '../system.ts';
import { Errno } from '../errno.ts';
import {
  type Device,
  type DeviceDriver,
  type IoctlArg,
  type IoctlContext,
  type IoctlDef,
  defineIoctl,
  deviceByName,
  deviceOpen,
  deviceProbe,
  sdkDevices,
} from './sdk/device.ts';
import { hmmRangeFaultLocked } from './sdk/hmm_mirror.ts';
import {
  type File,
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  type HmmRange,
  MMU_NOTIFY,
  type MmStruct,
  type MmuIntervalNotifierOps,
  type MmuNotifierRange,
  PAGE_SIZE,
  ULONG_MAX,
  type Vma,
  clearUser,
  copyUser,
  allocPageReclaim,
  folioUnlock,
  hmmPfnToMapOrder,
  isDeviceCoherentPage,
  isDevicePrivatePage,
  makeDeviceExclusive,
  mmgetNotZero,
  mmput,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
  pageDevPagemap,
  vmInsertPage,
  warn,
} from './sdk/kernel_api.ts';
import {
  dmirrorDeviceEvictChunk,
  dmirrorDeviceRemoveChunks,
  dmirrorMigrateToDevice,
  dmirrorMigrateToSystem,
  dmirrorPageToDevice,
} from './test_hmm_devmem.ts';
import { dmirrorMigrateToDevice$, dmirrorMigrateToSystem$ } from './test_hmm_devmem.plain.ts';
import {
  dmirrorCheckExclusive$,
  dmirrorExclusive$,
  dmirrorRead$,
  dmirrorRelease$,
  dmirrorSetFlags$,
  dmirrorSnapshot$,
  dmirrorWrite$,
} from './test_hmm.plain.ts';
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
  DmirrorDevice,
  type DmirrorDriver,
} from './test_hmm_types.ts';
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

/** Every dmirror device of `sys` (the SDK devices of the dmirror driver, bound or since removed). */
export function dmirrorDevices(sys: System): DmirrorDevice[] {
  const out: DmirrorDevice[] = [];
  for (const dev of sdkDevices(sys)) {
    if (dev.driver === (dmirrorDriver as DeviceDriver)) {
      out.push((dev as Device<DmirrorDevice, Dmirror>).drvdata);
    }
  }
  return out;
}

/** The dmirror device named `name`, or null (no such device, another driver's, or removed). */
export function dmirrorDevice(sys: System, name: string): DmirrorDevice | null {
  const dev = deviceByName(sys, name);
  if (dev?.driver !== (dmirrorDriver as DeviceDriver) || dev.state !== 'bound') return null;
  return (dev as Device<DmirrorDevice, Dmirror>).drvdata;
}

/**
 * Models dmirror_device_init() for one /dev/hmm_dmirrorN: registers the SDK device, probed as
 * user drivers are (deviceProbe: on a probe thread), whose probe builds the driver data. Device memory is added on demand, one chunk at a time (the kernel adds
 * one chunk at init; the model defers it to the first allocation so a device that never
 * migrates costs nothing). Throws RangeError if the name is taken.
 */
export function createDmirrorDevice(
  sys: System,
  name: string,
  memory: 'private' | 'coherent',
  opts: CreateDmirrorOptions = {},
): DmirrorDevice {
  const config: DmirrorConfig = { memory, driver: opts.driver ?? {} };
  const dev = deviceProbe(sys, name, dmirrorDriver, config);
  if (typeof dev === 'number') throw new RangeError(`device ${name}: probe failed with ${dev}`);
  return dev.drvdata;
}

/** What a dmirror device is probed with. */
type DmirrorConfig = {
  readonly memory: 'private' | 'coherent';
  readonly driver: Partial<DmirrorDriver>;
};

/** The interval-notifier ops of the per-file mirror: the device's (possibly replaced) invalidate. */
export const dmirrorMinOps: MmuIntervalNotifierOps<Dmirror> = Object.freeze<MmuIntervalNotifierOps<Dmirror>>({
  invalidate: (mirror, range, curSeq) => mirror.mdevice.driver.invalidate(mirror, range, curSeq),
});

/** Models the probe half of dmirror_device_init(): the driver data; -EINVAL for a bad config. */
function* dmirrorProbe(
  dev: Device<DmirrorDevice, Dmirror>,
  config: Readonly<Record<string, unknown>>,
): KGen<DmirrorDevice | number> {
  const { memory, driver } = config as Partial<DmirrorConfig>;
  if (memory !== 'private' && memory !== 'coherent') return -Errno.EINVAL;
  yield* [];
  // Frozen, as the tables below: never changed, so a snapshot of the world leaves it out.
  return new DmirrorDevice(dev, memory, Object.freeze({ ...defaultDmirrorDriver, ...(driver ?? {}) }));
}

/**
 * Models dmirror_fops_open() by `proc`: a new mirror of the opener's mm through one interval
 * notifier over the whole address space. Returns the mirror (the file's private data) or -errno.
 */
function* dmirrorFopsOpen(dev: Device<DmirrorDevice, Dmirror>, proc: Process): KGen<Dmirror | number> {
  const sys = dev.sys;
  const mdevice = dev.drvdata;
  const mm = proc.mm;
  if (mm === null) return -Errno.ESRCH;
  if (sys.inject.shouldFail('dmirror_open')) return -Errno.ENOMEM;
  const dmirror = new Dmirror(mdevice, sys.nextId('dmirror_file') - 1, mm);
  const ret = yield* mmuIntervalNotifierInsert(dmirror, mm, 0, MIRROR_INTERVAL_LENGTH, dmirrorMinOps);
  if (ret !== 0) {
    dmirror.pt.destroy();
    return ret;
  }
  mdevice.mirrors.add(dmirror);
  return dmirror;
}

/**
 * Models open("/dev/hmm_dmirrorN") by `proc`: the SDK's open of the device's file. Returns the fd
 * or -errno (-ENODEV when `deviceName` is not a dmirror device).
 */
export function* dmirrorOpen(sys: System, deviceName: string, proc: Process): KGen<number> {
  if (dmirrorDevice(sys, deviceName) === null) return -Errno.ENODEV;
  return yield* deviceOpen(sys, deviceName, proc);
}

/**
 * Models dmirror_fops_release(): stop mirroring, evict every page of the device's memory back
 * to system memory (newest kernels do this so nothing outlives the file), drop the device PT.
 */
function* dmirrorFopsRelease(dev: Device<DmirrorDevice, Dmirror>, file: File<Dmirror>): KGen {
  const dmirror = file.priv;
  const mdevice = dev.drvdata;
  // Once the notifier is removed no invalidation reaches this mirror, so its page table would go
  // stale while the chunks are evicted. Nothing can use it any more (the file is gone): it is
  // torn down first, so the oracles no longer check it (the kernel's xa_destroy comes last).
  dmirror.released = true;
  dmirror.pt.destroy();
  yield* mmuIntervalNotifierRemove(dmirror);
  for (const chunk of [...mdevice.chunks]) yield* dmirrorDeviceEvictChunk(chunk);
  mdevice.mirrors.delete(dmirror);
}

/** Models dmirror_fops_mmap(): every page of the VMA is a fresh zeroed page, vm_insert_page'd. */
function* dmirrorFopsMmap(
  _dev: Device<DmirrorDevice, Dmirror>,
  _file: File<Dmirror>,
  vma: Vma,
): KGen<number> {
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

/** Stores the device PT entry of the page at `va` (xa_store with a tagged page pointer). Caller holds mirror.mutex. */
export function dptStore(mirror: Dmirror, va: number, pfn: number, tag: number): void {
  mirror.pt.map(va, pfn, tag);
}

/**
 * Models dmirror_do_update(): erases the PT entries of [start, end], the page at `end` included
 * (the kernel's inclusive upper index). Caller holds mirror.mutex.
 */
export function dmirrorDoUpdate(mirror: Dmirror, start: number, end: number): void {
  mirror.pt.zap(start, end + 1);
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
  const first = Math.floor(range.start / PAGE_SIZE);
  const n = (range.end - range.start) / PAGE_SIZE;
  for (let i = 0; i < n; i++) {
    const flags = words[2 * i + 1];
    // Every page was asked to be faulted in, so no error and no invalid entry can come back.
    if ((flags & HMM_PFN_ERROR) !== 0) warn(sys, `dmirror_do_fault: HMM_PFN_ERROR at page ${first + i}`);
    if ((flags & HMM_PFN_VALID) === 0) warn(sys, `dmirror_do_fault: invalid pfn at page ${first + i}`);
    let tag: number = DPT_TAG_READ;
    if ((flags & HMM_PFN_WRITE) !== 0) tag = DPT_TAG_WRITE;
    else if ((range.defaultFlags & HMM_PFN_REQ_WRITE) !== 0) {
      // hmm_range_fault() reports a device-private page of the caller's own as its entry is,
      // without faulting it for write: a read-only one lands here, in the kernel too.
      const own = isDevicePrivatePage(sys, words[2 * i]) ? ' (a device-private page of its own)' : '';
      warn(sys, `dmirror_do_fault: write fault returned a read-only page at page ${first + i}${own}`);
      return -Errno.EFAULT;
    }
    dptStore(mirror, range.start + i * PAGE_SIZE, words[2 * i], tag);
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
export const defaultDmirrorDriver: DmirrorDriver = Object.freeze({
  invalidate: dmirrorIntervalInvalidate,
  rangeFault: dmirrorRangeFault,
});

/** A fresh hmm_range for `mirror`'s notifier over at most `chunk` pages. */
function newRange(mirror: Dmirror, hmmPfns: Uint32Array, defaultFlags: number): HmmRange {
  return {
    notifier: mirror,
    notifierSeq: 0,
    start: 0,
    end: 0,
    hmmPfns,
    defaultFlags,
    pfnFlagsMask: 0,
    devPrivateOwner: mirror.mdevice,
  };
}

/**
 * The hmm_pfns arrays of finished faults, for the next ones to take (dmirrorFault()): scratch
 * space, as the bounce pages are. The kernel's array lives on dmirror_fault()'s stack: a range
 * fault fills it and the driver reads it before the fault returns, never after.
 */
const freeFaultPfns: Uint32Array[] = [];
const MAX_FREE_FAULT_PFNS = 16;

/** An hmm_pfns array for a fault of DMIRROR_FAULT_CHUNK pages (its contents are stale). */
export function faultPfnsAlloc(): Uint32Array {
  return freeFaultPfns.pop() ?? new Uint32Array(2 * DMIRROR_FAULT_CHUNK);
}

/** Hands back an array from faultPfnsAlloc() once its fault is over. */
export function faultPfnsFree(pfns: Uint32Array): void {
  if (freeFaultPfns.length < MAX_FREE_FAULT_PFNS) freeFaultPfns.push(pfns);
}

/** Models dmirror_fault(): faults [start, end) in chunks through the driver's range fault. */
export function* dmirrorFault(mirror: Dmirror, start: number, end: number, write: boolean): KGen<number> {
  const mm = mirror.mm;
  // The mm belongs to the mirrored process: pin it, or there is nothing to fault.
  if (!mmgetNotZero(mm)) return 0;
  const pfns = faultPfnsAlloc();
  const range = newRange(mirror, pfns, HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0));
  let ret = 0;
  for (let addr = start; addr < end; addr = range.end) {
    range.start = addr;
    range.end = Math.min(addr + DMIRROR_FAULT_CHUNK * PAGE_SIZE, end);
    range.hmmPfns.fill(0);
    ret = yield* mirror.mdevice.driver.rangeFault(mirror, range);
    if (ret !== 0) break;
  }
  faultPfnsFree(pfns);
  yield* mmput(mm);
  return ret;
}

/**
 * A bounce buffer (struct dmirror_bounce). One the device reads into is sparse (`data` null): it
 * keeps a copy of each page that has contents, and every other page reads as the zeroes a fresh
 * vmalloc'ed buffer holds, so a read of untouched memory allocates and copies nothing but the
 * final copy to the caller.
 */
export interface DmirrorBounce {
  readonly data: Uint8Array | null;
  readonly addr: number;
  readonly size: number;
  cpages: number;
  /** Sparse: the byte offset of each page with contents, and that page's bytes, in order. */
  readonly pages: { readonly off: number; readonly bytes: Uint8Array }[];
}

function bounceInit(addr: number, size: number): (DmirrorBounce & { readonly data: Uint8Array }) | null {
  if (size > MAX_BOUNCE_BYTES) return null;
  return { data: new Uint8Array(size), addr, size, cpages: 0, pages: [] };
}

/** bounceInit() for a buffer the device only reads into: sparse, nothing allocated up front. */
export function bounceInitSparse(addr: number, size: number): DmirrorBounce | null {
  if (size > MAX_BOUNCE_BYTES) return null;
  return { data: null, addr, size, cpages: 0, pages: [] };
}

/**
 * Pages of sparse bounce buffers that were copied out, for the next reads to take (bounceFree()):
 * a read in the steady state allocates none. Scratch space, not state: a page belongs to one
 * bounce buffer from dmirrorDoRead(), which overwrites all of it, to bounceFree(), so systems side
 * by side can share them and a snapshot of a world need not see them. A buffer its read abandons
 * (a thread that never finishes) keeps its pages.
 */
const freeBouncePages: Uint8Array[] = [];
const MAX_FREE_BOUNCE_PAGES = 64;

/** kvfree() of a bounce buffer: its pages go back to the free list. */
export function bounceFree(bounce: DmirrorBounce): void {
  for (const pg of bounce.pages)
    if (freeBouncePages.length < MAX_FREE_BOUNCE_PAGES) freeBouncePages.push(pg.bytes);
  bounce.pages.length = 0;
}

/** Models dmirror_do_read(): copies PT-mapped pages into the bounce buffer; -ENOENT at the first hole. */
export function dmirrorDoRead(mirror: Dmirror, start: number, end: number, bounce: DmirrorBounce): number {
  const sys = mirror.mdevice.sys;
  let off = start - bounce.addr;
  for (let va = start; va < end; va += PAGE_SIZE) {
    const pfn = mirror.pt.lookupPfn(va);
    if (pfn < 0) return -Errno.ENOENT;
    const data = dmirrorDataPfn(sys, pfn);
    // The bounce buffer starts zeroed: a page never written needs no copy.
    if (data >= 0 && sys.phys.contents.has(data)) {
      if (bounce.data !== null) sys.phys.read(data, 0, bounce.data, off, PAGE_SIZE);
      else {
        const bytes = freeBouncePages.pop() ?? new Uint8Array(PAGE_SIZE);
        sys.phys.read(data, 0, bytes, 0, PAGE_SIZE);
        bounce.pages.push({ off, bytes });
      }
    }
    off += PAGE_SIZE;
    bounce.cpages++;
  }
  return 0;
}

/** Models dmirror_do_write(): copies the bounce buffer into writable PT-mapped pages. */
function dmirrorDoWrite(
  mirror: Dmirror,
  start: number,
  end: number,
  bounce: DmirrorBounce & { readonly data: Uint8Array },
): number {
  const sys = mirror.mdevice.sys;
  let off = start - bounce.addr;
  for (let va = start; va < end; va += PAGE_SIZE) {
    const e = mirror.pt.lookup(va);
    if (e === undefined || e.prot !== DPT_TAG_WRITE) return -Errno.ENOENT;
    const data = dmirrorDataPfn(sys, e.pfn);
    if (data >= 0) sys.phys.write(data, 0, bounce.data, off, PAGE_SIZE);
    off += PAGE_SIZE;
    bounce.cpages++;
  }
  return 0;
}

/**
 * The mm `cmd.ptr` points into: current->mm, the caller's, which need not be the mirrored mm (an
 * ioctl on a descriptor another process opened mirrors the opener but copies to and from the
 * caller). A call made as no process uses the mirrored mm.
 */
function userMm(mirror: Dmirror, cmd: HmmDmirrorCmd): MmStruct | null {
  return cmd.userMm === undefined ? mirror.mm : cmd.userMm;
}

/** copy_to_user(): into `cmd.ptr` of the calling process, or into `cmd.buf`. */
export function* copyToUser(mirror: Dmirror, cmd: HmmDmirrorCmd, data: Uint8Array): KGen<number> {
  if (cmd.ptr === undefined) {
    if (cmd.buf === undefined) return 0;
    if (cmd.buf.length < data.length) return -Errno.EFAULT;
    cmd.buf.set(data);
    return 0;
  }
  const mm = userMm(mirror, cmd);
  const n = mm === null ? 0 : yield* copyUser(mm, cmd.ptr, data, true);
  return n === data.length ? 0 : -Errno.EFAULT;
}

/**
 * copy_to_user() of a whole bounce buffer. A sparse one is written straight into `cmd.buf`
 * (zeroes, then the pages with contents); into the calling process it is written in order, a
 * run of pages without contents by clearUser() (which stores nothing for them) and each page
 * with contents by copyUser().
 */
export function* copyBounceToUser(mirror: Dmirror, cmd: HmmDmirrorCmd, bounce: DmirrorBounce): KGen<number> {
  if (bounce.data !== null) return yield* copyToUser(mirror, cmd, bounce.data);
  if (cmd.ptr === undefined) {
    if (cmd.buf === undefined) return 0;
    if (cmd.buf.length < bounce.size) return -Errno.EFAULT;
    cmd.buf.fill(0, 0, bounce.size);
    for (const pg of bounce.pages) cmd.buf.set(pg.bytes, pg.off);
    return 0;
  }
  const mm = userMm(mirror, cmd);
  if (mm === null) return -Errno.EFAULT;
  let at = 0;
  for (const pg of bounce.pages) {
    if (!(yield* clearToUser(mm, cmd.ptr + at, pg.off - at))) return -Errno.EFAULT;
    const n = yield* copyUser(mm, cmd.ptr + pg.off, pg.bytes, true);
    if (n !== pg.bytes.length) return -Errno.EFAULT;
    at = pg.off + pg.bytes.length;
  }
  return (yield* clearToUser(mm, cmd.ptr + at, bounce.size - at)) ? 0 : -Errno.EFAULT;
}

/** clear_user() of `len` bytes (none: nothing to do) at `ptr`; false when some were not cleared. */
function* clearToUser(mm: MmStruct, ptr: number, len: number): KGen<boolean> {
  return len === 0 || (yield* clearUser(mm, ptr, len)) === len;
}

/** copy_from_user(): from `cmd.ptr` of the calling process, or from `cmd.buf`. */
function* copyFromUser(mirror: Dmirror, cmd: HmmDmirrorCmd, into: Uint8Array): KGen<number> {
  if (cmd.ptr === undefined) {
    if (cmd.buf === undefined || cmd.buf.length < into.length) return -Errno.EFAULT;
    into.set(cmd.buf.subarray(0, into.length));
    return 0;
  }
  const mm = userMm(mirror, cmd);
  const n = mm === null ? 0 : yield* copyUser(mm, cmd.ptr, into, false);
  return n === into.length ? 0 : -Errno.EFAULT;
}

/** Models dmirror_read(). */
function* dmirrorRead(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  const size = cmd.npages * PAGE_SIZE;
  let start = cmd.addr;
  const end = start + size;
  const bounce = bounceInitSparse(start, size);
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
  if (ret === 0) ret = yield* copyBounceToUser(mirror, cmd, bounce);
  bounceFree(bounce);
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
export const dmirrorMrnOps: MmuIntervalNotifierOps<DmirrorInterval> = Object.freeze<
  MmuIntervalNotifierOps<DmirrorInterval>
>({
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
});

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
    const n = (range.end - range.start) / PAGE_SIZE;
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
  const range = newRange(mirror, new Uint32Array(2 * DMIRROR_SNAPSHOT_CHUNK), 0);
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
    const n = (range.end - range.start) / PAGE_SIZE;
    if (cmd.ptr !== undefined) {
      const w = yield* copyUser(mm, cmd.ptr + cpages, perm.slice(0, n), true);
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
  for (const [, e] of mirror.pt.lookupRange(start, end)) {
    if (e.prot === DPT_TAG_ATOMIC) return -Errno.EPERM;
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
    dptStore(mirror, addr, r.page, DPT_TAG_ATOMIC);
    yield* mirror.mutex.unlock();
    folioUnlock(sys, r.page);
    sys.phys.put(r.page);
  }
  yield* mm.mmapLock.upRead();
  yield* mmput(mm);
  if (ret !== 0) return ret;
  const bounce = bounceInitSparse(start, size);
  if (bounce === null) return -Errno.ENOMEM;
  yield* mirror.mutex.lock();
  ret = dmirrorDoRead(mirror, start, end, bounce);
  yield* mirror.mutex.unlock();
  if (ret === 0) ret = yield* copyBounceToUser(mirror, cmd, bounce);
  cmd.cpages = bounce.cpages;
  return ret;
}

/** struct hmm_dmirror_cmd as the SDK copies it in: `buf` stands in for user memory when `ptr` is 0. */
// The driver's tables are frozen, as the kernel's are const: a snapshot (src/lib/snapshot.ts)
// need not restore them.
export const DMIRROR_CMD_IN = Object.freeze({
  addr: 'u64',
  ptr: 'u64',
  npages: 'u64',
  buf: 'bytes',
} as const);
export const DMIRROR_CMD_OUT = Object.freeze({ cpages: 'u64', faults: 'u64' } as const);

type DmirrorCmdArg = IoctlArg<typeof DMIRROR_CMD_IN, typeof DMIRROR_CMD_OUT>;

/**
 * The checks of dmirror_fops_unlocked_ioctl() before a command runs: the command struct, or
 * -EINVAL for a released file or a misaligned, empty or wrapping range.
 */
function dmirrorCmdIn(mirror: Dmirror, arg: DmirrorCmdArg, ctx: IoctlContext): HmmDmirrorCmd | number {
  if (mirror.released) return -Errno.EINVAL;
  const { addr, npages } = arg;
  if (addr % PAGE_SIZE !== 0) return -Errno.EINVAL;
  // addr >= addr + (npages << PAGE_SHIFT) in 64-bit arithmetic: empty or wrapping ranges.
  if (npages === 0 || addr + npages * PAGE_SIZE > ULONG_MAX) return -Errno.EINVAL;
  const cmd: HmmDmirrorCmd = { addr, npages, cpages: 0, faults: 0 };
  if (arg.ptr !== 0) {
    cmd.ptr = arg.ptr;
    if (ctx.current !== null) cmd.userMm = ctx.current.mm;
  } else cmd.buf = arg.buf;
  return cmd;
}

/** What dmirror_fops_unlocked_ioctl() does after a command returned `ret`: cpages/faults on success. */
function dmirrorCmdOut(arg: DmirrorCmdArg, cmd: HmmDmirrorCmd, ret: number): number {
  if (ret !== 0) return ret;
  arg.cpages = cmd.cpages ?? 0;
  arg.faults = cmd.faults ?? 0;
  return 0;
}

/**
 * Models dmirror_fops_unlocked_ioctl() around one command: checks the range and runs `run` on
 * the copied-in struct; the SDK copies cpages/faults back only when it returns 0. `run$` is the
 * plain form of `run` (test_hmm.plain.ts, test_hmm_devmem.plain.ts), which a system call running
 * in plain form calls instead.
 */
function dmirrorIoctl(
  doc: string,
  run: (mirror: Dmirror, cmd: HmmDmirrorCmd) => KGen<number>,
  run$: (mirror: Dmirror, cmd: HmmDmirrorCmd) => number,
): IoctlDef<Dmirror> {
  const def = defineIoctl<Dmirror, typeof DMIRROR_CMD_IN, typeof DMIRROR_CMD_OUT>({
    in: DMIRROR_CMD_IN,
    out: DMIRROR_CMD_OUT,
    doc,
    *handler(file, arg, _dev, ctx) {
      const cmd = dmirrorCmdIn(file.priv, arg, ctx);
      if (typeof cmd === 'number') return cmd;
      return dmirrorCmdOut(arg, cmd, yield* run(file.priv, cmd));
    },
    handler$(file, arg, _dev, ctx) {
      const cmd = dmirrorCmdIn(file.priv, arg, ctx);
      if (typeof cmd === 'number') return cmd;
      return dmirrorCmdOut(arg, cmd, run$(file.priv, cmd));
    },
  });
  return Object.freeze(def);
}

/** Models HMM_DMIRROR_RELEASE: evict and unmap the device's memory. */
function* dmirrorRelease(mirror: Dmirror): KGen<number> {
  yield* dmirrorDeviceRemoveChunks(mirror.mdevice);
  return 0;
}

/** Models HMM_DMIRROR_FLAGS: the flags come in the npages field. */
function* dmirrorSetFlags(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  mirror.flags = cmd.npages;
  yield* [];
  return 0;
}

/** Models HMM_DMIRROR_CHECK_EXCLUSIVE. */
function* dmirrorCheckExclusive(mirror: Dmirror, cmd: HmmDmirrorCmd): KGen<number> {
  return yield* dmirrorCheckAtomic(mirror, cmd.addr, cmd.addr + cmd.npages * PAGE_SIZE);
}

/**
 * The dmirror driver on the SDK: probe builds the device state, open mirrors the opener's mm,
 * the ioctls are lib/test_hmm.c's (an unknown command is -EINVAL, as there).
 */
export const dmirrorDriver: DeviceDriver<DmirrorDevice, Dmirror> = Object.freeze({
  name: 'dmirror',
  probe: dmirrorProbe,
  remove: dmirrorRemove,
  open: dmirrorFopsOpen,
  release: dmirrorFopsRelease,
  mmap: dmirrorFopsMmap,
  llseek: 'default',
  unknownIoctlErrno: Errno.EINVAL,
  ioctls: Object.freeze({
    [HMM_DMIRROR_READ]: dmirrorIoctl(
      'read through the device PT, faulting what is missing',
      dmirrorRead,
      dmirrorRead$,
    ),
    [HMM_DMIRROR_WRITE]: dmirrorIoctl(
      'write through the device PT, faulting what is missing',
      dmirrorWrite,
      dmirrorWrite$,
    ),
    [HMM_DMIRROR_MIGRATE_TO_DEV]: dmirrorIoctl(
      'migrate the range to device memory',
      dmirrorMigrateToDevice,
      dmirrorMigrateToDevice$,
    ),
    [HMM_DMIRROR_MIGRATE_TO_SYS]: dmirrorIoctl(
      'migrate the range back to system memory',
      dmirrorMigrateToSystem,
      dmirrorMigrateToSystem$,
    ),
    [HMM_DMIRROR_SNAPSHOT]: dmirrorIoctl(
      'one byte per page: how the CPU maps it',
      dmirrorSnapshot,
      dmirrorSnapshot$,
    ),
    [HMM_DMIRROR_EXCLUSIVE]: dmirrorIoctl(
      'make the pages exclusive to the device',
      dmirrorExclusive,
      dmirrorExclusive$,
    ),
    [HMM_DMIRROR_CHECK_EXCLUSIVE]: dmirrorIoctl(
      '-EPERM while a page is still exclusive',
      dmirrorCheckExclusive,
      dmirrorCheckExclusive$,
    ),
    [HMM_DMIRROR_RELEASE]: dmirrorIoctl('evict and unmap the device memory', dmirrorRelease, dmirrorRelease$),
    [HMM_DMIRROR_FLAGS]: dmirrorIoctl(
      'set HMM_DMIRROR_FLAG_* (passed in npages)',
      dmirrorSetFlags,
      dmirrorSetFlags$,
    ),
  }),
});

/** Models dmirror_device_remove(): the device memory goes (evicted, then memunmap_pages). */
function* dmirrorRemove(dev: Device<DmirrorDevice, Dmirror>): KGen {
  yield* dmirrorDeviceRemoveChunks(dev.drvdata);
}

/** Whether `pfn` is a page of one of this System's dmirror chunks. */
export function isDmirrorPage(sys: System, pfn: number): boolean {
  const pgmap = pageDevPagemap(sys, pfn);
  return pgmap !== null && pgmap.owner instanceof DmirrorDevice;
}
