/**
 * exit of a process while another of its threads is inside a syscall: the thread's own mm_users
 * reference (task->mm) keeps the address space until it leaves the kernel, and the last reference
 * to go runs exit_mmap().
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/kernel/errno.ts';
import { MAP_POPULATE } from '../../src/kernel/mm/mman.ts';
import { sysExit, sysMmap, sysMprotect, cpuWrite } from '../../src/kernel/syscalls.ts';
import type { Process, System } from '../../src/kernel/system.ts';
import { Prng } from '../../src/lib/prng.ts';
import type { KGen } from '../../src/sched/types.ts';
import type { Thread } from '../../src/sched/thread.ts';
import { assertOracles } from '../../src/oracles/index.ts';
import { ANON_PRIVATE, PAGE, RW, setup } from './mm/mm_helpers.ts';

/** Holds p's mmap lock for reading for a few steps, so a writer must wait for it. */
function* reader(p: Process, held: { now: boolean }): KGen {
  const lock = p.mm!.mmapLock;
  yield* lock.downRead();
  held.now = true;
  for (let i = 0; i < 3; i++) yield { kind: 'step', label: 'hold' };
  yield* lock.upRead();
  held.now = false;
}

/**
 * Runs the reader until it holds the lock, then the syscall until it waits for the lock, then
 * the exit to its end, then the rest.
 */
function exitWhileWaiting(sys: System, p: Process, call: KGen<unknown>): { call: Thread; exit: Thread } {
  const held = { now: false };
  const r = sys.sched.spawn('reader', reader(p, held));
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
  it('mmap waiting for the mmap lock finishes on the mm; exit_mmap runs when it leaves', () => {
    const { sys, p } = setup();
    const mm = p.mm!;
    const { call, exit } = exitWhileWaiting(
      sys,
      p,
      sysMmap(sys, p, 0, 16 * PAGE, RW, ANON_PRIVATE | MAP_POPULATE),
    );
    assert.equal(call.error, undefined, String(call.error));
    assert.equal(exit.result, 0);
    assert.ok((call.result as number) > 0, `mmap returned ${String(call.result)}`);
    assert.equal(p.mm, null);
    assert.equal(mm.mmUsers, 0);
    assert.equal(mm.exited, true, 'the last reference ran exit_mmap');
    assert.equal(mm.vmas.size, 0);
    assert.equal(sys.stats().used, 0, 'the populated pages went with the mm');
    assertOracles(sys, { teardown: true });
  });

  it('mprotect and a CPU write waiting for the lock do the same', () => {
    for (const make of [
      (sys: System, p: Process, a: number) => sysMprotect(sys, p, a, PAGE, 1),
      (sys: System, p: Process, a: number) => cpuWrite(sys, p, a, new Uint8Array(PAGE).fill(7)),
    ]) {
      const { sys, p } = setup();
      const a = sys.mmap(p, 0, 4 * PAGE, RW, ANON_PRIVATE);
      const mm = p.mm!;
      const { call, exit } = exitWhileWaiting(sys, p, make(sys, p, a));
      assert.equal(call.error, undefined, String(call.error));
      assert.equal(exit.result, 0);
      assert.ok((call.result as number) >= 0, `returned ${String(call.result)}`);
      assert.equal(mm.exited, true);
      assertOracles(sys, { teardown: true });
    }
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
      assert.ok((m.result as number) > 0 || m.result === -Errno.ESRCH, `mmap ${String(m.result)}`);
      assert.ok(w.result === 2 * PAGE || w.result === -Errno.ESRCH, `write ${String(w.result)}`);
      assertOracles(sys, { teardown: true });
    });
  }
});
