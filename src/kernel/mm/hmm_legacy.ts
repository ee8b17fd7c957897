/**
 * Models the v5.4 HMM API (include/linux/hmm.h and mm/hmm.c of that release): a struct hmm per
 * mm, registered as a whole-mm mmu_notifier, to which drivers attach hmm_mirrors; hmm_range
 * objects registered on the hmm carry a `valid` boolean that an invalidation clears at
 * invalidate_range_start and sets again when the last concurrent invalidation ends.
 *
 * It is kept with its flaw, the race fixed by commit 04ec32fbc2 ("mm/hmm: allow hmm_range to be
 * used with a mmu_interval_notifier or hmm_mirror", v5.5): a whole start/end cycle that runs
 * between hmm_range_fault() and the driver's hmm_range_valid() check leaves `valid` true again,
 * so the driver programs a page the CPU no longer maps. A boolean cannot count epochs; the
 * mmu_interval_notifier sequence number in hmm.ts can.
 *
 * Device entries use the driver-defined encoding of that API: entry = pfn << pfnShift | flags,
 * where range.flags[] gives the driver's bit for VALID / WRITE / DEVICE_PRIVATE and
 * range.values[] its sentinel for ERROR / NONE / SPECIAL. Entries are exact integers in a
 * Float64Array (up to 53 bits), flags below 2^pfnShift (pfnShift at most 30).
 */
import { PAGE_SIZE, PMD_SIZE } from '../../lib/units.ts';
import { indexAt } from '../../lib/pgtable_store.ts';
import { NSEC_PER_MSEC } from '../../sched/clock.ts';
import { RwSem, SpinLock, WaitQueue } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { mmgetNotZero, mmput } from '../exit.ts';
import type { System } from '../system.ts';
import { FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, handleMmFault } from './memory.ts';
import { type MmStruct, VM, VM_FAULT, VM_FAULT_ERROR, type Vma } from './mm_types.ts';
import {
  MmuNotifier,
  type MmuNotifierOps,
  type MmuNotifierRange,
  __mmuNotifierRegister,
  mmuNotifierRangeBlockable,
  mmuNotifierUnregister,
  warn,
} from './mmu_notifier.ts';
import { PG } from './page_alloc.ts';
import {
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SPECIAL,
  PTE_WRITE,
  SwpType,
  isDevicePrivateEntry,
  isMigrationEntry,
  isSwapEntry,
  swpType,
} from './pgtable.ts';
import { pteSlot } from './pte.ts';
import { sideTable } from '../../lib/snapshot.ts';

/** enum hmm_pfn_flag_e: indexes into range.flags[]. */
export const HMM_PFN_FLAG = { VALID: 0, WRITE: 1, DEVICE_PRIVATE: 2 } as const;
/** enum hmm_pfn_value_e: indexes into range.values[]. */
export const HMM_PFN_VALUE = { ERROR: 0, NONE: 1, SPECIAL: 2 } as const;

/** hmm_range_fault() flags: may drop the mmap lock and return -EAGAIN; do not fault at all. */
export const HMM_FAULT_ALLOW_RETRY = 1 << 0;
export const HMM_FAULT_SNAPSHOT = 1 << 1;

/** Models struct hmm_mirror_ops. */
export interface HmmMirrorOps {
  /** The mm is going away: stop mirroring it. */
  release(mirror: HmmMirror): KGen;
  /**
   * Tear down device mappings of [range.start, range.end) before returning. 0, or -EAGAIN when
   * the range is not blockable and this would have to sleep.
   */
  syncCpuDevicePagetables(mirror: HmmMirror, range: MmuNotifierRange): KGen<number>;
}

/** Models struct hmm_mirror. Drivers extend it to keep their state. */
export class HmmMirror {
  hmm: Hmm | null = null;
  constructor(readonly ops: HmmMirrorOps) {}
}

/** Models struct hmm_range of v5.4. */
export interface LegacyHmmRange {
  hmm: Hmm | null;
  start: number;
  end: number;
  pfns: Float64Array;
  flags: readonly number[];
  values: readonly number[];
  defaultFlags: number;
  pfnFlagsMask: number;
  pfnShift: number;
  valid: boolean;
}

