#!/usr/bin/env node
// Collects test/**/*.test.ts (Node 20's test runner does not expand globs) and runs them under tsx.
// Arguments are substrings; when given, only files whose path contains one of them run.
// Without arguments, everything except test/package/.
// NODE_OPTIONS gets --conditions=hetmem-source, so 'hetmem' (the package self-reference the
// examples' drivers use) and every `hetmem` command a test spawns run the sources, never dist/.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

// test/package/ (pack, install, run from outside) is slow: it runs only when named
// (`npm run test:package`, CI).
const files = collect(join(root, 'test'), []).filter((f) =>
  filters.length === 0 ? !f.startsWith('test/package/') : filters.some((s) => f.includes(s)),
);
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const reporter = process.env.CI ? 'spec' : 'dot';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-reporter=${reporter}`, '--test-concurrency=2', ...files],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --conditions=hetmem-source`.trim(),
    },
  },
);
process.exit(result.status ?? 1);
