import type { KGen } from '../../sched/types.ts';
import type { System } from '../system.ts';
import { zapForOom } from './mmap.ts';
import { VM, type MmStruct } from './mm_types.ts';
import {
  MMU_NOTIFY,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStartNonblock,
  mmuNotifierRangeInit,
} from './mmu_notifier.ts';

/**
 * Models __oom_reap_task_mm(): every private or anonymous VMA is unmapped under a non-blockable
 * UNMAP invalidation. A subscriber that would have to sleep answers -EAGAIN; that VMA is skipped
 * (no range_end follows a failed start) and the reaper would try again later.
 * Returns how many VMAs were reaped; counts skipped ones in 'oom.skipped'.
 */
export function* oomReapTask(sys: System, mm: MmStruct): KGen<number> {
  const locked = yield* mm.mmapLock.downReadTrylock();
  if (!locked) {
    sys.trace.count('oom.lock_busy');
    return 0;
  }
  // Models the reaper setting MMF_UNSTABLE: from now on a fault that would hand out fresh
  // anonymous memory gets SIGBUS (check_stable_address_space) instead of silently reading zeros.
  mm.unstable = true;
  let reaped = 0;
  for (const node of [...mm.vmas]) {
    const vma = node.value;
    if ((vma.flags & (VM.HUGETLB | VM.PFNMAP)) !== 0) continue;
    if (!vma.isAnon() && (vma.flags & VM.SHARED) !== 0) continue;
    const range = mmuNotifierRangeInit(MMU_NOTIFY.UNMAP, 0, mm, vma.start, vma.end);
    const r = yield* mmuNotifierInvalidateRangeStartNonblock(range);
    if (r !== 0) {
      sys.trace.count('oom.skipped');
      continue;
    }
    yield* zapForOom(vma);
    yield* mmuNotifierInvalidateRangeEnd(range);
    reaped++;
  }
  yield* mm.mmapLock.upRead();
  sys.trace.count('oom.reaped', reaped);
  return reaped;
}
