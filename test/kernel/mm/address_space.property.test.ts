/**
 * Property test: random sequences of mmap / munmap / mprotect / madvise / write / read / fork / exit
 * over several processes, checked against a reference model that knows what every byte must be
 * (private memory copied at fork, shared memory one object), with every oracle after every step.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Errno } from '../../../src/kernel/errno.ts';
import { MADV, MAP_FIXED, PROT_NONE, PROT_READ, PROT_WRITE } from '../../../src/kernel/mm/mman.ts';
import { System, type Process } from '../../../src/kernel/system.ts';
import { assertOracles } from '../../../src/oracles/index.ts';
import { ANON_PRIVATE, ANON_SHARED, MiB, PAGE } from './mm_helpers.ts';

const BASE = 0x1_0000_0000;
const SLOTS = 16;

/** One shared-memory object: bytes by offset in the object. */
type SharedObj = Map<number, number>;

interface Region {
  start: number;
  end: number;
  prot: number;
  shared: SharedObj | null;
  /** Offset of `start` in the shared object, in bytes. */
  objOff: number;
}

interface RefProc {
  proc: Process;
  regions: Region[];
  /** Private bytes by address (absent means zero). */
  priv: Map<number, number>;
}

type Op =
  | { t: 'mmap'; pi: number; k: number; n: number; prot: number; shared: boolean }
  | { t: 'munmap'; pi: number; k: number; n: number }
  | { t: 'mprotect'; pi: number; k: number; n: number; prot: number }
  | { t: 'madvise'; pi: number; k: number; n: number; advice: number }
  | { t: 'write'; pi: number; k: number; off: number; val: number }
  | { t: 'read'; pi: number; k: number; off: number }
  | { t: 'fork'; pi: number }
  | { t: 'exit'; pi: number }
  | { t: 'reclaim'; pi: number; n: number };

const prot = fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE);
const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const len = fc.integer({ min: 1, max: 6 });
const pi = fc.integer({ min: 0, max: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('mmap' as const), pi, k: slot, n: len, prot, shared: fc.boolean() }),
  fc.record({ t: fc.constant('munmap' as const), pi, k: slot, n: len }),
  fc.record({ t: fc.constant('mprotect' as const), pi, k: slot, n: len, prot }),
  fc.record({
    t: fc.constant('madvise' as const),
    pi,
    k: slot,
    n: len,
    advice: fc.constantFrom(MADV.DONTNEED, MADV.PAGEOUT, MADV.COLD, MADV.WILLNEED),
  }),
  fc.record({
    t: fc.constant('write' as const),
    pi,
    k: slot,
    off: fc.integer({ min: 0, max: PAGE - 1 }),
    val: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    t: fc.constant('write' as const),
    pi,
    k: slot,
    off: fc.constantFrom(0, 1),
    val: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ t: fc.constant('read' as const), pi, k: slot, off: fc.constantFrom(0, 1, PAGE - 1) }),
  fc.record({ t: fc.constant('fork' as const), pi }),
  fc.record({ t: fc.constant('exit' as const), pi }),
  fc.record({ t: fc.constant('reclaim' as const), pi, n: fc.integer({ min: 1, max: 64 }) }),
);

function regionAt(rp: RefProc, addr: number): Region | null {
  return rp.regions.find((r) => r.start <= addr && addr < r.end) ?? null;
}

/** Cuts [start, end) out of the reference regions; drops private bytes there. */
function refUnmap(rp: RefProc, start: number, end: number): void {
  const out: Region[] = [];
  for (const r of rp.regions) {
    if (r.end <= start || r.start >= end) {
      out.push(r);
      continue;
    }
    if (r.start < start) out.push({ ...r, end: start });
    if (r.end > end) out.push({ ...r, start: end, objOff: r.objOff + (end - r.start) });
  }
  rp.regions = out.sort((a, b) => a.start - b.start);
  for (const a of [...rp.priv.keys()]) if (a >= start && a < end) rp.priv.delete(a);
}

function covered(rp: RefProc, start: number, end: number): boolean {
  for (let a = start; a < end; a += PAGE) if (regionAt(rp, a) === null) return false;
  return true;
}

function expectByte(rp: RefProc, addr: number): number {
  const r = regionAt(rp, addr)!;
  if (r.shared !== null) return r.shared.get(r.objOff + (addr - r.start)) ?? 0;
  return rp.priv.get(addr) ?? 0;
}

