/**
 * Host memory: bytes per resident simulated page (measured in a child process, see
 * memory_child.ts), and the peak RSS of `hetmem run` on the largest scenario in examples/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BenchContext, type Figure, type Suite, round } from './figure.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

interface ChildResult {
  npages: number;
  bytesPerPage: number;
  rssPerPage: number;
}

function bytesPerResidentPage(npages: number): ChildResult {
  const r = spawnSync(
    process.execPath,
    // The child runs the same form as this file: compiled (dist-bench/) or the sources.
    import.meta.url.endsWith('.ts')
      ? ['--expose-gc', '--import', 'tsx', `${root}bench/memory_child.ts`, String(npages)]
      : ['--expose-gc', `${root}dist-bench/memory_child.js`, String(npages)],
    { cwd: root, encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (r.status !== 0)
    throw new Error(`memory_child failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return JSON.parse(r.stdout) as ChildResult;
}

/** The scenario file with the most bytes in examples/. */
function largestExample(): string | null {
  const dir = `${root}examples`;
  if (!existsSync(dir)) return null;
  let best: string | null = null;
  let size = -1;
  for (const f of readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(f)) continue;
    const s = statSync(`${dir}/${f}`).size;
    if (s > size) {
      size = s;
      best = `examples/${f}`;
    }
  }
  return best;
}

/** Peak RSS in KiB of `node bin/hetmem.js run FILE`, from GNU time's "Maximum resident set size". */
function peakRssKib(file: string): { kib: number; status: number | null } | { error: string } {
  const time = '/usr/bin/time';
  if (!existsSync(time)) return { error: '/usr/bin/time not found' };
  const r = spawnSync(time, ['-v', process.execPath, 'bin/hetmem.js', 'run', file], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (m === null)
    return { error: `no RSS in /usr/bin/time output (${r.stderr.trim().split('\n')[0] ?? ''})` };
  const exit = /Exit status: (\d+)/.exec(r.stderr);
  return { kib: Number(m[1]), status: exit === null ? r.status : Number(exit[1]) };
}

export const memorySuite: Suite = {
  name: 'memory',
  run(ctx: BenchContext): Promise<Figure[]> {
    // 2M pages (8 GiB): the largest power of two whose RAM plus headroom fits under MAX_RAM_BYTES.
    const npages = ctx.smoke ? 65536 : 2 * 1024 * 1024;
    const label = ctx.smoke ? '64k' : '2M';
    const name = `memory.bytes_per_resident_page.${label}`;
    ctx.progress(name);
    const r = bytesPerResidentPage(npages);
    const figures: Figure[] = [
      {
        name,
        value: round(r.bytesPerPage),
        unit: 'B/page',
        goal: '<= 32 B/page (contents excluded)',
        pass: r.bytesPerPage <= 32,
      },
    ];
    const file = largestExample();
    ctx.progress('memory.hetmem_run_peak_rss');
    if (file === null) ctx.missing('memory.hetmem_run_peak_rss', 'no scenario in examples/');
    else {
      const rss = peakRssKib(file);
      if ('error' in rss) {
        ctx.missing('memory.hetmem_run_peak_rss', rss.error);
      } else {
        figures.push({
          name: 'memory.hetmem_run_peak_rss',
          value: round(rss.kib / 1024),
          unit: 'MiB',
          goal: `reported (no goal in the issue); ${file} must exit 0`,
          pass: rss.status === 0,
          ...(rss.status === 0 ? {} : { reason: `hetmem run ${file} exited ${String(rss.status)}` }),
        });
      }
    }
    return Promise.resolve(figures);
  },
};
