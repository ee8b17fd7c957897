/**
 * "Predict the next state": the next step runs out of sight; the panel asks what it changed
 * (questions.ts), the student answers, the model's state checks the answers.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Answer, Question } from './questions.ts';
import {
  checkExercise,
  current,
  exercise,
  exerciseMode,
  outline,
  prepareExercise,
  revealAnswer,
  score,
} from './state.ts';

function QuestionField(props: {
  q: Question;
  value: Answer | undefined;
  set: (v: Answer) => void;
}): JSX.Element {
  const { q, value, set } = props;
  if (q.kind === 'pages') {
    const chosen = new Set(Array.isArray(value) ? value : []);
    return (
      <fieldset class="question" data-testid="question" data-kind={q.kind}>
        <legend>{q.prompt}</legend>
        <div class="choices" role="group" aria-label={q.label}>
          {q.options.map((o) => (
            <label key={o} class="choice">
              <input
                type="checkbox"
                checked={chosen.has(o)}
                onChange={(e) => {
                  const next = new Set(chosen);
                  if ((e.target as HTMLInputElement).checked) next.add(o);
                  else next.delete(o);
                  set(q.options.filter((x) => next.has(x)));
                }}
              />{' '}
              <code>{o}</code>
            </label>
          ))}
        </div>
      </fieldset>
    );
  }
  if (q.kind === 'choice') {
    return (
      <label class="question" data-testid="question" data-kind={q.kind}>
        {q.prompt}
        <select
          aria-label={q.label}
          value={typeof value === 'string' ? value : ''}
          onChange={(e) => set((e.target as HTMLSelectElement).value)}
        >
          <option value="">(choose)</option>
          {q.options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      </label>
    );
  }
  return (
    <label class="question" data-testid="question" data-kind={q.kind}>
      {q.prompt}
      <input
        aria-label={q.label}
        inputMode={q.kind === 'value' ? 'text' : undefined}
        value={typeof value === 'string' ? value : ''}
        onInput={(e) => set((e.target as HTMLInputElement).value)}
      />
    </label>
  );
}

export function ExercisePanel(): JSX.Element | null {
  const [answers, setAnswers] = useState<Record<string, Answer>>({});
  const st = current.value;
  const ex = exercise.value;
  const on = exerciseMode.value;
  useEffect(() => {
    setAnswers({});
    if (on) void prepareExercise();
  }, [on, st, ex?.step]);
  if (!on || st === null) return null;
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
        ) : (
          <p>
            Next: <b data-testid="next-op">{next.label}</b>{' '}
            <span class="dim">
              {next.section}
              {next.line > 0 ? ` line ${next.line}` : ''}
            </span>
          </p>
        )}
        {next === undefined ? null : ex === null || ex.step !== st.step + 1 ? (
          <p class="dim">running it out of sight…</p>
        ) : ex.checks === null ? (
          <form
            data-testid="questions"
            onSubmit={(e) => {
              e.preventDefault();
              checkExercise(answers);
            }}
          >
            {ex.questions.map((q) => (
              <QuestionField
                key={q.id}
                q={q}
                value={answers[q.id]}
                set={(v) => setAnswers({ ...answers, [q.id]: v })}
              />
            ))}
            <button type="submit">Check</button>
          </form>
        ) : (
          <div>
            <ul class="plain" data-testid="checks">
              {ex.checks.map((c) => (
                <li key={c.id} class={c.ok ? 'ok' : 'bad'} data-id={c.id}>
                  {c.ok ? '✔' : '✘'} {c.label}: you said {c.given === '' ? '(nothing)' : c.given}, the model
                  says {c.expected}
                </li>
              ))}
            </ul>
            <button onClick={() => revealAnswer()}>Show the state</button>
          </div>
        )}
      </div>
    </section>
  );
}
