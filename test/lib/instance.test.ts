/** One loaded model per realm: a second copy of hetmem's modules refuses to load. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadedInstance } from '../../src/lib/instance.ts';
import { System as SourceSystem } from '../../src/kernel/system.ts';
import * as hetmem from 'hetmem';

const SOURCE = fileURLToPath(new URL('../../src/lib/instance.ts', import.meta.url));

describe('lib/instance', () => {
  it("'hetmem' resolves to the copy the tests already loaded (one instance)", () => {
    assert.equal(loadedInstance(), pathToFileURL(SOURCE).href);
    assert.equal(hetmem.System, SourceSystem);
  });

  it('a second copy, from another path, is refused with both paths and the fix', async () => {
    const other = join(realpathSync(mkdtempSync(join(tmpdir(), 'hetmem-copy-'))), 'lib');
    mkdirSync(other);
    copyFileSync(SOURCE, join(other, 'instance.ts'));
    await assert.rejects(import(pathToFileURL(join(other, 'instance.ts')).href), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'DuplicateInstanceError');
      const { first, second } = e as unknown as { first: string; second: string };
      assert.equal(first, SOURCE);
      assert.equal(second, join(other, 'instance.ts'));
      assert.match(e.message, /two copies of hetmem in one process/);
      assert.match(e.message, /npm dedupe/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    // The first copy stays the loaded one.
    assert.equal(loadedInstance(), pathToFileURL(SOURCE).href);
  });
});
