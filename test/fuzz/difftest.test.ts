/**
 * hetmem difftest: the helper builds, a short run compares the model with the live kernel, a
 * missing compiler is one line and exit 2, and the saved mismatches now replay as the kernel ran.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hetmem, ROOT } from '../cli/helpers.ts';
import {
  ensureHelper,
  hostConfig,
  idlePoolSize,
  mismatchOf,
  parseHugePool,
  runLive,
  runModel,
  thpMisses,
  thpProgram,
  type DiffOp,
  type HostConfig,
  type Outcome,
  WINDOW,
} from '../../src/fuzz/difftest.ts';
import { Prng } from '../../src/lib/prng.ts';
import { FALLOC_FL_KEEP_SIZE, MFD_HUGETLB, O_APPEND, O_RDWR } from '../../src/kernel/mm/mman.ts';

const O_RDWR_APPEND = O_RDWR | O_APPEND;

const PAGE = 4096;

/** The difftest helper and the live kernel's configuration, or null (the test skipped) without THPs. */
function thpHost(t: { skip(message: string): void }): { helper: string; host: HostConfig } | null {
  const helper = ensureHelper();
  const host = hostConfig(helper);
  if (host.thp !== 'never') return { helper, host };
  t.skip('the live kernel gives no transparent huge pages');
  return null;
}

describe('difftest mismatches', () => {
  const host: HostConfig = {
    thp: 'madvise',
    swap: false,
    softDirty: true,
    files: false,
    zeroPage: true,
    hugePages: 0,
  };
  const ops: DiffOp[] = [
    { op: 'mmap', off: 0, len: 4 * PAGE, prot: 3, shared: false },
    { op: 'write', off: 0, len: 1, byte: 1 },
    { op: 'smaps' },
    { op: 'munmap', off: 0, len: 4 * PAGE },
  ];
  const model: Outcome[] = [{ ret: 0 }, { ret: 1 }, { ret: 0, extra: 'a' }, { ret: 0 }];
  const first: Outcome[] = [{ ret: 0 }, { ret: 1 }, { ret: 0, extra: 'b' }, { ret: 0 }];
  /** mismatchOf() of the program, disagreeing at its smaps, run again with `againLive`. */
  const run = (againLive: Outcome[]) => {
    const saves: { ops: DiffOp[]; live: Outcome[]; note: string }[] = [];
    const again = { ops: ops.slice(0, 3), model: model.slice(0, 3), live: againLive };
    const m = mismatchOf(5, { ops, model, live: first }, 2, again, host, (o, l, note) => {
      saves.push({ ops: o, live: l, note });
      return `file-${saves.length}`;
    });
    assert.deepEqual(
      { ...m, reproduced: undefined },
      { index: 5, op: 'smaps', model: model[2], live: first[2], file: 'file-1', reproduced: undefined },
    );
    return { reproduced: m.reproduced, saves };
  };

  it('saves the program run again up to where it disagrees again', () => {
    const { reproduced, saves } = run(first.slice(0, 3));
    assert.equal(reproduced, true);
    assert.deepEqual(saves, [{ ops: ops.slice(0, 3), live: first.slice(0, 3), note: '' }]);
  });

  it('saves the first run, marked not reproduced, where the live kernel agrees when run again', () => {
    const { reproduced, saves } = run(model.slice(0, 3));
    assert.equal(reproduced, false);
    assert.equal(saves.length, 1);
    assert.deepEqual(saves[0].ops, ops.slice(0, 3));
    assert.deepEqual(saves[0].live, first);
    assert.match(saves[0].note, /run again, the live kernel agreed/);
  });
});

