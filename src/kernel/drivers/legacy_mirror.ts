/**
 * A mirror device of the v5.4 era, on the hmm_mirror API of hmm_legacy.ts: the pattern the
 * nouveau SVM code and the out-of-tree HMM test drivers of that release followed.
 *
 *  - open(): hmm_mirror_register() of the opener's mm (under its mmap lock for write);
 *  - sync_cpu_device_pagetables(): clear the device page table over the invalidated range under
 *    the driver's update lock (trylock, -EAGAIN, when the range is not blockable);
 *  - the device fault path: hmm_range_register() -> hmm_range_wait_until_valid() ->
 *    hmm_range_fault() under the mmap read lock -> take the driver lock -> hmm_range_valid()?
 *    -> program device PTEs -> unlock -> hmm_range_unregister().
 *
 * The fault path inherits the API's flaw (commit 04ec32fbc2): a whole invalidate start/end cycle
 * between hmm_range_fault() and hmm_range_valid() leaves `valid` true, so the device can map a
 * page the CPU has already unmapped. The explorer finds it (examples/races/legacy-mirror.yaml).
 *
 * The device is a driver on the public SDK: an SDK Device whose files are the mirrors, a
 * DevicePageTable guarded by the declared `update` mutex (checked by the device-mirror oracles
 * like any driver's), and the v5.4 API through the SDK's kernel calls. Like the dmirror device,
 * the two callbacks can be replaced by a user module (createLegacyMirrorDevice(sys, name,
 * { driver })).
 */
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { Process, System } from '../system.ts';
import {
  type Device,
  type DeviceDriver,
  deviceByName,
  deviceOpen,
  deviceProbe,
  sdkDevices,
} from './sdk/device.ts';
import { DEV_PTE, DevicePageTable } from './sdk/device_pagetable.ts';
import {
  type File,
  HMM_PFN_FLAG,
  HMM_RANGE_DEFAULT_TIMEOUT_MS,
  HmmMirror,
  type HmmMirrorOps,
  type LegacyHmmRange,
  type MmStruct,
  type MmuNotifierRange,
  PAGE_SIZE,
  ULONG_MAX,
  hmmDeviceEntryToPfn,
  hmmMirrorRegister,
  hmmMirrorUnregister,
  hmmRangeRegister,
  hmmRangeUnregister,
  hmmRangeValid,
  hmmRangeWaitUntilValid,
  legacyHmmRangeFault,
  mmgetNotZero,
  mmput,
  mmuNotifierRangeBlockable,
} from './sdk/kernel_api.ts';
import type { DriverMutex } from './sdk/locks.ts';

/** Pages per hmm_range of the fault path. */
export const LEGACY_MIRROR_FAULT_CHUNK = 16;

/** The driver's encoding of device entries (range->flags[], range->values[], pfn_shift). */
export const LEGACY_MIRROR_FLAGS: readonly number[] = [1, 2, 4]; // VALID, WRITE, DEVICE_PRIVATE
export const LEGACY_MIRROR_VALUES: readonly number[] = [0x10, 0, 0x20]; // ERROR, NONE, SPECIAL
export const LEGACY_MIRROR_PFN_SHIFT = 8;

/**
 * The callbacks of a legacy mirror driver. The built-in ones are below; a user module may
 * replace either (missing members fall back to them).
 */
export interface LegacyMirrorDriver {
  /**
   * hmm_mirror_ops.sync_cpu_device_pagetables: clear the device PT over [range.start, range.end)
   * under mirror.update before returning 0; -EAGAIN if the range is not blockable and the lock
   * is taken.
   */
  syncCpuDevicePagetables(mirror: LegacyMirror, range: MmuNotifierRange): KGen<number>;
  /**
   * The device fault path for one hmm_range (range.start/end set, range.hmm null): register it,
   * fault it, and program the device PT under mirror.update if it is still valid. 0 or -errno.
   */
  rangeFault(mirror: LegacyMirror, range: LegacyHmmRange): KGen<number>;
}

/** The driver data of one legacy mirror device. */
export class LegacyMirrorDevice {
  readonly mirrors = new Set<LegacyMirror>();
  nextMirror = 0;
  constructor(
    readonly dev: Device<LegacyMirrorDevice, LegacyMirror>,
    readonly driver: LegacyMirrorDriver,
  ) {}

