/**
 * Findings that are the kernel's own behaviour, faithfully modelled: the fuzzer counts them apart
 * instead of reporting them as model bugs. Each entry says why.
 */
import type { Finding } from './execute.ts';
import type { Program } from './generate.ts';

export interface KnownFinding {
  /** Matches findingKey()-style text: `kind: message`. */
  readonly pattern: RegExp;
  readonly reason: string;
}

const DMIRROR_RETRY_AFTER_EXIT =
  "lib/test_hmm.c: dmirror_read()/dmirror_write() retry dmirror_fault() until the page is in the device table, and dmirror_fault() returns 0 without faulting when the mirrored mm is gone (mmget_not_zero() fails). A descriptor used after its process exited loops for ever in the kernel too; the model's step bound reports it as a livelock.";

/** One unfinished thread of a livelock message, inside a dmirror READ or WRITE. */
const IN_DMIRROR_RW = String.raw`\S+ in HMM_DMIRROR_(READ|WRITE) at [^,]+`;

/** A thread of such a livelock message: in a dmirror READ or WRITE, or not started. */
const UNFINISHED = String.raw`(${IN_DMIRROR_RW}|\S+ at start)`;

export const KNOWN_FINDINGS: readonly KnownFinding[] = [
  { pattern: /^hang: livelock: HMM_DMIRROR_(READ|WRITE) /, reason: DMIRROR_RETRY_AFTER_EXIT },
  {
    // The same loop in a thread: the explorer's step bound ends it. Known only when every thread
    // still running is inside such a READ or WRITE (the message names the op of each), or has
    // not started yet, and one at least is in one.
    pattern: new RegExp(
      String.raw`^violation: \d+ steps and still not finished: (?=.* in HMM_DMIRROR_(READ|WRITE) at )${UNFINISHED}(, ${UNFINISHED})*$`,
    ),
    reason: DMIRROR_RETRY_AFTER_EXIT,
  },
  {
    pattern: /^violation: every thread waits: .*\(memunmap_pages: wait for device pages\)$/,
    reason:
      "lib/test_hmm.c: HMM_DMIRROR_RELEASE (dmirror_device_remove_chunks()) evicts each chunk with migrate_device_range(), which skips a device page it cannot trylock, then memunmap_pages() waits for every page of the chunk. A page a concurrent MIGRATE_TO_DEV took from the free list just before and holds locked is mapped after the eviction, so the wait never ends; the kernel's test driver hangs the same way (its RELEASE is not meant to run beside migrations).",
  },
  {
    pattern: /^violation: __GFP_NOFAIL allocation never succeeds: dmirror_device_evict_chunk\(\) /,
    reason:
      "lib/test_hmm.c: dmirror_device_evict_chunk() allocates with __GFP_NOFAIL the system pages it moves the device's memory back into, and test_hmm's device memory is itself backed by system RAM, so evicting it needs as much free RAM again. With nothing left to reclaim, __alloc_pages_slowpath() (mm/page_alloc.c) retries a __GFP_NOFAIL allocation for ever and the OOM killer cannot free the pages the eviction holds; the kernel hangs the same way.",
  },
  {
    pattern:
      /^violation: dmirror_do_fault: write fault returned a read-only page at page \d+ \(a device-private page of its own\)$/,
    reason:
      "mm/hmm.c: hmm_vma_handle_pte() reports a device-private entry whose pgmap owner is the range's dev_private_owner as it is, HMM_PFN_WRITE only if the entry is writable, and never faults it for write. A dmirror that migrated pages of a read-only VMA to itself and then writes them gets read-only pfns back from a write fault, and lib/test_hmm.c's dmirror_do_fault() WARNs and returns -EFAULT; the kernel does the same.",
  },
  {
    pattern:
      /^violation: memremap_pages: conflicting mapping in same section \(all of gpu1's coherent memory is in use\)$/,
    reason:
      "lib/test_hmm.c: dmirror_allocate_chunk() places every chunk of a coherent device at the same address (spm_addr_devN), so when the first chunk's pages are all in use the next chunk's memremap_pages() finds that address mapped, and pagemap_range() (mm/memremap.c) WARNs and fails with -ENOMEM; the kernel does the same. gpu1 is the fuzz world's coherent dmirror (DEVICES).",
  },
];

const DMIRROR_SHARED_OWNER =
  "lib/test_hmm.c: dmirror_interval_invalidate() ignores an MMU_NOTIFY_MIGRATE invalidation whose owner is its device (dmirror->mdevice), and every descriptor of one device has that owner. A migration through one descriptor therefore leaves another descriptor's mirror of the same process pointing at the pages the migration frees; the kernel's test driver keeps the same stale entries.";

/** One process opens the same dmirror device twice, and the program migrates through a dmirror. */
function sharedOwnerMigration(p: Program): boolean {
  const steps = [...p.steps, ...Object.values(p.threads ?? {}).flat()];
  const opens = new Set<string>();
  let twice = false;
  for (const s of steps) {
    if (s.op !== 'dmirror_open') continue;
    const k = `${String(s.device)} ${String(s.proc)}`;
    if (opens.has(k)) twice = true;
    opens.add(k);
  }
  return twice && steps.some((s) => typeof s.op === 'string' && s.op.startsWith('HMM_DMIRROR_MIGRATE'));
}

const DMIRROR_OWN_MIGRATION_RACE =
  "lib/test_hmm.c: dmirror_interval_invalidate() returns at once for an MMU_NOTIFY_MIGRATE invalidation its own device started, without mmu_interval_set_seq(). A dmirror_fault() through the same descriptor that collected its pfns before such a migration therefore passes mmu_interval_read_retry() and stores the pfns it saw (the zero page, a system page the migration freed) over the device entries dmirror_migrate_finalize_and_map() stored; the kernel's test driver has the same race.";

const DMIRROR_FAULT_OPS = new Set(['HMM_DMIRROR_READ', 'HMM_DMIRROR_WRITE']);

/** A threads program in which one thread migrates through a dmirror descriptor while another faults through it. */
function ownMigrationRace(p: Program): boolean {
  const threads = Object.values(p.threads ?? {});
  const fdsOf = (ops: (op: string) => boolean): Set<string>[] =>
    threads.map((steps) => new Set(steps.filter((s) => ops(String(s.op))).map((s) => String(s.fd))));
  const migrating = fdsOf((op) => op.startsWith('HMM_DMIRROR_MIGRATE'));
  const faulting = fdsOf((op) => DMIRROR_FAULT_OPS.has(op));
  return migrating.some((fds, i) => [...fds].some((fd) => faulting.some((f, j) => j !== i && f.has(fd))));
}

const PASID_LEFT_ATTACHED =
  'drivers/iommu/iommufd/selftest.c: iommufd_selftest_destroy() detaches only the RID of a mock device (iommufd_device_detach(idev, IOMMU_NO_PASID)) before unbinding it, so a PASID still attached keeps its reference on the HWPT: iommufd_group_release() WARNs that pasid_attach is not empty, and iommufd_fops_release() finds objects it can never destroy (WARN_ON(!destroyed)) and leaves them, the HWPT and its IOAS. The kernel leaks the same objects.';

/** A PASID attached (or replaced onto) and never detached, per mock device and PASID. */
function pasidLeftAttached(p: Program): boolean {
  const steps = [...p.steps, ...Object.values(p.threads ?? {}).flat()];
  const attached = new Set<string>();
  for (const s of steps) {
    const key = `${String(s.fd)} ${String(s.id)} ${String(s.pasid)}`;
    if (s.op === 'IOMMU_TEST_OP_PASID_ATTACH' || s.op === 'IOMMU_TEST_OP_PASID_REPLACE') attached.add(key);
    else if (s.op === 'IOMMU_TEST_OP_PASID_DETACH') attached.delete(key);
  }
  return attached.size > 0;
}

const UVM_IGNORES_SOFT_DIRTY =
  "kernel-open/nvidia-uvm/uvm_hmm.c: hmm_invalidate() returns at once for an MMU_NOTIFY_SOFT_DIRTY invalidation, so clear_refs' soft-dirty reset write-protects the CPU PTEs of system pages the GPU maps writable and leaves the GPU's mappings as they are. The driver keeps the same writable GPU mappings (GPU writes then go unseen by soft-dirty tracking).";

/** The program resets soft-dirty bits (clear_refs 4). */
function clearsSoftDirty(p: Program): boolean {
  return [...p.steps, ...Object.values(p.threads ?? {}).flat()].some((s) => s.op === 'clear_soft_dirty');
}

const UVM_INSERT_UNDER_READ_LOCK =
  "kernel-open/nvidia-uvm/uvm_hmm.c: hmm_va_block_find_create() inserts a new VA block's interval notifier with mmu_interval_notifier_insert() while the GPU fault path holds the mmap lock for read, and that function's might_lock(&mm->mmap_lock) makes lockdep report recursive locking of the mmap lock. The `hmm_insert: mmap_read` tunable of the UVM-style GPU is that driver (examples/races/uvm-block-insert-mmap-read.yaml); lockdep reports the same on the kernel.";

const COHERENT_THP_COLLECTED_AGAIN =
  "mm/migrate_device.c: migrate_vma_collect_huge_pmd() collects a PMD-mapped folio for MIGRATE_VMA_SELECT_SYSTEM without asking whether it is device-coherent memory (the PTE walk skips such a page unless MIGRATE_VMA_SELECT_DEVICE_COHERENT and the pgmap owner match). A second HMM_DMIRROR_MIGRATE_TO_DEV of a range a coherent dmirror holds as a THP therefore hands lib/test_hmm.c's dmirror_migrate_alloc_and_copy() device memory, and it WARNs that the page is already in device memory; the kernel does the same. gpu1 is the fuzz world's coherent dmirror (DEVICES).";

/** The program opens the coherent dmirror and migrates to a dmirror device more than once. */
function coherentMigratedAgain(p: Program): boolean {
  const steps = [...p.steps, ...Object.values(p.threads ?? {}).flat()];
  return (
    steps.some((s) => s.op === 'dmirror_open' && s.device === 'gpu1') &&
    steps.filter((s) => s.op === 'HMM_DMIRROR_MIGRATE_TO_DEV').length >= 2
  );
}

const LEGACY_MIRROR_VALID_RACE =
  "mm/hmm.c (v5.4): hmm_range_valid() says only that no invalidation of the range is running now. A whole invalidate_range_start()/end() cycle between hmm_range_fault() and the driver's check leaves range->valid set, and the device maps pages the invalidation freed: the race commit 04ec32fbc2 (v5.5) removed with the hmm_mirror API, replaced by mmu_interval_notifier (examples/races/legacy-mirror.yaml). gpu4 is the fuzz world's legacy_mirror device (DEVICES).";

/** A threads program in which a thread faults or reads through a legacy_mirror descriptor. */
function legacyMirrorInThread(p: Program): boolean {
  return Object.values(p.threads ?? {}).some((steps) =>
    steps.some((s) => s.op === 'legacy_mirror_fault' || s.op === 'legacy_mirror_read'),
  );
}

/**
 * The reason a finding is known kernel behaviour, or null. Given the program, a stale-mirror
 * violation (the mirror or frame-refs oracle) is known when the program holds two descriptors of
 * one device in one process and migrates: test_hmm's own-migration skip covers both of them; a
 * writable mapping of the UVM-style GPU over a write-protected CPU PTE is known when the program
 * resets soft-dirty bits, and lockdep's recursive mmap lock in its fault worker when the program
 * sets its `hmm_insert` tunable to `mmap_read`. A stale page of the legacy_mirror device is known
 * when a thread faults or reads through it (the v5.4 range->valid race), and test_hmm's "already
 * in device memory" WARN when the program migrates to the coherent dmirror more than once. An iommufd leak at release is known when the program leaves a PASID of a
 * mock device attached.
 */
export function knownFinding(f: Finding, p?: Program): string | null {
  const text = `${f.kind}: ${f.message}`;
  const known = KNOWN_FINDINGS.find((k) => k.pattern.test(text))?.reason ?? null;
  if (known !== null || p === undefined || f.kind !== 'violation') return known;
  if ((f.oracle === 'mirror' || f.oracle === 'frame-refs') && sharedOwnerMigration(p))
    return DMIRROR_SHARED_OWNER;
  if (
    (f.oracle === 'mirror' || f.oracle === 'frame-refs') &&
    /^gpu[01] mirror \d+\b/.test(f.message) &&
    ownMigrationRace(p)
  )
    return DMIRROR_OWN_MIGRATION_RACE;
  // gpu2 is the fuzz world's UVM-style GPU (DEVICES).
  if (
    f.oracle === 'mirror' &&
    /^gpu2 pt\d+: va 0x[0-9a-f]+ \([^)]*\): the device may write but the CPU PTE is not writable$/.test(
      f.message,
    ) &&
    clearsSoftDirty(p)
  )
    return UVM_IGNORES_SOFT_DIRTY;
  if (
    f.oracle === 'warn' &&
    /^dmirror: page already in device memory, pfn \d+$/.test(f.message) &&
    coherentMigratedAgain(p)
  )
    return COHERENT_THP_COLLECTED_AGAIN;
  if (
    (f.oracle === 'frame-refs' || f.oracle === 'mirror') &&
    /^gpu4 mirror \d+\b/.test(f.message) &&
    legacyMirrorInThread(p)
  )
    return LEGACY_MIRROR_VALID_RACE;
  if (
    f.oracle === 'locks' &&
    /^possible recursive locking: kworker:gpu2\.replayable_faults takes mmap_lock \(class mmap_lock\) while holding mmap_lock\[\d+\]$/.test(
      f.message,
    ) &&
    p.uvm?.hmm_insert === 'mmap_read'
  )
    return UVM_INSERT_UNDER_READ_LOCK;
  const iommufdLeak =
    (f.oracle === 'iommufd' && /^iommufd ctx \d+: objects left on release$/.test(f.message)) ||
    (f.oracle === 'leak' && /^iommufd (ioas|hwpt_paging) \d+ \(iommufd ctx \d+\): alive /.test(f.message));
  if (iommufdLeak && pasidLeftAttached(p)) return PASID_LEFT_ATTACHED;
  return null;
}
