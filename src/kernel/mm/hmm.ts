/**
 * Models mm/hmm.c and include/linux/hmm.h (the mmu_interval_notifier era): hmm_range_fault()
 * snapshots, and optionally faults in, the CPU page table over a range so a device can mirror it.
 *
 * hmm_pfns[] holds one 64-bit value per page in the kernel: the PFN in the low bits, flags in the
 * top 11. Here each value is two 32-bit words of a Uint32Array: words[2i] is the low word (the
 * PFN) and words[2i + 1] the high word, which carries the kernel's top flag bits shifted down by
 * 32 (VALID bit 63 -> bit 31, and so on; the map order field starts at bit 53 - 32 = 21).
 * On input the high word holds the per-page request (REQ_FAULT / REQ_WRITE) that, masked by
 * pfn_flags_mask and or-ed with default_flags, says what the caller needs.
 *
 * The walk is per page-table level like the kernel's walk_page_range() with hmm_walk_ops; per-PTE
 * loops are plain synchronous code over the table words (nothing allocated per page), and the
 * walk only yields when it faults or waits for a migration.
 */
import { PAGE_SIZE, PMD_SIZE, PUD_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, handleMmFault } from './memory.ts';
import { type MmStruct, VM, VM_FAULT, VM_FAULT_ERROR, type Vma } from './mm_types.ts';
import { type MmuIntervalNotifier, mmuIntervalCheckRetry } from './mmu_notifier.ts';
import {
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SPECIAL,
  PTE_WRITE,
  SwpType,
  isMigrationEntry,
  swpType,
} from './pgtable.ts';
import { pteSlot } from './pte.ts';
import { indexAt, type LeafTable } from '../../lib/pgtable_store.ts';

/** Output: the PFN is valid and at least readable (may be a device-private page of the owner). */
export const HMM_PFN_VALID = 0x80000000;
/** Output: the CPU mapping is writable. */
export const HMM_PFN_WRITE = 0x40000000;
/** Output: the address cannot be accessed (no VMA, special mapping, VM_IO/VM_PFNMAP, no VM_READ). */
export const HMM_PFN_ERROR = 0x20000000;
/** The map order field: bits 53..57 of the kernel value, 21..25 of the high word. */
export const HMM_PFN_ORDER_SHIFT = 21;
export const HMM_PFN_ORDER_MASK = 0x1f;
/** Every flag bit of the high word (the kernel's HMM_PFN_FLAGS, top 11 bits). */
export const HMM_PFN_FLAGS = 0xffe00000;
/** Input: fault the page in if it is not present. */
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
/** Input: fault the page in writable. */
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;

/** How long the canonical driver loop retries -EBUSY before giving up (ms). */
export const HMM_RANGE_DEFAULT_TIMEOUT_MS = 1000;

/** PMD_SHIFT - PAGE_SHIFT: the order a PMD mapping (THP, huge zero page, 2MiB hugetlb) reports. */
const PMD_ORDER = 9;

const NEED_FAULT = 1;
const NEED_WRITE_FAULT = 2;
const NEED_ALL = NEED_FAULT | NEED_WRITE_FAULT;

/** Models struct hmm_range. `end` is exclusive; hmmPfns has 2 words per page of [start, end). */
export interface HmmRange {
  notifier: MmuIntervalNotifier;
  notifierSeq: number;
  start: number;
  end: number;
  hmmPfns: Uint32Array;
  defaultFlags: number;
  pfnFlagsMask: number;
  devPrivateOwner: unknown;
}

/** Models hmm_pfn_to_map_order(): the order of the CPU mapping that page i lies in. */
export function hmmPfnToMapOrder(words: Uint32Array, i: number): number {
  return (words[2 * i + 1] >>> HMM_PFN_ORDER_SHIFT) & HMM_PFN_ORDER_MASK;
}

