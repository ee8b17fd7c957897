/** Runs the race corpus of examples/races/ through the explorer, in process. */
import { fileURLToPath } from 'node:url';
import { explore, replay } from '../../src/node/explore/index.ts';
import type { ExploreOptions, ExploreResult } from '../../src/sched/explore/types.ts';
import { targetFromParsed, type ScenarioTarget } from '../../src/scenario/explore_target.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioFile } from '../../src/scenario/parse.ts';
import { preloadDriver } from '../../src/scenario/runner.ts';

export const RACES = fileURLToPath(new URL('../../examples/races/', import.meta.url));

/** The explorer target of examples/races/NAME.yaml, its driver module loaded first. */
export async function raceTarget(name: string, restore = true): Promise<ScenarioTarget> {
  const parsed = parseScenarioFile(`${RACES}${name}.yaml`);
  await preloadDriver(parsed);
  return targetFromParsed(parsed, kernel(), { restore });
}

export async function exploreRace(name: string, opts: ExploreOptions): Promise<ExploreResult> {
  return explore(await raceTarget(name), opts);
}

export async function replayRace(name: string, token: string): Promise<ExploreResult> {
  return replay(await raceTarget(name), token);
}
