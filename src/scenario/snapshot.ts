/**
 * A System as plain JSON, for the studio: processes and their VMAs, the CPU page table and every
 * mirror device's page table per page, the frames in use, interval notifiers with their seq,
 * iommufd IOAS areas, pages and domains, scheduler threads and the trace events. Only reads the
 * model; imports nothing Node-only, so the studio's worker and node tests call the same code.
 *
 * Addresses that can reach the top of the 64-bit space (IOVAs, the last byte of a range) are
 * bigints holding the exact u64; user addresses stay numbers (they are below 2^57, so exact).
 *
 * Large address spaces are shown a window at a time: at most MAX_PAGES pages of each process
 * and MAX_FRAMES frames. `SnapshotWindow` says where the windows start; each process lists the
 * start address of every window of its pages, and the snapshot the first PFN of every window of
 * frames, so a view can page through them. `truncated` says some window left something out.
 */
import { mockDomainOf } from '../kernel/drivers/iommufd_selftest.ts';
import { LegacyMirror, legacyMirrorDevices } from '../kernel/drivers/legacy_mirror.ts';
import { Hmm } from '../kernel/mm/hmm_legacy.ts';
import type { MmuNotifierSubscriptions } from '../kernel/mm/mmu_notifier_types.ts';
import type { DevicePageTable } from '../kernel/drivers/sdk/device_pagetable.ts';
import { dmirrorDevices } from '../kernel/drivers/test_hmm.ts';
import { DPT_TAG_ATOMIC, DPT_TAG_WRITE, DmirrorDevice } from '../kernel/drivers/test_hmm_types.ts';
import { iommufdContexts } from '../kernel/iommufd/main.ts';
import { anyHwptOf, HwptNested, type Hwpt } from '../kernel/iommufd/hw_pagetable.ts';
import { ioasOf } from '../kernel/iommufd/ioas.ts';
import type { IommuDomain } from '../kernel/iommufd/iommu.ts';
import type { IoptArea } from '../kernel/iommufd/pages.ts';
import type { MmStruct, Vma } from '../kernel/mm/mm_types.ts';
import { VM } from '../kernel/mm/mm_types.ts';
import { PG } from '../kernel/mm/page_alloc.ts';
import {
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_WRITE,
  ptePresent,
  pteProtnone,
  pteSpecial,
  SwpType,
  swpType,
} from '../kernel/mm/pgtable.ts';
import { pmdIsLeaf, pmdTableOf, pmdSlot, pteSlot } from '../kernel/mm/pte.ts';
import type { System } from '../kernel/system.ts';
import { indexAt } from '../lib/pgtable_store.ts';
import { lastToU64, U64_END, U64_MAX_BIG } from '../lib/u64.ts';
import { PAGE_SIZE, PMD_SIZE } from '../lib/units.ts';

export const MAX_PAGES = 4096;
export const MAX_FRAMES = 4096;
export const MAX_EVENTS = 2000;

/** What a CPU page-table entry holds, by the kernel's names for entry kinds. */
export type PteKind =
  | 'none'
  | 'present'
  | 'zero'
  | 'protnone'
  | 'swap'
  | 'migration'
  | 'device-private'
  | 'exclusive'
  | 'hwpoison'
  | 'guard';

export interface PteSnap {
  kind: PteKind;
  /** The PFN (present, migration, device entries) or swap offset; null for none. */
  pfn: number | null;
  writable: boolean;
  dirty: boolean;
  young: boolean;
  /** Mapped by a PMD leaf (THP or hugetlb), not a PTE. */
  pmd: boolean;
}

export interface DevPteSnap {
  /** The device's name and mirror id ('gpu0#1'); legacy hmm_mirror devices are named the same way. */
  mirror: string;
  pfn: number;
  access: 'read' | 'write' | 'atomic';
  /** The page lives in the device's own memory. */
  deviceMemory: boolean;
}

export interface PageSnap {
  addr: number;
  /** PGD, PUD, PMD and PTE indexes of the address. */
  idx: [number, number, number, number];
  cpu: PteSnap;
  devices: DevPteSnap[];
  /** No VMA covers the page: only a device still maps it (a mirror that missed an invalidation). */
  outside?: true;
}

