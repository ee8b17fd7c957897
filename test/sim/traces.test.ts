import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SIM_DEFAULTS, runSim } from '../../src/sim/engine.ts';
import { importTrace, TraceBinaryError, TraceError, type TraceFormat } from '../../src/sim/traces.ts';
import { ATOMIC, READ, WRITE } from '../../src/sim/workloads.ts';
import { parseSimFile, SimFileError, sweepPoints } from '../../src/sim/simfile.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const SAMPLES: [TraceFormat, string, number, boolean][] = [
  ['uvm-eval', 'examples/sim/traces/uvm-eval.log', 6, false],
  ['nvuvm', 'examples/sim/traces/nvuvm.txt', 3, false],
  ['kfd', 'examples/sim/traces/kfd.txt', 3, false],
  ['lackey', 'examples/sim/traces/lackey.txt', 4, true],
  ['pinatrace', 'examples/sim/traces/pinatrace.out', 4, true],
];

function expectTraceError(f: () => unknown, line: number, col: number, re: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof TraceError);
    assert.equal(e.line, line);
    assert.equal(e.col, col);
    assert.match(e.why, re);
    return true;
  });
}

describe('trace import', () => {
  for (const [format, path, n, cpu] of SAMPLES) {
    it(`the ${format} sample gives ${n} accesses and replays through the model`, () => {
      const t = importTrace(path, readFileSync(ROOT + path, 'utf8'), format);
      assert.equal(t.accesses.length, n);
      assert.ok(t.accesses.every((a) => a.cpu === cpu));
      const r = runSim({ ...SIM_DEFAULTS, trace: t.accesses, footprint: t.footprint, check: true });
      assert.equal(r.accesses, n);
      assert.equal(cpu ? r.faults === 0 : r.faults > 0, true);
      assert.deepEqual(r.violations, []);
    });
  }

  it('uvm-eval: coalesces the duplicate fault and keeps the strongest access', () => {
    const t = importTrace('x', readFileSync(`${ROOT}examples/sim/traces/uvm-eval.log`, 'utf8'), 'uvm-eval');
    assert.deepEqual(
      t.accesses.map((a) => a.kind),
      [0, 0, 1, 0, 2, 1],
    );
  });

  it('a bad line is refused with its line and column', () => {
    expectTraceError(
      () => importTrace('t', 'f,7f00,1,0,1\nf,zz,1,0,1\n', 'uvm-eval'),
      2,
      3,
      /not a hex address/,
    );
    expectTraceError(() => importTrace('t', 'f,7f00,1,0,9\n', 'uvm-eval'), 1, 12, /unknown access type/);
    expectTraceError(() => importTrace('t', 'x,1\n', 'uvm-eval'), 1, 1, /unknown record type/);
    expectTraceError(
      () => importTrace('t', 'UvmEventGpuFaultInfo accessType=read\n', 'nvuvm'),
      1,
      1,
      /needs address/,
    );
    expectTraceError(() => importTrace('t', 'PAGEFAULT_START 1 -2 @7f(1) X\n', 'kfd'), 1, 29, /R or W/);
    expectTraceError(() => importTrace('t', ' L 0421c7f0,4\n X 1,2\n', 'lackey'), 2, 1, /not a lackey line/);
    expectTraceError(
      () => importTrace('t', '0x1: R 0x2\n0x1 R 0x2\n', 'pinatrace'),
      2,
      1,
      /not a pinatrace line/,
    );
    expectTraceError(() => importTrace('t', '# nothing\n', 'pinatrace'), 1, 1, /no accesses/);
  });
});

function expectBinaryError(f: () => unknown, offset: number, re: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof TraceBinaryError);
    assert.equal(e.offset, offset);
    assert.match(e.why, re);
    assert.ok(e.message.startsWith(`t:${offset}: `), e.message);
    return true;
  });
}

