import { HPAGE_PMD_NR, PAGE_SIZE } from '../../lib/units.ts';
import type { System } from '../system.ts';
import {
  AnonVma,
  Inode,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  type MmStruct,
  VM,
  VM_STICKY,
  type Vma,
} from './mm_types.ts';
import { PG, type PhysMem } from './page_alloc.ts';
import { sideTable } from '../../lib/snapshot.ts';

/**
 * Reverse mapping: which (mm, address) pairs map a page. Anonymous pages point at an anon_vma
 * whose VMA set covers every process the page may have been shared with through fork; file
 * pages point at their inode, whose i_mmap lists the VMAs mapping it.
 */

/**
 * Models anon_vma_prepare(): gives a VMA its anon_vma before its first anonymous page, the one of
 * a neighbour when find_mergeable_anon_vma() finds one (so that an mprotect() can merge them
 * later), else a new one.
 */
export function anonVmaPrepare(sys: System, vma: Vma): AnonVma {
  if (vma.anonVma !== null) return vma.anonVma;
  let av = findMergeableAnonVma(vma);
  if (av === null) {
    av = new AnonVma(sys.nextId('mapping'), null);
    sys.registerMapping(av);
  }
  vma.anonVma = av;
  av.active++;
  linkAnonVma(vma, av);
  return av;
}

/**
 * Models anon_vma_compatible(): `a` ends where `b` starts, with the same file and page offsets
 * that run on, and flags that differ at most in access and soft-dirty bits.
 */
function anonVmaCompatible(a: Vma, b: Vma): boolean {
  return (
    a.end === b.start &&
    a.file === b.file &&
    ((a.flags ^ b.flags) & ~(VM.READ | VM.WRITE | VM.EXEC | VM_STICKY)) === 0 &&
    b.pgoff === a.pgoff + (b.start - a.start) / PAGE_SIZE
  );
}

/**
 * Models find_mergeable_anon_vma(): the anon_vma of the next VMA, then of the previous one, if
 * that VMA is compatible and its anon_vma is its only one (not one it chains from a fork).
 */
function findMergeableAnonVma(vma: Vma): AnonVma | null {
  const mm = vma.mm;
  if (vma.node === null) return null;
  const reusable = (old: Vma, a: Vma, b: Vma): AnonVma | null =>
    anonVmaCompatible(a, b) && old.anonVma !== null && old.anonChain.size === 1 ? old.anonVma : null;
  const next = mm.vmas.next(vma.node)?.value;
  const fromNext = next === undefined ? null : reusable(next, vma, next);
  if (fromNext !== null) return fromNext;
  const prev = mm.vmas.prev(vma.node)?.value;
  return prev === undefined ? null : reusable(prev, prev, vma);
}

export function linkAnonVma(vma: Vma, av: AnonVma): void {
  vma.anonChain.add(av);
  av.vmas.add(vma);
  av.linked++;
}

/**
 * A count that changes whenever a VMA joins the anon_vma of page `pfn` (fork, a split, a moved
 * VMA); -1 for a page of any other mapping, for which no such count is kept.
 */
export function rmapLinkCount(sys: System, pfn: number): number {
  const m = sys.mappings.get(sys.phys.mapping[pfn]);
  return m instanceof AnonVma ? m.linked : -1;
}

/** Models unlink_anon_vmas(): the VMA leaves every anon_vma it was linked into. */
export function unlinkAnonVmas(sys: System, vma: Vma): void {
  for (const av of vma.anonChain) {
    av.vmas.delete(vma);
    if (av.vmas.size === 0) sys.mappings.delete(av.mappingId);
  }
  if (vma.anonVma !== null) vma.anonVma.active--;
  vma.anonChain.clear();
}

/** Models anon_vma_fork(): the child VMA shares the parent's anon_vmas and gets its own. */
export function anonVmaFork(sys: System, child: Vma, parent: Vma): void {
  if (parent.anonVma === null) return;
  for (const av of parent.anonChain) linkAnonVma(child, av);
  const own = new AnonVma(sys.nextId('mapping'), parent.anonVma.root ?? parent.anonVma);
  sys.registerMapping(own);
  child.anonVma = own;
  own.active++;
  linkAnonVma(child, own);
}

