/**
 * What the ported xe_exec_system_allocator cases use in place of IGT's xe library: a System with
 * an xe device, a process with an open file and a fault-mode VM whose whole VA space is one
 * CPU-address-mirror binding (IGT's bind_system_allocator()), and GPU "batches" reduced to the
 * memory accesses they make: reading the batch the CPU wrote (MI_BATCH_BUFFER_START fetches it)
 * and storing a dword (MI_STORE_DWORD_IMM) or incrementing one (MI_ATOMIC_INC).
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { type Device, deviceOpen, deviceRegister, deviceUnregister } from '../kernel/drivers/sdk/device.ts';
import { checkAll } from '../oracles/index.ts';
import { gpuKind } from '../kernel/drivers/gpu/registry.ts';
import type { GpuSnapshot } from '../kernel/drivers/gpu/gpu_device.ts';
import {
  DRM_XE_VM_BIND_FLAG,
  DRM_XE_VM_BIND_OP,
  DRM_XE_VM_CREATE_FLAG,
  XE_VA_SPACE,
} from '../kernel/drivers/gpu/xe_vm.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import { type Process, System } from '../kernel/system.ts';

export const SZ_4K = 4096;
export const SZ_64K = 64 * 1024;
export const SZ_2M = 2 * 1024 * 1024;
export const MiB = 1024 * 1024;

export interface XeHarnessOptions {
  /** VRAM bytes. @defaultValue 16 MiB */
  readonly vram?: number;
  /** System RAM. @defaultValue 256 MiB */
  readonly ram?: number;
  readonly config?: Readonly<Record<string, unknown>>;
}

/** One process' view of the xe device: its fd and VM. */
export class XeClient {
  constructor(
    readonly h: XeHarness,
    readonly proc: Process,
    readonly fd: number,
    readonly vm: number,
  ) {}

  /** xe_vm_bind of one op on this client's VM. */
  bind(op: number, addr: number, range: number, flags = 0, extra: Record<string, number> = {}): number {
    return this.h.sys.ioctl(this.fd, 'DRM_IOCTL_XE_VM_BIND', {
      vm_id: this.vm,
      op,
      flags,
      addr,
      range,
      ...extra,
    });
  }

  /** IGT's bind_system_allocator(): the whole VA space as one CPU-address-mirror binding. */
  bindSystemAllocator(): void {
    assert.equal(this.bind(DRM_XE_VM_BIND_OP.MAP, 0, XE_VA_SPACE, DRM_XE_VM_BIND_FLAG.CPU_ADDR_MIRROR), 0);
  }

  madvise(start: number, range: number, fields: Record<string, number>): number {
    return this.h.sys.ioctl(this.fd, 'DRM_IOCTL_XE_MADVISE', { vm_id: this.vm, start, range, ...fields });
  }

  prefetch(addr: number, range: number, region: number): number {
    return this.bind(DRM_XE_VM_BIND_OP.PREFETCH, addr, range, 0, { prefetch_mem_region_instance: region });
  }

  mmap(length: number, opts: { shared?: boolean; addr?: number } = {}): number {
    const flags =
      (opts.shared === true ? MAP_SHARED : MAP_PRIVATE) |
      MAP_ANONYMOUS |
      (opts.addr !== undefined ? MAP_FIXED : 0);
    const a = this.h.sys.mmap(this.proc, opts.addr ?? 0, length, PROT_READ | PROT_WRITE, flags);
    assert.ok(a > 0, `mmap failed: ${a}`);
    return a;
  }

  /** IGT's aligned_alloc(alignment, size): an mmap trimmed to the alignment. */
  alignedAlloc(alignment: number, size: number): number {
    const raw = this.mmap(size + alignment);
    const a = Math.ceil(raw / alignment) * alignment;
    if (a > raw) this.h.sys.munmap(this.proc, raw, a - raw);
    if (raw + size + alignment > a + size)
      this.h.sys.munmap(this.proc, a + size, raw + size + alignment - a - size);
    return a;
  }

  cpuWrite32(addr: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    assert.equal(this.h.sys.write(this.proc, addr, b), 4);
  }

  cpuRead32(addr: number): number {
    const r = this.h.sys.read(this.proc, addr, 4);
    assert.equal(r.ret, 4, `CPU read of 0x${addr.toString(16)} failed: ${r.ret}`);
    return new DataView(r.data.buffer, r.data.byteOffset, 4).getUint32(0, true);
  }

