/** Small display helpers. */
export const hex = (n: number): string => `0x${n.toString(16)}`;

export function kindClass(kind: string): string {
  return `k-${kind.replace(/[^a-z]/g, '')}`;
}