/** Models anon_vma_clone() for split_vma / mremap: the new VMA joins the same anon_vmas. */
export function anonVmaClone(dst: Vma, src: Vma): void {
  dst.anonVma = src.anonVma;
  if (src.anonVma !== null) src.anonVma.active++;
  for (const av of src.anonChain) linkAnonVma(dst, av);
}

export function rssCounterOf(phys: PhysMem, pfn: number, vma: Vma): number {
  const h = phys.head(pfn);
  if ((phys.flags[h] & PG.anon) !== 0) return MM_ANONPAGES;
  if (vma.file !== null && vma.file.inode.kind === 'shmem') return MM_SHMEMPAGES;
  return MM_FILEPAGES;
}

/*
 * What addNewAnonRmap() reads on every anonymous fault, as constants of this module: optimised
 * code reads an imported binding (and a member of PG) at every use, a module's own constant not.
 */
const NEW_ANON_FLAGS = PG.anon | PG.swapbacked | PG.lru | PG.uptodate;
const ANON_EXCLUSIVE = PG.anonExclusive;
const VM_DROPPABLE_FLAG = VM.DROPPABLE;
const ANON_PAGES = MM_ANONPAGES;
const PMD_NR = HPAGE_PMD_NR;

/** Models folio_add_new_anon_rmap() for a freshly allocated page or THP mapped at `addr`. */
export function addNewAnonRmap(sys: System, vma: Vma, pfn: number, addr: number, pmdMapped: boolean): void {
  const phys = sys.phys;
  const av = vma.anonVma!;
  const n = pmdMapped ? PMD_NR : 1;
  const idx = vma.pageIndex(addr);
  const mapping = phys.mapping;
  const flags = phys.flags;
  for (let i = 0; i < n; i++) {
    mapping[pfn + i] = av.mappingId;
    phys.setIndex(pfn + i, idx + i);
    flags[pfn + i] |= ANON_EXCLUSIVE;
  }
  // A droppable mapping's folio is not swap-backed: reclaim drops it instead.
  flags[pfn] |= (vma.flags & VM_DROPPABLE_FLAG) === 0 ? NEW_ANON_FLAGS : NEW_ANON_FLAGS & ~PG.swapbacked;
  if (pmdMapped) {
    phys.entireMapcount.set(pfn, (phys.entireMapcount.get(pfn) ?? 0) + 1);
    folioAddLargeMapcount(phys, pfn, vma.mm, 1);
  } else phys.mapcount[pfn]++;
  vma.mm.rss[ANON_PAGES] += n;
}

/** Models folio_add_{anon,file}_rmap_pte(): one more PTE maps the page (fork, swap-in, file fault). */
export function addRmapPte(phys: PhysMem, pfn: number, mm: MmStruct, counter: number): void {
  phys.mapcount[pfn]++;
  mm.rss[counter]++;
  folioAddLargeMapcountPte(phys, pfn, mm);
}

/** Models folio_add_{anon,file}_rmap_pmd(). */
export function addRmapPmd(phys: PhysMem, head: number, mm: MmStruct, counter: number): void {
  phys.entireMapcount.set(head, (phys.entireMapcount.get(head) ?? 0) + 1);
  mm.rss[counter] += HPAGE_PMD_NR;
  folioAddLargeMapcount(phys, head, mm, 1);
}

/** Models folio_remove_rmap_pte(). */
export function removeRmapPte(phys: PhysMem, pfn: number, mm: MmStruct, counter: number): void {
  phys.mapcount[pfn]--;
  if (phys.mapcount[pfn] < 0) throw new Error(`mapcount underflow on pfn ${pfn}`);
  mm.rss[counter]--;
  const h = phys.head(pfn);
  if (phys.order[h] === 0) return;
  folioSubLargeMapcount(phys, h, mm, 1);
  if (h !== pfn && !phys.entireMapcount.has(h)) phys.flags[h] |= PG.deferredSplit;
}

