/*
 * RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK: setrlimit() and may_expand_vm(), asked by mmap,
 * mprotect, mremap and stack growth. The expected values are what Linux 6.18 (6.18.44) did when
 * the same sequence ran as an ordinary user. A live process starts with VmData, VmSize and VmStk
 * of its own (libc, its stack), so the live runs set each limit that far above what the process
 * had; a process of the model starts with none, and the limits here are the same distances above
 * zero.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
} from '../../../src/kernel/mm/mman.ts';
import type { Process, System } from '../../../src/kernel/system.ts';
import { RW, setup, teardown } from './mm_helpers.ts';

const K = 1024;
const RWX = RW | PROT_EXEC;
const RX = PROT_READ | PROT_EXEC;
const ANON_PRIVATE = MAP_PRIVATE | MAP_ANONYMOUS;

function anon(sys: System, p: Process, len: number, prot: number, flags = ANON_PRIVATE, addr = 0): number {
  return sys.mmap(p, addr, len, prot, flags);
}

/** VmData, VmSize and VmStk in kB, as /proc/PID/status shows them. */
function vm(sys: System, p: Process): { data: number; size: number; stk: number } {
  const s = sys.stats(p);
  return { data: s.data_vm / K, size: s.total_vm / K, stk: s.stack_vm / K };
}

describe('RLIMIT_DATA', () => {
  it('refuses private writable memory past the limit, and nothing else', () => {
    const { sys, p } = setup();
    assert.equal(sys.setrlimit(p, 'data', { cur: 64 * K, max: Infinity }), 0);
    const a = anon(sys, p, 64 * K, RW);
    assert.ok(a > 0);
    assert.equal(anon(sys, p, 4 * K, RW), -Errno.ENOMEM);
    assert.ok(anon(sys, p, 1024 * K, RW, MAP_SHARED | MAP_ANONYMOUS) > 0);
    const ro = anon(sys, p, 1024 * K, PROT_READ);
    assert.ok(ro > 0);
    // Writable and executable is data too; executable alone is not.
    assert.equal(anon(sys, p, 4 * K, RWX), -Errno.ENOMEM);
    const x = anon(sys, p, 4 * K, RX);
    assert.ok(x > 0);
    assert.deepEqual(vm(sys, p), { data: 64, size: 2116, stk: 0 });
    assert.equal(sys.stats(p).exec_vm, 4 * K);

    // mprotect() that would turn memory into data.
    assert.equal(sys.mprotect(p, ro, 4 * K, RW), -Errno.ENOMEM);
    assert.equal(sys.mprotect(p, x, 4 * K, RWX), -Errno.ENOMEM);

    // MAP_FIXED counts only the pages it adds: 16 over 16 read-only ones pass while VmData is
    // within the limit (and take it past it); then even a replacement is refused.
    assert.equal(anon(sys, p, 64 * K, RW, ANON_PRIVATE | MAP_FIXED, ro), ro);
    assert.equal(vm(sys, p).data, 128);
    assert.equal(anon(sys, p, 68 * K, RW, ANON_PRIVATE | MAP_FIXED, ro + 64 * K), -Errno.ENOMEM);
    assert.ok(anon(sys, p, 64 * K, PROT_NONE) > 0);

    // mremap() growing a private writable mapping; a read-only one may grow.
    assert.equal(sys.mremap(p, a, 64 * K, 68 * K, MREMAP_MAYMOVE), -Errno.ENOMEM);
    assert.ok(sys.mremap(p, ro + 256 * K, 64 * K, 128 * K, MREMAP_MAYMOVE) > 0);
    assert.equal(sys.munmap(p, a, 64 * K), 0);
    assert.equal(sys.munmap(p, ro, 64 * K), 0);
    assert.equal(vm(sys, p).data, 0);
    assert.equal(sys.mprotect(p, ro + 132 * K, 8 * K, RW), 0);
    assert.equal(vm(sys, p).data, 8);
    teardown(sys);
  });

  it('a soft limit of 0 lets a mapping up to the hard limit through (the Valgrind allowance)', () => {
    const { sys, p } = setup();
    assert.equal(sys.setrlimit(p, 'data', { cur: 0, max: 64 * K }), 0);
    const a = anon(sys, p, 64 * K, RW);
    assert.ok(a > 0);
    assert.equal(anon(sys, p, 4 * K, RW), -Errno.ENOMEM);
    assert.equal(sys.munmap(p, a, 64 * K), 0);
    assert.deepEqual(vm(sys, p), { data: 0, size: 0, stk: 0 });
    teardown(sys);
  });

  it('MREMAP_DONTUNMAP asks for the whole length again', () => {
    const { sys, p } = setup();
    const a = anon(sys, p, 32 * K, RW);
    assert.equal(sys.setrlimit(p, 'data', { cur: 48 * K, max: Infinity }), 0);
    assert.equal(sys.mremap(p, a, 32 * K, 32 * K, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), -Errno.ENOMEM);
    assert.equal(sys.setrlimit(p, 'data', { cur: 64 * K, max: Infinity }), 0);
    assert.ok(sys.mremap(p, a, 32 * K, 32 * K, MREMAP_MAYMOVE | MREMAP_DONTUNMAP) > 0);
    assert.equal(vm(sys, p).data, 64);
    teardown(sys);
  });
});

