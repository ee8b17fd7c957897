import type { Violation } from '../sched/types.ts';
import { legacyMirrorDevices, legacyMirrorEntries } from '../kernel/drivers/legacy_mirror.ts';
import type { System } from '../kernel/system.ts';
import { checkFrameRefs, checkMirror } from './mirror.ts';

/** Oracles 1 and 2 over the device page table of every open legacy (hmm_mirror) mirror. */
export function checkLegacyMirrors(sys: System): Violation[] {
  const out: Violation[] = [];
  for (const dev of legacyMirrorDevices(sys)) {
    for (const mirror of dev.mirrors) {
      if (mirror.pt.size === 0) continue;
      const entries = legacyMirrorEntries(mirror);
      out.push(...checkMirror(sys, mirror.mm, entries, dev.name));
      out.push(...checkFrameRefs(sys, entries, `${dev.name} mirror ${mirror.id} page table`));
    }
  }
  return out;
}
