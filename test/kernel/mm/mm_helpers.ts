/**
 * Shared helpers for the address-space tests: building systems, filling and checking memory,
 * and snapshots of everything a failed system call must leave alone.
 */
import assert from 'node:assert/strict';
import { System, type SystemConfig, type Process } from '../../../src/kernel/system.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/kernel/mm/mman.ts';
import { assertOracles } from '../../../src/oracles/index.ts';

export const PAGE = 4096;
export const MiB = 1024 * 1024;
export const HPAGE = 2 * MiB;
export const RW = PROT_READ | PROT_WRITE;
export const ANON_PRIVATE = MAP_PRIVATE | MAP_ANONYMOUS;
export const ANON_SHARED = MAP_SHARED | MAP_ANONYMOUS;

/** A small machine (64MiB RAM, 64MiB swap unless overridden) with one process. */
export function setup(config: SystemConfig = {}): { sys: System; p: Process } {
  const sys = new System({ ram: 64 * MiB, swap: 64 * MiB, ...config });
  return { sys, p: sys.createProcess('p') };
}

/** mmap that must succeed; returns the address. */
export function mapOk(
  sys: System,
  p: Process,
  len: number,
  flags = ANON_PRIVATE,
  prot = RW,
  fd = -1,
  off = 0,
): number {
  const a = sys.mmap(p, 0, len, prot, flags, fd, off);
  assert.ok(a > 0, `mmap(${len}, prot ${prot}, flags 0x${flags.toString(16)}) failed: ${a}`);
  return a;
}

/** A recognisable byte pattern: `len` bytes derived from `seed`. */
export function pattern(seed: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 31 + i * 7 + 1) & 0xff || 1;
  return b;
}

export function writeOk(sys: System, p: Process, addr: number, data: Uint8Array): void {
  const r = sys.write(p, addr, data);
  assert.equal(r, data.length, `write of ${data.length} bytes at 0x${addr.toString(16)} returned ${r}`);
}

/** smaps' Referenced of the VMA at `a`, in bytes. */
export function referenced(sys: System, p: Process, a: number): number {
  const r = sys.smaps(p, a, a + 1);
  assert.ok(Array.isArray(r) && r.length === 1);
  return r[0].referenced;
}

export function readOk(sys: System, p: Process, addr: number, len: number): Uint8Array {
  const { ret, data } = sys.read(p, addr, len);
  assert.equal(ret, len, `read of ${len} bytes at 0x${addr.toString(16)} returned ${ret}`);
  return data;
}

/** Writes one distinct tag byte at the start of each page of [addr, addr + npages pages). */
export function tagPages(sys: System, p: Process, addr: number, npages: number, seed: number): void {
  for (let i = 0; i < npages; i++) writeOk(sys, p, addr + i * PAGE, Uint8Array.of((seed + i) & 0xff || 0xaa));
}

/** The tag bytes tagPages wrote, read back. */
export function readTags(sys: System, p: Process, addr: number, npages: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < npages; i++) out.push(readOk(sys, p, addr + i * PAGE, 1)[0]);
  return out;
}

export function expectedTags(npages: number, seed: number): number[] {
  return Array.from({ length: npages }, (_, i) => (seed + i) & 0xff || 0xaa);
}

/** Every page-table entry of a process as a string (PMD leaves included), for before/after comparison. */
export function pageTables(p: Process): string[] {
  const mm = p.mm!;
  const out: string[] = [];
  mm.pgt.walk(
    0,
    mm.taskSize,
    (t, base) => {
      for (let i = 0; i < 512; i++) {
        const lo = t.words[2 * i];
        const hi = t.words[2 * i + 1];
        if (lo !== 0 || hi !== 0) out.push(`pte ${(base + i * PAGE).toString(16)} ${lo.toString(16)}:${hi}`);
      }
    },
    (pmd, i, base) => {
      out.push(`pmd ${base.toString(16)} ${pmd.words[2 * i].toString(16)}:${pmd.words[2 * i + 1]}`);
    },
  );
  return out;
}

/** VMAs of a process as [start, end, flags, pgoff]. */
export function vmas(p: Process): [number, number, number, number][] {
  return [...p.mm!.vmas].map((n) => [n.value.start, n.value.end, n.value.flags, n.value.pgoff]);
}

/** Everything a failed call must leave unchanged. */
export interface Snapshot {
  readonly vmas: [number, number, number, number][];
  readonly rss: number[];
  readonly totalVm: number;
  readonly tables: string[];
  readonly free: number;
  readonly swapUsed: number;
  readonly refcounts: number[];
  readonly mapcounts: number[];
}

export function snapshot(sys: System, p: Process): Snapshot {
  const mm = p.mm!;
  return {
    vmas: vmas(p),
    rss: [...mm.rss],
    totalVm: mm.totalVm,
    tables: pageTables(p),
    free: sys.phys.freeFrames,
    swapUsed: sys.swap.used,
    refcounts: [...sys.phys.refcount],
    mapcounts: [...sys.phys.mapcount],
  };
}

/** Asserts nothing changed since `before` (VMAs, RSS, page tables, frame counts). */
export function assertUnchanged(sys: System, p: Process, before: Snapshot, what: string): void {
  const now = snapshot(sys, p);
  assert.deepEqual(now.vmas, before.vmas, `${what}: VMAs changed`);
  assert.deepEqual(now.rss, before.rss, `${what}: RSS changed`);
  assert.equal(now.totalVm, before.totalVm, `${what}: total_vm changed`);
  assert.deepEqual(now.tables, before.tables, `${what}: page tables changed`);
  assert.equal(now.free, before.free, `${what}: free frames changed`);
  assert.equal(now.swapUsed, before.swapUsed, `${what}: swap use changed`);
  assert.deepEqual(now.refcounts, before.refcounts, `${what}: page refcounts changed`);
  assert.deepEqual(now.mapcounts, before.mapcounts, `${what}: page mapcounts changed`);
}

/** Exits every process, closes every file, and checks every oracle including teardown. */
export function teardown(sys: System): void {
  assertOracles(sys);
  for (const fd of [...sys.files.keys()]) assert.equal(sys.close(fd), 0);
  for (const p of [...sys.processes.values()]) assert.equal(sys.exit(p), 0);
  assertOracles(sys, { teardown: true });
  assert.equal(sys.stats().used, 0, 'frames still in use after teardown');
  assert.equal(sys.swap.used, 0, 'swap still in use after teardown');
}

/** Runs a call that must fail with `errno` and checks it left the process exactly as it was. */
export function failsCleanly(sys: System, p: Process, what: string, errno: number, call: () => number): void {
  const before = snapshot(sys, p);
  assert.equal(call(), -errno, what);
  assertUnchanged(sys, p, before, what);
}
