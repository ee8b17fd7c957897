/**
 * iommufd ops: open/close and the ioctls by their uAPI names. The step's fields are the kernel
 * struct's field names; the handler builds the argument object from them (names and sizes
 * evaluated, flag names turned into bits), calls the ioctl, and reads the op's output fields back
 * from the same object, as the kernel copies the struct back to user space.
 */
import { isErr } from '../../kernel/errno.ts';
import { STRUCTS } from '../../kernel/iommufd/uapi.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import { NotModelled, type OpResult, type ScenarioContext } from '../context.ts';
import { OPS, type StepT } from '../schema.ts';
import { dataOf } from './mm.ts';
import { f, flagBits, type OpHandler } from './types.ts';

const MAP_FLAGS = { FIXED_IOVA: 1, WRITEABLE: 2, READABLE: 4 };

/** Flag names per ioctl (include/uapi/linux/iommufd.h, drivers/iommu/iommufd/iommufd_test.h). */
const FLAG_TABLES: Record<string, Record<string, number>> = {
  IOMMU_IOAS_MAP: MAP_FLAGS,
  IOMMU_IOAS_MAP_FILE: MAP_FLAGS,
  IOMMU_IOAS_COPY: MAP_FLAGS,
  IOMMU_HWPT_ALLOC: { NEST_PARENT: 1, DIRTY_TRACKING: 2 },
  IOMMU_HWPT_SET_DIRTY_TRACKING: { ENABLE: 1 },
  IOMMU_HWPT_GET_DIRTY_BITMAP: { NO_CLEAR: 1 },
  IOMMU_TEST_OP_CREATE_ACCESS: { NEEDS_PIN_PAGES: 1 },
  IOMMU_TEST_OP_ACCESS_PAGES: { WRITE: 1, SYZ: 1 << 16 },
  IOMMU_TEST_OP_ACCESS_RW: { WRITE: 1, SLOW_PATH: 1 << 2 },
};
const OPTION_IDS: Record<string, number> = { RLIMIT_MODE: 0, HUGE_PAGES: 1 };
const OPTION_OPS: Record<string, number> = { SET: 0, GET: 1 };

/** Fields that are not plain numbers. */
const SPECIAL = new Set([
  'op',
  'save',
  'expect',
  'comment',
  'fd',
  'flags',
  'option_id',
  'option_op',
  'file',
  'proc',
  'data',
  'dirty',
  'allowed_iovas',
  'device',
]);

function iommufdApi(ctx: ScenarioContext): NonNullable<ScenarioContext['k']['iommufd']> {
  if (ctx.k.iommufd === null) {
    throw new NotModelled(
      `iommufd is not modelled yet (src/kernel/iommufd/index.ts: ${ctx.k.missing.get('../kernel/iommufd/index.ts') ?? 'missing'})`,
    );
  }
  return ctx.k.iommufd;
}

function defaultMapFlags(name: string, step: StepT): number | undefined {
  if (name !== 'IOMMU_IOAS_MAP' && name !== 'IOMMU_IOAS_MAP_FILE' && name !== 'IOMMU_IOAS_COPY')
    return undefined;
  const fixed =
    name === 'IOMMU_IOAS_COPY' ? f(step, 'dst_iova') !== undefined : f(step, 'iova') !== undefined;
  return MAP_FLAGS.READABLE | MAP_FLAGS.WRITEABLE | (fixed ? MAP_FLAGS.FIXED_IOVA : 0);
}