/** Models struct hmm: one per mm, a whole-mm mmu_notifier subscriber. */
export class Hmm extends MmuNotifier {
  kref = 1;
  readonly ranges = new Set<LegacyHmmRange>();
  readonly mirrors: HmmMirror[] = [];
  readonly rangesLock: SpinLock;
  readonly mirrorsSem: RwSem;
  readonly wq: WaitQueue;
  /** Invalidations between their start and end right now. */
  notifiers = 0;

  constructor(readonly owner: MmStruct) {
    super(hmmNotifierOps);
    const sched = owner.sys.sched;
    this.rangesLock = new SpinLock(sched, `hmm ranges_lock[${owner.id}]`, 'hmm_ranges_lock');
    this.mirrorsSem = new RwSem(sched, `hmm mirrors_sem[${owner.id}]`, 'hmm_mirrors_sem');
    this.wq = new WaitQueue(sched, `hmm wq[${owner.id}]`);
  }
}

const hmmOfMm = sideTable<MmStruct, Hmm>();

/** The struct hmm of an mm (mm->hmm), if a mirror was ever registered and it still lives. */
export function mmHmm(mm: MmStruct): Hmm | null {
  return hmmOfMm.get(mm) ?? null;
}

function* hmmPut(hmm: Hmm): KGen {
  if (--hmm.kref > 0) return;
  if (hmmOfMm.get(hmm.owner) === hmm) hmmOfMm.delete(hmm.owner);
  // hmm_free(): unregister without ->release (kref is 0, so hmm_release would bail out anyway).
  yield* mmuNotifierUnregister(hmm, hmm.owner);
}

/** Models notifiers_decrement(): the last concurrent invalidation ending makes every range valid. */
function* notifiersDecrement(hmm: Hmm): KGen {
  yield* hmm.rangesLock.lock();
  hmm.notifiers--;
  if (hmm.notifiers === 0) {
    for (const r of hmm.ranges) r.valid = true;
    hmm.wq.wakeUpAll();
  }
  yield* hmm.rangesLock.unlock();
}

const hmmNotifierOps: MmuNotifierOps<Hmm> = {
  /** Models hmm_release(). */
  *release(hmm) {
    if (hmm.kref === 0) return;
    hmm.kref++;
    if (hmm.ranges.size > 0) warn(hmm.owner.sys, 'hmm_release with ranges still registered');
    yield* hmm.mirrorsSem.downRead();
    for (const m of [...hmm.mirrors]) yield* m.ops.release(m);
    yield* hmm.mirrorsSem.upRead();
    yield* hmmPut(hmm);
  },

  /** Models hmm_invalidate_range_start(): every overlapping range becomes invalid, mirrors sync. */
  *invalidateRangeStart(hmm, nrange) {
    if (hmm.kref === 0) return 0;
    hmm.kref++;
    yield* hmm.rangesLock.lock();
    hmm.notifiers++;
    for (const r of hmm.ranges) {
      if (nrange.end < r.start || nrange.start >= r.end) continue;
      r.valid = false;
    }
    yield* hmm.rangesLock.unlock();
    let ret = 0;
    const blockable = mmuNotifierRangeBlockable(nrange);
    let locked = true;
    if (blockable) yield* hmm.mirrorsSem.downRead();
    else locked = yield* hmm.mirrorsSem.downReadTrylock();
    if (!locked) {
      ret = -Errno.EAGAIN;
    } else {
      for (const m of hmm.mirrors) {
        const rc = yield* m.ops.syncCpuDevicePagetables(m, nrange);
        if (rc !== 0) {
          if (blockable || rc !== -Errno.EAGAIN) {
            warn(hmm.owner.sys, `sync_cpu_device_pagetables failed with ${rc}`);
            continue;
          }
          ret = -Errno.EAGAIN;
          break;
        }
      }
      yield* hmm.mirrorsSem.upRead();
    }
    if (ret !== 0) yield* notifiersDecrement(hmm);
    yield* hmmPut(hmm);
    return ret;
  },

  /** Models hmm_invalidate_range_end(). */
  *invalidateRangeEnd(hmm) {
    if (hmm.kref === 0) return;
    hmm.kref++;
    yield* notifiersDecrement(hmm);
    yield* hmmPut(hmm);
  },
};

