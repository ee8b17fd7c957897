/**
 * The tracks of `hetmem run --trace`: besides one per CPU thread, one per device (its page-table
 * updates and accesses) and one per mm with notifier subscribers (every callback delivered).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { ChromeTrace } from '../../src/cli/trace.ts';
import { hetmem, tempFile } from './helpers.ts';

function tracks(file: string): Map<string, { name: string; args?: Record<string, unknown> }[]> {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as ChromeTrace;
  const names = new Map(
    doc.traceEvents.filter((e) => e.name === 'thread_name').map((e) => [e.tid, String(e.args?.name)]),
  );
  const out = new Map<string, { name: string; args?: Record<string, unknown> }[]>();
  for (const e of doc.traceEvents) {
    if (e.ph === 'M') continue;
    const t = names.get(e.tid) ?? '?';
    out.set(t, [...(out.get(t) ?? []), e]);
  }
  return out;
}

describe('trace tracks', () => {
  it('dmirror-mirror: a device track with its PTE updates, a notifier track with each callback', () => {
    const out = tempFile('mirror.json', '');
    const r = hetmem(['run', 'examples/dmirror-mirror.yaml', '--trace', out]);
    assert.equal(r.status, 0, r.stderr);
    const t = tracks(out);
    const dev = t.get('device:gpu0') ?? [];
    assert.ok(dev.some((e) => e.name === 'device pte map' && typeof e.args?.pfn === 'number'));
    assert.ok(dev.some((e) => e.name === 'device pte zap'));
    const notif = t.get('notifier:p') ?? [];
    assert.ok(notif.length > 0, [...t.keys()].join(', '));
    for (const e of notif) {
      assert.equal(e.name, 'interval invalidate');
      assert.match(String(e.args?.interval), /^\[0x[0-9a-f]+, 0x[0-9a-f]+\]$/);
      assert.equal(typeof e.args?.event, 'string');
      assert.equal(typeof e.args?.seq, 'number');
    }
    // The device's invalidate callback zaps: as many zaps as invalidations delivered.
    assert.equal(dev.filter((e) => e.name === 'device pte zap').length, notif.length);
  });

  it('a device fault and the accesses of a faulting device show on its track', () => {
    const out = tempFile('uvm.json', '');
    assert.equal(hetmem(['run', 'examples/uvm-fault-migrate.yaml', '--trace', out]).status, 0);
    const names = (tracks(out).get('device:gpu0') ?? []).map((e) => e.name);
    assert.ok(names.includes('device fault'));
    assert.ok(names.includes('device_read') && names.includes('device_write'));
    assert.ok(names.indexOf('device fault') < names.indexOf('device pte map'), 'the fault comes first');
  });
});
