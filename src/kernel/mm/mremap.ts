import { indexAt } from '../../lib/pgtable_store.ts';
import { PAGE_SIZE, PMD_SIZE, alignUp, pageAlignUp } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import type { Process } from '../system.ts';
import { splitHugePmd } from './huge_memory.ts';
import { type MmStruct, VM, Vma } from './mm_types.ts';
import { MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE } from './mman.ts';
import {
  detachVma,
  doMunmap,
  fget,
  getUnmappedArea,
  insertVma,
  mergeAnonNeighbours,
  removeVma,
  splitRange,
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
import { anonVmaClone } from './rmap.ts';

/**
 * Models move_page_tables(): the entries of [old, old+len) move to [new, new+len) under one UNMAP
 * invalidation of the old range. Whole PMD leaves move as they are when both ends are PMD
 * aligned; otherwise they are split and moved PTE by PTE. Pages keep their rmap (same anon_vma,
 * same page->index through the new VMA's pgoff).
 */
function* movePageTables(vma: Vma, oldAddr: number, newAddr: number, len: number): KGen {
  const mm = vma.mm;
  const range = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, oldAddr, oldAddr + len);
  yield* mmuNotifierInvalidateRangeStart(range);
  const pmdAligned = oldAddr % PMD_SIZE === newAddr % PMD_SIZE;
  for (let base = oldAddr - (oldAddr % PMD_SIZE); base < oldAddr + len; base += PMD_SIZE) {
    const pmd = mm.pgt.upperAt(base, 1);
    if (pmd === null) continue;
    const i = indexAt(base, 1);
    if (pmd.children[i] !== null || pmd.words[2 * i] === 0) continue;
    const whole = base >= oldAddr && base + PMD_SIZE <= oldAddr + len;
    if (!(whole && pmdAligned) && (vma.flags & VM.HUGETLB) === 0) yield* splitHugePmd(vma, base);
  }
  yield* mm.ptl.lock();
  for (let off = 0; off < len;) {
    const a = oldAddr + off;
    const pmd = mm.pgt.upperAt(a, 1);
    if (pmd === null) {
      off += PAGE_SIZE;
      continue;
    }
    const i = indexAt(a, 1);
    if (pmd.children[i] === null && pmd.words[2 * i] !== 0 && a % PMD_SIZE === 0) {
      const dst = mm.pgt.pmdTableAlloc(newAddr + off);
      const di = indexAt(newAddr + off, 1);
      mm.pgt.setUpperWords(dst, di, pmd.words[2 * i], pmd.words[2 * i + 1]);
      mm.pgt.setUpperWords(pmd, i, 0, 0);
      off += PMD_SIZE;
      continue;
    }
    const t = mm.pgt.pteTable(a);
    if (t !== null) {
      const s = pteSlot(a);
      const lo = t.words[s];
      const hi = t.words[s + 1];
      if (!pteNone(lo, hi)) {
        const dt = mm.pgt.pteTableAlloc(newAddr + off);
        setPte(dt, pteSlot(newAddr + off), lo, hi);
        setPte(t, s, 0, 0);
      }
    }
    off += PAGE_SIZE;
  }
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, oldAddr, oldAddr + len);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  mm.pgt.freeEmpty(oldAddr, oldAddr + len);
}

/** Models move_vma(): a new VMA at newAddr takes over the pages of [oldAddr, oldAddr+len). */
function* moveVma(
  mm: MmStruct,
  vma: Vma,
  oldAddr: number,
  len: number,
  newAddr: number,
  dontUnmap: boolean,
): KGen<number> {
  const sys = mm.sys;
  if (sys.inject.shouldFail('move_vma')) return -Errno.ENOMEM;
  const [piece] = yield* splitRange(mm, oldAddr, oldAddr + len);
  const nv = new Vma(mm, newAddr, newAddr + len, piece.flags, piece.pgoff, piece.file);
  nv.vmOps = piece.vmOps;
  nv.priv = piece.priv;
  if (piece.file !== null) fget(piece.file);
  anonVmaClone(nv, piece);
  insertVma(mm, nv);
  yield* movePageTables(piece, oldAddr, newAddr, len);
  if (!dontUnmap) {
    detachVma(mm, piece);
    // The moved VMA took the reservation map with it; the old piece must not release it.
    if ((piece.flags & VM.HUGETLB) !== 0) piece.priv = null;
    removeVma(sys, piece);
  }
  return newAddr;
}

