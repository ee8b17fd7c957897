import type { Thread } from './thread.ts';
import type { Violation } from './types.ts';

/** The numbers of the lock classes seen so far (a class is its name, whichever run takes it). */
const classIds = new Map<string, number>();

/**
 * A small number for the lock class `cls`, for the checker's table of edges it has already
 * recorded. A held-list entry carries its class's (HeldLock.classId) so the check looks no name up.
 */
export function lockClassId(cls: string): number {
  let id = classIds.get(cls);
  if (id === undefined) {
    id = classIds.size;
    classIds.set(cls, id);
  }
  return id;
}

/** Class numbers below this pack an edge into one small integer (from * CLASS_SPAN + to). */
const CLASS_SPAN = 1 << 15;

/**
 * A small lockdep: it records "class A was held while class B was taken" edges over the whole
 * run and reports the first edge that closes a cycle, whether or not that run deadlocked.
 */
export class LockDep {
  private readonly edges = new Map<string, Set<string>>();
  private readonly reported = new Set<string>();
  /** The edges already in `edges`, packed (see CLASS_SPAN): taking a lock again checks only these. */
  private readonly known = new Set<number>();
  /** An edge of `known` (-1: none yet), looked up last. */
  private lastKnown = -1;

  constructor(private readonly report: (v: Violation) => void) {}

  /**
   * Records the acquisition of `cls` by `t` (before it is pushed on t.held). `nested`: instances
   * of the class may be held together (folio locks: the kernel orders them by other means).
   * `to`: lockClassId(cls), when the caller has it at hand.
   */
  acquire(t: Thread, cls: string, name: string, nested = false, to?: number): void {
    // An index loop: this runs on every acquisition, and an iterator would be allocated per call.
    const held = t.held;
    if (held.length === 0) return;
    to ??= lockClassId(cls);
    for (let i = 0; i < held.length; i++) {
      const h = held[i];
      const from = h.classId ?? lockClassId(h.lockClass);
      // Class numbers are one per class name: comparing them compares the names, without a
      // string comparison (a call into the runtime when the names differ).
      if (from === to) {
        if (nested) continue;
        this.once(`rec:${cls}`, {
          oracle: 'locks',
          message: `possible recursive locking: ${t.name} takes ${name} (class ${cls}) while holding ${h.name}`,
          thread: t.name,
        });
        continue;
      }
      if (from < CLASS_SPAN && to < CLASS_SPAN) {
        const key = from * CLASS_SPAN + to;
        // The edge checked last is most often the one taken again (mmap_lock, then ptl).
        if (key === this.lastKnown || this.known.has(key)) {
          this.lastKnown = key;
          continue;
        }
        this.known.add(key);
      }
      this.addEdge(h.lockClass, cls, t);
    }
  }

  private addEdge(from: string, to: string, t: Thread): void {
    let out = this.edges.get(from);
    if (out === undefined) {
      out = new Set();
      this.edges.set(from, out);
    }
    if (out.has(to)) return;
    out.add(to);
    const path = this.path(to, from);
    if (path !== null) {
      this.once(`cyc:${[...path].sort().join('>')}`, {
        oracle: 'locks',
        message: `lock order cycle: ${[from, ...path].join(' -> ')} (${t.name} took ${to} while holding ${from})`,
        thread: t.name,
      });
    }
  }

  /** A path of classes from `a` to `b`, or null. */
  private path(a: string, b: string): string[] | null {
    const prev = new Map<string, string>();
    const queue = [a];
    const seen = new Set([a]);
    while (queue.length > 0) {
      const x = queue.shift()!;
      if (x === b) {
        const out = [x];
        let cur = x;
        while (cur !== a) {
          cur = prev.get(cur)!;
          out.unshift(cur);
        }
        return out;
      }
      for (const y of this.edges.get(x) ?? []) {
        if (!seen.has(y)) {
          seen.add(y);
          prev.set(y, x);
          queue.push(y);
        }
      }
    }
    return null;
  }

  private once(key: string, v: Violation): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.report(v);
  }

  /** Edges seen so far, for tests and reports. */
  orderEdges(): [string, string][] {
    const out: [string, string][] = [];
    for (const [a, bs] of this.edges) for (const b of bs) out.push([a, b]);
    return out;
  }
}
