/**
 * Branded numeric types for the address spaces the model deals in, so a PFN cannot be passed
 * where a virtual address is expected. All are plain numbers at run time (exact below 2^53).
 */
export type Va = number & { readonly __brand: 'Va' };
export type Pfn = number & { readonly __brand: 'Pfn' };
export type Iova = number & { readonly __brand: 'Iova' };

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PMD_SHIFT = 21;
export const PMD_SIZE = 2 * 1024 * 1024;
export const PUD_SHIFT = 30;
export const PUD_SIZE = 1024 * 1024 * 1024;
export const HPAGE_PMD_NR = 512;
export const HPAGE_PMD_ORDER = 9;
/** ULONG_MAX as a double (2^64): exact comparisons against user addresses, which stay below 2^47. */
export const ULONG_MAX = 2 ** 64 - 1;
/** x86-64 4-level paging: user space ends at 2^47 - one page guard. */
export const TASK_SIZE = 2 ** 47 - PAGE_SIZE;

/*
 * PAGE_SIZE - 1 as a constant of this module only: optimised code reads an exported binding
 * from its cell and checks it at every use, even in its own module, and pageOffset() is on the
 * path of every access and fault.
 */
const OFFSET_MASK = PAGE_SIZE - 1;

export const va = (n: number): Va => n as Va;
export const pfn = (n: number): Pfn => n as Pfn;
export const iova = (n: number): Iova => n as Iova;

export function pageAligned(n: number): boolean {
  return n % PAGE_SIZE === 0;
}

export function pageAlignDown(n: number): number {
  return n - (n % PAGE_SIZE);
}

/**
 * `addr % PAGE_SIZE` for an address that is a non-negative integer (below 2^53), without the
 * floating-point remainder `%` costs on numbers beyond 32 bits: the conversion to 32 bits keeps
 * the low bits, which are all the page offset needs.
 */
export function pageOffset(addr: number): number {
  return (addr >>> 0) & OFFSET_MASK;
}

export function pageAlignUp(n: number): number {
  const r = n % PAGE_SIZE;
  return r === 0 ? n : n + PAGE_SIZE - r;
}

export function alignDown(n: number, a: number): number {
  return n - (n % a);
}

export function alignUp(n: number, a: number): number {
  const r = n % a;
  return r === 0 ? n : n + a - r;
}

/** Virtual page number: va >> PAGE_SHIFT for addresses beyond 32 bits. */
export function vpn(addr: number): number {
  return Math.floor(addr / PAGE_SIZE);
}