/**
 * Models hmm_mirror_register(): attaches a mirror to the mm's struct hmm, creating and
 * registering it on first use. The caller holds the mmap lock for write. 0, -EINVAL, -ENOMEM.
 */
export function* hmmMirrorRegister(mirror: HmmMirror, mm: MmStruct): KGen<number> {
  const sys = mm.sys;
  if ((mirror.ops as HmmMirrorOps | null) === null) return -Errno.EINVAL;
  let hmm = hmmOfMm.get(mm);
  if (hmm !== undefined && hmm.kref > 0) {
    hmm.kref++;
  } else {
    if (sys.inject.shouldFail('hmm_get_or_create')) return -Errno.ENOMEM;
    hmm = new Hmm(mm);
    const r = yield* __mmuNotifierRegister(hmm, mm);
    if (r !== 0) return -Errno.ENOMEM;
    hmmOfMm.set(mm, hmm);
  }
  mirror.hmm = hmm;
  yield* hmm.mirrorsSem.downWrite();
  hmm.mirrors.unshift(mirror);
  yield* hmm.mirrorsSem.upWrite();
  return 0;
}

/** Models hmm_mirror_unregister(). */
export function* hmmMirrorUnregister(mirror: HmmMirror): KGen {
  const hmm = mirror.hmm;
  if (hmm === null) return;
  yield* hmm.mirrorsSem.downWrite();
  const i = hmm.mirrors.indexOf(mirror);
  if (i >= 0) hmm.mirrors.splice(i, 1);
  yield* hmm.mirrorsSem.upWrite();
  mirror.hmm = null;
  yield* hmmPut(hmm);
}

/**
 * Models hmm_range_register(): starts tracking invalidations of [start, end). The range is valid
 * at once unless an invalidation is in progress. Holds an mm_users reference until unregister.
 * 0, -EINVAL (unaligned or empty), -EFAULT (the address space is gone).
 */
export function* hmmRangeRegister(range: LegacyHmmRange, mirror: HmmMirror): KGen<number> {
  const hmm = mirror.hmm;
  range.valid = false;
  range.hmm = null;
  if (hmm === null) return -Errno.EINVAL;
  if (range.start % PAGE_SIZE !== 0 || range.end % PAGE_SIZE !== 0) return -Errno.EINVAL;
  if (range.start >= range.end) return -Errno.EINVAL;
  if (!mmgetNotZero(hmm.owner)) return -Errno.EFAULT;
  yield* hmm.rangesLock.lock();
  range.hmm = hmm;
  hmm.kref++;
  hmm.ranges.add(range);
  if (hmm.notifiers === 0) range.valid = true;
  yield* hmm.rangesLock.unlock();
  return 0;
}

/** Models hmm_range_unregister(). */
export function* hmmRangeUnregister(range: LegacyHmmRange): KGen {
  const hmm = range.hmm;
  if (hmm === null) return;
  yield* hmm.rangesLock.lock();
  hmm.ranges.delete(range);
  yield* hmm.rangesLock.unlock();
  yield* mmput(hmm.owner);
  yield* hmmPut(hmm);
  range.valid = false;
  range.hmm = null;
}

/** Models hmm_range_valid(): a plain read of the flag; call it under the driver's update lock. */
export function hmmRangeValid(range: LegacyHmmRange): boolean {
  return range.valid;
}

/**
 * Models hmm_range_wait_until_valid(): sleeps (virtual time) until no invalidation is in progress
 * or `timeoutMs` passes; returns whether the range is valid.
 */
export function* hmmRangeWaitUntilValid(range: LegacyHmmRange, timeoutMs: number): KGen<boolean> {
  const hmm = range.hmm;
  yield { kind: 'step', label: 'hmm_range_wait_until_valid', access: { obj: range, write: false } };
  if (hmm === null) return false;
  yield* hmm.wq.waitEventTimeout(() => range.valid, timeoutMs * NSEC_PER_MSEC, 'hmm_range_wait_until_valid');
  return range.valid;
}

// ---------------------------------------------------------------------------------------------
// Entry encoding.

function scale(range: LegacyHmmRange): number {
  return 2 ** range.pfnShift;
}

