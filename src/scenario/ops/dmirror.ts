/**
 * The test_hmm mirror device (lib/test_hmm.c): open/close and its ioctls. Each ioctl builds a
 * struct hmm_dmirror_cmd (addr, ptr, npages, cpages, faults); without `ptr`, READ and WRITE move
 * their data through `buf` and SNAPSHOT returns its bytes there.
 */
import { isErr } from '../../kernel/errno.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import { NotModelled, type OpResult, type ScenarioContext } from '../context.ts';
import type { StepT } from '../schema.ts';
import { dataOf } from './mm.ts';
import { f, flagBits, type OpHandler } from './types.ts';

/** HMM_DMIRROR_FLAG_* of lib/test_hmm_uapi.h. */
const DMIRROR_FLAGS: Record<string, number> = { FAIL_ALLOC: 1 };

function dmirrorApi(ctx: ScenarioContext): NonNullable<ScenarioContext['k']['dmirror']> {
  if (ctx.k.dmirror === null) {
    throw new NotModelled(
      `the dmirror device is not modelled yet (src/kernel/drivers/test_hmm.ts: ${ctx.k.missing.get('../kernel/drivers/test_hmm.ts') ?? 'missing'})`,
    );
  }
  return ctx.k.dmirror;
}

function cmdOutputs(arg: Record<string, unknown>): Record<string, unknown> {
  return { cpages: arg.cpages, faults: arg.faults };
}

function* dmirrorIoctl(ctx: ScenarioContext, step: StepT, name: string): ReturnType<OpHandler> {
  dmirrorApi(ctx);
  const npages = f(step, 'npages') === undefined ? 0 : ctx.num(f(step, 'npages'));
  const arg: Record<string, unknown> = {
    addr: f(step, 'addr') === undefined ? 0 : ctx.num(f(step, 'addr')),
    npages,
    cpages: 0,
    faults: 0,
  };
  if (f(step, 'ptr') !== undefined) arg.ptr = ctx.num(f(step, 'ptr'));
  else if (name === 'HMM_DMIRROR_READ') arg.buf = new Uint8Array(npages * PAGE_SIZE);
  else if (name === 'HMM_DMIRROR_WRITE') {
    arg.buf =
      f(step, 'data') === undefined
        ? new Uint8Array(npages * PAGE_SIZE)
        : dataOf(f(step, 'data'), npages * PAGE_SIZE);
  } else if (name === 'HMM_DMIRROR_SNAPSHOT') arg.buf = new Uint8Array(npages);
  if (name === 'HMM_DMIRROR_FLAGS') {
    const flags = flagBits(f(step, 'flags'), DMIRROR_FLAGS, 'dmirror');
    arg.flags = flags;
    arg.npages = flags;
  }
  const ret = yield* ctx.sc.sysIoctl(ctx.sys, ctx.num(f(step, 'fd')), name, arg);
  const r: OpResult = { ret, outputs: cmdOutputs(arg) };
  if (name === 'HMM_DMIRROR_READ' && arg.buf instanceof Uint8Array) r.data = arg.buf;
  if (name === 'HMM_DMIRROR_SNAPSHOT' && arg.buf instanceof Uint8Array) r.bytes = [...arg.buf];
  return r;
}

const IOCTLS = [
  'HMM_DMIRROR_READ',
  'HMM_DMIRROR_WRITE',
  'HMM_DMIRROR_MIGRATE_TO_DEV',
  'HMM_DMIRROR_MIGRATE_TO_SYS',
  'HMM_DMIRROR_SNAPSHOT',
  'HMM_DMIRROR_EXCLUSIVE',
  'HMM_DMIRROR_CHECK_EXCLUSIVE',
  'HMM_DMIRROR_RELEASE',
  'HMM_DMIRROR_FLAGS',
];

export const dmirrorOps: Record<string, OpHandler> = {
  *dmirror_open(ctx, step) {
    const api = dmirrorApi(ctx);
    const ret = yield* api.dmirrorOpen(ctx.sys, String(f(step, 'device')), ctx.proc(f(step, 'proc')));
    if (!isErr(ret)) ctx.openFiles.set(ret, 'dmirror');
    return { ret };
  },
  *dmirror_close(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const ret = yield* ctx.sc.sysClose(ctx.sys, fd);
    if (!isErr(ret)) ctx.openFiles.delete(fd);
    return { ret };
  },
  ...Object.fromEntries(
    IOCTLS.map((name) => [name, (ctx: ScenarioContext, step: StepT) => dmirrorIoctl(ctx, step, name)]),
  ),
};
