/**
 * tools/testing/selftests/mm/hmm-tests.c ported to the model: every test under the kernel's
 * FIXTURE.TEST name, once per fixture variant (hmm_device_private / hmm_device_coherent, and
 * hmm2_device_private / hmm2_device_coherent), asserting what the kernel test asserts.
 *
 * The fixtures open /dev/hmm_dmirror{0,1} (private) or {2,3} (coherent), all four of which every
 * System here has. Tests the kernel skips when a feature is missing (hugetlb pages, gup_test,
 * coherent memory) run here, since the model has the feature. Every case ends by closing its
 * files, exiting its processes and running every oracle, teardown included.
 */
import assert from 'node:assert/strict';
import { Prng } from '../lib/prng.ts';
import { PAGE_SIZE, alignUp } from '../lib/units.ts';
import { Errno, errnoName } from '../kernel/errno.ts';
import { dmirrorOpen, createDmirrorDevice } from '../kernel/drivers/test_hmm.ts';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_FLAG_FAIL_ALLOC,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_ERROR,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_PUD,
  HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
} from '../kernel/drivers/test_hmm_uapi.ts';
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  getUserPagesRemote,
  pinUserPagesFast,
  putUserPages,
  unpinUserPages,
} from '../kernel/mm/gup.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import * as sc from '../kernel/syscalls.ts';
import { System, type Process, type SystemConfig } from '../kernel/system.ts';
import { assertOracles } from '../oracles/index.ts';
import type { Chooser } from '../sched/scheduler.ts';
import { runToCompletion } from '../sched/scheduler.ts';
import { schedPoint, sleepNs } from '../sched/locks.ts';
import type { KGen } from '../sched/types.ts';
import type { ConformanceCase } from './types.ts';

const HMM_BUFFER_SIZE = 1024 << 12;
const NTIMES = 10;
const TWOMEG = 1 << 21;
/** read_pmd_pagesize() on x86-64. */
const PMD_SIZE = TWOMEG;
/** Extra anon_teardown passes with no sleep, each a different interleaving of the READ and the munmap. */
export const ANON_TEARDOWN_SEEDS = 50;
/** The racing passes delay the munmap by up to this many scheduling steps (a READ takes about as many). */
const ANON_TEARDOWN_DELAY_STEPS = 400;

/** struct hmm_buffer: the CPU mapping and the "mirror" buffer the device reads into or writes from. */
interface HmmBuffer {
  ptr: number;
  mirror: Uint8Array;
  size: number;
  cpages: number;
  faults: number;
}

function ints(u8: Uint8Array): Int32Array {
  return new Int32Array(u8.buffer, u8.byteOffset, u8.byteLength >>> 2);
}

function intBytes(count: number, f: (i: number) => number): Uint8Array {
  const u8 = new Uint8Array(count * 4);
  const a = ints(u8);
  for (let i = 0; i < count; i++) a[i] = f(i);
  return u8;
}

/** ASSERT_EQ(ptr[i], f(i)) for every int, reporting the first mismatch. */
function expectInts(
  u8: Uint8Array,
  f: (i: number) => number,
  what: string,
  from = 0,
  to = u8.byteLength >>> 2,
): void {
  const a = ints(u8);
  for (let i = from; i < to; i++) {
    if (a[i] !== (f(i) | 0)) assert.fail(`${what}: int ${i} is ${a[i]}, expected ${f(i) | 0}`);
  }
}

function expectRet(ret: number, expected: number, what: string): void {
  if (ret !== expected) {
    const show = (r: number): string => (r < 0 ? `-${errnoName(-r)}` : String(r));
    assert.fail(`${what}: returned ${show(ret)}, expected ${show(expected)}`);
  }
}

/** The fixture: a System with the four dmirror devices, the test process and its open fds. */
class HmmEnv {
  readonly sys: System;
  readonly p: Process;
  readonly fds: number[] = [];
  readonly coherent: boolean;
  private readonly children: Process[] = [];
  /** The process that opened each descriptor: its ioctls run as that process, as the test's do. */
  private readonly openers = new Map<number, Process>();

  constructor(devices: readonly number[], config: SystemConfig = {}) {
    this.sys = new System(config);
    createDmirrorDevice(this.sys, 'hmm_dmirror0', 'private');
    createDmirrorDevice(this.sys, 'hmm_dmirror1', 'private');
    createDmirrorDevice(this.sys, 'hmm_dmirror2', 'coherent');
    createDmirrorDevice(this.sys, 'hmm_dmirror3', 'coherent');
    this.p = this.sys.createProcess('hmm-tests', 0);
    this.coherent = devices[0] >= 2;
    for (const d of devices) {
      const fd = this.open(d);
      assert.ok(fd >= 0, `open /dev/hmm_dmirror${d}: ${fd}`);
      this.fds.push(fd);
    }
  }

  get fd(): number {
    return this.fds[0];
  }

  open(unit: number, proc: Process = this.p): number {
    const fd = this.sys.run('open', dmirrorOpen(this.sys, `hmm_dmirror${unit}`, proc));
    if (fd >= 0) this.openers.set(fd, proc);
    return fd;
  }

  /** The process that opened `fd`. */
  opener(fd: number): Process {
    return this.openers.get(fd) ?? this.p;
  }

  /** FIXTURE_TEARDOWN, then everything else goes and every oracle runs. */
  teardown(): void {
    for (const fd of this.fds) expectRet(this.sys.close(fd), 0, 'close');
    for (const c of this.children) if (!c.exited) this.sys.exit(c);
    this.sys.exit(this.p);
    for (const fd of [...this.sys.files.keys()]) this.sys.close(fd);
    assertOracles(this.sys, { teardown: true });
  }

  fork(): Process {
    const r = this.sys.fork(this.p, `child${this.children.length}`);
    assert.equal(r.ret >= 0 && r.child !== null, true, `fork: ${r.ret}`);
    this.children.push(r.child!);
    return r.child!;
  }

