/**
 * An interval tree over inclusive ranges [start, last], after the kernel's augmented rbtree
 * (include/linux/interval_tree_generic.h), which backs VMAs in the old mm, mmu interval
 * notifiers, iopt areas and accesses.
 *
 * A red-black tree ordered by start; every node also caches the largest `last` in its subtree.
 * That cache lets a query skip any subtree that ends before the query begins, giving
 * O(log n + k) overlap searches. Keys are compared as doubles only (never with bit operations),
 * so user addresses and IOVAs up to 2^64 work at the precision doubles give them.
 *
 * Equal starts go right on insert, so nodes with the same start keep insertion order; rotations
 * preserve in-order sequence, so that order survives rebalancing and is fully deterministic.
 *
 * Every operation is iterative (no recursion) and allocates nothing except the inserted node.
 */

export interface IntervalNode<T> {
  readonly start: number;
  readonly last: number;
  value: T;
}

class Node<T> implements IntervalNode<T> {
  left: Node<T> | null = null;
  right: Node<T> | null = null;
  parent: Node<T> | null = null;
  red = true;
  /** Largest `last` in this node's subtree (the kernel's ITSUBTREE). */
  subtreeLast: number;
  /** The tree this node is linked into, or null once removed: gives O(1) has(). */
  owner: IntervalTree<T> | null;
  /** Insertion sequence; only checkInvariants reads it, to prove equal starts stay stable. */
  readonly seq: number;

  constructor(
    readonly start: number,
    readonly last: number,
    public value: T,
    owner: IntervalTree<T>,
    seq: number,
  ) {
    this.subtreeLast = last;
    this.owner = owner;
    this.seq = seq;
  }
}

function computeSubtreeLast<T>(n: Node<T>): number {
  let m = n.last;
  if (n.left !== null && n.left.subtreeLast > m) m = n.left.subtreeLast;
  if (n.right !== null && n.right.subtreeLast > m) m = n.right.subtreeLast;
  return m;
}

function isRed<T>(n: Node<T> | null): boolean {
  return n !== null && n.red;
}

function checkKey(name: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v))
    throw new RangeError(`interval ${name} must be a number, got ${v}`);
}

