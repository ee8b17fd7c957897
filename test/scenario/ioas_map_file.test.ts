/**
 * IOMMU_IOAS_MAP_FILE of a hugetlbfs memfd: memfd_pin_folios() pins the file's huge pages (adding
 * one where the file has a hole), so a CPU mapping of the file, read() of it and an access through
 * the IOAS all see the same bytes, at any offset inside a huge page.
 */
import { describe, it } from 'node:test';
import { runClean } from './helpers.ts';

describe('IOMMU_IOAS_MAP_FILE of a hugetlbfs memfd', () => {
  it('maps the huge pages the CPU mapping and read() see', () => {
    runClean(`version: 1
system: { ram: 64MiB, hugetlb_pages: 2, rlimit_memlock: 8MiB }
processes: [p]
steps:
  - { op: memfd_create, flags: [hugetlb], save: h }
  - { op: ftruncate, fd: h, length: 4MiB }
  - { op: mmap, proc: p, length: 4MiB, prot: [read, write], flags: [shared], fd: h, save: m }
  - { op: cpu_write, proc: p, addr: m+4KiB, length: 4, data: { fill: 9 } }
  - { op: iommufd_open, proc: p, save: iofd }
  - { op: IOMMU_IOAS_ALLOC, fd: iofd, save: ioas }
  - { op: IOMMU_IOAS_MAP_FILE, fd: iofd, ioas_id: ioas, file: h, start: 0, length: 4MiB, flags: [READABLE, WRITEABLE], save: iova }
  - { op: IOMMU_TEST_OP_CREATE_ACCESS, fd: iofd, id: ioas, flags: [NEEDS_PIN_PAGES], save: access }
  - { op: IOMMU_TEST_OP_ACCESS_RW, fd: iofd, id: access, iova: iova+4KiB, length: 4, expect: { data: { fill: 9 } } }
  - { op: IOMMU_TEST_OP_ACCESS_RW, fd: iofd, id: access, iova: iova+2MiB+8KiB, length: 4, flags: [WRITE], data: { fill: 0x5a } }
  - { op: cpu_read, proc: p, addr: m+2MiB+8KiB, length: 4, expect: { data: { fill: 0x5a } } }
  - { op: pread, fd: h, offset: 2105344, length: 4, expect: { data: { fill: 0x5a } } }
  - { op: pread, fd: h, offset: 4KiB, length: 4, expect: { data: { fill: 9 } } }
  - { op: check }
`);
  });
});
