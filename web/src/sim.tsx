/**
 * The policy simulator's panel: open a sim file (an example, a file, or text typed in), run it in
 * Web Workers of its own (sim.worker.ts: the same parser and simulator as `hetmem sim`; a sweep's
 * points run on up to navigator.hardwareConcurrency of them), and draw the same Vega-Lite charts
 * as `hetmem sim --plot` with Vega in the page, and for a sweep the table `hetmem sim` prints.
 * `?sim=NAME` in the URL selects an example.
 */
import { signal } from '@preact/signals';
import type { JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { runChart, sweepChart, type SweepRun } from '../../src/sim/charts.ts';
import { sweepTable } from '../../src/sim/table.ts';
import { extraPanels } from './panels.ts';
import type { SimReply, SimRequest } from './sim_protocol.ts';

const files = import.meta.glob<string>('../../examples/sim/*.yaml', {
  query: '?raw',
  import: 'default',
  eager: true,
});

export interface SimExample {
  /** 'prefetchers' */
  name: string;
  /** '/examples/sim/prefetchers.yaml': the path errors name. */
  path: string;
  text: string;
}

export const SIM_EXAMPLES: SimExample[] = Object.entries(files)
  .map(([p, text]) => {
    const path = p.replace(/^(\.\.\/)+/, '/');
    return { name: path.replace(/^.*\//, '').replace(/\.yaml$/, ''), path, text };
  })
  .sort((a, b) => a.name.localeCompare(b.name));

const SMALL = `# A small run: edit it, or pick an example (a sweep of several runs takes longer).
version: 1
workload: stream
footprint: 8MiB
gpu_memory: 4MiB
policy: tree
`;

interface Outcome {
  runs: SweepRun[];
  axes: string[];
  /** How many workers ran the points. */
  workers: number;
}

const example = signal('');
const file = signal('/sim.yaml');
const text = signal(SMALL);
const running = signal(false);
const progress = signal<{ done: number; total: number } | null>(null);
const outcome = signal<Outcome | null>(null);
const problem = signal<string | null>(null);

/** The run in progress: its workers, and the points' results and progress by grid index. */
interface Sweep {
  readonly id: number;
  readonly req: { text: string; file: string };
  readonly workers: Worker[];
  axes: string[];
  runs: (SweepRun | undefined)[];
  fraction: number[];
  next: number;
  finished: number;
}

let sweep: Sweep | null = null;
let nextId = 1;

function stop(): void {
  for (const w of sweep?.workers ?? []) w.terminate();
  sweep = null;
  running.value = false;
  progress.value = null;
}

function spawn(s: Sweep): Worker {
  const w = new Worker(new URL('./sim.worker.ts', import.meta.url), { type: 'module', name: 'sim' });
  w.onmessage = (e: MessageEvent<SimReply>) => {
    onReply(s, w, e.data);
  };
  // A worker that fails to load or throws outside a request would otherwise leave the run hanging.
  w.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    if (sweep !== s) return;
    stop();
    problem.value = `internal error: the sim worker failed: ${e.message}`;
  };
  s.workers.push(w);
  return w;
}

/** Hands `w` the next point not yet given out, if any. */
function feed(s: Sweep, w: Worker): void {
  if (s.next >= s.runs.length) return;
  const msg: SimRequest = { id: s.id, type: 'run', ...s.req, index: s.next++ };
  w.postMessage(msg);
}

function onReply(s: Sweep, w: Worker, data: SimReply): void {
  if (sweep !== s || data.id !== s.id) return;
  switch (data.type) {
    case 'plan': {
      s.axes = data.axes;
      s.runs = new Array<SweepRun | undefined>(data.points).fill(undefined);
      s.fraction = new Array<number>(data.points).fill(0);
      const n = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, data.points));
      for (let i = 1; i < n; i++) spawn(s);
      for (const x of s.workers) feed(s, x);
      return;
    }
    case 'progress':
      s.fraction[data.index] = data.total === 0 ? 0 : data.done / data.total;
      progress.value = { done: s.fraction.reduce((a, b) => a + b, 0), total: s.runs.length };
      return;
    case 'point':
      s.runs[data.index] = data.run;
      s.fraction[data.index] = 1;
      progress.value = { done: s.fraction.reduce((a, b) => a + b, 0), total: s.runs.length };
      if (++s.finished < s.runs.length) {
        feed(s, w);
        return;
      }
      outcome.value = { runs: s.runs as SweepRun[], axes: s.axes, workers: s.workers.length };
      stop();
      return;
    case 'error': {
      stop();
      const where =
        data.line !== undefined ? `${file.value.replace(/^.*\//, '')}:${data.line}:${data.col ?? 1}: ` : '';
      problem.value = `${data.internal ? 'internal error: ' : ''}${where}${data.message}`;
    }
  }
}

