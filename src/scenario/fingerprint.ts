/**
 * What a replay token depends on: everything in the scenario but its name, description and the
 * declared outcome, hashed (FNV-1a, 32 bits). Tokens carry it as `~HASH`, so a token made for
 * another scenario (or another version of this one) is refused instead of replaying the wrong
 * schedule. The CLI and the studio share it.
 */
import type { ParsedScenario } from './parse.ts';

export function scenarioFingerprint(parsed: ParsedScenario): string {
  const { name: _n, description: _d, explore: _e, ...rest } = parsed.scenario as Record<string, unknown>;
  const text = JSON.stringify(rest);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}
