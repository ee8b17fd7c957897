/**
 * Restoring an object graph in place: what lets the explorer run `setup` once and start every
 * schedule from the state it left, instead of building the system again.
 *
 * A Snapshot records, for every object reachable from its roots, the values of its own data
 * properties (array elements, Map and Set entries, typed-array bytes), and restore() writes them
 * back into the same objects. Identity is kept: a driver's callbacks, an oracle or a kernel path
 * that holds an object registered during setup still holds it, and sees it as setup left it.
 * Objects made after the capture are dropped with the references to them.
 *
 * What a walk of properties cannot see must not hold state that changes after the capture:
 *  - per-object side tables: kernel modules keep them in `sideTable()`s, whose writes after the
 *    capture are journalled and undone (a plain WeakMap's would not be);
 *  - variables captured by closures, and `#private` fields (the kernel uses neither for state);
 *  - the attributes of a property (enumerable, writable) changed with Object.defineProperty():
 *    restore() writes values back, not attributes (the kernel never redefines a property), and
 *    a non-enumerable property added to an object whose properties were all enumerable is not
 *    seen (the kernel defines none);
 *  - generators: a thread cannot be captured, so capture() refuses a graph that holds one
 *    (SnapshotError) and the caller rebuilds instead;
 *  - Errors (like Dates, RegExps and Promises) are kept as they are, with what they refer to.
 *
 * An owner of large typed arrays that change only in part (PhysMem: one element per frame of RAM)
 * says where with changesWithin(), and a capture and a restore copy only those elements.
 *
 * A capture disarms every snapshot taken before it (they can no longer restore), unless it is
 * taken `alongside` them: then all stay armed, each journalling the side-table writes since its
 * own capture, and any of them restores, in any order (the studio's time-travel checkpoints).
 */

export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

interface SavedObject {
  o: Record<PropertyKey, unknown>;
  keys: PropertyKey[];
  values: unknown[];
  /** Own keys at capture, the ones not restored included. */
  own: PropertyKey[];
  /** Every own key was a string (then Object.getOwnPropertyNames() lists them all, and cheaply). */
  plain: boolean;
  /**
   * Every own key was an enumerable string: then Object.keys(), which a fast object answers
   * from a cache, lists them all (see the module comment).
   */
  enumerable: boolean;
  /**
   * Every own key was an enumerable string of a writable data property: then `keys` is the
   * list Object.keys() gives, and Object.values() gives the values in its order.
   */
  direct: boolean;
  proto: unknown;
}

interface SavedArray {
  o: unknown[];
  values: unknown[];
  extra: PropertyKey[];
  extraValues: unknown[];
  /**
   * A long array most of whose elements are one value (a page table's 512 child slots, most of
   * them null): restore() fills it with `fill` and writes back only the elements at `others`,
   * instead of every element in a loop. -1: not such an array.
   */
  fillLength: number;
  fill: unknown;
  others: number[];
}

/** Arrays at least this long are restored by a fill when most of their elements are one value. */
const FILL_MIN = 32;

/** What captureArray() saves of the elements of `values` (see SavedArray). */
function fillOf(values: readonly unknown[]): Pick<SavedArray, 'fillLength' | 'fill' | 'others'> {
  const none = { fillLength: -1, fill: undefined, others: [] };
  if (values.length < FILL_MIN) return none;
  // The majority value, if there is one (Boyer and Moore's vote), then its count.
  let fill: unknown = undefined;
  let votes = 0;
  for (let i = 0; i < values.length; i++) {
    if (votes === 0) {
      fill = values[i];
      votes = 1;
    } else if (same(values[i], fill)) votes++;
    else votes--;
  }
  const others: number[] = [];
  for (let i = 0; i < values.length; i++) if (!same(values[i], fill)) others.push(i);
  if (2 * others.length > values.length) return none;
  return { fillLength: values.length, fill, others };
}

interface SavedMap {
  o: Map<unknown, unknown>;
  entries: [unknown, unknown][];
}

interface SavedSet {
  o: Set<unknown>;
  values: unknown[];
}

