/**
 * A sparse array keyed by non-negative integers, modelled on the kernel's xarray (lib/xarray.c):
 * a 64-way radix tree whose height follows the largest index stored, so a page cache or PFN map
 * over a handful of low indices costs one node while indices up to 2^53 still work.
 *
 * Indices above 2^32 are split into two 32-bit words with exact double division first; bit
 * operations only ever see those words, never an index wider than 32 bits.
 *
 * Each node keeps a 64-bit occupancy mask (two 32-bit words) beside its slots, so searches skip
 * empty slots a word at a time, and a node is known to be empty without scanning. Empty nodes are
 * freed on erase and the tree shrinks when only slot 0 of the root remains, as xas_shrink() does.
 *
 * `undefined` means "no entry": storing it erases, exactly as storing NULL does in the kernel.
 */

const BITS = 6;
const SLOTS = 64;
const TWO_POW_32 = 2 ** 32;
const MAX_INDEX = Number.MAX_SAFE_INTEGER;

/** 2^s for every shift a node can have (0, 6, ..., 54), so hot paths never call Math.pow. */
const POW: readonly number[] = Array.from({ length: 61 }, (_, s) => 2 ** s);

class XNode {
  /** Index bits this node consumes: 0 for leaves, whose slots hold values. */
  readonly shift: number;
  parent: XNode | null;
  /** Slot of this node in its parent. */
  offset: number;
  occLo = 0;
  occHi = 0;
  /** Pre-filled so V8 keeps a packed array rather than a dictionary or holey one. */
  readonly slots: unknown[] = new Array<unknown>(SLOTS).fill(undefined);

  constructor(shift: number, parent: XNode | null, offset: number) {
    this.shift = shift;
    this.parent = parent;
    this.offset = offset;
  }

  isEmpty(): boolean {
    return this.occLo === 0 && this.occHi === 0;
  }

  setBit(i: number): void {
    if (i < 32) this.occLo |= 1 << i;
    else this.occHi |= 1 << (i - 32);
  }

  clearBit(i: number): void {
    if (i < 32) this.occLo &= ~(1 << i);
    else this.occHi &= ~(1 << (i - 32));
  }
}

function ctz32(m: number): number {
  return 31 - Math.clz32(m & -m);
}

/** Lowest occupied slot >= off in the node, or 64. */
function nextSet(n: XNode, off: number): number {
  if (off < 32) {
    const m = n.occLo & (-1 << off);
    if (m !== 0) return ctz32(m);
    off = 32;
  }
  if (off < 64) {
    const m = n.occHi & (-1 << (off - 32));
    if (m !== 0) return 32 + ctz32(m);
  }
  return SLOTS;
}

/** Highest occupied slot <= off in the node, or -1. */
function prevSet(n: XNode, off: number): number {
  if (off >= 32) {
    const m = n.occHi & (-1 >>> (63 - off));
    if (m !== 0) return 63 - Math.clz32(m);
    off = 31;
  }
  if (off >= 0) {
    const m = n.occLo & (-1 >>> (31 - off));
    if (m !== 0) return 31 - Math.clz32(m);
  }
  return -1;
}

/**
 * Slot of an index split into 32-bit words (lo, hi) at a level. Splitting once per operation keeps
 * the per-level work to 32-bit shifts, which matters because user page indices (VA >> 12) already
 * exceed 2^32; the one level straddling the two words (shift 30) takes bits from both.
 */
function slotOfWords(lo: number, hi: number, shift: number): number {
  if (shift < 30) return (lo >>> shift) & 63;
  if (shift === 30) return (lo >>> 30) | ((hi & 15) << 2);
  return (hi >>> (shift - 32)) & 63;
}

function highWord(index: number): number {
  return index < TWO_POW_32 ? 0 : Math.floor(index / TWO_POW_32);
}

function slotOf(index: number, shift: number): number {
  const hi = highWord(index);
  return slotOfWords(index - hi * TWO_POW_32, hi, shift);
}

