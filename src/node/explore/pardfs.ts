/**
 * Depth-first search over worker threads, with the result of the sequential search.
 *
 * The sequential DFS (dfs.ts) runs the leftmost schedule first (default choices everywhere), then
 * backtracks from its deepest choice point. So its schedules after the first fall, in order, into
 * the subtrees hanging off that leftmost path: the alternatives of the deepest choice point first,
 * each in index order, up to those of the root. Each subtree is named by the path that leads to it
 * (DfsNodeData[]: the choice at every depth and the alternatives explored before it, which is all
 * the sleep sets below depend on), and a DfsStrategy given that path explores exactly the part of
 * the sequential search below it, sleep sets included.
 *
 * The master splits the tree this way to SPLIT_LEVELS levels: it runs the first schedule of the
 * root itself, and of each subtree whose path leaves the leftmost path fewer than SPLIT_LEVELS
 * times, and hands the deeper subtrees to the workers in batches. Every schedule the master ran
 * and every subtree is an item, numbered in DFS order. A violation is ordered by (item, position
 * within the item): the first one is the one the sequential search meets first. Subtree sizes are
 * known only once run, so a subtree is capped at the global budget minus a lower bound of its
 * start (one schedule per item before it whose size is not known yet), and the master walks the
 * items in order, adding their exact sizes, to place the budget's end. When it falls inside a
 * subtree that ran past it, that subtree is rerun up to the cut for the last schedule's token.
 * Hence violation, schedules, exhausted and replay token equal the sequential search's for any
 * number of workers. With a time budget the walk stops at the first item the deadline cut short:
 * the result is then that of the sequential search with some schedule budget.
 */
import { DfsStrategy, type DfsNodeData } from '../../sched/explore/dfs.ts';
import type { ResolvedOptions } from '../../sched/explore/options.ts';
import type { ParallelDfsConfig, ParallelDfsResult } from '../../sched/explore/parallel.ts';
import { overridesOf, runSchedule } from '../../sched/explore/run.ts';
import { searchLoop } from '../../sched/explore/search.ts';
import type { ExploreTarget, TargetDescriptor } from '../../sched/explore/types.ts';
import { WorkerPool, type DfsUnitResult, type DfsUnitTask } from './workers.ts';

/** How many times a subtree's path may leave the leftmost path before a worker takes it. */
export const DEFAULT_SPLIT_LEVELS = 2;
/** Subtrees per message. */
const BATCH = 4;
/** Messages in flight per worker, so none idles while the master is busy or between waits. */
const IN_FLIGHT = 2;

/** A schedule the master ran, or a subtree for a worker; `ran` etc. are set once known. */
interface Item {
  prefix: DfsNodeData[] | null;
  done: boolean;
  ran: number;
  exhausted: boolean;
  violation: { pos: number; overrides: Map<number, number> } | null;
  last: Map<number, number> | null;
}

/** A subtree still to be split or handed out, and how often its path left the leftmost path. */
interface Pending {
  prefix: DfsNodeData[];
  level: number;
}

/** Subtrees in DFS order; the stack holds the not yet enumerated children of each split subtree. */
class Frontier {
  private readonly stack: Iterator<DfsNodeData[]>[] = [];
  private readonly levels: number[] = [];
  private peeked: Pending | null;

  constructor() {
    this.peeked = { prefix: [], level: 0 };
  }

  peek(): Pending | null {
    while (this.peeked === null && this.stack.length > 0) {
      const n = this.stack[this.stack.length - 1].next();
      if (n.done === true) {
        this.stack.pop();
        this.levels.pop();
      } else {
        this.peeked = { prefix: n.value, level: this.levels[this.levels.length - 1] };
      }
    }
    return this.peeked;
  }

  take(): Pending {
    const p = this.peek();
    if (p === null) throw new Error('internal: frontier is empty');
    this.peeked = null;
    return p;
  }

  /** The children of the subtree just taken; they come before anything still in the frontier. */
  push(children: Iterator<DfsNodeData[]>, level: number): void {
    if (this.peeked !== null) throw new Error('internal: push after peek');
    this.stack.push(children);
    this.levels.push(level);
  }
}

