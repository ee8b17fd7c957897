/**
 * Depth-first search with dynamic partial-order reduction: source-set DPOR with sleep sets
 * (Abdulla, Aronis, Jonsson, Sagonas, "Optimal dynamic partial order reduction", POPL 2014,
 * Algorithm 1), over the footprints steps declare.
 *
 * Where the sleep-set search (dfs.ts) tries every runnable thread at every choice point and only
 * abandons the schedules that reorder independent steps, this search tries a thread at a choice
 * point only when some execution showed that it must: after each schedule, every race (i, j) of
 * it (races.ts) asks for a schedule that reverses the pair, and the choice point before step i
 * gets one thread that can start such a schedule (an initial of v = the steps after i that do not
 * depend on it, then j) unless it already has one. Sleep sets prune what is left of the
 * redundancy. Every schedule it skips is equivalent (the same steps, dependent steps in the same
 * order) to one it runs, so it finds every violation an exhaustive search finds, as long as steps
 * declare their footprints honestly (docs/fidelity.md).
 *
 * Threads that wait are not always runnable where a race asks for them: when no initial of v can
 * run at that choice point, every runnable thread is tried there (Flanagan and Godefroid's
 * fallback). With a preemption bound, a thread the bound forbids at that point is also tried at
 * the start of the running thread's block (the latest choice point before it where the search
 * switched threads), where it replaces a switch instead of adding one (Coons, Musuvathi and
 * McKinley, "Bounded partial-order reduction", OOPSLA 2013). Sleep sets are not sound under a
 * bound, so a bounded search first runs unbounded, sleep sets on, until a choice would exceed
 * the bound (docs/explorer.md).
 */
import type { Thread } from '../thread.ts';
import { firstChoice, independent, NONE_ASLEEP, NondeterministicTargetError } from './dfs.ts';
import { eventOf, HappensBefore } from './races.ts';
import { emptyStateStats, StateCache, type StateStats } from './state_cache.ts';
import type { ChoiceContext, RunOutcome, Strategy } from './types.ts';

interface Node {
  /** Runnable thread ids at this choice point, in runnable order. */
  readonly tids: readonly number[];
  chosen: number;
  /** Thread ids to try here: races ask for them. */
  readonly backtrack: Set<number>;
  /** Thread ids tried (or being tried) here. */
  readonly done: Set<number>;
  /** Thread ids asleep when the search reached this node. */
  readonly sleep: ReadonlySet<number>;
  readonly preemptionsBefore: number;
  readonly lastIndex: number;
  /** Steps the schedule had run when it reached this choice point. */
  readonly stepsBefore: number;
}

export class DporStrategy implements Strategy {
  readonly name = 'dfs';
  private readonly stack: Node[] = [];
  private sleep = new Map<number, Thread>();
  private started = false;
  private finished = false;
  private hb: HappensBefore;
  /** States explored (state_cache.ts), or null without stateful search. */
  private cache: StateCache | null;
  /** Choice depth of the step about to run, or -1 if it was the only runnable thread. */
  private pendingNode = -1;
  /**
   * The first steps of this schedule replay those of this search's previous one (the choices
   * above the point it backtracked to are the same): their events, and the races they showed,
   * are still in `hb`. `step` counts the steps of this schedule.
   */
  private replayed = 0;
  private step = 0;
  /** Races seen, for statistics. */
  races = 0;
  /** What stepRaces() answers: the races of the step beforeStep() last passed. */
  private lastRaces: readonly number[] | null = null;

  /** Sleep sets are sound only for a search that is not bounded (see the module comment). */
  private useSleep: boolean;
  /**
   * A bounded search first runs as the unbounded one, with sleep sets, for as long as no schedule
   * needs more preemptions than the bound: while that holds the bound cuts nothing, the two
   * searches are the same, and an exhausted one covers every schedule within the bound. The
   * first choice that would exceed the bound ends that attempt (`tripped`), and the search
   * starts over bounded, without sleep sets.
   */
  private optimistic: boolean;
  private tripped = false;

  /** Choice points above this depth are fixed: the search covers the subtree below `prefix`. */
  private readonly floor: number;