describe('hetmem difftest', () => {
  it('a short seeded run compares programs on both sides', () => {
    const out = mkdtempSync(join(tmpdir(), 'hetmem-difftest-'));
    const r = hetmem(['difftest', '--seconds', '3', '--seed', '7', '--json', '--out', out]);
    assert.ok(r.status === 0 || r.status === 1, r.stderr);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of ['programs', 'ops', 'mismatches', 'known_differences', 'pool_changed'])
      assert.ok(k in doc, k);
    assert.ok((doc.programs as number) > 0);
  });

  it('uses a huge-page pool only while it is idle: a reservation the kernel lost counts as in use', () => {
    const meminfo = (total: number, free: number, rsvd: number, surp: number): string =>
      `MemTotal:        4026532 kB\nHugePages_Total:   ${total}\nHugePages_Free:    ${free}\n` +
      `HugePages_Rsvd:    ${rsvd}\nHugePages_Surp:    ${surp}\nHugepagesize:       2048 kB\n`;
    assert.equal(idlePoolSize(parseHugePool(meminfo(8, 8, 0, 0))), 8);
    assert.equal(idlePoolSize(parseHugePool(meminfo(8, 7, 0, 0))), 0, 'a page in use');
    assert.equal(idlePoolSize(parseHugePool(meminfo(1, 1, 0, 0))), 0, 'too small');
    assert.equal(idlePoolSize(parseHugePool(meminfo(32, 32, 0, 0))), 0, 'too large for the model');
    // What a live 6.18 kernel showed with vm.nr_hugepages at 4 after a program of fork, mremap and
    // hugetlbfs mappings had left reservations behind with nothing mapped.
    assert.equal(idlePoolSize(parseHugePool(meminfo(4, 4, 4, 4))), 0, 'reservations left behind');
    assert.equal(idlePoolSize(parseHugePool('MemTotal: 1 kB\n')), 0, 'no hugetlb at all');
    assert.equal(idlePoolSize(parseHugePool(meminfo(8, 8, 0, 0).replace('2048 kB', '1048576 kB'))), 0);
  });

  it('a program across a fork runs in both processes and agrees with the live kernel', () => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: 4 * PAGE, prot: 3, shared: false },
      { op: 'write', off: 0, len: 2 * PAGE, byte: 1 },
      { op: 'fork' },
      { op: 'pagemap', off: 0, npages: 3 },
      { op: 'write', off: 0, len: 1, byte: 2, child: true },
      { op: 'pagemap', off: 0, npages: 2, child: true },
      { op: 'pagemap', off: 0, npages: 2 },
      { op: 'read', off: 0, len: 2, child: true },
      { op: 'read', off: 0, len: 2 },
    ];
    const live = runLive(helper, ops);
    assert.deepEqual(runModel(ops, host), live);
    const bits = (i: number) => (live[i].extra ?? '').split(',');
    assert.ok(!bits(3)[0].includes('x'), 'shared by both processes after the fork');
    assert.ok(bits(5)[0].includes('x') && bits(6)[0].includes('x'), 'each has its own copy after the COW');
    assert.ok(!bits(5)[1].includes('x'), 'the page not written is still shared');
    assert.notEqual(live[7].extra, live[8].extra, 'the child reads its own bytes');
  });

  it('after the child exits, the parent maps its pages alone and agrees with the live kernel', () => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: 2 * PAGE, prot: 3, shared: false },
      { op: 'write', off: 0, len: 2 * PAGE, byte: 1 },
      { op: 'fork' },
      { op: 'pagemap', off: 0, npages: 2 },
      { op: 'exit' },
      { op: 'pagemap', off: 0, npages: 2 },
      { op: 'smaps' },
    ];
    const live = runLive(helper, ops);
    assert.deepEqual(runModel(ops, host), live);
    assert.equal(live[4].ret, 0);
    const bits = (i: number) => (live[i].extra ?? '').split(',');
    assert.ok(!bits(3)[0].includes('x'), 'shared by both processes after the fork');
    assert.ok(bits(5)[0].includes('x'), 'mapped by the parent alone once the child is gone');
  });

  it('address-space limits agree with the live kernel: RLIMIT_DATA, RLIMIT_AS, RLIMIT_STACK and VmData, VmSize, VmStk', () => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    // A mapping that grows down, 1024 pages away from the rest (past stack_guard_gap).
    const G = 1024 * PAGE;
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: 4 * PAGE, prot: 3, shared: false },
      { op: 'setrlimit', res: 'data', cur: 6 * PAGE, max: 'unlimited' },
      { op: 'mmap', off: 8 * PAGE, len: 4 * PAGE, prot: 3, shared: false },
      { op: 'mmap', off: 8 * PAGE, len: 4 * PAGE, prot: 1, shared: false },
      { op: 'mprotect', off: 8 * PAGE, len: 2 * PAGE, prot: 3 },
      { op: 'mprotect', off: 10 * PAGE, len: PAGE, prot: 3 },
      { op: 'mmap', off: G, len: 2 * PAGE, prot: 3, shared: false, flags: ['growsdown'] },
      { op: 'fork' },
      { op: 'setrlimit', res: 'as', cur: 11 * PAGE, max: 11 * PAGE, child: true },
      { op: 'write', off: G - PAGE, len: 1, byte: 1, child: true },
      { op: 'write', off: G - 2 * PAGE, len: 1, byte: 1, child: true },
      { op: 'setrlimit', res: 'as', cur: 'unlimited', max: 'unlimited', child: true },
      { op: 'setrlimit', res: 'stack', cur: 3 * PAGE, max: 'unlimited' },
      { op: 'write', off: G - PAGE, len: 1, byte: 1 },
      { op: 'write', off: G - 2 * PAGE, len: 1, byte: 1 },
      { op: 'status' },
      { op: 'status', child: true },
    ];
    const live = runLive(helper, ops);
    assert.deepEqual(runModel(ops, host), live);
    const at = (off: number): number => WINDOW + off;
    assert.deepEqual(
      live.map((o) => o.ret),
      [at(0), 0, -12, at(8 * PAGE), 0, -12, at(G), 0, 0, 1, -14, -1, 0, 1, -14, 0, 0],
    );
    // VmLck:VmData:VmSize:VmStk(:VmPTE, not in the child) in kB, all but the first above what the
    // live process had before: the page tables are a PUD, a PMD and a PTE table.
    assert.deepEqual(
      live.slice(-2).map((o) => o.extra),
      ['0:24:44:12:12', '0:24:44:12'],
    );
  });

  it('RLIMIT_MEMLOCK set by a program agrees with the live kernel: mlock() past it, a higher hard limit', () => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: 8 * PAGE, prot: 3, shared: false },
      { op: 'setrlimit', res: 'memlock', cur: 4 * PAGE, max: 4 * PAGE },
      { op: 'mlock', off: 0, len: 8 * PAGE, flags: 0 },
      { op: 'mlock', off: 0, len: 4 * PAGE, flags: 0 },
      { op: 'setrlimit', res: 'memlock', cur: 8 * PAGE, max: 8 * PAGE },
      { op: 'status' },
    ];
    const live = runLive(helper, ops);
    assert.deepEqual(runModel(ops, host), live);
    assert.deepEqual(
      live.map((o) => o.ret),
      [WINDOW, 0, -12, 0, -1, 0],
    );
    assert.equal(live[5].extra, '16:32:32:0:12');
  });

  it('seals agree with the live kernel: a write seal refuses pwrite and shared writable mappings', () => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    const F_ADD_SEALS = 1033;
    const F_GET_SEALS = 1034;
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: 2 * PAGE, prot: 3, shared: false },
      { op: 'memfd', slot: 0, flags: 2 },
      { op: 'ftruncate', slot: 0, len: 2 * PAGE },
      { op: 'mmapf', off: 4 * PAGE, len: PAGE, prot: 1, shared: true, slot: 0, foff: 0 },
      { op: 'fcntl', slot: 0, cmd: F_ADD_SEALS, arg: 8 },
      { op: 'munmap', off: 4 * PAGE, len: PAGE },
      { op: 'fcntl', slot: 0, cmd: F_ADD_SEALS, arg: 8 },
      { op: 'pwrite', slot: 0, foff: 0, len: 1, byte: 1 },
      { op: 'mmapf', off: 4 * PAGE, len: PAGE, prot: 3, shared: true, slot: 0, foff: 0 },
      { op: 'fcntl', slot: 0, cmd: F_GET_SEALS, arg: 0 },
    ];
    const live = runLive(helper, ops);
    assert.deepEqual(runModel(ops, host), live);
    assert.deepEqual(
      live.slice(4).map((r) => r.ret),
      [-16, 0, 0, -1, -1, 8],
    );
  });

  it('second open files agree with the live kernel: read-only, O_PATH, O_TRUNC under a shrink seal', () => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    const F_ADD_SEALS = 1033;
    const F_GET_SEALS = 1034;
    const O_PATH_NOFOLLOW = 0o10000000 | 0o400000;
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: 2 * PAGE, prot: 3, shared: false },
      { op: 'memfd', slot: 0, flags: 2 },
      { op: 'ftruncate', slot: 0, len: 2 * PAGE },
      // Read-only into slot 1: no write, no shared writable mapping, no seal.
      { op: 'open', slot: 1, from: 0, flags: 0 },
      { op: 'pwrite', slot: 1, foff: 0, len: 1, byte: 1 },
      { op: 'mmapf', off: 4 * PAGE, len: PAGE, prot: 3, shared: true, slot: 1, foff: 0 },
      { op: 'fcntl', slot: 1, cmd: F_ADD_SEALS, arg: 4 },
      { op: 'fcntl', slot: 0, cmd: F_ADD_SEALS, arg: 2 },
      // Read-write into slot 1: it writes.
      { op: 'open', slot: 1, from: 0, flags: 2 },
      { op: 'pwrite', slot: 1, foff: 0, len: 1, byte: 1 },
      // O_RDWR | O_TRUNC: refused by the shrink seal (and closed again: it may fail).
      { op: 'open', slot: 1, from: 0, flags: 0o1002 },
      { op: 'pread', slot: 0, foff: 0, len: 2 * PAGE },
      // The link itself, and an open through it.
      { op: 'open', slot: 1, from: 0, flags: O_PATH_NOFOLLOW },
      { op: 'open', slot: 0, from: 1, flags: 2 },
      { op: 'fcntl', slot: 1, cmd: F_GET_SEALS, arg: 0 },
      { op: 'close', slot: 0 },
      { op: 'pread', slot: 0, foff: 0, len: 1 },
    ];
    const live = runLive(helper, ops);
    assert.deepEqual(runModel(ops, host), live);
    assert.deepEqual(
      live.slice(3).map((r) => r.ret),
      [0, -9, -13, -1, 0, 0, 1, -1, 2 * PAGE, 0, -40, -9, 0, -9],
    );
  });

  it('fchmod agrees with the live kernel: the mode decides the seals F_SEAL_EXEC brings, which then freezes it', () => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: PAGE, prot: 3, shared: false },
      { op: 'memfd', slot: 0, flags: 2 },
      { op: 'fchmod', slot: 0, mode: 0o700 },
      { op: 'fcntl', slot: 0, cmd: 1033, arg: 0x20 },
      { op: 'fcntl', slot: 0, cmd: 1034, arg: 0 },
      { op: 'fchmod', slot: 0, mode: 0o644 },
      { op: 'fchmod', slot: 0, mode: 0o711 },
      { op: 'fchmod', slot: 0, mode: 0o744 },
      { op: 'fchmod', slot: 1, mode: 0o644 },
    ];
    const live = runLive(helper, ops);
    assert.deepEqual(runModel(ops, host), live);
    assert.deepEqual(
      live.slice(2).map((r) => r.ret),
      [0, 0, 62, -1, -1, 0, -9],
    );
  });

  it('read, write and lseek agree with the live kernel: positions, O_APPEND, data and holes', () => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: PAGE, prot: 3, shared: false },
      { op: 'memfd', slot: 0, flags: 2 },
      { op: 'fwrite', slot: 0, len: 100, byte: 7 },
      { op: 'lseek', slot: 0, foff: 0, whence: 1 },
      // A second open file of it, appending: its own position, writes at the end.
      { op: 'open', slot: 1, from: 0, flags: O_RDWR_APPEND },
      { op: 'lseek', slot: 1, foff: 0, whence: 1 },
      { op: 'fwrite', slot: 1, len: 50, byte: 9 },
      { op: 'lseek', slot: 1, foff: 0, whence: 1 },
      { op: 'pwrite', slot: 1, foff: 0, len: 1, byte: 3 },
      { op: 'lseek', slot: 0, foff: 0, whence: 2 },
      { op: 'lseek', slot: 0, foff: 40, whence: 0 },
      { op: 'fread', slot: 0, len: 2 * PAGE },
      { op: 'fread', slot: 0, len: 10 },
      // Page 0 written, 1 and 2 empty, 3 reserved by fallocate, 4 written.
      { op: 'ftruncate', slot: 0, len: 5 * PAGE },
      { op: 'fallocate', slot: 0, mode: 0, foff: 3 * PAGE, len: PAGE },
      { op: 'pwrite', slot: 0, foff: 4 * PAGE, len: 1, byte: 1 },
      { op: 'lseek', slot: 0, foff: 1, whence: 4 },
      { op: 'lseek', slot: 0, foff: PAGE, whence: 3 },
      { op: 'lseek', slot: 0, foff: 5 * PAGE, whence: 3 },
      { op: 'lseek', slot: 0, foff: -1, whence: 0 },
      { op: 'lseek', slot: 0, foff: 0, whence: 5 },
      { op: 'lseek', slot: 1, foff: -PAGE, whence: 2 },
      { op: 'fread', slot: 1, len: 2 * PAGE },
    ];
    const live = runLive(helper, ops);
    const model = runModel(ops, host);
    // Where each write() at the position wrote, in the model: the position, then the end.
    assert.deepEqual(
      model.flatMap((o) => (o.at === undefined ? [] : [o.at])),
      [0, 100],
    );
    assert.deepEqual(
      model.map(({ at: _at, ...o }) => o),
      live,
    );
    assert.deepEqual(
      live.slice(2).map((r) => r.ret),
      [100, 100, 0, 0, 50, 150, 1, 151, 40, 111, 0, 0, 0, 1, PAGE, 4 * PAGE, -6, -22, -22, 4 * PAGE, PAGE],
    );
  });

  it('huge pages agree with the live kernel: offsets, sizes, pages past the end, splits', (t) => {
    const helper = ensureHelper();
    const host = hostConfig(helper);
    // Only where the live kernel has an idle pool of 2 to 16 huge pages (vm.nr_hugepages).
    if (host.hugePages === 0) {
      t.skip('the live kernel has no idle pool of huge pages');
      return;
    }
    const H = 2 * 1024 * 1024;
    const ops: DiffOp[] = [
      { op: 'memfd', slot: 0, flags: MFD_HUGETLB },
      // A file offset inside a huge page is -EINVAL; a writable mapping makes the file longer.
      { op: 'mmapf', off: 0, len: H, prot: 3, shared: true, slot: 0, foff: PAGE },
      { op: 'mmapf', off: 0, len: 2 * H, prot: 3, shared: true, slot: 0, foff: 0 },
      { op: 'pread', slot: 0, foff: H + 5, len: 8 },
      { op: 'write', off: H + 5, len: 8, byte: 7 },
      { op: 'pread', slot: 0, foff: H + 5, len: 8 },
      // A page put past the end is mapped by a fault; an ftruncate() to the same size drops it.
      { op: 'fallocate', slot: 0, mode: FALLOC_FL_KEEP_SIZE, foff: 2 * H, len: H },
      { op: 'mmapf', off: 4 * H, len: H, prot: 1, shared: true, slot: 0, foff: 2 * H },
      { op: 'read', off: 4 * H + 3, len: 8 },
      { op: 'ftruncate', slot: 0, len: 2 * H },
      { op: 'read', off: 4 * H + 3, len: 8 },
      // Private huge pages: a split that fails at the end keeps the one at the start; they are
      // a file mapping to MADV_REMOVE (-EACCES) and in /proc/PID/maps.
      { op: 'mmap', off: 6 * H, len: 3 * H, prot: 3, shared: false, flags: ['hugetlb'] },
      { op: 'write', off: 7 * H, len: 1, byte: 1 },
      { op: 'mprotect', off: 7 * H, len: PAGE, prot: 1 },
      { op: 'madvise', off: 6 * H, len: H, advice: 'remove' },
      { op: 'maps' },
      { op: 'smaps' },
    ];
    const live = runLive(helper, ops);
    assert.deepEqual(runModel(ops, host), live);
    assert.equal(live[1].ret, -22, 'an offset inside a huge page');
    assert.equal(live[3].ret, 8, 'the mapping made the file 4 MiB long');
    assert.equal(live[8].ret, 8, 'the page past the end is mapped');
    assert.equal(live[10].ret, -14, 'and gone after the ftruncate()');
    assert.equal(live[14].ret, -13);
  });

  it("counts the live kernel's missed huge pages from /proc/vmstat", () => {
    const dir = mkdtempSync(join(tmpdir(), 'hetmem-vmstat-'));
    const f = join(dir, 'vmstat');
    writeFileSync(
      f,
      'nr_free_pages 100\nthp_fault_alloc 148\nthp_fault_fallback 2\nthp_fault_fallback_charge 1\n' +
        'thp_collapse_alloc 4\nthp_collapse_alloc_failed 0\nthp_split_pmd 7\nthp_zero_page_alloc_failed 3\n',
    );
    // khugepaged's count stands for its collapses; vmstat's thp_collapse_alloc also counts those
    // of MADV_COLLAPSE, which the model makes too.
    const k = join(dir, 'pages_collapsed');
    writeFileSync(k, '5\n');
    assert.equal(thpMisses(f, k), 2 + 1 + 3 + 5);
    // Without khugepaged's count, thp_collapse_alloc stands in for it.
    assert.equal(thpMisses(f, join(dir, 'none')), 2 + 1 + 3 + 4);
    assert.equal(thpMisses(join(dir, 'none'), k), -1);
  });

  it('THPs agree with the live kernel: the huge zero page, splits, fork, MADV_FREE and MADV_PAGEOUT', (t) => {
    const env = thpHost(t);
    if (env === null) return;
    const { helper, host } = env;
    const H = 2 * 1024 * 1024;
    const ops: DiffOp[] = [
      { op: 'mmap', off: 0, len: 4 * H, prot: 3, shared: false },
      { op: 'madvise', off: 0, len: 4 * H, advice: 'hugepage' },
      // The huge zero page, then a THP of its own.
      { op: 'read', off: 10, len: 1 },
      { op: 'pagemap', off: H / 2, npages: 1 },
      { op: 'write', off: 5, len: 1, byte: 1 },
      { op: 'smaps' },
      // A split maps the zero-filled pages to the zero page.
      { op: 'write', off: H + H / 2, len: PAGE, byte: 7 },
      { op: 'madvise', off: H, len: H / 4, advice: 'cold' },
      { op: 'pagemap', off: H + 2 * PAGE, npages: 1 },
      { op: 'smaps' },
      // MADV_DONTNEED over a whole PTE table frees it: the next fault maps a THP.
      { op: 'madvise', off: H, len: H, advice: 'dontneed' },
      { op: 'write', off: H + 8 * PAGE, len: 1, byte: 2 },
      { op: 'smaps' },
      // A lazily-freeable THP, written again, stays through MADV_PAGEOUT; a clean one goes.
      { op: 'write', off: 2 * H, len: H / 2, byte: 3 },
      { op: 'madvise', off: 2 * H, len: H, advice: 'free' },
      { op: 'write', off: 2 * H + 5, len: 1, byte: 4 },
      { op: 'write', off: 3 * H, len: H, byte: 5 },
      { op: 'madvise', off: 3 * H, len: H, advice: 'free' },
      { op: 'madvise', off: 2 * H, len: 2 * H, advice: 'pageout' },
      { op: 'smaps' },
      // Shared with a fork child, then the child's alone.
      { op: 'write', off: 0, len: H, byte: 6 },
      { op: 'fork' },
      { op: 'write', off: H / 2, len: 1, byte: 8, child: true },
      { op: 'pagemap', off: H / 4, npages: 1 },
      { op: 'munmap', off: 0, len: PAGE, child: true },
      { op: 'pagemap', off: H / 4, npages: 1 },
      { op: 'exit' },
      { op: 'write', off: H / 4, len: 1, byte: 9 },
      { op: 'smaps' },
    ];
    const before = thpMisses();
    const live = runLive(helper, ops);
    if (thpMisses() !== before) {
      t.skip('the live kernel missed a huge page meanwhile');
      return;
    }
    assert.deepEqual(runModel(ops, host), live);
    assert.equal(live[3].extra, 'pf', 'the huge zero page reads as PM_FILE');
    assert.equal(live[8].extra, 'p', 'a zero-filled page of the split THP maps the zero page');
  });

  it('generated THP programs agree with the live kernel', (t) => {
    const env = thpHost(t);
    if (env === null) return;
    const { helper, host } = env;
    let compared = 0;
    for (let i = 0; i < 40; i++) {
      const ops = thpProgram(new Prng(`difftest-test-thp:${i}`), 12 + (i % 16));
      const before = thpMisses();
      const live = runLive(helper, ops);
      if (thpMisses() !== before) continue;
      assert.deepEqual(runModel(ops, host), live, `program ${i}`);
      compared++;
    }
    assert.ok(compared > 0 || thpMisses() < 0, 'no program could be compared');
  });

  it('without a C compiler: one line, exit 2', () => {
    const cache = mkdtempSync(join(tmpdir(), 'hetmem-cache-'));
    const r = hetmem(['difftest', '--seconds', '1'], { CC: '/nonexistent/cc', XDG_CACHE_HOME: cache });
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /difftest needs a C compiler .* was not found/);
  });
});

describe('saved difftest mismatches replay as the live kernel ran them', () => {
  const dir = join(ROOT, 'test/fixtures/difftest');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
    it(f, () => {
      const r = hetmem(['run', join(dir, f)]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
    });
  }
});
