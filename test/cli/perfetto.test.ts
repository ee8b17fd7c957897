import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { PF, toPerfetto, TYPE_INSTANT, TYPE_SLICE_BEGIN, TYPE_SLICE_END } from '../../src/cli/perfetto.ts';
import { toChromeTrace } from '../../src/cli/trace.ts';
import type { TraceEvent } from '../../src/kernel/trace.ts';
import { hetmem, tempFile } from './helpers.ts';
import { decode, packets, sub, text } from './protobuf.ts';

const ev = (
  ts: number,
  track: string,
  name: string,
  ph: 'B' | 'E' | 'i',
  args?: Record<string, unknown>,
): TraceEvent => ({
  ts,
  thread: track.slice(4),
  track,
  cat: 'fault',
  name,
  ph,
  args,
});

describe('Perfetto protobuf traces', () => {
  it('encodes tracks, overlapping slices and instants that decode back', () => {
    const events = [
      ev(1, 'cpu:a', 'outer', 'B', { addr: 0x1000, write: true, big: 2n ** 63n }),
      ev(2, 'cpu:b', 'other', 'B'),
      ev(3, 'cpu:a', 'fault', 'i', { name: 'x' }),
      ev(4, 'cpu:a', 'outer', 'E'),
      ev(5, 'cpu:a', 'stray', 'E'),
    ];
    const ps = packets(toPerfetto([{ name: 'sys', events }]));
    const descs = ps.map((p) => sub(p, PF.packet.trackDescriptor)).filter((d) => d !== undefined);
    assert.equal(descs.length, 3, 'one process track and two thread tracks');
    const proc = sub(descs[0], PF.trackDescriptor.process)!;
    assert.equal(text(proc.get(PF.processDescriptor.processName)?.[0]), 'sys');
    const names = descs.slice(1).map((d) => text(d.get(PF.trackDescriptor.name)?.[0]));
    assert.deepEqual(names, ['cpu:a', 'cpu:b']);
    const uuidOf = new Map(descs.slice(1).map((d, i) => [d.get(PF.trackDescriptor.uuid)?.[0], names[i]]));
    for (const d of descs.slice(1))
      assert.equal(d.get(PF.trackDescriptor.parentUuid)?.[0], descs[0].get(1)?.[0]);

    const tes = ps
      .map((p) => ({ ts: p.get(PF.packet.timestamp)?.[0], te: sub(p, PF.packet.trackEvent) }))
      .filter((x) => x.te !== undefined);
    const rows = tes.map(({ ts, te }) => ({
      ts: Number(ts),
      type: Number(te!.get(PF.trackEvent.type)?.[0]),
      track: uuidOf.get(te!.get(PF.trackEvent.trackUuid)?.[0]),
      name: te!.has(PF.trackEvent.name) ? text(te!.get(PF.trackEvent.name)?.[0]) : null,
    }));
    assert.deepEqual(rows, [
      { ts: 1000, type: TYPE_SLICE_BEGIN, track: 'cpu:a', name: 'outer' },
      { ts: 2000, type: TYPE_SLICE_BEGIN, track: 'cpu:b', name: 'other' },
      { ts: 3000, type: TYPE_INSTANT, track: 'cpu:a', name: 'fault' },
      { ts: 4000, type: TYPE_SLICE_END, track: 'cpu:a', name: null },
      // 'stray' ends nothing and is dropped; 'other' is closed one step after the last event.
      { ts: 6000, type: TYPE_SLICE_END, track: 'cpu:b', name: null },
    ]);
    const first = tes[0].te!;
    assert.equal(text(first.get(PF.trackEvent.categories)?.[0]), 'fault');
    const ann = (first.get(PF.trackEvent.debugAnnotations) ?? []).map((a) => decode(a as Uint8Array));
    const byName = new Map(ann.map((a) => [text(a.get(PF.debugAnnotation.name)?.[0]), a]));
    assert.equal(byName.get('addr')?.get(PF.debugAnnotation.intValue)?.[0], 0x1000n);
    assert.equal(byName.get('write')?.get(PF.debugAnnotation.boolValue)?.[0], 1n);
    assert.equal(text(byName.get('big')?.get(PF.debugAnnotation.stringValue)?.[0]), '0x8000000000000000');
  });

  it('hetmem run --trace x.pftrace writes the same events as the JSON trace', () => {
    const dir = dirname(tempFile('keep', ''));
    const pf = join(dir, 'run.pftrace');
    const js = join(dir, 'run.json');
    assert.equal(hetmem(['run', 'examples/dmirror-mirror.yaml', '--trace', pf]).status, 0);
    assert.equal(
      hetmem(['run', 'examples/dmirror-mirror.yaml', '--trace', js, '--trace-format', 'json']).status,
      0,
    );
    const json = JSON.parse(readFileSync(js, 'utf8')) as ReturnType<typeof toChromeTrace>;
    const jsonEvents = json.traceEvents.filter((e) => e.ph !== 'M');
    const ps = packets(readFileSync(pf));
    const evs = ps.filter((p) => p.has(PF.packet.trackEvent));
    assert.equal(evs.length, jsonEvents.length);
    assert.ok(jsonEvents.some((e) => e.cat === 'notifier'));
  });

  it('refuses an unknown --trace-format with exit 2', () => {
    const r = hetmem([
      'run',
      'examples/fork-cow.yaml',
      '--trace',
      tempFile('t', ''),
      '--trace-format',
      'xml',
    ]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--trace-format takes json or perfetto/);
  });
});
