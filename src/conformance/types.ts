/**
 * A ported kernel selftest case. Suites build lists of these; test/conformance/*.test.ts runs
 * them under node:test and `hetmem conformance` runs the very same functions, so both report
 * the same outcome under the kernel's names.
 */
import { sourceOf } from './sources.ts';

export interface ConformanceCase {
  readonly suite: 'hmm' | 'iommufd' | 'memfd' | 'mm' | 'xe-svm';
  /** The kernel's FIXTURE.TEST name, e.g. 'hmm.anon_read' or 'iommufd_ioas.ioas_area_destroy'. */
  readonly name: string;
  /** The kernel's fixture variant name, e.g. 'hmm_device_private', 'mock_domain_limit'. '' when none. */
  readonly variant: string;
  /** Runs the case; throws (node:assert) when an assertion the kernel test makes does not hold. */
  readonly run?: () => void | Promise<void>;
  /** Set when the model does not cover what the case needs; says why. */
  readonly notModelled?: string;
  /**
   * Set when the case fails on the kernel release the model follows: the message of the assertion
   * it fails at there (`message` matches it), and why (`reason`). The case must fail so in the
   * model too.
   */
  readonly kernelFails?: { readonly message: RegExp; readonly reason: string };
}

/** `kernel-fails`: the case fails as it fails on the kernel (ConformanceCase.kernelFails). */
export type CaseStatus = 'pass' | 'fail' | 'skip' | 'not-modelled' | 'kernel-fails';

export interface CaseResult {
  readonly name: string;
  readonly variant: string;
  readonly status: CaseStatus;
  readonly reason?: string;
  /**
   * The kernel selftest file and commit the case was ported from (`file@commit`, or
   * `repo:file@commit` when the commit was read from a repository other than torvalds/linux).
   */
  readonly portedFrom: string;
}

/** Runs one case and classifies the outcome. */
export async function runCase(c: ConformanceCase): Promise<CaseResult> {
  const src = sourceOf(c.suite, c.name);
  const base = {
    name: c.name,
    variant: c.variant,
    portedFrom: `${src.repo === undefined ? '' : `${src.repo}:`}${src.file}@${src.commit}`,
  };
  if (c.notModelled !== undefined || c.run === undefined) {
    return { ...base, status: 'not-modelled', reason: c.notModelled ?? 'no body' };
  }
  const expected = c.kernelFails;
  try {
    await c.run();
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    if (expected !== undefined && expected.message.test(reason))
      return { ...base, status: 'kernel-fails', reason: `${reason} (${expected.reason})` };
    return { ...base, status: 'fail', reason };
  }
  if (expected === undefined) return { ...base, status: 'pass' };
  return {
    ...base,
    status: 'fail',
    reason: `passes, where the kernel fails at ${String(expected.message)} (${expected.reason})`,
  };
}
