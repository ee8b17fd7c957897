/** Errors the CLI maps to exit codes. */

/** Exit 2: a bad command line (the message is one line). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit 3 with a clear message, no stack: something the installation lacks. */
export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}

export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 3 } as const;
