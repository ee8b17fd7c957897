/**
 * iommufd ops: open/close and the ioctls by their uAPI names. The step's fields are the kernel
 * struct's field names; the handler builds the argument object from them (names and sizes
 * evaluated, flag names turned into bits), calls the ioctl, and reads the op's output fields back
 * from the same object, as the kernel copies the struct back to user space.
 *
 * The selftest ops (IOMMU_TEST_OP_*) are one ioctl in the kernel, IOMMU_TEST_CMD, whose `op`
 * selects a member of a union: { size, op, id, <member>: { ...fields } }. A step names the op and
 * gives `id` and the member's fields flat; the handler nests them.
 *
 * Where the kernel reads or writes user memory through a pointer field (the ACCESS_RW buffer
 * `uptr`, the DIRTY bitmap `uptr`, the GET_DIRTY_BITMAP bitmap `data`) and the step gives no
 * pointer, the handler maps a scratch buffer in the calling process for the duration of the
 * ioctl, fills it from the step (`data`, `dirty`), and reads the result back from it, as a test
 * program would with a stack buffer. The scratch mapping is gone when the step ends.
 */
import { Errno, isErr } from '../../kernel/errno.ts';
import {
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  PAGE_RESPONSE_SIZE,
  PGFAULT_SIZE,
  VEVENT_HEADER_SIZE,
} from '../../kernel/iommufd/index.ts';
import type { IommufdCtx } from '../../kernel/iommufd/index.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../kernel/mm/mman.ts';
import type { Process } from '../../kernel/system.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { MAX_USER_BUFFER, type OpResult, type ScenarioContext } from '../context.ts';
import { OPS, type StepT } from '../schema.ts';
import { dataOf } from './mm.ts';
import { u64Value } from '../values.ts';
import { f, flagBits, type OpHandler } from './types.ts';

const MAP_FLAGS = { FIXED_IOVA: 1, WRITEABLE: 2, READABLE: 4 };

/** Flag names per ioctl (include/uapi/linux/iommufd.h, drivers/iommu/iommufd/iommufd_test.h). */
const FLAG_TABLES: Record<string, Record<string, number>> = {
  IOMMU_IOAS_MAP: MAP_FLAGS,
  IOMMU_IOAS_MAP_FILE: MAP_FLAGS,
  IOMMU_IOAS_COPY: MAP_FLAGS,
  IOMMU_HWPT_ALLOC: { NEST_PARENT: 1, DIRTY_TRACKING: 2, FAULT_ID_VALID: 1 << 2, PASID: 1 << 3 },
  IOMMU_GET_HW_INFO: { INPUT_TYPE: 1 },
  IOMMU_HWPT_SET_DIRTY_TRACKING: { ENABLE: 1 },
  IOMMU_HWPT_GET_DIRTY_BITMAP: { NO_CLEAR: 1 },
  IOMMU_TEST_OP_CREATE_ACCESS: { NEEDS_PIN_PAGES: 1 },
  IOMMU_TEST_OP_ACCESS_PAGES: { WRITE: 1, SYZ: 1 << 16 },
  IOMMU_TEST_OP_ACCESS_RW: { WRITE: 1, SLOW_PATH: 1 << 2 },
};
/** MOCK_FLAGS_DEVICE_* of iommufd_test.h (MOCK_DOMAIN with dev_flags is MOCK_DOMAIN_FLAGS). */
const MOCK_DEV_FLAGS: Record<string, number> = { NO_DIRTY: 1, HUGE_IOVA: 2, PASID: 4 };
const OPTION_IDS: Record<string, number> = { RLIMIT_MODE: 0, HUGE_PAGES: 1 };
const OPTION_OPS: Record<string, number> = { SET: 0, GET: 1 };

/** Step fields that are not plain numbers of the struct. */
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
  'dev_flags',
]);

