/**
 * A free list of frame numbers, used as a stack: frames given back are taken again first, the
 * last one given back first. Under them lie the frames never handed out, two ascending runs
 * [lo, loEnd) and [hi, hiEnd) in steps of `step`, taken lowest first and the low run before the
 * high one. The runs are counters, not entries, so a free list over any number of frames costs
 * nothing until its frames are used.
 */
export class FreeList {
  private readonly given: number[] = [];

  constructor(
    private lo: number,
    private readonly loEnd: number,
    private hi: number,
    private readonly hiEnd: number,
    private readonly step: number,
  ) {
    if (!(step > 0) || (loEnd - lo) % step !== 0 || (hiEnd - hi) % step !== 0 || loEnd < lo || hiEnd < hi)
      throw new RangeError(
        `free list runs [${lo}, ${loEnd}) and [${hi}, ${hiEnd}) are not whole steps of ${step}`,
      );
  }

  /** Frames on the list. */
  get length(): number {
    return this.given.length + (this.loEnd - this.lo + this.hiEnd - this.hi) / this.step;
  }

  /** Gives a frame back. */
  push(frame: number): void {
    this.given.push(frame);
  }

  /** Takes a frame: the last one given back, else the lowest never handed out; undefined if none. */
  pop(): number | undefined {
    if (this.given.length > 0) return this.given.pop();
    let frame: number;
    if (this.lo < this.loEnd) {
      frame = this.lo;
      this.lo += this.step;
    } else if (this.hi < this.hiEnd) {
      frame = this.hi;
      this.hi += this.step;
    } else {
      return undefined;
    }
    return frame;
  }
}
