/**
 * hetmem fuzz: a short seeded run finds nothing, its programs are valid scenarios, failures are
 * minimised into files `hetmem run` reproduces, and the saved findings replay as they should.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import {
  confirmHang,
  findingKey,
  parseProgram,
  programDocument,
  programText,
  runProgram,
  STEP_BOUND,
} from '../../src/fuzz/execute.ts';
import { OPS, Scenario } from '../../src/scenario/schema.ts';
import { Generator, generatorAfter, type Step } from '../../src/fuzz/generate.ts';
import { knownFinding } from '../../src/fuzz/known.ts';
import { minimize, reproducer } from '../../src/fuzz/engine.ts';
import { Prng } from '../../src/lib/prng.ts';
import { UVM_TUNABLE_KEYS, uvmTunablesFromConfig } from '../../src/kernel/drivers/gpu/uvm_config.ts';
import { hetmem, ROOT } from '../cli/helpers.ts';

/** A fuzz program's mmap step: anonymous memory of `proc`, private unless `flags` say otherwise. */
function anonMmap(
  proc: string,
  length: number,
  save: string,
  prot: string[],
  flags = ['private', 'anonymous'],
): Step {
  return { op: 'mmap', proc, length, prot, flags, save };
}

describe('hetmem fuzz', () => {
  it('a seeded run of 40 programs: no violation, no internal error', () => {
    const r = hetmem([
      'fuzz',
      '--programs',
      '40',
      '--seed',
      '3',
      '--json',
      '--out',
      join(ROOT, 'node_modules/.cache/fuzz-test'),
    ]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of ['programs', 'ops', 'violations', 'internal_errors', 'corpus']) assert.ok(k in doc, k);
    assert.equal(doc.programs, 40);
    assert.deepEqual(doc.violations, []);
    assert.equal(doc.internal_errors, 0);
    assert.ok((doc.ops as number) > 40);
    // The coverage report names the ops reached and the results each gave.
    const reached = doc.op_results as Record<string, string[]>;
    assert.ok(reached.mmap.length > 0, JSON.stringify(reached));
  });

  it('the generator makes every iommufd uAPI op the scenario format has', () => {
    const made = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const p = new Generator(new Prng(`u:${i}`), ['iommufd']).program(30);
      for (const s of p.steps) made.add(String(s.op));
    }
    const ops = Object.keys(OPS).filter(
      (op) =>
        (op.startsWith('IOMMU_') || ['fault_read', 'fault_respond', 'veventq_read'].includes(op)) &&
        // Checks of the mock's state, not uAPI a user program drives.
        !['IOMMU_TEST_OP_MD_CHECK_MAP', 'IOMMU_TEST_OP_MD_CHECK_REFS'].includes(op),
    );
    assert.deepEqual(
      ops.filter((op) => !made.has(op)),
      [],
    );
  });

  it('the gpu group drives both GPU models through the generic ops and the xe uAPI', () => {
    const made = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = new Generator(new Prng(`g:${i}`), ['gpu']).program(30);
      for (const s of p.steps) {
        const what = typeof s.device === 'string' ? s.device : typeof s.bind_op === 'string' ? s.bind_op : '';
        made.add(`${String(s.op)} ${what}`.trim());
      }
    }
    for (const op of [
      'device_open gpu2',
      'device_open gpu3',
      'gpu_access gpu2',
      'gpu_access gpu3',
      'gpu_snapshot gpu2',
      'gpu_snapshot gpu3',
      'DRM_IOCTL_XE_VM_CREATE',
      'DRM_IOCTL_XE_VM_BIND DRM_XE_VM_BIND_OP_MAP',
      'DRM_IOCTL_XE_VM_BIND DRM_XE_VM_BIND_OP_PREFETCH',
      'DRM_IOCTL_XE_VM_BIND DRM_XE_VM_BIND_OP_UNMAP',
      'DRM_IOCTL_XE_VM_BIND DRM_XE_VM_BIND_OP_MAP_USERPTR',
      'DRM_IOCTL_XE_VM_DESTROY',
      'DRM_IOCTL_XE_MADVISE',
      'close',
    ])
      assert.ok(made.has(op), `${op} not made: ${[...made].join(', ')}`);
  });

  it("gpu programs vary the UVM-style GPU's tunables, each set one its config accepts", () => {
    const keys = new Set<string>();
    let tuned = 0;
    for (let i = 0; i < 200; i++) {
      const p = new Generator(new Prng(`u:${i}`), ['gpu']).program(10);
      if (p.uvm === undefined) continue;
      tuned++;
      for (const k of Object.keys(p.uvm)) keys.add(k);
      const doc = programDocument(p, 'fuzz') as {
        devices: Record<string, { config?: Record<string, unknown> }>;
      };
      const config = doc.devices.gpu2.config ?? {};
      assert.equal(config.memory, '4MiB');
      const t = uvmTunablesFromConfig(config);
      if (typeof t === 'string') assert.fail(`${JSON.stringify(p.uvm)}: ${t}`);
      assert.doesNotThrow(() => parseScenarioText(programText(p), `u${i}.yaml`));
    }
    assert.ok(tuned > 40 && tuned < 160, `${tuned} of 200 programs tuned`);
    assert.deepEqual([...keys].sort(), Object.keys(UVM_TUNABLE_KEYS).sort());
    // Programs without the gpu group leave the device as it is.
    assert.equal(new Generator(new Prng('u:0'), ['mm', 'dmirror']).program(10).uvm, undefined);
  });

  it('the dmirror group drives the legacy_mirror device (the v5.4 hmm_mirror API) too', () => {
    const made = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const p = new Generator(new Prng(`l:${i}`), ['dmirror']).program(30);
      for (const s of p.steps) if (String(s.op).startsWith('legacy_mirror')) made.add(String(s.op));
    }
    assert.deepEqual([...made].sort(), [
      'legacy_mirror_close',
      'legacy_mirror_fault',
      'legacy_mirror_open',
      'legacy_mirror_read',
    ]);
  });

  it('bad flags are usage errors', () => {
    const r = hetmem(['fuzz', '--ops', 'mm,gpus']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--ops takes a list of mm, dmirror, iommufd, gpu, threads, got 'gpus'/);
  });

  it('generated programs are valid scenario files', () => {
    for (let i = 0; i < 20; i++) {
      const p = new Generator(new Prng(`t:${i}`), ['mm', 'dmirror', 'iommufd', 'gpu', 'threads']).program(20);
      assert.doesNotThrow(() => parseScenarioText(programText(p), `p${i}.yaml`));
    }
  });

  it('checking a program step by step (cached) says what checking the whole document says', () => {
    const groups = ['mm', 'dmirror', 'iommufd', 'threads'] as const;
    let rejected = 0;
    for (let i = 0; i < 150; i++) {
      const base = new Generator(new Prng(`v:${i}`), groups).program(20);
      // A mutated program shares its steps with its parent, as the fuzz loop's mutations do.
      const r = new Prng(`m:${i}`);
      const g = generatorAfter(r, groups, base);
      // Now and then a step the file format refuses (the generator writes none): a negative u64.
      const last =
        i % 3 === 0 ? { op: 'IOMMU_IOAS_MAP', fd: 3, ioas_id: 1, user_va: -4096, length: 4096 } : g.step();
      const next = { ...base, steps: [...base.steps, g.step(), last] };
      for (const p of [base, next, base]) {
        const whole = Scenario.safeParse(programDocument(p, 'fuzz'));
        const parts = parseProgram(p);
        if (!whole.success) {
          rejected++;
          assert.equal(parts, whole.error.issues[0]?.message);
        } else {
          if (typeof parts === 'string') assert.fail(parts);
          assert.deepEqual(parts.scenario, whole.data);
        }
      }
    }
    assert.ok(rejected > 0, 'the programs with a refused step are refused either way');
  });

  it('a livelock is found, recognised as kernel behaviour, and kept minimal', () => {
    const p = {
      system: { ram: '8MiB', swap: 0 },
      processes: ['p', 'q'],
      steps: [
        anonMmap('p', 4096, 'b0', ['read', 'write']),
        { op: 'check' },
        { op: 'dmirror_open', device: 'gpu0', proc: 'p', save: 'd1' },
        { op: 'cpu_read', proc: 'q', addr: 0, length: 1 },
        { op: 'exit', proc: 'p' },
        { op: 'HMM_DMIRROR_WRITE', fd: 'd1', addr: 'b0', npages: 1 },
      ],
    };
    const r = runProgram(p);
    assert.equal(r.finding?.kind, 'hang');
    assert.notEqual(knownFinding(r.finding), null);
    const min = minimize(p, findingKey(r.finding), 1, Date.now() + 30_000);
    assert.deepEqual(
      min.steps.map((s) => s.op),
      ['mmap', 'dmirror_open', 'exit', 'HMM_DMIRROR_WRITE'],
    );
    const doc = reproducer(min, r.finding, 1, 0);
    assert.match(String(doc.description), /hang: livelock: HMM_DMIRROR_WRITE/);
  });
});

