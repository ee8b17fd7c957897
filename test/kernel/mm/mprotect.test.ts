import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { VM } from '../../../src/kernel/mm/mm_types.ts';
import {
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  O_RDONLY,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/kernel/mm/mman.ts';
import { shmemFileSetup, shmemOpenFile, shmemWrite } from '../../../src/kernel/mm/shmem.ts';
import {
  ANON_PRIVATE,
  ANON_SHARED,
  HPAGE,
  PAGE,
  RW,
  mapOk,
  pattern,
  readOk,
  setup,
  teardown,
  vmas,
  writeOk,
  failsCleanly,
} from './mm_helpers.ts';

describe('mprotect(2) errors, as do_mprotect_pkey() returns them', () => {
  it('rejects bad arguments and unmapped ranges without changing anything', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, pattern(1, 3 * PAGE));
    const cases: [string, number, () => number][] = [
      ['unaligned start', Errno.EINVAL, () => sys.mprotect(p, a + 1, PAGE, PROT_READ)],
      ['unknown prot bit', Errno.EINVAL, () => sys.mprotect(p, a, PAGE, 0x40)],
      ['GROWSDOWN and GROWSUP', Errno.EINVAL, () => sys.mprotect(p, a, 0, PROT_GROWSDOWN | PROT_GROWSUP)],
      ['GROWSDOWN on a VMA that does not grow', Errno.EINVAL, () => sys.mprotect(p, a, PAGE, PROT_GROWSDOWN)],
      ['GROWSUP (no VM_GROWSUP on x86)', Errno.EINVAL, () => sys.mprotect(p, a, PAGE, PROT_GROWSUP)],
      ['range wraps', Errno.ENOMEM, () => sys.mprotect(p, a, 2 ** 64 - a, PROT_READ)],
      ['unmapped range', Errno.ENOMEM, () => sys.mprotect(p, 0x30_0000_0000, PAGE, PROT_READ)],
      ['range starts in a hole', Errno.ENOMEM, () => sys.mprotect(p, a - PAGE, 2 * PAGE, PROT_READ)],
    ];
    for (const [what, errno, call] of cases) failsCleanly(sys, p, what, errno, call);
    // A range that runs past the VMA: do_mprotect_pkey() changes the VMAs it walked before the
    // hole, then returns -ENOMEM (the live kernel does the same; hetmem difftest found it).
    assert.equal(sys.mprotect(p, a + 3 * PAGE, 2 * PAGE, PROT_READ), -Errno.ENOMEM);
    assert.equal(sys.write(p, a + 3 * PAGE, Uint8Array.of(1)), -Errno.EFAULT);
    assert.equal(sys.mprotect(p, a + 3 * PAGE, PAGE, RW), 0);
    // Length 0 succeeds before prot is even looked at, as in the kernel.
    assert.equal(sys.mprotect(p, a, 0, 0x40), 0);
    // PROT_SEM is accepted by arch_validate_prot().
    assert.equal(sys.mprotect(p, a, PAGE, PROT_READ | 0x8), 0);
    teardown(sys);
  });

  it('changes the VMAs before a hole, then fails with ENOMEM (the kernel keeps the changes)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 6 * PAGE);
    writeOk(sys, p, a, pattern(2, 6 * PAGE));
    assert.equal(sys.munmap(p, a + 3 * PAGE, PAGE), 0);
    // [a+PAGE, a+3*PAGE) becomes read-only, then the walk meets the hole at a+3*PAGE.
    assert.equal(sys.mprotect(p, a + PAGE, 4 * PAGE, PROT_READ), -Errno.ENOMEM);
    const flags = vmas(p).map(([s, e, f]) => [s - a, e - a, f & (VM.READ | VM.WRITE)]);
    assert.deepEqual(flags, [
      [0, PAGE, VM.READ | VM.WRITE],
      [PAGE, 3 * PAGE, VM.READ],
      [4 * PAGE, 6 * PAGE, VM.READ | VM.WRITE],
    ]);
    assert.equal(sys.write(p, a + PAGE, pattern(3, 1)), -Errno.EFAULT);
    assert.equal(sys.write(p, a + 4 * PAGE, pattern(3, 1)), 1);
    // The range runs past the last VMA: the whole VMA changes, then ENOMEM.
    assert.equal(sys.mprotect(p, a + 4 * PAGE, 4 * PAGE, PROT_READ), -Errno.ENOMEM);
    assert.equal(vmas(p).at(-1)![2] & VM.WRITE, 0);
    readOk(sys, p, a + 5 * PAGE, 1);
    teardown(sys);
  });

  it('stops at the first VMA it may not change (EACCES) and keeps the ones before it', () => {
    const { sys, p } = setup();
    const f = shmemFileSetup(sys, 'ro2', 0);
    sys.run('fill', shmemWrite(sys, f.inode, pattern(5, PAGE), 0));
    const fd = sys.installFd(shmemOpenFile(sys, f.inode, O_RDONLY));
    assert.equal(sys.close(sys.installFd(f)), 0);
    const a = mapOk(sys, p, 3 * PAGE);
    assert.equal(sys.mmap(p, a + PAGE, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0), a + PAGE);
    const rwx = PROT_READ | PROT_WRITE | PROT_EXEC;
    assert.equal(sys.mprotect(p, a, 3 * PAGE, rwx), -Errno.EACCES);
    const exec = vmas(p).map(([s, , fl]) => [s - a, fl & VM.EXEC]);
    assert.deepEqual(exec, [
      [0, VM.EXEC],
      [PAGE, 0],
      [2 * PAGE, 0],
    ]);
    teardown(sys);
  });

  it('refuses PROT_WRITE on a shared mapping of a read-only file with EACCES', () => {
    const { sys, p } = setup();
    const f = shmemFileSetup(sys, 'ro', 0);
    sys.run('fill', shmemWrite(sys, f.inode, pattern(5, PAGE), 0));
    const fd = sys.installFd(shmemOpenFile(sys, f.inode, O_RDONLY));
    assert.equal(sys.close(sys.installFd(f)), 0);
    const a = mapOk(sys, p, PAGE, MAP_SHARED, PROT_READ, fd);
    readOk(sys, p, a, 1);
    failsCleanly(sys, p, 'PROT_WRITE on RO shared', Errno.EACCES, () => sys.mprotect(p, a, PAGE, RW));
    // Read and exec stay allowed; a private mapping of the same file may become writable.
    assert.equal(sys.mprotect(p, a, PAGE, PROT_READ | PROT_EXEC), 0);
    const b = mapOk(sys, p, PAGE, MAP_PRIVATE, PROT_READ, fd);
    assert.equal(sys.mprotect(p, b, PAGE, RW), 0);
    writeOk(sys, p, b, Uint8Array.of(1));
    assert.equal(readOk(sys, p, a, 1)[0], pattern(5, PAGE)[0]);
    teardown(sys);
  });

  it('cannot cut a hugetlb VMA off a huge-page boundary (EINVAL)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    writeOk(sys, p, a, Uint8Array.of(1));
    failsCleanly(sys, p, 'mprotect half a huge page', Errno.EINVAL, () =>
      sys.mprotect(p, a, PAGE, PROT_READ),
    );
    failsCleanly(sys, p, 'munmap half a huge page', Errno.EINVAL, () => sys.munmap(p, a + PAGE, PAGE));
    assert.equal(sys.mprotect(p, a, HPAGE, PROT_READ), 0);
    assert.equal(vmas(p).length, 2);
    assert.equal(sys.write(p, a, Uint8Array.of(2)), -Errno.EFAULT);
    writeOk(sys, p, a + HPAGE, Uint8Array.of(3));
    teardown(sys);
  });
});