/** The flag bits (high word) of entry i, order field included. */
export function hmmPfnFlags(words: Uint32Array, i: number): number {
  return (words[2 * i + 1] & HMM_PFN_FLAGS) >>> 0;
}

/** Models hmm_pfn_to_page() as a PFN: the PFN bits of entry i. */
export function hmmPfnPfn(words: Uint32Array, i: number): number {
  return words[2 * i] + (words[2 * i + 1] & ~HMM_PFN_FLAGS) * 0x100000000;
}

/** The order field of an output value (hmm_pfn_flags_order()). */
function orderFlags(order: number): number {
  return order << HMM_PFN_ORDER_SHIFT;
}

/** State of one hmm_range_fault() call (struct hmm_vma_walk). */
interface HmmWalk {
  readonly range: HmmRange;
  readonly mm: MmStruct;
  readonly words: Uint32Array;
  /** Whether any entry can ask for a fault at all (the range-level shortcut). */
  readonly mayFault: boolean;
  /** Outputs are final below this address; inputs are untouched from it on. */
  last: number;
  /** Where scanPtes() stopped, and the fault it needs there. */
  stopAddr: number;
  stopNeed: number;
}

/** Models hmm_pte_need_fault(): what the request in `reqHi` needs given what the CPU maps. */
function pteNeedFault(w: HmmWalk, reqHi: number, cpuFlags: number): number {
  const r = w.range;
  const req = (reqHi & r.pfnFlagsMask) | r.defaultFlags;
  if ((req & HMM_PFN_REQ_FAULT) === 0) return 0;
  if ((req & HMM_PFN_REQ_WRITE) !== 0 && (cpuFlags & HMM_PFN_WRITE) === 0) return NEED_ALL;
  if ((cpuFlags & HMM_PFN_VALID) === 0) return NEED_FAULT;
  return 0;
}

/** Models hmm_range_need_fault(): the union of the needs of entries [i, i + n). */
function rangeNeedFault(w: HmmWalk, i: number, n: number, cpuFlags: number): number {
  if (!w.mayFault) return 0;
  let need = 0;
  const words = w.words;
  for (let k = i; k < i + n; k++) {
    need |= pteNeedFault(w, words[2 * k + 1], cpuFlags);
    if (need === NEED_ALL) break;
  }
  return need;
}

function indexOf(w: HmmWalk, addr: number): number {
  return (addr - w.range.start) / PAGE_SIZE;
}

/** Models hmm_pfns_fill(): every entry of [addr, end) becomes `hiFlags` with no PFN. */
function fill(w: HmmWalk, addr: number, end: number, hiFlags: number): number {
  const words = w.words;
  const i0 = indexOf(w, addr);
  const n = (end - addr) / PAGE_SIZE;
  for (let k = i0; k < i0 + n; k++) {
    words[2 * k] = 0;
    words[2 * k + 1] = hiFlags;
  }
  return 0;
}

/**
 * Models hmm_vma_fault(): faults every page of [addr, end) (write faults if any entry needs one,
 * refused with -EPERM on a VMA without VM_WRITE), then -EBUSY so the walk restarts at `addr`.
 */
function* vmaFault(w: HmmWalk, vma: Vma, addr: number, end: number, need: number): KGen<number> {
  w.last = addr;
  let flags = FAULT_FLAG_REMOTE;
  if ((need & NEED_WRITE_FAULT) !== 0) {
    if ((vma.flags & VM.WRITE) === 0) return -Errno.EPERM;
    flags |= FAULT_FLAG_WRITE;
  }
  const sys = w.mm.sys;
  for (let a = addr; a < end; a += PAGE_SIZE) {
    sys.trace.count('hmm.fault');
    const r = yield* handleMmFault(vma, a, flags);
    if ((r & VM_FAULT_ERROR) !== 0) return (r & VM_FAULT.OOM) !== 0 ? -Errno.ENOMEM : -Errno.EFAULT;
  }
  return -Errno.EBUSY;
}

