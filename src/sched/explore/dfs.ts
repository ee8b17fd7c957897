/**
 * Bounded exhaustive depth-first search over choice points, with sleep sets.
 *
 * Stateless: the search keeps the stack of choice points of the previous execution; the next
 * schedule replays that stack down to the deepest node with an untried alternative, takes it, and
 * continues with default choices (keep running the current thread) below. A preemption (switching
 * away from a thread that could have gone on) costs one unit of the bound; most concurrency bugs
 * need very few, and the number of schedules with at most c preemptions grows polynomially, not
 * exponentially, with their length (Musuvathi & Qadeer, iterative context bounding).
 *
 * Sleep sets (Godefroid) prune schedules that only reorder independent steps. After exploring
 * thread u at a node, u is put to sleep in the sibling subtrees and stays asleep until a step
 * dependent with u's pending step runs; a schedule that would run a sleeping thread is redundant
 * and abandoned. Dependence comes from the footprints steps declare: two steps are independent
 * iff both declare `access` and they touch different objects or both only read. A step with no
 * declared access is dependent with everything, which is always safe. Sleep sets are used only
 * when the search is not bounded: moving a step next to its equivalent can cost a preemption.
 * dpor.ts reduces bounded searches soundly.
 */
import type { Thread } from '../thread.ts';
import type { SchedPoint } from '../types.ts';
import { eventOf, HappensBefore } from './races.ts';
import { emptyStateStats, keyOf, StateCache, type StateStats } from './state_cache.ts';
import type { ChoiceContext, RunOutcome, Strategy } from './types.ts';

interface Node {
  /** Runnable thread ids at this choice point, in runnable order. */
  readonly tids: readonly number[];
  chosen: number;
  /** Alternatives (indices) explored or being explored. */
  readonly done: Set<number>;
  /** Thread ids asleep when the search reached this node. */
  readonly sleep: ReadonlySet<number>;
  readonly preemptionsBefore: number;
  readonly lastIndex: number;
}

/**
 * A choice point as data, to hand a subtree of the search to another thread: the path from the
 * root to a subtree is a list of these, each with the alternatives explored before it (`done`),
 * which the sleep sets below depend on.
 */
export interface DfsNodeData {
  tids: number[];
  chosen: number;
  done: number[];
  sleep: number[];
  preemptionsBefore: number;
  lastIndex: number;
}

function toData(n: Node): DfsNodeData {
  return {
    tids: [...n.tids],
    chosen: n.chosen,
    done: [...n.done],
    sleep: [...n.sleep],
    preemptionsBefore: n.preemptionsBefore,
    lastIndex: n.lastIndex,
  };
}

function fromData(d: DfsNodeData): Node {
  return {
    tids: [...d.tids],
    chosen: d.chosen,
    done: new Set(d.done),
    sleep: new Set(d.sleep),
    preemptionsBefore: d.preemptionsBefore,
    lastIndex: d.lastIndex,
  };
}

/** Whether two pending steps commute. */
export function independent(a: SchedPoint, b: SchedPoint): boolean {
  if (a.kind !== 'step' || b.kind !== 'step') return false;
  const x = a.access;
  const y = b.access;
  if (x === undefined || y === undefined) return false;
  return x.obj !== y.obj || (!x.write && !y.write);
}

export class NondeterministicTargetError extends Error {
  constructor(depth: number, expected: readonly number[], got: readonly number[]) {
    super(
      `target is not deterministic: at choice ${depth} threads [${expected.join(',')}] could run before, [${got.join(',')}] now`,
    );
    this.name = 'NondeterministicTargetError';
  }
}

/**
 * The node of a choice point a previous schedule reached (depth < stack length), checked against
 * the threads that can run now: a deterministic target offers the same ones.
 */
export function revisit<N extends { readonly tids: readonly number[] }>(
  stack: readonly N[],
  depth: number,
  tids: readonly number[],
): N {
  const node = stack[depth];
  if (node.tids.length !== tids.length || node.tids.some((id, i) => id !== tids[i])) {
    throw new NondeterministicTargetError(depth, node.tids, tids);
  }
  return node;
}

/**
 * The first choice at a new choice point: `forced` if given (a shard's prefix), else the thread
 * that ran last if it is awake (non-preemptive first, so the first schedules are the cheapest and
 * the deepest nodes hold the preemptions still to try), else the first awake thread the bound
 * allows; -1 when there is none.
 */
export function firstChoice(
  ctx: ChoiceContext,
  tids: readonly number[],
  asleep: ReadonlyMap<number, unknown>,
  allowed: (j: number) => boolean,
  forced = -1,
): number {
  let chosen = forced;
  if (chosen < 0 && ctx.lastIndex >= 0 && !asleep.has(tids[ctx.lastIndex])) chosen = ctx.lastIndex;
  for (let j = 0; chosen < 0 && j < tids.length; j++) {
    if (!asleep.has(tids[j]) && allowed(j)) chosen = j;
  }
  return chosen;
}

/** The sleep set of a choice point where no thread sleeps (never written: a node's is read-only). */
export const NONE_ASLEEP: ReadonlySet<number> = new Set<number>();

