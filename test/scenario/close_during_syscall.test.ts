/**
 * close() of a file while another thread is inside a syscall on it. The syscall holds the file
 * (fdget, or fget for mmap), so close() only drops the descriptor and the release runs when the
 * syscall puts the file:
 * - ioctl: the dmirror's release removes its interval notifier; run beside the ioctl, it would
 *   free the notifier the ioctl's fault loop is still reading;
 * - mmap of a memfd: the last close evicts the inode's pages; between the descriptor lookup and
 *   the new VMA's own reference (mmap sleeps on the mmap lock) that would drop the file's data;
 * - pwrite to a memfd: its page allocations may sleep in reclaim; an eviction meanwhile would
 *   leave the pages it allocates afterwards in an inode nothing frees.
 */
import { describe, it } from 'node:test';
import { exploreClean, RAM_FULL_WITH_MEMFD } from './helpers.ts';

const SCENARIO = `version: 1
system: { ram: 16MiB, swap: 0 }
devices:
  gpu0: { type: dmirror }
processes: [p]
setup:
  - { op: mmap, proc: p, length: 16KiB, prot: [read, write], flags: [private, anonymous], save: buf }
  - { op: dmirror_open, device: gpu0, proc: p, save: fd }
threads:
  a:
    - { op: dmirror_close, fd: fd }
  b:
    - op: HMM_DMIRROR_WRITE
      fd: fd
      addr: buf
      npages: 4
      data: { fill: 7 }
      expect: { any: [{ ret: 0 }, { errno: EBADF }] }
final:
  - { op: check }
`;

// The mapping either fails (the descriptor went first) or shows the file's data.
const MMAP = `version: 1
system: { ram: 16MiB, swap: 0 }
processes: [p]
setup:
  - { op: memfd_create, save: mfd }
  - { op: ftruncate, fd: mfd, length: 16KiB }
  - { op: pwrite, fd: mfd, offset: 0, length: 16KiB, data: { fill: 5 } }
threads:
  a:
    - { op: close, fd: mfd }
  b:
    - op: mmap
      proc: p
      addr: 0x10000000
      length: 16KiB
      prot: [read, write]
      flags: [shared, fixed]
      fd: mfd
      expect: { any: [{ errno: EBADF }, { ret: 0x10000000 }] }
  c:
    - op: cpu_read
      proc: p
      addr: 0x10000000
      length: 4KiB
      expect: { any: [{ errno: EFAULT }, { data: { fill: 5 } }] }
final:
  - { op: check }
`;

// RAM is full of anonymous pages, so the pwrite's allocations reclaim (and yield) part way.
const PWRITE = `${RAM_FULL_WITH_MEMFD}threads:
  a:
    - { op: close, fd: mfd }
  b:
    - op: pwrite
      fd: mfd
      offset: 0
      length: 128KiB
      data: { fill: 5 }
      expect: { any: [{ errno: EBADF }, { ret: 131072 }] }
final:
  - { op: check }
`;

describe('close() during a syscall on the same file', () => {
  it('ioctl: the release waits for the ioctl to put the file, in every interleaving', () => {
    exploreClean(SCENARIO, 2000);
  });

  it('mmap of a memfd: the file keeps its pages until the mapping holds it', () => {
    exploreClean(MMAP, 2000, 1);
  });

  it('pwrite to a memfd: no page outlives the file', () => {
    exploreClean(PWRITE, 1000, 1);
  });
});