describe('mprotect(2) success paths', () => {
  it('splits the VMA and changes only the range; PROT_NONE hides data that PROT_READ brings back', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 6 * PAGE);
    for (let i = 0; i < 6; i++) writeOk(sys, p, a + i * PAGE, Uint8Array.of(10 + i));
    assert.equal(sys.mprotect(p, a + 2 * PAGE, 2 * PAGE, PROT_NONE), 0);
    assert.deepEqual(
      vmas(p).map(([s, e, f]) => [s - a, e - a, f & (VM.READ | VM.WRITE | VM.EXEC)]),
      [
        [0, 2 * PAGE, VM.READ | VM.WRITE],
        [2 * PAGE, 4 * PAGE, 0],
        [4 * PAGE, 6 * PAGE, VM.READ | VM.WRITE],
      ],
    );
    assert.equal(sys.read(p, a + 2 * PAGE, 1).ret, -Errno.EFAULT);
    assert.equal(sys.write(p, a + 3 * PAGE, Uint8Array.of(1)), -Errno.EFAULT);
    // The pages stay mapped (PROT_NONE PTEs), still counted in RSS.
    assert.equal(sys.stats(p).rss_anon, 6 * PAGE);
    assert.equal(sys.mprotect(p, a + 2 * PAGE, 2 * PAGE, PROT_READ), 0);
    assert.equal(readOk(sys, p, a + 3 * PAGE, 1)[0], 13);
    assert.equal(sys.write(p, a + 3 * PAGE, Uint8Array.of(1)), -Errno.EFAULT);
    // Making it writable again does not need a copy: the pages are still exclusively ours.
    const before = sys.pagemap(p, a + 3 * PAGE, 1)[0].pfn;
    assert.equal(sys.mprotect(p, a, 6 * PAGE, RW), 0);
    writeOk(sys, p, a + 3 * PAGE, Uint8Array.of(99));
    assert.equal(sys.pagemap(p, a + 3 * PAGE, 1)[0].pfn, before);
    assert.equal(readOk(sys, p, a + 5 * PAGE, 1)[0], 15);
    teardown(sys);
  });

  it('spans several VMAs in one call', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.mprotect(p, a + PAGE, PAGE, PROT_READ), 0);
    assert.equal(sys.mprotect(p, a, 4 * PAGE, PROT_READ), 0);
    for (let i = 0; i < 4; i++) assert.equal(sys.write(p, a + i * PAGE, Uint8Array.of(1)), -Errno.EFAULT);
    teardown(sys);
  });

  it('read-only private memory shared with a child stays copy-on-write after PROT_WRITE is added back', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE);
    writeOk(sys, p, a, Uint8Array.of(7));
    const { child } = sys.fork(p, 'c');
    assert.equal(sys.mprotect(p, a, PAGE, PROT_READ), 0);
    assert.equal(sys.mprotect(p, a, PAGE, RW), 0);
    writeOk(sys, p, a, Uint8Array.of(8));
    assert.equal(readOk(sys, child!, a, 1)[0], 7);
    teardown(sys);
  });

  it('keeps the same page frames while protection changes (no copy, no new allocation)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_PRIVATE, PROT_READ | PROT_WRITE);
    writeOk(sys, p, a, pattern(2, 2 * PAGE));
    const used = sys.stats().used;
    assert.equal(sys.mprotect(p, a, 2 * PAGE, PROT_READ), 0);
    assert.equal(sys.mprotect(p, a, 2 * PAGE, PROT_WRITE | PROT_READ), 0);
    assert.equal(sys.stats().used, used);
    assert.deepEqual(readOk(sys, p, a, 2 * PAGE), pattern(2, 2 * PAGE));
    teardown(sys);
  });
});

describe('mprotect(2) leaves a VMA whose protection does not change alone (mprotect_fixup())', () => {
  it('the same protection on part of a shared VMA splits nothing', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 6 * PAGE, ANON_SHARED, PROT_NONE);
    const before = vmas(p);
    assert.equal(sys.mprotect(p, a + PAGE, PAGE, PROT_NONE), 0);
    assert.deepEqual(vmas(p), before);
    // A range past the VMA end fails with ENOMEM after the walk, still without a split.
    assert.equal(sys.mprotect(p, a + 4 * PAGE, 4 * PAGE, PROT_NONE), -Errno.ENOMEM);
    assert.deepEqual(vmas(p), before);
    // Growing the (unsplit) VMA's tail in place works as on the live kernel.
    assert.equal(sys.mremap(p, a + 4 * PAGE, 2 * PAGE, 4 * PAGE, 0), a + 4 * PAGE);
    teardown(sys);
  });
});