function flagBits(range: LegacyHmmRange, entry: number): number {
  return entry % scale(range);
}

function isSentinel(range: LegacyHmmRange, entry: number): boolean {
  const v = range.values;
  return (
    entry === v[HMM_PFN_VALUE.NONE] || entry === v[HMM_PFN_VALUE.ERROR] || entry === v[HMM_PFN_VALUE.SPECIAL]
  );
}

/** Models hmm_device_entry_to_pfn(): the PFN of a valid entry, or -1. */
export function hmmDeviceEntryToPfn(range: LegacyHmmRange, entry: number): number {
  if (isSentinel(range, entry)) return -1;
  if ((flagBits(range, entry) & range.flags[HMM_PFN_FLAG.VALID]) === 0) return -1;
  return Math.floor(entry / scale(range));
}

/** Models hmm_device_entry_to_page(): the page of a valid entry (as a PFN), or -1 for none. */
export function hmmDeviceEntryToPage(range: LegacyHmmRange, entry: number): number {
  return hmmDeviceEntryToPfn(range, entry);
}

/** Models hmm_device_entry_from_pfn(). */
export function hmmDeviceEntryFromPfn(range: LegacyHmmRange, pfn: number): number {
  return pfn * scale(range) + range.flags[HMM_PFN_FLAG.VALID];
}

/** Models hmm_device_entry_from_page(). */
export function hmmDeviceEntryFromPage(range: LegacyHmmRange, pfn: number): number {
  return hmmDeviceEntryFromPfn(range, pfn);
}

// ---------------------------------------------------------------------------------------------
// hmm_range_fault() of v5.4.

interface LegacyWalk {
  readonly range: LegacyHmmRange;
  readonly mm: MmStruct;
  /** !HMM_FAULT_SNAPSHOT. */
  readonly fault: boolean;
  last: number;
}

/** Models hmm_pte_need_fault() of v5.4: [fault, writeFault] as bits 1 and 2. */
function needFault(w: LegacyWalk, entry: number, cpuFlags: number): number {
  if (!w.fault) return 0;
  const r = w.range;
  const f = r.flags;
  const req = (flagBits(r, entry) & r.pfnFlagsMask) | r.defaultFlags;
  if ((req & f[HMM_PFN_FLAG.VALID]) === 0) return 0;
  // Device memory is only faulted back when explicitly requested.
  if ((cpuFlags & f[HMM_PFN_FLAG.DEVICE_PRIVATE]) !== 0) {
    if ((req & f[HMM_PFN_FLAG.DEVICE_PRIVATE]) === 0) return 0;
    return (req & f[HMM_PFN_FLAG.WRITE]) !== 0 ? 3 : 1;
  }
  let need = (cpuFlags & f[HMM_PFN_FLAG.VALID]) === 0 ? 1 : 0;
  if ((req & f[HMM_PFN_FLAG.WRITE]) !== 0 && (cpuFlags & f[HMM_PFN_FLAG.WRITE]) === 0) need = 3;
  return need;
}

function idx(w: LegacyWalk, addr: number): number {
  return (addr - w.range.start) / PAGE_SIZE;
}

/** Models hmm_vma_do_fault(): -EBUSY after a successful fault (rewalk), else the error. */
function* doFault(w: LegacyWalk, vma: Vma, addr: number, write: boolean): KGen<number> {
  const r = yield* handleMmFault(vma, addr, FAULT_FLAG_REMOTE | (write ? FAULT_FLAG_WRITE : 0));
  if ((r & VM_FAULT.RETRY) !== 0) return -Errno.EAGAIN;
  if ((r & VM_FAULT_ERROR) !== 0) {
    w.range.pfns[idx(w, addr)] = w.range.values[HMM_PFN_VALUE.ERROR];
    return -Errno.EFAULT;
  }
  return -Errno.EBUSY;
}

