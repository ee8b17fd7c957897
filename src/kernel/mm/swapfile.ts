import { PAGE_SIZE } from '../../lib/units.ts';

/**
 * Models a swap device: slots with a use count (swap_map) and the data written to them.
 * Slot 0 is never handed out, like the kernel's header page.
 */
export class SwapDevice {
  /**
   * swap_map: use count per slot, for the slots handed out so far (slots are handed out in order
   * from the cursor, so the array grows as swap is used; a big device costs nothing until then).
   */
  count: Uint8Array;
  readonly data = new Map<number, Uint8Array>();
  used = 0;
  private cursor = 1;

  constructor(readonly nslots: number) {
    this.count = new Uint8Array(Math.min(Math.max(1, nslots), 64));
  }

  /** Slots 1..highWater-1 are all that were ever handed out. */
  get highWater(): number {
    return this.count.length;
  }

  get enabled(): boolean {
    return this.nslots > 1;
  }

  /** Every slot is in use (get_nr_swap_pages() is 0). */
  get full(): boolean {
    return this.used >= this.nslots - 1;
  }

  /** Models folio_alloc_swap() for one page: a free slot with count 1, or -1. */
  alloc(): number {
    // A full device fails at once, as get_nr_swap_pages() makes folio_alloc_swap() do.
    if (this.full) return -1;
    for (let n = 1; n < this.nslots; n++) {
      const s = this.cursor;
      this.cursor = this.cursor + 1 >= this.nslots ? 1 : this.cursor + 1;
      if (s >= this.count.length) {
        const bigger = new Uint8Array(Math.min(this.nslots, this.count.length * 2));
        bigger.set(this.count);
        this.count = bigger;
      }
      if (this.count[s] === 0) {
        this.count[s] = 1;
        this.used++;
        return s;
      }
    }
    return -1;
  }

  /** Models swap_duplicate(): another PTE refers to the slot (fork). */
  dup(slot: number): void {
    this.count[slot]++;
  }

  /** Models swap_free(): drops one reference; the slot and its data go with the last. */
  free(slot: number): void {
    if (this.count[slot] === 0) throw new Error(`swap slot ${slot} freed twice`);
    if (--this.count[slot] === 0) {
      this.data.delete(slot);
      this.used--;
    }
  }

  write(slot: number, page: Uint8Array | null): void {
    if (page === null) this.data.delete(slot);
    else this.data.set(slot, page.slice());
  }

  /** The page data in `slot`, or null if it was all zeros. */
  read(slot: number): Uint8Array | null {
    return this.data.get(slot) ?? null;
  }

  get freeBytes(): number {
    return (this.nslots - 1 - this.used) * PAGE_SIZE;
  }
}
