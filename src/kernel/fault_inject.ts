/**
 * Fault injection in the style of /proc/self/task/<tid>/fail-nth: arm(n) makes the n-th
 * injectable site reached from then on fail (once), and `injected` tells afterwards whether it
 * did. Every allocation site of the model calls shouldFail(site), so a test can walk n = 1, 2, ...
 * and fail each site in turn (tools/testing/selftests/iommu/iommufd_fail_nth.c does exactly this).
 * failSite(name, count) instead fails the next `count` calls at one named site.
 */
export class FaultInjector {
  private nth = 0;
  private seen = 0;
  injected = false;
  /** The site that failed when `injected` became true. */
  injectedAt: string | null = null;
  private readonly named = new Map<string, number>();
  /** Sites reached while armed, in order (for diagnosing which site a given n hits). */
  readonly trail: string[] = [];
  record = false;

  arm(n: number): void {
    this.nth = n;
    this.seen = 0;
    this.injected = false;
    this.injectedAt = null;
    this.trail.length = 0;
  }

  disarm(): void {
    this.nth = 0;
    this.seen = 0;
  }

  get armed(): boolean {
    return this.nth > 0;
  }

  failSite(site: string, count = 1): void {
    this.named.set(site, count);
  }

  shouldFail(site: string): boolean {
    // Nothing armed (the usual case, asked on every allocation): no lookup.
    if (this.nth === 0 && this.named.size === 0) return false;
    const left = this.named.get(site);
    if (left !== undefined && left > 0) {
      if (left === 1) this.named.delete(site);
      else this.named.set(site, left - 1);
      this.injected = true;
      this.injectedAt = site;
      return true;
    }
    if (this.nth === 0) return false;
    this.seen++;
    if (this.record) this.trail.push(site);
    if (this.seen === this.nth) {
      this.nth = 0;
      this.injected = true;
      this.injectedAt = site;
      return true;
    }
    return false;
  }
}
