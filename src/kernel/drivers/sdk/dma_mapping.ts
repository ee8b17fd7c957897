/**
 * The streaming DMA API for drivers (include/linux/dma-mapping.h): dma_map_page() gives the
 * device a bus address for a page, dma_unmap_page() takes it back. The DMA API holds no page
 * reference: the driver must keep the page alive (a pin, a reference) for as long as it is mapped.
 * Every live mapping is in System.dma, which the frame-reference oracle checks.
 */
import { DMA, type DmaDataDirection, type DmaMapping } from '../../dma/mapping.ts';
import { PAGE_SIZE } from '../../../lib/units.ts';
import { Errno } from '../../errno.ts';
import { callSite, uafViolation } from '../../uaf.ts';
import type { Device } from './device.ts';

export { DMA, type DmaDataDirection, type DmaMapping };

/** DMA_MAPPING_ERROR. */
export const DMA_MAPPING_ERROR = -1;

/** Models dma_map_page() of a whole page: the bus address, or DMA_MAPPING_ERROR (injectable at 'dma_map_page'). */
export function dmaMapPage(dev: Device, pfn: number, dir: DmaDataDirection): number {
  const sys = dev.sys;
  if (pfn < 0 || pfn >= sys.phys.nr || sys.inject.shouldFail('dma_map_page')) return DMA_MAPPING_ERROR;
  sys.trace.count('dma_map_page');
  return sys.dma.add(dev.name, pfn, sys.phys.gen[pfn], dir);
}

/** Models dma_mapping_error(). */
export function dmaMappingError(addr: number): boolean {
  return addr === DMA_MAPPING_ERROR;
}

/** How a use-after-free report names a mapping. */
function mappingName(m: DmaMapping): string {
  return `DMA mapping 0x${m.dmaAddr.toString(16)} of pfn ${m.pfn} (${m.device})`;
}

/**
 * The live mapping at `addr` for `kernelFn`, or null after reporting what is wrong: an address
 * unmapped earlier is a use-after-free naming both places; one never mapped (or another device's)
 * is what CONFIG_DMA_API_DEBUG reports, here a 'dma' violation. A mapping whose page was freed
 * while it was mapped is a use-after-free of the page, naming where it was freed.
 */
function liveMapping(dev: Device, addr: number, kernelFn: string): DmaMapping | null {
  const sys = dev.sys;
  const m = sys.dma.get(addr);
  if (m === undefined || m.device !== dev.name) {
    const freed = sys.freed.dmaUnmappedAt(addr);
    if (freed !== undefined) sys.sched.report(uafViolation(sys, freed, callSite(sys, kernelFn)));
    else
      sys.sched.report({
        oracle: 'dma',
        message: `${dev.name}: ${kernelFn} of bus address 0x${addr.toString(16)} it did not map`,
      });
    return null;
  }
  if (sys.phys.gen[m.pfn] !== m.gen) {
    const site = sys.freed.frameFreedAt(m.pfn, m.gen) ?? 'an unrecorded put';
    sys.sched.report(
      uafViolation(sys, { what: `page ${m.pfn} of ${mappingName(m)}`, site }, callSite(sys, kernelFn)),
    );
  }
  return m;
}

/**
 * Models dma_unmap_page(). Unmapping an address twice is a use-after-free of the mapping;
 * unmapping one that was never mapped is a 'dma' violation (CONFIG_DMA_API_DEBUG's report).
 */
export function dmaUnmapPage(dev: Device, addr: number): void {
  const m = liveMapping(dev, addr, 'dma_unmap_page');
  if (m === null) return;
  dev.sys.dma.remove(addr);
  markDmaUnmapped(dev, m);
}

function markDmaUnmapped(dev: Device, m: DmaMapping): void {
  dev.sys.freed.markDmaUnmapped(m.dmaAddr, {
    what: mappingName(m),
    site: callSite(dev.sys, 'dma_unmap_page'),
  });
}

/** Models dma_sync_single_for_cpu(): the CPU may now read what the device wrote. */
export function dmaSyncSingleForCpu(dev: Device, addr: number): void {
  liveMapping(dev, addr, 'dma_sync_single_for_cpu');
}

/** Models dma_sync_single_for_device(): the device may now read what the CPU wrote. */
export function dmaSyncSingleForDevice(dev: Device, addr: number): void {
  liveMapping(dev, addr, 'dma_sync_single_for_device');
}

/**
 * The device reads (`write` false) or writes its bus address `addr` + `offset` (within the
 * page), as a bus master does. Returns 0, or -EFAULT when the address is not mapped (an IOMMU
 * fault); a mapping unmapped earlier or whose page was freed is a use-after-free.
 */
export function deviceDmaRw(
  dev: Device,
  addr: number,
  offset: number,
  buf: Uint8Array,
  write: boolean,
): number {
  if (offset < 0 || offset + buf.length > PAGE_SIZE) return -Errno.EINVAL;
  const m = liveMapping(dev, addr, write ? 'device DMA write' : 'device DMA read');
  if (m === null || dev.sys.phys.gen[m.pfn] !== m.gen) return -Errno.EFAULT;
  if (write && m.dir === DMA.TO_DEVICE) return -Errno.EFAULT;
  if (!write && m.dir === DMA.FROM_DEVICE) return -Errno.EFAULT;
  if (write) dev.sys.phys.write(m.pfn, offset, buf, 0, buf.length);
  else dev.sys.phys.read(m.pfn, offset, buf, 0, buf.length);
  return 0;
}