/** Models hmm_vma_walk_hole_(): entries become NONE; pages that need it are faulted. */
function* hole(w: LegacyWalk, vma: Vma | null, addr: number, end: number, need: number): KGen<number> {
  const r = w.range;
  w.last = addr;
  if ((need & 2) !== 0 && vma !== null && (vma.flags & VM.WRITE) === 0) return -Errno.EPERM;
  for (; addr < end; addr += PAGE_SIZE) {
    r.pfns[idx(w, addr)] = r.values[HMM_PFN_VALUE.NONE];
    if (need !== 0) {
      if (vma === null) {
        r.pfns[idx(w, addr)] = r.values[HMM_PFN_VALUE.ERROR];
        return -Errno.EFAULT;
      }
      const ret = yield* doFault(w, vma, addr, (need & 2) !== 0);
      if (ret !== -Errno.EBUSY) return ret;
    }
  }
  return need !== 0 ? -Errno.EBUSY : 0;
}

function rangeNeedFault(w: LegacyWalk, addr: number, end: number, cpuFlags: number): number {
  let need = 0;
  for (let a = addr; a < end && need !== 3; a += PAGE_SIZE)
    need |= needFault(w, w.range.pfns[idx(w, a)], cpuFlags);
  return need;
}

function cpuFlagsOf(range: LegacyHmmRange, lo: number): number {
  if ((lo & PTE_PRESENT) === 0 || (lo & PTE_PROTNONE) !== 0) return 0;
  const f = range.flags;
  return (lo & PTE_WRITE) !== 0 ? f[HMM_PFN_FLAG.VALID] | f[HMM_PFN_FLAG.WRITE] : f[HMM_PFN_FLAG.VALID];
}

/** Models hmm_vma_walk_pmd() and hmm_vma_handle_pte() of v5.4 over [addr, end) in one PMD. */
function* walkPmd(w: LegacyWalk, vma: Vma, addr: number, end: number): KGen<number> {
  const mm = w.mm;
  const r = w.range;
  const phys = mm.sys.phys;
  const pmd = mm.pgt.upperAt(addr, 1);
  const pi = indexAt(addr, 1);
  const t = pmd === null ? null : pmd.children[pi];
  if (t === null) {
    const lo = pmd === null ? 0 : pmd.words[2 * pi];
    const hi = pmd === null ? 0 : pmd.words[2 * pi + 1];
    if (lo === 0 && hi === 0) return yield* hole(w, vma, addr, end, rangeNeedFault(w, addr, end, 0));
    // A PMD mapping: THP, huge zero page or 2MiB hugetlb page.
    const cpu = cpuFlagsOf(r, lo);
    const need = rangeNeedFault(w, addr, end, cpu);
    if ((lo & PTE_PROTNONE) !== 0 || need !== 0) return yield* hole(w, vma, addr, end, need);
    let pfn = hi + (addr % PMD_SIZE) / PAGE_SIZE;
    for (let a = addr; a < end; a += PAGE_SIZE, pfn++) r.pfns[idx(w, a)] = pfn * scale(r) + cpu;
    w.last = end;
    return 0;
  }
  for (; addr < end; addr += PAGE_SIZE) {
    const i = idx(w, addr);
    const s = pteSlot(addr);
    const lo = t.words[s];
    const hi = t.words[s + 1];
    const orig = r.pfns[i];
    r.pfns[i] = r.values[HMM_PFN_VALUE.NONE];
    let need = 0;
    if (lo === 0 && hi === 0) {
      need = needFault(w, orig, 0);
      if (need !== 0) return yield* hole(w, vma, addr, end, need);
      continue;
    }
    if ((lo & (PTE_PRESENT | PTE_PROTNONE)) === 0) {
      if (isSwapEntry(lo)) {
        need = needFault(w, orig, 0);
        if (need !== 0) return yield* hole(w, vma, addr, end, need);
        continue;
      }
      if (isDevicePrivateEntry(lo)) {
        const f = r.flags;
        const cpu =
          f[HMM_PFN_FLAG.VALID] |
          f[HMM_PFN_FLAG.DEVICE_PRIVATE] |
          (swpType(lo) === SwpType.DEVICE_PRIVATE_WRITE ? f[HMM_PFN_FLAG.WRITE] : 0);
        need = needFault(w, orig, cpu);
        if (need !== 0) return yield* hole(w, vma, addr, end, need);
        r.pfns[i] = hi * scale(r) + cpu;
        continue;
      }
      // v5.4 never waits for a migration entry: the need-fault state is not computed for it, so
      // it reads as an empty entry.
      if (isMigrationEntry(lo)) continue;
      r.pfns[i] = r.values[HMM_PFN_VALUE.ERROR];
      w.last = addr;
      return -Errno.EFAULT;
    }
    const cpu = cpuFlagsOf(r, lo);
    need = needFault(w, orig, cpu);
    if (need !== 0) return yield* hole(w, vma, addr, end, need);
    if ((lo & PTE_SPECIAL) !== 0 && !phys.isZeroPfn(hi)) {
      r.pfns[i] = r.values[HMM_PFN_VALUE.SPECIAL];
      w.last = addr;
      return -Errno.EFAULT;
    }
    r.pfns[i] = hi * scale(r) + cpu;
  }
  w.last = end;
  return 0;
}

