/**
 * The scenario file schema (SCENARIO.md, version 1) as zod types. Every op is a strict object, so
 * unknown ops and unknown fields are rejected with the path of the offending field; the parser turns
 * that path into FILE:LINE:COL. `hetmem schema` prints the JSON Schema generated from these types.
 */
import { z } from 'zod';
import { MADV } from '../kernel/mm/mman.ts';
import { CONTRACT_CHOICES } from '../kernel/contracts.ts';
import { ORACLE_NAMES } from '../oracles/names.ts';
import { GPU_KINDS, gpuKindNames } from '../kernel/drivers/gpu/registry.ts';
import { isAddressExpr, isName, isSize, isU64, ValueError, parseProtBytes } from './values.ts';

const sizeHelp = 'a size: an integer or a string such as 4096, 4KiB, 2MiB, 1GiB';

/** Bytes: an integer or a size string. */
export const Size = z.union([
  z.number().int().nonnegative(),
  z.string().refine((s) => isSize(s), { message: `expected ${sizeHelp}` }),
]);

/** A resource limit: bytes, or unlimited (RLIM_INFINITY). */
const RlimitValue = z.union([
  z.number().int().nonnegative(),
  z.string().refine((s) => s === 'unlimited' || isSize(s), { message: `expected ${sizeHelp}, or unlimited` }),
]);

/** A number that may use bound names: `buf`, `buf+2MiB`, `0x1000`, `4KiB`, 42, or any u64. */
export const Num = z.union([
  z.number().int(),
  z
    .bigint()
    .nonnegative()
    .max((1n << 64n) - 1n),
  z.string().refine((s) => isSize(s) || isAddressExpr(s) || isU64(s), {
    message: 'expected an integer, a size (4KiB), or a name with an optional offset (buf+2MiB)',
  }),
]);

/**
 * A u64 field of a uAPI struct (iommufd): any value from 0 to 2^64 - 1, exact. YAML integers above
 * 2^53 arrive as bigints; strings may be decimal or 0x hex of any size, sizes, or name expressions.
 */
export const U64 = z.union([
  z.number().int().nonnegative(),
  z.bigint().nonnegative(),
  z.string().refine((s) => isU64(s), {
    message: 'expected a u64: an integer up to 0xffffffffffffffff, a size (4KiB), or a name (buf+2MiB)',
  }),
]);

export const Name = z.string().refine((s) => isName(s), { message: 'expected a name (letters, digits, _)' });

const Prot = z.union([z.array(z.enum(['none', 'read', 'write', 'exec'])), z.number().int().nonnegative()]);
const MmapFlag = z.enum([
  'private',
  'shared',
  'shared_validate',
  'droppable',
  'anonymous',
  'fixed',
  'fixed_noreplace',
  'populate',
  'hugetlb',
  'noreserve',
  'locked',
  'stack',
  'growsdown',
]);
const Advice = z.enum(Object.keys(MADV).map((k) => k.toLowerCase()) as [string, ...string[]]);
const MremapFlag = z.enum(['maymove', 'fixed', 'dontunmap']);
const MlockFlag = z.enum(['onfault']);
const MlockallFlag = z.enum(['current', 'future', 'onfault']);

/** Flags given either as a list of names or as the raw number. */
function flags<const T extends readonly [string, ...string[]]>(names: T) {
  return z.union([z.array(z.enum(names)), z.number().int().nonnegative()]);
}

export const DataSpec = z.union([
  z.strictObject({ pattern: z.enum(['index32', 'neg_index32', 'zero']), offset: Size.optional() }),
  z.strictObject({ fill: z.number().int().min(0).max(255), offset: Size.optional() }),
  z.strictObject({ bytes: z.array(z.number().int().min(0).max(255)), offset: Size.optional() }),
]);

const ProtBytes = z
  .array(z.union([z.string(), z.number().int().min(0).max(255)]))
  .superRefine((items, ctx) => {
    items.forEach((item, i) => {
      try {
        parseProtBytes([item]);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: [i], message: e instanceof ValueError ? e.message : String(e) });
      }
    });
  });

const PageKind = z.enum([
  'none',
  'ram',
  'zero',
  'device-private',
  'device-coherent',
  'device-exclusive',
  'migration',
  'swap',
]);
/** pagemap expectations: per page a kind (`ram`, `swap*4`) or an object of pagemap bits. */
const PageExpect = z.union([
  z.string().regex(/^[a-z-]+(\*\d+)?$/, 'expected a page kind such as ram, swap, device-private, or ram*4'),
  z.strictObject({
    kind: PageKind.optional(),
    present: z.boolean().optional(),
    swap: z.boolean().optional(),
    soft_dirty: z.boolean().optional(),
    exclusive: z.boolean().optional(),
    file: z.boolean().optional(),
    thp: z.boolean().optional(),
    repeat: z.number().int().positive().optional(),
  }),
]);

const Errname = z.string().regex(/^E[A-Z0-9]+$/, 'expected an errno name such as EFAULT');

/** A value an output field is compared against. */
const ExpectValue = z.union([
  z.number(),
  z.bigint(),
  z.string(),
  z.boolean(),
  // A record's fields are numbers, or text (an smaps record's line and vmflags).
  z.array(
    z.union([z.number(), z.bigint(), z.string(), z.record(z.string(), z.union([Num, U64, z.string()]))]),
  ),
]);

