/**
 * Use-after-free of kernel objects other than page frames: interval notifiers after
 * mmu_interval_notifier_remove(), iopt areas and iopt_pages after they are released, iommufd
 * accesses after iommufd_access_destroy(), DMA mappings after dma_unmap_page(), and device pages
 * after folio_free or memunmap_pages() while a device PTE or DMA mapping still points at them.
 *
 * In the kernel such an object is kfree()d (or handed back to its driver) and a later use reads
 * freed memory, which KASAN reports with two stacks: where it was freed and where it was used.
 * The model keeps the object (JavaScript frees nothing under a live reference), marks it freed
 * with where that happened, and every kernel path that dereferences one checks the mark first:
 * a use of a freed object becomes a 'use-after-free' violation naming both places.
 *
 * A "place" is the first caller outside the model's kernel, scheduler and library code (the
 * driver's function, or the scenario step), with the kernel function that freed or used the
 * object and the running thread: what a driver developer needs to find the two lines.
 */
import type { Violation } from '../sched/types.ts';
import type { System } from './system.ts';
import { sideTable } from '../lib/snapshot.ts';

/** Frames of these files are the model itself; a site names the first frame outside them. */
const MODEL_CODE = /[/\\](?:src|dist)[/\\](?:kernel|sched|lib)[/\\]/;
/** How deep a captured stack goes: generator chains of the model are a dozen frames deep. */
const STACK_DEPTH = 40;

/** Parses one V8 stack line into `fn (file:line)`, or null. */
function frameOf(line: string): { text: string; file: string } | null {
  const m = /at (?:(\S+) \()?(.*?):(\d+):\d+\)?$/.exec(line.trim());
  if (m === null) return null;
  const file = m[2];
  const base = /[^/\\]+$/.exec(file)?.[0] ?? file;
  return { text: `${m[1] ?? '<anonymous>'} (${base}:${m[3]})`, file };
}

/**
 * Where the running code is: `kernelFn called from CALLER (file:line) in thread T`. CALLER is the
 * first frame outside the model (a driver callback or a scenario step); without one, the first
 * frame of the model that is not this file. The stack is captured now and formatted only when a
 * report prints it: capturing is cheap, formatting is not, and almost no site is ever printed.
 * A brief schedule of a search (Scheduler.brief) captures none: the site names the kernel function
 * and the thread, and a violation is reported from a full rerun.
 */
export class Site {
  private readonly at: Error | null = null;
  private readonly thread: string | null;
  private text: string | null = null;

  constructor(
    sys: System,
    private readonly kernelFn: string,
  ) {
    const sched = sys.sched;
    this.thread = sched.current?.name ?? null;
    if (sched.brief) return;
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = STACK_DEPTH;
    this.at = new Error();
    Error.stackTraceLimit = limit;
  }

  toString(): string {
    this.text ??= this.format();
    return this.text;
  }

  private format(): string {
    let inside: string | null = null;
    let outside: string | null = null;
    for (const line of (this.at?.stack ?? '').split('\n').slice(1)) {
      const f = frameOf(line);
      if (f === null || /[/\\]uaf\.[tj]s$/.test(f.file) || f.file.startsWith('node:')) continue;
      if (!MODEL_CODE.test(f.file)) {
        outside = f.text;
        break;
      }
      inside ??= f.text;
    }
    const from = outside ?? inside;
    return `${this.kernelFn}${from !== null ? ` called from ${from}` : ''}${this.thread !== null ? ` in thread ${this.thread}` : ''}`;
  }
}

/** The Site of the running code (see Site). */
export function callSite(sys: System, kernelFn: string): Site {
  return new Site(sys, kernelFn);
}

/** What was freed and where. */
export interface FreedAt {
  readonly what: string;
  readonly site: string | Site;
}

/** The DMA addresses remembered after their unmap (enough for any scenario; the oldest go first). */
const UNMAPPED_DMA_KEEP = 4096;

/** Freed objects and released device memory, by object (side tables, so a snapshot restores them). */
const freedObjectTable = sideTable<object, FreedAt>();
const releasedRangeTable = sideTable<object, Site>();

/**
 * The freed objects of one System. Objects are keyed weakly: a freed object nothing refers to
 * any more can never be used again, and is forgotten.
 */
export class FreedObjects {
  private readonly objects = freedObjectTable;
  /**
   * Device frames freed (folio_free) while a device PTE or DMA mapping could reach them, in
   * arrays indexed by PFN (a migration frees hundreds of thousands, and a Map that large misses
   * the cache on every access): the generation after the free + 1 (0: none recorded), and the
   * index + 1 of where, in `sites`. The frees of one migration share one Site; a Site is kept
   * while some frame still names it (`siteRefs`), and its slot is reused after.
   */
  private frameGen = new Float64Array(0);
  private frameSite = new Int32Array(0);
  private readonly sites: (Site | null)[] = [];
  private readonly siteRefs: number[] = [];
  private readonly freeSites: number[] = [];
  /** The slot of the Site stored last (-1: none), so a batch's frees find it at once. */
  private lastSite = -1;
  /** Unmapped DMA addresses, oldest first. */
  private readonly dmaAddrs = new Map<number, FreedAt>();
  /** Device memory released by memunmap_pages(), by the pagemap's PagemapRef. */
  private readonly releasedRanges = releasedRangeTable;

