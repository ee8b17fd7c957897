import { PAGE_SIZE } from '../../lib/units.ts';

/** What zero() writes into part of a stored page; never written itself. */
const ZEROES = new Uint8Array(PAGE_SIZE);

/** Pages per slab chunk at most: 64 pages make a 256 KiB buffer. */
const CHUNK_PAGES = 64;
/** The first chunk is this small; each next one doubles, so a small system costs little. */
const FIRST_CHUNK_PAGES = 4;

/**
 * Slots are numbered in the order the chunks were made: the chunks hold 4, 4, 8, 16, 32, then 64
 * pages each, so slots [0, 4), [4, 8), [8, 16), [16, 32), [32, 64), then 64 a chunk. The chunk
 * of a slot and its page within the chunk follow from the number alone: an access to a stored
 * page reads the small list of chunks and the page's bytes, and no object of its own.
 */
function chunkOf(slot: number): number {
  if (slot >= CHUNK_PAGES) return 4 + (slot >> 6);
  if (slot < FIRST_CHUNK_PAGES) return 0;
  return 30 - Math.clz32(slot);
}

/** The offset of the slot's page in its chunk, in bytes. */
function byteInChunk(slot: number): number {
  if (slot >= CHUNK_PAGES) return (slot & (CHUNK_PAGES - 1)) * PAGE_SIZE;
  if (slot < FIRST_CHUNK_PAGES) return slot * PAGE_SIZE;
  return (slot - (1 << (31 - Math.clz32(slot)))) * PAGE_SIZE;
}

/**
 * Words of one sparse record: a head (the count, and which stretches of the page hold a recorded
 * byte: see COUNT_MASK), then one word per written byte (offset << 8 | value).
 * 31 bytes: a trace of scattered one-byte stores (some tens to a page) keeps its pages in
 * 128-byte records instead of a 4 KiB slot each, whose first touch and cache misses cost the
 * host more than the scan of a record.
 */
const SPARSE_WORDS = 32;
/** Distinct bytes a page may hold sparsely before it gets a whole 4 KiB slot. */
const SPARSE_MAX = SPARSE_WORDS - 1;
/**
 * A record's first word: the count of its bytes in the low bits, and above them one bit per
 * stretch of about 152 bytes of the page that holds a recorded byte (recordBit()). A load of a
 * byte in a stretch with no bit reads 0 without scanning the record, as does a store's search
 * for the byte it replaces: most of a trace's loads are of bytes never stored.
 */
const COUNT_MASK = 31;
const COUNT_BITS = 5;
/** Stretches of the page with a bit of their own (the 27 bits above the count). */
const STRETCHES = 32 - COUNT_BITS;

/** The bit of the head word of a record for the stretch of the page that holds `offset`. */
function recordBit(offset: number): number {
  return 1 << (COUNT_BITS + ((offset * STRETCHES) >>> 12));
}

/**
 * How many times larger the sparse records' array gets when full. The host hands out a new
 * buffer's pages untouched and pays for each at its first touch (in a virtual machine, some
 * microseconds a page): the copy of the records into the new buffer touches its first part, the
 * new records the rest. Growing 8 times over, the copies touch an eighth of what the records
 * do, not as much again as doubling's copies do; the part not yet used stays untouched.
 */
const SPARSE_GROWTH = 8;
/**
 * The most words a growth adds beyond doubling (64 MiB): a large array doubles, so that a
 * simulation with many sparse pages does not ask the host for eight times what it holds.
 */
const SPARSE_GROWTH_CAP = 16 * 1024 * 1024;

/**
 * `where` values from here up are pages holding one byte, kept in `where` itself as
 * ONE_BYTE + (offset << 8 | value): the first one-byte store to a page takes no storage at all.
 * Slot and record numbers stay far below it: 2^30 slots would be 4 TiB of host memory.
 */
const ONE_BYTE = 1 << 30;

