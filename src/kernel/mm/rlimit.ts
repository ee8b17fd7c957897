/**
 * The resource limits on a process's address space: RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK, with
 * RLIMIT_MEMLOCK (mlock_limit.ts asks that one), set with prlimit(), and may_expand_vm(), which
 * mmap, mremap, mprotect and stack growth ask before they add address space.
 *
 * A limit is a soft value (`cur`, the one enforced) and a hard one (`max`, the ceiling of `cur`),
 * in bytes; RLIM_INFINITY is Infinity. A process starts with the kernel's defaults (RLIMIT_AS and
 * RLIMIT_DATA unlimited, RLIMIT_STACK 8 MiB soft and unlimited hard; RLIMIT_MEMLOCK from the
 * System's config, soft and hard alike) and a fork child takes its parent's limits.
 *
 * VmData (mm->data_vm) and the other per-kind counts are not kept up to date as the kernel's
 * vm_stat_account() keeps them: they are sums over the VMAs, by the same rules, worked out when
 * asked. may_expand_vm() asks for VmData only when RLIMIT_DATA is finite.
 */
import { Errno } from '../errno.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import type { Process } from '../system.ts';
import { VM, type MmStruct } from './mm_types.ts';

/** The limits the model has, by the names of their RLIMIT_ constants (lower case, without the prefix). */
export type RlimitResource = 'as' | 'data' | 'stack' | 'memlock';

/** One limit: the soft value and the hard one, in bytes (Infinity is RLIM_INFINITY). */
export interface Rlimit {
  cur: number;
  max: number;
}

/** RLIMIT_STACK's default soft value (_STK_LIM, 8 MiB). */
export const STK_LIM = 8 * 1024 * 1024;

/** The limits of a process other than RLIMIT_MEMLOCK (Process.rlimitMemlock and rlimitMemlockMax). */
export interface Rlimits {
  as: Rlimit;
  data: Rlimit;
  stack: Rlimit;
}

/** The limits a process starts with (the kernel's INIT_RLIMITS for these three). */
export function defaultRlimits(): Rlimits {
  return {
    as: { cur: Infinity, max: Infinity },
    data: { cur: Infinity, max: Infinity },
    stack: { cur: STK_LIM, max: Infinity },
  };
}

/** A copy of `r`, for a fork child (copy_signal()). */
export function copyRlimits(r: Rlimits): Rlimits {
  return { as: { ...r.as }, data: { ...r.data }, stack: { ...r.stack } };
}

/** The limit `res` of `p` (a copy). */
export function getRlimit(p: Process, res: RlimitResource): Rlimit {
  if (res === 'memlock') return { cur: p.rlimitMemlock, max: p.rlimitMemlockMax };
  return { ...p.rlim[res] };
}

/**
 * Models do_prlimit() setting limit `res` of `p`: -EINVAL when the soft value is above the hard
 * one, -EPERM when the hard value would go up (the model's processes lack CAP_SYS_RESOURCE).
 * Lowering either value is always allowed, and so is setting the same ones again.
 */
export function setRlimit(p: Process, res: RlimitResource, cur: number, max: number): number {
  if (cur > max) return -Errno.EINVAL;
  const old = getRlimit(p, res);
  if (max > old.max) return -Errno.EPERM;
  if (res === 'memlock') {
    p.rlimitMemlock = cur;
    p.rlimitMemlockMax = max;
  } else {
    p.rlim[res].cur = cur;
    p.rlim[res].max = max;
  }
  return 0;
}

/** A limit in pages (rlimit() >> PAGE_SHIFT). */
function pagesOf(bytes: number): number {
  return Math.floor(bytes / PAGE_SIZE);
}

/** Models is_exec_mapping(): executable, not writable, not a stack. */
export function isExecMapping(flags: number): boolean {
  return (flags & (VM.EXEC | VM.WRITE | VM.GROWSDOWN)) === VM.EXEC;
}

/** Models is_stack_mapping(): a VMA that grows down (VM_STACK on x86). */
export function isStackMapping(flags: number): boolean {
  return (flags & VM.GROWSDOWN) !== 0;
}

/** Models is_data_mapping(): private and writable, not a stack. */
export function isDataMapping(flags: number): boolean {
  return (flags & (VM.WRITE | VM.SHARED | VM.GROWSDOWN)) === VM.WRITE;
}

/** Pages of `mm` by vm_stat_account()'s kinds: exec_vm, stack_vm and data_vm. */
export function vmKinds(mm: MmStruct): { exec: number; stack: number; data: number } {
  let exec = 0;
  let stack = 0;
  let data = 0;
  for (const n of mm.vmas.overlapping(0, Infinity)) {
    const v = n.value;
    if (isExecMapping(v.flags)) exec += v.pages;
    else if (isStackMapping(v.flags)) stack += v.pages;
    else if (isDataMapping(v.flags)) data += v.pages;
  }
  return { exec, stack, data };
}

/**
 * Models may_expand_vm(): whether `mm` may gain `npages` of a mapping with `flags` under the
 * limits of `p`. Past RLIMIT_AS never; past RLIMIT_DATA (private writable memory) only when the
 * soft limit is 0 and the hard one still allows it (the kernel's allowance for Valgrind). The
 * kernel's boot option ignore_rlimit_data is off, as it is by default.
 */
export function mayExpandVm(p: Process, mm: MmStruct, flags: number, npages: number): boolean {
  if (mm.totalVm + npages > pagesOf(p.rlim.as.cur)) return false;
  const data = p.rlim.data;
  if (data.cur === Infinity || !isDataMapping(flags)) return true;
  const dataVm = vmKinds(mm).data;
  if (dataVm + npages <= pagesOf(data.cur)) return true;
  return data.cur === 0 && dataVm + npages <= pagesOf(data.max);
}

/** The process whose address space `mm` is (the task that faults in it), or null once it is gone. */
export function ownerOf(mm: MmStruct): Process | null {
  for (const p of mm.sys.processes.values()) if (p.mm === mm) return p;
  return null;
}