  mmap(size: number, prot: number, flags: number, fd = -1, proc: Process = this.p): number {
    const a = this.sys.mmap(proc, 0, size, prot, flags, fd, 0);
    assert.ok(a >= 0, `mmap failed: ${a < 0 ? errnoName(-a) : a}`);
    return a;
  }

  buffer(ptr: number, size: number, mirrorSize = size): HmmBuffer {
    return { ptr, mirror: new Uint8Array(mirrorSize), size, cpages: 0, faults: 0 };
  }

  free(b: HmmBuffer, proc: Process = this.p): void {
    if (b.ptr !== 0 && !proc.exited) this.sys.munmap(proc, b.ptr, b.size);
    b.ptr = 0;
  }

  writeInts(addr: number, count: number, f: (i: number) => number, proc: Process = this.p): void {
    const r = this.sys.write(proc, addr, intBytes(count, f));
    expectRet(r, count * 4, 'CPU write');
  }

  readBytes(addr: number, len: number, proc: Process = this.p): Uint8Array {
    const r = this.sys.read(proc, addr, len);
    expectRet(r.ret, len, 'CPU read');
    return r.data;
  }

  expectMem(
    addr: number,
    count: number,
    f: (i: number) => number,
    what: string,
    proc: Process = this.p,
  ): void {
    expectInts(this.readBytes(addr, count * 4, proc), f, what);
  }

  /** ptr[i]++ over every int, asserting the old value. */
  incrementInts(addr: number, count: number, f: (i: number) => number, proc: Process = this.p): void {
    const u8 = this.readBytes(addr, count * 4, proc);
    expectInts(u8, f, 'ptr[i]++');
    const a = ints(u8);
    for (let i = 0; i < count; i++) a[i]++;
    expectRet(this.sys.write(proc, addr, u8), count * 4, 'CPU write');
  }

  /** hmm_dmirror_cmd(): the ioctl with cmd.addr = ptr and the mirror buffer; 0 or -errno. */
  cmd(fd: number, name: string, b: HmmBuffer, npages: number): number {
    const arg: Record<string, unknown> = { addr: b.ptr, npages, buf: b.mirror };
    const ret = this.sys.ioctl(fd, name, arg, this.opener(fd));
    if (ret !== 0) return ret;
    b.cpages = arg.cpages as number;
    b.faults = arg.faults as number;
    return 0;
  }

  madvise(addr: number, len: number, advice: number): void {
    expectRet(this.sys.madvise(this.p, addr, len, advice), 0, 'madvise');
  }

  mprotect(addr: number, len: number, prot: number): void {
    expectRet(this.sys.mprotect(this.p, addr, len, prot), 0, 'mprotect');
  }
}

type Body = (env: HmmEnv) => void;

function hmmCase(
  name: string,
  variant: string,
  devices: readonly number[],
  body: Body,
  config: SystemConfig,
): ConformanceCase {
  return {
    suite: 'hmm',
    name,
    variant,
    run: () => {
      const env = new HmmEnv(devices, config);
      body(env);
      env.teardown();
    },
  };
}

const HMM_VARIANTS: readonly [string, readonly number[]][] = [
  ['hmm_device_private', [0]],
  ['hmm_device_coherent', [2]],
];
const HMM2_VARIANTS: readonly [string, readonly number[]][] = [
  ['hmm2_device_private', [0, 1]],
  ['hmm2_device_coherent', [2, 3]],
];

function defaultNpages(): { npages: number; size: number } {
  const npages = alignUp(HMM_BUFFER_SIZE, PAGE_SIZE) / PAGE_SIZE;
  return { npages, size: npages * PAGE_SIZE };
}

// --- the tests -------------------------------------------------------------------------------

function anonRead(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
  // Pages 0 and 1 stay zero: page 0 pte_none, page 1 the zero page.
  const skip = (2 * PAGE_SIZE) / 4;
  env.writeInts(b.ptr + skip * 4, size / 4 - skip, (i) => i + skip);
  env.mprotect(b.ptr, size, PROT_READ);
  env.expectMem(b.ptr + PAGE_SIZE, 1, () => 0, 'zero page');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_READ, b, npages), 0, 'READ');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  expectInts(b.mirror, (i) => (i < skip ? 0 : i), 'mirror');
  env.free(b);
}

function anonReadProt(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
  env.writeInts(b.ptr, size / 4, (i) => i);
  ints(b.mirror).forEach((_, i, a) => (a[i] = -i));
  env.mprotect(b.ptr, size, PROT_NONE);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_READ, b, npages), -Errno.EFAULT, 'READ');
  env.mprotect(b.ptr, size, PROT_READ);
  env.expectMem(b.ptr, size / 4, (i) => i, 'buffer');
  expectInts(b.mirror, (i) => -i, 'mirror');
  env.free(b);
}

function anonWrite(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
  b.mirror.set(intBytes(size / 4, (i) => i));
  expectRet(env.cmd(env.fd, HMM_DMIRROR_WRITE, b, npages), 0, 'WRITE');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  env.expectMem(b.ptr, size / 4, (i) => i, 'buffer');
  env.free(b);
}

function anonWriteProt(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const b = env.buffer(env.mmap(size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS), size);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_READ, b, 1), 0, 'READ of the zero page');
  assert.equal(b.cpages, 1);
  assert.equal(b.faults, 1);
  b.mirror.set(intBytes(size / 4, (i) => i));
  expectRet(env.cmd(env.fd, HMM_DMIRROR_WRITE, b, npages), -Errno.EPERM, 'WRITE to PROT_READ');
  env.expectMem(b.ptr, size / 4, () => 0, 'buffer');
  env.mprotect(b.ptr, size, PROT_READ | PROT_WRITE);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_WRITE, b, npages), 0, 'WRITE');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  env.expectMem(b.ptr, size / 4, (i) => i, 'buffer');
  env.free(b);
}

