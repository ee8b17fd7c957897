/** File ops: memfd_create, fcntl (seals), dup, open, ftruncate, fallocate, pread/pwrite, read/write/lseek, close. */
import { isErr } from '../../kernel/errno.ts';
import * as mman from '../../kernel/mm/mman.ts';
import { MAX_USER_BUFFER, checkStepBytes } from '../context.ts';
import { dataOf } from './mm.ts';
import { f, flagBits, type OpHandler } from './types.ts';

/** memfd_create() flags by the scenario's names. */
export const MFD: Record<string, number> = {
  cloexec: mman.MFD_CLOEXEC,
  allow_sealing: mman.MFD_ALLOW_SEALING,
  hugetlb: mman.MFD_HUGETLB,
  noexec_seal: mman.MFD_NOEXEC_SEAL,
  exec: mman.MFD_EXEC,
};

/** File seals by the scenario's names. */
const SEALS: Record<string, number> = {
  seal: mman.F_SEAL_SEAL,
  shrink: mman.F_SEAL_SHRINK,
  grow: mman.F_SEAL_GROW,
  write: mman.F_SEAL_WRITE,
  future_write: mman.F_SEAL_FUTURE_WRITE,
  exec: mman.F_SEAL_EXEC,
};

/** fcntl() commands by the scenario's names. */
const FCNTL: Record<string, number> = { add_seals: mman.F_ADD_SEALS, get_seals: mman.F_GET_SEALS };

/** open() flags by the scenario's names (rdonly is 0: the access mode when no other is named). */
export const OPEN: Record<string, number> = {
  rdonly: mman.O_RDONLY,
  wronly: mman.O_WRONLY,
  rdwr: mman.O_RDWR,
  accmode: mman.O_ACCMODE,
  creat: mman.O_CREAT,
  excl: mman.O_EXCL,
  trunc: mman.O_TRUNC,
  append: mman.O_APPEND,
  directory: mman.O_DIRECTORY,
  nofollow: mman.O_NOFOLLOW,
  cloexec: mman.O_CLOEXEC,
  path: mman.O_PATH,
};

/** lseek() whence values by the scenario's names. */
const SEEK: Record<string, number> = {
  set: mman.SEEK_SET,
  cur: mman.SEEK_CUR,
  end: mman.SEEK_END,
  data: mman.SEEK_DATA,
  hole: mman.SEEK_HOLE,
};

/** fallocate() mode bits by the scenario's names. */
export const FALLOC: Record<string, number> = {
  keep_size: mman.FALLOC_FL_KEEP_SIZE,
  punch_hole: mman.FALLOC_FL_PUNCH_HOLE,
  collapse_range: mman.FALLOC_FL_COLLAPSE_RANGE,
  zero_range: mman.FALLOC_FL_ZERO_RANGE,
  insert_range: mman.FALLOC_FL_INSERT_RANGE,
  unshare_range: mman.FALLOC_FL_UNSHARE_RANGE,
  write_zeroes: mman.FALLOC_FL_WRITE_ZEROES,
};

