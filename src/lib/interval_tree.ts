/**
 * An interval tree over inclusive ranges [start, last], after the kernel's augmented rbtree
 * (include/linux/interval_tree_generic.h), which backs VMAs in the old mm, mmu interval
 * notifiers, iopt areas and accesses.
 *
 * A red-black tree ordered by start, augmented with the largest `last` of each subtree. That
 * augmentation lets a query skip any subtree that ends before the query begins, giving
 * O(log n + k) overlap searches. Keys are compared as doubles only (never with bit operations),
 * so user addresses and IOVAs up to 2^64 work at the precision doubles give them.
 *
 * Equal starts go right on insert, so nodes with the same start keep insertion order; rotations
 * preserve in-order sequence, so that order survives rebalancing and is fully deterministic.
 *
 * Data layout (DESIGN.md, "Data layout"): the tree itself lives in one ArrayBuffer, 64 bytes (one
 * cache line) per node, seen through a Float64Array and an Int32Array:
 *
 *   doubles 0..3: start, last, leftMax, rightMax     int32s 8..11: left, right, parent, red
 *
 * `leftMax`/`rightMax` are the largest `last` in the left/right subtree (-Infinity when empty): the
 * kernel's ITSUBTREE of each child, kept in the parent, so a query step reads one node's line only.
 * Links are node indexes (-1 for none); freed indexes are reused through a free list threaded
 * through `left`. Callers hold small handle objects (IntervalNode) that carry the index; a query
 * walks the arrays and touches a handle only for a node it returns.
 *
 * Every operation is iterative (no recursion) and allocates nothing except the inserted node's
 * handle (and, now and then, a doubled buffer).
 */

export interface IntervalNode<T> {
  readonly start: number;
  readonly last: number;
  value: T;
}

/** The caller's handle on a node: the interval, the value and where the node lives in the arrays. */
class Handle<T> implements IntervalNode<T> {
  /** The tree this node is linked into, or null once removed: gives O(1) has(). */
  owner: IntervalTree<T> | null;
  /** Index of the node in the tree's arrays; -1 once removed. */
  idx: number;
  /** Insertion sequence; only checkInvariants reads it, to prove equal starts stay stable. */
  readonly seq: number;

  constructor(
    readonly start: number,
    readonly last: number,
    public value: T,
    owner: IntervalTree<T>,
    idx: number,
    seq: number,
  ) {
    this.owner = owner;
    this.idx = idx;
    this.seq = seq;
  }
}

const NIL = -1;
/** Bytes per node, doubles per node, int32s per node. */
const NODE_BYTES = 64;
const FS = 8;
const IS = 16;
// Double slots (offset from n * FS).
const START = 0;
const LAST = 1;
const LMAX = 2;
const RMAX = 3;
// Int32 slots (offset from n * IS): bytes 32..47 of the node.
const LEFT = 8;
const RIGHT = 9;
const PARENT = 10;
const RED = 11;

const INITIAL_CAPACITY = 8;
/** Storage of every empty tree: a tree allocates its own on its first insert. */
const EMPTY_F = new Float64Array(0);
const EMPTY_W = new Int32Array(0);

function checkKey(name: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v))
    throw new RangeError(`interval ${name} must be a number, got ${v}`);
}

export class IntervalTree<T> {
  private f = EMPTY_F;
  private w = EMPTY_W;
  private capacity = 0;
  /** Indexes below this have been handed out at least once. */
  private hi = 0;
  /** Head of the free list of indexes (linked through LEFT). */
  private freeHead = NIL;
  /** Handle of each live node, by index. */
  private handles: (Handle<T> | null)[] = [];
  private root = NIL;
  /** Cached like the kernel's rb_root_cached: first() and the iter_first early exit are O(1). */
  private leftmost = NIL;
  private count = 0;
  private seq = 0;
  private visits = 0;

  get size(): number {
    return this.count;
  }

  /**
   * Nodes touched by the most recent firstOverlap(), overlapping() or countOverlapping() call,
   * plus any nextOverlap() calls since. Tests use it to prove queries do not degrade to O(n).
   */
  get lastQueryVisits(): number {
    return this.visits;
  }

