/**
 * Scheduling steps per second of the interleaving explorer: a two-thread world (a writer that
 * updates data under a mutex inside a sequence count, a reader that retries on a changed or odd
 * seq) explored with the seeded random strategy. Every step the schedulers took counts.
 */
import { fileURLToPath } from 'node:url';
import { parseScenarioFile } from '../src/scenario/parse.ts';
import { preloadDriver } from '../src/scenario/runner.ts';
import { scenarioTarget } from '../src/scenario/explore_target.ts';
import { explore } from '../src/sched/explore/index.ts';
import type { ExploreTarget } from '../src/sched/explore/index.ts';
import { Mutex, point, Scheduler } from '../src/sched/index.ts';
import type { KGen } from '../src/sched/types.ts';
import { type BenchContext, type Figure, type Suite, medianNs, nowNs, round } from './figure.ts';

const ROUNDS = 8;

/** The world, and a running total of the steps of every scheduler it built. */
function mutexSeqTarget(): { target: ExploreTarget; steps: () => number } {
  let done = 0;
  let current: Scheduler | null = null;
  const target: ExploreTarget = {
    create() {
      if (current !== null) done += current.totalSteps;
      const sched = new Scheduler();
      current = sched;
      const m = new Mutex(sched, 'data_lock');
      const seq = { v: 0 };
      const data = { a: 0, b: 0 };
      let torn = false;
      sched.spawn(
        'writer',
        (function* (): KGen {
          for (let i = 1; i <= ROUNDS; i++) {
            yield* m.lock();
            yield point('write_seqcount_begin', seq);
            seq.v++;
            yield point('data.a = i', data);
            data.a = i;
            yield point('data.b = i', data);
            data.b = i;
            yield point('write_seqcount_end', seq);
            seq.v++;
            yield* m.unlock();
          }
        })(),
      );
      sched.spawn(
        'reader',
        (function* (): KGen {
          for (let i = 0; i < ROUNDS; i++) {
            for (;;) {
              yield point('read_seqcount_begin', seq, false);
              const s = seq.v;
              yield point('read data.a', data, false);
              const a = data.a;
              yield point('read data.b', data, false);
              const b = data.b;
              yield point('read_seqcount_retry', seq, false);
              if (s % 2 === 0 && seq.v === s) {
                if (a !== b) torn = true;
                break;
              }
            }
          }
        })(),
      );
      return {
        sched,
        checkFinal: () => (torn ? { oracle: 'seqcount', message: 'reader accepted a torn read' } : null),
      };
    },
  };
  return { target, steps: () => done + (current?.totalSteps ?? 0) };
}

export const explorerSuite: Suite = {
  name: 'explore',
  run(ctx: BenchContext): Promise<Figure[]> {
    const schedules = ctx.smoke ? 300 : 50_000;
    ctx.progress('explore.steps_per_second');
    // Warm-up, then the measured exploration on a fresh world counter.
    explore(mutexSeqTarget().target, { strategy: 'random', seed: 7, budget: { schedules: 200 } });
    const w = mutexSeqTarget();
    const t0 = nowNs();
    const r = explore(w.target, { strategy: 'random', seed: 1, budget: { schedules } });
    const seconds = (nowNs() - t0) / 1e9;
    if (r.violation !== null) throw new Error(`the benchmark world is broken: ${r.violation.message}`);
    const perSecond = w.steps() / seconds;
    const figures: Figure[] = [
      {
        name: 'explore.steps_per_second',
        value: round(perSecond),
        unit: 'steps/s',
        goal: '>= 500k steps/s',
        pass: perSecond >= 500_000,
      },
    ];
    return findLegacyRace(ctx)
      .then((more) => [...figures, ...more])
      .then(async (more) => [...more, ...(await proveClean(ctx))]);
  },
};

const LEGACY_RACE = fileURLToPath(new URL('../examples/races/legacy-mirror.yaml', import.meta.url));

/**
 * Race corpus case 1 (the v5.4 hmm_mirror valid-flag race): how many schedules and how long each
 * strategy needs to find it from a fixed seed. A strategy that does not find it within its budget
 * reports the budget it used and fails its goal.
 */