/**
 * The data of written pages. Pages never written (and the zero pages) have no entry and read as
 * zeros. A page written in only a few bytes keeps just those bytes (a 128-byte record); once it
 * holds more, it moves to a 4 KiB slot carved out of large shared buffers. Both kinds come from
 * free lists, so freed storage is reused and the per-page path allocates no objects: the host's
 * first touch of fresh memory and the garbage collector stay out of a simulated fault.
 *
 * Per frame, `where` holds 0 (no contents), s + 1 (slot s), -(r + 1) (sparse record r) or, for a
 * page holding a single byte, that byte itself (ONE_BYTE).
 */
export class PageContents {
  private where = new Int32Array(0);
  private count = 0;
  /** The slab chunks, each one Uint8Array over its whole buffer (see chunkOf()). */
  private readonly chunks: Uint8Array[] = [];
  /** Slots made so far (the sum of the chunks' pages). */
  private slots = 0;
  /** Slots from here to `slots` were never handed out: they are still zero. */
  private unused = 0;
  /** Slots given back by delete(): zeroed when handed out again. */
  private readonly freeSlots: number[] = [];
  private sparse = new Uint32Array(0);
  private sparseUsed = 0;
  private readonly freeSparse: number[] = [];
  /** storeByte()'s staging for the stores it leaves to writeOther(). */
  private readonly oneByte = new Uint8Array(1);

  /** Pages with stored contents. */
  get size(): number {
    return this.count;
  }

  /** Bytes of storage the stored pages hold (slots and sparse records in use). */
  get storedBytes(): number {
    let bytes = 0;
    for (let pfn = 0; pfn < this.where.length; pfn++) {
      const w = this.where[pfn];
      if (w > 0 && w < ONE_BYTE) bytes += PAGE_SIZE;
      else if (w < 0) bytes += SPARSE_WORDS * 4;
    }
    return bytes;
  }

  has(pfn: number): boolean {
    return pfn < this.where.length && this.where[pfn] !== 0;
  }

  /**
   * The page's data as one 4 KiB view, or undefined for a page that reads as zeros. The view stays
   * valid until delete(); a sparsely stored page gets its whole slot here.
   */
  get(pfn: number): Uint8Array | undefined {
    if (pfn >= this.where.length) return undefined;
    const w = this.where[pfn];
    if (w === 0) return undefined;
    if (w >= ONE_BYTE) {
      const slot = this.takeSlot();
      const view = this.view(slot);
      view[(w - ONE_BYTE) >>> 8] = w & 0xff;
      this.where[pfn] = slot + 1;
      return view;
    }
    return w > 0 ? this.view(w - 1) : this.promote(pfn, -w - 1);
  }

  /** A view of slot `slot`'s page. */
  private view(slot: number): Uint8Array {
    const at = byteInChunk(slot);
    return this.chunks[chunkOf(slot)].subarray(at, at + PAGE_SIZE);
  }

  /** The page's data for writing: a zeroed slot on first use. */
  forWrite(pfn: number): Uint8Array {
    const d = this.get(pfn);
    if (d !== undefined) return d;
    this.grow(pfn);
    const slot = this.takeSlot();
    this.where[pfn] = slot + 1;
    this.count++;
    return this.view(slot);
  }

  /** Stores a copy of `data` (one page) as the page's contents. */
  set(pfn: number, data: Uint8Array): void {
    this.forWrite(pfn).set(data.subarray(0, PAGE_SIZE));
  }

  /** Makes `dst` hold what `src` holds (nothing, a sparse record or a slot). */
  copy(dst: number, src: number): void {
    const w = src < this.where.length ? this.where[src] : 0;
    if (w === 0) {
      this.delete(dst);
    } else if (w >= ONE_BYTE) {
      this.delete(dst);
      this.grow(dst);
      this.where[dst] = w;
      this.count++;
    } else if (w > 0) {
      this.set(dst, this.view(w - 1));
    } else {
      this.delete(dst);
      this.grow(dst);
      const r = this.takeSparse();
      this.sparse.copyWithin(r * SPARSE_WORDS, (-w - 1) * SPARSE_WORDS, -w * SPARSE_WORDS);
      this.where[dst] = -(r + 1);
      this.count++;
    }
  }

