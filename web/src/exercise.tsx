/** "Predict the next state": the next step's result stays hidden until the student answers. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { checkPrediction, current, exercise, exerciseMode, outline, revealAnswer, score } from './state.ts';

export function ExercisePanel(): JSX.Element | null {
  const [ret, setRet] = useState('');
  const [cpu, setCpu] = useState('');
  const [dev, setDev] = useState('');
  if (!exerciseMode.value) return null;
  const st = current.value;
  if (st === null) return null;
  const ex = exercise.value;
  const next = outline.value[st.step];
  return (
    <section class="panel exercise" id="exercise" aria-labelledby="exercise-h">
      <h2 id="exercise-h">Predict the next state</h2>
      <div class="panel-body">
        <p data-testid="score">
          score {score.value.right} / {score.value.asked}
        </p>
        {next === undefined ? (
          <p class="dim">the scenario is over</p>
        ) : ex === null ? (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void checkPrediction({ ret, cpuPresent: cpu, devicePages: dev });
            }}
          >
            <p>
              Next: <b data-testid="next-op">{next.label}</b>{' '}
              <span class="dim">
                {next.section}
                {next.line > 0 ? ` line ${next.line}` : ''}
              </span>
            </p>
            <label>
              it returns (a number or an errno such as EFAULT)
              <input
                aria-label="Predicted return"
                value={ret}
                onInput={(e) => setRet((e.target as HTMLInputElement).value)}
              />
            </label>
            <label>
              pages the CPU then maps (present or zero page)
              <input
                aria-label="Predicted CPU pages"
                inputMode="numeric"
                value={cpu}
                onInput={(e) => setCpu((e.target as HTMLInputElement).value)}
              />
            </label>
            <label>
              pages some device then maps
              <input
                aria-label="Predicted device pages"
                inputMode="numeric"
                value={dev}
                onInput={(e) => setDev((e.target as HTMLInputElement).value)}
              />
            </label>
            <button type="submit">Check</button>
          </form>
        ) : (
          <div>
            <ul class="plain" data-testid="checks">
              {ex.checks.map((c) => (
                <li key={c.question} class={c.ok ? 'ok' : 'bad'}>
                  {c.ok ? '✔' : '✘'} {c.question}: you said {c.given === '' ? '(nothing)' : c.given}, the
                  model says {c.expected}
                </li>
              ))}
            </ul>
            <button
              onClick={() => {
                setRet('');
                setCpu('');
                setDev('');
                revealAnswer();
              }}
            >
              Show the state
            </button>
          </div>
        )}
      </div>
    </section>
  );
}
