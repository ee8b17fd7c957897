import { PAGE_SIZE } from '../../lib/units.ts';

/** Pages per slab chunk: 64 pages make a 256 KiB buffer. */
const CHUNK_PAGES = 64;

/**
 * The data of written pages. Pages never written (and the zero pages) have no entry and read as
 * zeros. Data lives in large shared buffers carved into 4 KiB slots, so a first write costs a
 * slot from a free list rather than a fresh 4 KiB allocation, and freed slots are reused.
 */
export class PageContents {
  private readonly slotOf = new Map<number, number>();
  private readonly views: Uint8Array[] = [];
  private readonly free: number[] = [];

  get size(): number {
    return this.slotOf.size;
  }

  has(pfn: number): boolean {
    return this.slotOf.has(pfn);
  }

  /** The page's data, or undefined for a page that reads as zeros. The view stays valid until delete(). */
  get(pfn: number): Uint8Array | undefined {
    const s = this.slotOf.get(pfn);
    return s === undefined ? undefined : this.views[s];
  }

  /** The page's data for writing: a zeroed slot on first use. */
  forWrite(pfn: number): Uint8Array {
    const s = this.slotOf.get(pfn);
    if (s !== undefined) return this.views[s];
    const slot = this.takeSlot();
    this.slotOf.set(pfn, slot);
    return this.views[slot];
  }

  /** Stores a copy of `data` (one page) as the page's contents. */
  set(pfn: number, data: Uint8Array): void {
    this.forWrite(pfn).set(data.subarray(0, PAGE_SIZE));
  }

  delete(pfn: number): boolean {
    const s = this.slotOf.get(pfn);
    if (s === undefined) return false;
    this.slotOf.delete(pfn);
    this.free.push(s);
    return true;
  }

  *values(): Generator<Uint8Array> {
    for (const s of this.slotOf.values()) yield this.views[s];
  }

  private takeSlot(): number {
    const reused = this.free.pop();
    if (reused !== undefined) {
      this.views[reused].fill(0);
      return reused;
    }
    const first = this.views.length;
    const chunk = new ArrayBuffer(CHUNK_PAGES * PAGE_SIZE);
    for (let i = 0; i < CHUNK_PAGES; i++) this.views.push(new Uint8Array(chunk, i * PAGE_SIZE, PAGE_SIZE));
    for (let i = CHUNK_PAGES - 1; i > 0; i--) this.free.push(first + i);
    return first;
  }
}
