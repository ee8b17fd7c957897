import type { Violation } from '../sched/types.ts';
import { isHugetlbFolio } from '../kernel/mm/hugetlb.ts';
import { AnonVma, Inode } from '../kernel/mm/mm_types.ts';
import { rmapWalk } from '../kernel/mm/rmap.ts';
import { findMapping } from '../kernel/mm/vmscan.ts';
import { GUP_PIN_COUNTING_BIAS, PG, type PhysMem } from '../kernel/mm/page_alloc.ts';
import { ENTRIES, lastIndexBelow, type LeafTable, spanOf, type UpperTable } from '../lib/pgtable_store.ts';
import {
  PTE_HUGE,
  PTE_SPECIAL,
  isDeviceExclusiveEntry,
  isDevicePrivateEntry,
  isSwapEntry,
  pteNone,
  ptePresent,
} from '../kernel/mm/pgtable.ts';
import type { System } from '../kernel/system.ts';

/** What the page tables and caches of the whole machine say about each frame and swap slot. */
export interface Census {
  /** PTE mappings per frame. */
  readonly pte: Map<number, number>;
  /** PMD mappings per folio head. */
  readonly pmd: Map<number, number>;
  /** Page-cache references per folio head. */
  readonly cache: Map<number, number>;
  /** References to each swap slot from PTEs and shmem. */
  readonly swap: Map<number, number>;
}

function bump(m: Map<number, number>, k: number, n = 1): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

/**
 * How many MMs map a page of the large folio at `h` (by a PTE or a PMD): 1 without a walk of its
 * 512 pages when every VMA its anon_vma links is one MM's (the usual THP).
 */
function mmsMapping(sys: System, h: number): number {
  const av = sys.mappings.get(sys.phys.mapping[h]);
  if (av instanceof AnonVma) {
    let one: unknown = null;
    for (const v of av.vmas) {
      if (one === null) one = v.mm;
      else if (v.mm !== one) one = undefined;
    }
    if (one !== undefined) return one === null ? 0 : 1;
  }
  const mms = new Set<unknown>();
  for (let k = 0; k < 1 << sys.phys.order[h]; k++) {
    for (const w = rmapWalk(sys, h + k); w.next();) {
      if (findMapping(w.vma, w.addr, h, k) !== null) mms.add(w.vma.mm);
    }
  }
  return mms.size;
}

/** Walks every live page table and file cache once. */
export function census(sys: System): Census {
  const c: Census = { pte: new Map(), pmd: new Map(), cache: new Map(), swap: new Map() };
  const phys = sys.phys;
  for (const mm of sys.mms) countTables(mm.pgt.pgd, mm.taskSize, phys, c);
  for (const inode of sys.mappings.values()) {
    if (!(inode instanceof Inode)) continue;
    for (const [, pfn] of inode.pages) bump(c.cache, phys.head(pfn));
    for (const [, slot] of inode.swapped) bump(c.swap, slot);
  }
  return c;
}

/**
 * Counts the entries of the page tables under `pgd` that cover [0, end): every PTE table, and
 * every PMD entry with no PTE table under it, in the order PageTableStore.walk() visits them. The
 * loops are written out: the census runs after every quiescent step the explorer takes, and a
 * walk's calls per entry cost more than the entries (most upper entries are empty).
 */
function countTables(pgd: UpperTable, end: number, phys: PhysMem, c: Census): void {
  const pgdLast = lastIndexBelow(end, 0, 3);
  for (let i = 0; i <= pgdLast; i++) {
    const pud = pgd.children[i] as UpperTable | null;
    if (pud === null) continue;
    const pudBase = i * spanOf(3);
    const pudLast = lastIndexBelow(end, pudBase, 2);
    for (let j = 0; j <= pudLast; j++) {
      const pmd = pud.children[j] as UpperTable | null;
      if (pmd === null) continue;
      const pmdLast = lastIndexBelow(end, pudBase + j * spanOf(2), 1);
      const words = pmd.words;
      const children = pmd.children;
      for (let k = 0; k <= pmdLast; k++) {
        const leaf = children[k];
        if (leaf !== null) {
          countPtes(leaf, phys, c);
          continue;
        }
        const lo = words[2 * k];
        const hi = words[2 * k + 1];
        if (lo === 0 && hi === 0) continue;
        if ((lo & PTE_HUGE) === 0 || phys.isZeroPfn(hi)) continue;
        // A PMD migration entry maps nothing; a device-private THP entry maps its folio.
        if (ptePresent(lo) || isDevicePrivateEntry(lo)) bump(c.pmd, hi);
      }
    }
  }
}

