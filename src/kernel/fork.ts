import { indexAt } from '../lib/pgtable_store.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE, PUD_SIZE } from '../lib/units.ts';
import type { KGen } from '../sched/types.ts';
import { Errno } from './errno.ts';
import { mmput } from './exit.ts';
import { splitHugePmd, swpPmdLo } from './mm/huge_memory.ts';
import { allocHugetlbPage, hugePte } from './mm/hugetlb.ts';
import { mkPte, removeDeviceExclusiveEntry, vmNormalPage } from './mm/memory.ts';
import { VM_LOCKED_MASK } from './mm/mlock.ts';
import { insertVma, vmaGetFile } from './mm/mmap.ts';
import { MM_SWAPENTS, type MmStruct, VM, Vma } from './mm/mm_types.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInit,
} from './mm/mmu_notifier.ts';
import { PG } from './mm/page_alloc.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_SWP_EXCLUSIVE,
  PTE_WRITE,
  SwpType,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isMigrationEntry,
  isSwapEntry,
  pteNone,
  ptePresent,
  swpLo,
  swpType,
} from './mm/pgtable.ts';
import { pteSlot, setPte } from './mm/pte.ts';
import { addNewAnonRmap, addRmapPmd, addRmapPte, anonVmaFork, rssCounterOf } from './mm/rmap.ts';
import { allocPageReclaim } from './mm/vmscan.ts';
import { Process, type System } from './system.ts';

/** Models is_cow_mapping(): private mappings that may become writable. */
export function isCowMapping(flags: number): boolean {
  return (flags & (VM.SHARED | VM.MAYWRITE)) === VM.MAYWRITE;
}

/** Models vma_needs_copy(): whether fork must copy page tables rather than let the child fault. */
function vmaNeedsCopy(src: Vma): boolean {
  // VM_MAYBE_GUARD: the guard markers are only in the page tables.
  if ((src.flags & (VM.PFNMAP | VM.MIXEDMAP | VM.MAYBE_GUARD)) !== 0) return true;
  return src.anonVma !== null;
}

/**
 * Models copy_page_range() for one VMA: the parent's COW ranges are write-protected under a
 * PROTECTION_PAGE invalidation; pages are shared (or copied when the parent has them pinned).
 */
function* copyPageRange(dst: Vma, src: Vma): KGen<number> {
  if (!vmaNeedsCopy(src)) return 0;
  const srcMm = src.mm;
  const sys = srcMm.sys;
  const cow = isCowMapping(src.flags);
  const range = mmuNotifierRangeInit(MMU_NOTIFY.PROTECTION_PAGE, 0, srcMm, src.start, src.end);
  if (cow) {
    yield* mmuNotifierInvalidateRangeStart(range);
    srcMm.writeProtectSeq++;
  }
  // Device-exclusive entries go back to normal PTEs first, so the child sees ordinary memory.
  for (let a = src.start; a < src.end; a += PAGE_SIZE) {
    const t = srcMm.pgt.pteTable(a);
    if (t !== null && isDeviceExclusiveEntry(t.words[pteSlot(a)])) {
      yield* removeDeviceExclusiveEntry(src, a, t.words[pteSlot(a) + 1]);
    }
  }
  // Pinned THPs cannot be shared: split their PMDs so the pinned pages are copied per PTE.
  for (let base = src.start - (src.start % PMD_SIZE); base < src.end; base += PMD_SIZE) {
    const pmd = srcMm.pgt.upperAt(base, 1);
    if (pmd === null) continue;
    const i = indexAt(base, 1);
    const hi = pmd.words[2 * i + 1];
    if (pmd.children[i] === null && pmd.words[2 * i] !== 0 && (src.flags & VM.HUGETLB) === 0) {
      if (!sys.phys.isZeroPfn(hi) && sys.phys.pinCount(hi) > 0) yield* splitHugePmd(src, base);
    }
  }
  let ret = 0;
  yield* srcMm.ptl.lock();
  if ((src.flags & VM.HUGETLB) === 0) copyUpperTables(dst, src);
  for (let base = src.start - (src.start % PMD_SIZE); base < src.end && ret === 0; base += PMD_SIZE) {
    const pmd = srcMm.pgt.upperAt(base, 1);
    if (pmd === null) continue;
    const i = indexAt(base, 1);
    if (pmd.children[i] === null) {
      const lo = pmd.words[2 * i];
      const hi = pmd.words[2 * i + 1];
      if (lo === 0 && hi === 0) {
        // copy_hugetlb_page_range() allocates the child's entry (its PMD table) wherever the
        // parent has a table over the VMA, before it looks at the entry: a none entry leaves
        // the child a table that a walk then finds empty (mincore() reads no page cache there).
        if ((src.flags & VM.HUGETLB) !== 0) dst.mm.pgt.pmdTableAlloc(base);
        continue;
      }
      ret = copyHugePmd(dst, src, base, cow);
      continue;
    }
    const from = Math.max(base, src.start);
    const to = Math.min(base + PMD_SIZE, src.end);
    // copy_pte_range() gives the child a PTE table wherever the parent has one, empty or not:
    // a later fault there then maps a small page, not a THP.
    if ((src.flags & VM.HUGETLB) === 0) dst.mm.pgt.pteTableAlloc(from);
    for (let a = from; a < to; a += PAGE_SIZE) {
      const r = yield* copyPte(dst, src, a, cow);
      if (r < 0) {
        ret = r;
        break;
      }
    }
  }
  if (cow) yield* mmuNotifierArchInvalidateSecondaryTlbs(srcMm, src.start, src.end);
  yield* srcMm.ptl.unlock();
  if (cow) {
    srcMm.writeProtectSeq++;
    yield* mmuNotifierInvalidateRangeEnd(range);
  }
  return ret;
}

