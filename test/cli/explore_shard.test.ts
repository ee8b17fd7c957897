/** `hetmem explore --shard I/N` and `--merge`, as a CI matrix runs them. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hetmem } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'hetmem-shard-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function shards(file: string, n: number, extra: string[]): string[] {
  const files: string[] = [];
  for (let i = 1; i <= n; i++) {
    const r = hetmem(['explore', file, '--shard', `${i}/${n}`, '--json', ...extra]);
    assert.ok(r.status === 0 || r.status === 1, r.stderr);
    const f = join(dir, `${file.replace(/\W/g, '_')}-${i}.json`);
    writeFileSync(f, r.stdout);
    files.push(f);
  }
  return files;
}

describe('hetmem explore --shard / --merge', () => {
  it('a clean scenario: the shards together exhaust what one search exhausts', () => {
    const whole = hetmem(['explore', 'examples/races/interval-mirror.yaml', '--strategy', 'dfs', '--json']);
    assert.equal(whole.status, 0, whole.stderr);
    const files = shards('examples/races/interval-mirror.yaml', 3, ['--strategy', 'dfs']);
    const r = hetmem(['explore', '--merge', ...files, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      exhausted: boolean;
      violation: unknown;
      schedules: number;
      shards: unknown;
      states: unknown;
    };
    assert.equal(doc.exhausted, true);
    // Each shard keeps its own state cache: the merged counts are their sums.
    type States = { hashed: number; pruned: number; unrecorded: number };
    const parts = files.map((f) => (JSON.parse(readFileSync(f, 'utf8')) as { states: States }).states);
    const sum = (k: keyof States): number => parts.reduce((n, s) => n + s[k], 0);
    assert.ok(sum('hashed') > 0);
    assert.deepEqual(doc.states, {
      hashed: sum('hashed'),
      pruned: sum('pruned'),
      unrecorded: sum('unrecorded'),
    });
    assert.equal(doc.violation, null);
    assert.deepEqual(doc.shards, { count: 3, merged: 3, missing: [] });
    assert.ok(doc.schedules >= (JSON.parse(whole.stdout) as { schedules: number }).schedules);

    const partial = hetmem(['explore', '--merge', files[0], files[2], '--json']);
    assert.equal(partial.status, 1);
    assert.deepEqual((JSON.parse(partial.stdout) as { shards: unknown }).shards, {
      count: 3,
      merged: 2,
      missing: [2],
    });
  });

  it('a racy scenario: the merged result reports the race and a token that replays it', () => {
    const files = shards('examples/races/legacy-mirror.yaml', 2, ['--strategy', 'pct', '--budget', '200']);
    const r = hetmem(['explore', '--merge', ...files, '--json']);
    assert.equal(r.status, 0, r.stderr); // legacy-mirror declares the race it must find
    const doc = JSON.parse(r.stdout) as { violation: { oracle: string } | null; replay: string };
    assert.equal(doc.violation?.oracle, 'frame-refs');
    const again = hetmem(['explore', 'examples/races/legacy-mirror.yaml', '--replay', doc.replay, '--json']);
    assert.equal(
      (JSON.parse(again.stdout) as { violation: { oracle: string } }).violation.oracle,
      'frame-refs',
    );
  });

  it('bad shards and bad files get one line and exit 2', () => {
    for (const bad of ['0/2', '3/2', 'x']) {
      const r = hetmem(['explore', 'examples/races/interval-mirror.yaml', '--shard', bad]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--shard: a shard is I\/N/);
    }
    const f = join(dir, 'bad.json');
    writeFileSync(f, '{\n  "violation": null,\n  "schedules": "many"\n}\n');
    const r = hetmem(['explore', '--merge', f]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3:\\d+: not a result of hetmem explore --json: schedules`,
      ),
    );
  });
});