export class DfsStrategy implements Strategy {
  readonly name = 'dfs';
  private readonly stack: Node[] = [];
  /** Threads asleep at the current point of the current execution. */
  private sleep = new Map<number, Thread>();
  private started = false;
  private finished = false;
  /** Choice points above this depth are fixed: the search covers the subtree below `prefix`. */
  private readonly floor: number;
  /** States explored (state_cache.ts), or null without stateful search. */
  private readonly cache: StateCache | null;
  /** The trace so far, for the state hash (with the cache). */
  private hb: HappensBefore | null = null;
  private readonly stepsOf = new Map<number, number>();

  constructor(
    private readonly preemptionBound = 2,
    private readonly por = true,
    /**
     * Explore only the subtree under this path (the choices at depths 0..prefix.length-1), as the
     * whole search reaches it: the first schedule follows the path, then defaults.
     */
    prefix: readonly DfsNodeData[] = [],
    /** Prune schedules that reach a state explored before (only with `por`: it uses footprints). */
    stateCache = false,
    readonly states: StateStats = emptyStateStats(),
  ) {
    for (const d of prefix) this.stack.push(fromData(d));
    this.floor = prefix.length;
    this.cache = stateCache && por ? new StateCache(Number.isFinite(preemptionBound), states) : null;
  }

  begin(_index: number): boolean {
    this.sleep = new Map();
    if (this.cache !== null) this.hb = new HappensBefore(true);
    this.stepsOf.clear();
    if (!this.started) {
      this.started = true;
      return true;
    }
    if (this.finished) return false;
    while (this.stack.length > this.floor) {
      const node = this.stack[this.stack.length - 1];
      const j = this.nextAlternative(node);
      if (j >= 0) {
        node.chosen = j;
        node.done.add(j);
        return true;
      }
      this.stack.pop();
    }
    this.finished = true;
    return false;
  }

  private allowed(node: Pick<Node, 'lastIndex' | 'preemptionsBefore'>, j: number): boolean {
    const preempts = node.lastIndex >= 0 && j !== node.lastIndex;
    return !preempts || node.preemptionsBefore + 1 <= this.preemptionBound;
  }

  private nextAlternative(node: Node): number {
    for (let j = 0; j < node.tids.length; j++) {
      if (node.done.has(j) || node.sleep.has(node.tids[j])) continue;
      if (this.allowed(node, j)) return j;
    }
    return -1;
  }

  choose(ctx: ChoiceContext): number | null {
    const tids = ctx.runnable.map((t) => t.id);
    let node: Node;
    if (ctx.depth < this.stack.length) {
      node = revisit(this.stack, ctx.depth, tids);
    } else {
      const shape = { lastIndex: ctx.lastIndex, preemptionsBefore: ctx.preemptions };
      // Most nodes have no thread asleep (always, under a bound): they share one empty set.
      const asleep: ReadonlySet<number> = this.sleep.size === 0 ? NONE_ASLEEP : new Set(this.sleep.keys());
      if (
        this.cache !== null &&
        this.hb !== null &&
        ctx.depth >= this.floor &&
        this.cache.seen(
          keyOf(this.hb.traceHash()),
          ctx.preemptions,
          ctx.lastIndex >= 0 ? tids[ctx.lastIndex] : -1,
          asleep,
        )
      )
        return null;
      const chosen = firstChoice(ctx, tids, this.sleep, (j) => this.allowed(shape, j));
      if (chosen < 0) return null;
      node = { tids, chosen, done: new Set([chosen]), sleep: asleep, ...shape };
      this.stack.push(node);
    }
    // Sleep sets assume that a schedule equivalent to a pruned one was explored; under a
    // preemption bound that one may need more preemptions than the bound allows (two reads of
    // one object swapped can cost a switch), so a bounded search does not use them.
    if (this.por && !Number.isFinite(this.preemptionBound)) {
      // Siblings already explored sleep in this subtree; beforeStep wakes the dependent ones.
      for (const j of node.done) if (j !== node.chosen) this.sleep.set(tids[j], ctx.runnable[j]);
    }
    return node.chosen;
  }

  beforeStep(t: Thread): boolean {
    if (this.sleep.has(t.id)) return false;
    for (const [id, u] of this.sleep) if (!independent(u.pending, t.pending)) this.sleep.delete(id);
    if (this.hb !== null) {
      const seq = (this.stepsOf.get(t.id) ?? 0) + 1;
      this.stepsOf.set(t.id, seq);
      this.hb.add(eventOf(t.id, t.pending, -1, seq));
    }
    return true;
  }

  end(outcome: RunOutcome): void {
    // A violation can end a run above nodes a previous run created: they are not in this tree.
    if (this.stack.length > outcome.decisions.length) this.stack.length = outcome.decisions.length;
  }

  exhausted(): boolean {
    return this.finished;
  }

  /**
   * After the first schedule of this search (and before the next begin()): the subtrees that the
   * rest of the search explores, in the order it explores them, each as the path that leads to
   * it. The deepest choice point's alternatives come first, as backtracking takes them.
   */
  *subtrees(): Generator<DfsNodeData[]> {
    for (let d = this.stack.length - 1; d >= this.floor; d--) {
      const node = this.stack[d];
      const done = new Set(node.done);
      for (;;) {
        const j = this.nextAlternative({ ...node, done });
        if (j < 0) break;
        done.add(j);
        const path = this.stack.slice(0, d).map(toData);
        path.push({ ...toData(node), chosen: j, done: [...done] });
        yield path;
      }
    }
  }
}