export class IntervalTree<T> {
  private root: Node<T> | null = null;
  /** Cached like the kernel's rb_root_cached: first() and the iter_first early exit are O(1). */
  private leftmost: Node<T> | null = null;
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
    const node = new Node(start, last, value, this, this.seq++);
    let parent: Node<T> | null = null;
    let cur = this.root;
    let isLeftmost = true;
    // Ancestors' subtreeLast can be raised on the way down: the new node will sit below all of them.
    while (cur !== null) {
      if (cur.subtreeLast < last) cur.subtreeLast = last;
      parent = cur;
      if (start < cur.start) {
        cur = cur.left;
      } else {
        cur = cur.right;
        isLeftmost = false;
      }
    }
    node.parent = parent;
    if (parent === null) this.root = node;
    else if (start < parent.start) parent.left = node;
    else parent.right = node;
    if (isLeftmost) this.leftmost = node;
    this.count++;
    this.insertFixup(node);
    return node;
  }

  remove(node: IntervalNode<T>): void {
    const z = this.own(node, 'remove');
    if (this.leftmost === z) this.leftmost = this.successor(z);

    let removedRed = z.red;
    let x: Node<T> | null;
    let xParent: Node<T> | null;
    if (z.left === null) {
      x = z.right;
      xParent = z.parent;
      this.transplant(z, x);
    } else if (z.right === null) {
      x = z.left;
      xParent = z.parent;
      this.transplant(z, x);
    } else {
      // Two children: the in-order successor y takes z's place and colour.
      let y = z.right;
      while (y.left !== null) y = y.left;
      removedRed = y.red;
      x = y.right;
      if (y.parent === z) {
        xParent = y;
      } else {
        xParent = y.parent;
        this.transplant(y, x);
        y.right = z.right;
        y.right.parent = y;
      }
      this.transplant(z, y);
      y.left = z.left;
      y.left.parent = y;
      y.red = z.red;
    }
    // Every node whose subtree lost z (or had y moved out) lies on the path xParent..root.
    for (let n = xParent; n !== null; n = n.parent) n.subtreeLast = computeSubtreeLast(n);
    if (!removedRed) this.removeFixup(x, xParent);

    z.left = z.right = z.parent = null;
    z.owner = null;
    z.red = true;
    z.subtreeLast = z.last;
    this.count--;
  }

  /** Like !RB_EMPTY_NODE(): whether the node is linked into this tree right now. */
  has(node: IntervalNode<T>): boolean {
    return node instanceof Node && node.owner === this;
  }

  first(): IntervalNode<T> | null {
    return this.leftmost;
  }

  last(): IntervalNode<T> | null {
    let n = this.root;
    if (n === null) return null;
    while (n.right !== null) n = n.right;
    return n;
  }

  next(node: IntervalNode<T>): IntervalNode<T> | null {
    return this.successor(this.own(node, 'next'));
  }

  prev(node: IntervalNode<T>): IntervalNode<T> | null {
    let n = this.own(node, 'prev');
    if (n.left !== null) {
      n = n.left;
      while (n.right !== null) n = n.right;
      return n;
    }
    let p = n.parent;
    while (p !== null && n === p.left) {
      n = p;
      p = p.parent;
    }
    return p;
  }

  /** Models interval_tree_iter_first(): the overlapping node with the smallest start. */
  firstOverlap(start: number, last: number): IntervalNode<T> | null {
    this.visits = 0;
    const root = this.root;
    if (root === null || root.subtreeLast < start) return null;
    if (this.leftmost!.start > last) return null;
    return this.subtreeSearch(root, start, last);
  }

  /**
   * Models interval_tree_iter_next(): the overlapping node after `node` in start order. `node`
   * must be in the tree; it is normally the previous result of a query over the same range.
   */
  nextOverlap(node: IntervalNode<T>, start: number, last: number): IntervalNode<T> | null {
    let n = this.own(node, 'nextOverlap');
    // Everything after n starts at or after n.start; if that is past the range, nothing follows.
    if (n.start > last) return null;
    let right = n.right;
    for (;;) {
      if (right !== null && start <= right.subtreeLast) return this.subtreeSearch(right, start, last);
      // Climb until we arrive from a left child: that parent is n's in-order successor.
      for (;;) {
        const p: Node<T> | null = n.parent;
        if (p === null) return null;
        this.visits++;
        const cameFromRight = p.right === n;
        n = p;
        if (!cameFromRight) break;
      }
      right = n.right;
      if (last < n.start) return null;
      if (start <= n.last) return n;
    }
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
    for (let n = this.firstOverlap(start, last); n !== null; n = this.nextOverlap(n, start, last)) k++;
    return k;
  }

  /** Unlinks every node (so has() turns false for each) and drops the references between them. */
  clear(): void {
    // Iterative post-order using parent pointers: no stack, no recursion.
    let n = this.root;
    while (n !== null) {
      if (n.left !== null) {
        n = n.left;
      } else if (n.right !== null) {
        n = n.right;
      } else {
        const p: Node<T> | null = n.parent;
        if (p !== null) {
          if (p.left === n) p.left = null;
          else p.right = null;
        }
        n.parent = null;
        n.owner = null;
        n.red = true;
        n.subtreeLast = n.last;
        n = p;
      }
    }
    this.root = null;
    this.leftmost = null;
    this.count = 0;
  }

  /** In start order; as with overlapping(), removing the yielded node is safe. */
  *[Symbol.iterator](): Iterator<IntervalNode<T>> {
    let n = this.leftmost;
    while (n !== null) {
      const following = this.successor(n);
      yield n;
      n = following;
    }
  }

  /** Throws if ordering, red-black balance, parent links, augmentation or bookkeeping are broken. */
  checkInvariants(): void {
    const root = this.root;
    if (root === null) {
      if (this.count !== 0 || this.leftmost !== null) throw new Error('empty tree with size or leftmost set');
      return;
    }
    if (root.parent !== null) throw new Error('root has a parent');
    if (root.red) throw new Error('root is red');
    let blackHeight = -1;
    let seen = 0;
    let prev: Node<T> | null = null;
    // Explicit-stack in-order walk; each entry carries the black count above the node.
    const stack: [Node<T>, number][] = [];
    let cur: Node<T> | null = root;
    let blacksAbove = 0;
    while (cur !== null || stack.length > 0) {
      while (cur !== null) {
        stack.push([cur, blacksAbove]);
        blacksAbove += cur.red ? 0 : 1;
        cur = cur.left;
      }
      const [n, above] = stack.pop()!;
      const blacks = above + (n.red ? 0 : 1);
      seen++;
      if (n.owner !== this) throw new Error('node owner mismatch');
      if (n.last < n.start) throw new Error('node with last < start');
      for (const child of [n.left, n.right]) {
        if (child !== null && child.parent !== n) throw new Error('broken parent link');
        if (child === null) {
          if (blackHeight === -1) blackHeight = blacks;
          else if (blackHeight !== blacks) throw new Error('unequal black height');
        }
      }
      if (n.red && (isRed(n.left) || isRed(n.right))) throw new Error('red node with red child');
      if (n.subtreeLast !== computeSubtreeLast(n)) throw new Error('stale subtreeLast');
      if (prev !== null) {
        if (prev.start > n.start) throw new Error('start order broken');
        if (prev.start === n.start && prev.seq > n.seq)
          throw new Error('equal starts out of insertion order');
      } else if (this.leftmost !== n) {
        throw new Error('cached leftmost is wrong');
      }
      prev = n;
      cur = n.right;
      blacksAbove = blacks;
    }
    if (seen !== this.count) throw new Error(`size ${this.count} but ${seen} nodes linked`);
  }

  private own(node: IntervalNode<T>, op: string): Node<T> {
    if (!(node instanceof Node) || node.owner !== this) {
      throw new Error(`IntervalTree.${op}: node is not in this tree`);
    }
    return node as Node<T>;
  }

  private successor(node: Node<T>): Node<T> | null {
    let n = node;
    if (n.right !== null) {
      n = n.right;
      while (n.left !== null) n = n.left;
      return n;
    }
    let p = n.parent;
    while (p !== null && n === p.right) {
      n = p;
      p = p.parent;
    }
    return p;
  }

  /**
   * The leftmost node of `node`'s subtree overlapping [start, last], or null. Precondition:
   * start <= node.subtreeLast. Goes down one path only: the leftmost node whose `last` reaches
   * `start` is the only candidate, because every later node starts no earlier than it does.
   */
  private subtreeSearch(node: Node<T>, start: number, last: number): Node<T> | null {
    let n = node;
    for (;;) {
      this.visits++;
      const left = n.left;
      if (left !== null && start <= left.subtreeLast) {
        n = left;
        continue;
      }
      if (n.start > last) return null;
      if (start <= n.last) return n;
      const right = n.right;
      if (right === null || right.subtreeLast < start) return null;
      n = right;
    }
  }

  private transplant(u: Node<T>, v: Node<T> | null): void {
    const p = u.parent;
    if (p === null) this.root = v;
    else if (p.left === u) p.left = v;
    else p.right = v;
    if (v !== null) v.parent = p;
  }

  /** The subtree keeps the same members, so its old top's subtreeLast passes to the new top. */
  private rotateLeft(x: Node<T>): void {
    const y = x.right!;
    x.right = y.left;
    if (y.left !== null) y.left.parent = x;
    this.transplant(x, y);
    y.left = x;
    x.parent = y;
    y.subtreeLast = x.subtreeLast;
    x.subtreeLast = computeSubtreeLast(x);
  }

  private rotateRight(x: Node<T>): void {
    const y = x.left!;
    x.left = y.right;
    if (y.right !== null) y.right.parent = x;
    this.transplant(x, y);
    y.right = x;
    x.parent = y;
    y.subtreeLast = x.subtreeLast;
    x.subtreeLast = computeSubtreeLast(x);
  }

  private insertFixup(node: Node<T>): void {
    let z = node;
    let p = z.parent;
    while (p !== null && p.red) {
      const g = p.parent!; // a red node is never the root
      if (p === g.left) {
        const uncle = g.right;
        if (uncle !== null && uncle.red) {
          p.red = false;
          uncle.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.right) {
            this.rotateLeft(p);
            z = p;
            p = z.parent!;
          }
          p.red = false;
          g.red = true;
          this.rotateRight(g);
        }
      } else {
        const uncle = g.left;
        if (uncle !== null && uncle.red) {
          p.red = false;
          uncle.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.left) {
            this.rotateRight(p);
            z = p;
            p = z.parent!;
          }
          p.red = false;
          g.red = true;
          this.rotateLeft(g);
        }
      }
      p = z.parent;
    }
    this.root!.red = false;
  }

  /**
   * Restores black height after a black node left the path to `x`. `x` may be null (an empty
   * leaf), so its parent is passed separately. A null `x` is a left child exactly when
   * parent.left is null: a black-deficit side's sibling always exists.
   */
  private removeFixup(node: Node<T> | null, nodeParent: Node<T> | null): void {
    let x = node;
    let parent = nodeParent;
    while (x !== this.root && !isRed(x)) {
      const p = parent!;
      if (x === p.left) {
        let w = p.right!;
        if (w.red) {
          w.red = false;
          p.red = true;
          this.rotateLeft(p);
          w = p.right!;
        }
        if (!isRed(w.left) && !isRed(w.right)) {
          w.red = true;
          x = p;
          parent = p.parent;
        } else {
          if (!isRed(w.right)) {
            w.left!.red = false;
            w.red = true;
            this.rotateRight(w);
            w = p.right!;
          }
          w.red = p.red;
          p.red = false;
          w.right!.red = false;
          this.rotateLeft(p);
          x = this.root;
          parent = null;
        }
      } else {
        let w = p.left!;
        if (w.red) {
          w.red = false;
          p.red = true;
          this.rotateRight(p);
          w = p.left!;
        }
        if (!isRed(w.left) && !isRed(w.right)) {
          w.red = true;
          x = p;
          parent = p.parent;
        } else {
          if (!isRed(w.left)) {
            w.right!.red = false;
            w.red = true;
            this.rotateLeft(w);
            w = p.left!;
          }
          w.red = p.red;
          p.red = false;
          w.left!.red = false;
          this.rotateRight(p);
          x = this.root;
          parent = null;
        }
      }
    }
    if (x !== null) x.red = false;
  }
}
