/**
 * The xe garbage collector and a second UNMAP of a range it is collecting. A partly unmapped
 * range in VRAM is evicted before it is removed, and the eviction sleeps; an munmap of the rest
 * meanwhile invalidates the range again. The collector unlinks a range with list_del(), which
 * leaves its link non-empty, so that invalidation does not queue the range a second time: were it
 * queued, the collector would evict it again after drm_gpusvm_range_remove() freed it and its
 * notifier.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runClean } from './helpers.ts';

const SCENARIO = `version: 1
system: { ram: 8MiB, swap: 8MiB }
devices:
  gpu3: { type: xe, config: { vram: 4MiB } }
processes: [q]
steps:
  - { op: mmap, proc: q, length: 64MiB, prot: [read, write], flags: [private, anonymous, noreserve], save: b }
  - { op: device_open, device: gpu3, proc: q, save: fd }
  - { op: DRM_IOCTL_XE_VM_CREATE, fd: fd, flags: DRM_XE_VM_CREATE_FLAG_FAULT_MODE, save: { vm_id: vm } }
  - op: DRM_IOCTL_XE_VM_BIND
    fd: fd
    vm_id: vm
    bind_op: DRM_XE_VM_BIND_OP_MAP
    flags: DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR
    addr: 0
    range: 281474976710656
  - comment: the GPU's atomic migrates the 2 MiB range to VRAM
    op: gpu_access
    device: gpu3
    address: b+4MiB
    length: 4097
    access: atomic
    data: { fill: 87 }
  - { op: gpu_snapshot, device: gpu3, addr: b+4MiB, length: 2MiB, expect: { ranges: 1, vram_pages: 512 } }
  - { op: munmap, proc: q, addr: b+4MiB+8KiB, length: 4096 }
  - { op: munmap, proc: q, addr: b, length: 64MiB }
  - { op: check }
`;

describe('xe garbage collector', () => {
  it('a range invalidated again while it is collected is collected once', () => {
    const report = runClean(SCENARIO);
    assert.ok((report.stats.drm_gpusvm_range_remove ?? 0) >= 1, JSON.stringify(report.stats));
  });
});
