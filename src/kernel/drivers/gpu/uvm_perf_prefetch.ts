/**
 * The prefetch policies of the UVM-style driver, as pure functions over one VA block's page
 * masks (index i is page i of the block's 2 MiB window). `faulted` marks the pages that faulted
 * in this batch, `resident` those already in GPU memory; each policy returns the mask of pages
 * to bring in (faulted ones included), before the caller clips it to the block and drops
 * resident and pinned pages.
 *
 * - 'ondemand': the faulted pages only.
 * - 'random4k': each faulted page plus `randomPages` pages drawn uniformly from the window (a
 *   drawn page already resident is wasted), after UVMSmart's Random-4KB prefetcher.
 * - 'seq64k': each faulted page grows to its aligned `seqGranule` group (UVMSmart's
 *   Sequential-local 64KB).
 * - 'tree': models uvm_perf_prefetch_get_hint() / compute_prefetch_region(): the faulted region
 *   first grows to whole big pages (64 KiB); then, over the bitmap tree of the window, the largest
 *   subtree holding a faulted page whose resident-or-faulted pages exceed `threshold` percent is
 *   prefetched whole.
 */
import type { Prng } from '../../../lib/prng.ts';
import { UVM_BIG_PAGE_SIZE, UVM_PAGES_PER_BLOCK, type UvmTunables } from './uvm_types.ts';

const BIG_PAGE_PAGES = UVM_BIG_PAGE_SIZE / 4096;

/** The pages to migrate for one block under `t.prefetch`; `out` receives 1 for each. */
export function uvmPerfPrefetchRegion(
  t: UvmTunables,
  faulted: Uint8Array,
  resident: Uint8Array,
  rng: Prng,
  out: Uint8Array,
): void {
  out.set(faulted);
  let nfaulted = 0;
  for (let i = 0; i < UVM_PAGES_PER_BLOCK; i++) nfaulted += faulted[i];
  if (nfaulted < t.prefetchMinFaults) return;
  switch (t.prefetch) {
    case 'ondemand':
      return;
    case 'random4k':
      for (let i = 0; i < UVM_PAGES_PER_BLOCK; i++) {
        if (faulted[i] === 0) continue;
        for (let k = 0; k < t.randomPages; k++) out[rng.int(UVM_PAGES_PER_BLOCK)] = 1;
      }
      return;
    case 'seq64k':
      growToGranules(faulted, out, Math.max(1, Math.floor(t.seqGranule / 4096)));
      return;
    case 'tree':
      treePrefetch(t.prefetchThreshold, faulted, resident, out);
      return;
  }
}

function growToGranules(faulted: Uint8Array, out: Uint8Array, granule: number): void {
  for (let i = 0; i < UVM_PAGES_PER_BLOCK; i++) {
    if (faulted[i] === 0) continue;
    const base = i - (i % granule);
    out.fill(1, base, Math.min(UVM_PAGES_PER_BLOCK, base + granule));
  }
}

/** Models compute_prefetch_region() over the block's bitmap tree. */
function treePrefetch(threshold: number, faulted: Uint8Array, resident: Uint8Array, out: Uint8Array): void {
  // Big-page expansion of the faulted region.
  const grown = new Uint8Array(UVM_PAGES_PER_BLOCK);
  growToGranules(faulted, grown, BIG_PAGE_PAGES);
  // Prefix sums of resident-or-faulted pages give any subtree's population in O(1).
  const pop = new Uint16Array(UVM_PAGES_PER_BLOCK + 1);
  for (let i = 0; i < UVM_PAGES_PER_BLOCK; i++) pop[i + 1] = pop[i] + (grown[i] | resident[i]);
  out.set(grown);
  for (let i = 0; i < UVM_PAGES_PER_BLOCK; i++) {
    if (faulted[i] === 0) continue;
    let best = -1;
    let bestSize = 0;
    for (let size = BIG_PAGE_PAGES * 2; size <= UVM_PAGES_PER_BLOCK; size *= 2) {
      const base = i - (i % size);
      const n = pop[base + size] - pop[base];
      if (n * 100 > threshold * size) {
        best = base;
        bestSize = size;
      }
    }
    if (best >= 0) out.fill(1, best, best + bestSize);
  }
}

/**
 * Accounting for the UVMSmart cost model, not driver behaviour: how many of a block's `faulted`
 * pages would be far faults if they were serviced one at a time in address order, each fault's
 * pages (under `t.prefetch`) counting as brought in for the ones after it. `random4k` draws
 * nothing here: each of its faults counts.
 */
export function uvmPerfPrefetchFarFaults(t: UvmTunables, faulted: Uint8Array, resident: Uint8Array): number {
  let far = 0;
  if (t.prefetch === 'ondemand' || t.prefetch === 'random4k') {
    for (let i = 0; i < UVM_PAGES_PER_BLOCK; i++) far += faulted[i];
    return far;
  }
  const covered = new Uint8Array(resident);
  const one = new Uint8Array(UVM_PAGES_PER_BLOCK);
  const region = new Uint8Array(UVM_PAGES_PER_BLOCK);
  const granule = Math.max(1, Math.floor(t.seqGranule / 4096));
  for (let i = 0; i < UVM_PAGES_PER_BLOCK; i++) {
    if (faulted[i] === 0 || covered[i] !== 0) continue;
    far++;
    if (t.prefetch === 'seq64k') {
      const base = i - (i % granule);
      covered.fill(1, base, Math.min(UVM_PAGES_PER_BLOCK, base + granule));
      continue;
    }
    one[i] = 1;
    region.fill(0);
    treePrefetch(t.prefetchThreshold, one, covered, region);
    one[i] = 0;
    for (let k = 0; k < UVM_PAGES_PER_BLOCK; k++) covered[k] |= region[k];
  }
  return far;
}
