/**
 * Linux errno values (asm-generic/errno-base.h, errno.h) and the typed error that carries one.
 * Modelled kernel functions return `-errno` numbers like the kernel does; the public API turns a
 * negative return into a KernelError so callers can test `.errno` or `.code`.
 */
// Every kernel module imports this one: claim the realm for this copy of hetmem (lib/instance.ts).
import '../lib/instance.ts';

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ELOOP: 40,
  ETIME: 62,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ETIMEDOUT: 110,
  EMSGSIZE: 90,
  /** Kernel-internal (include/linux/errno.h): a wait a signal ended; the syscall restarts or fails with EINTR. */
  ERESTARTSYS: 512,
  ENOTSUPP: 524,
} as const;

export type ErrnoName = keyof typeof Errno;
export type ErrnoValue = (typeof Errno)[ErrnoName];

/** EDEADLOCK is an alias of EDEADLK on x86. */
export const EDEADLOCK = Errno.EDEADLK;

const namesByValue = new Map<number, ErrnoName>(
  (Object.entries(Errno) as [ErrnoName, number][]).map(([name, value]) => [value, name]),
);

export function errnoName(errno: number): string {
  const value = Math.abs(errno);
  return namesByValue.get(value) ?? `E#${value}`;
}

export function errnoValue(name: string): number | undefined {
  const n = name === 'EDEADLOCK' ? 'EDEADLK' : name;
  return n in Errno ? Errno[n as ErrnoName] : undefined;
}

/** An error a modelled kernel path returned. `errno` is positive (EINVAL = 22). */
export class KernelError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(errno: number, message?: string) {
    const value = Math.abs(errno);
    const code = errnoName(value);
    super(message ? `${code}: ${message}` : code);
    this.name = 'KernelError';
    this.errno = value;
    this.code = code;
  }
}

/** True for a kernel-style negative errno return. */
export function isErr(ret: number): boolean {
  return ret < 0 && ret >= -4095;
}

/** Throws KernelError for a negative kernel return, passes other values through. */
export function check(ret: number, what?: string): number {
  if (isErr(ret)) throw new KernelError(-ret, what);
  return ret;
}

/** Internal invariant broken: a bug in the model, never an expected kernel outcome. */
export class ModelBug extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelBug';
  }
}

export function BUG_ON(cond: boolean, message: string): void {
  if (cond) throw new ModelBug(message);
}