async function findLegacyRace(ctx: BenchContext): Promise<Figure[]> {
  await preloadDriver(parseScenarioFile(LEGACY_RACE));
  const budget = ctx.smoke ? 200 : 2000;
  const out: Figure[] = [];
  for (const strategy of ['random', 'pct'] as const) {
    ctx.progress(`explore.legacy_mirror.${strategy}`);
    const t0 = nowNs();
    const r = explore(scenarioTarget({ file: LEGACY_RACE }), {
      strategy,
      seed: 1,
      budget: { schedules: budget },
    });
    const ms = (nowNs() - t0) / 1e6;
    const found = r.violation !== null;
    const note = found ? '' : ` (not found within ${budget} schedules)`;
    out.push(
      {
        name: `explore.legacy_mirror.${strategy}.schedules`,
        value: r.schedules,
        unit: 'schedules',
        goal: `finds the race${note}`,
        pass: found,
      },
      {
        name: `explore.legacy_mirror.${strategy}.time`,
        value: round(ms),
        unit: 'ms',
        goal: `finds the race within 1000 ms${note}`,
        pass: found && ms <= 1000,
      },
    );
  }
  return out;
}

const RACES = new URL('../examples/races/', import.meta.url);
/** The corpus cases that must be clean (test/races/clean.test.ts): the fixed twins of the races. */
const FIXED = [
  'interval-mirror',
  'deferred-insert',
  'read-munmap',
  'iommufd-map-attach',
  'iommufd-unmap-access',
];

/**
 * Proving the fixed drivers clean: time for the depth-first search (DPOR) to exhaust
 * interval-mirror unbounded and at preemption bound 4, each fixed twin at bound 2, and the rate
 * of schedules at bound 2. A search cut by its time budget reports the budget and fails its goal.
 * Each time counts what `elapsed_ms` of `hetmem explore` counts: the search, from the first
 * schedule (which builds the system and runs setup) to the coverage report; the scenario file is
 * read and parsed before, as the CLI does.
 */
async function proveClean(ctx: BenchContext): Promise<Figure[]> {
  const out: Figure[] = [];
  const exhaust = async (name: string, bound: number, goalMs: number, figure: string): Promise<void> => {
    const file = fileURLToPath(new URL(`${name}.yaml`, RACES));
    await preloadDriver(parseScenarioFile(file));
    ctx.progress(figure);
    const target = scenarioTarget({ file });
    const t0 = nowNs();
    const r = explore(target, {
      strategy: 'dfs',
      preemptionBound: bound,
      budget: { ms: ctx.smoke ? goalMs : Math.max(10 * goalMs, 30_000) },
    });
    const ms = (nowNs() - t0) / 1e6;
    if (r.violation !== null) throw new Error(`${name} is no longer clean: ${r.violation.message}`);
    const note = r.exhausted ? '' : ` (not exhausted: ${r.schedules} schedules in ${round(ms)} ms)`;
    out.push({
      name: figure,
      value: round(ms),
      unit: 'ms',
      goal: `exhausts within ${goalMs} ms${note}`,
      pass: r.exhausted && ms <= goalMs,
    });
  };
  if (!ctx.smoke) await exhaust('interval-mirror', Infinity, 1000, 'explore.interval_mirror.unbounded.time');
  await exhaust('interval-mirror', 4, 200, 'explore.interval_mirror.bound4.time');
  for (const name of FIXED) await exhaust(name, 2, 2000, `explore.fixed.${name}.bound2.time`);
  await exhaust('interval-mirror', 2, 2000, 'explore.interval_mirror.bound2.time');
  for (const por of [true, false]) out.push(scheduleRate(ctx, por));
  return out;
}

/**
 * Schedules per second of the depth-first search of interval-mirror at preemption bound 2, with
 * DPOR (131 schedules) or without any reduction (`--no-por`, 367): the search repeated, each time
 * on a target built again from the file, after warm-up searches, and the median taken. A rate, like
 * explore.steps_per_second: one search lasts some milliseconds, most of them the JIT's when it is
 * the first (explore.interval_mirror.bound2.time is that search).
 */
function scheduleRate(ctx: BenchContext, por: boolean): Figure {
  const name = `explore.interval_mirror.bound2${por ? '' : '_no_por'}.schedules_per_second`;
  ctx.progress(name);
  const file = fileURLToPath(new URL('interval-mirror.yaml', RACES));
  let schedules = 0;
  const ns = medianNs(
    ctx.smoke ? 3 : 15,
    () => scenarioTarget({ file }),
    (target) => {
      const r = explore(target, { strategy: 'dfs', preemptionBound: 2, por });
      if (r.violation !== null || !r.exhausted)
        throw new Error('interval-mirror is no longer clean at bound 2');
      schedules = r.schedules;
    },
    undefined,
    ctx.smoke ? 2 : 20,
  );
  const rate = schedules / (ns / 1e9);
  return {
    name,
    value: round(rate),
    unit: 'schedules/s',
    goal: '>= 20000 schedules/s',
    pass: rate >= 20_000,
  };
}
