/**
 * Which event, over which range, each path of the core mm raises (reference §1.3). The recorder
 * is a whole-mm subscriber: it sees every invalidation of its mm with the range and flags.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/kernel/mm/mman.ts';
import type { MmStruct } from '../../../src/kernel/mm/mm_types.ts';
import {
  MmuIntervalNotifier,
  MmuNotifier,
  type MmuNotifierOps,
  type MmuNotifierRange,
  mmuIntervalNotifierInsert,
  mmuIntervalSetSeq,
  mmuNotifierRangeBlockable,
  mmuNotifierRegister,
  mmuNotifyEventName,
} from '../../../src/kernel/mm/mmu_notifier.ts';
import {
  clearSoftDirty,
  cpuWrite,
  oomReap,
  sysExit,
  sysFork,
  sysMadvise,
  sysMmap,
  sysMprotect,
  sysMremap,
  sysMunmap,
} from '../../../src/kernel/syscalls.ts';
import { type Process, System } from '../../../src/kernel/system.ts';
import { ULONG_MAX } from '../../../src/lib/units.ts';

const PAGE = 4096;

interface Event {
  event: string;
  start: number;
  end: number;
  blockable: boolean;
}

function rec(r: MmuNotifierRange): Event {
  return {
    event: mmuNotifyEventName(r.event),
    start: r.start,
    end: r.end,
    blockable: mmuNotifierRangeBlockable(r),
  };
}

class Recorder extends MmuNotifier {
  readonly starts: Event[] = [];
  readonly ends: Event[] = [];
  released = 0;
}

const recorderOps: MmuNotifierOps<Recorder> = {
  *invalidateRangeStart(s, r) {
    s.starts.push(rec(r));
    return 0;
  },
  *invalidateRangeEnd(s, r) {
    s.ends.push(rec(r));
  },
  *release(s) {
    s.released++;
  },
};

function setup(): { sys: System; p: Process; mm: MmStruct; rec: Recorder } {
  const sys = new System({ ram: 64 * 1024 * 1024, swap: 0 });
  const p = sys.createProcess('p');
  const mm = p.mm!;
  const r = new Recorder(recorderOps);
  assert.equal(sys.run('register', mmuNotifierRegister(r, mm)), 0);
  return { sys, p, mm, rec: r };
}

/** mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) and write every page. */
function anonPopulated(sys: System, p: Process, pages: number, prot = PROT_READ | PROT_WRITE): number {
  const addr = sys.run('mmap', sysMmap(sys, p, 0, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS));
  assert.ok(addr > 0, `mmap failed: ${addr}`);
  const ret = sys.run('touch', cpuWrite(sys, p, addr, new Uint8Array(pages * PAGE).fill(7)));
  assert.equal(ret, pages * PAGE);
  return addr;
}

