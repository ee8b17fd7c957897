/**
 * What the ported tools/testing/selftests/mm/ tests share: one System with one test process, the
 * syscalls as the C tests call them (raw returns, -errno on failure), the vm_util.h helpers
 * (pagemap_is_populated(), pagemap_is_swapped(), pagemap_is_softdirty(), clear_softdirty()), the
 * GUP users the tests reach through the kernel (gup_test's PIN_LONGTERM_TEST_*, vmsplice() into a
 * pipe, io_uring fixed buffers), and a teardown that exits every process and runs every oracle.
 *
 * Processes run one after another: where a C test synchronises a parent and a forked child over
 * pipes, the port runs the same steps in the same order on the two Process objects.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { errnoName } from '../kernel/errno.ts';
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  getUserPagesRemote,
  pinUserPagesFast,
  putUserPages,
  unpinUserPages,
} from '../kernel/mm/gup.ts';
import { getUserPagesLocked } from '../kernel/mm/gup.ts';
import { FOLL_PIN } from '../kernel/mm/gup.ts';
import type { PagemapEntry } from '../kernel/syscalls.ts';
import { System, type Process, type SystemConfig } from '../kernel/system.ts';
import { assertOracles } from '../oracles/index.ts';
import type { ConformanceCase } from './types.ts';

/** read_pmd_pagesize() on x86-64. */
export const PMD_SIZE = 2 * 1024 * 1024;
/** PIPE_DEF_BUFFERS: a fresh pipe holds this many page references, so one vmsplice() moves at most this many pages. */
export const PIPE_DEF_BUFFERS = 16;

/** A syscall return as the C test sees it: the value, or -1 with errno's name. */
export function show(r: number): string {
  return r < 0 ? `-1 (${errnoName(-r)})` : String(r);
}

export function expectRet(ret: number, expected: number, what: string): void {
  if (ret !== expected) assert.fail(`${what}: returned ${show(ret)}, expected ${show(expected)}`);
}

/** Pages pinned or referenced by a GUP user, and the bytes reachable through them. */
export interface PageRefs {
  readonly pfns: number[];
  /** Bytes covered: npages * PAGE_SIZE, or fewer for a pipe that filled up. */
  readonly bytes: number;
  readonly pin: boolean;
}

export class MmEnv {
  readonly sys: System;
  readonly p: Process;
  private readonly procs: Process[] = [];
  private readonly refs: PageRefs[] = [];

  constructor(config: SystemConfig = {}) {
    this.sys = new System(config);
    this.p = this.sys.createProcess('mm-test', 0);
    this.procs.push(this.p);
  }

  mmap(addr: number, len: number, prot: number, flags: number, fd = -1, off = 0, proc = this.p): number {
    return this.sys.mmap(proc, addr, len, prot, flags, fd, off);
  }

  /** mmap() that must succeed ("mmap() failed" fails the test). */
  mmapOk(len: number, prot: number, flags: number, fd = -1, addr = 0): number {
    const a = this.mmap(addr, len, prot, flags, fd);
    assert.ok(a >= 0, `mmap() failed: ${show(a)}`);
    return a;
  }

  munmap(addr: number, len: number, proc = this.p): number {
    return this.sys.munmap(proc, addr, len);
  }

  mprotect(addr: number, len: number, prot: number, proc = this.p): number {
    return this.sys.mprotect(proc, addr, len, prot);
  }

  madvise(addr: number, len: number, advice: number, proc = this.p): number {
    return this.sys.madvise(proc, addr, len, advice);
  }

  mremap(addr: number, oldLen: number, newLen: number, flags: number, newAddr = 0, proc = this.p): number {
    return this.sys.mremap(proc, addr, oldLen, newLen, flags, newAddr);
  }

  /** memset(): every byte must be stored (a fault the test does not expect fails it). */
  memset(addr: number, value: number, len: number, proc = this.p): void {
    expectRet(
      this.sys.write(proc, addr, new Uint8Array(len).fill(value)),
      len,
      `memset(${addr.toString(16)})`,
    );
  }

  /** memcpy() into the mapping: every byte must be stored. */
  memcpy(addr: number, data: Uint8Array, proc = this.p): void {
    expectRet(this.sys.write(proc, addr, data), data.length, `memcpy(${addr.toString(16)})`);
  }

  /** A store that may fault: the write's return (-EFAULT stands for SIGSEGV). */
  store(addr: number, data: Uint8Array, proc = this.p): number {
    return this.sys.write(proc, addr, data);
  }

  /** memcpy() out of the mapping. */
  load(addr: number, len: number, proc = this.p): Uint8Array {
    const r = this.sys.read(proc, addr, len);
    expectRet(r.ret, len, `read(${addr.toString(16)})`);
    return r.data;
  }

  fork(proc = this.p): Process {
    const r = this.sys.fork(proc, `child${this.procs.length}`);
    assert.ok(r.ret >= 0 && r.child !== null, `fork() failed: ${show(r.ret)}`);
    this.procs.push(r.child);
    return r.child;
  }

  /** The child exits (exit() and the parent's wait()). */
  exit(proc: Process): void {
    if (!proc.exited) expectRet(this.sys.exit(proc), 0, `exit(${proc.name})`);
  }

  pagemap(addr: number, proc = this.p): PagemapEntry {
    return this.sys.pagemap(proc, addr, 1)[0];
  }

