/**
 * Random scenario programs for `hetmem fuzz`: every scenario op, with the values kernel bugs live
 * at (0, 1, page - 1, unaligned, overlapping, u64 extremes, after exit, closed fds, stale or made-up
 * object ids). A program is plain scenario steps, so a failure is written out as a file that
 * `hetmem run` reproduces. Names bound by `save` are tracked so later steps mostly use real
 * objects, and sometimes ones already gone.
 */
import { Prng } from '../lib/prng.ts';

export type OpGroup = 'mm' | 'dmirror' | 'iommufd' | 'gpu' | 'threads';
export const OP_GROUPS: readonly OpGroup[] = ['mm', 'dmirror', 'iommufd', 'gpu', 'threads'];

export type Step = Record<string, unknown>;

/** A program: the world header and its steps (or setup + threads for the explorer). */
export interface Program {
  system: Record<string, unknown>;
  processes: string[];
  steps: Step[];
  threads?: Record<string, Step[]>;
  /** Tunables of gpu2, the UVM-style GPU, over its defaults (its config keys). */
  uvm?: Record<string, string | number | boolean>;
}

/**
 * u64 values above 2^53 are written as hex strings: a JavaScript number there is not exact
 * (2 ** 64 - 1 is 2^64), and a scenario file reads a decimal integer that large as its nearest
 * double too.
 */
export function u64Hex(v: bigint): string {
  return `0x${BigInt.asUintN(64, v).toString(16)}`;
}

const U64_MAX = u64Hex(-1n);
const U64_LAST_PAGE = u64Hex(-4096n);

const KiB = 1024;
const PAGE = 4 * KiB;
const MiB = 1024 * KiB;

/** The world every program starts from: small, so building it costs little. */
export const DEVICES = {
  gpu0: { type: 'dmirror', memory: 'private' },
  gpu1: { type: 'dmirror', memory: 'coherent' },
  // Two 2 MiB root chunks, and 4 MiB of VRAM: small enough that faults evict.
  gpu2: { type: 'uvm', config: { memory: '4MiB' } },
  gpu3: { type: 'xe', config: { vram: '4MiB' } },
  // A mirror on the v5.4 hmm_mirror API, with its own driver (the range->valid protocol).
  gpu4: { type: 'legacy_mirror' },
};

interface Names {
  bufs: string[];
  procs: string[];
  memfds: string[];
  dmirrors: string[];
  /** Descriptors of the legacy_mirror device. */
  legacies: string[];
  /** Descriptors of the GPU devices (uvm, xe), and xe VM ids. */
  gpuFds: string[];
  xeVms: string[];
  iommufds: string[];
  ioas: string[];
  hwpts: string[];
  idevs: string[];
  stdevs: string[];
  accesses: string[];
  accessPages: string[];
  iovas: string[];
  /** Nesting parents, nested HWPTs (also HWPTs, listed apart to build on). */
  parents: string[];
  nested: string[];
  viommus: string[];
  vdevices: string[];
  veventqs: string[];
  veventqFds: string[];
  hwQueues: string[];
  faults: string[];
  faultFds: string[];
  cookies: string[];
}

export class Generator {
  private n = 0;
  private readonly names: Names = {
    bufs: [],
    procs: ['p', 'q'],
    memfds: [],
    dmirrors: [],
    legacies: [],
    gpuFds: [],
    xeVms: [],
    iommufds: [],
    ioas: [],
    hwpts: [],
    idevs: [],
    stdevs: [],
    accesses: [],
    accessPages: [],
    iovas: [],
    parents: [],
    nested: [],
    viommus: [],
    vdevices: [],
    veventqs: [],
    veventqFds: [],
    hwQueues: [],
    faults: [],
    faultFds: [],
    cookies: [],
  };

  /** Steps of a recipe still to come (they build on each other's names). */
  private readonly pending: Step[] = [];