function expectShape(outputs: readonly string[]) {
  const shape: Record<string, z.ZodType> = {
    errno: Errname.optional(),
    ret: Num.optional(),
    data: DataSpec.optional(),
    bytes: ProtBytes.optional(),
    pages: z.array(PageExpect).optional(),
  };
  for (const o of outputs) shape[o] = ExpectValue.optional();
  return shape;
}

function expectFor(outputs: readonly string[]) {
  const one = z.strictObject(expectShape(outputs));
  return z.union([one, z.strictObject({ any: z.array(one).min(1) })]);
}

const Save = z.union([Name, z.record(z.string(), Name)]);

export interface OpSpec {
  readonly fields: Record<string, z.ZodType>;
  /** Output fields the step reports and `expect` may check, by kernel name. */
  readonly outputs: readonly string[];
  /** The output `save: NAME` binds; undefined means the return value. */
  readonly main?: string;
  readonly doc: string;
}

const proc = { proc: Name };
const range = { proc: Name, addr: Num, length: Size };
/** The arguments of the mm syscalls: unsigned longs, any u64 (exact; the kernel's checks use all 64 bits). */
const ulongRange = { proc: Name, addr: Num, length: U64 };
const dmirrorCmd = { fd: Num, addr: Num, npages: Num };
const ioctlFd = { fd: Num };
const ioasMapFlags = flags(['FIXED_IOVA', 'WRITEABLE', 'READABLE'] as const);
const iovaRange = z.strictObject({ start: U64, last: U64 });