interface SavedBytes {
  o: Uint8Array;
  /** The bytes at capture; null for a view whose bytes outside its change ranges are zero. */
  copy: Uint8Array | null;
  /** For such a view: the bytes within its change ranges at capture, ascending. */
  held: HeldBytes[] | null;
  /** The elements that can change, for a view given to changesWithin(); null: all of them. */
  within: ChangeRanges | null;
  /** Bytes per element of the view captured. */
  scale: number;
  /** What a restore writes for `within.ever` (piecesOf()), and the `ever` it was made for. */
  pieces: BytePiece[];
  piecesOf: Ranges | null;
}

/** Bytes [at, end) of a view at capture. */
interface HeldBytes {
  at: number;
  end: number;
  data: Uint8Array;
}

/** Bytes [at, end) of a view, written back from `from` (their bytes at capture), or zero (null). */
interface BytePiece {
  at: number;
  end: number;
  from: Uint8Array | null;
}

type Ranges = readonly (readonly [number, number])[];

/** Ranges of elements [lo, hi), shared by the views of one owner (changesWithin()). */
interface ChangeRanges {
  readonly ranges: () => Ranges;
  /** Every element outside every answer is zero. */
  readonly zero: boolean;
  /**
   * Every answer of `ranges` so far, merged: ascending, disjoint. A restore copies these back.
   * Not state a snapshot restores (nothing walks it): a restore writes within it too, so what
   * it covers never shrinks.
   */
  ever: Ranges;
}

/** Whether every range of `b` lies within one of the ascending, disjoint `a`. */
function coveredBy(a: Ranges, b: Ranges): boolean {
  // Index loops: a restore asks this of every owner.
  for (let i = 0; i < b.length; i++) {
    const lo = b[i][0];
    const hi = b[i][1];
    if (lo >= hi) continue;
    let inside = false;
    for (let j = 0; j < a.length && !inside; j++) inside = a[j][0] <= lo && hi <= a[j][1];
    if (!inside) return false;
  }
  return true;
}

/** The union of two lists of ranges, ascending and disjoint. */
function unionOf(a: Ranges, b: Ranges): Ranges {
  const all = [...a, ...b].filter(([lo, hi]) => lo < hi).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of all) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1]) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/**
 * Views whose writes all fall within ranges their owner can name (see changesWithin()), and the
 * record of each `ranges` function. Not state a snapshot restores (see ChangeRanges.ever).
 */
const bounded = new WeakMap<object, ChangeRanges>();
const recordOf = new WeakMap<() => Ranges, ChangeRanges>();

/**
 * Declares where the elements of `views` can change: `ranges()` answers element ranges [lo, hi)
 * that hold every element written since the capture or the last restore, whichever came later
 * (PhysMem: the frames ever allocated, for its per-frame arrays). A capture and each restore ask
 * it (a restore before it puts anything back), and a restore copies back only the elements in
 * the union of every answer so far, which also covers what the restores themselves wrote. With
 * `zero`, every element outside that union is zero as well, and a capture copies only the
 * elements within it: a machine's RAM costs a snapshot what was used of it, not its size.
 * An owner that replaces its views (a table grown) passes them with the same `ranges` function:
 * the old views and the new share one union, which every restore of any of them widens.
 */
export function changesWithin(
  views: readonly ArrayBufferView[],
  ranges: () => Ranges,
  opts: { zero?: boolean } = {},
): void {
  let c = recordOf.get(ranges);
  if (c === undefined) recordOf.set(ranges, (c = { ranges, zero: opts.zero === true, ever: [] }));
  else if (c.zero !== (opts.zero === true))
    throw new TypeError('changesWithin(): one ranges function, two zero options');
  for (const v of views) bounded.set(v, c);
}

/**
 * The snapshots that can still restore: side-table writes are journalled for each. An array, which
 * a side-table write walks by index (a Set would take an iterator per write).
 */
const armed: Snapshot[] = [];

function arm(s: Snapshot, alone: boolean): void {
  if (alone) armed.length = 0;
  if (!armed.includes(s)) armed.push(s);
}

function disarm(s: Snapshot): void {
  const i = armed.indexOf(s);
  if (i >= 0) armed.splice(i, 1);
}