/** Models hmm_vma_walk_hole(): no page table below [addr, end); `vma` null outside any VMA. */
function* walkHole(w: HmmWalk, vma: Vma | null, addr: number, end: number): KGen<number> {
  const need = rangeNeedFault(w, indexOf(w, addr), (end - addr) / PAGE_SIZE, 0);
  if (vma === null) return need !== 0 ? -Errno.EFAULT : fill(w, addr, end, HMM_PFN_ERROR);
  if (need !== 0) return yield* vmaFault(w, vma, addr, end, need);
  return fill(w, addr, end, 0);
}

/** Models migration_entry_wait(): sleeps until the entry at `addr` is no longer a migration entry. */
function* migrationEntryWait(mm: MmStruct, addr: number): KGen {
  const s = pteSlot(addr);
  yield* mm.sys.migrationWq.waitEvent(() => {
    const t = mm.pgt.pteTable(addr);
    return t === null || !isMigrationEntry(t.words[s]);
  }, 'migration_entry_wait');
}

/** Models hmm_vma_handle_pmd(): a PMD mapping (THP or huge zero page) covers [addr, end). */
function* handlePmd(w: HmmWalk, vma: Vma, lo: number, hi: number, addr: number, end: number): KGen<number> {
  const cpu =
    (lo & PTE_PROTNONE) !== 0
      ? 0
      : (HMM_PFN_VALID | ((lo & PTE_WRITE) !== 0 ? HMM_PFN_WRITE : 0) | orderFlags(PMD_ORDER)) >>> 0;
  const i0 = indexOf(w, addr);
  const n = (end - addr) / PAGE_SIZE;
  const need = rangeNeedFault(w, i0, n, cpu);
  if (need !== 0) return yield* vmaFault(w, vma, addr, end, need);
  const words = w.words;
  let pfn = hi + (addr % PMD_SIZE) / PAGE_SIZE;
  for (let k = i0; k < i0 + n; k++, pfn++) {
    words[2 * k] = pfn;
    words[2 * k + 1] = cpu;
  }
  return 0;
}

/**
 * Models the non-present PMD cases of hmm_vma_walk_pmd(): a PMD migration entry (wait for the
 * migration and rewalk, if a fault is needed) and hmm_vma_handle_absent_pmd(): the caller's own
 * device-private THP is reported with its order and never faulted; another owner's is faulted
 * back (migrate_to_ram) when needed; anything else is an error.
 */
function* handleAbsentPmd(
  w: HmmWalk,
  vma: Vma,
  lo: number,
  hi: number,
  addr: number,
  end: number,
): KGen<number> {
  const i0 = indexOf(w, addr);
  const n = (end - addr) / PAGE_SIZE;
  const type = swpType(lo);
  if (isMigrationEntry(lo)) {
    if (rangeNeedFault(w, i0, n, 0) === 0) return fill(w, addr, end, 0);
    w.last = addr;
    const mm = w.mm;
    yield* mm.sys.migrationWq.waitEvent(() => {
      const pmd = mm.pgt.upperAt(addr, 1);
      const pi = indexAt(addr, 1);
      return pmd === null || pmd.children[pi] !== null || !isMigrationEntry(pmd.words[2 * pi]);
    }, 'pmd_migration_entry_wait');
    return -Errno.EBUSY;
  }
  const devPrivate = type === SwpType.DEVICE_PRIVATE_READ || type === SwpType.DEVICE_PRIVATE_WRITE;
  if (devPrivate && w.mm.sys.phys.pagemapOf(hi)?.hooks.owner === w.range.devPrivateOwner) {
    const cpu =
      (HMM_PFN_VALID |
        (type === SwpType.DEVICE_PRIVATE_WRITE ? HMM_PFN_WRITE : 0) |
        orderFlags(PMD_ORDER)) >>>
      0;
    let pfn = hi + (addr % PMD_SIZE) / PAGE_SIZE;
    for (let k = i0; k < i0 + n; k++, pfn++) {
      w.words[2 * k] = pfn;
      w.words[2 * k + 1] = cpu;
    }
    return 0;
  }
  const need = rangeNeedFault(w, i0, n, 0);
  if (need !== 0) return devPrivate ? yield* vmaFault(w, vma, addr, end, need) : -Errno.EFAULT;
  return fill(w, addr, end, HMM_PFN_ERROR);
}