describe('trace import: binary NVIDIA UVM tools events (UvmEventEntry_V1 / _V2)', () => {
  const sample = (v: 1 | 2): Uint8Array => readFileSync(`${ROOT}examples/sim/traces/nvuvm-v${v}.bin`);

  for (const v of [1, 2] as const) {
    it(`the nvuvm-v${v} sample: GPU and CPU faults kept, migration and replay events skipped`, () => {
      const t = importTrace('t', sample(v), `nvuvm-v${v}`);
      assert.deepEqual(
        t.accesses.map((a) => [a.page, a.kind, a.cpu]),
        [
          [0, READ, false],
          [16, WRITE, false],
          [512, ATOMIC, false],
          [3, READ, false],
          [1, WRITE, true],
        ],
      );
      assert.equal(t.skipped, 3);
      assert.equal(t.footprint, 513 * 4096);
      const r = runSim({ ...SIM_DEFAULTS, trace: t.accesses, footprint: t.footprint, check: true });
      assert.ok(r.faults > 0);
      assert.equal(r.cpu_faults, 1, 'the CPU fault takes a GPU-resident page back');
      assert.deepEqual(r.violations, []);
    });
  }

  it('a truncated last record is refused at its byte offset', () => {
    const d = sample(2);
    expectBinaryError(
      () => importTrace('t', d.subarray(0, 72 * 2 + 40), 'nvuvm-v2'),
      144,
      /truncated UvmEventEntry_V2: 40 of 72 bytes/,
    );
    // A V1 file read as V2: its first GPU fault has no accessType where V2 keeps it.
    expectBinaryError(() => importTrace('t', sample(1), 'nvuvm-v2'), 37, /accessType 0 is not/);
  });

  it('an unknown eventType or accessType is refused; other API events are skipped', () => {
    const d = new Uint8Array(sample(2));
    d[72] = 20;
    expectBinaryError(() => importTrace('t', d, 'nvuvm-v2'), 72, /eventType 20 is not a UvmEventType/);
    d[72] = 0;
    expectBinaryError(() => importTrace('t', d, 'nvuvm-v2'), 72, /eventType 0/);
    d[72] = 14; // UvmEventTypeEviction: skipped
    assert.equal(importTrace('t', d, 'nvuvm-v2').skipped, 4);
    d[72 + 37] = 5;
    assert.equal(importTrace('t', d, 'nvuvm-v2').accesses.length, 4, 'the skipped event is not read');
    const e = new Uint8Array(sample(2));
    e[37] = 0;
    expectBinaryError(
      () => importTrace('t', e, 'nvuvm-v2'),
      37,
      /accessType 0 is not a UvmEventMemoryAccessType/,
    );
    expectBinaryError(() => importTrace('t', new Uint8Array(0), 'nvuvm-v2'), 0, /no accesses/);
    expectBinaryError(() => importTrace('t', 'text', 'nvuvm-v1'), 0, /binary format/);
  });

  it('the text form uses the same numbers: eventType 3, accessType 4 is a prefetch (a read)', () => {
    const t = importTrace('t', 'UvmEventGpuFaultInfo eventType=3 address=0x1000 accessType=4\n', 'nvuvm');
    assert.deepEqual(
      t.accesses.map((a) => a.kind),
      [READ],
    );
    expectTraceError(
      () => importTrace('t', 'UvmEventGpuFaultInfo eventType=5 address=0x1000 accessType=1\n', 'nvuvm'),
      1,
      32,
      /not a GPU fault/,
    );
  });
});

describe('sim files', () => {
  const fail = (text: string, line: number, col: number, re: RegExp): void => {
    assert.throws(
      () => parseSimFile('s.yaml', text),
      (e: unknown) => {
        assert.ok(e instanceof SimFileError);
        assert.equal(`${e.line}:${e.col}`, `${line}:${col}`);
        assert.match(e.why, re);
        return true;
      },
    );
  };

  it('the shipped sim files parse; a sweep is the grid of its axes', () => {
    const a = parseSimFile('p', readFileSync(`${ROOT}examples/sim/prefetchers.yaml`, 'utf8'));
    assert.equal(sweepPoints(a.base, a.sweep).length, 4);
    const b = parseSimFile('o', readFileSync(`${ROOT}examples/sim/oversubscription.yaml`, 'utf8'));
    const pts = sweepPoints(b.base, b.sweep);
    assert.equal(pts.length, 4);
    assert.deepEqual(pts[3].opts.driver, { eviction: 'random' });
    assert.equal(pts[3].opts.footprint, 384 * 1024 * 1024);
  });

  it('refuses what it does not know, at the offending line and column', () => {
    fail('workload: stream\n', 1, 1, /version: 1/);
    fail('version: 1\npolicy: best\n', 2, 9, /policy is one of/);
    fail('version: 1\nfootprint: 10MB\n', 2, 12, /ambiguous/);
    fail('version: 1\nwarps: 0\n', 2, 8, /integer >= 1/);
    fail('version: 1\ncolour: red\n', 2, 1, /unknown key/);
    fail('version: 1\ndriver:\n  batch_sise: 3\n', 3, 3, /unknown driver tunable/);
    fail('version: 1\nsweep:\n  policy: [tree, best]\n', 3, 18, /policy is one of/);
    fail('version: 1\nsweep:\n  policy: []\n', 3, 11, /non-empty list/);
    fail('version: 1\ntrace: { file: x, format: csv }\n', 2, 8, /trace.format/);
    fail('version: 1\n  bad: [\n', 1, 10, /./);
  });

  it('a driver tunable of the wrong type is refused when the run starts', () => {
    const f = parseSimFile('s', 'version: 1\ndriver: { batch_size: 0 }\nfootprint: 1MiB\n');
    assert.throws(() => runSim(f.base), /refused the configuration/);
  });
});