  constructor(
    private readonly preemptionBound = Infinity,
    /** Explore only the subtree under these choices (a shard's prefix). */
    private readonly prefix: readonly { chosen: number }[] = [],
    /** Prune schedules that reach a state explored before (state_cache.ts). */
    stateCache = false,
    /** Where to count states hashed and pruned (shared by the parts of a split search). */
    readonly states: StateStats = emptyStateStats(),
    /** Under a bound, first try the unbounded search (see `optimistic`); bounded.ts does it itself. */
    tryUnbounded = true,
  ) {
    // Bound 0 cuts at the first preemption: nothing to gain from trying unbounded first.
    this.optimistic = tryUnbounded && Number.isFinite(preemptionBound) && preemptionBound > 0;
    this.useSleep = !Number.isFinite(preemptionBound) || this.optimistic;
    this.floor = prefix.length;
    this.cache = stateCache && this.useSleep ? new StateCache(false, states) : null;
    this.hb = new HappensBefore(this.cache !== null);
  }

  begin(_index: number): boolean {
    this.sleep = new Map();
    this.replayed = 0;
    this.step = 0;
    this.pendingNode = -1;
    if (this.tripped) {
      // The bound cuts this search: start over as the bounded search.
      this.tripped = false;
      this.optimistic = false;
      this.useSleep = false;
      this.stack.length = 0;
      this.started = false;
      this.cache = null;
    }
    if (!this.started) {
      this.started = true;
      this.hb = new HappensBefore(this.cache !== null);
      return true;
    }
    if (this.finished) return false;
    while (this.stack.length > this.floor) {
      const node = this.stack[this.stack.length - 1];
      const j = this.nextAlternative(node);
      if (j >= 0) {
        node.chosen = j;
        node.done.add(node.tids[j]);
        this.replayed = node.stepsBefore;
        this.hb.truncate(this.replayed);
        return true;
      }
      this.stack.pop();
    }
    this.finished = true;
    return false;
  }

  private allowed(node: Pick<Node, 'lastIndex' | 'preemptionsBefore'>, j: number): boolean {
    if (this.optimistic) return true;
    return this.withinBound(node, j);
  }

  private withinBound(node: Pick<Node, 'lastIndex' | 'preemptionsBefore'>, j: number): boolean {
    const preempts = node.lastIndex >= 0 && j !== node.lastIndex;
    return !preempts || node.preemptionsBefore + 1 <= this.preemptionBound;
  }

  private nextAlternative(node: Node): number {
    for (let j = 0; j < node.tids.length; j++) {
      const tid = node.tids[j];
      if (!node.backtrack.has(tid) || node.done.has(tid) || node.sleep.has(tid)) continue;
      if (this.allowed(node, j)) return j;
    }
    return -1;
  }

  choose(ctx: ChoiceContext): number | null {
    const runnable = ctx.runnable;
    let node: Node;
    if (ctx.depth < this.stack.length) {
      // A choice point of the previous schedule (most of a schedule replays one): the same
      // threads can run, compared without a list of their ids made for it.
      node = this.stack[ctx.depth];
      const known = node.tids;
      let same = known.length === runnable.length;
      for (let i = 0; same && i < known.length; i++) same = known[i] === runnable[i].id;
      if (!same)
        throw new NondeterministicTargetError(
          ctx.depth,
          known,
          runnable.map((t) => t.id),
        );
    } else {
      const tids: number[] = [];
      for (let i = 0; i < runnable.length; i++) tids.push(runnable[i].id);
      const shape = { lastIndex: ctx.lastIndex, preemptionsBefore: ctx.preemptions };
      const forced = ctx.depth < this.floor ? this.prefix[ctx.depth].chosen : -1;
      if (forced >= tids.length) throw new NondeterministicTargetError(ctx.depth, [], tids);
      // The threads asleep here: what the state cache compares (it keeps a copy) and the node keeps
      // (neither changes it, so an empty one is shared).
      const asleep: ReadonlySet<number> = this.sleep.size === 0 ? NONE_ASLEEP : new Set(this.sleep.keys());
      if (
        this.cache !== null &&
        ctx.depth >= this.floor &&
        this.cache.seen(
          this.hb.traceKey(),
          ctx.preemptions,
          ctx.lastIndex >= 0 ? tids[ctx.lastIndex] : -1,
          asleep,
        )
      )
        return null;
      const chosen = firstChoice(ctx, tids, this.sleep, (j) => this.allowed(shape, j), forced);
      if (chosen < 0) return null;
      node = {
        tids,
        chosen,
        backtrack: new Set<number>().add(tids[chosen]),
        done: new Set<number>().add(tids[chosen]),
        sleep: asleep,
        // Named one by one: a spread in an object literal is a call into the runtime until the
        // function is optimised, and a search makes a node at every new choice point.
        lastIndex: shape.lastIndex,
        preemptionsBefore: shape.preemptionsBefore,
        stepsBefore: ctx.steps,
      };
      this.stack.push(node);
    }
    // Threads tried here before sleep in this subtree until a step dependent with theirs runs
    // (`done` holds the chosen thread, and the others only once one was tried).
    if (this.useSleep && node.done.size > 1)
      for (const tid of node.done) {
        const j = node.tids.indexOf(tid);
        if (j !== node.chosen) this.sleep.set(tid, runnable[j]);
      }
    if (this.optimistic && !this.withinBound(node, node.chosen)) {
      this.tripped = true;
      return null;
    }
    this.pendingNode = ctx.depth;
    return node.chosen;
  }

