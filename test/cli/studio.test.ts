import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hetmem, tempFile } from './helpers.ts';

describe('hetmem studio: bad input', () => {
  it('an invalid scenario is one FILE:LINE:COL line and exit 2, before anything is served', () => {
    const file = tempFile('bad.yaml', 'version: 1\nprocesses: [p]\nsteps:\n  - { op: mmapp, proc: p }\n');
    const r = hetmem(['studio', file, '--no-open', '--port', '0']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `${file}:4:11: unknown op 'mmapp' (did you mean 'mmap'?)\n`);
    assert.equal(r.stdout, '');
  });

  it('a bad --port or --host is a usage error', () => {
    for (const [flag, value, why] of [
      ['--port', '70000', /--port takes an integer 0\.\.65535, got '70000'/],
      ['--port', 'http', /--port takes an integer 0\.\.65535/],
      ['--host', 'a b', /--host takes a host name or address/],
    ] as const) {
      const r = hetmem(['studio', '--no-open', flag, value]);
      assert.equal(r.status, 2, `${flag} ${value}`);
      assert.match(r.stderr, why);
    }
  });

  it('a missing file is reported with its name, exit 2', () => {
    const r = hetmem(['studio', '/nonexistent/x.yaml', '--no-open']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^\/nonexistent\/x\.yaml:1:1: /);
  });
});