/** Models folio_remove_rmap_pmd(). */
export function removeRmapPmd(phys: PhysMem, head: number, mm: MmStruct, counter: number): void {
  const n = (phys.entireMapcount.get(head) ?? 0) - 1;
  if (n < 0) throw new Error(`entire mapcount underflow on pfn ${head}`);
  if (n === 0) phys.entireMapcount.delete(head);
  else phys.entireMapcount.set(head, n);
  mm.rss[counter] -= HPAGE_PMD_NR;
  folioSubLargeMapcount(phys, head, mm, 1);
}

/**
 * Models folio_add_large_mapcount() with CONFIG_MM_ID: `nr` more mappings (PTEs, or a PMD as one)
 * of the large folio at `head`, by `mm`. The MM's slot counts them; an MM without one takes a
 * free slot, and the folio is marked maybe mapped shared when others map it too. Not for hugetlb
 * folios, whose mappings are not counted per MM.
 */
export function folioAddLargeMapcount(phys: PhysMem, head: number, mm: MmStruct, nr: number): void {
  let r = phys.mmIds.get(head);
  if (r === undefined) {
    r = { total: 0, mm0: null, n0: 0, mm1: null, n1: 0, shared: false };
    phys.mmIds.set(head, r);
  }
  const others = r.total;
  r.total += nr;
  if (r.mm0 === mm) r.n0 += nr;
  else if (r.mm1 === mm) r.n1 += nr;
  else if (r.mm0 === null) {
    r.mm0 = mm;
    r.n0 = nr;
    if (others !== 0) r.shared = true;
  } else if (r.mm1 === null) {
    r.mm1 = mm;
    r.n1 = nr;
    r.shared = true;
  }
}

/**
 * Models folio_sub_large_mapcount() with CONFIG_MM_ID: `nr` fewer mappings of the large folio at
 * `head`, by `mm`. A slot whose count runs out is freed; then (or when `mm` had no slot) the bit
 * is cleared if one slot's MM holds every mapping left, or none is left.
 */
export function folioSubLargeMapcount(phys: PhysMem, head: number, mm: MmStruct, nr: number): void {
  const r = phys.mmIds.get(head);
  if (r === undefined) return;
  r.total -= nr;
  if (r.mm0 === mm) {
    r.n0 -= nr;
    if (r.n0 > 0) return;
    r.mm0 = null;
    r.n0 = 0;
  } else if (r.mm1 === mm) {
    r.n1 -= nr;
    if (r.n1 > 0) return;
    r.mm1 = null;
    r.n1 = 0;
  }
  if (r.total <= 0) {
    phys.mmIds.delete(head);
    return;
  }
  if ((r.mm0 !== null && r.n0 === r.total) || (r.mm1 !== null && r.n1 === r.total)) r.shared = false;
}

/** folioAddLargeMapcount() of one more PTE mapping of the page `pfn`, when its folio is large. */
export function folioAddLargeMapcountPte(phys: PhysMem, pfn: number, mm: MmStruct): void {
  const h = phys.head(pfn);
  if (phys.order[h] > 0) folioAddLargeMapcount(phys, h, mm, 1);
}

/** folioSubLargeMapcount() of one PTE mapping of the page `pfn`, when its folio is large. */
export function folioSubLargeMapcountPte(phys: PhysMem, pfn: number, mm: MmStruct): void {
  const h = phys.head(pfn);
  if (phys.order[h] > 0) folioSubLargeMapcount(phys, h, mm, 1);
}

/**
 * Models folio_maybe_mapped_shared() with CONFIG_MM_ID: whether a folio may be mapped by more
 * than one MM. A small folio (or a hugetlb one) is when it is mapped more than once; a large one
 * mapped once is not; otherwise its bit says (and may say so of a folio one MM maps, see
 * page_alloc.ts FolioMmIds).
 */
export function folioMaybeMappedShared(phys: PhysMem, h: number): boolean {
  const mapcount = folioMapcount(phys, h);
  const r = phys.mmIds.get(h);
  if (phys.order[h] === 0 || r === undefined) return mapcount > 1;
  return mapcount > 1 && r.shared;
}

