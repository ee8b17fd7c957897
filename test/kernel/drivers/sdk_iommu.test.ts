/**
 * An IOMMU driver of its own on the public SDK: its iommu_ops allocate the automatic domain when a
 * device bound to iommufd attaches to an IOAS, and its domain ops get the map_pages / unmap_pages
 * calls of IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP, then free when the last device detaches.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Errno,
  IOMMU_READ,
  IOMMU_WRITE,
  System,
  iommuDeviceRegister,
  iommuDomainInit,
  iommuDomainPriv,
  iommuProbeDevice,
  iommufdCtxFromFd,
  iommufdCtxGet,
  iommufdCtxPut,
  iommufdDeviceAttach,
  iommufdDeviceBind,
  iommufdDeviceDetach,
  iommufdDeviceUnbind,
  iommufdIoctl,
  iommufdOpen,
  mman,
  type IommuDev,
  type IommuDevice,
  type IommuDomain,
  type IommuDomainOps,
  type IommuOps,
  type IommufdDevice,
  type Process,
} from '../../../src/index.ts';
import { checkTeardown } from '../../../src/oracles/index.ts';

const PAGE = 4096;
const SZ_2M = 2 * 1024 * 1024;

/** The toy IOMMU's per-device data. */
interface ToyDev {
  /** attach_dev refuses every domain (a device the IOMMU cannot translate for). */
  readonly refuse: boolean;
}

type Call =
  | { op: 'map'; iova: number; paddr: number; pgsize: number; pgcount: number; prot: number }
  | { op: 'unmap'; iova: number; pgsize: number; pgcount: number }
  | { op: 'attach'; dev: string }
  | { op: 'free' };

/** The toy IOMMU's domain: an IOVA -> physical table of 4 KiB entries. */
class ToyDomain {
  readonly pte = new Map<number, number>();
  readonly calls: Call[] = [];
  domain!: IommuDomain;
}

const toyDomainOps: IommuDomainOps<ToyDomain, ToyDev> = {
  attachDev(dom, dev) {
    dom.calls.push({ op: 'attach', dev: dev.name });
    return dev.priv.refuse ? -Errno.EINVAL : 0;
  },
  mapPages(dom, iova, paddr, pgsize, pgcount, prot) {
    dom.calls.push({ op: 'map', iova, paddr, pgsize, pgcount, prot });
    for (let off = 0; off < pgsize * pgcount; off += PAGE) dom.pte.set(iova + off, paddr + off);
    return 0;
  },
  unmapPages(dom, iova, pgsize, pgcount) {
    dom.calls.push({ op: 'unmap', iova, pgsize, pgcount });
    let done = 0;
    for (; done < pgsize * pgcount && dom.pte.delete(iova + done); done += PAGE);
    return done;
  },
  iovaToPhys(dom, iova) {
    return dom.pte.get(iova - (iova % PAGE)) ?? -1;
  },
  free(dom) {
    dom.calls.push({ op: 'free' });
  },
};

function toyOps(domains: ToyDomain[]): IommuOps<ToyDev> {
  const ops: IommuOps<ToyDev> = {
    name: 'toy_iommu',
    // No capability, dirty tracking included.
    capable: () => false,
    domainAllocPagingFlags(dev, flags, userData) {
      if (flags !== 0 || userData !== null) return -Errno.EOPNOTSUPP;
      const dom = new ToyDomain();
      dom.domain = iommuDomainInit(dev.iommu, dom, {
        type: 'paging',
        pgsizeBitmap: PAGE | SZ_2M,
        geometry: { apertureStart: 0, apertureEnd: 2 ** 32 - 1 },
        ops: toyDomainOps,
      });
      domains.push(dom);
      return dom.domain;
    },
  };
  return ops;
}

interface World {
  sys: System;
  p: Process;
  fd: number;
  iommu: IommuDevice<ToyDev>;
  domains: ToyDomain[];
  ioas: number;
}

