/**
 * The explorer under Node: explore() and replay() with worker threads for `workers > 1` and
 * target descriptors loaded through require() (tsx compiles .ts modules on the way).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { explore as exploreIn, replay as replayIn } from '../../sched/explore/explore.ts';
import type { ParallelBackend } from '../../sched/explore/parallel.ts';
import type {
  ExploreOptions,
  ExploreResult,
  ExploreTarget,
  TargetDescriptor,
} from '../../sched/explore/types.ts';
import { parallelDfs } from './pardfs.ts';
import { parallelDpor } from './pardpor.ts';
import { parallelSearch } from './workers.ts';

/**
 * Builds the target a descriptor names, synchronously so explore() stays synchronous: Node 20.19
 * can require() ES modules, and tsx's CommonJS hook (registered here if the process was not
 * started under tsx) compiles .ts on the way.
 */
export function loadTargetSync(d: TargetDescriptor): ExploreTarget {
  const path = d.module.startsWith('file:') ? fileURLToPath(d.module) : d.module;
  const req = createRequire(import.meta.url);
  let mod: Record<string, unknown>;
  try {
    mod = req(path) as Record<string, unknown>;
  } catch (e) {
    if (!/\.[cm]?tsx?$/.test(path)) throw e;
    (req('tsx/cjs/api') as { register(): unknown }).register();
    mod = req(path) as Record<string, unknown>;
  }
  const factory = mod[d.exportName];
  if (typeof factory !== 'function')
    throw new TypeError(`${d.module} does not export a function '${d.exportName}'`);
  return (factory as (args: unknown) => ExploreTarget)(d.args);
}

export const nodeBackend: ParallelBackend = {
  loadTarget: loadTargetSync,
  search: parallelSearch,
  dfs: parallelDfs,
  dpor: parallelDpor,
};

/** explore() with worker threads. */
export function explore(target: ExploreTarget | TargetDescriptor, opts: ExploreOptions): ExploreResult {
  return exploreIn(target, opts, nodeBackend);
}

/** replay() that also loads target descriptors. */
export function replay(target: ExploreTarget | TargetDescriptor, token: string): ExploreResult {
  return replayIn(target, token, nodeBackend);
}
