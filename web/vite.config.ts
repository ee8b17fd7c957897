/**
 * Builds the studio (web/dist). The model's modules are bundled as they are; the few Node-only
 * modules some of them import (the CLI's explorer worker pool, driver loading through require())
 * are replaced by stubs, since the studio never reaches those paths.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const stub = (name: string): string => here(`./src/node/${name}.ts`);

export default defineConfig({
  root: here('.'),
  base: './',
  logLevel: 'warn',
  resolve: {
    alias: [
      { find: /^hetmem$/, replacement: here('../src/index.ts') },
      { find: /^node:fs$/, replacement: stub('fs') },
      { find: /^node:module$/, replacement: stub('module') },
      { find: /^node:path$/, replacement: stub('path') },
      { find: /^node:url$/, replacement: stub('url') },
      { find: /^node:worker_threads$/, replacement: stub('worker_threads') },
      { find: /^node:assert\/strict$/, replacement: stub('assert') },
    ],
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  worker: { format: 'es' },
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
