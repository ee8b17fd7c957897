/**
 * Differences between the model and the live kernel that are expected, each with its reason.
 * `hetmem difftest` counts them apart instead of reporting them as mismatches.
 */
import type { DiffOp, HostConfig, Outcome } from './difftest.ts';

export interface KnownDifference {
  readonly id: string;
  readonly reason: string;
  matches(op: DiffOp, model: Outcome, live: Outcome, host: HostConfig): boolean;
}

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [];

/** The id of the known difference an op's outcomes show, or null. */
export function knownDifference(op: DiffOp, model: Outcome, live: Outcome, host: HostConfig): string | null {
  return KNOWN_DIFFERENCES.find((k) => k.matches(op, model, live, host))?.id ?? null;
}