/**
 * A WeakMap whose entries a Snapshot captures and restores with the objects they are keyed by. The
 * kernel's per-object side tables (state kept off an object, as a `static` map keyed by it) use it.
 */
export class SideTable<K extends object, V> extends WeakMap<K, V> {
  /**
   * Set once an entry was ever put in: a capture looks up the objects it walks only in these.
   * (Declared, not initialised: a field's initialiser would run after WeakMap's constructor,
   * which puts the entries it is given with set().)
   */
  declare used?: true;

  override set(key: K, value: V): this {
    this.used = true;
    for (let i = 0; i < armed.length; i++) armed[i].journal(this, key);
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    for (let i = 0; i < armed.length; i++) armed[i].journal(this, key);
    return super.delete(key);
  }
}

/** Every side table, so a capture can find the entries of the objects it walks. */
const tables: SideTable<object, unknown>[] = [];

/** Makes a side table (module-level: one per kind of side state). */
export function sideTable<K extends object, V>(): SideTable<K, V> {
  const t = new SideTable<K, V>();
  tables.push(t);
  return t;
}

/** Object.is(), in the form the compiler inlines: -0 and +0 differ, NaN is not itself. */
function same(a: unknown, b: unknown): boolean {
  return a === b && (a !== 0 || 1 / a === 1 / (b as number));
}

/** Whether `m` holds exactly `entries`, in their order (the order iteration follows). */
function mapIntact(m: Map<unknown, unknown>, entries: readonly [unknown, unknown][]): boolean {
  if (m.size !== entries.length) return false;
  let i = 0;
  for (const [k, v] of m) {
    const e = entries[i++];
    if (!same(e[0], k) || !same(e[1], v)) return false;
  }
  return true;
}

/** Whether `set` holds exactly `values`, in their order. */
function setIntact(set: Set<unknown>, values: readonly unknown[]): boolean {
  if (set.size !== values.length) return false;
  let i = 0;
  for (const v of set) if (!same(values[i++], v)) return false;
  return true;
}

export class Snapshot {
  // What was captured, a list per kind: restore() walks each with one shape of record, and the
  // kinds are independent of each other (each puts back the contents of its own objects).
  private readonly savedObjects: SavedObject[] = [];
  private readonly savedArrays: SavedArray[] = [];
  private readonly savedMaps: SavedMap[] = [];
  private readonly savedSets: SavedSet[] = [];
  private readonly savedBytes: SavedBytes[] = [];
  /** The change ranges of the views captured that have them. */
  private readonly within: ChangeRanges[] = [];
  /** Side-table entries at capture, by table: key -> value. */
  private readonly entries = new Map<SideTable<object, unknown>, Map<object, unknown>>();
  /** Side-table keys written since the capture (or the last restore). */
  private readonly touchedTables: SideTable<object, unknown>[] = [];
  private readonly touchedKeys: object[] = [];
  /** Objects walked (their side-table entries are the snapshot's to restore). */
  private readonly walked = new Set<object>();
  /** Objects captured. */
  readonly objects: number;

  /**
   * Captures everything reachable from `roots`, not walking into `stop` (shared, immutable
   * objects such as a parsed scenario). Throws SnapshotError for a graph it cannot restore.
   * Disarms the snapshots taken before, unless `alongside` keeps them armed too.
   */
  constructor(roots: readonly object[], stop: readonly object[] = [], opts: { alongside?: boolean } = {}) {
    const seen = this.walked;
    for (const s of stop) seen.add(s);
    const work: unknown[] = [...roots];
    // A table nothing was ever put in has no entry to look for.
    const live = tables.filter((t) => t.used === true);
    while (work.length > 0) {
      const v = work.pop();
      if (v === null || typeof v !== 'object') continue;
      if (seen.has(v)) continue;
      seen.add(v);
      this.capture(v, work);
      for (const t of live) {
        if (!t.has(v)) continue;
        let m = this.entries.get(t);
        if (m === undefined) {
          m = new Map();
          this.entries.set(t, m);
        }
        const value = t.get(v);
        m.set(v, value);
        work.push(value);
      }
    }
    for (const s of stop) seen.delete(s);
    this.objects =
      this.savedObjects.length +
      this.savedArrays.length +
      this.savedMaps.length +
      this.savedSets.length +
      this.savedBytes.length;
    arm(this, opts.alongside !== true);
  }

