/**
 * The user interface of the dmirror test device (lib/test_hmm_uapi.h): ioctl names, their
 * command numbers, the FLAGS bits, and the byte encoding SNAPSHOT reports per page.
 *
 * The model dispatches ioctls by name (sysIoctl(fd, name, arg)); the numbers are kept for
 * tools that print or parse the kernel's _IOWR('H', nr, struct hmm_dmirror_cmd) values.
 */
import type { MmStruct } from './sdk/kernel_api.ts';

export const HMM_DMIRROR_READ = 'HMM_DMIRROR_READ';
export const HMM_DMIRROR_WRITE = 'HMM_DMIRROR_WRITE';
export const HMM_DMIRROR_MIGRATE_TO_DEV = 'HMM_DMIRROR_MIGRATE_TO_DEV';
export const HMM_DMIRROR_MIGRATE_TO_SYS = 'HMM_DMIRROR_MIGRATE_TO_SYS';
export const HMM_DMIRROR_SNAPSHOT = 'HMM_DMIRROR_SNAPSHOT';
export const HMM_DMIRROR_EXCLUSIVE = 'HMM_DMIRROR_EXCLUSIVE';
export const HMM_DMIRROR_CHECK_EXCLUSIVE = 'HMM_DMIRROR_CHECK_EXCLUSIVE';
export const HMM_DMIRROR_RELEASE = 'HMM_DMIRROR_RELEASE';
export const HMM_DMIRROR_FLAGS = 'HMM_DMIRROR_FLAGS';

/** The `nr` of each ioctl's _IOWR('H', nr, ...) encoding. */
export const HMM_DMIRROR_IOCTL_NR: Readonly<Record<string, number>> = {
  [HMM_DMIRROR_READ]: 0x00,
  [HMM_DMIRROR_WRITE]: 0x01,
  [HMM_DMIRROR_MIGRATE_TO_DEV]: 0x02,
  [HMM_DMIRROR_MIGRATE_TO_SYS]: 0x03,
  [HMM_DMIRROR_SNAPSHOT]: 0x04,
  [HMM_DMIRROR_EXCLUSIVE]: 0x05,
  [HMM_DMIRROR_CHECK_EXCLUSIVE]: 0x06,
  [HMM_DMIRROR_RELEASE]: 0x07,
  [HMM_DMIRROR_FLAGS]: 0x08,
};

/** Every ioctl name the device answers, in command-number order. */
export const HMM_DMIRROR_IOCTLS: readonly string[] = Object.keys(HMM_DMIRROR_IOCTL_NR);

/** HMM_DMIRROR_FLAGS bit: the next device allocation made during a migration fails. */
export const HMM_DMIRROR_FLAG_FAIL_ALLOC = 1;

/** Which kind of ZONE_DEVICE memory a dmirror device has. */
export const HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1;
export const HMM_DMIRROR_MEMORY_DEVICE_COHERENT = 2;

/** One SNAPSHOT byte per page: a base kind, READ or WRITE, and PMD/PUD for large mappings. */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;
export const HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40;
export const HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50;

/** The PROT names without their prefix, as scenario files spell them (`ZERO|READ`). */
export const HMM_DMIRROR_PROT: Readonly<Record<string, number>> = {
  ERROR: HMM_DMIRROR_PROT_ERROR,
  NONE: HMM_DMIRROR_PROT_NONE,
  READ: HMM_DMIRROR_PROT_READ,
  WRITE: HMM_DMIRROR_PROT_WRITE,
  PMD: HMM_DMIRROR_PROT_PMD,
  PUD: HMM_DMIRROR_PROT_PUD,
  ZERO: HMM_DMIRROR_PROT_ZERO,
  DEV_PRIVATE_LOCAL: HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  DEV_PRIVATE_REMOTE: HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE,
  DEV_COHERENT_LOCAL: HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  DEV_COHERENT_REMOTE: HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
};

/**
 * Models struct hmm_dmirror_cmd. `addr` and `npages` are inputs; `cpages` and `faults` are
 * written back only when the ioctl succeeds (the kernel copies the struct back only then).
 * `addr` is an address in the mirrored process (the opener's), `ptr` a user address in the
 * calling process (copy_to_user() and copy_from_user() go through current->mm), which `userMm`
 * holds; when `ptr` is absent `buf` stands in for the user buffer: READ, EXCLUSIVE and
 * MIGRATE_TO_DEV fill it with page data, WRITE reads it, SNAPSHOT writes one HMM_DMIRROR_PROT_*
 * byte per page into it.
 */
export interface HmmDmirrorCmd {
  addr: number;
  npages: number;
  ptr?: number;
  /** The caller's mm (null for a caller whose mm is gone); the mirrored one for a call as no process. */
  userMm?: MmStruct | null;
  buf?: Uint8Array;
  cpages?: number;
  faults?: number;
}
