import { indexAt } from '../../lib/pgtable_store.ts';
import { PAGE_SIZE, PMD_SIZE, pageAlignUp } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { populateVmaPageRange } from './mlock.ts';
import { mmapWriteLockKillable } from './mmap_lock.ts';
import type { Process } from '../system.ts';
import { splitHugePmd } from './huge_memory.ts';
import { VM, type MmStruct, type Vma } from './mm_types.ts';
import { mayExpandVm } from './rlimit.ts';
import * as mman from './mman.ts';
import { vmaIsSealed } from './mseal.ts';
import { hugetlbSplitCheck, mergeChanged, protToVmFlags, splitRange, vmEnoughMemory } from './mmap.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from './mmu_notifier.ts';
import { PG } from './page_alloc.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SPECIAL,
  PTE_WRITE,
  SwpType,
  pteNone,
  ptePresent,
  swpLo,
  swpType,
} from './pgtable.ts';

/** PROT_SEM (asm-generic/mman-common.h): accepted by mprotect, meaningless on x86. */
const PROT_SEM = 0x8;

/** Models the PTE protection bits for new VMA flags (vm_get_page_prot + change_pte_range rules). */
function newPteLo(sys: Vma['mm']['sys'], vma: Vma, lo: number, hi: number): number {
  const accessible = (vma.flags & (VM.READ | VM.WRITE | VM.EXEC)) !== 0;
  let n = lo;
  if (!accessible) n = (n & ~PTE_PRESENT) | PTE_PROTNONE;
  else n = (n & ~PTE_PROTNONE) | PTE_PRESENT;
  if ((vma.flags & VM.WRITE) === 0 || !accessible) {
    n &= ~PTE_WRITE;
  } else if ((n & PTE_WRITE) === 0 && (lo & PTE_SPECIAL) === 0 && !sys.phys.isZeroPfn(hi)) {
    // can_change_pte_writable(): exclusive anonymous pages and dirty shared pages need no fault.
    const phys = sys.phys;
    const shared = (vma.flags & VM.SHARED) !== 0;
    const anonExcl =
      (phys.flags[hi] & PG.anonExclusive) !== 0 || (phys.flags[phys.head(hi)] & PG.anonExclusive) !== 0;
    if ((shared && (lo & PTE_DIRTY) !== 0) || (!shared && anonExcl)) n |= PTE_WRITE;
  }
  return n;
}

/**
 * Models mprotect_folio_pte_batch(): how many present entries from slot `s` (at most `max`) map
 * consecutive pages of one large folio with the same write and soft-dirty bits and otherwise the
 * same bits but for accessed and dirty (folio_pte_batch_flags() with FPB_RESPECT_SOFT_DIRTY and
 * FPB_RESPECT_WRITE). 1 for a small folio, the zero page or a special entry.
 */
function protBatch(
  sys: Vma['mm']['sys'],
  words: Uint32Array,
  s: number,
  lo: number,
  hi: number,
  max: number,
): number {
  const phys = sys.phys;
  if ((lo & PTE_SPECIAL) !== 0 || phys.isZeroPfn(hi) || !phys.isRam(hi)) return 1;
  const h = phys.head(hi);
  if (phys.order[h] === 0) return 1;
  const left = h + (1 << phys.order[h]) - hi;
  const same = lo & ~(PTE_ACCESSED | PTE_DIRTY);
  let nr = 1;
  while (nr < max && nr < left && s + 2 * nr < words.length) {
    const l = words[s + 2 * nr];
    if (words[s + 2 * nr + 1] !== hi + nr || (l & ~(PTE_ACCESSED | PTE_DIRTY)) !== same) break;
    nr++;
  }
  return nr;
}