/** Models mremap(2). */
export function* sysMremapImpl(
  p: Process,
  addr: number,
  oldLenIn: number,
  newLenIn: number,
  flags: number,
  newAddr: number,
): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  // check_mremap_params(), in the kernel's order.
  if ((flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) !== 0) return -Errno.EINVAL;
  if (addr % PAGE_SIZE !== 0) return -Errno.EINVAL;
  const oldLen = pageAlignUp(oldLenIn);
  const newLen = pageAlignUp(newLenIn);
  if (newLen === 0 || newLen > mm.taskSize) return -Errno.EINVAL;
  // MREMAP_FIXED and MREMAP_DONTUNMAP both take new_addr; DONTUNMAP without FIXED uses it as a hint.
  if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0) {
    if ((flags & MREMAP_FIXED) !== 0 && newAddr > mm.taskSize - newLen) return -Errno.EINVAL;
    if (newAddr % PAGE_SIZE !== 0) return -Errno.EINVAL;
    if ((flags & MREMAP_MAYMOVE) === 0) return -Errno.EINVAL;
    if ((flags & MREMAP_DONTUNMAP) !== 0 && oldLen !== newLen) return -Errno.EINVAL;
    if ((flags & MREMAP_FIXED) !== 0 && newAddr < addr + oldLen && addr < newAddr + newLen)
      return -Errno.EINVAL;
  }
  yield* mm.mmapLock.downWrite();
  try {
    if ((flags & MREMAP_FIXED) !== 0 && oldLen === newLen)
      return yield* remapMove(mm, addr, oldLen, flags, newAddr);
    const vma = mm.vmaLookup(addr);
    if (vma === null) return -Errno.EFAULT;
    return yield* mremapVma(mm, vma, addr, oldLen, newLen, flags, newAddr);
  } finally {
    yield* mm.mmapLock.upWrite();
  }
}

/**
 * Models remap_move() (6.17): a fixed move of an unchanged length may span several VMAs and the
 * gaps between them. Each VMA's part moves on its own, to the end of the previous destination plus
 * the gap that preceded it in the source; a gap at the start is -EFAULT. A failure after some
 * parts moved returns the error and leaves them moved, as the kernel does. (No VMA of the model
 * is refused by vma_multi_allowed(): there is no userfaultfd, and no driver file has its own
 * get_unmapped_area.) Returns the first part's new address. Caller holds the mmap write lock.
 */
function* remapMove(mm: MmStruct, start: number, len: number, flags: number, newAddr: number): KGen<number> {
  const end = start + len;
  let target = newAddr;
  let res = -Errno.EFAULT;
  let seen = false;
  let lastEnd = 0;
  let cursor = start;
  for (;;) {
    const vma = mm.vmasIn(cursor, end)[0] as Vma | undefined;
    if (vma === undefined) break;
    if (!seen && start < vma.start) return -Errno.EFAULT;
    const addr = Math.max(vma.start, start);
    const pieceLen = Math.min(end, vma.end) - addr;
    const offset = seen ? vma.start - lastEnd : 0;
    lastEnd = vma.end;
    const r = yield* mremapVma(mm, vma, addr, pieceLen, pieceLen, flags, target + offset);
    if (r < 0) return r;
    if (!seen) res = r;
    seen = true;
    target = r + pieceLen;
    cursor = addr + pieceLen;
  }
  return res;
}

