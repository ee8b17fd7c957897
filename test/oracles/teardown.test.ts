import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkTeardown, quiescent } from '../../src/oracles/index.ts';
import { System } from '../../src/kernel/system.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/kernel/mm/mman.ts';

const PAGE = 4096;
const RW = PROT_READ | PROT_WRITE;

function sys(): System {
  return new System({ ram: 16 * 1024 * 1024, swap: 16 * 1024 * 1024 });
}

describe('teardown oracle', () => {
  it('says nothing while processes or files remain', () => {
    const s = sys();
    const p = s.createProcess('p');
    assert.equal(s.write(p, s.mmap(p, 0, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS), Uint8Array.of(1)), 1);
    assert.equal(quiescent(s), false);
    assert.deepEqual(checkTeardown(s), []);
  });

  it('is clean after every process exits and every file is closed, with shared memory, swap and forks', () => {
    const s = sys();
    const p = s.createProcess('p');
    const fd = s.memfdCreate('m');
    assert.equal(s.pwrite(fd, Uint8Array.of(1, 2, 3), 0), 3);
    const a = s.mmap(p, 0, 4 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    const b = s.mmap(p, 0, PAGE, RW, MAP_SHARED, fd);
    assert.equal(s.write(p, a, new Uint8Array(4 * PAGE).fill(7)), 4 * PAGE);
    assert.equal(s.write(p, b, Uint8Array.of(9)), 1);
    const c = s.fork(p, 'c').child!;
    assert.equal(s.madvise(p, a, 4 * PAGE, 21), 0);
    s.reclaim();
    assert.equal(s.close(fd), 0);
    assert.equal(s.exit(c), 0);
    assert.equal(s.exit(p), 0);
    assert.ok(quiescent(s));
    assert.deepEqual(checkTeardown(s), []);
  });

  it('reports leaked frames, swap slots and page contents', () => {
    const s = sys();
    const pfn = s.phys.alloc(0, null);
    s.phys.write(pfn, 0, Uint8Array.of(1), 0, 1);
    s.swap.alloc();
    const v = checkTeardown(s).map((x) => x.message);
    assert.ok(v.some((m) => m.includes('1 frames still allocated') && m.includes(`${pfn}(ref 1`)));
    assert.ok(v.some((m) => m.includes('1 swap slots still in use')));
    assert.ok(v.some((m) => m.includes('page contents still stored')));
  });

  it('reports locked_vm left on a user', () => {
    const s = sys();
    s.user(1000).lockedVm = 3;
    assert.ok(checkTeardown(s).some((x) => x.message.includes('locked_vm is 3 pages')));
  });
});
