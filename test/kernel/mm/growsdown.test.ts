/*
 * MAP_GROWSDOWN: private anonymous memory that a fault below it grows down (the way a
 * thread's stack grows). The expected values are what Linux 6.18 does: each case was run on a
 * live 6.18 kernel as an ordinary user (RLIMIT_STACK 8 MiB), except where a case says otherwise.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import { STACK_GUARD_GAP, VM } from '../../../src/kernel/mm/mm_types.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { PAGE, RW, setup, teardown } from './mm_helpers.ts';

const W = 0x6000_0000_0000;
const MIB = 1024 * 1024;
const ONE = new Uint8Array([7]);

function mapAt(
  sys: System,
  p: Process,
  addr: number,
  len: number,
  flags = MAP_PRIVATE | MAP_GROWSDOWN,
): number {
  return sys.mmap(p, addr, len, RW, flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
}

/** smaps of [start, end): each entry as `start-end Rss(kB) VmFlags`. */
function smaps(sys: System, p: Process, start: number, end: number): string[] {
  const r = sys.smaps(p, start, end);
  assert.ok(typeof r !== 'number');
  return r.map(
    (e) => `${e.start.toString(16)}-${e.end.toString(16)} ${e.rss / 1024} ${e.vmFlags.replaceAll(' ', ',')}`,
  );
}