  constructor(
    private readonly r: Prng,
    private readonly groups: readonly OpGroup[],
  ) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[this.r.int(xs.length)];
  }

  private chance(p: number): boolean {
    return this.r.next() < p;
  }

  private fresh(prefix: string): string {
    return `${prefix}${this.n++}`;
  }

  /** A length: mostly small page multiples, sometimes an edge. */
  private length(): number | string {
    if (this.chance(0.8)) return this.pick([PAGE, 2 * PAGE, 4 * PAGE, 16 * PAGE, 2 * MiB, 3 * PAGE]);
    return this.pick([
      0,
      1,
      PAGE - 1,
      PAGE + 1,
      4 * MiB,
      64 * MiB,
      2 ** 40,
      2 ** 47,
      2 ** 53 - 1,
      2 ** 53 - PAGE,
    ]);
  }

  /** Draws for ulong() only, so the main stream, and the programs of every seed, stay as they were. */
  private u64r: Prng | null = null;

  /**
   * A length or address of an mm syscall, which takes any u64: now and then a value of 2^53 or
   * more (hex) in place of `v`'s, so the exact 64-bit checks at the syscall entry are fuzzed too.
   */
  private ulong(v: () => number | string): number | string {
    const usual = v();
    this.u64r ??= this.r.fork('u64');
    if (this.u64r.next() >= 0.04) return usual;
    return this.u64r.pick([
      '0xffffffffffffffff',
      '0xfffffffffffff000',
      '0x8000000000000000',
      '0x20000000000001',
      '0xffffffffffe00fff',
      '0xffffffffffe00000',
    ]);
  }

  /** An address: a saved buffer with an offset, or an edge value. */
  private addr(): number | string {
    const b = this.names.bufs;
    if (b.length > 0 && this.chance(0.85)) {
      const base = this.pick(b);
      const off = this.pick([0, 0, 0, PAGE, 2 * PAGE, 3 * PAGE, 1, PAGE - 1, 16 * PAGE, -PAGE]);
      return off === 0 ? base : off > 0 ? `${base}+${off}` : `${base}-${-off}`;
    }
    return this.pick([0, PAGE, 0x10000, 0x7f0000000000, 2 ** 47 - PAGE, 2 ** 47, 2 ** 53 - PAGE, -PAGE, 123]);
  }

  /**
   * A user pointer of an iommufd struct (a u64 field): an address as addr() draws it, a negative
   * one written as the u64 it stands for, in hex, and a buffer below its start (which the file
   * format cannot read as a u64) taken at its start.
   */
  private uptr(): number | string {
    const a = this.addr();
    if (typeof a === 'number') return a < 0 ? u64Hex(BigInt(a)) : a;
    return a.split('-')[0];
  }

  private npages(): number {
    if (this.chance(0.8)) return this.pick([1, 2, 4, 16, 512]);
    return this.pick([0, 3, 2 ** 20, 2 ** 40, 2 ** 52 - 1]);
  }

  /**
   * MIGRATE_TO_DEV pages. dmirror_migrate_to_device() walks its whole range, holes too, and tries
   * a device page for every page of an anonymous hole even after device memory has run out (a
   * failed allocation just skips the page), so its time grows with the range as the kernel's
   * does: over an unfaulted 1 TiB mapping, 2^20 pages took 3.6 s in a fuzz world and 2^40 would
   * take minutes. The large legal value is kept to what a fuzz world walks quickly, as for
   * SNAPSHOT; a wrapping range is -EINVAL.
   */
  private migratePages(): number {
    if (this.chance(0.8)) return this.pick([1, 2, 4, 16, 512]);
    return this.pick([0, 3, 2 ** 14, 2 ** 52 - 1]);
  }

  /**
   * SNAPSHOT pages. dmirror_snapshot() walks its whole range, holes too, one 32-page chunk at a
   * time (a temporary interval notifier and an hmm_range_fault() each), until the range ends or
   * the user buffer does: 2^20 pages is 32768 legal chunks, far past the fuzz step bound, but
   * no loop that never ends. Past 2^28 pages (256 MiB of SNAPSHOT bytes) the user buffer a scenario stands in for is refused and
   * the first chunk fails (-EFAULT); a wrapping range is -EINVAL. The large legal value is kept
   * to what a fuzz world walks quickly (64 MiB of address space, 8x its RAM).
   */
  private snapshotPages(): number {
    if (this.chance(0.8)) return this.pick([1, 2, 4, 16, 512]);
    return this.pick([0, 3, 2 ** 14, 2 ** 40, 2 ** 52 - 1]);
  }

  private id(list: string[]): number | string {
    if (list.length > 0 && this.chance(0.9)) return this.pick(list);
    return this.pick([0, 1, 2, 7, 1000, 2 ** 31, 2 ** 32 - 1]);
  }

  private fd(list: string[]): number | string {
    if (list.length > 0 && this.chance(0.9)) return this.pick(list);
    return this.pick([-1, 0, 2, 3, 99, 2 ** 31 - 1]);
  }

  private proc(): string {
    return this.pick(this.names.procs);
  }

  private data(): Record<string, unknown> {
    return this.pick([
      { fill: this.r.int(256) },
      { pattern: 'index32' },
      { pattern: 'zero' },
      { bytes: [1, 2, 3] },
    ]);
  }

  private iova(): number | string {
    if (this.names.iovas.length > 0 && this.chance(0.7)) return this.pick(this.names.iovas);
    return this.pick([0, PAGE, MiB, 1 << 30, 2 ** 40, 2 ** 53 - PAGE, 1]);
  }

  private mmOp(): Step {
    const proc = this.proc();
    const k = this.r.int(100);
    if (k < 18) {
      const save = this.fresh('b');
      const flags = [this.chance(0.75) ? (this.chance(0.1) ? 'droppable' : 'private') : 'shared'];
      const fileBacked = this.names.memfds.length > 0 && this.chance(0.2);
      if (!fileBacked) flags.push('anonymous');
      if (this.chance(0.15)) flags.push('populate');
      if (this.chance(0.1)) flags.push('noreserve');
      if (this.chance(0.05)) flags.push('locked');
      if (this.chance(0.05)) flags.push('growsdown');
      const step: Step = {
        op: 'mmap',
        proc,
        length: this.ulong(() => this.length()),
        prot: this.pick([
          ['read', 'write'],
          ['read', 'write'],
          ['read'],
          ['none'],
          ['read', 'write', 'exec'],
        ]),
        flags,
        save,
      };
      if (fileBacked) step.fd = this.pick(this.names.memfds);
      if (this.chance(0.1)) {
        flags.push(this.pick(['fixed', 'fixed_noreplace']));
        step.addr = this.ulong(() => this.addr());
      }
      return step;
    }
    if (k < 24) return { op: 'munmap', proc, addr: this.ulong(() => this.addr()), length: this.length() };
    if (k < 30) {
      return {
        op: 'mprotect',
        proc,
        addr: this.ulong(() => this.addr()),
        length: this.ulong(() => this.length()),
        prot: this.pick([['read'], ['read', 'write'], ['none']]),
      };
    }
    if (k < 37) {
      return {
        op: 'madvise',
        proc,
        addr: this.ulong(() => this.addr()),
        length: this.ulong(() => this.length()),
        advice: this.pick([
          'dontneed',
          'free',
          'pageout',
          'cold',
          'hugepage',
          'nohugepage',
          'collapse',
          'guard_install',
          'guard_remove',
        ]),
      };
    }
    if (k < 41) {
      const save = this.fresh('b');
      const flags = this.pick([[], ['maymove'], ['maymove', 'fixed'], ['maymove', 'dontunmap']]);
      const step: Step = {
        op: 'mremap',
        proc,
        addr: this.ulong(() => this.addr()),
        length: this.ulong(() => this.length()),
        new_length: this.ulong(() => this.length()),
        flags,
        save,
      };
      if (flags.includes('fixed')) step.new_addr = this.ulong(() => this.addr());
      return step;
    }
    if (k < 53) return { op: 'cpu_write', proc, addr: this.addr(), length: this.length(), data: this.data() };
    if (k < 62) return { op: 'cpu_read', proc, addr: this.addr(), length: this.length() };
    if (k < 65) {
      const child = this.fresh('c');
      return { op: 'fork', proc, child };
    }
    if (k < 67) return { op: 'exit', proc };
    if (k < 71) {
      // Now and then a dup of a descriptor (memfd, device, iommufd), or a second open file of it
      // (open() of /proc/self/fd/N, in any access mode, truncating or O_PATH), which then lives
      // on alone or beside the first; a seal on a memfd made before; or a memfd that may take
      // seals.
      const fds = [
        ...this.names.memfds,
        ...this.names.dmirrors,
        ...this.names.legacies,
        ...this.names.iommufds,
      ];
      if (fds.length > 0 && this.chance(0.2)) {
        const fd = this.pick(fds);
        if (this.chance(0.5)) return { op: 'dup', fd, save: this.fresh(namePrefix(fd)) };
        const flags = this.pick([
          ['rdonly'],
          ['wronly'],
          ['rdwr'],
          ['accmode'],
          ['rdwr', 'trunc'],
          ['rdonly', 'trunc'],
          ['path'],
          ['path', 'nofollow'],
          ['rdwr', 'creat', 'excl'],
          ['rdwr', 'append'],
          ['wronly', 'append'],
        ]);
        return { op: 'open', proc, fd, flags, save: this.fresh(namePrefix(fd)) };
      }
      if (this.names.memfds.length > 0 && this.chance(0.4)) {
        const fd = this.fd(this.names.memfds);
        if (this.chance(0.25)) return { op: 'fcntl', fd, cmd: 'get_seals' };
        if (this.chance(0.15))
          return { op: 'fchmod', fd, mode: this.pick([0o644, 0o755, 0o600, 0o700, 0o7777]) };
        const seals = this.pick([
          ['write'],
          ['future_write'],
          ['grow'],
          ['shrink'],
          ['grow', 'shrink'],
          ['seal'],
          ['exec'],
        ]);
        return { op: 'fcntl', fd, cmd: 'add_seals', seals };
      }
      const save = this.fresh('m');
      const flags = this.chance(0.5)
        ? { flags: this.pick([['allow_sealing'], ['noexec_seal'], ['exec', 'allow_sealing']]) }
        : {};
      return { op: 'memfd_create', name: save, ...flags, save };
    }
    if (k < 74) {
      if (this.chance(0.5)) return { op: 'ftruncate', fd: this.fd(this.names.memfds), length: this.length() };
      return {
        op: 'fallocate',
        fd: this.fd(this.names.memfds),
        mode: this.pick([[], ['keep_size'], ['punch_hole', 'keep_size'], ['punch_hole'], ['zero_range']]),
        offset: this.pick([0, 1, PAGE, 2 * MiB]),
        length: this.length(),
      };
    }
    if (k < 77) {
      // write() at the open file's position, or pwrite() at an offset.
      if (this.chance(0.4))
        return { op: 'write', fd: this.fd(this.names.memfds), data: this.data(), length: PAGE };
      return {
        op: 'pwrite',
        fd: this.fd(this.names.memfds),
        data: this.data(),
        length: PAGE,
        offset: this.pick([0, 1, PAGE, MiB]),
      };
    }
    if (k < 80) {
      if (this.chance(0.3)) return { op: 'read', fd: this.fd(this.names.memfds), length: this.length() };
      if (this.chance(0.4))
        return {
          op: 'lseek',
          fd: this.fd(this.names.memfds),
          offset: this.pick([0, 1, PAGE, -1, 2 ** 52]),
          whence: this.pick(['set', 'cur', 'end', 'data', 'hole', 5]),
        };
      return {
        op: 'pread',
        fd: this.fd(this.names.memfds),
        length: this.length(),
        offset: this.pick([0, PAGE, 2 ** 53 - 1]),
      };
    }
    if (k < 82) return { op: 'close', fd: this.fd(this.names.memfds) };
    if (k < 84) return { op: 'oom_reap', proc };
    if (k < 87) return { op: 'reclaim', pages: this.pick([1, 16, 1024]) };
    if (k < 90) return { op: 'clear_soft_dirty', proc };
    if (k < 93) return { op: 'pagemap', proc, addr: this.addr(), npages: this.pick([1, 4, 16, 512]) };
    if (k < 94) return { op: this.pick(['maps', 'smaps']), proc };
    if (k < 95) {
      const length = this.ulong(() => this.pick([0, 1, PAGE, 16 * PAGE + 1, 512 * PAGE]));
      return { op: 'mincore', proc, addr: this.ulong(() => this.addr()), length };
    }
    if (k < 97) return this.mlockOp(proc);
    if (k < 98) {
      const step: Step = {
        op: 'mseal',
        proc,
        addr: this.ulong(() => this.addr()),
        length: this.ulong(() => this.length()),
      };
      if (this.chance(0.05)) step.flags = 1;
      return step;
    }
    if (k < 99) {
      const seg = () => ({ addr: this.ulong(() => this.addr()), length: this.ulong(() => this.length()) });
      return {
        op: 'process_madvise',
        proc,
        target: this.proc(),
        iov: this.chance(0.5) ? [seg()] : [seg(), seg()],
        advice: this.pick(['dontneed', 'free', 'pageout', 'cold', 'willneed', 'guard_install', 'collapse']),
      };
    }
    return { op: 'check' };
  }

  /**
   * mlock, mlock2 (MLOCK_ONFAULT), munlock, mlockall (any flags, bad ones too) and munlockall; now
   * and then a setrlimit of an address-space limit instead (small values, which later mappings,
   * locks and stack growth meet).
   */
  private mlockOp(proc: string): Step {
    if (this.chance(0.15)) {
      const limit = () => (this.chance(0.15) ? 'unlimited' : this.pick([0, 1, 4, 16, 64, 256]) * PAGE);
      return {
        op: 'setrlimit',
        proc,
        resource: this.pick(['as', 'data', 'stack', 'memlock']),
        cur: limit(),
        ...(this.chance(0.3) ? { max: limit() } : {}),
      };
    }
    const op = this.pick(['mlock', 'mlock', 'munlock', 'mlockall', 'munlockall']);
    if (op === 'munlockall') return { op, proc };
    if (op === 'mlockall') {
      const flags = this.pick([
        ['current'],
        ['future'],
        ['current', 'future'],
        ['future', 'onfault'],
        ['onfault'],
      ]);
      return { op, proc, flags };
    }
    const step: Step = {
      op,
      proc,
      addr: this.ulong(() => this.addr()),
      length: this.ulong(() => this.length()),
    };
    if (op === 'mlock' && this.chance(0.3)) step.flags = ['onfault'];
    return step;
  }

  private dmirrorOp(): Step {
    if (this.chance(0.2)) return this.legacyMirrorOp();
    const k = this.r.int(100);
    if (k < 12 || this.names.dmirrors.length === 0) {
      const save = this.fresh('d');
      return { op: 'dmirror_open', device: this.pick(['gpu0', 'gpu1']), proc: this.proc(), save };
    }
    if (k < 15) return { op: 'dmirror_close', fd: this.fd(this.names.dmirrors) };
    if (k < 17) return { op: 'HMM_DMIRROR_FLAGS', fd: this.fd(this.names.dmirrors), flags: ['FAIL_ALLOC'] };
    const op = this.pick([
      'HMM_DMIRROR_READ',
      'HMM_DMIRROR_WRITE',
      'HMM_DMIRROR_MIGRATE_TO_DEV',
      'HMM_DMIRROR_MIGRATE_TO_DEV',
      'HMM_DMIRROR_MIGRATE_TO_SYS',
      'HMM_DMIRROR_SNAPSHOT',
      'HMM_DMIRROR_EXCLUSIVE',
      'HMM_DMIRROR_CHECK_EXCLUSIVE',
      'HMM_DMIRROR_RELEASE',
    ]);
    const fd = this.fd(this.names.dmirrors);
    const addr = this.addr();
    const npages =
      op === 'HMM_DMIRROR_SNAPSHOT'
        ? this.snapshotPages()
        : op === 'HMM_DMIRROR_MIGRATE_TO_DEV'
          ? this.migratePages()
          : this.npages();
    const step: Step = { op, fd, addr, npages };
    if (op === 'HMM_DMIRROR_WRITE' && this.chance(0.7)) step.data = this.data();
    return step;
  }

  /** The legacy_mirror device (gpu4): open, close, fault (read or write) and read through it. */
  private legacyMirrorOp(): Step {
    const N = this.names;
    const k = this.r.int(100);
    if (k < 15 || N.legacies.length === 0)
      return { op: 'legacy_mirror_open', device: 'gpu4', proc: this.proc(), save: this.fresh('lm') };
    if (k < 20) return { op: 'legacy_mirror_close', fd: this.fd(N.legacies) };
    const read = k >= 60;
    const step: Step = {
      op: read ? 'legacy_mirror_read' : 'legacy_mirror_fault',
      fd: this.fd(N.legacies),
      addr: this.addr(),
      // The device faults 16 pages a round and keeps what it reads in the report: a range of
      // thousands of pages over a large mapping costs seconds of the fuzz budget, so the edges are
      // the cheap ones (empty, wrapping) and one of 4096 pages.
      npages: this.chance(0.9) ? this.pick([1, 2, 4, 16, 512, 3]) : this.pick([0, 4096, 2 ** 52 - 1]),
    };
    if (!read && this.chance(0.5)) step.write = true;
    return step;
  }

  /**
   * The GPU drivers (gpu2 UVM-style, gpu3 xe-style): GPU reads, writes and atomics at the
   * addresses mm steps map, snapshots, and the xe uAPI around them (a fault-mode VM whose whole
   * address space mirrors the CPU's, madvise, prefetch, userptr bindings, unbind, VM destroy).
   */
  private gpuOp(): Step {
    const N = this.names;
    const k = this.r.int(100);
    if (k < 8 || N.gpuFds.length === 0) {
      const fd = this.fresh('u');
      if (this.chance(0.5)) return { op: 'device_open', device: 'gpu2', proc: this.proc(), save: fd };
      const vm = this.fresh('xv');
      this.pending.push(
        { op: 'DRM_IOCTL_XE_VM_CREATE', fd, flags: 'DRM_XE_VM_CREATE_FLAG_FAULT_MODE', save: { vm_id: vm } },
        {
          op: 'DRM_IOCTL_XE_VM_BIND',
          fd,
          vm_id: vm,
          bind_op: 'DRM_XE_VM_BIND_OP_MAP',
          flags: 'DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR',
          addr: 0,
          range: this.chance(0.8) ? 2 ** 48 : this.length(),
        },
      );
      return { op: 'device_open', device: 'gpu3', proc: this.proc(), save: fd };
    }
    if (k < 10) return { op: 'close', fd: this.fd(N.gpuFds) };
    const device = this.pick(['gpu2', 'gpu3']);
    if (k < 65) {
      const access = this.pick(['read', 'read', 'write', 'atomic']);
      const length = this.chance(0.9)
        ? this.pick([1, 4, 16, PAGE, 2 * PAGE])
        : this.pick([0, PAGE + 1, 64 * KiB]);
      const step: Step = { op: 'gpu_access', device, address: this.addr(), length, access };
      if (device === 'gpu2' || this.chance(0.2)) step.proc = this.proc();
      if (access !== 'read') step.data = this.data();
      return step;
    }
    if (k < 75) {
      const step: Step = {
        op: 'gpu_snapshot',
        device,
        addr: this.addr(),
        length: this.pick([PAGE, 16 * PAGE, 2 * MiB]),
      };
      if (device === 'gpu2' || this.chance(0.2)) step.proc = this.proc();
      return step;
    }
    const fd = this.fd(N.gpuFds);
    const vmId = this.id(N.xeVms);
    if (k < 85)
      return {
        op: 'DRM_IOCTL_XE_MADVISE',
        fd,
        vm_id: vmId,
        start: this.addr(),
        range: this.length(),
        type: 'DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC',
        preferred_mem_loc_devmem_fd: this.pick([
          'DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM',
          'DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE',
        ]),
      };
    if (k < 93)
      return {
        op: 'DRM_IOCTL_XE_VM_BIND',
        fd,
        vm_id: vmId,
        bind_op: 'DRM_XE_VM_BIND_OP_PREFETCH',
        addr: this.addr(),
        range: this.length(),
        prefetch_mem_region_instance: this.pick([0, 1, 1, 2]),
      };
    if (k < 96) {
      // A userptr binding: GPU addresses backed by the process memory at `userptr`, the same
      // address or another one.
      const addr = this.addr();
      return {
        op: 'DRM_IOCTL_XE_VM_BIND',
        fd,
        vm_id: vmId,
        bind_op: 'DRM_XE_VM_BIND_OP_MAP_USERPTR',
        addr,
        range: this.length(),
        userptr: this.chance(0.85) ? addr : this.addr(),
      };
    }
    if (k < 98) return { op: 'DRM_IOCTL_XE_VM_DESTROY', fd, vm_id: vmId };
    return {
      op: 'DRM_IOCTL_XE_VM_BIND',
      fd,
      vm_id: vmId,
      bind_op: 'DRM_XE_VM_BIND_OP_UNMAP',
      addr: this.addr(),
      range: this.length(),
    };
  }

  private iommufdOp(): Step {
    const N = this.names;
    // The ioctls' fd fields are u64 in the file format: a negative fd is written as its u32.
    const fd = (): number | string => {
      const v = this.fd(N.iommufds);
      return typeof v === 'number' && v < 0 ? v >>> 0 : v;
    };
    const k = this.r.int(100);
    if (k < 6 || N.iommufds.length === 0) {
      const save = this.fresh('i');
      return { op: 'iommufd_open', proc: this.proc(), save };
    }
    if (k < 14 || N.ioas.length === 0) {
      const save = this.fresh('a');
      return { op: 'IOMMU_IOAS_ALLOC', fd: fd(), save };
    }
    if (this.chance(0.05)) return this.recipe();
    if (this.chance(0.3)) return this.nestingOp(fd);
    const flags = (): string[] =>
      this.pick([['READABLE', 'WRITEABLE'], ['READABLE'], ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], []]);
    if (k < 30) {
      const save = this.fresh('v');
      const f = flags();
      const step: Step = {
        op: 'IOMMU_IOAS_MAP',
        fd: fd(),
        ioas_id: this.id(N.ioas),
        user_va: this.uptr(),
        length: this.length(),
        flags: f,
        save,
      };
      if (f.includes('FIXED_IOVA')) step.iova = this.iova();
      return step;
    }
    if (k < 33 && N.memfds.length > 0) {
      const save = this.fresh('v');
      return {
        op: 'IOMMU_IOAS_MAP_FILE',
        fd: fd(),
        ioas_id: this.id(N.ioas),
        file: this.pick(N.memfds),
        start: 0,
        length: this.length(),
        flags: ['READABLE', 'WRITEABLE'],
        save,
      };
    }
    if (k < 37) {
      const save = this.fresh('v');
      return {
        op: 'IOMMU_IOAS_COPY',
        fd: fd(),
        dst_ioas_id: this.id(N.ioas),
        src_ioas_id: this.id(N.ioas),
        src_iova: this.iova(),
        length: this.length(),
        flags: ['READABLE', 'WRITEABLE'],
        save,
      };
    }
    if (k < 45)
      return {
        op: 'IOMMU_IOAS_UNMAP',
        fd: fd(),
        ioas_id: this.id(N.ioas),
        iova: this.iova(),
        length: this.length(),
      };
    if (k < 47) return { op: 'IOMMU_IOAS_IOVA_RANGES', fd: fd(), ioas_id: this.id(N.ioas) };
    if (k < 49) {
      return {
        op: 'IOMMU_IOAS_ALLOW_IOVAS',
        fd: fd(),
        ioas_id: this.id(N.ioas),
        allowed_iovas: this.chance(0.5)
          ? []
          : [{ start: 0, last: this.pick([PAGE - 1, 2 ** 32 - 1, 2 ** 53 - 1]) }],
      };
    }
    if (k < 51) {
      return {
        op: 'IOMMU_OPTION',
        fd: fd(),
        option_id: this.pick(['RLIMIT_MODE', 'HUGE_PAGES']),
        option_op: this.pick(['SET', 'GET']),
        object_id: this.chance(0.5) ? 0 : this.id(N.ioas),
        val64: this.pick([0, 1, 2]),
      };
    }
    if (k < 54) return { op: 'IOMMU_DESTROY', fd: fd(), id: this.id([...N.ioas, ...N.hwpts, ...N.stdevs]) };
    if (k < 62) {
      const stdev = this.fresh('s');
      const hwpt = this.fresh('h');
      const idev = this.fresh('e');
      const step: Step = {
        op: 'IOMMU_TEST_OP_MOCK_DOMAIN',
        fd: fd(),
        id: this.id([...N.ioas, ...N.hwpts]),
        save: { out_stdev_id: stdev, out_hwpt_id: hwpt, out_idev_id: idev },
      };
      if (this.chance(0.3)) step.dev_flags = this.pick([['PASID'], ['NO_DIRTY'], ['PASID', 'HUGE_IOVA']]);
      return step;
    }
    if (k < 65) {
      const save = this.fresh('h');
      return {
        op: 'IOMMU_HWPT_ALLOC',
        fd: fd(),
        dev_id: this.id(N.idevs),
        pt_id: this.id(N.ioas),
        flags: this.pick([[], ['DIRTY_TRACKING']]),
        save,
      };
    }
    if (k < 67)
      return {
        op: 'IOMMU_HWPT_SET_DIRTY_TRACKING',
        fd: fd(),
        hwpt_id: this.id(N.hwpts),
        flags: this.pick([[], ['ENABLE']]),
      };
    if (k < 69)
      return {
        op: 'IOMMU_HWPT_GET_DIRTY_BITMAP',
        fd: fd(),
        hwpt_id: this.id(N.hwpts),
        iova: this.iova(),
        length: this.length(),
        page_size: PAGE,
      };
    if (k < 71)
      return {
        op: 'IOMMU_TEST_OP_DIRTY',
        fd: fd(),
        id: this.id(N.hwpts),
        iova: this.iova(),
        length: this.length(),
        page_size: PAGE,
      };
    if (k < 73) return { op: 'IOMMU_IOAS_CHANGE_PROCESS', fd: fd(), proc: this.proc() };
    if (k < 75)
      return {
        op: 'IOMMU_TEST_OP_ADD_RESERVED',
        fd: fd(),
        id: this.id(N.ioas),
        start: this.iova(),
        length: this.length(),
      };
    if (k < 81) {
      const save = this.fresh('x');
      return {
        op: 'IOMMU_TEST_OP_CREATE_ACCESS',
        fd: fd(),
        id: this.id(N.ioas),
        flags: this.pick([[], ['NEEDS_PIN_PAGES']]),
        save,
      };
    }
    if (k < 87) {
      const save = this.fresh('g');
      return {
        op: 'IOMMU_TEST_OP_ACCESS_PAGES',
        fd: fd(),
        id: this.id(N.accesses),
        iova: this.iova(),
        length: this.length(),
        flags: this.pick([[], ['WRITE']]),
        save,
      };
    }
    if (k < 89)
      return {
        op: 'IOMMU_TEST_OP_DESTROY_ACCESS_PAGES',
        fd: fd(),
        id: this.id(N.accesses),
        access_pages_id: this.id(N.accessPages),
      };
    if (k < 93) {
      return {
        op: 'IOMMU_TEST_OP_ACCESS_RW',
        fd: fd(),
        id: this.id(N.accesses),
        iova: this.iova(),
        length: this.pick([1, 8, PAGE, 3 * PAGE]),
        flags: this.pick([[], ['WRITE'], ['SLOW_PATH']]),
      };
    }
    if (k < 95)
      return { op: 'IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT', fd: fd(), limit: this.pick([0, 1, 16, 65536]) };
    if (k < 97) return { op: 'close', fd: this.fd(N.accesses) };
    return { op: 'iommufd_close', fd: fd() };
  }

  /**
   * The nesting, PASID and event-queue uAPI: nesting parents and nested HWPTs (the selftest data,
   * a fault queue), vIOMMUs, vDEVICEs, vEVENTQs and their reads, HW queues, PASID attach /
   * replace / detach / check, RID replace, fault queues with triggered page faults, reads and
   * responses, and GET_HW_INFO. Mostly the objects made before; sometimes ids and values that
   * are wrong on purpose (0, u32 and u64 extremes, another kind of object's id).
   */
  private nestingOp(fd: () => number | string): Step {
    const N = this.names;
    const hwpt = (): number | string => this.id([...N.hwpts, ...N.parents, ...N.nested]);
    const u32Edge = (): number | string => this.pick([0, 1, 0xffffffff, 2 ** 31]);
    const pasid = (): number | string => this.pick([0, 1, 100, 1024, 2 ** 20 - 1, 2 ** 20, 0xffffffff]);
    const k = this.r.int(100);
    if (k < 8 || (N.parents.length === 0 && k < 30)) {
      const save = this.fresh('np');
      return {
        op: 'IOMMU_HWPT_ALLOC',
        fd: fd(),
        dev_id: this.id(N.idevs),
        pt_id: this.id(N.ioas),
        flags: this.pick([['NEST_PARENT'], ['NEST_PARENT'], ['NEST_PARENT', 'PASID'], ['PASID']]),
        save,
      };
    }
    if (k < 16) {
      // A nested HWPT over a nesting parent or a vIOMMU: struct iommu_hwpt_selftest at a user
      // buffer (IOMMU_HWPT_DATA_SELFTEST is 0xdead), maybe routing its faults to a fault queue.
      const save = this.fresh('n');
      const step: Step = {
        op: 'IOMMU_HWPT_ALLOC',
        fd: fd(),
        dev_id: this.id(N.idevs),
        pt_id: this.id([...N.parents, ...N.viommus]),
        data_type: this.chance(0.85) ? 0xdead : this.pick([0, 1, 0xffffffff]),
        data_len: this.chance(0.85) ? 4 : this.pick([0, 3, 8, PAGE, 0xffffffff]),
        data_uptr: this.chance(0.9) ? this.uptr() : this.pick([0, U64_MAX]),
        save,
      };
      if (this.chance(0.5)) {
        step.flags = this.chance(0.8)
          ? ['FAULT_ID_VALID']
          : this.pick([['FAULT_ID_VALID', 'PASID'], ['NEST_PARENT']]);
        step.fault_id = this.id(N.faults);
      }
      return step;
    }
    if (k < 24) {
      const save = this.fresh('vi');
      const step: Step = {
        op: 'IOMMU_VIOMMU_ALLOC',
        fd: fd(),
        dev_id: this.id(N.idevs),
        hwpt_id: this.id([...N.parents, ...N.hwpts]),
        type: this.chance(0.85) ? 0xdeadbeef : this.pick([0, 1, 0xffffffff]),
        save,
      };
      if (this.chance(0.2)) {
        step.data_len = this.pick([0, 4, 8, 0xffffffff]);
        step.data_uptr = this.uptr();
      }
      return step;
    }
    if (k < 30) {
      const save = this.fresh('vd');
      return {
        op: 'IOMMU_VDEVICE_ALLOC',
        fd: fd(),
        viommu_id: this.id(N.viommus),
        dev_id: this.id(N.idevs),
        virt_id: this.pick([0, 0x99, 1, 2 ** 32, U64_MAX]),
        save,
      };
    }
    if (k < 36) {
      const id = this.fresh('eq');
      const qfd = this.fresh('eqf');
      return {
        op: 'IOMMU_VEVENTQ_ALLOC',
        fd: fd(),
        viommu_id: this.id(N.viommus),
        type: this.chance(0.85) ? 0xbeefbeef : this.pick([0, 1, 0xffffffff]),
        veventq_depth: this.pick([1, 2, 16, 16, 0, 0xffffffff]),
        save: { out_veventq_id: id, out_veventq_fd: qfd },
      };
    }
    if (k < 42) return { op: 'IOMMU_TEST_OP_TRIGGER_VEVENT', fd: fd(), dev_id: this.id(N.idevs) };
    if (k < 47) {
      return {
        op: 'veventq_read',
        fd: this.fd(N.veventqFds),
        count: this.pick([PAGE, PAGE, 0, 8, 12, 20, 2 ** 40]),
      };
    }
    if (k < 52) {
      const save = this.fresh('hq');
      return {
        op: 'IOMMU_HW_QUEUE_ALLOC',
        fd: fd(),
        viommu_id: this.id(N.viommus),
        type: this.chance(0.85) ? 0xdeadbeef : this.pick([0, 1]),
        index: this.pick([0, 0, 1, 2, 0xffffffff]),
        nesting_parent_iova: this.iova(),
        length: this.length(),
        save,
      };
    }
    if (k < 62) {
      const op = this.pick([
        'IOMMU_TEST_OP_PASID_ATTACH',
        'IOMMU_TEST_OP_PASID_REPLACE',
        'IOMMU_TEST_OP_PASID_DETACH',
        'IOMMU_TEST_OP_PASID_CHECK_HWPT',
      ]);
      const step: Step = { op, fd: fd(), id: this.id(N.stdevs), pasid: pasid() };
      if (op === 'IOMMU_TEST_OP_PASID_CHECK_HWPT') step.hwpt_id = this.chance(0.2) ? 0 : hwpt();
      else if (op !== 'IOMMU_TEST_OP_PASID_DETACH') step.pt_id = hwpt();
      return step;
    }
    if (k < 67) {
      return {
        op: 'IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE',
        fd: fd(),
        id: this.id(N.stdevs),
        pt_id: this.chance(0.3) ? this.id(N.ioas) : hwpt(),
      };
    }
    if (k < 72) {
      const id = this.fresh('f');
      const ffd = this.fresh('ff');
      return {
        op: 'IOMMU_FAULT_QUEUE_ALLOC',
        fd: fd(),
        flags: this.chance(0.9) ? 0 : this.pick([1, 0xffffffff]),
        save: { out_fault_id: id, out_fault_fd: ffd },
      };
    }
    if (k < 78) {
      return {
        op: 'IOMMU_TEST_OP_TRIGGER_IOPF',
        fd: fd(),
        dev_id: this.id(N.idevs),
        pasid: this.chance(0.6) ? 0 : pasid(),
        grpid: this.pick([0, 1, 7, 0xffffffff]),
        perm: this.pick([0, 1, 2, 3]),
        addr: this.pick([0, PAGE, 2 ** 47, U64_LAST_PAGE]),
      };
    }
    if (k < 83) {
      const save = this.fresh('k');
      return {
        op: 'fault_read',
        fd: this.fd(N.faultFds),
        count: this.pick([160, 160, 40, 0, 39, 80, PAGE, 2 ** 40]),
        save,
      };
    }
    if (k < 88) {
      return {
        op: 'fault_respond',
        fd: this.fd(N.faultFds),
        cookie: N.cookies.length > 0 && this.chance(0.8) ? this.pick(N.cookies) : u32Edge(),
        code: this.pick([0, 0, 1, 2, 0xffffffff]),
        count: this.pick([8, 8, 16, 0, 7, 2 ** 40]),
      };
    }
    if (k < 94) {
      const step: Step = {
        op: 'IOMMU_GET_HW_INFO',
        fd: fd(),
        dev_id: this.id(N.idevs),
        data_len: this.pick([0, 8, 8, 16, 3, PAGE + 1, 0xffffffff]),
        data_uptr: this.chance(0.85) ? this.uptr() : this.pick([0, U64_MAX]),
      };
      if (this.chance(0.3)) {
        step.flags = this.pick([['INPUT_TYPE'], ['INPUT_TYPE'], 2]);
        step.in_data_type = this.pick([0, 0xfeedbeef, 1, 0xffffffff]);
      }
      return step;
    }
    if (k < 97) {
      return {
        op: 'IOMMU_DESTROY',
        fd: fd(),
        id: this.id([
          ...N.parents,
          ...N.nested,
          ...N.viommus,
          ...N.vdevices,
          ...N.veventqs,
          ...N.hwQueues,
          ...N.faults,
        ]),
      };
    }
    return { op: 'close', fd: this.fd([...N.veventqFds, ...N.faultFds]) };
  }

  /**
   * A chain of steps that reaches deep into the nesting uAPI, each valid on what the one before
   * made (random single steps rarely line all of it up): a new iommufd, an IOAS, a mock device
   * and a nesting parent, then a fault queue with a nested HWPT that routes the device's page
   * faults to it (trigger, read, respond), or a vIOMMU with a vDEVICE, a vEVENTQ and a HW queue
   * (trigger, read), or PASIDs attached, moved and detached. Returns the first step; the rest
   * come from step() in order.
   */
  private recipe(): Step {
    const N = this.names;
    const chain: Step[] = [];
    let buf = N.bufs.length > 0 ? this.pick(N.bufs) : null;
    if (buf === null) {
      buf = this.fresh('b');
      const flags = ['private', 'anonymous'];
      chain.push({
        op: 'mmap',
        proc: this.proc(),
        length: 4 * PAGE,
        prot: ['read', 'write'],
        flags,
        save: buf,
      });
    }
    const i = this.fresh('i');
    const a = this.fresh('a');
    const [s, h, e] = [this.fresh('s'), this.fresh('h'), this.fresh('e')];
    const np = this.fresh('np');
    const pasid = this.chance(0.3);
    chain.push(
      { op: 'iommufd_open', proc: this.proc(), save: i },
      { op: 'IOMMU_IOAS_ALLOC', fd: i, save: a },
      {
        op: 'IOMMU_TEST_OP_MOCK_DOMAIN',
        fd: i,
        id: a,
        ...(pasid ? { dev_flags: ['PASID'] } : {}),
        save: { out_stdev_id: s, out_hwpt_id: h, out_idev_id: e },
      },
      {
        op: 'IOMMU_HWPT_ALLOC',
        fd: i,
        dev_id: e,
        pt_id: a,
        flags: pasid ? ['NEST_PARENT', 'PASID'] : ['NEST_PARENT'],
        save: np,
      },
    );
    const nested = (pt: string, extra: Step): Step => ({
      op: 'IOMMU_HWPT_ALLOC',
      fd: i,
      dev_id: e,
      pt_id: pt,
      data_type: 0xdead,
      data_len: 4,
      data_uptr: buf,
      ...extra,
    });
    const kind = this.r.int(pasid ? 3 : 2);
    if (kind === 0) {
      const [f, ff, n, k] = [this.fresh('f'), this.fresh('ff'), this.fresh('n'), this.fresh('k')];
      chain.push(
        { op: 'IOMMU_FAULT_QUEUE_ALLOC', fd: i, save: { out_fault_id: f, out_fault_fd: ff } },
        nested(np, { flags: ['FAULT_ID_VALID'], fault_id: f, save: n }),
        { op: 'IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE', fd: i, id: s, pt_id: n },
        { op: 'IOMMU_TEST_OP_TRIGGER_IOPF', fd: i, dev_id: e, grpid: this.r.int(8), perm: 1, addr: PAGE },
        { op: 'IOMMU_TEST_OP_TRIGGER_IOPF', fd: i, dev_id: e, grpid: this.r.int(8), perm: 3, addr: 2 * PAGE },
        { op: 'fault_read', fd: ff, count: this.pick([40, 160]), save: k },
        { op: 'fault_respond', fd: ff, cookie: k, code: this.pick([0, 1]) },
      );
      if (this.chance(0.5)) chain.push({ op: 'IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE', fd: i, id: s, pt_id: a });
    } else if (kind === 1) {
      const [vi, vd, eq, eqf, n] = [
        this.fresh('vi'),
        this.fresh('vd'),
        this.fresh('eq'),
        this.fresh('eqf'),
        this.fresh('n'),
      ];
      const v = this.fresh('v');
      chain.push(
        { op: 'IOMMU_VIOMMU_ALLOC', fd: i, dev_id: e, hwpt_id: np, type: 0xdeadbeef, save: vi },
        { op: 'IOMMU_VDEVICE_ALLOC', fd: i, viommu_id: vi, dev_id: e, virt_id: this.r.int(256), save: vd },
        {
          op: 'IOMMU_VEVENTQ_ALLOC',
          fd: i,
          viommu_id: vi,
          type: 0xbeefbeef,
          veventq_depth: this.pick([1, 2, 16]),
          save: { out_veventq_id: eq, out_veventq_fd: eqf },
        },
        nested(vi, { save: n }),
        { op: 'IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE', fd: i, id: s, pt_id: n },
        { op: 'IOMMU_TEST_OP_TRIGGER_VEVENT', fd: i, dev_id: e },
        { op: 'IOMMU_TEST_OP_TRIGGER_VEVENT', fd: i, dev_id: e },
        { op: 'veventq_read', fd: eqf, count: this.pick([12, PAGE]) },
        {
          op: 'IOMMU_IOAS_MAP',
          fd: i,
          ioas_id: a,
          user_va: buf,
          length: PAGE,
          flags: ['READABLE', 'WRITEABLE'],
          save: v,
        },
        {
          op: 'IOMMU_HW_QUEUE_ALLOC',
          fd: i,
          viommu_id: vi,
          type: 0xdeadbeef,
          index: 0,
          nesting_parent_iova: v,
          length: PAGE,
          save: this.fresh('hq'),
        },
      );
    } else {
      const pp = this.fresh('h');
      chain.push(
        { op: 'IOMMU_HWPT_ALLOC', fd: i, dev_id: e, pt_id: a, flags: ['PASID'], save: pp },
        { op: 'IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE', fd: i, id: s, pt_id: pp },
        { op: 'IOMMU_TEST_OP_PASID_ATTACH', fd: i, id: s, pasid: 100, pt_id: pp },
        { op: 'IOMMU_TEST_OP_PASID_REPLACE', fd: i, id: s, pasid: 100, pt_id: np },
        { op: 'IOMMU_TEST_OP_PASID_CHECK_HWPT', fd: i, id: s, pasid: 100, hwpt_id: np },
        { op: 'IOMMU_TEST_OP_TRIGGER_IOPF', fd: i, dev_id: e, pasid: 100, grpid: 1, perm: 1, addr: PAGE },
      );
      if (this.chance(0.5)) chain.push({ op: 'IOMMU_TEST_OP_PASID_DETACH', fd: i, id: s, pasid: 100 });
    }
    this.pending.push(...chain.slice(1));
    return chain[0];
  }

  /** One step from the chosen groups (threads programs draw their steps from the others). */
  step(): Step {
    const queued = this.pending.shift();
    if (queued !== undefined) {
      this.learn(queued);
      return queued;
    }
    const groups = this.groups.filter((g) => g !== 'threads');
    const g = groups.length === 0 ? 'mm' : this.pick(groups);
    // A step's own fields never use the names it binds: the names are learnt after it is made.
    const before = JSON.stringify(this.names);
    // mm steps make the memory the device and IOMMU steps act on.
    const step =
      g === 'mm' || this.names.bufs.length === 0 || this.chance(0.35)
        ? this.mmOp()
        : g === 'dmirror'
          ? this.dmirrorOp()
          : g === 'gpu'
            ? this.gpuOp()
            : this.iommufdOp();
    Object.assign(this.names, JSON.parse(before) as Names);
    this.learn(step);
    return step;
  }

  /** Records the names a step binds (its `save` names, a forked child). */
  learn(s: Step): void {
    for (const name of boundBy(s)) {
      const list = s.op === 'fork' && name === s.child ? this.names.procs : listFor(this.names, name);
      if (list !== undefined && !list.includes(name)) list.push(name);
    }
    this.reserve(s);
  }

  /** Keeps fresh names clear of the names `s` binds, without making them available to later steps. */
  reserve(s: Step): void {
    for (const name of boundBy(s)) this.n = Math.max(this.n, Number(/\d+$/.exec(name)?.[0] ?? 0) + 1);
  }

  /** Drops the rest of a recipe: its steps use names whose binding steps were left out. */
  dropPending(): void {
    this.pending.length = 0;
  }

  /**
   * Some of gpu2's tunables, drawn so that the policies act within a few faults: small batches
   * and fault buffers, every replay, prefetch and eviction policy, thrashing that fires at once
   * (the lapse is long against the model's clock), pre-eviction, remote mapping instead of
   * migration, and each way of inserting a VA block's notifier.
   */
  uvmTunables(): Record<string, string | number | boolean> {
    const batch = 1 + this.r.int(8);
    const all: Record<string, () => string | number | boolean> = {
      batch_size: () => batch,
      fault_buffer_entries: () => batch + this.r.int(8),
      replay_policy: () => this.pick(['block', 'batch', 'batch_flush', 'once']),
      max_batches_per_pass: () => 1 + this.r.int(3),
      coalesce: () => this.chance(0.5),
      prefetch: () => this.pick(['ondemand', 'random4k', 'seq64k', 'tree']),
      prefetch_threshold: () => this.pick([0, 1, 51, 100]),
      prefetch_min_faults: () => this.r.int(4),
      seq_granule: () => this.pick([PAGE, 64 * KiB, 2 * MiB]),
      random_pages: () => this.r.int(5),
      thrashing: () => this.chance(0.7),
      thrashing_lapse_us: () => this.pick([0, 500, 1e9]),
      thrashing_threshold: () => 1 + this.r.int(3),
      thrashing_pin_threshold: () => 1 + this.r.int(3),
      thrashing_nap_lapses: () => this.pick([0, 1, 2.5]),
      thrashing_pin_lapses: () => this.pick([0, 1, 300]),
      eviction: () => this.pick(['alloc', 'access', 'random']),
      pre_evict_threshold: () => this.pick([0, 0.25, 0.9]),
      migrate_on_fault: () => this.chance(0.5),
      seed: () => this.r.int(1000),
      hmm_insert: () => this.pick(['unlocked', 'mmap_read', 'mmap_write']),
    };
    const keys = Object.keys(all);
    const out: Record<string, string | number | boolean> = {};
    for (let n = 1 + this.r.int(6); n > 0; n--) {
      const key = this.pick(keys);
      if (key === 'fault_buffer_entries' || key === 'batch_size') {
        out.batch_size = batch;
        out.fault_buffer_entries = all.fault_buffer_entries();
      } else out[key] = all[key]();
    }
    return out;
  }

  /** A fresh program of about `len` steps. */
  program(len: number): Program {
    const swap = this.pick([0, 16 * MiB]);
    const base: Program = {
      system: { ram: '8MiB', swap: swap === 0 ? 0 : '8MiB', rlimit_memlock: '1MiB' },
      processes: ['p', 'q'],
      steps: [],
    };
    if (this.groups.includes('gpu') && this.chance(0.4)) base.uvm = this.uvmTunables();
    if (this.groups.includes('threads') && this.chance(this.groups.length === 1 ? 1 : 0.15)) {
      const setup = Array.from({ length: 2 + this.r.int(5) }, () => this.step());
      const threads: Record<string, Step[]> = {};
      // Thread steps use what setup made; what one thread saves another must not depend on. A
      // thread step binds nothing, so a recipe it would start (or go on with) ends there.
      this.dropPending();
      const before = JSON.stringify(this.names);
      for (const t of ['t0', 't1']) {
        Object.assign(this.names, JSON.parse(before) as Names);
        threads[t] = Array.from({ length: 1 + this.r.int(3) }, () => {
          const { save: _save, ...step } = this.step();
          this.dropPending();
          Object.assign(this.names, JSON.parse(before) as Names);
          return step.op === 'fork' ? { op: 'check' } : step;
        });
      }
      return { ...base, steps: setup, threads };
    }
    base.steps = Array.from({ length: len }, () => this.step());
    return base;
  }
}

