import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Device,
  DriverError,
  Errno,
  System,
  defineIoctl,
  deviceAnonFile,
  deviceFileOf,
  deviceOpen,
  deviceRegister,
  deviceUnregister,
  type DeviceDriver,
  type KGen,
  mman,
} from '../../../src/index.ts';
import { sysIoctl } from '../../../src/kernel/syscalls.ts';

interface Dev {
  probed: number;
  opens: number;
  log: string[];
}
interface Priv {
  id: number;
}

const ECHO = defineIoctl<
  Priv,
  { value: 'u64'; small: 'u32'; flag: 'bool' },
  { doubled: 'u64'; fileId: 'u32' }
>({
  in: { value: 'u64', small: 'u32', flag: 'bool' },
  out: { doubled: 'u64', fileId: 'u32' },
  *handler(file, arg) {
    yield { kind: 'step', label: 'echo' };
    if (arg.flag) return -Errno.EAGAIN;
    arg.doubled = arg.value * 2;
    arg.fileId = file.priv.id;
    return 0;
  },
});

const testDriver: DeviceDriver<Dev, Priv> = {
  name: 'testdrv',
  *probe(_dev, config) {
    yield { kind: 'step', label: 'probe' };
    if (config.fail === true) return -Errno.ENOMEM;
    return { probed: 1, opens: 0, log: ['probe'] };
  },
  *remove(dev) {
    yield { kind: 'step', label: 'remove' };
    dev.drvdata.log.push('remove');
  },
  *open(dev) {
    yield { kind: 'step', label: 'open' };
    dev.drvdata.opens++;
    return { id: dev.drvdata.opens };
  },
  *release(dev, file) {
    yield { kind: 'step', label: 'release' };
    dev.drvdata.log.push(`release ${file.priv.id}`);
  },
  ioctls: { TESTDRV_ECHO: ECHO },
};

function register(sys: System, config: Record<string, unknown> = {}): Device<Dev, Priv> | number {
  return sys.run('probe', deviceRegister(sys, 'tst0', testDriver, config));
}

function bound(sys: System): Device<Dev, Priv> {
  const d = register(sys);
  assert.ok(d instanceof Device);
  return d;
}

function ioctl(sys: System, fd: number, name: string, arg: unknown): number {
  return sys.run('ioctl', sysIoctl(sys, fd, name, arg as Record<string, unknown>));
}

describe('driver SDK: probe, remove, files', () => {
  it('probe builds the device state and puts the device in sys.devices', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const dev = bound(sys);
    assert.equal(dev.state, 'bound');
    assert.deepEqual(dev.drvdata.log, ['probe']);
    assert.equal(sys.devices.get('tst0'), dev);
  });

  it('a failed probe leaves nothing behind and returns its errno', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    assert.equal(register(sys, { fail: true }), -Errno.ENOMEM);
    assert.equal(sys.devices.has('tst0'), false);
  });

  it('a second device of the same name is -EEXIST', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    bound(sys);
    assert.equal(register(sys), -Errno.EEXIST);
  });

  it('open gives each file its own private data; the last close runs release', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const dev = bound(sys);
    const p = sys.createProcess('p');
    const fd1 = sys.run('open', deviceOpen(sys, 'tst0', p));
    const fd2 = sys.run('open', deviceOpen(sys, 'tst0', p));
    assert.ok(fd1 > 0 && fd2 > 0 && fd1 !== fd2);
    assert.equal(dev.files.size, 2);
    assert.equal(sys.close(fd2), 0);
    assert.deepEqual(dev.drvdata.log, ['probe', 'release 2']);
    assert.equal(dev.files.size, 1);
  });

  it('opening a device that does not exist is -ENODEV', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const p = sys.createProcess('p');
    assert.equal(sys.run('open', deviceOpen(sys, 'nope', p)), -Errno.ENODEV);
  });

  it('remove runs once; afterwards ioctls fail with -ENODEV and release still runs', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const dev = bound(sys);
    const p = sys.createProcess('p');
    const fd = sys.run('open', deviceOpen(sys, 'tst0', p));
    sys.run('unbind', deviceUnregister(dev));
    sys.run('unbind', deviceUnregister(dev));
    assert.equal(dev.state, 'removed');
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', { value: 1 }), -Errno.ENODEV);
    assert.equal(sys.run('open', deviceOpen(sys, 'tst0', p)), -Errno.ENODEV);
    assert.equal(sys.close(fd), 0);
    assert.deepEqual(dev.drvdata.log, ['probe', 'remove', 'release 1']);
  });
});

