/**
 * One loaded model per JavaScript realm (a process, or each worker thread).
 *
 * The model keeps registries at module level (ioctl tables, lock classes, device types), so two
 * copies of its modules in one process are two kernels: a driver module that pulls in its own copy
 * (a CommonJS build of the driver require()ing a second install of hetmem, or two installs side by
 * side) registers its notifiers and devices with a kernel that the scenario never runs, and the
 * explorer then reports false deadlocks or nothing at all. The first copy to load claims a slot on
 * globalThis under a registered symbol, keyed by the real path of this module; a second copy finds
 * the slot taken by another path and refuses to load.
 *
 * Browser-safe: uses only import.meta.url and globalThis (the studio runs the model in a worker).
 */

const SLOT = Symbol.for('hetmem.loaded-instance');

/** The path of a module URL, for messages (file: URLs decoded; other URLs as they are). */
function pathOf(url: string): string {
  return url.startsWith('file:') ? decodeURIComponent(new URL(url).pathname) : url;
}

/** A second copy of hetmem's modules was loaded into a realm that already has one. */
export class DuplicateInstanceError extends Error {
  override readonly name = 'DuplicateInstanceError';
  constructor(
    /** Path of the copy loaded first (the one that stays). */
    readonly first: string,
    /** Path of the refused copy. */
    readonly second: string,
  ) {
    super(
      `two copies of hetmem in one process: ${first} was loaded first, then ${second}; ` +
        'a driver module must share the hetmem that runs it: import it from an ES module (or a ' +
        "CommonJS one that require()s 'hetmem', not a bundled copy) and keep one hetmem install " +
        '(npm ls hetmem; npm dedupe, or make hetmem a peerDependency of the driver package)',
    );
  }
}

/** Claims the realm for the copy of hetmem whose lib/instance module has URL `url`. */
export function claimInstance(url: string): void {
  const g = globalThis as { [SLOT]?: string };
  const taken = g[SLOT];
  if (taken === undefined) g[SLOT] = url;
  else if (taken !== url) throw new DuplicateInstanceError(pathOf(taken), pathOf(url));
}

/** The module URL of the copy of hetmem loaded in this realm, if any. */
export function loadedInstance(): string | undefined {
  return (globalThis as { [SLOT]?: string })[SLOT];
}

claimInstance(import.meta.url);
