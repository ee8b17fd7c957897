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

/** `fn (file:line)` of the first frame outside the reference helpers in a captured stack. */
function callerOf(stack: string): string {
  for (const line of stack.split('\n').slice(1)) {
    if (HELPERS.test(line)) continue;
    const m = /at (?:(\S+) \()?(?:.*[/\\])?([^/\\]+?):(\d+):\d+\)?$/.exec(line.trim());
    if (m !== null) return `${m[1] ?? '<anonymous>'} (${m[2]}:${m[3]})`;
  }
  return 'unknown caller';
}

/**
 * Where one reference was taken: the stack is captured now but formatted only when a leak report
 * reads it (formatting a stack, with source maps, costs far more than taking the reference).
 */
export class RefSite {
  private readonly at = new Error();
  private text: string | null = null;
  constructor(private readonly thread: string | null) {}

  toString(): string {
    if (this.text === null) {
      const where = callerOf(this.at.stack ?? '');
      this.text = this.thread !== null ? `${where} in thread ${this.thread}` : where;
    }
    return this.text;
  }
}

/** `fn (file:line)` of the first caller outside the reference helpers, and the running thread. */
export function refSite(mm: MmStruct): RefSite {
  return new RefSite(mm.sys.sched.current?.name ?? null);
}

/** Records an mm_users (`users`) or mm_count (`count`) reference taken now. */
export function noteRef(mm: MmStruct, kind: 'users' | 'count'): void {
  (kind === 'users' ? mm.userRefSites : mm.countRefSites).push(refSite(mm));
}

/** The first entry of each list: the owner's reference. */
export const OWNER_REF = 'the owner';

/** Forgets one reference of that kind: the owner's, or the most recent other one. */
export function dropRef(mm: MmStruct, kind: 'users' | 'count', owner = false): void {
  const list = kind === 'users' ? mm.userRefSites : mm.countRefSites;
  const at = owner ? list.indexOf(OWNER_REF) : list.findLastIndex((s) => s !== OWNER_REF);
  if (at >= 0) list.splice(at, 1);
}
