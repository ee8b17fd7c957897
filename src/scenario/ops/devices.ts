/**
 * Devices of user drivers (`devices: NAME: { driver: { module, export } }`): `device_open`, and
 * every ioctl the driver defines, as an op of its own name. The step's fields are the members of
 * the ioctl's argument struct, converted by their declared types (u64 and u32 take numbers, sizes
 * and names; bool takes true or false; bytes takes a data spec); the output members become the
 * step's outputs, and a bytes output its `data`.
 */
import { Device, sdkDevices, type IoctlDef } from '../../kernel/drivers/sdk/device.ts';
import { isErr } from '../../kernel/errno.ts';
import type { OpResult, ScenarioContext } from '../context.ts';
import type { StepT } from '../schema.ts';
import { ValueError } from '../values.ts';
import { dataOf } from './mm.ts';
import { f, type OpHandler } from './types.ts';

const STEP_FIELDS = new Set(['op', 'fd', 'save', 'expect', 'comment']);

/** The ioctl definition `cmd` of the device whose file is `fd`, or undefined for other files. */
function ioctlDefOf(ctx: ScenarioContext, fd: number, cmd: string): IoctlDef<object> | undefined {
  const file = ctx.sys.fileOf(fd);
  if (file === null) return undefined;
  const dev = sdkDevices(ctx.sys).find((d: Device) => d.fops === file.fops);
  return dev?.driver.ioctls?.[cmd];
}

/** Runs a driver-defined ioctl step. */
export function* driverIoctl(ctx: ScenarioContext, step: StepT): ReturnType<OpHandler> {
  const fd = ctx.num(f(step, 'fd'), 'fd');
  const def = ioctlDefOf(ctx, fd, step.op);
  const arg: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(step)) {
    if (STEP_FIELDS.has(field)) continue;
    const type = def?.in[field];
    if (type === 'bytes') arg[field] = dataOf(value, undefined);
    else if (type === 'bool' || typeof value === 'boolean') {
      if (typeof value !== 'boolean') throw new ValueError(`field '${field}': expected true or false`);
      arg[field] = value;
    } else arg[field] = ctx.num(value, field);
  }
  const ret = yield* ctx.sc.sysIoctl(ctx.sys, fd, step.op, arg, ctx.fileOwners.get(fd));
  const r: OpResult = { ret, outputs: {} };
  for (const [field, type] of Object.entries(def?.out ?? {})) {
    const v = arg[field];
    if (type === 'bytes' && v instanceof Uint8Array) r.data = v;
    else if (v !== undefined) r.outputs![field] = v;
  }
  return r;
}

export const deviceOps: Record<string, OpHandler> = {
  *device_open(ctx, step) {
    const proc = ctx.proc(f(step, 'proc'));
    const ret = yield* ctx.k.sdk.deviceOpen(ctx.sys, String(f(step, 'device')), proc);
    if (!isErr(ret)) {
      ctx.openFiles.set(ret, 'device');
      ctx.fileOwners.set(ret, proc);
    }
    return { ret };
  },
};
