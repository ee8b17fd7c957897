/**
 * The exercise questions (web/src/questions.ts) against the model: each kind of question is
 * derived from what the step did, and the model's own answers check as right.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openSession, type Session, type StudioState } from '../../src/scenario/studio.ts';
import { type Answer, checkAnswers, type Question, questionsFor } from '../../web/src/questions.ts';

const EX = new URL('../../examples/', import.meta.url).pathname;

/** The questions about step `op` (its `nth` occurrence), and the states around it. */
function ask(file: string, op: string, nth = 0): { qs: Question[]; before: StudioState; after: StudioState } {
  const s: Session = openSession(readFileSync(`${EX}${file}`, 'utf8'), `${EX}${file}`);
  const units = s.outline();
  const at = units.map((u, i) => (u.label === op ? i : -1)).filter((i) => i >= 0)[nth];
  assert.ok(at !== undefined, `${file} has a step ${op}`);
  s.goto(at);
  const before = s.state();
  s.goto(at + 1);
  const after = s.state();
  return { qs: questionsFor(units[at], before, after), before, after };
}

const byId = (qs: Question[], prefix: string): Question => {
  const q = qs.find((x) => x.id.startsWith(prefix));
  assert.ok(q !== undefined, `a question ${prefix} among ${qs.map((x) => x.id).join(' ')}`);
  return q;
};

/** The model's own answers. */
const modelAnswers = (qs: Question[]): Record<string, Answer> =>
  Object.fromEntries(qs.map((q) => [q.id, q.kind === 'pages' ? q.expected : q.expected[0]]));

describe('exercise questions', () => {
  it('after mprotect: which pages the device still maps, its entry, the CPU entry, the notifier seq', () => {
    const { qs, before } = ask('dmirror-mirror.yaml', 'mprotect');
    const pages = byId(qs, 'dev:');
    assert.equal(pages.kind, 'pages');
    assert.equal(pages.options.length, 8);
    // mprotect makes the first half read-only: the mirror drops those entries, keeps the rest.
    assert.deepEqual(pages.expected, pages.options.slice(5));
    assert.equal(byId(qs, 'deventry:').expected[0], 'none');
    assert.equal(byId(qs, 'cpu:').expected[0], 'present');
    const seq = byId(qs, 'seq:');
    const old = before.snapshot.notifiers[0].intervals[0].seq;
    assert.equal(Number(seq.expected[0]), old + 2, 'one invalidate start/end moves the seq by 2');
    assert.ok(checkAnswers(qs, modelAnswers(qs)).every((c) => c.ok));
    const wrong = checkAnswers(qs, { ...modelAnswers(qs), [pages.id]: pages.options });
    assert.equal(wrong.find((c) => c.id === pages.id)?.ok, false);
  });

  it('after fork: the mapcount and refcount of a frame, and the parent entry losing write', () => {
    const { qs } = ask('fork-cow.yaml', 'fork');
    assert.equal(byId(qs, 'mapcount:').expected[0], '2');
    assert.equal(byId(qs, 'refcount:').expected[0], '2');
    assert.equal(byId(qs, 'cpu:').expected[0], 'present');
    assert.equal(byId(qs, 'ret').kind, 'value');
    const checks = checkAnswers(qs, { ...modelAnswers(qs), [byId(qs, 'mapcount:').id]: '1' });
    assert.deepEqual(
      checks.map((c) => c.ok),
      qs.map((q) => !q.id.startsWith('mapcount:')),
    );
  });

  it('what a snapshot returns after fork, written with names in any order', () => {
    const { qs, after } = ask('dmirror-fork-cow.yaml', 'HMM_DMIRROR_SNAPSHOT');
    const q = byId(qs, 'bytes');
    assert.equal(q.kind, 'bytes');
    assert.deepEqual(after.report?.bytes, [0x21, 0x21, 0x21, 0x21]);
    for (const given of [
      'DEV_PRIVATE_LOCAL|READ*4',
      'READ|DEV_PRIVATE_LOCAL*4',
      '[read|dev_private_local, READ|DEV_PRIVATE_LOCAL*3]',
    ]) {
      assert.ok(checkAnswers([q], { bytes: given })[0].ok, given);
    }
    for (const given of ['DEV_PRIVATE_LOCAL|WRITE*4', 'READ*4', 'NOPE', '']) {
      assert.ok(!checkAnswers([q], { bytes: given })[0].ok, given);
    }
  });

  it('a failing step asks for its errno, with or without the minus sign', () => {
    const { qs } = ask('dmirror-mirror.yaml', 'HMM_DMIRROR_WRITE', 1);
    const ret = byId(qs, 'ret');
    assert.equal(ret.expected[0], 'EPERM');
    assert.ok(checkAnswers([ret], { ret: '-eperm' })[0].ok);
    assert.ok(!checkAnswers([ret], { ret: '0' })[0].ok);
  });

  it('an interval notifier over the whole address space shows its last byte exactly', () => {
    const { after } = ask('dmirror-mirror.yaml', 'mprotect');
    assert.equal(after.snapshot.notifiers[0].intervals[0].last, 0xffffffffffffffffn);
  });
});
