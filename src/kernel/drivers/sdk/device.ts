/**
 * Devices and their drivers: probe and remove, the character-device file a process opens, and
 * driver-defined ioctls with typed argument structs. A driver is a const object of callbacks, as
 * a kernel driver is a static struct of ops; the SDK does the bookkeeping the driver core and
 * the chardev layer do (the device list, file lifetime, copying the ioctl struct in and out).
 *
 * Lifetime: deviceRegister() runs probe(); each open() makes a file whose private data is what
 * the driver's open returned; the last close runs release(); deviceUnregister() runs remove().
 * After remove, files still open keep their release() but every ioctl fails with -ENODEV, as a
 * hot-unplugged device's files do.
 */
import { runDriverCode } from '../../../sched/driver_code.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import { taskMmget, taskMmput } from '../../exit.ts';
import { File, type FileOps, Inode, type Vma } from '../../mm/mm_types.ts';
import type { Process, System } from '../../system.ts';
import { dropRef, takeRef } from '../../refs.ts';
import { deviceIoctl } from './device_ioctl.ts';
import { deviceIoctl$ } from './device_ioctl.plain.ts';
import { DriverError } from './driver_error.ts';
import { DriverMutex, DriverRwSem, DriverSpinLock, type LockDecl } from './locks.ts';

/** The types an ioctl struct member may have. u64 members hold any integer up to 2^64-1. */
export type IoctlFieldType = 'u64' | 'u32' | 'bool' | 'bytes';
export type IoctlFields = Readonly<Record<string, IoctlFieldType>>;

type FieldValue<T extends IoctlFieldType> = T extends 'bool'
  ? boolean
  : T extends 'bytes'
    ? Uint8Array
    : number;

/** The argument struct a handler sees: every input member, then every output member (zeroed). */
export type IoctlArg<I extends IoctlFields, O extends IoctlFields> = {
  -readonly [K in keyof I]: FieldValue<I[K]>;
} & { -readonly [K in keyof O]: FieldValue<O[K]> };

/**
 * One driver-defined ioctl. The caller's struct is copied in (members it leaves out read as 0,
 * false or empty, as a zeroed struct) and the handler works on that copy; the output members are
 * copied back only when the handler returns >= 0 (copy_to_user after success).
 */
export interface IoctlDef<
  F extends object,
  I extends IoctlFields = IoctlFields,
  O extends IoctlFields = IoctlFields,
> {
  readonly in: I;
  readonly out?: O;
  /** One line for `hetmem schema` and error messages. */
  readonly doc?: string;
  /**
   * `ctx.current` is the calling process (null when the ioctl runs as no process); a fatal
   * signal to it ends a killable wait in the handler (waitEventKillable, fatalSignalPending).
   */
  handler(file: File<F>, arg: IoctlArg<I, O>, dev: Device<object, F>, ctx: IoctlContext): KGen<number>;
  /**
   * The plain-function form of `handler`, derived from the same source by
   * scripts/derive-plain.mjs (never written by hand): what a system call running in plain form
   * calls instead, when nothing else can be scheduled. Optional; without it the handler's
   * generator runs there step by step.
   */
  handler$?(file: File<F>, arg: IoctlArg<I, O>, dev: Device<object, F>, ctx: IoctlContext): number;
}

/** What an ioctl handler knows of its call besides the file and the argument. */
export interface IoctlContext {
  /** Models current: the process making the call, or null. */
  readonly current: Process | null;
}

/** Types one ioctl of a driver's table (the members of `in` and `out` type the handler's argument). */
export function defineIoctl<F extends object, I extends IoctlFields, O extends IoctlFields = NoFields>(
  def: IoctlDef<F, I, O>,
): IoctlDef<F> {
  return def;
}

/**
 * defineIoctl() for the files of one driver, with the struct members inferred from `in` and
 * `out` instead of written twice: `const xeIoctl = ioctlFor<XeFile>();` then
 * `xeIoctl({ in: { vm_id: 'u32' }, *handler(file, arg) { ... arg.vm_id ... } })`.
 */
export function ioctlFor<F extends object>(): <
  const I extends IoctlFields,
  const O extends IoctlFields = NoFields,
>(
  def: IoctlDef<F, I, O>,
) => IoctlDef<F> {
  return (def) => defineIoctl(def);
}

/** The `out` of an ioctl that writes nothing back: no members. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export type NoFields = {};

/**
 * A device driver model. `D` is the per-device state probe() builds (dev_set_drvdata), `F` the
 * per-open-file state open() builds (file->private_data). Sleeping callbacks are generators.
 */
