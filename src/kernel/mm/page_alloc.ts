import { Bitmap } from '../../lib/bitmap.ts';
import { HPAGE_PMD_NR, HPAGE_PMD_ORDER, PAGE_SIZE } from '../../lib/units.ts';
import { Errno } from '../errno.ts';
import { PageContents } from './page_contents.ts';
import { changesWithin } from '../../lib/snapshot.ts';
import { grow } from '../../lib/typed_array.ts';
import type { KGen } from '../../sched/types.ts';
import type { FaultInjector } from '../fault_inject.ts';
import type { VmFault } from './mm_types.ts';

/** Page flags (a subset of include/linux/page-flags.h, as bits of one Uint16 per frame). */
export const PG = {
  locked: 1 << 0,
  dirty: 1 << 1,
  anon: 1 << 2,
  swapbacked: 1 << 3,
  lru: 1 << 4,
  referenced: 1 << 5,
  active: 1 << 6,
  head: 1 << 7,
  tail: 1 << 8,
  reserved: 1 << 9,
  anonExclusive: 1 << 10,
  uptodate: 1 << 11,
  hwpoison: 1 << 12,
  /** Allocated (not on a free list). */
  used: 1 << 13,
  /** A THP on the deferred-split list after a partial unmap. */
  deferredSplit: 1 << 14,
} as const;

/*
 * The flags and sizes every allocation, store and fault reads, as constants of this module only:
 * optimised code reads an exported or imported binding (and a member of PG) at every use.
 */
const F_USED = PG.used;
const F_HEAD = PG.head;
const F_TAIL = PG.tail;
const F_HPAGE_NR = HPAGE_PMD_NR;

/**
 * A large folio's record of which MMs map it (CONFIG_MM_ID: folio->_mm_ids and _mm_id_mapcount):
 * two slots, each an MM and the number of its mappings of the folio, and the "maybe mapped shared"
 * bit. `total` is the folio's large mapcount (its PTE mappings plus its PMD mappings). An MM that
 * finds both slots taken is not counted in either; the bit, set when the second slot was taken,
 * is cleared only when one slot's MM holds every mapping, so it can stay set while a single MM
 * without a slot maps the folio.
 */
export interface FolioMmIds {
  total: number;
  mm0: object | null;
  n0: number;
  mm1: object | null;
  n1: number;
  shared: boolean;
}

/** Models GUP_PIN_COUNTING_BIAS: a FOLL_PIN on a small folio adds this much to its refcount. */
export const GUP_PIN_COUNTING_BIAS = 1024;

/** What a ZONE_DEVICE page range calls back into (struct dev_pagemap_ops, minus the fault path). */
export interface PagemapHooks {
  /** Models dev_pagemap_ops.folio_free: the last reference to a device folio went away. */
  folioFree(pfn: number, order: number): void;
  /** Models dev_pagemap_ops.migrate_to_ram: a CPU fault on a device-private entry. Returns vm_fault_t. */
  migrateToRam?(vmf: VmFault): KGen<number>;
  /**
   * Models dev_pagemap_ops.folio_split: a large device folio was split into order-0 folios; called
   * once per new folio (`tail` is the new folio's PFN, `head` the old head) before any is freed,
   * so the driver can split whatever it keeps per folio.
   */
  folioSplit?(head: number, tail: number): void;
  /** The owner cookie (pgmap->owner) that hmm_range_fault and migrate_vma compare against. */
  readonly owner?: unknown;
  /** MEMORY_DEVICE_PRIVATE or MEMORY_DEVICE_COHERENT. */
  readonly type?: 'private' | 'coherent';
}

export interface PagemapRef {
  readonly id: number;
  readonly firstPfn: number;
  readonly nrPages: number;
  readonly hooks: PagemapHooks;
}

/** The per-frame tables of PhysMem that every frame has from the start (the pin table is made later). */
type FrameTables = Pick<
  PhysMem,
  'refcount' | 'mapcount' | 'mapping' | 'indexLo' | 'flags' | 'gen' | 'order' | 'indexHi'
>;

/** Bytes a frame takes in the tables of FrameTables. */
const FRAME_TABLE_BYTES = 4 + 4 + 4 + 4 + 2 + 2 + 1 + 1;

