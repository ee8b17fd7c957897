/**
 * Runs `hetmem sim` files in the browser: the same parser (src/sim/simfile.ts) and simulator
 * (src/sim/engine.ts) as the command line, one point after another. The example traces are
 * bundled; a sim file that names another trace is refused.
 */
import { SimError, runSim, type SimResult } from '../../src/sim/engine.ts';
import { SimFileError, parseSimFile, sweepPoints } from '../../src/sim/simfile.ts';
import { TraceError, importTrace } from '../../src/sim/traces.ts';
import type { SimReply, SimRequest } from './sim_protocol.ts';

// The text traces only: a binary one (nvuvm-v1/-v2 .bin) would not survive `?raw`.
const traces = import.meta.glob<string>(['../../examples/sim/traces/*', '!../../examples/sim/traces/*.bin'], {
  query: '?raw',
  import: 'default',
  eager: true,
});

/** The bundled trace a sim file names by its path in the repository (examples/sim/traces/X). */
function traceText(path: string): string {
  const want = path.replace(/^\.?\//, '');
  for (const [p, text] of Object.entries(traces)) if (p.replace(/^(\.\.\/)+/, '') === want) return text;
  throw new SimError(`trace ${path}: the studio has the example text traces only (examples/sim/traces/)`);
}

/** Posts progress at most this often (ms). */
const PROGRESS_MS = 100;

function run({ id, text, file }: SimRequest): SimReply {
  const sf = parseSimFile(file, text);
  let base = sf.base;
  if (sf.trace !== undefined) {
    const t = importTrace(sf.trace.file, traceText(sf.trace.file), sf.trace.format);
    base = { ...base, trace: t.accesses, footprint: t.footprint };
  }
  const sweeping = sf.sweep.length > 0;
  const points = sweepPoints(sweeping ? base : { ...base, timeline: true }, sf.sweep);
  const runs: { at: Record<string, unknown>; r: SimResult }[] = [];
  let last = 0;
  for (const [i, p] of points.entries()) {
    const r = runSim(p.opts, (done, total) => {
      const now = performance.now();
      if (now - last < PROGRESS_MS) return;
      last = now;
      const msg: SimReply = {
        id,
        type: 'progress',
        done: i + (total === 0 ? 0 : done / total),
        total: points.length,
      };
      self.postMessage(msg);
    });
    runs.push({ at: p.at, r });
  }
  return { id, type: 'done', runs, axes: sf.sweep.map(([k]) => k) };
}

self.onmessage = ({ data }: MessageEvent<SimRequest>) => {
  let reply: SimReply;
  try {
    reply = run(data);
  } catch (e) {
    if (e instanceof SimFileError)
      reply = { id: data.id, type: 'error', message: e.why, line: e.line, col: e.col, internal: false };
    else if (e instanceof SimError || e instanceof TraceError)
      reply = { id: data.id, type: 'error', message: e.message, internal: false };
    else
      reply = {
        id: data.id,
        type: 'error',
        message: e instanceof Error ? e.message : String(e),
        internal: true,
      };
  }
  self.postMessage(reply);
};
