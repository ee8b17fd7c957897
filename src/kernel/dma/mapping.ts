/**
 * Models the part of kernel/dma/mapping.c that matters to a memory model: which page frames a
 * device can reach by DMA. dma_map_page() hands the device a bus address for a frame; nothing in
 * the DMA API takes a page reference, so the driver must keep the page alive (a pin or a
 * reference) until dma_unmap_page(). The table records every live mapping with the frame's
 * generation, so the frame-reference oracle can report a mapping whose frame was freed or
 * reused while the device could still reach it.
 */
import { PAGE_SIZE } from '../../lib/units.ts';

/** enum dma_data_direction. */
export const DMA = { BIDIRECTIONAL: 0, TO_DEVICE: 1, FROM_DEVICE: 2 } as const;
export type DmaDataDirection = (typeof DMA)[keyof typeof DMA];

/** One live streaming mapping. */
export interface DmaMapping {
  /** The bus address the device uses (page aligned). */
  readonly dmaAddr: number;
  readonly pfn: number;
  /** sys.phys.gen[pfn] when the mapping was made. */
  readonly gen: number;
  readonly dir: DmaDataDirection;
  /** The device that mapped it (its name, for reports). */
  readonly device: string;
}

/**
 * Every live DMA mapping of one System, by bus address. Bus addresses are handed out from a
 * counter above 4GiB, so they never look like a physical address and never repeat in a run.
 */
export class DmaMappingTable {
  private readonly byAddr = new Map<number, DmaMapping>();
  /** How many live mappings each frame has. */
  private readonly byPfn = new Map<number, number>();
  private nextAddr = 0x1_0000_0000;

  /** Records a mapping; returns its bus address. */
  add(device: string, pfn: number, gen: number, dir: DmaDataDirection): number {
    const dmaAddr = this.nextAddr;
    this.nextAddr += PAGE_SIZE;
    this.byAddr.set(dmaAddr, { dmaAddr, pfn, gen, dir, device });
    this.byPfn.set(pfn, (this.byPfn.get(pfn) ?? 0) + 1);
    return dmaAddr;
  }

  /** Removes a mapping; the mapping that was there, or undefined if none was. */
  remove(dmaAddr: number): DmaMapping | undefined {
    const m = this.byAddr.get(dmaAddr);
    if (m !== undefined) {
      this.byAddr.delete(dmaAddr);
      const n = (this.byPfn.get(m.pfn) ?? 1) - 1;
      if (n > 0) this.byPfn.set(m.pfn, n);
      else this.byPfn.delete(m.pfn);
    }
    return m;
  }

  /** Whether a live mapping reaches any of the `n` frames from `pfn`. */
  mapsFrames(pfn: number, n: number): boolean {
    if (this.byPfn.size === 0) return false;
    for (let i = 0; i < n; i++) if (this.byPfn.has(pfn + i)) return true;
    return false;
  }

  get(dmaAddr: number): DmaMapping | undefined {
    return this.byAddr.get(dmaAddr);
  }

  /** Every live mapping, oldest first (what the frame-reference and teardown oracles walk). */
  entries(): IterableIterator<DmaMapping> {
    return this.byAddr.values();
  }

  get size(): number {
    return this.byAddr.size;
  }
}
