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

export class TraceLog {
  /** When false only counters are kept. */
  enabled = false;
  readonly events: TraceEvent[] = [];
  readonly counters = new Map<string, number>();

  constructor(
    private readonly now: () => number,
    private readonly threadName: () => string,
  ) {}

  count(name: string, n = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
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

  snapshot(): Map<string, number> {
    return new Map(this.counters);
  }

  /** Counters that changed since `before`, as name -> delta. */
  since(before: Map<string, number>): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, v] of this.counters) {
      const d = v - (before.get(k) ?? 0);
      if (d !== 0) out.set(k, d);
    }
    return out;
  }
}
