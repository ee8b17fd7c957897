/**
 * The messages between the page and the model's worker: the page sends `{id, method, params}`,
 * the worker answers `{id, result}` or `{id, error}`. Everything that crosses is plain data.
 */
import type { StudioState, UnitInfo } from '../../src/scenario/studio.ts';

export interface Issue {
  /** 'scenario': the file is invalid at line:col; 'token': a bad replay token; 'internal': a bug. */
  code: 'scenario' | 'token' | 'usage' | 'internal';
  message: string;
  line?: number;
  col?: number;
}

export interface Opened {
  outline: UnitInfo[];
  state: StudioState;
  threads: boolean;
}

export interface Methods {
  open: { params: { text: string; file: string; replay?: string; step?: number }; result: Opened };
  goto: { params: { n: number }; result: StudioState };
  next: { params: { cat: string }; result: { found: boolean; state: StudioState } };
  /**
   * Shows the window of pages holding `addr` and of frames holding `pfn` (big address spaces), at
   * `step`, the step the page shows (the model may be a step ahead, out of sight).
   */
  window: { params: { addr?: number; pfn?: number; step: number }; result: StudioState };
  lint: { params: { text: string; file: string }; result: Issue | null };
  explore: {
    params: {
      text: string;
      file: string;
      strategy: 'random' | 'pct' | 'dfs';
      seed: number;
      schedules: number;
    };
    result: { token: string; found: boolean; schedules: number };
  };
  schema: { params: Record<string, never>; result: unknown };
  /** The trace of the state shown: its first `events` events (see StudioState.events). */
  trace: { params: { events: number }; result: { json: string; pftrace: Uint8Array } };
}

export type Method = keyof Methods;

export interface Call<M extends Method = Method> {
  id: number;
  method: M;
  params: Methods[M]['params'];
}

export type Reply = { id: number; result: unknown } | { id: number; error: Issue };