  insert(start: number, last: number, value: T): IntervalNode<T> {
    checkKey('start', start);
    checkKey('last', last);
    if (last < start) throw new RangeError(`interval last (${last}) < start (${start})`);
    const n = this.alloc();
    const f = this.f;
    const w = this.w;
    const fb = n * FS;
    const ib = n * IS;
    f[fb + START] = start;
    f[fb + LAST] = last;
    f[fb + LMAX] = -Infinity;
    f[fb + RMAX] = -Infinity;
    w[ib + LEFT] = NIL;
    w[ib + RIGHT] = NIL;
    w[ib + RED] = 1;
    const handle = new Handle(start, last, value, this, n, this.seq++);
    if (n === this.handles.length) this.handles.push(handle);
    else this.handles[n] = handle;

    let parent = NIL;
    let cur = this.root;
    let isLeftmost = true;
    let goLeft = false;
    // Ancestors' child maxima can be raised on the way down: the new node will sit below them all.
    while (cur !== NIL) {
      parent = cur;
      const cf = cur * FS;
      if (start < f[cf + START]) {
        if (f[cf + LMAX] < last) f[cf + LMAX] = last;
        cur = w[cur * IS + LEFT];
        goLeft = true;
      } else {
        if (f[cf + RMAX] < last) f[cf + RMAX] = last;
        cur = w[cur * IS + RIGHT];
        goLeft = false;
        isLeftmost = false;
      }
    }
    w[ib + PARENT] = parent;
    if (parent === NIL) this.root = n;
    else if (goLeft) w[parent * IS + LEFT] = n;
    else w[parent * IS + RIGHT] = n;
    if (isLeftmost) this.leftmost = n;
    this.count++;
    this.insertFixup(n);
    return handle;
  }

  remove(node: IntervalNode<T>): void {
    const h = this.own(node, 'remove');
    const z = h.idx;
    const w = this.w;
    if (this.leftmost === z) this.leftmost = this.successor(z);

    let removedRed = w[z * IS + RED];
    let x: number;
    let xParent: number;
    const zl = w[z * IS + LEFT];
    const zr = w[z * IS + RIGHT];
    if (zl === NIL) {
      x = zr;
      xParent = w[z * IS + PARENT];
      this.transplant(z, x);
    } else if (zr === NIL) {
      x = zl;
      xParent = w[z * IS + PARENT];
      this.transplant(z, x);
    } else {
      // Two children: the in-order successor y takes z's place and colour.
      let y = zr;
      while (w[y * IS + LEFT] !== NIL) y = w[y * IS + LEFT];
      removedRed = w[y * IS + RED];
      x = w[y * IS + RIGHT];
      if (w[y * IS + PARENT] === z) {
        xParent = y;
      } else {
        xParent = w[y * IS + PARENT];
        this.transplant(y, x);
        w[y * IS + RIGHT] = zr;
        w[zr * IS + PARENT] = y;
      }
      this.transplant(z, y);
      w[y * IS + LEFT] = zl;
      w[zl * IS + PARENT] = y;
      w[y * IS + RED] = w[z * IS + RED];
      // y's left subtree is z's, unchanged: its max comes with it.
      this.f[y * FS + LMAX] = this.f[z * FS + LMAX];
    }
    // Every node whose subtree lost z (or had y moved out) lies on the path xParent..root; above
    // xParent only the side the path comes up from changed.
    if (xParent !== NIL) {
      const f = this.f;
      this.fixMax(xParent);
      let c = xParent;
      for (let p = w[c * IS + PARENT]; p !== NIL; c = p, p = w[p * IS + PARENT]) {
        f[p * FS + (w[p * IS + LEFT] === c ? LMAX : RMAX)] = this.subMax(c);
      }
    }
    if (removedRed === 0) this.removeFixup(x, xParent);

    // Release the index.
    w[z * IS + LEFT] = this.freeHead;
    this.freeHead = z;
    this.handles[z] = null;
    h.owner = null;
    h.idx = NIL;
    this.count--;
  }

  /** Like !RB_EMPTY_NODE(): whether the node is linked into this tree right now. */
  has(node: IntervalNode<T>): boolean {
    return node instanceof Handle && node.owner === this;
  }

