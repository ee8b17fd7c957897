/**
 * The UVM-style driver unmaps the pages it migrates to the GPU from the GPU's page table first,
 * as uvm_va_block_make_resident_copy() unmaps every processor that maps them. The driver ignores
 * its own MIGRATE invalidation, and a retried service remaps only what it still wants: pages the
 * GPU had mapped remotely in system memory, migrated in an attempt that then retried, kept GPU
 * PTEs naming the system pages the migration freed.
 */
import { describe, it } from 'node:test';
import { runClean } from './helpers.ts';

// Pages 1-16 are swapped out. The first read migrates page 0 (empty) and maps pages 1-15
// remotely after faulting them in; the second read migrates pages 1-15, finds page 16 still in
// swap, faults it and the rest of its range in (pulling pages 17-31 back) and retries.
const SCENARIO = `version: 1
system: { ram: 8MiB, swap: 8MiB }
devices:
  gpu2: { type: uvm, config: { memory: 4MiB } }
processes: [p]
steps:
  - { op: mmap, proc: p, length: 2MiB, prot: [read, write], flags: [private, anonymous], save: b }
  - { op: cpu_write, proc: p, addr: b+4KiB, length: 64KiB, data: { fill: 1 } }
  - { op: reclaim, pages: 1024 }
  - { op: gpu_access, device: gpu2, proc: p, address: b+4KiB, length: 1, access: read, expect: { data: { bytes: [1] } } }
  - { op: gpu_access, device: gpu2, proc: p, address: b+64KiB, length: 1, access: read, expect: { data: { bytes: [1] } } }
  - { op: check }
  - { op: cpu_read, proc: p, addr: b+4KiB, length: 1, expect: { data: { bytes: [1] } } }
`;

describe('UVM-style migration to the GPU', () => {
  it('leaves no GPU mapping of a system page it moved, across a retried service', () => {
    runClean(SCENARIO);
  });
});
