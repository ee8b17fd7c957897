import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserBufferPool } from '../../src/scenario/context.ts';

describe('user buffer pool', () => {
  it('hands out distinct zeroed buffers within a schedule, and the same ones zeroed again after reset()', () => {
    const pool = new UserBufferPool();
    const a = pool.take(16);
    const b = pool.take(16);
    assert.notEqual(a, b);
    assert.equal(a.length, 16);
    a.fill(7);
    b.fill(9);
    pool.reset();
    const a2 = pool.take(16);
    const b2 = pool.take(16);
    assert.equal(a2, a);
    assert.equal(b2, b);
    assert.deepEqual([...a2], new Array(16).fill(0));
    assert.deepEqual([...b2], new Array(16).fill(0));
  });

  it('makes a new buffer when the one in that place has another length', () => {
    const pool = new UserBufferPool();
    const a = pool.take(8);
    pool.reset();
    const c = pool.take(32);
    assert.notEqual(c, a);
    assert.equal(c.length, 32);
    pool.reset();
    assert.equal(pool.take(32), c);
  });
});
