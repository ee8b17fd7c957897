/** The page's side of the worker protocol: one call, one promise. */
import type { Call, Issue, Method, Methods, Reply } from './protocol.ts';

export class ModelError extends Error {
  constructor(readonly issue: Issue) {
    super(issue.message);
    this.name = 'ModelError';
  }
}

const worker = new Worker(new URL('./model.worker.ts', import.meta.url), { type: 'module', name: 'model' });
const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
let nextId = 1;

worker.onmessage = ({ data }: MessageEvent<Reply>) => {
  const p = pending.get(data.id);
  if (p === undefined) return;
  pending.delete(data.id);
  if ('error' in data) p.reject(new ModelError(data.error));
  else p.resolve(data.result);
};

export function call<M extends Method>(
  method: M,
  params: Methods[M]['params'],
): Promise<Methods[M]['result']> {
  const id = nextId++;
  const msg: Call<M> = { id, method, params };
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage(msg);
  });
}
