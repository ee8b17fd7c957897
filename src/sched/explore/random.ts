/**
 * Seeded random scheduling: at every choice point any runnable thread, uniformly. Schedule i draws
 * from a stream forked off the seed by i, so any schedule can be rerun alone and parallel workers
 * see exactly the schedules a single worker would.
 */
import { Prng } from '../../lib/prng.ts';
import type { ChoiceContext, Strategy } from './types.ts';

export class RandomStrategy implements Strategy {
  readonly name = 'random';
  private readonly root: Prng;
  private prng: Prng;

  constructor(
    seed: number,
    /** Once this many preemptions happened, keep running the current thread while it can. */
    private readonly preemptionBound = Infinity,
  ) {
    this.root = new Prng(seed);
    this.prng = this.root.fork('random:0');
  }

  begin(index: number): boolean {
    this.prng = this.root.fork(`random:${index}`);
    return true;
  }

  choose(ctx: ChoiceContext): number {
    if (ctx.lastIndex >= 0 && ctx.preemptions >= this.preemptionBound) return ctx.lastIndex;
    return this.prng.int(ctx.runnable.length);
  }

  exhausted(): boolean {
    return false;
  }
}
