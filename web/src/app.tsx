/** The studio's page: toolbar, step controls, editor and outline, and the views. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Editor } from './editor.tsx';
import { EXAMPLES } from './examples.ts';
import { ExercisePanel } from './exercise.tsx';
import { extraPanels } from './panels.ts';
import { RacePanel } from './race.tsx';
import {
  applyDraft,
  busy,
  current,
  draft,
  exercise,
  exerciseMode,
  goto,
  issue,
  nextEvent,
  notice,
  openExample,
  openScenario,
  outline,
  shareQuery,
  shownTrace,
  source,
  stepBy,
  syncUrl,
  violation,
} from './state.ts';
import {
  CATS,
  FramesView,
  IommufdView,
  NotifiersView,
  PageTablesView,
  ProcessesView,
  StepReportView,
  ThreadsView,
  TimelineView,
} from './views.tsx';

function download(name: string, data: BlobPart, type: string): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function baseName(): string {
  return (source.value?.file ?? 'scenario.yaml').replace(/^.*\//, '').replace(/\.(ya?ml|json)$/, '');
}

function Toolbar(): JSX.Element {
  const src = source.value;
  return (
    <header class="toolbar">
      <h1>hetmem studio</h1>
      <label>
        example{' '}
        <select
          aria-label="Example"
          value={src?.example ?? ''}
          onChange={(e) => {
            const v = (e.target as HTMLSelectElement).value;
            if (v !== '') void openExample(v);
          }}
        >
          <option value="">(your scenario)</option>
          {EXAMPLES.map((ex) => (
            <option key={ex.name} value={ex.name}>
              {ex.name}
            </option>
          ))}
        </select>
      </label>
      <label class="file-button">
        Open…
        <input
          type="file"
          accept=".yaml,.yml,.json"
          aria-label="Open a scenario file"
          onChange={(e) => {
            const f = (e.target as HTMLInputElement).files?.[0];
            if (f !== undefined)
              void f.text().then((text) => openScenario({ example: null, file: `/${f.name}`, text }));
          }}
        />
      </label>
      <button onClick={() => download(`${baseName()}.yaml`, draft.value, 'text/yaml')}>Save</button>
      <button
        onClick={() => {
          const url = `${location.origin}${location.pathname}${shareQuery()}`;
          syncUrl();
          void navigator.clipboard?.writeText(url).then(
            () => (notice.value = 'link copied'),
            () => (notice.value = 'the link is in the address bar'),
          );
        }}
      >
        Share
      </button>
      <button
        onClick={() =>
          void shownTrace().then((t) => download(`${baseName()}.json`, t.json, 'application/json'))
        }
      >
        Trace JSON
      </button>
      <button
        onClick={() =>
          void shownTrace().then((t) =>
            download(`${baseName()}.pftrace`, t.pftrace as BlobPart, 'application/octet-stream'),
          )
        }
      >
        Perfetto
      </button>
      <label>
        <input
          type="checkbox"
          checked={exerciseMode.value}
          onChange={(e) => {
            exerciseMode.value = (e.target as HTMLInputElement).checked;
            // The worker ran the hidden step: bring it back to the step shown.
            if (exercise.value !== null) void goto(current.value?.step ?? 0);
            exercise.value = null;
            syncUrl();
          }}
        />{' '}
        exercise
      </label>
      <span class="status" role="status" data-testid="status">
        {busy.value ? 'working…' : notice.value}
      </span>
    </header>
  );
}

function StepBar(): JSX.Element {
  const st = current.value;
  const [cat, setCat] = useState('fault');
  const step = st?.step ?? 0;
  const total = st?.total ?? 0;
  const hidden = exerciseMode.value;
  return (
    <nav class="stepbar" aria-label="Time travel">
      <button aria-label="First step" title="Home" onClick={() => void goto(0)} disabled={step === 0}>
        «
      </button>
      <button aria-label="Step back" title="←" onClick={() => void stepBy(-1)} disabled={step === 0}>
        ◀
      </button>
      <label>
        step{' '}
        <input
          aria-label="Step"
          data-testid="step-input"
          type="number"
          min={0}
          max={total}
          value={step}
          onChange={(e) => void goto(Number((e.target as HTMLInputElement).value))}
        />{' '}
        <span data-testid="step-total">/ {total}</span>
      </label>
      {hidden ? null : (
        <button aria-label="Step forward" title="→" onClick={() => void stepBy(1)} disabled={step >= total}>
          ▶
        </button>
      )}
      {hidden ? null : (
        <button aria-label="Last step" title="End" onClick={() => void goto(total)} disabled={step >= total}>
          »
        </button>
      )}
      {hidden ? null : (
        <span class="next">
          <select
            aria-label="Next event kind"
            value={cat}
            onChange={(e) => setCat((e.target as HTMLSelectElement).value)}
          >
            {CATS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
          <button onClick={() => void nextEvent(cat)}>Run to next</button>
        </span>
      )}
      {violation.value !== null ? <span class="violation-badge">{violation.value.oracle}</span> : null}
    </nav>
  );
}

function Outline(): JSX.Element {
  const st = current.value;
  const units = outline.value;
  return (
    <section class="panel" id="outline" aria-labelledby="outline-h">
      <h2 id="outline-h">Steps</h2>
      <ol class="plain outline" data-testid="outline">
        {units.map((u, i) => {
          const done = (st?.step ?? 0) > i;
          const isCurrent = (st?.step ?? 0) === i + 1;
          const report = st?.reports[i];
          return (
            <li key={i} class={`${done ? 'done' : ''} ${isCurrent ? 'current' : ''}`}>
              <button
                onClick={() => void goto(i + 1)}
                aria-current={isCurrent ? 'step' : undefined}
                disabled={exerciseMode.value && i + 1 > (st?.step ?? 0)}
              >
                <span class="dim">{i + 1}</span> {u.label}
                {u.section !== 'steps' && u.section !== u.label ? (
                  <span class="dim"> {u.section}</span>
                ) : null}
                {report !== undefined && !report.ok ? <span class="bad"> ✘</span> : null}
              </button>
            </li>
          );
        })}
      </ol>
    </section>
  );
}

export function App(): JSX.Element {
  const [filter, setFilter] = useState('');
  const [showEditor, setShowEditor] = useState(true);

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const t = e.target as HTMLElement | null;
      if (
        t !== null &&
        (t.closest('.cm-editor') !== null || ['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName))
      )
        return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const st = current.value;
      if (st === null) return;
      const ahead = !exerciseMode.value;
      if (e.key === 'ArrowRight' && ahead) void stepBy(1);
      else if (e.key === 'ArrowLeft') void stepBy(-1);
      else if (e.key === 'Home') void goto(0);
      else if (e.key === 'End' && ahead) void goto(st.total);
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const iss = issue.value;
  return (
    <div class="app">
      <Toolbar />
      <StepBar />
      {iss !== null ? (
        <p class="issue" role="alert" data-testid="issue">
          {iss.line !== undefined
            ? `${(source.value?.file ?? '').replace(/^.*\//, '')}:${iss.line}:${iss.col ?? 1}: `
            : ''}
          {iss.message}
        </p>
      ) : null}
      <main class="layout">
        <aside class="side">
          <section class="panel" id="editor-panel" aria-labelledby="editor-h">
            <h2 id="editor-h">
              Scenario{' '}
              <button class="small" aria-expanded={showEditor} onClick={() => setShowEditor(!showEditor)}>
                {showEditor ? 'hide' : 'edit'}
              </button>{' '}
              <button class="small" onClick={() => void applyDraft()} title="Ctrl+Enter">
                Run
              </button>
            </h2>
            {showEditor ? <Editor /> : null}
          </section>
          <Outline />
        </aside>
        <div class="views">
          <ExercisePanel />
          <RacePanel />
          <StepReportView />
          <ProcessesView />
          <PageTablesView />
          <FramesView />
          <NotifiersView />
          <IommufdView />
          <ThreadsView />
          <TimelineView filter={filter} setFilter={setFilter} />
          {extraPanels.map((p) => (
            <section class="panel" id={p.id} key={p.id}>
              <h2>{p.title}</h2>
              {p.render()}
            </section>
          ))}
        </div>
      </main>
    </div>
  );
}