export function parallelDfs(
  local: ExploreTarget,
  descriptor: TargetDescriptor,
  o: ResolvedOptions,
  cfg: ParallelDfsConfig,
): ParallelDfsResult {
  const budget = o.schedules;
  const splitLevels = cfg.splitLevels ?? DEFAULT_SPLIT_LEVELS;
  const frontier = new Frontier();
  const items: Item[] = [];
  /** Sum over items of their size when known, else 1: a lower bound of where the next one starts. */
  let lowerBound = 0;
  let violationSeen = false;
  let ran = 0;

  // The walk: items before `cursor` are known and hold no violation; they count `start` schedules.
  let cursor = 0;
  let start = 0;
  let last = new Map<number, number>();

  const onResult = (r: DfsUnitResult): void => {
    const it = items[r.item];
    it.done = true;
    it.ran = r.ran;
    it.exhausted = r.exhausted;
    it.violation =
      r.violation === null ? null : { pos: r.violation.pos, overrides: new Map(r.violation.overrides) };
    it.last = r.last === null ? null : new Map(r.last);
    lowerBound += r.ran - 1;
    if (r.violation !== null) violationSeen = true;
    ran += r.ran;
    cfg.onProgress?.(ran);
  };

  const canGenerate = (): boolean =>
    !violationSeen && lowerBound < budget && performance.now() < cfg.deadline && frontier.peek() !== null;

  /** The next subtree for a worker, running (and recording) the master's schedules before it. */
  const nextUnit = (): DfsUnitTask | null => {
    while (canGenerate()) {
      const p = frontier.take();
      if (p.level >= splitLevels) {
        const task: DfsUnitTask = { item: items.length, prefix: p.prefix, cap: budget - lowerBound };
        items.push({ prefix: p.prefix, done: false, ran: 0, exhausted: false, violation: null, last: null });
        lowerBound++;
        return task;
      }
      // Split: the subtree's first schedule here, then its own subtrees.
      const dfs = new DfsStrategy(o.preemptionBound, o.por, p.prefix);
      dfs.begin(0);
      const outcome = runSchedule(local, dfs, { maxSteps: o.maxSteps, recordTrace: false, brief: true });
      dfs.end(outcome);
      const overrides = overridesOf(outcome.decisions);
      items.push({
        prefix: null,
        done: true,
        ran: 1,
        exhausted: true,
        violation: outcome.violation === null ? null : { pos: 0, overrides },
        last: overrides,
      });
      lowerBound++;
      ran++;
      cfg.onProgress?.(ran);
      if (outcome.violation !== null) {
        violationSeen = true;
        return null;
      }
      frontier.push(dfs.subtrees(), p.level + 1);
    }
    return null;
  };

  /** The first `count` schedules of a subtree again, for the token of the last one. */
  const lastOf = (it: Item, count: number): Map<number, number> => {
    if (it.prefix === null) return it.last ?? last;
    const r = searchLoop(local, new DfsStrategy(o.preemptionBound, o.por, it.prefix), {
      maxSteps: o.maxSteps,
      startIndex: 0,
      endIndex: count,
      deadline: Infinity,
    });
    return r.last === null ? last : overridesOf(r.last.decisions);
  };

  /** Adds up known items in order; returns the result once they decide it. */
  const walk = (): Omit<ParallelDfsResult, 'stats'> | null => {
    for (;;) {
      if (start >= budget) {
        const more = cursor < items.length || frontier.peek() !== null;
        return { found: null, schedules: start, exhausted: !more, lastOverrides: last };
      }
      if (cursor >= items.length) return null;
      const it = items[cursor];
      if (!it.done) return null;
      const limit = budget - start;
      if (it.violation !== null && it.violation.pos < limit) {
        return {
          found: it.violation.overrides,
          schedules: start + it.violation.pos + 1,
          exhausted: false,
          lastOverrides: it.violation.overrides,
        };
      }
      if (it.ran > limit) {
        // The budget ends inside this subtree, which ran further (its cap was loose).
        return { found: null, schedules: budget, exhausted: false, lastOverrides: lastOf(it, limit) };
      }
      if (!it.exhausted) {
        // Stopped exactly at the budget, or by the deadline.
        return { found: null, schedules: start + it.ran, exhausted: false, lastOverrides: it.last ?? last };
      }
      start += it.ran;
      if (it.last !== null) last = it.last;
      cursor++;
    }
  };

  const withStats = (r: Omit<ParallelDfsResult, 'stats'>): ParallelDfsResult => {
    const subtrees = items.filter((it) => it.prefix !== null).length;
    return { ...r, stats: { masterRuns: items.length - subtrees, subtrees, ran } };
  };

  const pool = new WorkerPool(descriptor, o, undefined);
  try {
    for (;;) {
      const decided = walk();
      if (decided !== null) return withStats(decided);
      for (let w = 0; w < pool.size; w++) {
        while (pool.inFlight(w) < IN_FLIGHT) {
          const units: DfsUnitTask[] = [];
          for (let u = nextUnit(); u !== null; u = units.length < BATCH ? nextUnit() : null) units.push(u);
          if (units.length === 0) break;
          pool.send(w, { type: 'dfs', units, deadlineEpoch: performance.timeOrigin + cfg.deadline });
        }
      }
      const decidedNow = walk();
      if (decidedNow !== null) return withStats(decidedNow);
      if (!pool.busy) {
        // Nothing in flight and nothing more to hand out: the deadline, or the end of the tree.
        if (cursor < items.length) throw new Error('internal: a subtree was never explored');
        return withStats({
          found: null,
          schedules: start,
          exhausted: frontier.peek() === null,
          lastOverrides: last,
        });
      }
      pool.receive((_w, msg) => {
        if (msg.type === 'dfs') for (const r of msg.units) onResult(r);
      });
    }
  } finally {
    pool.close();
  }
}
