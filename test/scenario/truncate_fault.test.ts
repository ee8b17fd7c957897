/**
 * A fault on a memfd mapping beside the truncation or hole punch that takes its page away. The
 * kernel orders them by the page's lock and the file's size: a fault that comes late gets SIGBUS
 * past the new end, and a page a fault maps before the truncation removes it is unmapped again.
 * Afterwards no mapping may reach a page the file no longer has. Each test explores the two
 * threads exhaustively.
 */
import { describe, it } from 'node:test';
import { exploreClean, RAM_FULL_WITH_MEMFD } from './helpers.ts';

/**
 * An ftruncate() to 0 beside `access` to the memfd of `kib` KiB mapped at `m` with `flags`; RAM is
 * full of anonymous pages, so the fault's allocations sleep in reclaim now and then. With `twice`,
 * the file's last page is mapped once more (shared), so the truncation unmaps the file in two
 * steps. Afterwards every page of `m` is SIGBUS.
 */
function truncateBeside(kib: number, flags: string, access: string, twice: boolean): string {
  const pages = Array.from(
    { length: kib / 4 },
    (_, i) => `  - { op: cpu_read, proc: p, addr: m+${i * 4}KiB, length: 4, expect: { errno: EFAULT } }\n`,
  );
  return `${RAM_FULL_WITH_MEMFD}  - { op: ftruncate, fd: mfd, length: ${kib}KiB }
  - { op: mmap, proc: p, length: ${kib}KiB, prot: [read, write], flags: [${flags}], fd: mfd, save: m }
${twice ? `  - { op: mmap, proc: p, length: 4KiB, prot: [read], flags: [shared], fd: mfd, offset: ${kib - 4}KiB }\n` : ''}threads:
  a:
    - { op: ${access}, proc: p, addr: m, length: ${kib}KiB, expect: { any: [{ ret: ${kib * 1024} }, { errno: EFAULT }] } }
  b:
    - { op: ftruncate, fd: mfd, length: 0 }
final:
${pages.join('')}  - { op: check }
`;
}

describe('a fault beside a truncation of its memfd', () => {
  it('a read fault that slept in reclaim does not map a page past the new end', () => {
    // 64 faults: some of their allocations reclaim, and the truncation may run meanwhile.
    exploreClean(truncateBeside(256, 'shared', 'cpu_read', false), 3000, 1);
  });

  it('a shared read fault mapped between the two unmaps is unmapped', () => {
    exploreClean(truncateBeside(16, 'shared', 'cpu_read', true), 3000, 2);
  });

  it('a private write fault leaves no copy of a page past the new end', () => {
    exploreClean(truncateBeside(16, 'private', 'cpu_write, data: { fill: 2 }', true), 3000, 2);
  });

  it('a page mapped during a hole punch is unmapped with it', () => {
    // Two mappings of the page: the punch unmaps one, then the other, and the fault through the
    // first may come in between. A later write through it must reach the file.
    exploreClean(
      `version: 1
system: { ram: 8MiB, swap: 16MiB }
processes: [p]
setup:
  - { op: memfd_create, save: mfd }
  - { op: ftruncate, fd: mfd, length: 8KiB }
  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [shared], fd: mfd, save: m }
  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [shared], fd: mfd, save: m2 }
  - { op: cpu_write, proc: p, addr: m2, length: 4, data: { fill: 3 } }
threads:
  a:
    - { op: cpu_write, proc: p, addr: m, length: 4, data: { fill: 7 } }
  b:
    - { op: fallocate, fd: mfd, mode: [punch_hole, keep_size], offset: 0, length: 4KiB }
final:
  - { op: cpu_write, proc: p, addr: m, length: 4, data: { fill: 9 } }
  - { op: pread, fd: mfd, offset: 0, length: 4, expect: { data: { fill: 9 } } }
  - { op: cpu_read, proc: p, addr: m2, length: 4, expect: { data: { fill: 9 } } }
  - { op: check }
`,
      3000,
      1,
    );
  });
});

/**
 * A hugetlbfs memfd of one huge page mapped at `m` with `flags`, and shared at `m2` (written
 * there first): `access` to `m` runs beside `change` to the file.
 */
function hugetlbBeside(flags: string, access: string, change: string, after: string): string {
  return `version: 1
system: { ram: 64MiB }
processes: [p]
setup:
  - { op: memfd_create, flags: [hugetlb], save: h }
  - { op: ftruncate, fd: h, length: 2MiB }
  - { op: mmap, proc: p, length: 2MiB, prot: [read, write], flags: [${flags}], fd: h, save: m }
  - { op: mmap, proc: p, length: 2MiB, prot: [read, write], flags: [shared], fd: h, save: m2 }
  - { op: cpu_write, proc: p, addr: m2, length: 4, data: { fill: 3 } }
threads:
  a:
    - { ${access}, proc: p, addr: m, length: 4, expect: { any: [{ ret: 4 }, { errno: EFAULT }] } }
  b:
    - ${change}
final:
${after}  - { op: check }
`;
}

describe('a fault beside a truncation of its hugetlbfs memfd', () => {
  const truncate = '{ op: ftruncate, fd: h, length: 0 }';
  const sigbus = `  - { op: cpu_read, proc: p, addr: m, length: 4, expect: { errno: EFAULT } }
  - { op: cpu_read, proc: p, addr: m2, length: 4, expect: { errno: EFAULT } }
`;

  it('a shared fault maps no page past the new end', () => {
    exploreClean(hugetlbBeside('shared', 'op: cpu_read', truncate, sigbus), 3000, 2);
  });

  it('a private write fault beside it: the file page is unmapped everywhere', () => {
    // hugetlb_no_page() looks at the size only when the cache has no page, so a write fault that
    // comes after the truncation unmapped its VMA, and before the truncation dropped the page,
    // copies the page and keeps the copy past the new end, as the kernel would.
    exploreClean(
      hugetlbBeside(
        'private',
        'op: cpu_write, data: { fill: 5 }',
        truncate,
        `  - { op: cpu_read, proc: p, addr: m, length: 4, expect: { any: [{ errno: EFAULT }, { data: { fill: 5 } }] } }
  - { op: cpu_read, proc: p, addr: m2, length: 4, expect: { errno: EFAULT } }
`,
      ),
      3000,
      2,
    );
  });

  it('a page mapped during a hole punch is unmapped with it', () => {
    exploreClean(
      hugetlbBeside(
        'shared',
        'op: cpu_write, data: { fill: 7 }',
        '{ op: fallocate, fd: h, mode: [punch_hole, keep_size], offset: 0, length: 2MiB }',
        `  - { op: cpu_write, proc: p, addr: m, length: 4, data: { fill: 9 } }
  - { op: cpu_read, proc: p, addr: m2, length: 4, expect: { data: { fill: 9 } } }
`,
      ),
      3000,
      2,
    );
  });
});