function run(ops: Op[]): void {
  const sys = new System({ ram: 16 * MiB, swap: 16 * MiB });
  const procs: RefProc[] = [{ proc: sys.createProcess('p0'), regions: [], priv: new Map() }];
  let forks = 0;
  for (const o of ops) {
    if (procs.length === 0) break;
    const rp = procs[o.pi % procs.length];
    const p = rp.proc;
    const what = JSON.stringify(o);
    switch (o.t) {
      case 'mmap': {
        const start = BASE + o.k * PAGE;
        const end = start + o.n * PAGE;
        const r = sys.mmap(
          p,
          start,
          end - start,
          o.prot,
          (o.shared ? ANON_SHARED : ANON_PRIVATE) | MAP_FIXED,
        );
        assert.equal(r, start, what);
        refUnmap(rp, start, end);
        rp.regions.push({ start, end, prot: o.prot, shared: o.shared ? new Map() : null, objOff: 0 });
        rp.regions.sort((a, b) => a.start - b.start);
        break;
      }
      case 'munmap': {
        const start = BASE + o.k * PAGE;
        assert.equal(sys.munmap(p, start, o.n * PAGE), 0, what);
        refUnmap(rp, start, start + o.n * PAGE);
        break;
      }
      case 'mprotect': {
        const start = BASE + o.k * PAGE;
        const end = start + o.n * PAGE;
        // do_mprotect_pkey() changes the mapped prefix and stops at the first hole with ENOMEM.
        let stop = start;
        while (stop < end && regionAt(rp, stop) !== null) stop += PAGE;
        const ok = stop === end;
        assert.equal(sys.mprotect(p, start, end - start, o.prot), ok ? 0 : -Errno.ENOMEM, what);
        if (stop === start) break;
        const out: Region[] = [];
        for (const r of rp.regions) {
          if (r.end <= start || r.start >= stop) {
            out.push(r);
            continue;
          }
          if (r.start < start) out.push({ ...r, end: start });
          const s = Math.max(r.start, start);
          const e = Math.min(r.end, stop);
          out.push({ ...r, start: s, end: e, prot: o.prot, objOff: r.objOff + (s - r.start) });
          if (r.end > stop) out.push({ ...r, start: stop, objOff: r.objOff + (stop - r.start) });
        }
        rp.regions = out.sort((a, b) => a.start - b.start);
        break;
      }
      case 'madvise': {
        const start = BASE + o.k * PAGE;
        const end = start + o.n * PAGE;
        const any = rp.regions.some((r) => r.start < end && r.end > start);
        const ret = sys.madvise(p, start, end - start, o.advice);
        assert.equal(ret, covered(rp, start, end) ? 0 : -Errno.ENOMEM, what);
        if (any && o.advice === MADV.DONTNEED) {
          // Private memory is dropped (reads as zeros again); shared memory keeps its data.
          for (const a of [...rp.priv.keys()]) if (a >= start && a < end) rp.priv.delete(a);
        }
        break;
      }
      case 'write': {
        const addr = BASE + o.k * PAGE + o.off;
        const r = regionAt(rp, addr);
        const ok = r !== null && (r.prot & PROT_WRITE) !== 0;
        assert.equal(sys.write(p, addr, Uint8Array.of(o.val)), ok ? 1 : -Errno.EFAULT, what);
        if (!ok) break;
        if (r.shared !== null) r.shared.set(r.objOff + (addr - r.start), o.val);
        else rp.priv.set(addr, o.val);
        break;
      }
      case 'read': {
        const addr = BASE + o.k * PAGE + o.off;
        const r = regionAt(rp, addr);
        const ok = r !== null && r.prot !== PROT_NONE;
        const got = sys.read(p, addr, 1);
        assert.equal(got.ret, ok ? 1 : -Errno.EFAULT, what);
        if (ok) assert.equal(got.data[0], expectByte(rp, addr), `${what}: byte`);
        break;
      }
      case 'fork': {
        if (procs.length >= 4) break;
        const { ret, child } = sys.fork(p, `c${++forks}`);
        assert.ok(ret > 0 && child !== null, what);
        procs.push({ proc: child, regions: rp.regions.map((r) => ({ ...r })), priv: new Map(rp.priv) });
        break;
      }
      case 'reclaim':
        // Memory pressure: pages go to swap (or are dropped when clean and shared-file-backed).
        assert.ok(sys.reclaim(o.n) >= 0, what);
        break;
      case 'exit': {
        assert.equal(sys.exit(p), 0, what);
        procs.splice(procs.indexOf(rp), 1);
        break;
      }
    }
    assertOracles(sys);
  }
  // Every byte the reference knows about reads back the same in every live process.
  for (const rp of procs) {
    for (const r of rp.regions) {
      if (r.prot === PROT_NONE) continue;
      const { ret, data } = sys.read(rp.proc, r.start, r.end - r.start);
      assert.equal(ret, r.end - r.start);
      for (let a = r.start; a < r.end; a++) {
        if (data[a - r.start] !== expectByte(rp, a))
          assert.fail(`final check ${rp.proc.name} @${(a - BASE).toString(16)}`);
      }
    }
  }
  for (const rp of procs) assert.equal(sys.exit(rp.proc), 0);
  assertOracles(sys, { teardown: true });
  assert.equal(sys.stats().used, 0);
  assert.equal(sys.swap.used, 0);
}

describe('address space against a byte-level reference model', () => {
  it('random mmap/munmap/mprotect/madvise/write/read/fork/exit sequences keep every byte and every count right', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 50 }), (ops) => {
        run(ops);
      }),
      { numRuns: 120, seed: 20240611 },
    );
  });

  it('the same under memory pressure: reclaim between steps swaps pages out and back', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), (ops) => {
        const withReclaim: Op[] = [];
        for (const o of ops) {
          withReclaim.push(o);
          withReclaim.push({ t: 'madvise', pi: o.pi, k: 0, n: 6, advice: MADV.PAGEOUT });
        }
        run(withReclaim);
      }),
      { numRuns: 60, seed: 7 },
    );
  });
});
