/** Races: a replay token or exploring here, the CPU0 / CPU1 diagram, the violated oracle. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import {
  current,
  exploreHere,
  goto,
  loadToken,
  outline,
  replayToken,
  seed,
  threadsScenario,
} from './state.ts';

export function RacePanel(): JSX.Element | null {
  const [token, setToken] = useState(replayToken.value);
  const [strategy, setStrategy] = useState<'random' | 'pct' | 'dfs'>('pct');
  const [budget, setBudget] = useState(300);
  const st = current.value;
  const race = st?.race ?? null;
  if (!threadsScenario.value) return null;
  return (
    <section class="panel" id="race" aria-labelledby="race-h">
      <h2 id="race-h">Race</h2>
      <div class="panel-body">
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            void loadToken(token);
          }}
        >
          <input
            aria-label="Replay token"
            placeholder="replay token or explorer JSON"
            value={token}
            onInput={(e) => setToken(tokenFrom((e.target as HTMLInputElement).value))}
          />
          <button type="submit">Replay</button>
        </form>
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            void exploreHere(strategy, budget);
          }}
        >
          <select
            aria-label="Strategy"
            value={strategy}
            onChange={(e) => setStrategy((e.target as HTMLSelectElement).value as 'pct')}
          >
            <option value="pct">pct</option>
            <option value="random">random</option>
            <option value="dfs">dfs</option>
          </select>
          <label>
            seed{' '}
            <input
              aria-label="Seed"
              type="number"
              min={0}
              value={seed.value}
              onInput={(e) => (seed.value = Number((e.target as HTMLInputElement).value) || 0)}
            />
          </label>
          <label>
            schedules{' '}
            <input
              aria-label="Schedules"
              type="number"
              min={1}
              value={budget}
              onInput={(e) => setBudget(Number((e.target as HTMLInputElement).value) || 1)}
            />
          </label>
          <button type="submit">Explore</button>
        </form>
        {race === null ? (
          <p class="dim">
            The steps run one after the other. Replay a token, or explore, to step through an interleaving.
          </p>
        ) : (
          <div>
            <p>
              token <code data-testid="race-token">{race.token}</code>
            </p>
            {race.violation !== null ? (
              <p class="violation" data-testid="violation" role="alert">
                <b>{race.violation.oracle}</b>: {race.violation.message}
              </p>
            ) : (
              <p class="ok" data-testid="no-violation">
                this schedule passes every oracle
              </p>
            )}
            <Diagram
              names={race.threadNames}
              step={st?.step ?? 0}
              violationAt={race.violation !== null ? race.at : -1}
            />
          </div>
        )}
      </div>
    </section>
  );
}

/** Accepts a bare token or the JSON `hetmem explore --json` prints. */
function tokenFrom(text: string): string {
  const t = text.trim();
  if (!t.startsWith('{')) return t;
  try {
    const r = JSON.parse(t) as { replay?: unknown };
    return typeof r.replay === 'string' ? r.replay : t;
  } catch {
    return t;
  }
}

/** One row per scheduler step, one column per thread; the current step and the violation marked. */
function Diagram(props: { names: string[]; step: number; violationAt: number }): JSX.Element {
  const units = outline.value;
  const cols = Math.max(props.names.length, 1);
  return (
    <div class="diagram-wrap">
      <table class="diagram" data-testid="diagram">
        <thead>
          <tr>
            <th>#</th>
            {props.names.map((n, i) => (
              <th key={n}>
                CPU{i} {n}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {units.map((u, i) => (
            <tr key={i} class={i + 1 === props.step ? 'current' : ''} onClick={() => void goto(i + 1)}>
              <td class="dim">{i + 1}</td>
              {u.column < 0 ? (
                <td colSpan={cols} class="end-unit">
                  {u.section === 'teardown' ? 'teardown' : `final: ${u.label}`}
                </td>
              ) : (
                Array.from({ length: cols }, (_, c) => <td key={c}>{c === u.column ? u.label : ''}</td>)
              )}
            </tr>
          ))}
          {props.violationAt >= 0 ? (
            <tr class="violation-row">
              <td />
              <td colSpan={cols}>*** violation after step {props.violationAt} ***</td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </div>
  );
}
