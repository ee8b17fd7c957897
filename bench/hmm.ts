/**
 * HMM figures: hmm_range_fault() over 1M resident pages (4 GiB) as a snapshot (default_flags 0)
 * and faulting every page in (REQ_FAULT | REQ_WRITE over a range zapped beforehand), in ns per
 * page; and migration of 1 GiB to device-private memory and back through the dmirror device
 * (HMM_DMIRROR_MIGRATE_TO_DEV / _TO_SYS, reading back into a second 1 GiB mapping as
 * hmm-tests.c's benchmark does), in pages per second of the process's CPU time.
 */
import {
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  type HmmRange,
  hmmRangeFault,
} from '../src/kernel/mm/hmm.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../src/kernel/mm/mman.ts';
import { mmuIntervalReadBegin } from '../src/kernel/mm/mmu_notifier.ts';
import { System, type Process } from '../src/kernel/system.ts';
import { PAGE_SIZE } from '../src/lib/units.ts';
import type { KGen } from '../src/sched/types.ts';
import { type BenchContext, type Figure, type Suite, check, median, medianNs, round } from './figure.ts';
import { type BenchMirror, insertMirror } from './mirror.ts';

const RW = PROT_READ | PROT_WRITE;

/** One read_begin + mmap_read_lock + hmm_range_fault + unlock, as a driver does it (no retry: nothing races). */
function* rangeFault(range: HmmRange): KGen<number> {
  const mm = range.notifier.mm;
  range.notifierSeq = yield* mmuIntervalReadBegin(range.notifier);
  yield* mm.mmapLock.downRead();
  const ret = yield* hmmRangeFault(range);
  yield* mm.mmapLock.upRead();
  return ret;
}

function newRange(mirror: BenchMirror, addr: number, npages: number, defaultFlags: number): HmmRange {
  return {
    notifier: mirror,
    notifierSeq: 0,
    start: addr,
    end: addr + npages * PAGE_SIZE,
    hmmPfns: new Uint32Array(2 * npages),
    defaultFlags,
    pfnFlagsMask: 0,
    devPrivateOwner: null,
  };
}

function allValid(range: HmmRange): boolean {
  const w = range.hmmPfns;
  for (let i = 1; i < w.length; i += 2) if ((w[i] & HMM_PFN_VALID) === 0) return false;
  return true;
}

function rangeFaultFigures(ctx: BenchContext): Figure[] {
  const npages = ctx.smoke ? 16384 : 1024 * 1024;
  const runs = ctx.smoke ? 3 : 7;
  const len = npages * PAGE_SIZE;
  const sys = new System({ ram: len + 1024 * 1024 * 1024, swap: 0, thp: 'never' });
  const p = sys.createProcess('bench');
  const mirror = insertMirror(sys, p.mm!, 'dmirror0');
  ctx.progress('hmm.range_fault: populating');
  const addr = check(sys.mmap(p, 0, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE), 'mmap');

  ctx.progress('hmm.range_fault_snapshot');
  const snap = newRange(mirror, addr, npages, 0);
  const snapNs = medianNs(
    runs,
    () => snap.hmmPfns.fill(0),
    () => check(sys.run('hmm_range_fault', rangeFault(snap)), 'hmm_range_fault'),
    undefined,
    ctx.smoke ? 2 : 5,
  );
  if (!allValid(snap)) throw new Error('snapshot missed resident pages');

  ctx.progress('hmm.range_fault_faulting');
  const fault = newRange(mirror, addr, npages, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE);
  const faultNs = medianNs(
    runs,
    () => {
      check(sys.madvise(p, addr, len, MADV.DONTNEED), 'madvise');
      fault.hmmPfns.fill(0);
    },
    () => check(sys.run('hmm_range_fault', rangeFault(fault)), 'hmm_range_fault'),
    undefined,
    1,
  );
  if (!allValid(fault)) throw new Error('faulting range_fault left pages invalid');
  const pages = ctx.smoke ? '16k' : '1M';
  return [
    {
      name: `hmm.range_fault_snapshot.${pages}_pages`,
      value: round(snapNs / npages),
      unit: 'ns/page',
      goal: '<= 25 ns/page',
      pass: snapNs / npages <= 25,
    },
    {
      name: `hmm.range_fault_faulting.${pages}_pages`,
      value: round(faultNs / npages),
      unit: 'ns/page',
      goal: 'reported (no goal in the issue)',
      pass: true,
    },
  ];
}

