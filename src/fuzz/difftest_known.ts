/**
 * Differences between the model and the live kernel that are expected, each with its reason.
 * `hetmem difftest` counts them apart instead of reporting them as mismatches.
 */
import { Errno } from '../kernel/errno.ts';
import { SHMEM_MAX_BYTES } from '../kernel/mm/shmem.ts';
import { MAX_FILE_POS } from '../kernel/syscalls.ts';
import type { DiffOp, HostConfig, Outcome } from './difftest.ts';

export interface KnownDifference {
  readonly id: string;
  readonly reason: string;
  matches(op: DiffOp, model: Outcome, live: Outcome, host: HostConfig): boolean;
}

/** Where an op on a file would take the file past `SHMEM_MAX_BYTES`, and the range it starts at. */
function pastModelFileLimit(op: DiffOp): { from: number } | null {
  switch (op.op) {
    case 'ftruncate':
      return op.len > SHMEM_MAX_BYTES ? { from: op.len } : null;
    case 'fallocate':
    case 'pwrite':
      return op.foff + op.len > SHMEM_MAX_BYTES ? { from: op.foff } : null;
    default:
      return null;
  }
}

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    id: 'file-size-limit',
    reason:
      "the model's tmpfs files end at 2^52 bytes (a page index has 40 bits), the kernel's at MAX_LFS_FILESIZE (2^63 - 1): past 2^52 the model refuses with -EFBIG, and a write across it is short",
    matches(op, model, live) {
      // MADV_REMOVE punches a hole in the file: past 2^52 only where the mapping's offsets are.
      if (op.op === 'madvise' && op.advice === 'remove') return model.ret === -Errno.EFBIG;
      // write() at the file position: -EFBIG in the model only at or past 2^52, where the kernel
      // goes on to write, or to what refuses a write after the size check (a seal: -EPERM).
      // Across 2^52 the model writes up to it (model.at: where the write started).
      if (op.op === 'fwrite') {
        if (model.ret === -Errno.EFBIG) return live.ret !== -Errno.EFBIG;
        return (
          model.at !== undefined &&
          model.at + op.len > SHMEM_MAX_BYTES &&
          model.ret === SHMEM_MAX_BYTES - model.at &&
          live.ret !== model.ret
        );
      }
      const past = pastModelFileLimit(op);
      if (past === null) return false;
      if (model.ret === -Errno.EFBIG) return true;
      return op.op === 'pwrite' && model.ret === SHMEM_MAX_BYTES - past.from;
    },
  },
  {
    id: 'file-position-limit',
    reason:
      "the model's file positions end at 2^53 - 1 (the largest safe integer), the kernel's at MAX_LFS_FILESIZE (2^63 - 1): an lseek() past 2^53 - 1 is -EINVAL in the model",
    matches(op, model, live) {
      return op.op === 'lseek' && model.ret === -Errno.EINVAL && live.ret > MAX_FILE_POS;
    },
  },
];

/** The id of the known difference an op's outcomes show, or null. */
export function knownDifference(op: DiffOp, model: Outcome, live: Outcome, host: HostConfig): string | null {
  return KNOWN_DIFFERENCES.find((k) => k.matches(op, model, live, host))?.id ?? null;
}
