import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { VM } from '../../../src/kernel/mm/mm_types.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_STACK,
  MAP_SYNC,
  O_RDONLY,
  O_WRONLY,
  PROT_NONE,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import { mapsLine } from '../../../src/kernel/fs/task_mmu.ts';
import { MMAP_MIN_ADDR } from '../../../src/kernel/mm/mmap.ts';
import { shmemFileSetup, shmemOpenFile, shmemWrite } from '../../../src/kernel/mm/shmem.ts';
import type { System } from '../../../src/kernel/system.ts';
import { TASK_SIZE } from '../../../src/lib/units.ts';
import {
  ANON_PRIVATE,
  ANON_SHARED,
  HPAGE,
  PAGE,
  RW,
  assertUnchanged,
  mapOk,
  pattern,
  readOk,
  setup,
  snapshot,
  teardown,
  vmas,
  writeOk,
  failsCleanly,
} from './mm_helpers.ts';

/** A shmem file opened with `mode`, holding `data` (written through the page cache directly). */
function fileWithMode(sys: System, mode: number, data: Uint8Array): number {
  const f = shmemFileSetup(sys, 'ro-file', 0);
  sys.run('fill', shmemWrite(sys, f.inode, data, 0));
  const fd = sys.installFd(shmemOpenFile(sys, f.inode, mode));
  // Only the file opened with `mode` stays open.
  assert.equal(sys.close(sys.installFd(f)), 0);
  return fd;
}