export interface VmaSnap {
  start: number;
  end: number;
  prot: string;
  kind: 'anon' | 'file' | 'shmem' | 'special';
  shared: boolean;
  huge: boolean;
}

export interface ProcSnap {
  pid: number;
  name: string;
  exited: boolean;
  mmId: number | null;
  vmas: VmaSnap[];
  /** The pages of the window shown (plus device entries where no VMA is). */
  pages: PageSnap[];
  /** Pages the VMAs span. */
  vmaPages: number;
  /** The address each window of MAX_PAGES pages starts at, in order (one for a small space). */
  windows: number[];
  /** The index in `windows` of the window shown. */
  window: number;
  stats: Record<string, number>;
}

export interface FrameSnap {
  pfn: number;
  where: 'ram' | 'device';
  /** The device whose memory holds it, for device frames. */
  device: string | null;
  refcount: number;
  mapcount: number;
  pins: number;
  order: number;
  flags: string[];
}

export interface NotifierSnap {
  mm: number;
  owner: string;
  /** The mm's invalidate_seq: odd while an invalidation holds the tree. */
  treeSeq: number;
  activeRanges: number;
  /** `last` is the exact inclusive u64 (an interval to ULONG_MAX ends at 0xffffffffffffffff). */
  intervals: { start: number; last: bigint; seq: number; owner: string; ops: string[] }[];
  /**
   * The whole-mm subscribers (mmu_notifier_register), in list order: what they are, the ops they
   * implement by kernel name, and for the legacy hmm_mirror API's struct hmm the mirrors on it.
   */
  whole: { owner: string; ops: string[]; users: number; mirrors: string[] }[];
}

export interface AreaSnap {
  iova: bigint;
  last: bigint;
  /** The iopt_pages id that backs it, or null while it is being unmapped. */
  pages: number | null;
  prot: number;
  accesses: number;
  /** For user pages: the process and the user address the area's first byte comes from. */
  pid: number | null;
  user: number | null;
}

/** A run of IOVA pages a domain maps to consecutive frames. */
export interface DomainRunSnap {
  iova: bigint;
  last: bigint;
  /** The frame of the first page. */
  pfn: number;
  npages: number;
  /** Pages of the run whose dirty bit the domain holds (dirty tracking). */
  dirty: number;
  /** The process and user address of the run's first page (user pages), else null. */
  pid: number | null;
  user: number | null;
}

export interface DomainSnap {
  /** The iommu_domain id. */
  id: number;
  /** The HWPT object id (IOMMU_HWPT_ALLOC or a selftest mock domain's out_hwpt_id), or null. */
  hwpt: number | null;
  kind: 'paging' | 'nested';
  /** Allocated for a device attach to the IOAS itself (an automatic domain). */
  auto: boolean;
  /** The driver that allocated it ('iommufd_selftest' for mock domains). */
  owner: string;
  /** In the IOAS's domain list: every area is mapped into it. */
  attached: boolean;
  /** The device objects attached to it. */
  devices: number[];
  /** For a nested domain: the parent HWPT whose IOVA space it translates through. */
  parent: number | null;
  /** What it maps, read from the driver's own table (mock domains); empty for nested domains. */
  runs: DomainRunSnap[];
}

export interface IoasSnap {
  ctx: number;
  id: number;
  areas: AreaSnap[];
  pages: {
    id: number;
    npages: number;
    npinned: number;
    base: number;
    type: 'user' | 'file';
    pid: number | null;
  }[];
  domains: DomainSnap[];
}

export interface ThreadSnap {
  id: number;
  name: string;
  state: string;
  /** The label of the scheduling point the thread waits at. */
  at: string;
}

export interface EventSnap {
  ts: number;
  thread: string;
  track: string;
  cat: string;
  name: string;
  ph: 'B' | 'E' | 'i';
  args: Record<string, string | number | boolean | null>;
}

/** Where the windows of pages and frames start (the window that holds the address or PFN). */
export interface SnapshotWindow {
  addr?: number;
  pfn?: number;
}