  private capture(o: object, work: unknown[]): void {
    // One tag for both tests (it is a string made for each object walked).
    const tag = Object.prototype.toString.call(o);
    if (tag === '[object Generator]')
      throw new SnapshotError('the state holds a generator (a running thread)');
    // A module namespace.
    if (tag === '[object Module]') return;
    if (ArrayBuffer.isView(o)) {
      const bytes = new Uint8Array(o.buffer, o.byteOffset, o.byteLength);
      const within = bounded.get(o) ?? null;
      const scale = (o as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      if (within !== null && !this.within.includes(within)) {
        this.within.push(within);
        widen(within);
      }
      let copy: Uint8Array | null = null;
      let held: HeldBytes[] | null = null;
      if (within?.zero === true) {
        held = [];
        for (const [lo, hi] of within.ever) {
          const at = Math.min(lo * scale, bytes.length);
          const end = Math.min(hi * scale, bytes.length);
          if (at < end) held.push({ at, end, data: bytes.slice(at, end) });
        }
      } else copy = bytes.slice();
      this.savedBytes.push({ o: bytes, copy, held, within, scale, pieces: [], piecesOf: null });
      return;
    }
    if (o instanceof ArrayBuffer) {
      const bytes = new Uint8Array(o);
      this.savedBytes.push({
        o: bytes,
        copy: bytes.slice(),
        held: null,
        within: null,
        scale: 1,
        pieces: [],
        piecesOf: null,
      });
      return;
    }
    if (o instanceof Map) {
      const entries = [...(o as Map<unknown, unknown>)];
      for (const [k, v] of entries) work.push(k, v);
      this.savedMaps.push({ o: o as Map<unknown, unknown>, entries });
      return;
    }
    if (o instanceof Set) {
      const values = [...(o as Set<unknown>)];
      for (const v of values) work.push(v);
      this.savedSets.push({ o: o as Set<unknown>, values });
      return;
    }
    // An Error is a record of where something happened (uaf.ts keeps one per free site): kept as
    // it is. Walking it would read `stack`, which formats the captured frames, and writing
    // `stack` back at every restore costs more than the rest of a small world.
    if (o instanceof Date || o instanceof RegExp || o instanceof Promise || o instanceof Error) return;
    // A side table held by an object (a field naming the module's table): its entries are
    // captured with the objects they are keyed by, above.
    if (o instanceof SideTable) return;
    if (o instanceof WeakMap || o instanceof WeakSet) {
      throw new SnapshotError('the state holds a WeakMap or WeakSet outside a side table');
    }
    if (Array.isArray(o)) {
      const values = o.slice() as unknown[];
      for (const v of values) work.push(v);
      const extra: PropertyKey[] = [];
      const extraValues: unknown[] = [];
      // An array's own keys come in the order its elements' indices, `length` (made with the
      // array, before any other named property), the other names, the symbols: the keys after
      // `length` are the ones that are not elements.
      const own = Reflect.ownKeys(o);
      for (let i = own.indexOf('length') + 1; i < own.length; i++) {
        const k = own[i];
        const d = Object.getOwnPropertyDescriptor(o, k)!;
        if (!('value' in d)) continue;
        extra.push(k);
        extraValues.push(d.value);
        work.push(d.value);
      }
      this.savedArrays.push({ o: o as unknown[], values, extra, extraValues, ...fillOf(values) });
      return;
    }
    const frozen = Object.isFrozen(o);
    const keys: PropertyKey[] = [];
    const values: unknown[] = [];
    const own = Reflect.ownKeys(o);
    let enumerable = true;
    for (const k of own) {
      const d = Object.getOwnPropertyDescriptor(o, k)!;
      if (d.enumerable !== true || typeof k !== 'string') enumerable = false;
      if (!('value' in d)) continue;
      work.push(d.value);
      if (frozen || d.writable !== true) continue;
      keys.push(k);
      values.push(d.value);
    }
    if (frozen) return;
    const direct = enumerable && keys.length === own.length;
    this.savedObjects.push({
      o: o as Record<PropertyKey, unknown>,
      keys,
      values,
      // The same names (one list less for a restore to read).
      own: direct ? keys : own,
      plain: Object.getOwnPropertyNames(o).length === own.length,
      enumerable,
      direct,
      proto: Object.getPrototypeOf(o),
    });
  }

  /** Whether restore() can still be trusted: no other snapshot was captured since, but alongside. */
  get valid(): boolean {
    return armed.includes(this);
  }

  journal(t: SideTable<object, unknown>, key: object): void {
    this.touchedTables.push(t);
    this.touchedKeys.push(key);
  }

  /** Puts every captured object back as it was at the capture. */
  restore(): void {
    if (!armed.includes(this)) throw new SnapshotError('another snapshot was captured since');
    // Before anything is put back: the owners' records of what they touched are restored too.
    const within = this.within;
    for (let i = 0; i < within.length; i++) widen(within[i]);
    // One function per kind: each stays small enough for the JIT to optimise as a whole (the
    // loops in one method ran at about half the speed).
    restoreObjects(this.savedObjects);
    restoreArrays(this.savedArrays);
    restoreMaps(this.savedMaps);
    restoreSets(this.savedSets);
    restoreBytes(this.savedBytes);
    const tables = this.touchedTables;
    const keys = this.touchedKeys;
    // The writes below are journalled after these (and dropped with them).
    const n = tables.length;
    for (let i = 0; i < n; i++) {
      const t = tables[i];
      const key = keys[i];
      const at = this.entries.get(t);
      // The other armed snapshots must undo this write too when they restore.
      if (at?.has(key) === true) t.set(key, at.get(key));
      else if (this.walked.has(key)) t.delete(key);
    }
    // Journalled above as writes since this capture as well: the state now is the captured one.
    tables.length = 0;
    keys.length = 0;
  }

  /** Stops journalling for this snapshot (it can no longer restore). */
  release(): void {
    disarm(this);
  }
}

/**
 * A key deleted since (or added, or deleted and added back): puts every key back in its captured
 * order, which iteration over the object follows (the values are written after).
 */
function rekey(s: SavedObject): void {
  const captured = new Set(s.own);
  const written = new Set(s.keys);
  for (const k of Reflect.ownKeys(s.o)) {
    if (!captured.has(k) || written.has(k)) Reflect.deleteProperty(s.o, k);
  }
}

/** restore() of the captured objects. */
function restoreObjects(objects: readonly SavedObject[]): void {
  for (let n = 0; n < objects.length; n++) {
    const s = objects[n];
    const o = s.o;
    const { keys, values } = s;
    let intact: boolean;
    if (s.enumerable) {
      // As below, from the list of enumerable names (most objects here are of this kind).
      const now = Object.keys(o);
      intact = now.length === s.own.length && Object.getOwnPropertySymbols(o).length === 0;
      for (let i = 0; i < now.length && intact; i++) intact = now[i] === s.own[i];
    } else if (s.plain) {
      // The same own keys in the same order: the same strings, and no symbol. (One list of
      // names and an empty list of symbols cost half of Reflect.ownKeys().)
      const now = Object.getOwnPropertyNames(o);
      intact = now.length === s.own.length && Object.getOwnPropertySymbols(o).length === 0;
      for (let i = 0; i < now.length && intact; i++) intact = now[i] === s.own[i];
    } else {
      const now = Reflect.ownKeys(o);
      intact = now.length === s.own.length;
      for (let i = 0; i < now.length && intact; i++) intact = now[i] === s.own[i];
    }
    if (!intact) rekey(s);
    if (intact && s.direct) {
      // The values in one list, as Object.keys() gives the names (a fast object answers
      // both from its layout): cheaper than a lookup by name of each.
      const now = Object.values(o);
      for (let i = 0; i < keys.length; i++) {
        const v = values[i];
        if (!same(now[i], v)) o[keys[i]] = v;
      }
    } else {
      // Most values are as captured, and reading one costs less than writing it.
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        const v = values[i];
        if (!same(o[k], v)) o[k] = v;
      }
    }
    if (Object.getPrototypeOf(o) !== s.proto) Object.setPrototypeOf(o, s.proto as object | null);
  }
}