/** Runs the sim file in the editor; a run still going is stopped first. */
export function runSimText(): void {
  stop();
  const s: Sweep = {
    id: nextId++,
    req: { text: text.value, file: file.value },
    workers: [],
    axes: [],
    runs: [],
    fraction: [],
    next: 0,
    finished: 0,
  };
  sweep = s;
  problem.value = null;
  outcome.value = null;
  running.value = true;
  const msg: SimRequest = { id: s.id, type: 'plan', ...s.req };
  spawn(s).postMessage(msg);
}

function openSim(name: string, path: string, body: string): void {
  stop();
  example.value = name;
  file.value = path;
  text.value = body;
  outcome.value = null;
  problem.value = null;
}

/** Draws an outcome's chart into `el` with Vega's SVG renderer; resolves to the view's SVG text. */
async function draw(el: HTMLElement, o: Outcome): Promise<() => Promise<string>> {
  const [{ View, parse, Error: VEGA_ERROR }, { toVega }] = await Promise.all([
    import('vega'),
    import('../../src/sim/render.ts'),
  ]);
  const spec = o.axes.length > 0 ? sweepChart(o.runs, o.axes) : runChart(o.runs[0].r);
  el.replaceChildren();
  const view = new View(parse(toVega(spec)), { renderer: 'svg', container: el, logLevel: VEGA_ERROR });
  await view.runAsync();
  return () => view.toSVG();
}

function download(name: string, data: string): void {
  const url = URL.createObjectURL(new Blob([data], { type: 'image/svg+xml' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function Chart({ o }: { o: Outcome }): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  const svg = useRef<(() => Promise<string>) | null>(null);
  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    let live = true;
    draw(el, o).then(
      (toSvg) => {
        if (!live) return;
        svg.current = toSvg;
        el.dataset.drawn = 'true';
      },
      (e: unknown) => {
        if (live) problem.value = `internal error: ${e instanceof Error ? e.message : String(e)}`;
      },
    );
    return () => {
      live = false;
    };
  }, [o]);
  const name = `${file.value.replace(/^.*\//, '').replace(/\.ya?ml$/, '')}.svg`;
  return (
    <div>
      <button
        class="small"
        onClick={() => void svg.current?.().then((s) => download(name, s))}
        title="the chart as hetmem sim --plot writes it"
      >
        Download SVG
      </button>
      <div class="sim-chart" data-testid="sim-chart" ref={ref} style={{ overflowX: 'auto' }} />
    </div>
  );
}

function SimPanel(): JSX.Element {
  const p = progress.value;
  const o = outcome.value;
  const status = running.value
    ? `running${p !== null ? ` ${Math.floor((p.done / p.total) * 100)}%` : '…'}`
    : o !== null
      ? `${o.runs.length} run${o.runs.length === 1 ? '' : 's'}`
      : '';
  return (
    <div class="panel-body sim">
      <div class="sim-controls">
        <label>
          sim file{' '}
          <select
            aria-label="Sim preset"
            value={example.value}
            onChange={(e) => {
              const ex = SIM_EXAMPLES.find((x) => x.name === (e.target as HTMLSelectElement).value);
              if (ex !== undefined) openSim(ex.name, ex.path, ex.text);
            }}
          >
            <option value="">(your sim file)</option>
            {SIM_EXAMPLES.map((ex) => (
              <option key={ex.name} value={ex.name}>
                {ex.name}
              </option>
            ))}
          </select>
        </label>{' '}
        <label class="file-button">
          Open…
          <input
            type="file"
            accept=".yaml,.yml"
            aria-label="Open a sim file"
            onChange={(e) => {
              const f = (e.target as HTMLInputElement).files?.[0];
              if (f !== undefined) void f.text().then((t) => openSim('', `/${f.name}`, t));
            }}
          />
        </label>{' '}
        <button onClick={runSimText} disabled={running.value}>
          Run sim
        </button>{' '}
        {running.value ? <button onClick={stop}>Stop</button> : null}{' '}
        <span class="dim" role="status" data-testid="sim-status" data-workers={o?.workers}>
          {status}
        </span>
      </div>
      <textarea
        class="sim-text"
        style={{ width: '100%', boxSizing: 'border-box', fontFamily: 'monospace', margin: '6px 0' }}
        aria-label="Sim file text"
        spellcheck={false}
        rows={8}
        value={text.value}
        onInput={(e) => {
          text.value = (e.target as HTMLTextAreaElement).value;
          example.value = '';
        }}
      />
      {problem.value !== null ? (
        <p class="issue" role="alert" data-testid="sim-issue">
          {problem.value}
        </p>
      ) : null}
      {o !== null ? <Chart o={o} /> : null}
      {o !== null && o.axes.length > 0 ? (
        <pre class="sim-table" data-testid="sim-table" aria-label="Sweep results">
          {sweepTable(o.runs)}
        </pre>
      ) : null}
    </div>
  );
}

const wanted = new URLSearchParams(location.search).get('sim');
if (wanted !== null) {
  const ex = SIM_EXAMPLES.find((x) => x.name === wanted);
  if (ex !== undefined) openSim(ex.name, ex.path, ex.text);
  else problem.value = `no sim example named '${wanted}'`;
}

extraPanels.push({ id: 'sim', title: 'Policy simulation', render: () => <SimPanel /> });