  first(): IntervalNode<T> | null {
    return this.handleOf(this.leftmost);
  }

  last(): IntervalNode<T> | null {
    const w = this.w;
    let n = this.root;
    if (n === NIL) return null;
    while (w[n * IS + RIGHT] !== NIL) n = w[n * IS + RIGHT];
    return this.handles[n];
  }

  next(node: IntervalNode<T>): IntervalNode<T> | null {
    return this.handleOf(this.successor(this.own(node, 'next').idx));
  }

  prev(node: IntervalNode<T>): IntervalNode<T> | null {
    const w = this.w;
    let n = this.own(node, 'prev').idx;
    let l = w[n * IS + LEFT];
    if (l !== NIL) {
      n = l;
      while ((l = w[n * IS + RIGHT]) !== NIL) n = l;
      return this.handles[n];
    }
    let p = w[n * IS + PARENT];
    while (p !== NIL && n === w[p * IS + LEFT]) {
      n = p;
      p = w[p * IS + PARENT];
    }
    return this.handleOf(p);
  }

  /** Models interval_tree_iter_first(): the overlapping node with the smallest start. */
  firstOverlap(start: number, last: number): IntervalNode<T> | null {
    return this.handleOf(this.firstOverlapIdx(start, last));
  }

  /**
   * Models interval_tree_iter_next(): the overlapping node after `node` in start order. `node`
   * must be in the tree; it is normally the previous result of a query over the same range.
   */
  nextOverlap(node: IntervalNode<T>, start: number, last: number): IntervalNode<T> | null {
    return this.handleOf(this.nextOverlapIdx(this.own(node, 'nextOverlap').idx, start, last));
  }

  /**
   * Overlapping nodes in start order. The successor is found before a node is yielded, so the
   * caller may remove the yielded node; any other change to the tree ends the iteration's validity.
   */
  *overlapping(start: number, last: number): Generator<IntervalNode<T>> {
    let n = this.firstOverlap(start, last);
    while (n !== null) {
      const following = this.nextOverlap(n, start, last);
      yield n;
      n = following;
    }
  }

  countOverlapping(start: number, last: number): number {
    let k = 0;
    for (let n = this.firstOverlapIdx(start, last); n !== NIL; n = this.nextOverlapIdx(n, start, last)) k++;
    return k;
  }

  /** Unlinks every node (so has() turns false for each) and releases the node storage. */
  clear(): void {
    const handles = this.handles;
    for (let i = 0; i < handles.length; i++) {
      const h = handles[i];
      if (h !== null) {
        h.owner = null;
        h.idx = NIL;
      }
    }
    this.handles = [];
    this.capacity = 0;
    this.f = EMPTY_F;
    this.w = EMPTY_W;
    this.hi = 0;
    this.freeHead = NIL;
    this.root = NIL;
    this.leftmost = NIL;
    this.count = 0;
  }

  /** In start order; as with overlapping(), removing the yielded node is safe. */
  *[Symbol.iterator](): Iterator<IntervalNode<T>> {
    let n = this.first();
    while (n !== null) {
      const following = this.next(n);
      yield n;
      n = following;
    }
  }

