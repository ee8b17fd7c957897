/**
 * Random scenario programs for `hetmem fuzz`: every scenario op, with the values kernel bugs live
 * at (0, 1, page - 1, unaligned, overlapping, u64 extremes, after exit, closed fds, stale or made-up
 * object ids). A program is plain scenario steps, so a failure is written out as a file that
 * `hetmem run` reproduces. Names bound by `save` are tracked so later steps mostly use real
 * objects, and sometimes ones already gone.
 */
import { Prng } from '../lib/prng.ts';

export type OpGroup = 'mm' | 'dmirror' | 'iommufd' | 'threads';
export const OP_GROUPS: readonly OpGroup[] = ['mm', 'dmirror', 'iommufd', 'threads'];

export type Step = Record<string, unknown>;

/** A program: the world header and its steps (or setup + threads for the explorer). */
export interface Program {
  system: Record<string, unknown>;
  processes: string[];
  steps: Step[];
  threads?: Record<string, Step[]>;
}

const KiB = 1024;
const PAGE = 4 * KiB;
const MiB = 1024 * KiB;

/** The world every program starts from: small, so building it costs little. */
export const DEVICES = {
  gpu0: { type: 'dmirror', memory: 'private' },
  gpu1: { type: 'dmirror', memory: 'coherent' },
};

interface Names {
  bufs: string[];
  procs: string[];
  memfds: string[];
  dmirrors: string[];
  iommufds: string[];
  ioas: string[];
  hwpts: string[];
  idevs: string[];
  stdevs: string[];
  accesses: string[];
  accessPages: string[];
  iovas: string[];
}

export class Generator {
  private n = 0;
  private readonly names: Names = {
    bufs: [],
    procs: ['p', 'q'],
    memfds: [],
    dmirrors: [],
    iommufds: [],
    ioas: [],
    hwpts: [],
    idevs: [],
    stdevs: [],
    accesses: [],
    accessPages: [],
    iovas: [],
  };

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

