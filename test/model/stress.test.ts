/**
 * The model explored against itself: small thread scenarios mixing faults, fork, reclaim,
 * migration, truncation and pinning. Every interleaving tried must keep every oracle quiet;
 * a violation here is a bug in the model, reported with the schedule that shows it.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { scenarioTarget } from '../../src/scenario/explore_target.ts';
import { explore, replay } from '../../src/node/explore/index.ts';

const fixture = (name: string): string =>
  fileURLToPath(new URL(`../fixtures/stress/${name}.yaml`, import.meta.url));

function clean(name: string, strategy: 'pct' | 'random', schedules: number): void {
  const r = explore(scenarioTarget({ file: fixture(name) }), { strategy, seed: 1, budget: { schedules } });
  assert.equal(
    r.violation,
    null,
    r.violation === null ? '' : `${r.violation.message}\n${r.violation.diagram}\nreplay ${r.replay}`,
  );
  assert.equal(r.schedules, schedules);
}

function replayClean(name: string, token: string): void {
  const r = replay(scenarioTarget({ file: fixture(name) }), token);
  assert.equal(r.violation, null, r.violation?.message);
}

describe('model stress under the explorer', () => {
  test('reclaim keeps its swap slot while a concurrent exit zaps a mapping of the page', () => {
    // This schedule used to free the slot mid-pageout and leave swap accounting at -1.
    replayClean('fault-fork-reclaim-munmap', 'v1.pct.s1.AmIBSwA');
  });

  test('lazyfree reclaim keeps a MADV_FREE page written while it unmapped it', () => {
    // The page was found clean, then written before its PTE went: it used to be discarded anyway.
    replayClean('madv-free', 'v1.pct.s1.AgABFAI');
  });

  test('reclaim leaves hugetlb folios alone', () => {
    // Reclaim used to split a private hugetlb page like a THP: PTEs under a hugetlb VMA, lost pages.
    replayClean('hugetlb', 'v1.pct.s1.AgABJAE');
  });

  test('a dmirror file being released is not checked for coherence', () => {
    // Its notifier is gone while eviction runs; its page table is stale but unusable, as in the kernel.
    replayClean('dmirror-close', 'v1.pct.s1.AQAB');
    replayClean('dmirror-close', 'v1.pct.s1.BQADIgEKAQcADgE');
  });

  test('restoring migration entries finds the one a concurrent fork copied', () => {
    // The eviction's rmap walk used to miss the child: it waited on a dead migration entry forever.
    replayClean('dmirror-close', 'v1.pct.s3.AkEBAgE');
  });

  test('a shmem fault holds its page while it waits, and pageout copies the page once unmapped', () => {
    // Reclaim used to free the page under the fault, which then mapped a free frame.
    replayClean('shmem-two-procs', 'v1.pct.s1.ASEB');
    // Pageout used to copy the page before unmapping it and lose a device write made meanwhile.
    replayClean('shmem-two-procs', 'v1.pct.s1.AwABEQEqAA');
  });

  test('faults, migration, fork, mprotect, reclaim and munmap: PCT', () => {
    clean('fault-fork-reclaim-munmap', 'pct', 200);
  });

  test('THP COW, partial DONTNEED, device read, partial mprotect, reclaim: PCT', () => {
    clean('thp-split-mprotect-reclaim', 'pct', 40);
  });

  test('memfd shared and private mappings, fork, pageout, truncate, reclaim: PCT and random', () => {
    clean('shmem-pageout-truncate', 'pct', 200);
    clean('shmem-pageout-truncate', 'random', 100);
  });

  test('two devices, migration, exclusive access, fork, mremap and exit: PCT and random', () => {
    clean('device-private-fork-exclusive-mremap', 'pct', 150);
    clean('device-private-fork-exclusive-mremap', 'random', 100);
  });

  test('iommufd map racing fork, reclaim, COW and munmap: PCT and random', () => {
    clean('iommufd-map-fork-munmap', 'pct', 200);
    clean('iommufd-map-fork-munmap', 'random', 100);
  });

  test('MADV_FREE, lazyfree reclaim, a redirtying write, fork and a device read: PCT and random', () => {
    clean('madv-free', 'pct', 120);
    clean('madv-free', 'random', 80);
  });

  test('MADV_COLLAPSE racing fork, a child COW write, munmap and a device read: PCT and random', () => {
    clean('collapse', 'pct', 60);
    clean('collapse', 'random', 40);
  });

  test('mremap with MREMAP_FIXED and DONTUNMAP racing device reads and migration: PCT and random', () => {
    clean('mremap-device', 'pct', 60);
    clean('mremap-device', 'random', 40);
  });

  test('clear_soft_dirty racing CPU writes, device writes and fork: PCT and random', () => {
    clean('soft-dirty', 'pct', 150);
    clean('soft-dirty', 'random', 100);
  });

  test('hugetlb mappings with fork, COW, device reads, reclaim and munmap: PCT and random', () => {
    clean('hugetlb', 'pct', 100);
    clean('hugetlb', 'random', 60);
  });

  test('the OOM reaper racing device faults, device-private pages and exit: PCT and random', () => {
    clean('oom-device', 'pct', 60);
    clean('oom-device', 'random', 40);
  });

  test('dmirror release evicting device memory racing CPU faults and fork: PCT and random', () => {
    clean('dmirror-close', 'pct', 50);
    clean('dmirror-close', 'random', 40);
  });

  test('a memfd shared by two processes with a device mirror each: PCT and random', () => {
    clean('shmem-two-procs', 'pct', 100);
    clean('shmem-two-procs', 'random', 80);
  });

  test('iommufd access pins racing munmap, IOAS unmap, a domain and exit: PCT and random', () => {
    clean('iommufd-access', 'pct', 200);
    clean('iommufd-access', 'random', 150);
  });

  test('coherent device memory, long-term pins and migration to the device: PCT and random', () => {
    clean('coherent-longterm', 'pct', 60);
    clean('coherent-longterm', 'random', 30);
  });
});
