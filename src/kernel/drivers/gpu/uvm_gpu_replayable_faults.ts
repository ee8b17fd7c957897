/**
 * The replayable-fault bottom half of the UVM-style driver (after
 * uvm_gpu_replayable_faults.c): fetch up to `batchSize` records from the fault buffer, coalesce
 * duplicates (one entry per page, the strongest access kept), sort them by va_space and address,
 * service them VA block by VA block, and replay as the replay policy says:
 *  - 'block': after each VA block; 'batch': after each batch; 'batch_flush': flush the buffer
 *    (drop what is left: those accesses fault again after the replay) and replay after each
 *    batch; 'once': one replay at the end of the pass.
 * A pass services at most `maxBatchesPerPass` batches; in interrupt mode it requeues itself if
 * records are left.
 */
import type { KGen } from '../../../sched/types.ts';
import { mmgetNotZero, mmput } from '../../exit.ts';
import type { DeviceFault } from '../sdk/device_pagetable.ts';
import { queueWork } from '../sdk/workqueue.ts';
import type { UvmGpu } from './uvm_gpu.ts';
import { uvmGpuServiceReplayableFaults$ } from './uvm_gpu_replayable_faults.plain.ts';
import {
  type UvmFaultEntry,
  uvmHmmServiceWindow,
  uvmPmmEvictRootChunk,
  uvmStrongerAccess,
} from './uvm_hmm.ts';
import { UVM_VA_BLOCK_SIZE, type UvmVaSpace } from './uvm_types.ts';

/**
 * What the leak oracle calls the mm_users reference a pass holds on a va_space's mm while it
 * services that va_space's faults of a batch (uvm_va_space_mm_retain()); the pass drops it
 * before it goes on.
 */
export const UVM_FAULT_SERVICE_REF = 'the GPU fault servicing of a batch (uvm_va_space_mm_retain)';

/** Models uvm_gpu_service_replayable_faults(): one bottom-half pass. */
export function* uvmGpuServiceReplayableFaults(gpu: UvmGpu): KGen {
  const t = gpu.tunables;
  const stats = gpu.stats;
  stats.passes++;
  let replayed = true;
  const replay = (): void => {
    gpu.faults.replay();
    stats.replays++;
    replayed = true;
  };
  for (let b = 0; b < t.maxBatchesPerPass; b++) {
    const records: DeviceFault[] = [];
    while (records.length < t.batchSize) {
      const f = gpu.faults.pop();
      if (f === undefined) break;
      records.push(f);
    }
    if (records.length === 0) break;
    replayed = false;
    const batch = uvmFaultBatchCoalesce(gpu, records);
    stats.batches++;
    let blocks = 0;
    let nfaults = 0;
    for (const [vs, entries] of batch) {
      nfaults += entries.length;
      // The va_space's mm may be exiting: its faults are dropped (uvm_va_space_mm_retain fails).
      if (!mmgetNotZero(vs.mm, UVM_FAULT_SERVICE_REF)) continue;
      for (let i = 0; i < entries.length;) {
        const w = Math.floor(entries[i].va / UVM_VA_BLOCK_SIZE);
        let j = i;
        while (j < entries.length && Math.floor(entries[j].va / UVM_VA_BLOCK_SIZE) === w) j++;
        blocks += yield* uvmHmmServiceWindow(gpu, vs, entries.slice(i, j));
        if (t.replayPolicy === 'block') replay();
        i = j;
      }
      yield* mmput(vs.mm);
    }
    stats.faults += nfaults;
    yield* uvmPmmPreEvict(gpu);
    gpu.onBatch?.(nfaults, blocks);
    if (t.replayPolicy === 'batch_flush') {
      while (gpu.faults.pop() !== undefined) stats.flushed++;
      replay();
    } else if (t.replayPolicy === 'batch') replay();
  }
  if (!replayed) replay();
  if (!gpu.polled && gpu.faults.length > 0) queueWork(gpu.faults.work);
}

/**
 * Runs one bottom-half pass to its end (a polling caller: the simulator, tests). When nothing
 * else can be scheduled meanwhile (System.runPath's condition) it runs the pass's plain form
 * (derived from the generator above, with the plain forms of the kernel paths it calls);
 * otherwise a thread on the scheduler. Both take the same steps and make the same changes.
 */
export function uvmGpuServiceReplayableFaultsNow(gpu: UvmGpu): void {
  gpu.sys.runPath(
    'uvm_bh',
    () => {
      uvmGpuServiceReplayableFaults$(gpu);
    },
    () => uvmGpuServiceReplayableFaults(gpu),
  );
}

/**
 * Sorts a batch by va_space then address and, with coalescing on, merges records of one page
 * into one entry (counting the rest as duplicates). The sort is stable, so records of one page
 * stay in arrival order and are merged where they meet.
 */
function uvmFaultBatchCoalesce(
  gpu: UvmGpu,
  records: readonly DeviceFault[],
): Map<UvmVaSpace, UvmFaultEntry[]> {
  const byVs = new Map<UvmVaSpace, DeviceFault[]>();
  for (const r of records) {
    const vs = gpu.byPt.get(r.pt);
    if (vs === undefined) {
      gpu.stats.fatalFaults++;
      continue;
    }
    let list = byVs.get(vs);
    if (list === undefined) byVs.set(vs, (list = []));
    list.push(r);
  }
  const coalesce = gpu.tunables.coalesce;
  const out = new Map<UvmVaSpace, UvmFaultEntry[]>();
  for (const [vs, list] of byVs) {
    list.sort((a, b) => a.va - b.va);
    const entries: UvmFaultEntry[] = [];
    let prev: UvmFaultEntry | null = null;
    for (const r of list) {
      if (coalesce && prev !== null && prev.va === r.va) {
        prev.access = uvmStrongerAccess(prev.access, r.access);
        gpu.stats.duplicates++;
        continue;
      }
      prev = { va: r.va, access: r.access };
      entries.push(prev);
    }
    out.set(vs, entries);
  }
  return out;
}

/** Pre-eviction: evicts root chunks ahead while GPU memory in use exceeds the threshold. */
function* uvmPmmPreEvict(gpu: UvmGpu): KGen {
  const thr = gpu.tunables.preEvictThreshold;
  if (thr <= 0) return;
  const pmm = gpu.pmm;
  while (pmm.usedChunks > thr * pmm.chunks.length) {
    const victim = pmm.pickVictim(gpu.tunables.eviction);
    if (victim === null) return;
    yield* uvmPmmEvictRootChunk(gpu, victim);
    gpu.stats.preEvictions++;
    if (victim.block !== null) return;
  }
}
