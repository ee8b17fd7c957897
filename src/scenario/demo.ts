/**
 * The built-in demo `hetmem run` shows without a file: a process maps memory, writes it, forks
 * (the pages become copy-on-write), the child writes and gets its own copy; then a device mirrors
 * the memory, migrates it into device memory, the CPU faults one page back and the device sends
 * the rest home. Written as scenario text so it doubles as an example of the format.
 */
const DEMO = `version: 1
name: demo
description: mmap, CPU writes, fork with copy-on-write, a device mirror read, a migration to device memory and back
system: { ram: 64MiB, swap: 64MiB }
devices:
  gpu0: { type: dmirror, memory: private }
processes: [parent]
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
  - op: exit
    proc: child
  - op: dmirror_open
    comment: the device mirrors the parent's address space (an mmu_interval_notifier over all of it)
    device: gpu0
    proc: parent
    save: gpu
  - op: HMM_DMIRROR_READ
    comment: the device page table is empty, so the read faults once through hmm_range_fault, then copies
    fd: gpu
    addr: buf
    npages: 16
    expect: { cpages: 16, faults: 1, data: { pattern: index32 } }
  - op: HMM_DMIRROR_MIGRATE_TO_DEV
    comment: migrate_vma moves the pages into device-private memory; the CPU PTEs become device-private entries
    fd: gpu
    addr: buf
    npages: 16
    expect: { cpages: 16 }
  - op: pagemap
    proc: parent
    addr: buf
    npages: 16
    expect: { pages: [device-private*16] }
  - op: cpu_read
    comment: a CPU access to a device-private entry faults (migrate_to_ram) and that one page comes back
    proc: parent
    addr: buf+8KiB
    length: 4KiB
    expect: { data: { pattern: index32, offset: 8KiB } }
  - op: HMM_DMIRROR_MIGRATE_TO_SYS
    comment: the device sends the other 15 pages home
    fd: gpu
    addr: buf
    npages: 16
    expect: { cpages: 15 }
  - op: pagemap
    proc: parent
    addr: buf
    npages: 16
    expect: { pages: [ram*16] }
  - { op: dmirror_close, fd: gpu }
  - { op: munmap, proc: parent, addr: buf, length: 64KiB }
  - { op: exit, proc: parent }
  - op: check
    comment: every oracle, including teardown (every frame free again)
`;

/** The demo scenario text. */
export function demoScenarioText(): string {
  return DEMO;
}
