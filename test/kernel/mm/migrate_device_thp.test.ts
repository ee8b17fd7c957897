import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  createDmirrorDevice,
  dmirrorDevice,
  dmirrorOpen,
} from '../../../src/kernel/drivers/test_hmm.ts';
import {
  FOLL_LONGTERM,
  FOLL_PIN,
  FOLL_WRITE,
  getUserPagesLocked,
  unpinUserPages,
} from '../../../src/kernel/mm/gup.ts';
import { MADV, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/kernel/mm/mman.ts';
import { Errno } from '../../../src/kernel/errno.ts';
import { System, type Process } from '../../../src/kernel/system.ts';
import { assertOracles } from '../../../src/oracles/index.ts';

const PAGE = 4096;
const PMD = 2 * 1024 * 1024;
const NR = PMD / PAGE;

/** A process with the dmirror device open and 2 MiB of private memory at a 2 MiB boundary (`addr`). */
function deviceWorld(memory: 'private' | 'coherent') {
  const sys = new System({ ram: 64 * 1024 * 1024 });
  createDmirrorDevice(sys, 'gpu0', memory);
  const p = sys.createProcess('p');
  const fd = sys.run('open', dmirrorOpen(sys, 'gpu0', p));
  assert.ok(fd >= 0);
  const raw = sys.mmap(p, 0, 2 * PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  return { sys, p, fd, addr: Math.ceil(raw / PMD) * PMD };
}

/** A process with a written, PMD-mapped THP and the region migrated to device memory as one folio. */
function migratedThp(memory: 'private' | 'coherent') {
  const { sys, p, fd, addr } = deviceWorld(memory);
  assert.equal(sys.madvise(p, addr, PMD, MADV.HUGEPAGE), 0);
  const data = new Uint8Array(PMD);
  for (let i = 0; i < PMD; i += PAGE) data[i] = (i / PAGE) & 0xff;
  assert.equal(sys.write(p, addr, data), PMD);
  const cmd: Record<string, unknown> = { addr, npages: NR, buf: new Uint8Array(PMD) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd), 0);
  assert.equal(cmd.cpages, NR);
  return { sys, p, fd, addr, data };
}

function expectData(sys: System, p: Process, addr: number, data: Uint8Array, from = 0, to = PMD): void {
  const r = sys.read(p, addr + from, to - from);
  assert.equal(r.ret, to - from);
  for (let i = 0; i < to - from; i += PAGE)
    assert.equal(r.data[i], data[from + i], `page ${(from + i) / PAGE}`);
}

function finish(sys: System, p: Process, fd: number): void {
  assert.equal(sys.close(fd), 0);
  sys.exit(p);
  assertOracles(sys, { teardown: true });
}

test('a THP migrated to device-private memory is one device-private PMD; a CPU read brings the folio back', () => {
  const { sys, p, fd, addr, data } = migratedThp('private');
  const pm = sys.pagemap(p, addr, NR);
  assert.ok(pm.every((e) => e.swap && !e.present && e.kind === 'device-private' && e.thp));
  const dev = dmirrorDevice(sys, 'gpu0')!;
  assert.equal(dev.calloc - dev.cfree, NR);
  assertOracles(sys);
  expectData(sys, p, addr, data);
  // The whole folio came back as one THP and went back to the device's free folios.
  const back = sys.pagemap(p, addr, NR);
  assert.ok(back.every((e) => e.present && e.kind === 'ram' && e.thp));
  assert.equal(dev.calloc, dev.cfree);
  finish(sys, p, fd);
});

test('MIGRATE_TO_SYS moves a device-private THP back as a THP', () => {
  const { sys, p, fd, addr, data } = migratedThp('private');
  const cmd: Record<string, unknown> = { addr, npages: NR, buf: new Uint8Array(PMD) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_SYS, cmd), 0);
  assert.equal(cmd.cpages, 1);
  assert.ok(sys.pagemap(p, addr, NR).every((e) => e.present && e.thp));
  expectData(sys, p, addr, data);
  finish(sys, p, fd);
});

