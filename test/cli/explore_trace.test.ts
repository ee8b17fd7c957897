/**
 * The Chrome trace of `hetmem explore --trace`: lock acquire and release instants on the threads'
 * tracks, and a marker where the reported schedule broke.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hetmem } from './helpers.ts';

interface Event {
  name: string;
  cat?: string;
  ph: string;
  tid: number;
  args?: Record<string, unknown>;
}

describe('explore --trace', () => {
  it('has lock events on the CPU tracks and a violation marker', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'hetmem-trace-')), 't.json');
    const r = hetmem(['explore', 'examples/races/access-unmap-contained.yaml', '--trace', out]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const events = (JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: Event[] }).traceEvents;
    const locks = events.filter((e) => e.cat === 'lock');
    assert.ok(
      locks.some((e) => e.name.startsWith('down_write(mmap_lock')),
      'mmap lock taken',
    );
    assert.ok(
      locks.some((e) => e.name.startsWith('up_write(mmap_lock')),
      'mmap lock released',
    );
    const marks = events.filter((e) => e.cat === 'violation');
    assert.equal(marks.length, 1);
    assert.equal(marks[0].name, 'iommufd');
    assert.match(String(marks[0].args?.message), /stuck on accesses/);
    const tracks = new Map(
      events.filter((e) => e.name === 'thread_name').map((e) => [e.tid, String(e.args?.name)]),
    );
    assert.equal(tracks.get(marks[0].tid), 'violation', 'the marker has a track of its own');
    assert.ok(
      locks.every((e) => (tracks.get(e.tid) ?? '').startsWith('cpu:')),
      'lock events sit on thread tracks',
    );
  });
});
