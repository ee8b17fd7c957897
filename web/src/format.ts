/** Small display helpers. */

/**
 * An address in hex, exactly: u64s that can reach 2^64 - 1 come as bigints; numbers are integers
 * (toString(16) of an integer double prints its exact value).
 */
export const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

export function kindClass(kind: string): string {
  return `k-${kind.replace(/[^a-z]/g, '')}`;
}