/**
 * Tables for `n` frames, holding what `old` holds in the frame ranges `kept` (zero everywhere else):
 * views of one buffer, the 4-byte elements first so every view starts aligned. One allocation,
 * not eight: for a machine of many gigabytes the C library maps one this large afresh, as zero
 * pages the kernel provides only where they are touched, while eight smaller ones can come back
 * from its heap, cleared byte by byte every time a machine is built. (Copying only `kept` keeps
 * the frames never used untouched too.)
 */
function frameTables(
  n: number,
  old: FrameTables | null,
  kept: readonly [number, number][] = [],
): FrameTables {
  const buffer = new ArrayBuffer(n * FRAME_TABLE_BYTES);
  let at = 0;
  const view = <A extends Int32Array | Uint32Array | Uint16Array | Uint8Array>(
    Ctor: new (b: ArrayBuffer, offset: number, length: number) => A,
    bytes: number,
    from: A | undefined,
  ): A => {
    const a = new Ctor(buffer, at, n);
    at += n * bytes;
    if (from !== undefined) for (const [lo, hi] of kept) a.set(from.subarray(lo, hi), lo);
    return a;
  };
  return {
    refcount: view(Int32Array, 4, old?.refcount),
    mapcount: view(Int32Array, 4, old?.mapcount),
    mapping: view(Uint32Array, 4, old?.mapping),
    indexLo: view(Uint32Array, 4, old?.indexLo),
    flags: view(Uint16Array, 2, old?.flags),
    gen: view(Uint16Array, 2, old?.gen),
    order: view(Uint8Array, 1, old?.order),
    indexHi: view(Uint8Array, 1, old?.indexHi),
  };
}

/**
 * Physical memory: every page frame's struct page fields as typed arrays (struct of arrays),
 * and contents stored only for pages that were written. PFN 0 is the shared zero page; the huge
 * zero page is allocated at boot like the kernel's (lazily there, eagerly here).
 * ZONE_DEVICE ranges are appended beyond RAM by addDeviceRange().
 */
export class PhysMem {
  nr: number;
  readonly ramFrames: number;
  refcount: Int32Array;
  mapcount: Int32Array;
  /**
   * Exact FOLL_PIN count per folio head (the kernel keeps it in the refcount bias for small
   * folios, in _pincount for large ones): one byte, with counts of 255 and more in a side map.
   * Made at the first pin: a machine nobody pins memory of pays no byte per frame for it.
   */
  private pinLo: Uint8Array | null = null;
  private readonly pinMany = new Map<number, number>();
  flags: Uint16Array;
  /** Folio order, valid on the head page. */
  order: Uint8Array;
  /** Bumped each time a frame is freed, so a stale (pfn, generation) pair is detectable. */
  gen: Uint16Array;
  /** page->mapping: id of the anon_vma or address_space, 0 for none. */
  mapping: Uint32Array;
  /** page->index: page offset in the mapping (the virtual page number for anonymous memory). */
  indexLo: Uint32Array;
  /** Bits 32-39 of page->index (virtual page numbers reach 2^35). */
  indexHi: Uint8Array;
  readonly contents = new PageContents();
  /** PMD mappings of a THP head (folio_entire_mapcount), sparse. */
  readonly entireMapcount = new Map<number, number>();
  /**
   * The MM slots of each mapped large folio that is not hugetlb, by head (CONFIG_MM_ID: rmap.ts
   * folioAddLargeMapcount()), sparse.
   */
  readonly mmIds = new Map<number, FolioMmIds>();
  readonly pagemaps: PagemapRef[] = [];
  private free: Bitmap;
  freeFrames: number;
  /**
   * Free frames in each 2 MiB block of RAM, and how many blocks are free throughout: a huge
   * allocation looks for a free block in these, and fails at once when none is, instead of
   * counting the bits of every block of RAM.
   */
  private readonly blockFree: Uint16Array;
  private freeBlocks: number;
  /** Order-0 allocations search upward from here; huge ones downward from the top. */
  private cursor = 0;
  /**
   * Frames below `lowMark` and from `highMark` up to the end of RAM are all that were ever
   * allocated (order-0 pages come from the bottom, huge blocks from the top), so whole-machine
   * walks of the oracles cost what was used, not the size of RAM.
   */
  private lowMark = 0;
  private highMark: number;
  readonly zeroPfn = 0;
  hugeZeroPfn = -1;
  /**
   * Told of every folio the last put frees, after its generation moved on (the use-after-free
   * oracle records where a frame a device could still reach was freed). Null: nobody listens.
   */
  onRelease: ((head: number, order: number) => void) | null = null;

