export * from './types.ts';
export * from './thread.ts';
export * from './clock.ts';
export * from './scheduler.ts';
export * from './locks.ts';
export * from './lockdep.ts';
