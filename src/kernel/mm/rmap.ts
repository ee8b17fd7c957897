import { HPAGE_PMD_NR } from '../../lib/units.ts';
import type { System } from '../system.ts';
import {
  AnonVma,
  Inode,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  type MmStruct,
  type Vma,
} from './mm_types.ts';
import { PG, type PhysMem } from './page_alloc.ts';

/**
 * Reverse mapping: which (mm, address) pairs map a page. Anonymous pages point at an anon_vma
 * whose VMA set covers every process the page may have been shared with through fork; file
 * pages point at their inode, whose i_mmap lists the VMAs mapping it.
 */

/** Models anon_vma_prepare(): gives a VMA its anon_vma before its first anonymous page. */
export function anonVmaPrepare(sys: System, vma: Vma): AnonVma {
  if (vma.anonVma !== null) return vma.anonVma;
  const av = new AnonVma(sys.nextId('mapping'), null);
  sys.registerMapping(av);
  vma.anonVma = av;
  av.active++;
  linkAnonVma(vma, av);
  return av;
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

/** Models folio_add_new_anon_rmap() for a freshly allocated page or THP mapped at `addr`. */
export function addNewAnonRmap(sys: System, vma: Vma, pfn: number, addr: number, pmdMapped: boolean): void {
  const phys = sys.phys;
  const av = vma.anonVma!;
  const n = pmdMapped ? HPAGE_PMD_NR : 1;
  const idx = vma.pageIndex(addr);
  for (let i = 0; i < n; i++) {
    phys.mapping[pfn + i] = av.mappingId;
    phys.setIndex(pfn + i, idx + i);
    phys.flags[pfn + i] |= PG.anonExclusive;
  }
  phys.flags[pfn] |= PG.anon | PG.swapbacked | PG.lru | PG.uptodate;
  if (pmdMapped) phys.entireMapcount.set(pfn, (phys.entireMapcount.get(pfn) ?? 0) + 1);
  else phys.mapcount[pfn]++;
  vma.mm.rss[MM_ANONPAGES] += n;
}

/** Models folio_add_{anon,file}_rmap_pte(): one more PTE maps the page (fork, swap-in, file fault). */
export function addRmapPte(phys: PhysMem, pfn: number, mm: MmStruct, counter: number): void {
  phys.mapcount[pfn]++;
  mm.rss[counter]++;
}

/** Models folio_add_{anon,file}_rmap_pmd(). */
export function addRmapPmd(phys: PhysMem, head: number, mm: MmStruct, counter: number): void {
  phys.entireMapcount.set(head, (phys.entireMapcount.get(head) ?? 0) + 1);
  mm.rss[counter] += HPAGE_PMD_NR;
}

/** Models folio_remove_rmap_pte(). */
export function removeRmapPte(phys: PhysMem, pfn: number, mm: MmStruct, counter: number): void {
  phys.mapcount[pfn]--;
  if (phys.mapcount[pfn] < 0) throw new Error(`mapcount underflow on pfn ${pfn}`);
  mm.rss[counter]--;
  const h = phys.head(pfn);
  if (h !== pfn && phys.order[h] > 0 && !phys.entireMapcount.has(h)) phys.flags[h] |= PG.deferredSplit;
}

/** Models folio_remove_rmap_pmd(). */
export function removeRmapPmd(phys: PhysMem, head: number, mm: MmStruct, counter: number): void {
  const n = (phys.entireMapcount.get(head) ?? 0) - 1;
  if (n < 0) throw new Error(`entire mapcount underflow on pfn ${head}`);
  if (n === 0) phys.entireMapcount.delete(head);
  else phys.entireMapcount.set(head, n);
  mm.rss[counter] -= HPAGE_PMD_NR;
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

/** One place a page is mapped. */
export interface RmapHit {
  readonly vma: Vma;
  readonly addr: number;
}

/**
 * Models rmap_walk(): every VMA (in any process) and address at which the page `pfn` may be
 * mapped. The caller checks the page table at each to see whether it actually is.
 */
export function rmapCandidates(sys: System, pfn: number): RmapHit[] {
  const phys = sys.phys;
  const m = sys.mappings.get(phys.mapping[pfn]);
  if (m === undefined) return [];
  const out: RmapHit[] = [];
  const index = phys.getIndex(pfn);
  const vmas = m instanceof AnonVma ? m.vmas : m instanceof Inode ? m.iMmap : null;
  if (vmas === null) return out;
  for (const vma of vmas) {
    if (vma.mm.exited) continue;
    const addr = vma.addressOf(index);
    if (addr >= 0) out.push({ vma, addr });
  }
  return out;
}