describe('long loops that end are not hangs', () => {
  it('a SNAPSHOT of 2^20 pages outlives the fuzz bound but ends under the run bound: no finding', () => {
    const p = {
      system: { ram: '8MiB', swap: 0 },
      processes: ['p'],
      steps: [
        anonMmap('p', 4096, 'b0', ['read']),
        { op: 'dmirror_open', device: 'gpu0', proc: 'p', save: 'd1' },
        { op: 'HMM_DMIRROR_SNAPSHOT', fd: 'd1', addr: 'b0', npages: 2 ** 20 },
      ],
    };
    const quick = runProgram(p, 1, STEP_BOUND);
    assert.equal(quick.finding?.kind, 'hang', 'the fuzz bound alone would call it a hang');
    const judged = confirmHang(p, 1, quick);
    assert.equal(judged.finding, null);
    assert.equal(judged.errnos.length, 3, 'every step ran, the SNAPSHOT too');
    assert.ok(judged.ops > quick.ops);
  });
});

describe('saved fuzz findings replay', () => {
  const dir = join(ROOT, 'test/fixtures/fuzz');
  // A threads finding replays under the explorer, every interleaving (dfs).
  const expected: Record<string, { status: number; out: RegExp; explore?: true; args?: string[] }> = {
    'exit-during-mmap-in-another-thread.yaml': {
      status: 0,
      out: /the bounded space is exhausted[^]*outcome: clean, as declared/,
      explore: true,
    },
    'dmirror-read-after-exit.yaml': { status: 1, out: /livelock: HMM_DMIRROR_READ did not finish/ },
    'dirty-bitmap-huge-length.yaml': { status: 0, out: /every expectation held/ },
    'dmirror-snapshot-long-walk.yaml': { status: 0, out: /every expectation held/ },
    'ioas-map-1tib-oracle.yaml': { status: 0, out: /every expectation held/ },
    'add-reserved-zero-length.yaml': { status: 0, out: /every expectation held/ },
    'ioas-map-file-outlives-memfd.yaml': { status: 0, out: /every expectation held/ },
    'ioas-map-after-opener-exit.yaml': { status: 0, out: /every expectation held/ },
    // dfs reduces this pair of threads to one schedule; random schedules reach the exit between
    // the open's mm lookup and its notifier registration.
    'dmirror-open-beside-exit.yaml': {
      status: 0,
      out: /explored 200 schedule[^]*outcome: clean, as declared/,
      explore: true,
      args: ['--strategy', 'random', '--budget', '200'],
    },
    'dmirror-migrate-thp-tail-ptes.yaml': { status: 0, out: /every expectation held/ },
    'dmirror-open-beside-reclaim.yaml': {
      status: 0,
      out: /explored 300 schedule[^]*outcome: clean, as declared/,
      explore: true,
      args: ['--strategy', 'random', '--budget', '300'],
    },
  };
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
    it(f, () => {
      const want = expected[f];
      assert.ok(want !== undefined, `${f} has no expected outcome here`);
      const r = hetmem(
        want.explore
          ? ['explore', join(dir, f), ...(want.args ?? ['--strategy', 'dfs'])]
          : ['run', join(dir, f)],
      );
      assert.equal(r.status, want.status, r.stdout + r.stderr);
      assert.match(r.stdout, want.out);
    });
  }
});

