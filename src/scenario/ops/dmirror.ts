/**
 * The test_hmm mirror device (lib/test_hmm.c): open/close and its ioctls. Each ioctl builds a
 * struct hmm_dmirror_cmd (addr, ptr, npages, cpages, faults); without `ptr`, the data READ,
 * EXCLUSIVE and MIGRATE_TO_DEV read back, and the data WRITE sends, move through `buf` (standing
 * in for the user buffer), and SNAPSHOT returns its bytes there.
 */
import { isErr } from '../../kernel/errno.ts';
import { HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_IOCTLS } from '../../kernel/drivers/test_hmm.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import { MAX_USER_BUFFER, type OpResult, type ScenarioContext } from '../context.ts';
import type { StepT } from '../schema.ts';
import { dataOf } from './mm.ts';
import { f, flagBits, type OpHandler } from './types.ts';

/** HMM_DMIRROR_FLAG_* of lib/test_hmm_uapi.h. */
const DMIRROR_FLAGS: Record<string, number> = { FAIL_ALLOC: HMM_DMIRROR_FLAG_FAIL_ALLOC };

/** The ioctls that copy the pages they end up mapping back to the user buffer. */
const READS_BACK = new Set(['HMM_DMIRROR_READ', 'HMM_DMIRROR_EXCLUSIVE', 'HMM_DMIRROR_MIGRATE_TO_DEV']);

function* dmirrorIoctl(ctx: ScenarioContext, step: StepT, name: string): ReturnType<OpHandler> {
  // RELEASE ignores the range but the ioctl still validates it, as the kernel's does: one page
  // at address 0 passes.
  const npages = ctx.optNum(f(step, 'npages'), name === 'HMM_DMIRROR_RELEASE' ? 1 : 0, 'npages');
  const arg: Record<string, unknown> = {
    addr: ctx.optNum(f(step, 'addr'), 0, 'addr'),
    npages,
    cpages: 0,
    faults: 0,
  };
  if (f(step, 'ptr') !== undefined) arg.ptr = ctx.num(f(step, 'ptr'), 'ptr');
  else if (READS_BACK.has(name)) arg.buf = ctx.userBuffer(npages * PAGE_SIZE);
  else if (name === 'HMM_DMIRROR_WRITE') {
    const len = npages * PAGE_SIZE;
    arg.buf =
      f(step, 'data') === undefined || len > MAX_USER_BUFFER
        ? ctx.userBuffer(len)
        : dataOf(f(step, 'data'), len);
  } else if (name === 'HMM_DMIRROR_SNAPSHOT') arg.buf = ctx.userBuffer(npages);
  if (name === 'HMM_DMIRROR_FLAGS') {
    // The kernel passes the flags in the npages field.
    arg.npages = flagBits(f(step, 'flags'), DMIRROR_FLAGS, 'dmirror');
  }
  const fd = ctx.num(f(step, 'fd'), 'fd');
  const ret = yield* ctx.sc.sysIoctl(ctx.sys, fd, name, arg, ctx.fileOwners.get(fd));
  const r: OpResult = { ret, outputs: { cpages: arg.cpages, faults: arg.faults } };
  if (READS_BACK.has(name) && arg.buf instanceof Uint8Array) r.data = arg.buf;
  if (name === 'HMM_DMIRROR_SNAPSHOT' && arg.buf instanceof Uint8Array) r.bytes = [...arg.buf];
  return r;
}

export const dmirrorOps: Record<string, OpHandler> = {
  *dmirror_open(ctx, step) {
    const proc = ctx.proc(f(step, 'proc'));
    const ret = yield* ctx.k.dmirror.dmirrorOpen(ctx.sys, String(f(step, 'device')), proc);
    if (!isErr(ret)) {
      ctx.openFiles.set(ret, 'dmirror');
      ctx.fileOwners.set(ret, proc);
    }
    return { ret };
  },
  *dmirror_close(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const ret = yield* ctx.sc.sysClose(ctx.sys, fd);
    if (!isErr(ret)) ctx.openFiles.delete(fd);
    return { ret };
  },
  ...Object.fromEntries(
    HMM_DMIRROR_IOCTLS.map((name) => [
      name,
      (ctx: ScenarioContext, step: StepT) => dmirrorIoctl(ctx, step, name),
    ]),
  ),
};