export interface Snapshot {
  processes: ProcSnap[];
  /** The frames in use of the window shown. */
  frames: FrameSnap[];
  /** Frames in use in all. */
  frameTotal: number;
  /** The first PFN of each window of MAX_FRAMES frames in use. */
  frameWindows: number[];
  /** The index in `frameWindows` of the window shown. */
  frameWindow: number;
  notifiers: NotifierSnap[];
  ioas: IoasSnap[];
  threads: ThreadSnap[];
  devices: { name: string; memory: string; mirrors: number; api: 'dmirror' | 'hmm_mirror' }[];
  events: EventSnap[];
  counters: Record<string, number>;
  schedSteps: number;
  truncated: boolean;
}

function protString(flags: number): string {
  return `${flags & VM.READ ? 'r' : '-'}${flags & VM.WRITE ? 'w' : '-'}${flags & VM.EXEC ? 'x' : '-'}`;
}

function vmaSnap(v: Vma): VmaSnap {
  let kind: VmaSnap['kind'] = 'special';
  if (v.isAnon()) kind = 'anon';
  else if (v.file !== null) kind = v.vmOps !== null && !v.isShared() ? 'file' : 'shmem';
  if (v.file !== null && v.vmOps === null) kind = 'file';
  return {
    start: v.start,
    end: v.end,
    prot: protString(v.flags),
    kind,
    shared: v.isShared(),
    huge: (v.flags & VM.HUGETLB) !== 0,
  };
}

/** Decodes one entry's two words into its kind and bits. */
export function decodePte(sys: System, lo: number, hi: number, pmd: boolean): PteSnap {
  const base = { pmd, writable: (lo & PTE_WRITE) !== 0, dirty: (lo & PTE_DIRTY) !== 0 };
  if (lo === 0 && hi === 0)
    return { kind: 'none', pfn: null, writable: false, dirty: false, young: false, pmd };
  if (ptePresent(lo)) {
    const young = (lo & PTE_ACCESSED) !== 0;
    if (pteProtnone(lo)) return { ...base, kind: 'protnone', pfn: hi, young };
    const zero = pteSpecial(lo) && sys.phys.isZeroPfn(hi);
    return { ...base, kind: zero ? 'zero' : 'present', pfn: hi, young };
  }
  const t = swpType(lo);
  const kinds: Record<number, PteKind> = {
    [SwpType.SWAP]: 'swap',
    [SwpType.MIGRATION_READ]: 'migration',
    [SwpType.MIGRATION_READ_EXCLUSIVE]: 'migration',
    [SwpType.MIGRATION_WRITE]: 'migration',
    [SwpType.DEVICE_PRIVATE_READ]: 'device-private',
    [SwpType.DEVICE_PRIVATE_WRITE]: 'device-private',
    [SwpType.DEVICE_EXCLUSIVE]: 'exclusive',
    [SwpType.HWPOISON]: 'hwpoison',
    [SwpType.GUARD_MARKER]: 'guard',
  };
  const writable =
    t === SwpType.MIGRATION_WRITE ||
    t === SwpType.DEVICE_PRIVATE_WRITE ||
    (t === SwpType.DEVICE_EXCLUSIVE && base.writable);
  return { kind: kinds[t] ?? 'swap', pfn: hi, writable, dirty: base.dirty, young: false, pmd };
}

/** The CPU entry mapping `addr`: a PMD leaf or a PTE. */
function cpuEntry(sys: System, mm: MmStruct, addr: number): PteSnap {
  const pmdT = pmdTableOf(mm, addr);
  if (pmdT !== null && pmdIsLeaf(pmdT, addr)) {
    const s = pmdSlot(addr);
    const e = decodePte(sys, pmdT.words[s], pmdT.words[s + 1], true);
    // A PMD leaf names its head PFN; each 4 KiB page within is head + offset.
    if (e.pfn !== null && e.kind !== 'swap') e.pfn += Math.floor((addr % PMD_SIZE) / PAGE_SIZE);
    return e;
  }
  const t = mm.pgt.pteTable(addr);
  if (t === null) return decodePte(sys, 0, 0, false);
  const s = pteSlot(addr);
  return decodePte(sys, t.words[s], t.words[s + 1], false);
}