/** What one entry of the PGD maps (PGDIR_SIZE): the span of a PUD table. */
const PGDIR_SIZE = 512 * PUD_SIZE;

/**
 * copy_pud_range() and copy_pmd_range() allocate the child's PUD table wherever the parent has
 * one over the VMA, and its PMD table wherever the parent has one, before they look at a single
 * entry: the child gets them even where nothing under them is copied.
 */
function copyUpperTables(dst: Vma, src: Vma): void {
  const from = src.mm.pgt;
  const to = dst.mm.pgt;
  for (let base = src.start - (src.start % PGDIR_SIZE); base < src.end; base += PGDIR_SIZE) {
    const a = Math.max(base, src.start);
    if (from.upperAt(a, 2) === null) continue;
    to.pudTableAlloc(a);
    const end = Math.min(base + PGDIR_SIZE, src.end);
    for (let b = a - (a % PUD_SIZE); b < end; b += PUD_SIZE) {
      const c = Math.max(b, src.start);
      if (from.upperAt(c, 1) !== null) to.pmdTableAlloc(c);
    }
  }
}

/** Models copy_huge_pmd() / copy_hugetlb_page_range() for one PMD leaf. Returns 0 or -ENOMEM. */
function copyHugePmd(dst: Vma, src: Vma, base: number, cow: boolean): number {
  const sys = src.mm.sys;
  const phys = sys.phys;
  const spmd = src.mm.pgt.upperAt(base, 1)!;
  const i = indexAt(base, 1);
  let lo = spmd.words[2 * i];
  const hi = spmd.words[2 * i + 1];
  if (!ptePresent(lo)) {
    // A PMD migration entry or a device-private THP: a writable entry becomes readable in both
    // parent and child (the next write faults); a device-private THP is shared like a THP.
    const type = swpType(lo);
    if (isDevicePrivateEntry(lo)) {
      phys.get(hi);
      addRmapPmd(phys, hi, dst.mm, rssCounterOf(phys, hi, src));
      phys.flags[hi] &= ~PG.anonExclusive;
    } else if (isMigrationEntry(lo)) {
      dst.mm.rss[rssCounterOf(phys, hi, src)] += HPAGE_PMD_NR;
    }
    if (cow && (type === SwpType.DEVICE_PRIVATE_WRITE || type === SwpType.MIGRATION_WRITE)) {
      const rtype = type === SwpType.MIGRATION_WRITE ? SwpType.MIGRATION_READ : SwpType.DEVICE_PRIVATE_READ;
      lo = swpPmdLo(rtype, lo);
      src.mm.pgt.setUpperWords(spmd, i, lo, hi);
    }
  } else if (!phys.isZeroPfn(hi)) {
    const hugetlb = (src.flags & VM.HUGETLB) !== 0;
    if (hugetlb && cow && (phys.flags[hi] & (PG.anon | PG.anonExclusive)) === (PG.anon | PG.anonExclusive)) {
      if (phys.maybeDmaPinned(hi)) {
        // copy_hugetlb_page_range(): hugetlb_try_dup_anon_rmap() refuses a pinned exclusive page,
        // so the child gets its own copy (not from the reserve) and the parent keeps the page
        // mapped as it was.
        const copy = allocHugetlbPage(sys);
        if (copy < 0) return -Errno.ENOMEM;
        for (let k = 0; k < HPAGE_PMD_NR; k++) phys.copyPage(copy + k, hi + k);
        phys.flags[copy] |= PG.anon | PG.anonExclusive;
        phys.mapping[copy] = dst.anonVma!.mappingId;
        phys.setIndex(copy, dst.pageIndex(base));
        phys.entireMapcount.set(copy, 1);
        const dpmd = dst.mm.pgt.pmdTableAlloc(base);
        dst.mm.pgt.setUpperWords(dpmd, i, hugePte(dst, true), copy);
        return 0;
      }
    }
    phys.get(hi);
    if (hugetlb) {
      phys.entireMapcount.set(hi, (phys.entireMapcount.get(hi) ?? 0) + 1);
    } else {
      addRmapPmd(phys, hi, dst.mm, rssCounterOf(phys, hi, src));
    }
    if (cow) {
      phys.flags[hi] &= ~PG.anonExclusive;
      lo &= ~PTE_WRITE;
      src.mm.pgt.setUpperWords(spmd, i, lo, hi);
    }
  }
  // copy_huge_pmd(): the child's PMD (a THP's, or the huge zero page's) starts old.
  if (ptePresent(lo) && (src.flags & VM.HUGETLB) === 0) lo &= ~PTE_ACCESSED;
  const dpmd = dst.mm.pgt.pmdTableAlloc(base);
  dst.mm.pgt.setUpperWords(dpmd, i, lo, hi);
  return 0;
}

