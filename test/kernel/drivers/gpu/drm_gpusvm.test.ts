import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { drmGpusvmNotifiersIn } from '../../../../src/kernel/drivers/gpu/drm_gpusvm.ts';
import type { XeDevice } from '../../../../src/kernel/drivers/gpu/xe_types.ts';
import { MiB, SZ_2M, SZ_4K, SZ_64K, XeHarness } from '../../../../src/conformance/xe_harness.ts';

void describe('drm_gpusvm under the xe driver', () => {
  void it('a GPU fault in a 2 MiB-aligned buffer makes one 2 MiB range, migrated to VRAM, that a CPU fault takes back whole', () => {
    const h = new XeHarness();
    const c = h.client();
    c.bindSystemAllocator();
    const buf = c.alignedAlloc(SZ_2M, SZ_2M);
    c.memset(buf, 5, SZ_2M);
    assert.equal(c.gpuStoreDword(buf, buf + 64, 0xdeadbeef), 0);
    const s = c.snapshot(buf, buf + SZ_2M);
    assert.deepEqual(
      s.ranges.map((r) => [r.start - buf, r.end - r.start]),
      [[0, SZ_2M]],
    );
    assert.ok(s.ranges[0].flags.includes('has_devmem_pages'));
    assert.equal(c.vramPages(buf, buf + SZ_2M), 512);
    assert.equal(c.cpuRead32(buf + 64), 0xdeadbeef);
    assert.equal(c.vramPages(buf, buf + SZ_2M), 0, 'the CPU fault migrated the whole allocation back');
    assert.equal(h.sys.trace.counters.get('drm_pagemap_migrate_to_ram'), 1);
    h.finish();
  });

  void it('picks 64 KiB, then 4 KiB chunks where 2 MiB does not fit the VMA', () => {
    const h = new XeHarness();
    const c = h.client();
    c.bindSystemAllocator();
    const base = c.alignedAlloc(SZ_2M, SZ_2M);
    h.sys.munmap(c.proc, base + SZ_64K * 2, SZ_2M - SZ_64K * 2);
    c.memset(base, 1, SZ_64K * 2);
    assert.equal(c.gpuStoreDword(base, base + 8, 1), 0);
    const small = c.mmap(3 * SZ_4K);
    c.memset(small, 1, 3 * SZ_4K);
    assert.equal(c.gpuStoreDword(small, small + 8, 2), 0);
    const sizes = [
      ...c.snapshot(base, base + SZ_2M).ranges,
      ...c.snapshot(small, small + 3 * SZ_4K).ranges,
    ].map((r) => r.end - r.start);
    assert.deepEqual(sizes, [SZ_64K, SZ_4K]);
    h.finish();
  });

  void it('munmap of part of a range marks it partially unmapped and the garbage collector removes it', () => {
    const h = new XeHarness();
    const c = h.client();
    c.bindSystemAllocator();
    const buf = c.alignedAlloc(SZ_2M, SZ_2M);
    c.memset(buf, 5, SZ_2M);
    assert.equal(c.gpuStoreDword(buf, buf + SZ_2M / 2 + 64, 7), 0);
    assert.equal(h.sys.munmap(c.proc, buf, SZ_2M / 2), 0);
    assert.deepEqual(
      c.snapshot(buf, buf + SZ_2M).ranges,
      [],
      'the garbage-collector worker removed the range',
    );
    assert.equal(c.cpuRead32(buf + SZ_2M / 2 + 64), 7, 'the rest came back from VRAM');
    assert.equal(c.gpuStoreDword(buf + SZ_2M / 2, buf + SZ_2M / 2 + 128, 8), 0);
    assert.equal(c.cpuRead32(buf + SZ_2M / 2 + 128), 8);
    h.finish();
  });

  void it('the OOM reaper gets false from the notifier (it would have to sleep) and the mirror stays coherent', () => {
    const h = new XeHarness({ config: { vram: 0 } });
    const c = h.client();
    c.bindSystemAllocator();
    const buf = c.mmap(SZ_64K);
    c.memset(buf, 3, SZ_64K);
    assert.equal(c.gpuStoreDword(buf, buf + 4, 9), 0);
    assert.equal(c.vramPages(buf, buf + SZ_64K), 0, 'no VRAM: system pages DMA-mapped');
    assert.equal(c.snapshot(buf, buf + SZ_64K).ptes.length, 16);
    h.sys.oomReap(c.proc);
    assert.equal(c.snapshot(buf, buf + SZ_64K).ptes.length, 16, 'the refused invalidation zapped nothing');
    h.finish();
  });

  void it('notifiers are 512 MiB, aligned, one per interval faulted in', () => {
    const h = new XeHarness({ ram: 64 * MiB });
    const c = h.client();
    c.bindSystemAllocator();
    const a = c.mmap(SZ_4K);
    const b = c.mmap(SZ_4K, { addr: a + 512 * MiB });
    c.memset(a, 1, SZ_4K);
    c.memset(b, 1, SZ_4K);
    assert.equal(c.gpuStoreDword(a, a, 1), 0);
    assert.equal(c.gpuStoreDword(b, b, 1), 0);
    const xe = h.dev.drvdata as XeDevice;
    const vm = [...xe.vms.values()][0];
    const starts = drmGpusvmNotifiersIn(vm.gpusvm, 0, 2 ** 48).map((n) => [
      n.startAddr,
      n.endAddr - n.startAddr,
    ]);
    const base = a - (a % (512 * MiB));
    assert.deepEqual(starts, [
      [base, 512 * MiB],
      [base + 512 * MiB, 512 * MiB],
    ]);
    h.finish();
  });
});
