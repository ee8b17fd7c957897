/**
 * A preemption-bounded DPOR search that races the unbounded one.
 *
 * An exhausted unbounded search covers every schedule within any bound, and with sleep sets and
 * the state cache it is often far smaller than the bounded search, which cannot use either
 * (docs/explorer.md): on interval-mirror, 224 schedules against 1,317 at bound 4 and 5,259 at
 * bound 6. Which one is smaller is known only once one of them ends. So this search runs the
 * unbounded one alone while none of its schedules needs more preemptions than the bound (the
 * two are then the same search); from the first that does, it also runs the bounded one, a
 * schedule at a time, and stops when either is exhausted. The unbounded search first takes
 * UNBOUNDED_HEAD_START steps alone, then UNBOUNDED_SHARE steps for each step of the bounded one
 * (the next schedule goes to the one behind its share): when it ends first, the whole costs what
 * it costs alone plus a quarter of what it took beyond the head start; when the bounded one ends
 * first, at most the head start plus five times what it costs alone. Steps, not time, decide
 * the turns, so the search is deterministic.
 *
 * A violation the unbounded search meets in a schedule within the bound is reported (the bounded
 * search covers that schedule too); one beyond the bound is not what was asked for: the unbounded
 * search is dropped and the bounded one goes on alone.
 */
import type { Thread } from '../thread.ts';
import { DporStrategy } from './dpor.ts';
import { emptyStateStats, type StateStats } from './state_cache.ts';
import type { ChoiceContext, RunOutcome, Strategy } from './types.ts';

/**
 * Steps the unbounded search takes for each step of the bounded one once both run. On the clean
 * scenarios of the race corpus at bound 4 the unbounded search was the one to end first, and
 * giving it four turns for one took interval-mirror from 445 schedules to 279, deferred-insert
 * from 708 to 443, dma-under-lock from 241 to 150 and access-unmap-overlap from 186 to 114.
 */
export const UNBOUNDED_SHARE = 4;

/**
 * Steps the unbounded search takes alone before the share starts: an unbounded search that small
 * ends before the bounded one runs at all. On the clean scenarios of the race corpus at bounds 3,
 * 4 and 6 it made no search longer and took interval-mirror at bound 4 from 279 schedules to 224
 * (what the unbounded search costs alone), deferred-insert from 442 to 352 and fault-buffer-recheck
 * from 2,784 to 2,631. Where the bounded search is the smaller one, it costs at most this many
 * steps more (a few tenths of a second of a scenario's kernel paths).
 */
export const UNBOUNDED_HEAD_START = 20_000;

export class BoundedDporSearch implements Strategy {
  readonly name = 'dfs';
  private readonly unbounded: DporStrategy;
  private bounded: DporStrategy | null = null;
  /** The unbounded search was dropped (it met a violation beyond the bound). */
  private dropped = false;
  /** Steps each search has taken. */
  private unboundedSteps = 0;
  private boundedSteps = 0;
  /** The search running the current schedule. */
  private current: DporStrategy;
  private done = false;

  constructor(
    private readonly preemptionBound: number,
    private readonly stateCache: boolean,
    readonly states: StateStats = emptyStateStats(),
    /** Steps the unbounded search takes for each step of the bounded one (see the module comment). */
    private readonly share = UNBOUNDED_SHARE,
    /** Steps the unbounded search takes before the share starts (see the module comment). */
    private readonly headStart = UNBOUNDED_HEAD_START,
  ) {
    this.unbounded = new DporStrategy(Infinity, [], stateCache, states);
    this.current = this.unbounded;
  }

  begin(index: number): boolean {
    if (this.done) return false;
    const b = this.bounded;
    this.current =
      b === null || (!this.dropped && this.unboundedSteps - this.headStart < this.share * this.boundedSteps)
        ? this.unbounded
        : b;
    if (this.current.begin(index)) return true;
    // Either search ending covers every schedule within the bound.
    this.done = true;
    return false;
  }

  choose(ctx: ChoiceContext): number | null {
    const j = this.current.choose(ctx);
    if (j !== null && this.current === this.unbounded && this.bounded === null) {
      const preempts = ctx.lastIndex >= 0 && j !== ctx.lastIndex;
      // The searches part here: from now on the bounded one runs too.
      if (ctx.preemptions + (preempts ? 1 : 0) > this.preemptionBound)
        this.bounded = new DporStrategy(this.preemptionBound, [], false, this.states, false);
    }
    return j;
  }

  beforeStep(t: Thread): boolean {
    return this.current.beforeStep(t);
  }

  stepRaces(): readonly number[] | null {
    return this.current.stepRaces();
  }

  end(outcome: RunOutcome): void {
    this.current.end(outcome);
    if (this.current === this.unbounded) {
      this.unboundedSteps += outcome.steps;
      if (outcome.violation !== null && outcome.preemptions > this.preemptionBound) {
        this.dropped = true;
        this.bounded ??= new DporStrategy(this.preemptionBound, [], false, this.states, false);
      }
    } else this.boundedSteps += outcome.steps;
  }

  lane(): number {
    return this.current === this.unbounded ? 0 : 1;
  }

  /** Whether a violation in `outcome` answers the search (one beyond the bound does not). */
  accepts(outcome: RunOutcome): boolean {
    return outcome.preemptions <= this.preemptionBound;
  }

  exhausted(): boolean {
    return this.done;
  }
}