  /**
   * Copies `len` bytes at `offset` of the page into `dst` at `dstOffset`. A one-byte read is
   * byteAt()'s; the rest is in readOther(), so that this stays small enough for the JIT to inline
   * into a load's whole path.
   */
  read(pfn: number, offset: number, dst: Uint8Array, dstOffset: number, len: number): void {
    if (len === 1) dst[dstOffset] = this.byteAt(pfn, offset);
    else this.readOther(pfn < this.where.length ? this.where[pfn] : 0, offset, dst, dstOffset, len);
  }

  /** The byte at `offset` of the page: read() of one byte, returned rather than copied. */
  byteAt(pfn: number, offset: number): number {
    const w = pfn < this.where.length ? this.where[pfn] : 0;
    if (w < 0) return this.sparseByte(-w - 1, offset);
    if (w === 0) return 0;
    if (w < ONE_BYTE) return this.chunks[chunkOf(w - 1)][byteInChunk(w - 1) + offset];
    return (w - ONE_BYTE) >>> 8 === offset ? w & 0xff : 0;
  }

  /** read() of the page whose `where` entry is `w`, for any entry and length. */
  private readOther(w: number, offset: number, dst: Uint8Array, dstOffset: number, len: number): void {
    if (w > 0 && w < ONE_BYTE) {
      const at = byteInChunk(w - 1) + offset;
      dst.set(this.chunks[chunkOf(w - 1)].subarray(at, at + len), dstOffset);
      return;
    }
    if (w < 0 && len === 1) {
      // One byte of a sparse page (a trace replay's load): its entry, if recorded, without a fill.
      dst[dstOffset] = this.sparseByte(-w - 1, offset);
      return;
    }
    dst.fill(0, dstOffset, dstOffset + len);
    if (w === 0) return;
    if (w >= ONE_BYTE) {
      const at = ((w - ONE_BYTE) >>> 8) - offset;
      if (at >= 0 && at < len) dst[dstOffset + at] = w & 0xff;
      return;
    }
    const base = (-w - 1) * SPARSE_WORDS;
    const sp = this.sparse;
    const n = sp[base] & COUNT_MASK;
    for (let i = 1; i <= n; i++) {
      const e = sp[base + i];
      const at = (e >>> 8) - offset;
      if (at >= 0 && at < len) dst[dstOffset + at] = e & 0xff;
    }
  }