  get sys(): System {
    return this.dev.sys;
  }

  get name(): string {
    return this.dev.name;
  }
}

/** The mirror of one open file: an hmm_mirror plus its device page table and update lock. */
export class LegacyMirror extends HmmMirror {
  /** The driver lock ("driver->update", nouveau's svmm->mutex). */
  readonly update: DriverMutex;
  /** The device page table, guarded by `update`. */
  readonly pt: DevicePageTable;
  released = false;

  constructor(
    readonly mdevice: LegacyMirrorDevice,
    readonly id: number,
    readonly mm: MmStruct,
  ) {
    super(legacyMirrorOps);
    const dev = mdevice.dev;
    this.update = dev.mutex(`mirror${id}.update`, {
      lockClass: 'legacy_mirror.update',
      guards: 'the device page table and the range->valid checks',
    });
    this.pt = new DevicePageTable(dev, `${dev.name} mirror ${id}`, mm, this.update);
  }
}

const legacyMirrorOps: HmmMirrorOps = {
  *release(mirror) {
    // The mm is going away: nothing will be mirrored any more.
    if (!(mirror instanceof LegacyMirror)) return;
    yield* mirror.update.lock();
    mirror.pt.zap(0, ULONG_MAX);
    yield* mirror.update.unlock();
  },
  *syncCpuDevicePagetables(mirror, range) {
    if (!(mirror instanceof LegacyMirror)) return 0;
    return yield* mirror.mdevice.driver.syncCpuDevicePagetables(mirror, range);
  },
};

/** Every legacy mirror device of `sys` (the SDK devices of the legacy_mirror driver, bound or since removed). */
export function legacyMirrorDevices(sys: System): LegacyMirrorDevice[] {
  const out: LegacyMirrorDevice[] = [];
  for (const dev of sdkDevices(sys)) {
    if (dev.driver === (legacyMirrorDriver as DeviceDriver)) {
      out.push((dev as Device<LegacyMirrorDevice, LegacyMirror>).drvdata);
    }
  }
  return out;
}

export interface CreateLegacyMirrorOptions {
  readonly driver?: Partial<LegacyMirrorDriver>;
}

/**
 * Registers a legacy mirror device named `name`, probed as user drivers are (the SDK's
 * deviceProbe: on a probe thread). Throws RangeError if the name is taken.
 */
export function createLegacyMirrorDevice(
  sys: System,
  name: string,
  opts: CreateLegacyMirrorOptions = {},
): LegacyMirrorDevice {
  const dev = deviceProbe(sys, name, legacyMirrorDriver, { driver: opts.driver ?? {} });
  if (typeof dev === 'number') throw new RangeError(`device ${name}: probe failed with ${dev}`);
  return dev.drvdata;
}

// --- device page table -----------------------------------------------------------------------

/** Clears the device PT entries of [start, end). The caller holds mirror.update. */
export function legacyMirrorInvalidate(mirror: LegacyMirror, start: number, end: number): void {
  mirror.pt.zap(start, end);
}

/**
 * Programs the device PT from a faulted range (nouveau_dmem_convert_pfn + the map ioctl). The
 * caller holds mirror.update and has checked hmm_range_valid(). Returns the pages mapped.
 */
export function legacyMirrorProgram(mirror: LegacyMirror, range: LegacyHmmRange): number {
  const n = (range.end - range.start) / PAGE_SIZE;
  let mapped = 0;
  for (let i = 0; i < n; i++) {
    const entry = range.pfns[i];
    const pfn = hmmDeviceEntryToPfn(range, entry);
    if (pfn < 0) continue;
    const write = ((entry % 2 ** range.pfnShift) & range.flags[HMM_PFN_FLAG.WRITE]) !== 0;
    mirror.pt.map(range.start + i * PAGE_SIZE, pfn, write ? DEV_PTE.READ | DEV_PTE.WRITE : DEV_PTE.READ);
    mapped++;
  }
  return mapped;
}

// --- the built-in driver -----------------------------------------------------------------------