function anonWriteChild(env: HmmEnv): void {
  for (let migrate = 0; migrate < 2; migrate++) {
    for (let useThp = 0; useThp < 2; useThp++) {
      const npages = alignUp(useThp !== 0 ? PMD_SIZE : HMM_BUFFER_SIZE, PAGE_SIZE) / PAGE_SIZE;
      const size = npages * PAGE_SIZE;
      const oldPtr = env.mmap(size * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const b = env.buffer(oldPtr, size * 2, size);
      if (useThp !== 0) {
        const map = alignUp(oldPtr, size);
        env.madvise(map, size, MADV.HUGEPAGE);
        b.ptr = map;
      }
      env.writeInts(b.ptr, size / 4, (i) => i);
      b.mirror.set(intBytes(size / 4, (i) => -i));
      if (migrate !== 0) {
        expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
        assert.equal(b.cpages, npages);
      }
      const child = env.fork();
      // The child runs to its _exit(0) before the parent's waitpid() returns.
      env.expectMem(b.ptr, size / 4, (i) => i, 'child sees the parent values', child);
      if (migrate === 0) expectInts(b.mirror, (i) => -i, 'child mirror');
      const childFd = env.open(0, child);
      assert.ok(childFd >= 0);
      expectRet(env.cmd(childFd, HMM_DMIRROR_WRITE, b, npages), 0, 'child WRITE');
      assert.equal(b.cpages, npages);
      assert.equal(b.faults, 1);
      if (migrate === 0) env.expectMem(b.ptr, size / 4, (i) => -i, 'child buffer', child);
      expectRet(env.sys.close(childFd), 0, 'close');
      env.sys.exit(child);
      env.expectMem(b.ptr, size / 4, (i) => i, 'parent buffer unchanged');
      b.ptr = oldPtr;
      env.free(b);
    }
  }
}

function anonWriteChildShared(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS), size);
  env.writeInts(b.ptr, size / 4, (i) => i);
  b.mirror.set(intBytes(size / 4, (i) => -i));
  const child = env.fork();
  env.expectMem(b.ptr, size / 4, (i) => i, 'child sees the parent values', child);
  expectInts(b.mirror, (i) => -i, 'child mirror');
  const childFd = env.open(0, child);
  assert.ok(childFd >= 0);
  expectRet(env.cmd(childFd, HMM_DMIRROR_WRITE, b, npages), 0, 'child WRITE');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  env.expectMem(b.ptr, size / 4, (i) => -i, 'child buffer', child);
  expectRet(env.sys.close(childFd), 0, 'close');
  env.sys.exit(child);
  env.expectMem(b.ptr, size / 4, (i) => -i, 'parent sees the child write');
  env.free(b);
}

function anonWriteHuge(env: HmmEnv): void {
  let size = 2 * PMD_SIZE;
  const oldPtr = env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  size /= 2;
  const npages = size / PAGE_SIZE;
  const map = alignUp(oldPtr, size);
  env.madvise(map, size, MADV.HUGEPAGE);
  const b = env.buffer(map, 2 * size, size);
  b.mirror.set(intBytes(size / 4, (i) => i));
  expectRet(env.cmd(env.fd, HMM_DMIRROR_WRITE, b, npages), 0, 'WRITE');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  env.expectMem(b.ptr, size / 4, (i) => i, 'buffer');
  b.ptr = oldPtr;
  env.free(b);
}

function anonWriteHugetlbfs(env: HmmEnv): void {
  const size = alignUp(TWOMEG, PMD_SIZE);
  const npages = size / PAGE_SIZE;
  const ptr = env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  const b = env.buffer(ptr, size);
  b.mirror.set(intBytes(size / 4, (i) => i));
  expectRet(env.cmd(env.fd, HMM_DMIRROR_WRITE, b, npages), 0, 'WRITE');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  env.expectMem(b.ptr, size / 4, (i) => i, 'buffer');
  env.free(b);
}

/** hmm_create_file(): an unlinked temporary file of `size` bytes (a memfd here). */
function createFile(env: HmmEnv, size: number): number {
  const fd = env.sys.memfdCreate('hmm-tests');
  assert.ok(fd >= 0);
  expectRet(env.sys.ftruncate(fd, size), 0, 'ftruncate');
  return fd;
}

function fileRead(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const fd = createFile(env, size);
  expectRet(
    env.sys.pwrite(
      fd,
      intBytes(size / 4, (i) => i),
      0,
    ),
    size,
    'pwrite',
  );
  const b = env.buffer(env.mmap(size, PROT_READ, MAP_SHARED, fd), size);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_READ, b, npages), 0, 'READ');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  expectInts(b.mirror, (i) => i, 'mirror');
  env.free(b);
  expectRet(env.sys.close(fd), 0, 'close');
}

function fileWrite(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const fd = createFile(env, size);
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd), size);
  b.mirror.set(intBytes(size / 4, (i) => i));
  expectRet(env.cmd(env.fd, HMM_DMIRROR_WRITE, b, npages), 0, 'WRITE');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  env.expectMem(b.ptr, size / 4, (i) => i, 'buffer');
  const r = env.sys.pread(fd, size, 0);
  expectRet(r.ret, size, 'pread');
  expectInts(r.data, (i) => i, 'file');
  env.free(b);
  expectRet(env.sys.close(fd), 0, 'close');
}

/** Maps, initialises with ptr[i] = i and migrates the default buffer to the device. */
function migratedBuffer(
  env: HmmEnv,
  flags = MAP_PRIVATE | MAP_ANONYMOUS,
  fd = -1,
): { b: HmmBuffer; npages: number; size: number } {
  const { npages, size } = defaultNpages();
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, flags, fd), size);
  env.writeInts(b.ptr, size / 4, (i) => i);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, (i) => i, 'mirror');
  return { b, npages, size };
}

function migrate(env: HmmEnv): void {
  env.free(migratedBuffer(env).b);
}

function migrateFilePrivate(env: HmmEnv): void {
  const { size } = defaultNpages();
  const fd = createFile(env, size);
  env.free(migratedBuffer(env, MAP_PRIVATE, fd).b);
  expectRet(env.sys.close(fd), 0, 'close');
}

