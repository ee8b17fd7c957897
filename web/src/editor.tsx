/** The scenario editor: CodeMirror 6 with YAML, schema completion and the parser's line:col errors. */
import { autocompletion } from '@codemirror/autocomplete';
import { yaml } from '@codemirror/lang-yaml';
import { linter, lintGutter, type Diagnostic } from '@codemirror/lint';
import { keymap } from '@codemirror/view';
import { basicSetup, EditorView } from 'codemirror';
import type { JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { indexSchema, schemaCompletion, type SchemaIndex } from './completion.ts';
import { call } from './rpc.ts';
import { applyDraft, draft, source } from './state.ts';
import { signal } from '@preact/signals';

/** The schema's index, once the worker has sent the schema (completion waits for it). */
const schemaIndex: Promise<SchemaIndex> = call('schema', {}).then((s) =>
  indexSchema(s as Record<string, unknown>),
);

/** The last problem the parser reported for the editor's text. */
export const editorIssue = signal<{ line: number; col: number; message: string } | null>(null);

const scenarioLinter = linter(
  async (view): Promise<Diagnostic[]> => {
    const text = view.state.doc.toString();
    const r = await call('lint', { text, file: source.value?.file ?? '/scenario.yaml' });
    if (r === null || r.line === undefined) {
      editorIssue.value = null;
      return [];
    }
    const line = view.state.doc.line(Math.min(Math.max(r.line, 1), view.state.doc.lines));
    const from = Math.min(line.from + Math.max((r.col ?? 1) - 1, 0), line.to);
    editorIssue.value = { line: r.line, col: r.col ?? 1, message: r.message };
    return [{ from, to: Math.max(from, Math.min(line.to, from + 1)), severity: 'error', message: r.message }];
  },
  { delay: 300 },
);

export function Editor(): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);

  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      doc: draft.value,
      extensions: [
        basicSetup,
        yaml(),
        lintGutter(),
        scenarioLinter,
        autocompletion({ override: [schemaCompletion(schemaIndex)] }),
        keymap.of([
          {
            key: 'Mod-Enter',
            run: () => {
              void applyDraft();
              return true;
            },
          },
        ]),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) draft.value = u.state.doc.toString();
        }),
        EditorView.contentAttributes.of({ 'aria-label': 'Scenario editor' }),
      ],
    });
    view.current = v;
    return () => {
      v.destroy();
    };
  }, []);

  // Follow the draft when it changes from outside (an example opened, a file loaded).
  useEffect(() => {
    const v = view.current;
    if (v !== null && v.state.doc.toString() !== draft.value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: draft.value } });
    }
  }, [draft.value]);

  const issue = editorIssue.value;
  return (
    <div class="editor-wrap">
      <div ref={host} class="editor" data-testid="editor" />
      <p class="lint" data-testid="lint" role="status">
        {issue === null ? (
          <span class="ok">scenario is valid</span>
        ) : (
          <span class="bad">{`${issue.line}:${issue.col}: ${issue.message}`}</span>
        )}
      </p>
    </div>
  );
}
