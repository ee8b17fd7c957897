/**
 * The ioctl entry of a device's files (the chardev layer's unlocked_ioctl dispatch): copy the
 * driver's struct in, run its handler, copy the output members back. Kept apart from device.ts
 * so that scripts/derive-plain.mjs derives its plain form (device_ioctl.plain.ts): a system call
 * running in plain form reaches a handler's plain form (`handler$`) through it, with no
 * generator in between.
 */
import { ULONG_MAX } from '../../../lib/units.ts';
import { driverCodeBounded, runDriverCode } from '../../../sched/driver_code.ts';
import type { KGen } from '../../../sched/types.ts';
import { Errno } from '../../errno.ts';
import type { File } from '../../mm/mm_types.ts';
import type { Process } from '../../system.ts';
import type { Device, IoctlArg, IoctlContext, IoctlFieldType, IoctlFields } from './device.ts';

function isU64(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= ULONG_MAX;
}

/**
 * The members of each struct copyIn() copies (`out` members, then `fields`, as one object spread
 * of both lists them), with their types, by `fields` and `out`: a spread of two objects costs a
 * few microseconds, and a system call copies a struct in every time. A cache of the drivers'
 * definitions, not state (a snapshot need not see it): an ioctl's member lists are fixed once
 * it is defined (they are read-only), so the list made first stays right. Bounded, for callers
 * that make definitions on the fly.
 */
export const layouts = new Map<IoctlFields, Map<IoctlFields | undefined, [string, IoctlFieldType][]>>();
const MAX_LAYOUTS = 1024;

function layoutOf(fields: IoctlFields, out: IoctlFields | undefined): [string, IoctlFieldType][] {
  let byOut = layouts.get(fields);
  if (byOut === undefined) {
    byOut = new Map<IoctlFields | undefined, [string, IoctlFieldType][]>();
    if (layouts.size < MAX_LAYOUTS) layouts.set(fields, byOut);
  }
  let members = byOut.get(out);
  if (members === undefined) byOut.set(out, (members = Object.entries({ ...(out ?? {}), ...fields })));
  return members;
}

/**
 * copy_from_user() of an ioctl struct: the members `fields` names, from `user`. -EFAULT when the
 * struct is not there or a member cannot be read as its type; -EINVAL when a number does not fit
 * a u32 member.
 */
function copyIn(
  fields: IoctlFields,
  out: IoctlFields | undefined,
  user: unknown,
): Record<string, unknown> | number {
  if (user === null || typeof user !== 'object') return -Errno.EFAULT;
  const u = user as Record<string, unknown>;
  const arg: Record<string, unknown> = {};
  for (const [f, t] of layoutOf(fields, out)) {
    const v = fields[f] !== undefined ? u[f] : undefined;
    switch (t) {
      case 'bool':
        if (v !== undefined && typeof v !== 'boolean') return -Errno.EFAULT;
        arg[f] = v ?? false;
        break;
      case 'bytes':
        if (v !== undefined && !(v instanceof Uint8Array)) return -Errno.EFAULT;
        arg[f] = v ?? new Uint8Array(0);
        break;
      case 'u32':
      case 'u64':
        if (v !== undefined && !isU64(v)) return -Errno.EFAULT;
        if (t === 'u32' && v !== undefined && v > 0xffffffff) return -Errno.EINVAL;
        arg[f] = v ?? 0;
        break;
    }
  }
  return arg;
}

/**
 * Models the chardev layer's unlocked_ioctl for an SDK device: -ENODEV once the device is
 * removed, the driver's errno for a command it does not know, else its handler on a copy of the
 * caller's struct (the output members copied back when it returns >= 0). A handler of a driver
 * the embedder bounds runs wrapped (runDriverCode); any other runs as it is.
 */
export function* deviceIoctl<D extends object, F extends object>(
  dev: Device<D, F>,
  file: File<F>,
  cmd: string,
  user: unknown,
): KGen<number> {
  if (dev.state !== 'bound') return -Errno.ENODEV;
  const table = dev.driver.ioctls;
  // Own members only: a command named like an Object.prototype member is just unknown.
  const def = table !== undefined && Object.hasOwn(table, cmd) ? table[cmd] : undefined;
  if (def === undefined) return -(dev.driver.unknownIoctlErrno ?? Errno.ENOTTY);
  const copied = copyIn(def.in, def.out, user);
  if (typeof copied === 'number') return copied;
  const arg = copied as IoctlArg<IoctlFields, IoctlFields>;
  const sched = dev.sys.sched;
  // sysIoctl() made the thread one of the caller's threads for the call.
  const ctx: IoctlContext = { current: (sched.current?.task ?? null) as Process | null };
  let ret: number;
  if (driverCodeBounded(sched, dev.driver)) {
    ret = yield* runDriverCode(sched, dev.driver, `ioctl ${cmd}`, def.handler(file, arg, dev, ctx));
  } else {
    ret = yield* def.handler(file, arg, dev, ctx);
  }
  if (ret >= 0 && def.out !== undefined) {
    const u = user as Record<string, unknown>;
    for (const f of Object.keys(def.out)) u[f] = arg[f];
  }
  return ret;
}