test('fork shares a device-private THP read-only; both processes read it back and write privately', () => {
  const { sys, p, fd, addr, data } = migratedThp('private');
  const r = sys.fork(p, 'child');
  assert.ok(r.ret >= 0 && r.child !== null);
  const child = r.child;
  assertOracles(sys);
  expectData(sys, child, addr, data);
  assert.equal(sys.write(child, addr, new Uint8Array([0xaa])), 1);
  expectData(sys, p, addr, data);
  assert.equal(sys.read(child, addr, 1).data[0], 0xaa);
  assertOracles(sys);
  sys.exit(child);
  finish(sys, p, fd);
});

test('a partial mprotect splits a device-private PMD into device-private PTEs; pages come back one by one', () => {
  const { sys, p, fd, addr, data } = migratedThp('private');
  assert.equal(sys.mprotect(p, addr, PMD / 2, PROT_READ), 0);
  const pm = sys.pagemap(p, addr, NR);
  assert.ok(pm.every((e) => e.swap && e.kind === 'device-private' && !e.thp));
  assertOracles(sys);
  const head = sys.phys.head(pm[NR / 4].pfn);
  assert.ok(sys.phys.pagemapOf(head) !== null && head !== pm[NR / 4].pfn);
  expectData(sys, p, addr, data, PMD / 4, PMD / 4 + PAGE);
  // The fault split the folio it held locked; the lock went with the faulting page's folio, and
  // the fault released it there: no folio is left on record as locked.
  for (let i = 0; i < NR; i++)
    assert.equal(sys.folioLocks?.ownerOf(head + i) ?? null, null, `pfn ${head + i}`);
  assertOracles(sys);
  expectData(sys, p, addr, data);
  finish(sys, p, fd);
});

test('MADV_DONTNEED and munmap of device-private THPs free the device folio', () => {
  const { sys, p, fd, addr } = migratedThp('private');
  const dev = dmirrorDevice(sys, 'gpu0')!;
  assert.equal(sys.madvise(p, addr, PMD, MADV.DONTNEED), 0);
  assert.equal(dev.calloc, dev.cfree);
  assertOracles(sys);
  finish(sys, p, fd);
  const again = migratedThp('private');
  assert.equal(again.sys.munmap(again.p, again.addr + PMD / 2, PMD / 2), 0);
  assertOracles(again.sys);
  expectData(again.sys, again.p, again.addr, again.data, 0, PMD / 2);
  finish(again.sys, again.p, again.fd);
});

test('a THP migrated to device-coherent memory stays PMD-mapped and CPU-readable', () => {
  const { sys, p, fd, addr, data } = migratedThp('coherent');
  assert.ok(sys.pagemap(p, addr, NR).every((e) => e.present && e.thp && e.kind === 'device-coherent'));
  assertOracles(sys);
  expectData(sys, p, addr, data);
  finish(sys, p, fd);
});

test('a PTE-mapped THP that cannot be split skips the rest of its PMD range, other folios too', () => {
  const { sys, p, fd, addr } = deviceWorld('private');
  assert.equal(sys.madvise(p, addr, PMD, MADV.HUGEPAGE), 0);
  assert.equal(sys.write(p, addr, new Uint8Array(PMD).fill(1)), PMD);
  // The second half of the THP goes (its PMD is split); small pages take its place, in the same VMA.
  assert.equal(sys.madvise(p, addr + PMD / 2, PMD / 2, MADV.DONTNEED), 0);
  assert.equal(sys.write(p, addr + PMD / 2, new Uint8Array(PMD / 2).fill(2)), PMD / 2);
  assert.ok(sys.pagemap(p, addr, 1)[0].thp && !sys.pagemap(p, addr + PMD / 2, 1)[0].thp);
  // A long-term pin on the THP: split_folio() refuses it.
  const mm = p.mm!;
  const pinned: number[] = [];
  sys.run(
    'pin',
    (function* () {
      yield* mm.mmapLock.downRead();
      const got = yield* getUserPagesLocked(mm, addr, 1, FOLL_LONGTERM | FOLL_PIN | FOLL_WRITE, pinned);
      yield* mm.mmapLock.upRead();
      assert.equal(got, 1);
    })(),
  );
  const cmd: Record<string, unknown> = { addr, npages: NR, buf: new Uint8Array(PMD) };
  // dmirror reads the range back from the device: -ENOENT, since pages stayed behind.
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd), -Errno.ENOENT);
  // migrate_vma_collect_skip() from the THP's first page: nothing under the PMD was collected.
  assert.ok(sys.pagemap(p, addr, NR).every((e) => e.present && e.kind === 'ram'));
  unpinUserPages(sys, pinned, 1, false);
  finish(sys, p, fd);
});