/** Runs a call that must fail with `errno` and must leave the process exactly as it was. */
describe('mmap(2) errors, as do_mmap() returns them', () => {
  it('rejects every bad argument with the kernel errno and changes nothing', () => {
    const { sys, p } = setup();
    const keep = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, keep, pattern(1, 100));
    const memfd = sys.memfdCreate('m');
    assert.equal(sys.ftruncate(memfd, 4 * PAGE), 0);
    const cases: [string, number, () => number][] = [
      ['length 0', Errno.EINVAL, () => sys.mmap(p, 0, 0, RW, ANON_PRIVATE)],
      ['neither MAP_SHARED nor MAP_PRIVATE', Errno.EINVAL, () => sys.mmap(p, 0, PAGE, RW, MAP_ANONYMOUS)],
      ['map type 0xf', Errno.EINVAL, () => sys.mmap(p, 0, PAGE, RW, MAP_ANONYMOUS | 0xf)],
      ['unaligned offset', Errno.EINVAL, () => sys.mmap(p, 0, PAGE, RW, MAP_SHARED, memfd, 100)],
      ['unaligned offset beats a bad fd', Errno.EINVAL, () => sys.mmap(p, 0, PAGE, RW, MAP_SHARED, 77, 100)],
      ['MAP_FIXED unaligned', Errno.EINVAL, () => sys.mmap(p, keep + 1, PAGE, RW, ANON_PRIVATE | MAP_FIXED)],
      [
        'MAP_FIXED_NOREPLACE unaligned',
        Errno.EINVAL,
        () => sys.mmap(p, keep + 1, PAGE, RW, ANON_PRIVATE | MAP_FIXED_NOREPLACE),
      ],
      [
        'MAP_FIXED_NOREPLACE over a mapping',
        Errno.EEXIST,
        () => sys.mmap(p, keep + PAGE, PAGE, RW, ANON_PRIVATE | MAP_FIXED_NOREPLACE),
      ],
      [
        'MAP_FIXED below mmap_min_addr',
        Errno.EPERM,
        () => sys.mmap(p, PAGE, PAGE, RW, ANON_PRIVATE | MAP_FIXED),
      ],
      [
        'MAP_FIXED past TASK_SIZE',
        Errno.ENOMEM,
        () => sys.mmap(p, TASK_SIZE - PAGE, 2 * PAGE, RW, ANON_PRIVATE | MAP_FIXED),
      ],
      [
        'length beyond the address space',
        Errno.ENOMEM,
        () => sys.mmap(p, 0, TASK_SIZE + PAGE, RW, ANON_PRIVATE),
      ],
      ['bad fd', Errno.EBADF, () => sys.mmap(p, 0, PAGE, RW, MAP_SHARED, 99)],
      ['closed fd', Errno.EBADF, () => sys.mmap(p, 0, PAGE, RW, MAP_PRIVATE, -1)],
      [
        'MAP_SHARED_VALIDATE with MAP_SYNC on shmem',
        Errno.EOPNOTSUPP,
        () => sys.mmap(p, 0, PAGE, RW, MAP_SHARED_VALIDATE | MAP_SYNC, memfd),
      ],
    ];
    for (const [what, errno, call] of cases) failsCleanly(sys, p, what, errno, call);
    teardown(sys);
  });

  it('refuses MAP_SHARED|PROT_WRITE of a read-only file with EACCES but maps it read-only', () => {
    const { sys, p } = setup();
    const fd = fileWithMode(sys, O_RDONLY, pattern(3, PAGE));
    failsCleanly(sys, p, 'shared writable of O_RDONLY', Errno.EACCES, () =>
      sys.mmap(p, 0, PAGE, RW, MAP_SHARED, fd),
    );
    const a = mapOk(sys, p, PAGE, MAP_SHARED, PROT_READ, fd);
    assert.deepEqual(readOk(sys, p, a, 64), pattern(3, PAGE).subarray(0, 64));
    // Without FMODE_WRITE the VMA loses VM_MAYWRITE, so the mapping can never become writable.
    const v = p.mm!.vmaLookup(a)!;
    assert.equal(v.flags & VM.MAYWRITE, 0);
    assert.equal(sys.write(p, a, Uint8Array.of(1)), -Errno.EFAULT);
    // A private writable mapping of the same file is fine: writes go to private copies.
    const b = mapOk(sys, p, PAGE, MAP_PRIVATE, RW, fd);
    writeOk(sys, p, b, Uint8Array.of(0xee));
    assert.equal(readOk(sys, p, a, 1)[0], pattern(3, PAGE)[0]);
    teardown(sys);
  });

  it('refuses any mapping of a write-only file with EACCES', () => {
    const { sys, p } = setup();
    const fd = fileWithMode(sys, O_WRONLY, pattern(4, PAGE));
    failsCleanly(sys, p, 'map O_WRONLY', Errno.EACCES, () =>
      sys.mmap(p, 0, PAGE, PROT_READ, MAP_PRIVATE, fd),
    );
    teardown(sys);
  });

  it('ENOMEM from MAP_HUGETLB when the pool is empty leaves the range as it was', () => {
    const { sys, p } = setup({ hugetlbPages: 1 });
    const a = mapOk(sys, p, HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    writeOk(sys, p, a, Uint8Array.of(9));
    failsCleanly(sys, p, 'second huge page', Errno.ENOMEM, () =>
      sys.mmap(p, 0, HPAGE, RW, ANON_PRIVATE | MAP_HUGETLB),
    );
    assert.equal(readOk(sys, p, a, 1)[0], 9);
    teardown(sys);
  });

  it('MAP_HUGETLB reserves its pages at mmap time: a second mapping fails before the first is touched', () => {
    const { sys, p } = setup({ hugetlbPages: 2 });
    const a = mapOk(sys, p, 2 * HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    // Nothing faulted yet, but both pool pages are promised to `a` (hugetlb_reserve_pages).
    failsCleanly(sys, p, 'reserved pool', Errno.ENOMEM, () =>
      sys.mmap(p, 0, HPAGE, RW, ANON_PRIVATE | MAP_HUGETLB),
    );
    // MAP_NORESERVE maps without a reservation; its fault then finds no page left for it, which
    // is SIGBUS (alloc_hugetlb_folio() fails with -ENOSPC), as a live 6.18 kernel gives.
    const nr = mapOk(sys, p, HPAGE, ANON_PRIVATE | MAP_HUGETLB | MAP_NORESERVE);
    assert.equal(sys.write(p, nr, Uint8Array.of(1)), -Errno.EFAULT);
    // The reserved mapping's faults always find their pages.
    writeOk(sys, p, a, Uint8Array.of(7));
    writeOk(sys, p, a + HPAGE, Uint8Array.of(8));
    // Unmapping returns a reservation that was never used, and the pool can back a new mapping.
    assert.equal(sys.munmap(p, nr, HPAGE), 0);
    assert.equal(sys.munmap(p, a + HPAGE, HPAGE), 0);
    const b = mapOk(sys, p, HPAGE, ANON_PRIVATE | MAP_HUGETLB);
    writeOk(sys, p, b, Uint8Array.of(3));
    assert.equal(readOk(sys, p, a, 1)[0], 7);
    teardown(sys);
  });
});

describe('mmap(2) success paths', () => {
  it('places mappings page aligned, above mmap_min_addr, without overlap, and accounts total_vm', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 3 * PAGE + 5);
    const b = mapOk(sys, p, PAGE);
    assert.equal(a % PAGE, 0);
    assert.ok(a >= MMAP_MIN_ADDR && b >= MMAP_MIN_ADDR);
    assert.ok(b + PAGE <= a || a + 4 * PAGE <= b, 'mappings overlap');
    assert.equal(sys.stats(p).total_vm, 5 * PAGE);
    // The second mapping lands right below the first with the same flags: vma_merge makes them one.
    assert.equal(sys.stats(p).vmas, 1);
    // The length is rounded up to whole pages: the fourth page is mapped, the fifth is not.
    writeOk(sys, p, a + 3 * PAGE + 100, Uint8Array.of(1));
    teardown(sys);
  });

  it('reads untouched private anonymous memory as zeros via the zero page, without using RAM', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 8 * PAGE);
    const used = sys.stats().used;
    assert.deepEqual(readOk(sys, p, a, 8 * PAGE), new Uint8Array(8 * PAGE));
    assert.equal(sys.stats().used, used);
    assert.equal(sys.stats(p).rss_anon, 0);
    assert.ok(sys.pagemap(p, a, 8).every((e) => e.present && e.kind === 'zero'));
    writeOk(sys, p, a + PAGE, Uint8Array.of(5));
    assert.equal(sys.stats(p).rss_anon, PAGE);
    assert.equal(sys.pagemap(p, a + PAGE, 1)[0].kind, 'ram');
    teardown(sys);
  });

  it('MAP_FIXED replaces what was mapped there; the old contents are gone', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a + PAGE, pattern(2, PAGE));
    const r = sys.mmap(p, a + PAGE, 2 * PAGE, RW, ANON_PRIVATE | MAP_FIXED);
    assert.equal(r, a + PAGE);
    assert.deepEqual(readOk(sys, p, a + PAGE, PAGE), new Uint8Array(PAGE));
    // The new piece has the flags and page offsets of its neighbours, so it merges back into one VMA.
    assert.equal(sys.stats(p).vmas, 1);
    assert.equal(sys.stats(p).total_vm, 4 * PAGE);
    assert.equal(sys.stats(p).rss_anon, 0);
    teardown(sys);
  });

  it('MAP_FIXED_NOREPLACE maps at the address when it is free', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    assert.equal(sys.munmap(p, a + 2 * PAGE, 2 * PAGE), 0);
    assert.equal(sys.mmap(p, a + 2 * PAGE, PAGE, RW, ANON_PRIVATE | MAP_FIXED_NOREPLACE), a + 2 * PAGE);
    teardown(sys);
  });

  it('uses a free, aligned hint as the address', () => {
    const { sys, p } = setup();
    const hint = 0x10_0000_0000;
    assert.equal(sys.mmap(p, hint, PAGE, RW, ANON_PRIVATE), hint);
    // A taken hint is only a hint: mmap places the mapping elsewhere.
    const b = sys.mmap(p, hint, PAGE, RW, ANON_PRIVATE);
    assert.ok(b > 0 && b !== hint);
    teardown(sys);
  });

  it('MAP_POPULATE faults the whole range in up front', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE, ANON_PRIVATE | MAP_POPULATE);
    assert.equal(sys.stats(p).rss_anon, 4 * PAGE);
    assert.ok(sys.pagemap(p, a, 4).every((e) => e.present && e.kind === 'ram'));
    teardown(sys);
  });

  it('MAP_POPULATE faults a hugetlb mapping in too (mm_populate() passes over VM_IO and VM_PFNMAP only)', () => {
    // The model used to pass over every VM_SPECIAL mapping, and a hugetlb VMA is VM_DONTEXPAND.
    const { sys, p } = setup({ hugetlbPages: 2 });
    const a = mapOk(sys, p, 2 * HPAGE, ANON_PRIVATE | MAP_HUGETLB | MAP_POPULATE);
    assert.deepEqual(
      sys.pagemap(p, a, 2 * (HPAGE / PAGE)).map((e) => e.present),
      Array.from({ length: 2 * (HPAGE / PAGE) }, () => true),
    );
    teardown(sys);
  });

  it('faults with PROT_NONE and beyond the mapping report EFAULT (SIGSEGV)', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE, ANON_PRIVATE, PROT_NONE);
    assert.equal(sys.read(p, a, 1).ret, -Errno.EFAULT);
    assert.equal(sys.write(p, a, Uint8Array.of(1)), -Errno.EFAULT);
    const ro = mapOk(sys, p, PAGE, ANON_PRIVATE, PROT_READ);
    assert.equal(sys.write(p, ro, Uint8Array.of(1)), -Errno.EFAULT);
    assert.equal(sys.read(p, ro + PAGE * 1000, 1).ret, -Errno.EFAULT);
    teardown(sys);
  });

  it('shared anonymous memory is one object: writes through one mapping show in the other after fork', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 2 * PAGE, ANON_SHARED);
    assert.equal(sys.stats(p).rss_shmem, 0);
    writeOk(sys, p, a, pattern(7, 10));
    assert.equal(sys.stats(p).rss_shmem, PAGE);
    const { child } = sys.fork(p, 'c');
    writeOk(sys, child!, a + PAGE, pattern(8, 10));
    assert.deepEqual(readOk(sys, p, a + PAGE, 10), pattern(8, 10));
    assert.deepEqual(readOk(sys, child!, a, 10), pattern(7, 10));
    teardown(sys);
  });
});

