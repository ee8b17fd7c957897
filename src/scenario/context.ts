/**
 * The state a scenario run carries between steps: the System, its processes by scenario name, the
 * names bound by `save`, and the files the scenario holds open.
 */
import type { CallbackBounds } from './driver_module.ts';
import type { Process, System } from '../kernel/system.ts';
import type { KernelApi, PagemapEntry } from './kernel.ts';
import type { ParsedScenario } from './parse.ts';
import type { StepT } from './schema.ts';
import {
  evalAddress,
  evalU64,
  evalU64Value,
  isSize,
  parseSize,
  UnboundError,
  ValueError,
  type U64Value,
} from './values.ts';

/** What an op handler returns: the kernel's return value and the outputs it wrote. */
export interface OpResult {
  /** The return value, or -errno. */
  ret: number;
  /** Output fields by kernel name (cpages, out_ioas_id, ...). */
  outputs?: Record<string, unknown>;
  /** Bytes a read returned (cpu_read, pread, HMM_DMIRROR_READ, ACCESS_RW). */
  data?: Uint8Array;
  /** SNAPSHOT bytes. */
  bytes?: number[];
  /** pagemap entries. */
  pages?: PagemapEntry[];
  /** The value `save: NAME` binds when it is not `ret` (an output field's value, exact). */
  main?: U64Value;
  /** Short human notes on what happened (a child pid, an fd kind). */
  notes?: string[];
  /** Failures the op itself found (check, expect_stats): the step fails with them. */
  failures?: string[];
}

/** An op the model cannot run (no handler, or a case the model leaves out): the step fails with this message. */
export class NotModelled extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotModelled';
  }
}

/** Kinds of file the scenario holds, to close them at the end with the right op. */
export type FileKind =
  'dmirror' | 'legacy_mirror' | 'iommufd' | 'memfd' | 'access' | 'veventq' | 'fault' | 'device';

/**
 * The largest user buffer a step gets (cpu_read/cpu_write data, the READ/WRITE buffer of an ioctl).
 * The model keeps those bytes, so a request above this is answered as the kernel answers a buffer
 * it cannot use: the copy faults (-EFAULT), or the driver's own allocation fails first (-ENOMEM).
 */
export const MAX_USER_BUFFER = 256 * 1024 * 1024;

/**
 * The bytes one step may move and keep in its report (pread, pwrite, a device read): above
 * MAX_USER_BUFFER the step is a value error that names it, `what` ("a write of N bytes").
 */
export function checkStepBytes(bytes: number, what: string): void {
  if (bytes > MAX_USER_BUFFER)
    throw new ValueError(`${what} is above the ${MAX_USER_BUFFER >> 20}MiB a step may move; split it`);
}

/**
 * User buffers handed out again: a search runs the same steps in schedule after schedule, each on
 * a state restored from the same snapshot, so the buffers of a schedule that ended are free. A
 * buffer handed out is zeroed, as a fresh one is; reset() frees them all at the start of a
 * schedule. The pool lives outside the snapshot (it is one of the objects a capture does not walk).
 */
export class UserBufferPool {
  private readonly buffers: Uint8Array[] = [];
  private next = 0;

  /** The schedule that held the buffers is over: hand them out again, in the same order. */
  reset(): void {
    this.next = 0;
  }

  take(len: number): Uint8Array {
    const i = this.next++;
    const b = this.buffers[i];
    if (b !== undefined && b.length === len) return b.fill(0);
    const fresh = new Uint8Array(len);
    this.buffers[i] = fresh;
    return fresh;
  }
}

export class ScenarioContext {
  readonly procs = new Map<string, Process>();
  /** Bound names: numbers, or bigints for u64 outputs above 2^53 (an IOVA high in the space). */
  readonly names = new Map<string, U64Value>();
  readonly openFiles = new Map<number, FileKind>();
  /** The process that opened each device file: the caller (`current`) of its ioctls. */
  readonly fileOwners = new Map<number, Process>();
  /** Scheduler steps one op may take before it is reported as a livelock (default: by memory size). */
  stepBound: number | undefined;
  /** Set when a step livelocked: what happened, for the steps that can no longer run. */
  livelocked: string | null = null;
  /** The bound on the code of drivers loaded from modules (null: the scenario loads none). */
  bounds: CallbackBounds | null = null;
  /** Where user buffers come from when a search reuses them (null: a new buffer every time). */
  buffers: UserBufferPool | null = null;

  constructor(
    readonly sys: System,
    readonly k: KernelApi,
    readonly parsed: ParsedScenario,
  ) {}

  /**
   * Evaluates a numeric field for a syscall or driver argument the model takes as a number. A value
   * above 2^53 (a u64 written in the file) lies far beyond every user address (2^47) and reaches
   * the model as the nearest double, which takes the same error path as the exact value; u64 uAPI
   * fields use u64() instead and stay exact.
   */
  num(v: unknown, field = 'value'): number {
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v !== 'string') throw new ValueError(`field '${field}' is not a number`);
    // Sizes start with a digit; names never do (checked first: a refused parse costs an Error).
    if (/^\s*[0-9]/.test(v) && isSize(v)) return parseSize(v);
    try {
      return evalAddress(v, (n) => {
        const b = this.names.get(n);
        return b === undefined ? undefined : Number(b);
      });
    } catch (e) {
      if (!(e instanceof ValueError)) throw e;
      return Number(evalU64(v, (n) => this.names.get(n)));
    }
  }

  /** Evaluates a u64 uAPI field exactly: a number up to 2^53 - 1, a bigint above. */
  u64(v: unknown, field = 'value'): U64Value {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'bigint')
      throw new ValueError(`field '${field}' is not a number`);
    return evalU64Value(v, (n) => this.names.get(n));
  }

  /**
   * Evaluates an unsigned long syscall argument (an mm syscall's address or length) exactly: a
   * number as written (the syscall entry reinterprets a negative one as the C ABI does), anything
   * else as a u64 (a size, 0x hex or decimal of any size, a name expression), a bigint above 2^53.
   */
  ulong(v: unknown, field = 'value'): U64Value {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && /^\s*[0-9]/.test(v) && isSize(v)) return parseSize(v);
    return this.u64(v, field);
  }

  optUlong(v: unknown, dflt: number, field?: string): U64Value {
    return v === undefined ? dflt : this.ulong(v, field);
  }

  /** A zeroed user buffer of `len` bytes, or an empty one when `len` is out of the model's reach. */
  userBuffer(len: number): Uint8Array {
    if (!(Number.isSafeInteger(len) && len >= 0 && len <= MAX_USER_BUFFER)) return new Uint8Array(0);
    return this.buffers !== null ? this.buffers.take(len) : new Uint8Array(len);
  }

  optNum(v: unknown, dflt: number, field?: string): number {
    return v === undefined ? dflt : this.num(v, field);
  }

  proc(name: unknown): Process {
    const p = typeof name === 'string' ? this.procs.get(name) : undefined;
    if (p === undefined) {
      // The parser saw every process listed or forked: one not listed is a fork that failed.
      if (typeof name === 'string' && !(this.parsed.scenario.processes ?? []).includes(name))
        throw new UnboundError(`process '${name}' does not exist: the fork that creates it failed`);
      throw new ValueError(`unknown process '${String(name)}'`);
    }
    return p;
  }

  /** The syscall layer. */
  get sc(): KernelApi['syscalls'] {
    return this.k.syscalls;
  }

  /** Step field accessor (the schema already checked the types). */
  static field(step: StepT, name: string): unknown {
    return (step as Record<string, unknown>)[name];
  }
}