test('MADV_COLLAPSE faults device-private pages back to RAM and collapses the range', () => {
  const { sys, p, fd, addr } = deviceWorld('private');
  const data = new Uint8Array(PMD);
  for (let i = 0; i < PMD; i += PAGE) data[i] = (i / PAGE) & 0xff;
  assert.equal(sys.write(p, addr, data), PMD);
  // Small pages (no MADV_HUGEPAGE); sixteen of them move to the device.
  const cmd: Record<string, unknown> = { addr: addr + 64 * PAGE, npages: 16, buf: new Uint8Array(16 * PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd), 0);
  assert.ok(sys.pagemap(p, addr + 64 * PAGE, 16).every((e) => e.kind === 'device-private'));
  assert.equal(sys.madvise(p, addr, PMD, MADV.COLLAPSE), 0);
  assert.ok(sys.pagemap(p, addr, NR).every((e) => e.present && e.kind === 'ram' && e.thp));
  expectData(sys, p, addr, data);
  finish(sys, p, fd);
});

test('splitting a PTE-mapped THP to migrate one page maps its zero-filled pages to the zero page', () => {
  const { sys, p, fd, addr } = deviceWorld('private');
  assert.equal(sys.madvise(p, addr, PMD, MADV.HUGEPAGE), 0);
  // One byte in every fourth page; the other pages of the THP hold only zeros.
  for (let i = 0; i < NR; i += 4) assert.equal(sys.write(p, addr + i * PAGE, Uint8Array.of(i / 4 + 1)), 1);
  // A partial mprotect splits the PMD: the folio stays whole, mapped by PTEs.
  assert.equal(sys.mprotect(p, addr + PMD - PAGE, PAGE, PROT_READ), 0);
  const before = sys.pagemap(p, addr, NR);
  assert.ok(before.every((e) => e.present && e.kind === 'ram' && e.thp));
  // Migrating the first page splits the folio (split_folio(): RMP_USE_SHARED_ZEROPAGE).
  const cmd: Record<string, unknown> = { addr, npages: 1, buf: new Uint8Array(PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd), 0);
  assert.equal(cmd.cpages, 1);
  const after = sys.pagemap(p, addr, NR);
  assert.equal(after[0].kind, 'device-private');
  for (let i = 1; i < NR; i++) {
    if (i % 4 === 0) assert.ok(after[i].kind === 'ram' && !after[i].thp, `page ${i}: ${after[i].kind}`);
    else assert.equal(after[i].kind, 'zero', `page ${i}`);
  }
  // The zero-filled pages left the process's count (the written ones stay, the one on the device
  // too: its entry still counts as an anonymous page) and went back to the allocator.
  assert.equal(
    p.mm!.rss.reduce((x, y) => x + y, 0),
    NR / 4,
  );
  const used = sys.phys.usedRamFrames();
  assert.ok(used < NR / 2, `${used} frames in use`);
  const r = sys.read(p, addr, PMD);
  for (let i = 0; i < NR; i++) assert.equal(r.data[i * PAGE], i % 4 === 0 ? i / 4 + 1 : 0, `page ${i}`);
  assertOracles(sys);
  finish(sys, p, fd);
});