export const fileOps: Record<string, OpHandler> = {
  *memfd_create(ctx, step) {
    const name = typeof f(step, 'name') === 'string' ? String(f(step, 'name')) : 'memfd';
    const ret = yield* ctx.sc.sysMemfdCreate(ctx.sys, name, flagBits(f(step, 'flags'), MFD, 'memfd'));
    if (!isErr(ret)) ctx.openFiles.set(ret, 'memfd');
    return { ret };
  },
  *fcntl(ctx, step) {
    const ret = yield* ctx.sc.sysFcntl(
      ctx.sys,
      ctx.num(f(step, 'fd')),
      FCNTL[String(f(step, 'cmd'))],
      flagBits(f(step, 'seals'), SEALS, 'seal'),
    );
    return { ret };
  },
  *ftruncate(ctx, step) {
    const ret = yield* ctx.sc.sysFtruncate(ctx.sys, ctx.num(f(step, 'fd')), ctx.num(f(step, 'length')));
    return { ret };
  },
  *fallocate(ctx, step) {
    const ret = yield* ctx.sc.sysFallocate(
      ctx.sys,
      ctx.num(f(step, 'fd')),
      flagBits(f(step, 'mode'), FALLOC, 'fallocate mode'),
      ctx.optNum(f(step, 'offset'), 0),
      ctx.num(f(step, 'length')),
    );
    return { ret };
  },
  *pwrite(ctx, step) {
    const len = f(step, 'length') === undefined ? undefined : ctx.num(f(step, 'length'));
    if (len !== undefined) checkStepBytes(len, `a write of ${len} bytes`);
    const ret = yield* ctx.sc.sysPwrite(
      ctx.sys,
      ctx.num(f(step, 'fd')),
      dataOf(f(step, 'data'), len),
      ctx.optNum(f(step, 'offset'), 0),
    );
    return { ret };
  },
  *pread(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const len = ctx.num(f(step, 'length'));
    const offset = ctx.optNum(f(step, 'offset'), 0);
    // The bytes a read returns are kept in the report: what the file holds past the offset now
    // must fit one step's buffer (a longer length over a short file is fine).
    const file = ctx.sys.fileOf(fd);
    if (file !== null && offset >= 0 && len >= 0) {
      const n = Math.min(len, Math.max(0, file.inode.size - offset));
      checkStepBytes(n, `a read of ${n} bytes`);
    }
    // At most one byte more, should another thread grow the file meanwhile.
    const r = yield* ctx.sc.sysPread(ctx.sys, fd, Math.min(len, MAX_USER_BUFFER + 1), offset);
    checkStepBytes(r.ret, `a read of ${r.ret} bytes`);
    return { ret: r.ret, data: r.data };
  },
  *read(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const len = ctx.num(f(step, 'length'));
    // As pread: what the file holds past the position now must fit one step's buffer.
    const file = ctx.sys.fileOf(fd);
    if (file !== null && len >= 0) {
      const n = Math.min(len, Math.max(0, file.inode.size - file.pos));
      checkStepBytes(n, `a read of ${n} bytes`);
    }
    const r = yield* ctx.sc.sysRead(ctx.sys, fd, Math.min(len, MAX_USER_BUFFER + 1));
    checkStepBytes(r.ret, `a read of ${r.ret} bytes`);
    return { ret: r.ret, data: r.data };
  },
  *write(ctx, step) {
    const len = f(step, 'length') === undefined ? undefined : ctx.num(f(step, 'length'));
    if (len !== undefined) checkStepBytes(len, `a write of ${len} bytes`);
    const ret = yield* ctx.sc.sysWrite(ctx.sys, ctx.num(f(step, 'fd')), dataOf(f(step, 'data'), len));
    return { ret };
  },
  *lseek(ctx, step) {
    const ret = yield* ctx.sc.sysLseek(
      ctx.sys,
      ctx.num(f(step, 'fd')),
      ctx.optNum(f(step, 'offset'), 0),
      typeof f(step, 'whence') === 'number' ? (f(step, 'whence') as number) : SEEK[String(f(step, 'whence'))],
    );
    return { ret };
  },
  *dup(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const ret = yield* ctx.sc.sysDup(ctx.sys, fd);
    const kind = ctx.openFiles.get(fd);
    if (!isErr(ret) && kind !== undefined) ctx.openFiles.set(ret, kind);
    return { ret };
  },
  *fchmod(ctx, step) {
    // The mode is a umode_t: the syscall sees the low 16 bits of whatever the caller passed.
    const mode = Number(BigInt(ctx.ulong(f(step, 'mode'), 'mode')) & 0xffffn);
    const ret = yield* ctx.sc.sysFchmod(ctx.sys, ctx.num(f(step, 'fd')), mode);
    return { ret };
  },
  *open(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const kind = ctx.openFiles.get(fd);
    const ret = yield* ctx.sc.sysOpen(
      ctx.sys,
      ctx.proc(f(step, 'proc')),
      `/proc/self/fd/${fd}`,
      flagBits(f(step, 'flags'), OPEN, 'open flag'),
    );
    if (!isErr(ret) && kind !== undefined) ctx.openFiles.set(ret, kind);
    return { ret };
  },
  *close(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const ret = yield* ctx.sc.sysClose(ctx.sys, fd);
    if (!isErr(ret)) ctx.openFiles.delete(fd);
    return { ret };
  },
};
