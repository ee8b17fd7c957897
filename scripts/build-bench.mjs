#!/usr/bin/env node
// Compiles the benchmarks (bench/*.ts) to dist-bench/ so that `hetmem bench` measures the model
// as users run it: the compiled package in dist/, not the TypeScript sources through a loader.
// Each file is transpiled on its own (the type check is `npm run typecheck`'s), and its imports
// of the sources (`../src/X.ts`) are pointed at the compiled package (`../dist/X.js`); dist-bench/
// mirrors bench/, so paths relative to the repository (`../examples/`) stay right. Run by
// `npm run build`; a clone without bench/ (the installed package) skips it.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'bench');
const out = join(root, 'dist-bench');

/** The sources' path in a string literal becomes the compiled package's; `.ts` becomes `.js`. */
function retarget(js) {
  return js.replace(/(['"`])((?:\.\.?\/)+)([^'"`\n]*?)\.ts\1/g, (_, q, up, rest) => {
    const spec = rest.startsWith('src/') ? `${up}dist/${rest.slice(4)}` : `${up}${rest}`;
    return `${q}${spec}.js${q}`;
  });
}

function collect(dir, files) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'build') collect(path, files);
    } else if (name.endsWith('.ts')) files.push(path);
  }
  return files;
}

if (existsSync(src)) {
  rmSync(out, { recursive: true, force: true });
  for (const file of collect(src, [])) {
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: {
        target: ts.ScriptTarget.ES2023,
        module: ts.ModuleKind.ESNext,
        verbatimModuleSyntax: true,
      },
    });
    const dest = join(out, relative(src, file)).replace(/\.ts$/, '.js');
    mkdirSync(join(dest, '..'), { recursive: true });
    writeFileSync(dest, retarget(outputText));
  }
}
