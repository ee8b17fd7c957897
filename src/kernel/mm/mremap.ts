import { indexAt } from '../../lib/pgtable_store.ts';
import { PAGE_SIZE, PMD_SIZE, PUD_SIZE, alignUp, pageAlignUp } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { mmapWriteLockKillable } from './mmap_lock.ts';
import type { Process } from '../system.ts';
import { splitHugePmd } from './huge_memory.ts';
import { type MmStruct, VM, Vma } from './mm_types.ts';
import { mayExpandVm } from './rlimit.ts';
import { VM_LOCKED_MASK, mlockFutureOk, mmPopulate } from './mlock.ts';
import { MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE } from './mman.ts';
import { vmaIsSealed } from './mseal.ts';
import {
  MAX_MAP_COUNT,
  MMAP_MIN_ADDR,
  detachVma,
  doMunmap,
  freePgtables,
  vmaGetFile,
  getUnmappedArea,
  insertVma,
  mergeAnonNeighbours,
  mergeWithNext,
  removeVma,
  splitRange,
  vmEnoughMemory,
} from './mmap.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from './mmu_notifier.ts';
import { pteNone } from './pgtable.ts';
import { pteSlot, setPte } from './pte.ts';
import { anonVmaClone, unlinkAnonVmas } from './rmap.ts';

/**
 * Models move_page_tables(): the entries of [old, old+len) move to [new, new+len) under one UNMAP
 * invalidation of the old range. Whole PMD leaves move as they are when both ends are PMD
 * aligned; otherwise they are split and moved PTE by PTE. Pages keep their rmap (same anon_vma,
 * same page->index through the new VMA's pgoff).
 */
function* movePageTables(vma: Vma, oldAddr: number, newAddr: number, len: number): KGen {
  const mm = vma.mm;
  // try_realign_addr(): a move from the start of a VMA off the 2 MiB grid, to an address as far
  // off it, that reaches the next boundary starts at the boundary below on both sides when nothing
  // is mapped there, so that the first PTE table can move whole.
  const lead = oldAddr % PMD_SIZE;
  const realign =
    lead !== 0 &&
    (vma.flags & VM.HUGETLB) === 0 &&
    len >= PMD_SIZE - lead &&
    newAddr % PMD_SIZE === lead &&
    canAlignDown(mm, oldAddr) &&
    canAlignDown(mm, newAddr);
  const from = realign ? oldAddr - lead : oldAddr;
  const to = realign ? newAddr - lead : newAddr;
  const end = oldAddr + len;
  const range = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, from, end);
  yield* mmuNotifierInvalidateRangeStart(range);
  const pmdAligned = oldAddr % PMD_SIZE === newAddr % PMD_SIZE;
  for (let base = oldAddr - (oldAddr % PMD_SIZE); base < end; base += PMD_SIZE) {
    const pmd = mm.pgt.upperAt(base, 1);
    if (pmd === null) continue;
    const i = indexAt(base, 1);
    if (pmd.children[i] !== null || pmd.words[2 * i] === 0) continue;
    const whole = base >= oldAddr && base + PMD_SIZE <= end;
    if (!(whole && pmdAligned) && (vma.flags & VM.HUGETLB) === 0) yield* splitHugePmd(vma, base);
  }
  yield* mm.ptl.lock();
  if ((vma.flags & VM.HUGETLB) !== 0) moveHugetlbEntries(mm, from, to, end);
  else {
    // Extent by extent, as far as the next boundary on either side: where the old range has the
    // table above an entry, the new one gets it too (alloc_new_pud(), alloc_new_pmd(), and a PTE
    // table wherever the old PMD entry has one), whether or not anything is moved into it.
    for (let off = 0; from + off < end;) {
      const a = from + off;
      const na = to + off;
      if (mm.pgt.upperAt(a, 1) === null) {
        off += extentOf(a, na, end, PUD_SIZE);
        continue;
      }
      mm.pgt.pudTableAlloc(na);
      const extent = extentOf(a, na, end, PMD_SIZE);
      const pmd = mm.pgt.upperAt(a, 1)!;
      const i = indexAt(a, 1);
      off += extent;
      if (pmd.children[i] === null && pmd.words[2 * i] === 0 && pmd.words[2 * i + 1] === 0) continue;
      const dst = mm.pgt.pmdTableAlloc(na);
      if (pmd.children[i] === null) {
        // A PMD leaf: the splits above left only those a whole extent moves.
        const di = indexAt(na, 1);
        mm.pgt.setUpperWords(dst, di, pmd.words[2 * i], pmd.words[2 * i + 1]);
        mm.pgt.setUpperWords(pmd, i, 0, 0);
        continue;
      }
      if (wholeTableMoves(vma, a, na, end - a)) {
        // move_normal_pmd(): the PTE table itself moves, and the old PMD entry is left empty.
        mm.pgt.attachPteTable(na, mm.pgt.detachPteTable(a)!);
        continue;
      }
      const t = pmd.children[i];
      const dt = mm.pgt.pteTableAlloc(na);
      for (let k = 0; k < extent; k += PAGE_SIZE) {
        const s = pteSlot(a + k);
        const lo = t.words[s];
        const hi = t.words[s + 1];
        if (pteNone(lo, hi)) continue;
        setPte(dt, pteSlot(na + k), lo, hi);
        setPte(t, s, 0, 0);
      }
    }
  }
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, oldAddr, oldAddr + len);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
}

