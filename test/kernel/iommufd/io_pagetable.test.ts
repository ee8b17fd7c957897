import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../../../src/lib/units.ts';
import { Errno } from '../../../src/kernel/errno.ts';
import { IoPagetable, allocIova, checkIova, reserveIova } from '../../../src/kernel/iommufd/io_pagetable.ts';
import { IoptArea } from '../../../src/kernel/iommufd/pages.ts';
import { System } from '../../../src/kernel/system.ts';
import { Env, expectErrno, expectOk, RW } from '../../../src/conformance/iommufd_harness.ts';
import { MOCK_APERTURE_START } from '../../../src/kernel/drivers/iommufd_selftest.ts';
import {
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_OPTION_OP_SET,
  setCapIpcLock,
  STRUCTS,
} from '../../../src/kernel/iommufd/index.ts';
import { ioasOf } from '../../../src/kernel/iommufd/ioas.ts';
import { iommufdCtxOf } from '../../../src/kernel/iommufd/main.ts';

function table(): IoPagetable {
  return new IoPagetable(new System({ ram: 64 * 1024 * 1024 }), 1);
}

describe('iopt IOVA allocation', () => {
  it('never hands out IOVA 0 and aligns to the length', () => {
    const iopt = table();
    const iova = allocIova(iopt, 0, 3 * PAGE_SIZE);
    assert.ok(iova >= PAGE_SIZE);
    assert.equal(iova % (4 * PAGE_SIZE), 0);
  });

  it('keeps the sub-page offset of the user address', () => {
    const iopt = table();
    const iova = allocIova(iopt, 0x10000 + 0x800, 0x800);
    assert.equal(iova % PAGE_SIZE, 0x800);
  });

  it('skips reserved ranges and reports ENOSPC when nothing fits', () => {
    const iopt = table();
    assert.equal(reserveIova(iopt, 0, 2 ** 40, null), 0);
    const iova = allocIova(iopt, 0, PAGE_SIZE);
    assert.ok(iova > 2 ** 40);
    const full = table();
    assert.equal(reserveIova(full, 6, 2 ** 64, null), 0);
    assert.equal(allocIova(full, 0, 0x5000), -Errno.ENOSPC);
  });

  it('rejects zero and huge lengths with EOVERFLOW', () => {
    assert.equal(allocIova(table(), 0, 0), -Errno.EOVERFLOW);
    assert.equal(allocIova(table(), 0, 2 ** 63), -Errno.EOVERFLOW);
  });

  it('checkIova: alignment, reserved and existing areas', () => {
    const iopt = table();
    iopt.iovaAlignment = 2048;
    assert.equal(checkIova(iopt, 1024, PAGE_SIZE), -Errno.EINVAL);
    reserveIova(iopt, 0, PAGE_SIZE - 1, null);
    assert.equal(checkIova(iopt, 0, PAGE_SIZE), -Errno.EINVAL);
    const a = new IoptArea(0, 0, 0, 0);
    a.iova = 4 * PAGE_SIZE;
    a.last = 5 * PAGE_SIZE - 1;
    a.node = iopt.areaItree.insert(a.iova, a.last, a);
    assert.equal(checkIova(iopt, 4 * PAGE_SIZE + 2048, 2048), -Errno.EEXIST);
    assert.equal(checkIova(iopt, 8 * PAGE_SIZE, PAGE_SIZE), 0);
  });
});

describe('iopt_area index maths', () => {
  it('maps the first index at the area IOVA and later ones page aligned', () => {
    const a = new IoptArea(3, 5, 0x800, 0);
    a.iova = 0x10000;
    a.last = 0x10000 + 2 * PAGE_SIZE + 0x7ff;
    assert.equal(a.indexIova(3), 0x10000);
    assert.equal(a.indexLastIova(3), 0x10000 + 0x7ff);
    assert.equal(a.indexIova(4), 0x10800);
    assert.equal(a.iovaToIndex(0x10800), 4);
    assert.equal(a.indexLastIova(5), a.last);
  });
});

