/**
 * tools/testing/selftests/mm/merge.c ported to the model: the FIXTURE(merge) tests under their own
 * names, asserting each ASSERT_*() they make. FIXTURE_SETUP carves out 30 PROT_NONE pages to map
 * over and FIXTURE_TEARDOWN unmaps them; find_vma_procmap() (the PROCMAP_QUERY ioctl on
 * /proc/self/maps) is the VMA containing the address.
 *
 * forked_target_vma and forked_source_vma assert in the forked child: the port runs the child's
 * part as the child process. handle_uprobe_upon_merged_vma needs uprobes (perf_event_open()) and a
 * file on disk, and ksm_merge needs KSM (PR_SET_MEMORY_MERGE): neither is modelled.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import type { Process, SystemConfig } from '../kernel/system.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, show } from './mm_env.ts';

const pageSize = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_ANONYMOUS | MAP_PRIVATE | MAP_FIXED;

/** FIXTURE(merge): the process and its carveout. */
class MergeEnv extends MmEnv {
  carveout = 0;

  /** carveout[n pages]. */
  at(pages: number): number {
    return this.carveout + pages * pageSize;
  }

  /** mmap() that must not return MAP_FAILED (ASSERT_NE(ptr, MAP_FAILED)). */
  map(addr: number, len: number, prot: number, flags: number, proc: Process = this.p): number {
    const p = this.mmap(addr, len, prot, flags, -1, 0, proc);
    assert.ok(p >= 0, `mmap(${addr.toString(16)}): ${show(p)}`);
    return p;
  }

  /** sys_mremap() / mremap() that must not return MAP_FAILED. */
  move(addr: number, len: number, flags: number, to: number): number {
    const p = this.mremap(addr, len, len, flags, to);
    assert.ok(p >= 0, `mremap(${addr.toString(16)} -> ${to.toString(16)}): ${show(p)}`);
    return p;
  }

  /** A write of one byte: ptr[off] = 'x' faults the page in (and gives the VMA an anon_vma). */
  touch(addr: number, proc: Process = this.p): void {
    this.memcpy(addr, Uint8Array.of(0x78), proc);
  }

  /** ASSERT_TRUE(find_vma_procmap(procmap, addr)) and the VMA's start and end. */
  assertVma(addr: number, start: number, end: number, proc: Process = this.p): void {
    const vma = proc.mm!.findVma(addr);
    assert.ok(vma !== null && vma.start <= addr, `find_vma_procmap(${addr.toString(16)})`);
    assert.equal(vma.start, start, 'procmap->query.vma_start');
    assert.equal(vma.end, end, 'procmap->query.vma_end');
  }
}

/** ptr = mmap(...); ASSERT_EQ(mprotect(...), 0), for the mprotect_* tests. */
function mprotectOk(env: MergeEnv, addr: number, pages: number, prot: number): void {
  assert.equal(env.mprotect(addr, pages * pageSize, prot), 0, `mprotect(${addr.toString(16)})`);
}

const FAR = MREMAP_MAYMOVE | MREMAP_FIXED;