/** Smallest root shift whose tree spans `index`. */
function shiftFor(index: number): number {
  let shift = 0;
  while (index >= POW[shift + BITS]) shift += BITS;
  return shift;
}

function checkIndex(index: number): void {
  if (!(index >= 0 && index <= MAX_INDEX && Math.floor(index) === index)) {
    throw new RangeError(`XArray index must be an integer in [0, 2^53 - 1], got ${index}`);
  }
}

function checkBound(name: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v))
    throw new RangeError(`XArray ${name} must be a number, got ${v}`);
}

export class XArray<T> {
  static readonly MAX_INDEX = MAX_INDEX;

  private root: XNode | null = null;
  private count = 0;
  /** Bumped on every change so live iterators know their cached leaf may be stale. */
  private version = 0;
  // Result registers of locate(): avoids allocating a cursor object per search.
  private hitNode: XNode | null = null;
  private hitSlot = 0;

  get size(): number {
    return this.count;
  }

  load(index: number): T | undefined {
    checkIndex(index);
    const root = this.root;
    if (root === null || index >= POW[root.shift + BITS]) return undefined;
    const hi = highWord(index);
    const lo = index - hi * TWO_POW_32;
    let node = root;
    while (node.shift > 0) {
      const child = node.slots[slotOfWords(lo, hi, node.shift)] as XNode | undefined;
      if (child === undefined) return undefined;
      node = child;
    }
    return node.slots[lo & 63] as T | undefined;
  }

  has(index: number): boolean {
    return this.load(index) !== undefined;
  }

  store(index: number, value: T): T | undefined {
    checkIndex(index);
    if (value === undefined) return this.erase(index);
    this.version++;
    let node = this.root;
    if (node === null) {
      node = this.root = new XNode(shiftFor(index), null, 0);
    } else {
      while (index >= POW[node.shift + BITS]) {
        const top: XNode = new XNode(node.shift + BITS, null, 0);
        top.slots[0] = node;
        top.setBit(0);
        node.parent = top;
        node = this.root = top;
      }
    }
    const hi = highWord(index);
    const lo = index - hi * TWO_POW_32;
    while (node.shift > 0) {
      const off = slotOfWords(lo, hi, node.shift);
      let child = node.slots[off] as XNode | undefined;
      if (child === undefined) {
        child = new XNode(node.shift - BITS, node, off);
        node.slots[off] = child;
        node.setBit(off);
      }
      node = child;
    }
    const off = lo & 63;
    const prev = node.slots[off] as T | undefined;
    node.slots[off] = value;
    if (prev === undefined) {
      node.setBit(off);
      this.count++;
    }
    return prev;
  }

  erase(index: number): T | undefined {
    checkIndex(index);
    const root = this.root;
    if (root === null || index >= POW[root.shift + BITS]) return undefined;
    const hi = highWord(index);
    const lo = index - hi * TWO_POW_32;
    let node = root;
    while (node.shift > 0) {
      const child = node.slots[slotOfWords(lo, hi, node.shift)] as XNode | undefined;
      if (child === undefined) return undefined;
      node = child;
    }
    const off = lo & 63;
    const prev = node.slots[off] as T | undefined;
    if (prev === undefined) return undefined;
    this.version++;
    node.slots[off] = undefined;
    node.clearBit(off);
    this.count--;
    this.prune(node);
    return prev;
  }

  /** Lowest present index in [first, last]. */
  find(first: number, last = Infinity): [number, T] | undefined {
    checkIndex(first);
    checkBound('last', last);
    const index = this.locate(first, last);
    if (index < 0) return undefined;
    return [index, this.hitNode!.slots[this.hitSlot] as T];
  }

  /** Highest present index in [first, last]. */
  findLast(first: number, last: number): [number, T] | undefined {
    checkIndex(first);
    checkBound('last', last);
    const index = this.locateLast(first, Math.min(last, MAX_INDEX));
    if (index < 0) return undefined;
    return [index, this.hitNode!.slots[this.hitSlot] as T];
  }