describe('munmap(2)', () => {
  it('rejects an unaligned address and a zero or oversized length with EINVAL, changing nothing', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 4 * PAGE);
    writeOk(sys, p, a, pattern(1, 2 * PAGE));
    failsCleanly(sys, p, 'unaligned', Errno.EINVAL, () => sys.munmap(p, a + 1, PAGE));
    failsCleanly(sys, p, 'len 0', Errno.EINVAL, () => sys.munmap(p, a, 0));
    failsCleanly(sys, p, 'past TASK_SIZE', Errno.EINVAL, () => sys.munmap(p, a, TASK_SIZE));
    failsCleanly(sys, p, 'start past TASK_SIZE', Errno.EINVAL, () => sys.munmap(p, TASK_SIZE + PAGE, PAGE));
    teardown(sys);
  });

  it('succeeds on a range with nothing mapped', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, PAGE);
    const before = snapshot(sys, p);
    assert.equal(sys.munmap(p, 0x20_0000_0000, 16 * PAGE), 0);
    assertUnchanged(sys, p, before, 'munmap of a hole');
    assert.equal(sys.munmap(p, a, PAGE), 0);
    teardown(sys);
  });

  it('punching a hole splits the VMA, frees its pages and keeps the rest', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 8 * PAGE);
    for (let i = 0; i < 8; i++) writeOk(sys, p, a + i * PAGE, Uint8Array.of(i + 1));
    const used = sys.stats().used;
    // A length that is not a page multiple is rounded up.
    assert.equal(sys.munmap(p, a + 2 * PAGE, 2 * PAGE - 100), 0);
    assert.deepEqual(
      vmas(p).map(([s, e]) => [s - a, e - a]),
      [
        [0, 2 * PAGE],
        [4 * PAGE, 8 * PAGE],
      ],
    );
    assert.equal(sys.stats().used, used - 2 * PAGE);
    assert.equal(sys.stats(p).rss_anon, 6 * PAGE);
    assert.equal(sys.stats(p).total_vm, 6 * PAGE);
    assert.equal(sys.read(p, a + 2 * PAGE, 1).ret, -Errno.EFAULT);
    assert.equal(readOk(sys, p, a + PAGE, 1)[0], 2);
    assert.equal(readOk(sys, p, a + 4 * PAGE, 1)[0], 5);
    // The tail VMA still maps the same anonymous pages at the same offsets.
    assert.equal(readOk(sys, p, a + 7 * PAGE, 1)[0], 8);
    teardown(sys);
  });

  it('unmapping across several VMAs and holes removes them all', () => {
    const { sys, p } = setup();
    const a = mapOk(sys, p, 10 * PAGE);
    assert.equal(sys.mprotect(p, a + 3 * PAGE, PAGE, PROT_READ), 0);
    assert.equal(sys.munmap(p, a + 6 * PAGE, PAGE), 0);
    writeOk(sys, p, a + 9 * PAGE, Uint8Array.of(1));
    assert.equal(sys.munmap(p, a + PAGE, 9 * PAGE), 0);
    assert.deepEqual(
      vmas(p).map(([s, e]) => [s - a, e - a]),
      [[0, PAGE]],
    );
    assert.equal(sys.stats(p).rss_anon, 0);
    teardown(sys);
  });
});

