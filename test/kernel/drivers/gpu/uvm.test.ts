import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { System, assertOracles, mman } from '../../../../src/index.ts';
import { gpuKind } from '../../../../src/kernel/drivers/gpu/registry.ts';
import { UvmGpuDevice } from '../../../../src/kernel/drivers/gpu/uvm.ts';
import {
  uvmGpuServiceReplayableFaults,
  uvmGpuServiceReplayableFaultsNow,
} from '../../../../src/kernel/drivers/gpu/uvm_gpu_replayable_faults.ts';
import type { DeviceAccessKind } from '../../../../src/kernel/drivers/sdk/device_pagetable.ts';

const MiB = 1024 * 1024;

function setup(config: Record<string, unknown> = {}): {
  sys: System;
  gpu: UvmGpuDevice;
  p: ReturnType<System['createProcess']>;
  buf: number;
} {
  const sys = new System({ ram: 64 * MiB, swap: 0 });
  const g = sys.run('probe', UvmGpuDevice.create(sys, 'gpu0', { memory: 8 * MiB, ...config }));
  assert.ok(g instanceof UvmGpuDevice);
  const p = sys.createProcess('p');
  const buf = sys.mmap(
    p,
    0,
    4 * MiB,
    mman.PROT_READ | mman.PROT_WRITE,
    mman.MAP_PRIVATE | mman.MAP_ANONYMOUS,
  );
  assert.ok(buf > 0);
  return { sys, gpu: g, p, buf };
}