  constructor(
    ramBytes: number,
    private readonly inject: FaultInjector,
  ) {
    const frames = Math.floor(ramBytes / PAGE_SIZE);
    if (frames < HPAGE_PMD_NR * 4) throw new RangeError('RAM must be at least 8MiB');
    this.ramFrames = frames;
    this.nr = frames;
    this.highMark = frames;
    ({
      refcount: this.refcount,
      mapcount: this.mapcount,
      mapping: this.mapping,
      indexLo: this.indexLo,
      flags: this.flags,
      gen: this.gen,
      order: this.order,
      indexHi: this.indexHi,
    } = frameTables(frames, null));
    this.boundChanges();
    this.free = new Bitmap(frames);
    this.free.setRange(0, frames);
    this.free.changesWithin(this.changeRanges);
    this.freeFrames = frames;
    // A last block shorter than 2 MiB is never free throughout: no huge page can start in it.
    this.blockFree = new Uint16Array(Math.ceil(frames / HPAGE_PMD_NR)).fill(HPAGE_PMD_NR);
    if (frames % HPAGE_PMD_NR !== 0) this.blockFree[this.blockFree.length - 1] = frames % HPAGE_PMD_NR;
    this.freeBlocks = Math.floor(frames / HPAGE_PMD_NR);
    // The zero page and the huge zero page are reserved for good.
    this.take(this.zeroPfn, 0);
    this.flags[this.zeroPfn] |= PG.reserved;
    const huge = this.allocHugeBlock();
    this.take(huge, 9);
    for (let i = 0; i < HPAGE_PMD_NR; i++) this.flags[huge + i] |= PG.reserved;
    this.hugeZeroPfn = huge;
  }

  isZeroPfn(pfn: number): boolean {
    return pfn === this.zeroPfn || (pfn >= this.hugeZeroPfn && pfn < this.hugeZeroPfn + F_HPAGE_NR);
  }

  isRam(pfn: number): boolean {
    return pfn >= 0 && pfn < this.ramFrames;
  }

  /** ZONE_DEVICE frames all lie beyond RAM, in the ranges of `pagemaps`. */
  isDevice(pfn: number): boolean {
    return pfn >= this.ramFrames && pfn < this.nr;
  }

