/**
 * Runs in its own process (node --expose-gc --import tsx bench/memory_child.ts NPAGES) so the
 * heap it measures holds nothing but the simulated machine. Prints one JSON object.
 *
 * Method: collect garbage and read process.memoryUsage(); build a System whose RAM is just large
 * enough, map NPAGES of private anonymous memory with MAP_POPULATE (write faults: every page gets
 * its own frame, PTE and rmap state, but no contents, since nothing was written); collect garbage
 * and read again. Host bytes per resident page = (delta of heapUsed + external - bytes held in
 * the page-contents Map) / NPAGES. The struct-page arrays of the whole RAM are included: they
 * exist because the pages are resident.
 */
import { MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src/kernel/mm/mman.ts';
import { System } from '../src/kernel/system.ts';
import { PAGE_SIZE } from '../src/lib/units.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

function usage(): { heap: number; rss: number } {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external, rss: m.rss };
}

const npages = Number(process.argv[2] ?? 4 * 1024 * 1024);
const before = usage();
const sys = new System({ ram: npages * PAGE_SIZE + 64 * 1024 * 1024, swap: 0, thp: 'never' });
const p = sys.createProcess('resident');
const addr = sys.mmap(
  p,
  0,
  npages * PAGE_SIZE,
  PROT_READ | PROT_WRITE,
  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
);
if (addr < 0) throw new Error(`mmap failed: ${addr}`);
const resident = sys.stats(p).rss_anon / PAGE_SIZE;
if (resident !== npages) throw new Error(`${resident} pages resident, expected ${npages}`);
const after = usage();
const contentBytes = sys.phys.contents.storedBytes;
process.stdout.write(
  `${JSON.stringify({
    npages,
    resident,
    heapDelta: after.heap - before.heap,
    rssDelta: after.rss - before.rss,
    contentBytes,
    bytesPerPage: (after.heap - before.heap - contentBytes) / npages,
    rssPerPage: (after.rss - before.rss - contentBytes) / npages,
  })}\n`,
);
