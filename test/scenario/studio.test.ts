import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { CHECKPOINT_EVERY, exploreText, openSession } from '../../src/scenario/studio.ts';

const EX = new URL('../../examples/', import.meta.url).pathname;
const text = (name: string): string => readFileSync(`${EX}${name}`, 'utf8');
const FINAL_RACE = fileURLToPath(new URL('../fixtures/studio/final-race.yaml', import.meta.url));

describe('studio session', () => {
  it('fork-cow: each step reports what hetmem run reports, going forward and back', () => {
    const src = text('fork-cow.yaml');
    const { report } = runScenario(parseScenarioText(src, 'fork-cow.yaml'), kernel());
    const s = openSession(src, 'fork-cow.yaml');
    assert.equal(s.total, report.steps.length);
    for (const n of [1, 4, report.steps.length, 2, 3]) {
      s.goto(n);
      const st = s.state();
      assert.equal(st.step, n);
      const want = report.steps[n - 1];
      assert.equal(st.report?.op, want.op);
      assert.equal(st.report?.ret, want.ret);
      assert.deepEqual(st.report?.counters, want.counters);
    }
  });

  it('a run keeps checkpoints: going anywhere restores the nearest one and runs only the steps after it', () => {
    const name = 'iommufd-dirty-tracking.yaml';
    const s = openSession(text(name), name);
    s.goto(s.total);
    for (const n of [3, 20, 9, s.total - 1, 1, 17, 0]) {
      s.goto(n);
      const st = s.state();
      assert.equal(st.travel.from % CHECKPOINT_EVERY, 0, `to ${n} from a checkpoint`);
      assert.ok(st.travel.replayed < CHECKPOINT_EVERY, `to ${n}: ${st.travel.replayed} steps run`);
      // The same state as a session that ran there from the start, events and all.
      const fresh = openSession(text(name), name);
      fresh.goto(n);
      const want = fresh.state();
      assert.equal(want.travel.replayed, n);
      assert.deepEqual(st.snapshot, want.snapshot, `step ${n}`);
      assert.deepEqual(st.reports, want.reports, `step ${n}`);
      fresh.close();
    }
    s.close();
  });

  it('checkpoints taken before an explore in the same worker are dropped, not trusted', () => {
    const name = 'fork-cow.yaml';
    const s = openSession(text(name), name);
    s.goto(s.total);
    exploreText(parseScenarioText(readFileSync(FINAL_RACE, 'utf8'), 'final-race.yaml'), { schedules: 2 });
    s.goto(9);
    assert.deepEqual(s.state().travel, { from: 0, replayed: 9 }, 'rebuilt and run from the start');
    // Then it keeps checkpoints again.
    s.goto(s.total);
    s.goto(9);
    assert.deepEqual(s.state().travel, { from: 8, replayed: 1 });
    const fresh = openSession(text(name), name);
    fresh.goto(9);
    assert.deepEqual(s.state().snapshot, fresh.state().snapshot);
    fresh.close();
    s.close();
  });

  it('the legacy hmm_mirror API: struct hmm shows as a whole-mm notifier with its ops and mirrors', () => {
    const name = 'races/legacy-mirror.yaml';
    const s = openSession(text(name), `${EX}${name}`);
    s.goto(s.outline().findIndex((u) => u.label === 'legacy_mirror_open') + 1);
    const [n] = s.state().snapshot.notifiers;
    assert.deepEqual(n.intervals, []);
    assert.deepEqual(n.whole, [
      {
        owner: 'hmm (hmm_mirror API)',
        ops: ['release', 'invalidate_range_start', 'invalidate_range_end'],
        users: 1,
        mirrors: ['gpu0#0'],
      },
    ]);
    s.close();
    const d = openSession(text('dmirror-mirror.yaml'), 'dmirror-mirror.yaml');
    d.goto(d.outline().findIndex((u) => u.label === 'HMM_DMIRROR_READ') + 1);
    const [m] = d.state().snapshot.notifiers;
    assert.deepEqual(m.whole, []);
    assert.deepEqual(
      m.intervals.map((i) => i.ops),
      [['invalidate']],
    );
    d.close();
  });

  it('fork-cow: after fork both processes map the same frames read-only; a write copies one', () => {
    const s = openSession(text('fork-cow.yaml'), 'fork-cow.yaml');
    const outline = s.outline();
    const forkAt = outline.findIndex((u) => u.label === 'fork') + 1;
    s.goto(forkAt);
    const snap = s.state().snapshot;
    const [parent, child] = snap.processes;
    assert.equal(child.name, 'child');
    const pp = parent.pages.filter((p) => p.cpu.kind === 'present');
    const cp = child.pages.filter((p) => p.cpu.kind === 'present');
    assert.equal(pp.length, 8);
    assert.deepEqual(
      pp.map((p) => p.cpu.pfn),
      cp.map((p) => p.cpu.pfn),
    );
    assert.ok(pp.every((p) => !p.cpu.writable));
    const f = snap.frames.find((x) => x.pfn === pp[0].cpu.pfn)!;
    assert.equal(f.mapcount, 2);
    assert.deepEqual(parent.pages[0].idx.length, 4);
  });

  it('dmirror-mirror: the device page table shows beside the CPU one', () => {
    const s = openSession(text('dmirror-mirror.yaml'), 'dmirror-mirror.yaml');
    s.goto(s.outline().findIndex((u) => u.label === 'HMM_DMIRROR_READ') + 1);
    const snap = s.state().snapshot;
    const mapped = snap.processes.flatMap((p) => p.pages).filter((p) => p.devices.length > 0);
    assert.ok(mapped.length > 0, 'some page is mirrored');
    for (const p of mapped) assert.notEqual(p.cpu.kind, 'none');
    assert.ok(snap.notifiers.length > 0);
    assert.ok(snap.notifiers[0].intervals.every((i) => i.seq % 2 === 1));
    assert.ok(snap.events.some((e) => e.cat === 'fault' || e.cat === 'hmm'));
  });

  it('a race: exploring finds the violation and the schedule session steps to it', () => {
    const src = text('races/read-munmap.yaml');
    const parsed = parseScenarioText(src, 'read-munmap.yaml');
    const found = exploreText(parsed, { strategy: 'pct', seed: 1, schedules: 300 });
    const s = openSession(src, 'read-munmap.yaml', { replay: found.token });
    const st0 = s.state();
    assert.ok(st0.race !== null);
    assert.equal(found.found, st0.race.violation !== null);
    s.goto(s.total);
    assert.equal(s.state().step, s.total);
    s.goto(1);
    assert.equal(s.state().step, 1);
  });

  it('iommufd: each domain shows the IOVA runs it maps, on the frames the process maps', () => {
    const s = openSession(text('iommufd-map-copy-unmap.yaml'), 'iommufd-map-copy-unmap.yaml');
    const labels = s.outline().map((u) => u.label);
    s.goto(labels.indexOf('IOMMU_IOAS_COPY') + 1);
    const snap = s.state().snapshot;
    const withDomain = snap.ioas.filter((a) => a.domains.length > 0);
    assert.equal(withDomain.length, 1, 'only the IOAS with the mock device has a domain');
    const [d] = withDomain[0].domains;
    assert.equal(d.kind, 'paging');
    assert.equal(d.owner, 'iommufd_selftest');
    assert.ok(d.attached && d.hwpt !== null && d.devices.length === 1);
    const pages = d.runs.reduce((n, r) => n + r.npages, 0);
    assert.equal(pages, 16);
    // Each run's frames are the frames the process maps at the run's user address.
    const proc = snap.processes[0];
    for (const r of d.runs) {
      for (let i = 0; i < r.npages; i++) {
        const pg = proc.pages.find((p) => p.addr === r.user! + i * 4096)!;
        assert.equal(pg.cpu.pfn, r.pfn + i);
      }
      assert.equal(r.last - r.iova + 1n, BigInt(r.npages * 4096));
    }
    assert.equal(typeof withDomain[0].areas[0].last, 'bigint');
    // After the unmap the domain maps nothing.
    s.goto(labels.lastIndexOf('IOMMU_IOAS_UNMAP'));
    assert.deepEqual(
      s.state().snapshot.ioas.flatMap((a) => a.domains.flatMap((x) => x.runs)),
      [],
    );
  });

  it('legacy hmm_mirror devices show their page table with the other devices', () => {
    const file = `${EX}races/legacy-mirror.yaml`;
    // One after the other: the device faults both pages in, then munmap clears them.
    const run = openSession(text('races/legacy-mirror.yaml'), file);
    const labels = run.outline().map((u) => u.label);
    run.goto(labels.indexOf('legacy_mirror_fault') + 1);
    const snap = run.state().snapshot;
    assert.deepEqual(
      snap.devices.map((d) => [d.name, d.api]),
      [['gpu0', 'hmm_mirror']],
    );
    const mapped = snap.processes[0].pages.filter((p) => p.devices.length > 0);
    assert.equal(mapped.length, 2);
    for (const p of mapped) {
      assert.match(p.devices[0].mirror, /^gpu0#/);
      assert.equal(p.devices[0].pfn, p.cpu.pfn);
    }
    run.goto(labels.indexOf('munmap') + 1);
    assert.equal(run.state().snapshot.processes[0].pages.filter((p) => p.devices.length > 0).length, 0);
    // The race: the device keeps entries for pages munmap freed, where no VMA is any more.
    const found = exploreText(parseScenarioText(text('races/legacy-mirror.yaml'), file), {
      strategy: 'pct',
      seed: 1,
      schedules: 300,
    });
    assert.ok(found.found);
    const race = openSession(text('races/legacy-mirror.yaml'), file, { replay: found.token });
    race.goto(race.state().race!.at);
    const stale = race.state().snapshot.processes[0].pages.filter((p) => p.outside === true);
    assert.ok(stale.length > 0, 'the stale device entries show');
    assert.ok(stale.every((p) => p.cpu.kind === 'none' && p.devices.length > 0));
  });

  it('an IOAS area at the top of the IOVA space shows its exact last byte', () => {
    const src = [
      'version: 1',
      'processes: [p]',
      'steps:',
      '  - { op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [private, anonymous], save: buf }',
      '  - { op: iommufd_open, proc: p, save: iofd }',
      '  - { op: IOMMU_IOAS_ALLOC, fd: iofd, save: ioas }',
      '  - op: IOMMU_IOAS_MAP',
      '    fd: iofd',
      '    ioas_id: ioas',
      '    user_va: buf',
      '    length: 8KiB',
      '    iova: "0xffffffffffffe000"',
      '    flags: [FIXED_IOVA, READABLE, WRITEABLE]',
      '',
    ].join('\n');
    const s = openSession(src, 'top.yaml');
    s.goto(4);
    assert.equal(s.state().report?.errno, null);
    const [area] = s.state().snapshot.ioas[0].areas;
    assert.equal(area.iova, 0xffffffffffffe000n);
    assert.equal(area.last, 0xffffffffffffffffn);
  });

  it('a schedule runs on into the final steps and the teardown, as the explorer judges it', () => {
    // A clean race: after the scheduler steps, the final check and the teardown run too.
    const src = text('races/read-munmap.yaml');
    const parsed = parseScenarioText(src, 'read-munmap.yaml');
    const clean = exploreText(parsed, { strategy: 'pct', seed: 1, schedules: 20 });
    assert.equal(clean.found, false);
    const s = openSession(src, 'read-munmap.yaml', { replay: clean.token });
    const ends = s.outline().filter((u) => u.column === -1);
    assert.deepEqual(
      ends.map((u) => [u.section, u.label]),
      [
        ['final', 'check'],
        ['teardown', 'teardown'],
      ],
    );
    s.goto(s.total - 1);
    assert.equal(s.state().report?.op, 'check');
    assert.ok(s.state().snapshot.processes.length > 0, 'the teardown has not run yet');
    s.goto(s.total);
    assert.equal(s.state().report?.op, 'teardown');
    assert.ok(s.state().report?.ok);
    assert.ok(
      s.state().snapshot.processes.every((p) => p.exited) || s.state().snapshot.processes.length === 0,
    );
    // Back into the schedule and forward again: the same end.
    s.goto(2);
    assert.equal(s.state().report, null);
    s.goto(s.total);
    assert.equal(s.state().report?.op, 'teardown');
  });

  it('a violation a final step finds shows at that step, as the explorer reports it', () => {
    const src = readFileSync(FINAL_RACE, 'utf8');
    const found = exploreText(parseScenarioText(src, 'final.yaml'), {
      strategy: 'pct',
      seed: 1,
      schedules: 5,
    });
    assert.ok(found.found);
    const s = openSession(src, 'final.yaml', { replay: found.token });
    const race = s.state().race!;
    assert.equal(race.violation?.oracle, 'expect');
    assert.match(race.violation.message, /^final step 1 \(expect_stats, line 14\): /);
    // The schedule's units, then the failing final step; the check after it never runs.
    assert.equal(race.at, s.total);
    assert.deepEqual(s.outline().at(-1), {
      section: 'final',
      label: 'expect_stats',
      line: 14,
      thread: 'final',
      column: -1,
    });
    s.goto(s.total);
    const r = s.state().report!;
    assert.equal(r.op, 'expect_stats');
    assert.equal(r.ok, false);
  });

  it('big address spaces are shown a window of pages and of frames at a time', () => {
    const src = [
      'version: 1',
      'system: { ram: 64MiB, swap: 0 }',
      'processes: [p]',
      'steps:',
      '  - { op: mmap, proc: p, length: 40MiB, prot: [read, write], flags: [private, anonymous], save: buf }',
      '  - { op: cpu_write, proc: p, addr: buf, length: 20MiB, data: { pattern: index32 } }',
      '',
    ].join('\n');
    const s = openSession(src, 'big.yaml');
    s.goto(2);
    let snap = s.state().snapshot;
    let [p] = snap.processes;
    assert.equal(p.vmaPages, 10240);
    const start = p.vmas[0].start;
    assert.deepEqual(p.windows, [start, start + 4096 * 4096, start + 8192 * 4096]);
    assert.equal(p.window, 0);
    assert.equal(p.pages.length, 4096);
    assert.ok(snap.truncated);
    assert.ok(snap.frameTotal >= 5120, `${snap.frameTotal} frames in use`);
    assert.equal(snap.frameWindows.length, Math.ceil(snap.frameTotal / 4096));
    assert.equal(snap.frames.length, 4096);
    // The last window of pages, and the second of frames.
    s.window = { addr: p.windows[2], pfn: snap.frameWindows[1] };
    snap = s.state().snapshot;
    [p] = snap.processes;
    assert.equal(p.window, 2);
    assert.equal(p.pages.length, 10240 - 8192);
    assert.equal(p.pages[0].addr, p.windows[2]);
    assert.equal(p.pages.at(-1)!.addr, start + 10239 * 4096);
    assert.equal(snap.frameWindow, 1);
    assert.equal(snap.frames.length, snap.frameTotal - 4096);
    assert.ok(snap.frames.every((f) => f.pfn >= snap.frameWindows[1]));
    // The window stays while stepping.
    s.goto(1);
    assert.equal(s.state().snapshot.processes[0].window, 2);
  });
});