  /** The CPU fills [addr, addr + len) with `byte` (IGT's memset). */
  memset(addr: number, byte: number, len: number): void {
    assert.equal(this.h.sys.write(this.proc, addr, new Uint8Array(len).fill(byte)), len);
  }

  /** A GPU access; returns its result (0 or -errno). */
  gpu(addr: number, access: 'read' | 'write' | 'atomic', buf: Uint8Array): number {
    const kind = gpuKind('xe')!;
    return this.h.sys.run('gpu', kind.gpu.access(this.h.dev, { proc: this.proc, addr, access, buf }));
  }

  /** The GPU runs a batch at `batch` that stores `value` at `sdi` (MI_STORE_DWORD_IMM). */
  gpuStoreDword(batch: number, sdi: number, value: number): number {
    const ret = this.gpu(batch, 'read', new Uint8Array(16));
    if (ret !== 0) return ret;
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    return this.gpu(sdi, 'write', b);
  }

  /** The GPU increments the dword at `addr` (MI_ATOMIC | MI_ATOMIC_INC). */
  gpuAtomicInc(addr: number): number {
    const cur = new Uint8Array(4);
    let ret = this.gpu(addr, 'atomic', cur);
    if (ret !== 0) return ret;
    // The atomic reads and writes under the one ATOMIC mapping it faulted in.
    ret = this.gpu(addr, 'read', cur);
    if (ret !== 0) return ret;
    const v = new DataView(cur.buffer).getUint32(0, true) + 1;
    new DataView(cur.buffer).setUint32(0, v >>> 0, true);
    return this.gpu(addr, 'atomic', cur);
  }

  snapshot(start: number, end: number): GpuSnapshot {
    const s = gpuKind('xe')!.gpu.snapshot(this.h.dev, this.proc, start, end);
    if (typeof s === 'number') assert.fail(`snapshot failed: ${s}`);
    return s;
  }

  /** How many pages of [start, end) the GPU maps in VRAM. */
  vramPages(start: number, end: number): number {
    return this.snapshot(start, end).ptes.filter((p) => p.mem === 'vram').length;
  }

  destroyVm(): number {
    return this.h.sys.ioctl(this.fd, 'DRM_IOCTL_XE_VM_DESTROY', { vm_id: this.vm });
  }
}

/** A System with one xe device. */
export class XeHarness {
  readonly sys: System;
  readonly dev: Device;

  constructor(opts: XeHarnessOptions = {}) {
    this.sys = new System({ ram: opts.ram ?? 256 * MiB, swap: 0 });
    const kind = gpuKind('xe')!;
    const dev = this.sys.run(
      'probe',
      deviceRegister(this.sys, 'xe0', kind.driver, { vram: opts.vram ?? 16 * MiB, ...(opts.config ?? {}) }),
    );
    if (typeof dev === 'number') assert.fail(`xe probe failed: ${dev}`);
    this.dev = dev;
  }

  /** A process (new, or `proc`) with the device open and a fault-mode VM. */
  client(proc: Process = this.sys.createProcess()): XeClient {
    const fd = this.sys.run('open', deviceOpen(this.sys, 'xe0', proc));
    assert.ok(fd >= 0, `open failed: ${fd}`);
    const arg = { flags: DRM_XE_VM_CREATE_FLAG.LR_MODE | DRM_XE_VM_CREATE_FLAG.FAULT_MODE, vm_id: 0 };
    assert.equal(this.sys.ioctl(fd, 'DRM_IOCTL_XE_VM_CREATE', arg), 0);
    return new XeClient(this, proc, fd, arg.vm_id);
  }

  /** Closes every file, exits every process, and checks every oracle, teardown included. */
  finish(): void {
    for (const fd of [...this.sys.files.keys()]) this.sys.close(fd);
    for (const p of this.sys.processes.values()) if (!p.exited) this.sys.exit(p);
    this.sys.run('remove', deviceUnregister(this.dev));
    const v = checkAll(this.sys, { teardown: true });
    assert.deepEqual(
      v.map((x) => `${x.oracle}: ${x.message}`),
      [],
    );
  }
}

export const PAGE = PAGE_SIZE;