  /** Throws if ordering, red-black balance, parent links, augmentation or bookkeeping are broken. */
  checkInvariants(): void {
    const f = this.f;
    const w = this.w;
    const root = this.root;
    if (root === NIL) {
      if (this.count !== 0 || this.leftmost !== NIL) throw new Error('empty tree with size or leftmost set');
      return;
    }
    if (w[root * IS + PARENT] !== NIL) throw new Error('root has a parent');
    if (w[root * IS + RED] !== 0) throw new Error('root is red');
    const isRed = (n: number): boolean => n !== NIL && w[n * IS + RED] !== 0;
    const subMax = (n: number): number =>
      n === NIL ? -Infinity : Math.max(f[n * FS + LAST], f[n * FS + LMAX], f[n * FS + RMAX]);
    let blackHeight = -1;
    let seen = 0;
    let prev: Handle<T> | null = null;
    // Explicit-stack in-order walk; each entry carries the black count above the node.
    const stack: [number, number][] = [];
    let cur = root;
    let blacksAbove = 0;
    while (cur !== NIL || stack.length > 0) {
      while (cur !== NIL) {
        stack.push([cur, blacksAbove]);
        blacksAbove += isRed(cur) ? 0 : 1;
        cur = w[cur * IS + LEFT];
      }
      const [n, above] = stack.pop()!;
      const blacks = above + (isRed(n) ? 0 : 1);
      seen++;
      const h = this.handles[n];
      if (h === null || h === undefined) throw new Error('linked node without a handle');
      if (h.owner !== this) throw new Error('node owner mismatch');
      if (h.idx !== n) throw new Error('handle index mismatch');
      if (h.start !== f[n * FS + START] || h.last !== f[n * FS + LAST])
        throw new Error('handle interval mismatch');
      if (h.last < h.start) throw new Error('node with last < start');
      const l = w[n * IS + LEFT];
      const r = w[n * IS + RIGHT];
      for (const child of [l, r]) {
        if (child !== NIL && w[child * IS + PARENT] !== n) throw new Error('broken parent link');
        if (child === NIL) {
          if (blackHeight === -1) blackHeight = blacks;
          else if (blackHeight !== blacks) throw new Error('unequal black height');
        }
      }
      if (isRed(n) && (isRed(l) || isRed(r))) throw new Error('red node with red child');
      if (f[n * FS + LMAX] !== subMax(l) || f[n * FS + RMAX] !== subMax(r))
        throw new Error('stale subtree max');
      if (prev !== null) {
        if (prev.start > h.start) throw new Error('start order broken');
        if (prev.start === h.start && prev.seq > h.seq)
          throw new Error('equal starts out of insertion order');
      } else if (this.leftmost !== n) {
        throw new Error('cached leftmost is wrong');
      }
      prev = h;
      cur = r;
      blacksAbove = blacks;
    }
    if (seen !== this.count) throw new Error(`size ${this.count} but ${seen} nodes linked`);
    let free = 0;
    for (let n = this.freeHead; n !== NIL; n = w[n * IS + LEFT]) {
      if (this.handles[n] !== null) throw new Error('free index still has a handle');
      free++;
    }
    if (free + this.count !== this.hi) throw new Error('node storage leaked');
  }

  private own(node: IntervalNode<T>, op: string): Handle<T> {
    if (node instanceof Handle && node.owner === this) return node as Handle<T>;
    throw new Error(`IntervalTree.${op}: node is not in this tree`);
  }

  private handleOf(n: number): IntervalNode<T> | null {
    return n === NIL ? null : this.handles[n];
  }

  private alloc(): number {
    const n = this.freeHead;
    if (n !== NIL) {
      this.freeHead = this.w[n * IS + LEFT];
      return n;
    }
    if (this.hi === this.capacity) {
      const capacity = Math.max(INITIAL_CAPACITY, this.capacity * 2);
      const buf = new ArrayBuffer(capacity * NODE_BYTES);
      const f = new Float64Array(buf);
      f.set(this.f);
      this.f = f;
      this.w = new Int32Array(buf);
      this.capacity = capacity;
    }
    return this.hi++;
  }

  /** Largest `last` in n's subtree. */
  private subMax(n: number): number {
    const f = this.f;
    const b = n * FS;
    let m = f[b + LAST];
    const l = f[b + LMAX];
    const r = f[b + RMAX];
    if (l > m) m = l;
    if (r > m) m = r;
    return m;
  }

  /** Recomputes n's child maxima from its children. */
  private fixMax(n: number): void {
    const f = this.f;
    const w = this.w;
    const l = w[n * IS + LEFT];
    const r = w[n * IS + RIGHT];
    f[n * FS + LMAX] = l === NIL ? -Infinity : this.subMax(l);
    f[n * FS + RMAX] = r === NIL ? -Infinity : this.subMax(r);
  }

