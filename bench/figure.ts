/**
 * What every benchmark reports, and the timing helpers they share.
 *
 * A figure is one number with its unit; where the issue asks for a comparison it also carries the
 * anchor measured in the same run (or a published reference) and ratio = value / anchor. `pass`
 * says whether the goal is met; `reason` explains a figure whose anchor could not be measured.
 */

export interface Figure {
  name: string;
  value: number;
  unit: string;
  anchor?: number;
  ratio?: number;
  goal: string;
  pass: boolean;
  reason?: string;
}

/** What a suite gets from the runner. */
export interface BenchContext {
  /** Shrink every size so the whole suite finishes in seconds (CI). */
  readonly smoke: boolean;
  /** Tells the caller which figure is being measured now. */
  progress(name: string): void;
  /** Records a figure that cannot be measured (its API or tool is missing), instead of faking it. */
  missing(name: string, reason: string): void;
}

/** A figure that could not be measured, and why. */
export interface MissingFigure {
  name: string;
  reason: string;
}

/** A group of figures measured together (they share setup, or one anchor). */
export interface Suite {
  /** Prefix of every figure name the suite reports, e.g. 'faults' for 'faults.write_fault'. */
  readonly name: string;
  run(ctx: BenchContext): Promise<Figure[]>;
}

/** A value rounded to `digits` significant digits, so the JSON stays readable. */
export function round(v: number, digits = 4): number {
  if (!Number.isFinite(v) || v === 0) return v;
  return Number(v.toPrecision(digits));
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nanoseconds since an arbitrary origin, as a double (hrtime, not Date). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/**
 * Runs `setup` (untimed) and then `body` (timed) `warmup + runs` times and returns the median
 * time of `body` over the last `runs`, in nanoseconds: the warm-up runs let the JIT compile the
 * path first, so the figure is the steady state. `setup` hands its state to `body`;
 * `teardown` (untimed) releases it.
 */
export function medianNs<S>(
  runs: number,
  setup: () => S,
  body: (state: S) => void,
  teardown?: (state: S) => void,
  warmup = 0,
): number {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const s = setup();
    const t0 = nowNs();
    body(s);
    const t = nowNs() - t0;
    if (i >= warmup) times.push(t);
    teardown?.(s);
  }
  return median(times);
}

/** A figure whose value is compared with an anchor as value / anchor. */
export function ratioFigure(
  f: Omit<Figure, 'ratio' | 'pass' | 'anchor'> & { anchor: number | null },
  pass: (ratio: number) => boolean,
  reason?: string,
): Figure {
  const value = round(f.value);
  if (f.anchor === null || !(f.anchor > 0)) {
    return {
      name: f.name,
      value,
      unit: f.unit,
      goal: f.goal,
      pass: false,
      reason: reason ?? 'anchor unavailable',
    };
  }
  const ratio = f.value / f.anchor;
  const out: Figure = {
    name: f.name,
    value,
    unit: f.unit,
    anchor: round(f.anchor),
    ratio: round(ratio),
    goal: f.goal,
    pass: Number.isFinite(ratio) && pass(ratio),
  };
  if (reason !== undefined) out.reason = reason;
  return out;
}

/** Throws if a simulated operation returned -errno: a benchmark must never time a failure. */
export function check(ret: number, what: string): number {
  if (ret < 0) throw new Error(`${what} failed with ${ret}`);
  return ret;
}
