/**
 * The legacy_mirror device (src/kernel/drivers/legacy_mirror.ts): a mirror on the v5.4 hmm_mirror
 * API: open (hmm_mirror_register), close (hmm_mirror_unregister), the device's fault path over a
 * range (legacy_mirror_fault) and device reads through its page table (legacy_mirror_read).
 */
import { Errno, isErr } from '../../kernel/errno.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import { checkStepBytes, type ScenarioContext } from '../context.ts';
import type { StepT } from '../schema.ts';
import { f, type OpHandler } from './types.ts';

function mirrorOf(ctx: ScenarioContext, step: StepT) {
  return ctx.k.legacyMirror.legacyMirrorOf(ctx.sys, ctx.num(f(step, 'fd'), 'fd'));
}

export const legacyMirrorOps: Record<string, OpHandler> = {
  *legacy_mirror_open(ctx, step) {
    const ret = yield* ctx.k.legacyMirror.legacyMirrorOpen(
      ctx.sys,
      String(f(step, 'device')),
      ctx.proc(f(step, 'proc')),
    );
    if (!isErr(ret)) ctx.openFiles.set(ret, 'legacy_mirror');
    return { ret };
  },
  *legacy_mirror_close(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const ret = yield* ctx.sc.sysClose(ctx.sys, fd);
    if (!isErr(ret)) ctx.openFiles.delete(fd);
    return { ret };
  },
  *legacy_mirror_fault(ctx, step) {
    const mirror = mirrorOf(ctx, step);
    if (mirror === null) return { ret: -Errno.EBADF };
    const addr = ctx.num(f(step, 'addr'), 'addr');
    const npages = ctx.num(f(step, 'npages'), 'npages');
    const ret = yield* ctx.k.legacyMirror.legacyMirrorFault(mirror, addr, npages, f(step, 'write') === true);
    return { ret };
  },
  *legacy_mirror_read(ctx, step) {
    const mirror = mirrorOf(ctx, step);
    if (mirror === null) return { ret: -Errno.EBADF };
    const addr = ctx.num(f(step, 'addr'), 'addr');
    const npages = ctx.num(f(step, 'npages'), 'npages');
    // The pages read are kept in the report, so one step reads at most what a step may move.
    checkStepBytes(npages * PAGE_SIZE, `legacy_mirror_read of ${npages} pages`);
    const data = new Uint8Array(Math.max(0, npages) * PAGE_SIZE);
    const r = yield* ctx.k.legacyMirror.legacyMirrorRead(mirror, addr, npages, data);
    return { ret: r.ret, outputs: { cpages: r.cpages, faults: r.faults }, data };
  },
};