  private successor(node: number): number {
    const w = this.w;
    let n = node;
    let c = w[n * IS + RIGHT];
    if (c !== NIL) {
      n = c;
      while ((c = w[n * IS + LEFT]) !== NIL) n = c;
      return n;
    }
    let p = w[n * IS + PARENT];
    while (p !== NIL && n === w[p * IS + RIGHT]) {
      n = p;
      p = w[p * IS + PARENT];
    }
    return p;
  }

  private firstOverlapIdx(start: number, last: number): number {
    this.visits = 0;
    const root = this.root;
    if (root === NIL || this.subMax(root) < start) return NIL;
    if (this.f[this.leftmost * FS + START] > last) return NIL;
    return this.subtreeSearch(root, start, last);
  }

  private nextOverlapIdx(node: number, start: number, last: number): number {
    const f = this.f;
    const w = this.w;
    let n = node;
    // Everything after n starts at or after n.start; if that is past the range, nothing follows.
    if (f[n * FS + START] > last) return NIL;
    for (;;) {
      if (w[n * IS + RIGHT] !== NIL && start <= f[n * FS + RMAX])
        return this.subtreeSearch(w[n * IS + RIGHT], start, last);
      // Climb until we arrive from a left child: that parent is n's in-order successor.
      let visits = this.visits;
      for (;;) {
        const p = w[n * IS + PARENT];
        if (p === NIL) {
          this.visits = visits;
          return NIL;
        }
        visits++;
        const cameFromRight = w[p * IS + RIGHT] === n;
        n = p;
        if (!cameFromRight) break;
      }
      this.visits = visits;
      const b = n * FS;
      if (last < f[b + START]) return NIL;
      if (start <= f[b + LAST]) return n;
    }
  }

  /**
   * The leftmost node of `node`'s subtree overlapping [start, last], or NIL. Precondition:
   * start <= the subtree's max last. Goes down one path only: the leftmost node whose `last`
   * reaches `start` is the only candidate, because every later node starts no earlier than it does.
   */
  private subtreeSearch(node: number, start: number, last: number): number {
    const f = this.f;
    const w = this.w;
    let n = node;
    let visits = this.visits;
    for (;;) {
      visits++;
      const b = n * FS;
      const ib = b * 2;
      const left = w[ib + LEFT];
      if (left !== NIL && start <= f[b + LMAX]) {
        n = left;
        continue;
      }
      if (f[b + START] > last) {
        n = NIL;
        break;
      }
      if (start <= f[b + LAST]) break;
      const right = w[ib + RIGHT];
      if (right === NIL || f[b + RMAX] < start) {
        n = NIL;
        break;
      }
      n = right;
    }
    this.visits = visits;
    return n;
  }

  private transplant(u: number, v: number): void {
    const w = this.w;
    const p = w[u * IS + PARENT];
    if (p === NIL) this.root = v;
    else if (w[p * IS + LEFT] === u) w[p * IS + LEFT] = v;
    else w[p * IS + RIGHT] = v;
    if (v !== NIL) w[v * IS + PARENT] = p;
  }

  /**
   * The subtree keeps the same members, so the parent's max for it is unchanged; x takes y's
   * inner child (and its max), and y's max for x is recomputed.
   */
  private rotateLeft(x: number): void {
    const f = this.f;
    const w = this.w;
    const y = w[x * IS + RIGHT];
    const yl = w[y * IS + LEFT];
    w[x * IS + RIGHT] = yl;
    f[x * FS + RMAX] = f[y * FS + LMAX];
    if (yl !== NIL) w[yl * IS + PARENT] = x;
    this.transplant(x, y);
    w[y * IS + LEFT] = x;
    w[x * IS + PARENT] = y;
    f[y * FS + LMAX] = this.subMax(x);
  }

  private rotateRight(x: number): void {
    const f = this.f;
    const w = this.w;
    const y = w[x * IS + LEFT];
    const yr = w[y * IS + RIGHT];
    w[x * IS + LEFT] = yr;
    f[x * FS + LMAX] = f[y * FS + RMAX];
    if (yr !== NIL) w[yr * IS + PARENT] = x;
    this.transplant(x, y);
    w[y * IS + RIGHT] = x;
    w[x * IS + PARENT] = y;
    f[y * FS + RMAX] = this.subMax(x);
  }