/** Every op: its fields (besides op, expect, save, comment) and outputs. */
export const OPS: Record<string, OpSpec> = {
  mmap: {
    doc: 'mmap(2): map anonymous memory or a file.',
    fields: {
      proc: Name,
      addr: Num.optional(),
      length: U64,
      prot: Prot,
      flags: z.union([z.array(MmapFlag), z.number().int().nonnegative()]),
      fd: Num.optional(),
      offset: U64.optional(),
    },
    outputs: [],
  },
  munmap: { doc: 'munmap(2).', fields: ulongRange, outputs: [] },
  mprotect: { doc: 'mprotect(2).', fields: { ...ulongRange, prot: Prot }, outputs: [] },
  madvise: {
    doc: 'madvise(2); pageout swaps the pages out as MADV_PAGEOUT does.',
    fields: { ...ulongRange, advice: Advice },
    outputs: [],
  },
  process_madvise: {
    doc: 'process_madvise(2) by `proc` on the memory of `target` (itself by default; another process takes only cold, pageout, willneed and collapse, and CAP_SYS_NICE, which the processes of a scenario lack): the advice over each segment of `iov`, a list of { addr, length }; returns the bytes advised.',
    fields: {
      proc: Name,
      target: Name.optional(),
      iov: z.array(z.strictObject({ addr: Num, length: U64 })),
      advice: Advice,
      flags: U64.optional(),
    },
    outputs: [],
  },
  mremap: {
    doc: 'mremap(2): length is the old length.',
    fields: {
      ...ulongRange,
      new_length: U64,
      flags: z.union([z.array(MremapFlag), z.number().int().nonnegative()]).optional(),
      new_addr: Num.optional(),
    },
    outputs: [],
  },
  mlock: {
    doc: 'mlock2(2): locks the pages of [addr, addr + length), populating them unless `flags` has onfault (mlock(2) without flags).',
    fields: {
      ...ulongRange,
      flags: z.union([z.array(MlockFlag), z.number().int().nonnegative()]).optional(),
    },
    outputs: [],
  },
  munlock: { doc: 'munlock(2).', fields: ulongRange, outputs: [] },
  mlockall: {
    doc: 'mlockall(2): current locks every mapping now, future every mapping to come; onfault locks pages as they are faulted in.',
    fields: { proc: Name, flags: z.union([z.array(MlockallFlag), z.number().int().nonnegative()]) },
    outputs: [],
  },
  munlockall: { doc: 'munlockall(2).', fields: proc, outputs: [] },
  setrlimit: {
    doc: 'setrlimit(2) of an address-space limit: as (RLIMIT_AS), data (RLIMIT_DATA), stack (RLIMIT_STACK) or memlock (RLIMIT_MEMLOCK). `cur` and `max` are sizes or unlimited; `max` defaults to the hard limit the process has.',
    fields: {
      proc: Name,
      resource: z.enum(['as', 'data', 'stack', 'memlock']),
      cur: RlimitValue,
      max: RlimitValue.optional(),
    },
    outputs: [],
  },
  mseal: {
    doc: 'mseal(2): seals the mappings of [addr, addr + length) against munmap, mremap, mprotect, mmap over them and discarding advice (flags must be 0).',
    fields: { ...ulongRange, flags: U64.optional() },
    outputs: [],
  },
  fork: {
    doc: 'fork(2): `child` names the new process.',
    fields: { proc: Name, child: Name },
    outputs: ['pid'],
  },
  exit: { doc: 'exit(2): tears the address space down (files stay open).', fields: proc, outputs: [] },
  cpu_read: { doc: 'CPU loads from user memory.', fields: range, outputs: [] },
  cpu_write: {
    doc: 'CPU stores to user memory; length defaults to the data length.',
    fields: { proc: Name, addr: Num, length: Size.optional(), data: DataSpec },
    outputs: [],
  },
  memfd_create: {
    doc: 'memfd_create(2): a shmem file (save its fd).',
    fields: {
      name: z.string().optional(),
      flags: flags(['cloexec', 'allow_sealing', 'hugetlb', 'noexec_seal', 'exec'] as const).optional(),
    },
    outputs: [],
  },
  fcntl: {
    doc: 'fcntl(2) with a seal command on a memfd: add_seals adds `seals`; get_seals returns the seals as a number (`expect: { ret: N }`).',
    fields: {
      fd: Num,
      cmd: z.enum(['add_seals', 'get_seals']),
      seals: flags(['seal', 'shrink', 'grow', 'write', 'future_write', 'exec'] as const).optional(),
    },
    outputs: [],
  },
  ftruncate: { doc: 'ftruncate(2).', fields: { fd: Num, length: Size }, outputs: [] },
  fallocate: {
    doc: 'fallocate(2) of a memfd: allocates [offset, offset + length), or punches a hole (punch_hole with keep_size).',
    fields: {
      fd: Num,
      mode: flags([
        'keep_size',
        'punch_hole',
        'collapse_range',
        'zero_range',
        'insert_range',
        'unshare_range',
        'write_zeroes',
      ] as const).optional(),
      offset: Size.optional(),
      length: Size,
    },
    outputs: [],
  },
  pwrite: {
    doc: 'pwrite(2).',
    fields: { fd: Num, data: DataSpec, length: Size.optional(), offset: Size.optional() },
    outputs: [],
  },
  pread: { doc: 'pread(2).', fields: { fd: Num, length: Size, offset: Size.optional() }, outputs: [] },
  read: {
    doc: "read(2) of a memfd: up to `length` bytes at the open file's position, which advances (dup() shares it; open() makes a new one).",
    fields: { fd: Num, length: Size },
    outputs: [],
  },
  write: {
    doc: "write(2) of a memfd at the open file's position (its end when opened with `append`), which advances.",
    fields: { fd: Num, data: DataSpec, length: Size.optional() },
    outputs: [],
  },
  lseek: {
    doc: "lseek(2): moves the open file's position (whence set, cur, end) or finds the next data or hole of a memfd (data, hole), or a whence by number; `ret` is the new position.",
    fields: {
      fd: Num,
      offset: Num.optional(),
      whence: z.union([z.enum(['set', 'cur', 'end', 'data', 'hole']), z.number().int()]),
    },
    outputs: [],
  },
  dup: { doc: 'dup(2) of any scenario file (save the new fd).', fields: { fd: Num }, outputs: [] },
  fchmod: {
    doc: 'fchmod(2) of a memfd: its permission bits (mode, e.g. 0o644 or 420).',
    fields: { fd: Num, mode: Num },
    outputs: [],
  },
  open: {
    doc: "open(2) by a process of /proc/self/fd/FD: a new open file of the same memfd with its own access mode (save its fd), or of a device node (the driver's open() runs again).",
    fields: {
      proc: Name,
      fd: Num,
      flags: flags([
        'rdonly',
        'wronly',
        'rdwr',
        'accmode',
        'creat',
        'excl',
        'trunc',
        'append',
        'directory',
        'nofollow',
        'cloexec',
        'path',
      ] as const).optional(),
    },
    outputs: [],
  },
  close: { doc: 'close(2) of any scenario file.', fields: { fd: Num }, outputs: [] },
  oom_reap: {
    doc: 'The OOM reaper: non-blockable invalidation of private memory.',
    fields: proc,
    outputs: [],
  },
  reclaim: {
    doc: 'Memory pressure: LRU aging (asks notifiers about young pages), then swap-out.',
    fields: { pages: Num.optional() },
    outputs: [],
  },
  clear_soft_dirty: { doc: 'echo 4 > /proc/PID/clear_refs.', fields: proc, outputs: [] },
  clear_refs: {
    doc: 'echo VALUE > /proc/PID/clear_refs: 1 clears the young bits and PG_referenced of every page, 2 of anonymous memory, 3 of file-backed memory (shared anonymous memory included), 4 the soft-dirty bits, 5 the peak RSS; anything else is -EINVAL.',
    fields: { proc: Name, value: z.number().int() },
    outputs: [],
  },
  pagemap: {
    doc: '/proc/PID/pagemap: expect per-page kinds in `pages`.',
    fields: { proc: Name, addr: Num, npages: Num.optional(), length: Size.optional() },
    outputs: [],
  },
  mincore: {
    doc: 'mincore(2): whether each page of [addr, addr + length) is in memory; expect the bytes in `vec`, a string of 0 and 1, a character a page.',
    fields: ulongRange,
    outputs: ['vec'],
  },
  maps: {
    doc: '/proc/PID/maps: the VMAs that overlap [addr, addr + length) (all of them by default), each whole, as lines `START-END PERMS OFFSET [PATH]` (the device and inode columns left out); expect them in `maps`.',
    fields: { proc: Name, addr: Num.optional(), length: Size.optional() },
    outputs: ['maps', 'entries'],
  },
  smaps: {
    doc: '/proc/PID/smaps: the VMAs that overlap [addr, addr + length) (all of them by default), each whole; expect them in `smaps`, a list of records with `line` (as `maps` gives it) and, in bytes as the file shows them (whole KiB), size, rss, pss, pss_dirty, shared_clean, shared_dirty, private_clean, private_dirty, referenced, anonymous, lazyfree, anon_huge_pages, shmem_pmd_mapped, shared_hugetlb, private_hugetlb, swap, swap_pss and locked, and vmflags (the two-letter names of VmFlags, less sd) (list only the fields to check).',
    fields: { proc: Name, addr: Num.optional(), length: Size.optional() },
    outputs: ['smaps', 'entries'],
  },

  dmirror_open: {
    doc: 'Opens a dmirror device for a process.',
    fields: { device: Name, proc: Name },
    outputs: [],
  },
  dmirror_close: { doc: 'Closes a dmirror file.', fields: { fd: Num }, outputs: [] },

  device_open: {
    doc: "Opens a device of a user driver (devices: NAME: { driver: ... }) for a process: the driver's open() (save the fd). Its ioctls are ops by their names; `close` closes it.",
    fields: { device: Name, proc: Name },
    outputs: [],
  },
  gpu_access: {
    doc: 'A GPU (a built-in GPU device: devices: NAME: { type: xe }) reads, writes or does an atomic on `length` bytes at `address` of `proc` (default: the only process with a GPU context), faulting through its driver; a read returns `data`.',
    fields: {
      device: Name,
      proc: Name.optional(),
      address: Num,
      length: Size,
      access: z.enum(['read', 'write', 'atomic']),
      data: DataSpec.optional(),
    },
    outputs: [],
  },
  gpu_snapshot: {
    doc: 'What a GPU maps over [addr, addr + length) and the SVM ranges its driver holds there (counts; each range in the notes).',
    fields: { device: Name, proc: Name.optional(), addr: Num, length: Size },
    outputs: [
      'ranges',
      'ptes',
      'vram_pages',
      'system_pages',
      'write_pages',
      'atomic_pages',
      'unmapped_ranges',
    ],
  },
  HMM_DMIRROR_READ: {
    doc: 'Device reads npages through its mirror (faulting them in); expect `data`.',
    fields: { ...dmirrorCmd, ptr: Num.optional() },
    outputs: ['cpages', 'faults'],
  },
  HMM_DMIRROR_WRITE: {
    doc: 'Device writes `data` through its mirror.',
    fields: { ...dmirrorCmd, ptr: Num.optional(), data: DataSpec.optional() },
    outputs: ['cpages', 'faults'],
  },
  HMM_DMIRROR_MIGRATE_TO_DEV: {
    doc: 'migrate_vma to device memory; `data` is what the device then holds.',
    fields: dmirrorCmd,
    outputs: ['cpages'],
  },
  HMM_DMIRROR_MIGRATE_TO_SYS: {
    doc: 'migrate_vma back to system RAM.',
    fields: dmirrorCmd,
    outputs: ['cpages'],
  },
  HMM_DMIRROR_SNAPSHOT: {
    doc: 'hmm_range_fault without faulting: one HMM_DMIRROR_PROT_* byte per page (expect `bytes`).',
    fields: dmirrorCmd,
    outputs: ['cpages'],
  },
  HMM_DMIRROR_EXCLUSIVE: {
    doc: 'make_device_exclusive on the range (the CPU PTEs become device-exclusive entries); `data` is read back.',
    fields: dmirrorCmd,
    outputs: ['cpages'],
  },
  HMM_DMIRROR_CHECK_EXCLUSIVE: {
    doc: 'Checks every page is still device-exclusive.',
    fields: dmirrorCmd,
    outputs: ['cpages'],
  },
  HMM_DMIRROR_RELEASE: {
    doc: 'Evicts every page of the device memory back to system RAM (the range is only validated).',
    fields: { fd: Num, addr: Num.optional(), npages: Num.optional() },
    outputs: [],
  },
  HMM_DMIRROR_FLAGS: {
    doc: 'Sets dmirror test flags (FAIL_ALLOC).',
    fields: { fd: Num, flags: flags(['FAIL_ALLOC'] as const) },
    outputs: [],
  },

  legacy_mirror_open: {
    doc: 'Opens a legacy_mirror device for a process: hmm_mirror_register() of its mm (the v5.4 API).',
    fields: { device: Name, proc: Name },
    outputs: [],
  },
  legacy_mirror_close: {
    doc: 'Closes a legacy_mirror file: hmm_mirror_unregister().',
    fields: { fd: Num },
    outputs: [],
  },
  legacy_mirror_fault: {
    doc: 'The legacy_mirror device faults a range in: hmm_range_register, wait_until_valid, hmm_range_fault, hmm_range_valid under the driver lock, program the device.',
    fields: { fd: Num, addr: Num, npages: Num, write: z.boolean().optional() },
    outputs: [],
  },
  legacy_mirror_read: {
    doc: 'The legacy_mirror device reads npages through its page table, faulting what is missing; expect `data`. At most 65536 pages (256 MiB) a step.',
    fields: { fd: Num, addr: Num, npages: Num },
    outputs: ['cpages', 'faults'],
  },

  iommufd_open: { doc: 'Opens /dev/iommu for a process.', fields: proc, outputs: [] },
  iommufd_close: { doc: 'Closes an iommufd.', fields: { fd: Num }, outputs: [] },
  IOMMU_IOAS_ALLOC: {
    doc: 'Allocates an IOAS.',
    fields: ioctlFd,
    outputs: ['out_ioas_id'],
    main: 'out_ioas_id',
  },
  IOMMU_IOAS_MAP: {
    doc: 'Maps user memory into an IOAS (pins it when a domain or access needs it).',
    fields: {
      fd: U64,
      ioas_id: U64,
      user_va: U64,
      length: U64,
      iova: U64.optional(),
      flags: ioasMapFlags.optional(),
    },
    outputs: ['iova'],
    main: 'iova',
  },
  IOMMU_IOAS_MAP_FILE: {
    doc: 'Maps a memfd range into an IOAS (`file` is the struct field fd).',
    fields: {
      fd: U64,
      ioas_id: U64,
      file: U64,
      start: U64.optional(),
      length: U64,
      iova: U64.optional(),
      flags: ioasMapFlags.optional(),
    },
    outputs: ['iova'],
    main: 'iova',
  },
  IOMMU_IOAS_COPY: {
    doc: 'Copies a mapping between IOASes sharing the pinned pages.',
    fields: {
      fd: U64,
      dst_ioas_id: U64,
      src_ioas_id: U64,
      length: U64,
      dst_iova: U64.optional(),
      src_iova: U64,
      flags: ioasMapFlags.optional(),
    },
    outputs: ['dst_iova'],
    main: 'dst_iova',
  },
  IOMMU_IOAS_UNMAP: {
    doc: 'Unmaps an IOVA range; returns the unmapped length.',
    fields: { fd: U64, ioas_id: U64, iova: U64, length: U64 },
    outputs: ['length'],
  },
  IOMMU_IOAS_IOVA_RANGES: {
    doc: 'Reports the usable IOVA ranges.',
    fields: { fd: U64, ioas_id: U64, num_iovas: U64.optional() },
    outputs: ['num_iovas', 'out_iova_alignment', 'allowed_iovas'],
  },
  IOMMU_IOAS_ALLOW_IOVAS: {
    doc: 'Restricts IOVA allocation to the listed ranges.',
    fields: { fd: U64, ioas_id: U64, allowed_iovas: z.array(iovaRange) },
    outputs: [],
  },
  IOMMU_OPTION: {
    doc: 'Gets or sets an option (RLIMIT_MODE, HUGE_PAGES).',
    fields: {
      fd: U64,
      option_id: z.union([z.enum(['RLIMIT_MODE', 'HUGE_PAGES']), z.number().int()]),
      option_op: z.union([z.enum(['SET', 'GET']), z.number().int()]),
      object_id: U64.optional(),
      val64: U64.optional(),
    },
    outputs: ['val64'],
  },
  IOMMU_DESTROY: { doc: 'Destroys an object by id.', fields: { fd: U64, id: U64 }, outputs: [] },
  IOMMU_HWPT_ALLOC: {
    doc: 'Allocates a HW page table for a device (PASID: one that can also be attached to a PASID of it; FAULT_ID_VALID: its I/O page faults go to the fault queue `fault_id`). Over a nesting parent or a vIOMMU, `data_type` (the mock: 0xdead), `data_len` and `data_uptr` give the driver data of a nested HWPT.',
    fields: {
      fd: U64,
      dev_id: U64,
      pt_id: U64,
      flags: flags(['NEST_PARENT', 'DIRTY_TRACKING', 'FAULT_ID_VALID', 'PASID'] as const).optional(),
      data_type: U64.optional(),
      data_len: U64.optional(),
      data_uptr: U64.optional(),
      fault_id: U64.optional(),
    },
    outputs: ['out_hwpt_id'],
    main: 'out_hwpt_id',
  },
  IOMMU_HWPT_SET_DIRTY_TRACKING: {
    doc: 'Enables or disables dirty tracking.',
    fields: { fd: U64, hwpt_id: U64, flags: flags(['ENABLE'] as const).optional() },
    outputs: [],
  },
  IOMMU_HWPT_GET_DIRTY_BITMAP: {
    doc: 'Reads (and clears) the dirty bitmap; expect `dirty` as a list of set page indexes.',
    fields: {
      fd: U64,
      hwpt_id: U64,
      iova: U64,
      length: U64,
      page_size: U64.optional(),
      flags: flags(['NO_CLEAR'] as const).optional(),
    },
    outputs: ['dirty'],
  },
  IOMMU_VIOMMU_ALLOC: {
    doc: 'Allocates a vIOMMU of `type` for the device `dev_id` over the NEST_PARENT HWPT `hwpt_id` (the mock IOMMU: 0xdeadbeef).',
    fields: {
      fd: U64,
      dev_id: U64,
      hwpt_id: U64,
      type: U64,
      data_len: U64.optional(),
      data_uptr: U64.optional(),
    },
    outputs: ['out_viommu_id'],
    main: 'out_viommu_id',
  },
  IOMMU_VDEVICE_ALLOC: {
    doc: 'Gives the device `dev_id` the guest ID `virt_id` behind the vIOMMU `viommu_id`.',
    fields: { fd: U64, viommu_id: U64, dev_id: U64, virt_id: U64 },
    outputs: ['out_vdevice_id'],
    main: 'out_vdevice_id',
  },
  IOMMU_VEVENTQ_ALLOC: {
    doc: 'Allocates a vEVENTQ of `type` (the mock IOMMU: 0xbeefbeef) holding `veventq_depth` events on the vIOMMU `viommu_id`.',
    fields: { fd: U64, viommu_id: U64, type: U64, veventq_depth: U64 },
    outputs: ['out_veventq_id', 'out_veventq_fd'],
    main: 'out_veventq_id',
  },
  IOMMU_HW_QUEUE_ALLOC: {
    doc: 'Allocates HW queue `index` of `type` (the mock IOMMU: 0xdeadbeef) on the vIOMMU `viommu_id`, backed by `length` bytes at `nesting_parent_iova` of its parent HWPT, which stay pinned while the queue exists (an IOMMU_IOAS_UNMAP over them is -EBUSY).',
    fields: { fd: U64, viommu_id: U64, type: U64, index: U64, nesting_parent_iova: U64, length: U64 },
    outputs: ['out_hw_queue_id'],
    main: 'out_hw_queue_id',
  },
  IOMMU_FAULT_QUEUE_ALLOC: {
    doc: 'Allocates a fault queue: an object (`out_fault_id`, for IOMMU_HWPT_ALLOC fault_id) and a file (`out_fault_fd`) that fault_read reads I/O page faults from and fault_respond answers them through.',
    fields: { fd: U64, flags: z.number().int().nonnegative().optional() },
    outputs: ['out_fault_id', 'out_fault_fd'],
    main: 'out_fault_id',
  },
  IOMMU_GET_HW_INFO: {
    doc: 'Reports the IOMMU of the device `dev_id`: `out_data_type`, `out_max_pasid_log2`, `out_capabilities` and the driver data, copied to `data_uptr` (at most `data_len` bytes, the rest zeroed; `data_len` comes back as the driver data length). With flags [INPUT_TYPE] `in_data_type` asks for one type.',
    fields: {
      fd: U64,
      dev_id: U64,
      data_len: U64.optional(),
      data_uptr: U64.optional(),
      flags: flags(['INPUT_TYPE'] as const).optional(),
      in_data_type: U64.optional(),
    },
    outputs: ['out_data_type', 'out_max_pasid_log2', 'out_capabilities', 'data_len'],
  },
  fault_read: {
    doc: "read(2) of `count` bytes (default 160: four records) from a fault queue fd; returns the bytes read. `cookie` is the first fault's, for fault_respond; `faults` the number of records.",
    fields: { fd: Num, count: Size.optional() },
    outputs: ['cookie', 'faults'],
    main: 'cookie',
  },
  fault_respond: {
    doc: 'write(2) of one struct iommu_hwpt_page_response { cookie, code } (code 0: SUCCESS, 1: INVALID) to a fault queue fd, repeated to fill `count` bytes (default 8); returns the bytes consumed.',
    fields: { fd: Num, cookie: U64, code: U64.optional(), count: Size.optional() },
    outputs: [],
  },
  veventq_read: {
    doc: 'read(2) of `count` bytes (default 4KiB) from a vEVENTQ fd; returns the bytes read. `events` is the number of headers read, `flags` and `sequence` those of the first.',
    fields: { fd: Num, count: Size.optional() },
    outputs: ['events', 'flags', 'sequence'],
  },
  IOMMU_IOAS_CHANGE_PROCESS: {
    doc: 'Moves the pinned-memory accounting of every IOAS to the calling process `proc`.',
    fields: { fd: U64, proc: Name },
    outputs: [],
  },
  IOMMU_TEST_OP_MOCK_DOMAIN: {
    doc: 'Plugs a mock device and attaches it to the IOAS or HWPT `id` (an automatic domain for an IOAS).',
    fields: {
      fd: U64,
      id: U64,
      device: Name.optional(),
      dev_flags: flags(['NO_DIRTY', 'HUGE_IOVA', 'PASID'] as const).optional(),
    },
    outputs: ['out_stdev_id', 'out_hwpt_id', 'out_idev_id'],
    main: 'out_stdev_id',
  },
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: {
    doc: 'Moves the mock device `id` (its out_stdev_id) to the IOAS or HWPT `pt_id`; `pt_id` comes back as the HWPT it is now attached to.',
    fields: { fd: U64, id: U64, pt_id: U64 },
    outputs: ['pt_id'],
  },
  IOMMU_TEST_OP_PASID_ATTACH: {
    doc: 'Attaches PASID `pasid` of the mock device `id` (a PASID-capable one: dev_flags [PASID]) to the HWPT `pt_id` (allocated with flags [PASID]).',
    fields: { fd: U64, id: U64, pasid: U64, pt_id: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_PASID_REPLACE: {
    doc: 'Moves the attached PASID `pasid` of the mock device `id` to the HWPT `pt_id`.',
    fields: { fd: U64, id: U64, pasid: U64, pt_id: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_PASID_DETACH: {
    doc: 'Detaches PASID `pasid` of the mock device `id` (nothing happens if it is not attached).',
    fields: { fd: U64, id: U64, pasid: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_PASID_CHECK_HWPT: {
    doc: 'Succeeds if PASID `pasid` of the mock device `id` translates through the HWPT `hwpt_id` (0: through none); -EINVAL if not.',
    fields: { fd: U64, id: U64, pasid: U64, hwpt_id: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_TRIGGER_VEVENT: {
    doc: 'The mock device `dev_id`, attached to a nested HWPT of a vIOMMU, reports an event with its guest ID to the vIOMMU.',
    fields: { fd: U64, dev_id: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_TRIGGER_IOPF: {
    doc: 'The mock device `dev_id` raises a last-page I/O page fault (a page request) for `addr`, tagged with `pasid` unless it is 0 (IOMMU_NO_PASID); it reaches the fault queue of the HWPT it is attached to.',
    fields: {
      fd: U64,
      dev_id: U64,
      pasid: U64.optional(),
      grpid: U64.optional(),
      perm: U64.optional(),
      addr: U64.optional(),
    },
    outputs: [],
  },
  IOMMU_TEST_OP_ADD_RESERVED: {
    doc: 'Reserves an IOVA range.',
    fields: { fd: U64, id: U64, start: U64, length: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_MD_CHECK_MAP: {
    doc: 'Checks the mock domain maps iova..+length to the pages of uptr.',
    fields: { fd: U64, id: U64, iova: U64, length: U64, uptr: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_MD_CHECK_REFS: {
    doc: 'Checks the pin count of the pages of uptr.',
    fields: { fd: U64, length: U64, uptr: U64, refs: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_CREATE_ACCESS: {
    doc: 'Creates an in-kernel access (an emulated mdev) on an IOAS.',
    fields: { fd: U64, id: U64, flags: flags(['NEEDS_PIN_PAGES'] as const).optional() },
    outputs: ['out_access_fd'],
    main: 'out_access_fd',
  },
  IOMMU_TEST_OP_ACCESS_PAGES: {
    doc: 'iommufd_access_pin_pages through an access.',
    fields: {
      fd: U64,
      id: U64,
      iova: U64,
      length: U64,
      uptr: U64.optional(),
      flags: flags(['WRITE', 'SYZ'] as const).optional(),
    },
    outputs: ['out_access_pages_id'],
    main: 'out_access_pages_id',
  },
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: {
    doc: 'Unpins what ACCESS_PAGES pinned.',
    fields: { fd: U64, id: U64, access_pages_id: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_ACCESS_RW: {
    doc: 'iommufd_access_rw: reads (expect `data`) or writes (`data`) through an access.',
    fields: {
      fd: U64,
      id: U64,
      iova: U64,
      length: U64,
      uptr: U64.optional(),
      data: DataSpec.optional(),
      flags: flags(['WRITE', 'SLOW_PATH'] as const).optional(),
    },
    outputs: [],
  },
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: {
    doc: 'Limits the pages a mock domain may hold.',
    fields: { fd: U64, limit: U64 },
    outputs: [],
  },
  IOMMU_TEST_OP_DIRTY: {
    doc: 'Marks mock-domain IOVAs dirty from a user bitmap.',
    fields: {
      fd: U64,
      id: U64,
      iova: U64,
      length: U64,
      page_size: U64.optional(),
      uptr: U64.optional(),
      dirty: z.array(z.number().int().nonnegative()).optional(),
    },
    outputs: ['out_nr_dirty'],
  },

  check: { doc: 'Runs every oracle now (teardown too when nothing is left).', fields: {}, outputs: [] },
  expect_stats: {
    doc: 'Compares counters: per process (`proc`: rss_anon, pinned_vm, ...) or global (npinned, counters).',
    fields: {
      proc: Name.optional(),
      rss_anon: Num.optional(),
      rss_file: Num.optional(),
      rss_shmem: Num.optional(),
      swap_ents: Num.optional(),
      total_vm: Num.optional(),
      data_vm: Num.optional(),
      stack_vm: Num.optional(),
      exec_vm: Num.optional(),
      locked_vm: Num.optional(),
      pinned_vm: Num.optional(),
      user_locked_vm: Num.optional(),
      pgtables: Num.optional(),
      free_pages: Num.optional(),
      swap_used: Num.optional(),
      npinned: Num.optional(),
      counters: z.record(z.string(), Num).optional(),
    },
    outputs: [],
  },
};

// Every iommufd ioctl runs as some process (`current`): the one that opened the iommufd unless the
// step names another. It matters where the kernel reads user memory or charges pinned pages.
for (const [name, spec] of Object.entries(OPS)) {
  if (name.startsWith('IOMMU_') && spec.fields.proc === undefined)
    spec.fields.proc = Name.optional().describe('the calling process (default: the opener of the iommufd)');
}

/** The zod object of one op, with the fields every step shares. */
function stepObject(op: string, spec: OpSpec) {
  const fields = Object.fromEntries(Object.entries(spec.fields).filter(([k]) => k !== 'op'));
  return z
    .strictObject({
      op: z.literal(op),
      ...fields,
      save: Save.optional(),
      expect: expectFor(spec.outputs).optional(),
      comment: z.string().optional(),
    })
    .describe(spec.doc);
}

const stepObjects = Object.entries(OPS).map(([op, spec]) => stepObject(op, spec));
const BuiltinStep = z.discriminatedUnion(
  'op',
  stepObjects as unknown as [ReturnType<typeof stepObject>, ...ReturnType<typeof stepObject>[]],
);

/** The name of a user driver's ioctl: upper case, and not one of the built-in ops. */
export const DRIVER_IOCTL_NAME = /^[A-Z][A-Z0-9_]*$/;

/** True when `op` names an ioctl of a user driver rather than a built-in op. */
export function isDriverIoctlOp(op: unknown): boolean {
  return typeof op === 'string' && DRIVER_IOCTL_NAME.test(op) && !(op in OPS);
}

/**
 * A step that runs an ioctl a user driver defines (`{ op: GPU_FAULT, fd: fd0, addr: buf }`): its
 * members are the fields of the driver's argument struct, checked against the driver's table
 * once the driver module is loaded; `expect` may name its output members.
 */
const DriverIoctlStep = z
  .object({
    op: z.string().refine(isDriverIoctlOp, { message: 'not a driver ioctl name', abort: true }),
    fd: Num,
    save: Save.optional(),
    expect: z
      .union([
        z.object(expectShape([])).catchall(ExpectValue),
        z.strictObject({ any: z.array(z.object(expectShape([])).catchall(ExpectValue)).min(1) }),
      ])
      .optional(),
    comment: z.string().optional(),
  })
  .catchall(z.union([Num, z.boolean(), DataSpec]))
  .describe(
    "An ioctl a user driver defines, by its name; the other fields are its argument struct's members.",
  );

export const Step = z.union([BuiltinStep, DriverIoctlStep]);

/** A device a user driver module provides: the module, the export, and what its probe() gets. */
export const DriverDevice = z.strictObject({
  driver: z.strictObject({ module: z.string(), export: z.string() }),
  config: z.record(z.string(), z.unknown()).optional(),
});

/** A built-in GPU device (src/kernel/drivers/gpu/registry.ts) and what its probe() gets. */
export const GpuDevice = z
  .strictObject({
    type: z.enum(gpuKindNames() as [string, ...string[]]),
    config: z.record(z.string(), z.unknown()).optional(),
  })
  .describe(
    `A built-in GPU: ${gpuKindNames()
      .map((n) => `${n}, ${GPU_KINDS[n].doc}`)
      .join('; ')}`,
  );

const Device = z.union([
  z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('dmirror'),
      memory: z.enum(['private', 'coherent']).default('private'),
    }),
    z.strictObject({ type: z.literal('iommufd_mock') }),
    z.strictObject({ type: z.literal('legacy_mirror') }),
  ]),
  DriverDevice,
  GpuDevice,
]);

export const Scenario = z
  .strictObject({
    version: z.literal(1, { message: 'version: 1 is required (the only scenario format so far)' }),
    name: z.string().optional(),
    description: z.string().optional(),
    system: z
      .strictObject({
        ram: Size.optional(),
        swap: Size.optional(),
        rlimit_memlock: Size.optional(),
        thp: z.enum(['always', 'madvise', 'never']).optional(),
        hugetlb_pages: z.number().int().nonnegative().optional(),
        zero_page: z
          .boolean()
          .optional()
          .describe(
            'whether a read fault of untouched private anonymous memory maps the shared zero page (default true; false is mm_forbids_zeropage())',
          ),
      })
      .optional(),
    driver: z.strictObject({ module: z.string(), export: z.string() }).optional(),
    kernel: z
      .strictObject({
        contracts: z
          .strictObject({
            invalidate_range_start_nonblock: z
              .enum(CONTRACT_CHOICES.invalidateRangeStartNonblock)
              .optional()
              .describe(
                'v5.11: a failed non-blockable invalidate_range_start ends nobody; v5.12 (default): every subscriber with an end gets it',
              ),
            device_private_fault: z
              .enum(CONTRACT_CHOICES.devicePrivateFault)
              .optional()
              .describe(
                'v6.0: do_swap_page calls migrate_to_ram holding nothing (CVE-2022-3523); v6.1 (default): the page is referenced and locked across it',
              ),
          })
          .optional(),
      })
      .optional()
      .describe('Older semantics of specific core paths, to replay bugs that depended on them'),
    devices: z.record(z.string(), Device).optional(),
    processes: z.array(Name).optional(),
    steps: z.array(Step).optional(),
    setup: z.array(Step).optional(),
    threads: z.record(z.string(), z.array(Step)).optional(),
    final: z.array(Step).optional(),
    explore: z
      .strictObject({
        expect: z.enum(['found', 'clean']),
        oracle: z.enum(Object.keys(ORACLE_NAMES) as [string, ...string[]]).optional(),
      })
      .optional()
      .describe(
        'What `hetmem explore` must give: `found` (a violation, of `oracle` when named) or `clean`; explore exits 0 when it does, 1 when not.',
      ),
  })
  .describe('A hetmem scenario (version 1): builds a system, runs steps, checks what each returns.');

export type StepT = z.infer<typeof Step> & Record<string, unknown>;
export type ScenarioT = z.infer<typeof Scenario>;

/** The JSON Schema of a scenario file, for editor completion (yaml-language-server, VS Code). */
export function scenarioJsonSchema(): unknown {
  const s = z.toJSONSchema(Scenario, { io: 'input', unrepresentable: 'any', reused: 'ref' }) as Record<
    string,
    unknown
  >;
  return { ...s, $id: 'https://hetmem.dev/schema/scenario-v1.json', title: 'hetmem scenario' };
}