function migrateFault(env: HmmEnv): void {
  const { b, npages, size } = migratedBuffer(env);
  env.expectMem(b.ptr, size / 8, (i) => i, 'first half faulted back');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV again');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, (i) => i, 'mirror');
  env.free(b);
}

function migrateRelease(env: HmmEnv): void {
  const { b, npages, size } = migratedBuffer(env);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_RELEASE, b, npages), 0, 'RELEASE');
  env.expectMem(b.ptr, size / 8, (i) => i, 'first half');
  env.free(b);
}

function migrateShared(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS), size);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), -Errno.ENOENT, 'MIGRATE_TO_DEV of shmem');
  env.free(b);
}

function migrateMixed(env: HmmEnv): void {
  const [fd0, fd1] = env.fds;
  const npages = 6;
  const size = npages * PAGE_SIZE;
  const p = env.mmap(size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
  const b = env.buffer(p, size);
  expectRet(env.cmd(fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), -Errno.EINVAL, 'migrate PROT_NONE');
  expectRet(env.sys.munmap(env.p, p + PAGE_SIZE, PAGE_SIZE), 0, 'munmap');
  expectRet(env.cmd(fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, 3), -Errno.EINVAL, 'migrate across a hole');
  env.mprotect(p + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
  env.expectMem(p + 2 * PAGE_SIZE, 1, () => 0, 'zero page');
  const val = 3;
  env.mprotect(p + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
  env.writeInts(p + 3 * PAGE_SIZE, 1, () => val);
  env.mprotect(p + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
  env.mprotect(p + 4 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
  env.writeInts(p + 4 * PAGE_SIZE, 1, () => val);
  env.writeInts(p + 5 * PAGE_SIZE, 1, () => val);
  b.ptr = p + 2 * PAGE_SIZE;
  expectRet(env.cmd(fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, 4), 0, 'migrate pages 2-5 to device 1');
  assert.equal(b.cpages, 4);
  b.ptr = p + 5 * PAGE_SIZE;
  expectRet(env.cmd(fd0, HMM_DMIRROR_MIGRATE_TO_DEV, b, 1), -Errno.ENOENT, 'migrate page 5 to device 0');
  b.ptr = p;
  env.free(b);
}

function migrateMultiple(env: HmmEnv): void {
  for (let c = 0; c < NTIMES; c++) {
    const { b, npages, size } = migratedBuffer(env);
    if (env.coherent) {
      expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, npages), 0, 'MIGRATE_TO_SYS');
      assert.equal(b.cpages, npages);
    }
    env.expectMem(b.ptr, size / 4, (i) => i, `pass ${c}`);
    env.free(b);
  }
}

function anonReadMultiple(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  for (let c = 0; c < NTIMES; c++) {
    const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
    env.writeInts(b.ptr, size / 4, (i) => i + c);
    expectRet(env.cmd(env.fd, HMM_DMIRROR_READ, b, npages), 0, 'READ');
    assert.equal(b.cpages, npages);
    assert.equal(b.faults, 1);
    expectInts(b.mirror, (i) => i + c, `pass ${c}`);
    env.free(b);
  }
}

/** A Chooser that picks uniformly among the runnable threads with a seeded PRNG. */
function randomChooser(seed: number): Chooser {
  const prng = new Prng(seed);
  return {
    choose(runnable) {
      return runnable[prng.nextU32() % runnable.length];
    },
  };
}

/**
 * anon_teardown: NTIMES times, a device READ of the buffer while another thread sleeps
 * hmm_random() % 32000 ns and then unmaps the buffer's second half (the kernel's unmap_buffer()).
 * A READ that succeeds must have read the right data. Virtual time passes for the sleeper only
 * when no other thread can run, so the READ gets the head start the kernel's sleep gives it.
 *
 * The model adds ANON_TEARDOWN_SEEDS passes without the sleep: the two threads interleaved by a
 * seeded random scheduler, the munmap delayed by a random number of scheduling steps so that it
 * lands before, inside or after the READ. There the READ may fail, but nothing may hang or break
 * an oracle. Each form must reach its data checks at least once, or the test would check nothing.
 */
function anonTeardown(env: HmmEnv): void {
  const { npages, size } = defaultNpages();
  const sys = env.sys;
  const random = new Prng('anon_teardown');
  let checked = 0;
  const pass = (c: number, chooser: Chooser, delayNs: number, delaySteps = 0): void => {
    const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
    env.writeInts(b.ptr, size / 4, (i) => i + c);
    const arg: Record<string, unknown> = { addr: b.ptr, npages, buf: b.mirror };
    const unmapBuffer = function* (): KGen<number> {
      if (delayNs > 0) yield* sleepNs(sys.sched, delayNs);
      for (let i = 0; i < delaySteps; i++) yield* schedPoint('unmap_buffer.delay');
      return yield* sc.sysMunmap(sys, env.p, b.ptr + size / 2, size / 2);
    };
    const unmapper = sys.sched.spawn('unmap_buffer', unmapBuffer());
    const reader = sys.sched.spawn(
      'hmm-tests',
      sc.sysIoctl(sys, env.fd, HMM_DMIRROR_READ, arg, env.opener(env.fd)),
    );
    sys.sched.chooser = chooser;
    try {
      sys.sched.runAll();
    } finally {
      sys.sched.chooser = runToCompletion;
      sys.sched.reap();
    }
    for (const t of [reader, unmapper]) {
      if (t.error !== undefined) throw t.error instanceof Error ? t.error : new Error(`${t.name} failed`);
    }
    if (reader.result === 0) {
      assert.equal(arg.cpages, npages, `pass ${c}: cpages`);
      assert.equal(arg.faults, 1, `pass ${c}: faults`);
      expectInts(b.mirror, (i) => i + c, `pass ${c}: mirror`);
      checked++;
    }
    assertOracles(sys);
    expectRet(sys.munmap(env.p, b.ptr, size / 2), 0, 'munmap');
  };
  for (let c = 0; c < NTIMES; c++) pass(c, randomChooser(c + 1), random.nextU32() % 32000);
  assert.ok(checked > 0, 'no READ of the kernel form succeeded: the data checks never ran');
  checked = 0;
  for (let c = 0; c < ANON_TEARDOWN_SEEDS; c++)
    pass(c, randomChooser(1000 + c), 0, random.nextU32() % ANON_TEARDOWN_DELAY_STEPS);
  // The sweep must see both outcomes: READs that finish first and READs the munmap cuts short.
  assert.ok(checked > 0 && checked < ANON_TEARDOWN_SEEDS, `${checked} of the racing READs succeeded`);
}

function mixedmap(env: HmmEnv): void {
  const npages = 1;
  const size = npages * PAGE_SIZE;
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE, env.fd), size, npages);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_SNAPSHOT, b, npages), 0, 'SNAPSHOT');
  assert.equal(b.cpages, npages);
  assert.equal(b.mirror[0], HMM_DMIRROR_PROT_READ);
  env.free(b);
}

