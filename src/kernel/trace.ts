/**
 * The event log: counters that every run keeps (cheap), and optional detailed events for traces,
 * run output and explorer diagrams. Timestamps are the scheduler's step count, so a trace orders
 * events exactly as they were interleaved.
 */
export type TraceCategory =
  | 'syscall'
  | 'fault'
  | 'notifier'
  | 'migrate'
  | 'pin'
  | 'reclaim'
  | 'device'
  | 'hmm'
  | 'iommufd'
  | 'sched'
  | 'lock'
  | 'violation';

export interface TraceEvent {
  /** Scheduler step count when it happened. */
  readonly ts: number;
  readonly thread: string;
  /** Where the event belongs in a trace viewer: 'cpu:<thread>', 'device:<name>', 'notifier:<mm>'. */
  readonly track: string;
  readonly cat: TraceCategory;
  readonly name: string;
  /** 'B' begin, 'E' end, 'i' instant. */
  readonly ph: 'B' | 'E' | 'i';
  readonly args?: Record<string, unknown> | undefined;
}

/**
 * The fault handlers the model tells apart, each named after the kernel function that handles it
 * (the name a fault's span takes in traces). A fault is major when it had to read the page back
 * (swap-in); every other kind is minor, as mm_account_fault() counts them.
 */
export const FAULT_KINDS = {
  /** First write to private anonymous memory: a new zeroed page. */
  anon: 'do_anonymous_page',
  /** First read of private anonymous memory: the shared zero page, read-only. */
  zero_page: 'do_anonymous_page (zero page)',
  /** Write to a COW-shared (or zero) page: a private copy (wp_page_copy). */
  cow: 'do_wp_page (copy)',
  /** Write to a read-only anonymous page only this mm uses: made writable in place (wp_page_reuse). */
  wp_reuse: 'do_wp_page (reuse)',
  /** Write to a read-only PTE of a shared mapping: made writable (wp_page_shared). */
  wp_shared: 'do_wp_page (shared)',
  /** A swap entry: the page is read back from swap (major). */
  swapin: 'do_swap_page',
  /** A device-private entry: the owner's dev_pagemap_ops.migrate_to_ram() brings the page back. */
  device_private: 'do_swap_page (migrate_to_ram)',
  /** A device-exclusive entry: the original mapping is restored (remove_device_exclusive_entry). */
  device_exclusive: 'remove_device_exclusive_entry',
  /** A migration entry: wait for the migration to finish, then retry. */
  migration_wait: 'migration_entry_wait',
  /** Read of a file / shmem page: the page cache page is mapped. */
  file_read: 'do_read_fault',
  /** Write to a private file mapping: a private anonymous copy of the cache page. */
  file_cow: 'do_cow_fault',
  /** Write to a shared file mapping: the cache page is mapped writable. */
  file_shared: 'do_shared_fault',
  /** Mapping whose driver supplies the pages (vm_ops->fault). */
  special: 'vm_ops->fault',
  /** First touch of a THP-eligible range: a PMD-mapped huge page (or huge zero page on a read). */
  pmd_anon: 'do_huge_pmd_anonymous_page',
  /** Write to a read-only PMD-mapped THP: reused when exclusive, else split and copied per PTE. */
  pmd_wp: 'do_huge_pmd_wp_page',
  /** A device-private PMD entry: migrate_to_ram() of the whole THP. */
  pmd_device_private: 'do_huge_pmd_device_private',
  /** A PMD migration entry: wait for the THP migration to finish. */
  pmd_migration_wait: 'pmd_migration_entry_wait',
  /** Empty hugetlb entry: hugetlb_no_page(). */
  hugetlb: 'hugetlb_no_page',
  /** Write to a read-only hugetlb entry: hugetlb_wp(). */
  hugetlb_wp: 'hugetlb_wp',
  /** The entry already allowed the access (another thread fixed it): accessed / dirty bits only. */
  spurious: 'handle_pte_fault (spurious)',
} as const;

export type FaultKind = keyof typeof FAULT_KINDS;

/** A fault in progress on one thread: where its span began in the log, the handlers it took. */
interface OpenFault {
  readonly index: number;
  readonly kinds: FaultKind[];
  major: boolean;
}

/**
 * One counter of a TraceLog, for a place that counts it on every fault or access: add() is
 * count() without looking the name up (after the first count, which makes the counter in its
 * order among the others, as count() would).
 */
export class Counter {
  /** The log's cell for the counter, once counted. */
  private cell: { n: number } | null = null;

  constructor(
    private readonly log: TraceLog,
    readonly name: string,
  ) {}

  add(n = 1): void {
    const c = this.cell;
    if (c !== null) c.n += n;
    else this.cell = this.log.countCell(this.name, n);
  }
}

