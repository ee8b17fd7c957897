/**
 * The messages between the page and the policy simulator's workers (sim.worker.ts), apart from the
 * scenario model's worker so a long sweep never holds up stepping through a scenario. The page
 * asks one worker for the plan (how many points the sim file's grid has), then hands the points
 * out one at a time to up to navigator.hardwareConcurrency workers and puts the results back in
 * grid order: a point's result depends only on its options, so the count of workers changes
 * nothing but the time.
 */
import type { SweepRun } from '../../src/sim/charts.ts';

/** The sim file's text and the path its errors name. */
interface SimSource {
  id: number;
  text: string;
  file: string;
}

export type SimRequest = (SimSource & { type: 'plan' }) | (SimSource & { type: 'run'; index: number });

export type SimReply =
  | { id: number; type: 'plan'; points: number; axes: string[] }
  | { id: number; type: 'progress'; index: number; done: number; total: number }
  | { id: number; type: 'point'; index: number; run: SweepRun }
  | { id: number; type: 'error'; message: string; line?: number; col?: number; internal: boolean };
