/**
 * The streaming DMA API for drivers (include/linux/dma-mapping.h): dma_map_page() gives the
 * device a bus address for a page, dma_unmap_page() takes it back. The DMA API holds no page
 * reference: the driver must keep the page alive (a pin, a reference) for as long as it is mapped.
 * Every live mapping is in System.dma, which the frame-reference oracle checks.
 */
import { DMA, type DmaDataDirection, type DmaMapping } from '../../dma/mapping.ts';
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

/**
 * Models dma_unmap_page(). Unmapping an address that is not mapped is what CONFIG_DMA_API_DEBUG
 * reports; here it is a 'dma' violation.
 */
export function dmaUnmapPage(dev: Device, addr: number): void {
  const m = dev.sys.dma.remove(addr);
  if (m === undefined || m.device !== dev.name) {
    dev.sys.sched.report({
      oracle: 'dma',
      message: `${dev.name}: dma_unmap_page of bus address 0x${addr.toString(16)} it did not map`,
    });
  }
}
