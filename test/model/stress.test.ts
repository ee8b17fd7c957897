/**
 * The model explored against itself: small thread scenarios mixing faults, fork, reclaim,
 * migration, truncation and pinning. Every interleaving tried must keep every oracle quiet;
 * a violation here is a bug in the model, reported with the schedule that shows it.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { scenarioTarget } from '../../src/scenario/explore_target.ts';
import { explore, replay } from '../../src/sched/explore/index.ts';

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

describe('model stress under the explorer', () => {
  test('reclaim keeps its swap slot while a concurrent exit zaps a mapping of the page', () => {
    // This schedule used to free the slot mid-pageout and leave swap accounting at -1.
    const r = replay(scenarioTarget({ file: fixture('fault-fork-reclaim-munmap') }), 'v1.pct.s1.AmIBSwA');
    assert.equal(r.violation, null, r.violation?.message);
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
});
