/**
 * PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010).
 *
 * Each thread gets a random priority above d when first seen, and d-1 change points are drawn
 * uniformly over the estimated schedule length k. The highest-priority runnable thread always runs;
 * when the step count reaches the i-th change point, the thread about to run drops to priority i,
 * below every initial priority. A bug that needs d ordering constraints is then hit with
 * probability at least 1/(n * k^(d-1)) per schedule, far better than uniform random choice for
 * bugs that need a thread to stall at one precise point.
 *
 * k is learnt: the first CALIBRATION_RUNS schedules run without change points (plain random
 * priorities, still valid PCT runs with d = 1) and k is the longest of them. It is then fixed, so
 * schedule i depends only on (seed, i, k) and parallel workers given k reproduce it exactly.
 */
import { Prng } from '../../lib/prng.ts';
import type { Thread } from '../thread.ts';
import type { ChoiceContext, RunOutcome, Strategy } from './types.ts';

export const CALIBRATION_RUNS = 3;

export class PctStrategy implements Strategy {
  readonly name = 'pct';
  private readonly root: Prng;
  private prng: Prng;
  private readonly priority = new Map<number, number>();
  /** Change points of this schedule: [step number (1-based), new priority], ascending by step. */
  private changes: [number, number][] = [];
  private nextChange = 0;
  private index = 0;
  /** Longest schedule seen during calibration; undefined until the first run ends. */
  estimatedSteps: number | undefined;

  constructor(
    seed: number,
    private readonly depth = 3,
    private readonly preemptionBound = Infinity,
    /** Known k (parallel workers get it from the master); otherwise learnt. */
    estimatedSteps?: number,
  ) {
    if (!Number.isInteger(depth) || depth < 1)
      throw new RangeError(`pct depth must be an integer >= 1, got ${depth}`);
    this.root = new Prng(seed);
    this.prng = this.root.fork('pct:0');
    this.estimatedSteps = estimatedSteps;
  }

  begin(index: number): boolean {
    this.index = index;
    this.prng = this.root.fork(`pct:${index}`);
    this.priority.clear();
    this.changes = [];
    this.nextChange = 0;
    const k = this.estimatedSteps;
    if (index >= CALIBRATION_RUNS && k !== undefined && k > 0) {
      for (let i = 1; i < this.depth; i++) this.changes.push([1 + this.prng.int(k), i]);
      this.changes.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    }
    return true;
  }

  private prio(t: Thread): number {
    let p = this.priority.get(t.id);
    if (p === undefined) {
      // A random real above d: equivalent to a random permutation of d..d+n-1, and it also works
      // for threads spawned mid-run (SRCU callbacks) without knowing n in advance.
      p = this.depth + this.prng.next();
      this.priority.set(t.id, p);
    }
    return p;
  }

  private highest(runnable: readonly Thread[]): number {
    let best = 0;
    let bestP = -Infinity;
    runnable.forEach((t, i) => {
      const p = this.prio(t);
      if (p > bestP) {
        bestP = p;
        best = i;
      }
    });
    return best;
  }

  choose(ctx: ChoiceContext): number {
    if (ctx.lastIndex >= 0 && ctx.preemptions >= this.preemptionBound) return ctx.lastIndex;
    const stepNo = ctx.steps + 1;
    let pick = this.highest(ctx.runnable);
    while (this.nextChange < this.changes.length && this.changes[this.nextChange][0] <= stepNo) {
      this.priority.set(ctx.runnable[pick].id, this.changes[this.nextChange][1]);
      this.nextChange++;
      pick = this.highest(ctx.runnable);
    }
    return pick;
  }

  /** Change points that fall on steps where only one thread could run demote that thread. */
  beforeStep(t: Thread, steps: number): boolean {
    this.prio(t);
    while (this.nextChange < this.changes.length && this.changes[this.nextChange][0] <= steps + 1) {
      this.priority.set(t.id, this.changes[this.nextChange][1]);
      this.nextChange++;
    }
    return true;
  }

  end(outcome: RunOutcome): void {
    if (this.index < CALIBRATION_RUNS) {
      this.estimatedSteps = Math.max(this.estimatedSteps ?? 0, outcome.steps);
    }
  }

  exhausted(): boolean {
    return false;
  }
}
