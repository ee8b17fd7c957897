/**
 * The messages between the page and the policy simulator's worker (sim.worker.ts), apart from the
 * scenario model's worker so a long sweep never holds up stepping through a scenario.
 */
import type { SweepRun } from '../../src/sim/charts.ts';

export interface SimRequest {
  id: number;
  /** The sim file's text and the path its errors name. */
  text: string;
  file: string;
}

export type SimReply =
  | { id: number; type: 'progress'; done: number; total: number }
  | { id: number; type: 'done'; runs: SweepRun[]; axes: string[] }
  | { id: number; type: 'error'; message: string; line?: number; col?: number; internal: boolean };
