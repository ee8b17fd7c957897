/** node:worker_threads in the studio: the explorer runs on the model's one Web Worker. */
export const workerData: unknown = undefined;
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- stands in for Node's class
export class Worker {
  constructor() {
    throw new Error('worker threads are not available in the browser');
  }
}
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- stands in for Node's class
export class MessageChannel {
  constructor() {
    throw new Error('worker threads are not available in the browser');
  }
}
export type MessagePort = never;
export function receiveMessageOnPort(): undefined {
  return undefined;
}