  beforeStep(t: Thread): boolean {
    const node = this.pendingNode;
    this.pendingNode = -1;
    this.lastRaces = null;
    if (this.sleep.size > 0) {
      if (this.sleep.has(t.id)) return false;
      // forEach, not for-of: until this is optimised, a for-of over a map makes an iterator and
      // an entry array per thread asleep, at every step. (Deleting the entry visited is allowed.)
      const sleep = this.sleep;
      sleep.forEach((u, id) => {
        if (!independent(u.pending, t.pending)) sleep.delete(id);
      });
    }
    const hb = this.hb;
    const k = this.step++;
    if (k < this.replayed) {
      // The same step as in the previous schedule: its races asked for their reversals then.
      if (!hb.replayed(k, t.id, t.pending)) throw new Error(`target is not deterministic: step ${k} differs`);
      return true;
    }
    const seq = hb.stepsOf(t.id) + 1;
    const races = hb.add(eventOf(t.id, t.pending, node, seq));
    for (let r = 0; r < races.length; r++) this.reverse(races[r], hb.events.length - 1);
    this.lastRaces = races;
    return true;
  }

  stepRaces(): readonly number[] | null {
    return this.lastRaces;
  }

  /** Asks for a schedule in which step j of the current execution runs before step i. */
  private reverse(i: number, j: number): void {
    this.races++;
    const d = this.hb.events[i].node;
    // Only the thread of step i could run there (j's thread cannot go first at that point), or
    // the choice is a shard's prefix (other shards take the other choices).
    if (d < this.floor || d >= this.stack.length) return;
    const node = this.stack[d];
    const initials = this.hb.initials(i, j);
    if (initials.some((tid) => this.covered(node, tid))) return;
    const q = this.hb.events[j].tid;
    const runnable = initials.filter((tid) => node.tids.includes(tid));
    const pick = runnable.includes(q) ? [q] : runnable.length > 0 ? [runnable[0]] : [...node.tids];
    for (const tid of pick) this.want(d, tid);
  }

  /** Whether trying `tid` at `node` is already planned (and within the bound), or was done before. */
  private covered(node: Node, tid: number): boolean {
    if (node.sleep.has(tid)) return true;
    if (!node.backtrack.has(tid)) return false;
    return this.allowed(node, node.tids.indexOf(tid));
  }

  private want(d: number, tid: number): void {
    const node = this.stack[d];
    node.backtrack.add(tid);
    if (this.allowed(node, node.tids.indexOf(tid))) return;
    // Over the bound here. A schedule that needs this reversal within the bound switches threads
    // earlier instead: try every thread at every choice point before where the search switched.
    for (let b = d - 1; b >= this.floor; b--) {
      const n = this.stack[b];
      if (n.chosen !== n.lastIndex) for (const x of n.tids) n.backtrack.add(x);
    }
  }

  end(outcome: RunOutcome): void {
    if (this.stack.length > outcome.decisions.length) this.stack.length = outcome.decisions.length;
  }

  exhausted(): boolean {
    return this.finished && !this.tripped;
  }
}