/**
 * Models get_extent(): from `a` to the next `size` boundary, no further than `end` nor than the
 * new address' next boundary.
 */
function extentOf(a: number, na: number, end: number, size: number): number {
  return Math.min(size - (a % size), end - a, size - (na % size));
}

/**
 * Models move_hugetlb_page_tables(): each huge page entry moves on its own, and the new range gets
 * tables only where one arrives.
 */
function moveHugetlbEntries(mm: MmStruct, from: number, to: number, end: number): void {
  for (let a = from; a < end; a += PMD_SIZE) {
    const pmd = mm.pgt.upperAt(a, 1);
    if (pmd === null) continue;
    const i = indexAt(a, 1);
    if (pmd.words[2 * i] === 0 && pmd.words[2 * i + 1] === 0) continue;
    const na = to + (a - from);
    const dst = mm.pgt.pmdTableAlloc(na);
    mm.pgt.setUpperWords(dst, indexAt(na, 1), pmd.words[2 * i], pmd.words[2 * i + 1]);
    mm.pgt.setUpperWords(pmd, i, 0, 0);
  }
}

/**
 * Models can_align_down(): nothing is mapped between `addr` and the 2 MiB boundary below it (so
 * `addr` also starts its VMA, which the kernel asks first).
 */
function canAlignDown(mm: MmStruct, addr: number): boolean {
  return mm.vmasIn(addr - (addr % PMD_SIZE), addr).length === 0;
}

/**
 * Whether move_page_tables() moves the PTE table at `from` whole to `to` (move_normal_pmd()): a
 * whole PMD's worth of the range is left at a PMD boundary on both sides, and nothing is mapped
 * at the destination's PMD entry yet. Otherwise the entries move one by one and the emptied table
 * stays where it was, until the old range is unmapped (with MREMAP_DONTUNMAP it is not).
 */
function wholeTableMoves(vma: Vma, from: number, to: number, left: number): boolean {
  if (from % PMD_SIZE !== 0 || to % PMD_SIZE !== 0 || left < PMD_SIZE || (vma.flags & VM.HUGETLB) !== 0)
    return false;
  const dst = vma.mm.pgt.upperAt(to, 1);
  if (dst === null) return true;
  const di = indexAt(to, 1);
  return dst.children[di] === null && dst.words[2 * di] === 0 && dst.words[2 * di + 1] === 0;
}

/**
 * One remap as mm/mremap.c threads it through (struct vma_remap_struct): the user's range and
 * flags, the VMA it acts on and what check_prep_vma() made of them. remap_move() rewrites it for
 * each VMA of a multi-VMA move.
 */
interface Remap {
  addr: number;
  oldLen: number;
  newLen: number;
  readonly flags: number;
  newAddr: number;
  vma: Vma | null;
  /** vrm->delta: how far the lengths differ, either way (set by check_prep_vma()). */
  delta: number;
  /** The calling task, whose RLIMIT_MEMLOCK and CAP_IPC_LOCK a locked mapping's growth is checked against. */
  readonly task: Process;
}

const enum RemapType {
  NoResize,
  Shrink,
  Expand,
}

/** Models vrm_remap_type(). */
function remapType(r: Remap): RemapType {
  if (r.oldLen === r.newLen) return RemapType.NoResize;
  return r.oldLen > r.newLen ? RemapType.Shrink : RemapType.Expand;
}

