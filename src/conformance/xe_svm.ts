/**
 * Ported from IGT's tests/intel/xe_exec_system_allocator.c (the revision in SELFTEST_SOURCES):
 * the subtests whose subject is memory management, under IGT's subtest names. A GPU batch is
 * reduced to the memory accesses it makes: fetching the batch the CPU wrote into the buffer, then
 * MI_STORE_DWORD_IMM of a value into the buffer (or MI_ATOMIC_INC). What IGT checks afterwards
 * (the CPU reads back each value, the fence signalled or not) is checked the same way here.
 *
 * Threads and processes of a subtest run one after another: the model is sequential here, and
 * their interleavings are what `hetmem explore` and examples/races/gpusvm-* are for.
 *
 * Not ported (and why): see XE_SVM_NOT_PORTED below.
 */
import assert from 'node:assert/strict';
import {
  MAP_ANONYMOUS,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import {
  DRM_XE_MEM_RANGE_ATTR,
  DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM_FD,
} from '../kernel/drivers/gpu/xe_vm.ts';
import { XE_ATOMIC } from '../kernel/drivers/gpu/xe_types.ts';
import type { ConformanceCase } from './types.ts';
import { MiB, SZ_2M, SZ_4K, SZ_64K, XeClient, XeHarness } from './xe_harness.ts';

/** sizeof(struct test_exec_data) rounded as the buffer holds it (batch[32], pad, syncs, data). */
const DATA = 160;
/** Offset of `data` in struct test_exec_data. */
const DATA_OFF = 152;
const VAL_ATOMIC_EXPECTED = 56;

type Flag =
  | 'MMAP'
  | 'NEW'
  | 'FREE'
  | 'SKIP_MEMSET'
  | 'FILE_BACKED'
  | 'LOCK'
  | 'MMAP_SHARED'
  | 'HUGE_PAGE'
  | 'FORK_READ'
  | 'FORK_READ_AFTER'
  | 'MREMAP'
  | 'DONTUNMAP'
  | 'EVERY_OTHER_CHECK'
  | 'MULTI_FAULT'
  | 'PREFETCH'
  | 'MADVISE_SWIZZLE';

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
/** IGT's WRITE_VALUE(): a per-exec value (rand() << 12 | i there; a fixed mix here). */
const value = (i: number, salt = 0): number =>
  (((Math.imul(i + 1, 0x9e3779b1) ^ (salt << 20)) & 0xfffff000) | (i & 0xfff)) >>> 0;

/** A buffer as test_exec allocates it (malloc, mmap, shared, file, huge, locked). */
function allocBuffer(c: XeClient, size: number, flags: ReadonlySet<Flag>): number {
  const sys = c.h.sys;
  if (!flags.has('MMAP')) return c.alignedAlloc(SZ_4K, size);
  if (flags.has('HUGE_PAGE')) {
    const a = c.alignedAlloc(SZ_2M, alignUp(size, SZ_2M));
    assert.equal(sys.madvise(c.proc, a, alignUp(size, SZ_2M), 14 /* MADV_HUGEPAGE */), 0);
    return a;
  }
  let fd = -1;
  if (flags.has('FILE_BACKED')) {
    fd = sys.memfdCreate('xe_exec_system_allocator');
    assert.ok(fd >= 0);
    assert.equal(sys.ftruncate(fd, size), 0);
  }
  const mflags =
    (flags.has('MMAP_SHARED') || fd >= 0 ? MAP_SHARED : MAP_PRIVATE) |
    (fd >= 0 ? 0 : MAP_ANONYMOUS) |
    (flags.has('LOCK') ? MAP_LOCKED : 0);
  const a = sys.mmap(c.proc, 0, size, PROT_READ | PROT_WRITE, mflags, fd);
  assert.ok(a > 0, `mmap: ${a}`);
  if (fd >= 0) sys.close(fd);
  return a;
}

/**
 * test_exec(): `nExecs` GPU stores into a buffer of `boSize` bytes (IGT's default: the execs'
 * structs, page-aligned), each exec `stride` structs after the last, then the CPU checks them.
 */
function testExec(
  c: XeClient,
  nExecs: number,
  boSize: number,
  stride: number,
  flags: ReadonlySet<Flag>,
): void {
  const sys = c.h.sys;
  const per = DATA * (stride === 0 ? 1 : stride);
  const size = boSize !== 0 ? boSize : alignUp(per * nExecs, SZ_4K);
  let data = allocBuffer(c, size, flags);
  if (!flags.has('SKIP_MEMSET')) c.memset(data, 0, size);
  const checks: { addr: number; expect: number; i: number }[] = [];
  const slotOf = (base: number, i: number): number => base + ((i * per) % (size - DATA + 1));
  for (let i = 0; i < nExecs; i++) {
    if (flags.has('NEW') && i > 0) {
      const fresh = allocBuffer(c, size, flags);
      if (!flags.has('SKIP_MEMSET')) c.memset(fresh, 0, size);
      if (flags.has('FREE')) {
        assert.equal(sys.munmap(c.proc, data, size), 0);
        checks.length = 0;
      }
      data = fresh;
    }
    const slot = slotOf(data, i);
    const v = value(i);
    c.memset(slot, 0x11, 16); // the batch: MI_STORE_DWORD_IMM, address, value, MI_BATCH_BUFFER_END
    if (flags.has('MADVISE_SWIZZLE')) {
      const devmemFd = i % 2 === 1 ? DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM_FD : 0;
      const start = data - (data % SZ_4K);
      assert.equal(
        c.madvise(start, alignUp(data + size, SZ_4K) - start, {
          type: DRM_XE_MEM_RANGE_ATTR.PREFERRED_LOC,
          preferred_mem_loc_devmem_fd: devmemFd,
        }),
        0,
      );
    }
    if (flags.has('PREFETCH')) {
      const r = c.prefetch(data, size, 1);
      assert.equal(r, 0, `prefetch to VRAM: ${r}`);
    }
    assert.equal(c.gpuStoreDword(slot, slot + DATA_OFF, v), 0, `exec ${i}: the GPU store did not complete`);
    if (flags.has('MULTI_FAULT')) {
      for (let k = 1; k < 4 && slot + DATA_OFF + k * SZ_4K + 4 <= data + size; k++)
        assert.equal(c.gpuStoreDword(slot, slot + DATA_OFF + k * SZ_4K, v + k), 0);
    }
    checks.push({ addr: slot + DATA_OFF, expect: v, i });
  }
  if (flags.has('FORK_READ')) {
    const { ret, child } = sys.fork(c.proc, 'child');
    assert.equal(ret > 0, true, `fork: ${ret}`);
    const cc = new XeClient(c.h, child!, c.fd, c.vm);
    for (const k of checks)
      assert.equal(cc.cpuRead32(k.addr), k.expect, 'the child reads what the GPU wrote');
    assert.equal(sys.exit(child!), 0);
    if (!flags.has('FORK_READ_AFTER')) return;
  }
  if (flags.has('MREMAP')) {
    const dst = c.mmap(size);
    assert.equal(sys.munmap(c.proc, dst, size), 0);
    const mflags = MREMAP_MAYMOVE | MREMAP_FIXED | (flags.has('DONTUNMAP') ? MREMAP_DONTUNMAP : 0);
    assert.equal(sys.mremap(c.proc, data, size, size, mflags, dst), dst);
    for (const k of checks) k.addr += dst - data;
    data = dst;
    for (const k of checks) {
      const v = value(k.i, 1);
      assert.equal(
        c.gpuStoreDword(k.addr - DATA_OFF, k.addr, v),
        0,
        'the GPU stores at the remapped address',
      );
      k.expect = v;
    }
  }
  for (const k of checks) {
    if (flags.has('EVERY_OTHER_CHECK') && k.i % 2 === 0) continue;
    assert.equal(c.cpuRead32(k.addr), k.expect, `exec ${k.i}: data`);
  }
}

/** A fresh system, one client with IGT's bind_system_allocator(), the body, and every oracle at teardown. */
function withXe(body: (h: XeHarness, c: XeClient) => void, vram = 16 * MiB): () => void {
  return () => {
    const h = new XeHarness({ vram });
    const c = h.client();
    c.bindSystemAllocator();
    body(h, c);
    h.finish();
  };
}

function execCase(
  name: string,
  nExecs: number,
  boSize: number,
  stride: number,
  flags: Flag[],
): ConformanceCase {
  return {
    suite: 'xe-svm',
    name,
    variant: '',
    run: withXe((_h, c) => {
      testExec(c, nExecs, boSize, stride, new Set(flags));
    }),
  };
}

/** The `sections` of igt_main that are ported, with their flags. */
const SECTIONS: [string, Flag[]][] = [
  ['malloc', []],
  ['malloc-madvise', ['MADVISE_SWIZZLE']],
  ['malloc-prefetch', ['PREFETCH']],
  ['malloc-multi-fault', ['MULTI_FAULT']],
  ['malloc-fork-read', ['FORK_READ']],
  ['malloc-fork-read-after', ['FORK_READ', 'FORK_READ_AFTER']],
  ['malloc-mlock', ['LOCK']],
  ['malloc-nomemset', ['SKIP_MEMSET']],
  ['mmap', ['MMAP']],
  ['mmap-prefetch', ['MMAP', 'PREFETCH']],
  ['mmap-remap', ['MMAP', 'MREMAP']],
  ['mmap-remap-dontunmap', ['MMAP', 'MREMAP', 'DONTUNMAP']],
  ['mmap-remap-eocheck', ['MMAP', 'MREMAP', 'EVERY_OTHER_CHECK']],
  ['mmap-huge', ['MMAP', 'HUGE_PAGE']],
  ['mmap-shared', ['MMAP', 'LOCK', 'MMAP_SHARED']],
  ['mmap-mlock', ['MMAP', 'LOCK']],
  ['mmap-file', ['MMAP', 'FILE_BACKED']],
  ['free', ['NEW', 'FREE']],
  ['new', ['NEW']],
  ['new-prefetch', ['NEW', 'PREFETCH']],
  ['mmap-free', ['MMAP', 'NEW', 'FREE']],
  ['mmap-new', ['MMAP', 'NEW']],
];

/** partial(): a 2 MiB buffer the GPU wrote, half (or the middle half) unmapped, then written again. */
function partialCase(name: string, cpuFault: boolean, remap: boolean, middle: boolean): ConformanceCase {
  return {
    suite: 'xe-svm',
    name: `partial-${name}`,
    variant: '',
    run: withXe((h, c) => {
      const sys = h.sys;
      const boSize = SZ_2M;
      const unmapOffset = middle ? boSize / 4 : 0;
      const old = c.alignedAlloc(boSize, boSize);
      c.memset(old, 5, boSize);
      const second = old + unmapOffset + boSize / 2;
      const v0 = value(0);
      const v1 = value(1);
      assert.equal(c.gpuStoreDword(old, old + DATA_OFF, v0), 0);
      if (cpuFault) assert.equal(c.cpuRead32(old + DATA_OFF), v0);
      assert.equal(sys.munmap(c.proc, old + unmapOffset, boSize / 2), 0);
      if (remap) {
        const a = sys.mmap(
          c.proc,
          old + unmapOffset,
          boSize / 2,
          PROT_READ | PROT_WRITE,
          MAP_PRIVATE | MAP_ANONYMOUS | 0x10 /* MAP_FIXED */ | MAP_LOCKED,
        );
        assert.equal(a, old + unmapOffset);
      }
      // data[1] of the second exec lives in the half that stayed mapped.
      c.memset(second + DATA, 5, 16);
      assert.equal(c.gpuStoreDword(second + DATA, second + DATA + DATA_OFF, v1), 0);
      assert.equal(c.cpuRead32(second + DATA + DATA_OFF), v1);
      if (middle || !cpuFault) {
        // What was written before the unmap and is still mapped kept its contents.
        if (unmapOffset > 0) assert.equal(c.cpuRead32(old + DATA_OFF), v0);
      }
    }),
  };
}

/**
 * many_allocs(): allocations of `allocSize`, every `stride` bytes stored to by the GPU; returns
 * the check (the CPU reads each value back, then frees the allocation), which processes_evict()
 * runs once every process has touched its allocations.
 */
function manyAllocs(c: XeClient, totalAlloc: number, allocSize: number, stride: number): () => void {
  const numAllocs = Math.floor((9 * Math.floor(totalAlloc / allocSize)) / 8);
  const allocs: number[] = [];
  for (let i = 0; i < numAllocs; i++) {
    const a = c.alignedAlloc(SZ_2M, allocSize);
    allocs.push(a);
    for (let off = 0, n = 0; off + DATA <= allocSize; off += stride, n++) {
      c.memset(a + off, 0x11, 16);
      assert.equal(c.gpuStoreDword(a + off, a + off + DATA_OFF, value(n, i)), 0, `alloc ${i} write ${n}`);
    }
  }
  return () => {
    for (let i = 0; i < numAllocs; i++) {
      for (let off = 0, n = 0; off + DATA <= allocSize; off += stride, n++)
        assert.equal(c.cpuRead32(allocs[i] + off + DATA_OFF), value(n, i), `alloc ${i} check ${n}`);
      assert.equal(c.h.sys.munmap(c.proc, allocs[i], allocSize), 0);
    }
  };
}

/** The madvise sections: a 64 KiB buffer, an attribute, and a GPU MI_ATOMIC_INC on it. */
function madviseCase(name: string, body: (h: XeHarness, c: XeClient, buf: number) => void): ConformanceCase {
  return {
    suite: 'xe-svm',
    name: `madvise-${name}`,
    variant: '',
    run: withXe((h, c) => {
      const buf = c.alignedAlloc(SZ_64K, SZ_64K);
      c.memset(buf, 0, SZ_64K);
      c.cpuWrite32(buf + DATA_OFF, VAL_ATOMIC_EXPECTED - 1);
      body(h, c, buf);
    }),
  };
}

const atomicAttr = (c: XeClient, start: number, len: number, val: number): number =>
  c.madvise(start, len, { type: DRM_XE_MEM_RANGE_ATTR.ATOMIC, atomic_val: val });
const preferVram = (c: XeClient, start: number, len: number): number =>
  c.madvise(start, len, { type: DRM_XE_MEM_RANGE_ATTR.PREFERRED_LOC, preferred_mem_loc_devmem_fd: 0 });

/** The atomic increments to VAL_ATOMIC_EXPECTED and ran on VRAM pages. */
function atomicIncWorks(c: XeClient, buf: number): void {
  assert.equal(c.gpuAtomicInc(buf + DATA_OFF), 0, 'the GPU atomic completed');
  assert.ok(
    c.snapshot(buf, buf + SZ_64K).ptes.some((p) => p.atomic && p.mem === 'vram'),
    'atomics run on VRAM',
  );
  assert.equal(c.cpuRead32(buf + DATA_OFF), VAL_ATOMIC_EXPECTED);
}

const MADVISE_CASES: ConformanceCase[] = [
  madviseCase('atomic-inc', (_h, c, buf) => {
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.DEVICE), 0);
    atomicIncWorks(c, buf);
  }),
  madviseCase('preffered-loc-atomic-vram', (_h, c, buf) => {
    assert.equal(preferVram(c, buf, SZ_64K), 0);
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.DEVICE), 0);
    atomicIncWorks(c, buf);
  }),
  madviseCase('preffered-loc-atomic-gl', (_h, c, buf) => {
    assert.equal(preferVram(c, buf, SZ_64K), 0);
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.GLOBAL), 0);
    atomicIncWorks(c, buf);
  }),
  madviseCase('preffered-loc-atomic-und', (_h, c, buf) => {
    assert.equal(preferVram(c, buf, SZ_64K), 0);
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.UNDEFINED), 0);
    atomicIncWorks(c, buf);
  }),
  madviseCase('preffered-loc-atomic-cpu', (_h, c, buf) => {
    // Only CPU atomics are allowed: the GPU atomic's fault is refused (-EACCES in the driver)
    // and the batch never completes; the value is untouched.
    assert.equal(preferVram(c, buf, SZ_64K), 0);
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.CPU), 0);
    assert.notEqual(c.gpuAtomicInc(buf + DATA_OFF), 0);
    assert.equal(c.cpuRead32(buf + DATA_OFF), VAL_ATOMIC_EXPECTED - 1);
  }),
  madviseCase('preffered-loc-sram-migrate-pages', (_h, c, buf) => {
    // In VRAM first; preferring system memory then moves every page back on the next fault.
    assert.equal(c.gpuStoreDword(buf, buf + 2 * DATA_OFF, 1), 0);
    assert.ok(c.vramPages(buf, buf + SZ_64K) > 0);
    assert.equal(
      c.madvise(buf, SZ_64K, {
        type: DRM_XE_MEM_RANGE_ATTR.PREFERRED_LOC,
        preferred_mem_loc_devmem_fd: DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM_FD,
      }),
      0,
    );
    assert.equal(c.gpuStoreDword(buf, buf + 2 * DATA_OFF, 2), 0);
    assert.equal(c.vramPages(buf, buf + SZ_64K), 0, 'every page migrated to system memory');
    assert.equal(c.cpuRead32(buf + 2 * DATA_OFF), 2);
    atomicIncWorks(c, buf);
  }),
  madviseCase('no-range-invalidate-same-attr', (_h, c, buf) => {
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.GLOBAL), 0);
    assert.equal(c.prefetch(buf, SZ_64K, 1), 0);
    const before = c.snapshot(buf, buf + SZ_64K).ptes.length;
    assert.ok(before > 0);
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.GLOBAL), 0);
    assert.equal(c.snapshot(buf, buf + SZ_64K).ptes.length, before, 'same attribute: the mapping stays');
    atomicIncWorks(c, buf);
  }),
  madviseCase('range-invalidate-change-attr', (_h, c, buf) => {
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.GLOBAL), 0);
    assert.equal(c.prefetch(buf, SZ_64K, 1), 0);
    assert.ok(c.snapshot(buf, buf + SZ_64K).ptes.length > 0);
    assert.equal(atomicAttr(c, buf, SZ_64K, XE_ATOMIC.DEVICE), 0);
    assert.equal(c.snapshot(buf, buf + SZ_64K).ptes.length, 0, 'a changed attribute invalidates the range');
    atomicIncWorks(c, buf);
  }),
  madviseCase('multi-vma', (_h, c, buf) => {
    // Two madvise ops on the two halves of the buffer, each half its own GPU VMA afterwards.
    assert.equal(atomicAttr(c, buf, SZ_64K / 2, XE_ATOMIC.DEVICE), 0);
    assert.equal(atomicAttr(c, buf + SZ_64K / 2, SZ_64K / 2, XE_ATOMIC.GLOBAL), 0);
    atomicIncWorks(c, buf);
    c.cpuWrite32(buf + SZ_64K / 2 + DATA_OFF, VAL_ATOMIC_EXPECTED - 1);
    assert.equal(c.gpuAtomicInc(buf + SZ_64K / 2 + DATA_OFF), 0);
    assert.equal(c.cpuRead32(buf + SZ_64K / 2 + DATA_OFF), VAL_ATOMIC_EXPECTED);
  }),
];

