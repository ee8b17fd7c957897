/**
 * Models make_device_exclusive() of mm/rmap.c in its v6.15+ form: a device that needs atomic
 * access to one anonymous page takes it away from the CPU by replacing the PTE with a
 * device-exclusive entry. The page stays mapped (mapcount and RSS unchanged); any CPU access
 * faults and restores the original PTE (remove_device_exclusive_entry() in memory.ts, which
 * raises an EXCLUSIVE invalidation with no owner so the device drops its mapping).
 */
import { PAGE_SIZE, PMD_SIZE } from '../../lib/units.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { folioLock, folioUnlock } from './filemap.ts';
import { FOLL_SPLIT_PMD, FOLL_WRITE, getUserPagesRemote } from './gup.ts';
import { splitHugePmd } from './huge_memory.ts';
import { type MmStruct, VM } from './mm_types.ts';
import {
  MMU_NOTIFY,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRangeInitOwner,
} from './mmu_notifier.ts';
import { PG } from './page_alloc.ts';
import { PTE_DIRTY, PTE_SOFT_DIRTY, PTE_WRITE, SwpType, ptePresent, swpLo } from './pgtable.ts';
import { pmdIsLeaf, pmdTableOf, pteSlot, setPte } from './pte.ts';

/** How often a lost race with a concurrent PTE change is retried before giving up with -EBUSY. */
const MAX_RETRIES = 16;

/**
 * Models make_device_exclusive(mm, addr, owner, &folio). The caller holds the mmap lock for read.
 * On success returns ret 0 and the page, locked and with a reference the caller owns: it maps
 * the page in the device, then calls folioUnlock(sys, page) and sys.phys.put(page). Until the
 * unlock, a CPU fault on the entry sleeps on the folio lock.
 * Errors: -EFAULT (no VMA, no write access), -EOPNOTSUPP (not anonymous memory, or hugetlb),
 * -ENOMEM (faulting the page in failed), -EBUSY (the PTE kept changing under us).
 * The EXCLUSIVE invalidation carries `owner`; the caller must ignore its own events.
 */
export function* makeDeviceExclusive(
  mm: MmStruct,
  addr: number,
  owner: unknown,
): KGen<{ ret: number; page: number }> {
  const sys = mm.sys;
  const phys = sys.phys;
  const va = addr - (addr % PAGE_SIZE);
  for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
    const vma = mm.vmaLookup(va);
    if (vma === null) return { ret: -Errno.EFAULT, page: -1 };
    // FOLL_SPLIT_PMD: the entry must be a PTE, so a PMD mapping is split first.
    if ((vma.flags & VM.HUGETLB) === 0 && pmdIsLeaf(pmdTableOf(mm, va), va)) {
      yield* splitHugePmd(vma, va - (va % PMD_SIZE));
    }
    const out: number[] = [];
    const got = yield* getUserPagesRemote(mm, va, 1, FOLL_WRITE | FOLL_SPLIT_PMD, out);
    if (got < 0) return { ret: got, page: -1 };
    if (got === 0) return { ret: -Errno.EFAULT, page: -1 };
    const page = out[0];
    const h = phys.head(page);
    if ((vma.flags & VM.HUGETLB) !== 0 || (phys.flags[h] & PG.anon) === 0) {
      phys.put(page);
      return { ret: -Errno.EOPNOTSUPP, page: -1 };
    }
    yield* folioLock(sys, page);
    const range = mmuNotifierRangeInitOwner(MMU_NOTIFY.EXCLUSIVE, 0, mm, va, va + PAGE_SIZE, owner);
    yield* mmuNotifierInvalidateRangeStart(range);
    yield* mm.ptl.lock();
    const t = mm.pgt.pteTable(va);
    const s = pteSlot(va);
    const lo = t === null ? 0 : t.words[s];
    // Re-check under the lock: the same page, still mapped writable by a PTE.
    if (t === null || !ptePresent(lo) || t.words[s + 1] !== page || (lo & PTE_WRITE) === 0) {
      yield* mm.ptl.unlock();
      yield* mmuNotifierInvalidateRangeEnd(range);
      folioUnlock(sys, page);
      phys.put(page);
      sys.trace.count('device_exclusive.retry');
      continue;
    }
    if ((lo & PTE_DIRTY) !== 0) phys.flags[h] |= PG.dirty;
    setPte(t, s, swpLo(SwpType.DEVICE_EXCLUSIVE, lo & PTE_SOFT_DIRTY), page);
    yield* mmuNotifierArchInvalidateSecondaryTlbs(mm, va, va + PAGE_SIZE);
    yield* mm.ptl.unlock();
    yield* mmuNotifierInvalidateRangeEnd(range);
    sys.trace.count('device_exclusive');
    return { ret: 0, page };
  }
  return { ret: -Errno.EBUSY, page: -1 };
}