/** The part of src/kernel/drivers/test_hmm.ts the migration figure needs. */
interface TestHmmApi {
  createDmirrorDevice(sys: System, name: string, memory: 'private' | 'coherent'): unknown;
  dmirrorOpen(sys: System, name: string, proc: Process): KGen<number>;
}

/** Loads the dmirror driver, or says why it cannot be loaded. */
async function loadTestHmm(): Promise<TestHmmApi | string> {
  const url = new URL('../src/kernel/drivers/test_hmm.ts', import.meta.url).href;
  try {
    const mod = (await import(url)) as Partial<TestHmmApi>;
    if (typeof mod.createDmirrorDevice !== 'function' || typeof mod.dmirrorOpen !== 'function') {
      return 'src/kernel/drivers/test_hmm.ts lacks createDmirrorDevice / dmirrorOpen';
    }
    return mod as TestHmmApi;
  } catch (e) {
    return `src/kernel/drivers/test_hmm.ts cannot be loaded: ${(e as Error).message.split('\n')[0]}`;
  }
}

async function migrationFigures(ctx: BenchContext): Promise<Figure[]> {
  const names = ['hmm.migrate_to_device', 'hmm.migrate_to_system'];
  const api = await loadTestHmm();
  if (typeof api === 'string') {
    for (const n of names) ctx.missing(n, api);
    return [];
  }
  const npages = ctx.smoke ? 4096 : 262144;
  const runs = ctx.smoke ? 2 : 3;
  const len = npages * PAGE_SIZE;
  // Two mappings of `len` (the migrated one and `ptr`), the device's backing pages, slack.
  const sys = new System({ ram: 2 * len + 512 * 1024 * 1024, swap: 0, thp: 'never' });
  const p = sys.createProcess('bench');
  api.createDmirrorDevice(sys, 'hmm_dmirror0', 'private');
  const fd = check(sys.run('open', api.dmirrorOpen(sys, 'hmm_dmirror0', p)), 'open /dev/hmm_dmirror0');
  const populated = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
  const addr = check(sys.mmap(p, 0, len, RW, populated), 'mmap');
  // MIGRATE_TO_DEV copies what the device now holds back to `ptr`, as dmirror_migrate_to_device()
  // does; like hmm-tests.c's benchmark (buffer->mirror), `ptr` is a second mapping of the
  // process as large as the migrated one, and one serves every run.
  const ptr = check(sys.mmap(p, 0, len, RW, populated), 'mmap ptr');
  const migrate = (name: string): void => {
    const cmd: Record<string, unknown> = { addr, npages, ptr };
    check(sys.ioctl(fd, name, cmd), name);
    if (cmd.cpages !== npages) throw new Error(`${name} migrated ${String(cmd.cpages)} of ${npages} pages`);
  };
  const toDev: number[] = [];
  const toSys: number[] = [];
  ctx.progress('hmm.migrate_to_device / hmm.migrate_to_system');
  // The process's CPU time, not wall time (as sim.faults_per_second): the goal is about one
  // core, and on a shared machine the wall time of a migration measures the other processes too.
  const cpuNs = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) * 1000;
  };
  const timed = (name: string): number => {
    const t0 = cpuNs();
    migrate(name);
    return cpuNs() - t0;
  };
  // Round 0 is a warm-up (and adds the device memory chunks); the rest are timed.
  for (let r = 0; r <= runs; r++) {
    const dev = timed('HMM_DMIRROR_MIGRATE_TO_DEV');
    const back = timed('HMM_DMIRROR_MIGRATE_TO_SYS');
    if (r === 0) continue;
    toDev.push(dev);
    toSys.push(back);
  }
  const mib = (npages * PAGE_SIZE) / (1024 * 1024);
  const fig = (name: string, times: number[]): Figure => {
    const perSecond = npages / (median(times) / 1e9);
    return {
      name: `${name}.${mib}MiB`,
      value: round(perSecond),
      unit: 'pages/s',
      goal: '>= 1M pages/s',
      pass: perSecond >= 1_000_000,
    };
  };
  return [fig(names[0], toDev), fig(names[1], toSys)];
}

export const hmmSuite: Suite = {
  name: 'hmm',
  async run(ctx: BenchContext): Promise<Figure[]> {
    return [...rangeFaultFigures(ctx), ...(await migrationFigures(ctx))];
  },
};
