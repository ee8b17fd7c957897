/**
 * The fuzz runner's save of a finding (reproducer()): the file keeps every name its steps bind,
 * expects each step's errno as the run saw it, and replays as the run went, a step that uses
 * what a failed step would have bound included (it fails; the file is not refused).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { reproducer } from '../../src/fuzz/engine.ts';
import { type Finding, runProgram } from '../../src/fuzz/execute.ts';
import type { Program, Step } from '../../src/fuzz/generate.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { hetmem } from '../cli/helpers.ts';

/** A private anonymous mmap by `proc` whose address is saved as `save`. */
const anonMap = (proc: string, length: number, save: string): Step => ({
  op: 'mmap',
  proc,
  length,
  prot: ['read', 'write'],
  flags: ['private', 'anonymous'],
  save,
});

const program: Program = {
  system: { ram: '8MiB', swap: 0 },
  processes: ['p', 'q'],
  steps: [
    anonMap('p', 8192, 'b0'),
    anonMap('q', 0, 'b1'),
    { op: 'cpu_write', proc: 'p', addr: 'b0', length: 8192, data: { fill: 7 } },
    { op: 'exit', proc: 'q' },
    { op: 'fork', proc: 'q', child: 'c2' },
    { op: 'cpu_read', proc: 'c2', addr: 'b0', length: 4096 },
    { op: 'munmap', proc: 'p', addr: 'b1', length: 4096 },
    { op: 'cpu_read', proc: 'p', addr: 'b0', length: 4096 },
  ],
};

describe("the fuzz runner's save of a finding", () => {
  const finding: Finding = { kind: 'violation', oracle: 'page-counts', message: 'm', step: 7 };
  const doc = reproducer(program, finding, 1, 0);
  const steps = doc.steps as Step[];

  it('keeps every step up to the finding with the names it binds, and adds a check', () => {
    assert.deepEqual(
      steps.slice(0, 8).map((s) => [s.op, s.save ?? s.child ?? null]),
      program.steps.map((s) => [s.op, s.save ?? s.child ?? null]),
    );
    assert.deepEqual(steps[8], { op: 'check' });
  });

  it('expects the errnos the run saw: the empty mmap and the fork of an exited process', () => {
    assert.deepEqual(steps[1].expect, { errno: 'EINVAL' });
    assert.deepEqual(steps[4].expect, { errno: 'ESRCH' });
    assert.equal(steps[0].expect, undefined);
  });

  it('is a valid file that replays as the run went', () => {
    const text = stringify(doc, { lineWidth: 0 });
    assert.doesNotThrow(() => parseScenarioText(text, 'finding.yaml'));
    const run = runProgram({ ...program, steps }, 1);
    assert.equal(run.rejected, null, 'a step using a name a failed step did not bind is not a usage error');
    assert.deepEqual(run.errnos.slice(0, 8), runProgram(program, 1).errnos);
    // `hetmem run`: the two steps that use what the failed steps would have bound fail (exit 1),
    // the file is not refused (exit 2).
    const file = join(mkdtempSync(join(tmpdir(), 'hetmem-finding-')), 'finding.yaml');
    writeFileSync(file, text);
    const r = hetmem(['run', file]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /process 'c2' does not exist: the fork that creates it failed/);
    assert.match(r.stdout, /unbound name 'b1'/);
    assert.match(r.stdout, /FAILED: 2 step\(s\)/);
  });
});