/** Models copy_present_pte() / copy_nonpresent_pte() for one address. */
function* copyPte(dst: Vma, src: Vma, addr: number, cow: boolean): KGen<number> {
  const sys = src.mm.sys;
  const phys = sys.phys;
  const st = src.mm.pgt.pteTable(addr)!;
  const s = pteSlot(addr);
  let lo = st.words[s];
  const hi = st.words[s + 1];
  if (pteNone(lo, hi)) return 0;
  const dt = dst.mm.pgt.pteTableAlloc(addr);
  if (ptePresent(lo)) {
    const page = vmNormalPage(sys, src, lo, hi);
    if (page >= 0) {
      const h = phys.head(page);
      const anon = (phys.flags[h] & PG.anon) !== 0;
      if (anon && cow && phys.maybeDmaPinned(page) && (phys.flags[page] & PG.anonExclusive) !== 0) {
        // copy_present_page(): a pinned exclusive page stays the parent's; the child gets a copy.
        const copy = yield* allocPageReclaim(sys, 0, 'fork_copy_page');
        if (copy < 0) return -Errno.ENOMEM;
        phys.copyPage(copy, page);
        addNewAnonRmap(sys, dst, copy, addr, false);
        setPte(dt, s, mkPte(dst, (lo & PTE_WRITE) !== 0, true), copy);
        return 0;
      }
      phys.get(page);
      addRmapPte(phys, page, dst.mm, rssCounterOf(phys, page, src));
      if (anon) phys.flags[page] &= ~PG.anonExclusive;
    }
    if (cow && (lo & PTE_WRITE) !== 0) {
      lo &= ~PTE_WRITE;
      st.words[s] = lo >>> 0;
    }
    // The child's entry starts old, and clean where the mapping is shared (the parent's entry
    // keeps the dirty bit that writeback needs).
    lo &= ~PTE_ACCESSED;
    if ((src.flags & VM.SHARED) !== 0) lo &= ~PTE_DIRTY;
    setPte(dt, s, lo, hi);
    return 0;
  }
  if (isSwapEntry(lo)) {
    sys.swap.dup(hi);
    dst.mm.rss[MM_SWAPENTS]++;
    if ((lo & PTE_SWP_EXCLUSIVE) !== 0) {
      lo &= ~PTE_SWP_EXCLUSIVE;
      st.words[s] = lo >>> 0;
    }
    setPte(dt, s, lo, hi);
    return 0;
  }
  if (isMigrationEntry(lo)) {
    if (cow && swpType(lo) === SwpType.MIGRATION_WRITE) {
      lo = swpLo(SwpType.MIGRATION_READ, lo);
      st.words[s] = lo >>> 0;
    }
    // A migration entry holds no reference and no mapcount (remove_migration_ptes adds them for
    // every entry when the migration ends); only the RSS counts it.
    dst.mm.rss[rssCounterOf(phys, hi, src)]++;
    setPte(dt, s, lo, hi);
    return 0;
  }
  if (isDevicePrivateEntry(lo)) {
    phys.get(hi);
    addRmapPte(phys, hi, dst.mm, rssCounterOf(phys, hi, src));
    phys.flags[hi] &= ~PG.anonExclusive;
    if (cow && swpType(lo) === SwpType.DEVICE_PRIVATE_WRITE) {
      lo = swpLo(SwpType.DEVICE_PRIVATE_READ, lo);
      st.words[s] = lo >>> 0;
    }
    setPte(dt, s, lo, hi);
    return 0;
  }
  setPte(dt, s, lo, hi);
  return 0;
}