interface MirrorView {
  label: string;
  mm: MmStruct;
  lookup(vpn: number): DevPteSnap | null;
  /** The virtual page numbers the device maps. */
  vpns(): Iterable<number>;
}

/** The virtual page numbers a device page table maps. */
function* vpnsOf(pt: DevicePageTable): Generator<number> {
  for (const e of pt.entries()) yield e.va / PAGE_SIZE;
}

/** Every mirror device's page table: test_hmm's dmirror and the legacy hmm_mirror devices. */
function mirrorsOf(sys: System): MirrorView[] {
  const out: MirrorView[] = [];
  for (const dev of legacyMirrorDevices(sys)) {
    for (const m of dev.mirrors) {
      if (m.released) continue;
      const label = `${dev.name}#${m.id}`;
      out.push({
        label,
        mm: m.mm,
        lookup(vpn) {
          const e = m.pt.lookup(vpn * PAGE_SIZE);
          if (e === undefined) return null;
          return {
            mirror: label,
            pfn: e.pfn,
            access: e.prot === DPT_TAG_WRITE ? 'write' : 'read',
            deviceMemory: sys.phys.isDevice(e.pfn),
          };
        },
        vpns: () => vpnsOf(m.pt),
      });
    }
  }
  for (const dev of dmirrorDevices(sys)) {
    for (const m of dev.mirrors) {
      if (m.released) continue;
      const label = `${dev.name}#${m.id}`;
      out.push({
        label,
        mm: m.mm,
        lookup(vpn) {
          const e = m.pt.lookup(vpn * PAGE_SIZE);
          if (e === undefined) return null;
          const access = e.prot === DPT_TAG_ATOMIC ? 'atomic' : e.prot === DPT_TAG_WRITE ? 'write' : 'read';
          return { mirror: label, pfn: e.pfn, access, deviceMemory: sys.phys.isDevice(e.pfn) };
        },
        vpns: () => vpnsOf(m.pt),
      });
    }
  }
  return out;
}

/** The index of the window holding `at`: the last start not above it (0 if none is). */
function windowOf(starts: readonly number[], at: number | undefined): number {
  let i = 0;
  if (at !== undefined) while (i + 1 < starts.length && starts[i + 1] <= at) i++;
  return i;
}

function procSnaps(
  sys: System,
  budget: { pages: number; truncated: boolean },
  win: SnapshotWindow,
): ProcSnap[] {
  const mirrors = mirrorsOf(sys);
  const out: ProcSnap[] = [];
  for (const p of [...sys.processes.values()].sort((a, b) => a.pid - b.pid)) {
    const mm = p.mm;
    const vmas: VmaSnap[] = [];
    const pages: PageSnap[] = [];
    const windows: number[] = [];
    let vmaPages = 0;
    let window = 0;
    budget.pages = MAX_PAGES;
    if (mm !== null) {
      const mine = mirrors.filter((m) => m.mm === mm);
      const all = [...mm.vmas.overlapping(0, Infinity)].map((n) => n.value);
      for (const v of all) {
        vmas.push(vmaSnap(v));
        const n = (v.end - v.start) / PAGE_SIZE;
        // A window starts at every MAX_PAGES-th page, counting across the VMAs.
        for (let k = (MAX_PAGES - (vmaPages % MAX_PAGES)) % MAX_PAGES; k < n; k += MAX_PAGES) {
          windows.push(v.start + k * PAGE_SIZE);
        }
        vmaPages += n;
      }
      window = windowOf(windows, win.addr);
      const from = windows[window] ?? 0;
      if (window > 0 || windows.length > 1) budget.truncated = true;
      for (const v of all) {
        if (v.end <= from) continue;
        for (let a = Math.max(v.start, from); a < v.end; a += PAGE_SIZE) {
          if (budget.pages === 0) {
            budget.truncated = true;
            break;
          }
          budget.pages--;
          const devices: DevPteSnap[] = [];
          for (const m of mine) {
            const d = m.lookup(a / PAGE_SIZE);
            if (d !== null) devices.push(d);
          }
          pages.push({
            addr: a,
            idx: [indexAt(a, 3), indexAt(a, 2), indexAt(a, 1), indexAt(a, 0)],
            cpu: cpuEntry(sys, mm, a),
            devices,
          });
        }
      }
      // Device entries where no VMA is: what a mirror kept after the CPU unmapped the range.
      const outside = new Map<number, DevPteSnap[]>();
      for (const m of mine) {
        for (const vpn of m.vpns()) {
          const a = vpn * PAGE_SIZE;
          if (mm.vmaLookup(a) !== null) continue;
          const d = m.lookup(vpn);
          if (d === null) continue;
          const list = outside.get(a) ?? [];
          list.push(d);
          outside.set(a, list);
        }
      }
      for (const [a, devices] of [...outside].sort((x, y) => x[0] - y[0])) {
        if (budget.pages === 0) {
          budget.truncated = true;
          break;
        }
        budget.pages--;
        pages.push({
          addr: a,
          idx: [indexAt(a, 3), indexAt(a, 2), indexAt(a, 1), indexAt(a, 0)],
          cpu: cpuEntry(sys, mm, a),
          devices,
          outside: true,
        });
      }
      if (outside.size > 0) pages.sort((x, y) => x.addr - y.addr);
    }
    out.push({
      pid: p.pid,
      name: p.name,
      exited: p.exited,
      mmId: mm?.id ?? null,
      vmas,
      pages,
      vmaPages,
      windows,
      window,
      stats: sys.stats(p),
    });
  }
  return out;
}

