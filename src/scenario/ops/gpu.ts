/**
 * The generic GPU ops, for every built-in GPU device kind (src/kernel/drivers/gpu/registry.ts):
 * `gpu_access` (the GPU reads, writes or does an atomic at an address of a process, faulting
 * through its driver as the hardware would) and `gpu_snapshot` (what the GPU page table maps and
 * which SVM ranges the driver holds over a span, like HMM_DMIRROR_SNAPSHOT).
 */
import { PAGE_SIZE } from '../../lib/units.ts';
import { deviceByName } from '../../kernel/drivers/sdk/device.ts';
import { gpuKindOfDriver } from '../../kernel/drivers/gpu/registry.ts';
import type { Device } from '../../kernel/drivers/sdk/device.ts';
import type { GpuKind } from '../../kernel/drivers/gpu/registry.ts';
import type { GpuPteView } from '../../kernel/drivers/gpu/gpu_device.ts';
import { Errno } from '../../kernel/errno.ts';
import type { Process } from '../../kernel/system.ts';
import type { ScenarioContext } from '../context.ts';
import type { StepT } from '../schema.ts';
import { ValueError } from '../values.ts';
import { dataOf } from './mm.ts';
import { f, type OpHandler } from './types.ts';

/** Snapshots above this many pages are refused (the outputs are counts, but the walk is per page). */
const MAX_SNAPSHOT_PAGES = 1 << 20;

function gpuOf(ctx: ScenarioContext, step: StepT): { dev: Device; kind: GpuKind } | null {
  const dev = deviceByName(ctx.sys, String(f(step, 'device')));
  if (dev === null) return null;
  const kind = gpuKindOfDriver(dev.driver);
  return kind === null ? null : { dev, kind };
}

function procOf(ctx: ScenarioContext, step: StepT): Process | null {
  const p = f(step, 'proc');
  return p === undefined ? null : ctx.proc(p);
}

export const gpuOps: Record<string, OpHandler> = {
  *gpu_access(ctx, step) {
    const gpu = gpuOf(ctx, step);
    if (gpu === null) return { ret: -Errno.ENODEV };
    const addr = ctx.num(f(step, 'address'), 'address');
    const length = ctx.num(f(step, 'length'), 'length');
    if (length < 0 || length > 64 * 1024 * 1024)
      throw new ValueError('length: from 0 to 64MiB per gpu_access');
    const access = f(step, 'access') as 'read' | 'write' | 'atomic';
    const spec = f(step, 'data');
    if (access !== 'read' && spec === undefined)
      throw new ValueError(`data: a ${access} stores data; give it`);
    const buf = access === 'read' ? new Uint8Array(length) : dataOf(spec, length);
    // A negative address is a u64 far above any GPU's VA space: its fault cannot be serviced.
    if (addr < 0) return { ret: -Errno.EFAULT };
    const ret = yield* gpu.kind.gpu.access(gpu.dev, { proc: procOf(ctx, step), addr, access, buf });
    return access === 'read' && ret === 0 ? { ret, data: buf } : { ret };
  },
  *gpu_snapshot(ctx, step) {
    const gpu = gpuOf(ctx, step);
    if (gpu === null) return { ret: -Errno.ENODEV };
    const addr = ctx.num(f(step, 'addr'), 'addr');
    const length = ctx.num(f(step, 'length'), 'length');
    if (length < 0 || length / PAGE_SIZE > MAX_SNAPSHOT_PAGES)
      throw new ValueError('length: from 0 to 4GiB per gpu_snapshot');
    // A negative address read as a u64 makes the span wrap, as dmirror_snapshot() refuses.
    if (addr < 0) return { ret: -Errno.EINVAL };
    yield { kind: 'step', label: 'gpu_snapshot' };
    const s = gpu.kind.gpu.snapshot(gpu.dev, procOf(ctx, step), addr, addr + length);
    if (typeof s === 'number') return { ret: s };
    const ptes = s.ptes;
    const count = (p: (x: GpuPteView) => boolean): number => ptes.filter(p).length;
    const outputs = {
      ranges: s.ranges.length,
      ptes: s.ptes.length,
      vram_pages: count((p) => p.mem === 'vram'),
      system_pages: count((p) => p.mem === 'system'),
      write_pages: count((p) => p.write),
      atomic_pages: count((p) => p.atomic),
      unmapped_ranges: s.ranges.filter((r) => r.flags.includes('unmapped')).length,
    };
    const notes = s.ranges.map(
      (r) =>
        `range 0x${r.start.toString(16)}-0x${r.end.toString(16)} (${(r.end - r.start) / 1024}KiB) ${r.flags.join(' ')}`,
    );
    return { ret: 0, outputs, notes };
  },
};
