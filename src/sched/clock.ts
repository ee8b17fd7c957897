/** Virtual time in nanoseconds. It moves only when every thread waits and one has a deadline, or when told to. */
export class VirtualClock {
  now = 0;

  advanceTo(t: number): void {
    if (t > this.now) this.now = t;
  }

  advanceBy(ns: number): void {
    this.now += ns;
  }
}

export const NSEC_PER_MSEC = 1_000_000;
export const NSEC_PER_USEC = 1_000;
