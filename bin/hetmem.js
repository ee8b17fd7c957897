#!/usr/bin/env node
// The `hetmem` command. It runs the compiled CLI in dist/ (built by `npm run build`, which `npm ci`
// and `npm pack` run through `prepare`). Started with `--conditions=hetmem-source` (the test suite
// sets it in NODE_OPTIONS) it runs the TypeScript sources through tsx instead.
const args = process.argv.slice(2);
const url = import.meta.resolve('#cli');
const typescript = url.endsWith('.ts');
if (typescript) (await import('tsx/esm/api')).register();

try {
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    // The common probe answers without loading the command line parser.
    const { VERSION_STRING } = await import(new URL(`../version.${typescript ? 'ts' : 'js'}`, url).href);
    process.stdout.write(`${VERSION_STRING}\n`);
  } else await import(url);
} catch (e) {
  // dist/ (or a file of it) missing: a clone in which `npm ci` or `npm run build` has not run.
  const missing = e?.code === 'ERR_MODULE_NOT_FOUND' ? String(e.url ?? '') : '';
  if (!missing.startsWith(new URL('..', url).href)) throw e;
  process.stderr.write(
    `hetmem: ${new URL(missing).pathname} is missing: run \`npm run build\` in the hetmem package\n`,
  );
  process.exitCode = 3;
}
