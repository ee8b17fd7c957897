/**
 * The plain-function forms (src/**\/*.plain.ts) are derived from their generator source by
 * scripts/derive-plain.mjs and committed; they must be what the script derives from the source
 * as it is now.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('every derived plain form is up to date with its source', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, ['scripts/derive-plain.mjs', '--check'], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
});
