/**
 * Starts the studio from the URL: `?example=NAME` or `?src=TEXT` (base64url) with `&replay=TOKEN`,
 * `&seed=N`, `&step=N`, `&mode=exercise`. Without a scenario in the URL it opens the one the
 * command line serves (`hetmem studio FILE`), else the fork-cow example.
 */
import { render } from 'preact';
import { App } from './app.tsx';
import { exampleByName } from './examples.ts';
import { exerciseMode, fromBase64url, issue, openScenario, seed, type Source } from './state.ts';
import './styles.css';
import './sim.tsx';

async function served(): Promise<Source | null> {
  try {
    const r = await fetch('./scenario.json', { cache: 'no-store' });
    // 204: `hetmem studio` was started without a FILE.
    if (!r.ok || r.status === 204) return null;
    const j = (await r.json()) as { name?: unknown; text?: unknown };
    if (typeof j.text !== 'string' || typeof j.name !== 'string') return null;
    return { example: null, file: `/${j.name}`, text: j.text };
  } catch {
    return null;
  }
}

async function start(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const step = Number(q.get('step') ?? '0');
  const replay = q.get('replay') ?? '';
  const s = Number(q.get('seed') ?? '1');
  seed.value = Number.isSafeInteger(s) ? s : 1;
  exerciseMode.value = q.get('mode') === 'exercise';
  let src: Source | null = null;
  const example = q.get('example');
  const text = q.get('src');
  if (example !== null) {
    const ex = exampleByName(example);
    if (ex !== undefined) src = { example: ex.name, file: ex.path, text: ex.text };
    else issue.value = { code: 'usage', message: `no example named '${example}'` };
  } else if (text !== null) {
    try {
      src = { example: null, file: `/${q.get('name') ?? 'scenario.yaml'}`, text: fromBase64url(text) };
    } catch {
      issue.value = { code: 'usage', message: 'the scenario in the link is damaged' };
    }
  } else {
    src = await served();
  }
  if (src === null && issue.value === null) {
    const ex = exampleByName('fork-cow')!;
    src = { example: ex.name, file: ex.path, text: ex.text };
  }
  if (src !== null)
    await openScenario(src, { replay, step: Number.isSafeInteger(step) && step > 0 ? step : 0 });
}

render(<App />, document.getElementById('app')!);
void start();
