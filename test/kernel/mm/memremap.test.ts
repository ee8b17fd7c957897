import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { folioUnlock } from '../../../src/kernel/mm/filemap.ts';
import {
  type DevPagemap,
  memremapPages,
  memunmapPages,
  zoneDevicePageInit,
} from '../../../src/kernel/mm/memremap.ts';
import { System } from '../../../src/kernel/system.ts';
import type { KGen } from '../../../src/sched/types.ts';

function setup(): { sys: System; pgmap: DevPagemap; freed: number[] } {
  const sys = new System({ ram: 16 << 20, swap: 0 });
  const freed: number[] = [];
  const pg = memremapPages(sys, 'private', 'drv', 16, {
    folioFree: (pfn) => freed.push(pfn),
    *migrateToRam() {
      return 0;
    },
  });
  assert.ok(typeof pg !== 'number');
  return { sys, pgmap: pg, freed };
}

describe('memunmap_pages', () => {
  it('waits for a device page another thread still holds, then completes', () => {
    const { sys, pgmap, freed } = setup();
    const pfn = pgmap.firstPfn + 3;
    zoneDevicePageInit(sys, pfn); // one reference, locked: a migration holds it
    let holderDone = false;
    function* holder(): KGen {
      yield { kind: 'step', label: 'still migrating' };
      folioUnlock(sys, pfn);
      sys.phys.put(pfn);
      holderDone = true;
    }
    const unmap = sys.sched.spawn('remove', memunmapPages(sys, pgmap));
    sys.sched.spawn('fault', holder());
    sys.sched.step(unmap);
    assert.equal(unmap.state, 'blocked', 'memunmap_pages returned with a page still referenced');
    assert.equal(pgmap.dead, false);
    sys.sched.runAll();
    assert.ok(holderDone);
    assert.equal(unmap.state, 'done');
    assert.equal(pgmap.dead, true);
    assert.deepEqual(freed, [pfn]);
    assert.deepEqual(sys.sched.violations, []);
  });

  it('returns at once when every page is free', () => {
    const { sys, pgmap } = setup();
    sys.sched.run('remove', memunmapPages(sys, pgmap));
    assert.equal(pgmap.dead, true);
    assert.deepEqual(sys.sched.violations, []);
  });
});