/** Counts the entries of one PTE table. */
function countPtes(t: LeafTable, phys: PhysMem, c: Census): void {
  const words = t.words;
  for (let i = 0; i < ENTRIES; i++) {
    const lo = words[2 * i];
    const hi = words[2 * i + 1];
    if (pteNone(lo, hi)) continue;
    if (ptePresent(lo)) {
      if ((lo & PTE_SPECIAL) !== 0 || phys.isZeroPfn(hi)) continue;
      bump(c.pte, hi);
    } else if (isSwapEntry(lo)) {
      bump(c.swap, hi);
    } else if (isDevicePrivateEntry(lo) || isDeviceExclusiveEntry(lo)) {
      bump(c.pte, hi);
    }
  }
}

/** Every frame the census or the entire mapcounts name, ascending, without repeats. */
function namedFrames(c: Census, entire: ReadonlyMap<number, number>): number[] {
  const all: number[] = [];
  for (const m of [c.pte, c.pmd, c.cache, entire]) for (const pfn of m.keys()) all.push(pfn);
  all.sort((a, b) => a - b);
  let n = 0;
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) all[n++] = all[i];
  all.length = n;
  return all;
}

/** The index of the first element of the ascending `a` that is >= `x`. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const USED_RESERVED = PG.used | PG.reserved;

/**
 * Oracle 3: every frame's mapcount equals the PTEs that map it (and the entire mapcount the PMDs
 * that map its folio); every folio's refcount covers its mappings, page-cache references and
 * pins; every swap slot's count equals the entries that refer to it.
 */