/** restore() of the captured arrays. */
function restoreArrays(arrays: readonly SavedArray[]): void {
  for (let n = 0; n < arrays.length; n++) {
    const s = arrays[n];
    const o = s.o;
    const { values } = s;
    // Setting `length` costs a call into the runtime even when it does not change it, and
    // more than a few pops when the array grew by a few elements.
    const len = values.length;
    if (o.length > len + 8 || o.length < len) o.length = len;
    else while (o.length > len) o.pop();
    if (s.fillLength === len) {
      // Every element written, as below: most in one fill (a builtin), the others one by one.
      o.fill(s.fill, 0, len);
      const others = s.others;
      for (let i = 0; i < others.length; i++) o[others[i]] = values[others[i]];
    } else for (let i = 0; i < len; i++) o[i] = values[i];
    const rec = o as unknown as Record<PropertyKey, unknown>;
    for (let i = 0; i < s.extra.length; i++) rec[s.extra[i]] = s.extraValues[i];
  }
}

/** Adds what `c.ranges()` answers now to `c.ever`. */
function widen(c: ChangeRanges): void {
  const now = c.ranges();
  if (!coveredBy(c.ever, now)) c.ever = unionOf(c.ever, now);
}

/** restore() of the captured typed arrays and buffers. */
function restoreBytes(bytes: readonly SavedBytes[]): void {
  for (let n = 0; n < bytes.length; n++) {
    const s = bytes[n];
    if (s.within === null) {
      s.o.set(s.copy!);
      continue;
    }
    if (s.piecesOf !== s.within.ever) piecesOf(s);
    const o = s.o;
    const pieces = s.pieces;
    for (let i = 0; i < pieces.length; i++) {
      const { at, end, from } = pieces[i];
      if (from === null) o.fill(0, at, end);
      else if (end - at > BYTEWISE_MAX) o.set(from, at);
      // A few bytes: copied one by one (set() costs more than the copy).
      else for (let b = at; b < end; b++) o[b] = from[b - at];
    }
  }
}