  /**
   * Ascending entries in [first, last]. Walks each leaf's occupancy mask directly; after the caller
   * changes the array (storing or erasing anything, which is allowed) it re-searches from the next
   * index, like xa_for_each().
   */
  *range(first: number, last: number): Generator<[number, T]> {
    checkIndex(first);
    checkBound('last', last);
    let from = first;
    while (from <= last && from <= MAX_INDEX) {
      const found = this.locate(from, last);
      if (found < 0) return;
      const leaf = this.hitNode!;
      const base = found - this.hitSlot;
      let i = this.hitSlot;
      const version = this.version;
      for (;;) {
        yield [base + i, leaf.slots[i] as T];
        if (this.version !== version) {
          from = base + i + 1;
          break;
        }
        i = nextSet(leaf, i + 1);
        if (i === SLOTS) {
          from = base + SLOTS;
          break;
        }
        if (base + i > last) return;
      }
    }
  }

  /**
   * The entries in [first, last], ascending, as range() yields them, in an array: for a caller
   * that does not change the array while it goes through them (no generator to step).
   */
  entriesIn(first: number, last: number): [number, T][] {
    checkIndex(first);
    checkBound('last', last);
    const out: [number, T][] = [];
    let found = this.locate(first, last);
    while (found >= 0) {
      const leaf = this.hitNode!;
      const base = found - this.hitSlot;
      let i = this.hitSlot;
      for (; i < SLOTS && base + i <= last; i = nextSet(leaf, i + 1))
        out.push([base + i, leaf.slots[i] as T]);
      // The leaf ran out below `last`: the next run starts at the next leaf.
      const next = base + SLOTS;
      found = i === SLOTS && next <= last && next <= MAX_INDEX ? this.locate(next, last) : -1;
    }
    return out;
  }

  /** Clears whole leaf runs at a time: one mask update and one prune per leaf, not per entry. */
  eraseRange(first: number, last: number): number {
    checkIndex(first);
    checkBound('last', last);
    let erased = 0;
    let from = first;
    while (from <= last && from <= MAX_INDEX) {
      const found = this.locate(from, last);
      if (found < 0) break;
      const leaf = this.hitNode!;
      const base = found - this.hitSlot;
      const end = last - base >= SLOTS - 1 ? SLOTS - 1 : last - base;
      for (let i = this.hitSlot; i <= end; i = nextSet(leaf, i + 1)) {
        leaf.slots[i] = undefined;
        leaf.clearBit(i);
        erased++;
      }
      this.prune(leaf);
      from = base + SLOTS;
    }
    if (erased > 0) {
      this.count -= erased;
      this.version++;
    }
    return erased;
  }

  clear(): void {
    this.root = null;
    this.count = 0;
    this.hitNode = null;
    this.version++;
  }

  [Symbol.iterator](): Iterator<[number, T]> {
    return this.range(0, MAX_INDEX);
  }

  /** Number of radix nodes allocated; tests use it to check empty nodes are freed. */
  get nodeCount(): number {
    let n = 0;
    const stack: XNode[] = [];
    if (this.root !== null) stack.push(this.root);
    while (stack.length > 0) {
      const node = stack.pop()!;
      n++;
      if (node.shift > 0) for (const c of node.slots) if (c !== undefined) stack.push(c as XNode);
    }
    return n;
  }

  /** Tree height in levels (0 when empty); shows growth and shrinking. */
  get height(): number {
    return this.root === null ? 0 : this.root.shift / BITS + 1;
  }