  /** vm_util.c pagemap_is_populated(): PM_PRESENT or PM_SWAP. */
  isPopulated(addr: number, proc = this.p): boolean {
    const e = this.pagemap(addr, proc);
    return e.present || e.swap;
  }

  isSwapped(addr: number, proc = this.p): boolean {
    return this.pagemap(addr, proc).swap;
  }

  isSoftDirty(addr: number, proc = this.p): boolean {
    return this.pagemap(addr, proc).softDirty;
  }

  /** vm_util.c clear_softdirty(): "4" written to /proc/self/clear_refs. */
  clearSoftDirty(proc = this.p): void {
    expectRet(this.sys.clearSoftDirty(proc), 0, 'clear_refs');
  }

  /**
   * gup_test.c PIN_LONGTERM_TEST_START: pins [addr, addr + size) with FOLL_LONGTERM (read-only
   * unless `write`), through pin_user_pages_fast() or, without `fast`, pin_user_pages() under the
   * mmap read lock. Returns 0 or -errno, as the ioctl does.
   */
  pinLongterm(
    addr: number,
    size: number,
    fast: boolean,
    write = false,
  ): { ret: number; refs: PageRefs | null } {
    const mm = this.p.mm!;
    const npages = size / PAGE_SIZE;
    const out: number[] = [];
    const flags = FOLL_LONGTERM | (write ? FOLL_WRITE : 0);
    const n = fast
      ? this.sys.run('pin_user_pages_fast', pinUserPagesFast(mm, addr, npages, flags, out))
      : this.sys.run(
          'pin_user_pages',
          (function* () {
            yield* mm.mmapLock.downRead();
            const r = yield* getUserPagesLocked(mm, addr, npages, flags | FOLL_PIN, out);
            yield* mm.mmapLock.upRead();
            return r;
          })(),
        );
    if (n !== npages) {
      if (n > 0) unpinUserPages(this.sys, out, n, false);
      return { ret: n < 0 ? n : -14, refs: null };
    }
    const refs: PageRefs = { pfns: out, bytes: size, pin: true };
    this.refs.push(refs);
    return { ret: 0, refs };
  }

  /**
   * vmsplice() of [addr, addr + size) into a fresh pipe by `proc`: the pipe takes a FOLL_GET
   * reference on each page it can hold (iov_iter_get_pages2() -> get_user_pages_fast() without
   * FOLL_WRITE), at most PIPE_DEF_BUFFERS pages. Returns the bytes transferred or -errno.
   */
  vmsplice(addr: number, size: number, proc: Process): { ret: number; refs: PageRefs | null } {
    const mm = proc.mm!;
    const npages = Math.min(size / PAGE_SIZE, PIPE_DEF_BUFFERS);
    const out: number[] = [];
    const n = this.sys.run(
      'vmsplice',
      (function* () {
        yield* mm.mmapLock.downRead();
        const r = yield* getUserPagesRemote(mm, addr, npages, 0, out);
        yield* mm.mmapLock.upRead();
        return r;
      })(),
    );
    if (n <= 0) return { ret: n, refs: null };
    const refs: PageRefs = { pfns: out.slice(0, n), bytes: n * PAGE_SIZE, pin: false };
    this.refs.push(refs);
    return { ret: refs.bytes, refs };
  }

  /** What a reader of the pinned or referenced pages sees (gup_test READ, a pipe read, io_uring write_fixed). */
  readRefs(refs: PageRefs): Uint8Array {
    const data = new Uint8Array(refs.bytes);
    refs.pfns.forEach((pfn, i) => {
      this.sys.phys.read(pfn, 0, data, i * PAGE_SIZE, PAGE_SIZE);
    });
    return data;
  }

  /** PIN_LONGTERM_TEST_STOP, or closing the pipe: the references go. */
  release(refs: PageRefs | null): void {
    if (refs === null) return;
    const i = this.refs.indexOf(refs);
    if (i < 0) return;
    this.refs.splice(i, 1);
    if (refs.pin) unpinUserPages(this.sys, refs.pfns, refs.pfns.length, false);
    else putUserPages(this.sys, refs.pfns, refs.pfns.length);
  }

  /** Every reference goes, every process exits, every file closes, then every oracle runs. */
  teardown(): void {
    for (const r of [...this.refs]) this.release(r);
    for (const p of [...this.procs].reverse()) if (!p.exited) this.sys.exit(p);
    for (const fd of [...this.sys.files.keys()]) this.sys.close(fd);
    assertOracles(this.sys, { teardown: true });
  }
}

/** A case `<file>.<name>` of the mm suite: `body` runs on a fresh MmEnv, torn down after it. */
export function mmCase(
  file: string,
  name: string,
  body: (env: MmEnv) => void,
  config: SystemConfig,
): ConformanceCase {
  return {
    suite: 'mm',
    name: `${file}.${name}`,
    variant: '',
    run: () => {
      const env = new MmEnv(config);
      body(env);
      env.teardown();
    },
  };
}

/** addr & ~(align - 1) for addresses past 2^32, where JavaScript's bitwise operators would truncate. */
export function alignDown(addr: number, align: number): number {
  return addr - (addr % align);
}

/** memcmp() == 0, reporting the first differing byte. */
export function sameBytes(a: Uint8Array, b: Uint8Array, len = Math.min(a.length, b.length)): number {
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) return i;
  return -1;
}
