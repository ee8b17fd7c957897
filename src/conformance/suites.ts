import type { ConformanceCase } from './types.ts';

/** Every conformance suite by the name `hetmem conformance --suite` takes. */
export const suites: Record<string, () => ConformanceCase[]> = {};