  /** Throws if occupancy masks, parent links, counts or the shrink rule are broken. */
  checkInvariants(): void {
    const root = this.root;
    if (root === null) {
      if (this.count !== 0) throw new Error('empty xarray with nonzero size');
      return;
    }
    if (root.parent !== null) throw new Error('root has a parent');
    if (root.isEmpty()) throw new Error('empty root kept');
    if (root.shift > 0 && root.occLo === 1 && root.occHi === 0) throw new Error('root not shrunk');
    let entries = 0;
    const stack: XNode[] = [root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.slots.length !== SLOTS) throw new Error('slot array resized');
      if (node.isEmpty()) throw new Error('empty node kept');
      for (let i = 0; i < SLOTS; i++) {
        const s = node.slots[i];
        const bit = i < 32 ? (node.occLo >>> i) & 1 : (node.occHi >>> (i - 32)) & 1;
        if ((s !== undefined ? 1 : 0) !== bit) throw new Error('occupancy mask out of sync');
        if (s === undefined) continue;
        if (node.shift === 0) {
          entries++;
        } else {
          const c = s as XNode;
          if (c.parent !== node || c.offset !== i || c.shift !== node.shift - BITS) {
            throw new Error('broken child link');
          }
          stack.push(c);
        }
      }
    }
    if (entries !== this.count) throw new Error(`size ${this.count} but ${entries} entries`);
  }

  /** Frees `node` and its ancestors while empty, then shrinks the root. */
  private prune(node: XNode): void {
    let n = node;
    while (n.isEmpty()) {
      const p = n.parent;
      if (p === null) {
        this.root = null;
        return;
      }
      p.slots[n.offset] = undefined;
      p.clearBit(n.offset);
      n.parent = null;
      n = p;
    }
    let root = this.root!;
    while (root.shift > 0 && root.occLo === 1 && root.occHi === 0) {
      const child = root.slots[0] as XNode;
      child.parent = null;
      root = this.root = child;
    }
  }

  /**
   * Finds the lowest present index in [from, last], leaving its leaf and slot in hitNode/hitSlot.
   * Returns -1 if there is none. Moves down and, when a subtree is exhausted, up via parent links
   * and across to the next occupied sibling: no recursion, no allocation.
   */
  private locate(from: number, last: number): number {
    let node = this.root;
    if (node === null || last < from || from >= POW[node.shift + BITS]) return -1;
    let base = 0;
    let off = slotOf(from, node.shift);
    for (;;) {
      const i = nextSet(node, off);
      if (i === SLOTS) {
        const p: XNode | null = node.parent;
        if (p === null) return -1;
        base -= node.offset * POW[p.shift];
        off = node.offset + 1;
        node = p;
        continue;
      }
      const slotBase = base + i * POW[node.shift];
      if (slotBase > last) return -1;
      if (node.shift === 0) {
        this.hitNode = node;
        this.hitSlot = i;
        return slotBase;
      }
      const child = node.slots[i] as XNode;
      off = from > slotBase ? slotOf(from - slotBase, child.shift) : 0;
      base = slotBase;
      node = child;
    }
  }

  /** Mirror image of locate(): highest present index in [first, to]. */
  private locateLast(first: number, to: number): number {
    let node = this.root;
    if (node === null || to < first) return -1;
    const span = POW[node.shift + BITS];
    let base = 0;
    let off = to >= span ? SLOTS - 1 : slotOf(to, node.shift);
    for (;;) {
      const i = prevSet(node, off);
      if (i < 0) {
        const p: XNode | null = node.parent;
        if (p === null) return -1;
        base -= node.offset * POW[p.shift];
        off = node.offset - 1;
        node = p;
        continue;
      }
      const slotBase = base + i * POW[node.shift];
      const slotEnd = slotBase + (POW[node.shift] - 1);
      if (slotEnd < first) return -1;
      if (node.shift === 0) {
        this.hitNode = node;
        this.hitSlot = i;
        return slotBase;
      }
      const child = node.slots[i] as XNode;
      off = to < slotEnd ? slotOf(to - slotBase, child.shift) : SLOTS - 1;
      base = slotBase;
      node = child;
    }
  }
}
