import type { Thread } from './thread.ts';
import type { Violation } from './types.ts';

/** How many recorded edges LockDep remembers for its identity check (see recentFrom). */
const RECENT_EDGES = 8;

/**
 * A small lockdep: it records "class A was held while class B was taken" edges over the whole
 * run and reports the first edge that closes a cycle, whether or not that run deadlocked.
 */
export class LockDep {
  private readonly edges = new Map<string, Set<string>>();
  private readonly reported = new Set<string>();
  /**
   * The last few edges found already recorded, as pairs of classes compared by identity: a
   * path that takes the same locks page after page meets the same few edges on every
   * acquisition, and comparing them costs less than two hash lookups. Only recorded edges
   * enter it, so it changes no outcome.
   */
  private readonly recentFrom: (string | null)[] = new Array<string | null>(RECENT_EDGES).fill(null);
  private readonly recentTo: (string | null)[] = new Array<string | null>(RECENT_EDGES).fill(null);
  private recentNext = 0;

  constructor(private readonly report: (v: Violation) => void) {}

  /**
   * Records the acquisition of `cls` by `t` (before it is pushed on t.held). `nested`: instances
   * of the class may be held together (folio locks: the kernel orders them by other means).
   */
  acquire(t: Thread, cls: string, name: string, nested = false): void {
    // An index loop: this runs on every acquisition, and an iterator would be allocated per call.
    const held = t.held;
    for (let i = 0; i < held.length; i++) {
      const h = held[i];
      if (h.lockClass === cls) {
        if (nested) continue;
        this.once(`rec:${cls}`, {
          oracle: 'locks',
          message: `possible recursive locking: ${t.name} takes ${name} (class ${cls}) while holding ${h.name}`,
          thread: t.name,
        });
        continue;
      }
      this.addEdge(h.lockClass, cls, t);
    }
  }

  private addEdge(from: string, to: string, t: Thread): void {
    const rf = this.recentFrom;
    const rt = this.recentTo;
    for (let i = 0; i < RECENT_EDGES; i++) if (rf[i] === from && rt[i] === to) return;
    let out = this.edges.get(from);
    if (out === undefined) {
      out = new Set();
      this.edges.set(from, out);
    }
    if (out.has(to)) {
      const k = this.recentNext;
      rf[k] = from;
      rt[k] = to;
      this.recentNext = (k + 1) % RECENT_EDGES;
      return;
    }
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
