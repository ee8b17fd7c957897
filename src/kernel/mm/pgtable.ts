/**
 * x86-64 page-table entry encoding over two 32-bit words (see src/lib/pgtable_store.ts).
 * The low word holds the flag bits, the high word the PFN of a present entry, or the offset of a
 * non-present one (swap slot, or the PFN a migration / device entry refers to).
 *
 * Non-present, non-none entries are the kernel's "swap entries" in the wide sense: swap proper,
 * migration entries, device-private entries, device-exclusive entries, hwpoison markers and
 * guard-region markers. Their type sits in bits 16-19 of the low word.
 */

export const PTE_PRESENT = 1 << 0;
export const PTE_WRITE = 1 << 1;
export const PTE_ACCESSED = 1 << 5;
export const PTE_DIRTY = 1 << 6;
/** PSE: the PMD (or PUD) entry maps a huge page. */
export const PTE_HUGE = 1 << 7;
/** Present to the kernel but not to hardware (NUMA hinting, PROT_NONE VMAs); pte_present() is true. */
export const PTE_PROTNONE = 1 << 8;
/** No struct page behind it for vm_normal_page() purposes (PFN maps, the zero page). */
export const PTE_SPECIAL = 1 << 9;
export const PTE_SOFT_DIRTY = 1 << 10;
/** In a non-present entry: the anonymous page was exclusive to this mapping (PageAnonExclusive). */
export const PTE_SWP_EXCLUSIVE = 1 << 12;

export const SWP_TYPE_SHIFT = 16;
export const SWP_TYPE_MASK = 0xf << SWP_TYPE_SHIFT;

/** Kinds of non-present entries. */
export const SwpType = {
  SWAP: 1,
  MIGRATION_READ: 2,
  MIGRATION_WRITE: 3,
  MIGRATION_READ_EXCLUSIVE: 4,
  DEVICE_PRIVATE_READ: 5,
  DEVICE_PRIVATE_WRITE: 6,
  DEVICE_EXCLUSIVE: 7,
  HWPOISON: 8,
  /**
   * A guard-region PTE marker (MADV_GUARD_INSTALL): no page behind it, and any access faults
   * with SIGSEGV. pte_marker entries are a swap type of their own in the kernel; the model gives
   * the guard marker one.
   */
  GUARD_MARKER: 9,
} as const;
export type SwpTypeValue = (typeof SwpType)[keyof typeof SwpType];

export function pteNone(lo: number, hi: number): boolean {
  return lo === 0 && hi === 0;
}

/** Models pte_present(): true for hardware-present and PROT_NONE entries. */
export function ptePresent(lo: number): boolean {
  return (lo & (PTE_PRESENT | PTE_PROTNONE)) !== 0;
}

export function pteProtnone(lo: number): boolean {
  return (lo & PTE_PROTNONE) !== 0;
}

export function pteWrite(lo: number): boolean {
  return (lo & PTE_WRITE) !== 0;
}

export function pteSpecial(lo: number): boolean {
  return (lo & PTE_SPECIAL) !== 0;
}

/** The swap type of a non-present, non-none entry (0 for present or none entries). */
export function swpType(lo: number): number {
  return ptePresent(lo) ? 0 : (lo & SWP_TYPE_MASK) >>> SWP_TYPE_SHIFT;
}

export function isSwapEntry(lo: number): boolean {
  return swpType(lo) === SwpType.SWAP;
}

export function isMigrationEntry(lo: number): boolean {
  const t = swpType(lo);
  return (
    t === SwpType.MIGRATION_READ || t === SwpType.MIGRATION_WRITE || t === SwpType.MIGRATION_READ_EXCLUSIVE
  );
}

export function isDevicePrivateEntry(lo: number): boolean {
  const t = swpType(lo);
  return t === SwpType.DEVICE_PRIVATE_READ || t === SwpType.DEVICE_PRIVATE_WRITE;
}

/** Models is_guard_swp_entry() of a PTE: a guard-region marker. */
export function isGuardMarker(lo: number): boolean {
  return swpType(lo) === SwpType.GUARD_MARKER;
}

export function isDeviceExclusiveEntry(lo: number): boolean {
  return swpType(lo) === SwpType.DEVICE_EXCLUSIVE;
}

/** Whether a non-present entry refers to a page frame (migration, device-private, device-exclusive). */
export function isPfnSwapEntry(lo: number): boolean {
  const t = swpType(lo);
  return t >= SwpType.MIGRATION_READ && t <= SwpType.DEVICE_EXCLUSIVE;
}

export function isWritableSwpEntry(lo: number): boolean {
  const t = swpType(lo);
  return t === SwpType.MIGRATION_WRITE || t === SwpType.DEVICE_PRIVATE_WRITE;
}

/** Low word of a non-present entry of type `t`, keeping the soft-dirty / exclusive / young / dirty bits given. */
export function swpLo(t: SwpTypeValue, keep = 0): number {
  return (t << SWP_TYPE_SHIFT) | (keep & (PTE_SOFT_DIRTY | PTE_SWP_EXCLUSIVE | PTE_ACCESSED | PTE_DIRTY));
}

export function swpTypeName(t: number): string {
  for (const [k, v] of Object.entries(SwpType)) if (v === t) return k;
  return `type${t}`;
}