void describe('events raised by the core mm', () => {
  void it('faulting pages in raises nothing (permissions only grow)', () => {
    const { sys, p, rec: r } = setup();
    anonPopulated(sys, p, 4);
    assert.deepEqual(r.starts, []);
  });

  void it('munmap: UNMAP over the unmapped range', () => {
    const { sys, p, rec: r } = setup();
    const addr = anonPopulated(sys, p, 4);
    assert.equal(sys.run('munmap', sysMunmap(sys, p, addr + PAGE, 2 * PAGE)), 0);
    const e = { event: 'UNMAP', start: addr + PAGE, end: addr + 3 * PAGE, blockable: true };
    assert.deepEqual(r.starts, [e]);
    assert.deepEqual(r.ends, [e]);
  });

  void it('mprotect: PROTECTION_VMA over the range', () => {
    const { sys, p, rec: r } = setup();
    const addr = anonPopulated(sys, p, 4);
    assert.equal(sys.run('mprotect', sysMprotect(sys, p, addr, 4 * PAGE, PROT_READ)), 0);
    assert.deepEqual(r.starts, [
      { event: 'PROTECTION_VMA', start: addr, end: addr + 4 * PAGE, blockable: true },
    ]);
    assert.equal(r.ends.length, 1);
  });

  void it('fork: PROTECTION_PAGE on the parent; a COW write then CLEARs one page', () => {
    const { sys, p, rec: r } = setup();
    const addr = anonPopulated(sys, p, 4);
    const { ret, child } = sys.run('fork', sysFork(sys, p, 'child'));
    assert.ok(ret > 0 && child !== null);
    assert.deepEqual(r.starts, [
      { event: 'PROTECTION_PAGE', start: addr, end: addr + 4 * PAGE, blockable: true },
    ]);
    assert.equal(child.mm!.notifierSubscriptions, null, 'the child inherits no subscriptions');

    assert.equal(sys.run('cow', cpuWrite(sys, p, addr + 2 * PAGE, new Uint8Array([1]))), 1);
    assert.deepEqual(r.starts.slice(1), [
      { event: 'CLEAR', start: addr + 2 * PAGE, end: addr + 3 * PAGE, blockable: true },
    ]);
    assert.equal(r.ends.length, 2);
  });

  void it('exit: RELEASE to interval subscribers, ->release, then UNMAP [0, ULONG_MAX)', () => {
    const { sys, p, mm, rec: r } = setup();
    const addr = anonPopulated(sys, p, 2);
    const log: string[] = [];
    const iv = new MmuIntervalNotifier();
    const ret = sys.run(
      'insert',
      mmuIntervalNotifierInsert(iv, mm, addr, 2 * PAGE, {
        *invalidate(sub, range, cur) {
          mmuIntervalSetSeq(sub, cur);
          log.push(
            `${mmuNotifyEventName(range.event)} [${range.start}, ${range.end === ULONG_MAX ? 'ULONG_MAX' : range.end})`,
          );
          return true;
        },
      }),
    );
    assert.equal(ret, 0);
    assert.equal(sys.run('exit', sysExit(sys, p)), 0);
    assert.deepEqual(log, ['RELEASE [0, ULONG_MAX)', 'UNMAP [0, ULONG_MAX)']);
    assert.equal(r.released, 1);
    assert.deepEqual(r.starts, [], 'the whole-mm subscriber was unhooked by release before the unmap');
    assert.deepEqual(mm.notifierSubscriptions?.intervals(), [iv]);
  });

  void it('oom reaper: non-blockable UNMAP per VMA; a VMA refused with -EAGAIN is skipped', () => {
    const { sys, p, mm, rec: r } = setup();
    const a = anonPopulated(sys, p, 2);
    // Different protections keep the two VMAs apart (identical neighbours would merge into one).
    const b = anonPopulated(sys, p, 3, PROT_READ | PROT_WRITE | PROT_EXEC);
    const first = Math.min(a, b);
    // A subscriber that would have to sleep for the lower VMA.
    const refuser = new MmuNotifier({
      *invalidateRangeStart(_s, range) {
        return !mmuNotifierRangeBlockable(range) && range.start === first ? -Errno.EAGAIN : 0;
      },
    });
    assert.equal(sys.run('register', mmuNotifierRegister(refuser, mm)), 0);
    const before = mm.rss.reduce((x, y) => x + y, 0);
    const reaped = sys.run('oom_reaper', oomReap(sys, p));
    assert.equal(reaped, 1);
    assert.equal(sys.trace.counters.get('oom.skipped'), 1);
    const lo = { event: 'UNMAP', start: first, end: first + (first === a ? 2 : 3) * PAGE, blockable: false };
    const hiStart = first === a ? b : a;
    const hi = {
      event: 'UNMAP',
      start: hiStart,
      end: hiStart + (hiStart === a ? 2 : 3) * PAGE,
      blockable: false,
    };
    assert.deepEqual(r.starts, [lo, hi]);
    // The recorder's end for the refused VMA comes from the core's unwinding, not from the reaper.
    assert.deepEqual(r.ends, [lo, hi]);
    const after = mm.rss.reduce((x, y) => x + y, 0);
    assert.equal(before - after, hi.end - hi.start === 2 * PAGE ? 2 : 3, 'only the accepted VMA was zapped');
    assert.deepEqual(sys.sched.violations, []);
  });

  void it('madvise(MADV_DONTNEED): CLEAR over the range', () => {
    const { sys, p, rec: r } = setup();
    const addr = anonPopulated(sys, p, 4);
    assert.equal(sys.run('madvise', sysMadvise(sys, p, addr + PAGE, PAGE, MADV.DONTNEED)), 0);
    assert.deepEqual(r.starts, [
      { event: 'CLEAR', start: addr + PAGE, end: addr + 2 * PAGE, blockable: true },
    ]);
  });

  void it('mremap (move): UNMAP over the old range', () => {
    const { sys, p, rec: r } = setup();
    const addr = anonPopulated(sys, p, 4);
    const target = addr - 0x1000000;
    const n = sys.run(
      'mremap',
      sysMremap(sys, p, addr + PAGE, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target),
    );
    assert.equal(n, target);
    assert.deepEqual(r.starts, [
      { event: 'UNMAP', start: addr + PAGE, end: addr + 3 * PAGE, blockable: true },
    ]);
  });

  void it('mremap (move) from the start of a VMA up to a 2 MiB boundary: UNMAP from the boundary below', () => {
    // try_realign_addr() moves the page tables from the boundary below when nothing is mapped
    // there, and the invalidation covers what it moves.
    const { sys, p, rec: r } = setup();
    const PMD = 2 * 1024 * 1024;
    const raw = sys.run('mmap', sysMmap(sys, p, 0, 3 * PMD, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS));
    const base = Math.ceil(raw / PMD) * PMD;
    assert.equal(sys.run('munmap', sysMunmap(sys, p, raw, 3 * PMD)), 0);
    const addr = base + PMD - 2 * PAGE;
    const fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    assert.equal(sys.run('mmap', sysMmap(sys, p, addr, 2 * PAGE, PROT_READ | PROT_WRITE, fixed)), addr);
    assert.equal(sys.run('touch', cpuWrite(sys, p, addr, new Uint8Array(2 * PAGE).fill(7))), 2 * PAGE);
    const target = addr - 0x1000000;
    const seen = r.starts.length;
    const n = sys.run(
      'mremap',
      sysMremap(sys, p, addr, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target),
    );
    assert.equal(n, target);
    assert.deepEqual(r.starts.slice(seen), [
      { event: 'UNMAP', start: base, end: addr + 2 * PAGE, blockable: true },
    ]);
  });

  void it('clear_refs soft-dirty: SOFT_DIRTY over [0, ULONG_MAX)', () => {
    const { sys, p, rec: r } = setup();
    anonPopulated(sys, p, 2);
    sys.run('clear_refs', clearSoftDirty(sys, p));
    assert.deepEqual(r.starts, [{ event: 'SOFT_DIRTY', start: 0, end: ULONG_MAX, blockable: true }]);
  });
});