/** A program of test/fixtures/fuzz-known/NAME.yaml (its steps, no threads). */
function knownFixture(name: string): { system: Record<string, unknown>; processes: string[]; steps: Step[] } {
  const doc = parse(readFileSync(join(ROOT, `test/fixtures/fuzz-known/${name}.yaml`), 'utf8')) as {
    system: Record<string, unknown>;
    processes: string[];
    steps: Step[];
  };
  return { system: doc.system, processes: doc.processes, steps: doc.steps };
}

describe("findings that are the kernel's own behaviour stay recognised", () => {
  it('closing a dmirror whose device memory fills RAM: the __GFP_NOFAIL eviction never gets a page', () => {
    const file = join(ROOT, 'test/fixtures/fuzz-known/dmirror-evict-nofail-oom.yaml');
    const run = hetmem(['run', file]);
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.match(
      run.stdout,
      /oracle livelock: __GFP_NOFAIL allocation never succeeds: dmirror_device_evict_chunk\(\)/,
    );
    assert.doesNotMatch(run.stdout + run.stderr, /internal error/);
    // Once the allocation is reported as never succeeding, the rest of the chunk stays on the
    // device: one failed allocation for its one chunk, not one reclaim per page.
    const json = JSON.parse(hetmem(['run', '--json', file]).stdout) as {
      steps: { section: string; counters: Record<string, number> }[];
    };
    assert.equal(json.steps.find((s) => s.section === 'teardown')?.counters['alloc.fail'], 1);
    const doc = parse(readFileSync(file, 'utf8')) as {
      system: Record<string, unknown>;
      processes: string[];
      steps: Step[];
    };
    const r = runProgram({ system: doc.system, processes: doc.processes, steps: doc.steps }, 4587);
    assert.equal(r.finding?.kind, 'violation');
    assert.match(knownFinding(r.finding) ?? '', /dmirror_device_evict_chunk\(\) allocates with __GFP_NOFAIL/);
  });

  it('a dmirror READ after its process exited, in the setup of a threads program: the same known loop', () => {
    const p = {
      system: { ram: '8MiB', swap: 0 },
      processes: ['p', 'q'],
      steps: [
        anonMmap('p', 8192, 'b0', ['read']),
        { op: 'dmirror_open', device: 'gpu0', proc: 'q', save: 'd1' },
        { op: 'exit', proc: 'q' },
        { op: 'HMM_DMIRROR_READ', fd: 'd1', addr: 'b0', npages: 16 },
      ],
      threads: { t0: [{ op: 'cpu_read', proc: 'p', addr: 'b0', length: 4096 }], t1: [] },
    };
    const r = runProgram(p, 1);
    // Reported as the setup step's hang, not as the threads' livelock that would follow it.
    assert.equal(r.finding?.kind, 'hang');
    assert.match(r.finding.message, /^livelock: HMM_DMIRROR_READ did not finish within/);
    assert.match(
      knownFinding(r.finding) ?? '',
      /dmirror_read\(\)\/dmirror_write\(\) retry dmirror_fault\(\)/,
    );
  });

  it('a dmirror READ racing a migration through the same descriptor: the stale entry is known', () => {
    const p = {
      system: { ram: '8MiB', swap: 0 },
      processes: ['p', 'q'],
      steps: [
        anonMmap('q', 2097152, 'b0', ['read', 'write']),
        { op: 'iommufd_open', proc: 'p', save: 'i1' },
        { op: 'dmirror_open', device: 'gpu1', proc: 'q', save: 'd2' },
      ],
      threads: {
        t0: [{ op: 'HMM_DMIRROR_MIGRATE_TO_DEV', fd: 'd2', addr: 'b0', npages: 1048576 }],
        t1: [{ op: 'HMM_DMIRROR_READ', fd: 'd2', addr: 'b0+8192', npages: 4 }],
      },
    };
    const r = runProgram(p, 1);
    assert.equal(r.finding?.kind, 'violation');
    assert.equal(r.finding.oracle, 'mirror');
    assert.match(
      knownFinding(r.finding, p) ?? '',
      /returns at once for an MMU_NOTIFY_MIGRATE invalidation its own device/,
    );
    // Without a second thread faulting through that descriptor the same report is not excused.
    const alone = { ...p, threads: { t0: p.threads.t0, t1: [{ ...p.threads.t1[0], fd: 'i1' }] } };
    assert.equal(knownFinding(r.finding, alone), null);
  });

  it('a legacy_mirror fault racing munmap: the v5.4 range->valid race is known', () => {
    const p = {
      system: { ram: '8MiB', swap: 0 },
      processes: ['p'],
      steps: [
        anonMmap('p', 8192, 'b0', ['read', 'write']),
        { op: 'cpu_write', proc: 'p', addr: 'b0', length: 8192, data: { pattern: 'index32' } },
        { op: 'legacy_mirror_open', device: 'gpu4', proc: 'p', save: 'lm1' },
      ],
      threads: {
        t0: [{ op: 'legacy_mirror_fault', fd: 'lm1', addr: 'b0', npages: 2 }],
        t1: [{ op: 'munmap', proc: 'p', addr: 'b0', length: 8192 }],
      },
    };
    // What the frame-refs oracle reports when the race is hit (the explorer's PCT search finds it
    // in examples/races/legacy-mirror.yaml; the fuzzer's few random schedules seldom do).
    const f = {
      kind: 'violation' as const,
      oracle: 'frame-refs',
      message: 'gpu4 mirror 0 page table: refers to pfn 1, which is free',
      step: 3,
    };
    assert.match(knownFinding(f, p) ?? '', /hmm_range_valid\(\) says only that no invalidation/);
    // The same report without a thread faulting through the legacy device is not excused.
    const alone = { ...p, threads: { t0: [{ op: 'check' }], t1: p.threads.t1 } };
    assert.equal(knownFinding(f, alone), null);
    assert.equal(knownFinding({ ...f, message: f.message.replace('gpu4', 'gpu0') }, p), null);
    // Run as a fuzz program (a few random schedules), the race is not hit and nothing else is.
    assert.equal(runProgram(p, 1).finding, null);
  });

  it("a dmirror writing its own read-only device pages: dmirror_do_fault() WARNs, as the kernel's does", () => {
    const p = knownFixture('dmirror-write-own-readonly-device-page');
    const r = runProgram(p);
    assert.equal(r.finding?.kind, 'violation');
    assert.match(
      r.finding.message,
      /write fault returned a read-only page at page \d+ \(a device-private page of its own\)$/,
    );
    assert.match(knownFinding(r.finding) ?? '', /hmm_vma_handle_pte\(\) reports a device-private entry/);
    // The same warning for a page that is not the mirror's own is not excused.
    const other = {
      ...r.finding,
      message: r.finding.message.replace(/ \(a device-private page of its own\)$/, ''),
    };
    assert.equal(knownFinding(other), null);
  });

  it("a coherent dmirror past its one region: memremap_pages() WARNs, as the kernel's does", () => {
    const p = knownFixture('dmirror-coherent-region-full');
    const r = runProgram(p);
    assert.equal(r.finding?.kind, 'violation');
    assert.equal(r.finding.oracle, 'warn');
    assert.match(
      knownFinding(r.finding) ?? '',
      /places every chunk of a coherent device at the same address/,
    );
    // The same warning for another device than the fuzz world's coherent one is not excused.
    assert.equal(knownFinding({ ...r.finding, message: r.finding.message.replace('gpu1', 'gpu0') }), null);
  });

  it("the UVM-style GPU inserting its notifier under the mmap read lock: lockdep's report, as on uvm_hmm.c", () => {
    const base = {
      system: { ram: '8MiB', swap: 0 },
      processes: ['p'],
      steps: [
        anonMmap('p', 2 * 1024 * 1024, 'b', ['read', 'write'], ['shared', 'anonymous']),
        {
          op: 'gpu_access',
          device: 'gpu2',
          address: 'b',
          length: 16,
          access: 'atomic',
          proc: 'p',
          data: { fill: 1 },
        },
      ],
    };
    const p = { ...base, uvm: { hmm_insert: 'mmap_read' } };
    const r = runProgram(p);
    assert.equal(r.finding?.kind, 'violation');
    assert.equal(r.finding.oracle, 'locks');
    assert.match(
      knownFinding(r.finding, p) ?? '',
      /hmm_va_block_find_create\(\) inserts a new VA block's interval notifier/,
    );
    // Not excused for another insertion mode, which does not report it either.
    assert.equal(knownFinding(r.finding, { ...base, uvm: { hmm_insert: 'mmap_write' } }), null);
    assert.equal(runProgram({ ...base, uvm: { hmm_insert: 'mmap_write' } }).finding, null);
  });

  it('a coherent dmirror migrating its own PMD-mapped THP again: the WARN test_hmm gives', () => {
    const p = knownFixture('dmirror-coherent-thp-migrated-again');
    const r = runProgram(p);
    assert.equal(r.finding?.kind, 'violation');
    assert.equal(r.finding.oracle, 'warn');
    assert.match(r.finding.message, /^dmirror: page already in device memory, pfn \d+$/);
    assert.match(
      knownFinding(r.finding, p) ?? '',
      /collects a PMD-mapped folio for MIGRATE_VMA_SELECT_SYSTEM/,
    );
    // Migrating once, or through the private dmirror only, does not excuse it.
    assert.equal(knownFinding(r.finding, { ...p, steps: p.steps.slice(0, 3) }), null);
    const priv = {
      ...p,
      steps: p.steps.map((s) => (s.op === 'dmirror_open' ? { ...s, device: 'gpu0' } : s)),
    };
    assert.equal(knownFinding(r.finding, priv), null);
  });

  it('the UVM-style GPU keeps writable mappings over a soft-dirty write-protect, as uvm_hmm.c does', () => {
    const p = knownFixture('uvm-soft-dirty-writable-gpu-mapping');
    const r = runProgram(p);
    assert.equal(r.finding?.kind, 'violation');
    assert.match(
      r.finding.message,
      /^gpu2 pt0: va 0x[0-9a-f]+ .*: the device may write but the CPU PTE is not writable$/,
    );
    assert.match(knownFinding(r.finding, p) ?? '', /returns at once for an MMU_NOTIFY_SOFT_DIRTY/);
    // Without the soft-dirty reset in the program, the same violation is not excused.
    const none = { ...p, steps: p.steps.filter((s) => s.op !== 'clear_soft_dirty') };
    assert.equal(knownFinding(r.finding, none), null);
  });

  it('two descriptors of one dmirror device and a migration: the stale mirror test_hmm keeps', () => {
    const file = join(ROOT, 'test/fixtures/fuzz-known/dmirror-two-fds-migrate-stale-mirror.yaml');
    const doc = parse(readFileSync(file, 'utf8')) as {
      system: Record<string, unknown>;
      processes: string[];
      steps: Step[];
    };
    const p = { system: doc.system, processes: doc.processes, steps: doc.steps };
    const r = runProgram(p, 6803);
    assert.equal(r.finding?.kind, 'violation');
    assert.match(
      r.finding.message,
      /gpu1 mirror 0: va 0x[0-9a-f]+ \(device pfn \d+, writable\): the CPU maps pfn/,
    );
    assert.match(
      knownFinding(r.finding, p) ?? '',
      /ignores an MMU_NOTIFY_MIGRATE invalidation whose owner is its device/,
    );
    // Without the program, or with one descriptor only, the same violation is not excused.
    assert.equal(knownFinding(r.finding), null);
    const one = {
      ...p,
      steps: p.steps.filter((s) => s.save !== 'd8').map((s) => (s.fd === 'd8' ? { ...s, fd: 'd2' } : s)),
    };
    assert.equal(knownFinding(r.finding, one), null);
  });

  it('a PASID left attached when the iommufd closes: the selftest leaks its HWPT and IOAS, as the kernel does', () => {
    const doc = parse(
      readFileSync(join(ROOT, 'test/fixtures/fuzz-known/pasid-left-attached-at-close.yaml'), 'utf8'),
    ) as { system: Record<string, unknown>; processes: string[]; steps: Step[] };
    const p = { system: doc.system, processes: doc.processes, steps: doc.steps };
    const r = runProgram(p, 525);
    assert.equal(r.finding?.kind, 'violation');
    assert.equal(r.finding.message, 'iommufd ctx 1: objects left on release');
    assert.match(knownFinding(r.finding, p) ?? '', /iommufd_selftest_destroy\(\) detaches only the RID/);
    // Detached before the close: nothing leaks, nothing to excuse.
    const detached = {
      ...p,
      steps: [...p.steps.slice(0, -1), { op: 'IOMMU_TEST_OP_PASID_DETACH', fd: 'i7', id: 's9', pasid: 100 }],
    };
    assert.equal(runProgram(detached, 525).finding, null);
    assert.equal(knownFinding(r.finding, detached), null);
  });

  it('a dmirror READ in a thread after its process exited: the retry loop, named by its op', () => {
    const file = join(ROOT, 'test/fixtures/fuzz-known/dmirror-read-thread-after-exit.yaml');
    const doc = parse(readFileSync(file, 'utf8')) as {
      system: Record<string, unknown>;
      processes: string[];
      setup: Step[];
      threads: Record<string, Step[]>;
    };
    const p = { system: doc.system, processes: doc.processes, steps: doc.setup, threads: doc.threads };
    const r = runProgram(p, 6965);
    assert.equal(r.finding?.kind, 'violation');
    assert.match(
      r.finding.message,
      /still not finished: t1 in HMM_DMIRROR_READ at mutex_lock\(gpu1\.mirror0\.mutex\)$/,
    );
    assert.match(
      knownFinding(r.finding) ?? '',
      /dmirror_fault\(\) returns 0 without faulting when the mirrored mm is gone/,
    );
    // With the process alive the READ ends (-EFAULT: the address is not in its mm): no finding.
    const live = runProgram({ ...p, steps: doc.setup.filter((s) => s.op !== 'exit') }, 6965);
    assert.equal(live.finding, null);
    // A thread looping elsewhere beside it is not excused.
    const other = { kind: 'violation' as const, oracle: 'livelock', step: -1 };
    const msg =
      '100000 steps and still not finished: t1 in HMM_DMIRROR_READ at mutex_lock(x), t2 in mmap at spin';
    assert.equal(knownFinding({ ...other, message: msg }), null);
    // A thread that has not started is not looping: the READ's loop is still the known one.
    const waiting =
      '100000 steps and still not finished: t0 in HMM_DMIRROR_READ at mutex_lock(x), t1 at start';
    assert.match(knownFinding({ ...other, message: waiting }) ?? '', /dmirror_fault\(\) returns 0/);
    assert.equal(
      knownFinding({ ...other, message: '100000 steps and still not finished: t1 at start' }),
      null,
    );
  });

  it('HMM_DMIRROR_RELEASE beside a MIGRATE_TO_DEV: memunmap_pages() waits for ever, as in the kernel', () => {
    const doc = parse(
      readFileSync(join(ROOT, 'test/fixtures/fuzz-known/dmirror-release-beside-migrate.yaml'), 'utf8'),
    ) as {
      system: Record<string, unknown>;
      processes: string[];
      setup: Step[];
      threads: Record<string, Step[]>;
    };
    const p = { system: doc.system, processes: doc.processes, steps: doc.setup, threads: doc.threads };
    const r = runProgram(p, 3);
    assert.equal(r.finding?.kind, 'violation');
    assert.match(r.finding.message, /memunmap_pages: wait for device pages/);
    assert.match(
      knownFinding(r.finding) ?? '',
      /migrate_device_range\(\), which skips a device page it cannot trylock/,
    );
  });
});