/** Models nouveau_svmm_sync_cpu_device_pagetables() of v5.4. */
export function* legacyMirrorSyncCpuDevicePagetables(
  mirror: LegacyMirror,
  range: MmuNotifierRange,
): KGen<number> {
  if (mmuNotifierRangeBlockable(range)) yield* mirror.update.lock();
  else if (!(yield* mirror.update.trylock())) return -Errno.EAGAIN;
  legacyMirrorInvalidate(mirror, range.start, range.end);
  yield* mirror.update.unlock();
  return 0;
}

/**
 * The v5.4 fault loop (Documentation/vm/hmm.rst of that release): register the range, wait until
 * it is valid, fault it under the mmap read lock, then check hmm_range_valid() under the driver
 * lock before programming the device. Flawed by the API: see the file comment.
 */
export function* legacyMirrorRangeFault(mirror: LegacyMirror, range: LegacyHmmRange): KGen<number> {
  const mm = mirror.mm;
  let ret = yield* hmmRangeRegister(range, mirror);
  if (ret !== 0) return ret;
  for (;;) {
    if (!(yield* hmmRangeWaitUntilValid(range, HMM_RANGE_DEFAULT_TIMEOUT_MS))) {
      ret = -Errno.EBUSY;
      break;
    }
    yield* mm.mmapLock.downRead();
    const n = yield* legacyHmmRangeFault(range, 0);
    yield* mm.mmapLock.upRead();
    if (n === -Errno.EBUSY) continue;
    if (n <= 0) {
      ret = n === 0 ? -Errno.EBUSY : n;
      break;
    }
    yield* mirror.update.lock();
    if (!hmmRangeValid(range)) {
      yield* mirror.update.unlock();
      continue;
    }
    legacyMirrorProgram(mirror, range);
    yield* mirror.update.unlock();
    ret = 0;
    break;
  }
  yield* hmmRangeUnregister(range);
  return ret;
}

export const defaultLegacyMirrorDriver: LegacyMirrorDriver = {
  syncCpuDevicePagetables: legacyMirrorSyncCpuDevicePagetables,
  rangeFault: legacyMirrorRangeFault,
};

// --- the driver ----------------------------------------------------------------------------

/** Opens the device for `proc`: hmm_mirror_register() of its mm. The mirror, or -errno. */
function* legacyMirrorFopsOpen(
  dev: Device<LegacyMirrorDevice, LegacyMirror>,
  proc: Process,
): KGen<LegacyMirror | number> {
  const mdevice = dev.drvdata;
  const mm = proc.mm;
  if (mm === null) return -Errno.ESRCH;
  const mirror = new LegacyMirror(mdevice, mdevice.nextMirror++, mm);
  yield* mm.mmapLock.downWrite();
  const ret = yield* hmmMirrorRegister(mirror, mm);
  yield* mm.mmapLock.upWrite();
  if (ret !== 0) {
    mirror.pt.destroy();
    return ret;
  }
  mdevice.mirrors.add(mirror);
  return mirror;
}

/** The last close: hmm_mirror_unregister(), then the device page table goes. */
function* legacyMirrorFopsRelease(
  dev: Device<LegacyMirrorDevice, LegacyMirror>,
  file: File<LegacyMirror>,
): KGen {
  const mirror = file.priv;
  yield* hmmMirrorUnregister(mirror);
  mirror.pt.destroy();
  mirror.released = true;
  dev.drvdata.mirrors.delete(mirror);
}

/** The legacy mirror driver on the SDK. Its device work goes through legacyMirrorFault/Read. */
export const legacyMirrorDriver: DeviceDriver<LegacyMirrorDevice, LegacyMirror> = {
  name: 'legacy_mirror',
  *probe(dev, config) {
    const driver = (config.driver ?? {}) as Partial<LegacyMirrorDriver>;
    yield* [];
    return new LegacyMirrorDevice(dev, { ...defaultLegacyMirrorDriver, ...driver });
  },
  open: legacyMirrorFopsOpen,
  release: legacyMirrorFopsRelease,
};

