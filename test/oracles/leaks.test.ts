import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mmgetNotZero, mmput } from '../../src/kernel/exit.ts';
import { mmdrop, mmgrab } from '../../src/kernel/mm/mmu_notifier.ts';
import * as mman from '../../src/kernel/mm/mman.ts';
import * as syscalls from '../../src/kernel/syscalls.ts';
import { System } from '../../src/kernel/system.ts';
import { checkTeardown } from '../../src/oracles/index.ts';
import { Env } from '../../src/conformance/iommufd_harness.ts';
import {
  Device,
  deviceOpen,
  deviceRegister,
  deviceUnregister,
  getDevice,
  iommufdAccessAttach,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessDetach,
  iommufdCtxFromFd,
  putDevice,
  type DeviceDriver,
  type IommufdAccess,
  type KGen,
} from '../../src/index.ts';

function sys(): System {
  return new System({ ram: 16 * 1024 * 1024, swap: 0 });
}

/** A driver that takes an mm reference when a device is bound and forgets it on unbind. */
function bindDevice(mm: Parameters<typeof mmgetNotZero>[0]): boolean {
  return mmgetNotZero(mm);
}

describe('leak oracle', () => {
  it('an mmget() without mmput() no longer hides teardown: it is reported with where it was taken', () => {
    const s = sys();
    const p = s.createProcess('p');
    const mm = p.mm!;
    assert.ok(bindDevice(mm));
    assert.equal(s.exit(p), 0);
    const v = checkTeardown(s);
    assert.ok(v.length > 0, 'silent');
    assert.equal(v[0].oracle, 'leak');
    assert.match(v[0].message, /mm \d+ \(p\): mm_users is 1 after every process exited/);
    assert.match(v[0].message, /taken at bindDevice \(leaks\.test\.ts:\d+\)/);
  });

  it('an mmgrab() without mmdrop() leaks the mm_struct', () => {
    const s = sys();
    const p = s.createProcess('p');
    mmgrab(p.mm!);
    assert.equal(s.exit(p), 0);
    const v = checkTeardown(s);
    assert.equal(v.length, 1, JSON.stringify(v));
    assert.equal(v[0].oracle, 'leak');
    assert.match(v[0].message, /mm_count is 1 .*taken at .*leaks\.test\.ts/);
  });

  it('balanced references leave nothing', () => {
    const s = sys();
    const p = s.createProcess('p');
    const mm = p.mm!;
    assert.ok(mmgetNotZero(mm));
    mmgrab(mm);
    s.sched.run('put', mmput(mm));
    mmdrop(mm);
    assert.equal(s.exit(p), 0);
    assert.deepEqual(checkTeardown(s), []);
    assert.equal(s.mmStructs.size, 0);
  });
});