const TESTS: readonly [string, ((env: MergeEnv) => void) | string][] = [
  [
    'mprotect_unfaulted_left',
    (env) => {
      const ptr = env.map(env.at(1), 10 * pageSize, RW, ANON | MAP_NORESERVE);
      mprotectOk(env, ptr, 5, PROT_READ);
      env.touch(ptr + 5 * pageSize);
      mprotectOk(env, ptr + 5 * pageSize, 5, PROT_READ);
      env.assertVma(ptr, ptr, ptr + 10 * pageSize);
    },
  ],
  [
    'mprotect_unfaulted_right',
    (env) => {
      const ptr = env.map(env.at(1), 10 * pageSize, RW, ANON | MAP_NORESERVE);
      mprotectOk(env, ptr + 5 * pageSize, 5, PROT_READ);
      env.touch(ptr);
      mprotectOk(env, ptr, 5, PROT_READ);
      env.assertVma(ptr, ptr, ptr + 10 * pageSize);
    },
  ],
  [
    'mprotect_unfaulted_both',
    (env) => {
      const ptr = env.map(env.at(2), 9 * pageSize, RW, ANON | MAP_NORESERVE);
      mprotectOk(env, ptr, 3, PROT_READ);
      mprotectOk(env, ptr + 6 * pageSize, 3, PROT_READ);
      env.touch(ptr + 3 * pageSize);
      mprotectOk(env, ptr + 3 * pageSize, 3, PROT_READ);
      env.assertVma(ptr, ptr, ptr + 9 * pageSize);
    },
  ],
  [
    'mprotect_faulted_left_unfaulted_right',
    (env) => {
      const ptr = env.map(env.at(2), 9 * pageSize, RW, ANON | MAP_NORESERVE);
      mprotectOk(env, ptr + 6 * pageSize, 3, PROT_READ);
      env.touch(ptr);
      mprotectOk(env, ptr, 3, PROT_READ);
      mprotectOk(env, ptr + 3 * pageSize, 3, PROT_READ);
      env.assertVma(ptr, ptr, ptr + 9 * pageSize);
    },
  ],
  [
    'mprotect_unfaulted_left_faulted_right',
    (env) => {
      const ptr = env.map(env.at(2), 9 * pageSize, RW, ANON | MAP_NORESERVE);
      mprotectOk(env, ptr, 3, PROT_READ);
      env.touch(ptr + 3 * pageSize);
      mprotectOk(env, ptr + 6 * pageSize, 3, PROT_READ);
      mprotectOk(env, ptr + 3 * pageSize, 3, PROT_READ);
      env.assertVma(ptr, ptr, ptr + 9 * pageSize);
    },
  ],
  [
    'forked_target_vma',
    (env) => {
      const ptr = env.map(env.at(1), 5 * pageSize, RW, ANON);
      env.touch(ptr);
      const child = env.fork();
      // The child: unCOWing every page does not make the anon_vma chain go away.
      for (let i = 0; i < 5; i++) env.touch(ptr + i * pageSize, child);
      env.map(ptr + 5 * pageSize, 5 * pageSize, RW, ANON, child);
      // Not merged.
      env.assertVma(ptr, ptr, ptr + 5 * pageSize, child);
      env.exit(child);
    },
  ],
  [
    'forked_source_vma',
    (env) => {
      const ptr = env.map(env.at(1), 5 * pageSize, RW, ANON | MAP_NORESERVE);
      env.touch(ptr);
      const child = env.fork();
      for (let i = 0; i < 5; i++) env.touch(ptr + i * pageSize, child);
      const ptr2 = env.map(env.at(6), 5 * pageSize, RW | PROT_EXEC, ANON | MAP_NORESERVE, child);
      env.assertVma(ptr2, ptr2, ptr2 + 5 * pageSize, child);
      // The forked VMA made RWX is the source of a merge with the unfaulted one: not merged.
      assert.equal(env.mprotect(ptr, 5 * pageSize, RW | PROT_EXEC, child), 0, 'mprotect()');
      env.assertVma(ptr2, ptr2, ptr2 + 5 * pageSize, child);
      env.exit(child);
    },
  ],
  ['handle_uprobe_upon_merged_vma', 'uprobes (perf_event_open()) on a file on disk are not modelled'],
  ['ksm_merge', 'KSM (prctl(PR_SET_MEMORY_MERGE)) is not modelled'],
  [
    'mremap_unfaulted_to_faulted',
    (env) => {
      const ptr = env.map(env.at(1), 5 * pageSize, RW, ANON);
      let ptr2 = env.map(env.at(7), 5 * pageSize, RW, ANON);
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, ptr2 + pageSize * 1000);
      env.touch(ptr);
      env.move(ptr2, 5 * pageSize, FAR, ptr + 5 * pageSize);
      env.assertVma(ptr, ptr, ptr + 10 * pageSize);
    },
  ],
  [
    'mremap_unfaulted_behind_faulted',
    (env) => {
      const ptr = env.map(env.at(6), 5 * pageSize, RW, ANON);
      let ptr2 = env.map(env.at(14), 5 * pageSize, RW, ANON);
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, ptr2 + pageSize * 1000);
      env.touch(ptr);
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, env.at(1));
      env.assertVma(ptr2, ptr2, ptr2 + 10 * pageSize);
    },
  ],
  [
    'mremap_unfaulted_between_faulted',
    (env) => {
      const ptr = env.map(env.at(1), 5 * pageSize, RW, ANON);
      let ptr2 = env.map(env.at(7), 5 * pageSize, RW, ANON);
      let ptr3 = env.map(env.at(14), 5 * pageSize, RW, ANON);
      ptr3 = env.move(ptr3, 5 * pageSize, FAR, ptr3 + pageSize * 2000);
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, ptr2 + pageSize * 1000);
      env.touch(ptr);
      env.touch(ptr3);
      ptr3 = env.move(ptr3, 5 * pageSize, FAR, ptr + 10 * pageSize);
      env.move(ptr2, 5 * pageSize, FAR, ptr + 5 * pageSize);
      // Merged, but only ptr and ptr2.
      env.assertVma(ptr, ptr, ptr + 10 * pageSize);
      env.assertVma(ptr3, ptr3, ptr3 + 5 * pageSize);
    },
  ],
  [
    'mremap_unfaulted_between_faulted_unfaulted',
    (env) => {
      const ptr = env.map(env.at(1), 5 * pageSize, RW, ANON);
      let ptr2 = env.map(env.at(7), 5 * pageSize, RW, ANON);
      let ptr3 = env.map(env.at(14), 5 * pageSize, RW, ANON);
      ptr3 = env.move(ptr3, 5 * pageSize, FAR, ptr3 + pageSize * 2000);
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, ptr2 + pageSize * 1000);
      env.touch(ptr);
      env.move(ptr3, 5 * pageSize, FAR, ptr + 10 * pageSize);
      env.move(ptr2, 5 * pageSize, FAR, ptr + 5 * pageSize);
      env.assertVma(ptr, ptr, ptr + 15 * pageSize);
    },
  ],
  [
    'mremap_unfaulted_between_correctly_placed_faulted',
    (env) => {
      const ptr = env.map(env.at(1), 15 * pageSize, RW, ANON);
      env.touch(ptr);
      assert.equal(env.munmap(ptr + 5 * pageSize, 5 * pageSize), 0, 'munmap()');
      const ptr2 = env.map(env.at(20), 5 * pageSize, RW, ANON);
      env.move(ptr2, 5 * pageSize, FAR, ptr + 5 * pageSize);
      env.assertVma(ptr, ptr, ptr + 15 * pageSize);
    },
  ],
  [
    'mremap_correct_placed_faulted',
    (env) => {
      let ptr = env.map(env.at(1), 15 * pageSize, RW, ANON);
      env.touch(ptr);
      let ptr3 = ptr + 10 * pageSize;
      ptr3 = env.move(ptr3, 5 * pageSize, FAR, ptr3 + pageSize * 2000);
      let ptr2 = ptr + 5 * pageSize;
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, ptr2 + pageSize * 1000);
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, ptr + 5 * pageSize);
      env.assertVma(ptr, ptr, ptr + 10 * pageSize);
      ptr = env.move(ptr, 5 * pageSize, FAR, ptr + pageSize * 1000);
      ptr = env.move(ptr, 5 * pageSize, FAR, env.at(1));
      env.assertVma(ptr, ptr, ptr + 10 * pageSize);
      ptr = env.move(ptr, 5 * pageSize, FAR, ptr + pageSize * 1000);
      ptr3 = env.move(ptr3, 5 * pageSize, FAR, ptr2 + 5 * pageSize);
      env.assertVma(ptr2, ptr2, ptr2 + 10 * pageSize);
      ptr = env.move(ptr, 5 * pageSize, FAR, env.at(1));
      env.assertVma(ptr, ptr, ptr + 15 * pageSize);
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, ptr2 + pageSize * 1000);
      ptr2 = env.move(ptr2, 5 * pageSize, FAR, ptr + 5 * pageSize);
      env.assertVma(ptr, ptr, ptr + 15 * pageSize);
      ptr3 = env.move(ptr3, 5 * pageSize, FAR, ptr3 + pageSize * 1000);
      env.move(ptr3, 5 * pageSize, FAR, ptr + 10 * pageSize);
      env.assertVma(ptr, ptr, ptr + 15 * pageSize);
    },
  ],
  [
    'mremap_faulted_to_unfaulted_prev',
    (env) => {
      let ptrA = env.map(env.at(1 + 3), 3 * pageSize, RW, ANON);
      env.touch(ptrA);
      ptrA = env.move(ptrA, 3 * pageSize, FAR, env.at(20));
      const ptrB = env.map(env.at(1), 3 * pageSize, RW, ANON);
      env.move(ptrA, 3 * pageSize, FAR | MREMAP_DONTUNMAP, env.at(1 + 3));
      env.assertVma(ptrB, ptrB, ptrB + 6 * pageSize);
    },
  ],
  [
    'mremap_faulted_to_unfaulted_next',
    (env) => {
      let ptrA = env.map(env.at(1), 3 * pageSize, RW, ANON);
      env.touch(ptrA);
      ptrA = env.move(ptrA, 3 * pageSize, FAR, env.at(20));
      env.map(env.at(1 + 3), 3 * pageSize, RW, ANON);
      ptrA = env.move(ptrA, 3 * pageSize, FAR | MREMAP_DONTUNMAP, env.at(1));
      env.assertVma(ptrA, ptrA, ptrA + 6 * pageSize);
    },
  ],
  [
    'mremap_faulted_to_unfaulted_prev_unfaulted_next',
    (env) => {
      let ptrB = env.map(env.at(1 + 3), 3 * pageSize, RW, ANON);
      env.touch(ptrB);
      ptrB = env.move(ptrB, 3 * pageSize, FAR, env.at(20));
      const ptrA = env.map(env.at(1), 3 * pageSize, RW, ANON);
      env.map(env.at(1 + 3 + 3), 3 * pageSize, RW, ANON);
      env.move(ptrB, 3 * pageSize, FAR | MREMAP_DONTUNMAP, env.at(1 + 3));
      env.assertVma(ptrA, ptrA, ptrA + 9 * pageSize);
    },
  ],
  [
    'mremap_faulted_to_unfaulted_prev_faulted_next',
    (env) => {
      const ptrBc = env.map(env.at(1 + 3), 6 * pageSize, RW, ANON);
      env.touch(ptrBc);
      const ptrB = env.move(ptrBc, 3 * pageSize, FAR, env.at(20));
      const ptrA = env.map(env.at(1), 3 * pageSize, RW, ANON);
      env.move(ptrB, 3 * pageSize, FAR | MREMAP_DONTUNMAP, env.at(1 + 3));
      env.assertVma(ptrA, ptrA, ptrA + 9 * pageSize);
    },
  ],
];

/** merge.c's tests in the order they are defined. */
export function mergeCases(config: SystemConfig = {}): ConformanceCase[] {
  return TESTS.map(([name, body]): ConformanceCase => {
    if (typeof body === 'string')
      return { suite: 'mm', name: `merge.${name}`, variant: '', notModelled: body };
    return {
      suite: 'mm',
      name: `merge.${name}`,
      variant: '',
      run: () => {
        const env = new MergeEnv(config);
        // FIXTURE_SETUP: a PROT_NONE region to map over.
        env.carveout = env.map(0, 30 * pageSize, PROT_NONE, MAP_ANONYMOUS | MAP_PRIVATE);
        body(env);
        // FIXTURE_TEARDOWN.
        assert.equal(env.munmap(env.carveout, 30 * pageSize), 0, 'munmap(carveout)');
        env.teardown();
      },
    };
  });
}
