/**
 * Fault kinds at the CLI: the span of every CPU fault is named after its handler in the Chrome
 * JSON and Perfetto traces of `hetmem run --trace`, and `hetmem run --json` lists each step's
 * faults by kind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { PF, TYPE_SLICE_BEGIN } from '../../src/cli/perfetto.ts';
import type { ChromeTrace } from '../../src/cli/trace.ts';
import { decode, packets, text } from './protobuf.ts';
import { hetmem, tempFile } from './helpers.ts';

describe('fault kinds in hetmem run', () => {
  it('names fault spans by handler in the Chrome JSON and the Perfetto trace alike', () => {
    const dir = dirname(tempFile('keep', ''));
    const js = join(dir, 'faults.json');
    const pf = join(dir, 'faults.pftrace');
    assert.equal(hetmem(['run', 'examples/fork-cow.yaml', '--trace', js]).status, 0);
    assert.equal(hetmem(['run', 'examples/fork-cow.yaml', '--trace', pf]).status, 0);
    const json = JSON.parse(readFileSync(js, 'utf8')) as ChromeTrace;
    const spans = json.traceEvents.filter((e) => e.cat === 'fault' && e.ph === 'B');
    assert.deepEqual(
      spans.map((e) => `${e.name}/${String(e.args?.kind)}`),
      [
        ...Array<string>(8).fill('do_anonymous_page/anon'),
        'do_wp_page (copy)/cow',
        'do_wp_page (reuse)/wp_reuse',
      ],
    );
    assert.ok(spans.every((e) => e.args?.major === false && /^0x[0-9a-f]+$/.test(String(e.args.addr))));
    const names = packets(readFileSync(pf))
      .map((p) => p.get(PF.packet.trackEvent)?.[0])
      .filter((te) => te instanceof Uint8Array)
      .map((te) => decode(te))
      .filter(
        (te) =>
          Number(te.get(PF.trackEvent.type)?.[0]) === TYPE_SLICE_BEGIN &&
          text(te.get(PF.trackEvent.categories)?.[0]) === 'fault',
      )
      .map((te) => text(te.get(PF.trackEvent.name)?.[0]));
    assert.deepEqual(
      names,
      spans.map((e) => e.name),
    );
  });

  it('--json lists each step’s faults as runs of pages by kind', () => {
    const r = hetmem(['run', 'examples/swap-out-in.yaml', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      steps: {
        op: string;
        faults?: { addr: string; pages: number; kind: string; handler: string; major: boolean }[];
      }[];
    };
    const faults = doc.steps.flatMap((s) => (s.faults ?? []).map((f) => ({ op: s.op, ...f })));
    assert.equal(faults[0].kind, 'anon');
    assert.equal(faults[0].pages, 4);
    assert.match(faults[0].addr, /^0x[0-9a-f]+$/);
    const swapin = faults.filter((f) => f.kind === 'swapin');
    assert.ok(swapin.length > 0);
    assert.ok(swapin.every((f) => f.major && f.handler === 'do_swap_page'));
  });
});
