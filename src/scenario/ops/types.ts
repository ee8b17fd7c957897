import type { KGen } from '../../sched/types.ts';
import type { OpResult, ScenarioContext } from '../context.ts';
import type { StepT } from '../schema.ts';

/** Runs one step as a kernel path: interleavable when it runs inside an explorer thread. */
export type OpHandler = (ctx: ScenarioContext, step: StepT) => KGen<OpResult>;

/** Step fields by name (the schema checked their types). */
export function f(step: StepT, name: string): unknown {
  return (step as Record<string, unknown>)[name];
}

/** A flag list (names) or a raw number, turned into the number. */
export function flagBits(v: unknown, table: Record<string, number>, what: string): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  let bits = 0;
  for (const name of v as string[]) {
    const b = table[name];
    if (b === undefined) throw new Error(`unknown ${what} flag ${name}`);
    bits |= b;
  }
  return bits;
}