/** Ranges of bytes up to this long are copied back one by one, longer ones with set(). */
const BYTEWISE_MAX = 64;

/** What a restore of the saved bytes `s` writes back, for the ranges `s.within.ever`. */
function piecesOf(s: SavedBytes): void {
  const ranges = s.within!.ever;
  const length = s.o.length;
  const pieces: BytePiece[] = [];
  for (const [first, last] of ranges) {
    const at = Math.min(first * s.scale, length);
    const end = Math.min(last * s.scale, length);
    if (at >= end) continue;
    if (s.copy !== null) {
      pieces.push({ at, end, from: s.copy.subarray(at, end) });
      continue;
    }
    // The bytes held at capture where they overlap, zero between them.
    let cursor = at;
    for (const h of s.held!) {
      if (h.end <= cursor || h.at >= end) continue;
      if (h.at > cursor) pieces.push({ at: cursor, end: h.at, from: null });
      const to = Math.min(h.end, end);
      const from = Math.max(h.at, cursor);
      pieces.push({ at: from, end: to, from: h.data.subarray(from - h.at, to - h.at) });
      cursor = to;
    }
    if (cursor < end) pieces.push({ at: cursor, end, from: null });
  }
  s.pieces = pieces;
  s.piecesOf = ranges;
}

/** restore() of the captured maps. */
function restoreMaps(maps: readonly SavedMap[]): void {
  for (let n = 0; n < maps.length; n++) {
    const s = maps[n];
    // Most maps are as captured: comparing them costs less than rebuilding their tables.
    if (mapIntact(s.o, s.entries)) continue;
    s.o.clear();
    for (const [k, v] of s.entries) s.o.set(k, v);
  }
}

/** restore() of the captured sets. */
function restoreSets(sets: readonly SavedSet[]): void {
  for (let n = 0; n < sets.length; n++) {
    const s = sets[n];
    if (setIntact(s.o, s.values)) continue;
    s.o.clear();
    for (const v of s.values) s.o.add(v);
  }
}