  private npages(): number {
    if (this.chance(0.8)) return this.pick([1, 2, 4, 16, 512]);
    return this.pick([0, 3, 2 ** 20, 2 ** 40, 2 ** 52 - 1]);
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
      const flags = [this.chance(0.75) ? 'private' : 'shared'];
      const fileBacked = this.names.memfds.length > 0 && this.chance(0.2);
      if (!fileBacked) flags.push('anonymous');
      if (this.chance(0.15)) flags.push('populate');
      if (this.chance(0.1)) flags.push('noreserve');
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
      this.names.bufs.push(save);
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
        advice: this.pick(['dontneed', 'free', 'pageout', 'cold', 'hugepage', 'nohugepage', 'collapse']),
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
      this.names.bufs.push(save);
      return step;
    }
    if (k < 53) return { op: 'cpu_write', proc, addr: this.addr(), length: this.length(), data: this.data() };
    if (k < 62) return { op: 'cpu_read', proc, addr: this.addr(), length: this.length() };
    if (k < 65) {
      const child = this.fresh('c');
      this.names.procs.push(child);
      return { op: 'fork', proc, child };
    }
    if (k < 67) return { op: 'exit', proc };
    if (k < 71) {
      const save = this.fresh('m');
      this.names.memfds.push(save);
      return { op: 'memfd_create', name: save, save };
    }
    if (k < 74) return { op: 'ftruncate', fd: this.fd(this.names.memfds), length: this.length() };
    if (k < 77) {
      return {
        op: 'pwrite',
        fd: this.fd(this.names.memfds),
        data: this.data(),
        length: PAGE,
        offset: this.pick([0, 1, PAGE, MiB]),
      };
    }
    if (k < 80)
      return {
        op: 'pread',
        fd: this.fd(this.names.memfds),
        length: this.length(),
        offset: this.pick([0, PAGE, 2 ** 53 - 1]),
      };
    if (k < 82) return { op: 'close', fd: this.fd(this.names.memfds) };
    if (k < 84) return { op: 'oom_reap', proc };
    if (k < 87) return { op: 'reclaim', pages: this.pick([1, 16, 1024]) };
    if (k < 90) return { op: 'clear_soft_dirty', proc };
    if (k < 95) return { op: 'pagemap', proc, addr: this.addr(), npages: this.pick([1, 4, 16, 512]) };
    return { op: 'check' };
  }

  private dmirrorOp(): Step {
    const k = this.r.int(100);
    if (k < 12 || this.names.dmirrors.length === 0) {
      const save = this.fresh('d');
      this.names.dmirrors.push(save);
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
    const npages = op === 'HMM_DMIRROR_SNAPSHOT' ? this.snapshotPages() : this.npages();
    const step: Step = { op, fd, addr, npages };
    if (op === 'HMM_DMIRROR_WRITE' && this.chance(0.7)) step.data = this.data();
    return step;
  }

  private iommufdOp(): Step {
    const N = this.names;
    const fd = (): number | string => this.fd(N.iommufds);
    const k = this.r.int(100);
    if (k < 6 || N.iommufds.length === 0) {
      const save = this.fresh('i');
      N.iommufds.push(save);
      return { op: 'iommufd_open', proc: this.proc(), save };
    }
    if (k < 14 || N.ioas.length === 0) {
      const save = this.fresh('a');
      N.ioas.push(save);
      return { op: 'IOMMU_IOAS_ALLOC', fd: fd(), save };
    }
    const flags = (): string[] =>
      this.pick([['READABLE', 'WRITEABLE'], ['READABLE'], ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], []]);
    if (k < 30) {
      const save = this.fresh('v');
      N.iovas.push(save);
      const f = flags();
      const step: Step = {
        op: 'IOMMU_IOAS_MAP',
        fd: fd(),
        ioas_id: this.id(N.ioas),
        user_va: this.addr(),
        length: this.length(),
        flags: f,
        save,
      };
      if (f.includes('FIXED_IOVA')) step.iova = this.iova();
      return step;
    }
    if (k < 33 && N.memfds.length > 0) {
      const save = this.fresh('v');
      N.iovas.push(save);
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
      N.iovas.push(save);
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
      N.stdevs.push(stdev);
      N.hwpts.push(hwpt);
      N.idevs.push(idev);
      return {
        op: 'IOMMU_TEST_OP_MOCK_DOMAIN',
        fd: fd(),
        id: this.id([...N.ioas, ...N.hwpts]),
        save: { out_stdev_id: stdev, out_hwpt_id: hwpt, out_idev_id: idev },
      };
    }
    if (k < 65) {
      const save = this.fresh('h');
      N.hwpts.push(save);
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
      N.accesses.push(save);
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
      N.accessPages.push(save);
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

  /** One step from the chosen groups (threads programs draw their steps from the others). */
  step(): Step {
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
          : this.iommufdOp();
    Object.assign(this.names, JSON.parse(before) as Names);
    this.learn(step);
    return step;
  }

  /** Records the names a step binds (its `save` names, a forked child). */
  learn(s: Step): void {
    const saves =
      typeof s.save === 'string' ? [s.save] : Object.values((s.save ?? {}) as Record<string, string>);
    for (const name of saves) {
      const list = listFor(this.names, name);
      if (list !== undefined && !list.includes(name)) list.push(name);
      this.n = Math.max(this.n, Number(/\d+$/.exec(name)?.[0] ?? 0) + 1);
    }
    if (s.op === 'fork' && typeof s.child === 'string' && !this.names.procs.includes(s.child)) {
      this.names.procs.push(s.child);
      this.n = Math.max(this.n, Number(/\d+$/.exec(s.child)?.[0] ?? 0) + 1);
    }
  }

  /** A fresh program of about `len` steps. */
  program(len: number): Program {
    const swap = this.pick([0, 16 * MiB]);
    const base: Program = {
      system: { ram: '8MiB', swap: swap === 0 ? 0 : '8MiB', rlimit_memlock: '1MiB' },
      processes: ['p', 'q'],
      steps: [],
    };
    if (this.groups.includes('threads') && this.chance(this.groups.length === 1 ? 1 : 0.15)) {
      const setup = Array.from({ length: 2 + this.r.int(5) }, () => this.step());
      const threads: Record<string, Step[]> = {};
      // Thread steps use what setup made; what one thread saves another must not depend on.
      const before = JSON.stringify(this.names);
      for (const t of ['t0', 't1']) {
        Object.assign(this.names, JSON.parse(before) as Names);
        threads[t] = Array.from({ length: 1 + this.r.int(3) }, () => {
          const { save: _save, ...step } = this.step();
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

/** A new step stream that continues `p` (for mutation): it knows the names p binds. */
export function generatorAfter(r: Prng, groups: readonly OpGroup[], p: Program): Generator {
  const g = new Generator(r, groups);
  for (const s of [...p.steps, ...Object.values(p.threads ?? {}).flat()]) g.learn(s);
  return g;
}

function listFor(n: Names, name: string): string[] | undefined {
  const prefix = /^[a-z]+/.exec(name)?.[0];
  const by: Record<string, string[]> = {
    b: n.bufs,
    m: n.memfds,
    d: n.dmirrors,
    i: n.iommufds,
    a: n.ioas,
    h: n.hwpts,
    e: n.idevs,
    s: n.stdevs,
    x: n.accesses,
    g: n.accessPages,
    v: n.iovas,
  };
  return prefix === undefined ? undefined : by[prefix];
}