test('a split mlocked THP keeps its zero-filled pages, in a mapping that is not locked too', () => {
  const { sys, p, fd, addr } = deviceWorld('private');
  assert.equal(sys.madvise(p, addr, PMD, MADV.HUGEPAGE), 0);
  for (let i = 0; i < NR; i += 4) assert.equal(sys.write(p, addr + i * PAGE, Uint8Array.of(i / 4 + 1)), 1);
  // The parent locks its mapping (before the fork: mlock() would break the sharing, as it
  // populates a private writable mapping for writing): the folio is mlocked. A partial
  // mprotect maps it by PTEs.
  assert.equal(sys.mlock(p, addr, PMD), 0);
  assert.equal(sys.mprotect(p, addr + PMD - PAGE, PAGE, PROT_READ), 0);
  // The child shares the THP, in VMAs that are not VM_LOCKED (fork does not pass the flag on).
  const r = sys.fork(p, 'child');
  assert.ok(r.ret >= 0 && r.child !== null);
  const child = r.child;
  assert.ok(sys.pagemap(child, addr, NR).every((e) => e.present && e.thp));
  assert.equal(sys.pagemap(p, addr + PAGE, 1)[0].pfn, sys.pagemap(child, addr + PAGE, 1)[0].pfn);
  const cfd = sys.run('open', dmirrorOpen(sys, 'gpu0', child));
  assert.ok(cfd >= 0);
  // Migrating the child's first page splits the folio; try_to_map_unused_to_zeropage() refuses
  // every page of an mlocked folio, in the child's mapping as in the parent's.
  const cmd: Record<string, unknown> = { addr, npages: 1, buf: new Uint8Array(PAGE) };
  assert.equal(sys.ioctl(cfd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd), 0);
  assert.equal(cmd.cpages, 1);
  for (const proc of [child, p]) {
    const after = sys.pagemap(proc, addr, NR);
    for (let i = 1; i < NR; i++) assert.equal(after[i].kind, 'ram', `${proc.name} page ${i}`);
    const back = sys.read(proc, addr, PMD);
    for (let i = 0; i < NR; i++) assert.equal(back.data[i * PAGE], i % 4 === 0 ? i / 4 + 1 : 0, `page ${i}`);
  }
  assertOracles(sys);
  assert.equal(sys.close(cfd), 0);
  sys.exit(child);
  finish(sys, p, fd);
});

test('migrating a page of a THP another process maps by its PMD splits that PMD, then the folio', () => {
  const { sys, p, fd, addr } = deviceWorld('private');
  assert.equal(sys.madvise(p, addr, PMD, MADV.HUGEPAGE), 0);
  for (let i = 0; i < NR; i += 4) assert.equal(sys.write(p, addr + i * PAGE, Uint8Array.of(i / 4 + 1)), 1);
  // The child shares the THP by its own PMD; then a partial mprotect in the parent maps the folio
  // there by PTEs, and only there.
  const r = sys.fork(p, 'child');
  assert.ok(r.ret >= 0 && r.child !== null);
  const child = r.child;
  assert.equal(sys.mprotect(p, addr + PMD - PAGE, PAGE, PROT_READ), 0);
  const head = sys.pagemap(child, addr, 1)[0].pfn;
  assert.ok(sys.pagemap(child, addr, NR).every((e, i) => e.present && e.thp && e.pfn === head + i));
  assert.equal(sys.phys.entireMapcount.get(head), 1);
  // migrate_vma meets the folio mapped by a PTE and splits it: unmap_folio() splits the child's
  // PMD first (TTU_SPLIT_HUGE_PMD). The parent's first page then moves to the device.
  const cmd: Record<string, unknown> = { addr, npages: 1, buf: new Uint8Array(PAGE) };
  assert.equal(sys.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd), 0);
  assert.equal(cmd.cpages, 1);
  assert.equal(sys.phys.entireMapcount.has(head), false);
  assert.equal(sys.phys.order[head + 4], 0);
  assert.notEqual(sys.pagemap(p, addr, 1)[0].kind, 'ram');
  for (const proc of [p, child]) {
    const after = sys.pagemap(proc, addr, NR);
    // The zero-filled pages of the split folio map the zero page, in both processes.
    for (let i = 1; i < NR; i++)
      assert.equal(after[i].kind, i % 4 === 0 ? 'ram' : 'zero', `${proc.name} page ${i}`);
    const back = sys.read(proc, addr, PMD);
    for (let i = 0; i < NR; i++) assert.equal(back.data[i * PAGE], i % 4 === 0 ? i / 4 + 1 : 0, `page ${i}`);
  }
  assertOracles(sys);
  sys.exit(child);
  finish(sys, p, fd);
});
