#!/usr/bin/env node
// The `hetmem` command. It runs the compiled CLI in dist/ (built by `npm run build`, which `npm ci`
// and `npm pack` run through `prepare`). Started with `--conditions=hetmem-source` (the test suite
// sets it in NODE_OPTIONS) it runs the TypeScript sources through tsx instead.
const url = import.meta.resolve('#cli');
if (url.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
try {
  await import(url);
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes(new URL(url).pathname)) throw e;
  process.stderr.write(
    `hetmem: ${new URL(url).pathname} is missing: run \`npm run build\` in the hetmem package\n`,
  );
  process.exitCode = 3;
}