/** The union member of IOMMU_TEST_CMD each selftest op fills. */
const TEST_MEMBERS: Record<string, string> = {
  IOMMU_TEST_OP_MOCK_DOMAIN: 'mock_domain',
  IOMMU_TEST_OP_ADD_RESERVED: 'add_reserved',
  IOMMU_TEST_OP_MD_CHECK_MAP: 'check_map',
  IOMMU_TEST_OP_MD_CHECK_REFS: 'check_refs',
  IOMMU_TEST_OP_CREATE_ACCESS: 'create_access',
  IOMMU_TEST_OP_ACCESS_PAGES: 'access_pages',
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: 'destroy_access_pages',
  IOMMU_TEST_OP_ACCESS_RW: 'access_rw',
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: 'memory_limit',
  IOMMU_TEST_OP_DIRTY: 'dirty',
  IOMMU_TEST_OP_TRIGGER_VEVENT: 'trigger_vevent',
  IOMMU_TEST_OP_TRIGGER_IOPF: 'trigger_iopf',
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: 'mock_domain_replace',
  IOMMU_TEST_OP_PASID_ATTACH: 'pasid_attach',
  IOMMU_TEST_OP_PASID_REPLACE: 'pasid_replace',
  IOMMU_TEST_OP_PASID_DETACH: 'pasid_detach',
  IOMMU_TEST_OP_PASID_CHECK_HWPT: 'pasid_check',
};
/** Selftest ops whose union member has no flags field. */
const NO_FLAGS = new Set([
  'IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT',
  'IOMMU_TEST_OP_DESTROY_ACCESS_PAGES',
  'IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE',
  'IOMMU_TEST_OP_PASID_ATTACH',
  'IOMMU_TEST_OP_PASID_REPLACE',
  'IOMMU_TEST_OP_PASID_DETACH',
  'IOMMU_TEST_OP_PASID_CHECK_HWPT',
  'IOMMU_TEST_OP_TRIGGER_IOPF',
  'IOMMU_TEST_OP_TRIGGER_VEVENT',
]);

/** IOMMU_IOAS_IOVA_RANGES without num_iovas: room for this many ranges. */
const DEFAULT_IOVA_RANGES = 16;

function defaultMapFlags(name: string, step: StepT): number | undefined {
  if (name !== 'IOMMU_IOAS_MAP' && name !== 'IOMMU_IOAS_MAP_FILE' && name !== 'IOMMU_IOAS_COPY')
    return undefined;
  const fixed =
    name === 'IOMMU_IOAS_COPY' ? f(step, 'dst_iova') !== undefined : f(step, 'iova') !== undefined;
  return MAP_FLAGS.READABLE | MAP_FLAGS.WRITEABLE | (fixed ? MAP_FLAGS.FIXED_IOVA : 0);
}

/** The plain numeric fields of the step, evaluated, plus flags by name. */
function numericFields(ctx: ScenarioContext, step: StepT, name: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(step)) {
    if (SPECIAL.has(k) || v === undefined) continue;
    out[k] = ctx.u64(v, k);
  }
  const flags = f(step, 'flags');
  if (flags !== undefined) out.flags = flagBits(flags, FLAG_TABLES[name] ?? {}, name);
  else out.flags = defaultMapFlags(name, step) ?? 0;
  return out;
}

/** Builds the argument of a plain iommufd ioctl (not IOMMU_TEST_CMD) from the step's fields. */
export function buildArg(ctx: ScenarioContext, step: StepT, name: string): Record<string, unknown> {
  // The struct size user space passes (the dispatcher checks it like the kernel's min_size rule).
  const arg: Record<string, unknown> = {
    size: ctx.k.iommufd.STRUCTS[name]?.size ?? 0,
    ...numericFields(ctx, step, name),
  };
  const optionId = f(step, 'option_id');
  if (optionId !== undefined)
    arg.option_id = typeof optionId === 'number' ? optionId : OPTION_IDS[optionId as string];
  const optionOp = f(step, 'option_op');
  if (optionOp !== undefined)
    arg.op = typeof optionOp === 'number' ? optionOp : OPTION_OPS[optionOp as string];
  // IOMMU_IOAS_MAP_FILE: the struct's `fd` is the memfd (`fd` of the step is the iommufd).
  if (f(step, 'file') !== undefined) arg.fd = ctx.num(f(step, 'file'), 'file');
  const ranges = f(step, 'allowed_iovas');
  if (Array.isArray(ranges)) {
    arg.allowed_iovas = (ranges as Record<string, unknown>[]).map((r) => ({
      start: ctx.u64(r.start, 'start'),
      last: ctx.u64(r.last, 'last'),
    }));
    arg.num_iovas = ranges.length;
  }
  if (name === 'IOMMU_IOAS_IOVA_RANGES') {
    // The output array user space passes; num_iovas says how many entries it has room for.
    arg.num_iovas ??= DEFAULT_IOVA_RANGES;
    arg.allowed_iovas = [];
  }
  if (name === 'IOMMU_HWPT_GET_DIRTY_BITMAP') arg.page_size ??= PAGE_SIZE;
  return arg;
}