function setup(): World {
  const sys = new System({ ram: 64 * 1024 * 1024, swap: 0 });
  const p = sys.createProcess('vmm');
  const fd = iommufdOpen(sys, p);
  const domains: ToyDomain[] = [];
  const iommu = iommuDeviceRegister(sys, 'toy0', toyOps(domains));
  assert.ok(typeof iommu !== 'number');
  const cmd: Record<string, unknown> = { size: 12 };
  assert.equal(iommufdIoctl(sys, fd, 'IOMMU_IOAS_ALLOC', cmd, p), 0);
  return { sys, p, fd, iommu, domains, ioas: cmd.out_ioas_id as number };
}

function bind(w: World, dev: IommuDev<ToyDev>): IommufdDevice {
  const ictx = iommufdCtxFromFd(w.sys, w.fd);
  assert.ok(ictx !== null);
  const idev = iommufdDeviceBind(ictx, dev);
  assert.ok(typeof idev !== 'number');
  return idev;
}

function mapFixed(w: World, va: number, length: number, iova: number): number {
  const flags = 1 | 2 | 4; // IOMMU_IOAS_MAP_FIXED_IOVA | _WRITEABLE | _READABLE
  const cmd = { size: 40, flags, ioas_id: w.ioas, user_va: va, length, iova };
  return iommufdIoctl(w.sys, w.fd, 'IOMMU_IOAS_MAP', cmd, w.p);
}

