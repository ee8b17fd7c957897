import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeOutcome } from '../../src/scenario/outcome.ts';
import { parseScenarioText, ScenarioError } from '../../src/scenario/parse.ts';

const THREADS = [
  'version: 1',
  'processes: [p]',
  'threads:',
  '  a: [{ op: mmap, proc: p, length: 4KiB, prot: [read], flags: [private, anonymous] }]',
];

function errorOf(lines: string[]): ScenarioError {
  try {
    parseScenarioText(lines.join('\n'), 'x.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  assert.fail('expected a ScenarioError');
}

describe('declared explore outcomes', () => {
  it('clean matches only no violation; nothing declared is held to clean', () => {
    assert.equal(judgeOutcome({ expect: 'clean' }, null).matched, true);
    assert.equal(judgeOutcome({ expect: 'clean' }, { oracle: 'locks' }).matched, false);
    assert.equal(judgeOutcome(undefined, null).matched, true);
    assert.equal(judgeOutcome(undefined, null).declared, null);
    assert.equal(judgeOutcome(undefined, { oracle: 'frame-refs' }).matched, false);
  });

  it('found matches a violation of the named oracle, or of any oracle but setup', () => {
    assert.equal(
      judgeOutcome({ expect: 'found', oracle: 'frame-refs' }, { oracle: 'frame-refs' }).matched,
      true,
    );
    const other = judgeOutcome({ expect: 'found', oracle: 'frame-refs' }, { oracle: 'expect' });
    assert.equal(other.matched, false);
    assert.match(other.reason, /but the violation is expect/);
    assert.equal(judgeOutcome({ expect: 'found', oracle: 'locks' }, null).matched, false);
    assert.equal(judgeOutcome({ expect: 'found' }, { oracle: 'deadlock' }).matched, true);
    assert.equal(judgeOutcome({ expect: 'found' }, { oracle: 'setup' }).matched, false);
  });

  it('parses a declaration', () => {
    const p = parseScenarioText(
      [...THREADS, 'explore: { expect: found, oracle: frame-refs }'].join('\n'),
      'x.yaml',
    );
    assert.deepEqual(p.scenario.explore, { expect: 'found', oracle: 'frame-refs' });
  });

  it('refuses a misspelt oracle, naming the one meant', () => {
    const e = errorOf([...THREADS, 'explore: { expect: found, oracle: frame-ref }']);
    assert.equal(e.line, 5);
    assert.match(e.message, /'frame-ref' is not one of .*did you mean 'frame-refs'/);
  });

  it('refuses an outcome that is neither found nor clean', () => {
    const e = errorOf([...THREADS, 'explore: { expect: fail }']);
    assert.match(e.message, /field 'expect': 'fail' is not one of found, clean/);
  });

  it('refuses an oracle on a clean declaration, and a declaration without threads', () => {
    assert.match(
      errorOf([...THREADS, 'explore: { expect: clean, oracle: locks }']).message,
      /'expect: clean' takes none/,
    );
    const e = errorOf([
      'version: 1',
      'processes: [p]',
      'steps: [{ op: exit, proc: p }]',
      'explore: { expect: clean }',
    ]);
    assert.equal(e.line, 4);
    assert.match(e.message, /no 'threads'/);
  });
});