const FLAG_NAMES = Object.entries(PG).filter(([n]) => n !== 'used');

function frameSnaps(
  sys: System,
  budget: { truncated: boolean },
  win: SnapshotWindow,
): { frames: FrameSnap[]; total: number; windows: number[]; window: number } {
  const ph = sys.phys;
  const inUse = (pfn: number): boolean =>
    ph.isUsed(pfn) &&
    (ph.flags[pfn] & PG.reserved) === 0 &&
    (ph.refcount[pfn] !== 0 || ph.mapcount[pfn] !== 0);
  const windows: number[] = [];
  let total = 0;
  for (let pfn = 1; pfn < ph.nr; pfn++) {
    if (!inUse(pfn)) continue;
    if (total % MAX_FRAMES === 0) windows.push(pfn);
    total++;
  }
  const window = windowOf(windows, win.pfn);
  if (windows.length > 1) budget.truncated = true;
  const out: FrameSnap[] = [];
  for (let pfn = windows[window] ?? ph.nr; pfn < ph.nr && out.length < MAX_FRAMES; pfn++) {
    if (!inUse(pfn)) continue;
    const device = ph.isDevice(pfn);
    const owner = device ? ph.pagemapOf(pfn)?.hooks.owner : undefined;
    const head = ph.head(pfn);
    out.push({
      pfn,
      where: device ? 'device' : 'ram',
      device: owner instanceof DmirrorDevice ? owner.name : device ? 'device' : null,
      refcount: ph.refcount[pfn],
      mapcount: ph.mapcount[pfn],
      pins: head === pfn ? ph.pinCount(pfn) : 0,
      order: ph.order[pfn],
      flags: FLAG_NAMES.filter(([, bit]) => (ph.flags[pfn] & bit) !== 0).map(([n]) => n),
    });
  }
  return { frames: out, total, windows, window };
}