/** What scanPtes() stopped for: the walk must fault, wait for a migration, or fail. */
const SCAN_DONE = 0;
const SCAN_FAULT = 1;
const SCAN_MIGRATION = 2;
const SCAN_EFAULT = 3;

/**
 * Models hmm_vma_walk_pmd()'s PTE loop with hmm_vma_handle_pte() inlined, over [addr, end) of
 * one PTE table. This is the hot loop of a snapshot: plain synchronous code over typed arrays.
 * It stops at the first entry that needs a fault, a migration wait or an error, leaving that
 * entry's address in w.stopAddr and the fault needed in w.stopNeed.
 */
function scanPtes(w: HmmWalk, t: LeafTable, addr: number, end: number): number {
  const phys = w.mm.sys.phys;
  const words = w.words;
  const tw = t.words;
  const mayFault = w.mayFault;
  const owner = w.range.devPrivateOwner;
  let i = indexOf(w, addr);
  let s = pteSlot(addr);
  for (; addr < end; addr += PAGE_SIZE, i++, s += 2) {
    const lo = tw[s];
    const hi = tw[s + 1];
    if (lo === 0 && hi === 0) {
      if (mayFault) {
        const need = pteNeedFault(w, words[2 * i + 1], 0);
        if (need !== 0) return stop(w, addr, need, SCAN_FAULT);
      }
      words[2 * i] = 0;
      words[2 * i + 1] = 0;
      continue;
    }
    if ((lo & (PTE_PRESENT | PTE_PROTNONE)) === 0) {
      const type = swpType(lo);
      const devPrivate = type === SwpType.DEVICE_PRIVATE_READ || type === SwpType.DEVICE_PRIVATE_WRITE;
      // The caller's own device-private pages are reported, never faulted back.
      if (devPrivate && phys.pagemapOf(hi)?.hooks.owner === owner) {
        words[2 * i] = hi;
        words[2 * i + 1] =
          type === SwpType.DEVICE_PRIVATE_WRITE ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID;
        continue;
      }
      const need = mayFault ? pteNeedFault(w, words[2 * i + 1], 0) : 0;
      if (need === 0) {
        words[2 * i] = 0;
        words[2 * i + 1] = 0;
        continue;
      }
      // Swap-in, another owner's device page (migrate_to_ram) and device-exclusive entries are
      // all resolved by an ordinary fault.
      if (type === SwpType.SWAP || devPrivate || type === SwpType.DEVICE_EXCLUSIVE) {
        return stop(w, addr, need, SCAN_FAULT);
      }
      if (isMigrationEntry(lo)) return stop(w, addr, need, SCAN_MIGRATION);
      return stop(w, addr, need, SCAN_EFAULT);
    }
    const cpu = (lo & PTE_PROTNONE) !== 0 ? 0 : (lo & PTE_WRITE) !== 0 ? HMM_PFN_VALID_WRITE : HMM_PFN_VALID;
    if (mayFault) {
      const need = pteNeedFault(w, words[2 * i + 1], cpu);
      if (need !== 0) return stop(w, addr, need, SCAN_FAULT);
    }
    // A special mapping has no struct page for the device to use; the zero page does.
    if ((lo & PTE_SPECIAL) !== 0 && !phys.isZeroPfn(hi)) {
      if (mayFault && pteNeedFault(w, words[2 * i + 1], 0) !== 0) return stop(w, addr, 0, SCAN_EFAULT);
      words[2 * i] = 0;
      words[2 * i + 1] = HMM_PFN_ERROR;
      continue;
    }
    words[2 * i] = hi;
    words[2 * i + 1] = cpu;
  }
  return SCAN_DONE;
}