export interface DeviceDriver<D extends object = object, F extends object = object> {
  /** The driver's name (struct device_driver.name); also the prefix of its lock classes. */
  readonly name: string;
  /** Models the driver's probe(): the device state, or -errno (the device is then not added). */
  probe(dev: Device<D, F>, config: Readonly<Record<string, unknown>>): KGen<D | number>;
  /** Models the driver's remove() (unbind): undo probe; open files may still be around. */
  remove?(dev: Device<D, F>): KGen;
  /** Models file_operations.open: the file's private data, or -errno. */
  open?(dev: Device<D, F>, proc: Process): KGen<F | number>;
  /** Models file_operations.release: the last close of a file. */
  release?(dev: Device<D, F>, file: File<F>): KGen;
  /** Models file_operations.mmap. */
  mmap?(dev: Device<D, F>, file: File<F>, vma: Vma): KGen<number>;
  /**
   * Models file_operations.llseek: 'default' for default_llseek (lib/test_hmm.c's), 'noop' for
   * noop_llseek (DRM drivers'). Without one, lseek() of the device's files is -ESPIPE.
   */
  readonly llseek?: 'default' | 'noop';
  /** The driver's ioctls by uAPI name (defineIoctl types each). */
  readonly ioctls?: Readonly<Record<string, IoctlDef<F>>>;
  /**
   * The errno the driver's unlocked_ioctl returns for a command it does not know (many drivers,
   * lib/test_hmm.c among them, say EINVAL rather than the usual ENOTTY). @defaultValue ENOTTY
   */
  readonly unknownIoctlErrno?: number;
}

/** Models struct device bound to a driver. Device state hangs off System (sys.devices). */
export class Device<D extends object = object, F extends object = object> {
  state: 'probing' | 'bound' | 'removed' = 'probing';
  /**
   * The struct device's kobject references: one the registration holds until
   * deviceUnregister(), one per open file, and one per getDevice() of the driver. A removed
   * device with references left once everything is closed is a leak (the leak oracle).
   */
  refs = 1;
  private data: D | null = null;
  /** Every file of this device still open. */
  readonly files = new Set<File<F>>();
  /** Locks the driver declared on this device. */
  readonly locks: (DriverMutex | DriverSpinLock | DriverRwSem)[] = [];
  readonly fops: FileOps<F>;

  constructor(
    readonly sys: System,
    readonly name: string,
    readonly driver: DeviceDriver<D, F>,
  ) {
    this.fops = deviceFops(this);
  }

  /** Models dev_get_drvdata(): the state probe() returned. */
  get drvdata(): D {
    if (this.data === null) throw new DriverError({ code: 'no_drvdata', path: ['device', this.name] });
    return this.data;
  }

  /** Models dev_set_drvdata(). */
  setDrvdata(d: D): void {
    this.data = d;
  }

  /** A mutex of this device, in the driver-wide lock class `decl.lockClass`. */
  mutex(name: string, decl: LockDecl): DriverMutex {
    const l = new DriverMutex(this.sys.sched, `${this.name}.${name}`, decl);
    this.locks.push(l);
    return l;
  }

  /** A spinlock of this device. */
  spinlock(name: string, decl: LockDecl): DriverSpinLock {
    const l = new DriverSpinLock(this.sys.sched, `${this.name}.${name}`, decl);
    this.locks.push(l);
    return l;
  }

  /** An rw_semaphore of this device. */
  rwsem(name: string, decl: LockDecl): DriverRwSem {
    const l = new DriverRwSem(this.sys.sched, `${this.name}.${name}`, decl);
    this.locks.push(l);
    return l;
  }
}