export const XE_SVM_NOT_PORTED: readonly { readonly sections: string; readonly why: string }[] = [
  {
    sections: '*-race, *-race-nomemset, threads-*-race',
    why: 'races between CPU and GPU access are explored, not run once: examples/races/gpusvm-* and hetmem explore',
  },
  {
    sections: '*-busy, *-bo-unmap, new-bo-map, *-mix-bo',
    why: 'GEM buffer objects (xe_bo_create, BO binds) are not modelled',
  },
  {
    sections: '*-benchmark',
    why: 'performance is measured by hetmem bench (xe figures), not in conformance cases',
  },
  {
    sections: 'pat-index-*, madvise-split-vma, madvise-atomic-vma',
    why: 'PAT indexes and BO VMAs are not modelled',
  },
  {
    sections: 'many-execqueues-*, *-large-execqueues-*',
    why: 'exec queues are not modelled: one GPU context per VM',
  },
  { sections: 'mmap-remap-ro-*', why: 'read-only remaps are not ported yet' },
  { sections: 'compute', why: 'compute kernels are not modelled' },
];

/** Every ported case. */
export function xeSvmCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const [s, flags] of SECTIONS) cases.push(execCase(`once-${s}`, 1, 0, 0, flags));
  cases.push(execCase('once-large-malloc', 1, SZ_2M, 0, []));
  cases.push(execCase('twice-malloc', 2, 0, 0, []));
  cases.push(execCase('twice-large-malloc', 2, SZ_2M, 0, []));
  cases.push(execCase('twice-malloc-prefetch', 2, 0, 0, ['PREFETCH']));
  cases.push(execCase('twice-free', 2, 0, 0, ['NEW', 'FREE']));
  cases.push(execCase('many-malloc', 128, 0, 0, []));
  cases.push(execCase('many-stride-malloc', 128, 0, 256, []));
  cases.push(execCase('many-64k-malloc', 128, SZ_64K, 0, []));
  cases.push(execCase('many-large-malloc', 128, SZ_2M, 0, []));
  cases.push(execCase('many-new', 128, 0, 0, ['NEW']));
  cases.push(execCase('many-mmap-remap', 128, 0, 0, ['MMAP', 'MREMAP']));
  cases.push({
    suite: 'xe-svm',
    name: 'threads-many-malloc',
    variant: '',
    run: withXe((h, c) => {
      // Each thread its own VM on the shared fd.
      for (const vm of [c, h.secondVm(c)]) testExec(vm, 128, 0, 0, new Set());
    }),
  });
  cases.push({
    suite: 'xe-svm',
    name: 'threads-shared-vm-many-malloc',
    variant: '',
    run: withXe((_h, c) => {
      for (let t = 0; t < 2; t++) testExec(c, 128, 0, 0, new Set());
    }),
  });
  cases.push({
    suite: 'xe-svm',
    name: 'threads-shared-vm-shared-alloc-many-stride-malloc',
    variant: '',
    run: withXe((_h, c) => {
      // Both threads store into one allocation, each at its own strided slots.
      const size = alignUp(DATA * 256 * 128, SZ_4K);
      const buf = c.alignedAlloc(SZ_2M, size);
      c.memset(buf, 0, size);
      for (let i = 0; i < 128; i++)
        for (let t = 0; t < 2; t++) {
          const slot = buf + (i * 256 + t) * DATA;
          assert.equal(c.gpuStoreDword(slot, slot + DATA_OFF, value(i, t)), 0);
        }
      for (let i = 0; i < 128; i++)
        for (let t = 0; t < 2; t++)
          assert.equal(c.cpuRead32(buf + (i * 256 + t) * DATA + DATA_OFF), value(i, t));
    }),
  });
  cases.push({
    suite: 'xe-svm',
    name: 'process-many-malloc',
    variant: '',
    run: () => {
      const h = new XeHarness({ vram: 16 * MiB });
      for (let p = 0; p < 3; p++) {
        const c = h.client();
        c.bindSystemAllocator();
        testExec(c, 128, 0, 0, new Set());
      }
      h.finish();
    },
  });
  cases.push({
    suite: 'xe-svm',
    name: 'fault',
    variant: '',
    run: withXe((h, c) => {
      // A batch at an address no CPU mapping backs: the GPU's fault cannot be serviced, the
      // exec never completes, and the VM still works afterwards.
      const bad = 0x7f0000000000;
      assert.equal(c.gpuStoreDword(bad, bad + DATA_OFF, 1), -14 /* -EFAULT */);
      assert.ok((h.sys.trace.counters.get('xe_pagefault_failed') ?? 0) > 0);
      testExec(c, 1, 0, 0, new Set());
    }),
  });
  for (const [n, cf, rm, mid] of [
    ['munmap-cpu-fault', true, false, false],
    ['munmap-no-cpu-fault', false, false, false],
    ['remap-cpu-fault', true, true, false],
    ['remap-no-cpu-fault', false, true, false],
    ['middle-munmap-cpu-fault', true, false, true],
    ['middle-munmap-no-cpu-fault', false, false, true],
    ['middle-remap-cpu-fault', true, true, true],
    ['middle-remap-no-cpu-fault', false, true, true],
  ] as const)
    cases.push(partialCase(n, cf, rm, mid));
  cases.push({
    suite: 'xe-svm',
    name: 'unaligned-alloc',
    variant: '',
    run: withXe((_h, c) => {
      manyAllocs(c, (MiB + MiB / 2) * 8, MiB + MiB / 2, SZ_64K)();
    }),
  });
  cases.push({
    suite: 'xe-svm',
    name: 'evict-malloc',
    variant: '',
    run: withXe((h, c) => {
      manyAllocs(c, 32 * MiB, 4 * MiB, MiB)();
      assert.ok((h.sys.trace.counters.get('xe_svm_evict') ?? 0) > 0, 'VRAM was evicted');
    }, 32 * MiB),
  });
  cases.push({
    suite: 'xe-svm',
    name: 'processes-evict-malloc',
    variant: '',
    run: () => {
      const h = new XeHarness({ vram: 32 * MiB });
      const clients = [h.client(), h.client()];
      for (const c of clients) c.bindSystemAllocator();
      const checks = clients.map((c) => manyAllocs(c, 16 * MiB + 8 * MiB, 4 * MiB, MiB));
      for (const check of checks) check();
      assert.ok((h.sys.trace.counters.get('xe_svm_evict') ?? 0) > 0, 'VRAM was evicted');
      h.finish();
    },
  });
  cases.push(...MADVISE_CASES);
  return cases;
}
