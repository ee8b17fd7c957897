/**
 * Oracle 5 (DESIGN.md): locks. Lock-order cycles (found by the scheduler's lockdep over the whole
 * run, whether or not the run deadlocked) and sleeping where sleeping is forbidden (inside a
 * non-blockable invalidation, with a spinlock held) are reported while the run goes on, as
 * violations with oracle 'locks'; this collects them. It also reports a thread that finished
 * normally while still holding a lock or still inside a non-blockable / atomic section.
 */
import type { System } from '../kernel/system.ts';
import type { Violation } from '../sched/types.ts';

export const LOCKS_ORACLE = 'locks';

export function checkLocks(sys: System): Violation[] {
  // No violation at all, the usual case after a step: no filter (and no closure) to run.
  const all = sys.sched.violations;
  const out = all.length === 0 ? [] : all.filter((v) => v.oracle === LOCKS_ORACLE);
  // Index loops: this runs after every step the explorer takes.
  const threads = sys.sched.threads;
  for (let i = 0; i < threads.length; i++) {
    const t = threads[i];
    // A thread that threw left its locks behind because it died: that is reported elsewhere.
    if (t.state !== 'done' || t.error !== undefined) continue;
    // A folio may stay locked past the thread that locked it (make_device_exclusive() hands its
    // page back locked; another path unlocks it): only real locks count here.
    const held = t.held.filter((h) => h.lockClass !== 'folio_lock');
    if (held.length > 0) {
      out.push({
        oracle: LOCKS_ORACLE,
        message: `${t.name} finished holding ${held.map((h) => h.name).join(', ')}`,
        thread: t.name,
      });
    }
    if (t.nonBlockDepth !== 0 || t.atomicDepth !== 0) {
      out.push({
        oracle: LOCKS_ORACLE,
        message: `${t.name} finished with unbalanced non-block (${t.nonBlockDepth}) / atomic (${t.atomicDepth}) depth`,
        thread: t.name,
      });
    }
  }
  return out;
}