/** Raises DriverError missing_op / not_a_function unless `driver` has the shape of a DeviceDriver. */
export function checkDriver(driver: unknown, what = 'driver'): asserts driver is DeviceDriver {
  if (driver === null || typeof driver !== 'object')
    throw new DriverError({ code: 'missing_op', path: ['ops', `${what}.probe`] });
  const d = driver as Record<string, unknown>;
  if (typeof d.name !== 'string')
    throw new DriverError({ code: 'missing_op', path: ['ops', `${what}.name`] });
  if (typeof d.probe !== 'function')
    throw new DriverError({ code: 'missing_op', path: ['ops', `${what}.probe`] });
  for (const op of ['remove', 'open', 'release', 'mmap'] as const) {
    if (d[op] !== undefined && typeof d[op] !== 'function')
      throw new DriverError({ code: 'not_a_function', path: ['ops', `${what}.${op}`] });
  }
  const unknown = d.unknownIoctlErrno;
  if (unknown !== undefined && (typeof unknown !== 'number' || !Number.isInteger(unknown) || unknown <= 0))
    throw new DriverError({
      code: 'bad_ioctl_spec',
      path: ['ioctls', 'unknownIoctlErrno'],
      why: 'unknownIoctlErrno is not a positive errno',
    });
  const ioctls = d.ioctls;
  if (ioctls === undefined) return;
  if (ioctls === null || typeof ioctls !== 'object')
    throw new DriverError({ code: 'bad_ioctl_spec', path: ['ioctls', '*'], why: 'ioctls is not an object' });
  for (const [name, def] of Object.entries(ioctls as Record<string, unknown>)) {
    const bad = (why: string): never => {
      throw new DriverError({ code: 'bad_ioctl_spec', path: ['ioctls', name], why });
    };
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) bad('an ioctl name is upper case: letters, digits and _');
    if (def === null || typeof def !== 'object') bad('not an ioctl definition');
    const io = def as Record<string, unknown>;
    if (typeof io.handler !== 'function') bad('handler is not a function');
    if (io.handler$ !== undefined && typeof io.handler$ !== 'function') bad('handler$ is not a function');
    for (const side of ['in', 'out'] as const) {
      const fields = io[side];
      if (fields === undefined && side === 'out') continue;
      if (fields === null || typeof fields !== 'object') bad(`'${side}' is not a map of members`);
      for (const [f, t] of Object.entries(fields as Record<string, unknown>)) {
        if (t !== 'u64' && t !== 'u32' && t !== 'bool' && t !== 'bytes')
          bad(`member ${f}: unknown type ${String(t)}`);
      }
    }
  }
}

/** The devices of `sys` that an SDK driver is bound to (or was, until removed). */
export function sdkDevices(sys: System): Device[] {
  const out: Device[] = [];
  for (const d of sys.devices.values()) if (d instanceof Device) out.push(d as Device);
  return out;
}

/** The SDK device named `name`, or null. */
export function deviceByName(sys: System, name: string): Device | null {
  const d = sys.devices.get(name);
  return d instanceof Device ? d : null;
}

/**
 * Models device_add() followed by the driver core's really_probe(): the device appears in
 * sys.devices and probe() builds its state. Returns the device, or -errno from probe (-EEXIST if
 * the name is taken); a failed probe leaves nothing behind.
 */
export function* deviceRegister<D extends object, F extends object>(
  sys: System,
  name: string,
  driver: DeviceDriver<D, F>,
  config: Readonly<Record<string, unknown>> = {},
): KGen<Device<D, F> | number> {
  checkDriver(driver);
  if (sys.devices.has(name)) return -Errno.EEXIST;
  const dev = new Device<D, F>(sys, name, driver);
  sys.devices.set(name, dev);
  const r = yield* runDriverCode(dev.sys.sched, driver, 'probe', driver.probe(dev, config));
  if (typeof r === 'number') {
    sys.devices.delete(name);
    dev.state = 'removed';
    return r < 0 ? r : -Errno.EINVAL;
  }
  dev.setDrvdata(r);
  dev.state = 'bound';
  sys.trace.count('device_probe');
  return dev;
}

/**
 * deviceRegister() from outside any kernel path, as a device found at boot is probed: on a thread
 * of its own (`probe:NAME`), so a probe that sleeps, takes the driver's locks or starts its
 * workers runs as it would in a scenario. Returns the device or -errno.
 */
export function deviceProbe<D extends object, F extends object>(
  sys: System,
  name: string,
  driver: DeviceDriver<D, F>,
  config: Readonly<Record<string, unknown>> = {},
): Device<D, F> | number {
  return sys.run(`probe:${name}`, deviceRegister(sys, name, driver, config));
}

/** Models device_del() / driver unbind: remove() runs once; the name stays taken by the dead device. */
export function* deviceUnregister(dev: Device): KGen {
  if (dev.state !== 'bound') return;
  dev.state = 'removed';
  if (dev.driver.remove !== undefined)
    yield* runDriverCode(dev.sys.sched, dev.driver, 'remove', dev.driver.remove(dev));
  dev.refs--; // the registration's reference (device_unregister's put_device)
  dev.sys.trace.count('device_remove');
}

/** Models get_device(): a reference the driver must drop with putDevice(). */
export function getDevice<D extends object, F extends object>(dev: Device<D, F>): Device<D, F> {
  dev.refs++;
  takeRef(dev.sys, dev, 'get_device');
  return dev;
}

/** Models put_device(). Dropping a reference the device does not have is a WARN. */
export function putDevice(dev: Device): void {
  if (dev.refs <= 0) {
    dev.sys.sched.report({ oracle: 'warn', message: `put_device of ${dev.name} with no reference left` });
    return;
  }
  dev.refs--;
  dropRef(dev.sys, dev);
}

