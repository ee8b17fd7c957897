/**
 * The `hetmem` command line. Exit codes: 0 ok, 1 an expectation or oracle failed, 2 usage error or
 * invalid scenario file (one `FILE:LINE:COL: message` line), 3 internal error (stack only with
 * HETMEM_DEBUG=1).
 */
import { setFlagsFromString } from 'node:v8';
import { Command, CommanderError, Option } from 'commander';
import type * as Commands from './commands.ts';
import type * as Studio from './studio.ts';
import type * as Sim from './sim.ts';
import { EXIT, InternalError, UsageError } from './errors.ts';
import { VERSION_STRING } from '../version.ts';
import { deferOptimisation } from './jit.ts';

/**
 * V8 inlines at most 920 bytes of bytecode into a function it optimises (its default). A CPU write
 * that faults in an anonymous page runs about 70 small functions (the access, the mmap lock, the
 * fault handlers, the allocator, the rmap, the PTL, the scheduler's step accounting); with the
 * default, the optimised access calls many of them instead of inlining them. Raised here, before
 * any model code runs hot, so that what is optimised later inlines more: BENCHMARKS.md has what it
 * changes. A program that imports hetmem gets the same by starting node with this flag.
 */
setFlagsFromString('--max-inlined-bytecode-size-cumulative=2000');
deferOptimisation();

/**
 * The commands and the model behind them load on first use, so `--version` and `--help` start in
 * a few tens of milliseconds.
 */
const commands = (): Promise<typeof Commands> => import('./commands.ts');
const studio = (): Promise<typeof Studio> => import('./studio.ts');
const sim = (): Promise<typeof Sim> => import('./sim.ts');

