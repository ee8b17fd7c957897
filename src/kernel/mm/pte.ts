import { indexAt, type LeafTable, type UpperTable } from '../../lib/pgtable_store.ts';
import { PMD_SIZE } from '../../lib/units.ts';
import type { MmStruct } from './mm_types.ts';
import { PTE_HUGE, PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL } from './pgtable.ts';

/** Slot of the PTE for an address inside its table: words[i] low, words[i + 1] high. */
export function pteSlot(addr: number): number {
  return indexAt(addr, 0) * 2;
}

export function pmdSlot(addr: number): number {
  return indexAt(addr, 1) * 2;
}

/** The PTE table for `addr`, or null when none (or when a PMD leaf maps it). */
export function pteTableOf(mm: MmStruct, addr: number): LeafTable | null {
  return mm.pgt.pteTable(addr);
}

/** The PMD table containing the PMD entry for `addr`, or null. */
export function pmdTableOf(mm: MmStruct, addr: number): UpperTable | null {
  return mm.pgt.upperAt(addr, 1);
}

/** Whether the PMD entry covering `addr` is a leaf (present huge mapping, or a non-present huge entry). */
export function pmdIsLeaf(pmd: UpperTable | null, addr: number): boolean {
  if (pmd === null) return false;
  const i = indexAt(addr, 1);
  return pmd.children[i] === null && (pmd.words[2 * i] !== 0 || pmd.words[2 * i + 1] !== 0);
}

export function pmdPresentHuge(lo: number): boolean {
  return (lo & PTE_HUGE) !== 0 && (lo & (PTE_PRESENT | PTE_PROTNONE)) !== 0;
}

export function pmdBase(addr: number): number {
  return addr - (addr % PMD_SIZE);
}

/** Sets a PTE and keeps the table's used count. */
export function setPte(t: LeafTable, slot: number, lo: number, hi: number): void {
  const was = t.words[slot] !== 0 || t.words[slot + 1] !== 0;
  t.words[slot] = lo >>> 0;
  t.words[slot + 1] = hi >>> 0;
  const now = lo !== 0 || hi !== 0;
  if (was !== now) t.used += now ? 1 : -1;
}

export function clearPte(t: LeafTable, slot: number): void {
  setPte(t, slot, 0, 0);
}

export function isSpecialPte(lo: number): boolean {
  return (lo & PTE_SPECIAL) !== 0;
}