/**
 * Models open() of the device's character device by `proc`: the driver's open builds the file's
 * private data. Returns the fd, -ENODEV (no such device, or removed) or the driver's -errno.
 */
export function* deviceOpen(sys: System, name: string, proc: Process): KGen<number> {
  const dev = deviceByName(sys, name);
  if (dev === null || dev.state !== 'bound') return -Errno.ENODEV;
  return yield* openFile(dev, proc);
}

function* openFile<D extends object, F extends object>(dev: Device<D, F>, proc: Process): KGen<number> {
  if (dev.driver.open === undefined) return installFile(dev, dev.name, {} as F, true);
  // The opener is a thread of `proc` inside open(): its task->mm reference keeps the mm alive
  // while the driver's open runs (a driver that registers a notifier on current->mm relies on
  // it), so an exit by another thread of `proc` cannot tear the mm down under the open.
  const mm = yield* taskMmget(proc);
  if (mm === null) return -Errno.ESRCH;
  const priv = yield* runDriverCode(dev.sys.sched, dev.driver, 'open', dev.driver.open(dev, proc));
  yield* taskMmput(proc, mm);
  if (typeof priv === 'number') return priv < 0 ? priv : -Errno.EINVAL;
  return installFile(dev, dev.name, priv, true);
}

/**
 * Models chrdev_open() of the node a file of `dev` was opened through (an open() of
 * /proc/self/fd/N): the driver's open again, or -ENXIO once the device is removed (its cdev is
 * gone from the node).
 */
function* reopenNode<D extends object, F extends object>(dev: Device<D, F>, proc: Process): KGen<number> {
  if (dev.state !== 'bound') return -Errno.ENXIO;
  return yield* openFile(dev, proc);
}

/** Installs a new file of `dev`; `cdev`: the file of the device node, which open() opens again. */
function installFile<D extends object, F extends object>(
  dev: Device<D, F>,
  name: string,
  priv: F,
  cdev: boolean,
): number {
  const sys = dev.sys;
  const inode = new Inode(sys.nextId('mapping'), 'device', name);
  if (cdev) inode.cdevOpen = (proc) => reopenNode(dev, proc);
  const file = new File<F>(sys.nextId('file'), inode, 2, dev.fops, priv);
  dev.files.add(file);
  getDevice(dev); // the open file pins the device (cdev_get)
  return sys.installFd(file);
}

/**
 * Models anon_inode_getfd() for a driver: a new file of `dev` with no device node behind it (the
 * kind a driver hands out from an ioctl: an access handle, a fence, a dma-buf) whose private
 * data is `priv`. Its ioctls, mmap and release are the driver's, as for an opened file. Returns
 * the fd, or -ENODEV once the device is removed.
 */
export function deviceAnonFile<D extends object, F extends object>(
  dev: Device<D, F>,
  name: string,
  priv: F,
): number {
  if (dev.state !== 'bound') return -Errno.ENODEV;
  return installFile(dev, name, priv, false);
}

/** The file behind `fd` if it is a file of `dev` (an fd of another device, or none, is null). */
export function deviceFileOf<D extends object, F extends object>(
  dev: Device<D, F>,
  fd: number,
): File<F> | null {
  const f = dev.sys.fileOf(fd);
  return f !== null && f.fops === dev.fops ? (f as File<F>) : null;
}

/**
 * The file_operations of a device's files: dispatch to the driver, per device. Frozen, as the
 * kernel's are const: a snapshot (src/lib/snapshot.ts) need not restore them.
 */
function deviceFops<D extends object, F extends object>(dev: Device<D, F>): FileOps<F> {
  const fops: FileOps<F> = {
    name: dev.driver.name,
    ...(dev.driver.llseek !== undefined ? { llseek: dev.driver.llseek } : {}),
    ioctl: (file, cmd, user) => deviceIoctl(dev, file, cmd, user),
    ioctl$: (file, cmd, user) => deviceIoctl$(dev, file, cmd, user),
    *release(file) {
      dev.files.delete(file);
      if (dev.driver.release !== undefined)
        yield* runDriverCode(dev.sys.sched, dev.driver, 'release', dev.driver.release(dev, file));
      putDevice(dev);
    },
    *mmap(file, vma) {
      if (dev.driver.mmap === undefined || dev.state !== 'bound') return -Errno.ENODEV;
      return yield* runDriverCode(dev.sys.sched, dev.driver, 'mmap', dev.driver.mmap(dev, file, vma));
    },
  };
  return Object.freeze(fops);
}
