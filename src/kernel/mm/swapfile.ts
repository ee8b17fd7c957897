import { PAGE_SIZE } from '../../lib/units.ts';

/**
 * Models a swap device: slots with a use count (swap_map) and the data written to them.
 * Slot 0 is never handed out, like the kernel's header page.
 */
export class SwapDevice {
  /**
   * swap_map: the use count of each slot handed out so far. It grows with the slots in use, not
   * with the device size, so a System with a large default swap costs nothing until it swaps
   * (each explored schedule builds a fresh System).
   */
  count: Uint8Array;
  readonly data = new Map<number, Uint8Array>();
  used = 0;
  /** Slots below this have been handed out at least once; the rest are untouched. */
  private extent = 1;
  /** Where the search for a freed slot resumes once every slot has been handed out. */
  private cursor = 1;

  constructor(readonly nslots: number) {
    this.count = new Uint8Array(Math.min(Math.max(1, nslots), 1024));
  }

  get enabled(): boolean {
    return this.nslots > 1;
  }

  /** One past the highest slot ever handed out: slots at or above it are free. */
  get highWater(): number {
    return this.extent;
  }

  /**
   * Models folio_alloc_swap() for one page: a free slot with count 1, or -1. Slots are handed out
   * upward; once the top is reached the search wraps and reuses freed ones.
   */
  alloc(): number {
    if (this.extent < this.nslots) {
      const s = this.extent++;
      if (s >= this.count.length) {
        const grown = new Uint8Array(Math.min(this.nslots, this.count.length * 2));
        grown.set(this.count);
        this.count = grown;
      }
      return this.take(s);
    }
    for (let n = 1; n < this.nslots; n++) {
      const s = this.cursor;
      this.cursor = this.cursor + 1 >= this.nslots ? 1 : this.cursor + 1;
      if (this.count[s] === 0) return this.take(s);
    }
    return -1;
  }

  private take(s: number): number {
    this.count[s] = 1;
    this.used++;
    return s;
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