  /**
   * Reads, changing nothing, what reads of the byte at offsets[i] of frame pfns[i] (i < n) would
   * read first: each frame's `where` entry, then the byte of its slot or the head of its record.
   * Returns a number that means nothing; overwrites `pfns`. Each pass reads words that do not
   * depend on one another, so the host's cache misses for them overlap: a trace replay touches
   * the next accesses this way before making them, one after another (a software prefetch).
   */
  touch(pfns: Int32Array, offsets: Uint16Array, n: number): number {
    const where = this.where;
    for (let i = 0; i < n; i++) pfns[i] = pfns[i] < where.length ? where[pfns[i]] : 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const w = pfns[i];
      if (w < 0) sum += this.sparse[(-w - 1) * SPARSE_WORDS];
      else if (w > 0 && w < ONE_BYTE) sum += this.chunks[chunkOf(w - 1)][byteInChunk(w - 1) + offsets[i]];
    }
    return sum;
  }

  /**
   * Copies `len` bytes of `src` at `srcOffset` into the page at `offset`. Only a one-byte store
   * to a page in a slot, without contents, holding that one byte or with room in its sparse
   * record runs here (kept small, as read() is); the rest is in writeOther().
   */
  write(pfn: number, offset: number, src: Uint8Array, srcOffset: number, len: number): void {
    if (len === 1) this.storeByte(pfn, offset, src[srcOffset]);
    else this.writeOther(pfn, offset, src, srcOffset, len);
  }

  /**
   * write() of the one byte `value` at `offset` of the page. Only a page in a slot, without
   * contents, holding that one byte or with room in its sparse record is stored here.
   */
  storeByte(pfn: number, offset: number, value: number): void {
    const where = this.where;
    if (pfn < where.length) {
      const w = where[pfn];
      if (w < 0) {
        // A sparse page (a trace replay's store): its record, unless full (then writeOther()).
        if (this.storeSparseByte(-w - 1, offset, value)) return;
      } else if (w === 0 || (w >= ONE_BYTE && (w - ONE_BYTE) >>> 8 === offset)) {
        if (w === 0) this.count++;
        where[pfn] = ONE_BYTE + ((offset << 8) | value);
        return;
      } else if (w < ONE_BYTE) {
        this.chunks[chunkOf(w - 1)][byteInChunk(w - 1) + offset] = value;
        return;
      }
    }
    const src = this.oneByte;
    src[0] = value;
    this.writeOther(pfn, offset, src, 0, 1);
  }

  /** write() for any page and length. */
  private writeOther(pfn: number, offset: number, src: Uint8Array, srcOffset: number, len: number): void {
    this.grow(pfn);
    let w = this.where[pfn];
    if (w === 0 && len === 1) {
      this.where[pfn] = ONE_BYTE + ((offset << 8) | src[srcOffset]);
      this.count++;
      return;
    }
    if (w >= ONE_BYTE) {
      if (len === 1 && (w - ONE_BYTE) >>> 8 === offset) {
        this.where[pfn] = ONE_BYTE + ((offset << 8) | src[srcOffset]);
        return;
      }
      w = this.toSparse(pfn, w);
    }
    if (w === 0 && len <= SPARSE_MAX) {
      const r = this.takeSparse();
      this.sparse[r * SPARSE_WORDS] = 0;
      w = -(r + 1);
      this.where[pfn] = w;
      this.count++;
    }
    if (w < 0 && this.writeSparse(-w - 1, offset, src, srcOffset, len)) return;
    if (w <= 0) {
      // A page with no slot yet (or one whose sparse record is full): it gets its slot now.
      this.forWrite(pfn);
      w = this.where[pfn];
    }
    const chunk = this.chunks[chunkOf(w - 1)];
    const at = byteInChunk(w - 1) + offset;
    if (len === 1) chunk[at] = src[srcOffset];
    else chunk.set(src.subarray(srcOffset, srcOffset + len), at);
  }

  /**
   * Zeroes `len` bytes at `offset` of the page: a page with no contents stays without, and a
   * whole page zeroed drops its contents instead of storing zeroes.
   */
  zero(pfn: number, offset: number, len: number): void {
    if (!this.has(pfn)) return;
    if (len === PAGE_SIZE) this.delete(pfn);
    else this.write(pfn, offset, ZEROES, 0, len);
  }

  delete(pfn: number): boolean {
    if (pfn >= this.where.length) return false;
    const w = this.where[pfn];
    if (w === 0) return false;
    this.where[pfn] = 0;
    this.count--;
    if (w >= ONE_BYTE) return true;
    if (w > 0) this.freeSlots.push(w - 1);
    else this.freeSparse.push(-w - 1);
    return true;
  }

  /** The byte at `offset` of the page whose sparse record is `r` (0 when not recorded). */
  private sparseByte(r: number, offset: number): number {
    const sp = this.sparse;
    const base = r * SPARSE_WORDS;
    const head = sp[base];
    if ((head & recordBit(offset)) === 0) return 0;
    const n = head & COUNT_MASK;
    for (let i = 1; i <= n; i++) {
      const e = sp[base + i];
      if (e >>> 8 === offset) return e & 0xff;
    }
    return 0;
  }

  /**
   * Records the byte `value` at `offset` in sparse record `r` (a trace replay's store): one pass
   * over the record, and none when no byte of the offset's stretch is recorded. False (and
   * nothing changed) if the record is full and holds no byte at `offset`.
   */
  private storeSparseByte(r: number, offset: number, value: number): boolean {
    const sp = this.sparse;
    const base = r * SPARSE_WORDS;
    const head = sp[base];
    const n = head & COUNT_MASK;
    const e = ((offset << 8) | value) >>> 0;
    const bit = recordBit(offset);
    if ((head & bit) !== 0) {
      for (let i = 1; i <= n; i++) {
        if (sp[base + i] >>> 8 === offset) {
          sp[base + i] = e;
          return true;
        }
      }
    }
    if (n + 1 > SPARSE_MAX) return false;
    sp[base + n + 1] = e;
    sp[base] = ((head | bit) + 1) >>> 0;
    return true;
  }

  /** Records the bytes in sparse record `r`; false (and nothing changed) if they do not fit. */
  private writeSparse(r: number, offset: number, src: Uint8Array, srcOffset: number, len: number): boolean {
    if (len === 1) return this.storeSparseByte(r, offset, src[srcOffset]);
    if (len > SPARSE_MAX) return false;
    const sp = this.sparse;
    const base = r * SPARSE_WORDS;
    const head = sp[base];
    const n = head & COUNT_MASK;
    // Count the bytes not yet recorded first, so a write that does not fit changes nothing.
    let fresh = 0;
    for (let k = 0; k < len; k++) {
      const off = offset + k;
      let i = 1;
      while (i <= n && sp[base + i] >>> 8 !== off) i++;
      if (i > n) fresh++;
    }
    if (n + fresh > SPARSE_MAX) return false;
    let m = n;
    let bits = head & ~COUNT_MASK;
    for (let k = 0; k < len; k++) {
      const off = offset + k;
      const e = ((off << 8) | src[srcOffset + k]) >>> 0;
      let i = 1;
      while (i <= m && sp[base + i] >>> 8 !== off) i++;
      sp[base + i] = e;
      if (i > m) m = i;
      bits |= recordBit(off);
    }
    sp[base] = (bits | m) >>> 0;
    return true;
  }

  /** Moves the one byte `pfn` holds (`where` value `w`) into a sparse record; returns the new `where`. */
  private toSparse(pfn: number, w: number): number {
    const r = this.takeSparse();
    const base = r * SPARSE_WORDS;
    this.sparse[base] = (recordBit((w - ONE_BYTE) >>> 8) | 1) >>> 0;
    this.sparse[base + 1] = w - ONE_BYTE;
    this.where[pfn] = -(r + 1);
    return -(r + 1);
  }

  /** Moves sparse record `r` of `pfn` into a whole slot. */
  private promote(pfn: number, r: number): Uint8Array {
    const slot = this.takeSlot();
    const view = this.view(slot);
    const sp = this.sparse;
    const base = r * SPARSE_WORDS;
    const n = sp[base] & COUNT_MASK;
    for (let i = 1; i <= n; i++) view[sp[base + i] >>> 8] = sp[base + i] & 0xff;
    this.freeSparse.push(r);
    this.where[pfn] = slot + 1;
    return view;
  }

  private grow(pfn: number): void {
    if (pfn < this.where.length) return;
    const next = new Int32Array(Math.max(pfn + 1, 2 * this.where.length, 1024));
    next.set(this.where);
    this.where = next;
  }

  private takeSparse(): number {
    const reused = this.freeSparse.pop();
    if (reused !== undefined) return reused;
    if ((this.sparseUsed + 1) * SPARSE_WORDS > this.sparse.length) {
      const len = this.sparse.length;
      const grown = Math.max(2 * len, Math.min(SPARSE_GROWTH * len, 2 * len + SPARSE_GROWTH_CAP));
      const next = new Uint32Array(Math.max(grown, 1024 * SPARSE_WORDS));
      next.set(this.sparse);
      this.sparse = next;
    }
    return this.sparseUsed++;
  }

  private takeSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) {
      const at = byteInChunk(reused);
      this.chunks[chunkOf(reused)].fill(0, at, at + PAGE_SIZE);
      return reused;
    }
    if (this.unused === this.slots) {
      const pages = Math.min(CHUNK_PAGES, Math.max(FIRST_CHUNK_PAGES, this.slots));
      this.chunks.push(new Uint8Array(pages * PAGE_SIZE));
      this.slots += pages;
    }
    return this.unused++;
  }
}
