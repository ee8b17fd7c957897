/**
 * The only module that holds a System: it opens scenarios and answers the page's calls with
 * plain snapshots (see protocol.ts).
 */
import { installBuffer } from './node/buffer.ts';
import { registerDriverModule } from '../../src/scenario/runner.ts';
import { ScenarioError, parseScenarioText } from '../../src/scenario/parse.ts';
import { scenarioJsonSchema } from '../../src/scenario/schema.ts';
import { exploreText, nextEvent, openSession, type Session } from '../../src/scenario/studio.ts';
import { ReplayTokenError } from '../../src/sched/explore/replay.ts';
import { toChromeTrace } from '../../src/cli/trace.ts';
import { toPerfetto } from '../../src/cli/perfetto.ts';
import type { Call, Issue, Method, Methods, Reply } from './protocol.ts';

installBuffer();

// The example race drivers, under the paths the example scenarios name them by.
const driverModules = import.meta.glob<Record<string, unknown>>('../../examples/races/drivers/*.ts', {
  eager: true,
});
for (const [path, mod] of Object.entries(driverModules)) {
  registerDriverModule(path.replace(/^(\.\.\/)+/, '/'), mod);
}

let session: Session | null = null;

function current(): Session {
  if (session === null) throw new Error('no scenario is open');
  return session;
}

function toIssue(e: unknown): Issue {
  if (e instanceof ScenarioError) return { code: 'scenario', message: e.message, line: e.line, col: e.col };
  if (e instanceof ReplayTokenError) return { code: 'token', message: e.message };
  if (e instanceof TypeError && /replay token|strategy|seed|budget/.test(e.message))
    return { code: 'usage', message: e.message };
  return { code: 'internal', message: e instanceof Error ? e.message : String(e) };
}

const handlers: { [M in Method]: (p: Methods[M]['params']) => Methods[M]['result'] } = {
  open({ text, file, replay, step }) {
    session?.close();
    session = null;
    const s = openSession(text, file, replay !== undefined && replay !== '' ? { replay } : {});
    session = s;
    if (step !== undefined) s.goto(Math.max(0, Math.min(step, s.total)));
    return {
      outline: s.outline(),
      state: s.state(),
      threads: parseScenarioText(text, file).scenario.threads !== undefined,
    };
  },
  goto({ n }) {
    const s = current();
    s.goto(Math.max(0, Math.min(n, s.total)));
    return s.state();
  },
  next({ cat }) {
    const s = current();
    const found = nextEvent(s, cat);
    return { found, state: s.state() };
  },
  window({ addr, pfn, step }) {
    const s = current();
    s.goto(Math.max(0, Math.min(step, s.total)));
    s.window = {
      ...s.window,
      ...(addr !== undefined ? { addr } : {}),
      ...(pfn !== undefined ? { pfn } : {}),
    };
    return s.state();
  },
  lint({ text, file }) {
    try {
      parseScenarioText(text, file);
      return null;
    } catch (e) {
      return toIssue(e);
    }
  },
  explore({ text, file, strategy, seed, schedules }) {
    return exploreText(parseScenarioText(text, file), { strategy, seed, schedules });
  },
  schema() {
    return scenarioJsonSchema();
  },
  trace({ events }) {
    const s = current();
    // Only what the page shows: the model may be a step ahead, out of sight (an exercise).
    const sources = [{ name: 'hetmem studio', events: s.sys.trace.events.slice(0, events) }];
    return { json: JSON.stringify(toChromeTrace(sources)), pftrace: toPerfetto(sources) };
  },
};

self.onmessage = ({ data }: MessageEvent<Call>) => {
  const reply = (r: { result: unknown } | { error: Issue }): void => {
    const msg: Reply = { id: data.id, ...r };
    self.postMessage(msg);
  };
  try {
    const h = handlers[data.method] as (p: unknown) => unknown;
    reply({ result: h(data.params) });
  } catch (err) {
    reply({ error: toIssue(err) });
  }
};
