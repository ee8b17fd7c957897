/** A progress bar on stderr for long runs, only when stderr is a terminal. */
import cliProgress from 'cli-progress';
import { warmedUp } from './jit.ts';
import { useColour } from './output.ts';

export interface Progress {
  update(done: number, total: number | undefined): void;
  stop(): void;
}

/**
 * A long run's reports of progress are also where V8's default optimisation budget is put back
 * (jit.ts): a search or a simulation computes without giving a timer the chance.
 */
const NONE: Progress = { update: warmedUp, stop() {} };

export function progressBar(label: string, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return NONE;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {value}/{total} {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      barCompleteChar: useColour(process.stderr) ? '█' : '#',
      barIncompleteChar: useColour(process.stderr) ? '░' : '-',
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let lastDraw = 0;
  return {
    update(done, total) {
      warmedUp();
      if (!started) {
        bar.start(total ?? 0, 0);
        started = true;
      }
      if (total !== undefined) bar.setTotal(total);
      const now = Date.now();
      if (now - lastDraw > 50 || done === total) {
        bar.update(done);
        lastDraw = now;
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
