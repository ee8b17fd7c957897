import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno, System, assertOracles, mman } from '../../src/index.ts';

test('the README library example behaves as the README says', () => {
  const sys = new System({ ram: 256 * 2 ** 20 });
  const p = sys.createProcess('p');
  const buf = sys.mmap(
    p,
    0,
    1 << 20,
    mman.PROT_READ | mman.PROT_WRITE,
    mman.MAP_PRIVATE | mman.MAP_ANONYMOUS,
  );
  assert.ok(buf > 0);
  assert.equal(sys.write(p, buf, new Uint8Array([1, 2, 3, 4])), 4);
  const { child } = sys.fork(p, 'child');
  assert.ok(child !== null);
  assert.equal(sys.write(child, buf, new Uint8Array([9])), 1);
  assert.equal(sys.read(p, buf, 1).data[0], 1);
  assert.equal(sys.read(child, buf, 1).data[0], 9);
  assert.equal(sys.munmap(p, buf + 1, 4096), -Errno.EINVAL);
  sys.exit(child);
  sys.exit(p);
  assertOracles(sys, { teardown: true });
});
