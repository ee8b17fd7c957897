/** The interleaving explorer: stateless model checking of scheduler threads by re-execution. */
export type {
  ChoiceContext,
  Decision,
  ExploreOptions,
  ExploreResult,
  ExploreTarget,
  ExploreViolation,
  ExploreWorld,
  RunOutcome,
  Strategy,
  StrategyName,
  TargetDescriptor,
  TraceStep,
} from './types.ts';
export { explore, replay } from './explore.ts';
export type { ParallelBackend } from './parallel.ts';
export { decodeToken, encodeToken, ReplayTokenError, type DecodedToken } from './replay.ts';
export { renderDiagram, type DiagramInput } from './diagram.ts';
export { RandomStrategy } from './random.ts';
export { PctStrategy } from './pct.ts';
export { DfsStrategy, independent, NondeterministicTargetError } from './dfs.ts';
export { minimizeSchedule } from './minimize.ts';
export { parseShard, type Shard } from './shard.ts';
export { Coverage, type CoverageReport } from './coverage.ts';
export { runSchedule, DEFAULT_MAX_STEPS } from './run.ts';