describe('driver SDK: ioctls', () => {
  function opened(): { sys: System; fd: number } {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    bound(sys);
    const fd = sys.run('open', deviceOpen(sys, 'tst0', sys.createProcess('p')));
    return { sys, fd };
  }

  it('dispatches by name and copies the output members back on success', () => {
    const { sys, fd } = opened();
    const arg: Record<string, unknown> = { value: 21 };
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', arg), 0);
    assert.equal(arg.doubled, 42);
    assert.equal(arg.fileId, 1);
  });

  it('copies nothing back when the handler fails', () => {
    const { sys, fd } = opened();
    const arg: Record<string, unknown> = { value: 21, flag: true };
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', arg), -Errno.EAGAIN);
    assert.equal(arg.doubled, undefined);
  });

  it('an ioctl the driver does not define is -ENOTTY, even one named like an Object member', () => {
    const { sys, fd } = opened();
    assert.equal(ioctl(sys, fd, 'TESTDRV_NOPE', {}), -Errno.ENOTTY);
    assert.equal(ioctl(sys, fd, 'toString', {}), -Errno.ENOTTY);
    assert.equal(ioctl(sys, fd, '__proto__', {}), -Errno.ENOTTY);
  });

  it('unknownIoctlErrno: a driver that answers unknown commands with its own errno', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const dev = sys.run(
      'probe',
      deviceRegister(sys, 'einval0', { ...testDriver, unknownIoctlErrno: Errno.EINVAL }),
    );
    assert.ok(dev instanceof Device);
    const fd = sys.run('open', deviceOpen(sys, 'einval0', sys.createProcess('p')));
    assert.equal(ioctl(sys, fd, 'TESTDRV_NOPE', {}), -Errno.EINVAL);
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', { value: 2 }), 0);
  });

  it('a missing struct or a member of the wrong type is -EFAULT; a u32 overflow is -EINVAL', () => {
    const { sys, fd } = opened();
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', null), -Errno.EFAULT);
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', { value: -1 }), -Errno.EFAULT);
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', { value: 1.5 }), -Errno.EFAULT);
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', { flag: 1 }), -Errno.EFAULT);
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', { small: 2 ** 32 }), -Errno.EINVAL);
  });

  it("open() of /proc/self/fd/N: a device node opens again (the driver's open runs); an anonymous file is -EACCES", () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const dev = bound(sys);
    const p = sys.createProcess('p');
    const fd = sys.run('open', deviceOpen(sys, 'tst0', p));
    const again = sys.open(p, `/proc/self/fd/${fd}`, mman.O_RDWR);
    assert.ok(again >= 0);
    assert.equal(dev.drvdata.opens, 2);
    assert.equal(deviceFileOf(dev, again)?.priv.id, 2);
    const anon = deviceAnonFile(dev, '[testdrv_handle]', { id: 9 });
    assert.equal(sys.open(p, `/proc/self/fd/${anon}`, mman.O_RDWR), -Errno.EACCES);
    assert.equal(sys.open(p, `/proc/self/fd/${anon}`, mman.O_RDONLY), -Errno.EACCES);
    // O_PATH opens neither the device nor the driver: the file takes no ioctl.
    const path = sys.open(p, `/proc/self/fd/${fd}`, mman.O_PATH);
    assert.ok(path >= 0);
    assert.equal(dev.drvdata.opens, 2);
    assert.equal(ioctl(sys, path, 'TESTDRV_ECHO', { value: 1 }), -Errno.EBADF);
    assert.equal(sys.close(path), 0);
    // Once the device is gone, its node opens no more: chrdev_open() finds no cdev (from the
    // source).
    for (const f of [fd, again, anon]) assert.equal(sys.close(f), 0);
    const last = sys.run('open', deviceOpen(sys, 'tst0', p));
    sys.run('remove', deviceUnregister(dev));
    assert.equal(sys.open(p, `/proc/self/fd/${last}`, mman.O_RDWR), -Errno.ENXIO);
    assert.equal(dev.drvdata.opens, 3);
    assert.equal(sys.close(last), 0);
  });

  it('deviceAnonFile: a file the driver hands out gets its ioctls and release; none once the device is removed', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const dev = bound(sys);
    const fd = deviceAnonFile(dev, '[testdrv_handle]', { id: 7 });
    assert.ok(fd >= 0);
    assert.equal(deviceFileOf(dev, fd)?.priv.id, 7);
    assert.equal(deviceFileOf(dev, 999), null);
    const arg: Record<string, unknown> = { value: 1 };
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', arg), 0);
    assert.equal(arg.fileId, 7);
    assert.equal(sys.close(fd), 0);
    assert.deepEqual(dev.drvdata.log, ['probe', 'release 7']);
    sys.run('remove', deviceUnregister(dev));
    assert.equal(deviceAnonFile(dev, '[testdrv_handle]', { id: 8 }), -Errno.ENODEV);
  });

  it('an ioctl on a closed fd is -EBADF', () => {
    const { sys, fd } = opened();
    sys.close(fd);
    assert.equal(ioctl(sys, fd, 'TESTDRV_ECHO', {}), -Errno.EBADF);
  });
});

