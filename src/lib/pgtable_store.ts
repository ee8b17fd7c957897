/**
 * Radix storage for 4-level page tables: 512 entries a table, two 32-bit words an entry.
 * Upper levels keep child pointers beside their words so an upper-level entry can be either a
 * pointer to a lower table or a leaf (a huge mapping). Nothing here interprets the words.
 *
 * Levels: 3 = PGD, 2 = PUD, 1 = PMD, 0 = PTE. A table covers 512 entries of the level below.
 */

export const ENTRIES = 512;
const SHIFTS = [12, 21, 30, 39] as const;
const SPANS = [2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39] as const;
/*
 * The same numbers as constants of this module, for the walks every access and fault makes:
 * optimised code reads an exported binding (ENTRIES) or an array element at every use, a
 * module's own constant not at all.
 */
const INDEX_MASK = 511;
const PTE_SHIFT = 12;
const PMD_SHIFT = 21;
const PUD_SPAN = 2 ** 30;

/** A PTE table: words[2*i] is the low word of entry i, words[2*i+1] the high word. */
export interface LeafTable {
  readonly words: Uint32Array;
  /** Entries whose low or high word is non-zero. */
  used: number;
}

/** A table above the PTE level. `children[i]` is the lower table entry i points to, if any. */
export interface UpperTable {
  readonly level: number;
  readonly words: Uint32Array;
  readonly children: (UpperTable | LeafTable | null)[];
  /** Entries with a child or a non-zero word. */
  used: number;
}

/**
 * The entry of the level-`level` table that covers `addr` (a non-negative integer address). The
 * quotient is an integer below 2^53, so `& (ENTRIES - 1)` on its low 32 bits is its remainder
 * by 512, without a floating-point `%`. The PTE and PMD indexes are bits 12-20 and 21-29 of the
 * address, which its low 32 bits hold: a shift of those, without the division.
 */
export function indexAt(addr: number, level: number): number {
  if (level === 0) return (addr >>> PTE_SHIFT) & INDEX_MASK;
  if (level === 1) return (addr >>> PMD_SHIFT) & INDEX_MASK;
  return Math.floor(addr / SPANS[level]) & INDEX_MASK;
}

/**
 * The last entry of the level-`level` table that starts at `base` and covers an address below
 * `end` (at most the table's last entry).
 */
export function lastIndexBelow(end: number, base: number, level: number): number {
  return Math.min(ENTRIES - 1, Math.floor((end - 1 - base) / SPANS[level]));
}

export function spanOf(level: number): number {
  return SPANS[level];
}

export function shiftOf(level: number): number {
  return SHIFTS[level];
}

function newUpper(level: number): UpperTable {
  return {
    level,
    words: new Uint32Array(ENTRIES * 2),
    children: new Array<null>(ENTRIES).fill(null),
    used: 0,
  };
}

function newLeaf(): LeafTable {
  return { words: new Uint32Array(ENTRIES * 2), used: 0 };
}

export class PageTableStore {
  readonly pgd: UpperTable = newUpper(3);
  /** Tables allocated below the PGD, for accounting (pgtables_bytes). */
  tables = 0;

  /**
   * The PMD table upperAt() found last and the 1 GiB region it covers (-1: none), like a
   * paging-structure cache: accesses cluster, and the walk from the PGD was a large part of a
   * load or store to a mapped page. Only prune() takes PMD tables away; it forgets the entry.
   */
  private lastPmdRegion = -1;
  private lastPmd: UpperTable | null = null;

  /** The table at `level` (2 = PUD table, 1 = PMD table) covering `addr`, or null if not allocated. */
  upperAt(addr: number, level: 1 | 2): UpperTable | null {
    const region = Math.floor(addr / PUD_SPAN);
    if (level === 1 && region === this.lastPmdRegion) return this.lastPmd;
    let t: UpperTable = this.pgd;
    for (let l = 3; l > level; l--) {
      const c = t.children[indexAt(addr, l)];
      if (c === null) return null;
      t = c as UpperTable;
    }
    if (level === 1) {
      this.lastPmdRegion = region;
      this.lastPmd = t;
    }
    return t;
  }

  /** The PMD table covering `addr`, allocating the PUD and PMD tables on the way. */
  pmdTableAlloc(addr: number): UpperTable {
    const region = Math.floor(addr / PUD_SPAN);
    if (region === this.lastPmdRegion && this.lastPmd !== null) return this.lastPmd;
    let t: UpperTable = this.pgd;
    for (let l = 3; l > 1; l--) {
      const i = indexAt(addr, l);
      let c = t.children[i] as UpperTable | null;
      if (c === null) {
        c = newUpper(l - 1);
        t.children[i] = c;
        t.used++;
        this.tables++;
      }
      t = c;
    }
    this.lastPmdRegion = region;
    this.lastPmd = t;
    return t;
  }

  /** The PUD table covering `addr`, allocating it (pud_alloc(): not the PMD table below). */
  pudTableAlloc(addr: number): UpperTable {
    const i = indexAt(addr, 3);
    let c = this.pgd.children[i] as UpperTable | null;
    if (c === null) {
      c = newUpper(2);
      this.pgd.children[i] = c;
      this.pgd.used++;
      this.tables++;
    }
    return c;
  }

