/*
 * Guard regions: MADV_GUARD_INSTALL and MADV_GUARD_REMOVE, and how the markers meet the rest of
 * mm. The expected values are what Linux 6.18 does: each case was run on a live 6.18 kernel,
 * except the device's, which is read from the source (this machine has no test_hmm module).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  MADV,
  MAP_FIXED_NOREPLACE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import { HMM_DMIRROR_READ, createDmirrorDevice, dmirrorOpen } from '../../../src/kernel/drivers/test_hmm.ts';
import type { SmapsEntry } from '../../../src/kernel/fs/task_mmu.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { ANON_PRIVATE, ANON_SHARED, PAGE, RW, setup, teardown, writeOk } from './mm_helpers.ts';

const W = 0x6000_0000_0000;
const HPAGE = 2 * 1024 * 1024;

function mapAt(sys: System, p: Process, addr: number, len: number, prot = RW, flags = ANON_PRIVATE): number {
  return sys.mmap(p, addr, len, prot, flags | MAP_FIXED_NOREPLACE);
}

/** Per page as the live test printed pagemap: p present (x exclusive), s swap (a marker), - none. */
function pages(sys: System, p: Process, addr: number, n: number): string {
  return sys
    .pagemap(p, addr, n)
    .map((e) => (e.present ? (e.exclusive ? 'px' : 'p') : e.swap ? 's' : '-'))
    .join(',');
}

function mincore(sys: System, p: Process, addr: number, n: number): string {
  const vec = new Uint8Array(n);
  assert.equal(sys.mincore(p, addr, n * PAGE, vec), 0);
  return vec.join('');
}

