/**
 * Declared outcomes: a thread scenario says what exploring it must give, so a race corpus runs in
 * CI with plain exit codes. `explore: { expect: found, oracle: frame-refs }` is met by a violation
 * of that oracle (of any oracle but `setup` when none is named: a scenario whose setup fails shows
 * nothing about the race it was written for); `expect: clean` is met when the search finds none.
 * A scenario that declares nothing is held to `clean`, so exit 1 keeps meaning "a violation".
 */
import type { ScenarioT } from './schema.ts';

export type Declared = NonNullable<ScenarioT['explore']>;

export interface Judged {
  /** What the scenario declares, or null when it declares nothing (held to `clean`). */
  readonly declared: Declared | null;
  /** Whether the outcome matches the declaration (the exit status is 0 exactly when it does). */
  readonly matched: boolean;
  /** One line saying why, for the text output. */
  readonly reason: string;
}

export function judgeOutcome(declared: Declared | undefined, violation: { oracle: string } | null): Judged {
  const d = declared ?? null;
  const expect = d?.expect ?? 'clean';
  if (expect === 'clean') {
    return violation === null
      ? { declared: d, matched: true, reason: 'clean, as declared' }
      : {
          declared: d,
          matched: false,
          reason: `declared clean, but ${violation.oracle} found a violation`,
        };
  }
  const want = d?.oracle;
  if (violation === null)
    return {
      declared: d,
      matched: false,
      reason: `declared found${want !== undefined ? ` (${want})` : ''}, but no violation was found`,
    };
  if (want !== undefined ? violation.oracle === want : violation.oracle !== 'setup')
    return { declared: d, matched: true, reason: `found (${violation.oracle}), as declared` };
  return {
    declared: d,
    matched: false,
    reason: `declared found (${want ?? 'any oracle but setup'}), but the violation is ${violation.oracle}`,
  };
}
