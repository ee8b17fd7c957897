import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { runScenario } from '../../src/scenario/runner.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { exploreText, openSession } from '../../src/scenario/studio.ts';

const EX = new URL('../../examples/', import.meta.url).pathname;
const text = (name: string): string => readFileSync(`${EX}${name}`, 'utf8');

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
});
