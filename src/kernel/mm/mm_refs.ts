/**
 * Where the references of an mm_struct were taken, for the leak oracle. mm_users (mmget) and
 * mm_count (mmgrab) are plain counts in the kernel; the model also remembers, for every reference
 * beyond the owner's, which function took it, so a reference never dropped can be reported by
 * where it came from. The owner's reference (the process for mm_users, the users as a whole for
 * mm_count) is the first entry; its put removes it, any other put forgets the most recent other
 * site (counts do not say which get a put matches), and a leak report names what is left.
 */
import type { MmStruct } from './mm_types.ts';

/** Files whose frames are the reference helpers themselves, not the caller. */
const HELPERS = /[/\\](mm_refs|exit|mmu_notifier_types)\.[tj]s/;

/**
 * The frames a site keeps: this constructor and noteRef(), the helper that takes the reference
 * (mmgrab(), mmget_not_zero()), its caller, and two more in case helpers call one another.
 * Capturing costs per frame, and a reference is taken once per fault batch.
 */
const STACK_DEPTH = 6;

/**
 * Where a reference was taken: the stack captured at the get, formatted only when a leak report
 * prints it (formatting a stack costs far more than capturing one, and almost no site is printed).
 * A brief schedule of a search (Scheduler.brief) captures none.
 */
export class RefSite {
  private readonly at: Error | null;
  private readonly thread: string | null;

  constructor(mm: MmStruct) {
    const sched = mm.sys.sched;
    this.thread = sched.current?.name ?? null;
    if (sched.brief) {
      this.at = null;
      return;
    }
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = STACK_DEPTH;
    this.at = new Error();
    Error.stackTraceLimit = limit;
  }

  /** `fn (file:line)` of the first caller outside the reference helpers, and the running thread. */
  toString(): string {
    const stack = this.at?.stack ?? '';
    let where = 'unknown caller';
    for (const line of stack.split('\n').slice(1)) {
      if (HELPERS.test(line)) continue;
      const m = /at (?:(\S+) \()?(?:.*[/\\])?([^/\\]+?):(\d+):\d+\)?$/.exec(line.trim());
      if (m !== null) {
        where = `${m[1] ?? '<anonymous>'} (${m[2]}:${m[3]})`;
        break;
      }
    }
    return this.thread !== null ? `${where} in thread ${this.thread}` : where;
  }
}

/**
 * A reference site: the owner's reference or another fixed, named holder (a thread inside a
 * syscall), or where another was taken.
 */
export type RefSiteEntry = string | RefSite;

/** Records an mm_users (`users`) or mm_count (`count`) reference taken now. */
export function noteRef(mm: MmStruct, kind: 'users' | 'count'): void {
  (kind === 'users' ? mm.userRefSites : mm.countRefSites).push(new RefSite(mm));
}

/** The first entry of each list: the owner's reference. */
export const OWNER_REF = 'the owner';

/** Forgets one reference of that kind: the owner's, or the most recent other one. */
export function dropRef(mm: MmStruct, kind: 'users' | 'count', owner = false): void {
  const list = kind === 'users' ? mm.userRefSites : mm.countRefSites;
  const at = owner ? list.indexOf(OWNER_REF) : list.findLastIndex((s) => s !== OWNER_REF);
  if (at >= 0) list.splice(at, 1);
}