function snapshot(env: HmmEnv): void {
  const [fd0, fd1] = env.fds;
  const npages = 7;
  const size = npages * PAGE_SIZE;
  const p = env.mmap(size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
  const b = env.buffer(p, size, npages);
  expectRet(env.sys.munmap(env.p, p + PAGE_SIZE, PAGE_SIZE), 0, 'munmap');
  env.mprotect(p + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
  env.expectMem(p + 2 * PAGE_SIZE, 1, () => 0, 'zero page');
  const val = 3;
  env.mprotect(p + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
  env.writeInts(p + 3 * PAGE_SIZE, 1, () => val);
  env.mprotect(p + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
  env.mprotect(p + 4 * PAGE_SIZE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE);
  env.writeInts(p + 4 * PAGE_SIZE, 1, () => val);
  const one = env.buffer(p + 5 * PAGE_SIZE, PAGE_SIZE);
  expectRet(env.cmd(fd0, HMM_DMIRROR_MIGRATE_TO_DEV, one, 1), 0, 'migrate page 5 to device 0');
  assert.equal(one.cpages, 1);
  one.ptr = p + 6 * PAGE_SIZE;
  expectRet(env.cmd(fd1, HMM_DMIRROR_MIGRATE_TO_DEV, one, 1), 0, 'migrate page 6 to device 1');
  assert.equal(one.cpages, 1);
  expectRet(env.cmd(fd0, HMM_DMIRROR_SNAPSHOT, b, npages), 0, 'SNAPSHOT');
  assert.equal(b.cpages, npages);
  const m = b.mirror;
  assert.equal(m[0], HMM_DMIRROR_PROT_ERROR);
  assert.equal(m[1], HMM_DMIRROR_PROT_ERROR);
  assert.equal(m[2], HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ);
  assert.equal(m[3], HMM_DMIRROR_PROT_READ);
  assert.equal(m[4], HMM_DMIRROR_PROT_WRITE);
  if (!env.coherent) {
    assert.equal(m[5], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE);
    assert.equal(m[6], HMM_DMIRROR_PROT_NONE);
  } else {
    assert.equal(m[5], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE);
    assert.equal(m[6], HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | HMM_DMIRROR_PROT_WRITE);
  }
  env.free(b);
}

function compound(env: HmmEnv): void {
  const size = alignUp(TWOMEG, PMD_SIZE);
  const npages = size / PAGE_SIZE;
  const b = env.buffer(
    env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB),
    size,
    npages,
  );
  env.writeInts(b.ptr, size / 4, (i) => i);
  const check = (rw: number, what: string): void => {
    expectRet(env.cmd(env.fd, HMM_DMIRROR_SNAPSHOT, b, npages), 0, 'SNAPSHOT');
    assert.equal(b.cpages, npages);
    const prot =
      rw | ((b.mirror[0] & HMM_DMIRROR_PROT_PUD) !== 0 ? HMM_DMIRROR_PROT_PUD : HMM_DMIRROR_PROT_PMD);
    for (let i = 0; i < npages; i++) assert.equal(b.mirror[i], prot, `${what}: page ${i}`);
  };
  check(HMM_DMIRROR_PROT_WRITE, 'read-write');
  env.mprotect(b.ptr, size, PROT_READ);
  check(HMM_DMIRROR_PROT_READ, 'read-only');
  env.free(b);
}

function doubleMap(env: HmmEnv): void {
  const [fd0, fd1] = env.fds;
  const npages = 6;
  const size = npages * PAGE_SIZE;
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
  env.writeInts(b.ptr, size / 4, (i) => i);
  env.mprotect(b.ptr, size, PROT_READ);
  for (const [fd, what] of [
    [fd0, 'device 0'],
    [fd1, 'device 1'],
  ] as const) {
    expectRet(env.cmd(fd, HMM_DMIRROR_READ, b, npages), 0, `READ ${what}`);
    assert.equal(b.cpages, npages);
    assert.equal(b.faults, 1);
    expectInts(b.mirror, (i) => i, `${what} mirror`);
  }
  expectRet(env.cmd(fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'migrate to device 1');
  assert.equal(b.cpages, npages);
  expectRet(env.cmd(fd0, HMM_DMIRROR_READ, b, npages), 0, 'READ device 0 after migration');
  assert.equal(b.cpages, npages);
  assert.equal(b.faults, 1);
  expectInts(b.mirror, (i) => i, 'device 0 mirror');
  env.free(b);
}

function exclusiveBuffer(env: HmmEnv): { b: HmmBuffer; npages: number; size: number } {
  const { npages, size } = defaultNpages();
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
  env.writeInts(b.ptr, size / 4, (i) => i);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_EXCLUSIVE, b, npages), 0, 'EXCLUSIVE');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, (i) => i, 'mirror');
  return { b, npages, size };
}

function exclusive(env: HmmEnv): void {
  const { b, npages, size } = exclusiveBuffer(env);
  env.incrementInts(b.ptr, size / 4, (i) => i);
  env.expectMem(b.ptr, size / 4, (i) => i + 1, 'buffer');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, b, npages), 0, 'CHECK_EXCLUSIVE');
  env.free(b);
}