const HMM_PFN_VALID_WRITE = (HMM_PFN_VALID | HMM_PFN_WRITE) >>> 0;

function stop(w: HmmWalk, addr: number, need: number, why: number): number {
  w.stopAddr = addr;
  w.stopNeed = need;
  return why;
}

/** The PTE-table level of the walk: scan, then act on what stopped the scan. */
function* handlePtes(w: HmmWalk, vma: Vma, t: LeafTable, addr: number, end: number): KGen<number> {
  const why = scanPtes(w, t, addr, end);
  if (why === SCAN_DONE) return 0;
  if (why === SCAN_FAULT) return yield* vmaFault(w, vma, w.stopAddr, end, w.stopNeed);
  if (why === SCAN_MIGRATION) {
    w.last = w.stopAddr;
    yield* migrationEntryWait(w.mm, w.stopAddr);
    return -Errno.EBUSY;
  }
  return -Errno.EFAULT;
}

/** Models walk_pgd_range() .. hmm_vma_walk_pmd() over [start, end) of a non-hugetlb VMA. */
function* walkVmaPmds(w: HmmWalk, vma: Vma, start: number, end: number): KGen<number> {
  const pgt = w.mm.pgt;
  for (let addr = start; addr < end;) {
    if (pgt.upperAt(addr, 2) === null) {
      // No PMD table: one hole up to the end of the PUD (the fault, if any, covers all of it).
      const next = Math.min(end, addr - (addr % PUD_SIZE) + PUD_SIZE);
      const r = yield* walkHole(w, vma, addr, next);
      if (r !== 0) return r;
      addr = next;
      continue;
    }
    const next = Math.min(end, addr - (addr % PMD_SIZE) + PMD_SIZE);
    const pmd = pgt.upperAt(addr, 1)!;
    const pi = indexAt(addr, 1);
    const leaf = pmd.children[pi];
    let r: number;
    if (leaf !== null) {
      r = yield* handlePtes(w, vma, leaf, addr, next);
    } else {
      const lo = pmd.words[2 * pi];
      const hi = pmd.words[2 * pi + 1];
      if (lo === 0 && hi === 0) {
        r = yield* walkHole(w, vma, addr, next);
      } else if ((lo & (PTE_PRESENT | PTE_PROTNONE)) === 0) {
        r = yield* handleAbsentPmd(w, vma, lo, hi, addr, next);
      } else {
        r = yield* handlePmd(w, vma, lo, hi, addr, next);
      }
    }
    if (r !== 0) return r;
    addr = next;
  }
  return 0;
}

/** Models hmm_vma_walk_hugetlb_entry() for each huge page of [start, end). */
function* walkHugetlb(w: HmmWalk, vma: Vma, start: number, end: number): KGen<number> {
  const pgt = w.mm.pgt;
  for (let addr = start; addr < end;) {
    const base = addr - (addr % PMD_SIZE);
    const next = Math.min(end, base + PMD_SIZE);
    const pmd = pgt.upperAt(addr, 1);
    if (pmd === null) {
      const r = yield* walkHole(w, vma, addr, next);
      if (r !== 0) return r;
      addr = next;
      continue;
    }
    const pi = indexAt(addr, 1);
    const lo = pmd.words[2 * pi];
    const hi = pmd.words[2 * pi + 1];
    const present = (lo & PTE_PRESENT) !== 0 && (lo & PTE_PROTNONE) === 0;
    const cpu =
      ((present ? HMM_PFN_VALID | ((lo & PTE_WRITE) !== 0 ? HMM_PFN_WRITE : 0) : 0) |
        orderFlags(PMD_ORDER)) >>>
      0;
    const i0 = indexOf(w, addr);
    // Only the first entry's request is looked at, as in the kernel.
    const need = w.mayFault ? pteNeedFault(w, w.words[2 * i0 + 1], cpu) : 0;
    if (need !== 0) {
      const r = yield* vmaFault(w, vma, addr, next, need);
      if (r !== 0) return r;
    }
    let pfn = hi + (addr - base) / PAGE_SIZE;
    for (let k = i0; k < i0 + (next - addr) / PAGE_SIZE; k++, pfn++) {
      w.words[2 * k] = pfn;
      w.words[2 * k + 1] = cpu;
    }
    addr = next;
  }
  return 0;
}

