import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno } from '../../../src/kernel/errno.ts';
import { MAP_SHARED, MAP_ANONYMOUS } from '../../../src/kernel/mm/mman.ts';
import { PAGE, mapOk, pattern, readOk, setup, teardown, writeOk } from './mm_helpers.ts';

test('the OOM reaper frees private memory, keeps shared memory, and later anonymous faults get SIGBUS', () => {
  const { sys, p } = setup();
  const priv = mapOk(sys, p, 4 * PAGE);
  const shared = mapOk(sys, p, 2 * PAGE, MAP_SHARED | MAP_ANONYMOUS);
  writeOk(sys, p, priv, pattern(1, 4 * PAGE));
  writeOk(sys, p, shared, pattern(2, 2 * PAGE));
  const before = sys.stats(p).rss_anon;
  assert.equal(before, 4 * PAGE);
  assert.equal(sys.oomReap(p), 1, 'only the private VMA is reaped');
  assert.equal(sys.stats(p).rss_anon, 0);
  assert.equal(sys.pagemap(p, priv, 4).filter((e) => e.present).length, 0);
  // MMF_UNSTABLE: the reaped memory is not silently replaced by zeros.
  assert.equal(sys.read(p, priv, 8).ret, -Errno.EFAULT);
  assert.equal(sys.write(p, priv, new Uint8Array(8)), -Errno.EFAULT);
  assert.deepEqual(readOk(sys, p, shared, 2 * PAGE), pattern(2, 2 * PAGE), 'shared memory survives');
  sys.exit(p);
  teardown(sys);
});