function exclusiveMprotect(env: HmmEnv): void {
  const { b, npages, size } = exclusiveBuffer(env);
  env.mprotect(b.ptr, size, PROT_READ);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_WRITE, b, npages), -Errno.EPERM, 'WRITE');
  env.free(b);
}

function exclusiveCow(env: HmmEnv): void {
  const { b, size } = exclusiveBuffer(env);
  const child = env.fork();
  env.incrementInts(b.ptr, size / 4, (i) => i, child);
  env.expectMem(b.ptr, size / 4, (i) => i + 1, 'child buffer', child);
  env.sys.exit(child);
  env.incrementInts(b.ptr, size / 4, (i) => i);
  env.expectMem(b.ptr, size / 4, (i) => i + 1, 'parent buffer');
  env.free(b);
}

/** What /sys/kernel/debug/gup_test does for each command, on one page. */
function gupTestExec(
  env: HmmEnv,
  addr: number,
  cmd: 'GUP_BASIC_TEST' | 'GUP_FAST_BENCHMARK' | 'PIN_FAST_BENCHMARK' | 'PIN_LONGTERM_BENCHMARK',
  flags: number,
): number {
  const sys = env.sys;
  const mm = env.p.mm!;
  const gupFlags = FOLL_WRITE | flags;
  const out: number[] = [];
  if (cmd === 'GUP_BASIC_TEST' || cmd === 'GUP_FAST_BENCHMARK') {
    const n = sys.run(
      cmd,
      (function* () {
        yield* mm.mmapLock.downRead();
        const r = yield* getUserPagesRemote(mm, addr, 1, gupFlags, out);
        yield* mm.mmapLock.upRead();
        return r;
      })(),
    );
    if (n !== 1) return n < 0 ? -n : Errno.EFAULT;
    putUserPages(sys, out, 1);
    return 0;
  }
  const pinFlags = cmd === 'PIN_LONGTERM_BENCHMARK' ? gupFlags | FOLL_LONGTERM : gupFlags;
  const n = sys.run(cmd, pinUserPagesFast(mm, addr, 1, pinFlags, out));
  if (n !== 1) return n < 0 ? -n : Errno.EFAULT;
  unpinUserPages(sys, out, 1, false);
  return 0;
}

function hmmGupTest(env: HmmEnv): void {
  const npages = 4;
  const size = npages * PAGE_SIZE;
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
  env.writeInts(b.ptr, size / 4, (i) => i);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, (i) => i, 'mirror');
  assert.equal(gupTestExec(env, b.ptr, 'GUP_BASIC_TEST', 0), 0);
  assert.equal(gupTestExec(env, b.ptr + PAGE_SIZE, 'GUP_FAST_BENCHMARK', 0), 0);
  assert.equal(gupTestExec(env, b.ptr + 2 * PAGE_SIZE, 'PIN_FAST_BENCHMARK', FOLL_LONGTERM), 0);
  assert.equal(gupTestExec(env, b.ptr + 3 * PAGE_SIZE, 'PIN_LONGTERM_BENCHMARK', 0), 0);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_SNAPSHOT, b, npages), 0, 'SNAPSHOT');
  assert.equal(b.cpages, npages);
  const m = b.mirror;
  const first = env.coherent
    ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE
    : HMM_DMIRROR_PROT_WRITE;
  assert.equal(m[0], first);
  assert.equal(m[1], first);
  assert.equal(m[2], HMM_DMIRROR_PROT_WRITE);
  assert.equal(m[3], HMM_DMIRROR_PROT_WRITE);
  env.expectMem(b.ptr, size / 4, (i) => i, 'buffer');
  env.free(b);
}

function hmmCowInDevice(env: HmmEnv): void {
  const npages = 4;
  const size = npages * PAGE_SIZE;
  const b = env.buffer(env.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), size);
  env.writeInts(b.ptr, size / 4, (i) => i);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  // The child spins until the parent kills it.
  const child = env.fork();
  env.writeInts(b.ptr, size / 4, (i) => i);
  env.sys.exit(child);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_SNAPSHOT, b, npages), 0, 'SNAPSHOT');
  assert.equal(b.cpages, npages);
  for (let i = 0; i < npages; i++) assert.equal(b.mirror[i], HMM_DMIRROR_PROT_WRITE, `page ${i}`);
  env.free(b);
}

/** A PMD-aligned PMD-sized region inside a mapping of twice that, as the THP tests build it. */
function hugeRegion(
  env: HmmEnv,
  prot: number,
  advice: number | null,
): { b: HmmBuffer; npages: number; size: number; oldPtr: number } {
  const size = PMD_SIZE;
  const oldPtr = env.mmap(2 * size, prot, MAP_PRIVATE | MAP_ANONYMOUS);
  const npages = size / PAGE_SIZE;
  const map = alignUp(oldPtr, size);
  if (advice !== null) env.madvise(map, size, advice);
  const b = env.buffer(map, 2 * size, size);
  b.mirror.fill(0xff);
  return { b, npages, size, oldPtr };
}

function migrateAnonHugeEmpty(env: HmmEnv): void {
  const { b, npages, size, oldPtr } = hugeRegion(env, PROT_READ, MADV.HUGEPAGE);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, () => 0, 'mirror', 0, size / 4);
  b.ptr = oldPtr;
  env.free(b);
}

function migrateAnonHugeZero(env: HmmEnv): void {
  const { b, npages, size, oldPtr } = hugeRegion(env, PROT_READ, MADV.HUGEPAGE);
  env.expectMem(b.ptr, 1, () => 0, 'huge zero page');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, () => 0, 'mirror');
  env.expectMem(b.ptr, size / 4, () => 0, 'faulted back');
  b.ptr = oldPtr;
  env.free(b);
}