/** Models walk_page_range(mm, start, end, &hmm_walk_ops, ...): VMA by VMA, holes between them. */
function* walkRange(w: HmmWalk, start: number, end: number): KGen<number> {
  const mm = w.mm;
  let addr = start;
  while (addr < end) {
    const vma = mm.findVma(addr);
    if (vma === null || vma.start >= end) return yield* walkHole(w, null, addr, end);
    if (vma.start > addr) {
      const r = yield* walkHole(w, null, addr, vma.start);
      if (r !== 0) return r;
      addr = vma.start;
    }
    const vend = Math.min(end, vma.end);
    // hmm_vma_walk_test(): no struct pages behind VM_IO / VM_PFNMAP, and no VM_READ means no access.
    if ((vma.flags & (VM.IO | VM.PFNMAP)) !== 0 || (vma.flags & VM.READ) === 0) {
      if (rangeNeedFault(w, indexOf(w, addr), (vend - addr) / PAGE_SIZE, 0) !== 0) return -Errno.EFAULT;
      fill(w, addr, vend, HMM_PFN_ERROR);
    } else {
      const r =
        (vma.flags & VM.HUGETLB) !== 0
          ? yield* walkHugetlb(w, vma, addr, vend)
          : yield* walkVmaPmds(w, vma, addr, vend);
      if (r !== 0) return r;
    }
    addr = vend;
  }
  return 0;
}

/**
 * Models hmm_range_fault(). The caller holds the mmap lock of the notifier's mm for read and got
 * range.notifierSeq from mmu_interval_read_begin(). Returns 0 with every entry an output, or:
 * -EBUSY (an invalidation hit the range: read_begin again and retry), -EFAULT (no VMA, or an
 * access the mapping cannot give, or a fault error), -EPERM (write requested on a VMA without
 * VM_WRITE), -ENOMEM (a fault ran out of memory), -EINVAL (a malformed range). On error, entries
 * for addresses below the point reached are outputs and the rest still hold their inputs.
 */
export function* hmmRangeFault(range: HmmRange): KGen<number> {
  const mm = range.notifier.mm;
  const sys = mm.sys;
  const { start, end } = range;
  if (start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0 || start >= end) return -Errno.EINVAL;
  if (range.hmmPfns.length < (2 * (end - start)) / PAGE_SIZE) return -Errno.EINVAL;
  if (!mm.mmapLock.heldByCurrent()) {
    sys.sched.report({ oracle: 'locks', message: 'hmm_range_fault called without the mmap lock held' });
  }
  const w: HmmWalk = {
    range,
    mm,
    words: range.hmmPfns,
    mayFault: ((range.defaultFlags | range.pfnFlagsMask) & HMM_PFN_REQ_FAULT) !== 0,
    last: start,
    stopAddr: start,
    stopNeed: 0,
  };
  sys.trace.count('hmm.range_fault');
  for (;;) {
    yield { kind: 'step', label: 'hmm_range_fault', access: { obj: range.notifier, write: false } };
    if (mmuIntervalCheckRetry(range.notifier, range.notifierSeq)) {
      sys.trace.count('hmm.ebusy');
      return -Errno.EBUSY;
    }
    const ret = yield* walkRange(w, w.last, end);
    if (ret !== -Errno.EBUSY) return ret;
  }
}
