/** Every kind of malformed scenario file: exactly one `FILE:LINE:COL: message` line and exit 2. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hetmem, tempFile } from './helpers.ts';

const MMAP =
  '{ op: mmap, proc: p, length: 4KiB, prot: [read, write], flags: [private, anonymous], save: buf }';

const CASES: { kind: string; name: string; text: string; line: number; col: number; message: RegExp }[] = [
  {
    kind: 'bad YAML',
    name: 'bad.yaml',
    text: `version: 1\nprocesses: [p]\nsteps:\n  - { op: mmap, proc: p\n`,
    line: 5,
    col: 1,
    message: /invalid YAML/,
  },
  {
    kind: 'bad JSON',
    name: 'bad.json',
    text: `{ "version": 1,\n  "steps": [ { "op": "mmap", } ,, ] }\n`,
    line: 2,
    col: 0,
    message: /invalid JSON/,
  },
  {
    kind: 'unknown op',
    name: 'op.yaml',
    text: `version: 1\nprocesses: [p]\nsteps:\n  - ${MMAP}\n  - { op: munmapp, proc: p, addr: buf, length: 4KiB }\n`,
    line: 5,
    col: 11,
    message: /unknown op 'munmapp' \(did you mean 'munmap'\?\)/,
  },
  {
    kind: 'wrong field type',
    name: 'type.yaml',
    text: `version: 1\nprocesses: [p]\nsteps:\n  - op: mmap\n    proc: p\n    length: [1, 2]\n    prot: [read]\n    flags: [private, anonymous]\n`,
    line: 6,
    col: 13,
    message: /field 'length'/,
  },
  {
    kind: 'unknown field',
    name: 'field.yaml',
    text: `version: 1\nprocesses: [p]\nsteps:\n  - ${MMAP}\n  - { op: munmap, proc: p, addr: buf, length: 4KiB, lenght: 1 }\n`,
    line: 5,
    col: 53,
    message: /unknown field 'lenght' in munmap step/,
  },
  {
    kind: 'unbound name',
    name: 'name.yaml',
    text: `version: 1\nprocesses: [p]\nsteps:\n  - ${MMAP}\n  - op: munmap\n    proc: p\n    addr: bfu+4KiB\n    length: 4KiB\n`,
    line: 7,
    col: 11,
    message: /unbound name 'bfu' \(did you mean 'buf'\?\)/,
  },
  {
    kind: 'missing field',
    name: 'missing.yaml',
    text: `version: 1\nprocesses: [p]\nsteps:\n  - ${MMAP}\n  - op: munmap\n    proc: p\n    addr: buf\n`,
    line: 5,
    col: 5,
    message: /missing field 'length' in munmap step/,
  },
  {
    kind: 'missing version',
    name: 'version.yaml',
    text: `processes: [p]\nsteps:\n  - ${MMAP}\n`,
    line: 1,
    col: 1,
    message: /version: 1 is required/,
  },
  {
    kind: 'unknown process',
    name: 'proc.yaml',
    text: `version: 1\nprocesses: [p]\nsteps:\n  - { op: exit, proc: q }\n`,
    line: 4,
    col: 23,
    message: /unknown process 'q'/,
  },
];

describe('malformed scenario files', () => {
  for (const c of CASES) {
    it(`${c.kind}: one line with line and column, exit 2`, () => {
      const file = tempFile(c.name, c.text);
      const r = hetmem(['run', file]);
      assert.equal(r.status, 2, r.stderr);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
      const m = /^(.*):(\d+):(\d+): (.*)$/.exec(lines[0]);
      assert.ok(m !== null, lines[0]);
      assert.equal(m[1], file);
      assert.equal(Number(m[2]), c.line, lines[0]);
      if (c.col > 0) assert.equal(Number(m[3]), c.col, lines[0]);
      assert.match(m[4], c.message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(r.stdout, '');
    });
  }

  it('an unreadable file is exit 2 too', () => {
    const r = hetmem(['run', '/nonexistent/x.yaml']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^\/nonexistent\/x\.yaml:1:1: cannot read the file \(ENOENT\)\n$/);
  });

  it('usage errors exit 2', () => {
    assert.equal(hetmem(['frobnicate']).status, 2);
    assert.equal(hetmem(['explore']).status, 2);
    assert.equal(hetmem(['conformance', '--suite', 'nope']).status, 2);
  });
});
