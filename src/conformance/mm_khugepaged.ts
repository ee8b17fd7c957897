/**
 * tools/testing/selftests/mm/khugepaged.c ported to the model: its tests in the madvise context on
 * anonymous memory (`./khugepaged madvise:anon`), each under its own name with the context and
 * memory as the variant ("madvise:anon", as the C test prints them), asserting every check the C
 * function makes (success()/fail(), and validate_memory(), whose failure ends the C program).
 *
 * The settings are main()'s default_settings: THP "madvise" (its use_zero_page = 0 has no knob in
 * the model and no effect here: no test reads memory it has not written), and
 * __madvise_collapse() sets THP to "never" around each MADV_COLLAPSE, so the collapse alone makes
 * the huge pages. check_huge_anon() reads AnonHugePages of the VMA that starts at the
 * address in /proc/self/smaps: the port counts the PMD-mapped anonymous THPs of that VMA, and
 * check_swap() its swapped-out pages, from the page tables.
 *
 * The khugepaged context (the daemon, its scan limits max_ptes_none, max_ptes_swap and
 * max_ptes_shared) is not modelled, nor is MADV_COLLAPSE of file or shmem memory: those runs are
 * listed as not modelled. `madvise_retracted_page_tables` runs only on file and shmem memory.
 */
import assert from 'node:assert/strict';
import { PAGE_SIZE } from '../lib/units.ts';
import { Errno } from '../kernel/errno.ts';
import {
  MADV,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../kernel/mm/mman.ts';
import { pmdPresentHuge, pmdTableOf } from '../kernel/mm/pte.ts';
import type { Process, SystemConfig } from '../kernel/system.ts';
import { indexAt } from '../lib/pgtable_store.ts';
import type { ConformanceCase } from './types.ts';
import { MmEnv, PMD_SIZE } from './mm_env.ts';

const pageSize = PAGE_SIZE;
const hpagePmdSize = PMD_SIZE;
const hpagePmdNr = hpagePmdSize / pageSize;
/** BASE_ADDR: every mapping of the test is asked for at 1 GiB. */
const BASE_ADDR = 2 ** 30;

type ThpMode = 'always' | 'madvise' | 'never';

/** The runs of one test of the C file, with the collapse of its context. */
type TestFn = (env: KhugepagedEnv) => void;

/** The selftest's process, its THP settings and its helpers. */
class KhugepagedEnv extends MmEnv {
  /** thp_push_settings() / thp_pop_settings() of the "enabled" mode. */
  withThp<T>(mode: ThpMode, fn: () => T): T {
    const config = this.sys.config as { thp: ThpMode };
    const saved = config.thp;
    config.thp = mode;
    try {
      return fn();
    } finally {
      config.thp = saved;
    }
  }

  /** alloc_mapping(): nr huge pages of private anonymous memory at BASE_ADDR, or the test ends. */
  allocMapping(nr: number): number {
    const p = this.mmap(BASE_ADDR, nr * hpagePmdSize, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE);
    assert.equal(p, BASE_ADDR, `Failed to allocate VMA at ${BASE_ADDR.toString(16)}`);
    return p;
  }

  /** fill_memory(): the first int of each page is its index + 0xdead0000. */
  fillMemory(p: number, start: number, end: number, proc: Process = this.p): void {
    for (let i = start / pageSize; i < end / pageSize; i++) this.memcpy(p + i * pageSize, marker(i), proc);
  }

  /** validate_memory(): a page whose first int is not its marker ends the C program. */
  validateMemory(p: number, start: number, end: number, proc: Process = this.p): void {
    for (let i = start / pageSize; i < end / pageSize; i++) {
      const got = this.load(p + i * pageSize, 4, proc);
      const v = new DataView(got.buffer, got.byteOffset, 4).getUint32(0, true);
      if (v !== i + 0xdead0000) assert.fail(`Page ${i} is corrupted: 0x${v.toString(16)}`);
    }
  }

  /** The VMA that starts at `addr` (an smaps entry found by its "%08lx-" line), or null. */
  private vmaAt(addr: number, proc: Process): { start: number; end: number } | null {
    const vma = proc.mm!.findVma(addr);
    return vma === null || vma.start !== addr ? null : vma;
  }

  /**
   * check_huge_anon(addr, nr_hpages, hpage_pmd_size): AnonHugePages of the VMA is nr huge pages,
   * that is nr PMD mappings of anonymous THPs (not the huge zero page; a THP mapped by PTEs does
   * not count).
   */
  checkHuge(addr: number, nrHpages: number, proc: Process = this.p): boolean {
    const vma = this.vmaAt(addr, proc);
    if (vma === null) return false;
    const mm = proc.mm!;
    let huge = 0;
    for (let a = vma.start - (vma.start % hpagePmdSize); a < vma.end; a += hpagePmdSize) {
      if (a < vma.start || a + hpagePmdSize > vma.end) continue;
      const pmd = pmdTableOf(mm, a);
      const i = indexAt(a, 1);
      if (pmd === null || pmd.children[i] !== null || !pmdPresentHuge(pmd.words[2 * i])) continue;
      if (!this.sys.phys.isZeroPfn(pmd.words[2 * i + 1])) huge++;
    }
    return huge === nrHpages;
  }

  /** check_swap(addr, size): the Swap: line of the VMA at addr says size. */
  checkSwap(addr: number, size: number, proc: Process = this.p): boolean {
    const vma = this.vmaAt(addr, proc);
    if (vma === null) return false;
    let swapped = 0;
    for (let a = vma.start; a < vma.end; a += pageSize) if (this.pagemap(a, proc).kind === 'swap') swapped++;
    return swapped * pageSize === size;
  }

  /**
   * madvise_collapse_retry(): MADV_COLLAPSE, and once more if it fails with EAGAIN (a resource
   * busy for a moment).
   */
  madviseCollapseRetry(p: number, size: number, proc: Process = this.p): number {
    const ret = this.madvise(p, size, MADV.COLLAPSE, proc);
    return ret === -Errno.EAGAIN ? this.madvise(p, size, MADV.COLLAPSE, proc) : ret;
  }

  /** alloc_hpage(): a PMD-mapped THP made by MADV_COLLAPSE, filled, in a VM_HUGEPAGE VMA. */
  allocHpage(): number {
    const p = this.allocMapping(1);
    this.fillMemory(p, 0, hpagePmdSize);
    // "Allocate huge page...": the C test exits on failure.
    assert.equal(this.madviseCollapseRetry(p, hpagePmdSize), 0, 'madvise(MADV_COLLAPSE)');
    assert.ok(this.checkHuge(p, 1), 'madvise(MADV_COLLAPSE): check_huge');
    assert.equal(this.madvise(p, hpagePmdSize, MADV.HUGEPAGE), 0, 'madvise(MADV_HUGEPAGE)');
    return p;
  }

  /** __madvise_collapse(): THP "never", MADV_HUGEPAGE, MADV_COLLAPSE; `expect` says whether it succeeds. */
  madviseCollapseNoCheck(
    msg: string,
    p: number,
    nrHpages: number,
    expect: boolean,
    proc: Process = this.p,
  ): void {
    this.withThp('never', () => {
      this.madvise(p, nrHpages * hpagePmdSize, MADV.HUGEPAGE, proc);
      const ret = this.madviseCollapseRetry(p, nrHpages * hpagePmdSize, proc);
      assert.ok((ret !== 0) !== expect, `${msg}: Fail: Bad return value (${ret})`);
      assert.ok(this.checkHuge(p, expect ? nrHpages : 0, proc), `${msg}: Fail: check_huge()`);
    });
  }

  /** madvise_collapse(), the madvise context's collapse: no huge page before it. */
  collapse(msg: string, p: number, nrHpages: number, expect: boolean, proc: Process = this.p): void {
    assert.ok(this.checkHuge(p, 0, proc), 'Unexpected huge page');
    this.madviseCollapseNoCheck(msg, p, nrHpages, expect, proc);
  }

  /** anon_cleanup_area(). */
  cleanupArea(p: number, size: number, proc: Process = this.p): void {
    this.munmap(p, size, proc);
  }
}

function marker(i: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, (i + 0xdead0000) >>> 0, true);
  return b;
}