/** Opens the device for `proc`. Returns the fd or -errno (-ENODEV: not a legacy mirror device). */
export function* legacyMirrorOpen(sys: System, deviceName: string, proc: Process): KGen<number> {
  const dev = deviceByName(sys, deviceName);
  if (dev?.driver !== (legacyMirrorDriver as DeviceDriver)) return -Errno.ENODEV;
  return yield* deviceOpen(sys, deviceName, proc);
}

/** The mirror behind an fd, or null. */
export function legacyMirrorOf(sys: System, fd: number): LegacyMirror | null {
  const f = sys.fileOf(fd);
  return f !== null && f.priv instanceof LegacyMirror && !f.priv.released ? f.priv : null;
}

function newRange(start: number, end: number, write: boolean): LegacyHmmRange {
  return {
    hmm: null,
    start,
    end,
    pfns: new Float64Array((end - start) / PAGE_SIZE),
    flags: LEGACY_MIRROR_FLAGS,
    values: LEGACY_MIRROR_VALUES,
    defaultFlags:
      LEGACY_MIRROR_FLAGS[HMM_PFN_FLAG.VALID] | (write ? LEGACY_MIRROR_FLAGS[HMM_PFN_FLAG.WRITE] : 0),
    pfnFlagsMask: 0,
    pfnShift: LEGACY_MIRROR_PFN_SHIFT,
    valid: false,
  };
}

/**
 * A range the device can be asked for: a page-aligned address and at least one page, not
 * wrapping past 2^64 (the checks a driver's ioctl makes of a u64 range, as test_hmm's does).
 * A range past the user address space is the fault path's -EFAULT.
 */
function legacyMirrorRangeOk(addr: number, npages: number): boolean {
  return (
    Number.isSafeInteger(addr) &&
    Number.isSafeInteger(npages) &&
    addr >= 0 &&
    addr % PAGE_SIZE === 0 &&
    npages > 0 &&
    npages <= (2 ** 64 - addr) / PAGE_SIZE
  );
}

/**
 * The device faults [addr, addr + npages pages) in, for reading or writing, in chunks through
 * the driver's range fault. Returns 0 or -errno (-EINVAL for a bad range, -EFAULT once the mm
 * is gone or the range leaves the VMAs).
 */
export function* legacyMirrorFault(
  mirror: LegacyMirror,
  addr: number,
  npages: number,
  write: boolean,
): KGen<number> {
  if (!legacyMirrorRangeOk(addr, npages)) return -Errno.EINVAL;
  const mm = mirror.mm;
  if (!mmgetNotZero(mm)) return -Errno.EFAULT;
  const end = addr + npages * PAGE_SIZE;
  let ret = 0;
  for (let start = addr; start < end; start += LEGACY_MIRROR_FAULT_CHUNK * PAGE_SIZE) {
    const range = newRange(start, Math.min(end, start + LEGACY_MIRROR_FAULT_CHUNK * PAGE_SIZE), write);
    ret = yield* mirror.mdevice.driver.rangeFault(mirror, range);
    if (ret !== 0) break;
  }
  yield* mmput(mm);
  return ret;
}

/**
 * The device reads [addr, addr + npages pages) through its page table into `out`, faulting what
 * is missing (like HMM_DMIRROR_READ). Returns 0 or -errno; `faults` counts fault rounds.
 */
export function* legacyMirrorRead(
  mirror: LegacyMirror,
  addr: number,
  npages: number,
  out: Uint8Array,
): KGen<{ ret: number; cpages: number; faults: number }> {
  const sys = mirror.mdevice.sys;
  if (!legacyMirrorRangeOk(addr, npages)) return { ret: -Errno.EINVAL, cpages: 0, faults: 0 };
  let cpages = 0;
  let faults = 0;
  for (;;) {
    yield* mirror.update.lock();
    for (; cpages < npages; cpages++) {
      const e = mirror.pt.lookup(addr + cpages * PAGE_SIZE);
      if (e === undefined) break;
      sys.phys.read(e.pfn, 0, out, cpages * PAGE_SIZE, PAGE_SIZE);
    }
    yield* mirror.update.unlock();
    if (cpages === npages) return { ret: 0, cpages, faults };
    const ret = yield* legacyMirrorFault(mirror, addr + cpages * PAGE_SIZE, npages - cpages, false);
    if (ret !== 0) return { ret, cpages, faults };
    faults++;
  }
}