/** Models change_protection() over [start, end) of one VMA, under a PROTECTION_VMA invalidation. */
function* changeProtection(vma: Vma, start: number, end: number): KGen<number> {
  const mm = vma.mm;
  const sys = mm.sys;
  // The kernel starts the invalidation only once it meets a populated PMD.
  let populated = false;
  mm.pgt.walk(
    start,
    end,
    () => {
      populated = true;
    },
    () => {
      populated = true;
    },
  );
  if (!populated) return 0;
  const range = mmuNotifierRangeInit(MMU_NOTIFY.PROTECTION_VMA, 0, mm, start, end);
  yield* mmuNotifierInvalidateRangeStart(range);
  for (const edge of [start, end]) {
    if (edge % PMD_SIZE === 0 || (vma.flags & VM.HUGETLB) !== 0) continue;
    const base = edge - (edge % PMD_SIZE);
    const pmd = mm.pgt.upperAt(base, 1);
    const i = indexAt(base, 1);
    if (pmd !== null && pmd.children[i] === null && pmd.words[2 * i] !== 0) yield* splitHugePmd(vma, base);
  }
  yield* mm.ptl.lock();
  let pages = 0;
  mm.pgt.walk(
    start,
    end,
    (t, base) => {
      const from = Math.max(start, base);
      const to = Math.min(end, base + PMD_SIZE);
      for (let a = from; a < to; a += PAGE_SIZE) {
        const s = 2 * (Math.floor(a / PAGE_SIZE) % 512);
        const lo = t.words[s];
        const hi = t.words[s + 1];
        if (pteNone(lo, hi)) continue;
        if (ptePresent(lo)) {
          const nr = protBatch(sys, t.words, s, lo, hi, (to - a) / PAGE_SIZE);
          // modify_prot_start_ptes() gathers the accessed and dirty bits of the whole batch, and
          // the commit writes them into every entry of it.
          let ad = 0;
          for (let k = 0; k < nr; k++) ad |= t.words[s + 2 * k] & (PTE_ACCESSED | PTE_DIRTY);
          for (let k = 0; k < nr; k++) {
            const w = s + 2 * k;
            t.words[w] = newPteLo(sys, vma, t.words[w] | ad, t.words[w + 1]) >>> 0;
          }
          pages += nr;
          a += (nr - 1) * PAGE_SIZE;
        } else if ((vma.flags & VM.WRITE) === 0) {
          const ty = swpType(lo);
          if (ty === SwpType.MIGRATION_WRITE) t.words[s] = swpLo(SwpType.MIGRATION_READ, lo) >>> 0;
          if (ty === SwpType.DEVICE_PRIVATE_WRITE) t.words[s] = swpLo(SwpType.DEVICE_PRIVATE_READ, lo) >>> 0;
        }
      }
    },
    (pmd, i) => {
      const lo = pmd.words[2 * i];
      if ((lo & (PTE_PRESENT | PTE_PROTNONE)) === 0) {
        // change_huge_pmd() on a PMD migration entry or device-private THP: only write goes.
        if ((vma.flags & VM.WRITE) !== 0) return;
        const ty = swpType(lo);
        if (ty === SwpType.MIGRATION_WRITE)
          pmd.words[2 * i] = (swpLo(SwpType.MIGRATION_READ, lo) | PTE_HUGE) >>> 0;
        if (ty === SwpType.DEVICE_PRIVATE_WRITE)
          pmd.words[2 * i] = (swpLo(SwpType.DEVICE_PRIVATE_READ, lo) | PTE_HUGE) >>> 0;
        return;
      }
      pmd.words[2 * i] = newPteLo(sys, vma, lo, pmd.words[2 * i + 1]) >>> 0;
      pages += 512;
    },
  );
  yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, start, end);
  yield* mm.ptl.unlock();
  yield* mmuNotifierInvalidateRangeEnd(range);
  return pages;
}

/**
 * Models do_mprotect_pkey(). The range must start inside a VMA (-ENOMEM otherwise); the VMAs are
 * then changed one by one, in address order, and the walk stops at the first failure: a hole
 * (-ENOMEM), a permission the VMA may not get (-EACCES) or a hugetlb VMA that cannot be split
 * there (-EINVAL). VMAs changed before the failure keep their new protection, as in the kernel.
 */
export function* sysMprotectImpl(p: Process, start: number, length: number, prot: number): KGen<number> {
  const mm = p.mm;
  if (mm === null || p.exited) return -Errno.ESRCH;
  const sys = mm.sys;
  const grows = prot & (mman.PROT_GROWSDOWN | mman.PROT_GROWSUP);
  // Same order of checks as do_mprotect_pkey(): both grow bits, alignment, zero length, wrap, prot bits.
  if (grows === (mman.PROT_GROWSDOWN | mman.PROT_GROWSUP)) return -Errno.EINVAL;
  if (start % PAGE_SIZE !== 0) return -Errno.EINVAL;
  if (length === 0) return 0;
  const len = pageAlignUp(length);
  const end = start + len;
  if (len === 0 || end <= start) return -Errno.ENOMEM;
  // arch_validate_prot() (the generic one x86 uses) also accepts PROT_SEM, which has no VM flag.
  if ((prot & ~(mman.PROT_READ | mman.PROT_WRITE | mman.PROT_EXEC | PROT_SEM | grows)) !== 0)
    return -Errno.EINVAL;
  // No TASK_SIZE check: an end above the user space is the hole after the last VMA, so the VMAs
  // before it change and the call then fails with -ENOMEM, as in the kernel.
  if ((yield* mmapWriteLockKillable(mm)) !== 0) return -Errno.EINTR;
  try {
    const vmas = mm.vmasIn(start, end);
    if (vmas.length === 0) return -Errno.ENOMEM;
    // PROT_GROWSDOWN needs a VM_GROWSDOWN VMA; x86 has no VM_GROWSUP, so PROT_GROWSUP never applies.
    if (grows !== 0 && (grows === mman.PROT_GROWSUP || (vmas[0].flags & VM.GROWSDOWN) === 0))
      return -Errno.EINVAL;
    // PROT_GROWSDOWN extends the range down to the start of the VMA; otherwise start must be mapped.
    if (grows === 0 && vmas[0].start > start) return -Errno.ENOMEM;
    const from = grows === 0 ? start : vmas[0].start;
    const rc = yield* mprotectVmas(p, mm, vmas, from, end, protToVmFlags(prot));
    sys.trace.count('mprotect');
    return rc;
  } finally {
    yield* mm.mmapLock.upWrite();
  }
}