describe('uvm driver', () => {
  it('a GPU read faults, migrates the page to GPU memory and reads the CPU data', () => {
    const { sys, gpu, p, buf } = setup({ prefetch: 'ondemand' });
    assert.equal(gpuKind('uvm')?.driver, gpu.dev.driver);
    assert.equal(sys.write(p, buf, new Uint8Array([1, 2, 3, 4])), 4);
    const r = sys.run('gpu', gpu.access(p, buf, 4, 'read', null));
    assert.equal(r.ret, 0);
    assert.deepEqual([...r.data], [1, 2, 3, 4]);
    const snap = gpu.snapshot(p);
    assert.equal(snap.ptes.length, 1);
    assert.equal(snap.ptes[0].mem, 'vram');
    assert.equal(gpu.gpu.stats.faults, 1);
    assert.equal(gpu.gpu.stats.pagesToGpu, 1);
    assertOracles(sys);
  });

  it('a CPU read of a GPU-resident page migrates it back and unmaps it from the GPU', () => {
    const { sys, gpu, p, buf } = setup({ prefetch: 'ondemand' });
    assert.equal(sys.run('gpu', gpu.access(p, buf, 4, 'write', new Uint8Array([9, 8, 7, 6]))).ret, 0);
    const r = sys.read(p, buf, 4);
    assert.deepEqual([...r.data], [9, 8, 7, 6]);
    assert.equal(gpu.snapshot(p).ptes.length, 0);
    assert.equal(gpu.gpu.stats.cpuFaults, 1);
    assertOracles(sys);
  });

  it('a CPU fault on a page thrashing between CPU and GPU naps once before it migrates', () => {
    // uvm_va_space_cpu_fault() sleeps while the thrashing hint is THROTTLE. Each GPU write
    // migrates the page to the GPU and each CPU read back, all within one lapse: the third
    // thrashing event falls on the second CPU fault.
    for (const thrashing of [true, false]) {
      const { sys, gpu, p, buf } = setup({ prefetch: 'ondemand', thrashing });
      const s = gpu.gpu.stats;
      const t = gpu.gpu.tunables;
      const napNs = t.thrashingNapLapses * t.thrashingLapseUs * 1000;
      assert.ok(napNs > 0);
      for (let round = 0; round < 2; round++) {
        const v = 10 + round;
        assert.equal(sys.run('gpu', gpu.access(p, buf, 1, 'write', new Uint8Array([v]))).ret, 0);
        assert.equal(gpu.snapshot(p).ptes[0].mem, 'vram');
        const before = sys.sched.clock.now;
        assert.deepEqual([...sys.read(p, buf, 1).data], [v]);
        const napped = thrashing && round === 1;
        assert.equal(s.cpuThrottles, napped ? 1 : 0, `round ${round}`);
        assert.equal(sys.sched.clock.now - before, napped ? napNs : 0, `round ${round}`);
        // After the nap the CPU fault migrates the page back all the same.
        assert.equal(s.cpuFaults, round + 1);
        assert.equal(gpu.snapshot(p).ptes.length, 0);
      }
      assert.equal(s.thrashingEvents, thrashing ? 3 : 0);
      assertOracles(sys);
    }
  });

  it('the tree prefetcher brings a whole 64 KiB big page for one fault', () => {
    const { sys, gpu, p, buf } = setup();
    assert.equal(sys.run('gpu', gpu.access(p, buf, 4, 'read', null)).ret, 0);
    assert.equal(gpu.gpu.stats.pagesToGpu, 16);
    assert.equal(gpu.gpu.stats.pagesPrefetched, 15);
    assert.equal(gpu.snapshot(p).ptes.length, 16);
    assertOracles(sys);
  });

  it('munmap invalidates the block: changed counter bumps and the GPU mapping goes', () => {
    const { sys, gpu, p, buf } = setup({ prefetch: 'ondemand' });
    assert.equal(sys.run('gpu', gpu.access(p, buf, 4, 'read', null)).ret, 0);
    assert.equal(sys.munmap(p, buf, 4 * MiB), 0);
    const snap = gpu.snapshot(p);
    assert.equal(snap.ptes.length, 0);
    assert.ok(snap.ranges[0].flags.includes('changed=1'));
    assertOracles(sys);
  });

  it('when GPU memory is full a 2 MiB root chunk is evicted back to system memory', () => {
    const { sys, gpu, p, buf } = setup({ memory: 2 * MiB, prefetch: 'ondemand' });
    assert.equal(sys.write(p, buf, new Uint8Array([5])), 1);
    assert.equal(sys.run('gpu', gpu.access(p, buf, 1, 'read', null)).ret, 0);
    assert.equal(sys.run('gpu', gpu.access(p, buf + 2 * MiB, 1, 'read', null)).ret, 0);
    assert.equal(gpu.gpu.stats.evictions, 1);
    assert.equal(gpu.gpu.stats.pagesToCpu, 1);
    assert.deepEqual([...sys.read(p, buf, 1).data], [5]);
    assertOracles(sys);
  });

  it('an atomic on memory that stays in system RAM uses make_device_exclusive', () => {
    const { sys, gpu, p, buf } = setup({ migrate_on_fault: false });
    assert.equal(sys.write(p, buf, new Uint8Array([1])), 1);
    assert.equal(sys.run('gpu', gpu.access(p, buf, 4, 'atomic', new Uint8Array([7, 0, 0, 0]))).ret, 0);
    assert.equal(gpu.gpu.stats.exclusiveMaps, 1);
    assert.equal(gpu.snapshot(p).ptes[0].atomic, true);
    // The CPU touching the page restores its mapping and takes the GPU's exclusive entry away.
    assert.deepEqual([...sys.read(p, buf, 1).data], [7]);
    assert.equal(gpu.snapshot(p).ptes.length, 0);
    assertOracles(sys);
  });

  it('a plain pass of the bottom half takes the steps and makes the changes of a scheduled one', () => {
    function pass(
      plain: boolean,
      eviction: boolean,
    ): { stats: Record<string, unknown>; steps: number; snapshot: unknown; data: number[] } {
      const { sys, gpu, p, buf } = setup({ memory: eviction ? 2 * MiB : 8 * MiB, prefetch: 'tree' });
      const g = gpu.gpu;
      assert.equal(sys.run('attach', gpu.attach(p)), 0);
      assert.equal(sys.write(p, buf + 5 * 4096, new Uint8Array([3])), 1);
      assert.equal(sys.write(p, buf + 2 * MiB, new Uint8Array([4])), 1);
      if (eviction) assert.equal(sys.run('gpu', gpu.access(p, buf + 2 * MiB, 1, 'read', null)).ret, 0);
      // The faults below are serviced only by the pass under test.
      g.polled = true;
      const vs = p.mm === null ? undefined : g.vaSpaces.get(p.mm);
      assert.ok(vs !== undefined);
      const faults: [number, DeviceAccessKind][] = [
        [0, 'read'],
        [5, 'write'],
        [40, 'atomic'],
        [700, 'read'],
        [5, 'read'],
      ];
      for (const [page, access] of faults) g.faults.post({ va: buf + page * 4096, access, pt: vs.pt });
      if (plain) uvmGpuServiceReplayableFaultsNow(g);
      else sys.run('uvm_bh', uvmGpuServiceReplayableFaults(g));
      assertOracles(sys);
      return {
        stats: JSON.parse(JSON.stringify(g.stats)) as Record<string, unknown>,
        steps: sys.sched.totalSteps,
        snapshot: gpu.snapshot(p),
        data: [...sys.read(p, buf + 5 * 4096, 1).data],
      };
    }
    for (const eviction of [false, true]) {
      const scheduled = pass(false, eviction);
      assert.deepEqual(pass(true, eviction), scheduled);
      assert.ok((scheduled.stats.pagesToGpu as number) > 0);
      assert.equal((scheduled.stats.evictions as number) > 0, eviction);
    }
  });
});
