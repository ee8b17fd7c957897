/**
 * iommufd throughput: IOMMU_IOAS_MAP then IOMMU_IOAS_UNMAP of 1 GiB of 4 KiB pages (populated
 * private anonymous memory) with one and with two mock domains attached to the IOAS. The anchor
 * is the kernel's published VFIO type1 figure for 4 KiB pages: 16 GiB mapped in 0.28 s.
 */
import '../src/kernel/drivers/iommufd_selftest.ts';
import { IOMMU_TEST_OP_MOCK_DOMAIN } from '../src/kernel/drivers/iommufd_selftest.ts';
import {
  iommufdIoctl,
  iommufdOpen,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  setCapIpcLock,
  STRUCTS,
} from '../src/kernel/iommufd/index.ts';
import { MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src/kernel/mm/mman.ts';
import { System } from '../src/kernel/system.ts';
import { type BenchContext, type Figure, type Suite, check, medianNs, ratioFigure } from './figure.ts';

const GIB = 1024 ** 3;
/** VFIO type1, 4 KiB pages: 16 GiB in 0.28 s (the commit message of the iommufd series), in GiB/s. */
export const VFIO_TYPE1_4K_GIBPS = 16 / 0.28;

/** GiB/s of map + unmap of `bytes` with `domains` mock domains, median of `runs`. */
function mapUnmap(bytes: number, domains: number, runs: number): number {
  const sys = new System({ ram: bytes + 256 * 1024 * 1024, swap: 0, thp: 'never' });
  const p = sys.createProcess('bench', 0);
  setCapIpcLock(p, true);
  const buf = check(
    sys.mmap(p, 0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE),
    'mmap',
  );
  const fd = iommufdOpen(sys, p);
  const ioctl = (name: string, arg: Record<string, unknown>): number =>
    check(iommufdIoctl(sys, fd, name, arg), name);
  const alloc: Record<string, unknown> = { size: STRUCTS.IOMMU_IOAS_ALLOC.size };
  ioctl('IOMMU_IOAS_ALLOC', alloc);
  const ioasId = Number(alloc.out_ioas_id);
  // The first mock device attaches to the IOAS's automatic domain. A second domain is a paging
  // HWPT allocated on the IOAS: it joins the IOAS's domains at once, so every map fills both.
  const dev: Record<string, unknown> = {
    size: STRUCTS.IOMMU_TEST_CMD.size,
    op: IOMMU_TEST_OP_MOCK_DOMAIN,
    id: ioasId,
    mock_domain: {},
  };
  ioctl('IOMMU_TEST_CMD', dev);
  const idev = Number((dev.mock_domain as Record<string, unknown>).out_idev_id);
  for (let i = 1; i < domains; i++) {
    ioctl('IOMMU_HWPT_ALLOC', { size: STRUCTS.IOMMU_HWPT_ALLOC.size, flags: 0, dev_id: idev, pt_id: ioasId });
  }
  const ns = medianNs(
    runs,
    () => null,
    () => {
      const map: Record<string, unknown> = {
        size: STRUCTS.IOMMU_IOAS_MAP.size,
        flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        ioas_id: ioasId,
        user_va: buf,
        length: bytes,
      };
      ioctl('IOMMU_IOAS_MAP', map);
      const unmap: Record<string, unknown> = {
        size: STRUCTS.IOMMU_IOAS_UNMAP.size,
        ioas_id: ioasId,
        iova: map.iova,
        length: bytes,
      };
      ioctl('IOMMU_IOAS_UNMAP', unmap);
      if (Number(unmap.length) !== bytes)
        throw new Error(`unmapped ${String(unmap.length)} of ${bytes} bytes`);
    },
  );
  return bytes / GIB / (ns / 1e9);
}

export const iommufdSuite: Suite = {
  name: 'iommufd',
  run(ctx: BenchContext): Promise<Figure[]> {
    const bytes = ctx.smoke ? 16 * 1024 * 1024 : GIB;
    const runs = ctx.smoke ? 2 : 3;
    const figures: Figure[] = [];
    for (const domains of [1, 2]) {
      const name = `iommufd.map_unmap_4k.${domains}_domain${domains > 1 ? 's' : ''}`;
      ctx.progress(name);
      figures.push(
        ratioFigure(
          {
            name,
            value: mapUnmap(bytes, domains, runs),
            unit: 'GiB/s',
            anchor: VFIO_TYPE1_4K_GIBPS,
            goal: '>= 10 GiB/s (anchor: VFIO type1, published)',
          },
          (r) => r * VFIO_TYPE1_4K_GIBPS >= 10,
        ),
      );
    }
    return Promise.resolve(figures);
  },
};
