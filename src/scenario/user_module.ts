/**
 * Loading a user's module (a driver module a scenario names, or an explorer target): the one place
 * where hetmem decides how JavaScript and TypeScript files outside the package are loaded.
 *
 * - JavaScript (.js, .mjs, .cjs) is imported as it is.
 * - TypeScript (.ts, .mts, .cts) needs a loader on Node 20. Where the running Node strips types
 *   itself (`process.features.typescript`, on by default from Node 23.6 and 22.18), hetmem leaves
 *   it to Node; otherwise it registers tsx's ESM loader (`tsx/esm/api`) once, the first time a .ts
 *   module is loaded, and only then. Running from hetmem's own sources (the test suite, which
 *   starts under tsx), nothing is registered.
 *
 * TypeScript driver modules are ES modules whatever the package around them says: a project made
 * by `npm init` is `"type": "commonjs"`, where a loader would compile the driver to CommonJS and
 * its `import ... from 'hetmem'` would become a require() of an ES module that is still loading
 * (Node refuses that cycle). hetmem therefore registers, with the TypeScript loader, a resolve
 * hook that marks .ts and .mts files outside node_modules as ES modules (.cts stays CommonJS).
 *
 * A driver module shares the loaded model: its `import ... from 'hetmem'` resolves to the copy of
 * hetmem running it (the package's own exports; lib/instance.ts refuses a second copy). Loading
 * goes through import(), so an ES module driver and everything it imports are evaluated once.
 *
 * Errors (missing module, a throw on import) propagate to the caller, which reports them with the
 * scenario's file position.
 */
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const TS_EXTENSION = /\.[cm]?tsx?$/;

/** True when this copy of hetmem runs from its TypeScript sources (a loader is already active). */
const FROM_SOURCES = TS_EXTENSION.test(import.meta.url);

let tsxRegistered = false;
let esmHookRegistered = false;

/**
 * The resolve hook (a module of its own, as module.register() wants): a .ts or .mts file outside
 * node_modules loads as an ES module, TypeScript for Node's own type stripping.
 */
const TS_AS_ESM_HOOK = `
export async function resolve(specifier, context, nextResolve) {
  const r = await nextResolve(specifier, context);
  if (!r.url.startsWith('file:') || !/\\.m?ts$/.test(r.url) || r.url.includes('/node_modules/')) return r;
  return { ...r, format: r.format !== undefined && r.format !== null && r.format.endsWith('-typescript') ? 'module-typescript' : 'module' };
}
`;

/** Registers the hook above in this thread, once; after the TypeScript loader, so it runs first. */
function registerTsAsEsm(): void {
  if (esmHookRegistered) return;
  esmHookRegistered = true;
  register(`data:text/javascript,${encodeURIComponent(TS_AS_ESM_HOOK)}`);
}

/** Whether loading `path` needs hetmem to register a TypeScript loader first. */
export function needsTypeScriptLoader(path: string): boolean {
  if (!TS_EXTENSION.test(path) || FROM_SOURCES || tsxRegistered) return false;
  return !(process.features as { typescript?: string | false }).typescript;
}

/** tsx's loader API, named through a variable so the studio's bundler leaves it out. */
const TSX_ESM_API = 'tsx/esm/api';

/** Registers tsx's ESM loader in this thread, once. */
async function registerTsx(): Promise<void> {
  const { register } = (await import(/* @vite-ignore */ TSX_ESM_API)) as typeof import('tsx/esm/api');
  if (!tsxRegistered) register();
  tsxRegistered = true;
}

/** Imports the module at absolute `path` (a .ts module through a TypeScript loader, see above). */
export async function importUserModule(path: string): Promise<Record<string, unknown>> {
  if (needsTypeScriptLoader(path)) {
    // hetmem's own entry point first, the module a driver imports: once the loader is registered,
    // every module still to be loaded is resolved through it, on another thread.
    await import(new URL('../index.js', import.meta.url).href);
    await registerTsx();
  }
  if (TS_EXTENSION.test(path)) registerTsAsEsm();
  return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
}

/**
 * The synchronous form, for callers that cannot wait (a world built inside a synchronous explore
 * loop). Node 20.19 require()s ES modules and shares them with import(); a .ts module that was not
 * imported before goes through tsx's CommonJS hook, which compiles it as CommonJS — prefer
 * importUserModule() ahead of time, so this returns the module import() already loaded.
 */
export function requireUserModule(path: string): Record<string, unknown> {
  const req = createRequire(import.meta.url);
  try {
    return req(path) as Record<string, unknown>;
  } catch (e) {
    if (!TS_EXTENSION.test(path) || (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') throw e;
    (req('tsx/cjs/api') as { register(): unknown }).register();
    return req(path) as Record<string, unknown>;
  }
}