describe('unmap never splits; type1 cut does', () => {
  it('IOMMU_IOAS_UNMAP of half an area is ENOENT and leaves it mapped', () => {
    const env = new Env();
    const ioas = env.ioasAlloc();
    env.cmdMockDomain(ioas);
    expectOk(env.mapFixed(ioas, env.buffer, 4 * PAGE_SIZE, MOCK_APERTURE_START), 'map');
    expectErrno(Errno.ENOENT, env.unmap(ioas, MOCK_APERTURE_START, 2 * PAGE_SIZE).rc);
    const r = env.unmap(ioas, MOCK_APERTURE_START, 4 * PAGE_SIZE);
    expectOk(r.rc, 'unmap');
    assert.equal(r.length, 4 * PAGE_SIZE);
    env.teardown();
  });
});

describe('accounting', () => {
  it('USER mode charges user->locked_vm and rolls back a map over the limit', () => {
    const env = new Env();
    setCapIpcLock(env.p, false);
    const set = {
      size: STRUCTS.IOMMU_OPTION.size,
      option_id: IOMMU_OPTION_RLIMIT_MODE,
      op: IOMMU_OPTION_OP_SET,
      val64: 0,
    };
    expectOk(env.ioctl('IOMMU_OPTION', set), 'rlimit mode');
    env.p.rlimitMemlock = 4 * PAGE_SIZE;
    const ioas = env.ioasAlloc();
    env.cmdMockDomain(ioas);
    const before = env.p.user.lockedVm;
    expectErrno(Errno.ENOMEM, env.map(ioas, env.buffer, 8 * PAGE_SIZE, RW).rc);
    assert.equal(env.p.user.lockedVm, before);
    assert.equal(env.p.mm!.pinnedVm, 0);
    env.checkRefs(env.buffer, 8 * PAGE_SIZE, 0);
    const ok = env.map(ioas, env.buffer, 4 * PAGE_SIZE, RW);
    expectOk(ok.rc, 'map within limit');
    assert.equal(env.p.user.lockedVm, before + 4);
    assert.equal(env.p.mm!.pinnedVm, 4);
    // A COPY shares the iopt_pages: charged once.
    const ioas2 = env.ioasAlloc();
    env.cmdMockDomain(ioas2);
    const copy = {
      size: STRUCTS.IOMMU_IOAS_COPY.size,
      flags: RW,
      dst_ioas_id: ioas2,
      src_ioas_id: ioas,
      src_iova: ok.iova,
      length: 4 * PAGE_SIZE,
    };
    expectOk(env.ioctl('IOMMU_IOAS_COPY', copy), 'copy');
    assert.equal(env.p.user.lockedVm, before + 4);
    expectOk(env.unmap(ioas, ok.iova, 4 * PAGE_SIZE).rc, 'unmap');
    assert.equal(env.p.user.lockedVm, before + 4);
    env.teardown();
    assert.equal(env.p.user.lockedVm, before);
    assert.equal(env.p.mm!.pinnedVm, 0);
  });

  it('a domain-less IOAS pins and charges nothing until a domain attaches', () => {
    const env = new Env();
    setCapIpcLock(env.p, false);
    const ioas = env.ioasAlloc();
    // An automatic IOVA would sit below the mock aperture and make the attach -EADDRINUSE.
    expectOk(env.mapFixed(ioas, env.buffer, 4 * PAGE_SIZE, MOCK_APERTURE_START), 'map');
    assert.equal(env.p.mm!.pinnedVm, 0);
    env.cmdMockDomain(ioas);
    assert.equal(env.p.mm!.pinnedVm, 4);
    const ctx = iommufdCtxOf(env.sys, env.fd)!;
    const obj = ctx.objects.get(ioas)!;
    const area = ioasOf(obj).iopt.areas()[0];
    assert.equal(area.pages!.npinned, 4);
    env.teardown();
  });
});