/** success()/fail(): a fail() counts against the run (exit_status), so the case fails. */
function check(ok: boolean, msg: string): void {
  if (!ok) assert.fail(`${msg}: Fail`);
}

/** alloc_at_fault(), which main() runs before the tests. */
function allocAtFault(env: KhugepagedEnv): void {
  const p = env.withThp('always', () => {
    const p = env.allocMapping(1);
    env.memcpy(p, Uint8Array.of(1));
    check(env.checkHuge(p, 1), 'Allocate huge page on fault');
    return p;
  });
  env.madvise(p, pageSize, MADV.DONTNEED);
  check(env.checkHuge(p, 0), 'Split huge PMD on MADV_DONTNEED');
  env.munmap(p, hpagePmdSize);
}

const TESTS: [string, TestFn][] = [
  [
    'collapse_full',
    (env) => {
      const nrHpages = 4;
      const size = nrHpages * hpagePmdSize;
      const p = env.allocMapping(nrHpages);
      env.fillMemory(p, 0, size);
      env.collapse('Collapse multiple fully populated PTE table', p, nrHpages, true);
      env.validateMemory(p, 0, size);
      env.cleanupArea(p, size);
    },
  ],
  [
    'collapse_empty',
    (env) => {
      const p = env.allocMapping(1);
      env.collapse('Do not collapse empty PTE table', p, 1, false);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_single_pte_entry',
    (env) => {
      const p = env.allocMapping(1);
      env.fillMemory(p, 0, pageSize);
      env.collapse('Collapse PTE table with single PTE entry present', p, 1, true);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_max_ptes_none',
    (env) => {
      // max_ptes_none is set to half a table; MADV_COLLAPSE does not enforce it.
      const maxPtesNone = hpagePmdNr / 2;
      const p = env.allocMapping(1);
      env.fillMemory(p, 0, (hpagePmdNr - maxPtesNone - 1) * pageSize);
      env.collapse('Maybe collapse with max_ptes_none exceeded', p, 1, true);
      env.validateMemory(p, 0, (hpagePmdNr - maxPtesNone - 1) * pageSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_single_pte_entry_compound',
    (env) => {
      const p = env.allocHpage();
      env.madvise(p, hpagePmdSize, MADV.NOHUGEPAGE);
      env.madvise(p + pageSize, hpagePmdSize - pageSize, MADV.DONTNEED);
      check(env.checkHuge(p, 0), 'Split huge page leaving single PTE mapping compound page');
      env.collapse('Collapse PTE table with single PTE mapping compound page', p, 1, true);
      env.validateMemory(p, 0, pageSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_full_of_compound',
    (env) => {
      const p = env.allocHpage();
      env.madvise(p, pageSize, MADV.NOHUGEPAGE);
      env.madvise(p, hpagePmdSize, MADV.NOHUGEPAGE);
      check(env.checkHuge(p, 0), 'Split huge page leaving single PTE page table full of compound pages');
      env.collapse('Collapse PTE table full of compound pages', p, 1, true);
      env.validateMemory(p, 0, hpagePmdSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_compound_extreme',
    (env) => {
      let p = env.allocMapping(1);
      for (let i = 0; i < hpagePmdNr; i++) {
        env.madvise(BASE_ADDR, hpagePmdSize, MADV.HUGEPAGE);
        env.fillMemory(BASE_ADDR, 0, hpagePmdSize);
        assert.ok(env.checkHuge(BASE_ADDR, 1), 'Failed to allocate huge page');
        env.madvise(BASE_ADDR, hpagePmdSize, MADV.NOHUGEPAGE);
        p = env.mremap(
          BASE_ADDR - i * pageSize,
          i * pageSize + hpagePmdSize,
          (i + 1) * pageSize,
          MREMAP_MAYMOVE | MREMAP_FIXED,
          BASE_ADDR + 2 * hpagePmdSize,
        );
        assert.ok(p >= 0, `mremap+unmap: ${p}`);
        p = env.mremap(
          BASE_ADDR + 2 * hpagePmdSize,
          (i + 1) * pageSize,
          (i + 1) * pageSize + hpagePmdSize,
          MREMAP_MAYMOVE | MREMAP_FIXED,
          BASE_ADDR - (i + 1) * pageSize,
        );
        assert.ok(p >= 0, `mremap+alloc: ${p}`);
      }
      env.cleanupArea(BASE_ADDR, hpagePmdSize);
      env.fillMemory(p, 0, hpagePmdSize);
      check(!env.checkHuge(p, 1), 'Construct PTE page table full of different PTE-mapped compound pages');
      env.collapse('Collapse PTE table full of different compound pages', p, 1, true);
      env.validateMemory(p, 0, hpagePmdSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_swapin_single_pte',
    (env) => {
      const p = env.allocMapping(1);
      env.fillMemory(p, 0, hpagePmdSize);
      assert.equal(env.madvise(p, pageSize, MADV.PAGEOUT), 0, 'madvise(MADV_PAGEOUT)');
      check(env.checkSwap(p, pageSize), 'Swapout one page');
      env.collapse('Collapse with swapping in single PTE entry', p, 1, true);
      env.validateMemory(p, 0, hpagePmdSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_max_ptes_swap',
    (env) => {
      // khugepaged/max_ptes_swap as main() sets it; MADV_COLLAPSE does not enforce it.
      const maxPtesSwap = hpagePmdNr / 8;
      const p = env.allocMapping(1);
      env.fillMemory(p, 0, hpagePmdSize);
      assert.equal(env.madvise(p, (maxPtesSwap + 1) * pageSize, MADV.PAGEOUT), 0, 'madvise(MADV_PAGEOUT)');
      check(
        env.checkSwap(p, (maxPtesSwap + 1) * pageSize),
        `Swapout ${maxPtesSwap + 1} of ${hpagePmdNr} pages`,
      );
      env.collapse('Maybe collapse with max_ptes_swap exceeded', p, 1, true);
      env.validateMemory(p, 0, hpagePmdSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_fork',
    (env) => {
      const p = env.allocMapping(1);
      env.fillMemory(p, 0, pageSize);
      check(env.checkHuge(p, 0), 'Allocate small page');
      const child = env.fork();
      check(env.checkHuge(p, 0, child), 'Share small page over fork()');
      env.fillMemory(p, pageSize, 2 * pageSize, child);
      env.collapse('Collapse PTE table with single page shared with parent process', p, 1, true, child);
      env.validateMemory(p, 0, pageSize, child);
      env.cleanupArea(p, hpagePmdSize, child);
      env.exit(child);
      check(env.checkHuge(p, 0), 'Check if parent still has small page');
      env.validateMemory(p, 0, pageSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_fork_compound',
    (env) => {
      const p = env.allocHpage();
      const child = env.fork();
      check(env.checkHuge(p, 1, child), 'Share huge page over fork()');
      env.madvise(p, pageSize, MADV.NOHUGEPAGE, child);
      env.madvise(p, hpagePmdSize, MADV.NOHUGEPAGE, child);
      check(env.checkHuge(p, 0, child), 'Split huge page PMD in child process');
      env.fillMemory(p, 0, pageSize, child);
      env.collapse('Collapse PTE table full of compound pages in child', p, 1, true, child);
      env.validateMemory(p, 0, hpagePmdSize, child);
      env.cleanupArea(p, hpagePmdSize, child);
      env.exit(child);
      check(env.checkHuge(p, 1), 'Check if parent still has huge page');
      env.validateMemory(p, 0, hpagePmdSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'collapse_max_ptes_shared',
    (env) => {
      // khugepaged/max_ptes_shared as main() sets it; MADV_COLLAPSE does not enforce it.
      const maxPtesShared = hpagePmdNr / 2;
      const p = env.allocHpage();
      const child = env.fork();
      check(env.checkHuge(p, 1, child), 'Share huge page over fork()');
      env.fillMemory(p, 0, (hpagePmdNr - maxPtesShared - 1) * pageSize, child);
      check(
        env.checkHuge(p, 0, child),
        `Trigger CoW on page ${hpagePmdNr - maxPtesShared - 1} of ${hpagePmdNr}`,
      );
      env.collapse('Maybe collapse with max_ptes_shared exceeded', p, 1, true, child);
      env.validateMemory(p, 0, hpagePmdSize, child);
      env.cleanupArea(p, hpagePmdSize, child);
      env.exit(child);
      check(env.checkHuge(p, 1), 'Check if parent still has huge page');
      env.validateMemory(p, 0, hpagePmdSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
  [
    'madvise_collapse_existing_thps',
    (env) => {
      const p = env.allocMapping(1);
      env.fillMemory(p, 0, hpagePmdSize);
      env.collapse('Collapse fully populated PTE table...', p, 1, true);
      env.validateMemory(p, 0, hpagePmdSize);
      // The context's collapse would find the huge page and complain: called directly.
      env.madviseCollapseNoCheck('Re-collapse PMD-mapped hugepage', p, 1, true);
      env.validateMemory(p, 0, hpagePmdSize);
      env.cleanupArea(p, hpagePmdSize);
    },
  ],
];

/** The TEST() lines of main() the port does not run, as [test, context, memory], and why. */
const NOT_MODELLED: [string, string, string][] = [
  ['collapse_full', 'khugepaged', 'anon'],
  ['collapse_full', 'khugepaged', 'file'],
  ['collapse_full', 'khugepaged', 'shmem'],
  ['collapse_full', 'madvise', 'file'],
  ['collapse_full', 'madvise', 'shmem'],
  ['collapse_empty', 'khugepaged', 'anon'],
  ['collapse_single_pte_entry', 'khugepaged', 'anon'],
  ['collapse_single_pte_entry', 'khugepaged', 'file'],
  ['collapse_single_pte_entry', 'khugepaged', 'shmem'],
  ['collapse_single_pte_entry', 'madvise', 'file'],
  ['collapse_single_pte_entry', 'madvise', 'shmem'],
  ['collapse_max_ptes_none', 'khugepaged', 'anon'],
  ['collapse_max_ptes_none', 'khugepaged', 'file'],
  ['collapse_max_ptes_none', 'madvise', 'file'],
  ['collapse_single_pte_entry_compound', 'khugepaged', 'anon'],
  ['collapse_single_pte_entry_compound', 'khugepaged', 'file'],
  ['collapse_single_pte_entry_compound', 'madvise', 'file'],
  ['collapse_full_of_compound', 'khugepaged', 'anon'],
  ['collapse_full_of_compound', 'khugepaged', 'file'],
  ['collapse_full_of_compound', 'khugepaged', 'shmem'],
  ['collapse_full_of_compound', 'madvise', 'file'],
  ['collapse_full_of_compound', 'madvise', 'shmem'],
  ['collapse_compound_extreme', 'khugepaged', 'anon'],
  ['collapse_swapin_single_pte', 'khugepaged', 'anon'],
  ['collapse_max_ptes_swap', 'khugepaged', 'anon'],
  ['collapse_fork', 'khugepaged', 'anon'],
  ['collapse_fork_compound', 'khugepaged', 'anon'],
  ['collapse_max_ptes_shared', 'khugepaged', 'anon'],
  ['madvise_collapse_existing_thps', 'madvise', 'file'],
  ['madvise_collapse_existing_thps', 'madvise', 'shmem'],
  ['madvise_retracted_page_tables', 'madvise', 'file'],
  ['madvise_retracted_page_tables', 'madvise', 'shmem'],
];

function whyNot(context: string, memory: string): string {
  if (context === 'khugepaged') return 'khugepaged, the daemon, and its scan limits are not modelled';
  return `MADV_COLLAPSE of ${memory === 'file' ? 'file' : 'shmem'} memory (collapse_file()) is not modelled`;
}

/** Every case of khugepaged.c: alloc_at_fault, then the TEST() lines of main(). */
export function khugepagedCases(config: SystemConfig = {}): ConformanceCase[] {
  const run = (fn: TestFn, name?: string) => () => {
    // main()'s default_settings: THP only where madvised. collapse_compound_extreme leaves one
    // page of each of 512 THPs mapped, which holds every 2 MiB block it touched: 1 GiB, the
    // model's default RAM. The kernel would compact to find the 513th huge page; the model has
    // no compaction, so that case gets more RAM (untouched RAM costs nothing).
    const ram = name === 'collapse_compound_extreme' ? { ram: 2 * 1024 ** 3 } : {};
    const env = new KhugepagedEnv({ ...ram, ...config, thp: 'madvise' });
    fn(env);
    env.teardown();
  };
  return [
    { suite: 'mm', name: 'khugepaged.alloc_at_fault', variant: '', run: run(allocAtFault) },
    ...TESTS.map(([name, fn]): ConformanceCase => ({
      suite: 'mm',
      name: `khugepaged.${name}`,
      variant: 'madvise:anon',
      run: run(fn, name),
    })),
    ...NOT_MODELLED.map(([name, context, memory]): ConformanceCase => ({
      suite: 'mm',
      name: `khugepaged.${name}`,
      variant: `${context}:${memory}`,
      notModelled: whyNot(context, memory),
    })),
  ];
}
