/** `hetmem --version`: the package version and the kernel release the model follows. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HETMEM_VERSION, KERNEL_RELEASE, VERSION_STRING } from 'hetmem';
import { hetmem, ROOT } from './helpers.ts';

const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('hetmem --version', () => {
  it('the version constant is package.json version', () => {
    assert.equal(HETMEM_VERSION, PKG.version);
    assert.equal(KERNEL_RELEASE, 'Linux 6.18');
    assert.equal(VERSION_STRING, `hetmem ${PKG.version} (models Linux 6.18)`);
  });

  for (const flag of ['--version', '-V']) {
    it(`${flag} prints "hetmem VERSION (models Linux 6.18)" and exits 0`, () => {
      const r = hetmem([flag]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `hetmem ${PKG.version} (models Linux 6.18)\n`);
      assert.equal(r.stderr, '');
    });
  }

  it('--help still names the commands', () => {
    const r = hetmem(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /explore/);
  });
});
