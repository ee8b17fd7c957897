/**
 * exit of a process while another of its threads is inside a syscall: the thread's own mm_users
 * reference (task->mm) keeps the address space until it leaves the kernel, and the last reference
 * to go runs exit_mmap(). A thread asleep for the mmap lock in a killable wait (the syscalls'
 * mmap_write_lock_killable(), the fault path's lock_mm_and_find_vma()) sees exit_group()'s SIGKILL
 * and gives up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/kernel/errno.ts';
import { MAP_POPULATE } from '../../src/kernel/mm/mman.ts';
import { MADV } from '../../src/kernel/mm/mman.ts';
import {
  clearSoftDirty,
  cpuRead,
  cpuWrite,
  sysExit,
  sysMadvise,
  sysMmap,
  sysMprotect,
  sysMremap,
  sysMunmap,
} from '../../src/kernel/syscalls.ts';
import type { Process, System } from '../../src/kernel/system.ts';
import { accessRemoteVm } from '../../src/kernel/mm/memory.ts';
import { enterTask, leaveTask } from '../../src/kernel/mm/mmap_lock.ts';
import { Prng } from '../../src/lib/prng.ts';
import type { KGen } from '../../src/sched/types.ts';
import type { Thread } from '../../src/sched/thread.ts';
import { assertOracles } from '../../src/oracles/index.ts';
import { ANON_PRIVATE, PAGE, RW, setup } from './mm/mm_helpers.ts';

/** Holds p's mmap lock for a few steps (for reading, or for writing so readers wait too). */
function* reader(p: Process, held: { now: boolean }, write = false): KGen {
  const lock = p.mm!.mmapLock;
  if (write) yield* lock.downWrite();
  else yield* lock.downRead();
  held.now = true;
  for (let i = 0; i < 3; i++) yield { kind: 'step', label: 'hold' };
  if (write) yield* lock.upWrite();
  else yield* lock.upRead();
  held.now = false;
}

/**
 * Runs the reader until it holds the lock, then the syscall until it waits for the lock, then
 * the exit to its end, then the rest.
 */
function exitWhileWaiting(
  sys: System,
  p: Process,
  call: KGen<unknown>,
  write = false,
  lockOf: Process = p,
): { call: Thread; exit: Thread } {
  const held = { now: false };
  const r = sys.sched.spawn('reader', reader(lockOf, held, write));
  const c = sys.sched.spawn('call', call);
  const e = sys.sched.spawn('exit', sysExit(sys, p));
  sys.sched.chooser = {
    choose(runnable) {
      const want = !held.now && r.state === 'runnable' ? r : [c, e, r].find((t) => runnable.includes(t));
      return want ?? runnable[0];
    },
  };
  sys.sched.runAll();
  return { call: c, exit: e };
}

