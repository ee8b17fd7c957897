/**
 * Historical core contracts: older semantics of specific core paths, selectable per System, for
 * replaying driver bugs whose correctness depended on them. Each switch names the kernel release
 * whose behaviour it selects; the default is the modelled release's. docs/fidelity.md says what
 * each one changes and why.
 *
 *  - invalidateRangeStartNonblock: what mn_hlist_invalidate_range_start() does when a whole-mm
 *    subscriber's invalidate_range_start fails in a non-blockable range (the OOM reaper).
 *    'v5.11': every start runs, the error is returned, and nobody gets invalidate_range_end, so a
 *    subscriber whose start succeeded stays "inside" an invalidation for ever; a subscriber that
 *    undoes its own start on failure is correct. 'v5.12' (commit c2655835fd8c, "mm/mmu_notifiers:
 *    ensure range_end() is paired with range_start()"): every subscriber with an end gets it, and
 *    a subscriber that fails its start must not have an end (WARN_ON).
 *  - devicePrivateFault: how do_swap_page() hands a device-private entry to the owner's
 *    migrate_to_ram(). 'v6.0': the page from the entry read without the PTL, with no reference
 *    and no lock, so a concurrent migration can free the page (and its pgmap) under the callback:
 *    CVE-2022-3523. 'v6.1' (commit 16ce101db85d, "mm/memory.c: fix race when faulting a device
 *    private page"): the entry is rechecked under the PTL and the page referenced (and, in the
 *    modelled release, locked) across the callback, which passes it as migrate_vma.fault_page.
 */
export interface CoreContracts {
  readonly invalidateRangeStartNonblock: 'v5.11' | 'v5.12';
  readonly devicePrivateFault: 'v6.0' | 'v6.1';
}

/** The modelled release's contracts. */
export const CURRENT_CONTRACTS: CoreContracts = {
  invalidateRangeStartNonblock: 'v5.12',
  devicePrivateFault: 'v6.1',
};

/** The choices of each switch, for validation and documentation. */
export const CONTRACT_CHOICES: { readonly [K in keyof CoreContracts]: readonly CoreContracts[K][] } = {
  invalidateRangeStartNonblock: ['v5.11', 'v5.12'],
  devicePrivateFault: ['v6.0', 'v6.1'],
};