/**
 * The commit accounting of mprotect_fixup(): 1 when a private mapping turns writable without
 * being charged yet (it takes VM_ACCOUNT), -1 when an anonymous one with no anon_vma yet turns
 * read-only (its charge, VM_ACCOUNT, is dropped: nothing was written), else 0.
 */
function accountChange(v: Vma, newFlags: number): number {
  if ((newFlags & VM.WRITE) !== 0) {
    const uncharged = VM.ACCOUNT | VM.WRITE | VM.HUGETLB | VM.SHARED | VM.NORESERVE;
    return (v.flags & uncharged) === 0 ? 1 : 0;
  }
  return (v.flags & VM.ACCOUNT) !== 0 && v.isAnon() && v.anonVma === null ? -1 : 0;
}

/**
 * The for_each_vma_range() loop of do_mprotect_pkey() and apply_vma_lock_flags(): `fixup` changes
 * [max(start, v.start), min(end, v.end)) of each VMA of `vmas` (those overlapping [start, end),
 * the first one containing `start`), in address order, and collects the pieces it changed in
 * `changed`. A hole before a VMA or after the last one is -ENOMEM; the first failure ends the walk,
 * the VMAs changed before it staying changed. The merges vma_modify_flags() made on the way are
 * then made (mergeChanged()). Caller holds the mmap lock for writing.
 */
export function* fixupVmaRange(
  mm: MmStruct,
  vmas: readonly Vma[],
  start: number,
  end: number,
  fixup: (v: Vma, from: number, to: number, changed: Vma[]) => KGen<number>,
): KGen<number> {
  const changed: Vma[] = [];
  let rc = 0;
  let cursor = vmas[0].start;
  for (const v of vmas) {
    if (v.start !== cursor) {
      rc = -Errno.ENOMEM;
      break;
    }
    cursor = v.end;
    rc = yield* fixup(v, Math.max(start, v.start), Math.min(end, v.end), changed);
    if (rc < 0) break;
  }
  if (rc === 0 && cursor < end) rc = -Errno.ENOMEM;
  mergeChanged(mm, changed);
  return rc;
}

/**
 * mprotect_fixup() for each VMA of `vmas` (fixupVmaRange()): a permission the VMA may not get is
 * -EACCES, a sealed VMA -EPERM, a private VMA that would become writable past RLIMIT_DATA -ENOMEM, a
 * hugetlb VMA that cannot be split there -EINVAL. Caller holds mmap_lock for writing.
 */
function* mprotectVmas(
  task: Process,
  mm: MmStruct,
  vmas: readonly Vma[],
  start: number,
  end: number,
  want: number,
): KGen<number> {
  const sys = mm.sys;
  return yield* fixupVmaRange(mm, vmas, start, end, function* (v, from, to, changed) {
    // A permission may be added only where the matching VM_MAY* bit allows it.
    const nf = (v.flags & ~(VM.READ | VM.WRITE | VM.EXEC)) | want;
    if ((want & ~(nf >> 4) & (VM.READ | VM.WRITE | VM.EXEC)) !== 0) return -Errno.EACCES;
    if (vmaIsSealed(v)) return -Errno.EPERM;
    // mprotect_fixup(): a VMA whose flags stay the same is left whole (no split, no merge).
    if (nf === v.flags) return 0;
    // A VMA that turns into data must fit RLIMIT_DATA (RLIMIT_AS only as far as the old flags
    // would have passed it too: the address space does not grow).
    const pages = (to - from) / PAGE_SIZE;
    if ((nf & VM.WRITE) !== 0 && !mayExpandVm(task, mm, nf, pages) && mayExpandVm(task, mm, v.flags, pages))
      return -Errno.ENOMEM;
    const charge = accountChange(v, nf);
    if (charge > 0 && !vmEnoughMemory(sys, (to - from) / PAGE_SIZE)) return -Errno.ENOMEM;
    const rc = hugetlbSplitCheck(mm, from, to);
    if (rc < 0) return rc;
    if (sys.inject.shouldFail('mprotect_split')) return -Errno.ENOMEM;
    for (const piece of yield* splitRange(mm, from, to)) {
      const old = piece.flags;
      piece.flags = (piece.flags & ~(VM.READ | VM.WRITE | VM.EXEC)) | want;
      if (charge > 0) piece.flags |= VM.ACCOUNT;
      else if (charge < 0) piece.flags &= ~VM.ACCOUNT;
      yield* changeProtection(piece, piece.start, piece.end);
      changed.push(piece);
      // A locked private mapping that becomes writable is faulted for writing at once, so that
      // its pages need no COW fault later (errors are ignored).
      if ((old & (VM.WRITE | VM.SHARED | VM.LOCKED)) === VM.LOCKED && (want & VM.WRITE) !== 0)
        yield* populateVmaPageRange(piece, piece.start, piece.end);
    }
    return 0;
  });
}
