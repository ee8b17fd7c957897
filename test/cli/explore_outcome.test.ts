/** `hetmem explore` against a scenario's declared outcome: exit 0 when it matches, 1 when not. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { hetmem, ROOT, tempFile } from './helpers.ts';

interface ExploreJson {
  violation: null | { oracle: string };
  declared: null | { expect: string; oracle?: string };
  matched: boolean;
}

/** examples/races/NAME.yaml with its declaration replaced (or removed), in a temporary directory. */
function withDeclaration(name: string, declaration: string | null): string {
  const text = readFileSync(`${ROOT}examples/races/${name}.yaml`, 'utf8')
    .replace(/^explore: .*\n/m, declaration === null ? '' : `explore: ${declaration}\n`)
    .replace(/module: drivers\//, `module: ${ROOT}examples/races/drivers/`);
  return tempFile(`${name}.yaml`, text);
}

function explore(file: string, json = true): { status: number | null; doc: ExploreJson; stdout: string } {
  const r = hetmem(['explore', file, ...(json ? ['--json'] : [])]);
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  assert.equal(r.stderr, '');
  return {
    status: r.status,
    doc: json ? (JSON.parse(r.stdout) as ExploreJson) : ({} as ExploreJson),
    stdout: r.stdout,
  };
}

describe('hetmem explore: declared outcomes', () => {
  it('found with the oracle that fires: exit 0, declared and matched in the JSON', () => {
    const r = explore(withDeclaration('no-read-retry', '{ expect: found, oracle: frame-refs }'));
    assert.equal(r.status, 0);
    assert.equal(r.doc.violation?.oracle, 'frame-refs');
    assert.deepEqual(r.doc.declared, { expect: 'found', oracle: 'frame-refs' });
    assert.equal(r.doc.matched, true);
  });

  it('found, but another oracle fires: exit 1', () => {
    const r = explore(withDeclaration('no-read-retry', '{ expect: found, oracle: locks }'));
    assert.equal(r.status, 1);
    assert.equal(r.doc.matched, false);
  });

  it('clean, but a violation is found: exit 1', () => {
    const r = explore(withDeclaration('no-read-retry', '{ expect: clean }'));
    assert.equal(r.status, 1);
    assert.equal(r.doc.violation?.oracle, 'frame-refs');
    assert.equal(r.doc.matched, false);
  });

  it('nothing declared: a violation is exit 1, and declared is null', () => {
    const r = explore(withDeclaration('no-read-retry', null));
    assert.equal(r.status, 1);
    assert.equal(r.doc.declared, null);
    assert.equal(r.doc.matched, false);
  });

  it('found, but the search is clean: exit 1, and the text says why', () => {
    const clean = withDeclaration('read-munmap', '{ expect: found, oracle: frame-refs }');
    const r = hetmem(['explore', clean, '--budget', '20']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /no violation/);
    assert.match(r.stdout, /outcome: declared found \(frame-refs\), but no violation was found/);
  });

  it('the text output states a matched declaration', () => {
    const r = explore(withDeclaration('oom-reap-sleeping-driver', '{ expect: found, oracle: locks }'), false);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /violation \(locks\)/);
    assert.match(r.stdout, /outcome: found \(locks\), as declared/);
  });
});
