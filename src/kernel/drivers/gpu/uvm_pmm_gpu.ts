/**
 * GPU physical memory of the UVM-style driver (after uvm_pmm_gpu.c): device memory is handed
 * out in 2 MiB root chunks, each wholly owned by one VA block (page i of the block's window
 * lives at page i of its chunk), and evicted whole. The victim is the least recently allocated
 * used chunk (the driver moves a chunk to the tail of its USED list when a block allocates from
 * it, not when it is accessed), or, as alternatives for policy studies, the least recently
 * accessed chunk or a random one.
 */
import type { Prng } from '../../../lib/prng.ts';
import { UVM_PAGES_PER_BLOCK, UvmRootChunk, type UvmEvictionPolicy, type UvmVaBlock } from './uvm_types.ts';

export class UvmPmm {
  readonly chunks: UvmRootChunk[] = [];
  private readonly free: UvmRootChunk[] = [];
  /** Bumped on every allocation and access the lists record. */
  tick = 0;

  constructor(
    readonly firstPfn: number,
    nrChunks: number,
    private readonly rng: Prng,
  ) {
    for (let i = 0; i < nrChunks; i++)
      this.chunks.push(new UvmRootChunk(i, firstPfn + i * UVM_PAGES_PER_BLOCK));
    for (let i = nrChunks - 1; i >= 0; i--) this.free.push(this.chunks[i]);
  }

  get freeChunks(): number {
    return this.free.length;
  }

  get usedChunks(): number {
    return this.chunks.length - this.free.length;
  }

  /** Models uvm_pmm_gpu_alloc() of a root chunk for `block` without eviction: the chunk or null. */
  alloc(block: UvmVaBlock): UvmRootChunk | null {
    const c = this.free.pop();
    if (c === undefined) return null;
    c.block = block;
    c.used = 0;
    c.allocTick = c.accessTick = ++this.tick;
    block.chunk = c;
    return c;
  }

  /** The chunk and page index of device frame `pfn`, or null if it is not ours. */
  chunkOf(pfn: number): UvmRootChunk | null {
    const i = Math.floor((pfn - this.firstPfn) / UVM_PAGES_PER_BLOCK);
    return i >= 0 && i < this.chunks.length ? this.chunks[i] : null;
  }

  /** A page of `chunk` was freed (folio_free): the chunk goes back when its last page does. */
  pageFreed(chunk: UvmRootChunk, page: number): void {
    const block = chunk.block;
    if (block === null) return;
    block.resident[page] = 0;
    if (--chunk.used > 0) return;
    block.chunk = null;
    chunk.block = null;
    chunk.used = 0;
    this.free.push(chunk);
  }

  /** Models pick_root_chunk_to_evict(): the victim among used chunks under `policy`, or null. */
  pickVictim(policy: UvmEvictionPolicy, exclude: UvmRootChunk | null = null): UvmRootChunk | null {
    let best: UvmRootChunk | null = null;
    const used = this.chunks.filter((c) => c.block !== null && c !== exclude);
    if (used.length === 0) return null;
    if (policy === 'random') return used[this.rng.int(used.length)];
    for (const c of used) {
      const key = policy === 'alloc' ? c.allocTick : c.accessTick;
      if (best === null || key < (policy === 'alloc' ? best.allocTick : best.accessTick)) best = c;
    }
    return best;
  }
}
