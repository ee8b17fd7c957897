/**
 * Eviction of device memory a device-exclusive entry maps. A device-coherent page is mapped by
 * the CPU like any anonymous page, so another device can take it exclusive. try_to_migrate_one()
 * treats a device-exclusive entry as the mapping it stands for (since 6.15) and turns it into a
 * migration entry, so evicting the coherent device's memory moves that page back to system RAM;
 * left mapped, the page would keep memunmap_pages() waiting for ever.
 */
import { describe, it } from 'node:test';
import { runClean } from './helpers.ts';

const SCENARIO = `version: 1
system: { ram: 16MiB, swap: 0 }
devices:
  gpu0: { type: dmirror, memory: private }
  gpu1: { type: dmirror, memory: coherent }
processes: [q]
steps:
  - { op: mmap, proc: q, length: 16KiB, prot: [read, write], flags: [private, anonymous], save: b }
  - { op: cpu_write, proc: q, addr: b, length: 16KiB, data: { pattern: index32 } }
  - { op: dmirror_open, device: gpu1, proc: q, save: d1 }
  - { op: dmirror_open, device: gpu0, proc: q, save: d0 }
  - { op: HMM_DMIRROR_MIGRATE_TO_DEV, fd: d1, addr: b, npages: 4, expect: { ret: 0, cpages: 4 } }
  - { op: HMM_DMIRROR_EXCLUSIVE, fd: d0, addr: b, npages: 1, expect: { ret: 0, cpages: 1 } }
  - { op: HMM_DMIRROR_RELEASE, fd: d1, addr: b, npages: 4 }
  - { op: check }
  - { op: cpu_read, proc: q, addr: b, length: 16KiB, expect: { data: { pattern: index32 } } }
`;

describe('device memory eviction and device-exclusive entries', () => {
  it('a coherent page another device holds exclusive is migrated back to RAM', () => {
    runClean(SCENARIO);
  });
});