/** Models vrm_implies_new_addr(): MREMAP_FIXED, or MREMAP_DONTUNMAP (which always moves). */
function impliesNewAddr(r: Remap): boolean {
  return (r.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0;
}

/** Models vrm_overlaps(). */
function overlaps(r: Remap): boolean {
  return r.addr + r.oldLen > r.newAddr && r.newAddr + r.newLen > r.addr;
}

/** Models check_mremap_params(); lengths are already page aligned. */
function checkMremapParams(mm: MmStruct, r: Remap, exactOverlap?: boolean): number {
  if ((r.flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) !== 0) return -Errno.EINVAL;
  if (r.addr % PAGE_SIZE !== 0) return -Errno.EINVAL;
  // A zero old_len is the old "duplicate a shared mapping" request; a zero new_len means nothing.
  if (r.newLen === 0 || r.newLen > mm.taskSize) return -Errno.EINVAL;
  if (!impliesNewAddr(r)) return 0;
  if (r.newAddr > mm.taskSize - r.newLen) return -Errno.EINVAL;
  if (r.newAddr % PAGE_SIZE !== 0) return -Errno.EINVAL;
  if ((r.flags & MREMAP_MAYMOVE) === 0) return -Errno.EINVAL;
  if ((r.flags & MREMAP_DONTUNMAP) !== 0 && r.oldLen !== r.newLen) return -Errno.EINVAL;
  if (exactOverlap ?? overlaps(r)) return -Errno.EINVAL;
  return 0;
}

/** Models align_hugetlb(): huge-page lengths and addresses, and no growth. */
function alignHugetlb(r: Remap): boolean {
  r.oldLen = alignUp(r.oldLen, PMD_SIZE);
  r.newLen = alignUp(r.newLen, PMD_SIZE);
  if (r.addr % PMD_SIZE !== 0 || r.newAddr % PMD_SIZE !== 0) return false;
  return r.newLen <= r.oldLen;
}

/**
 * Models check_prep_vma(): the checks on the VMA at r.addr. Only a remap that maps new address
 * space (it grows, or moves) needs the range inside the VMA; a shrink needs only the part it
 * keeps. A zero old_len duplicates a shared mapping and is refused for a private one.
 */
function checkPrepVma(r: Remap): number {
  const vma = r.vma;
  if (vma === null) return -Errno.EFAULT;
  // mremap() of a sealed VMA is refused, whatever it would do.
  if (vmaIsSealed(vma)) return -Errno.EPERM;
  if ((vma.flags & VM.HUGETLB) !== 0 && !alignHugetlb(r)) return -Errno.EINVAL;
  r.delta = Math.abs(r.oldLen - r.newLen);
  const type = remapType(r);
  if (!impliesNewAddr(r)) r.newAddr = r.addr;
  if (type !== RemapType.Expand && !impliesNewAddr(r)) return 0;
  if (r.oldLen === 0 && (vma.flags & (VM.SHARED | VM.MAYSHARE)) === 0) return -Errno.EINVAL;
  if ((r.flags & MREMAP_DONTUNMAP) !== 0 && (vma.flags & (VM.DONTEXPAND | VM.PFNMAP)) !== 0)
    return -Errno.EINVAL;
  const oldLen = type === RemapType.Shrink ? r.newLen : r.oldLen;
  if (oldLen > vma.end - r.addr) return -Errno.EFAULT;
  if (r.newLen === oldLen) return 0;
  if ((vma.flags & (VM.DONTEXPAND | VM.PFNMAP)) !== 0) return -Errno.EFAULT;
  if (!mlockFutureOk(r.task, vma.mm, vma.flags, r.delta)) return -Errno.EAGAIN;
  if (!mayExpandVm(r.task, vma.mm, vma.flags, r.delta / PAGE_SIZE)) return -Errno.ENOMEM;
  return 0;
}

/** Models vrm_stat_account()'s locked_vm part: a locked mapping that gains `bytes` counts them. */
function accountLocked(mm: MmStruct, vma: Vma, bytes: number): void {
  if ((vma.flags & VM.LOCKED) !== 0) mm.lockedVm += bytes / PAGE_SIZE;
}

/**
 * Models vrm_calc_charge(): a VM_ACCOUNT mapping that gains address space is charged against the
 * commit limit first, the whole new length when MREMAP_DONTUNMAP keeps the old range, else the
 * difference of the lengths (also after a shrink that then moves: the kernel charges its delta
 * too). The model keeps no committed total, so the charge is a check, as vmEnoughMemory() is.
 */
function calcCharge(mm: MmStruct, r: Remap): boolean {
  if ((r.vma!.flags & VM.ACCOUNT) === 0) return true;
  const charged = (r.flags & MREMAP_DONTUNMAP) !== 0 ? r.newLen : r.delta;
  return vmEnoughMemory(mm.sys, charged / PAGE_SIZE);
}

/**
 * Models vrm_set_new_addr(): the target, exact for MREMAP_FIXED, else a free range (a hint with
 * DONTUNMAP). A fixed target goes through get_unmapped_area() too, whose security_mmap_addr()
 * refuses one below mmap_min_addr (-EPERM: the model's processes lack CAP_SYS_RAWIO), after the
 * target was unmapped and a shrink made.
 */
function setNewAddr(mm: MmStruct, r: Remap): number {
  const vma = r.vma!;
  if ((r.flags & MREMAP_FIXED) !== 0) return r.newAddr < MMAP_MIN_ADDR ? -Errno.EPERM : 0;
  const align = r.newLen % PMD_SIZE === 0 && vma.isAnon() ? PMD_SIZE : PAGE_SIZE;
  const to = getUnmappedArea(mm, impliesNewAddr(r) ? r.newAddr : 0, r.newLen, align);
  if (to < 0) return to;
  r.newAddr = to;
  return 0;
}

/**
 * Models move_vma() with copy_vma_and_data(): a new VMA of newLen at r.newAddr takes the page
 * tables of [addr, addr + oldLen); the source range is then unmapped, unless MREMAP_DONTUNMAP
 * keeps it (empty). With a zero oldLen nothing moves and nothing is unmapped: the new VMA maps
 * the same shared object again.
 */
function* moveVma(mm: MmStruct, r: Remap): KGen<number> {
  const sys = mm.sys;
  // check_map_count_against_split(): copying and unmapping may add two VMAs.
  if (mm.vmas.size + 2 > MAX_MAP_COUNT) return -Errno.ENOMEM;
  if (!calcCharge(mm, r)) return -Errno.ENOMEM;
  if (sys.inject.shouldFail('move_vma')) return -Errno.ENOMEM;
  const vma = r.vma!;
  if (r.oldLen === 0) {
    copyVma(mm, vma, r.addr, r.newAddr, r.newLen);
    accountLocked(mm, vma, r.newLen);
    return r.newAddr;
  }
  if ((r.flags & MREMAP_DONTUNMAP) !== 0) return yield* moveDontUnmap(mm, r, vma);
  const [piece] = yield* splitRange(mm, r.addr, r.addr + r.oldLen);
  const nv = copyVma(mm, piece, r.addr, r.newAddr, r.oldLen);
  yield* movePageTables(piece, r.addr, r.newAddr, r.oldLen);
  // The new range is counted and the old one, unmapped, is not any more.
  accountLocked(mm, piece, r.newLen - r.oldLen);
  detachVma(mm, piece);
  // The old range is unmapped: its page tables go as munmap()'s do.
  freePgtables(mm, r.addr, r.addr + r.oldLen);
  // The moved VMA took the reservation map with it; the old piece must not release it.
  if ((piece.flags & VM.HUGETLB) !== 0) piece.priv = null;
  removeVma(sys, piece);
  if (r.newLen > r.oldLen) yield* expandVma(mm, nv, r.newAddr + r.newLen);
  // copy_vma() -> vma_merge_new_range(): the moved VMA joins a compatible neighbour (its
  // VM_SOFTDIRTY carried over).
  else mergeAnonNeighbours(mm, nv, true);
  return r.newAddr;
}

/**
 * Models copy_vma() before its merge: a VMA of `len` at `to` like `src`, for its part from `addr`
 * (same flags, file, driver and anon_vmas). An anonymous VMA never faulted takes the page offset
 * of its new place, so that it can merge there.
 */
function copyVma(mm: MmStruct, src: Vma, addr: number, to: number, len: number): Vma {
  const pgoff =
    src.isAnon() && src.anonVma === null ? to / PAGE_SIZE : src.pgoff + (addr - src.start) / PAGE_SIZE;
  const nv = new Vma(mm, to, to + len, src.flags, pgoff, src.file);
  nv.vmOps = src.vmOps;
  nv.priv = src.priv;
  vmaGetFile(mm.sys, nv, 'copy_vma');
  anonVmaClone(nv, src);
  insertVma(mm, nv);
  return nv;
}

/**
 * move_vma() with MREMAP_DONTUNMAP (same length, always a move): copy_vma() makes the new VMA from
 * the source's part and the page tables move, but nothing splits the source. It stays one VMA,
 * now empty over the range, and dontunmap_complete() only clears its VM_LOCKED; a source moved
 * whole also leaves its anon_vmas (unlink_anon_vmas(), which clears vma->anon_vma: a later fault
 * there prepares a new one).
 */
function* moveDontUnmap(mm: MmStruct, r: Remap, vma: Vma): KGen<number> {
  const nv = copyVma(mm, vma, r.addr, r.newAddr, r.oldLen);
  yield* movePageTables(vma, r.addr, r.newAddr, r.oldLen);
  // The new range is counted in locked_vm, and the old one, which is not unmapped, stays counted
  // although it loses its lock ("we won't unmap, so we don't need to touch locked_vm").
  accountLocked(mm, vma, r.oldLen);
  vma.flags &= ~VM_LOCKED_MASK;
  if (vma.start === r.addr && vma.end === r.addr + r.oldLen) {
    unlinkAnonVmas(mm.sys, vma);
    vma.anonVma = null;
  }
  mergeAnonNeighbours(mm, nv, true);
  return r.newAddr;
}

/** Models shrink_vma(): unmaps the tail [addr + newLen, addr + oldLen). */
function* shrinkVma(mm: MmStruct, r: Remap): KGen<number> {
  const res = yield* doMunmap(mm, r.addr + r.newLen, r.oldLen - r.newLen);
  r.vma = null;
  if (res < 0) return res;
  r.vma = mm.vmaLookup(r.addr);
  return r.vma === null ? -Errno.EFAULT : 0;
}

/**
 * Models mremap_to(): with MREMAP_FIXED the target is unmapped first (and the source looked up
 * again, as that may have split it); a shrink unmaps the tail before the rest moves. With
 * MREMAP_DONTUNMAP the address space limits are then asked for the whole length.
 */
function* mremapTo(mm: MmStruct, r: Remap): KGen<number> {
  if ((r.flags & MREMAP_FIXED) !== 0) {
    const err = yield* doMunmap(mm, r.newAddr, r.newLen);
    r.vma = null;
    if (err < 0) return err;
    r.vma = mm.vmaLookup(r.addr);
    if (r.vma === null) return -Errno.EFAULT;
  }
  if (remapType(r) === RemapType.Shrink) {
    const err = yield* shrinkVma(mm, r);
    if (err < 0) return err;
    r.oldLen = r.newLen;
  }
  // MREMAP_DONTUNMAP keeps the old range: the address space grows by all of it.
  if ((r.flags & MREMAP_DONTUNMAP) !== 0 && !mayExpandVm(r.task, mm, r.vma!.flags, r.oldLen / PAGE_SIZE))
    return -Errno.ENOMEM;
  const err = setNewAddr(mm, r);
  if (err < 0) return err;
  return yield* moveVma(mm, r);
}

/** Models vma_expandable(): nothing mapped after the VMA up to its new end, inside the user space. */
function vmaExpandable(mm: MmStruct, vma: Vma, delta: number): boolean {
  const end = vma.end + delta;
  return end <= mm.taskSize && mm.vmasIn(vma.end, end).length === 0;
}

/** Models expand_vma(): in place when the range ends the VMA and the space after it is free, else a move. */
function* expandVmaOrMove(mm: MmStruct, r: Remap): KGen<number> {
  const vma = r.vma!;
  const delta = r.newLen - r.oldLen;
  if (vma.end - r.addr === r.oldLen && vmaExpandable(mm, vma, delta)) {
    // expand_vma_in_place()
    if (!calcCharge(mm, r)) return -Errno.ENOMEM;
    yield* expandVma(mm, vma, vma.end + delta, true);
    accountLocked(mm, vma, delta);
    return r.addr;
  }
  if ((r.flags & MREMAP_MAYMOVE) === 0) return -Errno.ENOMEM;
  const err = setNewAddr(mm, r);
  if (err < 0) return err;
  return yield* moveVma(mm, r);
}

/** Models mremap_at(): a resize without a given new address. */
function* mremapAt(mm: MmStruct, r: Remap): KGen<number> {
  switch (remapType(r)) {
    case RemapType.NoResize:
      return r.addr;
    case RemapType.Shrink: {
      const err = yield* shrinkVma(mm, r);
      return err < 0 ? err : r.addr;
    }
    case RemapType.Expand:
      return yield* expandVmaOrMove(mm, r);
  }
}

/**
 * Models remap_move(): MREMAP_FIXED with equal lengths moves every VMA in [addr, addr + len),
 * split at the ends, keeping the gaps between them; the range must start in a VMA (-EFAULT),
 * holes after that are skipped. Returns where the first piece went, or the first error (pieces
 * moved before it stay moved).
 */
function* remapMove(mm: MmStruct, r: Remap): KGen<number> {
  const start = r.addr;
  const end = r.addr + r.oldLen;
  let target = r.newAddr;
  let res = -Errno.EFAULT;
  let seen = false;
  let lastEnd = 0;
  let cursor = start;
  for (;;) {
    const vma = mm.vmasIn(cursor, end)[0] as Vma | undefined;
    if (vma === undefined) break;
    if (!seen && start < vma.start) return -Errno.EFAULT;
    const addr = Math.max(vma.start, start);
    const len = Math.min(end, vma.end) - addr;
    const offset = seen ? vma.start - lastEnd : 0;
    lastEnd = vma.end;
    cursor = Math.min(end, vma.end);
    const piece: Remap = {
      addr,
      oldLen: len,
      newLen: len,
      flags: r.flags,
      newAddr: target + offset,
      vma,
      delta: 0,
      task: r.task,
    };
    let got = checkPrepVma(piece);
    if (got === 0) got = yield* mremapTo(mm, piece);
    if (got < 0) return got;
    if (!seen) res = got;
    seen = true;
    target = got + piece.newLen;
  }
  return res;
}

/**
 * Models mremap(2): do_mremap(). `exactOverlap` is vrm_overlaps() as the syscall entry computed it
 * in u64 arithmetic, when an argument was too large for the model's numbers.
 */
export function* sysMremapImpl(
  p: Process,
  addr: number,
  oldLenIn: number,
  newLenIn: number,
  flags: number,
  newAddr: number,
  exactOverlap?: boolean,
): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  const r: Remap = {
    addr,
    oldLen: pageAlignUp(oldLenIn),
    newLen: pageAlignUp(newLenIn),
    flags,
    newAddr,
    vma: null,
    delta: 0,
    task: p,
  };
  const bad = checkMremapParams(mm, r, exactOverlap);
  if (bad < 0) return bad;
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  let populateExpand = false;
  let res: number;
  try {
    // check_map_count_against_split_early(): the unmaps before a move may add two VMAs more.
    if (mm.vmas.size + 4 > MAX_MAP_COUNT) return -Errno.ENOMEM;
    if ((flags & MREMAP_FIXED) !== 0 && r.oldLen === r.newLen) return yield* remapMove(mm, r);
    r.vma = mm.vmaLookup(addr);
    const err = checkPrepVma(r);
    if (err < 0) return err;
    populateExpand = r.vma !== null && (r.vma.flags & VM.LOCKED) !== 0 && r.newLen > r.oldLen;
    res = impliesNewAddr(r) ? yield* mremapTo(mm, r) : yield* mremapAt(mm, r);
  } finally {
    yield* mm.mmapLock.upWrite();
  }
  // do_mremap(): a locked mapping that grew has its new part populated, once the lock is dropped
  // (mm_populate(), errors ignored).
  if (res >= 0 && populateExpand) yield* mmPopulate(mm, res + r.oldLen, r.newLen - r.oldLen, true);
  return res;
}

/** Models vma_merge_extend(): the VMA grows to `end` and merges with a compatible neighbour it now touches. */
function* expandVma(mm: MmStruct, vma: Vma, end: number, inPlace = false): KGen {
  yield { kind: 'step', label: 'vma_expand' };
  detachVma(mm, vma);
  vma.end = end;
  insertVma(mm, vma);
  // In place, vma_merge_extend() merges the new range with the VMA it extends and the next one
  // only: a compatible VMA before it stays apart.
  if (inPlace) mergeWithNext(mm, vma);
  else mergeAnonNeighbours(mm, vma);
}
