/** File ops: memfd_create, ftruncate, pread/pwrite, close. */
import { isErr } from '../../kernel/errno.ts';
import * as mman from '../../kernel/mm/mman.ts';
import { dataOf } from './mm.ts';
import { f, flagBits, type OpHandler } from './types.ts';

const MFD: Record<string, number> = {
  cloexec: mman.MFD_CLOEXEC,
  allow_sealing: mman.MFD_ALLOW_SEALING,
  hugetlb: mman.MFD_HUGETLB,
};

export const fileOps: Record<string, OpHandler> = {
  *memfd_create(ctx, step) {
    const name = typeof f(step, 'name') === 'string' ? String(f(step, 'name')) : 'memfd';
    const ret = yield* ctx.sc.sysMemfdCreate(ctx.sys, name, flagBits(f(step, 'flags'), MFD, 'memfd'));
    if (!isErr(ret)) ctx.openFiles.set(ret, 'memfd');
    return { ret };
  },
  *ftruncate(ctx, step) {
    const ret = yield* ctx.sc.sysFtruncate(ctx.sys, ctx.num(f(step, 'fd')), ctx.num(f(step, 'length')));
    return { ret };
  },
  *pwrite(ctx, step) {
    const len = f(step, 'length') === undefined ? undefined : ctx.num(f(step, 'length'));
    const ret = yield* ctx.sc.sysPwrite(
      ctx.sys,
      ctx.num(f(step, 'fd')),
      dataOf(f(step, 'data'), len),
      ctx.optNum(f(step, 'offset'), 0),
    );
    return { ret };
  },
  *pread(ctx, step) {
    const r = yield* ctx.sc.sysPread(
      ctx.sys,
      ctx.num(f(step, 'fd')),
      ctx.num(f(step, 'length')),
      ctx.optNum(f(step, 'offset'), 0),
    );
    return { ret: r.ret, data: r.data };
  },
  *close(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const ret = yield* ctx.sc.sysClose(ctx.sys, fd);
    if (!isErr(ret)) ctx.openFiles.delete(fd);
    return { ret };
  },
};