function migrateAnonHugeFree(env: HmmEnv): void {
  const { b, npages, size, oldPtr } = hugeRegion(env, PROT_READ | PROT_WRITE, MADV.HUGEPAGE);
  env.writeInts(b.ptr, size / 4, (i) => i);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, (i) => i, 'mirror');
  env.madvise(b.ptr, size, MADV.FREE);
  b.ptr = oldPtr;
  env.free(b);
}

function migrateAnonHugeFault(env: HmmEnv): void {
  const { b, npages, size, oldPtr } = hugeRegion(env, PROT_READ | PROT_WRITE, null);
  env.writeInts(b.ptr, size / 4, (i) => i);
  env.madvise(b.ptr, size, MADV.COLLAPSE);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, (i) => i, 'mirror');
  if (!env.coherent) {
    expectRet(env.cmd(env.fd, HMM_DMIRROR_SNAPSHOT, b, npages), 0, 'SNAPSHOT');
    assert.equal(b.cpages, npages);
    const want = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD;
    for (let i = 0; i < npages; i++) assert.equal(b.mirror[i], want, `SNAPSHOT page ${i}`);
    const pm = env.sys.pagemap(env.p, b.ptr, npages);
    for (let i = 0; i < npages; i++) {
      assert.equal(pm[i].swap, true, `pagemap ${i}: PM_SWAP`);
      assert.equal(pm[i].present, false, `pagemap ${i}: present`);
    }
  }
  env.expectMem(b.ptr, size / 4, (i) => i, 'faulted back');
  b.ptr = oldPtr;
  env.free(b);
}

function migratePartialUnmapFault(env: HmmEnv): void {
  const size = PMD_SIZE;
  const unmapSize = size / 2;
  const offsets = [0, size / 4, size / 2];
  for (let useThp = 0; useThp < 2; useThp++) {
    for (const off of offsets) {
      const { b, npages, oldPtr } = hugeRegion(
        env,
        PROT_READ | PROT_WRITE,
        useThp !== 0 ? MADV.HUGEPAGE : MADV.NOHUGEPAGE,
      );
      env.writeInts(b.ptr, size / 4, (i) => i);
      expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
      assert.equal(b.cpages, npages);
      expectInts(b.mirror, (i) => i, 'mirror');
      expectRet(env.sys.munmap(env.p, b.ptr + off, unmapSize), 0, 'munmap');
      if (off > 0) env.expectMem(b.ptr, off / 4, (i) => i, `thp ${useThp} offset ${off}: before the hole`);
      const after = off + unmapSize;
      if (after < size) {
        env.expectMem(
          b.ptr + after,
          (size - after) / 4,
          (i) => i + after / 4,
          `thp ${useThp} offset ${off}: after the hole`,
        );
      }
      b.ptr = oldPtr;
      env.free(b);
    }
  }
}

function migrateRemapFault(env: HmmEnv): void {
  const size = PMD_SIZE;
  const offsets = [0, size / 4, size / 2];
  for (let before = 0; before < 2; before++) {
    for (let dontUnmap = 0; dontUnmap < 2; dontUnmap++) {
      for (let useThp = 0; useThp < 2; useThp++) {
        for (const off of offsets) {
          const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontUnmap !== 0 ? MREMAP_DONTUNMAP : 0);
          const oldPtr = env.mmap(8 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
          const b = env.buffer(oldPtr, 8 * size, size);
          b.mirror.fill(0xff);
          const npages = size / PAGE_SIZE;
          const map = alignUp(oldPtr, size);
          env.madvise(map, size, useThp !== 0 ? MADV.HUGEPAGE : MADV.NOHUGEPAGE);
          env.sys.munmap(env.p, map + size, size * 2);
          b.ptr = map;
          env.writeInts(b.ptr, size / 4, (i) => i);
          const what = `before ${before} dontunmap ${dontUnmap} thp ${useThp} offset ${off}`;
          let newPtr = 0;
          const remap = (): void => {
            newPtr = env.sys.mremap(env.p, map, size, size, flags, map + size + off);
            assert.ok(newPtr >= 0, `${what}: mremap ${newPtr}`);
            b.ptr = newPtr;
          };
          if (before !== 0) remap();
          expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, `${what}: MIGRATE_TO_DEV`);
          assert.equal(b.cpages, npages);
          expectInts(b.mirror, (i) => i, `${what}: mirror`);
          if (before === 0) remap();
          env.expectMem(b.ptr, size / 4, (i) => i, `${what}: faulted back`);
          env.sys.munmap(env.p, newPtr, size);
          b.ptr = oldPtr;
          env.free(b);
        }
      }
    }
  }
}

function migrateAnonHugeErr(env: HmmEnv): void {
  const size = PMD_SIZE;
  const npages = size / PAGE_SIZE;
  const setup = (): { b: HmmBuffer; oldPtr: number } => {
    const oldPtr = env.mmap(2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const map = alignUp(oldPtr, size);
    env.madvise(map, size, MADV.HUGEPAGE);
    const b = env.buffer(map, 2 * size, 2 * size);
    b.mirror.fill(0xff);
    env.writeInts(b.ptr, size / 4, (i) => i);
    return { b, oldPtr };
  };
  let { b, oldPtr } = setup();
  expectRet(env.cmd(env.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, 'FLAGS');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, (i) => i, 'mirror', 0, size / 4);
  env.expectMem(b.ptr + 2048 * 4, 1, () => 2048, 'ptr[2048]');
  expectRet(env.sys.munmap(env.p, oldPtr, 2 * size), 0, 'munmap');
  ({ b, oldPtr } = setup());
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV THP');
  assert.equal(b.cpages, npages);
  expectRet(env.cmd(env.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, 'FLAGS');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, npages), 0, 'MIGRATE_TO_SYS');
  env.expectMem(b.ptr + 2048 * 4, 1, () => 2048, 'ptr[2048]');
  b.ptr = oldPtr;
  env.free(b);
}

