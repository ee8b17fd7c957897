/**
 * The package version and the kernel release the model follows. Kept as constants (not read from
 * package.json at run time) so the studio's browser bundle has them too; a test checks that
 * HETMEM_VERSION equals package.json's version.
 */
export const HETMEM_VERSION = '0.2.0';

/** The Linux release whose behaviour the model follows (docs/fidelity.md lists known differences). */
export const KERNEL_RELEASE = 'Linux 6.18';

/** What `hetmem --version` prints: `hetmem 0.2.0 (models Linux 6.18)`. */
export const VERSION_STRING = `hetmem ${HETMEM_VERSION} (models ${KERNEL_RELEASE})`;