function* walk(w: LegacyWalk, vma: Vma, start: number, end: number): KGen<number> {
  for (let addr = start; addr < end;) {
    const next = Math.min(end, addr - (addr % PMD_SIZE) + PMD_SIZE);
    const ret = yield* walkPmd(w, vma, addr, next);
    if (ret !== 0) return ret;
    addr = next;
  }
  return 0;
}

/**
 * Models hmm_range_fault(range, flags) of v5.4. The caller holds the mmap lock for read.
 * Returns the number of entries filled from range.start, or -EBUSY (the range was invalidated;
 * wait_until_valid and retry), -EFAULT, -EPERM, -ENOMEM, -EAGAIN.
 */
export function* legacyHmmRangeFault(range: LegacyHmmRange, flags: number): KGen<number> {
  const hmm = range.hmm;
  if (hmm === null) return -Errno.EINVAL;
  const mm = hmm.owner;
  const sys = mm.sys;
  if (!mm.mmapLock.heldByCurrent()) {
    sys.sched.report({
      oracle: 'locks',
      message: 'hmm_range_fault (v5.4) called without the mmap lock held',
    });
  }
  const w: LegacyWalk = { range, mm, fault: (flags & HMM_FAULT_SNAPSHOT) === 0, last: range.start };
  let start = range.start;
  do {
    yield { kind: 'step', label: 'hmm_range_fault (v5.4)', access: { obj: range, write: false } };
    if (!range.valid) return -Errno.EBUSY;
    const vma = mm.findVma(start);
    if (vma === null || (vma.flags & (VM.IO | VM.PFNMAP | VM.MIXEDMAP)) !== 0) return -Errno.EFAULT;
    if ((vma.flags & VM.READ) === 0) {
      range.pfns.fill(range.values[HMM_PFN_VALUE.NONE], 0, (range.end - range.start) / PAGE_SIZE);
      return -Errno.EPERM;
    }
    const end = Math.min(range.end, vma.end);
    let ret: number;
    w.last = start;
    do {
      // Addresses below the VMA (a gap before it) are holes without a VMA.
      if (start < vma.start) {
        const gapEnd = Math.min(end, vma.start);
        ret = yield* hole(w, null, start, gapEnd, rangeNeedFault(w, start, gapEnd, 0));
        if (ret === 0) ret = yield* walk(w, vma, gapEnd, end);
      } else {
        ret = yield* walk(w, vma, start, end);
      }
      start = w.last;
    } while (ret === -Errno.EBUSY && range.valid);
    if (ret !== 0) {
      const from = (w.last - range.start) / PAGE_SIZE;
      range.pfns.fill(range.values[HMM_PFN_VALUE.NONE], from, (range.end - range.start) / PAGE_SIZE);
      return ret;
    }
    start = end;
  } while (start < range.end);
  sys.trace.count('hmm.legacy_range_fault');
  return (w.last - range.start) / PAGE_SIZE;
}

// ---------------------------------------------------------------------------------------------
// A small DMA-mapping model for hmm_range_dma_map/unmap.

/** DMA_TO_DEVICE / DMA_BIDIRECTIONAL. */
export const DMA_TO_DEVICE = 1;
export const DMA_BIDIRECTIONAL = 0;
/** What dma_map_page() returns on failure. */
export const DMA_MAPPING_ERROR = -1;

/**
 * A device's DMA mapping table: each mapped DMA address names a page and holds a reference to
 * it, with the page's generation number so oracle 2 can tell a stale mapping.
 */