/** Builds the ioctl argument from the step's fields. */
export function buildArg(ctx: ScenarioContext, step: StepT, name: string): Record<string, unknown> {
  // The struct size user space passes (the dispatcher checks it like the kernel's min_size rule).
  const arg: Record<string, unknown> = { size: STRUCTS[name]?.size ?? 0 };
  for (const [k, v] of Object.entries(step)) {
    if (SPECIAL.has(k) || v === undefined) continue;
    arg[k] = ctx.num(v, k);
  }
  const flags = f(step, 'flags');
  if (flags !== undefined) arg.flags = flagBits(flags, FLAG_TABLES[name] ?? {}, name);
  else {
    const d = defaultMapFlags(name, step);
    arg.flags = d ?? 0;
  }
  const optionId = f(step, 'option_id');
  if (optionId !== undefined)
    arg.option_id = typeof optionId === 'number' ? optionId : OPTION_IDS[optionId as string];
  const optionOp = f(step, 'option_op');
  if (optionOp !== undefined)
    arg.op = typeof optionOp === 'number' ? optionOp : OPTION_OPS[optionOp as string];
  if (f(step, 'file') !== undefined) arg.fd = ctx.num(f(step, 'file'), 'file');
  if (f(step, 'proc') !== undefined) arg.proc = ctx.proc(f(step, 'proc'));
  if (f(step, 'device') !== undefined) arg.device = f(step, 'device');
  const ranges = f(step, 'allowed_iovas');
  if (Array.isArray(ranges)) {
    arg.allowed_iovas = (ranges as Record<string, unknown>[]).map((r) => ({
      start: ctx.num(r.start),
      last: ctx.num(r.last),
    }));
    arg.num_iovas = ranges.length;
  }
  if (name === 'IOMMU_IOAS_IOVA_RANGES') {
    arg.allowed_iovas ??= [];
    arg.num_iovas ??= 0;
  }
  const pageSize = typeof arg.page_size === 'number' ? arg.page_size : PAGE_SIZE;
  const length = typeof arg.length === 'number' ? arg.length : 0;
  if (name === 'IOMMU_TEST_OP_ACCESS_RW' && arg.uptr === undefined) {
    arg.buf = f(step, 'data') === undefined ? new Uint8Array(length) : dataOf(f(step, 'data'), length);
  }
  if (name === 'IOMMU_HWPT_GET_DIRTY_BITMAP' || name === 'IOMMU_TEST_OP_DIRTY') {
    arg.page_size = pageSize;
    const bitmap = new Uint8Array(Math.ceil(length / pageSize / 8));
    const dirty = f(step, 'dirty');
    if (Array.isArray(dirty)) for (const i of dirty as number[]) bitmap[i >> 3] |= 1 << (i & 7);
    if (arg.uptr === undefined) arg.bitmap = bitmap;
  }
  return arg;
}

function bitmapIndexes(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bitmap.length * 8; i++) if ((bitmap[i >> 3] & (1 << (i & 7))) !== 0) out.push(i);
  return out;
}

function* iommufdIoctl(ctx: ScenarioContext, step: StepT, name: string): ReturnType<OpHandler> {
  iommufdApi(ctx);
  const arg = buildArg(ctx, step, name);
  const ret = yield* ctx.sc.sysIoctl(ctx.sys, ctx.num(f(step, 'fd')), name, arg);
  const spec = OPS[name];
  const outputs: Record<string, unknown> = {};
  for (const o of spec.outputs) outputs[o] = arg[o];
  if (name === 'IOMMU_HWPT_GET_DIRTY_BITMAP' && arg.bitmap instanceof Uint8Array)
    outputs.dirty = bitmapIndexes(arg.bitmap);
  const r: OpResult = { ret, outputs };
  if (spec.main !== undefined && !isErr(ret)) {
    const v = arg[spec.main];
    if (typeof v === 'number' || typeof v === 'bigint') r.main = Number(v);
  }
  if (name === 'IOMMU_TEST_OP_ACCESS_RW' && arg.buf instanceof Uint8Array) r.data = arg.buf;
  if (name === 'IOMMU_TEST_OP_CREATE_ACCESS' && !isErr(ret) && r.main !== undefined)
    ctx.openFiles.set(r.main, 'access');
  return r;
}

const IOCTLS = Object.keys(OPS).filter((op) => op.startsWith('IOMMU_'));

export const iommufdOps: Record<string, OpHandler> = {
  *iommufd_open(ctx, step) {
    const api = iommufdApi(ctx);
    const r = api.iommufdOpen(ctx.sys, ctx.proc(f(step, 'proc')));
    const ret = typeof r === 'number' ? r : yield* r;
    if (!isErr(ret)) ctx.openFiles.set(ret, 'iommufd');
    return { ret };
  },
  *iommufd_close(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const ret = yield* ctx.sc.sysClose(ctx.sys, fd);
    if (!isErr(ret)) ctx.openFiles.delete(fd);
    return { ret };
  },
  ...(Object.fromEntries(
    IOCTLS.map((name) => [name, (ctx: ScenarioContext, step: StepT) => iommufdIoctl(ctx, step, name)]),
  ) as Record<string, OpHandler>),
};