/** check_prep_vma() and mremap_to() / mremap_at() for one VMA. Caller holds the mmap write lock. */
function* mremapVma(
  mm: MmStruct,
  vma: Vma,
  addr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr: number,
): KGen<number> {
  if ((vma.flags & VM.HUGETLB) !== 0) {
    // Hugetlb lengths are rounded up to the huge page; addresses must be huge aligned, and the
    // hugetlb reservation code cannot grow a mapping (-EINVAL).
    oldLen = alignUp(oldLen, PMD_SIZE);
    newLen = alignUp(newLen, PMD_SIZE);
    if (addr % PMD_SIZE !== 0) return -Errno.EINVAL;
    if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0 && newAddr % PMD_SIZE !== 0) return -Errno.EINVAL;
    if (newLen > oldLen) return -Errno.EINVAL;
  }
  if (oldLen === 0) return (vma.flags & VM.MAYSHARE) === 0 ? -Errno.EINVAL : -Errno.ENOMEM;
  if ((flags & MREMAP_DONTUNMAP) !== 0 && (vma.flags & (VM.DONTEXPAND | VM.PFNMAP)) !== 0)
    return -Errno.EINVAL;
  // check_prep_vma(): the old range must lie in the VMA only when the VMA grows or moves; a
  // shrink in place just unmaps the tail, and a fixed move shrinks first (found by difftest).
  const movesOrGrows = newLen > oldLen || (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0;
  const kept = (flags & MREMAP_FIXED) !== 0 ? Math.min(oldLen, newLen) : oldLen;
  if (movesOrGrows && kept > vma.end - addr) return -Errno.EFAULT;
  // resize_is_valid(): special mappings cannot grow.
  if (newLen > oldLen && (vma.flags & (VM.DONTEXPAND | VM.PFNMAP)) !== 0) return -Errno.EFAULT;
  if ((flags & MREMAP_FIXED) !== 0) {
    const r = yield* doMunmap(mm, newAddr, newLen);
    if (r < 0) return r;
    let len = oldLen;
    if (oldLen > newLen) {
      const r2 = yield* doMunmap(mm, addr + newLen, oldLen - newLen);
      if (r2 < 0) return r2;
      len = newLen;
    }
    const v = mm.vmaLookup(addr)!;
    const moved = yield* moveVma(mm, v, addr, len, newAddr, (flags & MREMAP_DONTUNMAP) !== 0);
    if (moved >= 0 && newLen > len) yield* expandVma(mm, mm.vmaLookup(newAddr)!, newAddr + newLen);
    return moved;
  }
  if (newLen <= oldLen && (flags & MREMAP_DONTUNMAP) === 0) {
    if (newLen < oldLen) {
      const r = yield* doMunmap(mm, addr + newLen, oldLen - newLen);
      if (r < 0) return r;
    }
    return addr;
  }
  // Grow in place when the range ends the VMA and the space after it is free.
  if (addr + oldLen === vma.end && (vma.flags & VM.DONTEXPAND) === 0 && (flags & MREMAP_DONTUNMAP) === 0) {
    const want = addr + newLen;
    if (want <= mm.taskSize && mm.vmasIn(vma.end, want).length === 0) {
      yield* expandVma(mm, vma, want);
      return addr;
    }
  }
  if ((flags & MREMAP_MAYMOVE) === 0) return -Errno.ENOMEM;
  const align = newLen % PMD_SIZE === 0 && vma.isAnon() ? PMD_SIZE : PAGE_SIZE;
  // With MREMAP_DONTUNMAP the new address is a placement hint (mremap_to() without MREMAP_FIXED).
  const to = getUnmappedArea(mm, (flags & MREMAP_DONTUNMAP) !== 0 ? newAddr : 0, newLen, align);
  if (to < 0) return to;
  const moved = yield* moveVma(mm, vma, addr, oldLen, to, (flags & MREMAP_DONTUNMAP) !== 0);
  if (moved >= 0 && newLen > oldLen) yield* expandVma(mm, mm.vmaLookup(to)!, to + newLen);
  return moved;
}

/** Models vma_merge_extend(): the VMA grows to `end` and merges with a compatible neighbour it now touches. */
function* expandVma(mm: MmStruct, vma: Vma, end: number): KGen {
  yield { kind: 'step', label: 'vma_expand' };
  detachVma(mm, vma);
  vma.end = end;
  insertVma(mm, vma);
  mergeAnonNeighbours(mm, vma);
}
