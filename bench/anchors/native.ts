/**
 * Builds and runs the C anchor (kernel_mm.c) that measures the real kernel on this machine.
 * The binary goes to bench/anchors/build/ (git-ignored) and is rebuilt when the source is newer.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// bench/anchors/ whether this runs from there or compiled from dist-bench/anchors/.
const here = fileURLToPath(new URL('../../bench/anchors/', import.meta.url));
const source = `${here}kernel_mm.c`;
const buildDir = `${here}build`;
const binary = `${buildDir}/kernel_mm`;

/** Nanoseconds per page for each operation, as kernel_mm.c prints them. */
export interface KernelMmTimes {
  write_fault: number;
  read_fault: number;
  mprotect: number;
  madvise: number;
  munmap: number;
}

export type AnchorResult = { ok: true; times: KernelMmTimes } | { ok: false; reason: string };

function build(): string | null {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return null;
  mkdirSync(buildDir, { recursive: true });
  const r = spawnSync('cc', ['-O2', '-o', binary, source], { encoding: 'utf8' });
  if (r.error !== undefined) return `cc not available (${r.error.message})`;
  if (r.status !== 0) return `cc failed: ${r.stderr.trim()}`;
  return null;
}

/** Measures the kernel's per-page cost of the five operations over `npages`, best of `runs`. */
export function measureKernelMm(npages: number, runs: number): AnchorResult {
  const err = build();
  if (err !== null) return { ok: false, reason: err };
  try {
    const out = execFileSync(binary, [String(npages), String(runs)], { encoding: 'utf8' });
    return { ok: true, times: JSON.parse(out) as KernelMmTimes };
  } catch (e) {
    return { ok: false, reason: `kernel_mm failed: ${(e as Error).message}` };
  }
}