export class DmaDevice {
  readonly mappings = new Map<number, { pfn: number; gen: number; dir: number }>();
  private nextAddr = 0x1_0000_0000;
  constructor(
    readonly sys: System,
    readonly name: string,
  ) {}

  /** Models dma_map_page(): DMA_MAPPING_ERROR when injected at 'dma_map_page'. */
  mapPage(pfn: number, dir: number): number {
    if (this.sys.inject.shouldFail('dma_map_page')) return DMA_MAPPING_ERROR;
    const addr = this.nextAddr;
    this.nextAddr += PAGE_SIZE;
    this.sys.phys.get(pfn);
    this.mappings.set(addr, { pfn, gen: this.sys.phys.gen[pfn], dir });
    return addr;
  }

  /** Models dma_unmap_page(). */
  unmapPage(addr: number): void {
    const m = this.mappings.get(addr);
    if (m === undefined) throw new Error(`${this.name}: dma_unmap_page of unmapped address ${addr}`);
    this.mappings.delete(addr);
    this.sys.phys.put(m.pfn);
  }

  /** The frames this device can reach, for checkFrameRefs. */
  *frameRefs(): Iterable<{ pfn: number; gen: number }> {
    for (const m of this.mappings.values()) yield { pfn: m.pfn, gen: m.gen };
  }
}

/**
 * Models hmm_range_dma_map(): hmm_range_fault() then DMA-map every valid page into daddrs[].
 * Returns the number of pages mapped, or -errno (-EBUSY when the range was invalidated meanwhile,
 * with everything mapped so far unmapped again).
 */
export function* hmmRangeDmaMap(
  range: LegacyHmmRange,
  device: DmaDevice,
  daddrs: Float64Array,
  flags: number,
): KGen<number> {
  const ret = yield* legacyHmmRangeFault(range, flags);
  if (ret <= 0) return ret !== 0 ? ret : -Errno.EBUSY;
  const npages = (range.end - range.start) / PAGE_SIZE;
  let mapped = 0;
  let err = 0;
  for (let i = 0; i < npages; i++) {
    const page = hmmDeviceEntryToPage(range, range.pfns[i]);
    if (page < 0) continue;
    if (!range.valid) {
      err = -Errno.EBUSY;
      break;
    }
    const write = (flagBits(range, range.pfns[i]) & range.flags[HMM_PFN_FLAG.WRITE]) !== 0;
    daddrs[i] = device.mapPage(page, write ? DMA_BIDIRECTIONAL : DMA_TO_DEVICE);
    if (daddrs[i] === DMA_MAPPING_ERROR) {
      err = -Errno.EFAULT;
      break;
    }
    mapped++;
  }
  if (err === 0) return mapped;
  for (let i = 0; i < npages && mapped > 0; i++) {
    if (hmmDeviceEntryToPage(range, range.pfns[i]) < 0) continue;
    if (daddrs[i] === DMA_MAPPING_ERROR || !device.mappings.has(daddrs[i])) continue;
    device.unmapPage(daddrs[i]);
    mapped--;
  }
  return err;
}

/**
 * Models hmm_range_dma_unmap(): unmaps every page of the range mapped in daddrs[], marking pages
 * the device could write dirty when asked. Returns the number unmapped, or -EINVAL.
 */
export function hmmRangeDmaUnmap(
  range: LegacyHmmRange,
  device: DmaDevice,
  daddrs: Float64Array,
  dirty: boolean,
): number {
  if (range.end <= range.start) return -Errno.EINVAL;
  const phys = device.sys.phys;
  const npages = (range.end - range.start) / PAGE_SIZE;
  let cpages = 0;
  for (let i = 0; i < npages; i++) {
    const page = hmmDeviceEntryToPage(range, range.pfns[i]);
    if (page < 0 || !device.mappings.has(daddrs[i])) continue;
    const write = (flagBits(range, range.pfns[i]) & range.flags[HMM_PFN_FLAG.WRITE]) !== 0;
    if (write && dirty) phys.flags[phys.head(page)] |= PG.dirty;
    device.unmapPage(daddrs[i]);
    daddrs[i] = 0;
    cpages++;
  }
  return cpages;
}