function bitmapIndexes(bitmap: Uint8Array, nbits: number): number[] {
  const out: number[] = [];
  const n = Math.min(nbits, bitmap.length * 8);
  for (let i = 0; i < n; i++) if ((bitmap[i >> 3] & (1 << (i & 7))) !== 0) out.push(i);
  return out;
}

/** The iommufd context of `fd`, with `current` set to the calling process, or null. */
function callerCtx(ctx: ScenarioContext, step: StepT): IommufdCtx | null {
  const ictx = ctx.k.iommufd.iommufdCtxOf(ctx.sys, ctx.num(f(step, 'fd'), 'fd'));
  if (ictx === null) return null;
  const proc = f(step, 'proc');
  ictx.current = proc !== undefined ? ctx.proc(proc) : ictx.opener;
  return ictx;
}

/**
 * Runs `body` with a scratch user buffer of `length` bytes mapped in `proc` (holding `init` if
 * given), then reads the buffer back and unmaps it. The address is 0 if it cannot be mapped (the
 * ioctl then reports the bad pointer itself).
 */
function* withScratch<T>(
  ctx: ScenarioContext,
  proc: Process,
  length: number,
  init: Uint8Array | null,
  body: (addr: number) => KGen<T>,
): KGen<{ value: T; bytes: Uint8Array }> {
  const sc = ctx.sc;
  const size = Math.max(PAGE_SIZE, Math.ceil(length / PAGE_SIZE) * PAGE_SIZE);
  // A buffer the model will not hold is a bad pointer: the ioctl reports it (or fails earlier).
  if (length > MAX_USER_BUFFER) return { value: yield* body(0), bytes: new Uint8Array(0) };
  const addr =
    proc.mm === null
      ? -1
      : yield* sc.sysMmap(ctx.sys, proc, 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (isErr(addr) || addr < 0) return { value: yield* body(0), bytes: new Uint8Array(length) };
  if (init !== null && init.length > 0) yield* sc.cpuWrite(ctx.sys, proc, addr, init);
  const value = yield* body(addr);
  const bytes = length > 0 ? (yield* sc.cpuRead(ctx.sys, proc, addr, length)).data : new Uint8Array(0);
  yield* sc.sysMunmap(ctx.sys, proc, addr, size);
  return { value, bytes };
}

function* plainIoctl(ctx: ScenarioContext, step: StepT, name: string): KGen<OpResult> {
  const fd = ctx.num(f(step, 'fd'), 'fd');
  const ictx = callerCtx(ctx, step);
  const arg = buildArg(ctx, step, name);
  const spec = OPS[name];
  const outputs: Record<string, unknown> = {};
  let ret: number;
  if (name === 'IOMMU_HWPT_GET_DIRTY_BITMAP' && ictx !== null) {
    // `data` points at the user bitmap the kernel ORs the dirty bits into: one bit per page_size.
    const nbits = Math.floor(Number(arg.length ?? 0) / Number(arg.page_size));
    const r = yield* withScratch(ctx, ictx.current, Math.ceil(nbits / 8), null, (addr) => {
      arg.data = addr;
      return ctx.sc.sysIoctl(ctx.sys, fd, name, arg, ictx?.current);
    });
    ret = r.value;
    outputs.dirty = bitmapIndexes(r.bytes, nbits);
  } else {
    ret = yield* ctx.sc.sysIoctl(ctx.sys, fd, name, arg, ictx?.current);
  }
  for (const o of spec.outputs) if (outputs[o] === undefined) outputs[o] = arg[o];
  if (name === 'IOMMU_IOAS_IOVA_RANGES' && Array.isArray(arg.allowed_iovas)) {
    outputs.allowed_iovas = (arg.allowed_iovas as Record<string, unknown>[]).filter((r) => r !== undefined);
  }
  const r: OpResult = { ret, outputs };
  if (spec.main !== undefined && !isErr(ret)) {
    const v = arg[spec.main];
    if (typeof v === 'number' || typeof v === 'bigint') r.main = typeof v === 'bigint' ? u64Value(v) : v;
  }
  if (name === 'IOMMU_VEVENTQ_ALLOC' && !isErr(ret)) ctx.openFiles.set(Number(arg.out_veventq_fd), 'veventq');
  if (name === 'IOMMU_FAULT_QUEUE_ALLOC' && !isErr(ret)) ctx.openFiles.set(Number(arg.out_fault_fd), 'fault');
  return r;
}

function* testIoctl(ctx: ScenarioContext, step: StepT, name: string): KGen<OpResult> {
  const fd = ctx.num(f(step, 'fd'), 'fd');
  const ictx = callerCtx(ctx, step);
  const selftest = ctx.k.iommufdSelftest;
  let member = TEST_MEMBERS[name];
  let op = (selftest as unknown as Record<string, number>)[name];
  const fields = numericFields(ctx, step, name);
  const id = fields.id ?? 0;
  delete fields.id;
  if (name === 'IOMMU_TEST_OP_MOCK_DOMAIN') {
    delete fields.flags;
    const devFlags = f(step, 'dev_flags');
    if (devFlags !== undefined) {
      op = selftest.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS;
      member = 'mock_domain_flags';
      fields.dev_flags = flagBits(devFlags, MOCK_DEV_FLAGS, 'mock device');
    }
  }
  if (NO_FLAGS.has(name)) delete fields.flags;
  const cmd: Record<string, unknown> = {
    size: ctx.k.iommufd.STRUCTS.IOMMU_TEST_CMD.size,
    op,
    id,
    [member]: fields,
  };
  const call = (): KGen<number> => ctx.sc.sysIoctl(ctx.sys, fd, 'IOMMU_TEST_CMD', cmd, ictx?.current);
  const r: OpResult = { ret: 0 };
  const length = Number(fields.length ?? 0);
  if (name === 'IOMMU_TEST_OP_ACCESS_RW' && fields.uptr === undefined && ictx !== null) {
    // The buffer the access reads into, or (WRITE) writes from.
    const write = (Number(fields.flags) & FLAG_TABLES[name].WRITE) !== 0;
    const init =
      write && f(step, 'data') !== undefined && length <= MAX_USER_BUFFER
        ? dataOf(f(step, 'data'), length)
        : null;
    const s = yield* withScratch(ctx, ictx.current, length, init, (addr) => {
      fields.uptr = addr;
      return call();
    });
    r.ret = s.value;
    if (!write) r.data = s.bytes;
  } else if (name === 'IOMMU_TEST_OP_DIRTY' && fields.uptr === undefined && ictx !== null) {
    // The bitmap of pages (of page_size) to mark dirty in the mock domain.
    fields.page_size ??= PAGE_SIZE;
    const nbits = Math.floor(length / Number(fields.page_size));
    const bitmap = ctx.userBuffer(Math.ceil(nbits / 8));
    for (const i of (f(step, 'dirty') as number[] | undefined) ?? []) bitmap[i >> 3] |= 1 << (i & 7);
    const s = yield* withScratch(ctx, ictx.current, bitmap.length || Math.ceil(nbits / 8), bitmap, (addr) => {
      fields.uptr = addr;
      return call();
    });
    r.ret = s.value;
  } else {
    r.ret = yield* call();
  }
  const out = cmd[member] as Record<string, unknown>;
  const spec = OPS[name];
  r.outputs = Object.fromEntries(spec.outputs.map((o) => [o, out[o]]));
  if (spec.main !== undefined && !isErr(r.ret)) {
    const v = out[spec.main];
    if (typeof v === 'number' || typeof v === 'bigint') r.main = typeof v === 'bigint' ? u64Value(v) : v;
  }
  if (name === 'IOMMU_TEST_OP_CREATE_ACCESS' && r.main !== undefined)
    ctx.openFiles.set(Number(r.main), 'access');
  return r;
}

/** The mock vIOMMU's event data: struct iommu_viommu_event_selftest { u32 virt_id }. */
const MOCK_VEVENT_DATA_SIZE = 4;

const IOCTLS = Object.keys(OPS).filter((op) => op.startsWith('IOMMU_'));

/** read(2)/write(2) counts a step may give: the model holds the buffer (one page of records more is plenty). */
const MAX_EVENTQ_COUNT = 1024 * 1024;

/** A read or write count, or null if the model will not hold a buffer that large (the copy faults). */
function eventqCount(ctx: ScenarioContext, step: StepT, fallback: number): number | null {
  const count = ctx.optNum(f(step, 'count'), fallback);
  return count > MAX_EVENTQ_COUNT ? null : count;
}

export const iommufdOps: Record<string, OpHandler> = {
  *iommufd_open(ctx, step) {
    const ret = ctx.k.iommufd.iommufdOpen(ctx.sys, ctx.proc(f(step, 'proc')));
    yield { kind: 'step', label: 'iommufd_open' };
    if (!isErr(ret)) ctx.openFiles.set(ret, 'iommufd');
    return { ret };
  },
  *iommufd_close(ctx, step) {
    const fd = ctx.num(f(step, 'fd'));
    const ret = yield* ctx.sc.sysClose(ctx.sys, fd);
    if (!isErr(ret)) ctx.openFiles.delete(fd);
    return { ret };
  },
  *fault_read(ctx, step) {
    const count = eventqCount(ctx, step, 4 * PGFAULT_SIZE);
    // A count the model will not hold: nothing fits a buffer that cannot be copied to (-EFAULT).
    if (count === null) return { ret: -Errno.EFAULT };
    const buf = new Uint8Array(count);
    const ret = yield* ctx.k.iommufd.faultFdRead(ctx.sys, ctx.num(f(step, 'fd'), 'fd'), buf);
    const faults = isErr(ret) ? 0 : Math.floor(ret / PGFAULT_SIZE);
    const cookie = faults > 0 ? new DataView(buf.buffer).getUint32(36, true) : 0;
    const r: OpResult = { ret, outputs: { cookie, faults } };
    if (faults > 0) r.main = cookie;
    return r;
  },
  *fault_respond(ctx, step) {
    const count = eventqCount(ctx, step, PAGE_RESPONSE_SIZE);
    if (count === null) return { ret: -Errno.EFAULT };
    const buf = new Uint8Array(count);
    const v = new DataView(buf.buffer);
    const cookie = Number(BigInt.asUintN(32, BigInt(ctx.u64(f(step, 'cookie'), 'cookie'))));
    const code = Number(BigInt.asUintN(32, BigInt(ctx.u64(f(step, 'code') ?? 0, 'code'))));
    for (let off = 0; off + PAGE_RESPONSE_SIZE <= count; off += PAGE_RESPONSE_SIZE) {
      v.setUint32(off, cookie, true);
      v.setUint32(off + 4, code, true);
    }
    return { ret: yield* ctx.k.iommufd.faultFdWrite(ctx.sys, ctx.num(f(step, 'fd'), 'fd'), buf) };
  },
  *veventq_read(ctx, step) {
    const count = eventqCount(ctx, step, PAGE_SIZE);
    if (count === null) return { ret: -Errno.EFAULT };
    const buf = new Uint8Array(count);
    const ret = yield* ctx.k.iommufd.veventqFdRead(ctx.sys, ctx.num(f(step, 'fd'), 'fd'), buf);
    // Walk the headers: each event is a header and its driver data (the mock's: one u32).
    const v = new DataView(buf.buffer);
    let events = 0;
    for (let off = 0; !isErr(ret) && off + VEVENT_HEADER_SIZE <= ret; events++) {
      const lost = (v.getUint32(off, true) & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0;
      off += VEVENT_HEADER_SIZE + (lost ? 0 : MOCK_VEVENT_DATA_SIZE);
    }
    const first = !isErr(ret) && ret >= VEVENT_HEADER_SIZE;
    return {
      ret,
      outputs: {
        events,
        flags: first ? v.getUint32(0, true) : 0,
        sequence: first ? v.getUint32(4, true) : 0,
      },
    };
  },
  ...(Object.fromEntries(
    IOCTLS.map((name) => [
      name,
      (ctx: ScenarioContext, step: StepT) =>
        TEST_MEMBERS[name] !== undefined ? testIoctl(ctx, step, name) : plainIoctl(ctx, step, name),
    ]),
  ) as Record<string, OpHandler>),
};