export class TraceLog {
  /** When false only counters are kept. */
  enabled = false;
  readonly events: TraceEvent[] = [];
  /**
   * The counters, one cell each: count() adds to the cell it finds and never writes the map again
   * for a counter it has seen (a fault bumps three).
   */
  private readonly cells = new Map<string, { n: number }>();
  /** Faults whose handle_mm_fault span is open, per thread (a handler may fault again, rarely). */
  private readonly openFaults = new Map<string, OpenFault[]>();

  constructor(
    private readonly now: () => number,
    private readonly threadName: () => string,
  ) {}

  count(name: string, n = 1): void {
    this.countCell(name, n);
  }

  /** count(), returning the counter's cell (for Counter). */
  countCell(name: string, n: number): { n: number } {
    let c = this.cells.get(name);
    if (c === undefined) {
      c = { n };
      this.cells.set(name, c);
    } else c.n += n;
    return c;
  }

  /** Counters bumped on every fault or CPU access (their names are those count() takes). */
  readonly faults = new Counter(this, 'fault');
  readonly anonFaults = new Counter(this, 'fault.anon');
  readonly cpuReadBytes = new Counter(this, 'cpu.read_bytes');
  readonly cpuWriteBytes = new Counter(this, 'cpu.write_bytes');

  /** Every counter's value, by name, in the order they were first counted (a fresh map). */
  get counters(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, c] of this.cells) out.set(k, c.n);
    return out;
  }

  emit(
    cat: TraceCategory,
    name: string,
    ph: 'B' | 'E' | 'i',
    args?: Record<string, unknown>,
    track?: string,
  ): void {
    if (!this.enabled) return;
    const thread = this.threadName();
    this.events.push({ ts: this.now(), thread, track: track ?? `cpu:${thread}`, cat, name, ph, args });
  }

  /**
   * Opens a fault's span: named handle_mm_fault until the handler it takes is known
   * (faultKind()), then after that handler.
   */
  faultBegin(addr: number, write: boolean): void {
    if (!this.enabled) return;
    const thread = this.threadName();
    const f: OpenFault = { index: this.events.length, kinds: [], major: false };
    this.emit('fault', 'handle_mm_fault', 'B', { addr, write });
    const open = this.openFaults.get(thread);
    if (open === undefined) this.openFaults.set(thread, [f]);
    else open.push(f);
  }

  /**
   * Names the handler the current thread's fault takes. The last one names the span: a PMD fault
   * that falls back to the PTE level is named by the PTE handler that finally runs, a swap-in that
   * must then break COW by do_wp_page; `path` lists them all.
   */
  faultKind(kind: FaultKind): void {
    if (!this.enabled) return;
    const f = this.openFaults.get(this.threadName())?.at(-1);
    if (f === undefined) return;
    if (f.kinds.at(-1) !== kind) f.kinds.push(kind);
    if (kind === 'swapin') f.major = true;
    this.nameFault(f);
  }

  /** Marks the current thread's fault major: it read the page back from swap. */
  faultMajor(): void {
    if (!this.enabled) return;
    const f = this.openFaults.get(this.threadName())?.at(-1);
    if (f === undefined) return;
    f.major = true;
    this.nameFault(f);
  }

  private nameFault(f: OpenFault): void {
    const kind = f.kinds.at(-1);
    const b = this.events[f.index];
    const args: Record<string, unknown> = { ...b.args, kind: kind ?? null, major: f.major };
    if (f.kinds.length > 1) args.path = f.kinds.join(' > ');
    this.events[f.index] = { ...b, name: kind === undefined ? b.name : FAULT_KINDS[kind], args };
  }

  /** Closes the current thread's fault span with the vm_fault_t it returned. */
  faultEnd(ret: number): void {
    if (!this.enabled) return;
    const thread = this.threadName();
    const open = this.openFaults.get(thread);
    const f = open?.pop();
    if (f === undefined) return;
    if (open?.length === 0) this.openFaults.delete(thread);
    const kind = f.kinds.at(-1) ?? null;
    this.emit('fault', kind === null ? 'handle_mm_fault' : FAULT_KINDS[kind], 'E', { ret, kind });
  }

  /** Drops the events kept so far (and the faults still open, whose spans went with them). */
  clear(): void {
    this.events.length = 0;
    this.openFaults.clear();
  }

  snapshot(): Map<string, number> {
    return this.counters;
  }

  /** Counters that changed since `before`, as name -> delta. */
  since(before: Map<string, number>): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, c] of this.cells) {
      const d = c.n - (before.get(k) ?? 0);
      if (d !== 0) out.set(k, d);
    }
    return out;
  }
}