/** The kernel names of the ops an ops table implements. */
function opNames(ops: object): string[] {
  return Object.entries(ops)
    .filter(([, f]) => typeof f === 'function')
    .map(([k]) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
}

function wholeSnaps(subs: MmuNotifierSubscriptions): NotifierSnap['whole'] {
  return subs.hlist().map((sub) => {
    const mirrors =
      sub instanceof Hmm
        ? sub.mirrors.map((m) =>
            m instanceof LegacyMirror ? `${m.mdevice.name}#${m.id}` : m.constructor.name,
          )
        : [];
    return {
      owner: sub instanceof Hmm ? 'hmm (hmm_mirror API)' : sub.constructor.name,
      ops: opNames(sub.ops),
      users: sub.users,
      mirrors,
    };
  });
}

function notifierSnaps(sys: System): NotifierSnap[] {
  const out: NotifierSnap[] = [];
  for (const mm of [...sys.mms].sort((a, b) => a.id - b.id)) {
    const subs = mm.notifierSubscriptions;
    if (subs === null) continue;
    const intervals: NotifierSnap['intervals'] = [];
    for (const n of subs.itree.overlapping(0, Infinity)) {
      const sub = n.value;
      const mirror = (sub as { mdevice?: { name: string }; id?: number }).mdevice;
      const owner =
        mirror !== undefined ? `${mirror.name}#${String((sub as { id?: number }).id)}` : sub.constructor.name;
      const last = sub.last >= U64_END - 1 ? U64_MAX_BIG : BigInt(sub.last);
      intervals.push({ start: sub.start, last, seq: sub.invalidateSeq, owner, ops: opNames(sub.ops) });
    }
    out.push({
      mm: mm.id,
      owner: mm.ownerName,
      treeSeq: subs.invalidateSeq,
      activeRanges: subs.activeInvalidateRanges,
      intervals,
      whole: wholeSnaps(subs),
    });
  }
  return out;
}

/** The user address and process an area's byte at `iova` comes from, for user pages. */
function userOf(a: IoptArea, iova: number): { pid: number | null; user: number | null } {
  const p = a.pages;
  if (p?.type !== 'user') return { pid: null, user: null };
  return { pid: p.sourceTask.pid, user: p.base + a.startByte(iova) };
}

/**
 * What a mock domain maps over the IOAS's areas, as runs of consecutive frames. Probes one
 * PAGE_SIZE step at a time, at most MAX_PAGES steps per domain.
 */
function domainRuns(
  d: IommuDomain,
  areas: readonly IoptArea[],
  budget: { truncated: boolean },
): DomainRunSnap[] {
  const mock = mockDomainOf(d);
  if (mock === null) return [];
  const runs: DomainRunSnap[] = [];
  let probes = MAX_PAGES;
  for (const a of areas) {
    const end = lastToU64(a.last);
    let run: DomainRunSnap | null = null;
    for (let iova = a.iova; BigInt(iova) <= end; iova += PAGE_SIZE) {
      if (probes-- === 0) {
        budget.truncated = true;
        return runs;
      }
      const e = mock.peek(iova);
      if (e === null) {
        run = null;
        continue;
      }
      const pfn = Math.floor(e.phys / PAGE_SIZE);
      const pageLast = BigInt(iova) + BigInt(PAGE_SIZE - 1);
      if (run !== null && pfn === run.pfn + run.npages) {
        run.npages++;
        run.last = pageLast < end ? pageLast : end;
        if (e.dirty) run.dirty++;
      } else {
        run = {
          iova: BigInt(iova),
          last: pageLast < end ? pageLast : end,
          pfn,
          npages: 1,
          dirty: e.dirty ? 1 : 0,
          ...userOf(a, iova),
        };
        runs.push(run);
      }
    }
  }
  return runs;
}

function domainSnap(
  hwpt: Hwpt,
  hwptId: number | null,
  areas: readonly IoptArea[],
  attached: readonly IommuDomain[],
  budget: { truncated: boolean },
): DomainSnap | null {
  const nested = hwpt instanceof HwptNested;
  if (nested && !hwpt.hasDomain) return null;
  const d = hwpt.domain;
  return {
    id: d.id,
    hwpt: hwptId,
    kind: d.type,
    auto: hwpt.autoDomain,
    owner: d.owner,
    attached: attached.includes(d),
    devices: [...hwpt.devices].map((x) => x.obj.id).sort((a, b) => a - b),
    parent: nested ? hwpt.parent.obj.id : null,
    runs: nested ? [] : domainRuns(d, areas, budget),
  };
}

function ioasSnaps(sys: System, budget: { truncated: boolean }): IoasSnap[] {
  const out: IoasSnap[] = [];
  for (const ctx of iommufdContexts(sys)) {
    const objs = [...ctx.objects].sort((a, b) => a[0] - b[0]);
    for (const [id, obj] of objs) {
      if (obj === null || obj.type !== 'IOAS') continue;
      const ioas = ioasOf(obj);
      const iopt = ioas.iopt;
      const areas = iopt.areas();
      const pages = new Map<number, IoasSnap['pages'][number]>();
      for (const a of areas) {
        if (a.pages !== null) {
          const p = a.pages;
          pages.set(p.id, {
            id: p.id,
            npages: p.npages,
            npinned: p.npinned,
            base: p.base,
            type: p.type,
            pid: p.type === 'user' ? p.sourceTask.pid : null,
          });
        }
      }
      // Every HWPT whose IOVA space is this IOAS: its paging HWPTs, and nested ones over them.
      const domains: DomainSnap[] = [];
      const seen = new Set<IommuDomain>();
      for (const [hid, hobj] of objs) {
        if (hobj === null || (hobj.type !== 'HWPT_PAGING' && hobj.type !== 'HWPT_NESTED')) continue;
        const h = anyHwptOf(hobj);
        const paging = h instanceof HwptNested ? h.parent : h;
        if (paging.ioas !== ioas) continue;
        const snap = domainSnap(h, hid, areas, iopt.domains, budget);
        if (snap !== null) {
          domains.push(snap);
          seen.add(h.domain);
        }
      }
      // Automatic domains (a device attached to the IOAS itself) have no object id of their own.
      for (const h of ioas.hwptList) {
        if (seen.has(h.domain)) continue;
        const snap = domainSnap(h, h.obj.id > 0 ? h.obj.id : null, areas, iopt.domains, budget);
        if (snap !== null) {
          domains.push(snap);
          seen.add(h.domain);
        }
      }
      out.push({
        ctx: ctx.id,
        id,
        areas: areas.map((a) => ({
          iova: BigInt(a.iova),
          last: lastToU64(a.last),
          pages: a.pages?.id ?? null,
          prot: a.iommuProt,
          accesses: a.numAccesses,
          ...userOf(a, a.iova),
        })),
        pages: [...pages.values()],
        domains,
      });
    }
  }
  return out;
}

function plainArg(v: unknown): string | number | boolean | null {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return `0x${v.toString(16)}`;
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (Array.isArray(v)) return v.map((x) => String(plainArg(x))).join(',');
  const name = (v as { name?: unknown }).name;
  return typeof name === 'string' ? name : Object.prototype.toString.call(v);
}

/** The System as plain data, the windows of pages and frames `win` names. Reads only. */
export function snapshot(sys: System, win: SnapshotWindow = {}): Snapshot {
  const budget = { pages: MAX_PAGES, truncated: false };
  const processes = procSnaps(sys, budget, win);
  const frames = frameSnaps(sys, budget, win);
  const events = sys.trace.events.slice(-MAX_EVENTS).map((e): EventSnap => ({
    ts: e.ts,
    thread: e.thread,
    track: e.track,
    cat: e.cat,
    name: e.name,
    ph: e.ph,
    args: Object.fromEntries(Object.entries(e.args ?? {}).map(([k, v]) => [k, plainArg(v)])),
  }));
  return {
    processes,
    frames: frames.frames,
    frameTotal: frames.total,
    frameWindows: frames.windows,
    frameWindow: frames.window,
    notifiers: notifierSnaps(sys),
    ioas: ioasSnaps(sys, budget),
    threads: sys.sched.threads.map((t) => ({ id: t.id, name: t.name, state: t.state, at: t.pending.label })),
    devices: [
      ...dmirrorDevices(sys).map((d) => ({
        name: d.name,
        memory: d.memory,
        mirrors: d.mirrors.size,
        api: 'dmirror' as const,
      })),
      ...legacyMirrorDevices(sys).map((d) => ({
        name: d.name,
        memory: 'none',
        mirrors: d.mirrors.size,
        api: 'hmm_mirror' as const,
      })),
    ],
    events,
    counters: Object.fromEntries([...sys.trace.counters].sort((a, b) => a[0].localeCompare(b[0]))),
    schedSteps: sys.sched.totalSteps,
    truncated: budget.truncated || sys.trace.events.length > MAX_EVENTS,
  };
}
