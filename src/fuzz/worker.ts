/**
 * A fuzz worker process: runs the engine with the options the parent sends, and reports every
 * program start, progress and finding back over the IPC channel. A separate process, so the
 * parent can stop a program that never returns (or runs out of memory) and carry on.
 */
import { runEngine, type EngineOptions, type EngineStats } from './engine.ts';

export type FromWorker =
  | { t: 'start'; i: number; program: unknown }
  | ({ t: 'progress' } & EngineStats)
  | { t: 'report'; report: unknown }
  | ({ t: 'done' } & EngineStats);

function send(m: FromWorker): void {
  process.send?.(m);
}

process.once('message', (o: EngineOptions) => {
  const stats = runEngine(o, {
    onStart: (i, program) => {
      send({ t: 'start', i, program });
    },
    onProgress: (s) => {
      send({ t: 'progress', ...s });
    },
    onReport: (report) => {
      send({ t: 'report', report });
    },
  });
  send({ t: 'done', ...stats });
  process.disconnect?.();
});