/** Models dup_mmap(): copies every VMA (and, where needed, its page tables) into a new mm. */
function* dupMmap(parent: MmStruct, child: MmStruct): KGen<number> {
  for (const node of parent.vmas) {
    const src = node.value;
    if ((src.flags & VM.DONTCOPY) !== 0) continue;
    // The child's mappings are not locked: mlock() is not inherited.
    const dst = new Vma(child, src.start, src.end, src.flags & ~VM_LOCKED_MASK, src.pgoff, src.file);
    dst.vmOps = src.vmOps;
    // A private hugetlb mapping's reservations stay with the parent (reset_vma_resv_huge_pages).
    dst.priv = (src.flags & (VM.HUGETLB | VM.SHARED)) === VM.HUGETLB ? null : src.priv;
    vmaGetFile(child.sys, dst, 'dup_mmap');
    if ((src.flags & VM.WIPEONFORK) !== 0) {
      insertVma(child, dst);
      continue;
    }
    anonVmaFork(child.sys, dst, src);
    insertVma(child, dst);
    const r = yield* copyPageRange(dst, src);
    if (r < 0) return r;
  }
  return 0;
}

/** Models fork(): a new process whose mm copies the parent's with copy-on-write. */
export function* doFork(
  sys: System,
  parent: Process,
  childName: string,
): KGen<{ ret: number; child: Process | null }> {
  const pmm = parent.mm;
  if (pmm === null || parent.exited) return { ret: -Errno.ESRCH, child: null };
  if (sys.inject.shouldFail('dup_mm')) return { ret: -Errno.ENOMEM, child: null };
  const cmm = sys.newMm(parent.user, childName);
  cmm.mmapBase = pmm.mmapBase;
  yield* pmm.mmapLock.downWrite();
  const childLock = cmm.mmapLock;
  yield* childLock.downWrite(1);
  const r = yield* dupMmap(pmm, cmm);
  yield* childLock.upWrite();
  yield* pmm.mmapLock.upWrite();
  const pid = sys.nextId('pid');
  const child = new Process(pid, childName, cmm, parent.user, parent.rlimitMemlock, parent);
  if (r < 0) {
    // dup_mmap failed: dup_mm() drops the half-built mm with mmput(), as exit would.
    yield* mmput(cmm, true);
    return { ret: r, child: null };
  }
  sys.processes.set(pid, child);
  sys.trace.count('fork');
  return { ret: pid, child };
}