describe('mmap(2) flags that become VMA flags (calc_vm_flag_bits())', () => {
  it('MAP_STACK maps without huge pages (VM_NOHUGEPAGE): apart from a plain neighbour until MADV_HUGEPAGE', () => {
    const { sys, p } = setup();
    const A = 0x600000000000;
    assert.equal(sys.mmap(p, A, 2 * PAGE, RW, ANON_PRIVATE | MAP_FIXED_NOREPLACE, -1, 0), A);
    assert.equal(
      sys.mmap(p, A + 2 * PAGE, 2 * PAGE, RW, ANON_PRIVATE | MAP_FIXED_NOREPLACE | MAP_STACK, -1, 0),
      A + 2 * PAGE,
    );
    assert.deepEqual(
      vmas(p).map(([s, e, f]) => [s - A, e - A, f & VM.NOHUGEPAGE]),
      [
        [0, 2 * PAGE, 0],
        [2 * PAGE, 4 * PAGE, VM.NOHUGEPAGE],
      ],
    );
    assert.equal(sys.madvise(p, A, 4 * PAGE, MADV.HUGEPAGE), 0);
    assert.equal(vmas(p).length, 1);
    teardown(sys);
  });
});

describe('/proc/PID/maps (show_map_vma())', () => {
  const A = 0x600000000000;

  it('lists each VMA whole: perms, the file offset (0 without a file), the path of unlinked shmem files', () => {
    const { sys, p } = setup();
    assert.equal(sys.mmap(p, A, 4 * PAGE, RW, ANON_PRIVATE | MAP_FIXED_NOREPLACE, -1, 0), A);
    assert.equal(sys.mprotect(p, A + PAGE, PAGE, PROT_NONE), 0);
    assert.equal(
      sys.mmap(p, A + 8 * PAGE, 2 * PAGE, PROT_READ, ANON_SHARED | MAP_FIXED_NOREPLACE, -1, 0),
      A + 8 * PAGE,
    );
    const fd = sys.memfdCreate('x');
    assert.equal(sys.ftruncate(fd, 16 * PAGE), 0);
    assert.equal(
      sys.mmap(p, A + 16 * PAGE, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 3 * PAGE),
      A + 16 * PAGE,
    );
    const all = sys.maps(p);
    assert.ok(Array.isArray(all));
    assert.deepEqual(all.map(mapsLine), [
      '600000000000-600000001000 rw-p 00000000',
      '600000001000-600000002000 ---p 00000000',
      '600000002000-600000004000 rw-p 00000000',
      '600000008000-60000000a000 r--s 00000000 /dev/zero (deleted)',
      '600000010000-600000012000 r--p 00003000 /memfd:x (deleted)',
    ]);
    // A range lists the VMAs that overlap it, whole.
    const some = sys.maps(p, A + PAGE + 1, A + 9 * PAGE);
    assert.ok(Array.isArray(some));
    assert.deepEqual(
      some.map((e) => [e.start - A, e.end - A]),
      [
        [PAGE, 2 * PAGE],
        [2 * PAGE, 4 * PAGE],
        [8 * PAGE, 10 * PAGE],
      ],
    );
    teardown(sys);
  });
});
