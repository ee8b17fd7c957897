/**
 * Oracles 1 and 2 of DESIGN.md as reusable checkers: device drivers (the dmirror device, iommufd
 * accesses) call them from a sys.checkHooks entry with the mappings their device holds.
 *
 * 1. Mirror coherence, the HMM guarantee: for every VA a device maps, the CPU maps the same page
 *    (a present PTE or PMD, a device-private or device-exclusive entry of that page, or a migration
 *    entry of it, or of the page it is migrating from while the migration is in flight) or
 *    nothing; and the device
 *    never has write access the CPU page table does not grant.
 * 2. Frame references: no device or DMA entry refers to a frame that has been freed or reused
 *    since the entry was made. Entries carry the frame's generation number (sys.phys.gen[pfn])
 *    taken when they were made; PhysMem bumps it each time the frame is freed.
 */
import { HPAGE_PMD_NR, PAGE_SIZE } from '../lib/units.ts';
import type { MmStruct } from '../kernel/mm/mm_types.ts';
import {
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_WRITE,
  SwpType,
  pteNone,
  swpType,
  swpTypeName,
} from '../kernel/mm/pgtable.ts';
import { indexAt } from '../lib/pgtable_store.ts';
import type { System } from '../kernel/system.ts';
import type { Violation } from '../sched/types.ts';

export const MIRROR_ORACLE = 'mirror';
export const FRAME_REFS_ORACLE = 'frame-refs';

/** At most this many violations per check, so a broken run stays readable. */
const MAX_REPORTS = 20;

/** One page a device maps: the VA, the frame the CPU would map there, and whether it may write. */
export interface MirrorEntry {
  readonly va: number;
  readonly pfn: number;
  readonly write: boolean;
}

/** One device or DMA reference to a frame, with the frame's generation when it was taken. */
export interface FrameRef {
  readonly pfn: number;
  readonly gen: number;
}

/** What the CPU page table holds at `va`: entry words, or a PMD leaf resolved to the 4K page. */
function cpuEntry(mm: MmStruct, va: number): { lo: number; pfn: number } {
  const pmd = mm.pgt.upperAt(va, 1);
  if (pmd === null) return { lo: 0, pfn: 0 };
  const i = indexAt(va, 1);
  const leaf = pmd.children[i];
  if (leaf === null) {
    const lo = pmd.words[2 * i];
    const hi = pmd.words[2 * i + 1];
    if (lo === 0 && hi === 0) return { lo: 0, pfn: 0 };
    return { lo, pfn: hi + (Math.floor(va / PAGE_SIZE) % HPAGE_PMD_NR) };
  }
  const s = 2 * (Math.floor(va / PAGE_SIZE) % 512);
  return { lo: leaf.words[s], pfn: leaf.words[s + 1] };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A device entry as a report names it (made only for a report: the check runs after every step). */
function where(e: MirrorEntry): string {
  return `va ${hex(e.va)} (device pfn ${e.pfn}${e.write ? ', writable' : ''})`;
}

/**
 * Oracle 1 for one device's mappings of `mm`. `pfn` is the frame the CPU would map (for a
 * device-private page, the device page itself). An exited mm maps nothing, so every entry left
 * then is only checked by checkFrameRefs.
 */
export function checkMirror(
  sys: System,
  mm: MmStruct,
  entries: Iterable<MirrorEntry>,
  deviceName: string,
): Violation[] {
  const out: Violation[] = [];
  if (mm.exited) return out;
  const bad = (message: string): void => {
    if (out.length < MAX_REPORTS) out.push({ oracle: MIRROR_ORACLE, message: `${deviceName}: ${message}` });
  };
  // An index loop over an array (what the oracle passes after every step): a for-of runs the
  // iterator protocol per entry until this is compiled.
  const list = Array.isArray(entries) ? (entries as readonly MirrorEntry[]) : [...entries];
  for (let n = 0; n < list.length; n++) {
    const e = list[n];
    const { lo, pfn } = cpuEntry(mm, e.va);
    if (pteNone(lo, pfn)) continue;
    if ((lo & (PTE_PRESENT | PTE_PROTNONE)) !== 0) {
      if (pfn !== e.pfn) {
        bad(`${where(e)}: the CPU maps pfn ${pfn} there`);
      } else if (e.write && ((lo & PTE_WRITE) === 0 || (lo & PTE_PROTNONE) !== 0)) {
        bad(`${where(e)}: the device may write but the CPU PTE is not writable`);
      }
      continue;
    }
    const type = swpType(lo);
    const refersToPage =
      type === SwpType.DEVICE_PRIVATE_READ ||
      type === SwpType.DEVICE_PRIVATE_WRITE ||
      type === SwpType.DEVICE_EXCLUSIVE ||
      type === SwpType.MIGRATION_READ ||
      type === SwpType.MIGRATION_READ_EXCLUSIVE ||
      type === SwpType.MIGRATION_WRITE;
    if (!refersToPage) {
      bad(`${where(e)}: the CPU has a ${swpTypeName(type)} entry there`);
      continue;
    }
    const isMigration =
      type === SwpType.MIGRATION_READ ||
      type === SwpType.MIGRATION_READ_EXCLUSIVE ||
      type === SwpType.MIGRATION_WRITE;
    // Between migrate_vma_pages() and migrate_vma_finalize() a driver may already map the
    // destination, which then carries the source's mapping and index (folio_migrate_mapping).
    const migrationDestination =
      isMigration &&
      sys.phys.mapping[e.pfn] !== 0 &&
      sys.phys.mapping[e.pfn] === sys.phys.mapping[pfn] &&
      sys.phys.getIndex(e.pfn) === sys.phys.getIndex(pfn);
    if (pfn !== e.pfn && !migrationDestination) {
      bad(`${where(e)}: the CPU ${swpTypeName(type)} entry names pfn ${pfn}`);
      continue;
    }
    const cpuWritable =
      type === SwpType.DEVICE_PRIVATE_WRITE ||
      type === SwpType.MIGRATION_WRITE ||
      type === SwpType.DEVICE_EXCLUSIVE;
    if (e.write && !cpuWritable)
      bad(`${where(e)}: the device may write but the CPU ${swpTypeName(type)} entry is read-only`);
  }
  return out;
}

/** Oracle 2 for one device's (or DMA table's) frame references; `what` names their holder. */
export function checkFrameRefs(sys: System, entries: Iterable<FrameRef>, what: string): Violation[] {
  const out: Violation[] = [];
  const phys = sys.phys;
  const bad = (message: string): void => {
    if (out.length < MAX_REPORTS) out.push({ oracle: FRAME_REFS_ORACLE, message: `${what}: ${message}` });
  };
  const list = Array.isArray(entries) ? (entries as readonly FrameRef[]) : [...entries];
  for (let n = 0; n < list.length; n++) {
    const { pfn, gen } = list[n];
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= phys.nr) {
      bad(`refers to pfn ${pfn}, which does not exist`);
    } else if (!phys.isUsed(pfn)) {
      bad(`refers to pfn ${pfn}, which is free`);
    } else if ((gen & 0xffff) !== phys.gen[pfn]) {
      bad(
        `refers to pfn ${pfn} of generation ${gen}, freed and reused since (now generation ${phys.gen[pfn]})`,
      );
    }
  }
  return out;
}