function migrateAnonHugeZeroErr(env: HmmEnv): void {
  const size = PMD_SIZE;
  const npages = size / PAGE_SIZE;
  const setup = (): { b: HmmBuffer; oldPtr: number } => {
    const oldPtr = env.mmap(2 * size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    const map = alignUp(oldPtr, size);
    env.madvise(map, size, MADV.HUGEPAGE);
    const b = env.buffer(map, 2 * size, 2 * size);
    b.mirror.fill(0xff);
    return { b, oldPtr };
  };
  let { b, oldPtr } = setup();
  expectRet(env.cmd(env.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, 'FLAGS');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  expectInts(b.mirror, () => 0, 'mirror', 0, size / 4);
  env.expectMem(b.ptr + 2048 * 4, 1, () => 0, 'ptr[2048]');
  expectRet(env.sys.munmap(env.p, oldPtr, 2 * size), 0, 'munmap');
  ({ b, oldPtr } = setup());
  env.expectMem(b.ptr, 1, () => 0, 'huge zero page');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, 'FLAGS');
  expectRet(env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages), 0, 'MIGRATE_TO_DEV');
  assert.equal(b.cpages, npages);
  env.expectMem(b.ptr, size / 4, () => 0, 'faulted back');
  b.ptr = oldPtr;
  env.free(b);
}

/** The buffer sizes benchmark_thp_migration runs, as the kernel's test_sizes[]: 512 KiB to 256 MiB. */
export const BENCHMARK_SIZES = [
  PMD_SIZE / 4,
  PMD_SIZE / 2,
  PMD_SIZE,
  PMD_SIZE * 2,
  PMD_SIZE * 4,
  PMD_SIZE * 8,
  PMD_SIZE * 128,
];
/** Timed iterations per size after the warm-up round trip, as in the kernel. */
export const BENCHMARK_ITERATIONS = 5;

/** run_migration_benchmark(): warm-up and timed round trips; returns 0 or the failing return value. */
function runMigrationBenchmark(env: HmmEnv, useThp: boolean, bufferSize: number, iterations: number): number {
  const npages = bufferSize / PAGE_SIZE;
  const b = env.buffer(env.mmap(bufferSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), bufferSize);
  b.mirror.fill(0xff);
  const ret = env.sys.madvise(env.p, b.ptr, bufferSize, useThp ? MADV.HUGEPAGE : MADV.NOHUGEPAGE);
  if (ret !== 0) return ret;
  env.writeInts(b.ptr, bufferSize / 4, (i) => i & 0xff);
  for (let i = 0; i <= iterations; i++) {
    let r = env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages);
    if (r !== 0) return r;
    r = env.cmd(env.fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, npages);
    if (r !== 0) return r;
  }
  env.free(b);
  return 0;
}

function benchmarkThpMigration(env: HmmEnv): void {
  for (const size of BENCHMARK_SIZES) {
    expectRet(runMigrationBenchmark(env, true, size, BENCHMARK_ITERATIONS), 0, `THP ${size} bytes`);
    expectRet(runMigrationBenchmark(env, false, size, BENCHMARK_ITERATIONS), 0, `no THP ${size} bytes`);
  }
}

/** FIXTURE hmm's tests in the kernel's order. */
const HMM_TESTS: readonly [string, Body][] = [
  ['open_close', () => undefined],
  ['anon_read', anonRead],
  ['anon_read_prot', anonReadProt],
  ['anon_write', anonWrite],
  ['anon_write_prot', anonWriteProt],
  ['anon_write_child', anonWriteChild],
  ['anon_write_child_shared', anonWriteChildShared],
  ['anon_write_huge', anonWriteHuge],
  ['anon_write_hugetlbfs', anonWriteHugetlbfs],
  ['file_read', fileRead],
  ['file_write', fileWrite],
  ['migrate', migrate],
  ['migrate_file_private', migrateFilePrivate],
  ['migrate_fault', migrateFault],
  ['migrate_release', migrateRelease],
  ['migrate_shared', migrateShared],
  ['migrate_multiple', migrateMultiple],
  ['anon_read_multiple', anonReadMultiple],
  ['anon_teardown', anonTeardown],
  ['mixedmap', mixedmap],
  ['compound', compound],
  ['exclusive', exclusive],
  ['exclusive_mprotect', exclusiveMprotect],
  ['exclusive_cow', exclusiveCow],
  ['hmm_gup_test', hmmGupTest],
  ['hmm_cow_in_device', hmmCowInDevice],
  ['migrate_anon_huge_empty', migrateAnonHugeEmpty],
  ['migrate_anon_huge_zero', migrateAnonHugeZero],
  ['migrate_anon_huge_free', migrateAnonHugeFree],
  ['migrate_anon_huge_fault', migrateAnonHugeFault],
  ['migrate_partial_unmap_fault', migratePartialUnmapFault],
  ['migrate_remap_fault', migrateRemapFault],
  ['migrate_anon_huge_err', migrateAnonHugeErr],
  ['migrate_anon_huge_zero_err', migrateAnonHugeZeroErr],
  ['benchmark_thp_migration', benchmarkThpMigration],
];

/** FIXTURE hmm2's tests. */
const HMM2_TESTS: readonly [string, Body][] = [
  ['migrate_mixed', migrateMixed],
  ['snapshot', snapshot],
  ['double_map', doubleMap],
];

/**
 * Every case of hmm-tests.c, for both variants of its fixture. `config` reaches every System the
 * cases build (e.g. `plainPaths: false` runs every kernel path in its generator form).
 */
export function hmmCases(config: SystemConfig = {}): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const [test, body] of HMM_TESTS) {
    for (const [variant, devices] of HMM_VARIANTS)
      out.push(hmmCase(`hmm.${test}`, variant, devices, body, config));
  }
  for (const [test, body] of HMM2_TESTS) {
    for (const [variant, devices] of HMM2_VARIANTS)
      out.push(hmmCase(`hmm2.${test}`, variant, devices, body, config));
  }
  return out;
}
