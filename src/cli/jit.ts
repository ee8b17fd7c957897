/**
 * When V8 optimises the command's code: later than its default for the first moments of a run.
 *
 * V8 sends a function to its optimising compiler once the function has run a budget of bytecode
 * (`--interrupt-budget`). In a short command (an `explore` that exhausts in a few hundred
 * milliseconds, `run` of a scenario) that comes early: the scenario's parser, the schema checks,
 * the module loader and the kernel paths of the first schedules are sent while their type
 * feedback is still young, and on a machine of two CPUs the compiler's thread competes with the
 * search for the run. A budget four times V8's until the process has run for WARM_UP_MS sends
 * fewer of them; after it the default applies again, so a long run (a large search, a simulation)
 * is optimised as before. BENCHMARKS.md (the seventeenth pass) has what it changes. Only results'
 * timing depends on it, never a result.
 *
 * The default is known for the V8 of Node 20 only (what `node --v8-options` prints there); on
 * another V8, or when the user set the budget (in the command line or NODE_OPTIONS), nothing is
 * changed.
 */
import { setFlagsFromString } from 'node:v8';

/** V8's default `--interrupt-budget`, by V8 major.minor. */
const DEFAULT_BUDGET: Readonly<Record<string, number>> = { '11.3': 67_584 };

/** The budget while warming up, as a multiple of the default. */
const WARM_UP_FACTOR = 4;

/** Process time (performance.now(), from the process's start) after which the default is back. */
export const WARM_UP_MS = 600;

/**
 * The budgets to run with while warming up and after, for a process of this V8 started with these
 * arguments and NODE_OPTIONS; null to leave V8's alone.
 */
export function warmUpPlan(
  v8Version: string,
  execArgv: readonly string[],
  nodeOptions: string,
): { warm: number; after: number } | null {
  const [major, minor] = v8Version.split('.');
  const budget = DEFAULT_BUDGET[`${major}.${minor}`];
  if (budget === undefined) return null;
  const sets = (args: string): boolean => /--interrupt[-_]budget\b/.test(args);
  if (execArgv.some(sets) || sets(nodeOptions)) return null;
  return { warm: WARM_UP_FACTOR * budget, after: budget };
}

/** The budget to put back once warmed up; null when nothing is to be put back. */
let restore: number | null = null;
let timer: ReturnType<typeof setTimeout> | null = null;

/** Raises the budget until WARM_UP_MS (called once, before the commands load). */
export function deferOptimisation(): void {
  const plan = warmUpPlan(process.versions.v8, process.execArgv, process.env['NODE_OPTIONS'] ?? '');
  if (plan === null || restore !== null || performance.now() >= WARM_UP_MS) return;
  setFlagsFromString(`--interrupt-budget=${plan.warm}`);
  restore = plan.after;
  // For a command that waits (its work in promises); one that computes for long calls
  // warmedUp() from its progress reports, where no timer can run.
  timer = setTimeout(warmedUp, WARM_UP_MS - performance.now());
  timer.unref();
}

/** Puts V8's default budget back once the process has run for WARM_UP_MS. Cheap: call it often. */
export function warmedUp(): void {
  if (restore === null || performance.now() < WARM_UP_MS) return;
  setFlagsFromString(`--interrupt-budget=${restore}`);
  restore = null;
  if (timer !== null) clearTimeout(timer);
  timer = null;
}
