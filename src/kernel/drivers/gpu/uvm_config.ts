/**
 * The tunables of the UVM-style driver by their config names (the names a scenario's device
 * config and a sim file use), with checks: a bad value is refused with a message naming the key.
 */
import { UVM_DEFAULT_TUNABLES, type UvmTunables } from './uvm_types.ts';

type Kind = 'int' | 'num' | 'bool' | readonly string[];

/** Config name -> [tunable, value kind, minimum, one line of doc]. */
export const UVM_TUNABLE_KEYS: Readonly<Record<string, readonly [keyof UvmTunables, Kind, number, string]>> =
  {
    batch_size: ['batchSize', 'int', 1, 'faults fetched per batch (256)'],
    replay_policy: [
      'replayPolicy',
      ['block', 'batch', 'batch_flush', 'once'],
      0,
      'when stalled accesses replay (batch_flush)',
    ],
    max_batches_per_pass: ['maxBatchesPerPass', 'int', 1, 'batches per bottom-half pass (20)'],
    coalesce: ['coalesce', 'bool', 0, 'merge duplicate faults on one page (true)'],
    fault_buffer_entries: ['faultBufferEntries', 'int', 1, 'entries of the replayable fault buffer (8192)'],
    prefetch: ['prefetch', ['ondemand', 'random4k', 'seq64k', 'tree'], 0, 'prefetch policy (tree)'],
    prefetch_threshold: ['prefetchThreshold', 'num', 0, 'tree: % of a subtree resident or faulted (51)'],
    prefetch_min_faults: [
      'prefetchMinFaults',
      'int',
      0,
      'faulted pages a block needs before prefetching (1)',
    ],
    seq_granule: ['seqGranule', 'int', 4096, 'seq64k: bytes each fault grows to (65536)'],
    random_pages: ['randomPages', 'int', 0, 'random4k: random pages per faulted page (1)'],
    thrashing: ['thrashingEnable', 'bool', 0, 'thrashing detection (true)'],
    thrashing_lapse_us: ['thrashingLapseUs', 'num', 0, 'migrations closer than this are thrashing (500)'],
    thrashing_threshold: ['thrashingThreshold', 'int', 1, 'events before THROTTLE (3)'],
    thrashing_pin_threshold: ['thrashingPinThreshold', 'int', 1, 'throttles before PIN (10)'],
    thrashing_nap_lapses: ['thrashingNapLapses', 'num', 0, 'THROTTLE nap in lapses (1)'],
    thrashing_pin_lapses: ['thrashingPinLapses', 'num', 0, 'PIN duration in lapses (300)'],
    eviction: ['eviction', ['alloc', 'access', 'random'], 0, 'root-chunk victim order (alloc)'],
    pre_evict_threshold: [
      'preEvictThreshold',
      'num',
      0,
      'evict ahead above this fraction of GPU memory in use (0: off)',
    ],
    migrate_on_fault: [
      'migrateOnFault',
      'bool',
      0,
      'migrate faulted pages to the GPU; false maps them remotely (true)',
    ],
    seed: ['seed', 'int', 0, 'seed of random prefetch and random eviction (1)'],
    hmm_insert: [
      'hmmInsert',
      ['unlocked', 'mmap_read', 'mmap_write'],
      0,
      "a new VA block's notifier: insert without the mmap lock, under it for read (uvm_hmm.c), or _locked under it for write (unlocked)",
    ],
  };

/**
 * The tunables `config` sets over the defaults (keys not in UVM_TUNABLE_KEYS are left for the
 * caller). Returns the tunables, or a one-line message naming the bad key.
 */
export function uvmTunablesFromConfig(
  config: Readonly<Record<string, unknown>>,
  base: UvmTunables = UVM_DEFAULT_TUNABLES,
): UvmTunables | string {
  const out: Record<string, unknown> = { ...base };
  for (const [key, v] of Object.entries(config)) {
    const spec = UVM_TUNABLE_KEYS[key] as (typeof UVM_TUNABLE_KEYS)[string] | undefined;
    if (spec === undefined) continue;
    const [name, kind, min] = spec;
    if (Array.isArray(kind)) {
      if (typeof v !== 'string' || !kind.includes(v)) return `${key}: expected one of ${kind.join(', ')}`;
    } else if (kind === 'bool') {
      if (typeof v !== 'boolean') return `${key}: expected true or false`;
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v) || (kind === 'int' && !Number.isSafeInteger(v)))
        return `${key}: expected ${kind === 'int' ? 'an integer' : 'a number'}`;
      if (v < min) return `${key}: must be at least ${min}`;
    }
    out[name] = v;
  }
  const t = out as unknown as UvmTunables;
  if (t.prefetchThreshold > 100) return 'prefetch_threshold: must be at most 100';
  if (t.preEvictThreshold >= 1) return 'pre_evict_threshold: must be below 1';
  if (t.batchSize > t.faultBufferEntries) return 'batch_size: must not exceed fault_buffer_entries';
  return t;
}