describe('MAP_GROWSDOWN', () => {
  it('a fault below the mapping grows it down to the faulting page, 2 MiB below too', () => {
    const { sys, p } = setup();
    const a = W + 16 * MIB;
    assert.equal(mapAt(sys, p, a, 64 * 1024), a);
    assert.deepEqual(smaps(sys, p, a - 8 * MIB, a + 8 * MIB), [
      '600001000000-600001010000 0 rd,wr,mr,mw,me,gd,ac',
    ]);
    assert.equal(sys.write(p, a - PAGE, ONE), 1);
    assert.deepEqual(smaps(sys, p, a - 8 * MIB, a + 8 * MIB), [
      '600000fff000-600001010000 4 rd,wr,mr,mw,me,gd,ac',
    ]);
    assert.equal(sys.write(p, a - 2 * MIB, ONE), 1);
    assert.deepEqual(smaps(sys, p, a - 8 * MIB, a + 8 * MIB), [
      '600000e00000-600001010000 8 rd,wr,mr,mw,me,gd,ac',
    ]);
    assert.deepEqual(sys.read(p, a - PAGE, 1).data, ONE);
    teardown(sys);
  });

  it('keeps stack_guard_gap from an accessible mapping below; not from one mapped PROT_NONE', () => {
    const { sys, p } = setup();
    const below = W + 64 * MIB;
    const g = below + 64 * 1024 + 2 * MIB;
    assert.equal(mapAt(sys, p, below, 64 * 1024, MAP_PRIVATE), below);
    assert.equal(mapAt(sys, p, g, 64 * 1024), g);
    assert.equal(sys.write(p, g - MIB, ONE), 1);
    // Exactly the gap above the mapping below is allowed; a page closer is not.
    assert.equal(sys.write(p, below + 64 * 1024 + STACK_GUARD_GAP, ONE), 1);
    assert.equal(sys.write(p, below + 64 * 1024 + STACK_GUARD_GAP - PAGE, ONE), -Errno.EFAULT);
    assert.deepEqual(smaps(sys, p, below, below + 4 * MIB), [
      '600004000000-600004010000 0 rd,wr,mr,mw,me,ac',
      '600004110000-600004220000 4 rd,wr,mr,mw,me,gd,ac',
    ]);
    assert.equal(sys.mprotect(p, below, 64 * 1024, PROT_NONE), 0);
    assert.equal(sys.write(p, below + 64 * 1024 + PAGE, ONE), 1);
    assert.deepEqual(smaps(sys, p, below, below + 4 * MIB), [
      '600004000000-600004010000 0 mr,mw,me',
      '600004011000-600004220000 8 rd,wr,mr,mw,me,gd,ac',
    ]);
    teardown(sys);
  });

  it('grows to RLIMIT_STACK and no further', () => {
    const { sys, p } = setup();
    const top = W + 512 * MIB;
    assert.equal(mapAt(sys, p, top, 64 * 1024), top);
    // The mapping would span 8 MiB and a page: refused. Exactly 8 MiB: granted.
    assert.equal(sys.write(p, top + 64 * 1024 - 8 * MIB - PAGE, ONE), -Errno.EFAULT);
    assert.equal(sys.write(p, top + 64 * 1024 - 8 * MIB, ONE), 1);
    assert.equal(sys.write(p, top + 64 * 1024 - 8 * MIB + PAGE, ONE), 1);
    assert.deepEqual(smaps(sys, p, W + 400 * MIB, W + 600 * MIB), [
      '60001f810000-600020010000 8 rd,wr,mr,mw,me,gd,ac',
    ]);
    assert.equal(p.mm!.totalVm, (8 * MIB) / PAGE);
    teardown(sys);
  });

  it('grows before the access is checked: a denied access below still grows it', () => {
    const { sys, p } = setup();
    const a = W + 16 * MIB;
    assert.equal(mapAt(sys, p, a, 64 * 1024, MAP_PRIVATE | MAP_GROWSDOWN), a);
    assert.equal(sys.mprotect(p, a, 64 * 1024, PROT_NONE), 0);
    assert.equal(sys.read(p, a - PAGE, 1).ret, -Errno.EFAULT);
    assert.equal(p.mm!.findVma(a - PAGE)!.start, a - PAGE);
    const b = W + 20 * MIB;
    assert.equal(
      sys.mmap(p, b, 64 * 1024, PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE),
      b,
    );
    assert.equal(sys.write(p, b - 2 * PAGE, ONE), -Errno.EFAULT);
    assert.equal(p.mm!.findVma(b - 2 * PAGE)!.start, b - 2 * PAGE);
    teardown(sys);
  });

  it('only private anonymous memory grows down', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W, 64 * 1024, MAP_SHARED | MAP_GROWSDOWN), -Errno.EINVAL);
    // From the source (do_mmap()): hugetlb memory is a file, which refuses the flag.
    assert.equal(mapAt(sys, p, W, 2 * MIB, MAP_PRIVATE | MAP_GROWSDOWN | MAP_HUGETLB), -Errno.EINVAL);
    assert.equal(p.mm!.vmas.size, 0);
    teardown(sys);
  });

  it('a mapping without the flag does not grow', () => {
    const { sys, p } = setup();
    assert.equal(mapAt(sys, p, W + 4 * MIB, 64 * 1024, MAP_PRIVATE), W + 4 * MIB);
    assert.equal(sys.write(p, W + 4 * MIB - PAGE, ONE), -Errno.EFAULT);
    assert.equal((p.mm!.findVma(W + 4 * MIB)!.flags & VM.GROWSDOWN) !== 0, false);
    teardown(sys);
  });

  it('a locked stack grows within RLIMIT_MEMLOCK only (from the source: acct_stack_growth())', () => {
    const { sys, p } = setup({ rlimitMemlock: 128 * 1024 });
    const a = W + 16 * MIB;
    assert.equal(mapAt(sys, p, a, 64 * 1024, MAP_PRIVATE | MAP_GROWSDOWN | MAP_LOCKED), a);
    assert.equal(p.mm!.lockedVm, 16);
    assert.equal(sys.write(p, a - 64 * 1024, ONE), 1);
    assert.equal(p.mm!.lockedVm, 32);
    assert.equal(sys.write(p, a - 64 * 1024 - PAGE, ONE), -Errno.EFAULT);
    assert.equal(p.mm!.lockedVm, 32);
    teardown(sys);
  });

  it('mmap without MAP_FIXED keeps clear of the guard gap below a stack (from the source)', () => {
    const { sys, p } = setup();
    const base = p.mm!.mmapBase;
    const top = base - 64 * 1024;
    assert.equal(mapAt(sys, p, top, 64 * 1024), top);
    const a = sys.mmap(p, 0, 64 * 1024, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    assert.equal(a, top - STACK_GUARD_GAP - 64 * 1024);
    // A hint inside the gap is not taken either.
    const b = sys.mmap(p, top - 2 * PAGE, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    assert.ok(b + PAGE <= top - STACK_GUARD_GAP, b.toString(16));
    teardown(sys);
  });
});
