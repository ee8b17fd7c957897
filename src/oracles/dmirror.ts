import type { Violation } from '../sched/types.ts';
import { dmirrorDevices, dmirrorEntries } from '../kernel/drivers/test_hmm.ts';
import type { System } from '../kernel/system.ts';
import { checkFrameRefs, checkMirror } from './mirror.ts';

/** Oracles 1 and 2 over every open dmirror file's device page table. */
export function checkDmirrors(sys: System): Violation[] {
  const out: Violation[] = [];
  for (const dev of dmirrorDevices(sys)) {
    for (const mirror of dev.mirrors) {
      // A mirror being released no longer gets invalidations and can no longer be used.
      if (mirror.pt.size === 0 || mirror.released) continue;
      const entries = dmirrorEntries(mirror);
      out.push(...checkMirror(sys, mirror.mm, entries, dev.name));
      out.push(...checkFrameRefs(sys, entries, `${dev.name} mirror ${mirror.id} page table`));
    }
  }
  return out;
}
