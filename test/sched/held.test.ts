import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { popHeld, pushHeld } from '../../src/sched/locks.ts';
import { Thread } from '../../src/sched/thread.ts';
import type { KGen } from '../../src/sched/types.ts';

function* nothing(): KGen<unknown> {
  return undefined;
}

function names(t: Thread): string[] {
  return t.held.map((h) => h.name);
}

void describe('popHeld', () => {
  void it('takes the last lock off when locks are released in reverse order', () => {
    const t = new Thread(0, 't', nothing());
    pushHeld(t, 'A', 'a');
    pushHeld(t, 'B', 'b');
    popHeld(t, 'b');
    assert.deepEqual(names(t), ['a']);
    popHeld(t, 'a');
    assert.deepEqual(names(t), []);
  });

  void it('takes an earlier lock off and keeps the order of the others', () => {
    const t = new Thread(0, 't', nothing());
    pushHeld(t, 'A', 'a');
    pushHeld(t, 'B', 'b');
    pushHeld(t, 'C', 'c');
    popHeld(t, 'a');
    assert.deepEqual(names(t), ['b', 'c']);
    popHeld(t, 'c');
    assert.deepEqual(names(t), ['b']);
  });

  void it('takes off the latest of two entries of one name, and nothing for a name not held', () => {
    const t = new Thread(0, 't', nothing());
    pushHeld(t, 'A', 'x');
    pushHeld(t, 'B', 'y');
    pushHeld(t, 'C', 'x');
    pushHeld(t, 'D', 'z');
    popHeld(t, 'x');
    assert.deepEqual(
      t.held.map((h) => h.lockClass),
      ['A', 'B', 'D'],
    );
    popHeld(t, 'w');
    assert.deepEqual(names(t), ['x', 'y', 'z']);
    const empty = new Thread(1, 'u', nothing());
    popHeld(empty, 'x');
    assert.deepEqual(names(empty), []);
  });
});
