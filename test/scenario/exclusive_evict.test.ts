/**
 * Eviction of device memory a device-exclusive entry maps. A device-coherent page is mapped by
 * the CPU like any anonymous page, so another device can take it exclusive. try_to_migrate_one()
 * treats a device-exclusive entry as the mapping it stands for (since 6.15) and turns it into a
 * migration entry, so evicting the coherent device's memory moves that page back to system RAM;
 * left mapped, the page would keep memunmap_pages() waiting for ever.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';

const FILE = fileURLToPath(new URL('../fixtures/inline.yaml', import.meta.url));

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
    const { report } = runScenario(parseScenarioText(SCENARIO, FILE), kernel());
    assert.deepEqual(
      report.violations.map((v) => `${v.oracle}: ${v.message}`),
      [],
    );
    assert.ok(report.ok, JSON.stringify(report.steps.filter((s) => !s.ok)));
  });
});
