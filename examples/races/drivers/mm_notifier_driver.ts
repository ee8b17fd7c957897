/**
 * A device that mirrors its process the way drivers did before mmu_interval_notifier (RDMA ODP,
 * amdkfd and i915 userptr once did): a whole-mm mmu_notifier registered when the file is opened,
 * an invalidation counter its fault path checks under the driver lock, and get_user_pages to
 * find the pages. Written on the driver SDK.
 *
 *  - invalidate_range_start: under the lock, count the invalidation in flight, bump the
 *    sequence, zap the range's device PTEs; invalidate_range_end: drop the in-flight count.
 *  - GPU_MAP: seq = the sequence; get_user_pages (a reference on each page); under the lock, map
 *    only if no invalidation is in flight and seq did not change; drop the references.
 *  - release (the mm is going away: exit_mmap runs it before it unmaps anything, and after it no
 *    callback of this subscriber runs again, so no invalidation will ever reach the device).
 *
 * The bug (config `fixed: false`): release zaps the device page table but leaves the mirror
 * open for new mappings. A GPU_MAP that took its page references just before the exit passes
 * the sequence check afterwards (nothing bumped it) and maps pages exit_mmap is freeing; once it
 * drops its references the device maps freed frames. The fix marks the mirror dead in release,
 * under the same lock, and GPU_MAP refuses to map a dead mirror (-EFAULT), as drivers that mirror
 * through ->release must treat it as the last invalidation.
 */
import {
  DEV_PTE,
  DevicePageTable,
  Errno,
  FOLL_WRITE,
  MmuNotifier,
  defineIoctl,
  getUserPagesRemote,
  mmgetNotZero,
  mmput,
  mmuNotifierRangeBlockable,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  putUserPages,
  type DeviceDriver,
  type DriverMutex,
  type MmuNotifierOps,
} from 'hetmem';

const USER_SPAN = 2 ** 47;
const PAGE_SIZE = 4096;

interface Gpu {
  readonly fixed: boolean;
  nextFile: number;
}

/** One open file: a whole-mm subscriber (the kernel embeds struct mmu_notifier; container_of). */
class GpuMirror extends MmuNotifier {
  pt: DevicePageTable | null = null;
  /** Bumped by every invalidation; GPU_MAP maps only if it did not change. */
  seq = 0;
  /** Invalidations between range_start and range_end. */
  active = 0;
  /** release() ran: the mm is gone for this device. */
  dead = false;
  constructor(
    readonly fixed: boolean,
    readonly lock: DriverMutex,
  ) {
    super(mirrorOps);
  }
}

const mirrorOps: MmuNotifierOps<GpuMirror> = {
  *invalidateRangeStart(m, range) {
    if (mmuNotifierRangeBlockable(range)) yield* m.lock.lock();
    else if (!(yield* m.lock.trylock())) return -Errno.EAGAIN;
    m.active++;
    m.seq++;
    m.pt?.zap(range.start, range.end);
    yield* m.lock.unlock();
    return 0;
  },
  *invalidateRangeEnd(m) {
    yield* m.lock.lock();
    m.active--;
    yield* m.lock.unlock();
  },
  *release(m) {
    yield* m.lock.lock();
    m.pt?.zap(0, USER_SPAN);
    if (m.fixed) m.dead = true;
    yield* m.lock.unlock();
  },
};

const GPU_MAP = defineIoctl<GpuMirror, { addr: 'u64'; npages: 'u64' }, { cpages: 'u64' }>({
  doc: 'Maps npages at addr on the device: get_user_pages, then map under the lock if nothing invalidated them.',
  in: { addr: 'u64', npages: 'u64' },
  out: { cpages: 'u64' },
  *handler(file, arg) {
    const m = file.priv;
    if (arg.addr % PAGE_SIZE !== 0 || arg.npages === 0 || arg.npages > 512) return -Errno.EINVAL;
    for (let tries = 0; tries < 8; tries++) {
      const seq = m.seq;
      if (!mmgetNotZero(m.mm)) return -Errno.EFAULT;
      const pages: number[] = [];
      yield* m.mm.mmapLock.downRead();
      const n = yield* getUserPagesRemote(m.mm, arg.addr, arg.npages, FOLL_WRITE, pages);
      yield* m.mm.mmapLock.upRead();
      // The mm reference only covers the walk; the notifier covers what the device maps.
      yield* mmput(m.mm);
      if (n < 0) return n;
      yield* m.lock.lock();
      const stale = m.active > 0 || m.seq !== seq;
      if (m.dead) {
        yield* m.lock.unlock();
        putUserPages(m.mm.sys, pages, n);
        return -Errno.EFAULT;
      }
      if (!stale && m.pt !== null) {
        for (let i = 0; i < n; i++)
          m.pt.map(arg.addr + i * PAGE_SIZE, pages[i], DEV_PTE.READ | DEV_PTE.WRITE);
        arg.cpages = n;
      }
      yield* m.lock.unlock();
      putUserPages(m.mm.sys, pages, n);
      if (!stale) return 0;
    }
    return -Errno.EBUSY;
  },
});

export const mmNotifierDriver: DeviceDriver<Gpu, GpuMirror> = {
  name: 'mngpu',
  *probe(_dev, config) {
    yield* [];
    return { fixed: config.fixed === true, nextFile: 0 };
  },
  *open(dev, proc) {
    const mm = proc.mm;
    if (mm === null) return -Errno.ESRCH;
    const lock = dev.mutex(`mirror${dev.drvdata.nextFile++}.lock`, {
      lockClass: 'mngpu.mirror_lock',
      guards: 'the device page table, seq, active and dead',
    });
    const m = new GpuMirror(dev.drvdata.fixed, lock);
    // Registered at open, before the device can map anything of this mm.
    const ret = yield* mmuNotifierRegister(m, mm);
    if (ret !== 0) return ret;
    m.pt = new DevicePageTable(dev, `${dev.name} pt`, mm, lock);
    return m;
  },
  *release(_dev, file) {
    const m = file.priv;
    yield* mmuNotifierUnregister(m, m.mm);
    m.pt?.destroy();
    m.pt = null;
  },
  ioctls: { GPU_MAP },
};