export function checkCounts(sys: System): Violation[] {
  const out: Violation[] = [];
  const phys = sys.phys;
  const c = census(sys);
  const bad = (message: string): void => {
    if (out.length < 20) out.push({ oracle: 'page-counts', message });
  };
  const ranges = phys.touchedRanges();
  // A frame that was never allocated cannot be mapped either.
  for (const pfn of c.pte.keys()) {
    if (!ranges.some(([lo, hi]) => pfn >= lo && pfn < hi)) bad(`free pfn ${pfn} is mapped`);
  }
  // Frames the census or a side map names are checked in full; any other frame has no mapping,
  // cache reference or entire mapcount, so only its own mapcount, a large folio, or pins beyond its
  // refcount can make it fail, and only those go to the full check. The order of the checks, and
  // so of the violations, is the order of the frames.
  const named = namedFrames(c, phys.entireMapcount);
  const flags = phys.flags;
  for (const [lo, hi] of phys.checkedRanges()) {
    let k = lowerBound(named, lo);
    for (let pfn = lo; pfn < hi; pfn++) {
      const isNamed = k < named.length && named[k] === pfn;
      if (isNamed) k++;
      // A reserved frame (the zero page; checkedRanges() leaves out the huge zero folio) passes
      // both checks below at their first test: passed over here without a call.
      if ((flags[pfn] & USED_RESERVED) === USED_RESERVED) continue;
      if (isNamed || !quietFrame(pfn)) checkFrame(pfn);
    }
  }
  for (const h of phys.mmIds.keys()) {
    if (phys.order[h] === 0 || (phys.flags[h] & PG.used) === 0)
      bad(`pfn ${h}: MM_ID slots on no large folio`);
  }
  for (let slot = 1; slot < sys.swap.highWater; slot++) {
    const have = sys.swap.count[slot];
    const seen = c.swap.get(slot) ?? 0;
    if (have !== seen) bad(`swap slot ${slot}: count ${have} but ${seen} entries refer to it`);
  }
  for (const [slot, seen] of c.swap) {
    if (slot >= sys.swap.highWater) bad(`swap slot ${slot}: count 0 but ${seen} entries refer to it`);
  }
  for (const mm of sys.mms) {
    if (mm.rss.some((v) => v < 0)) bad(`mm ${mm.id}: negative RSS counter ${mm.rss.join(',')}`);
  }
  return out;

  /** Whether a frame no census entry names passes every check of checkFrame(). */
  function quietFrame(pfn: number): boolean {
    const f = phys.flags[pfn];
    if ((f & PG.used) !== 0 && (f & PG.reserved) !== 0) return true;
    if (phys.mapcount[pfn] !== 0) return false;
    if ((f & PG.used) === 0 || (f & PG.tail) !== 0) return true;
    if (phys.order[pfn] !== 0) return false;
    if (phys.isDevice(pfn) && phys.refcount[pfn] === 0) return true;
    return phys.refcount[pfn] >= phys.pinCount(pfn) * GUP_PIN_COUNTING_BIAS;
  }

  /**
   * A mapped large folio that is not hugetlb has its MM_ID record (page_alloc.ts FolioMmIds),
   * whose total is its mappings; one more than one MM maps is marked maybe mapped shared.
   */
  function checkMmIds(head: number, mapped: number): void {
    const r = phys.mmIds.get(head);
    if (r === undefined) {
      if (mapped > 0 && !isHugetlbFolio(sys, head))
        bad(`folio ${head}: mapped ${mapped} times but no MM_ID slots`);
      return;
    }
    if (r.total !== mapped) bad(`folio ${head}: MM_ID total ${r.total} but ${mapped} mappings`);
    if (r.n0 < 0 || r.n1 < 0 || (r.mm0 !== null && r.mm0 === r.mm1))
      bad(`folio ${head}: MM_ID slots inconsistent`);
    if (!r.shared && mapped > 1) {
      const mms = mmsMapping(sys, head);
      if (mms > 1) bad(`folio ${head}: mapped by ${mms} MMs but not marked maybe mapped shared`);
    }
  }

  function checkFrame(pfn: number): void {
    const f = phys.flags[pfn];
    // A reserved frame (the huge zero folio's 512 among them) is not counted.
    if ((f & PG.used) !== 0 && (f & PG.reserved) !== 0) return;
    const seen = c.pte.get(pfn) ?? 0;
    if ((f & PG.used) === 0) {
      if (seen > 0 || phys.mapcount[pfn] !== 0)
        bad(`free pfn ${pfn} is mapped ${seen} times (mapcount ${phys.mapcount[pfn]})`);
      return;
    }
    if (phys.mapcount[pfn] !== seen)
      bad(`pfn ${pfn}: mapcount ${phys.mapcount[pfn]} but ${seen} PTEs map it`);
    if ((f & PG.tail) !== 0) return;
    const head = pfn;
    const n = 1 << phys.order[head];
    const pmdMaps = c.pmd.get(head) ?? 0;
    const entire = phys.entireMapcount.get(head) ?? 0;
    if (entire !== pmdMaps) bad(`folio ${head}: entire mapcount ${entire} but ${pmdMaps} PMDs map it`);
    if (phys.isDevice(head) && phys.refcount[head] === 0) return;
    let ptes = 0;
    for (let i = 0; i < n; i++) ptes += c.pte.get(head + i) ?? 0;
    if (n > 1) checkMmIds(head, ptes + pmdMaps);
    const pins = phys.pinCount(head);
    const pinRefs = n === 1 ? pins * GUP_PIN_COUNTING_BIAS : pins;
    const need = ptes + pmdMaps + (c.cache.get(head) ?? 0) + pinRefs;
    if (phys.refcount[head] < need) {
      bad(
        `folio ${head}: refcount ${phys.refcount[head]} below mappings ${ptes + pmdMaps} + cache + pins (${need})`,
      );
    }
  }
}