  /** The device page map a frame belongs to (found by PFN range, as the kernel's xarray of pgmaps). */
  pagemapOf(pfn: number): PagemapRef | null {
    if (pfn < this.ramFrames || pfn >= this.nr) return null;
    const last = this.lastPagemap;
    if (last !== null && pfn >= last.firstPfn && pfn < last.firstPfn + last.nrPages) return last;
    let lo = 0;
    let hi = this.pagemaps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const pm = this.pagemaps[mid];
      if (pfn < pm.firstPfn) hi = mid - 1;
      else if (pfn >= pm.firstPfn + pm.nrPages) lo = mid + 1;
      else {
        this.lastPagemap = pm;
        return pm;
      }
    }
    return null;
  }

  private lastPagemap: PagemapRef | null = null;

  isUsed(pfn: number): boolean {
    return (this.flags[pfn] & F_USED) !== 0;
  }

  /** The head page of the folio `pfn` belongs to. */
  head(pfn: number): number {
    if ((this.flags[pfn] & F_TAIL) === 0) return pfn;
    // Tails of an order-n folio: the head is the order-aligned frame below with PG.head.
    let h = pfn - 1;
    while ((this.flags[h] & F_HEAD) === 0) h--;
    return h;
  }

  folioOrder(pfn: number): number {
    return this.order[this.head(pfn)];
  }

  folioNr(pfn: number): number {
    return 1 << this.folioOrder(pfn);
  }

  /**
   * Allocates 2^order frames of RAM (order 0 or 9). Returns the PFN or -ENOMEM. Does not reclaim:
   * callers in mm/ go through vmscan's allocation wrapper, which does.
   */
  alloc(order: number, site: string | null): number {
    if (site !== null && this.inject.shouldFail(site)) return -Errno.ENOMEM;
    let pfn: number;
    if (order === 0) {
      if (this.freeFrames === 0) return -Errno.ENOMEM;
      pfn = this.free.findNextSet(this.cursor);
      if (pfn >= this.ramFrames) pfn = this.free.findNextSet(0);
      if (pfn >= this.ramFrames) return -Errno.ENOMEM;
      this.cursor = pfn + 1;
    } else {
      pfn = this.allocHugeBlock();
      if (pfn < 0) return -Errno.ENOMEM;
    }
    this.take(pfn, order);
    return pfn;
  }

  /** The free 2 MiB block of RAM highest in memory, or -ENOMEM. */
  private allocHugeBlock(): number {
    if (this.freeBlocks === 0) return -Errno.ENOMEM;
    const blockFree = this.blockFree;
    for (let b = Math.floor(this.ramFrames / HPAGE_PMD_NR) - 1; b >= 0; b--) {
      if (blockFree[b] === HPAGE_PMD_NR) return b * HPAGE_PMD_NR;
    }
    return -Errno.ENOMEM;
  }

  private take(pfn: number, order: number): void {
    const n = 1 << order;
    if (order === 0) {
      if (pfn >= this.lowMark) this.lowMark = pfn + 1;
      this.free.clear(pfn);
    } else {
      this.highMark = Math.min(this.highMark, pfn);
      this.free.clearRange(pfn, n);
    }
    this.freeFrames -= n;
    // Order 0 or 9: the frames lie in one block.
    const b = pfn >>> HPAGE_PMD_ORDER;
    if (this.blockFree[b] === HPAGE_PMD_NR) this.freeBlocks--;
    this.blockFree[b] -= n;
    this.refcount[pfn] = 1;
    this.order[pfn] = order;
    this.flags[pfn] = F_USED | (order > 0 ? F_HEAD : 0);
    for (let i = 1; i < n; i++) this.flags[pfn + i] = F_USED | F_TAIL;
  }

  /** Models folio_get(). */
  get(pfn: number, n = 1): void {
    this.refcount[this.head(pfn)] += n;
  }

  /** Models folio_put(): frees the folio (or hands it back to its device) when the last reference goes. */
  put(pfn: number, n = 1): void {
    const h = this.head(pfn);
    const r = (this.refcount[h] -= n);
    if (r < 0) throw new Error(`refcount underflow on pfn ${h}`);
    if (r === 0) this.release(h);
  }

  private release(h: number): void {
    const order = this.order[h];
    const n = 1 << order;
    if ((this.flags[h] & PG.reserved) !== 0) throw new Error(`freeing reserved pfn ${h}`);
    const pm = this.pagemapOf(h);
    for (let i = 0; i < n; i++) {
      const p = h + i;
      this.contents.delete(p);
      this.mapcount[p] = 0;
      this.mapping[p] = 0;
      this.indexLo[p] = 0;
      this.indexHi[p] = 0;
      this.gen[p] = (this.gen[p] + 1) & 0xffff;
    }
    this.setPins(h, 0);
    if (this.entireMapcount.size !== 0) this.entireMapcount.delete(h);
    if (this.mmIds.size !== 0) this.mmIds.delete(h);
    this.onRelease?.(h, order);
    if (pm !== null) {
      // ZONE_DEVICE pages never return to the allocator; the driver gets them back.
      for (let i = 0; i < n; i++)
        this.flags[h + i] = PG.used | (i === 0 ? (order > 0 ? PG.head : 0) : PG.tail);
      this.refcount[h] = 0;
      pm.hooks.folioFree(h, order);
      return;
    }
    for (let i = 0; i < n; i++) this.flags[h + i] = 0;
    this.order[h] = 0;
    this.free.setRange(h, n);
    this.freeFrames += n;
    const b = h >>> HPAGE_PMD_ORDER;
    this.blockFree[b] += n;
    if (this.blockFree[b] === HPAGE_PMD_NR) this.freeBlocks++;
  }

  /**
   * Splits a PTE-mapped large folio into order-0 folios (models __split_folio_to_order): each
   * subpage becomes its own folio holding one reference per PTE that maps it, plus
   * `extraRefsEach`; subpages left with no reference are freed. The caller has checked that the
   * folio has no PMD mapping and no references beyond its PTE mappings.
   */
  splitFolio(h: number, extraRefsEach: number): void {
    const n = 1 << this.order[h];
    const keep = this.flags[h] & ~(PG.head | PG.tail | PG.anonExclusive | PG.deferredSplit);
    const mapping = this.mapping[h];
    const index = this.getIndex(h);
    for (let i = 0; i < n; i++) {
      const p = h + i;
      this.flags[p] = (this.flags[p] & PG.anonExclusive) | keep;
      this.order[p] = 0;
      this.refcount[p] = this.mapcount[p] + extraRefsEach;
      this.mapping[p] = mapping;
      this.setIndex(p, index + i);
    }
    this.entireMapcount.delete(h);
    // Order-0 folios keep no MM slots.
    this.mmIds.delete(h);
    this.setPins(h, 0);
    const pm = this.pagemapOf(h);
    if (pm?.hooks.folioSplit !== undefined) for (let i = 0; i < n; i++) pm.hooks.folioSplit(h, h + i);
    for (let i = 0; i < n; i++) if (this.refcount[h + i] === 0) this.release(h + i);
  }

  /** Registers a ZONE_DEVICE range of `nrPages` frames beyond everything so far; returns its first PFN. */
  addDeviceRange(nrPages: number, hooks: PagemapHooks): PagemapRef {
    const first = this.nr;
    const total = first + nrPages;
    if (total > this.flags.length) {
      // The tables grow by at least half their size, so a driver that adds its memory a chunk
      // at a time copies them a few times, not once per chunk.
      const n = Math.max(total, this.ramFrames + Math.ceil((this.flags.length - this.ramFrames) * 1.5));
      // Outside touchedRanges() every table holds zero, as the new ones do.
      Object.assign(this, frameTables(n, this, this.touchedRanges()));
      if (this.pinLo !== null) this.pinLo = grow(this.pinLo, n);
      this.boundChanges();
    }
    const ref: PagemapRef = { id: this.pagemaps.length + 1, firstPfn: first, nrPages, hooks };
    this.pagemaps.push(ref);
    // Device pages start idle with refcount 0, owned by their driver (like after memremap_pages).
    this.flags.fill(PG.used, first, total);
    this.nr = total;
    return ref;
  }

  /** Takes an idle device page for use (models zone_device_page_init / folio init with refcount 1). */
  initDevicePage(pfn: number, order = 0): void {
    const n = 1 << order;
    this.refcount[pfn] = 1;
    this.order[pfn] = order;
    this.flags[pfn] = PG.used | (order > 0 ? PG.head : 0);
    for (let i = 1; i < n; i++) {
      this.flags[pfn + i] = PG.used | PG.tail;
      this.refcount[pfn + i] = 0;
    }
  }

  /** Page contents, or null for a page never written (reads as zeros). */
  data(pfn: number): Uint8Array | null {
    return this.contents.get(pfn) ?? null;
  }

  /** Writable contents of a page, materialised on first write. */
  dataForWrite(pfn: number): Uint8Array {
    const d = this.contents.get(pfn);
    if (d !== undefined) return d;
    if (this.isZeroPfn(pfn)) throw new Error('write to the zero page');
    return this.contents.forWrite(pfn);
  }

  read(pfn: number, offset: number, dst: Uint8Array, dstOffset: number, len: number): void {
    this.contents.read(pfn, offset, dst, dstOffset, len);
  }

  write(pfn: number, offset: number, src: Uint8Array, srcOffset: number, len: number): void {
    if (this.isZeroPfn(pfn)) throw new Error('write to the zero page');
    this.contents.write(pfn, offset, src, srcOffset, len);
  }

  /** read() of one byte, returned. */
  byteAt(pfn: number, offset: number): number {
    return this.contents.byteAt(pfn, offset);
  }

  /** write() of the one byte `value`. */
  storeByte(pfn: number, offset: number, value: number): void {
    if (this.isZeroPfn(pfn)) throw new Error('write to the zero page');
    this.contents.storeByte(pfn, offset, value);
  }

  /** Zeroes `len` bytes at `offset` of a page (the zero page excepted); stores nothing new. */
  zero(pfn: number, offset: number, len: number): void {
    if (this.isZeroPfn(pfn)) throw new Error('write to the zero page');
    this.contents.zero(pfn, offset, len);
  }

  /** Models copy_highpage(). */
  copyPage(dst: number, src: number): void {
    this.contents.copy(dst, src);
  }

  /** Models clear_highpage(): contents become zero (and cost nothing again). */
  clearPage(pfn: number): void {
    this.contents.delete(pfn);
  }

  /** page->index. */
  getIndex(pfn: number): number {
    return this.indexHi[pfn] * 2 ** 32 + this.indexLo[pfn];
  }

  setIndex(pfn: number, index: number): void {
    this.indexLo[pfn] = index >>> 0;
    this.indexHi[pfn] = Math.floor(index / 2 ** 32);
  }

  /** FOLL_PIN pins on the folio whose head is `head`. */
  pinCount(head: number): number {
    if (this.pinLo === null) return 0;
    const lo = this.pinLo[head];
    return lo === 255 ? this.pinMany.get(head)! : lo;
  }

  /** Adds `n` (possibly negative) pins to the folio whose head is `head`. */
  addPins(head: number, n: number): void {
    const v = this.pinCount(head) + n;
    if (v < 0) throw new Error(`pin count underflow on pfn ${head}`);
    this.setPins(head, v);
  }

  private setPins(head: number, v: number): void {
    let pins = this.pinLo;
    if (pins === null) {
      if (v === 0) return;
      pins = this.pinLo = new Uint8Array(this.flags.length);
      this.boundChanges();
    }
    if (v < 255) {
      if (pins[head] === 255) this.pinMany.delete(head);
      pins[head] = v;
    } else {
      pins[head] = 255;
      this.pinMany.set(head, v);
    }
  }

  /** Folio heads with pins and their counts, for oracles. */
  *pinnedHeads(): Generator<[number, number]> {
    const pins = this.pinLo;
    if (pins === null) return;
    for (const [lo, hi] of this.touchedRanges()) {
      for (let pfn = lo; pfn < hi; pfn++) if (pins[pfn] !== 0) yield [pfn, this.pinCount(pfn)];
    }
  }

  /** Models folio_maybe_dma_pinned(). */
  maybeDmaPinned(pfn: number): boolean {
    return this.pinLo !== null && this.pinLo[this.head(pfn)] !== 0;
  }

  /**
   * The PFN ranges [start, end) that hold every frame ever allocated and every device frame:
   * frames outside them have always been free, with no flag and no count set.
   */
  touchedRanges(): [number, number][] {
    if (this.lowMark >= this.highMark) return [[0, this.nr]];
    return [
      [0, this.lowMark],
      [this.highMark, this.nr],
    ];
  }

  /**
   * Tells snapshots (lib/snapshot.ts) that the per-frame arrays change only within
   * touchedRanges(): a capture copies those frames, and a restore writes them back, not every
   * frame of RAM.
   */
  private boundChanges(): void {
    const arrays: ArrayBufferView[] = [
      this.refcount,
      this.mapcount,
      this.flags,
      this.order,
      this.gen,
      this.mapping,
      this.indexLo,
      this.indexHi,
    ];
    if (this.pinLo !== null) arrays.push(this.pinLo);
    // A frame never allocated has every field zero.
    changesWithin(arrays, this.changeRanges, { zero: true });
  }

  /** What boundChanges() names, one function for the tables made and grown (see changesWithin()). */
  private readonly changeRanges = (): [number, number][] => this.touchedRanges();

  /**
   * touchedRanges() without the huge zero folio, whose 512 frames are reserved for good (freeing
   * a reserved frame throws, and nothing clears the bit): the frames a check of every frame's
   * counts needs to look at.
   */
  checkedRanges(): [number, number][] {
    const zeroLo = this.hugeZeroPfn;
    const zeroHi = zeroLo + F_HPAGE_NR;
    const out: [number, number][] = [];
    for (const [lo, hi] of this.touchedRanges()) {
      if (zeroLo < 0 || zeroHi <= lo || zeroLo >= hi) {
        out.push([lo, hi]);
        continue;
      }
      if (lo < zeroLo) out.push([lo, zeroLo]);
      if (zeroHi < hi) out.push([zeroHi, hi]);
    }
    return out;
  }

  /** Frames of RAM in use, not counting the reserved zero pages. */
  usedRamFrames(): number {
    return this.ramFrames - this.freeFrames - 1 - HPAGE_PMD_NR;
  }
}