describe('driver SDK: checking a driver', () => {
  const tryRegister = (drv: unknown): unknown => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    try {
      return sys.run('probe', deviceRegister(sys, 'x', drv as DeviceDriver));
    } catch (e) {
      return e;
    }
  };

  it('an unknownIoctlErrno that is not a positive errno is bad_ioctl_spec', () => {
    const e = tryRegister({ ...testDriver, unknownIoctlErrno: -22 });
    assert.ok(e instanceof DriverError);
    assert.equal(e.issue.code, 'bad_ioctl_spec');
  });

  it('a driver without probe is missing_op', () => {
    const e = tryRegister({ name: 'x' });
    assert.ok(e instanceof DriverError);
    assert.equal(e.issue.code, 'missing_op');
    assert.deepEqual(e.issue.path, ['ops', 'driver.probe']);
  });

  it('a callback that is not a function is not_a_function', () => {
    const e = tryRegister({
      name: 'x',
      *probe(): KGen<object> {
        return {};
      },
      remove: 3,
    });
    assert.ok(e instanceof DriverError);
    assert.equal(e.issue.code, 'not_a_function');
  });

  it('a bad ioctl table is bad_ioctl_spec', () => {
    for (const ioctls of [
      {
        lower: {
          in: {},
          *handler() {
            return 0;
          },
        },
      },
      {
        X: {
          in: { a: 'float' },
          *handler() {
            return 0;
          },
        },
      },
      { X: { in: {} } },
    ]) {
      const e = tryRegister({
        name: 'x',
        *probe(): KGen<object> {
          return {};
        },
        ioctls,
      });
      assert.ok(e instanceof DriverError, JSON.stringify(ioctls));
      assert.equal(e.issue.code, 'bad_ioctl_spec');
    }
  });

  it('reading driver data probe never set is no_drvdata', () => {
    const sys = new System({ ram: 16 * 1024 * 1024, swap: 0 });
    const dev = new Device(sys, 'y', testDriver);
    assert.throws(
      () => dev.drvdata,
      (e: unknown) => e instanceof DriverError && e.issue.code === 'no_drvdata',
    );
  });
});
