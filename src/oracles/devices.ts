/**
 * Oracles 1 and 2 over what drivers register on System: every live device page table in
 * sys.deviceMirrors (the SDK's DevicePageTable and the built-in devices') and every live DMA
 * mapping in sys.dma.
 */
import type { System } from '../kernel/system.ts';
import type { Violation } from '../sched/types.ts';
import { checkFrameRefs, checkMirror } from './mirror.ts';

/** Mirror coherence and frame references of every live device page table. */
export function checkDeviceMirrors(sys: System): Violation[] {
  const out: Violation[] = [];
  for (const view of sys.deviceMirrors) {
    if (!view.live) continue;
    const entries = [...view.entries()];
    if (entries.length === 0) continue;
    out.push(...checkMirror(sys, view.mm, entries, view.name));
    out.push(...checkFrameRefs(sys, entries, `${view.name} page table`));
  }
  return out;
}

/** No live DMA mapping refers to a frame freed or reused since it was mapped. */
export function checkDma(sys: System): Violation[] {
  if (sys.dma.size === 0) return [];
  const out: Violation[] = [];
  const byDevice = new Map<string, { pfn: number; gen: number }[]>();
  for (const m of sys.dma.entries()) {
    let list = byDevice.get(m.device);
    if (list === undefined) byDevice.set(m.device, (list = []));
    list.push({ pfn: m.pfn, gen: m.gen });
  }
  for (const [device, refs] of byDevice) out.push(...checkFrameRefs(sys, refs, `${device} DMA mappings`));
  return out;
}
