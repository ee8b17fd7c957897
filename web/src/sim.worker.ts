/**
 * Runs `hetmem sim` files in the browser: the same parser (src/sim/simfile.ts) and simulator
 * (src/sim/engine.ts) as the command line. A worker answers a plan (the grid's size and axes) or
 * runs one point of the grid; the page spreads a sweep's points over several of these workers.
 * The example traces are bundled; a sim file that names another trace is refused.
 */
import { SimError, runSim, type SimOptions } from '../../src/sim/engine.ts';
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

interface Plan {
  readonly points: { at: Record<string, unknown>; opts: SimOptions }[];
  readonly axes: string[];
}

/** The last sim file planned: a worker runs several points of one file, parsed once. */
let planned: { text: string; file: string; plan: Plan } | null = null;

function plan(text: string, file: string): Plan {
  if (planned?.text === text && planned.file === file) return planned.plan;
  const sf = parseSimFile(file, text);
  let base = sf.base;
  if (sf.trace !== undefined) {
    const t = importTrace(sf.trace.file, traceText(sf.trace.file), sf.trace.format);
    base = { ...base, trace: t.accesses, footprint: t.footprint };
  }
  const sweeping = sf.sweep.length > 0;
  const p: Plan = {
    points: sweepPoints(sweeping ? base : { ...base, timeline: true }, sf.sweep),
    axes: sf.sweep.map(([k]) => k),
  };
  planned = { text, file, plan: p };
  return p;
}

function answer(req: SimRequest): SimReply {
  const { id } = req;
  const p = plan(req.text, req.file);
  if (req.type === 'plan') return { id, type: 'plan', points: p.points.length, axes: p.axes };
  const { index } = req;
  const point = p.points[index];
  let last = 0;
  const r = runSim(point.opts, (done, total) => {
    const now = performance.now();
    if (now - last < PROGRESS_MS) return;
    last = now;
    const msg: SimReply = { id, type: 'progress', index, done, total };
    self.postMessage(msg);
  });
  return { id, type: 'point', index, run: { at: point.at, r } };
}

self.onmessage = ({ data }: MessageEvent<SimRequest>) => {
  let reply: SimReply;
  try {
    reply = answer(data);
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
