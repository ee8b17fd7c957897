#!/usr/bin/env node
// Compiles src/ to dist/ (JavaScript and declarations) with tsconfig.build.json, after removing the
// previous dist/ so no file deleted from src/ lingers in the package. Run by `npm run build` and,
// through `prepare`, by `npm ci`, `npm install` in a clone and `npm pack`. Then the benchmarks
// (scripts/build-bench.mjs).
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
// The benchmarks, compiled against dist/ (a clone only: the package has no bench/).
await import('./build-bench.mjs');