describe('leak oracle: files, devices and iommufd objects', () => {
  const accessOps = {
    needsPinPages: true,
    *unmap(): KGen {
      yield* [];
    },
  };

  /** An IOAS with an access attached, as a VFIO mdev driver makes one. */
  function withAccess(): { env: Env; access: IommufdAccess } {
    const env = new Env({ ram: 64 * 1024 * 1024, bufferSize: 4 * 4096 });
    const ioas = env.ioasAlloc();
    const ictx = iommufdCtxFromFd(env.sys, env.fd);
    assert.ok(ictx !== null);
    const access = iommufdAccessCreate(ictx, accessOps, null);
    assert.ok(typeof access !== 'number');
    assert.equal(env.sys.run('attach', iommufdAccessAttach(access, ioas)), 0);
    return { env, access };
  }

  function closeAll(env: Env): void {
    for (const fd of [...env.sys.files.keys()]) env.sys.close(fd);
    for (const p of [...env.sys.processes.values()]) env.sys.exit(p);
  }

  it('an access never destroyed leaks the access and the iommufd file it holds, named by where they were taken', () => {
    const { env } = withAccess();
    closeAll(env);
    const v = checkTeardown(env.sys).filter((x) => x.oracle === 'leak');
    const file = v.find((x) => x.message.startsWith('file '));
    const access = v.find((x) => /^iommufd access \d+/.test(x.message));
    const ioas = v.find((x) => /^iommufd ioas \d+/.test(x.message));
    assert.ok(file !== undefined && access !== undefined && ioas !== undefined, JSON.stringify(v));
    assert.match(
      file.message,
      /\(iommufd\): 1 reference\(s\) after every process exited .*taken at iommufd_access_create called from withAccess \(leaks\.test\.ts:\d+\)/,
    );
    assert.match(
      access.message,
      /alive with 2 user\(s\) .*taken at iommufd_access_create called from withAccess/,
    );
    assert.match(ioas.message, /taken at iommufd_access_attach called from/);
  });

  it('an access destroyed before the close leaves nothing', () => {
    const { env, access } = withAccess();
    env.sys.run('detach', iommufdAccessDetach(access));
    env.sys.run('destroy', iommufdAccessDestroy(access));
    closeAll(env);
    assert.deepEqual(checkTeardown(env.sys), []);
  });

  it('the iommufd file closed first is released when the driver destroys its access', () => {
    const { env, access } = withAccess();
    closeAll(env);
    env.sys.run('destroy', iommufdAccessDestroy(access));
    assert.deepEqual(checkTeardown(env.sys), []);
  });

  const nop: DeviceDriver = {
    name: 'nop',
    *probe() {
      yield* [];
      return {};
    },
  };

  it('a removed device with a get_device() never put is a leak naming the get', () => {
    const s = sys();
    const dev = s.run('probe', deviceRegister(s, 'dev0', nop));
    assert.ok(dev instanceof Device);
    getDevice(dev);
    s.run('remove', deviceUnregister(dev));
    const v = checkTeardown(s);
    assert.equal(v.length, 1, JSON.stringify(v));
    assert.equal(v[0].oracle, 'leak');
    assert.match(
      v[0].message,
      /^device dev0: removed, with 1 reference\(s\) .*taken at get_device called from .*leaks\.test\.ts/,
    );
  });

  it('a device whose references are all put, and a device still bound, leave nothing', () => {
    const s = sys();
    const dev = s.run('probe', deviceRegister(s, 'dev0', nop));
    const bound = s.run('probe', deviceRegister(s, 'dev1', nop));
    assert.ok(dev instanceof Device && bound instanceof Device);
    getDevice(dev);
    getDevice(bound);
    const p = s.createProcess('p');
    const fd = s.run('open', deviceOpen(s, 'dev0', p));
    assert.ok(fd >= 0);
    s.run('remove', deviceUnregister(dev));
    putDevice(dev);
    assert.equal(s.close(fd), 0);
    assert.equal(s.exit(p), 0);
    assert.deepEqual(checkTeardown(s), []);
  });

  it('a device file still open is not a leak until it is closed', () => {
    const s = sys();
    assert.ok(s.run('probe', deviceRegister(s, 'dev0', nop)) instanceof Device);
    const p = s.createProcess('p');
    assert.ok(s.run('open', deviceOpen(s, 'dev0', p)) >= 0);
    assert.equal(s.exit(p), 0);
    assert.deepEqual(checkTeardown(s), [], 'not quiescent: a file is open');
  });
});

describe('leak oracle: file references of mappings', () => {
  const PAGE = 4096;

  /**
   * p maps a 3-page memfd shared, unmaps its middle page (a split: two VMAs, two references on
   * the file), forks c (whose VMAs take theirs), closes the fd, and exits with c. With `leakMm`
   * a driver took an mm_users reference on p's mm and never put it, so p's VMAs stay.
   */
  function mappedMemfd(leakMm: boolean): System {
    const s = sys();
    const p = s.createProcess('p');
    const fd = s.sched.run('memfd', syscalls.sysMemfdCreate(s, 'buf', 0));
    assert.ok(fd >= 0);
    assert.equal(s.sched.run('ftruncate', syscalls.sysFtruncate(s, fd, 3 * PAGE)), 0);
    const addr = s.sched.run(
      'mmap',
      syscalls.sysMmap(s, p, 0, 3 * PAGE, mman.PROT_READ | mman.PROT_WRITE, mman.MAP_SHARED, fd),
    );
    assert.ok(addr > 0);
    assert.equal(s.sched.run('munmap', syscalls.sysMunmap(s, p, addr + PAGE, PAGE)), 0);
    const { child } = s.sched.run('fork', syscalls.sysFork(s, p, 'c'));
    assert.ok(child !== null);
    assert.equal(s.sched.run('close', syscalls.sysClose(s, fd)), 0);
    if (leakMm) assert.ok(mmgetNotZero(p.mm!));
    assert.equal(s.exit(child), 0);
    assert.equal(s.exit(p), 0);
    return s;
  }

  it('a mapping left in a leaked mm names where its file references were taken', () => {
    const v = checkTeardown(mappedMemfd(true)).filter((x) => x.oracle === 'leak');
    const file = v.find((x) => x.message.startsWith('file '));
    assert.ok(file !== undefined, JSON.stringify(v));
    assert.match(file.message, /: 2 reference\(s\) after every process exited/);
    assert.match(file.message, /taken at __split_vma called from .*; mmap_region called from /);
    // The child's references went with its VMAs at its exit.
    assert.doesNotMatch(file.message, /dup_mmap/);
    assert.ok(v.some((x) => /mm \d+ \(p\): mm_users is 1/.test(x.message)));
  });

  it('the same mappings with every reference put leave nothing', () => {
    assert.deepEqual(checkTeardown(mappedMemfd(false)), []);
  });
});
