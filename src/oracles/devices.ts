/**
 * Oracles 1 and 2 over what drivers register on System: every live device page table in
 * sys.deviceMirrors (the SDK's DevicePageTable and the built-in devices') and every live DMA
 * mapping in sys.dma.
 */
import type { System } from '../kernel/system.ts';
import type { Violation } from '../sched/types.ts';
import { checkFrameRefs, checkMirror } from './mirror.ts';
import { devicePageFreed, uafViolation } from '../kernel/uaf.ts';

type MirrorView = { va: number; pfn: number; write: boolean; gen: number };

/** Mirror coherence and frame references of every live device page table. */
export function checkDeviceMirrors(sys: System): Violation[] {
  const out: Violation[] = [];
  for (const view of sys.deviceMirrors) {
    if (!view.live || view.size === 0) continue;
    const all = view.entries();
    const entries = Array.isArray(all) ? (all as readonly MirrorView[]) : [...all];
    if (entries.length === 0) continue;
    // Runs after every step explored: no spread of an empty list, and the list of RAM entries
    // is made only when some entry is not RAM.
    const mirror = checkMirror(sys, view.mm, entries, view.name);
    if (mirror.length > 0) out.push(...mirror);
    let devicePages = 0;
    for (let i = 0; i < entries.length; i++) if (sys.phys.isDevice(entries[i].pfn)) devicePages++;
    const ram = devicePages === 0 ? entries : entries.filter((e) => !sys.phys.isDevice(e.pfn));
    if (devicePages > 0) out.push(...checkDevicePages(sys, entries, view.name));
    const refs = checkFrameRefs(sys, ram, `${view.name} page table`);
    if (refs.length > 0) out.push(...refs);
  }
  return out;
}

/**
 * Device PTEs that still point at a device page after it went back to its driver (folio_free)
 * or after its memory was released (memunmap_pages): a use-after-free of device memory, named
 * with where the page was freed. The device can still reach the page through the entry.
 */
function checkDevicePages(
  sys: System,
  entries: readonly { va: number; pfn: number; gen: number }[],
  table: string,
): Violation[] {
  const phys = sys.phys;
  for (const e of entries) {
    if (!phys.isDevice(e.pfn)) continue;
    // A device folio keeps its references on the head page.
    if ((e.gen & 0xffff) === phys.gen[e.pfn] && phys.refcount[phys.head(e.pfn)] > 0) continue;
    const gen = (e.gen & 0xffff) === phys.gen[e.pfn] ? -1 : e.gen;
    return [
      uafViolation(
        sys,
        devicePageFreed(sys, e.pfn, gen),
        `the device PTE of 0x${e.va.toString(16)} in ${table}, still there after the free`,
      ),
    ];
  }
  return [];
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
