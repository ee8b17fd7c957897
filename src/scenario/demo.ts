/**
 * The built-in demo `hetmem run` shows without a file: a process maps memory, writes it, forks
 * (the pages become copy-on-write), the child writes and gets its own copy; with the mirror device
 * modelled, a device then mirrors the memory, migrates it into device memory, and the CPU faults
 * it back. Written as scenario text so it doubles as an example of the format.
 */
import type { KernelApi } from './kernel.ts';

const BASE = `version: 1
name: demo
description: mmap, CPU writes, fork with copy-on-write{{DEVICE_DESC}}
system: { ram: 64MiB, swap: 64MiB }
{{DEVICES}}processes: [parent]
steps:
  - op: mmap
    comment: 64KiB of private anonymous memory; nothing is allocated until it is touched
    proc: parent
    length: 64KiB
    prot: [read, write]
    flags: [private, anonymous]
    save: buf
  - op: cpu_write
    comment: the first write to each page faults in a fresh anonymous page
    proc: parent
    addr: buf
    length: 64KiB
    data: { pattern: index32 }
  - op: fork
    comment: the child shares every page read-only; both page tables now point at the same frames
    proc: parent
    child: child
  - op: cpu_write
    comment: a write by the child breaks COW on that one page (a private copy for the child)
    proc: child
    addr: buf+4KiB
    length: 4KiB
    data: { fill: 0xAB }
  - op: cpu_read
    comment: the parent still sees its own data
    proc: parent
    addr: buf+4KiB
    length: 4KiB
    expect: { data: { pattern: index32, offset: 4KiB } }
  - op: cpu_read
    proc: child
    addr: buf+4KiB
    length: 4KiB
    expect: { data: { fill: 0xAB } }
  - op: exit
    proc: child
{{DEVICE_STEPS}}  - op: munmap
    proc: parent
    addr: buf
    length: 64KiB
  - op: exit
    proc: parent
  - op: check
    comment: every oracle, including teardown (every frame free again)
`;

const DEVICE_DESC = ', then a device mirror read and a migration to device memory and back';
const DEVICES = `devices:
  gpu0: { type: dmirror, memory: private }
`;
const DEVICE_STEPS = `  - op: dmirror_open
    comment: the device mirrors the parent's address space (an mmu_interval_notifier per range)
    device: gpu0
    proc: parent
    save: gpu
  - op: HMM_DMIRROR_READ
    comment: the device reads through hmm_range_fault; the pages are already present, so no faults
    fd: gpu
    addr: buf
    npages: 16
    expect: { cpages: 16, data: { pattern: index32 } }
  - op: HMM_DMIRROR_MIGRATE_TO_DEV
    comment: migrate_vma moves the pages into device-private memory; the CPU PTEs become device-private entries
    fd: gpu
    addr: buf
    npages: 16
    expect: { cpages: 16 }
  - op: cpu_read
    comment: a CPU access to a device-private entry faults, and the page migrates back to RAM
    proc: parent
    addr: buf+8KiB
    length: 4KiB
    expect: { data: { pattern: index32, offset: 8KiB } }
`;

/** The demo scenario text; device steps only when the mirror device is modelled. */
export function demoScenarioText(k: KernelApi): string {
  const dev = k.dmirror !== null;
  return BASE.replace('{{DEVICE_DESC}}', dev ? DEVICE_DESC : '')
    .replace('{{DEVICES}}', dev ? DEVICES : '')
    .replace('{{DEVICE_STEPS}}', dev ? DEVICE_STEPS : '');
}