/**
 * A new step stream for a step of `p` at index `at` of its steps (for mutation; by default after
 * the last): it uses the names the steps before it bind, and binds none that `p` binds anywhere.
 */
export function generatorAfter(
  r: Prng,
  groups: readonly OpGroup[],
  p: Program,
  at = p.steps.length,
): Generator {
  const g = new Generator(r, groups);
  for (const s of [...p.steps, ...Object.values(p.threads ?? {}).flat()]) g.reserve(s);
  for (const s of p.steps.slice(0, at)) g.learn(s);
  return g;
}

/** The names a step binds: its `save` names, and a forked child. */
function boundBy(s: Step): string[] {
  const saves =
    typeof s.save === 'string' ? [s.save] : Object.values((s.save ?? {}) as Record<string, string>);
  if (s.op === 'fork' && typeof s.child === 'string') saves.push(s.child);
  return saves;
}

/** The letters a name starts with, which say what it names (listFor()). */
function namePrefix(name: string): string {
  return /^[a-z]*/.exec(name)![0];
}

function listFor(n: Names, name: string): string[] | undefined {
  const prefix = namePrefix(name);
  const by: Record<string, string[]> = {
    b: n.bufs,
    m: n.memfds,
    d: n.dmirrors,
    lm: n.legacies,
    u: n.gpuFds,
    xv: n.xeVms,
    i: n.iommufds,
    a: n.ioas,
    h: n.hwpts,
    e: n.idevs,
    s: n.stdevs,
    x: n.accesses,
    g: n.accessPages,
    v: n.iovas,
    np: n.parents,
    n: n.nested,
    vi: n.viommus,
    vd: n.vdevices,
    eq: n.veventqs,
    eqf: n.veventqFds,
    hq: n.hwQueues,
    f: n.faults,
    ff: n.faultFds,
    k: n.cookies,
  };
  return by[prefix];
}
