/**
 * The SDK's mirroring helpers: mirrorOpen() (a file that mirrors its opener's whole address space)
 * and invalidateUnderLock() (the invalidate callback's lock, set_seq, zap, unlock).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Device,
  Errno,
  MmuIntervalNotifier,
  System,
  deviceOpen,
  deviceRegister,
  invalidateUnderLock,
  mirrorOpen,
  mman,
  syscalls,
  type DeviceDriver,
  type DriverMutex,
  type MmuIntervalNotifierOps,
  type Process,
} from '../../../src/index.ts';
import { mmuIntervalReadBegin, mmuIntervalReadRetry } from '../../../src/kernel/mm/mmu_notifier_interval.ts';
import {
  MMU_NOTIFY,
  mmuNotifierRangeInit,
  MMU_NOTIFIER_RANGE_BLOCKABLE,
} from '../../../src/kernel/mm/mmu_notifier_types.ts';
import { TASK_SIZE } from '../../../src/lib/units.ts';

const PAGE = 4096;

class MirrorFile extends MmuIntervalNotifier {
  readonly zapped: [number, number][] = [];
  constructor(readonly lock: DriverMutex) {
    super();
  }
}

const ops: MmuIntervalNotifierOps<MirrorFile> = {
  invalidate: (f, range, curSeq) =>
    invalidateUnderLock(f, f.lock, range, curSeq, (start, end) => {
      f.zapped.push([start, end]);
    }),
};

const driver: DeviceDriver<object, MirrorFile> = {
  name: 'mirrortest',
  *probe() {
    yield* [];
    return {};
  },
  open: (dev, proc) =>
    mirrorOpen(dev, proc, {
      lock: { name: 'pt_lock', lockClass: 'mirrortest.pt_lock', guards: 'the zapped list' },
      create: (lock) => new MirrorFile(lock),
      ops,
    }),
};

function setup(): { sys: System; dev: Device<object, MirrorFile>; p: Process } {
  const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
  const dev = sys.run('probe', deviceRegister(sys, 'mt0', driver, {}));
  assert.ok(dev instanceof Device);
  return { sys, dev, p: sys.createProcess('p') };
}

describe('driver SDK: mirrorOpen and invalidateUnderLock', () => {
  it('open declares the file lock and mirrors [0, TASK_SIZE) of the opener; munmap zaps under it', () => {
    const { sys, dev, p } = setup();
    assert.ok(sys.run('open', deviceOpen(sys, 'mt0', p)) > 0);
    const [file] = [...dev.files];
    const f = file.priv;
    assert.equal(f.mm, p.mm);
    assert.equal(f.start, 0);
    assert.equal(f.last, TASK_SIZE - 1);
    assert.deepEqual(
      dev.locks.map((l) => [l.name, l.heldEntry.lockClass]),
      [['mt0.pt_lock', 'mirrortest.pt_lock']],
    );
    const addr = sys.run(
      'mmap',
      syscalls.sysMmap(
        sys,
        p,
        0,
        4 * PAGE,
        mman.PROT_READ | mman.PROT_WRITE,
        mman.MAP_PRIVATE | mman.MAP_ANONYMOUS,
      ),
    );
    assert.ok(addr > 0);
    const seq = sys.run('read_begin', mmuIntervalReadBegin(f));
    assert.equal(sys.run('munmap', syscalls.sysMunmap(sys, p, addr, 4 * PAGE)), 0);
    assert.deepEqual(f.zapped, [[addr, addr + 4 * PAGE]]);
    assert.equal(mmuIntervalReadRetry(f, seq), true, 'the invalidation moved the seq on');
    assert.equal(f.lock.owner, null, 'the lock is released');
  });

  it('a process with no mm left is -ESRCH, and nothing is registered', () => {
    const { sys, dev } = setup();
    const gone = { mm: null } as unknown as Process;
    const ret = sys.run(
      'open',
      mirrorOpen(dev, gone, {
        lock: { name: 'x', lockClass: 'x', guards: 'x' },
        create: (lock) => new MirrorFile(lock),
        ops,
      }),
    );
    assert.equal(ret, -Errno.ESRCH);
    assert.equal(dev.locks.length, 0);
  });

  it('a range that may not block only trylocks: contended, it returns false and leaves the seq', () => {
    const { sys, dev, p } = setup();
    sys.run('open', deviceOpen(sys, 'mt0', p));
    const f = [...dev.files][0].priv;
    const mm = p.mm!;
    const seq = f.invalidateSeq;
    const atomic = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, 0, PAGE);
    const contended = sys.run(
      'inv',
      (function* () {
        yield* f.lock.lock();
        const r = yield* invalidateUnderLock(f, f.lock, atomic, seq + 2, () => assert.fail('zapped'));
        yield* f.lock.unlock();
        return r;
      })(),
    );
    assert.equal(contended, false);
    assert.equal(f.invalidateSeq, seq);
    const blockable = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, 0, PAGE);
    assert.equal(
      sys.run(
        'inv',
        invalidateUnderLock(f, f.lock, blockable, seq + 2, (s, e) => f.zapped.push([s, e])),
      ),
      true,
    );
    assert.equal(f.invalidateSeq, seq + 2);
    assert.deepEqual(f.zapped, [[0, PAGE]]);
  });
});