describe('RLIMIT_AS', () => {
  it('limits the address space; mprotect() at the limit skips the data check', () => {
    const { sys, p } = setup();
    assert.equal(sys.setrlimit(p, 'data', { cur: 64 * K, max: Infinity }), 0);
    assert.ok(anon(sys, p, 8 * K, RW) > 0);
    assert.equal(sys.setrlimit(p, 'as', { cur: sys.stats(p).total_vm + 64 * K, max: Infinity }), 0);
    const p1 = anon(sys, p, 64 * K, PROT_NONE);
    assert.ok(p1 > 0);
    assert.equal(anon(sys, p, 4 * K, PROT_NONE), -Errno.ENOMEM);
    assert.equal(anon(sys, p, 64 * K, PROT_READ, ANON_PRIVATE | MAP_FIXED, p1), p1);
    // RLIMIT_DATA alone would refuse this (8 + 64 kB > 64 kB), but the old flags fail RLIMIT_AS as
    // well (the space is all in use), and mprotect_fixup() refuses only when they would pass.
    assert.equal(sys.mprotect(p, p1, 64 * K, RW), 0);
    assert.equal(vm(sys, p).data, 72);
    assert.equal(sys.mremap(p, p1, 64 * K, 32 * K, 0), p1);
    // Now the data check applies: 8 + 32 + 4 kB is within 64.
    assert.equal(sys.mremap(p, p1, 32 * K, 36 * K, 0), p1);
    assert.deepEqual(vm(sys, p), { data: 44, size: 44, stk: 0 });
    teardown(sys);
  });
});

describe('setrlimit', () => {
  it('refuses a soft limit above the hard one and a higher hard limit', () => {
    const { sys, p } = setup();
    assert.equal(sys.setrlimit(p, 'data', { cur: 2048 * K, max: 1024 * K }), -Errno.EINVAL);
    assert.equal(sys.setrlimit(p, 'as', { cur: Infinity, max: Infinity }), 0);
    assert.equal(sys.setrlimit(p, 'as', { cur: 4 * K, max: 1000 * K }), 0);
    assert.equal(sys.setrlimit(p, 'as', { cur: Infinity, max: 1000 * K }), -Errno.EINVAL);
    assert.equal(sys.setrlimit(p, 'as', { cur: 1000 * K, max: Infinity }), -Errno.EPERM);
    assert.deepEqual(sys.getrlimit(p, 'as'), { cur: 4 * K, max: 1000 * K });
    assert.deepEqual(sys.getrlimit(p, 'stack'), { cur: 8192 * K, max: Infinity });
    assert.throws(() => sys.setrlimit(p, 'as', { cur: -1, max: Infinity }), TypeError);
    teardown(sys);
  });

  it('a fork child starts with its parent’s limits', () => {
    const { sys, p } = setup();
    assert.equal(sys.setrlimit(p, 'data', { cur: 4 * K, max: 64 * K }), 0);
    assert.equal(sys.setrlimit(p, 'memlock', { cur: 0, max: 0 }), 0);
    const { child } = sys.fork(p, 'child');
    assert.ok(child !== null);
    assert.deepEqual(sys.getrlimit(child, 'data'), { cur: 4 * K, max: 64 * K });
    assert.deepEqual(sys.getrlimit(child, 'memlock'), { cur: 0, max: 0 });
    assert.equal(anon(sys, child, 8 * K, RW), -Errno.ENOMEM);
    teardown(sys);
  });
});

describe('RLIMIT_STACK', () => {
  it('a mapping that grows down grows to the limit, and not past RLIMIT_AS', () => {
    const { sys, p } = setup();
    const base = anon(sys, p, 8192 * K, PROT_NONE);
    assert.equal(sys.munmap(p, base, 8192 * K), 0);
    const g = base + 8192 * K - 16 * K;
    assert.equal(anon(sys, p, 16 * K, RW, ANON_PRIVATE | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, g), g);
    assert.equal(vm(sys, p).stk, 16);
    const one = new Uint8Array([1]);
    assert.equal(sys.setrlimit(p, 'stack', { cur: 32 * K, max: Infinity }), 0);
    assert.equal(sys.write(p, g - 4 * K, one), 1);
    assert.equal(sys.write(p, g - 16 * K, one), 1);
    assert.equal(sys.write(p, g - 20 * K, one), -Errno.EFAULT);
    assert.equal(vm(sys, p).stk, 32);
    assert.equal(sys.setrlimit(p, 'stack', { cur: 8192 * K, max: Infinity }), 0);
    assert.equal(sys.write(p, g - 20 * K, one), 1);
    assert.equal(sys.setrlimit(p, 'as', { cur: sys.stats(p).total_vm, max: Infinity }), 0);
    assert.equal(sys.write(p, g - 24 * K, one), -Errno.EFAULT);
    assert.equal(sys.setrlimit(p, 'as', { cur: sys.stats(p).total_vm + 4 * K, max: Infinity }), 0);
    assert.equal(sys.write(p, g - 24 * K, one), 1);
    assert.equal(sys.write(p, g - 28 * K, one), -Errno.EFAULT);
    assert.deepEqual(vm(sys, p), { data: 0, size: 40, stk: 40 });
    teardown(sys);
  });
});
