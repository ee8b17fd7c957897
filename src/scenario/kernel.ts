/**
 * The kernel entry points the scenario layer drives, gathered in one place. The modules are loaded
 * once (loadKernel) before a scenario runs; a module the model does not have yet leaves its part
 * null, and the ops that need it report "not modelled" instead of crashing the runner.
 */
import type { Process, System } from '../kernel/system.ts';
import type { KGen, Violation } from '../sched/types.ts';

export interface PagemapEntry {
  present: boolean;
  swap: boolean;
  pfn: number;
  kind: string;
  softDirty: boolean;
  exclusive: boolean;
  thp: boolean;
}

/** src/kernel/syscalls.ts: the generator forms of the modelled syscalls. */
export interface SyscallsApi {
  sysMmap(
    sys: System,
    p: Process,
    addr: number,
    length: number,
    prot: number,
    flags: number,
    fd: number,
    offset: number,
  ): KGen<number>;
  sysMunmap(sys: System, p: Process, addr: number, length: number): KGen<number>;
  sysMprotect(sys: System, p: Process, addr: number, length: number, prot: number): KGen<number>;
  sysMadvise(sys: System, p: Process, addr: number, length: number, advice: number): KGen<number>;
  sysMremap(
    sys: System,
    p: Process,
    oldAddr: number,
    oldLen: number,
    newLen: number,
    flags: number,
    newAddr: number,
  ): KGen<number>;
  sysFork(sys: System, p: Process, childName: string): KGen<{ ret: number; child: Process | null }>;
  sysExit(sys: System, p: Process): KGen<number>;
  cpuRead(sys: System, p: Process, addr: number, len: number): KGen<{ ret: number; data: Uint8Array }>;
  cpuWrite(sys: System, p: Process, addr: number, data: Uint8Array): KGen<number>;
  sysMemfdCreate(sys: System, name: string, flags: number): KGen<number>;
  sysFtruncate(sys: System, fd: number, len: number): KGen<number>;
  sysPwrite(sys: System, fd: number, data: Uint8Array, offset: number): KGen<number>;
  sysPread(sys: System, fd: number, len: number, offset: number): KGen<{ ret: number; data: Uint8Array }>;
  sysClose(sys: System, fd: number): KGen<number>;
  sysIoctl(sys: System, fd: number, name: string, arg: Record<string, unknown>): KGen<number>;
  reclaim(sys: System, nrPages: number): KGen<number>;
  oomReap(sys: System, p: Process): KGen<number>;
  clearSoftDirty(sys: System, p: Process): KGen<number>;
  pagemapRead(sys: System, p: Process, addr: number, npages: number): KGen<PagemapEntry[]>;
}

/** src/kernel/drivers/test_hmm.ts */
export interface DmirrorApi {
  createDmirrorDevice(sys: System, name: string, memory: 'private' | 'coherent', driver?: unknown): unknown;
  dmirrorOpen(sys: System, deviceName: string, proc: Process): KGen<number>;
}

/** src/kernel/iommufd/main.ts */
export interface IommufdApi {
  iommufdOpen(sys: System, proc: Process): number | KGen<number>;
}

/** src/oracles/index.ts */
export interface OraclesApi {
  checkAll(sys: System, opts: { teardown: boolean }): Violation[];
}

export interface KernelApi {
  syscalls: SyscallsApi | null;
  dmirror: DmirrorApi | null;
  iommufd: IommufdApi | null;
  oracles: OraclesApi | null;
  /** Why each missing part is missing (module path: error). */
  readonly missing: Map<string, string>;
}

const MODULES = {
  syscalls: ['../kernel/syscalls.ts', 'sysMmap'],
  dmirror: ['../kernel/drivers/test_hmm.ts', 'createDmirrorDevice'],
  iommufd: ['../kernel/iommufd/index.ts', 'iommufdOpen'],
  oracles: ['../oracles/index.ts', 'checkAll'],
} as const;

let loaded: KernelApi | null = null;

async function tryImport(rel: string, probe: string, missing: Map<string, string>): Promise<unknown> {
  const url = new URL(rel, import.meta.url).href;
  try {
    const mod = (await import(url)) as Record<string, unknown>;
    if (typeof mod[probe] !== 'function') {
      missing.set(rel, `does not export ${probe}`);
      return null;
    }
    return mod;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const first = (err.message ?? String(e)).split('\n')[0];
    const self = rel.split('/').pop()!;
    const msg =
      err.code === 'ERR_MODULE_NOT_FOUND' && first.includes(self) && !first.includes('imported from')
        ? 'not written yet'
        : first;
    missing.set(rel, msg);
    return null;
  }
}

/** Loads whatever parts of the kernel exist (once per process). */
export async function loadKernel(): Promise<KernelApi> {
  if (loaded !== null) return loaded;
  const missing = new Map<string, string>();
  const [syscalls, dmirror, iommufd, oracles] = await Promise.all(
    Object.values(MODULES).map(([rel, probe]) => tryImport(rel, probe, missing)),
  );
  loaded = {
    syscalls: syscalls as SyscallsApi | null,
    dmirror: dmirror as DmirrorApi | null,
    iommufd: iommufd as IommufdApi | null,
    oracles: oracles as OraclesApi | null,
    missing,
  };
  return loaded;
}

/** The kernel loaded by loadKernel(); throws if it was not loaded first. */
export function kernel(): KernelApi {
  if (loaded === null) throw new Error('kernel modules not loaded: call loadKernel() first');
  return loaded;
}