function buildProgram(setCode: (n: number) => void): Command {
  const program = new Command('hetmem')
    .description(
      "An executable model of Linux's shared-virtual-memory stack: mm, mmu notifiers, HMM, device memory, iommufd.",
    )
    .version(VERSION_STRING)
    .showHelpAfterError('(run hetmem --help for usage)')
    .exitOverride();

  program
    .command('run')
    .description('run a scenario file step by step (no FILE: the built-in demo)')
    .argument('[file]', 'scenario file (YAML or JSON)')
    .option('--json', 'one JSON document on stdout')
    .option('--seed <n>', 'seed (sequential runs are deterministic; kept for symmetry with explore)')
    .option(
      '--trace <file>',
      'write the event log as a trace (Chrome JSON, or Perfetto protobuf for .pftrace)',
    )
    .option('--trace-format <format>', 'json or perfetto (default: by the extension of --trace)')
    .option('--callback-timeout <time>', 'stop a driver callback that runs this long without yielding', '10s')
    .action(async (file: string | undefined, o: Parameters<typeof Commands.cmdRun>[1]) => {
      setCode(await (await commands()).cmdRun(file, o));
    });

  program
    .command('explore')
    .description("explore the interleavings of a scenario's threads")
    .argument('[file]', 'scenario file with threads')
    .addOption(
      new Option('--strategy <name>', 'search strategy').choices(['random', 'pct', 'dfs']).default('pct'),
    )
    .option('--seed <n>', 'seed of the strategy', '1')
    .option('--budget <n|time>', 'schedules (1000) or time (5s, 300ms)')
    .option('--replay <token>', 'rerun the schedule a replay token names')
    .option('--preemption-bound <n>', 'at most n preemptions per schedule')
    .option('--workers <n>', 'parallel workers (random, pct, dfs); results do not depend on how many')
    .option('--no-por', 'dfs without partial-order reduction (DPOR and sleep sets)')
    .option('--no-state-cache', 'dfs: do not prune schedules that reach a state explored before')
    .option('--no-restore', 'rebuild the system from setup for every schedule instead of restoring it')
    .option('--shard <I/N>', 'run part I of N of the search (merge the --json results with --merge)')
    .option('--merge <files...>', 'combine the --json results of the shards of one search')
    .option(
      '--trace <file>',
      'write the reported schedule as a trace (Chrome JSON, or Perfetto protobuf for .pftrace)',
    )
    .option('--trace-format <format>', 'json or perfetto (default: by the extension of --trace)')
    .option('--callback-timeout <time>', 'stop a driver callback that runs this long without yielding', '10s')
    .option('--json', 'one JSON document on stdout')
    .action(async (file: string | undefined, o: Parameters<typeof Commands.cmdExplore>[1]) => {
      setCode(await (await commands()).cmdExplore(file, o));
    });

  program
    .command('conformance')
    .description('run the ported kernel selftests')
    .option('--suite <name>', 'hmm, iommufd, memfd, mm or xe-svm (default: all)')
    .option('--json', 'one JSON document on stdout')
    .action(async (o: Parameters<typeof Commands.cmdConformance>[0]) => {
      setCode(await (await commands()).cmdConformance(o));
    });

  program
    .command('bench')
    .description('run the benchmarks against their anchors')
    .option('--json', 'one JSON document on stdout')
    .option('--smoke', 'a quick pass with small sizes')
    .option('--filter <s>', 'only figures whose name contains s')
    .option('--seed <n>', 'seed of randomised workloads')
    .action(async (o: Parameters<typeof Commands.cmdBench>[0]) => {
      setCode(await (await commands()).cmdBench(o));
    });

  program
    .command('fuzz')
    .description(
      'run random programs over the scenario ops (mm, dmirror, iommufd, GPU), checking every oracle after every step',
    )
    .option('--seconds <n>', 'run for n seconds (default 60)')
    .option('--programs <n>', 'run n programs instead of a time')
    .option('--seed <n>', 'seed of the program streams', '1')
    .option('--ops <groups>', 'op groups: mm,dmirror,iommufd,gpu,threads (default all)')
    .option('--workers <n>', 'worker processes (at most the core count)')
    .option('--out <dir>', 'where failures are written as scenarios (default ./hetmem-fuzz)')
    .option('--json', 'one JSON document on stdout')
    .action(async (o: Parameters<typeof Commands.cmdFuzz>[0]) => {
      setCode(await (await commands()).cmdFuzz(o));
    });

  program
    .command('difftest')
    .description('run random mm programs on the model and on the live kernel and compare them')
    .option('--seconds <n>', 'run for n seconds (default 60)')
    .option('--seed <n>', 'seed of the programs', '1')
    .option('--out <dir>', 'where mismatches are written as scenarios (default ./hetmem-difftest)')
    .option('--json', 'one JSON document on stdout')
    .action(async (o: Parameters<typeof Commands.cmdDifftest>[0]) => {
      setCode(await (await commands()).cmdDifftest(o));
    });

  const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
  program
    .command('sim')
    .description('simulate GPU fault handling and migration policies on the UVM-style driver (docs/sim.md)')
    .argument('[file]', 'sim file (YAML): settings, driver tunables, a trace, a sweep')
    .option('--workload <name>', 'stream, linear, strided, random, stencil2d, hotspot, matmul, bfs (stream)')
    .option('--footprint <size>', 'bytes the workload touches per process (64MiB)')
    .option('--gpu-memory <size>', 'memory of each GPU (1GiB)')
    .option('--policy <name>', 'prefetch policy: ondemand, random4k, seq64k, tree (tree)')
    .option('--cost <model>', 'cost model: uvmsmart or none (uvmsmart)')
    .option('--seed <n>', 'seed of the fault order and random choices (1)')
    .option('--warps <n>', 'warps per process (64)')
    .option('--group <n>', 'warps that share a slice of the data, grid-strided (1)')
    .option('--iterations <n>', 'kernel launches (1)')
    .option('--processes <n>', 'processes, each with its own footprint (1)')
    .option('--gpus <n>', 'GPUs; process i runs on GPU i mod n (1)')
    .option('--cpu-touch <f>', 'fraction of the pages the CPU writes after each kernel (0)')
    .option('--set <key=value>', 'a driver tunable, e.g. batch_size=128 (repeatable)', collect)
    .option('--trace-in <file>', 'replay a trace instead of a workload')
    .option('--format <fmt>', 'trace format: uvm-eval, nvuvm, kfd, lackey, pinatrace')
    .option('--json', 'one JSON document on stdout')
    .option('--plot <out.svg>', 'SVG charts: a run over its fault batches, a sweep over its grid')
    .option('--workers <n>', 'worker threads for a sweep (the core count); results do not depend on it')
    .action(async (file: string | undefined, o: Sim.SimOpts) => {
      setCode(await (await sim()).cmdSim(file, o));
    });

  program
    .command('schema')
    .description('print the JSON Schema of scenario files (for editor completion)')
    .action(async () => {
      setCode((await commands()).cmdSchema());
    });

  program
    .command('studio')
    .description('serve the studio, the browser app that shows the model step by step')
    .argument('[file]', 'scenario file to open (default: an example)')
    .option('--port <n>', 'port to listen on (0: any free port)', '7173')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--no-open', 'do not open a browser')
    .action(async (file: string | undefined, o: Studio.StudioOpts) => {
      setCode(await (await studio()).cmdStudio(file, o));
    });

  return program;
}

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0];
}

export async function main(argv: readonly string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram((n) => (code = n));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return EXIT.ok;
      return EXIT.usage;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`hetmem: ${e.message}\n`);
      return EXIT.usage;
    }
    if (e instanceof InternalError) {
      process.stderr.write(`hetmem: ${e.message}\n`);
      return EXIT.internal;
    }
    // A scenario error comes from parse.ts, which is loaded by then if it was thrown.
    const { ScenarioError } = await import('../scenario/parse.ts');
    if (e instanceof ScenarioError) {
      process.stderr.write(`${e.oneLine}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`hetmem: internal error: ${oneLine(e)}\n`);
    if (process.env.HETMEM_DEBUG === '1' && e instanceof Error && e.stack !== undefined)
      process.stderr.write(`${e.stack}\n`);
    else process.stderr.write('(set HETMEM_DEBUG=1 for the stack)\n');
    return EXIT.internal;
  }
}

// A closed pipe (`hetmem run | head`) is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));