  private isRed(n: number): boolean {
    return n !== NIL && this.w[n * IS + RED] !== 0;
  }

  private insertFixup(node: number): void {
    const w = this.w;
    let z = node;
    let p = w[z * IS + PARENT];
    while (p !== NIL && w[p * IS + RED] !== 0) {
      const g = w[p * IS + PARENT]; // a red node is never the root
      if (p === w[g * IS + LEFT]) {
        const uncle = w[g * IS + RIGHT];
        if (this.isRed(uncle)) {
          w[p * IS + RED] = 0;
          w[uncle * IS + RED] = 0;
          w[g * IS + RED] = 1;
          z = g;
        } else {
          if (z === w[p * IS + RIGHT]) {
            this.rotateLeft(p);
            z = p;
            p = w[z * IS + PARENT];
          }
          w[p * IS + RED] = 0;
          w[g * IS + RED] = 1;
          this.rotateRight(g);
        }
      } else {
        const uncle = w[g * IS + LEFT];
        if (this.isRed(uncle)) {
          w[p * IS + RED] = 0;
          w[uncle * IS + RED] = 0;
          w[g * IS + RED] = 1;
          z = g;
        } else {
          if (z === w[p * IS + LEFT]) {
            this.rotateRight(p);
            z = p;
            p = w[z * IS + PARENT];
          }
          w[p * IS + RED] = 0;
          w[g * IS + RED] = 1;
          this.rotateLeft(g);
        }
      }
      p = w[z * IS + PARENT];
    }
    w[this.root * IS + RED] = 0;
  }

  /**
   * Restores black height after a black node left the path to `x`. `x` may be NIL (an empty
   * leaf), so its parent is passed separately. A NIL `x` is a left child exactly when
   * parent.left is NIL: a black-deficit side's sibling always exists.
   */
  private removeFixup(node: number, nodeParent: number): void {
    const w = this.w;
    let x = node;
    let parent = nodeParent;
    while (x !== this.root && !this.isRed(x)) {
      const p = parent;
      if (x === w[p * IS + LEFT]) {
        let s = w[p * IS + RIGHT];
        if (w[s * IS + RED] !== 0) {
          w[s * IS + RED] = 0;
          w[p * IS + RED] = 1;
          this.rotateLeft(p);
          s = w[p * IS + RIGHT];
        }
        if (!this.isRed(w[s * IS + LEFT]) && !this.isRed(w[s * IS + RIGHT])) {
          w[s * IS + RED] = 1;
          x = p;
          parent = w[p * IS + PARENT];
        } else {
          if (!this.isRed(w[s * IS + RIGHT])) {
            w[w[s * IS + LEFT] * IS + RED] = 0;
            w[s * IS + RED] = 1;
            this.rotateRight(s);
            s = w[p * IS + RIGHT];
          }
          w[s * IS + RED] = w[p * IS + RED];
          w[p * IS + RED] = 0;
          w[w[s * IS + RIGHT] * IS + RED] = 0;
          this.rotateLeft(p);
          x = this.root;
          parent = NIL;
        }
      } else {
        let s = w[p * IS + LEFT];
        if (w[s * IS + RED] !== 0) {
          w[s * IS + RED] = 0;
          w[p * IS + RED] = 1;
          this.rotateRight(p);
          s = w[p * IS + LEFT];
        }
        if (!this.isRed(w[s * IS + LEFT]) && !this.isRed(w[s * IS + RIGHT])) {
          w[s * IS + RED] = 1;
          x = p;
          parent = w[p * IS + PARENT];
        } else {
          if (!this.isRed(w[s * IS + LEFT])) {
            w[w[s * IS + RIGHT] * IS + RED] = 0;
            w[s * IS + RED] = 1;
            this.rotateLeft(s);
            s = w[p * IS + LEFT];
          }
          w[s * IS + RED] = w[p * IS + RED];
          w[p * IS + RED] = 0;
          w[w[s * IS + LEFT] * IS + RED] = 0;
          this.rotateRight(p);
          x = this.root;
          parent = NIL;
        }
      }
    }
    if (x !== NIL) w[x * IS + RED] = 0;
  }
}