/** folio_test_large_maybe_mapped_shared(): the large folio's bit itself. */
export function folioLargeMaybeMappedShared(phys: PhysMem, h: number): boolean {
  return phys.mmIds.get(h)?.shared === true;
}

/** Models folio_mapcount() for the folio containing `pfn`: PTE mappings of all subpages plus PMD mappings. */
export function folioMapcount(phys: PhysMem, pfn: number): number {
  const h = phys.head(pfn);
  const n = 1 << phys.order[h];
  let c = (phys.entireMapcount.get(h) ?? 0) * (n > 1 ? 1 : 0);
  for (let i = 0; i < n; i++) c += phys.mapcount[h + i];
  return c;
}

/** Models page_mapcount() for one subpage: its PTE mappings plus every PMD mapping of its folio. */
export function pageMapcount(phys: PhysMem, pfn: number): number {
  const h = phys.head(pfn);
  return phys.mapcount[pfn] + (h === pfn && phys.order[h] === 0 ? 0 : (phys.entireMapcount.get(h) ?? 0));
}

/**
 * Models rmap_walk() as a cursor over every VMA (in any process) and address at which a page may
 * be mapped; the caller checks the page table at each to see whether it actually is:
 *
 *   for (const w = rmapWalk(sys, pfn); w.next();) use(w.vma, w.addr);
 *
 * The candidates are fixed when the walk starts, and the caller may sleep between them (a VMA
 * joining meanwhile is not visited: the kernel holds the anon_vma or i_mmap lock across its walk,
 * so none can join it there). Walks are
 * reused: a finished walk (next() returned false) goes back to its System's pool, so a walk per
 * page allocates nothing. One left unfinished (a break, a throw) is simply not reused.
 */
export class RmapWalk {
  /** The current candidate's address, valid after next() returned true. */
  addr = -1;
  /** What rmapLinkCount() said of the page when begin() took the candidates. */
  linked = -1;
  private current: Vma | null = null;
  private readonly vmas: (Vma | null)[] = [];
  private readonly addrs: number[] = [];
  private count = 0;
  private at = 0;
  private active = false;

  constructor(private readonly pool: RmapWalk[]) {}

  /** The current candidate's VMA, valid after next() returned true. */
  get vma(): Vma {
    const v = this.current;
    if (v === null) throw new Error('rmap walk: no current candidate');
    return v;
  }

  /** Takes the candidates of page `pfn` (rmap_walk_anon() / rmap_walk_file()). */
  begin(sys: System, pfn: number): this {
    this.active = true;
    this.count = 0;
    this.at = 0;
    const phys = sys.phys;
    const m = sys.mappings.get(phys.mapping[pfn]);
    this.linked = m instanceof AnonVma ? m.linked : -1;
    const vmas = m instanceof AnonVma ? m.vmas : m instanceof Inode ? m.iMmap : null;
    if (vmas === null) return this;
    const index = phys.getIndex(pfn);
    for (const vma of vmas) {
      if (vma.mm.exited) continue;
      const addr = vma.addressOf(index);
      if (addr < 0) continue;
      this.vmas[this.count] = vma;
      this.addrs[this.count] = addr;
      this.count++;
    }
    return this;
  }

  /** Moves to the next candidate; false at the end, where the walk goes back to the pool. */
  next(): boolean {
    if (this.at < this.count) {
      this.current = this.vmas[this.at];
      this.addr = this.addrs[this.at];
      this.at++;
      return true;
    }
    if (this.active) {
      this.active = false;
      // A pooled walk keeps no VMA alive.
      for (let i = 0; i < this.count; i++) this.vmas[i] = null;
      this.current = null;
      this.addr = -1;
      this.pool.push(this);
    }
    return false;
  }
}

const walkPools = sideTable<System, RmapWalk[]>();

/** Starts an rmap walk of page `pfn` (see RmapWalk). */
export function rmapWalk(sys: System, pfn: number): RmapWalk {
  let pool = walkPools.get(sys);
  if (pool === undefined) {
    pool = [];
    walkPools.set(sys, pool);
  }
  return (pool.pop() ?? new RmapWalk(pool)).begin(sys, pfn);
}
