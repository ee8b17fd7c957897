/**
 * The names a violation may carry, in one list: the oracles of DESIGN.md and the explorer's own
 * verdicts. A scenario's declared outcome (`explore: { expect: found, oracle: NAME }`) is checked
 * against this list, so a misspelt oracle is refused up front rather than never matching.
 */
export const ORACLE_NAMES = {
  mirror: 'a device maps a page the CPU does not, or with more access than the CPU grants',
  'frame-refs': 'a device or DMA mapping refers to a freed or reused page frame',
  'page-counts': 'mapcount or refcount disagrees with the mappings and pins of a page',
  iommufd: 'iommufd pin counts, domains or pinned-memory accounting disagree',
  locks: 'a lock-order cycle, or sleeping inside a non-blockable invalidation',
  leak: 'an mm_struct, file, device or iommufd object is still referenced once every process has exited and every file is closed',
  teardown: 'something is left once every process has exited and every file is closed',
  'use-after-free':
    'a kernel object (a page, notifier, iopt area or pages, access, DMA mapping) is used after it was freed',
  warn: 'a kernel WARN_ON() fired',
  expect: 'a step did not return what the scenario expects',
  deadlock: 'every thread waits',
  livelock: 'the threads did not finish within the step bound',
  exception: 'a thread threw something other than a kernel errno',
} as const;

export type OracleName = keyof typeof ORACLE_NAMES;

export function isOracleName(s: string): s is OracleName {
  return Object.hasOwn(ORACLE_NAMES, s);
}