describe('exit while another thread is inside a syscall of the process', () => {
  it('mmap waiting for the mmap lock gives up with -EINTR (mmap_write_lock_killable); exit_mmap runs when it leaves', () => {
    const { sys, p } = setup();
    const mm = p.mm!;
    const { call, exit } = exitWhileWaiting(
      sys,
      p,
      sysMmap(sys, p, 0, 16 * PAGE, RW, ANON_PRIVATE | MAP_POPULATE),
    );
    assert.equal(call.error, undefined, String(call.error));
    assert.equal(exit.result, 0);
    assert.equal(call.result, -Errno.EINTR);
    assert.equal(p.mm, null);
    assert.equal(mm.mmUsers, 0);
    assert.equal(mm.exited, true, 'the last reference ran exit_mmap');
    assert.equal(mm.vmas.size, 0);
    assert.equal(sys.stats().used, 0, 'nothing was populated, nothing is left');
    assertOracles(sys, { teardown: true });
  });

  it('munmap, mprotect, mremap, a write-locked madvise and clear_refs give up with -EINTR; a CPU write faults with SIGSEGV', () => {
    for (const [make, want] of [
      [(sys: System, p: Process, a: number) => sysMunmap(sys, p, a, PAGE), -Errno.EINTR],
      [(sys: System, p: Process, a: number) => sysMprotect(sys, p, a, PAGE, 1), -Errno.EINTR],
      [(sys: System, p: Process, a: number) => sysMremap(sys, p, a, PAGE, 2 * PAGE, 0), -Errno.EINTR],
      [(sys: System, p: Process, a: number) => sysMadvise(sys, p, a, PAGE, MADV.HUGEPAGE), -Errno.EINTR],
      // clear_refs_write() takes the lock with mmap_write_lock_killable().
      [(sys: System, p: Process) => clearSoftDirty(sys, p), -Errno.EINTR],
      // lock_mm_and_find_vma() fails, the fault goes to bad_area_nosemaphore().
      [
        (sys: System, p: Process, a: number) => cpuWrite(sys, p, a, new Uint8Array(PAGE).fill(7)),
        -Errno.EFAULT,
      ],
    ] as const) {
      const { sys, p } = setup();
      const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON_PRIVATE);
      const mm = p.mm!;
      // The holder writes, so the fault's read lock waits too.
      const { call, exit } = exitWhileWaiting(sys, p, make(sys, p, a), true);
      assert.equal(call.error, undefined, String(call.error));
      assert.equal(exit.result, 0);
      assert.equal(call.result, want);
      assert.equal(mm.exited, true);
      assertOracles(sys, { teardown: true });
    }
  });

  it('madvise that takes the lock for reading waits it out: madvise_lock() does not take it killable', () => {
    const { sys, p } = setup();
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON_PRIVATE);
    const { call, exit } = exitWhileWaiting(sys, p, sysMadvise(sys, p, a, PAGE, MADV.DONTNEED), true);
    assert.equal(call.error, undefined, String(call.error));
    assert.equal(exit.result, 0);
    assert.equal(call.result, 0);
  });

  it("access_remote_vm() waiting for another process' mmap lock gives up when its caller exits", () => {
    // /proc/pid/mem or process_vm_readv() by a thread of p reads q's memory; q's lock is held for
    // writing. __access_remote_vm() takes it with mmap_read_lock_killable() and returns 0 when
    // p's exit_group() kills the waiter; q is untouched.
    const { sys, p } = setup();
    const q = sys.createProcess('q');
    const a = sys.mmap(q, 0, 4 * PAGE, RW, ANON_PRIVATE);
    assert.equal(sys.run('w', cpuWrite(sys, q, a, new Uint8Array(PAGE).fill(5))), PAGE);
    const remote = (buf: Uint8Array) =>
      (function* (): KGen<number> {
        enterTask(sys.sched, p);
        try {
          return yield* accessRemoteVm(q.mm!, a, buf, false);
        } finally {
          leaveTask(sys.sched);
        }
      })();
    const buf = new Uint8Array(2 * PAGE);
    const { call, exit } = exitWhileWaiting(sys, p, remote(buf), true, q);
    assert.equal(call.error, undefined, String(call.error));
    assert.equal(exit.result, 0);
    assert.equal(call.result, 0, 'killed while waiting: nothing copied');
    assert.ok(buf.every((b) => b === 0));
    assert.equal(q.exited, false);
    assert.equal(q.mm!.mmapLock.writer, null);
    assert.equal(q.mm!.mmapLock.readers, 0);
    // Without the exit the same access waits the writer out and copies both pages (the second
    // is faulted in: a zero page).
    const p2 = sys.createProcess('p2');
    const buf2 = new Uint8Array(2 * PAGE);
    const held = { now: false };
    sys.sched.spawn('writer', reader(q, held, true));
    const c = sys.sched.spawn(
      'call',
      (function* (): KGen<number> {
        enterTask(sys.sched, p2);
        try {
          return yield* accessRemoteVm(q.mm!, a, buf2, false);
        } finally {
          leaveTask(sys.sched);
        }
      })(),
    );
    sys.sched.runAll();
    assert.equal(c.error, undefined, String(c.error));
    assert.equal(c.result, 2 * PAGE);
    assert.ok(buf2.subarray(0, PAGE).every((b) => b === 5));
    assertOracles(sys, { teardown: true });
  });

  it('a fatal signal pending does not stop a lock that is free: the killable lock takes its fast path', () => {
    const { sys, p } = setup();
    const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON_PRIVATE);
    // The exit runs between the read's entry (its start and taskMmget) and its fault; nothing holds the lock.
    const r = sys.sched.spawn('read', cpuRead(sys, p, a, PAGE));
    const e = sys.sched.spawn('exit', sysExit(sys, p));
    let readSteps = 0;
    sys.sched.chooser = {
      choose(runnable) {
        if (runnable.includes(r) && readSteps++ < 2) return r;
        return runnable.includes(e) ? e : runnable[0];
      },
    };
    sys.sched.runAll();
    assert.equal(e.result, 0);
    assert.equal(r.error, undefined, String(r.error));
    assert.equal((r.result as { ret: number }).ret, PAGE);
    assertOracles(sys, { teardown: true });
  });

  it('a thread of another process waiting for the same lock is not woken by the exit', () => {
    const { sys, p } = setup();
    const q = sys.fork(p, 'q').child!;
    const mm = q.mm!;
    const held = { now: false };
    // p's exit has no bearing on q's mm: a thread of q waiting for q's lock keeps waiting.
    const rd = sys.sched.spawn('reader', reader(q, held));
    const c = sys.sched.spawn('call', sysMmap(sys, q, 0, PAGE, RW, ANON_PRIVATE));
    const e = sys.sched.spawn('exit', sysExit(sys, p));
    sys.sched.chooser = {
      choose(runnable) {
        const want = !held.now && rd.state === 'runnable' ? rd : [c, e, rd].find((t) => runnable.includes(t));
        return want ?? runnable[0];
      },
    };
    sys.sched.runAll();
    assert.equal(e.result, 0);
    assert.ok((c.result as number) > 0, `mmap of q returned ${String(c.result)}`);
    assert.equal(mm.exited, false);
  });

  it('a syscall entered after the exit finds no process (-ESRCH)', () => {
    const { sys, p } = setup();
    sys.exit(p);
    assert.equal(sys.mmap(p, 0, PAGE, RW, ANON_PRIVATE), -Errno.ESRCH);
    assert.equal(sys.mprotect(p, 0, PAGE, 1), -Errno.ESRCH);
  });

  for (let seed = 1; seed <= 20; seed++) {
    it(`mmap, exit and a CPU write in random orders (seed ${seed})`, () => {
      const { sys, p } = setup();
      const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON_PRIVATE);
      const rng = new Prng(seed);
      sys.sched.chooser = { choose: (runnable) => runnable[rng.int(runnable.length)] };
      const m = sys.sched.spawn('mmap', sysMmap(sys, p, 0, 8 * PAGE, RW, ANON_PRIVATE | MAP_POPULATE));
      const w = sys.sched.spawn('write', cpuWrite(sys, p, a, new Uint8Array(2 * PAGE).fill(1)));
      const e = sys.sched.spawn('exit', sysExit(sys, p));
      sys.sched.runAll();
      for (const t of [m, w, e]) assert.equal(t.error, undefined, `${t.name}: ${String(t.error)}`);
      // -EINTR / -EFAULT: the exit came while the call waited for the mmap lock.
      assert.ok(
        (m.result as number) > 0 || m.result === -Errno.ESRCH || m.result === -Errno.EINTR,
        `mmap ${String(m.result)}`,
      );
      assert.ok(
        w.result === 2 * PAGE || w.result === -Errno.ESRCH || w.result === -Errno.EFAULT,
        `write ${String(w.result)}`,
      );
      assertOracles(sys, { teardown: true });
    });
  }
});