  mark(obj: object, at: FreedAt): void {
    this.objects.set(obj, at);
  }

  /** The object is live again (re-initialised and reinserted). */
  revive(obj: object): void {
    this.objects.delete(obj);
  }

  get(obj: object): FreedAt | undefined {
    return this.objects.get(obj);
  }

  markFrame(pfn: number, gen: number, site: Site): void {
    if (pfn >= this.frameGen.length) {
      const n = Math.max(pfn + 1, 2 * this.frameGen.length, 1024);
      const g = new Float64Array(n);
      g.set(this.frameGen);
      this.frameGen = g;
      const f = new Int32Array(n);
      f.set(this.frameSite);
      this.frameSite = f;
    }
    let slot = this.lastSite;
    if (slot < 0 || this.sites[slot] !== site) {
      slot = this.freeSites.pop() ?? this.sites.length;
      this.sites[slot] = site;
      this.siteRefs[slot] = 0;
      this.lastSite = slot;
    }
    this.siteRefs[slot]++;
    const old = this.frameSite[pfn] - 1;
    if (old >= 0 && --this.siteRefs[old] === 0) {
      this.sites[old] = null;
      this.freeSites.push(old);
      if (this.lastSite === old) this.lastSite = -1;
    }
    this.frameGen[pfn] = gen + 1;
    this.frameSite[pfn] = slot + 1;
  }

  /** Where the frame was freed, if the free that ended generation `gen` was recorded. */
  frameFreedAt(pfn: number, gen: number): Site | undefined {
    if (pfn >= this.frameGen.length || this.frameGen[pfn] === 0 || this.frameGen[pfn] - 1 === gen)
      return undefined;
    return this.sites[this.frameSite[pfn] - 1] ?? undefined;
  }

  /** Where the device memory of pagemap `ref` was released (memunmap_pages), if it was. */
  released(ref: object): Site | undefined {
    return this.releasedRanges.get(ref);
  }

  markReleased(ref: object, site: Site): void {
    this.releasedRanges.set(ref, site);
  }

  markDmaUnmapped(addr: number, at: FreedAt): void {
    this.dmaAddrs.set(addr, at);
    if (this.dmaAddrs.size > UNMAPPED_DMA_KEEP) {
      const oldest = this.dmaAddrs.keys().next();
      if (oldest.done !== true) this.dmaAddrs.delete(oldest.value);
    }
  }

  dmaUnmappedAt(addr: number): FreedAt | undefined {
    return this.dmaAddrs.get(addr);
  }
}

export const USE_AFTER_FREE = 'use-after-free';

/** The violation of `use` (a call site) touching `freed`. */
export function uafViolation(sys: System, freed: FreedAt, use: string | Site): Violation {
  return {
    oracle: USE_AFTER_FREE,
    message: `${freed.what} used after it was freed: used by ${use.toString()}; freed by ${freed.site.toString()}`,
    thread: sys.sched.current?.name,
  };
}

/** Marks `obj` freed by `kernelFn` now (kfree of the object in the kernel). */
export function markFreed(sys: System, obj: object, what: string, kernelFn: string): void {
  sys.freed.mark(obj, { what, site: callSite(sys, kernelFn) });
}

/**
 * Checks that `obj` has not been freed before `kernelFn` dereferences it. A freed object is
 * reported as a use-after-free; returns true then, so the caller can stop as KASAN would not
 * (the model cannot go on through a freed object either).
 */
export function usedAfterFree(sys: System, obj: object, kernelFn: string): boolean {
  const freed = sys.freed.get(obj);
  if (freed === undefined) return false;
  sys.sched.report(uafViolation(sys, freed, callSite(sys, kernelFn)));
  return true;
}

/**
 * What a use-after-free report says of device page `pfn` that a user expected at generation
 * `gen`: where it was freed, and where its memory was released if memunmap_pages() ran.
 */
export function devicePageFreed(sys: System, pfn: number, gen: number): FreedAt {
  const ref = sys.phys.pagemapOf(pfn);
  const released = ref === null ? undefined : sys.freed.released(ref);
  const site = sys.freed.frameFreedAt(pfn, gen) ?? 'an unrecorded put';
  return {
    what: `device page ${pfn}`,
    site: released !== undefined ? `${site.toString()}; its memory released by ${released.toString()}` : site,
  };
}