  /** The PTE table covering `addr`, or null. (A PMD leaf has no PTE table.) */
  pteTable(addr: number): LeafTable | null {
    const pmd = this.upperAt(addr, 1);
    if (pmd === null) return null;
    return pmd.children[indexAt(addr, 1)];
  }

  /** The PTE table covering `addr`, allocating it. The caller must know the PMD entry is not a leaf. */
  pteTableAlloc(addr: number): LeafTable {
    const pmd = this.pmdTableAlloc(addr);
    const i = indexAt(addr, 1);
    let leaf = pmd.children[i];
    if (leaf === null) {
      leaf = newLeaf();
      pmd.children[i] = leaf;
      pmd.used++;
      this.tables++;
    }
    return leaf;
  }

  /** Detaches and returns the PTE table under the PMD entry covering `addr` (for collapse / free_pgtables). */
  detachPteTable(addr: number): LeafTable | null {
    const pmd = this.upperAt(addr, 1);
    if (pmd === null) return null;
    const i = indexAt(addr, 1);
    const leaf = pmd.children[i];
    if (leaf === null) return null;
    pmd.children[i] = null;
    if (pmd.words[2 * i] === 0 && pmd.words[2 * i + 1] === 0) pmd.used--;
    this.tables--;
    return leaf;
  }

  /** Attaches `leaf` under the PMD entry covering `addr` (for a PMD split). */
  attachPteTable(addr: number, leaf: LeafTable): void {
    const pmd = this.pmdTableAlloc(addr);
    const i = indexAt(addr, 1);
    if (pmd.children[i] !== null) throw new Error('attachPteTable: a PTE table is already there');
    pmd.children[i] = leaf;
    if (pmd.words[2 * i] === 0 && pmd.words[2 * i + 1] === 0) pmd.used++;
    this.tables++;
  }

  /** Sets both words of an upper-level entry (a PMD or PUD leaf), keeping `used` right. */
  setUpperWords(t: UpperTable, i: number, lo: number, hi: number): void {
    const was = t.words[2 * i] !== 0 || t.words[2 * i + 1] !== 0 || t.children[i] !== null;
    t.words[2 * i] = lo;
    t.words[2 * i + 1] = hi;
    const now = lo !== 0 || hi !== 0 || t.children[i] !== null;
    if (was !== now) t.used += now ? 1 : -1;
  }

  /**
   * Frees empty tables in [start, end) (models free_pgtables for the range). With `floor` and
   * `ceiling` (the end of the mapping below and the start of the one above), a table is freed only
   * if all it covers lies between them, as free_pgd_range() keeps a table a neighbour may use.
   */
  freeEmpty(start: number, end: number, floor = 0, ceiling = Infinity): void {
    this.prune(this.pgd, 3, start, end, 0, floor, ceiling);
  }

  private prune(
    t: UpperTable,
    level: number,
    start: number,
    end: number,
    base: number,
    floor: number,
    ceiling: number,
  ): void {
    const span = SPANS[level];
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = lastIndexBelow(end, base, level);
    for (let i = first; i <= last; i++) {
      const c = t.children[i];
      if (c === null) continue;
      const childBase = base + i * span;
      if (level > 1) this.prune(c as UpperTable, level - 1, start, end, childBase, floor, ceiling);
      // The child table covers [childBase, childBase + span).
      if (c.used === 0 && childBase >= floor && childBase + span <= ceiling) {
        if (level > 1) this.lastPmdRegion = -1;
        t.children[i] = null;
        if (t.words[2 * i] === 0 && t.words[2 * i + 1] === 0) t.used--;
        this.tables--;
      }
    }
  }

  /**
   * Visits every PTE table and every non-empty PMD entry in [start, end). `leaf` is called with the
   * table and the address it starts at; `pmdLeaf` with the PMD table, index and address for PMD
   * entries that have words but no PTE table (huge or non-present PMD entries).
   */
  walk(
    start: number,
    end: number,
    leaf: (t: LeafTable, base: number) => void,
    pmdLeaf?: (pmd: UpperTable, index: number, base: number) => void,
  ): void {
    this.walkLevel(this.pgd, 3, start, end, 0, leaf, pmdLeaf);
  }

  private walkLevel(
    t: UpperTable,
    level: number,
    start: number,
    end: number,
    base: number,
    leaf: (t: LeafTable, base: number) => void,
    pmdLeaf?: (pmd: UpperTable, index: number, base: number) => void,
  ): void {
    const span = SPANS[level];
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = lastIndexBelow(end, base, level);
    for (let i = first; i <= last; i++) {
      const c = t.children[i];
      const childBase = base + i * span;
      if (c === null) {
        if (level === 1 && pmdLeaf !== undefined && (t.words[2 * i] !== 0 || t.words[2 * i + 1] !== 0)) {
          pmdLeaf(t, i, childBase);
        }
        continue;
      }
      if (level === 1) leaf(c, childBase);
      else this.walkLevel(c as UpperTable, level - 1, start, end, childBase, leaf, pmdLeaf);
    }
  }
}