describe('guard regions', () => {
  it('a guard faults on any access; DONTNEED keeps it, GUARD_REMOVE clears it', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    writeOk(sys, p, W, new Uint8Array(8 * PAGE).fill(5));
    assert.equal(sys.madvise(p, W + 2 * PAGE, 2 * PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(pages(sys, p, W, 8), 'px,px,s,s,px,px,px,px', 'the guarded pages were zapped');
    assert.equal(sys.read(p, W, 8 * PAGE).ret, -Errno.EFAULT);
    assert.equal(sys.write(p, W + 2 * PAGE, new Uint8Array(1)), -Errno.EFAULT);
    assert.equal(sys.read(p, W + 4 * PAGE, 4 * PAGE).ret, 4 * PAGE);
    assert.equal(mincore(sys, p, W, 8), '11001111');
    assert.equal(sys.madvise(p, W, 8 * PAGE, MADV.DONTNEED), 0);
    assert.equal(pages(sys, p, W, 8), '-,-,s,s,-,-,-,-');
    assert.equal(sys.madvise(p, W, 8 * PAGE, MADV.GUARD_REMOVE), 0);
    assert.equal(pages(sys, p, W, 8), '-,-,-,-,-,-,-,-');
    assert.deepEqual(sys.read(p, W, 8 * PAGE).data, new Uint8Array(8 * PAGE), 'zero-filled again');
    teardown(sys);
  });

  it('installing marks the whole VMA VM_MAYBE_GUARD (gu), for good; the flag does not keep VMAs apart', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    const flags = (a: number, n: number) =>
      (sys.smaps(p, a, a + n * PAGE) as SmapsEntry[]).map((e) => e.vmFlags);
    assert.equal(sys.madvise(p, W + 2 * PAGE, PAGE, MADV.GUARD_INSTALL), 0);
    assert.deepEqual(flags(W, 8), ['rd wr mr mw me gu ac'], 'no split');
    assert.equal(sys.madvise(p, W + 2 * PAGE, PAGE, MADV.GUARD_REMOVE), 0);
    assert.deepEqual(flags(W, 8), ['rd wr mr mw me gu ac'], 'never cleared');
    assert.equal(sys.mlock(p, W, 8 * PAGE), 0);
    assert.deepEqual(flags(W, 8), ['rd wr mr mw me gu lo ac']);
    assert.equal(sys.munlock(p, W, 8 * PAGE), 0);
    assert.equal(sys.mprotect(p, W + 4 * PAGE, 4 * PAGE, PROT_READ), 0);
    assert.deepEqual(flags(W, 8), ['rd wr mr mw me gu ac', 'rd mr mw me gu ac']);
    assert.equal(sys.mprotect(p, W + 4 * PAGE, 4 * PAGE, RW), 0);
    assert.equal(mapAt(sys, p, W + 8 * PAGE, 4 * PAGE), W + 8 * PAGE);
    assert.deepEqual(flags(W, 12), ['rd wr mr mw me gu ac'], 'a new neighbour merges into it');
    teardown(sys);
  });

  it('populating faults stop at a guard', () => {
    const { sys, p } = setup({ rlimitMemlock: 1 << 20 });
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    assert.equal(sys.madvise(p, W + 2 * PAGE, 2 * PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(sys.madvise(p, W, 8 * PAGE, MADV.POPULATE_WRITE), -Errno.EFAULT);
    assert.equal(sys.madvise(p, W, 8 * PAGE, MADV.POPULATE_READ), -Errno.EFAULT);
    assert.equal(sys.mlock(p, W, 8 * PAGE), -Errno.ENOMEM, 'the populate fails, as POSIX words it');
    assert.equal(pages(sys, p, W, 8), 'px,px,s,s,-,-,-,-', 'mlock populated up to the guard');
    assert.equal(sys.mprotect(p, W, 8 * PAGE, PROT_READ), 0);
    teardown(sys);
  });

  it('fork copies the markers, of shared and file mappings too; mremap moves them', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 8 * PAGE), W);
    writeOk(sys, p, W, new Uint8Array(2 * PAGE).fill(1));
    assert.equal(sys.madvise(p, W + 2 * PAGE, 2 * PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(mapAt(sys, p, W + 16 * PAGE, 4 * PAGE, RW, ANON_SHARED), W + 16 * PAGE);
    writeOk(sys, p, W + 16 * PAGE, new Uint8Array(4 * PAGE).fill(9));
    assert.equal(sys.madvise(p, W + 17 * PAGE, PAGE, MADV.GUARD_INSTALL), 0);
    // Shared anonymous memory is a file: mincore asks the page cache behind a marker.
    assert.equal(mincore(sys, p, W + 16 * PAGE, 4), '1111');
    const { child } = sys.fork(p, 'c');
    assert.ok(child !== null);
    assert.equal(pages(sys, child, W, 8), 'p,p,s,s,-,-,-,-');
    assert.equal(
      pages(sys, child, W + 16 * PAGE, 4),
      'p,s,p,p',
      'VM_MAYBE_GUARD makes fork copy the page tables of a shared VMA',
    );
    assert.equal(sys.read(child, W + 17 * PAGE, 1).ret, -Errno.EFAULT);
    assert.equal(
      sys.mremap(p, W, 8 * PAGE, 8 * PAGE, MREMAP_FIXED | MREMAP_MAYMOVE, W + 32 * PAGE),
      W + 32 * PAGE,
    );
    assert.equal(pages(sys, p, W + 32 * PAGE, 8), 'p,p,s,s,-,-,-,-');
    teardown(sys);
  });

  it('refuses locked, sealed read-only and special VMAs; removal works on locked ones', () => {
    const { sys, p } = setup({ rlimitMemlock: 1 << 20 });
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    assert.equal(sys.mlock(p, W, 4 * PAGE), 0);
    assert.equal(sys.madvise(p, W, PAGE, MADV.GUARD_INSTALL), -Errno.EINVAL);
    assert.equal(sys.munlock(p, W, 4 * PAGE), 0);
    assert.equal(sys.madvise(p, W, PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(sys.mlock(p, W, 4 * PAGE), -Errno.ENOMEM);
    assert.equal(sys.madvise(p, W, PAGE, MADV.GUARD_REMOVE), 0);
    assert.equal(sys.madvise(p, W, PAGE, MADV.GUARD_INSTALL), -Errno.EINVAL);
    assert.equal(mapAt(sys, p, W + 64 * PAGE, 2 * PAGE, PROT_READ), W + 64 * PAGE);
    assert.equal(sys.mseal(p, W + 64 * PAGE, 2 * PAGE), 0);
    assert.equal(sys.madvise(p, W + 64 * PAGE, PAGE, MADV.GUARD_INSTALL), -Errno.EPERM);
    assert.equal(mapAt(sys, p, W + 72 * PAGE, 2 * PAGE, PROT_NONE), W + 72 * PAGE);
    assert.equal(sys.madvise(p, W + 72 * PAGE, PAGE, MADV.GUARD_INSTALL), 0);
    teardown(sys);
  });

  it('a hole punched in the file keeps the marker; file pages are asked for behind it', () => {
    const { sys, p } = setup();
    const fd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(fd, 8 * PAGE), 0);
    assert.equal(sys.pwrite(fd, new Uint8Array(8 * PAGE).fill(3), 0), 8 * PAGE);
    assert.equal(sys.mmap(p, W + 32 * PAGE, 4 * PAGE, RW, 0x01 | MAP_FIXED_NOREPLACE, fd, 0), W + 32 * PAGE);
    assert.equal(sys.madvise(p, W + 33 * PAGE, PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(sys.read(p, W + 33 * PAGE, 1).ret, -Errno.EFAULT);
    assert.equal(mincore(sys, p, W + 32 * PAGE, 4), '1111');
    assert.equal(sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PAGE, 2 * PAGE), 0);
    assert.equal(pages(sys, p, W + 32 * PAGE, 4), '-,s,-,-');
    teardown(sys);
  });

  it('MADV_COLLAPSE fails on a guard; a guard in a THP splits it', () => {
    const { sys, p } = setup({ thp: 'madvise' });
    assert.equal(mapAt(sys, p, W, 2 * HPAGE), W);
    writeOk(sys, p, W, new Uint8Array(HPAGE).fill(5));
    assert.equal(sys.madvise(p, W + 5 * PAGE, PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(sys.madvise(p, W, HPAGE, MADV.COLLAPSE), -Errno.EINVAL);
    assert.equal(pages(sys, p, W, 8), 'px,px,px,px,px,s,px,px');
    assert.equal(sys.madvise(p, W + 5 * PAGE, PAGE, MADV.GUARD_REMOVE), 0);
    assert.equal(sys.madvise(p, W, HPAGE, MADV.COLLAPSE), 0);
    assert.ok(sys.pagemap(p, W, 1)[0].thp);
    assert.equal(sys.madvise(p, W + 5 * PAGE, PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(pages(sys, p, W, 8), 'px,px,px,px,px,s,px,px');
    assert.equal(mapAt(sys, p, W + 4 * HPAGE, HPAGE), W + 4 * HPAGE);
    assert.equal(sys.madvise(p, W + 4 * HPAGE + 5 * PAGE, PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(sys.madvise(p, W + 4 * HPAGE, HPAGE, MADV.COLLAPSE), -Errno.EINVAL);
    teardown(sys);
  });

  it('hmm_range_fault() that must fault at a guard is -EFAULT (hmm_vma_handle_pte())', () => {
    const { sys, p } = setup();
    createDmirrorDevice(sys, 'gpu0', 'private');
    const fd = sys.run('open', dmirrorOpen(sys, 'gpu0', p));
    assert.ok(fd >= 0);
    assert.equal(mapAt(sys, p, W, 4 * PAGE), W);
    writeOk(sys, p, W, new Uint8Array(4 * PAGE).fill(2));
    const buf = new Uint8Array(4 * PAGE);
    assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, { addr: W, npages: 4, buf }), 0);
    assert.equal(sys.madvise(p, W + 2 * PAGE, PAGE, MADV.GUARD_INSTALL), 0);
    assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, { addr: W, npages: 4, buf }), -Errno.EFAULT);
    assert.equal(sys.close(fd), 0);
    teardown(sys);
  });
});
