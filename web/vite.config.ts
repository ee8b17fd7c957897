/**
 * Builds the studio (web/dist). The model's modules are bundled as they are. The Node-only
 * modules that some of them import (the CLI's explorer worker pool, reading files, loading driver
 * modules through require() or tsx) are replaced by stubs whose every export throws when called: the
 * studio never reaches those paths, and a call that does fails loudly instead of half-working.
 * `node:path` keeps working versions of dirname() and resolve(), with which driver modules of
 * the bundled examples are found.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const STUB = '\0hetmem-node-stub:';
const WORKING: Record<string, { file: string; names: string[] }> = {
  'node:path': { file: here('./src/node/path.ts'), names: ['dirname', 'resolve'] },
};

function nodeStubs(): Plugin {
  return {
    name: 'hetmem-node-stubs',
    enforce: 'pre',
    resolveId(id) {
      // tsx (the TypeScript loader the CLI registers for user modules) is Node-only too.
      return id.startsWith('node:') || /^tsx($|\/)/.test(id) ? `${STUB}${id}` : null;
    },
    async load(id) {
      if (!id.startsWith(STUB)) return null;
      const name = id.slice(STUB.length);
      const real: Record<string, unknown> = name.startsWith('tsx')
        ? { register: null, tsImport: null }
        : ((await import(name)) as Record<string, unknown>);
      const working = WORKING[name] ?? { file: '', names: [] };
      const names = Object.keys(real).filter(
        (k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k) && !working.names.includes(k),
      );
      const unavailable = (what: string): string => `unavailable(${JSON.stringify(what)})`;
      return [
        'function unavailable(what) {',
        "  return function () { throw new Error(what + ' is not available in the browser'); };",
        '}',
        ...names.map((n) => `export const ${n} = ${unavailable(`${name}.${n}`)};`),
        `export default ${unavailable(name)};`,
        working.file === ''
          ? ''
          : `export { ${working.names.join(', ')} } from ${JSON.stringify(working.file)};`,
      ].join('\n');
    },
  };
}

export default defineConfig({
  root: here('.'),
  base: './',
  logLevel: 'warn',
  plugins: [nodeStubs()],
  resolve: {
    alias: [{ find: /^hetmem$/, replacement: here('../src/index.ts') }],
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  worker: { format: 'es', plugins: () => [nodeStubs()] },
  build: {
    outDir: here('./dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    reportCompressedSize: false,
    // The worker bundles the whole model: its transform is slow by nature, not a problem to report.
    rolldownOptions: { checks: { pluginTimings: false } },
  },
});