describe('SDK: an IOMMU driver of its own', () => {
  it('attaching a device to an IOAS allocates its automatic domain and calls attach_dev', () => {
    const w = setup();
    const dev = iommuProbeDevice(w.iommu, 'toydev0', { refuse: false });
    const idev = bind(w, dev);
    const hwpt = w.sys.run('attach', iommufdDeviceAttach(idev, w.ioas));
    assert.ok(hwpt > 0, `attach returned ${hwpt}`);
    assert.equal(w.domains.length, 1);
    const dom = w.domains[0];
    assert.deepEqual(dom.calls, [{ op: 'attach', dev: 'toydev0' }]);
    assert.equal(iommuDomainPriv(dom.domain, toyDomainOps), dom);
  });

  it('IOAS_MAP and IOAS_UNMAP reach map_pages and unmap_pages with the pinned pages', () => {
    const w = setup();
    const idev = bind(w, iommuProbeDevice(w.iommu, 'toydev0', { refuse: false }));
    assert.ok(w.sys.run('attach', iommufdDeviceAttach(idev, w.ioas)) > 0);
    const dom = w.domains[0];
    const len = 8 * PAGE;
    const va = w.sys.mmap(
      w.p,
      0,
      len,
      mman.PROT_READ | mman.PROT_WRITE,
      mman.MAP_PRIVATE | mman.MAP_ANONYMOUS,
    );
    assert.ok(va > 0);
    const iova = 0x100000;
    assert.equal(mapFixed(w, va, len, iova), 0);
    const maps = dom.calls.filter((c) => c.op === 'map');
    assert.ok(maps.length > 0);
    let bytes = 0;
    for (const m of maps) {
      assert.equal(m.prot & (IOMMU_READ | IOMMU_WRITE), IOMMU_READ | IOMMU_WRITE);
      assert.equal(m.pgsize, PAGE);
      bytes += m.pgsize * m.pgcount;
    }
    assert.equal(bytes, len);
    assert.equal(dom.pte.size, 8);
    // Every IOVA translates to a distinct page frame (the pages pinned for the mapping).
    const frames = new Set([...dom.pte.values()].map((pa) => pa / PAGE));
    assert.equal(frames.size, 8);
    for (let i = 0; i < 8; i++) assert.ok(dom.pte.has(iova + i * PAGE));

    const unmap: Record<string, unknown> = { size: 24, ioas_id: w.ioas, iova, length: len };
    assert.equal(iommufdIoctl(w.sys, w.fd, 'IOMMU_IOAS_UNMAP', unmap, w.p), 0);
    assert.equal(unmap.length, BigInt(len), 'the bytes unmapped, as a u64');
    const unmaps = dom.calls.filter((c) => c.op === 'unmap');
    assert.ok(unmaps.length > 0);
    assert.equal(
      unmaps.reduce((n, c) => n + c.pgsize * c.pgcount, 0),
      len,
    );
    assert.equal(dom.pte.size, 0);
  });

  it('a mapping made before the attach is filled into the new domain', () => {
    const w = setup();
    const len = 4 * PAGE;
    const va = w.sys.mmap(
      w.p,
      0,
      len,
      mman.PROT_READ | mman.PROT_WRITE,
      mman.MAP_PRIVATE | mman.MAP_ANONYMOUS,
    );
    assert.equal(mapFixed(w, va, len, 0x200000), 0);
    const idev = bind(w, iommuProbeDevice(w.iommu, 'toydev0', { refuse: false }));
    assert.ok(w.sys.run('attach', iommufdDeviceAttach(idev, w.ioas)) > 0);
    assert.equal(w.domains[0].pte.size, 4);
  });

  it('detach and unbind free the automatic domain once, after unmapping what it held', () => {
    const w = setup();
    const idev = bind(w, iommuProbeDevice(w.iommu, 'toydev0', { refuse: false }));
    assert.ok(w.sys.run('attach', iommufdDeviceAttach(idev, w.ioas)) > 0);
    const va = w.sys.mmap(
      w.p,
      0,
      2 * PAGE,
      mman.PROT_READ | mman.PROT_WRITE,
      mman.MAP_PRIVATE | mman.MAP_ANONYMOUS,
    );
    assert.equal(mapFixed(w, va, 2 * PAGE, 0x300000), 0);
    const dom = w.domains[0];
    w.sys.run('detach', iommufdDeviceDetach(idev));
    w.sys.run('unbind', iommufdDeviceUnbind(idev));
    assert.equal(dom.calls.filter((c) => c.op === 'free').length, 1);
    assert.equal(dom.calls.at(-1)?.op, 'free');
    assert.equal(dom.pte.size, 0, 'the domain was emptied before free');
  });

  it('a device attach_dev refuses gets -EINVAL and keeps no domain', () => {
    const w = setup();
    const idev = bind(w, iommuProbeDevice(w.iommu, 'bad0', { refuse: true }));
    assert.equal(w.sys.run('attach', iommufdDeviceAttach(idev, w.ioas)), -Errno.EINVAL);
    assert.equal(w.domains.length, 1);
    assert.deepEqual(
      w.domains[0].calls.map((c) => c.op),
      ['attach', 'free'],
    );
    w.sys.run('unbind', iommufdDeviceUnbind(idev));
  });

  it('HWPT_ALLOC with dirty tracking is refused when capable() says no', () => {
    const w = setup();
    const idev = bind(w, iommuProbeDevice(w.iommu, 'toydev0', { refuse: false }));
    const cmd = { size: 48, flags: 1 << 1, dev_id: idev.obj.id, pt_id: w.ioas };
    assert.equal(iommufdIoctl(w.sys, w.fd, 'IOMMU_HWPT_ALLOC', cmd, w.p), -Errno.EOPNOTSUPP);
    assert.equal(w.domains.length, 0);
  });

  it('a second IOMMU of the same name is refused', () => {
    const w = setup();
    assert.equal(iommuDeviceRegister(w.sys, 'toy0', toyOps([])), -Errno.EEXIST);
  });

  it('iommufd_ctx_get keeps the context past the close of its fd until iommufd_ctx_put', () => {
    const w = setup();
    const ictx = iommufdCtxFromFd(w.sys, w.fd);
    assert.ok(ictx !== null);
    iommufdCtxGet(ictx);
    w.sys.close(w.fd);
    w.sys.exit(w.p);
    const leaked = checkTeardown(w.sys).filter((v) => v.oracle === 'leak');
    assert.ok(
      leaked.some((v) => /iommufd_ctx_get/.test(v.message)),
      JSON.stringify(leaked),
    );
    w.sys.run('put', iommufdCtxPut(ictx));
    assert.deepEqual(checkTeardown(w.sys), []);
  });
});
